//! Reading one object: ask the placement holders for fragments (first k,
//! more when one fails or is slow), check each on arrival, rebuild from any
//! k and check the result against the object id. A bad fragment is counted
//! and skipped, never returned as data.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use epost_dht::PeerId;
use epost_dht::frag::{FragRequest, FragResponse};
use epost_types::fragment::Fragment;
use epost_types::id::ObjectId;
use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::placement::Placement;
use super::{Ctx, erasure};
use crate::storage::metrics::Metrics;

/// A slow holder gets this long before another fragment is asked for.
const HEDGE_AFTER: Duration = Duration::from_millis(300);

/// Why an object could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GetError {
    #[error("object {id} not found: {found} valid fragments of the {needed} needed")]
    NotEnoughFragments { id: ObjectId, found: usize, needed: usize },
    #[error("cannot find the object's holders")]
    Placement(#[source] epost_dht::QueryError),
    /// Fragments decoded to something other than the object (the liars
    /// could not be outvoted): what the last attempt found.
    #[error("the object failed verification: {0}")]
    Corrupt(String),
    #[error("the object's chunk tree is broken")]
    Tree(#[from] epost_types::chunk::ReadError),
    #[error("writing the output failed")]
    Output(#[from] std::io::Error),
    #[error("a read-ahead task failed")]
    ReadAhead(#[from] tokio::task::JoinError),
}

/// What one request in flight came back with.
enum Outcome {
    Fragment(Fragment),
    /// The peer answered but lacks that fragment: ask what it does hold.
    Missing(PeerId),
    /// A probe's answer: the indices this peer holds.
    Held(PeerId, Vec<u8>),
    Failed,
}

/// Fetches and rebuilds the ciphertext of `id`.
///
/// Fragments are first asked of their placement holders; a holder without
/// its fragment is probed for what it has, and once every candidate is
/// used up every close peer is probed. So reads keep working while the
/// placement shifts under churn, before repair has moved anything.
pub(crate) async fn get_object(ctx: &Arc<Ctx>, id: ObjectId) -> Result<Vec<u8>, GetError> {
    let started = Instant::now();
    let k = usize::from(ctx.config.k);
    let n = k + usize::from(ctx.config.m);
    let closest = ctx.dht.closest_peers(id.as_bytes(), 2 * n).await.map_err(GetError::Placement)?;
    let placement = Placement::new(&closest, n);
    // Data fragments first: with all k of them no decoding work is needed.
    let mut queue: VecDeque<(PeerId, u8)> =
        (0..n).filter_map(|i| Some((placement.holder(i)?, u8::try_from(i).ok()?))).collect();
    let mut unprobed: VecDeque<PeerId> = closest.iter().copied().collect();
    let mut asked: BTreeSet<(PeerId, u8)> = BTreeSet::new();
    let mut fragments: Vec<Fragment> = Vec::new();
    let mut have: BTreeSet<u8> = BTreeSet::new();
    let mut in_flight = FuturesUnordered::new();
    let mut last_error = None;

    let fetch = |ctx: Arc<Ctx>, peer: PeerId, index: u8| async move {
        match fetch_from(&ctx, peer, id, index).await {
            Ok(Some(fragment)) => Outcome::Fragment(fragment),
            Ok(None) => Outcome::Missing(peer),
            Err(()) => Outcome::Failed,
        }
    };
    let probe = |ctx: Arc<Ctx>, peer: PeerId| async move {
        match ctx.ask(peer, FragRequest::Probe { objects: vec![*id.as_bytes()] }).await {
            Ok(FragResponse::Held(held)) => {
                Outcome::Held(peer, held.into_iter().flatten().collect())
            }
            _ => Outcome::Failed,
        }
    };
    // Starts the next fetch worth making; false when there is none.
    let mut next_fetch = |queue: &mut VecDeque<(PeerId, u8)>,
                          have: &BTreeSet<u8>,
                          in_flight: &mut FuturesUnordered<_>| {
        while let Some((peer, index)) = queue.pop_front() {
            if !have.contains(&index) && asked.insert((peer, index)) {
                in_flight.push(futures::future::Either::Left(fetch(ctx.clone(), peer, index)));
                return true;
            }
        }
        false
    };
    for _ in 0..k {
        next_fetch(&mut queue, &have, &mut in_flight);
    }
    loop {
        if in_flight.is_empty() {
            // Nothing left to try but asking close peers what they hold.
            let Some(peer) = unprobed.pop_front() else { break };
            in_flight.push(futures::future::Either::Right(probe(ctx.clone(), peer)));
            continue;
        }
        let outcome = match tokio::time::timeout(HEDGE_AFTER, in_flight.next()).await {
            Err(_) => {
                // Slow answers: hedge with one more request.
                next_fetch(&mut queue, &have, &mut in_flight);
                continue;
            }
            Ok(None) => continue,
            Ok(Some(outcome)) => outcome,
        };
        match outcome {
            Outcome::Fragment(fragment) => {
                have.insert(fragment.index);
                fragments.push(fragment);
                if have.len() >= k {
                    match erasure::decode(id, &fragments) {
                        Ok(ciphertext) => {
                            Metrics::inc(&ctx.metrics.objects_got);
                            ctx.metrics.get_latency.observe(started.elapsed());
                            return Ok(ciphertext);
                        }
                        // Lying fragments: gather more to outvote them.
                        Err(e) => last_error = Some(e.to_string()),
                    }
                }
                if have.len() >= k {
                    next_fetch(&mut queue, &BTreeSet::new(), &mut in_flight);
                }
            }
            Outcome::Missing(peer) => {
                if let Some(at) = unprobed.iter().position(|p| *p == peer) {
                    unprobed.remove(at);
                    in_flight.push(futures::future::Either::Right(probe(ctx.clone(), peer)));
                }
                next_fetch(&mut queue, &have, &mut in_flight);
            }
            Outcome::Held(peer, indices) => {
                for index in indices {
                    queue.push_front((peer, index));
                }
                while in_flight.len() < k.saturating_sub(have.len())
                    && next_fetch(&mut queue, &have, &mut in_flight)
                {}
            }
            Outcome::Failed => {
                next_fetch(&mut queue, &have, &mut in_flight);
            }
        }
    }
    match last_error {
        Some(e) if have.len() >= k => Err(GetError::Corrupt(e)),
        _ => Err(GetError::NotEnoughFragments { id, found: have.len(), needed: k }),
    }
}

/// One fragment from one peer, checked: `Ok(None)` if the peer does not
/// hold it, `Err` for a failure or a bad answer.
async fn fetch_from(
    ctx: &Ctx,
    peer: PeerId,
    id: ObjectId,
    index: u8,
) -> Result<Option<Fragment>, ()> {
    let response =
        ctx.ask(peer, FragRequest::Fetch { object: *id.as_bytes(), index }).await.map_err(drop)?;
    let bytes = match response {
        FragResponse::Fragment(bytes) => bytes,
        FragResponse::NotFound => return Ok(None),
        _ => return Err(()),
    };
    Fragment::decode_checked(&bytes, id, index).map(Some).map_err(|why| {
        Metrics::inc(&ctx.metrics.bad_peer_responses);
        tracing::warn!(%peer, %id, index, %why, "peer sent a bad fragment");
    })
}
