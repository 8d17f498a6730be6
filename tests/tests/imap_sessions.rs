//! Sessions of one user on real `epost node run` processes (Python's
//! imaplib and a raw IDLE client): flag and keyword changes, expunges,
//! moves and new mail made in one session reach another in IDLE as they
//! happen, in order, and at NOOP; the user logs in at its home node's
//! gateway only. MULTIAPPEND and CATENATE store all of a command or none.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use epost_e2e::cluster::{Cluster, ClusterConfig};
use epost_e2e::{realm, run};

/// Runs `tests/py/<script>` against a 3-node cluster with `user` hosted
/// on node 0. The script is given node 0's IMAP address, those of the
/// nodes in `others`, then the user and password; unless it ends by
/// printing "ok", fails with `what`.
fn script(script: &str, user: &str, others: &[usize], what: &str) -> Result<()> {
    let cluster = Cluster::start(3, &ClusterConfig::default())?;
    realm::realm(&cluster)?;
    let password = format!("{}-correct-horse", user.split('@').next().unwrap_or(user));
    realm::host(&cluster, user, &password, 0)?;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("py").join(script);
    let mut args =
        vec![path.to_str().context("path")?.to_owned(), cluster.nodes[0].gateway("imap")?];
    for &other in others {
        args.push(cluster.nodes[other].gateway("imap")?);
    }
    args.extend([user.to_owned(), password]);
    let out = run(std::process::Command::new("python3").args(&args))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "{what}:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[test]
fn what_one_session_changes_another_hears_in_idle_and_at_noop() -> Result<()> {
    script("imap_sessions.py", "alice@example.test", &[1], "the sessions disagree")
}

#[test]
fn multiappend_and_catenate_store_all_of_a_command_or_none() -> Result<()> {
    script("imap_append.py", "carol@example.test", &[], "MULTIAPPEND or CATENATE went wrong")
}
