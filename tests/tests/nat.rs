//! The NAT scenario of `tools/nat`, CI-sized: two servers on a public
//! segment, two home nodes each behind its own NAT router (MASQUERADE, no
//! port forwards), real `epost` processes in network namespaces. Mail
//! alice (home 1) -> bob (home 2) through the SMTP and IMAP gateways and an
//! object put on one home and read on the other; then the first server is
//! SIGKILLed and mail must still flow both ways, exactly once, with the
//! homes connected to each other (relayed or direct).
//!
//! Needs root, network namespaces and iptables (CI has them: `.ci/run`
//! installs iptables); without them the script says why and exits 77, and
//! this test reports the skip and passes. A node without NAT traversal
//! (AutoNAT, circuit relay, hole punching) fails it: the homes never
//! connect, and mail whose fragments sat on the dead server and the other
//! home is lost.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use epost_e2e::{epost_bin, run};
use serde_json::Value;

/// The script's exit code when the topology cannot be built here.
const SKIPPED: i32 = 77;

/// Parses the script's last line, `sent=<n> delivered=<n> ... home_link=<kind>
/// reachable_secs=<h1>,<h2>`, into its fields.
fn verdict(stdout: &str) -> Result<BTreeMap<String, String>> {
    let last = stdout.lines().last().context("the NAT script printed nothing")?;
    let mut fields = BTreeMap::new();
    for field in last.split_whitespace() {
        let (name, value) =
            field.split_once('=').with_context(|| format!("expected name=value in {last:?}"))?;
        fields.insert(name.to_owned(), value.to_owned());
    }
    for name in ["sent", "delivered", "lost", "duplicated", "corrupt", "objects", "home_link"] {
        ensure!(fields.contains_key(name), "no {name}= in {last:?}");
    }
    Ok(fields)
}

fn count(fields: &BTreeMap<String, String>, name: &str) -> Result<u64> {
    fields[name].parse().with_context(|| format!("{name} is not a number: {fields:?}"))
}

#[test]
fn homes_behind_nat_exchange_mail_and_objects_and_survive_the_loss_of_a_server() -> Result<()> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("no repository root")?;
    let script = repo.join("tools/nat");
    let dir = tempfile::tempdir()?;
    let figures_path = dir.path().join("figures.json");
    let out = run(Command::new("python3").arg(&script).args([
        "--quick",
        "--bin",
        epost_bin()?.to_str().context("binary path")?,
        "--json-out",
        figures_path.to_str().context("path")?,
    ]))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(SKIPPED) {
        eprintln!("NAT scenario skipped: {}", stdout.trim());
        return Ok(());
    }
    let fields = verdict(&stdout).with_context(|| format!("{stdout}\n{stderr}"))?;
    let (sent, delivered) = (count(&fields, "sent")?, count(&fields, "delivered")?);
    let lost = count(&fields, "lost")?;
    ensure!(lost == 0, "{lost} acknowledged mails lost:\n{stdout}\n{stderr}");
    ensure!(count(&fields, "duplicated")? == 0, "mail duplicated:\n{stdout}\n{stderr}");
    ensure!(count(&fields, "corrupt")? == 0, "mail changed on the way:\n{stdout}\n{stderr}");
    ensure!(sent == 3 && delivered == 3, "sent={sent} delivered={delivered}:\n{stdout}");
    ensure!(fields["objects"] == "1/1", "the object did not read back:\n{stdout}\n{stderr}");
    ensure!(
        matches!(fields["home_link"].as_str(), "relayed" | "direct" | "direct+relayed"),
        "the homes never connected to each other (home_link={}):\n{stdout}\n{stderr}",
        fields["home_link"]
    );
    ensure!(out.status.success(), "the NAT run failed ({}):\n{stdout}\n{stderr}", out.status);

    // The homes really were behind NAT: the first server saw their TCP
    // and UDP only from their routers' public addresses, and no node's
    // connection from a LAN address.
    let figures: Value = serde_json::from_slice(&std::fs::read(&figures_path)?)?;
    for proto in ["tcp", "udp"] {
        let seen = &figures["nat_seen_from"][proto];
        ensure!(seen["h1"] == "203.0.113.21" && seen["h2"] == "203.0.113.22", "{figures}");
    }
    let peers = figures["s1_peers_seen_from"].as_array().context("no s1_peers_seen_from")?;
    ensure!(
        !peers.iter().any(|p| p.as_str().is_some_and(|p| p.starts_with("10."))),
        "s1 saw a LAN address: {figures}"
    );
    ensure!(figures["failures"].as_array().is_some_and(Vec::is_empty), "{figures}");
    Ok(())
}
