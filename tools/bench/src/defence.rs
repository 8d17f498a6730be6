//! What the defences cost honest peers: puts of 4.7 KB objects through a
//! 5-node network on loopback (one process, production limits), with no
//! rogue and with a rogue that floods one node (every put touches it) with
//! fragment requests from many tasks at once; cut off, each task asks
//! again after 100 ms (every ask redials, and each dial costs the node a
//! handshake before it can tell who is calling). The two
//! run alternately, A then B, several rounds, because this machine's speed
//! swings between runs; what counts is B ÷ A within a round.
//!
//! The rogue runs in the same process on a runtime of its own (one
//! thread, named so its CPU can be told apart): its CPU is part of what
//! the honest puts compete with for the two cores, and is taken out of
//! the nodes' CPU per put.
//!
//! Usage: `cargo run --release -p epost-bench -- defence [--rounds N] [--ops N]`

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::{Context, Result};
use epost_dht::{
    ConnectionRefusal, Dht, DhtConfig, Limited, PeerId, SignedEnvelopeValidator, StartOptions,
};
use epost_testkit::{NetConfig, TestNet};
use epost_types::wire::frag::{FragRequest, FragResponse};

use crate::measure::{Run, drive, payload};

const LEN: usize = 4700;
const CLIENTS: usize = 16;
/// Requests the rogue keeps in flight to node 0.
const FLOOD_TASKS: usize = 256;
/// How long a task of the rogue waits after being cut off.
const REDIAL: std::time::Duration = std::time::Duration::from_millis(100);

struct Options {
    rounds: usize,
    ops: u64,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self> {
        let mut o = Self { rounds: 5, ops: 1500 };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let value = |it: &mut std::slice::Iter<'_, String>| -> Result<u64> {
                it.next().context("a number after the flag")?.parse().context("a number")
            };
            match arg.as_str() {
                "--rounds" => o.rounds = usize::try_from(value(&mut it)?)?,
                "--ops" => o.ops = value(&mut it)?,
                other => anyhow::bail!("unknown option {other:?}; try --rounds N or --ops N"),
            }
        }
        Ok(o)
    }
}

/// What the rogue sent and got.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    served: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
}

struct Rogue {
    overlay: Dht,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// The rogue's own runtime: one thread, named for [`rogue_cpu_seconds`].
struct RogueRuntime(tokio::runtime::Runtime);

const ROGUE_THREAD: &str = "rogue";

impl RogueRuntime {
    fn new() -> Result<Self> {
        Ok(Self(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name(ROGUE_THREAD)
                .enable_all()
                .build()?,
        ))
    }

    /// Starts a rogue on this runtime, joined and idle.
    async fn start(&self, seed: u8, net: &Arc<TestNet>) -> Result<Rogue> {
        let (boot, wanted) = (net.node(0).listen_addrs.clone(), net.len());
        self.0.spawn(Rogue::start(seed, boot, wanted)).await?
    }

    /// Sets `rogue` flooding `target`.
    fn flood(&self, rogue: &mut Rogue, target: PeerId) {
        for t in 0..FLOOD_TASKS {
            let client = rogue.overlay.client.clone();
            let (stop, tally) = (rogue.stop.clone(), rogue.tally.clone());
            rogue.tasks.push(self.0.spawn(async move {
                let mut n = t as u64;
                while !stop.load(Ordering::Relaxed) {
                    n += FLOOD_TASKS as u64;
                    let mut object = [0u8; 32];
                    object[..8].copy_from_slice(&n.to_le_bytes());
                    let probe = FragRequest::Probe { objects: vec![object] };
                    tally.sent.fetch_add(1, Ordering::Relaxed);
                    match client.request(target, probe).await {
                        Ok(FragResponse::Held(_)) => tally.served.fetch_add(1, Ordering::Relaxed),
                        Ok(_) => tally.refused.fetch_add(1, Ordering::Relaxed),
                        Err(_) => {
                            // Not a busy loop on this process's own cores.
                            tokio::time::sleep(REDIAL).await;
                            tally.failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            }));
        }
    }

    async fn stop(&self, rogue: Rogue) -> Result<Arc<Tally>> {
        Ok(self.0.spawn(rogue.stop()).await?)
    }
}

/// CPU seconds the rogue's threads have used so far.
fn rogue_cpu_seconds() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    tasks
        .filter_map(Result::ok)
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == ROGUE_THREAD)
        })
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .filter_map(|stat| {
            let rest: Vec<String> =
                stat.rsplit_once(')')?.1.split_whitespace().map(str::to_owned).collect();
            Some((rest.get(11)?.parse::<f64>().ok()? + rest.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .sum()
}

impl Rogue {
    /// Joins through `boot` and waits until it knows `wanted` peers (it
    /// connected to each, so each has it in its routing table too).
    async fn start(seed: u8, boot: Vec<epost_dht::Multiaddr>, wanted: usize) -> Result<Self> {
        let config = DhtConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
            bootstrap: boot,
            ..DhtConfig::default()
        };
        // Its queues of inbound requests are dropped: stores placed on it
        // are refused (`Internal`) and go to a spare, with or without a flood.
        let (overlay, _inbound) = Dht::start(StartOptions {
            config,
            identity_seed: [seed; 32],
            validator: Arc::new(SignedEnvelopeValidator),
            stored_records: Vec::new(),
            record_writes: None,
            remembered_peers: Vec::new(),
        })
        .await?;
        let client = overlay.client.clone();
        let mut events = client.subscribe();
        while client.status().await.is_some_and(|s| s.known_peers < wanted) {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), events.recv()).await;
        }
        let (stop, tally) = (Arc::new(AtomicBool::new(false)), Arc::new(Tally::default()));
        Ok(Self { overlay, stop, tally, tasks: Vec::new() })
    }

    async fn stop(self) -> Arc<Tally> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
        self.overlay.shutdown().await;
        self.tally
    }
}

/// The nodes' defence counters, summed: (frag requests throttled, peers
/// blocked, connections refused as blocked).
fn defences(net: &TestNet) -> (u64, u64, u64) {
    net.running().iter().fold((0, 0, 0), |(t, b, r), i| {
        let stats = net.node(*i).dht().defence();
        (
            t + stats.throttled(Limited::Frag),
            b + stats.flood_blocks,
            r + stats.connections_refused(ConnectionRefusal::Blocked),
        )
    })
}

async fn honest_puts(net: &Arc<TestNet>, ops: u64, base: u64) -> Result<Run> {
    drive(ops, CLIENTS, |i| {
        let net = net.clone();
        async move {
            let node = net.node((i % 5) as usize);
            node.storage.put_reader(&payload(base + i, LEN)[..]).await?;
            Ok(())
        }
    })
    .await
}

pub(crate) fn run(out: &mut String, args: &[String]) -> Result<()> {
    let o = Options::parse(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let net = Arc::new(TestNet::start(5, NetConfig::default()).await?);
        let _ = writeln!(
            out,
            "## Honest puts with and without a flooding peer\n\n5 nodes on loopback TCP in one \
             process, production limits (frag: 500 requests/s per peer, burst 1,000; flood \
             block 60 s); {} puts of 4.7 KB objects at {CLIENTS} clients per run. Each round a new \
             rogue joins (a new peer id) and stays through A and B, refusing what it is \
             asked to store; in B it keeps {FLOOD_TASKS} probes in flight to node 0 and, cut \
             off, each of its tasks asks again after 100 ms. The rogue runs in this process \
             on one thread of its own; its CPU is shown apart and taken out of the nodes' \
             CPU per put.\n",
            o.ops
        );
        let _ = writeln!(
            out,
            "| round | run | puts/s | p50 ms | p99 ms | nodes' CPU ms/put | rogue's CPU s | rogue requests | served | refused | cut off | throttled at nodes | peers blocked | its connections refused |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        );
        // Warm up: fill the routing tables, the stores' first pages.
        honest_puts(&net, 1000, 10_000_000).await?;
        let mut ratios = Vec::new();
        let rogues = RogueRuntime::new()?;
        for round in 0..o.rounds {
            let base = 1_000_000 * (round as u64 + 1);
            // The rogue is there in both runs (so both place round it), and
            // floods only in B.
            let mut rogue = rogues.start(0x90 + round as u8, &net).await?;
            let quiet = honest_puts(&net, o.ops, base).await?;
            let _ = writeln!(
                out,
                "| {} | A: no rogue | {:.0} | {:.1} | {:.1} | {:.2} | | | | | | | | |",
                round + 1,
                quiet.ops_per_sec,
                quiet.p50,
                quiet.p99,
                quiet.cpu_ms_per_op
            );
            let before = defences(&net);
            let rogue_cpu = rogue_cpu_seconds();
            rogues.flood(&mut rogue, net.node(0).peer_id);
            let mut flooded = honest_puts(&net, o.ops, base + 500_000).await?;
            let rogue_cpu = rogue_cpu_seconds() - rogue_cpu;
            flooded.cpu_ms_per_op -= rogue_cpu * 1000.0 / o.ops as f64;
            let tally = rogues.stop(rogue).await?;
            let after = defences(&net);
            let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "| {} | B: flooding rogue | {:.0} | {:.1} | {:.1} | {:.2} | {:.1} | {} | {} | {} | {} | {} | {} | {} |",
                round + 1,
                flooded.ops_per_sec,
                flooded.p50,
                flooded.p99,
                flooded.cpu_ms_per_op,
                rogue_cpu,
                load(&tally.sent),
                load(&tally.served),
                load(&tally.refused),
                load(&tally.failed),
                after.0 - before.0,
                after.1 - before.1,
                after.2 - before.2
            );
            ratios.push(flooded.ops_per_sec / quiet.ops_per_sec);
        }
        let shown: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        ratios.sort_by(f64::total_cmp);
        let median = ratios.get(ratios.len() / 2).copied().unwrap_or(0.0);
        let _ = writeln!(
            out,
            "\nB ÷ A puts/s per round: {}; median {median:.2}.\n",
            shown.join(", ")
        );
        rogues.0.shutdown_background();
        if let Ok(net) = Arc::try_unwrap(net) {
            net.shutdown().await;
        }
        anyhow::Ok(())
    })
}
