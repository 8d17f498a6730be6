//! QUIC against TCP+Noise+Yamux: the same 5-node network on loopback, all
//! in this process, once on each transport, in alternating rounds so both
//! see the same machine load. Puts and gets of 4.7 KB objects and puts of
//! 1 MiB ones, 32 concurrent clients; CPU per operation is the whole
//! network's.

use std::fmt::Write;
use std::sync::Arc;

use anyhow::Result;
use epost_testkit::{NetConfig, TestNet};
use epost_types::capability::Capability;

use crate::measure::{Run, drive, payload};

/// Rounds of the pair (TCP then QUIC, or QUIC then TCP).
const ROUNDS: usize = 3;

pub(crate) fn run(out: &mut String) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let _ = writeln!(out, "## Transports: 5 nodes on loopback, one process, 4+4 coding\n");
    let _ = writeln!(
        out,
        "| round | transport | op | object | ops/s | MB/s | p50 ms | p99 ms | CPU ms/op |\n|---|---|---|---|---|---|---|---|---|"
    );
    for round in 0..ROUNDS {
        let mut order =
            [("TCP+Noise+Yamux", "/ip4/127.0.0.1/tcp/0"), ("QUIC", "/ip4/127.0.0.1/udp/0/quic-v1")];
        if round % 2 == 1 {
            order.reverse();
        }
        for (name, listen) in order {
            let rows = runtime.block_on(one(listen, round as u64))?;
            for (op, label, len, run) in rows {
                row(out, round + 1, name, op, label, len, &run);
            }
        }
    }
    let _ = writeln!(out);
    Ok(())
}

/// One network on `listen`'s transport: its rows.
async fn one(listen: &str, round: u64) -> Result<Vec<(&'static str, &'static str, usize, Run)>> {
    let config = NetConfig { listen: listen.parse()?, ..NetConfig::default() };
    let net = Arc::new(TestNet::start(5, config).await?);
    let mut rows = Vec::new();
    // Different plaintexts each round and transport: no put finds its object stored.
    let base = round * 10_000_000 + if listen.contains("quic") { 5_000_000 } else { 0 };
    for (label, len, ops) in [("4.7 KB", 4700usize, 2000u64), ("1 MiB", 1024 * 1024, 48)] {
        let put = drive(ops, 32, |i| {
            let net = net.clone();
            async move {
                net.node((i % 5) as usize).storage.put_reader(&payload(base + i, len)[..]).await?;
                Ok(())
            }
        })
        .await?;
        rows.push(("put", label, len, put));
    }
    let mut caps: Vec<Capability> = Vec::new();
    for i in 0..300 {
        let report =
            net.node(0).storage.put_reader(&payload(base + 1_000_000 + i, 4700)[..]).await?;
        caps.push(report.capability);
    }
    let caps = Arc::new(caps);
    let get = drive(2000, 32, |i| {
        let net = net.clone();
        let caps = caps.clone();
        async move {
            let cap = &caps[(i as usize) % caps.len()];
            let mut sink = Vec::with_capacity(4700);
            net.node(((i + 2) % 5) as usize).storage.get_to(cap, &mut sink).await?;
            anyhow::ensure!(sink.len() == 4700, "short read");
            Ok(())
        }
    })
    .await?;
    rows.push(("get", "4.7 KB", 4700, get));
    if let Ok(net) = Arc::try_unwrap(net) {
        net.shutdown().await;
    }
    Ok(rows)
}

fn row(out: &mut String, round: usize, name: &str, op: &str, label: &str, len: usize, run: &Run) {
    let _ = writeln!(
        out,
        "| {round} | {name} | {op} | {label} | {:.0} | {:.1} | {:.1} | {:.1} | {:.2} |",
        run.ops_per_sec,
        run.ops_per_sec * len as f64 / 1e6,
        run.p50,
        run.p99,
        run.cpu_ms_per_op
    );
}
