//! Mail that is still there a year and a half later, on real processes
//! whose clocks are moved forward months at a time (`EPOST_CLOCK_SKEW_SECS`,
//! the whole network restarted at each step):
//!
//! - every message of every user reads back byte for byte over IMAP, and
//!   `epost check` shows every object of every message at full redundancy,
//!   through three lease lengths (180 days each);
//! - bob's node is off for 90 days in the middle; mail sent to him then
//!   waits for him, and all his mail is there when he returns;
//! - a message carol expunged is collected from every holder once its
//!   lease ends, while the attachment it shared with a message she keeps
//!   stays;
//! - mail still flows at day 540, after the certificates issued at day 0
//!   ended: the realm renewed them and the hosting nodes took them up;
//! - a node killed with SIGKILL in the middle of a renewal pass, several
//!   times, skips nothing for good: after the lease, all its mail reads.

use std::collections::BTreeMap;

use anyhow::{Context, Result, ensure};
use epost_e2e::cluster::{Cluster, ClusterConfig};
use epost_e2e::realm::{self, DOMAIN};
use serde_json::Value;

const DAY: i64 = 24 * 3600;

struct User {
    address: String,
    password: String,
    home: usize,
}

fn user(name: &str, home: usize) -> User {
    User { address: format!("{name}@{DOMAIN}"), password: format!("{name}-pw"), home }
}

/// Sends a message with an optional attachment through `from`'s node.
fn send(
    cluster: &Cluster,
    from: &User,
    to: &User,
    subject: &str,
    attach: Option<&std::path::Path>,
) -> Result<()> {
    let mut args = vec!["send", "--from", &from.address, "--to", &to.address, "--subject", subject];
    let path;
    if let Some(file) = attach {
        path = file.to_str().context("path")?.to_owned();
        args.extend(["--attach", &path]);
    }
    cluster.nodes[from.home].cli_input(&args, format!("{subject}\n").as_bytes())?;
    Ok(())
}

/// What a network does with time: every running node renews, then
/// repairs and collects what expired, and renews again, until a renewal
/// finds every fragment of everything each node holds. A peer that
/// vanished is only taken for gone once it stayed away past the grace,
/// its fragments are rebuilt elsewhere and the others moved to their new
/// places over the next passes: a few rounds, never more than four.
fn renew_and_repair(cluster: &Cluster) -> Result<()> {
    for node in cluster.alive() {
        node.cli_json(&["renew"])?;
    }
    let mut last = Vec::new();
    for _round in 0..4 {
        let mut repairs = Vec::new();
        for node in cluster.alive() {
            repairs.push(node.cli_json(&["repair"])?);
        }
        last.clear();
        for node in cluster.alive() {
            let report = node.cli_json(&["renew"])?;
            if report["failed"] != 0 {
                last.push(format!("{}: {report}; repairs {repairs:?}", node.dir.display()));
            }
        }
        if last.is_empty() {
            return Ok(());
        }
        // A peer that does not answer is taken for gone only once the
        // grace period (one second here) has passed since it first
        // failed: that is wall time to let pass, not an event to wait on.
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    anyhow::bail!("renewal still leaves objects short after four rounds:\n{}", last.join("\n"))
}

fn restart_all(cluster: &mut Cluster, day: i64, off: &[usize]) -> Result<()> {
    for node in &mut cluster.nodes {
        node.stop()?;
    }
    for i in 0..cluster.nodes.len() {
        if !off.contains(&i) {
            cluster.nodes[i].clock_skew_secs = day * DAY;
            cluster.restart(i)?;
        }
    }
    cluster.wait_connected()
}

/// `user`'s INBOX once it holds `n` messages (or after a minute).
fn wait_inbox(cluster: &Cluster, user: &User, n: usize) -> Result<Value> {
    cluster.nodes[user.home].cli_json(&[
        "inbox",
        "--user",
        &user.address,
        "--wait-messages",
        &n.to_string(),
        "--timeout",
        "60",
    ])
}

fn message_check(cluster: &Cluster, user: &User, uid: u32) -> Result<Value> {
    cluster.nodes[user.home].cli_json(&[
        "check",
        "--user",
        &user.address,
        "--uid",
        &uid.to_string(),
    ])
}

fn attachment(dir: &std::path::Path, name: &str, seed: u32) -> Result<std::path::PathBuf> {
    let path = dir.join(name);
    let bytes: Vec<u8> = (0..60_000u32).map(|i| (i.wrapping_mul(seed) % 251) as u8).collect();
    std::fs::write(&path, bytes)?;
    Ok(path)
}

#[test]
fn mail_outlives_three_leases_an_absent_owner_and_an_expunge() -> Result<()> {
    let mut cluster = Cluster::start(5, &ClusterConfig::default())?;
    realm::realm(&cluster)?;
    let (alice, bob, carol) = (user("alice", 0), user("bob", 1), user("carol", 2));
    for u in [&alice, &bob, &carol] {
        realm::host(&cluster, &u.address, &u.password, u.home)?;
    }
    let dir = tempfile::tempdir()?;
    let shared = attachment(dir.path(), "shared.bin", 7)?;
    let own = attachment(dir.path(), "own.bin", 13)?;
    send(&cluster, &alice, &bob, "to bob", None)?;
    send(&cluster, &bob, &alice, "to alice", Some(&shared))?;
    send(&cluster, &alice, &carol, "kept by carol", Some(&shared))?;
    send(&cluster, &alice, &carol, "expunged by carol", Some(&own))?;
    // Wait for delivery (the recipients' nodes file it).
    let mut expected: BTreeMap<String, BTreeMap<u32, String>> = BTreeMap::new();
    for (u, n) in [(&alice, 1), (&bob, 1), (&carol, 2)] {
        let inbox = wait_inbox(&cluster, u, n)?;
        ensure!(inbox.as_array().map_or(0, Vec::len) == n, "{} has {inbox}", u.address);
        expected.insert(
            u.address.clone(),
            realm::inbox_digests(&cluster.nodes[u.home], &u.address, &u.password)?,
        );
    }
    // Carol deletes one message: note its objects first.
    let carol_inbox = cluster.nodes[carol.home].cli_json(&["inbox", "--user", &carol.address])?;
    let uid_of = |subject: &str| -> Result<u32> {
        carol_inbox
            .as_array()
            .and_then(|list| list.iter().find(|m| m["subject"] == subject))
            .and_then(|m| m["uid"].as_u64())
            .map(|uid| uid as u32)
            .with_context(|| format!("carol has no {subject:?}"))
    };
    let doomed = uid_of("expunged by carol")?;
    let doomed_objects: Vec<String> = message_check(&cluster, &carol, doomed)?["details"]
        .as_array()
        .context("details")?
        .iter()
        .filter_map(|d| d["id"].as_str().map(str::to_owned))
        .collect();
    ensure!(doomed_objects.len() >= 2, "a manifest and an attachment: {doomed_objects:?}");
    // The attachment alice sent carol from node 0 and the one bob sent
    // alice from node 1 are one object: the realm seals under one secret,
    // whichever node stores its mail.
    let kept = message_check(&cluster, &carol, uid_of("kept by carol")?)?;
    let bob_copy = message_check(&cluster, &alice, 1)?;
    let ids = |c: &Value| -> Vec<String> {
        c["details"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["id"].as_str().map(str::to_owned))
            .collect()
    };
    ensure!(
        ids(&kept).iter().any(|id| ids(&bob_copy).contains(id)),
        "the shared attachment is stored twice:\n{kept}\n{bob_copy}"
    );
    realm::expunge(&cluster.nodes[carol.home], &carol.address, &carol.password, doomed)?;
    expected.get_mut(&carol.address).context("carol")?.remove(&doomed);

    // (day, nodes off): bob's node is off from day 135 to day 225.
    let steps: [(i64, &[usize]); 7] =
        [(90, &[]), (135, &[1]), (225, &[]), (300, &[]), (390, &[]), (470, &[]), (540, &[])];
    for (day, off) in steps {
        restart_all(&mut cluster, day, off)?;
        if day == 135 {
            // For bob while he is away: held by the overlay for him.
            send(&cluster, &alice, &bob, "while bob was away", None)?;
        }
        renew_and_repair(&cluster)?;
        if day == 225 {
            let bob_node = &cluster.nodes[bob.home];
            let inbox = wait_inbox(&cluster, &bob, 2)?;
            ensure!(
                inbox
                    .as_array()
                    .is_some_and(|l| l.iter().any(|m| m["subject"] == "while bob was away")),
                "bob's mail from his absence did not reach him: {inbox}"
            );
            let now = realm::inbox_digests(bob_node, &bob.address, &bob.password)?;
            let bob_expected = expected.get_mut(&bob.address).context("bob")?;
            for (uid, digest) in now {
                bob_expected.entry(uid).or_insert(digest);
            }
        }
        for u in [&alice, &bob, &carol] {
            if off.contains(&u.home) {
                continue;
            }
            let now = realm::inbox_digests(&cluster.nodes[u.home], &u.address, &u.password)?;
            ensure!(
                Some(&now) == expected.get(&u.address),
                "day {day}: {}'s INBOX is not what it was:\nnow {now:?}\nexpected {:?}",
                u.address,
                expected.get(&u.address)
            );
            if off.is_empty() {
                for uid in now.keys() {
                    let check = message_check(&cluster, u, *uid)?;
                    ensure!(
                        check["fragments_alive"] == check["fragments_total"],
                        "day {day}: {}'s message {uid} is not at full redundancy: {check}",
                        u.address
                    );
                }
            }
        }
        if day >= 225 {
            // The expunged message's objects were last renewed at day 0:
            // gone from every holder once that lease ended (day 180).
            for id in &doomed_objects {
                let check = cluster.nodes[carol.home].cli_json(&["check", id])?;
                let alive = check["fragments_alive"].as_u64().unwrap_or(u64::MAX);
                ensure!(alive == 0, "day {day}: expunged object {id} still has {alive} fragments");
            }
        }
    }
    // The certificates issued at day 0 ended at day 365: mail still goes
    // from node 0 to node 2 at day 540 only if the realm renewed them and
    // the hosting nodes took the renewals up.
    send(&cluster, &alice, &carol, "a year and a half on", None)?;
    let inbox = wait_inbox(&cluster, &carol, 2)?;
    ensure!(
        inbox.as_array().is_some_and(|l| l.iter().any(|m| m["subject"] == "a year and a half on")),
        "day 540: mail between two nodes did not arrive: {inbox}"
    );
    Ok(())
}

#[test]
fn renewal_killed_mid_pass_skips_nothing_for_good() -> Result<()> {
    // A slow renewal (20 objects a second) so the pass is caught midway.
    let config = ClusterConfig {
        settings: vec![("renew_rate", "20".to_owned())],
        ..ClusterConfig::default()
    };
    let mut cluster = Cluster::start(4, &config)?;
    realm::realm(&cluster)?;
    let alice = user("alice", 0);
    realm::host(&cluster, &alice.address, &alice.password, 0)?;
    // 150 messages, in one import.
    let dir = tempfile::tempdir()?;
    let mbox = dir.path().join("many.mbox");
    let mut text = String::new();
    for i in 0..150 {
        text.push_str(&format!(
            "From sender@example.org Mon Jan  1 00:00:00 2024\nFrom: sender@example.org\nSubject: number {i}\n\nbody {i}\n\n"
        ));
    }
    std::fs::write(&mbox, text)?;
    cluster.nodes[0].cli(&[
        "import",
        "--user",
        &alice.address,
        "mbox",
        mbox.to_str().context("path")?,
    ])?;
    let before = realm::inbox_digests(&cluster.nodes[0], &alice.address, &alice.password)?;
    ensure!(before.len() == 150, "{} messages imported", before.len());

    // 40 days on, everything is due; the pass at start is killed three
    // times once it has renewed some more.
    for kill in 0..3u64 {
        cluster.nodes[0].stop()?;
        cluster.nodes[0].clock_skew_secs = 40 * DAY;
        cluster.restart(0)?;
        let node = &mut cluster.nodes[0];
        let progress =
            node.cli_json(&["renew", "--progress", "--wait-renewed", "20", "--timeout", "120"])?;
        ensure!(progress["running"] == true, "kill {kill}: no pass under way: {progress}");
        node.kill()?;
    }
    cluster.restart(0)?;
    cluster.wait_connected()?;
    // A pass asked for now runs after the one at start: nothing is left due.
    let report = cluster.nodes[0].cli_json(&["renew"])?;
    ensure!(report["failed"] == 0, "{report}");

    // Past the lease every object had at day 0: whatever the kills made
    // the node skip would be gone now.
    for node in &mut cluster.nodes {
        node.stop()?;
    }
    for i in 0..cluster.nodes.len() {
        cluster.nodes[i].clock_skew_secs = 190 * DAY;
        cluster.restart(i)?;
    }
    cluster.wait_connected()?;
    for node in cluster.alive() {
        node.cli_json(&["repair"])?;
    }
    let after = realm::inbox_digests(&cluster.nodes[0], &alice.address, &alice.password)?;
    ensure!(after == before, "messages lost or changed after the kills");
    Ok(())
}
