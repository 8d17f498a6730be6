//! The mail services on a 5-node network on loopback TCP (all nodes in this
//! process, so CPU per operation is the whole network's): single-writer log
//! appends, reads and head lookups (`logs`), and notification delivery from
//! the sender's call to the recipient's subscriber (`notify`).
//!
//! Every user is hosted as the crates' tests host them: `name@name.test`
//! under its own realm, made on the hosting node and trusted by every node.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use epost_node::notify::Received;
use epost_testkit::{NetConfig, TestNet};
use epost_types::address::Address;
use epost_types::id::LogId;
use epost_types::log::{EntryBody, LogEntry, LogKey, seal_entry};
use epost_types::record::RecordKey;
use epost_types::time::Timestamp;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::measure::{Run, cpu_seconds, drive, idle_cpu_ms_per_sec, payload, percentile};

const NODES: usize = 5;

/// Log entry size.
const ENTRY: usize = 1024;
/// Sequential appends to one log: past the snapshots at 500 and 1,000.
const APPENDS: u64 = 1000;
/// Logs appended to at once, and appends to each.
const PARALLEL_LOGS: u64 = 8;
const PARALLEL_APPENDS: u64 = 100;
/// Each half of an append measured alone.
const HALF_OPS: u64 = 200;
const HEAD_LOOKUPS: u64 = 200;
const READS: usize = 3;
/// The log the sequential appends build and the reads read.
const LOG: &str = "bench";

/// Where the notification recipient is hosted, and the load senders.
const RECIPIENT_NODE: usize = 3;
const SENDER_NODES: [usize; 4] = [0, 1, 2, 4];
const LATENCY_SENDS: u64 = 500;
const LOAD_SENDERS: usize = 16;
const LOAD_PER_SENDER: u64 = 50;
/// The longest the subscriber may stay silent before the rest count as lost.
const ARRIVAL_WAIT: Duration = Duration::from_secs(10);
/// The target for an online recipient.
const TARGET_P99_MS: f64 = 50.0;

/// `name@name.test` hosted on node `node`.
async fn host(net: &TestNet, name: &str, node: usize) -> Result<Address> {
    let hosted = net.host_in_own_realms(&[(name, node)]).await?;
    hosted.into_iter().next().context("no user hosted")
}

fn idle_line(out: &mut String, idle: f64) {
    let _ = writeln!(
        out,
        "Idle, after setup, the five nodes used {idle:.0} ms of CPU per second; every CPU figure below includes that share.\n"
    );
}

pub(crate) fn run_logs(out: &mut String) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let net = Arc::new(TestNet::start(NODES, NetConfig::default()).await?);
        let owner = host(&net, "writer", 0).await?;
        let idle = idle_cpu_ms_per_sec().await;
        let _ = writeln!(
            out,
            "## Single-writer logs: 5 nodes on loopback TCP, one process, 1 KiB entries\n"
        );
        let _ = writeln!(
            out,
            "The owner is hosted on node 0. An append is one entry object put (durable at k + m/2 fragments) and then one head record put; every 500th append writes a snapshot entry first.\n"
        );
        idle_line(out, idle);
        let _ = writeln!(
            out,
            "| operation | logs | ops | ops/s | p50 ms | p99 ms | max ms | CPU ms/op |\n|---|---|---|---|---|---|---|---|"
        );
        let appends = drive(APPENDS, 1, |i| {
            let (logs, owner) = (net.node(0).logs.clone(), owner.clone());
            async move {
                logs.append(&owner, LOG, payload(i, ENTRY)).await?;
                Ok(())
            }
        })
        .await?;
        row(out, "append, one at a time", 1, APPENDS, &appends);
        let parallel = parallel_appends(&net, &owner).await?;
        row(out, "append, 8 logs at once", PARALLEL_LOGS, PARALLEL_LOGS * PARALLEL_APPENDS, &parallel);

        let (entry_put, head_put) = halves(&net, &owner).await?;
        row(out, "its entry put alone (sealed 1 KiB entry)", 1, HALF_OPS, &entry_put);
        row(out, "its head put alone (same head again)", 1, HALF_OPS, &head_put);

        let newest = net.node(0).logs.head(&owner, LOG).await?.seq;
        net.node(2).logs.head(&owner, LOG).await?; // caches the owner's certificate
        let stale = Arc::new(AtomicU64::new(0));
        let lookups = drive(HEAD_LOOKUPS, 1, |_| {
            let (logs, owner, stale) = (net.node(2).logs.clone(), owner.clone(), stale.clone());
            async move {
                if logs.head(&owner, LOG).await?.seq != newest {
                    stale.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }
        })
        .await?;
        row(out, "head lookup from node 2", 1, HEAD_LOOKUPS, &lookups);
        let _ = writeln!(
            out,
            "\nHead lookups that found an older head than seq {newest}: {}.\n",
            stale.load(Ordering::Relaxed)
        );

        let _ = writeln!(
            out,
            "Full reads of the {APPENDS}-entry log from node 0 (two entries walked back to the snapshot at 1,000, then each snapshot's 499 entries fetched 16 at a time):\n"
        );
        let _ = writeln!(
            out,
            "| read | entries | total ms | entries/s | CPU ms/entry |\n|---|---|---|---|---|"
        );
        for n in 1..=READS {
            let cpu = cpu_seconds();
            let start = Instant::now();
            let entries = net.node(0).logs.read(&owner, LOG).await?;
            let elapsed = start.elapsed().as_secs_f64();
            let cpu_ms = (cpu_seconds() - cpu) * 1000.0;
            ensure!(entries.len() == APPENDS as usize, "read {} entries", entries.len());
            for (i, entry) in entries.iter().enumerate() {
                ensure!(entry.body == payload(i as u64, ENTRY), "entry {} differs", entry.seq);
            }
            let _ = writeln!(
                out,
                "| {n} | {} | {:.0} | {:.0} | {:.2} |",
                entries.len(),
                elapsed * 1000.0,
                entries.len() as f64 / elapsed,
                cpu_ms / entries.len() as f64
            );
        }
        let _ = writeln!(out);
        if let Ok(net) = Arc::try_unwrap(net) {
            net.shutdown().await;
        }
        Ok(())
    })
}

/// Eight writers, each appending to its own log one at a time.
async fn parallel_appends(net: &Arc<TestNet>, owner: &Address) -> Result<Run> {
    let cpu = cpu_seconds();
    let start = Instant::now();
    let writers: Vec<JoinHandle<Result<Vec<Duration>>>> = (0..PARALLEL_LOGS)
        .map(|w| {
            let (logs, owner) = (net.node(0).logs.clone(), owner.clone());
            tokio::spawn(async move {
                let name = format!("parallel-{w}");
                let mut latencies = Vec::with_capacity(PARALLEL_APPENDS as usize);
                for i in 0..PARALLEL_APPENDS {
                    let t = Instant::now();
                    logs.append(&owner, &name, payload((w + 1) << 32 | i, ENTRY)).await?;
                    latencies.push(t.elapsed());
                }
                Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for writer in writers {
        latencies.extend(writer.await??);
    }
    Ok(Run::from_latencies(latencies, start.elapsed(), cpu))
}

/// The two halves of an append, each alone from node 0: a sealed 1 KiB
/// entry put (of another log, so the measured one is untouched), and a put
/// of the measured log's current head record (holders take the very same
/// bytes again, doing all the work of a new head but the signature).
async fn halves(net: &Arc<TestNet>, owner: &Address) -> Result<(Run, Run)> {
    let user = net.node(0).identity.user(owner)?;
    let log = LogId::derive(&user.keys.verifying_key(), "entries-alone");
    let log_key = LogKey::derive(&user.keys.signing, &log);
    let entry_put = drive(HALF_OPS, 1, |i| {
        let storage = net.node(0).storage.clone();
        // Each a first entry (a later one must name its predecessor); the
        // bodies differ, so each is a new object.
        let entry =
            LogEntry::new(log, 1, None, Timestamp::now(), EntryBody::Data(payload(i, ENTRY)));
        let sealed = seal_entry(&log_key, &entry);
        async move {
            storage.put_sealed_object(&sealed?).await?;
            Ok(())
        }
    })
    .await?;

    let key = RecordKey::from(LogId::derive(&user.keys.verifying_key(), LOG)).encode();
    let held = net.node(0).dht().get_record(&key).await?;
    let head = held
        .into_iter()
        .find(|r| r.peer.is_none())
        .map(|r| r.value)
        .context("node 0 keeps no copy of the head it wrote")?;
    let head_put = drive(HALF_OPS, 1, |_| {
        let (dht, head) = (net.node(0).dht().clone(), head.clone());
        async move {
            dht.put_record(&key, head).await?;
            Ok(())
        }
    })
    .await?;
    Ok((entry_put, head_put))
}

fn row(out: &mut String, operation: &str, logs: u64, ops: u64, run: &Run) {
    let _ = writeln!(
        out,
        "| {operation} | {logs} | {ops} | {:.0} | {:.1} | {:.1} | {:.1} | {:.2} |",
        run.ops_per_sec, run.p50, run.p99, run.max, run.cpu_ms_per_op
    );
}

/// Notifications as the recipient's subscriber yields them, stamped there.
struct Arrivals {
    rx: mpsc::Receiver<(String, Instant)>,
    missed: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Arrivals {
    fn start(mut events: broadcast::Receiver<Received>) -> Self {
        let (tx, rx) = mpsc::channel(4096);
        let missed = Arc::new(AtomicU64::new(0));
        let counter = missed.clone();
        let task = tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(received) => {
                        let at = Instant::now();
                        if tx.send((received.summary, at)).await.is_err() {
                            break;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        counter.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        Self { rx, missed, task }
    }

    /// The next arrival, or `None` after [`ARRIVAL_WAIT`] of silence.
    async fn next(&mut self) -> Option<(String, Instant)> {
        tokio::time::timeout(ARRIVAL_WAIT, self.rx.recv()).await.ok().flatten()
    }

    /// When `summary` arrived (skipping any others), or `None`.
    async fn wait_for(&mut self, summary: &str) -> Option<Instant> {
        loop {
            let (got, at) = self.next().await?;
            if got == summary {
                return Some(at);
            }
        }
    }
}

impl Drop for Arrivals {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One phase's notification figures.
struct Delivery {
    senders: usize,
    sent: usize,
    failed: usize,
    delivered: usize,
    per_sec: f64,
    /// Sorted: how long `send()` took, and send start to subscriber.
    send: Vec<Duration>,
    arrival: Vec<Duration>,
    cpu_ms: f64,
}

pub(crate) fn run_notify(out: &mut String) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let net = Arc::new(TestNet::start(NODES, NetConfig::default()).await?);
        let recipient = host(&net, "recipient", RECIPIENT_NODE).await?;
        let sender = host(&net, "sender", 0).await?;
        let mut load = Vec::with_capacity(LOAD_SENDERS);
        for s in 0..LOAD_SENDERS {
            let node = SENDER_NODES[s % SENDER_NODES.len()];
            load.push((host(&net, &format!("sender{s}"), node).await?, node));
        }
        let mut arrivals = Arrivals::start(net.node(RECIPIENT_NODE).notifications.subscribe());
        // One each first, so certificate and presence lookups are cached
        // as they are for anyone who writes to the same person again.
        for (from, node) in std::iter::once((&sender, 0)).chain(load.iter().map(|(a, n)| (a, *n))) {
            let summary = format!("warm-up from {from}");
            net.node(node).notifications.send(from, &recipient, None, summary.clone()).await?;
            arrivals.wait_for(&summary).await.context("a warm-up notification never came")?;
        }
        let idle = idle_cpu_ms_per_sec().await;

        let _ = writeln!(
            out,
            "## Notifications: 5 nodes on loopback TCP, one process, recipient online on node {RECIPIENT_NODE}\n"
        );
        let _ = writeln!(
            out,
            "From just before `send()` to the moment the recipient's `subscribe()` receiver yields it. One at a time: one sender on node 0, each notification sent once the one before arrived. Loaded: {LOAD_SENDERS} senders, four on each of nodes 0, 1, 2 and 4, each sending {LOAD_PER_SENDER} as fast as `send()` returns. Sender certificates and the recipient's presence were looked up once before (one warm-up notification per sender).\n"
        );
        idle_line(out, idle);
        let (single, direct, holders) = one_at_a_time(&net, &sender, &recipient, &mut arrivals).await?;
        let (loaded, sends_done, last_arrival) =
            loaded(&net, &load, &recipient, &mut arrivals).await?;
        let _ = writeln!(
            out,
            "| phase | senders | sent | failed | delivered | delivered/s | send() p50 ms | send() p99 ms | delivered p50 ms | delivered p99 ms | delivered max ms | CPU ms/notification |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
        );
        delivery_row(out, "one at a time", &single);
        delivery_row(out, "loaded", &loaded);
        let _ = writeln!(
            out,
            "\nOne at a time, {direct} of {} sends reached the recipient's home node directly; inbox holders keeping each: {:.1} on average. Notifications the subscriber missed by lagging: {}.\n",
            single.sent,
            holders as f64 / single.sent.max(1) as f64,
            arrivals.missed.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "Loaded, the last `send()` returned {:.0} ms after the first began ({:.0} sends/s offered); the last notification reached the subscriber at {:.0} ms.\n",
            sends_done.as_secs_f64() * 1000.0,
            loaded.sent as f64 / sends_done.as_secs_f64().max(1e-9),
            last_arrival.as_secs_f64() * 1000.0
        );
        let one = percentile(&single.arrival, 0.99);
        let many = percentile(&loaded.arrival, 0.99);
        let _ = writeln!(
            out,
            "Target (issue): p99 under {TARGET_P99_MS:.0} ms from `send()` to an online recipient's subscriber. One at a time: p99 {one:.1} ms, {:.2}x the target. Loaded ({LOAD_SENDERS} senders): p99 {many:.1} ms, {:.2}x.\n",
            one / TARGET_P99_MS,
            many / TARGET_P99_MS
        );
        drop(arrivals);
        if let Ok(net) = Arc::try_unwrap(net) {
            net.shutdown().await;
        }
        Ok(())
    })
}

/// [`LATENCY_SENDS`] from `sender` on node 0, each once the one before
/// arrived. Also returns how many went to the home node directly and the
/// holders that kept them, summed.
async fn one_at_a_time(
    net: &TestNet,
    sender: &Address,
    recipient: &Address,
    arrivals: &mut Arrivals,
) -> Result<(Delivery, usize, usize)> {
    let service = &net.node(0).notifications;
    let (mut send, mut arrival) = (Vec::new(), Vec::new());
    let (mut failed, mut direct, mut holders) = (0, 0, 0);
    let cpu = cpu_seconds();
    let start = Instant::now();
    for i in 0..LATENCY_SENDS {
        let summary = format!("one {i}");
        let t = Instant::now();
        match service.send(sender, recipient, None, summary.clone()).await {
            Ok(report) => {
                send.push(t.elapsed());
                direct += usize::from(report.direct);
                holders += report.holders;
            }
            Err(_) => {
                failed += 1;
                continue;
            }
        }
        if let Some(at) = arrivals.wait_for(&summary).await {
            arrival.push(at.saturating_duration_since(t));
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    send.sort();
    arrival.sort();
    let delivery = Delivery {
        senders: 1,
        sent: LATENCY_SENDS as usize,
        failed,
        delivered: arrival.len(),
        per_sec: arrival.len() as f64 / elapsed,
        send,
        arrival,
        cpu_ms: (cpu_seconds() - cpu) * 1000.0 / LATENCY_SENDS as f64,
    };
    Ok((delivery, direct, holders))
}

/// Every load sender sending [`LOAD_PER_SENDER`] at once; delivered per
/// second is counted from the first send to the last arrival. Also returns
/// when the last send returned and when the last arrival came.
async fn loaded(
    net: &Arc<TestNet>,
    load: &[(Address, usize)],
    recipient: &Address,
    arrivals: &mut Arrivals,
) -> Result<(Delivery, Duration, Duration)> {
    struct Sent {
        summary: String,
        at: Instant,
        took: Option<Duration>,
    }
    let cpu = cpu_seconds();
    let start = Instant::now();
    let senders: Vec<JoinHandle<Vec<Sent>>> = load
        .iter()
        .enumerate()
        .map(|(s, (from, node))| {
            let service = net.node(*node).notifications.clone();
            let (from, to) = (from.clone(), recipient.clone());
            tokio::spawn(async move {
                let mut sent = Vec::with_capacity(LOAD_PER_SENDER as usize);
                for j in 0..LOAD_PER_SENDER {
                    let summary = format!("load {s} {j}");
                    let at = Instant::now();
                    let ok = service.send(&from, &to, None, summary.clone()).await.is_ok();
                    sent.push(Sent { summary, at, took: ok.then(|| at.elapsed()) });
                }
                sent
            })
        })
        .collect();
    let total = load.len() * LOAD_PER_SENDER as usize;
    let mut arrived: HashMap<String, Instant> = HashMap::with_capacity(total);
    while arrived.len() < total {
        let Some((summary, at)) = arrivals.next().await else { break };
        if summary.starts_with("load ") {
            arrived.insert(summary, at);
        }
    }
    let cpu_ms = (cpu_seconds() - cpu) * 1000.0 / total as f64;
    let last = arrived.values().max().copied().unwrap_or(start);
    let (mut send, mut arrival) = (Vec::new(), Vec::new());
    let mut failed = 0;
    let mut sends_done = Duration::ZERO;
    for sender in senders {
        for sent in sender.await? {
            match sent.took {
                Some(took) => {
                    send.push(took);
                    sends_done = sends_done.max(sent.at.duration_since(start) + took);
                }
                None => failed += 1,
            }
            if let Some(at) = arrived.get(&sent.summary) {
                arrival.push(at.saturating_duration_since(sent.at));
            }
        }
    }
    send.sort();
    arrival.sort();
    let delivery = Delivery {
        senders: load.len(),
        sent: total,
        failed,
        delivered: arrival.len(),
        per_sec: arrival.len() as f64 / last.duration_since(start).as_secs_f64().max(1e-9),
        send,
        arrival,
        cpu_ms,
    };
    Ok((delivery, sends_done, last.duration_since(start)))
}

fn delivery_row(out: &mut String, phase: &str, d: &Delivery) {
    let _ = writeln!(
        out,
        "| {phase} | {} | {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} |",
        d.senders,
        d.sent,
        d.failed,
        d.delivered,
        d.per_sec,
        percentile(&d.send, 0.5),
        percentile(&d.send, 0.99),
        percentile(&d.arrival, 0.5),
        percentile(&d.arrival, 0.99),
        percentile(&d.arrival, 1.0),
        d.cpu_ms
    );
}
