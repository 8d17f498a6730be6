//! Putting one object: erasure-code its ciphertext, store fragment i on the
//! i-th closest peer (one request per peer, coalesced with other objects' stores
//! to the same peer under load: `batch`), and acknowledge once
//! enough fragments are durable. A peer that fails hands its fragments to
//! the next-closest spare, or when none is left, wraps round the peers that
//! did store (then every fragment is needed); stores still in flight at acknowledgement finish
//! in the background (maintenance covers any that fail).

use std::sync::Arc;
use std::time::Instant;

use epost_dht::PeerId;
use epost_types::fragment::Fragment;
use epost_types::id::ObjectId;
use epost_types::wire::frag::{FragRequest, FragResponse, RefusalReason};
use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::spread::{Batch, Spread};
use super::{Ctx, erasure, holder};
use crate::failures::Failures;
use crate::storage::metrics::Metrics;

/// Why an object could not be stored durably.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    #[error("only {stored} of the {needed} fragments needed were stored durably ({failures})")]
    NotEnoughHolders { stored: usize, needed: usize, failures: Failures<StoreFailure> },
    #[error("cannot find peers to hold the object")]
    Placement(#[source] epost_dht::QueryError),
    #[error(transparent)]
    Coding(#[from] erasure::CodingError),
    #[error("reading the input failed")]
    Input(#[source] std::io::Error),
}

/// Why one peer did not store the fragments asked of it. (Shown in a
/// list on one line, so a cause is part of the text, not a source.)
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreFailure {
    #[error("peer {peer} refused ({reason:?}): {detail}")]
    Refused { peer: PeerId, reason: RefusalReason, detail: String },
    #[error("peer {peer} gave an unexpected answer {answer}")]
    Unexpected { peer: PeerId, answer: String },
    #[error("{error}")]
    Request { error: Arc<epost_dht::RequestError> },
    #[error("cannot queue a store for {peer}")]
    Queue { peer: PeerId },
    #[error("the store to {peer} was dropped")]
    Dropped { peer: PeerId },
}

/// Stores one sealed object (its ciphertext under `id`) until `expires`.
pub(crate) async fn put_object(
    ctx: &Arc<Ctx>,
    id: ObjectId,
    ciphertext: &[u8],
    expires: u64,
) -> Result<(), PutError> {
    let started = Instant::now();
    let (k, m) = (ctx.config.k, ctx.config.m);
    let n = usize::from(k) + usize::from(m);
    let fragments: Arc<Vec<Fragment>> = Arc::new(erasure::encode(id, ciphertext, k, m)?);
    let closest = ctx.dht.closest_peers(id.as_bytes(), 2 * n).await.map_err(PutError::Placement)?;
    let (mut spread, first) = Spread::new(&closest, n, usize::from(k));
    let mut in_flight: FuturesUnordered<_> =
        first.into_iter().map(|b| store_on(ctx.clone(), b, fragments.clone(), expires)).collect();
    let mut failures = Failures::default();
    while !spread.durable() {
        let Some((batch, result)) = in_flight.next().await else { break };
        let ok = match result {
            Ok(()) => true,
            Err(failure) => {
                failures.push(failure);
                false
            }
        };
        for next in spread.answered(batch, ok) {
            in_flight.push(store_on(ctx.clone(), next, fragments.clone(), expires));
        }
    }
    if !spread.durable() {
        let (stored, needed) = spread.progress();
        return Err(PutError::NotEnoughHolders { stored, needed, failures });
    }
    // The rest keep going; their outcome only changes how much repair has to do.
    if !in_flight.is_empty() {
        ctx.tasks.spawn_tracked(async move { while in_flight.next().await.is_some() {} });
    }
    Metrics::inc(&ctx.metrics.objects_put);
    ctx.metrics.put_latency.observe(started.elapsed());
    Ok(())
}

/// Stores the batch's fragments on its peer in one request.
async fn store_on(
    ctx: Arc<Ctx>,
    batch: Batch,
    fragments: Arc<Vec<Fragment>>,
    expires: u64,
) -> (Batch, Result<(), StoreFailure>) {
    let peer = batch.peer;
    let encoded = batch
        .indices
        .iter()
        .filter_map(|i| fragments.get(*i))
        .map(|f| serde_bytes::ByteBuf::from(f.encode()))
        .collect();
    let answer = if peer == ctx.dht.local_peer_id() {
        Ok(holder::answer(&ctx, peer, FragRequest::Store { fragments: encoded, expires }).await)
    } else {
        ctx.batcher.store(peer, encoded, expires).await
    };
    let result = match answer {
        Ok(FragResponse::Stored) => Ok(()),
        Ok(FragResponse::Refused { reason, detail }) => {
            Err(StoreFailure::Refused { peer, reason, detail })
        }
        Ok(other) => {
            Metrics::inc(&ctx.metrics.bad_peer_responses);
            Err(StoreFailure::Unexpected { peer, answer: format!("{other:?}") })
        }
        Err(e) => Err(e),
    };
    (batch, result)
}

impl Ctx {
    /// One fragment request, answered locally when `peer` is this node.
    pub(crate) async fn ask(
        &self,
        peer: PeerId,
        request: FragRequest,
    ) -> Result<FragResponse, epost_dht::RequestError> {
        if peer == self.dht.local_peer_id() {
            Ok(holder::answer(self, peer, request).await)
        } else {
            self.dht.request(peer, request).await
        }
    }
}
