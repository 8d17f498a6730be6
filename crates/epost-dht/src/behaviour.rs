//! The composed libp2p behaviour: Kademlia for routing and small records,
//! identify to learn peers' listen addresses (and this node's observed
//! ones), ping to keep connections honest, `/epost/frag/1` for fragments,
//! `/epost/notify/1` for notifications, a block list of peers this node
//! refuses to talk to (an operator's ban, a flooding peer's short block,
//! or a test's partition), connection limits (`guard`), and reachability:
//! AutoNAT, circuit relay v2 (client and server) and DCUtR.

use std::time::Duration;

use libp2p::kad::store::{MemoryStore, MemoryStoreConfig};
use libp2p::kad::{self, StoreInserts};
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    PeerId, StreamProtocol, allow_block_list, autonat, connection_limits, dcutr, identify,
    identity, memory_connection_limits, ping, relay, request_response,
};

use crate::config::{DhtConfig, ReachConfig, RelayLimits};
use crate::frag::Frag;
use crate::notify::Notify;
use crate::protocol::{Codec, Protocol};
use crate::rpc;

/// Kademlia's protocol name: ours, so we never mix with the public IPFS DHT.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/epost/kad/1");
const IDENTIFY_PROTOCOL: &str = "/epost/id/1";

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// First, so a blocked peer's connection is denied before any other
    /// behaviour sees it.
    pub(crate) blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    /// Next, so no connection over a limit reaches a protocol.
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) memory: memory_connection_limits::Behaviour,
    pub(crate) kad: kad::Behaviour<MemoryStore>,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) frag: rpc::Behaviour<Frag>,
    pub(crate) notify: rpc::Behaviour<Notify>,
    pub(crate) autonat: autonat::Behaviour,
    /// Reservations on relays and connections through them (the swarm's
    /// relay transport's other half).
    pub(crate) relay_client: relay::client::Behaviour,
    /// Relaying for others, when `reach.serve_relay`.
    pub(crate) relay: Toggle<relay::Behaviour>,
    pub(crate) dcutr: dcutr::Behaviour,
}

impl Behaviour {
    pub(crate) fn new(
        key: &identity::Keypair,
        relay_client: relay::client::Behaviour,
        config: &DhtConfig,
    ) -> Self {
        let peer_id = PeerId::from(key.public());

        let mut kad_config = kad::Config::new(KAD_PROTOCOL);
        // Inbound records are validated by the event loop before they are
        // kept: bad signature, wrong key or a stale sequence is refused.
        kad_config.set_record_filtering(StoreInserts::FilterBoth);
        kad_config.set_query_timeout(config.query_timeout);
        kad_config.set_max_packet_size(kad_packet_limit());
        kad_config.set_replication_factor(config.replication);
        // Records live for the TTL from their owner's last put; owners
        // republish themselves (identity, log heads), so Kademlia's own
        // 22-hour republication is off, and its hourly replication to new
        // closest peers carries the remaining TTL.
        kad_config.set_record_ttl(Some(config.record_ttl));
        kad_config.set_publication_interval(None);
        let store = MemoryStore::with_config(
            peer_id,
            MemoryStoreConfig {
                max_records: config.max_records,
                max_value_bytes: crate::MAX_RECORD_VALUE,
                ..MemoryStoreConfig::default()
            },
        );
        let mut kad = kad::Behaviour::with_config(peer_id, store, kad_config);
        // Every epost node serves the DHT; there are no client-only nodes.
        kad.set_mode(Some(kad::Mode::Server));

        let identify = identify::Behaviour::new(
            identify::Config::new(IDENTIFY_PROTOCOL.to_owned(), key.public())
                .with_agent_version(format!("epost/{}", env!("CARGO_PKG_VERSION")))
                // A relay reservation's address reaches connected peers now,
                // not at the next periodic identify.
                .with_push_listen_addr_updates(true),
        );
        let ping = ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_secs(15)));
        Self {
            blocked: allow_block_list::Behaviour::default(),
            limits: crate::guard::connection_limits(&config.connections),
            memory: crate::guard::memory_limit(&config.connections),
            kad,
            identify,
            ping,
            frag: request_response_of(config),
            notify: request_response_of(config),
            autonat: autonat::Behaviour::new(peer_id, autonat_config(&config.reach)),
            relay_client,
            relay: Toggle::from(
                config
                    .reach
                    .serve_relay
                    .then(|| relay::Behaviour::new(peer_id, relay_config(&config.reach.relay))),
            ),
            dcutr: dcutr::Behaviour::new(peer_id),
        }
    }
}

/// AutoNAT: probes soon after start, then as libp2p's defaults say.
fn autonat_config(reach: &ReachConfig) -> autonat::Config {
    autonat::Config {
        boot_delay: reach.probe_delay,
        only_global_ips: !reach.probe_private,
        ..autonat::Config::default()
    }
}

/// A relay's limits, from ours; libp2p's default rate limits stay.
fn relay_config(limits: &RelayLimits) -> relay::Config {
    relay::Config {
        max_reservations: limits.max_reservations,
        max_reservations_per_peer: limits.max_reservations_per_peer,
        reservation_duration: limits.reservation_duration,
        max_circuits: limits.max_circuits,
        max_circuits_per_peer: limits.max_circuits_per_peer,
        max_circuit_duration: limits.max_circuit_duration,
        max_circuit_bytes: limits.max_circuit_bytes,
        ..relay::Config::default()
    }
}

/// One request-response protocol, spoken both ways, with the configured
/// timeout and stream limit (each protocol has its own streams).
fn request_response_of<P: Protocol>(config: &DhtConfig) -> rpc::Behaviour<P> {
    request_response::Behaviour::with_codec(
        Codec::default(),
        [(P::NAME, request_response::ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(config.request_timeout)
            .with_max_concurrent_streams(config.max_concurrent_streams),
    )
}

/// Kademlia packets carry only small records; 16 KiB as the design says.
const fn kad_packet_limit() -> usize {
    16 * 1024
}
