//! Identity and logs with real processes: a user's log lives in the
//! overlay, so destroying the node that wrote it loses nothing once the
//! user is imported elsewhere.

use anyhow::{Context, Result, ensure};
use epost_e2e::cluster::{Cluster, ClusterConfig};

const ENTRIES: usize = 1000;

fn last_line(out: &str) -> Result<String> {
    out.lines().last().map(str::to_owned).context("no output")
}

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
