//! The renewal pass: every root whose lease was last secured more than
//! `renew_after` ago is extended to a full lease from now on its holders,
//! a page of roots at a time (one `Renew` per holder per page), at most
//! `rate` objects a second. A page's new lease ends are recorded in the
//! book before the next page starts, so a pass cut short by a crash
//! resumes at start: what was not recorded is still due. Then the heads of
//! the logs written here are republished.

use std::sync::Arc;
use std::time::{Duration, Instant};

use epost_dht::DhtClient;
use epost_types::id::ObjectId;
use epost_types::record::RecordKey;
use epost_types::time::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use super::LeaseConfig;
use super::book::{DueRoot, LeaseBook, RootKind};
use crate::chain::Chain;
use crate::logs::LogService;
use crate::stop::Stop;
use crate::storage::StorageService;
use crate::worker::{Worker, Workers};

/// Roots renewed per page (one round of requests, one book commit).
const PAGE: usize = 256;
/// The longest the pass at start waits for a first peer.
const JOIN_WAIT: Duration = Duration::from_secs(120);
/// A pass that could not renew everything is run again this soon.
const RETRY_AFTER: Duration = Duration::from_secs(600);
/// A root that cannot be renewed is given up this long after its lease
/// ended (its objects are gone from every holder by then).
const GIVE_UP_AFTER: Duration = Duration::from_secs(30 * 24 * 3600);

/// What a renewal pass did. Shared by the node's API and the CLI.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewReport {
    /// Objects whose every fragment (k + m) holders extended.
    pub renewed: u64,
    /// Objects that could not be renewed now; the next pass retries them.
    pub failed: u64,
    /// Roots (messages, log entries, checkpoints) looked at.
    pub roots: u64,
    /// Roots given up: their lease ended long ago and no holder has them.
    pub lost: u64,
    /// Log heads published again.
    pub heads_republished: u64,
    /// Log entries found in logs and added to the book.
    pub entries_registered: u64,
    /// When the pass ended, ms since the UNIX epoch.
    pub finished_at: u64,
}

/// How the pass under way is going. Shared by the node's API and the CLI.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewProgress {
    /// Whether a pass is running now.
    pub running: bool,
    /// Passes finished since the node started.
    pub passes: u64,
    /// Objects renewed so far by the pass running (or the last one).
    pub renewed: u64,
    /// Objects not renewed so far by it.
    pub failed: u64,
}

/// Runs a pass now. Cheap to clone.
#[derive(Clone)]
pub struct Renewer {
    tx: mpsc::Sender<oneshot::Sender<RenewReport>>,
    last: Arc<Mutex<Option<RenewReport>>>,
    progress: watch::Receiver<RenewProgress>,
}

struct Pass {
    config: LeaseConfig,
    storage: StorageService,
    dht: DhtClient,
    book: LeaseBook,
    logs: LogService,
    stop: Stop,
    progress: watch::Sender<RenewProgress>,
}

impl Renewer {
    /// Starts the worker: a pass now, then every `config.interval`.
    /// Stopping it ends the pass after the page in hand (what it renewed
    /// is recorded).
    pub(crate) fn start(
        config: LeaseConfig,
        storage: StorageService,
        dht: DhtClient,
        book: LeaseBook,
        logs: LogService,
        workers: &Workers,
    ) -> (Self, Worker) {
        let (tx, mut rx) = mpsc::channel::<oneshot::Sender<RenewReport>>(4);
        let last = Arc::new(Mutex::new(None));
        let (progress, watching) = watch::channel(RenewProgress::default());
        let shared = last.clone();
        let task = workers.start("renew", |ctx| async move {
            let pass = Pass { config, storage, dht, book, logs, stop: ctx.stop.clone(), progress };
            // The pass at start waits for the overlay: alone, nothing can
            // be renewed, and a node back from a long absence must not
            // wait a whole interval for the next try.
            let mut next = tokio::time::Instant::now();
            let mut joined = false;
            loop {
                let asked = tokio::select! {
                    _ = tokio::time::sleep_until(next) => None,
                    Some(reply) = rx.recv() => Some(reply),
                    () = ctx.stop.stopped() => break,
                };
                if !joined && asked.is_none() {
                    joined = true;
                    tokio::select! {
                        _ = pass.wait_for_peers(JOIN_WAIT) => {}
                        () = ctx.stop.stopped() => break,
                    }
                }
                let busy = ctx.busy();
                let report = pass.run().await;
                drop(busy);
                if report.renewed + report.failed + report.lost > 0 {
                    info!(?report, "renewal pass");
                }
                // What failed is tried again soon, not a whole interval on.
                let wait = if report.failed > 0 {
                    pass.config.interval.min(RETRY_AFTER)
                } else {
                    pass.config.interval
                };
                next = tokio::time::Instant::now() + wait;
                *shared.lock().await = Some(report.clone());
                if let Some(reply) = asked {
                    let _ = reply.send(report);
                }
                if ctx.stop.stopping() {
                    break;
                }
            }
        });
        (Self { tx, last, progress: watching }, task)
    }

    /// Runs a whole pass now and reports it (`None` when stopping).
    pub async fn renew_now(&self) -> Option<RenewReport> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(reply).await.ok()?;
        rx.await.ok()
    }

    /// The last pass's report.
    pub async fn last(&self) -> Option<RenewReport> {
        self.last.lock().await.clone()
    }

    /// How the pass under way is going, as it changes.
    pub fn progress(&self) -> watch::Receiver<RenewProgress> {
        self.progress.clone()
    }
}

impl Pass {
    fn stopping(&self) -> bool {
        self.stop.stopping()
    }

    /// Returns once this node is connected to a peer, or after `most`.
    async fn wait_for_peers(&self, most: Duration) {
        let mut events = self.dht.subscribe();
        let wait = async {
            while self.dht.status().await.is_some_and(|s| s.connected_peers.is_empty()) {
                if events.recv().await.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(most, wait).await;
    }

    async fn run(&self) -> RenewReport {
        self.progress.send_modify(|p| {
            p.running = true;
            p.renewed = 0;
            p.failed = 0;
        });
        let report = self.pass().await;
        self.progress.send_modify(|p| {
            p.running = false;
            p.passes += 1;
        });
        report
    }

    async fn pass(&self) -> RenewReport {
        let mut report = RenewReport {
            entries_registered: self.logs.register_unlisted_entries().await,
            ..RenewReport::default()
        };
        let now = Timestamp::now().as_millis();
        let lease = millis(self.config.lease);
        let until = now.saturating_add(lease.saturating_sub(millis(self.config.renew_after)));
        let mut after: Option<(u64, ObjectId)> = None;
        let started = Instant::now();
        let mut sent = 0u64;
        // A page is about a second of work at the rate allowed.
        let page_len = usize::try_from(self.config.rate).unwrap_or(PAGE).clamp(1, PAGE);
        while !self.stopping() {
            let page = match self.book.due(until, after, page_len) {
                Ok(page) => page,
                Err(e) => {
                    warn!(error = %Chain(&e), "cannot read the lease book; renewal stops for now");
                    break;
                }
            };
            let Some(last) = page.last() else { break };
            after = Some((last.expires, last.id));
            let full = page.len() == page_len;
            sent += self.renew_page(page, now, &mut report).await;
            self.progress.send_modify(|p| {
                p.renewed = report.renewed;
                p.failed = report.failed;
            });
            // At most `rate` objects a second, on average over the pass.
            let due = Duration::from_secs_f64(sent as f64 / f64::from(self.config.rate.max(1)));
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    () = self.stop.stopped() => break,
                }
            }
            if !full {
                break;
            }
        }
        report.heads_republished = self.republish_heads().await;
        report.finished_at = Timestamp::now().as_millis();
        report
    }

    /// Renews one page of roots; returns how many objects it asked about.
    async fn renew_page(&self, page: Vec<DueRoot>, now: u64, report: &mut RenewReport) -> u64 {
        let expires = now.saturating_add(millis(self.config.lease));
        // Done only when every fragment is: one left out keeps its old
        // lease, and a repair from it would spread that lease.
        let (k, m) = self.storage.layout();
        let n = usize::from(k) + usize::from(m);
        // Each root with the objects it stands for.
        let mut roots: Vec<(DueRoot, Vec<ObjectId>, bool)> = Vec::with_capacity(page.len());
        for root in page {
            let (members, complete) = self.members(&root).await;
            let mut objects = vec![root.id];
            objects.extend(members);
            roots.push((root, objects, complete));
        }
        let all: Vec<ObjectId> =
            roots.iter().flat_map(|(_, objects, _)| objects.iter().copied()).collect();
        let counts = self.storage.renew(&all, expires).await;
        let mut renewed = Vec::new();
        let mut given_up = Vec::new();
        let mut at = 0;
        for (root, objects, complete) in roots {
            let counts = &counts[at..at + objects.len()];
            at += objects.len();
            let ok = counts.iter().filter(|c| **c >= n).count() as u64;
            report.roots += 1;
            report.renewed += ok;
            report.failed += objects.len() as u64 - ok;
            if ok == objects.len() as u64 && complete {
                renewed.push((root.id, expires));
            } else if counts.first().is_some_and(|c| *c == 0)
                && root.expires.saturating_add(millis(GIVE_UP_AFTER)) < now
            {
                given_up.push(root);
            } else {
                debug!(root = %root.id, ?counts, "not renewed yet; the next pass retries");
            }
        }
        if let Err(e) = self.book.renewed(renewed).await {
            warn!(error = %Chain(&e), "cannot record renewed leases; they are renewed again next pass");
        }
        for root in given_up {
            warn!(root = %root.id, kind = ?root.kind, "no holder has this object any more; no longer renewing it");
            report.lost += 1;
            if let Err(e) = self.book.lost(root.id).await {
                warn!(error = %Chain(&e), "cannot drop a lost root from the lease book");
            }
        }
        all.len() as u64
    }

    /// A root's objects besides itself, and whether that is all of them
    /// (a message's are found by opening it, once).
    async fn members(&self, root: &DueRoot) -> (Vec<ObjectId>, bool) {
        if root.listed {
            return match self.book.members(root.id) {
                Ok(members) => (members, true),
                Err(e) => {
                    warn!(root = %root.id, error = %Chain(&e), "cannot read a root's members");
                    (Vec::new(), false)
                }
            };
        }
        let (RootKind::Message, Some(capability)) = (root.kind, &root.capability) else {
            // Nothing below it (a log entry), or nothing to open it with.
            return (Vec::new(), root.kind == RootKind::LogEntry);
        };
        match crate::mail::message::member_ids(&self.storage, capability).await {
            Ok(members) => {
                if let Err(e) = self.book.listed(root.id, members.clone()).await {
                    warn!(root = %root.id, error = %Chain(&e), "cannot record a message's objects");
                }
                (members, true)
            }
            Err(e) => {
                debug!(root = %root.id, error = %Chain(&e), "cannot open a message to list its objects yet");
                (Vec::new(), false)
            }
        }
    }

    /// Publishes every head written here again (the same signed bytes, so
    /// holders keep them for a new record TTL).
    async fn republish_heads(&self) -> u64 {
        let heads = match self.book.heads() {
            Ok(heads) => heads,
            Err(e) => {
                warn!(error = %Chain(&e), "cannot read the owned heads");
                return 0;
            }
        };
        let mut done = 0;
        for (log, head) in heads {
            if self.stopping() {
                break;
            }
            let key = RecordKey::from(log).encode();
            match self.dht.put_record(&key, head.envelope).await {
                Ok(()) | Err(epost_dht::RecordError::QuorumFailed(_)) => done += 1,
                Err(e) => debug!(%log, error = %Chain(&e), "head not republished"),
            }
        }
        done
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
