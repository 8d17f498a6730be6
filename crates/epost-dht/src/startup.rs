//! Bringing the overlay up: listeners bound, bootstrap peers reached, and
//! the event loop spawned. Each failure is reported with what to check.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use libp2p::kad::store::RecordStore;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, SwarmBuilder, identity, kad, noise, tcp, yamux};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::StartOptions;
use crate::behaviour::Behaviour;
use crate::client::{DhtClient, NetworkStatus};
use crate::event_loop::{EventLoop, Wiring};
use crate::frag::InboundFrag;
use crate::guard::{Counters, Guard};
use crate::join::Joiner;
use crate::notify::InboundNotify;
use crate::records::RecordSink;

/// Why the overlay could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the node key is not a valid Ed25519 seed: {0}")]
    Identity(String),
    #[error("cannot set up the network transport: {0}")]
    Transport(String),
    #[error("cannot listen on {addr}: {detail}")]
    Listen { addr: Multiaddr, detail: String },
    #[error("bootstrap address {addr} must end in /p2p/<peer id>")]
    BootstrapAddress { addr: Multiaddr },
}

/// The queues of requests peers sent, for the node's services to answer.
/// Both are bounded; when one is full the overlay refuses instead of
/// queueing more.
#[derive(Debug)]
pub struct Inbound {
    /// `/epost/frag/1`, for the storage service.
    pub frag: mpsc::Receiver<InboundFrag>,
    /// `/epost/notify/1`, for the notification service.
    pub notify: mpsc::Receiver<InboundNotify>,
}

/// A running overlay.
pub struct Dht {
    pub client: DhtClient,
    /// The overlay as it was once listening and bootstrapped.
    pub started: NetworkStatus,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Dht {
    /// Starts the overlay: binds every listen address, dials the configured
    /// and remembered peers (waiting up to the bootstrap timeout for one to
    /// answer, and running on alone if none does), then runs the event loop.
    /// Also returns the queues of fragment and notify requests from peers,
    /// for the storage and notification services to answer.
    pub async fn start(options: StartOptions) -> Result<(Self, Inbound), StartError> {
        let StartOptions {
            config,
            identity_seed,
            validator,
            stored_records,
            record_writes,
            remembered_peers,
        } = options;
        let mut seed = identity_seed;
        let key = identity::Keypair::ed25519_from_bytes(&mut seed)
            .map_err(|e| StartError::Identity(e.to_string()))?;
        let mut swarm = build_swarm(key, &config)?;
        // Before any listener or dial: a banned peer never gets a connection.
        for peer in &config.banned {
            swarm.behaviour_mut().blocked.block_peer(*peer);
        }
        let counters = std::sync::Arc::new(Counters::default());
        let guard = Guard::new(&config, counters.clone());

        for stored in stored_records {
            // A lapsed record, or one that no longer fits the store's
            // limits, is simply not reloaded.
            let Some(expires) = crate::records::expiry::to_instant(stored.expires) else {
                continue;
            };
            let mut record = kad::Record::new(stored.key, stored.value);
            record.expires = Some(expires);
            let _ = swarm.behaviour_mut().kad.store_mut().put(record);
        }

        let (commands_tx, commands_rx) = mpsc::channel(config.command_queue);
        let (frag_tx, frag_rx) = mpsc::channel(config.inbound_queue);
        let (notify_tx, notify_rx) = mpsc::channel(config.notify_queue);
        let (events_tx, _) = broadcast::channel(1024);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let local_peer = *swarm.local_peer_id();

        listen(&mut swarm, &config.listen).await?;
        let mut event_loop = EventLoop::new(
            swarm,
            Wiring {
                commands: commands_rx,
                inbound_frag: frag_tx,
                inbound_notify: notify_tx,
                events: events_tx.clone(),
                validator,
                sink: RecordSink::new(record_writes),
                shutdown: shutdown_rx,
                replication: config.replication.get(),
                record_ttl: config.record_ttl,
                reservations: config.reach.reservations,
                guard,
                requests: config.requests,
            },
        );
        check_bootstrap(&config.bootstrap)?;
        event_loop.seeds = config.bootstrap.iter().chain(&remembered_peers).cloned().collect();
        if !first_contact(&mut event_loop, config.bootstrap_timeout).await {
            // The retries count from the end of the wait at start.
            event_loop.joiner = Joiner::new(false, std::time::Instant::now());
        }
        let started = event_loop.status();
        info!(peer_id = %local_peer, addrs = ?started.listen_addrs, "overlay started");

        let task = tokio::spawn(event_loop.run());
        let client = DhtClient { commands: commands_tx, events: events_tx, local_peer, counters };
        let inbound = Inbound { frag: frag_rx, notify: notify_rx };
        Ok((Self { client, started, shutdown: shutdown_tx, task }, inbound))
    }

    /// Stops the event loop and waits for it; pending calls see `Stopped`.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

fn build_swarm(
    key: identity::Keypair,
    config: &crate::DhtConfig,
) -> Result<Swarm<Behaviour>, StartError> {
    let transport = |e: &dyn std::fmt::Display| StartError::Transport(e.to_string());
    Ok(SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux::Config::default)
        .map_err(|e| transport(&e))?
        .with_quic()
        .with_dns()
        .map_err(|e| StartError::Transport(format!("cannot read the system's DNS settings: {e}")))?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| transport(&e))?
        .with_behaviour(|key, relay_client| Behaviour::new(key, relay_client, config))
        .map_err(|e| transport(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_timeout))
        .build())
}

/// Binds every listen address and waits until each reports a real address
/// (so port 0 has become a port), or fails naming the address. An IPv6
/// wildcard that cannot be bound (a host without IPv6) is skipped with a
/// warning, as long as another address is bound.
async fn listen(swarm: &mut Swarm<Behaviour>, addrs: &[Multiaddr]) -> Result<(), StartError> {
    let mut pending = std::collections::HashMap::new();
    let mut bound = 0;
    let mut skipped = Vec::new();
    let mut failed = |addr: Multiaddr, detail: String| {
        if may_skip(&addr) {
            warn!(%addr, %detail, "cannot listen on the IPv6 wildcard; IPv6 peers cannot dial in");
            skipped.push(StartError::Listen { addr, detail });
            Ok(())
        } else {
            Err(StartError::Listen { addr, detail })
        }
    };
    for addr in addrs {
        match swarm.listen_on(addr.clone()) {
            Ok(id) => {
                pending.insert(id, addr.clone());
            }
            Err(e) => failed(addr.clone(), e.to_string())?,
        }
    }
    while !pending.is_empty() {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { listener_id, address }
                if pending.remove(&listener_id).is_some() =>
            {
                bound += 1;
                info!(%address, "listening");
            }
            SwarmEvent::ListenerClosed { listener_id, reason, .. } => {
                if let Some(addr) = pending.remove(&listener_id) {
                    let detail = reason.err().map_or("closed".to_owned(), |e| e.to_string());
                    failed(addr, detail)?;
                }
            }
            SwarmEvent::ListenerError { listener_id, error } => {
                if let Some(addr) = pending.remove(&listener_id) {
                    failed(addr, error.to_string())?;
                }
            }
            _ => {}
        }
    }
    match skipped.pop() {
        Some(error) if bound == 0 => Err(error),
        _ => Ok(()),
    }
}

/// Whether failing to bind `addr` may be skipped: the IPv6 wildcard of a
/// dual-stack default, on a host that has no IPv6.
fn may_skip(addr: &Multiaddr) -> bool {
    matches!(addr.iter().next(), Some(Protocol::Ip6(ip)) if ip.is_unspecified())
}

/// Checks that every bootstrap address names its peer (a misconfigured
/// address is the one startup error about peers).
fn check_bootstrap(addrs: &[Multiaddr]) -> Result<(), StartError> {
    for addr in addrs {
        if !matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
            return Err(StartError::BootstrapAddress { addr: addr.clone() });
        }
    }
    Ok(())
}

/// Dials every configured and remembered peer and waits until one
/// connection is up, every dial has failed, or `timeout` passed. Whatever
/// the outcome the node runs on: alone, it retries with backoff (`join`).
/// Returns whether a peer connected.
async fn first_contact(event_loop: &mut EventLoop, timeout: Duration) -> bool {
    let mut waiting: HashSet<PeerId> = event_loop.dial_known().into_iter().collect();
    if waiting.is_empty() {
        return false;
    }
    let mut failures = Vec::new();
    let connected = tokio::time::timeout(timeout, async {
        while !waiting.is_empty() {
            let event = event_loop.swarm.select_next_some().await;
            match &event {
                SwarmEvent::ConnectionEstablished { .. } => {
                    event_loop.on_swarm_event(event);
                    return true;
                }
                SwarmEvent::OutgoingConnectionError { peer_id: Some(peer), error, .. }
                    if waiting.remove(peer) =>
                {
                    failures.push(format!("{peer}: {error}"));
                }
                _ => {}
            }
            event_loop.on_swarm_event(event);
        }
        false
    })
    .await
    .unwrap_or(false);
    if !connected {
        let detail = if failures.is_empty() { "no answer".to_owned() } else { failures.join("; ") };
        warn!(
            ?timeout,
            %detail,
            "no known peer could be reached; running alone and retrying with backoff \
             (check that they run and that network.bootstrap in config.toml is right)"
        );
    }
    connected
}

#[cfg(test)]
mod tests {
    use super::may_skip;

    #[test]
    fn only_the_ipv6_wildcard_may_fail_to_bind() {
        let table = [
            ("/ip6/::/tcp/4100", true),
            ("/ip6/::/udp/4100/quic-v1", true),
            ("/ip6/::1/tcp/4100", false),
            ("/ip4/0.0.0.0/tcp/4100", false),
            ("/ip4/127.0.0.1/udp/0/quic-v1", false),
        ];
        for (addr, skip) in table {
            assert_eq!(may_skip(&addr.parse().unwrap()), skip, "{addr}");
        }
    }
}
