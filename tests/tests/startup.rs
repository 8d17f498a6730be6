//! A node that cannot run says why and exits non-zero: a bad config, a
//! second instance on the same data directory, a disk with no room. A node
//! whose peers are gone is not one of them: it starts, says so, and joins
//! as soon as a remembered or configured peer answers.

use std::process::Stdio;

use anyhow::{Context, Result, ensure};
use epost_e2e::cluster::{Cluster, ClusterConfig};
use epost_e2e::{epost, realm, run, run_ok};

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

/// A loopback port nobody listens on (it was free a moment ago).
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[test]
fn a_node_whose_bootstrap_peer_is_unreachable_starts_and_says_so() -> Result<()> {
    let port = free_port()?;
    let bootstrap = format!(
        "[\"/ip4/127.0.0.1/tcp/{port}/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN\"]"
    );
    let config = ClusterConfig {
        settings: vec![("bootstrap", bootstrap), ("bootstrap_timeout_secs", "2".into())],
        ..ClusterConfig::default()
    };
    let cluster = Cluster::start(1, &config)?;
    let status = cluster.nodes[0].cli_json(&["status"])?;
    ensure!(status["joining"]["state"] == "retrying", "{status}");
    let warnings = status["warnings"].to_string();
    ensure!(warnings.contains("no peer is connected"), "{warnings}");
    let text = cluster.nodes[0].cli(&["status"])?;
    ensure!(text.contains("overlay:   retrying"), "{text}");
    Ok(())
}

#[test]
fn a_node_restarts_and_gets_its_mail_when_its_bootstrap_peer_is_gone_for_good() -> Result<()> {
    // Six nodes, all bootstrapped through node 0, which is then lost.
    let mut cluster = Cluster::start(6, &ClusterConfig::default())?;
    realm::realm(&cluster)?;
    realm::host(&cluster, "alice@example.test", "a-pw", 2)?;
    realm::host(&cluster, "bob@example.test", "b-pw", 1)?;
    cluster.wait_connected()?;
    cluster.nodes[0].kill()?;
    cluster.nodes[1].stop()?;
    // Its config names only node 0; its peers.json names the four others.
    cluster.nodes[1].start()?;
    let node = &cluster.nodes[1];
    let status = node.cli_json(&["status", "--wait-peers", "4", "--timeout", "60"])?;
    ensure!(status["peers"].as_u64() == Some(4), "{status}");
    ensure!(status["joining"]["state"] == "joined", "{status}");

    cluster.nodes[2].cli_input(
        &[
            "send",
            "--from",
            "alice@example.test",
            "--to",
            "bob@example.test",
            "--subject",
            "After the restart",
        ],
        b"Still reaches you.\n",
    )?;
    let inbox = node.cli_json(&[
        "inbox",
        "--user",
        "bob@example.test",
        "--wait-messages",
        "1",
        "--timeout",
        "60",
    ])?;
    let inbox = inbox.as_array().context("a list")?;
    ensure!(inbox.len() == 1 && inbox[0]["subject"] == "After the restart", "{inbox:?}");
    Ok(())
}

#[test]
fn a_node_started_while_every_peer_is_down_joins_when_one_returns() -> Result<()> {
    let config = ClusterConfig {
        settings: vec![("bootstrap_timeout_secs", "2".into())],
        ..ClusterConfig::default()
    };
    let mut cluster = Cluster::start(2, &config)?;
    // Node 0 moves to a fixed port, and node 1 learns it there.
    let port = free_port()?;
    cluster.nodes[0].stop()?;
    let path = cluster.nodes[0].dir.join("config.toml");
    let text = std::fs::read_to_string(&path)?.replace(
        "listen = [\"/ip4/127.0.0.1/tcp/0\"]",
        &format!("listen = [\"/ip4/127.0.0.1/tcp/{port}\"]"),
    );
    ensure!(text.contains(&format!("tcp/{port}")), "no listen line in config.toml:\n{text}");
    std::fs::write(&path, text)?;
    cluster.nodes[0].start()?;
    cluster.nodes[1].stop()?;
    cluster.restart(1)?;
    cluster.wait_connected()?;

    // Both down; node 1 comes back first, on a new port of its own, so
    // only its own retrying can bring the two together again.
    cluster.nodes[1].stop()?;
    cluster.nodes[0].stop()?;
    cluster.nodes[1].start()?;
    let status = cluster.nodes[1].cli_json(&["status"])?;
    ensure!(status["joining"]["state"] == "retrying", "{status}");
    cluster.nodes[0].start()?;
    let status = cluster.nodes[1].cli_json(&["status", "--wait-peers", "1", "--timeout", "90"])?;
    ensure!(status["peers"].as_u64() == Some(1), "{status}");
    ensure!(status["joining"]["state"] == "joined", "{status}");
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
