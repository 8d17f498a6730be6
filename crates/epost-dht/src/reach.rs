//! Reachability, decided without I/O: whether this node can be dialled,
//! which relays it holds reservations on while it cannot, and what status
//! says about it.
//!
//! AutoNAT tells the node whether peers can dial it back (public) or not
//! (private). While it is private (and only then) it keeps reservations on
//! up to `target` relays, so that peers reach it through
//! `<relay>/p2p-circuit/p2p/<this node>`; a relay is a peer it dialled
//! itself at a direct address (so the relay is reachable) and that speaks
//! the relay protocol. A reservation that ends (the relay went away or
//! refused) is replaced by another candidate; a relay that refused is not
//! asked again for a while. Once AutoNAT says public the reservations are
//! given up. Connections that DCUtR hole-punched are counted, so status
//! can say the node talks to some peers directly despite its NAT.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

/// How long a relay that refused a reservation (or whose reservation
/// broke) is left alone.
pub(crate) const RELAY_BACKOFF: Duration = Duration::from_secs(60);

/// What AutoNAT last said about this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NatState {
    /// No verdict yet (too few peers asked, or none can probe).
    #[default]
    Unknown,
    /// Peers dialled it back at a public address.
    Public,
    /// Peers could not dial it back: behind NAT or a firewall.
    Private,
}

/// Reachability as status reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Reachability {
    pub state: NatState,
    /// Addresses peers confirmed they could dial (AutoNAT's).
    #[serde(default)]
    pub public_addrs: Vec<Multiaddr>,
    /// Circuit addresses through the relays this node holds reservations on.
    #[serde(default)]
    pub relays: Vec<Multiaddr>,
    /// Peers connected directly after a DCUtR hole punch.
    #[serde(default)]
    pub direct_peers: usize,
}

/// One reservation asked for or held.
#[derive(Debug)]
struct Reservation {
    listener: ListenerId,
    /// The circuit address, once the relay granted it.
    addr: Option<Multiaddr>,
}

/// The reachability state of one node.
#[derive(Debug)]
pub(crate) struct Reach {
    target: usize,
    nat: NatState,
    public_addrs: Vec<Multiaddr>,
    /// Peers that could relay for this node, at the address it dialled.
    candidates: BTreeMap<PeerId, Multiaddr>,
    reservations: BTreeMap<PeerId, Reservation>,
    /// Relays not to ask again before the instant.
    resting: BTreeMap<PeerId, Instant>,
    punched: BTreeSet<PeerId>,
}

impl Reach {
    /// Holding at most `target` reservations while private.
    pub(crate) fn new(target: usize) -> Self {
        Self {
            target,
            nat: NatState::Unknown,
            public_addrs: Vec::new(),
            candidates: BTreeMap::new(),
            reservations: BTreeMap::new(),
            resting: BTreeMap::new(),
            punched: BTreeSet::new(),
        }
    }

    /// AutoNAT's new verdict, with the confirmed address when public.
    pub(crate) fn on_nat(&mut self, nat: NatState, public: Option<Multiaddr>) {
        self.nat = nat;
        self.public_addrs = public.into_iter().collect();
    }

    /// `peer` speaks the relay protocol and this node dialled it at `addr`.
    pub(crate) fn on_candidate(&mut self, peer: PeerId, addr: Multiaddr) {
        if !crate::addr::is_relayed(&addr) {
            self.candidates.insert(peer, addr);
        }
    }

    /// Every connection to `peer` closed.
    pub(crate) fn on_disconnected(&mut self, peer: &PeerId) {
        self.candidates.remove(peer);
        self.punched.remove(peer);
    }

    /// A hole punch to `peer` gave a direct connection.
    pub(crate) fn on_punched(&mut self, peer: PeerId) {
        self.punched.insert(peer);
    }

    /// A reservation on `relay` was asked for under `listener`.
    pub(crate) fn on_reserving(&mut self, relay: PeerId, listener: ListenerId) {
        self.reservations.insert(relay, Reservation { listener, addr: None });
    }

    /// `listener` reports its circuit address: the relay granted it.
    pub(crate) fn on_listening(&mut self, listener: ListenerId, addr: Multiaddr) {
        if let Some(r) = self.reservations.values_mut().find(|r| r.listener == listener) {
            r.addr = Some(addr);
        }
    }

    /// `listener` closed: its relay refused, went away or was given up.
    /// Returns the relay, if it was a reservation's.
    pub(crate) fn on_listener_closed(
        &mut self,
        listener: ListenerId,
        now: Instant,
    ) -> Option<PeerId> {
        let relay = *self.reservations.iter().find(|(_, r)| r.listener == listener)?.0;
        self.reservations.remove(&relay);
        self.resting.insert(relay, now + RELAY_BACKOFF);
        Some(relay)
    }

    /// Relays to ask for a reservation now, each with the address to reach
    /// it at: while private, enough to hold `target`.
    pub(crate) fn reservations_wanted(&mut self, now: Instant) -> Vec<(PeerId, Multiaddr)> {
        self.resting.retain(|_, until| *until > now);
        if self.nat != NatState::Private {
            return Vec::new();
        }
        let missing = self.target.saturating_sub(self.reservations.len());
        self.candidates
            .iter()
            .filter(|(peer, _)| !self.reservations.contains_key(peer))
            .filter(|(peer, _)| !self.resting.contains_key(peer))
            .filter(|(peer, _)| !self.punched.contains(peer))
            .take(missing)
            .map(|(peer, addr)| (*peer, addr.clone()))
            .collect()
    }

    /// Reservations to give up now: all of them once public.
    pub(crate) fn reservations_unwanted(&self) -> Vec<ListenerId> {
        if self.nat != NatState::Public {
            return Vec::new();
        }
        self.reservations.values().map(|r| r.listener).collect()
    }

    /// What status shows.
    pub(crate) fn status(&self) -> Reachability {
        Reachability {
            state: self.nat,
            public_addrs: self.public_addrs.clone(),
            relays: self.reservations.values().filter_map(|r| r.addr.clone()).collect(),
            direct_peers: self.punched.len(),
        }
    }
}

/// The address to listen on for a reservation on `relay`, reached at `addr`.
pub(crate) fn circuit_listen(relay: PeerId, addr: &Multiaddr) -> Multiaddr {
    let mut at = addr.clone();
    if !matches!(at.iter().last(), Some(Protocol::P2p(_))) {
        at.push(Protocol::P2p(relay));
    }
    at.with(Protocol::P2pCircuit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8) -> PeerId {
        crate::peer_id_of([n; 32]).unwrap()
    }

    fn at(n: u8) -> Multiaddr {
        format!("/ip4/203.0.113.{n}/tcp/4100").parse().unwrap()
    }

    #[test]
    fn reserves_only_while_private_and_up_to_the_target() {
        let t0 = Instant::now();
        let mut reach = Reach::new(2);
        for n in 1..=3 {
            reach.on_candidate(peer(n), at(n));
        }
        // (verdict, reservations wanted)
        let table = [(NatState::Unknown, 0), (NatState::Public, 0), (NatState::Private, 2)];
        for (nat, wanted) in table {
            reach.on_nat(nat, None);
            assert_eq!(reach.reservations_wanted(t0).len(), wanted, "{nat:?}");
        }
    }

    #[test]
    fn a_closed_reservation_is_replaced_by_another_relay_and_the_first_rests() {
        let t0 = Instant::now();
        let mut reach = Reach::new(1);
        reach.on_nat(NatState::Private, None);
        reach.on_candidate(peer(1), at(1));
        reach.on_candidate(peer(2), at(2));
        let first = reach.reservations_wanted(t0);
        assert_eq!(first.len(), 1);
        let listener = ListenerId::next();
        reach.on_reserving(first[0].0, listener);
        assert!(reach.reservations_wanted(t0).is_empty(), "the target is held");
        let circuit = circuit_listen(first[0].0, &first[0].1);
        reach.on_listening(listener, circuit.clone());
        assert_eq!(reach.status().relays, vec![circuit]);

        assert_eq!(reach.on_listener_closed(listener, t0), Some(first[0].0));
        let second = reach.reservations_wanted(t0);
        assert_eq!(second.len(), 1);
        assert_ne!(second[0].0, first[0].0, "the relay that failed rests");
        // After the rest, the first relay is a candidate again.
        let listener = ListenerId::next();
        reach.on_reserving(second[0].0, listener);
        reach.on_disconnected(&second[0].0);
        reach.on_listener_closed(listener, t0);
        let later = reach.reservations_wanted(t0 + RELAY_BACKOFF + Duration::from_secs(1));
        assert_eq!(later.iter().map(|c| c.0).collect::<Vec<_>>(), vec![first[0].0]);
    }

    #[test]
    fn relayed_and_hole_punched_peers_are_not_relays() {
        let t0 = Instant::now();
        let mut reach = Reach::new(3);
        reach.on_nat(NatState::Private, None);
        let circuit: Multiaddr = format!("{}/p2p/{}/p2p-circuit", at(1), peer(1)).parse().unwrap();
        reach.on_candidate(peer(2), circuit);
        reach.on_candidate(peer(3), at(3));
        reach.on_punched(peer(3));
        reach.on_candidate(peer(4), at(4));
        let chosen: Vec<PeerId> = reach.reservations_wanted(t0).into_iter().map(|c| c.0).collect();
        assert_eq!(chosen, vec![peer(4)]);
        assert_eq!(reach.status().direct_peers, 1);
    }

    #[test]
    fn going_public_releases_every_reservation() {
        let mut reach = Reach::new(2);
        reach.on_nat(NatState::Private, None);
        let (a, b) = (ListenerId::next(), ListenerId::next());
        reach.on_reserving(peer(1), a);
        reach.on_reserving(peer(2), b);
        assert!(reach.reservations_unwanted().is_empty());
        reach.on_nat(NatState::Public, Some(at(9)));
        let mut released = reach.reservations_unwanted();
        released.sort_by_key(|l| format!("{l:?}"));
        let mut want = vec![a, b];
        want.sort_by_key(|l| format!("{l:?}"));
        assert_eq!(released, want);
        assert_eq!(reach.status().public_addrs, vec![at(9)]);
    }

    #[test]
    fn circuit_addresses_name_the_relay_once() {
        let relay = peer(1);
        let bare = circuit_listen(relay, &at(1));
        let named = circuit_listen(relay, &at(1).with(Protocol::P2p(relay)));
        assert_eq!(bare, named);
        assert!(bare.to_string().ends_with(&format!("/p2p/{relay}/p2p-circuit")));
    }
}
