//! Putting one object: erasure-code its ciphertext, store fragment i on the
//! i-th closest peer (one request per peer, coalesced with other objects' stores
//! to the same peer under load: `batch`), and acknowledge once
//! enough fragments are durable. A peer that fails hands its fragments to
//! the next-closest spare, or when none is left, wraps round the peers that
//! did store (then every fragment is needed); stores still in flight at acknowledgement finish
//! in the background (maintenance covers any that fail).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use epost_dht::PeerId;
use epost_dht::frag::{FragRequest, FragResponse};
use epost_types::fragment::Fragment;
use epost_types::id::ObjectId;
use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::placement::Placement;
use super::{Ctx, erasure, holder};
use crate::storage::metrics::Metrics;

/// Why an object could not be stored durably.
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    #[error("only {stored} of the {needed} fragments needed were stored durably ({failures})")]
    NotEnoughHolders { stored: usize, needed: usize, failures: String },
    #[error("cannot find peers to hold the object")]
    Placement(#[source] epost_dht::QueryError),
    #[error(transparent)]
    Coding(#[from] erasure::CodingError),
    #[error("reading the input failed")]
    Input(#[source] std::io::Error),
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
    let placement = Placement::new(&closest, n);
    let required = placement.required(usize::from(k));

    let mut by_peer: BTreeMap<PeerId, Vec<usize>> = BTreeMap::new();
    for index in 0..n {
        if let Some(peer) = placement.holder(index) {
            by_peer.entry(peer).or_default().push(index);
        }
    }
    let mut spares =
        closest.iter().skip(placement.peers.len()).copied().collect::<Vec<_>>().into_iter();
    let mut in_flight = FuturesUnordered::new();
    for (peer, indices) in by_peer {
        in_flight.push(store_on(ctx.clone(), peer, indices, fragments.clone(), expires));
    }
    let mut required = required;
    let mut stored = 0;
    let mut failures = Vec::new();
    // Fragments held per peer that stored its batch: where fragments go when
    // there is no spare left (a partition, or a network that shrank).
    let mut reached: BTreeMap<PeerId, usize> = BTreeMap::new();
    let mut orphans: Vec<usize> = Vec::new();
    let mut fallback_batches = n;
    loop {
        if !orphans.is_empty() && !reached.is_empty() && fallback_batches > 0 {
            // Fewer peers answer than the placement wanted: wrap the rest
            // round those that did, least loaded first, as placement does on
            // a small network, and then every fragment is needed.
            required = n;
            for (peer, indices) in wrap_onto(&mut reached, std::mem::take(&mut orphans)) {
                fallback_batches = fallback_batches.saturating_sub(1);
                in_flight.push(store_on(ctx.clone(), peer, indices, fragments.clone(), expires));
            }
        }
        let Some((peer, indices, result)) = in_flight.next().await else { break };
        match result {
            Ok(()) => {
                stored += indices.len();
                *reached.entry(peer).or_default() += indices.len();
            }
            Err(why) => {
                failures.push(why);
                reached.remove(&peer);
                match spares.next() {
                    Some(spare) => in_flight.push(store_on(
                        ctx.clone(),
                        spare,
                        indices,
                        fragments.clone(),
                        expires,
                    )),
                    None => orphans.extend(indices),
                }
            }
        }
        if stored >= required {
            break;
        }
    }
    if stored < required {
        return Err(PutError::NotEnoughHolders {
            stored,
            needed: required,
            failures: failures.join("; "),
        });
    }
    // The rest keep going; their outcome only changes how much repair has to do.
    if !in_flight.is_empty() {
        ctx.tasks.spawn_tracked(async move { while in_flight.next().await.is_some() {} });
    }
    Metrics::inc(&ctx.metrics.objects_put);
    ctx.metrics.put_latency.observe(started.elapsed());
    Ok(())
}

/// Assigns `orphans` one by one to the least-loaded peer of `load`
/// (updating it), grouped into one batch per peer.
fn wrap_onto(
    load: &mut BTreeMap<PeerId, usize>,
    orphans: Vec<usize>,
) -> BTreeMap<PeerId, Vec<usize>> {
    let mut batches: BTreeMap<PeerId, Vec<usize>> = BTreeMap::new();
    for index in orphans {
        let Some((peer, count)) = load.iter_mut().min_by_key(|(_, count)| **count) else { break };
        *count += 1;
        batches.entry(*peer).or_default().push(index);
    }
    batches
}

/// Stores the fragments `indices` on `peer` in one request.
pub(crate) async fn store_on(
    ctx: Arc<Ctx>,
    peer: PeerId,
    indices: Vec<usize>,
    fragments: Arc<Vec<Fragment>>,
    expires: u64,
) -> (PeerId, Vec<usize>, Result<(), String>) {
    let encoded = indices
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
            Err(format!("peer {peer} refused ({reason:?}): {detail}"))
        }
        Ok(other) => {
            Metrics::inc(&ctx.metrics.bad_peer_responses);
            Err(format!("peer {peer} gave an unexpected answer {other:?}"))
        }
        Err(e) => Err(e),
    };
    (peer, indices, result)
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
