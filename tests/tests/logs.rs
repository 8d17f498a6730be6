//! Identity and logs with real processes: a user's log lives in the
//! overlay, so destroying the node that wrote it loses nothing once the
//! user is imported elsewhere.

use anyhow::{Context, Result, ensure};
use epost_e2e::cluster::{Cluster, ClusterConfig};
use epost_e2e::last_line;

const ENTRIES: usize = 1000;

#[test]
fn a_thousand_entries_survive_the_writers_destruction() -> Result<()> {
    let mut cluster = Cluster::start(2, &ClusterConfig::default())?;
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[1]);
    let realm = last_line(&a.cli(&["realm", "init", "example.org"])?)?;
    b.cli(&["realm", "trust", &realm])?;
    a.cli_input(&["user", "add", "alice@example.org", "--password-stdin"], b"s3cret\n")?;

    for i in 1..=ENTRIES {
        let out = a.cli_input(
            &["log", "append", "--user", "alice@example.org", "journal"],
            format!("entry number {i}").as_bytes(),
        )?;
        let seq: u64 = last_line(&out)?.parse().context("seq is a number")?;
        // Every 500th sequence number is a snapshot.
        let expected = i as u64 + (i as u64 - 1) / 499;
        ensure!(seq == expected, "entry {i} got seq {seq}, expected {expected}");
    }
    let head = b.cli_json(&["log", "head", "alice@example.org", "journal"])?;
    ensure!(head["seq"] == 1002, "head seen from B: {head}");

    let bundle = a.cli(&["user", "export", "alice@example.org"])?;
    let bundle_path = cluster.nodes[1].dir.join("alice.user");
    std::fs::write(&bundle_path, bundle)?;
    // The writer's node is destroyed: killed, and its data directory gone.
    cluster.nodes[0].kill()?;
    std::fs::remove_dir_all(&cluster.nodes[0].dir)?;

    let b = &cluster.nodes[1];
    b.cli(&["user", "import", bundle_path.to_str().context("path")?])?;
    let shown = b.cli_json(&["log", "show", "--user", "alice@example.org", "journal"])?;
    let entries = shown.as_array().context("log show --json is a list")?;
    ensure!(entries.len() == ENTRIES, "{} entries read back", entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let want = format!("entry number {}", i + 1);
        ensure!(entry["text"] == want.as_str(), "entry {i}: {entry}");
    }
    // The imported user goes on writing where the log left off.
    let out =
        b.cli_input(&["log", "append", "--user", "alice@example.org", "journal"], b"moved")?;
    ensure!(last_line(&out)? == "1003", "append after import: {out}");
    Ok(())
}

#[test]
fn a_writer_killed_mid_append_leaves_the_old_or_the_new_head() -> Result<()> {
    let mut cluster = Cluster::start(3, &ClusterConfig::default())?;
    // Node 1, not the first node: a restarted node finds the others through
    // its bootstrap address (the first node's), and the first node has none.
    let a = &cluster.nodes[1];
    a.cli(&["realm", "init", "example.org"])?;
    a.cli(&["user", "add", "alice@example.org"])?;
    for round in 0..3u64 {
        // Appends run in a thread; the node is SIGKILLed while they do.
        let dir = cluster.nodes[1].dir.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let writer = std::thread::spawn(move || {
            let mut acknowledged = Vec::new();
            for i in 0.. {
                let text = format!("round {round} entry {i}");
                let mut append = epost_e2e::epost(&dir)?;
                append.args(["log", "append", "--user", "alice@example.org", "journal"]);
                let out = epost_e2e::run_ok_with_input(&mut append, text.as_bytes());
                match out {
                    Ok(_) => acknowledged.push(text),
                    Err(_) => break,
                }
                if i == 5 {
                    let _ = tx.send(());
                }
            }
            anyhow::Ok(acknowledged)
        });
        rx.recv_timeout(std::time::Duration::from_secs(120)).context("appends never started")?;
        cluster.nodes[1].kill()?;
        let acknowledged = writer.join().map_err(|_| anyhow::anyhow!("writer panicked"))??;
        cluster.nodes[1].start()?;
        let a = &cluster.nodes[1];
        let shown = a.cli_json(&["log", "show", "--user", "alice@example.org", "journal"])?;
        let texts: Vec<String> = shown
            .as_array()
            .context("a list")?
            .iter()
            .filter_map(|e| e["text"].as_str().map(str::to_owned))
            .filter(|t| t.starts_with(&format!("round {round} ")))
            .collect();
        // Every acknowledged append is there, in order; at most the one in
        // flight at the kill is there too.
        ensure!(texts.len() >= acknowledged.len(), "lost appends: {texts:?} vs {acknowledged:?}");
        ensure!(texts.len() <= acknowledged.len() + 1, "extra entries: {texts:?}");
        ensure!(texts[..acknowledged.len()] == acknowledged[..], "{texts:?}");
        // And the log goes on.
        a.cli_input(&["log", "append", "--user", "alice@example.org", "journal"], b"after")?;
    }
    Ok(())
}
