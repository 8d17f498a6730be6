//! The one task that owns the Swarm. It turns client commands into swarm
//! calls, swarm events into replies, and hands inbound fragment and notify
//! requests to their services through bounded queues (answering `Busy` or
//! `RateLimited` when one is full, never blocking the overlay): each
//! request-response protocol is served by one [`Endpoint`] (see `rpc`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::kad::store::RecordStore;
use libp2p::kad::{self, GetClosestPeersError, GetRecordOk, QueryId, QueryResult, Quorum};
use libp2p::swarm::SwarmEvent;
use libp2p::{PeerId, Swarm, identify};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::behaviour::{Behaviour, BehaviourEvent};
use crate::client::{
    Command, DhtEvent, DialError, FoundRecord, NetworkStatus, QueryError, RecordError,
};
use crate::frag::{Frag, InboundFrag};
use crate::notify::{InboundNotify, Notify};
use crate::records::{RecordSink, RecordValidator};
use crate::rpc::Endpoint;

type ClosestReply = oneshot::Sender<Result<Vec<PeerId>, QueryError>>;
type GetReply = oneshot::Sender<Result<Vec<FoundRecord>, RecordError>>;

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
    gets: HashMap<QueryId, (Vec<FoundRecord>, GetReply)>,
    puts: HashMap<QueryId, oneshot::Sender<Result<(), RecordError>>>,
    frag: Endpoint<Frag>,
    notify: Endpoint<Notify>,
}

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
        } = wiring;
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
            frag: Endpoint::new(inbound_frag),
            notify: Endpoint::new(inbound_notify),
        }
    }

    /// Runs until shutdown is signalled or every client handle is gone.
    /// Pending callers then see `Stopped` (their reply senders are dropped).
    pub(crate) async fn run(mut self) {
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
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
                            // Alone in the overlay, our own copy is all there is.
                            let _ = reply.send(Ok(()));
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
                self.gets.insert(id, (Vec::new(), reply));
            }
            Command::Frag(rpc) => self.frag.on_command(&mut self.swarm.behaviour_mut().frag, rpc),
            Command::Notify(rpc) => {
                self.notify.on_command(&mut self.swarm.behaviour_mut().notify, rpc);
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
                let mut addrs = Vec::new();
                for bucket in self.swarm.behaviour_mut().kad.kbuckets() {
                    for entry in bucket.iter() {
                        let peer = *entry.node.key.preimage();
                        addrs.extend(
                            entry.node.value.iter().filter_map(|a| a.clone().with_p2p(peer).ok()),
                        );
                    }
                }
                let _ = reply.send(addrs);
            }
            Command::SetBlocked { peer, blocked, reply } => {
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
        NetworkStatus { peer_id, listen_addrs, connected_peers, known_peers, records }
    }

    pub(crate) fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Kad(event)) => self.on_kad_event(event),
            SwarmEvent::Behaviour(BehaviourEvent::Frag(event)) => {
                self.frag.on_event(&mut self.swarm.behaviour_mut().frag, event);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Notify(event)) => {
                self.notify.on_event(&mut self.swarm.behaviour_mut().notify, event);
            }
            // Only peers that speak our DHT go into the routing table.
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) if info.protocols.contains(&crate::behaviour::KAD_PROTOCOL) => {
                for addr in info.listen_addrs {
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
            }
            SwarmEvent::ConnectionEstablished { peer_id, num_established, .. }
                if num_established.get() == 1 =>
            {
                let _ = self.events.send(DhtEvent::PeerConnected(peer_id));
            }
            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                let _ = self.events.send(DhtEvent::PeerDisconnected(peer_id));
            }
            SwarmEvent::NewListenAddr { address, .. } => info!(%address, "listening"),
            SwarmEvent::ListenerError { error, .. } => warn!(%error, "listener error"),
            _ => {}
        }
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
                    if let Some((found, _)) = self.gets.get_mut(&id)
                        && let Ok(GetRecordOk::FoundRecord(peer_record)) = result
                    {
                        found.push(FoundRecord {
                            peer: peer_record.peer,
                            value: peer_record.record.value,
                        });
                    }
                    if finished && let Some((found, reply)) = self.gets.remove(&id) {
                        let _ = reply.send(Ok(found));
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
            } => self.on_inbound_record(source, record),
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

/// The `count` peers closest to `key` in Kademlia's XOR metric, closest first.
pub fn closest_of(key: &[u8], mut peers: Vec<PeerId>, count: usize) -> Vec<PeerId> {
    let target = kad::KBucketKey::new(key.to_vec());
    peers.sort_unstable();
    peers.dedup();
    peers.sort_by_cached_key(|peer| target.distance(&kad::KBucketKey::from(*peer)));
    peers.truncate(count);
    peers
}
