//! Reading one object: ask the placement holders for fragments (first k,
//! more when one fails or is slow; which to ask is [`super::read`]'s
//! decision), check each on arrival, rebuild from any k and check the
//! result against the object id. A bad fragment is counted and skipped,
//! never returned as data. A holder that answers `Busy` (its per-peer rate
//! limit, `epost-dht`'s defence against floods) is asked again after a
//! growing pause, up to [`BUSY_RETRIES`] times a read: a reader that
//! reads fast (an IMAP client's first FETCH of a whole folder) slows to
//! the holders' pace instead of failing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use epost_dht::PeerId;
use epost_types::fragment::Fragment;
use epost_types::id::ObjectId;
use epost_types::wire::frag::{FragRequest, FragResponse, RefusalReason};
use futures::StreamExt;
use futures::stream::FuturesUnordered;

use super::placement::Placement;
use super::read::{Ask, ReadPlan};
use super::{Ctx, erasure};
use crate::storage::metrics::Metrics;

/// A slow holder gets this long before another fragment is asked for.
const HEDGE_AFTER: Duration = Duration::from_millis(300);
/// Busy answers one read retries at most (then the holder counts as failed).
const BUSY_RETRIES: u32 = 10;
/// The pause before the first retry of a busy holder; it doubles each
/// time, up to [`BUSY_PAUSE_MAX`].
const BUSY_PAUSE: Duration = Duration::from_millis(50);
const BUSY_PAUSE_MAX: Duration = Duration::from_millis(800);

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
    /// The holder refused for now (rate-limited): ask it again later.
    Busy(Ask),
    Failed,
}

/// The pause before busy retry number `n` (0-based) of one read.
fn busy_pause(n: u32) -> Duration {
    BUSY_PAUSE.saturating_mul(1 << n.min(8)).min(BUSY_PAUSE_MAX)
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
    let mut busy = 0;
    let send = |asks: Vec<Ask>, in_flight: &mut FuturesUnordered<_>| {
        for ask in asks {
            in_flight.push(request(ctx.clone(), id, ask, Duration::ZERO));
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
            Outcome::Busy(ask) if busy < BUSY_RETRIES => {
                in_flight.push(request(ctx.clone(), id, ask, busy_pause(busy)));
                busy += 1;
                continue;
            }
            Outcome::Busy(_) | Outcome::Failed => plan.failed().into_iter().collect(),
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

/// Makes one request of a read, after `pause`.
async fn request(ctx: Arc<Ctx>, id: ObjectId, ask: Ask, pause: Duration) -> Outcome {
    if !pause.is_zero() {
        tokio::time::sleep(pause).await;
    }
    match ask {
        Ask::Fetch(peer, index) => match fetch_from(&ctx, peer, id, index).await {
            Ok(Some(fragment)) => Outcome::Fragment(fragment),
            Ok(None) => Outcome::Missing(peer),
            Err(Refused::Busy) => Outcome::Busy(ask),
            Err(Refused::Other) => Outcome::Failed,
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

/// Why a peer gave no fragment.
enum Refused {
    /// It is overloaded or rate-limits us: later may work.
    Busy,
    /// A failure or a bad answer.
    Other,
}

/// One fragment from one peer, checked: `Ok(None)` if the peer does not
/// hold it.
async fn fetch_from(
    ctx: &Ctx,
    peer: PeerId,
    id: ObjectId,
    index: u8,
) -> Result<Option<Fragment>, Refused> {
    let response = ctx
        .ask(peer, FragRequest::Fetch { object: *id.as_bytes(), index })
        .await
        .map_err(|_| Refused::Other)?;
    let bytes = match response {
        FragResponse::Fragment(bytes) => bytes,
        FragResponse::NotFound => return Ok(None),
        FragResponse::Refused { reason: RefusalReason::Busy, .. } => return Err(Refused::Busy),
        _ => return Err(Refused::Other),
    };
    Fragment::decode_checked(&bytes, id, index).map(Some).map_err(|why| {
        Metrics::inc(&ctx.metrics.bad_peer_responses);
        tracing::warn!(%peer, %id, index, %why, "peer sent a bad fragment");
        Refused::Other
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_holders_are_asked_again_after_growing_pauses() {
        let pauses: Vec<u64> =
            (0..BUSY_RETRIES).map(|n| busy_pause(n).as_millis() as u64).collect();
        assert_eq!(pauses, [50, 100, 200, 400, 800, 800, 800, 800, 800, 800]);
        // In all, a read waits out busy holders for at most about 5.5 s.
        assert_eq!(pauses.iter().sum::<u64>(), 5550);
    }
}
