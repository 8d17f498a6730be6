//! Notifications between two federated realms, with real processes and
//! the CLI: `notify watch` sees a notification as it arrives, and
//! `notify list` keeps it.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use epost_e2e::cluster::{Cluster, ClusterConfig};
use epost_e2e::{epost, realm};
use serde_json::Value;

#[test]
fn a_notification_crosses_realms_and_is_watched_and_listed() -> Result<()> {
    let cluster = Cluster::start(3, &ClusterConfig::default())?;
    let (a, b) = (&cluster.nodes[0], &cluster.nodes[2]);
    realm::realm_on(&cluster, 0, "example.org", 0..cluster.nodes.len())?;
    realm::realm_on(&cluster, 2, "example.net", 0..cluster.nodes.len())?;
    a.cli(&["user", "add", "alice@example.org"])?;
    b.cli(&["user", "add", "bob@example.net"])?;

    let mut watch = epost(&b.dir)?
        .args(["notify", "watch", "--user", "bob@example.net"])
        .stdout(Stdio::piped())
        .spawn()?;
    let (tx, rx) = mpsc::channel();
    let stdout = watch.stdout.take().context("watch stdout")?;
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The watch is subscribed once the node answered its request; a send
    // before that could be missed, so send until one is seen (bounded).
    let mut seen = None;
    for attempt in 0..20 {
        a.cli(&[
            "notify",
            "send",
            "--from",
            "alice@example.org",
            "--to",
            "bob@example.net",
            &format!("hello {attempt}"),
        ])?;
        if let Ok(line) = rx.recv_timeout(Duration::from_secs(3)) {
            seen = Some(line?);
            break;
        }
    }
    watch.kill()?;
    watch.wait()?;
    let seen: Value = serde_json::from_str(&seen.context("watch saw nothing")?)?;
    ensure!(seen["from"] == "alice@example.org", "{seen}");
    ensure!(seen["to"] == "bob@example.net", "{seen}");

    let listed = b.cli_json(&["notify", "list", "--user", "bob@example.net"])?;
    let listed = listed.as_array().context("a list")?;
    ensure!(listed.iter().any(|n| n["id"] == seen["id"]), "{listed:?}");
    // Bob's notifications are not alice's node's to list.
    ensure!(a.cli(&["notify", "list", "--user", "bob@example.net"]).is_err());
    Ok(())
}
