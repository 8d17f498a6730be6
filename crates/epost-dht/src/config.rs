//! Settings of the overlay, already validated by the caller's config loader.

use std::num::NonZeroUsize;
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};

use crate::rate::Rate;

/// How the overlay runs. `Default` gives production values.
#[derive(Debug, Clone)]
pub struct DhtConfig {
    /// Addresses to listen on (`/ip4/127.0.0.1/tcp/0` lets the OS pick a port).
    pub listen: Vec<Multiaddr>,
    /// Peers to join through; each must end in `/p2p/<peer id>`.
    pub bootstrap: Vec<Multiaddr>,
    /// How long start waits for a first peer to answer; then the node runs
    /// on alone and keeps retrying (see `join`).
    pub bootstrap_timeout: Duration,
    /// Kademlia's K: how many closest peers hold each record.
    pub replication: NonZeroUsize,
    /// Timeout of a whole Kademlia query.
    pub query_timeout: Duration,
    /// Timeout of one fragment or notify request.
    pub request_timeout: Duration,
    /// Concurrent fragment (and, separately, notify) streams per connection.
    pub max_concurrent_streams: usize,
    /// Records kept in memory (and on disk).
    pub max_records: usize,
    /// How long holders keep a record after its publisher last put it. Its
    /// owner republishes well within this; it must cover an owner's node
    /// being switched off for months, so a certificate is still found.
    pub record_ttl: Duration,
    /// Inbound fragment requests queued for the storage service before the
    /// overlay answers `Busy` instead of queueing more.
    pub inbound_queue: usize,
    /// Inbound notify requests queued for the notification service before
    /// the overlay answers `RateLimited` instead of queueing more.
    pub notify_queue: usize,
    /// Commands queued from clients to the event loop.
    pub command_queue: usize,
    /// Connections idle this long are closed (long: re-dialling costs a
    /// Noise handshake, and a small overlay keeps a full mesh).
    pub idle_timeout: Duration,
    /// Reachability: AutoNAT, relaying for others, reserving on relays.
    pub reach: ReachConfig,
    /// How many connections peers may hold open (`spec/security.md`).
    pub connections: ConnectionLimits,
    /// How fast each peer may send requests (`spec/security.md`).
    pub requests: RequestLimits,
    /// Peers refused from the start, in either direction (the operator's
    /// ban list); `DhtClient::block` adds to it at run time.
    pub banned: Vec<PeerId>,
}

/// How a node learns whether it is reachable and how it helps others that
/// are not (see spec/dht.md, "Reachability").
#[derive(Debug, Clone)]
pub struct ReachConfig {
    /// Serve as a circuit relay v2 for peers behind NAT (within `relay`).
    pub serve_relay: bool,
    /// What a relay grants.
    pub relay: RelayLimits,
    /// Relays to hold reservations on while AutoNAT says this node is not
    /// publicly reachable.
    pub reservations: usize,
    /// Wait after start before the first AutoNAT probe.
    pub probe_delay: Duration,
    /// Let AutoNAT probe and be probed at private and loopback addresses
    /// (a LAN, or a test network); by default only global addresses count.
    pub probe_private: bool,
}

/// A relay's limits, per reservation and per relayed connection.
#[derive(Debug, Clone)]
pub struct RelayLimits {
    /// Reservations held for all peers, and for one peer.
    pub max_reservations: usize,
    pub max_reservations_per_peer: usize,
    /// How long one reservation lasts before its holder renews it.
    pub reservation_duration: Duration,
    /// Relayed connections at once, in all and from one peer.
    pub max_circuits: usize,
    pub max_circuits_per_peer: usize,
    /// A relayed connection closes after this long or this many bytes
    /// each way; the peers reconnect (or have hole-punched by then).
    pub max_circuit_duration: Duration,
    pub max_circuit_bytes: u64,
}

impl Default for ReachConfig {
    fn default() -> Self {
        Self {
            serve_relay: true,
            relay: RelayLimits::default(),
            reservations: 2,
            probe_delay: Duration::from_secs(5),
            probe_private: false,
        }
    }
}

/// Connection limits: above them a new connection is refused before any
/// protocol runs on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Established connections that peers opened to this node.
    pub max_incoming: u32,
    /// Incoming connections still in their handshake.
    pub max_pending_incoming: u32,
    /// Established connections with any one peer, both directions.
    pub max_per_peer: u32,
    /// No new connection, in or out, while this process uses more than
    /// this share of the machine's memory (1 to 100).
    pub max_memory_percent: u8,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_incoming: 512,
            max_pending_incoming: 64,
            max_per_peer: 4,
            max_memory_percent: 90,
        }
    }
}

impl Default for RelayLimits {
    fn default() -> Self {
        Self {
            max_reservations: 128,
            max_reservations_per_peer: 4,
            reservation_duration: Duration::from_secs(60 * 60),
            max_circuits: 64,
            max_circuits_per_peer: 8,
            max_circuit_duration: Duration::from_secs(30 * 60),
            max_circuit_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Per-peer rates of inbound requests (token buckets, see `rate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// `/epost/frag/1` requests; over it a peer is answered `Busy`.
    pub frag: Rate,
    /// `/epost/notify/1` requests; over it, `RateLimited`.
    pub notify: Rate,
    /// Kademlia `PUT_VALUE`s; over it a record is dropped unread (the
    /// protocol acknowledges every put, so there is no refusal to send).
    pub kad_put: Rate,
    /// Peers whose buckets are remembered at most, per protocol.
    pub max_peers: usize,
    /// How long a flooding peer (far over a rate) is disconnected and
    /// refused.
    pub flood_block: Duration,
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self {
            frag: Rate::new(500, 1000),
            notify: Rate::new(200, 400),
            kad_put: Rate::new(1000, 2000),
            max_peers: 4096,
            flood_block: Duration::from_secs(60),
        }
    }
}

impl Default for DhtConfig {
    fn default() -> Self {
        Self {
            listen: Vec::new(),
            bootstrap: Vec::new(),
            bootstrap_timeout: Duration::from_secs(10),
            replication: NonZeroUsize::new(20).unwrap_or(NonZeroUsize::MIN),
            query_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            max_concurrent_streams: 256,
            max_records: 64 * 1024,
            record_ttl: epost_types::time::DEFAULT_LEASE,
            inbound_queue: 1024,
            notify_queue: 1024,
            command_queue: 1024,
            idle_timeout: Duration::from_secs(600),
            reach: ReachConfig::default(),
            connections: ConnectionLimits::default(),
            requests: RequestLimits::default(),
            banned: Vec::new(),
        }
    }
}
