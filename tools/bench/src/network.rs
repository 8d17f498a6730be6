//! Put and get through a 5-node network on loopback TCP (all nodes in this
//! process, so CPU per operation is the whole network's): 4.7 KB and
//! 1 MiB objects, throughput at 32 concurrent clients and latency at half
//! that load.

use std::fmt::Write;
use std::sync::Arc;

use anyhow::Result;
use epost_testkit::{NetConfig, TestNet};
use epost_types::capability::Capability;

use crate::measure::{Run, drive, payload};

pub(crate) fn run(out: &mut String) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let net = Arc::new(TestNet::start(5, NetConfig::default()).await?);
        let _ = writeln!(out, "## Storage network: 5 nodes on loopback TCP, one process, 4+4 coding\n");
        let _ = writeln!(
            out,
            "| object | op | clients | ops/s | MB/s | p50 ms | p99 ms | CPU ms/op |\n|---|---|---|---|---|---|---|---|"
        );
        for (label, len, ops) in [("4.7 KB", 4700usize, 3000u64), ("1 MiB", 1024 * 1024, 60)] {
            let mut caps: Vec<Capability> = Vec::new();
            for (clients, record) in [(32usize, true), (16, false)] {
                let base = if record { 0 } else { 1_000_000 };
                let put = drive(ops, clients, |i| {
                    let net = net.clone();
                    async move {
                        let node = net.node((i % 5) as usize);
                        node.storage.put_reader(&payload(base + i, len)[..]).await?;
                        Ok(())
                    }
                })
                .await?;
                row(out, label, "put", clients, &put, len);
            }
            for i in 0..ops.min(500) {
                let data = payload(i, len);
                let report = net.node(0).storage.put_reader(&data[..]).await?;
                caps.push(report.capability);
            }
            let caps = Arc::new(caps);
            for clients in [32usize, 16] {
                let get = drive(ops.max(caps.len() as u64), clients, |i| {
                    let net = net.clone();
                    let caps = caps.clone();
                    async move {
                        let cap = &caps[(i as usize) % caps.len()];
                        let mut sink = Vec::with_capacity(len);
                        net.node(((i + 2) % 5) as usize).storage.get_to(cap, &mut sink).await?;
                        anyhow::ensure!(sink.len() == len, "short read");
                        Ok(())
                    }
                })
                .await?;
                row(out, label, "get", clients, &get, len);
            }
        }
        let _ = writeln!(
            out,
            "\nAnchors: NinjaMail's DHT node did 1,000 gets/s and 250 puts/s at 2/4 ms. Target for the whole 5-node network on 2 cores: 2,500 puts/s and 10,000 gets/s of 4.7 KB objects, p99 under 20 ms at half that load.\n"
        );
        if let Ok(net) = Arc::try_unwrap(net) {
            net.shutdown().await;
        }
        Ok(())
    })
}

fn row(out: &mut String, label: &str, op: &str, clients: usize, run: &Run, len: usize) {
    let _ = writeln!(
        out,
        "| {label} | {op} | {clients} | {:.0} | {:.1} | {:.1} | {:.1} | {:.2} |",
        run.ops_per_sec,
        run.ops_per_sec * len as f64 / 1e6,
        run.p50,
        run.p99,
        run.cpu_ms_per_op
    );
}
