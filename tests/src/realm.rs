//! A realm and its users on a [`Cluster`], as an operator sets them up
//! with the CLI, and a mail client's view of a user's INBOX over IMAP.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, ensure};

use crate::cluster::{Cluster, ClusterNode};
use crate::{last_line, run};

/// The test realm's mail domain.
pub const DOMAIN: &str = "example.test";

/// Makes the realm on node 0 and has every node trust it; returns its key.
pub fn realm(cluster: &Cluster) -> Result<String> {
    realm_on(cluster, 0, DOMAIN, 0..cluster.nodes.len())
}

/// Makes realm `domain` on node `on` and has the nodes `trusted_by` trust
/// it for `domain`; returns its key.
pub fn realm_on(
    cluster: &Cluster,
    on: usize,
    domain: &str,
    trusted_by: impl IntoIterator<Item = usize>,
) -> Result<String> {
    let key = last_line(&cluster.nodes[on].cli(&["realm", "init", domain])?)?;
    for node in trusted_by {
        cluster.nodes[node].cli(&["realm", "trust", &key, "--domain", domain])?;
    }
    Ok(key)
}

/// Adds `address` on node 0 (which holds the realm key) with `password`,
/// and moves it to node `home` with `user export` and `user import`: the
/// password travels in the bundle.
pub fn host(cluster: &Cluster, address: &str, password: &str, home: usize) -> Result<()> {
    let first = &cluster.nodes[0];
    first.cli_input(&["user", "add", address, "--password-stdin"], password.as_bytes())?;
    if home != 0 {
        let bundle = first.cli(&["user", "export", address])?;
        cluster.nodes[home].cli_input(&["user", "import", "-"], bundle.as_bytes())?;
        first.cli(&["user", "remove", address])?;
    }
    Ok(())
}

fn imap(node: &ClusterNode, user: &str, password: &str, action: &[&str]) -> Result<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/imap_digest.py");
    let imap = node.gateway("imap")?;
    let mut args = vec![script.to_str().context("path")?, &imap, user, password];
    args.extend_from_slice(action);
    let out = run(std::process::Command::new("python3").args(&args))?;
    ensure!(
        out.status.success(),
        "IMAP as {user} on {imap}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// UID -> SHA-256 of BODY[] of every message in `user`'s INBOX, as Python's
/// imaplib reads them from `node`'s gateway.
pub fn inbox_digests(
    node: &ClusterNode,
    user: &str,
    password: &str,
) -> Result<BTreeMap<u32, String>> {
    let text = imap(node, user, password, &["digest"])?;
    let map: BTreeMap<String, String> = serde_json::from_str(&text)?;
    map.into_iter().map(|(uid, digest)| Ok((uid.parse()?, digest))).collect()
}

/// Deletes one message of `user`'s INBOX as a mail client does (STORE
/// \Deleted, EXPUNGE).
pub fn expunge(node: &ClusterNode, user: &str, password: &str, uid: u32) -> Result<()> {
    imap(node, user, password, &["expunge", &uid.to_string()]).map(drop)
}
