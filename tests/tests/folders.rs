//! `epost folder` and `epost import --create` on real `epost node run`
//! processes: folders made, renamed and deleted from the command line are
//! what an IMAP client (Python's imaplib) lists, with their messages;
//! subscriptions of names outlive DELETE and a restart of the node.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use epost_e2e::cluster::{Cluster, ClusterConfig, ClusterNode};
use epost_e2e::{realm, run};
use serde_json::Value;

const USER: &str = "alice@example.test";
const PASSWORD: &str = "alice-correct-horse";

/// The folders an IMAP client sees, each with its message count.
fn imap_folders(node: &ClusterNode) -> Result<Vec<(String, u64)>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/imap_folders.py");
    let out = run(std::process::Command::new("python3").args([
        script.to_str().context("path")?,
        &node.gateway("imap")?,
        USER,
        PASSWORD,
    ]))?;
    ensure!(out.status.success(), "imaplib failed: {}", String::from_utf8_lossy(&out.stderr));
    let mut folders = Vec::new();
    for line in String::from_utf8(out.stdout)?.lines() {
        let (name, count) = line.split_once('\t').context("name TAB count")?;
        folders.push((name.to_owned(), count.parse()?));
    }
    Ok(folders)
}

/// `epost folder list --json` as (name, messages) pairs.
fn cli_folders(node: &ClusterNode) -> Result<Vec<(String, u64)>> {
    let list = node.cli_json(&["folder", "list", "--user", USER])?;
    list.as_array()
        .context("a list")?
        .iter()
        .map(|f| {
            let name = f["name"].as_str().context("name")?.to_owned();
            Ok((name, f["messages"].as_u64().context("messages")?))
        })
        .collect()
}

fn has(folders: &[(String, u64)], name: &str, messages: u64) -> bool {
    folders.iter().any(|(n, m)| n == name && *m == messages)
}

fn named(folders: &[(String, u64)], name: &str) -> bool {
    folders.iter().any(|(n, _)| n == name)
}

#[test]
fn folders_made_renamed_and_deleted_by_the_cli_are_what_imap_lists() -> Result<()> {
    let cluster = Cluster::start(3, &ClusterConfig::default())?;
    let node = &cluster.nodes[0];
    realm::realm(&cluster)?;
    realm::host(&cluster, USER, PASSWORD, 0)?;
    let dir = tempfile::tempdir()?;

    // create: a new, empty, subscribed folder; a second create is refused.
    let made = node.cli_json(&["folder", "create", "--user", USER, "Lists/rust"])?;
    ensure!(made["name"] == "Lists/rust" && made["messages"] == 0, "{made}");
    ensure!(made["subscribed"] == Value::Bool(true), "{made}");
    let again = epost_e2e::run(epost_e2e::epost(&node.dir)?.args([
        "folder",
        "create",
        "--user",
        USER,
        "Lists/rust",
    ]))?;
    ensure!(!again.status.success(), "a second create succeeded");
    ensure!(String::from_utf8_lossy(&again.stderr).contains("exists"), "{again:?}");

    // import into a folder that is not there: refused without --create,
    // made with it.
    let mbox = dir.path().join("in.mbox");
    let maker = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/make_mbox.py");
    let made = run(std::process::Command::new("python3").args([
        maker.to_str().context("path")?,
        mbox.to_str().context("path")?,
        "12",
    ]))?;
    ensure!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let mbox = mbox.to_str().context("path")?;
    let import = |extra: &[&str]| {
        let mut args = vec!["import", "--user", USER, "--folder", "Projects"];
        args.extend_from_slice(extra);
        args.extend(["mbox", mbox]);
        epost_e2e::run(epost_e2e::epost(&node.dir)?.args(&args))
    };
    let refused = import(&[])?;
    ensure!(!refused.status.success(), "an import made a folder without --create");
    ensure!(!named(&cli_folders(node)?, "Projects"), "the refused import left a folder");
    let imported = import(&["--create"])?;
    ensure!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));

    let listed = cli_folders(node)?;
    ensure!(has(&listed, "Projects", 12) && has(&listed, "Lists/rust", 0), "{listed:?}");
    let seen = imap_folders(node)?;
    ensure!(has(&seen, "Projects", 12) && has(&seen, "Lists/rust", 0), "IMAP sees {seen:?}");

    // rename: the messages go with the folder.
    let renamed =
        node.cli_json(&["folder", "rename", "--user", USER, "Projects", "Old/Projects"])?;
    ensure!(renamed["name"] == "Old/Projects" && renamed["messages"] == 12, "{renamed}");
    let seen = imap_folders(node)?;
    ensure!(has(&seen, "Old/Projects", 12) && !named(&seen, "Projects"), "IMAP sees {seen:?}");

    // delete: gone for IMAP too; INBOX cannot be deleted.
    let deleted = node.cli_json(&["folder", "delete", "--user", USER, "Old/Projects"])?;
    ensure!(deleted["name"] == "Old/Projects" && deleted["messages"] == 12, "{deleted}");
    node.cli(&["folder", "delete", "--user", USER, "Lists/rust"])?;
    let seen = imap_folders(node)?;
    ensure!(
        !named(&seen, "Old/Projects") && !named(&seen, "Lists/rust") && named(&seen, "INBOX"),
        "IMAP sees {seen:?}"
    );
    let inbox = epost_e2e::run(
        epost_e2e::epost(&node.dir)?.args(["folder", "delete", "--user", USER, "INBOX"]),
    )?;
    ensure!(!inbox.status.success(), "INBOX was deleted");
    ensure!(named(&cli_folders(node)?, "INBOX"), "INBOX is gone");
    Ok(())
}

/// LIST (SUBSCRIBED) through Python's imaplib, after the `make` or for the
/// `show` step of `py/imap_subscriptions.py`.
fn imap_subscriptions(node: &ClusterNode, step: &str) -> Result<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/imap_subscriptions.py");
    let out = run(std::process::Command::new("python3").args([
        script.to_str().context("path")?,
        &node.gateway("imap")?,
        USER,
        PASSWORD,
        step,
    ]))?;
    ensure!(out.status.success(), "imaplib failed: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8(out.stdout)?)
}

#[test]
fn subscriptions_of_names_outlive_delete_and_a_restart() -> Result<()> {
    let mut cluster = Cluster::start(3, &ClusterConfig::default())?;
    realm::realm(&cluster)?;
    realm::host(&cluster, USER, PASSWORD, 0)?;
    imap_subscriptions(&cluster.nodes[0], "make")?;
    let before = imap_subscriptions(&cluster.nodes[0], "show")?;
    // Replayed from the mail log after a restart, the same.
    cluster.nodes[0].stop()?;
    cluster.restart(0)?;
    cluster.wait_connected()?;
    let after = imap_subscriptions(&cluster.nodes[0], "show")?;
    ensure!(before == after, "before:\n{before}\nafter:\n{after}");
    let lines: Vec<&str> = after.lines().collect();
    let has = |want: &str| lines.contains(&want);
    ensure!(has(r#"LIST (\NonExistent \Subscribed \HasNoChildren) "/" Old/Box"#), "{after}");
    ensure!(has(r#"LIST (\NonExistent \Subscribed \HasNoChildren) "/" Never/Made"#), "{after}");
    ensure!(has(r#"LIST (\Subscribed \HasNoChildren) "/" INBOX"#), "{after}");
    ensure!(has("STATUS INBOX (MESSAGES 0)"), "{after}");
    ensure!(!after.contains("Plain") && !after.contains("STATUS Old"), "{after}");
    // No limit per user on a node: no quota root.
    ensure!(has("QUOTAROOT INBOX"), "{after}");
    Ok(())
}
