//! Where a put sends an object's fragments, as a state machine without
//! I/O: the first batches go one per placement peer; a peer that fails
//! hands its fragments to the next-closest spare, and when no spare is
//! left they wrap round the peers that did store, least loaded first
//! (then every fragment is needed, as placement does on a small network).
//! `put.rs` sends the batches and feeds the answers back.

use std::collections::BTreeMap;

use epost_dht::PeerId;

use super::placement::Placement;

/// Fragments `indices` to store on `peer` in one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Batch {
    pub(crate) peer: PeerId,
    pub(crate) indices: Vec<usize>,
}

/// One put's progress.
#[derive(Debug)]
pub(crate) struct Spread {
    n: usize,
    required: usize,
    stored: usize,
    /// Closest peers beyond the placement, closest first.
    spares: std::vec::IntoIter<PeerId>,
    /// Fragments held per peer that stored its batch.
    reached: BTreeMap<PeerId, usize>,
    /// Fragments with nowhere to go yet.
    orphans: Vec<usize>,
    /// Wrap-round batches still allowed (bounded: a put ends).
    fallback_batches: usize,
}

impl Spread {
    /// A put of `n` fragments over `closest` (sorted by distance), `k`
    /// of them enough to rebuild; returns the first batches.
    pub(crate) fn new(closest: &[PeerId], n: usize, k: usize) -> (Self, Vec<Batch>) {
        let placement = Placement::new(closest, n);
        let mut by_peer: BTreeMap<PeerId, Vec<usize>> = BTreeMap::new();
        for index in 0..n {
            if let Some(peer) = placement.holder(index) {
                by_peer.entry(peer).or_default().push(index);
            }
        }
        let spread = Self {
            n,
            required: placement.required(k),
            stored: 0,
            spares: closest
                .iter()
                .skip(placement.peers.len())
                .copied()
                .collect::<Vec<_>>()
                .into_iter(),
            reached: BTreeMap::new(),
            orphans: Vec::new(),
            fallback_batches: n,
        };
        let batches = by_peer.into_iter().map(|(peer, indices)| Batch { peer, indices }).collect();
        (spread, batches)
    }

    /// `batch` was stored (`ok`) or not; returns the batches to send next.
    pub(crate) fn answered(&mut self, batch: Batch, ok: bool) -> Vec<Batch> {
        let mut next = Vec::new();
        if ok {
            self.stored += batch.indices.len();
            *self.reached.entry(batch.peer).or_default() += batch.indices.len();
        } else {
            self.reached.remove(&batch.peer);
            match self.spares.next() {
                Some(spare) => next.push(Batch { peer: spare, indices: batch.indices }),
                None => self.orphans.extend(batch.indices),
            }
        }
        // Acknowledged as soon as it is durable; only a put still short
        // of that wraps.
        if !self.durable()
            && !self.orphans.is_empty()
            && !self.reached.is_empty()
            && self.fallback_batches > 0
        {
            self.required = self.n;
            for (peer, indices) in wrap_onto(&mut self.reached, std::mem::take(&mut self.orphans)) {
                self.fallback_batches = self.fallback_batches.saturating_sub(1);
                next.push(Batch { peer, indices });
            }
        }
        next
    }

    /// Enough fragments are durable: the put can be acknowledged.
    pub(crate) fn durable(&self) -> bool {
        self.stored >= self.required
    }

    /// Fragments stored so far, and how many are needed.
    pub(crate) fn progress(&self) -> (usize, usize) {
        (self.stored, self.required)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_peers as peers;

    /// Runs a put of 4+4 over `closest` where the peers in `failing`
    /// refuse; answers arrive in send order. Returns whether it became
    /// durable, the fragments stored and needed, and every batch sent.
    fn run(closest: &[PeerId], failing: &[PeerId]) -> (bool, (usize, usize), Vec<Batch>) {
        let (mut spread, first) = Spread::new(closest, 8, 4);
        let mut queue: std::collections::VecDeque<Batch> = first.into();
        let mut sent = Vec::new();
        while let Some(batch) = queue.pop_front() {
            if spread.durable() {
                break;
            }
            sent.push(batch.clone());
            let ok = !failing.contains(&batch.peer);
            queue.extend(spread.answered(batch, ok));
        }
        (spread.durable(), spread.progress(), sent)
    }

    struct Case {
        what: &'static str,
        closest: usize,
        /// The first this many of the closest refuse.
        failing: usize,
        durable: bool,
        /// Fragments stored, and needed.
        progress: (usize, usize),
        batches: usize,
    }

    const BASE: Case =
        Case { what: "", closest: 12, failing: 0, durable: true, progress: (6, 6), batches: 6 };

    #[test]
    fn batches_go_to_placement_then_spares_then_wrap_round() {
        let cases = [
            Case { what: "all answer: k + m/2 is enough", ..BASE },
            Case {
                what: "two fail: their fragments go to the first spares",
                failing: 2,
                batches: 8,
                ..BASE
            },
            Case {
                what: "no spare: the failed peer's fragment wraps, and all are needed",
                closest: 8,
                failing: 1,
                progress: (8, 8),
                batches: 9,
                ..BASE
            },
            Case {
                what: "small network: wrapped from the start, all needed",
                closest: 3,
                progress: (8, 8),
                batches: 3,
                ..BASE
            },
            Case {
                what: "everyone fails: not durable, bounded",
                closest: 3,
                failing: 3,
                durable: false,
                progress: (0, 8),
                batches: 3,
            },
            Case {
                what: "no peers at all",
                closest: 0,
                durable: false,
                progress: (0, 8),
                batches: 0,
                ..BASE
            },
        ];
        let p = peers(12);
        for case in cases {
            let closest = &p[..case.closest];
            let (durable, progress, sent) = run(closest, &closest[..case.failing]);
            assert_eq!(
                (durable, progress),
                (case.durable, case.progress),
                "{}: {sent:?}",
                case.what
            );
            assert_eq!(sent.len(), case.batches, "{}: {sent:?}", case.what);
        }
    }

    #[test]
    fn a_failed_batch_goes_to_the_closest_spare_and_wrapping_evens_the_load() {
        let p = peers(10);
        let (mut spread, _) = Spread::new(&p, 8, 4);
        let next = spread.answered(Batch { peer: p[3], indices: vec![3] }, false);
        assert_eq!(next, vec![Batch { peer: p[8], indices: vec![3] }]);

        let (mut spread, _) = Spread::new(&p[..4], 8, 4);
        spread.answered(Batch { peer: p[0], indices: vec![0, 4] }, true);
        spread.answered(Batch { peer: p[1], indices: vec![1, 5] }, true);
        let next = spread.answered(Batch { peer: p[2], indices: vec![2, 6] }, false);
        // Both orphans go, one each, to the two peers holding two.
        let mut peers_used: Vec<PeerId> = next.iter().map(|b| b.peer).collect();
        peers_used.sort();
        assert_eq!(peers_used, vec![p[0], p[1]]);
        assert!(next.iter().all(|b| b.indices.len() == 1), "{next:?}");
    }
}
