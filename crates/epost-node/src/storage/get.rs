//! Reading one object: ask the placement holders for fragments (first k,
//! more when one fails or is slow; which to ask is [`super::read`]'s
//! decision), check each on arrival, rebuild from any k and check the
//! result against the object id. A bad fragment is counted and skipped,
//! never returned as data.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use epost_dht::PeerId;
use epost_types::fragment::Fragment;
use epost_types::id::ObjectId;
use epost_types::wire::frag::{FragRequest, FragResponse};
use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::placement::Placement;
use super::read::{Ask, ReadPlan};
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
    #[error("the object failed verification")]
    Corrupt(#[source] erasure::CodingError),
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
    /// The peer answered but lacks that fragment.
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
    let k = usize::from(ctx.config.k);
    let n = k + usize::from(ctx.config.m);
    let closest = ctx.dht.closest_peers(id.as_bytes(), 2 * n).await.map_err(GetError::Placement)?;
    let placement = Placement::new(&closest, n);
    let candidates = (0..n).filter_map(|i| Some((placement.holder(i)?, u8::try_from(i).ok()?)));
    read(ctx, id, ReadPlan::new(k, candidates, closest.iter().copied())).await
}

/// Rebuilds the ciphertext of `id` from peers known to hold its fragments
/// (`held`, as a probe just found), without a lookup.
pub(crate) async fn get_from_holders(
    ctx: &Arc<Ctx>,
    id: ObjectId,
    held: &BTreeMap<u8, BTreeSet<PeerId>>,
) -> Result<Vec<u8>, GetError> {
    let candidates =
        held.iter().flat_map(|(index, holders)| holders.iter().map(|peer| (*peer, *index)));
    read(ctx, id, ReadPlan::new(usize::from(ctx.config.k), candidates, Vec::new())).await
}

/// Carries a read out: makes the requests `plan` asks for, feeds it the
/// answers, and decodes once it has k fragments.
async fn read(ctx: &Arc<Ctx>, id: ObjectId, mut plan: ReadPlan) -> Result<Vec<u8>, GetError> {
    let started = Instant::now();
    let mut fragments: Vec<Fragment> = Vec::new();
    let mut in_flight = FuturesUnordered::new();
    let mut last_error = None;
    let send = |asks: Vec<Ask>, in_flight: &mut FuturesUnordered<_>| {
        for ask in asks {
            in_flight.push(request(ctx.clone(), id, ask));
        }
    };
    send(plan.start(), &mut in_flight);
    loop {
        if in_flight.is_empty() {
            let Some(ask) = plan.idle() else { break };
            send(vec![ask], &mut in_flight);
            continue;
        }
        let outcome = match tokio::time::timeout(HEDGE_AFTER, in_flight.next()).await {
            Err(_) => {
                send(plan.slow().into_iter().collect(), &mut in_flight);
                continue;
            }
            Ok(None) => continue,
            Ok(Some(outcome)) => outcome,
        };
        let asks = match outcome {
            Outcome::Fragment(fragment) => {
                let decode = plan.fragment(fragment.index);
                fragments.push(fragment);
                if !decode {
                    continue;
                }
                match erasure::decode(id, &fragments) {
                    Ok(ciphertext) => {
                        Metrics::inc(&ctx.metrics.objects_got);
                        ctx.metrics.get_latency.observe(started.elapsed());
                        return Ok(ciphertext);
                    }
                    // Lying fragments: gather more to outvote them.
                    Err(e) => {
                        last_error = Some(e);
                        plan.undecodable().into_iter().collect()
                    }
                }
            }
            Outcome::Missing(peer) => plan.missing(peer),
            Outcome::Held(peer, indices) => plan.held(peer, &indices),
            Outcome::Failed => plan.failed().into_iter().collect(),
        };
        send(asks, &mut in_flight);
    }
    match last_error {
        Some(e) if plan.found() >= usize::from(ctx.config.k) => Err(GetError::Corrupt(e)),
        _ => Err(GetError::NotEnoughFragments {
            id,
            found: plan.found(),
            needed: usize::from(ctx.config.k),
        }),
    }
}

/// Makes one request of a read.
async fn request(ctx: Arc<Ctx>, id: ObjectId, ask: Ask) -> Outcome {
    match ask {
        Ask::Fetch(peer, index) => match fetch_from(&ctx, peer, id, index).await {
            Ok(Some(fragment)) => Outcome::Fragment(fragment),
            Ok(None) => Outcome::Missing(peer),
            Err(()) => Outcome::Failed,
        },
        Ask::Probe(peer) => {
            match ctx.ask(peer, FragRequest::Probe { objects: vec![*id.as_bytes()] }).await {
                Ok(FragResponse::Held(held)) => {
                    Outcome::Held(peer, held.into_iter().flatten().collect())
                }
                _ => Outcome::Failed,
            }
        }
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
