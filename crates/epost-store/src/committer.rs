//! Group commit: one thread owns the write side of the engine. Writers send
//! a mutation and wait on a oneshot; the thread takes everything queued
//! (bounded by count and bytes), applies it in one transaction with one
//! fsync, then answers every waiter with the outcome of that batch.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::engine::{Applied, Engine, Mutation};
use crate::error::EngineError;

/// Most mutations in one transaction.
const MAX_BATCH: usize = 1024;
/// Most payload bytes in one transaction.
const MAX_BATCH_BYTES: usize = 32 * 1024 * 1024;

pub(crate) type Reply = oneshot::Sender<Result<Applied, EngineError>>;

pub(crate) struct Op {
    pub(crate) mutation: Mutation,
    pub(crate) reply: Reply,
}

/// Running totals and counters, updated only after a successful commit.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) blocks: AtomicI64,
    pub(crate) bytes: AtomicI64,
    pub(crate) mutations: AtomicU64,
    pub(crate) commits: AtomicU64,
    pub(crate) failed_commits: AtomicU64,
}

fn weight(m: &Mutation) -> usize {
    match m {
        Mutation::Put { payload, key, .. } => payload.len() + key.len(),
        _ => 64,
    }
}

fn is_expire(m: &Mutation) -> bool {
    matches!(m, Mutation::Expire { .. })
}

pub(crate) fn run(engine: Arc<dyn Engine>, mut rx: mpsc::Receiver<Op>, counters: Arc<Counters>) {
    let mut carried: Option<Op> = None;
    loop {
        let Some(first) = carried.take().or_else(|| rx.blocking_recv()) else { break };
        let mut mutations = Vec::new();
        let mut replies = Vec::new();
        let mut bytes = weight(&first.mutation);
        // An expiry sweep runs alone so its count is its own.
        let alone = is_expire(&first.mutation);
        mutations.push(first.mutation);
        replies.push(first.reply);
        while !alone && mutations.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            match rx.try_recv() {
                Ok(op) if is_expire(&op.mutation) => {
                    carried = Some(op);
                    break;
                }
                Ok(op) => {
                    bytes += weight(&op.mutation);
                    mutations.push(op.mutation);
                    replies.push(op.reply);
                }
                Err(_) => break,
            }
        }
        match engine.apply(&mutations) {
            Ok(applied) => {
                counters.blocks.fetch_add(applied.blocks_delta, Ordering::Relaxed);
                counters.bytes.fetch_add(applied.bytes_delta, Ordering::Relaxed);
                counters.mutations.fetch_add(mutations.len() as u64, Ordering::Relaxed);
                counters.commits.fetch_add(1, Ordering::Relaxed);
                for reply in replies {
                    let _ = reply.send(Ok(applied));
                }
            }
            Err(e) => {
                counters.failed_commits.fetch_add(1, Ordering::Relaxed);
                warn!(error = %e, batch = mutations.len(), "commit failed; nothing in the batch was acknowledged");
                for reply in replies {
                    let _ = reply.send(Err(duplicate(&e)));
                }
            }
        }
    }
}

/// Every waiter of a failed batch gets its own copy of the error.
fn duplicate(e: &EngineError) -> EngineError {
    match e {
        EngineError::NoSpace(io) => {
            EngineError::NoSpace(std::io::Error::new(io.kind(), io.to_string()))
        }
        EngineError::Io(io) => EngineError::Io(std::io::Error::new(io.kind(), io.to_string())),
        EngineError::Corrupt(s) => EngineError::Corrupt(s.clone()),
        EngineError::NeedsReopen => EngineError::NeedsReopen,
        EngineError::Other(s) => EngineError::Other(s.clone()),
    }
}
