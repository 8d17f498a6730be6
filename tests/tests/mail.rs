//! Mail through the gateways of real `epost node run` processes, with
//! Python's smtplib, imaplib and poplib: alice (node 0) submits with AUTH
//! to bob (node 2) and carol (node 1); bob's IMAP IDLE sees it arrive and
//! FETCH returns the exact bytes; carol's POP3 RETR too.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use epost_e2e::cluster::{Cluster, ClusterConfig, ClusterNode};
use epost_e2e::run;

fn last_line(out: &str) -> Result<String> {
    out.lines().last().map(str::to_owned).context("no output")
}

fn addr(node: &ClusterNode, key: &str) -> Result<String> {
    node.info[key].as_str().map(str::to_owned).with_context(|| format!("node.json has no {key}"))
}

/// Adds `address` on node 0 (which holds the realm key) and moves it to
/// `home` with `user export` / `user import`.
fn host(cluster: &Cluster, address: &str, password: &str, home: usize) -> Result<()> {
    let first = &cluster.nodes[0];
    first.cli_input(&["user", "add", address, "--password-stdin"], password.as_bytes())?;
    if home != 0 {
        let bundle = first.cli(&["user", "export", address])?;
        let target = &cluster.nodes[home];
        target.cli_input(&["user", "import", "-"], bundle.as_bytes())?;
        target.cli_input(&["user", "passwd", address], password.as_bytes())?;
        first.cli(&["user", "remove", address])?;
    }
    Ok(())
}

#[test]
fn submission_idle_fetch_and_pop3_across_nodes_with_real_clients() -> Result<()> {
    let cluster = Cluster::start(3, &ClusterConfig::default())?;
    let key = last_line(&cluster.nodes[0].cli(&["realm", "init", "example.test"])?)?;
    for node in &cluster.nodes {
        node.cli(&["realm", "trust", &key, "--domain", "example.test"])?;
    }
    let users = [("alice", 0), ("bob", 2), ("carol", 1)];
    let dir = tempfile::tempdir()?;
    let secrets = dir.path().join("passwords");
    let mut lines = String::new();
    for (name, home) in users {
        let address = format!("{name}@example.test");
        let password = format!("{name}-correct-horse");
        host(&cluster, &address, &password, home)?;
        lines.push_str(&format!("{address} {password}\n"));
    }
    std::fs::write(&secrets, lines)?;

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/mail_e2e.py");
    let out = run(std::process::Command::new("python3").args([
        script.to_str().context("path")?,
        &addr(&cluster.nodes[0], "submission")?,
        &addr(&cluster.nodes[2], "imap")?,
        &addr(&cluster.nodes[1], "pop3")?,
        secrets.to_str().context("path")?,
    ]))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "the mail clients failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
