//! Fragment stores to one peer, coalesced: under load many objects are put
//! at once and most of them have fragments for the same few peers, so
//! instead of one request per object and peer (each a new stream, a
//! protocol negotiation and a commit at the holder), the stores queued for
//! a peer while its earlier requests are in flight go together in the next
//! request. A lone store goes out at once: batching adds no wait.
//!
//! One task per peer owns its queue and ends after a quiet spell; the
//! holder treats every fragment of a request on its own, so fragments of
//! different objects share a request freely. Their leases are unified to
//! the latest asked for (stores queued together were asked for within
//! milliseconds of each other, all with the service's one lease).

use std::sync::Arc;
use std::time::Duration;

use epost_dht::{DhtClient, PeerId};
use epost_types::wire::frag::{FragRequest, FragResponse};
use serde_bytes::ByteBuf;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::put::StoreFailure;
use crate::keyed::{Closed, PerKey};
use crate::worker::Workers;

/// Requests to one peer in flight at once; stores queue behind them.
const IN_FLIGHT: usize = 2;
/// Stores waiting for one peer at most (senders wait beyond that).
const QUEUE: usize = 256;
/// A batch carries at most this many stores and bytes of fragments, far
/// below the protocol's message limit.
const MAX_STORES: usize = 64;
const MAX_BYTES: usize = 4 * 1024 * 1024;
/// A peer's task ends after this long without a store.
const QUIET: Duration = Duration::from_secs(30);

/// One object's fragments for the peer, and where the answer goes.
struct Job {
    fragments: Vec<ByteBuf>,
    expires: u64,
    reply: oneshot::Sender<Result<FragResponse, StoreFailure>>,
}

/// The per-peer queues.
pub(crate) struct StoreBatcher {
    dht: DhtClient,
    peers: PerKey<PeerId, mpsc::Sender<Job>>,
    /// Where each batch's request is sent from, so shutdown waits for it.
    tasks: Workers,
}

impl StoreBatcher {
    pub(crate) fn new(dht: DhtClient, tasks: Workers) -> Self {
        Self { dht, peers: PerKey::new(), tasks }
    }

    /// Stores `fragments` on `peer` (in a batch with whatever else is
    /// queued for it); the peer's answer, or why there was none.
    pub(crate) async fn store(
        &self,
        peer: PeerId,
        fragments: Vec<ByteBuf>,
        expires: u64,
    ) -> Result<FragResponse, StoreFailure> {
        let mut job = Job { fragments, expires, reply: oneshot::channel().0 };
        // A task that just went quiet refuses the job: start a new one.
        for _attempt in 0..2 {
            let (reply, rx) = oneshot::channel();
            job.reply = reply;
            let queue = self.queue(peer).map_err(|_| StoreFailure::Queue { peer })?;
            match queue.send(job).await {
                Ok(()) => {
                    return rx.await.map_err(|_| StoreFailure::Dropped { peer })?;
                }
                Err(mpsc::error::SendError(back)) => job = back,
            }
        }
        Err(StoreFailure::Queue { peer })
    }

    fn queue(&self, peer: PeerId) -> Result<mpsc::Sender<Job>, Closed> {
        self.peers.get_or_start(&peer, || {
            let (tx, rx) = mpsc::channel(QUEUE);
            (tx, tokio::spawn(run(self.dht.clone(), self.tasks.clone(), peer, rx)))
        })
    }
}

/// Takes the first job and everything queued behind it, within the batch
/// limits.
fn batch(first: Job, rx: &mut mpsc::Receiver<Job>) -> Vec<Job> {
    let mut bytes: usize = first.fragments.iter().map(|f| f.len()).sum();
    let mut jobs = vec![first];
    while jobs.len() < MAX_STORES && bytes < MAX_BYTES {
        let Ok(job) = rx.try_recv() else { break };
        bytes += job.fragments.iter().map(|f| f.len()).sum::<usize>();
        jobs.push(job);
    }
    jobs
}

async fn send(dht: DhtClient, peer: PeerId, jobs: Vec<Job>) {
    let expires = jobs.iter().map(|j| j.expires).max().unwrap_or(0);
    let mut fragments = Vec::with_capacity(jobs.iter().map(|j| j.fragments.len()).sum());
    let mut replies = Vec::with_capacity(jobs.len());
    for job in jobs {
        fragments.extend(job.fragments);
        replies.push(job.reply);
    }
    let answer = dht
        .request(peer, FragRequest::Store { fragments, expires })
        .await
        .map_err(|e| StoreFailure::Request { error: Arc::new(e) });
    for reply in replies {
        let _ = reply.send(answer.clone());
    }
}

/// One peer's queue: waits for a free request slot, then sends everything
/// that queued up meanwhile as one request.
async fn run(dht: DhtClient, tasks: Workers, peer: PeerId, mut rx: mpsc::Receiver<Job>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    loop {
        let first = match tokio::time::timeout(QUIET, rx.recv()).await {
            Ok(Some(job)) => job,
            Ok(None) => break,
            Err(_quiet) => {
                // Refuse new jobs (their senders start a new task) and send
                // what was queued before that.
                rx.close();
                while let Some(job) = rx.recv().await {
                    let jobs = batch(job, &mut rx);
                    tasks.spawn_tracked(send(dht.clone(), peer, jobs));
                }
                break;
            }
        };
        let Ok(slot) = slots.clone().acquire_owned().await else { break };
        let jobs = batch(first, &mut rx);
        let dht = dht.clone();
        tasks.spawn_tracked(async move {
            send(dht, peer, jobs).await;
            drop(slot);
        });
    }
}
