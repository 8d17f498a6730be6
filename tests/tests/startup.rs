//! A node that cannot run says why and exits non-zero: a bad config, an
//! unreachable bootstrap peer, a second instance on the same data
//! directory, a disk with no room.

use std::process::Stdio;

use anyhow::Result;
use epost_e2e::cluster::{Cluster, ClusterConfig};
use epost_e2e::{epost, run, run_ok};

fn node_run_fails(dir: &std::path::Path, expect: &[&str]) -> Result<String> {
    let out = run(epost(dir)?.args(["node", "run"]).stdin(Stdio::null()))?;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "node run should have failed");
    for needle in expect {
        assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
    }
    Ok(err)
}

#[test]
fn bad_config_is_named() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    run_ok(epost(tmp.path())?.args(["init", "--listen", "/ip4/127.0.0.1/tcp/0"]))?;
    let path = tmp.path().join("config.toml");
    let text: String = std::fs::read_to_string(&path)?
        .lines()
        .map(|line| if line.starts_with("lease_days =") { "lease_days = 0" } else { line })
        .map(|line| format!("{line}\n"))
        .collect();
    assert!(text.contains("lease_days = 0\n"), "the template has no lease_days line");
    std::fs::write(&path, text)?;
    node_run_fails(tmp.path(), &["storage.lease_days", "0"])?;
    Ok(())
}

#[test]
fn unreachable_bootstrap_is_reported() -> Result<()> {
    // A port that was just free: nobody listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let tmp = tempfile::tempdir()?;
    let bootstrap = format!(
        "/ip4/127.0.0.1/tcp/{port}/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN"
    );
    run_ok(epost(tmp.path())?.args([
        "init",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--bootstrap",
        &bootstrap,
    ]))?;
    let path = tmp.path().join("config.toml");
    let text = std::fs::read_to_string(&path)?
        .replace("bootstrap_timeout_secs = 10", "bootstrap_timeout_secs = 2");
    std::fs::write(&path, text)?;
    node_run_fails(tmp.path(), &["bootstrap", "reached"])?;
    Ok(())
}

#[test]
fn second_instance_on_one_data_dir_is_refused() -> Result<()> {
    let cluster = Cluster::start(1, &ClusterConfig::default())?;
    let node = &cluster.nodes[0];
    let err = node_run_fails(&node.dir, &["already"])?;
    assert!(err.contains(node.dir.to_str().unwrap_or_default()), "{err}");
    // The first node is unharmed.
    let status = node.cli_json(&["status"])?;
    assert_eq!(status["peer_id"], node.info["peer_id"]);
    Ok(())
}

#[test]
fn full_disk_at_start_is_reported() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    run_ok(epost(tmp.path())?.args(["init", "--listen", "/ip4/127.0.0.1/tcp/0"]))?;
    // Writes past 8 KiB fail with EFBIG, as on a full disk (SIGXFSZ ignored).
    let bin = epost_e2e::epost_bin()?;
    let out = run(std::process::Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 8; exec \"$0\" --data-dir \"$1\" node run")
        .arg(bin)
        .arg(tmp.path())
        .env_remove("EPOST_DATA_DIR")
        .stdin(Stdio::null()))?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("space") || err.contains("too large"), "{err}");
    Ok(())
}

#[test]
fn the_first_node_restarted_on_a_new_port_finds_its_network_again() -> Result<()> {
    let mut cluster = Cluster::start(3, &ClusterConfig::default())?;
    let file = cluster.nodes[0].dir.join("hello.txt");
    std::fs::write(&file, b"still here")?;
    let cap = cluster.nodes[1].cli(&["put", file.to_str().unwrap_or_default()])?;
    let cap = cap.lines().last().unwrap_or_default().to_owned();
    // The first node has no bootstrap peer; it remembers who it knew
    // (peers.json, saved on connections and at shutdown).
    cluster.nodes[0].stop()?;
    assert!(cluster.nodes[0].dir.join("peers.json").exists(), "peers.json was never written");
    cluster.nodes[0].start()?;
    let node = &cluster.nodes[0];
    let status = node.cli_json(&["status", "--wait-peers", "2", "--timeout", "60"])?;
    let peers = status["peers"].as_u64().unwrap_or(0);
    assert!(peers >= 2, "the restarted first node reconnected to {peers} peers");
    let out = node.dir.join("copy.txt");
    node.cli(&["get", &cap, "-o", out.to_str().unwrap_or_default()])?;
    assert_eq!(std::fs::read(out)?, b"still here");
    Ok(())
}
