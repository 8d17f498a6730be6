//! epost's overlay: a Kademlia DHT over libp2p (TCP, Noise, Yamux) that
//! routes by XOR distance, holds small signed records, carries
//! erasure-coded fragments between peers over `/epost/frag/1` and sealed
//! notifications over `/epost/notify/1`.
//!
//! This is the only crate that names libp2p. One task (the event loop) owns
//! the Swarm; everything else holds a cloneable [`DhtClient`] and talks to
//! it over a bounded channel. Inbound fragment and notify requests come out
//! of the [`Inbound`] queues [`Dht::start`] returns, for the storage and
//! notification services to answer.
//!
//! Both request-response protocols are one generic [`Protocol`] ([`Frag`],
//! [`Notify`]): one codec, one inbound queue and reply type
//! ([`InboundRequest`], [`Reply`]), one table of outstanding requests and
//! one event handler. This crate owns their names, framing and limits
//! checks; the messages themselves are `epost-types`' (`wire::frag`,
//! `wire::notify`, bounds in `limits`), so services build and match them
//! without naming the overlay.
//!
//! Facing the internet, it refuses connections over its limits, answers a
//! peer over its request rate with a refusal before its request reaches a
//! service, blocks a flooding peer for a while, and keeps the operator's
//! ban list (`guard`, `rate`); what it refused is counted for the node's
//! metrics ([`DhtClient::defence`]).
//!
//! It must never interpret fragments or notifications, or decide placement:
//! that is the services' job. It must never keep an inbound record that its
//! [`RecordValidator`] refused.

pub mod addr;
mod behaviour;
mod client;
mod config;
#[cfg(test)]
mod defence_tests;
mod event_loop;
mod frag;
mod guard;
mod join;
#[cfg(test)]
mod known_frames;
mod notify;
mod protocol;
mod rate;
mod reach;
mod reach_events;
mod records;
mod rpc;
mod startup;
mod suspects;
#[cfg(test)]
mod tests;
mod wire;

use std::sync::Arc;

pub use behaviour::KAD_PROTOCOL;
pub use client::{
    DhtClient, DhtEvent, DialError, FoundRecord, NetworkStatus, QueryError, RecordError,
    RecordLookup, RequestError,
};
pub use config::{ConnectionLimits, DhtConfig, ReachConfig, RelayLimits, RequestLimits};
pub use event_loop::closest_of;
pub use frag::{FRAG_PROTOCOL, Frag, InboundFrag};
pub use guard::{ConnectionRefusal, DefenceStats, Limited};
pub use join::{FIRST_RETRY, Joining, MAX_RETRY};
pub use libp2p::{Multiaddr, PeerId};
pub use notify::{InboundNotify, NOTIFY_PROTOCOL, Notify};
pub use protocol::{Protocol, Unavailable};
pub use rate::Rate;
pub use reach::{NatState, Reachability};
pub use records::{RecordRejection, RecordValidator, RecordWrite, SignedEnvelopeValidator};
pub use rpc::{InboundRequest, Reply};
pub use startup::{Dht, Inbound, StartError};

/// Largest record value kept (log heads, certificates, presence are far smaller).
pub const MAX_RECORD_VALUE: usize = 8 * 1024;

/// Records reloaded at start, with the lease end they were kept until.
pub type StoredRecords = Vec<RecordWrite>;

/// What the overlay needs from its node to start.
pub struct StartOptions {
    pub config: DhtConfig,
    /// The node's Ed25519 seed; its public key is the peer id.
    pub identity_seed: [u8; 32],
    /// Decides which inbound records are kept.
    pub validator: Arc<dyn RecordValidator>,
    /// Records held before the last shutdown, reloaded into memory.
    pub stored_records: StoredRecords,
    /// Where kept records are written behind (bounded; `None`: memory only).
    pub record_writes: Option<tokio::sync::mpsc::Sender<RecordWrite>>,
    /// Peers known at the last run (`.../p2p/<peer id>` addresses): dialled
    /// after the bootstrap peers, best effort, so a node whose peers moved
    /// or that has no bootstrap peer of its own finds its network again.
    pub remembered_peers: Vec<Multiaddr>,
}

/// The Ed25519 public key inside `peer` (an identity-hashed peer id, as
/// every epost node's is), so a peer id names a key that signs: a realm's
/// MX record names its nodes by it. `None` for any other kind of id.
pub fn ed25519_key_of(peer: &PeerId) -> Option<epost_types::sign::VerifyingKey> {
    const IDENTITY: u64 = 0x00;
    let hash: &libp2p::multihash::Multihash<64> = peer.as_ref();
    if hash.code() != IDENTITY {
        return None;
    }
    let key = libp2p::identity::PublicKey::try_decode_protobuf(hash.digest()).ok()?;
    let key = key.try_into_ed25519().ok()?;
    Some(epost_types::sign::VerifyingKey::from_bytes(key.to_bytes()))
}

/// The peer id of the node whose Ed25519 key is `key` (the inverse of
/// [`ed25519_key_of`]); `None` if the bytes are no curve point.
pub fn peer_id_of_key(key: &epost_types::sign::VerifyingKey) -> Option<PeerId> {
    let key = libp2p::identity::ed25519::PublicKey::try_from_bytes(key.as_bytes()).ok()?;
    Some(libp2p::identity::PublicKey::from(key).to_peer_id())
}

/// The peer id an Ed25519 seed gives, without starting anything.
pub fn peer_id_of(identity_seed: [u8; 32]) -> Result<PeerId, StartError> {
    let mut seed = identity_seed;
    let key = libp2p::identity::Keypair::ed25519_from_bytes(&mut seed)
        .map_err(|e| StartError::Identity(e.to_string()))?;
    Ok(key.public().to_peer_id())
}
