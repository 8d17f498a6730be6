//! Who may keep how much here (`spec/security.md` section 3.6.1): a holder
//! keeps at most `capacity` bytes of fragments, and charges every fragment
//! to the peer that last asked it to keep it (by `Store`, `Extend` or
//! `Renew`). A peer may be charged at most its quota, a share of the
//! capacity with a floor; this node's own fragments count against the
//! capacity only.
//!
//! [`admit`] decides, without I/O; [`Charges`] keeps the totals in memory
//! (rebuilt from the store at start and after every garbage collection)
//! and reserves what a request was admitted for until it is written, so
//! requests answered at once cannot overshoot a quota together.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use epost_dht::PeerId;

/// Peers that may be charged at once at most: past this a newcomer is
/// refused (every entry stands for fragments on disk, so the capacity
/// bounds it too; this bounds it tighter).
pub const MAX_SPONSORS: usize = 65_536;

/// The limits, from the node's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaLimits {
    /// Bytes of fragments this node keeps at most, its own included.
    pub capacity: u64,
    /// A peer's quota: this share of the capacity (percent, 1 to 100)...
    pub peer_percent: u8,
    /// ...or this many bytes if that is more (never above the capacity).
    pub peer_floor: u64,
}

impl Default for QuotaLimits {
    fn default() -> Self {
        Self { capacity: 100 * GIB, peer_percent: 25, peer_floor: GIB }
    }
}

const GIB: u64 = 1024 * 1024 * 1024;

impl QuotaLimits {
    /// Bytes one peer may be charged here.
    pub fn per_peer(&self) -> u64 {
        let share = self.capacity / 100 * u64::from(self.peer_percent.min(100))
            + self.capacity % 100 * u64::from(self.peer_percent.min(100)) / 100;
        share.max(self.peer_floor).min(self.capacity)
    }
}

/// Who asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Asker {
    /// This node, for its own share of a put or a repair it leads.
    Own,
    /// A peer; `known` if it is charged for something already.
    Peer { known: bool },
}

/// What a request would change, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Ask {
    /// Not on disk yet.
    pub(crate) new: u64,
    /// Added to the asker's account: the new bytes, and held fragments
    /// charged to someone else until now.
    pub(crate) charged: u64,
}

/// Where things stand before the request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    /// Bytes of fragments on disk, plus those admitted and being written.
    pub(crate) stored: u64,
    /// Bytes charged to the asker.
    pub(crate) asker: u64,
    /// Peers charged for something.
    pub(crate) sponsors: usize,
}

/// The decision on one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    Accept,
    /// The node's capacity would be exceeded: answered `NoSpace`.
    Full {
        stored: u64,
        capacity: u64,
    },
    /// The asker's quota would be exceeded: answered `OverQuota`.
    OverQuota {
        charged: u64,
        quota: u64,
    },
    /// Too many peers are charged already for a new one: `OverQuota`.
    TooManyPeers {
        max: usize,
    },
}

/// Whether a request of `ask` from `who` fits, given `usage`.
pub(crate) fn admit(limits: &QuotaLimits, who: Asker, usage: Usage, ask: Ask) -> Admission {
    if ask.new > 0 && usage.stored.saturating_add(ask.new) > limits.capacity {
        return Admission::Full { stored: usage.stored, capacity: limits.capacity };
    }
    let Asker::Peer { known } = who else { return Admission::Accept };
    if ask.charged == 0 {
        // Only what it is charged for already: extending its own is free.
        return Admission::Accept;
    }
    if !known && usage.sponsors >= MAX_SPONSORS {
        return Admission::TooManyPeers { max: MAX_SPONSORS };
    }
    let quota = limits.per_peer();
    if usage.asker.saturating_add(ask.charged) > quota {
        return Admission::OverQuota { charged: usage.asker, quota };
    }
    Admission::Accept
}

/// The totals, for status and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaStats {
    pub limits: QuotaLimits,
    /// Peers charged for something now (this node included).
    pub sponsors: usize,
    /// The most any one peer other than this node is charged.
    pub largest_peer: u64,
}

#[derive(Debug, Default)]
struct Ledger {
    charged: HashMap<PeerId, u64>,
    /// Admitted and not yet written (or failed).
    admitted: u64,
}

impl Ledger {
    fn add(&mut self, peer: PeerId, bytes: u64) {
        if bytes > 0 {
            *self.charged.entry(peer).or_default() += bytes;
        }
    }

    fn sub(&mut self, peer: PeerId, bytes: u64) {
        if let Some(total) = self.charged.get_mut(&peer) {
            *total = total.saturating_sub(bytes);
            if *total == 0 {
                self.charged.remove(&peer);
            }
        }
    }
}

/// Bytes charged to each peer, shared by every holder task.
#[derive(Debug, Clone)]
pub(crate) struct Charges {
    ledger: Arc<Mutex<Ledger>>,
    limits: QuotaLimits,
    own: PeerId,
}

/// Held fragments a request takes over, with their sizes, from their
/// sponsors (`None`: charged to nobody, held since before charges).
pub(crate) type Moves = Vec<(Option<PeerId>, u64)>;

/// Bytes of `moves` that are not `peer`'s already.
fn taken_over(peer: PeerId, moves: &Moves) -> u64 {
    moves.iter().filter(|(from, _)| *from != Some(peer)).map(|(_, n)| *n).sum()
}

impl Charges {
    pub(crate) fn new(limits: QuotaLimits, own: PeerId) -> Self {
        Self { ledger: Arc::default(), limits, own }
    }

    fn lock(&self) -> MutexGuard<'_, Ledger> {
        // A panic elsewhere leaves totals that are at worst stale: go on.
        self.ledger.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Decides on a request from `peer` adding `new` bytes to the disk and
    /// taking over `moves` from other sponsors, with `stored` bytes on disk
    /// now; if admitted, charges it until the [`Reservation`] is dropped
    /// uncommitted.
    pub(crate) fn reserve(
        &self,
        peer: PeerId,
        stored: u64,
        new: u64,
        moves: Moves,
    ) -> Result<Reservation, Admission> {
        let mut ledger = self.lock();
        let moved = taken_over(peer, &moves);
        let ask = Ask { new, charged: new + moved };
        let who = if peer == self.own {
            Asker::Own
        } else {
            Asker::Peer { known: ledger.charged.contains_key(&peer) }
        };
        let usage = Usage {
            stored: stored.saturating_add(ledger.admitted),
            asker: ledger.charged.get(&peer).copied().unwrap_or(0),
            sponsors: ledger.charged.len(),
        };
        match admit(&self.limits, who, usage, ask) {
            Admission::Accept => {}
            refused => return Err(refused),
        }
        ledger.admitted += new;
        ledger.add(peer, new + moved);
        for (from, bytes) in &moves {
            if let Some(from) = from.filter(|f| *f != peer) {
                ledger.sub(from, *bytes);
            }
        }
        drop(ledger);
        Ok(Reservation { charges: self.clone(), peer, new, moves, done: false })
    }

    /// A fragment charged to `sponsor` is gone from disk.
    pub(crate) fn release(&self, sponsor: PeerId, bytes: u64) {
        self.lock().sub(sponsor, bytes);
    }

    /// Replaces the totals with a recount from the store.
    pub(crate) fn replace(&self, totals: HashMap<PeerId, u64>) {
        self.lock().charged = totals;
    }

    /// Bytes charged to `peer` now.
    pub(crate) fn of(&self, peer: &PeerId) -> u64 {
        self.lock().charged.get(peer).copied().unwrap_or(0)
    }

    pub(crate) fn stats(&self) -> QuotaStats {
        let ledger = self.lock();
        let largest_peer = ledger
            .charged
            .iter()
            .filter(|(peer, _)| **peer != self.own)
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(0);
        QuotaStats { limits: self.limits, sponsors: ledger.charged.len(), largest_peer }
    }
}

/// An admitted request's charge: [`Self::commit`] once it is written;
/// dropped uncommitted (the write failed), it is taken back.
#[derive(Debug)]
pub(crate) struct Reservation {
    charges: Charges,
    peer: PeerId,
    new: u64,
    moves: Moves,
    done: bool,
}

impl Reservation {
    pub(crate) fn commit(mut self) {
        self.done = true;
        let mut ledger = self.charges.lock();
        ledger.admitted = ledger.admitted.saturating_sub(self.new);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut ledger = self.charges.lock();
        ledger.admitted = ledger.admitted.saturating_sub(self.new);
        ledger.sub(self.peer, self.new + taken_over(self.peer, &self.moves));
        for (from, bytes) in &self.moves {
            if let Some(from) = from.filter(|f| *f != self.peer) {
                ledger.add(from, *bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn limits() -> QuotaLimits {
        QuotaLimits { capacity: 1000 * MIB, peer_percent: 25, peer_floor: 100 * MIB }
    }

    #[test]
    fn a_peers_quota_is_a_share_with_a_floor_within_the_capacity() {
        let cases = [
            // (capacity, percent, floor, quota)
            (1000, 25, 100, 250),
            (1000, 25, 400, 400),
            (1000, 100, 0, 1000),
            (1000, 1, 0, 10),
            (100, 25, 400, 100),
            (u64::MAX / MIB, 50, 0, u64::MAX / MIB / 2),
        ];
        for (capacity, peer_percent, floor, quota) in cases {
            let limits =
                QuotaLimits { capacity: capacity * MIB, peer_percent, peer_floor: floor * MIB };
            assert_eq!(limits.per_peer() / MIB, quota, "{limits:?}");
        }
        assert_eq!(QuotaLimits::default().per_peer(), 25 * GIB);
    }

    #[test]
    fn decisions() {
        let peer = Asker::Peer { known: true };
        let stranger = Asker::Peer { known: false };
        let usage = |stored, asker| Usage { stored: stored * MIB, asker: asker * MIB, sponsors: 3 };
        let ask = |new, charged| Ask { new: new * MIB, charged: charged * MIB };
        let over = |charged| Admission::OverQuota { charged: charged * MIB, quota: 250 * MIB };
        let full = |stored| Admission::Full { stored: stored * MIB, capacity: 1000 * MIB };
        let cases = [
            // (what, who, usage, ask, decision)
            ("a new peer's first fragments", stranger, usage(0, 0), ask(10, 10), Admission::Accept),
            ("up to the quota exactly", peer, usage(500, 240), ask(10, 10), Admission::Accept),
            ("a MiB past the quota", peer, usage(500, 241), ask(10, 10), over(241)),
            ("past the quota", peer, usage(500, 245), ask(10, 10), over(245)),
            ("taking over others' fragments counts", peer, usage(500, 245), ask(0, 10), over(245)),
            (
                "extending its own costs nothing",
                peer,
                usage(999, 250),
                ask(0, 0),
                Admission::Accept,
            ),
            ("past the capacity", peer, usage(995, 0), ask(10, 10), full(995)),
            (
                "the capacity binds this node too",
                Asker::Own,
                usage(995, 900),
                ask(10, 10),
                full(995),
            ),
            ("this node has no quota", Asker::Own, usage(500, 900), ask(10, 10), Admission::Accept),
            (
                "a full disk does not stop an extension",
                peer,
                usage(1000, 0),
                ask(0, 10),
                Admission::Accept,
            ),
        ];
        for (what, who, usage, ask, expected) in cases {
            assert_eq!(admit(&limits(), who, usage, ask), expected, "{what}");
        }
        let crowded = Usage { sponsors: MAX_SPONSORS, ..Usage::default() };
        assert_eq!(
            admit(&limits(), stranger, crowded, ask(1, 1)),
            Admission::TooManyPeers { max: MAX_SPONSORS }
        );
        assert_eq!(admit(&limits(), peer, crowded, ask(1, 1)), Admission::Accept, "known already");
    }

    fn peer(n: u8) -> PeerId {
        epost_dht::peer_id_of([n; 32]).unwrap()
    }

    #[test]
    fn reservations_count_until_written_and_are_taken_back_on_failure() {
        let charges = Charges::new(limits(), peer(0));
        // Two requests admitted at once cannot overshoot the quota together.
        let first = charges.reserve(peer(1), 0, 200 * MIB, Vec::new()).unwrap();
        let second = charges.reserve(peer(1), 0, 100 * MIB, Vec::new());
        assert_eq!(
            second.unwrap_err(),
            Admission::OverQuota { charged: 200 * MIB, quota: 250 * MIB }
        );
        // The capacity counts what is admitted and not yet on disk.
        let third = charges.reserve(peer(2), 700 * MIB, 150 * MIB, Vec::new());
        assert!(matches!(third.unwrap_err(), Admission::Full { .. }));
        first.commit();
        assert_eq!(charges.of(&peer(1)), 200 * MIB);

        // Taking over peer 1's fragments moves them to peer 2's account...
        let moved =
            charges.reserve(peer(2), 200 * MIB, 0, vec![(Some(peer(1)), 50 * MIB)]).unwrap();
        assert_eq!((charges.of(&peer(1)), charges.of(&peer(2))), (150 * MIB, 50 * MIB));
        // ...and back when the write fails.
        drop(moved);
        assert_eq!((charges.of(&peer(1)), charges.of(&peer(2))), (200 * MIB, 0));
        assert_eq!(charges.stats().sponsors, 1);

        // This node's own share is charged but never over a quota.
        charges.reserve(peer(0), 200 * MIB, 600 * MIB, Vec::new()).unwrap().commit();
        assert_eq!(charges.stats().largest_peer, 200 * MIB);
        charges.release(peer(1), 200 * MIB);
        assert_eq!(charges.stats().sponsors, 1, "peer 1 is forgotten at zero");
        // A fragment charged to nobody (stored before charges) is adopted.
        charges.reserve(peer(3), 0, 0, vec![(None, 10 * MIB)]).unwrap().commit();
        assert_eq!(charges.of(&peer(3)), 10 * MIB);
    }
}
