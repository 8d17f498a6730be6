//! `compare`: epost beside Postfix delivering into Dovecot, on the same
//! machine, in one run, with the same corpus and the same load generator.
//!
//! Each system is started the way its users run it (Postfix and Dovecot in
//! a private directory on loopback; five `epost node run` processes), gets
//! a warm-up, then the corpus through N concurrent SMTP sessions while one
//! IMAP session per recipient polls, then the attachment share, then a
//! FETCH of every mailbox. CPU, memory and disk are the systems' own
//! (their process trees and directories), not this process's.
//!
//! Usage: `epost-bench compare [--quick] [--epost PATH] [--out DIR]`; the
//! last line printed is `ingest_ratio=… p99_ratio=…` (epost ÷ theirs).

mod corpus;
pub(crate) mod epost;
mod load;
mod mta;
mod plot;
mod procs;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use crate::measure::percentile;
use crate::report::MIB;
use corpus::Message;
use load::{Seen, Watcher};

/// What the comparison needs of a running system.
pub(crate) trait System {
    fn name(&self) -> &'static str;
    fn smtp(&self) -> SocketAddr;
    fn imap(&self) -> SocketAddr;
    /// The processes whose trees are the system.
    fn pids(&self) -> Vec<u32>;
    /// Where it keeps mail (queue, mailboxes, stores).
    fn disk_dirs(&self) -> Vec<PathBuf>;
    fn stop(&mut self) -> Result<()>;
}

const PASSWORD: &str = "compare-password";
const NODES: usize = 5;
/// How many of epost's nodes may die with every object still readable:
/// 8 fragments of which any 4 rebuild it, spread over the 5 nodes (at most
/// 2 per node), so any 2 nodes hold at most 4.
const EPOST_SURVIVES: usize = 2;
/// How long idle CPU is measured after the warm-up.
const IDLE: Duration = Duration::from_secs(2);

struct Options {
    quick: bool,
    epost: PathBuf,
    out: Option<PathBuf>,
    users: usize,
    connections: usize,
    plain: usize,
    with_attachment: usize,
    fan_out: usize,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self> {
        let mut o = Self {
            quick: false,
            epost: PathBuf::from("target/release/epost"),
            out: None,
            users: 8,
            connections: 16,
            plain: 4000,
            with_attachment: 30,
            fan_out: 3,
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--quick" => {
                    o.quick = true;
                    o.plain = 1000;
                    o.with_attachment = 10;
                }
                "--epost" => o.epost = it.next().context("--epost needs a path")?.into(),
                "--out" => o.out = Some(it.next().context("--out needs a directory")?.into()),
                "--messages" => {
                    o.plain = it.next().context("--messages needs a number")?.parse()?
                }
                "--connections" => {
                    o.connections = it.next().context("--connections needs a number")?.parse()?
                }
                other => bail!(
                    "unknown option {other:?} (try --quick, --epost PATH, --out DIR, --messages N, --connections N)"
                ),
            }
        }
        ensure!(
            o.epost.exists(),
            "no epost binary at {} (build it with `cargo build --release -p epost-cli`, or pass --epost PATH)",
            o.epost.display()
        );
        Ok(o)
    }
}

/// One system's figures.
#[derive(Default)]
struct Figures {
    name: String,
    sent: usize,
    accepted: usize,
    deliveries_expected: usize,
    delivered: usize,
    duplicates: usize,
    ingest_per_sec: f64,
    delivered_per_sec: f64,
    accept_p50: f64,
    accept_p99: f64,
    p50: f64,
    p99: f64,
    max: f64,
    cpu_ms_per_msg: f64,
    idle_cpu_ms_per_sec: f64,
    raw_per_msg: f64,
    disk_per_msg: f64,
    raw_att: f64,
    disk_att: f64,
    fetch_per_sec: f64,
    fetch_mib_per_sec: f64,
    fetched: u32,
    fetched_bytes: u64,
    peak_rss: u64,
    peak_pss: u64,
    polls: u64,
    survives: String,
    /// CPU ms per message of each top process (and its children).
    cpu_by_process: Vec<f64>,
}

fn disk(system: &dyn System) -> u64 {
    system.disk_dirs().iter().map(|d| procs::disk_bytes(d)).sum()
}

/// Sends `messages` and watches them arrive; fills the ingest, latency
/// and CPU figures when `f` is given.
async fn phase(
    system: &dyn System,
    users: &[String],
    messages: Arc<Vec<Message>>,
    connections: usize,
    f: Option<&mut Figures>,
) -> Result<()> {
    let mut expect: HashMap<&str, u32> = HashMap::new();
    for m in messages.iter() {
        for to in &m.to {
            *expect.entry(to.as_str()).or_default() += 1;
        }
    }
    let mut watchers = Vec::new();
    for user in users {
        let n = expect.get(user.as_str()).copied().unwrap_or(0);
        let watcher = Watcher::login(system.imap(), user, PASSWORD).await?;
        watchers.push(tokio::spawn(watcher.watch(n)));
    }
    let pids = system.pids();
    let cpu = procs::cpu_seconds(&pids);
    let each: Vec<f64> = pids.iter().map(|p| procs::cpu_seconds(&[*p])).collect();
    let start = Instant::now();
    let sent = load::submit(system.smtp(), messages.clone(), connections).await?;
    let mut seen: Vec<Seen> = Vec::new();
    for w in watchers {
        seen.push(w.await??);
    }
    let cpu = procs::cpu_seconds(&pids) - cpu;
    let each: Vec<f64> =
        pids.iter().zip(each).map(|(p, before)| procs::cpu_seconds(&[*p]) - before).collect();
    let index_of: HashMap<&str, usize> =
        messages.iter().enumerate().map(|(i, m)| (m.token.as_str(), i)).collect();
    let visible = load::visible_at(&seen, &index_of)?;
    let Some(f) = f else {
        let accepted = sent.iter().filter(|s| s.code == 250).count();
        ensure!(
            accepted == messages.len() && visible.len() == accepted,
            "{} of {} accepted, {} seen",
            accepted,
            messages.len(),
            visible.len()
        );
        return Ok(());
    };
    let accepted: Vec<_> = sent.iter().filter(|s| s.code == 250).collect();
    f.sent = sent.len();
    f.accepted = accepted.len();
    let last_reply = accepted.iter().map(|s| s.replied).max().unwrap_or(start);
    f.ingest_per_sec = accepted.len() as f64 / (last_reply - start).as_secs_f64();
    let mut accepts: Vec<Duration> = accepted.iter().map(|s| s.replied - s.dot).collect();
    accepts.sort();
    f.accept_p50 = percentile(&accepts, 0.5);
    f.accept_p99 = percentile(&accepts, 0.99);
    let mut latencies = Vec::new();
    let mut last_visible = start;
    for s in &accepted {
        for to in &messages[s.index].to {
            f.deliveries_expected += 1;
            if let Some(at) = visible.get(&(s.index, to.clone())) {
                latencies.push(at.saturating_duration_since(s.dot));
                last_visible = last_visible.max(*at);
            }
        }
    }
    f.delivered = latencies.len();
    f.duplicates = seen.iter().map(|s| s.subjects.len()).sum::<usize>() - visible.len();
    latencies.sort();
    f.p50 = percentile(&latencies, 0.5);
    f.p99 = percentile(&latencies, 0.99);
    f.max = percentile(&latencies, 1.0);
    f.delivered_per_sec = f.delivered as f64 / (last_visible - start).as_secs_f64();
    f.cpu_ms_per_msg = cpu * 1000.0 / accepted.len().max(1) as f64;
    f.cpu_by_process = each.iter().map(|c| c * 1000.0 / accepted.len().max(1) as f64).collect();
    f.polls = seen.iter().map(|s| s.polls).sum();
    Ok(())
}

/// Runs the whole measurement on one started system.
async fn measure(
    system: &mut dyn System,
    o: &Options,
    users: &[String],
    warm: Arc<Vec<Message>>,
    plain: Arc<Vec<Message>>,
    attached: Arc<Vec<Message>>,
) -> Result<Figures> {
    let mut f = Figures { name: system.name().to_owned(), ..Figures::default() };
    phase(system, users, warm, 4, None).await.context("warm-up")?;
    let pids = system.pids();
    let cpu = procs::cpu_seconds(&pids);
    tokio::time::sleep(IDLE).await;
    f.idle_cpu_ms_per_sec = (procs::cpu_seconds(&pids) - cpu) * 1000.0 / IDLE.as_secs_f64();

    let memory = procs::MemorySampler::start(pids.clone());
    let before = disk(system);
    phase(system, users, plain.clone(), o.connections, Some(&mut f)).await.context("load")?;
    let after_plain = disk(system);
    let raw: usize = plain.iter().map(|m| m.bytes.len() * m.to.len()).sum();
    f.raw_per_msg = raw as f64 / plain.len() as f64;
    f.disk_per_msg = after_plain.saturating_sub(before) as f64 / plain.len() as f64;

    let mut att = Figures::default();
    phase(system, users, attached.clone(), o.connections.min(4), Some(&mut att))
        .await
        .context("attachments")?;
    let after_att = disk(system);
    let raw_att: usize = attached.iter().map(|m| m.bytes.len() * m.to.len()).sum();
    f.raw_att = raw_att as f64 / attached.len() as f64;
    f.disk_att = after_att.saturating_sub(after_plain) as f64 / attached.len() as f64;
    ensure!(
        att.delivered == att.deliveries_expected,
        "{} delivered {} of {} attachment copies",
        f.name,
        att.delivered,
        att.deliveries_expected
    );

    let (messages, bytes, took) = load::fetch_everything(system.imap(), users, PASSWORD).await?;
    f.fetched = messages;
    f.fetched_bytes = bytes;
    f.fetch_per_sec = messages as f64 / took.as_secs_f64();
    f.fetch_mib_per_sec = bytes as f64 / MIB / took.as_secs_f64();
    (f.peak_rss, f.peak_pss) = memory.finish();
    Ok(f)
}

fn row(out: &mut String, f: &Figures) {
    let _ = writeln!(
        out,
        "| {} | {} | {} | {}/{} | {} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {:.2} | {:.1} | {:.0} | {:.0} ({:.2}x) | {:.0} | {:.0} ({:.2}x) | {:.0} | {:.1} | {:.0} | {:.0} | {} |",
        f.name,
        f.sent,
        f.accepted,
        f.delivered,
        f.deliveries_expected,
        f.duplicates,
        f.ingest_per_sec,
        f.delivered_per_sec,
        f.accept_p50,
        f.accept_p99,
        f.p50,
        f.p99,
        f.max,
        f.cpu_ms_per_msg,
        f.idle_cpu_ms_per_sec,
        f.raw_per_msg,
        f.disk_per_msg,
        f.disk_per_msg / f.raw_per_msg,
        f.raw_att,
        f.disk_att,
        f.disk_att / f.raw_att,
        f.fetch_per_sec,
        f.fetch_mib_per_sec,
        f.peak_rss as f64 / MIB,
        f.peak_pss as f64 / MIB,
        f.survives,
    );
}

pub(crate) fn run(out: &mut String, args: &[String]) -> Result<()> {
    let o = Options::parse(args)?;
    let users: Vec<String> = (0..o.users).map(|i| format!("user{i}@{}", epost::DOMAIN)).collect();
    let (plain, attached) = corpus::generate(&users, o.plain, o.with_attachment, o.fan_out);
    let warm: Vec<Message> = users
        .iter()
        .enumerate()
        .map(|(i, u)| Message {
            token: format!("warm-{i}"),
            from: "sender@corpus.test".into(),
            to: vec![u.clone()],
            bytes: format!("Subject: warm-{i}\r\n\r\nwarm up\r\n").into_bytes(),
        })
        .collect();
    let (warm, plain, attached) = (Arc::new(warm), Arc::new(plain), Arc::new(attached));
    let mean = plain.iter().map(|m| m.bytes.len()).sum::<usize>() as f64 / plain.len() as f64;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().take(3).collect::<Vec<_>>().join(" ");

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let root = tempfile::Builder::new().prefix("epost-compare-").tempdir()?;
    // Dovecot's mail user must reach its maildirs under here.
    std::fs::set_permissions(root.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let theirs = runtime.block_on(async {
        let mut system = mta::PostfixDovecot::start(&root.path().join("mta"), &users, PASSWORD)?;
        let mut f =
            measure(&mut system, &o, &users, warm.clone(), plain.clone(), attached.clone()).await?;
        f.survives = "0 of 1 (0%)".into();
        system.stop()?;
        anyhow::Ok(f)
    })?;
    let ours = runtime.block_on(async {
        let mut net =
            epost::EpostNet::start(&o.epost, &root.path().join("epost"), NODES, &users, PASSWORD)?;
        let mut f =
            measure(&mut net, &o, &users, warm.clone(), plain.clone(), attached.clone()).await?;
        f.survives =
            match net.survive(EPOST_SURVIVES, &users, PASSWORD, f.fetched, f.fetched_bytes).await {
                Ok(()) => format!(
                    "{EPOST_SURVIVES} of {NODES} ({:.0}%), checked",
                    EPOST_SURVIVES as f64 * 100.0 / NODES as f64
                ),
                Err(e) => format!("check failed: {e:#}"),
            };
        net.stop()?;
        anyhow::Ok(f)
    })?;

    let ingest_ratio = ours.ingest_per_sec / theirs.ingest_per_sec;
    let p99_ratio = ours.p99 / theirs.p99;
    let _ = writeln!(out, "## epost beside Postfix + Dovecot, same machine, same load\n");
    let _ = writeln!(
        out,
        "Corpus: {} messages (mean {mean:.0} bytes, log-normal spread, each to one of {} users) through {} concurrent SMTP sessions on the MX port (no AUTH; each next message as soon as the last got its reply), then {} messages carrying the same 1 MiB attachment, each to {} users, through {} sessions. Delivery: from the final `.` to the NOOP (one IMAP session per user, every {} ms) whose `EXISTS` first counts the message. Postfix {} queues and hands over LMTP to Dovecot {} (Maildir); epost runs {NODES} `epost node run` processes, the users hosted on the first, whose gateway takes the mail, each object encrypted and erasure-coded 4+4 across the nodes. Load average at the start: {load}.\n",
        plain.len(),
        users.len(),
        o.connections,
        attached.len(),
        o.fan_out,
        o.connections.min(4),
        load::POLL_EVERY.as_millis(),
        version("postconf", &["-h", "mail_version"]),
        version("dovecot", &["--version"]).split_whitespace().next().unwrap_or("?"),
    );
    let _ = writeln!(
        out,
        "| system | sent | 250 | delivered | duplicates | ingest msgs/s | delivered/s | 250 p50 ms | 250 p99 ms | delivery p50 ms | delivery p99 ms | delivery max ms | CPU ms/msg | idle CPU ms/s | raw B/msg | disk B/msg | raw B/msg with attachment | disk B/msg with attachment | FETCH msgs/s | FETCH MiB/s | peak RSS MiB | peak PSS MiB | nodes that can die, nothing lost |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    row(out, &theirs);
    row(out, &ours);
    let _ = writeln!(
        out,
        "\nCPU is each system's process tree (exited children included), per accepted message, from the first message to the last delivery, idle share and the IMAP polling ({} and {} NOOPs) included. Disk is blocks allocated under the system's queue and mail directories (epost: all {NODES} data directories) after minus before, per message; raw counts each recipient's copy. Memory is sampled every 100 ms over the trees; PSS splits shared pages among processes.\n",
        theirs.polls, ours.polls
    );
    for f in [&theirs, &ours] {
        let each: Vec<String> = f.cpu_by_process.iter().map(|c| format!("{c:.2}")).collect();
        let _ = writeln!(
            out,
            "CPU ms per message by top process, {}: {} (Postfix's master and Dovecot's; epost's nodes, the gateway's first).\n",
            f.name,
            each.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "Ratios (epost ÷ Postfix+Dovecot): ingest {ingest_ratio:.2}, delivery p99 {p99_ratio:.2}, CPU per message {:.2}, disk per message {:.2}, with the attachment {:.2}, FETCH {:.2}.\n",
        ours.cpu_ms_per_msg / theirs.cpu_ms_per_msg,
        ours.disk_per_msg / theirs.disk_per_msg,
        ours.disk_att / theirs.disk_att,
        ours.fetch_per_sec / theirs.fetch_per_sec,
    );
    // One panel per figure, one bar per system.
    let panel = |title: &str, better: &'static str, value: fn(&Figures) -> f64| plot::Panel {
        title: title.into(),
        better,
        values: [&theirs, &ours].iter().map(|f| (f.name.clone(), value(f))).collect(),
    };
    let panels = [
        panel("ingest", "messages/s, higher is better", |f| f.ingest_per_sec),
        panel("delivery p99", "ms, lower is better", |f| f.p99),
        panel("CPU per message", "ms, lower is better", |f| f.cpu_ms_per_msg),
        panel("disk ÷ raw, with attachment", "lower is better", |f| f.disk_att / f.raw_att),
        panel("FETCH whole mailbox", "messages/s, higher is better", |f| f.fetch_per_sec),
    ];
    if let Some(dir) = &o.out {
        let date = crate::report::today();
        let name =
            if o.quick { format!("{date}-compare-quick") } else { format!("{date}-compare") };
        let svg_name = format!("{name}.svg");
        let caption = format!(
            "{} messages, {} SMTP sessions; {}",
            plain.len(),
            o.connections,
            out.lines()
                .find(|l| l.starts_with("- commit"))
                .unwrap_or_default()
                .trim_start_matches("- ")
        );
        std::fs::write(dir.join(&svg_name), plot::svg(&panels, &caption))?;
        let _ = writeln!(out, "![the comparison]({svg_name})\n");
        std::fs::write(
            dir.join(format!("{name}.md")),
            format!("# Benchmark: epost beside Postfix + Dovecot\n\n{out}"),
        )?;
    }
    let _ = writeln!(out, "ingest_ratio={ingest_ratio:.2} p99_ratio={p99_ratio:.2}");
    drop(root);
    Ok(())
}

fn version(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "?".into())
}
