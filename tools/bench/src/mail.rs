//! Mail end to end (`mail`): from an SMTP client's final `.` on the
//! gateway's submission port to the message showing up in the recipient's
//! IMAP session, on a 5-node network on loopback TCP in this process (so
//! CPU per message is the whole network's, clients included).
//!
//! Two variants, each on a fresh network: the recipient hosted on another
//! node than the gateway (the message is stored as objects, announced by a
//! notification and filed into the recipient's INBOX log on his node), and
//! hosted on the gateway's node (filed there directly).

use std::collections::HashMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use epost_gateway::context::Limits;
use epost_gateway::node::NodeBackend;
use epost_gateway::tls::TlsSource;
use epost_gateway::{Gateway, GatewayConfig};
use epost_node::notify::Received;
use epost_testkit::{NetConfig, TestNet};
use epost_types::address::Address;
use epost_types::sign::VerifyingKey;
use tokio::sync::{broadcast, oneshot};
use tokio::task::JoinHandle;

use crate::mail_clients::{Imap, Smtp, Submitted};
use crate::measure::{cpu_seconds, idle_cpu_ms_per_sec, percentile};

const NODES: usize = 5;
const REALM: &str = "example.test";
const SENDER: &str = "alice@example.test";
const RECIPIENT: &str = "bob@example.test";
const PASSWORD: &str = "bench-password";
/// Where the recipient is hosted when remote (the gateway is on node 0).
const REMOTE_NODE: usize = 2;

/// Bytes of each message as the client sends it (the gateway adds its
/// `Received:` header): NinjaMail's average, one object since parts under
/// 32 KiB are inlined (results before that change stored two).
const MESSAGE_SIZE: usize = 4700;
/// Messages sent, and through one session each, before measuring, so
/// certificate and presence lookups are cached.
const WARM_UP: u64 = 5;
/// Messages sent by the one client, and by each of the many.
const ONE_CLIENT: u64 = 300;
const CLIENTS: usize = 16;
const PER_CLIENT: u64 = 20;
/// The longest the IMAP session may stay silent before the rest count as
/// not delivered.
const ARRIVAL_WAIT: Duration = Duration::from_secs(30);
/// The target through one node's gateway.
const TARGET_PER_SEC: f64 = 500.0;
const TARGET_P99_MS: f64 = 100.0;
/// NinjaMail's estimate of store/retrieve cycles per second per node.
const NINJAMAIL_PER_NODE: f64 = 52.0;

/// A network with the sender on node 0, the recipient on `home`, a
/// submission and IMAP gateway on node 0 and, if `home` is another node,
/// an IMAP gateway there.
struct Setup {
    net: TestNet,
    submission: SocketAddr,
    imap: SocketAddr,
    gateways: Vec<Gateway>,
    /// The recipient's node, when it is not the gateway's.
    remote: Option<usize>,
    _tls: tempfile::TempDir,
}

impl Setup {
    async fn start(home: usize) -> Result<Self> {
        let net = TestNet::start(NODES, NetConfig::default()).await?;
        let realm = net.node(0).identity.realm_init(REALM)?;
        let key = VerifyingKey::from_str(&realm.key)?;
        for i in net.running() {
            net.node(i).identity.trust(key, Some(REALM))?;
        }
        for (user, node) in [(SENDER, 0), (RECIPIENT, home)] {
            let address = Address::from_str(user)?;
            net.node(0).identity.add_user(address.clone(), Some(PASSWORD)).await?;
            if node != 0 {
                // The realm key stays on node 0; the user moves.
                let exported = net.node(0).identity.export_user(&address, None)?;
                net.node(node).identity.import_user(&exported, None, Some(PASSWORD)).await?;
                net.node(0).identity.remove_user(&address)?;
            }
        }
        let tls = tempfile::tempdir()?;
        let serve = |node: usize, submission: bool, imap: bool| {
            let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
            let config = GatewayConfig {
                smtp: None,
                submission: submission.then_some(loopback),
                imap: imap.then_some(loopback),
                pop3: None,
                submissions: None,
                imaps: None,
                pop3s: None,
                postmaster: None,
                tls: TlsSource::SelfSigned {
                    dir: tls.path().to_path_buf(),
                    names: vec!["localhost".into()],
                },
                hostname: format!("node{node}.{REALM}"),
                limits: Limits::default(),
                relay_for_submitters: false,
                inbound: None,
            };
            let backend =
                NodeBackend::new(net.node(node).mail.clone(), net.node(node).identity.clone());
            Gateway::start(config, backend)
        };
        let first = serve(0, true, home == 0).await?;
        let submission = first.addrs.submission.context("no submission port")?;
        let mut imap = first.addrs.imap;
        let mut gateways = vec![first];
        if home != 0 {
            let second = serve(home, false, true).await?;
            imap = second.addrs.imap;
            gateways.push(second);
        }
        let imap = imap.context("no IMAP port")?;
        Ok(Self { net, submission, imap, gateways, remote: (home != 0).then_some(home), _tls: tls })
    }

    async fn shutdown(self) {
        for gateway in self.gateways {
            gateway.shutdown().await;
        }
        self.net.shutdown().await;
    }
}

/// A message of exactly [`MESSAGE_SIZE`] bytes, different for every
/// `(phase, id)` (so convergent encryption never deduplicates it).
fn message(phase: &str, id: u64) -> Vec<u8> {
    let mut m = format!(
        "From: {SENDER}\r\nTo: {RECIPIENT}\r\nSubject: {phase} {id}\r\n\
         Message-ID: <{phase}.{id}@bench.{REALM}>\r\nDate: Mon, 23 Nov 2026 12:00:00 +0000\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
    );
    let mut n = 0;
    loop {
        let line = format!(
            "Line {n} of message {id} in {phase}: the quick brown fox jumps over the lazy dog.\r\n"
        );
        if m.len() + line.len() + 3 > MESSAGE_SIZE {
            break;
        }
        m.push_str(&line);
        n += 1;
    }
    m.push_str(&"x".repeat(MESSAGE_SIZE - m.len() - 2));
    m.push_str("\r\n");
    m.into_bytes()
}

/// One phase's figures.
struct Phase {
    clients: usize,
    sent: usize,
    refused: usize,
    visible: usize,
    accepted_per_sec: f64,
    visible_per_sec: f64,
    /// Notifications published on the recipient's node per second (remote only).
    notified_per_sec: f64,
    /// Sorted: final `.` to the 250, to the notification's arrival at
    /// the recipient's node (remote only), and to the IMAP `EXISTS`.
    accept: Vec<Duration>,
    notified: Vec<Duration>,
    delivery: Vec<Duration>,
    cpu_ms: f64,
}

/// Each `* N EXISTS` and when it was read.
type Seen = Vec<(u32, Instant)>;
/// Each message's subject and how its submission went.
type Sent = Vec<(String, Submitted)>;

/// `clients` sessions each sending `per_client` one after another (the next
/// as soon as the last was accepted), watched from the recipient's IMAP
/// session in IDLE.
async fn phase(setup: &Setup, name: &str, clients: usize, per_client: u64) -> Result<Phase> {
    let mut imap = Imap::login(setup.imap, RECIPIENT, PASSWORD).await?;
    let base = imap.exists;
    imap.idle().await?;
    let mut sessions = Vec::with_capacity(clients);
    for _ in 0..clients {
        sessions.push(Smtp::login(setup.submission, SENDER, PASSWORD).await?);
    }
    let total = clients as u64 * per_client;
    let target = base + u32::try_from(total)?;

    let notifications = setup
        .remote
        .map(|node| notified(setup.net.node(node).notifications.subscribe(), total as usize));
    let cpu = cpu_seconds();
    let start = Instant::now();
    let watcher: JoinHandle<Result<(Imap, Seen)>> = tokio::spawn(async move {
        let mut seen = Vec::new();
        while seen.last().is_none_or(|(n, _)| *n < target) {
            match imap.next_exists(ARRIVAL_WAIT).await? {
                Some(event) => seen.push(event),
                None => break,
            }
        }
        Ok((imap, seen))
    });
    let senders: Vec<JoinHandle<Result<Sent>>> = sessions
        .into_iter()
        .enumerate()
        .map(|(c, mut smtp)| {
            let name = name.to_owned();
            tokio::spawn(async move {
                let mut sent = Vec::with_capacity(per_client as usize);
                for j in 0..per_client {
                    let id = c as u64 * per_client + j;
                    let submitted = smtp.send(SENDER, &[RECIPIENT], &message(&name, id)).await?;
                    sent.push((format!("{name} {id}"), submitted));
                }
                smtp.quit().await;
                Ok(sent)
            })
        })
        .collect();
    let mut sent = Vec::with_capacity(total as usize);
    for sender in senders {
        sent.extend(sender.await??);
    }
    let (mut imap, seen) = watcher.await??;
    let cpu_ms = (cpu_seconds() - cpu) * 1000.0;
    let notified_at: HashMap<String, Instant> = match notifications {
        Some((stop, task)) => {
            let _ = stop.send(());
            task.await?
        }
        None => HashMap::new(),
    };

    // Which message each sequence number is, and when it became visible:
    // at the first EXISTS that counted it.
    imap.done().await?;
    let subjects = imap.subjects(base + 1).await?;
    imap.logout().await;
    let mut visible_at: HashMap<&str, Instant> = HashMap::new();
    for (seq, subject) in &subjects {
        if let Some((_, at)) = seen.iter().find(|(n, _)| n >= seq) {
            visible_at.insert(subject.as_str(), *at);
        }
    }
    let (mut accept, mut notified, mut delivery) = (Vec::new(), Vec::new(), Vec::new());
    let mut refused = 0;
    let mut last_accept = start;
    for (subject, submitted) in &sent {
        if submitted.code != 250 {
            refused += 1;
            continue;
        }
        accept.push(submitted.took);
        last_accept = last_accept.max(submitted.dot + submitted.took);
        if let Some(at) = notified_at.get(subject) {
            notified.push(at.saturating_duration_since(submitted.dot));
        }
        if let Some(at) = visible_at.get(subject.as_str()) {
            delivery.push(at.saturating_duration_since(submitted.dot));
        }
    }
    let last_visible = seen.last().map_or(start, |(_, at)| *at);
    let last_notified = notified_at.values().max().copied().unwrap_or(start);
    accept.sort();
    notified.sort();
    delivery.sort();
    Ok(Phase {
        clients,
        sent: sent.len(),
        refused,
        visible: delivery.len(),
        accepted_per_sec: accept.len() as f64
            / last_accept.duration_since(start).as_secs_f64().max(1e-9),
        visible_per_sec: delivery.len() as f64
            / last_visible.duration_since(start).as_secs_f64().max(1e-9),
        notified_per_sec: notified.len() as f64
            / last_notified.duration_since(start).as_secs_f64().max(1e-9),
        accept,
        notified,
        delivery,
        cpu_ms: cpu_ms / sent.len().max(1) as f64,
    })
}

/// Stamps each mail notification (by subject) as the recipient's node
/// publishes it, until told to stop; at most `most` are kept.
fn notified(
    mut events: broadcast::Receiver<Received>,
    most: usize,
) -> (oneshot::Sender<()>, JoinHandle<HashMap<String, Instant>>) {
    let (stop, mut stopped) = oneshot::channel();
    let task = tokio::spawn(async move {
        let mut at = HashMap::with_capacity(most);
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(received) => {
                        let Some(subject) = received.summary.strip_prefix("mail\n") else { continue };
                        if at.len() < most {
                            at.insert(subject.to_owned(), Instant::now());
                        }
                    }
                    // Missed ones are simply not counted.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = &mut stopped => break,
            }
        }
        at
    });
    (stop, task)
}

/// Sends [`WARM_UP`] messages and waits until IMAP shows them.
async fn warm_up(setup: &Setup) -> Result<()> {
    let p = phase(setup, "warm-up", 1, WARM_UP).await?;
    ensure!(p.visible == WARM_UP as usize, "only {} warm-up messages arrived", p.visible);
    Ok(())
}

/// One variant on a fresh network: idle CPU, then both phases.
async fn variant(home: usize, tag: &str) -> Result<(f64, Phase, Phase)> {
    let setup = Setup::start(home).await?;
    warm_up(&setup).await?;
    let idle = idle_cpu_ms_per_sec().await;
    let one = phase(&setup, &format!("{tag}-1"), 1, ONE_CLIENT).await?;
    let many = phase(&setup, &format!("{tag}-{CLIENTS}"), CLIENTS, PER_CLIENT).await?;
    setup.shutdown().await;
    Ok((idle, one, many))
}

pub(crate) fn run(out: &mut String) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
        let load = load.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
        let (remote_idle, remote_one, remote_many) = variant(REMOTE_NODE, "remote").await?;
        let (local_idle, local_one, local_many) = variant(0, "local").await?;

        let _ = writeln!(
            out,
            "## Mail end to end: SMTP submission to IMAP, 5 nodes on loopback TCP, one process, {MESSAGE_SIZE}-byte messages\n"
        );
        let _ = writeln!(
            out,
            "The sender ({SENDER}) submits on node 0's gateway over a real TCP SMTP session (EHLO, AUTH PLAIN, no pipelining; each next message as soon as the last was accepted). Remote: the recipient ({RECIPIENT}) is hosted on node {REMOTE_NODE} and watched by an IMAP session (LOGIN, SELECT INBOX, IDLE) on node {REMOTE_NODE}'s gateway. Local: he is hosted on node 0 and watched on node 0's gateway. Each variant runs on a fresh network after {WARM_UP} warm-up messages. Accept latency: the client's final `.` to the 250; notified (remote only): to the notification's publication on the recipient's node (its `subscribe()` receiver, before the mail service files it); delivery latency: the final `.` to the `* N EXISTS` that first counts the message (told apart afterwards by a FETCH of subjects). CPU is the whole process's (five nodes, gateways, clients) from the first message to the last EXISTS, per message sent.\n"
        );
        let _ = writeln!(
            out,
            "Idle, after setup, the five nodes and gateways used {remote_idle:.0} ms (remote) and {local_idle:.0} ms (local) of CPU per second; every CPU figure below includes that share. Load average when the benchmark began: {load}.\n"
        );
        let _ = writeln!(
            out,
            "| variant | clients | sent | refused | visible | accepted/s | visible/s | 250 p50 ms | 250 p99 ms | notified p50 ms | notified p99 ms | delivery p50 ms | delivery p99 ms | delivery max ms | CPU ms/message |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
        );
        for (name, p) in [
            ("remote (node 0 to 2)", &remote_one),
            ("remote (node 0 to 2)", &remote_many),
            ("local (node 0)", &local_one),
            ("local (node 0)", &local_many),
        ] {
            row(out, name, p);
        }
        let _ = writeln!(
            out,
            "\nRemote, notifications were published on node {REMOTE_NODE} at {:.0}/s with one client and {:.0}/s with {CLIENTS}.\n",
            remote_one.notified_per_sec, remote_many.notified_per_sec
        );
        for (name, p) in [("Remote", &remote_many), ("Local", &local_many)] {
            let p99 = percentile(&p.delivery, 0.99);
            let _ = writeln!(
                out,
                "Target (issue): {TARGET_PER_SEC:.0} messages/s through one node's gateway, delivery p99 under {TARGET_P99_MS:.0} ms. {name}, {CLIENTS} clients: {:.0} visible/s, {:.2}x the rate target; p99 {p99:.0} ms, {:.1}x the latency target.\n",
                p.visible_per_sec,
                p.visible_per_sec / TARGET_PER_SEC,
                p99 / TARGET_P99_MS,
            );
        }
        let best = remote_one.visible_per_sec.max(remote_many.visible_per_sec);
        let _ = writeln!(
            out,
            "NinjaMail estimated {NINJAMAIL_PER_NODE:.0} store/retrieve cycles per second per node. Remote delivery here, at best {best:.0} messages/s for all five nodes sharing the machine's cores, is {:.0} per node.\n",
            best / NODES as f64
        );
        Ok(())
    })
}

fn row(out: &mut String, variant: &str, p: &Phase) {
    let notified = if p.notified.is_empty() {
        "- | -".to_owned()
    } else {
        format!("{:.1} | {:.1}", percentile(&p.notified, 0.5), percentile(&p.notified, 0.99))
    };
    let _ = writeln!(
        out,
        "| {variant} | {} | {} | {} | {} | {:.0} | {:.0} | {:.1} | {:.1} | {notified} | {:.1} | {:.1} | {:.1} | {:.2} |",
        p.clients,
        p.sent,
        p.refused,
        p.visible,
        p.accepted_per_sec,
        p.visible_per_sec,
        percentile(&p.accept, 0.5),
        percentile(&p.accept, 0.99),
        percentile(&p.delivery, 0.5),
        percentile(&p.delivery, 0.99),
        percentile(&p.delivery, 1.0),
        p.cpu_ms
    );
}
