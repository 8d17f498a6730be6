//! The chaos scenario of `tools/chaos`, CI-sized: 8 real nodes in network
//! namespaces of their own (on loopback when namespaces cannot be made),
//! steady SMTP submission through one gateway while 40% of the other nodes
//! are SIGKILLed, the network is partitioned and healed, one node's disk
//! fills and one node's clock is 10 minutes ahead; then 10 SIGKILLs of the
//! gateway's own node during ingest. Nothing acknowledged may be lost or
//! duplicated; the script also fails (non-zero exit) on a delivered message
//! that differs from what was sent, or on objects not back at full
//! redundancy.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, ensure};
use epost_e2e::{epost_bin, run};
use serde_json::Value;

/// Parses the script's last line, `acked=<n> delivered=<n> lost=<n> duplicated=<n>`.
fn verdict(stdout: &str) -> Result<[u64; 4]> {
    let last = stdout.lines().last().context("the chaos script printed nothing")?;
    let mut figures = [0u64; 4];
    let names = ["acked", "delivered", "lost", "duplicated"];
    let fields: Vec<&str> = last.split_whitespace().collect();
    ensure!(fields.len() == names.len(), "unexpected last line {last:?}");
    for ((slot, name), field) in figures.iter_mut().zip(names).zip(fields) {
        let value = field
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('='))
            .with_context(|| format!("expected {name}=<n> in {last:?}"))?;
        *slot = value.parse().with_context(|| format!("{name} is not a number in {last:?}"))?;
    }
    Ok(figures)
}

#[test]
fn acknowledged_mail_survives_kills_partition_full_disk_skewed_clock_and_gateway_crashes()
-> Result<()> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("no repository root")?;
    let script = repo.join("tools/chaos");
    let dir = tempfile::tempdir()?;
    let figures_path = dir.path().join("figures.json");
    let out = run(Command::new("python3").arg(&script).args([
        "--quick",
        "--bin",
        epost_bin()?.to_str().context("binary path")?,
        "--hosts",
        "8",
        "--duration",
        "30",
        "--rate",
        "2",
        "--kills",
        "10",
        "--json-out",
        figures_path.to_str().context("path")?,
    ]))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let [acked, delivered, lost, duplicated] =
        verdict(&stdout).with_context(|| format!("{stdout}\n{stderr}"))?;
    ensure!(lost == 0, "{lost} acknowledged deliveries lost:\n{stdout}\n{stderr}");
    ensure!(duplicated == 0, "{duplicated} deliveries duplicated:\n{stdout}\n{stderr}");
    ensure!(acked > 0 && delivered >= acked, "acked={acked} delivered={delivered}:\n{stdout}");
    ensure!(out.status.success(), "the chaos run failed ({}):\n{stdout}\n{stderr}", out.status);

    // Both phases did their work: mail acknowledged under faults and
    // across the gateway's crashes, every kill made, redundancy restored.
    let figures: Value = serde_json::from_slice(&std::fs::read(&figures_path)?)?;
    ensure!(figures["faults"]["acked"].as_u64() > Some(0), "{figures}");
    ensure!(figures["crash"]["acked"].as_u64() > Some(0), "{figures}");
    ensure!(figures["crash"]["kills"] == 10, "{figures}");
    ensure!(figures["faults"]["repair_secs"].is_number(), "{figures}");
    ensure!(figures["failures"].as_array().is_some_and(Vec::is_empty), "{figures}");
    Ok(())
}
