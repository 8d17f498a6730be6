//! The storage network with real `epost node run` processes on loopback:
//! objects put through several nodes survive losing 4 of 10 nodes, come
//! back to full redundancy by repair, and nothing flaps when the lost nodes
//! return.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result, ensure};
use epost_e2e::cluster::{Cluster, ClusterConfig, ClusterNode};
use serde_json::Value;

/// Deterministic content: each object differs, and a wrong byte shows.
fn content(i: usize, len: usize) -> Vec<u8> {
    let mut state = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// 100 sizes from 0 bytes to 8 MiB, spread geometrically.
fn sizes() -> Vec<usize> {
    let max = 8.0 * 1024.0 * 1024.0_f64;
    (0..100).map(|i| if i == 0 { 0 } else { max.powf(i as f64 / 99.0) as usize }).collect()
}

fn put(node: &ClusterNode, file: &Path) -> Result<String> {
    let out = node.cli(&["put", file.to_str().context("path")?])?;
    out.lines().last().map(str::to_owned).context("put printed nothing")
}

fn get(node: &ClusterNode, cap: &str, out: &Path) -> Result<Vec<u8>> {
    node.cli(&["get", cap, "-o", out.to_str().context("path")?])?;
    Ok(std::fs::read(out)?)
}

fn check(node: &ClusterNode, cap: &str) -> Result<Value> {
    node.cli_json(&["check", cap])
}

fn all_full(node: &ClusterNode, caps: &[String]) -> Result<Vec<String>> {
    let mut short = Vec::new();
    for cap in caps {
        let report = check(node, cap)?;
        if report["fragments_alive"] != report["fragments_total"] {
            short.push(format!(
                "{cap}: {}/{}",
                report["fragments_alive"], report["fragments_total"]
            ));
        }
    }
    Ok(short)
}

/// Repair passes on every live node until every object is at full
/// redundancy (bounded: each round is real work, and the grace period is 1 s).
fn repair_until_full(cluster: &Cluster, caps: &[String]) -> Result<u64> {
    let mut repaired = 0;
    for _round in 0..30 {
        for node in cluster.alive() {
            repaired += node.cli_json(&["repair"])?["fragments_repaired"].as_u64().unwrap_or(0);
        }
        let checker = cluster.alive().next().context("no node alive")?;
        if all_full(checker, caps)?.is_empty() {
            return Ok(repaired);
        }
    }
    let checker = cluster.alive().next().context("no node alive")?;
    anyhow::bail!("not back to full redundancy after 30 rounds: {:?}", all_full(checker, caps)?)
}

#[test]
fn ten_nodes_lose_four_and_nothing_is_lost() -> Result<()> {
    let mut cluster = Cluster::start(10, &ClusterConfig::default())?;
    let work = tempfile::tempdir()?;
    let sizes = sizes();
    let mut caps = Vec::new();
    for (i, len) in sizes.iter().enumerate() {
        let file = work.path().join(format!("in{i}"));
        std::fs::write(&file, content(i, *len))?;
        caps.push(put(&cluster.nodes[i % 10], &file)?);
    }
    let distinct: BTreeSet<&String> = caps.iter().collect();
    ensure!(distinct.len() == caps.len(), "distinct contents must give distinct capabilities");
    ensure!(
        all_full(&cluster.nodes[0], &caps)?.is_empty(),
        "every object starts at full redundancy"
    );

    for node in &mut cluster.nodes[6..] {
        node.kill()?;
    }
    let out = work.path().join("out");
    for (i, cap) in caps.iter().enumerate() {
        let data = get(&cluster.nodes[i % 6], cap, &out)?;
        ensure!(data == content(i, sizes[i]), "object {i} ({} bytes) read back wrong", sizes[i]);
    }

    let repaired = repair_until_full(&cluster, &caps)?;
    ensure!(repaired > 0, "losing 4 nodes must have needed repairs");

    // The lost nodes come back with their stores: their fragments become
    // excess copies to drop, not a reason to rebuild anything.
    for node in &mut cluster.nodes[6..] {
        node.start()?;
    }
    let mut rebuilt_after_return = 0;
    for _ in 0..2 {
        for node in cluster.alive() {
            rebuilt_after_return +=
                node.cli_json(&["repair"])?["fragments_repaired"].as_u64().unwrap_or(0);
        }
    }
    ensure!(
        rebuilt_after_return == 0,
        "returning nodes caused {rebuilt_after_return} needless rebuilds"
    );
    ensure!(all_full(&cluster.nodes[9], &caps)?.is_empty(), "still full after the nodes returned");
    for (i, cap) in caps.iter().enumerate().step_by(7) {
        ensure!(get(&cluster.nodes[9], cap, &out)? == content(i, sizes[i]));
    }
    Ok(())
}
