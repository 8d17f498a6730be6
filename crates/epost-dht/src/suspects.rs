//! Peers whose last dial failed, decided without I/O: a request to one of
//! them fails at once for a while instead of dialling again.
//!
//! A dial to a peer that is gone costs the slowest of its addresses (a QUIC
//! handshake to a silent host waits its whole timeout, 5 s), and a put, a
//! read or a notification that meets such a peer would pay that on every
//! request, one after another. So after a failed dial the peer is held off
//! for 5 s, doubling with each further failure up to 60 s: requests to it
//! fail as unreachable at once, and the caller moves on to the next peer
//! (placement's spares, the next holder). Any connection with the peer, in
//! either direction, clears it. The table is bounded; the oldest entries go
//! first.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// Held off after the first failed dial.
pub(crate) const FIRST_HOLD: Duration = Duration::from_secs(5);
/// Longest hold.
pub(crate) const MAX_HOLD: Duration = Duration::from_secs(60);
/// Peers remembered at most.
const MAX_SUSPECTS: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Suspect {
    failures: u32,
    until: Instant,
}

/// The peers held off, and until when.
#[derive(Debug, Default)]
pub(crate) struct Suspects {
    peers: HashMap<PeerId, Suspect>,
}

impl Suspects {
    /// A dial to `peer` failed on every address.
    pub(crate) fn on_dial_failed(&mut self, peer: PeerId, now: Instant) {
        if self.peers.len() >= MAX_SUSPECTS && !self.peers.contains_key(&peer) {
            self.forget_oldest();
        }
        let entry = self.peers.entry(peer).or_insert(Suspect { failures: 0, until: now });
        entry.failures = entry.failures.saturating_add(1);
        entry.until = now + hold(entry.failures);
    }

    /// A connection with `peer` is up.
    pub(crate) fn on_connected(&mut self, peer: &PeerId) {
        self.peers.remove(peer);
    }

    /// How much longer requests to `peer` fail at once, if they do.
    pub(crate) fn held_off(&self, peer: &PeerId, now: Instant) -> Option<Duration> {
        let suspect = self.peers.get(peer)?;
        (suspect.until > now).then(|| suspect.until - now)
    }

    fn forget_oldest(&mut self) {
        if let Some(oldest) = self.peers.iter().min_by_key(|(_, s)| s.until).map(|(p, _)| *p) {
            self.peers.remove(&oldest);
        }
    }
}

/// The hold after `failures` failed dials in a row.
fn hold(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(8);
    FIRST_HOLD.saturating_mul(1 << doublings).min(MAX_HOLD)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(i: u32) -> PeerId {
        let mut seed = [0u8; 32];
        seed[..4].copy_from_slice(&i.to_le_bytes());
        crate::peer_id_of(seed).unwrap()
    }

    #[test]
    fn holds_double_up_to_a_minute() {
        let table = [(1, 5), (2, 10), (3, 20), (4, 40), (5, 60), (40, 60)];
        for (failures, secs) in table {
            assert_eq!(hold(failures), Duration::from_secs(secs), "{failures}");
        }
    }

    #[test]
    fn a_failed_peer_is_held_off_until_its_hold_ends_or_it_connects() {
        let t0 = Instant::now();
        let (a, b) = (peer(1), peer(2));
        let mut suspects = Suspects::default();
        assert_eq!(suspects.held_off(&a, t0), None);
        suspects.on_dial_failed(a, t0);
        assert_eq!(suspects.held_off(&a, t0), Some(FIRST_HOLD));
        assert_eq!(suspects.held_off(&a, t0 + FIRST_HOLD), None, "the hold ended");
        assert_eq!(suspects.held_off(&b, t0), None);
        // Failing again holds it longer; connecting clears it.
        suspects.on_dial_failed(a, t0 + FIRST_HOLD);
        assert_eq!(suspects.held_off(&a, t0 + FIRST_HOLD), Some(FIRST_HOLD * 2));
        suspects.on_connected(&a);
        assert_eq!(suspects.held_off(&a, t0 + FIRST_HOLD), None);
    }

    #[test]
    fn the_table_is_bounded() {
        let t0 = Instant::now();
        let mut suspects = Suspects::default();
        let first = peer(0);
        suspects.on_dial_failed(first, t0);
        for i in 0..MAX_SUSPECTS {
            suspects.on_dial_failed(peer(i as u32 + 1), t0 + Duration::from_millis(i as u64 + 1));
        }
        assert_eq!(suspects.peers.len(), MAX_SUSPECTS);
        assert_eq!(suspects.held_off(&first, t0), None, "the oldest went first");
    }
}
