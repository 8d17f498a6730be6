//! `DhtClient`: the cloneable handle everything outside the event loop uses.
//! Each call is one command over a bounded channel with a oneshot reply;
//! the Swarm itself is never shared.

use libp2p::{Multiaddr, PeerId};
use tokio::sync::{broadcast, mpsc, oneshot};

use epost_types::wire::frag::{FragRequest, FragResponse};
use epost_types::wire::notify::{NotifyRequest, NotifyResponse};

use crate::frag::Frag;
use crate::guard::{Counters, DefenceStats};
use crate::notify::Notify;
use crate::protocol::Protocol;
use crate::rpc::{Reply, Rpc};

/// A record as found at one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundRecord {
    /// The peer that answered with it (`None`: our own store).
    pub peer: Option<PeerId>,
    pub value: Vec<u8>,
}

/// What a record lookup found, and whether the overlay was asked in full.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordLookup {
    pub found: Vec<FoundRecord>,
    /// The query ran to its end and peers answered it, so an empty
    /// `found` means none of the closest holders has the record. False
    /// when no peer could be asked (alone, or every one failed) or the
    /// query timed out: then the record may exist all the same.
    pub complete: bool,
}

/// A snapshot of the overlay as this node sees it.
#[derive(Debug, Clone)]
pub struct NetworkStatus {
    pub peer_id: PeerId,
    /// Full addresses, each ending in `/p2p/<our peer id>`.
    pub listen_addrs: Vec<Multiaddr>,
    pub connected_peers: Vec<PeerId>,
    /// Peers in the Kademlia routing table.
    pub known_peers: usize,
    pub records: usize,
    /// Whether the node is connected to the overlay, or retrying.
    pub joining: crate::join::Joining,
    /// Whether peers can dial this node, and how (relays, hole punches).
    pub reachability: crate::reach::Reachability,
}

/// Something that happened in the overlay that services may care about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhtEvent {
    PeerConnected(PeerId),
    PeerDisconnected(PeerId),
    /// A peer's record passed validation and is held here now.
    RecordKept {
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// A peer's record was refused (forged, malformed, or older than held).
    RecordRefused {
        key: Vec<u8>,
    },
}

/// Why a closest-peers query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("the query timed out")]
    Timeout,
    #[error("no known peers: the node is not connected to the overlay")]
    NoPeers,
    #[error("the overlay is shutting down")]
    Stopped,
}

/// Why a record could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("record value of {len} bytes exceeds the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    #[error("the record could not be stored on enough peers: {0}")]
    QuorumFailed(String),
    #[error("the overlay is shutting down")]
    Stopped,
}

/// Why a request to a peer (fragment or notify) failed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("cannot reach peer {peer}: {detail}")]
    Unreachable { peer: PeerId, detail: String },
    #[error("peer {peer} did not answer in time")]
    Timeout { peer: PeerId },
    #[error("peer {peer} broke the protocol: {detail}")]
    Protocol { peer: PeerId, detail: String },
    #[error("the overlay is shutting down")]
    Stopped,
}

/// Why a dial could not start.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("cannot dial {addr}: {detail}")]
    Failed { addr: Multiaddr, detail: String },
    #[error("the overlay is shutting down")]
    Stopped,
}

pub(crate) enum Command {
    ClosestPeers {
        key: Vec<u8>,
        count: usize,
        reply: oneshot::Sender<Result<Vec<PeerId>, QueryError>>,
    },
    KnownClosest {
        key: Vec<u8>,
        count: usize,
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    PutRecord {
        key: Vec<u8>,
        value: Vec<u8>,
        reply: oneshot::Sender<Result<(), RecordError>>,
    },
    GetRecord {
        key: Vec<u8>,
        reply: oneshot::Sender<Result<RecordLookup, RecordError>>,
    },
    Frag(Rpc<Frag>),
    Notify(Rpc<Notify>),
    Status {
        reply: oneshot::Sender<NetworkStatus>,
    },
    Dial {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<(), DialError>>,
    },
    KnownAddresses {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    SetBlocked {
        peer: PeerId,
        blocked: bool,
        reply: oneshot::Sender<()>,
    },
    AddRoutingEntry {
        peer: PeerId,
        addr: Multiaddr,
        reply: oneshot::Sender<()>,
    },
}

/// The handle to the overlay. Cheap to clone; all clones talk to one event loop.
#[derive(Clone)]
pub struct DhtClient {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) events: broadcast::Sender<DhtEvent>,
    pub(crate) local_peer: PeerId,
    /// The defences' counters, read without a round trip to the loop.
    pub(crate) counters: std::sync::Arc<Counters>,
}

impl DhtClient {
    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer
    }

    /// What the defences against hostile peers refused, throttled and
    /// blocked so far (`spec/security.md` section 3.6).
    pub fn defence(&self) -> DefenceStats {
        self.counters.snapshot()
    }

    /// Waits until `done` holds for [`Self::defence`]'s counters (callers
    /// bound the wait): a test's way to see a refusal happen.
    pub async fn defence_until(&self, done: impl Fn(&DefenceStats) -> bool) {
        self.counters.until(done).await;
    }

    /// Subscribes to overlay events (bounded: a slow subscriber misses the
    /// oldest events and is told how many it lagged).
    pub fn subscribe(&self) -> broadcast::Receiver<DhtEvent> {
        self.events.subscribe()
    }

    /// The `count` peers closest to `key` in the whole overlay (a network
    /// query), this node included if it is among them.
    pub async fn closest_peers(&self, key: &[u8], count: usize) -> Result<Vec<PeerId>, QueryError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::ClosestPeers { key: key.to_vec(), count, reply })
            .await
            .ok_or(QueryError::Stopped)?;
        rx.await.map_err(|_| QueryError::Stopped)?
    }

    /// The `count` peers closest to `key` among those this node already
    /// knows (its routing table and itself): no network round trip.
    pub async fn known_closest(&self, key: &[u8], count: usize) -> Result<Vec<PeerId>, QueryError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::KnownClosest { key: key.to_vec(), count, reply })
            .await
            .ok_or(QueryError::Stopped)?;
        rx.await.map_err(|_| QueryError::Stopped)
    }

    /// Stores a small record on the K peers closest to `key` (and here).
    pub async fn put_record(&self, key: &[u8], value: Vec<u8>) -> Result<(), RecordError> {
        if value.len() > crate::MAX_RECORD_VALUE {
            return Err(RecordError::TooLarge { len: value.len(), max: crate::MAX_RECORD_VALUE });
        }
        let (reply, rx) = oneshot::channel();
        self.send(Command::PutRecord { key: key.to_vec(), value, reply })
            .await
            .ok_or(RecordError::Stopped)?;
        rx.await.map_err(|_| RecordError::Stopped)?
    }

    /// Every copy of the record at `key` that the closest peers (and this
    /// node) hold. The caller validates them and picks (e.g. highest seq).
    pub async fn get_record(&self, key: &[u8]) -> Result<Vec<FoundRecord>, RecordError> {
        self.lookup_record(key).await.map(|lookup| lookup.found)
    }

    /// Like [`Self::get_record`], saying also whether the overlay was
    /// asked in full (so that "not found" can be told from "could not
    /// ask").
    pub async fn lookup_record(&self, key: &[u8]) -> Result<RecordLookup, RecordError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::GetRecord { key: key.to_vec(), reply })
            .await
            .ok_or(RecordError::Stopped)?;
        rx.await.map_err(|_| RecordError::Stopped)?
    }

    /// Sends a fragment request to `peer` and waits for its answer (at
    /// most the configured request timeout).
    pub async fn request(
        &self,
        peer: PeerId,
        request: FragRequest,
    ) -> Result<FragResponse, RequestError> {
        self.call(Command::Frag, peer, request).await
    }

    /// Answers an inbound fragment request.
    pub async fn respond(&self, reply: Reply<Frag>, response: FragResponse) {
        self.answer(Command::Frag, reply, response).await;
    }

    /// Sends a notify request to `peer` and waits for its answer (at most
    /// the configured request timeout).
    pub async fn notify(
        &self,
        peer: PeerId,
        request: NotifyRequest,
    ) -> Result<NotifyResponse, RequestError> {
        self.call(Command::Notify, peer, request).await
    }

    /// Answers an inbound notify request.
    pub async fn respond_notify(&self, reply: Reply<Notify>, response: NotifyResponse) {
        self.answer(Command::Notify, reply, response).await;
    }

    /// Sends `request` on protocol `P` (`on` names its command) and waits
    /// for the answer.
    async fn call<P: Protocol>(
        &self,
        on: fn(Rpc<P>) -> Command,
        peer: PeerId,
        request: P::Request,
    ) -> Result<P::Response, RequestError> {
        let (answer, rx) = oneshot::channel();
        self.send(on(Rpc::Request { peer, request, answer })).await.ok_or(RequestError::Stopped)?;
        rx.await.map_err(|_| RequestError::Stopped)?
    }

    async fn answer<P: Protocol>(
        &self,
        on: fn(Rpc<P>) -> Command,
        reply: Reply<P>,
        response: P::Response,
    ) {
        // If the loop is gone the peer sees the stream close: nothing to do.
        let _ = self.send(on(Rpc::Respond { reply, response })).await;
    }

    /// The overlay as this node sees it now.
    pub async fn status(&self) -> Option<NetworkStatus> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Status { reply }).await?;
        rx.await.ok()
    }

    /// Dials `addr` (ending in `/p2p/<peer id>`); once connected, identify
    /// adds the peer to the routing table. Returns when the dial started.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), DialError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Dial { addr, reply }).await.ok_or(DialError::Stopped)?;
        rx.await.map_err(|_| DialError::Stopped)?
    }

    /// Every address in the routing table, each ending in `/p2p/<peer id>`
    /// (what a node remembers to find its network again after a restart).
    pub async fn known_addresses(&self) -> Vec<Multiaddr> {
        let (reply, rx) = oneshot::channel();
        if self.send(Command::KnownAddresses { reply }).await.is_none() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Refuses every connection to and from `peer` (closing the open ones)
    /// until [`unblock`](Self::unblock). Requests to it fail at once as
    /// unreachable. For an operator banning a peer, and for partitions in
    /// tests.
    pub async fn block(&self, peer: PeerId) {
        self.set_blocked(peer, true).await;
    }

    /// Lets `peer` connect again; the next request or query dials it.
    pub async fn unblock(&self, peer: PeerId) {
        self.set_blocked(peer, false).await;
    }

    async fn set_blocked(&self, peer: PeerId, blocked: bool) {
        let (reply, rx) = oneshot::channel();
        if self.send(Command::SetBlocked { peer, blocked, reply }).await.is_some() {
            let _ = rx.await;
        }
    }

    /// Puts `peer` at `addr` into the routing table without dialling it,
    /// as Kademlia's `add_address` does. The overlay itself only adds peers
    /// identify vouched for; this is for a peer an operator names by hand
    /// (and for tests that build a node with a lying table).
    pub async fn add_routing_entry(&self, peer: PeerId, addr: Multiaddr) {
        let (reply, rx) = oneshot::channel();
        if self.send(Command::AddRoutingEntry { peer, addr, reply }).await.is_some() {
            let _ = rx.await;
        }
    }

    async fn send(&self, command: Command) -> Option<()> {
        self.commands.send(command).await.ok()
    }
}
