//! The event loop's side of reachability: AutoNAT, relay client and DCUtR
//! events in, reservations (circuit listeners) out. What to do is decided
//! in `reach`; this only carries it out.

use std::time::Instant;

use libp2p::core::transport::ListenerId;
use libp2p::core::{ConnectedPoint, Endpoint};
use libp2p::{PeerId, autonat, dcutr, relay};
use tracing::{debug, info, warn};

use crate::event_loop::EventLoop;
use crate::reach::{NatState, circuit_listen};

impl EventLoop {
    /// Remembers where this node dialled `peer` (a relay must be a peer
    /// this node reached by itself, at a direct address).
    pub(crate) fn on_connection_endpoint(&mut self, peer: PeerId, endpoint: &ConnectedPoint) {
        if let ConnectedPoint::Dialer { address, role_override: Endpoint::Dialer, .. } = endpoint
            && !crate::addr::is_relayed(address)
        {
            self.dialled.insert(peer, address.clone());
        }
    }

    /// `peer` serves the relay protocol.
    pub(crate) fn on_relay_candidate(&mut self, peer: PeerId) {
        if let Some(addr) = self.dialled.get(&peer).cloned() {
            self.reach.on_candidate(peer, addr);
            self.drive_reach();
        }
    }

    pub(crate) fn on_autonat(&mut self, event: autonat::Event) {
        let autonat::Event::StatusChanged { new, .. } = event else { return };
        let (state, public) = match new {
            autonat::NatStatus::Public(addr) => (NatState::Public, Some(addr)),
            autonat::NatStatus::Private => (NatState::Private, None),
            autonat::NatStatus::Unknown => (NatState::Unknown, None),
        };
        match &public {
            Some(addr) => info!(%addr, "peers can dial this node: publicly reachable"),
            None if state == NatState::Private => {
                info!("peers cannot dial this node (NAT or firewall); reserving on relays")
            }
            None => info!("reachability unknown again"),
        }
        self.reach.on_nat(state, public);
        self.drive_reach();
    }

    pub(crate) fn on_relay_client(&mut self, event: relay::client::Event) {
        match event {
            relay::client::Event::ReservationReqAccepted {
                relay_peer_id, renewal: false, ..
            } => {
                info!(relay = %relay_peer_id, "relay reservation accepted: reachable through it");
            }
            other => debug!(?other, "relay client"),
        }
    }

    pub(crate) fn on_dcutr(&mut self, event: dcutr::Event) {
        match event.result {
            Ok(_) => {
                info!(peer = %event.remote_peer_id, "hole punched: direct connection");
                self.reach.on_punched(event.remote_peer_id);
            }
            Err(error) => debug!(peer = %event.remote_peer_id, %error, "hole punch failed"),
        }
    }

    /// A listener closed; if it held a reservation, another relay is asked.
    pub(crate) fn on_listener_closed(
        &mut self,
        listener: ListenerId,
        error: Option<std::io::Error>,
    ) {
        if let Some(relay) = self.reach.on_listener_closed(listener, Instant::now()) {
            match error {
                Some(error) => warn!(%relay, %error, "relay reservation ended"),
                None => info!(%relay, "relay reservation given up"),
            }
            self.drive_reach();
        }
    }

    /// Asks for the reservations `reach` wants and gives up those it
    /// no longer wants.
    pub(crate) fn drive_reach(&mut self) {
        for (relay, addr) in self.reach.reservations_wanted(Instant::now()) {
            let circuit = circuit_listen(relay, &addr);
            match self.swarm.listen_on(circuit.clone()) {
                Ok(listener) => {
                    debug!(%circuit, "asking for a relay reservation");
                    self.reach.on_reserving(relay, listener);
                }
                Err(error) => warn!(%circuit, %error, "cannot ask for a relay reservation"),
            }
        }
        for listener in self.reach.reservations_unwanted() {
            self.swarm.remove_listener(listener);
        }
    }
}
