//! Where an object's fragments live: fragment i on the i-th closest peer to
//! the object id; with fewer peers than fragments, wrapped round the peers
//! as evenly as possible (peer i mod p), so every peer holds ⌈n/p⌉ or ⌊n/p⌋.

use epost_dht::PeerId;

/// One object's assignment of fragment indices to peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Peers closest to the object id, closest first, at most n of them.
    pub peers: Vec<PeerId>,
    pub n: usize,
}

impl Placement {
    /// `closest` must be sorted by distance to the object id.
    pub fn new(closest: &[PeerId], n: usize) -> Self {
        Self { peers: closest.iter().take(n).copied().collect(), n }
    }

    /// The peer that should hold fragment `index`.
    pub fn holder(&self, index: usize) -> Option<PeerId> {
        (!self.peers.is_empty()).then(|| self.peers[index % self.peers.len()])
    }

    /// The fragment indices `peer` should hold.
    pub fn indices_of(&self, peer: &PeerId) -> Vec<usize> {
        (0..self.n).filter(|i| self.holder(*i).as_ref() == Some(peer)).collect()
    }

    /// Fragments acknowledged before a put counts as durable: k + ⌈m/2⌉, or
    /// all of them when the network has fewer peers than that (then
    /// `status` warns that redundancy is reduced).
    pub fn required(&self, k: usize) -> usize {
        let m = self.n - k;
        let wanted = k + m.div_ceil(2);
        if self.peers.len() < wanted { self.n } else { wanted }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::test_peers as peers;

    #[test]
    fn one_fragment_per_peer_when_there_are_enough() {
        let p = peers(10);
        let placement = Placement::new(&p, 8);
        for (i, peer) in p.iter().take(8).enumerate() {
            assert_eq!(placement.holder(i), Some(*peer));
        }
        assert!(placement.indices_of(&p[8]).is_empty());
        assert_eq!(placement.required(4), 6);
    }

    #[test]
    fn wraps_evenly_on_small_networks() {
        let p = peers(3);
        let placement = Placement::new(&p, 8);
        let counts: Vec<usize> = p.iter().map(|peer| placement.indices_of(peer).len()).collect();
        assert_eq!(counts, vec![3, 3, 2]);
        assert_eq!(placement.required(4), 8, "fewer peers than k+m/2: every fragment");
        let alone = Placement::new(&p[..1], 8);
        assert_eq!(alone.indices_of(&p[0]).len(), 8);
    }
}
