//! Sessions of one user on real `epost node run` processes (Python's
//! imaplib and a raw IDLE client): flag and keyword changes, expunges,
//! moves and new mail made in one session reach another in IDLE as they
//! happen, in order, and at NOOP; the user logs in at its home node's
//! gateway only. MULTIAPPEND and CATENATE store all of a command or none.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use epost_e2e::cluster::{Cluster, ClusterConfig};
use epost_e2e::{realm, run};

#[test]
fn what_one_session_changes_another_hears_in_idle_and_at_noop() -> Result<()> {
    let cluster = Cluster::start(3, &ClusterConfig::default())?;
    realm::realm(&cluster)?;
    let (user, password) = ("alice@example.test", "alice-correct-horse");
    realm::host(&cluster, user, password, 0)?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/imap_sessions.py");
    let out = run(std::process::Command::new("python3").args([
        script.to_str().context("path")?,
        &cluster.nodes[0].gateway("imap")?,
        &cluster.nodes[1].gateway("imap")?,
        user,
        password,
    ]))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "the sessions disagree:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[test]
fn multiappend_and_catenate_store_all_of_a_command_or_none() -> Result<()> {
    let cluster = Cluster::start(3, &ClusterConfig::default())?;
    realm::realm(&cluster)?;
    let (user, password) = ("carol@example.test", "carol-correct-horse");
    realm::host(&cluster, user, password, 0)?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/imap_append.py");
    let out = run(std::process::Command::new("python3").args([
        script.to_str().context("path")?,
        &cluster.nodes[0].gateway("imap")?,
        user,
        password,
    ]))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "MULTIAPPEND or CATENATE went wrong:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
