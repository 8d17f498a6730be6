//! Group commit: one thread owns the write side of the engine. Writers send
//! a group of mutations (applied together or not at all) and wait on a
//! oneshot; the thread takes everything queued (bounded by count and
//! bytes), applies it in one transaction with one fsync, then answers
//! every waiter with the outcome of that batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::engine::{Engine, Mutation, Op};
use crate::error::EngineError;

/// Most mutations in one transaction (a group larger than this goes alone).
const MAX_BATCH: usize = 1024;
/// Most payload bytes in one transaction.
const MAX_BATCH_BYTES: usize = 32 * 1024 * 1024;

/// The answer to a writer: entries removed by its `Expire`, if any.
pub(crate) type Reply = oneshot::Sender<Result<u64, EngineError>>;

/// Mutations that commit together, and who waits for them.
pub(crate) struct Group {
    pub(crate) mutations: Vec<Mutation>,
    pub(crate) reply: Reply,
}

/// Running totals of one counted keyspace.
#[derive(Debug, Default)]
pub(crate) struct Totals {
    pub(crate) entries: AtomicI64,
    pub(crate) bytes: AtomicI64,
}

/// Running totals and counters, updated only after a successful commit.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Indexed by keyspace; only counted keyspaces move.
    pub(crate) totals: Vec<Totals>,
    pub(crate) mutations: AtomicU64,
    pub(crate) commits: AtomicU64,
    pub(crate) failed_commits: AtomicU64,
}

fn weight(group: &Group) -> usize {
    group.mutations.iter().map(|m| m.op.weight()).sum()
}

fn is_expire(group: &Group) -> bool {
    group.mutations.iter().any(|m| matches!(m.op, Op::Expire { .. }))
}

pub(crate) fn run(engine: Arc<dyn Engine>, mut rx: mpsc::Receiver<Group>, counters: Arc<Counters>) {
    let mut carried: Option<Group> = None;
    loop {
        let Some(first) = carried.take().or_else(|| rx.blocking_recv()) else { break };
        let mut bytes = weight(&first);
        // An expiry sweep runs alone so its count is its own.
        let alone = is_expire(&first);
        let mut mutations = first.mutations;
        let mut replies = vec![first.reply];
        while !alone && mutations.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(group) if is_expire(&group) => {
                    carried = Some(group);
                    break;
                }
                Ok(group) => {
                    bytes += weight(&group);
                    mutations.extend(group.mutations);
                    replies.push(group.reply);
                }
                Err(_) => break,
            }
        }
        match engine.apply(&mutations) {
            Ok(applied) => {
                for (space, entries, delta) in &applied.deltas {
                    if let Some(totals) = counters.totals.get(*space) {
                        totals.entries.fetch_add(*entries, Ordering::Relaxed);
                        totals.bytes.fetch_add(*delta, Ordering::Relaxed);
                    }
                }
                counters.mutations.fetch_add(mutations.len() as u64, Ordering::Relaxed);
                counters.commits.fetch_add(1, Ordering::Relaxed);
                for reply in replies {
                    let _ = reply.send(Ok(applied.expired));
                }
            }
            Err(e) => {
                counters.failed_commits.fetch_add(1, Ordering::Relaxed);
                warn!(error = %e, batch = mutations.len(), "commit failed; nothing in the batch was acknowledged");
                for reply in replies {
                    let _ = reply.send(Err(e.duplicate()));
                }
            }
        }
    }
}
