//! Which fragment to ask for next while reading an object: a sans-IO state
//! machine that [`super::get`] drives with the answers it gets.
//!
//! It starts k fetches, data fragments first (with all k of them no
//! decoding is needed). A slow answer is hedged with one more fetch; a peer
//! that lacks the fragment it was asked for is probed for what it does
//! hold; once every candidate is used up, the remaining close peers are
//! probed one at a time. When k distinct fragments decode to something
//! other than the object, more are gathered to outvote the liars.

use std::collections::{BTreeSet, VecDeque};

use epost_dht::PeerId;

/// A request to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ask {
    Fetch(PeerId, u8),
    Probe(PeerId),
}

/// The state of one read.
#[derive(Debug)]
pub(crate) struct ReadPlan {
    k: usize,
    /// (peer, fragment) pairs worth fetching, best first.
    queue: VecDeque<(PeerId, u8)>,
    /// Close peers not yet asked what they hold.
    unprobed: VecDeque<PeerId>,
    asked: BTreeSet<(PeerId, u8)>,
    have: BTreeSet<u8>,
    in_flight: usize,
}

impl ReadPlan {
    /// `candidates`: where fragments should be, best first; `unprobed`:
    /// peers to ask what they hold once the candidates are used up.
    pub(crate) fn new(
        k: usize,
        candidates: impl IntoIterator<Item = (PeerId, u8)>,
        unprobed: impl IntoIterator<Item = PeerId>,
    ) -> Self {
        Self {
            k,
            queue: candidates.into_iter().collect(),
            unprobed: unprobed.into_iter().collect(),
            asked: BTreeSet::new(),
            have: BTreeSet::new(),
            in_flight: 0,
        }
    }

    /// The first requests: k fetches.
    pub(crate) fn start(&mut self) -> Vec<Ask> {
        (0..self.k).filter_map(|_| self.next_fetch(false)).collect()
    }

    /// Distinct fragments received.
    pub(crate) fn found(&self) -> usize {
        self.have.len()
    }

    /// Nothing is in flight: the next probe, or `None` when the read has
    /// run out of places to look.
    pub(crate) fn idle(&mut self) -> Option<Ask> {
        debug_assert_eq!(self.in_flight, 0);
        let peer = self.unprobed.pop_front()?;
        self.in_flight += 1;
        Some(Ask::Probe(peer))
    }

    /// No answer within the hedge delay: one more fetch.
    pub(crate) fn slow(&mut self) -> Option<Ask> {
        self.next_fetch(false)
    }

    /// Fragment `index` arrived, checked. True: k distinct fragments are
    /// in, try decoding (and call [`Self::undecodable`] if that fails).
    pub(crate) fn fragment(&mut self, index: u8) -> bool {
        self.landed();
        self.have.insert(index);
        self.have.len() >= self.k
    }

    /// The fragments in decode to something else: fetch one more, even of
    /// an index already in, to outvote the liars.
    pub(crate) fn undecodable(&mut self) -> Option<Ask> {
        self.next_fetch(true)
    }

    /// `peer` answered without the fragment asked: ask what it holds (if
    /// not asked yet), and fetch elsewhere meanwhile.
    pub(crate) fn missing(&mut self, peer: PeerId) -> Vec<Ask> {
        self.landed();
        let mut asks = Vec::new();
        if let Some(at) = self.unprobed.iter().position(|p| *p == peer) {
            self.unprobed.remove(at);
            self.in_flight += 1;
            asks.push(Ask::Probe(peer));
        }
        asks.extend(self.next_fetch(false));
        asks
    }

    /// `peer` holds `indices`: fetch them first, as many as still needed.
    pub(crate) fn held(&mut self, peer: PeerId, indices: &[u8]) -> Vec<Ask> {
        self.landed();
        for index in indices {
            self.queue.push_front((peer, *index));
        }
        let mut asks = Vec::new();
        while self.in_flight < self.k.saturating_sub(self.have.len()) {
            let Some(ask) = self.next_fetch(false) else { break };
            asks.push(ask);
        }
        asks
    }

    /// A request failed or was answered wrongly: try elsewhere.
    pub(crate) fn failed(&mut self) -> Option<Ask> {
        self.landed();
        self.next_fetch(false)
    }

    fn landed(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// The next fetch worth making; `any`: even of an index already in.
    fn next_fetch(&mut self, any: bool) -> Option<Ask> {
        while let Some((peer, index)) = self.queue.pop_front() {
            if (any || !self.have.contains(&index)) && self.asked.insert((peer, index)) {
                self.in_flight += 1;
                return Some(Ask::Fetch(peer, index));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_peers as peers;

    /// Fragment i on peer i, n = 4, k = 2; every peer also probe-able.
    fn plan(p: &[PeerId]) -> ReadPlan {
        ReadPlan::new(2, p.iter().enumerate().map(|(i, p)| (*p, i as u8)), p.to_vec())
    }

    #[test]
    fn starts_with_k_data_fragments() {
        let p = peers(4);
        let mut read = plan(&p);
        assert_eq!(read.start(), vec![Ask::Fetch(p[0], 0), Ask::Fetch(p[1], 1)]);
        assert!(!read.fragment(0));
        assert!(read.fragment(1), "k distinct fragments: decode");
        assert_eq!(read.found(), 2);
    }

    #[test]
    fn hedges_a_slow_answer_with_the_next_fragment() {
        let p = peers(4);
        let mut read = plan(&p);
        read.start();
        assert_eq!(read.slow(), Some(Ask::Fetch(p[2], 2)));
        assert_eq!(read.slow(), Some(Ask::Fetch(p[3], 3)));
        assert_eq!(read.slow(), None, "every candidate asked");
    }

    #[test]
    fn a_peer_without_its_fragment_is_probed_and_what_it_holds_fetched() {
        let p = peers(4);
        let mut read = plan(&p);
        read.start();
        assert_eq!(read.missing(p[0]), vec![Ask::Probe(p[0]), Ask::Fetch(p[2], 2)]);
        // The probe says p0 holds fragment 3 (handed over to it): fetched
        // first, but only as many as are still needed beyond those in flight.
        assert_eq!(read.held(p[0], &[3]), vec![]);
        assert!(!read.fragment(1));
        assert_eq!(read.failed(), Some(Ask::Fetch(p[0], 3)));
    }

    #[test]
    fn fragments_already_in_are_not_fetched_again_unless_outvoting() {
        let p = peers(3);
        // Two peers each hold fragment 0 and 1.
        let mut read =
            ReadPlan::new(2, [(p[0], 0), (p[1], 0), (p[0], 1), (p[1], 1), (p[2], 2)], Vec::new());
        assert_eq!(read.start(), vec![Ask::Fetch(p[0], 0), Ask::Fetch(p[1], 0)]);
        read.fragment(0);
        assert_eq!(read.failed(), Some(Ask::Fetch(p[0], 1)));
        assert!(read.fragment(1));
        // Decoding failed: gather one more, whatever its index.
        assert_eq!(read.undecodable(), Some(Ask::Fetch(p[1], 1)));
        assert_eq!(read.undecodable(), Some(Ask::Fetch(p[2], 2)));
        assert_eq!(read.undecodable(), None);
    }

    #[test]
    fn probes_close_peers_one_at_a_time_when_out_of_candidates() {
        let p = peers(3);
        let mut read = ReadPlan::new(2, [(p[0], 0)], p.to_vec());
        assert_eq!(read.start(), vec![Ask::Fetch(p[0], 0)]);
        assert_eq!(read.failed(), None);
        assert_eq!(read.idle(), Some(Ask::Probe(p[0])));
        assert_eq!(read.held(p[0], &[]), vec![]);
        assert_eq!(read.idle(), Some(Ask::Probe(p[1])));
        assert_eq!(read.held(p[1], &[2, 3]), vec![Ask::Fetch(p[1], 3), Ask::Fetch(p[1], 2)]);
        read.failed();
        read.failed();
        assert_eq!(read.idle(), Some(Ask::Probe(p[2])));
        read.failed();
        assert_eq!(read.idle(), None, "nowhere left to look");
    }
}
