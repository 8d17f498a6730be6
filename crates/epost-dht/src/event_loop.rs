//! The one task that owns the Swarm. It turns client commands into swarm
//! calls, swarm events into replies, and hands inbound fragment and notify
//! requests to their services through bounded queues (answering `Busy` or
//! `RateLimited` when one is full, never blocking the overlay): each
//! request-response protocol is served by one [`Endpoint`] (see `rpc`).
//! The defences against hostile peers (`guard`) are consulted here: a
//! refused connection is counted, a flooding peer blocked for a while.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::kad::store::RecordStore;
use libp2p::kad::{self, GetClosestPeersError, GetRecordOk, QueryId, QueryResult, Quorum};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::{Multiaddr, PeerId, Swarm, identify};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::behaviour::{Behaviour, BehaviourEvent};
use crate::client::{
    Command, DhtEvent, DialError, FoundRecord, NetworkStatus, QueryError, RecordError,
    RecordLookup, RequestError,
};
use crate::config::RequestLimits;
use crate::frag::{Frag, InboundFrag};
use crate::guard::{Bench, Guard, Limited};
use crate::join::Joiner;
use crate::notify::{InboundNotify, Notify};
use crate::rate::Verdict;
use crate::reach::Reach;
use crate::records::{RecordSink, RecordValidator};
use crate::rpc::{Endpoint, Limits, Rpc};
use crate::suspects::Suspects;

type ClosestReply = oneshot::Sender<Result<Vec<PeerId>, QueryError>>;
type GetReply = oneshot::Sender<Result<RecordLookup, RecordError>>;

/// Everything the event loop is connected to, besides the Swarm.
pub(crate) struct Wiring {
    pub(crate) commands: mpsc::Receiver<Command>,
    /// Where `/epost/frag/1` requests from peers go.
    pub(crate) inbound_frag: mpsc::Sender<InboundFrag>,
    /// Where `/epost/notify/1` requests from peers go.
    pub(crate) inbound_notify: mpsc::Sender<InboundNotify>,
    pub(crate) events: broadcast::Sender<DhtEvent>,
    pub(crate) validator: Arc<dyn RecordValidator>,
    pub(crate) sink: RecordSink,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Kademlia's K.
    pub(crate) replication: usize,
    /// How long holders keep a record after its publisher's last put.
    pub(crate) record_ttl: Duration,
    /// Relay reservations to hold while not publicly reachable.
    pub(crate) reservations: usize,
    /// The defences' state, with the operator's bans already in it.
    pub(crate) guard: Guard,
    pub(crate) requests: RequestLimits,
}

pub(crate) struct EventLoop {
    pub(crate) swarm: Swarm<Behaviour>,
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) events: broadcast::Sender<DhtEvent>,
    pub(crate) validator: Arc<dyn RecordValidator>,
    pub(crate) sink: RecordSink,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Kademlia's K: a bucket with this many entries may have left peers out.
    replication: usize,
    record_ttl: Duration,
    closest: HashMap<QueryId, (Vec<u8>, usize, ClosestReply)>,
    gets: HashMap<QueryId, (RecordLookup, GetReply)>,
    puts: HashMap<QueryId, oneshot::Sender<Result<(), RecordError>>>,
    frag: Endpoint<Frag>,
    notify: Endpoint<Notify>,
    guard: Guard,
    /// When to dial the known peers again while none is connected.
    pub(crate) joiner: Joiner,
    /// Addresses to rejoin through besides the routing table's: the
    /// configured bootstrap peers, those remembered from the last run, and
    /// the table's own as it was when the last peer went.
    pub(crate) seeds: Vec<Multiaddr>,
    /// Joined again (or for the first time): refresh the routing table
    /// with a Kademlia bootstrap once the next DHT peer is identified.
    refresh_table: bool,
    /// AutoNAT's verdict, relay reservations, hole punches.
    pub(crate) reach: Reach,
    /// The direct address this node dialled each connected peer at (a
    /// peer it can reach: a relay candidate).
    pub(crate) dialled: HashMap<PeerId, Multiaddr>,
    /// Peers whose last dial failed, held off for a while.
    suspects: Suspects,
}

/// Seeds kept at most (the configured and remembered ones, then the table's).
const MAX_SEEDS: usize = 256;

impl EventLoop {
    pub(crate) fn new(swarm: Swarm<Behaviour>, wiring: Wiring) -> Self {
        let Wiring {
            commands,
            inbound_frag,
            inbound_notify,
            events,
            validator,
            sink,
            shutdown,
            replication,
            record_ttl,
            reservations,
            guard,
            requests,
        } = wiring;
        let limits = |kind, rate| Limits {
            kind,
            rate,
            max_peers: requests.max_peers,
            counters: guard.counters.clone(),
        };
        Self {
            swarm,
            commands,
            events,
            validator,
            sink,
            shutdown,
            replication,
            record_ttl,
            closest: HashMap::new(),
            gets: HashMap::new(),
            puts: HashMap::new(),
            frag: Endpoint::new(inbound_frag, limits(Limited::Frag, requests.frag)),
            notify: Endpoint::new(inbound_notify, limits(Limited::Notify, requests.notify)),
            guard,
            // Not joined until a first connection (which starts Kademlia's
            // bootstrap); `startup` dials the known peers.
            joiner: Joiner::new(false, Instant::now()),
            seeds: Vec::new(),
            refresh_table: false,
            reach: Reach::new(reservations),
            dialled: HashMap::new(),
            suspects: Suspects::default(),
        }
    }

    /// Runs until shutdown is signalled or every client handle is gone.
    /// Pending callers then see `Stopped` (their reply senders are dropped).
    pub(crate) async fn run(mut self) {
        loop {
            let retry = self.joiner.due();
            let release = self.guard.next_release();
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                () = at(retry) => self.redial(),
                () = at(release) => self.release_benched(),
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => break,
                },
                _ = self.shutdown.changed() => break,
            }
        }
        debug!("overlay event loop stopped");
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::ClosestPeers { key, count, reply } => {
                let Some(n) = std::num::NonZeroUsize::new(count) else {
                    let _ = reply.send(Ok(Vec::new()));
                    return;
                };
                // While no k-bucket is full, the routing table holds every
                // peer this node has heard of at every distance, so the
                // local answer is what a network lookup would converge to,
                // without its round trips.
                if let Some(peers) = self.complete_table() {
                    let _ = reply.send(Ok(closest_of(&key, peers, count)));
                    return;
                }
                let id = self.swarm.behaviour_mut().kad.get_n_closest_peers(key.clone(), n);
                self.closest.insert(id, (key, count, reply));
            }
            Command::KnownClosest { key, count, reply } => {
                let _ = reply.send(closest_of(&key, self.known_peers(), count));
            }
            Command::PutRecord { key, value, reply } => {
                let mut record = kad::Record::new(key, value);
                // Holders keep it for the TTL from this put: the owner
                // republishes before it lapses (replication keeps the
                // remaining time, so only the owner extends it).
                record.expires = Instant::now().checked_add(self.record_ttl);
                self.sink.save(&record);
                // As for closest peers: with a complete table the holders
                // are known here, so the record goes straight to them
                // instead of after a lookup round over every peer.
                let started = match self.complete_table() {
                    Some(peers) => {
                        let local = *self.swarm.local_peer_id();
                        let holders: Vec<PeerId> =
                            closest_of(&record.key.to_vec(), peers, self.replication)
                                .into_iter()
                                .filter(|p| *p != local)
                                .collect();
                        // put_record_to does not keep a copy here, as
                        // put_record does: keep it first.
                        let mut own = record.clone();
                        own.publisher = Some(local);
                        if let Err(e) = self.swarm.behaviour_mut().kad.store_mut().put(own) {
                            let _ = reply.send(Err(RecordError::QuorumFailed(e.to_string())));
                            return;
                        }
                        if holders.is_empty() {
                            // Alone in the overlay, our own copy is all
                            // there is. Connected but with no peer in the
                            // table yet (just joined), it is not placed.
                            let outcome = match self.swarm.connected_peers().next() {
                                None => Ok(()),
                                Some(_) => Err(RecordError::QuorumFailed(
                                    "connected, but no peer is in the routing table yet".into(),
                                )),
                            };
                            let _ = reply.send(outcome);
                            return;
                        }
                        Ok(self.swarm.behaviour_mut().kad.put_record_to(
                            record,
                            holders.into_iter(),
                            Quorum::One,
                        ))
                    }
                    None => self.swarm.behaviour_mut().kad.put_record(record, Quorum::One),
                };
                match started {
                    Ok(id) => {
                        self.puts.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(RecordError::QuorumFailed(e.to_string())));
                    }
                }
            }
            Command::GetRecord { key, reply } => {
                let id = self.swarm.behaviour_mut().kad.get_record(kad::RecordKey::new(&key));
                self.gets.insert(id, (RecordLookup::default(), reply));
            }
            Command::Frag(rpc) => {
                if let Some(rpc) = self.unless_held_off(rpc) {
                    self.frag.on_command(&mut self.swarm.behaviour_mut().frag, rpc);
                }
            }
            Command::Notify(rpc) => {
                if let Some(rpc) = self.unless_held_off(rpc) {
                    self.notify.on_command(&mut self.swarm.behaviour_mut().notify, rpc);
                }
            }
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Command::Dial { addr, reply } => {
                let result = self
                    .swarm
                    .dial(addr.clone())
                    .map_err(|e| DialError::Failed { addr, detail: e.to_string() });
                let _ = reply.send(result);
            }
            Command::KnownAddresses { reply } => {
                let _ = reply.send(self.table_addresses());
            }
            Command::AddRoutingEntry { peer, addr, reply } => {
                self.swarm.behaviour_mut().kad.add_address(&peer, addr);
                let _ = reply.send(());
            }
            Command::SetBlocked { peer, blocked, reply } => {
                self.guard.on_operator(peer, blocked);
                let list = &mut self.swarm.behaviour_mut().blocked;
                if blocked {
                    list.block_peer(peer);
                } else {
                    list.unblock_peer(peer);
                }
                let _ = reply.send(());
            }
        }
    }

    /// `rpc`, unless it is a request to a peer held off since a failed
    /// dial: that one fails at once as unreachable (see `suspects`).
    fn unless_held_off<P: crate::protocol::Protocol>(&self, rpc: Rpc<P>) -> Option<Rpc<P>> {
        let Rpc::Request { peer, answer, request } = rpc else { return Some(rpc) };
        let held = self.suspects.held_off(&peer, Instant::now());
        match held {
            Some(left) if !self.swarm.is_connected(&peer) => {
                let detail =
                    format!("its last dial failed; not dialled again for {} s", left.as_secs() + 1);
                let _ = answer.send(Err(RequestError::Unreachable { peer, detail }));
                None
            }
            _ => Some(Rpc::Request { peer, request, answer }),
        }
    }

    /// Every address in the routing table, each ending in its peer's id.
    fn table_addresses(&mut self) -> Vec<Multiaddr> {
        let mut addrs = Vec::new();
        for bucket in self.swarm.behaviour_mut().kad.kbuckets() {
            for entry in bucket.iter() {
                let peer = *entry.node.key.preimage();
                addrs.extend(entry.node.value.iter().filter_map(|a| a.clone().with_p2p(peer).ok()));
            }
        }
        addrs
    }

    /// The peers to dial while none is connected, with their addresses:
    /// the seeds' and the routing table's, never this node.
    pub(crate) fn dialable(&mut self) -> HashMap<PeerId, Vec<Multiaddr>> {
        let me = *self.swarm.local_peer_id();
        let mut peers: HashMap<PeerId, Vec<Multiaddr>> = HashMap::new();
        let table = self.table_addresses();
        for addr in self.seeds.iter().chain(&table) {
            let Some(Protocol::P2p(peer)) = addr.iter().last() else { continue };
            if peer == me {
                continue;
            }
            let known = peers.entry(peer).or_default();
            if !known.contains(addr) {
                known.push(addr.clone());
            }
        }
        peers
    }

    /// Dials every known peer, without waiting; their answers come back as
    /// swarm events. Returns the peers a dial started for (one the swarm
    /// refused at once, a blocked peer say, sends no event to wait for).
    pub(crate) fn dial_known(&mut self) -> Vec<PeerId> {
        let targets = self.dialable();
        let mut dialled = Vec::with_capacity(targets.len());
        for (peer, addrs) in targets {
            // Not into the routing table: a stale address there would stand
            // in for the peer's current one in the lookups that follow.
            // Identify adds the peers that answer.
            let opts = DialOpts::peer_id(peer)
                .addresses(addrs)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if self.swarm.dial(opts).is_ok() {
                dialled.push(peer);
            }
        }
        dialled
    }

    /// A retry is due while no peer is connected: dial them all again.
    fn redial(&mut self) {
        let now = Instant::now();
        let jitter = jitter_of(self.swarm.local_peer_id(), self.joiner.attempts());
        if !self.joiner.fire(now, jitter) {
            return;
        }
        let dialled = self.dial_known();
        let next = self.joiner.due().map(|due| due.saturating_duration_since(now));
        info!(
            attempt = self.joiner.attempts(),
            peers = dialled.len(),
            next_retry = ?next,
            "no peer is connected; dialling the known peers again"
        );
    }

    /// This node and every peer in its routing table.
    fn known_peers(&mut self) -> Vec<PeerId> {
        let mut peers = vec![*self.swarm.local_peer_id()];
        for bucket in self.swarm.behaviour_mut().kad.kbuckets() {
            peers.extend(bucket.iter().map(|entry| *entry.node.key.preimage()));
        }
        peers
    }

    /// All known peers, if no bucket is full (so none was left out).
    fn complete_table(&mut self) -> Option<Vec<PeerId>> {
        let full = self.replication;
        let saturated =
            self.swarm.behaviour_mut().kad.kbuckets().any(|bucket| bucket.num_entries() >= full);
        (!saturated).then(|| self.known_peers())
    }

    pub(crate) fn status(&mut self) -> NetworkStatus {
        let peer_id = *self.swarm.local_peer_id();
        let listen_addrs = self
            .swarm
            .listeners()
            .map(|addr| addr.clone().with_p2p(peer_id).unwrap_or_else(|addr| addr))
            .collect();
        let connected_peers = self.swarm.connected_peers().copied().collect();
        let kad = &mut self.swarm.behaviour_mut().kad;
        let known_peers = kad.kbuckets().map(|bucket| bucket.num_entries()).sum();
        let records = kad.store_mut().records().count();
        let dialable = self.dialable().len();
        let joining = self.joiner.status(Instant::now(), dialable);
        let reachability = self.reach.status();
        NetworkStatus {
            peer_id,
            listen_addrs,
            connected_peers,
            known_peers,
            records,
            joining,
            reachability,
        }
    }

    pub(crate) fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => self.on_kad_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Frag(event)) => {
                if let Some(flooder) =
                    self.frag.on_event(&mut self.swarm.behaviour_mut().frag, event)
                {
                    self.bench(flooder, Limited::Frag);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Notify(event)) => {
                let notify = &mut self.swarm.behaviour_mut().notify;
                if let Some(flooder) = self.notify.on_event(notify, event) {
                    self.bench(flooder, Limited::Notify);
                }
            }
            // Only peers that speak our DHT go into the routing table.
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) if info.protocols.contains(&crate::behaviour::KAD_PROTOCOL) => {
                if info.protocols.contains(&libp2p::relay::HOP_PROTOCOL_NAME) {
                    self.on_relay_candidate(peer_id);
                }
                let kad = &mut self.swarm.behaviour_mut().kad;
                for addr in info.listen_addrs {
                    kad.add_address(&peer_id, addr);
                }
                if std::mem::take(&mut self.refresh_table) {
                    // Fails only with an empty table, and a peer just joined it.
                    let _ = kad.bootstrap();
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Autonat(event)) => self.on_autonat(event),
            SwarmEvent::Behaviour(BehaviourEvent::RelayClient(event)) => {
                self.on_relay_client(event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(event)) => self.on_dcutr(event),
            SwarmEvent::ConnectionEstablished { peer_id, num_established, endpoint, .. } => {
                self.suspects.on_connected(&peer_id);
                self.on_connection_endpoint(peer_id, &endpoint);
                if self.joiner.on_connected() {
                    info!(%peer_id, "connected to the overlay");
                    // Kademlia's bootstrap runs once identify has put a
                    // peer in the routing table.
                    self.refresh_table = true;
                }
                if num_established.get() == 1 {
                    let _ = self.events.send(DhtEvent::PeerConnected(peer_id));
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                self.dialled.remove(&peer_id);
                self.reach.on_disconnected(&peer_id);
                self.drive_reach();
                if self.swarm.connected_peers().next().is_none() {
                    self.on_alone();
                }
                let _ = self.events.send(DhtEvent::PeerDisconnected(peer_id));
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                if let libp2p::swarm::DialError::Denied { cause } = &error {
                    self.guard.on_denied(cause);
                }
                if let Some(peer) = peer_id
                    && dial_failed(&error)
                    && !self.swarm.is_connected(&peer)
                {
                    self.suspects.on_dial_failed(peer, Instant::now());
                }
                self.joiner.on_dial_error(error.to_string());
            }
            SwarmEvent::IncomingConnectionError {
                error: libp2p::swarm::ListenError::Denied { cause },
                send_back_addr,
                ..
            } => {
                let why = self.guard.on_denied(&cause);
                debug!(%send_back_addr, ?why, %cause, "refused an incoming connection");
            }
            SwarmEvent::NewListenAddr { listener_id, address } => {
                self.reach.on_listening(listener_id, address.clone());
                info!(%address, "listening");
            }
            SwarmEvent::ListenerClosed { listener_id, reason, .. } => {
                self.on_listener_closed(listener_id, reason.err());
            }
            SwarmEvent::ListenerError { error, .. } => warn!(%error, "listener error"),
            _ => {}
        }
    }

    /// `peer` floods `on`: close its connections and refuse it for a while.
    fn bench(&mut self, peer: PeerId, on: Limited) {
        let Bench::Block { released } = self.guard.bench(peer, Instant::now()) else { return };
        let list = &mut self.swarm.behaviour_mut().blocked;
        if let Some(early) = released {
            list.unblock_peer(early);
        }
        list.block_peer(peer);
        warn!(%peer, protocol = on.label(), "a peer far over its request rate is blocked for a while");
    }

    /// Unblocks the flooding peers whose time is up.
    fn release_benched(&mut self) {
        for peer in self.guard.release(Instant::now()) {
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
            debug!(%peer, "a flooding peer's block ended");
        }
    }

    /// The last peer went: remember the table's addresses (Kademlia may
    /// forget those it fails to reach) and retry from the first wait.
    fn on_alone(&mut self) {
        let table = self.table_addresses();
        for addr in table {
            if self.seeds.len() >= MAX_SEEDS {
                break;
            }
            if !self.seeds.contains(&addr) {
                self.seeds.push(addr);
            }
        }
        self.joiner.on_alone(Instant::now());
        warn!("lost the last peer connection; retrying the known peers with backoff");
    }

    fn on_kad_event(&mut self, event: kad::Event) {
        match event {
            kad::Event::OutboundQueryProgressed { id, result, step, .. } => match result {
                QueryResult::GetClosestPeers(result) => {
                    let Some((key, count, reply)) = self.closest.remove(&id) else { return };
                    let peers = match result {
                        Ok(ok) => ok.peers,
                        // A timed-out query still found some peers: use them.
                        Err(GetClosestPeersError::Timeout { peers, .. }) => peers,
                    };
                    let mut candidates: Vec<PeerId> =
                        peers.into_iter().map(|p| p.peer_id).collect();
                    candidates.push(*self.swarm.local_peer_id());
                    let _ = reply.send(Ok(closest_of(&key, candidates, count)));
                }
                QueryResult::GetRecord(result) => {
                    let finished = step.last;
                    let complete = asked_in_full(&result);
                    if let Some((lookup, _)) = self.gets.get_mut(&id)
                        && let Ok(GetRecordOk::FoundRecord(peer_record)) = result
                    {
                        lookup.found.push(FoundRecord {
                            peer: peer_record.peer,
                            value: peer_record.record.value,
                        });
                    }
                    if finished && let Some((mut lookup, reply)) = self.gets.remove(&id) {
                        lookup.complete = complete;
                        let _ = reply.send(Ok(lookup));
                    }
                }
                QueryResult::PutRecord(result) => {
                    let Some(reply) = self.puts.remove(&id) else { return };
                    let outcome = match result {
                        Ok(_) => Ok(()),
                        // Alone in the overlay, our own copy is all there is.
                        Err(_) if self.swarm.connected_peers().next().is_none() => Ok(()),
                        Err(e) => Err(RecordError::QuorumFailed(e.to_string())),
                    };
                    let _ = reply.send(outcome);
                }
                _ => {}
            },
            kad::Event::InboundRequest {
                request: kad::InboundRequest::PutRecord { source, record: Some(record), .. },
            } => match self.guard.kad_put(source, Instant::now()) {
                Verdict::Allow => self.on_inbound_record(source, record),
                // Dropped unread: the protocol has acknowledged it already.
                Verdict::Refuse => debug!(%source, "a record put over the peer's rate"),
                Verdict::Flood => self.bench(source, Limited::KadPut),
            },
            _ => {}
        }
    }

    fn on_inbound_record(&mut self, source: PeerId, record: kad::Record) {
        let store = self.swarm.behaviour_mut().kad.store_mut();
        let current = store.get(&record.key).map(|r| r.value.clone());
        if let Err(why) =
            self.validator.validate(record.key.as_ref(), &record.value, current.as_deref())
        {
            debug!(%source, %why, "refused a record");
            let _ = self.events.send(DhtEvent::RecordRefused { key: record.key.to_vec() });
            return;
        }
        self.sink.save(&record);
        let kept = DhtEvent::RecordKept { key: record.key.to_vec(), value: record.value.clone() };
        match store.put(record) {
            Ok(()) => {
                let _ = self.events.send(kept);
            }
            Err(e) => warn!(%source, error = %e, "record not stored"),
        }
    }
}

/// Whether a record query's last step says the overlay was asked in
/// full: it ended normally, or found nothing having heard from at least
/// one peer. Alone (no peer to ask), every peer failing, or a timeout:
/// not asked in full.
fn asked_in_full(last: &Result<GetRecordOk, kad::GetRecordError>) -> bool {
    match last {
        Ok(_) => true,
        Err(kad::GetRecordError::NotFound { closest_peers, .. }) => !closest_peers.is_empty(),
        Err(kad::GetRecordError::Timeout { .. }) => false,
    }
}

/// Whether a dial error says the peer could not be reached (rather than
/// that the dial was not made: already connected, aborted, denied here).
fn dial_failed(error: &libp2p::swarm::DialError) -> bool {
    use libp2p::swarm::DialError;
    matches!(
        error,
        DialError::Transport(_) | DialError::NoAddresses | DialError::WrongPeerId { .. }
    )
}

/// Sleeps until `due`, or forever without one.
async fn at(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}

/// A node's own stretch of the retry wait, in `[0, 1)`: different between
/// nodes and between rounds, so nodes that lost the same peer spread out.
fn jitter_of(peer: &PeerId, attempts: u32) -> f64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    peer.hash(&mut hasher);
    attempts.hash(&mut hasher);
    (hasher.finish() % 1000) as f64 / 1000.0
}

/// The `count` peers closest to `key` in Kademlia's XOR metric, closest first.
pub fn closest_of(key: &[u8], mut peers: Vec<PeerId>, count: usize) -> Vec<PeerId> {
    let target = kad::KBucketKey::new(key.to_vec());
    peers.sort_unstable();
    peers.dedup();
    peers.sort_by_cached_key(|peer| target.distance(&kad::KBucketKey::from(*peer)));
    peers.truncate(count);
    peers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lookup_is_complete_only_when_peers_answered_it_to_its_end() {
        let key = || kad::RecordKey::new(&b"k".as_slice());
        let peer = PeerId::random();
        let finished =
            GetRecordOk::FinishedWithNoAdditionalRecord { cache_candidates: Default::default() };
        let cases: [(Result<GetRecordOk, kad::GetRecordError>, bool); 4] = [
            (Ok(finished), true),
            (Err(kad::GetRecordError::NotFound { key: key(), closest_peers: vec![peer] }), true),
            // Alone, or every peer asked failed: nobody answered.
            (Err(kad::GetRecordError::NotFound { key: key(), closest_peers: vec![] }), false),
            (Err(kad::GetRecordError::Timeout { key: key() }), false),
        ];
        for (last, want) in cases {
            assert_eq!(asked_in_full(&last), want, "{last:?}");
        }
    }
}
