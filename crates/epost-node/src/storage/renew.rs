//! Extending the leases of many objects at once: find each object's
//! holders (its placement and as many spares, where fragments handed over
//! or stored by a put's fallback sit), send every holder one `Renew` per
//! [`MAX_RENEW`] objects, and count per object how many fragments are now
//! leased until the asked time. Deciding is pure ([`assign`], [`tally`]);
//! the requests run around it.

use std::collections::BTreeMap;
use std::sync::Arc;

use epost_dht::PeerId;
use epost_types::id::ObjectId;
use epost_types::limits::MAX_RENEW;
use epost_types::wire::frag::{FragRequest, FragResponse};
use futures::StreamExt;

use super::Ctx;
use super::metrics::Metrics;

/// Placement lookups run at once.
const LOOKUPS: usize = 32;
/// Holders asked at once.
const REQUESTS: usize = 8;

/// One request to plan: a holder and the positions (in the caller's list)
/// of the objects to ask it about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ask {
    pub(crate) peer: PeerId,
    pub(crate) objects: Vec<usize>,
}

/// The requests that reach every holder of every object: one per peer per
/// `max` objects, peers in order. `holders[i]` are object `i`'s holders.
pub(crate) fn assign(holders: &[Vec<PeerId>], max: usize) -> Vec<Ask> {
    let mut by_peer: BTreeMap<PeerId, Vec<usize>> = BTreeMap::new();
    for (object, peers) in holders.iter().enumerate() {
        for peer in peers {
            let slot = by_peer.entry(*peer).or_default();
            if slot.last() != Some(&object) {
                slot.push(object);
            }
        }
    }
    let mut asks = Vec::new();
    for (peer, objects) in by_peer {
        for chunk in objects.chunks(max.max(1)) {
            asks.push(Ask { peer, objects: chunk.to_vec() });
        }
    }
    asks
}

/// Per object, how many distinct fragments the holders say are now
/// leased (a fragment held twice counts once); an answer of the wrong
/// length counts for nothing (a broken or lying peer).
pub(crate) fn tally(objects: usize, answers: &[(Ask, Option<Vec<Vec<u8>>>)]) -> Vec<usize> {
    let mut indices = vec![std::collections::BTreeSet::new(); objects];
    for (ask, answer) in answers {
        let Some(held) = answer.as_ref().filter(|held| held.len() == ask.objects.len()) else {
            continue;
        };
        for (object, held) in ask.objects.iter().zip(held) {
            if let Some(slot) = indices.get_mut(*object) {
                slot.extend(held.iter().copied());
            }
        }
    }
    indices.into_iter().map(|set| set.len()).collect()
}

/// Extends every fragment of `ids` on its holders to `expires`; returns
/// per object the fragments now leased that long (by the holders' word).
pub(crate) async fn renew(ctx: &Arc<Ctx>, ids: &[ObjectId], expires: u64) -> Vec<usize> {
    let n = usize::from(ctx.config.k) + usize::from(ctx.config.m);
    let me = ctx.dht.local_peer_id();
    let holders: Vec<Vec<PeerId>> = futures::stream::iter(ids.iter().copied().map(|id| {
        let ctx = ctx.clone();
        async move {
            let mut peers = ctx.dht.closest_peers(id.as_bytes(), 2 * n).await.unwrap_or_default();
            // This node's own copy counts whether or not it is in the set.
            if !peers.contains(&me) {
                peers.push(me);
            }
            peers
        }
    }))
    .buffered(LOOKUPS)
    .collect()
    .await;
    let asks = assign(&holders, MAX_RENEW);
    let answers: Vec<(Ask, Option<Vec<Vec<u8>>>)> =
        futures::stream::iter(asks.into_iter().map(|ask| {
            let objects = ask.objects.iter().map(|i| *ids[*i].as_bytes()).collect();
            let ctx = ctx.clone();
            async move {
                let answer = match ctx.ask(ask.peer, FragRequest::Renew { objects, expires }).await
                {
                    Ok(FragResponse::Renewed(counts)) => Some(counts),
                    Ok(FragResponse::Refused { .. }) | Err(_) => None,
                    Ok(_) => {
                        Metrics::inc(&ctx.metrics.bad_peer_responses);
                        None
                    }
                };
                (ask, answer)
            }
        }))
        .buffer_unordered(REQUESTS)
        .collect()
        .await;
    tally(ids.len(), &answers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_peers as peers;

    #[test]
    fn every_holder_gets_one_request_per_batch_of_its_objects() {
        let p = peers(3);
        let holders = vec![vec![p[0], p[1]], vec![p[1]], vec![p[1], p[2], p[1]], vec![]];
        let asks = assign(&holders, 2);
        assert_eq!(
            asks,
            vec![
                Ask { peer: p[0], objects: vec![0] },
                Ask { peer: p[1], objects: vec![0, 1] },
                Ask { peer: p[1], objects: vec![2] },
                Ask { peer: p[2], objects: vec![2] },
            ]
        );
    }

    #[test]
    fn counts_add_up_per_object_and_bad_answers_count_nothing() {
        let p = peers(3);
        let answers = vec![
            (Ask { peer: p[0], objects: vec![0, 1] }, Some(vec![vec![0, 5], vec![1]])),
            // Index 5 held twice (an excess copy) counts once.
            (Ask { peer: p[1], objects: vec![0] }, Some(vec![vec![2, 5, 7]])),
            // Unreachable, refused, or the wrong number of answers.
            (Ask { peer: p[2], objects: vec![0, 1] }, None),
            (Ask { peer: p[2], objects: vec![1] }, Some(vec![vec![4], vec![6]])),
        ];
        assert_eq!(tally(3, &answers), vec![4, 1, 0]);
    }
}
