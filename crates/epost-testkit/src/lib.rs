//! N epost nodes in one process, on loopback TCP, each with its own data
//! directory: the harness the crates' multi-node tests run on. Nodes can be
//! stopped and restarted with their stores, and the network cut in two and
//! healed.
//!
//! Dev-only: never a dependency of a shipped crate. Tests that need real
//! processes and SIGKILL live in the workspace's tests/ instead.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use epost_dht::DhtConfig;
use epost_node::storage::StorageConfig;
use epost_node::{Node, NodeError, NodeOptions};

mod users;
mod wait;

pub use users::{UsersError, addr};
pub use wait::{await_event, await_inbox, inbox_reaches};

/// Why a test network could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TestNetError {
    #[error("cannot prepare a data directory: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Node(#[from] NodeError),
}

/// A test network.
pub struct TestNet {
    slots: Vec<Slot>,
    _root: tempfile::TempDir,
}

struct Slot {
    options: NodeOptions,
    node: Option<Node>,
}

/// Settings for every node of a [`TestNet`].
#[derive(Debug, Clone)]
pub struct NetConfig {
    pub storage: StorageConfig,
    /// Shared by all nodes, so the same plaintext gives the same object anywhere.
    pub convergence_secret: Vec<u8>,
    /// The inbox holders' limits (tests shrink them to reach them quickly).
    pub notify: epost_node::notify::NotifyConfig,
    /// Renewal: tests trigger passes themselves.
    pub lease: epost_node::lease::LeaseConfig,
    /// What every node listens on (loopback TCP, port 0, by default).
    pub listen: epost_dht::Multiaddr,
    /// Every node's overlay settings (limits, rates); listen and bootstrap
    /// addresses are each node's own.
    pub dht: DhtConfig,
    /// The outbound queue and what it delivers with (by default nothing:
    /// everything deferred).
    pub outbound: epost_node::outbound::OutboundOptions,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            storage: StorageConfig {
                // Tests trigger passes themselves; a peer is gone at once.
                repair_interval: Duration::from_secs(3600),
                grace: Duration::from_millis(1),
                ..StorageConfig::default()
            },
            convergence_secret: b"testkit realm".to_vec(),
            listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap_or_else(|_| unreachable!()),
            notify: Default::default(),
            lease: epost_node::lease::LeaseConfig {
                interval: Duration::from_secs(24 * 3600),
                rate: 1_000_000,
                ..Default::default()
            },
            dht: DhtConfig::default(),
            outbound: Default::default(),
        }
    }
}

impl TestNet {
    /// Starts `n` nodes; the first alone, the others bootstrapping through it.
    pub async fn start(n: usize, config: NetConfig) -> Result<Self, TestNetError> {
        let root = tempfile::tempdir()?;
        let mut slots: Vec<Slot> = Vec::with_capacity(n);
        for i in 0..n {
            let bootstrap = slots
                .first()
                .and_then(|s| s.node.as_ref())
                .map(|n| n.listen_addrs.clone())
                .unwrap_or_default();
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
            seed[8] = 0xe9;
            let options = NodeOptions {
                data_dir: root.path().join(format!("node{i}")),
                identity_seed: seed,
                convergence_secret: config.convergence_secret.clone(),
                backend: epost_store::Backend::Redb,
                dht: DhtConfig {
                    listen: vec![config.listen.clone()],
                    bootstrap,
                    ..config.dht.clone()
                },
                storage: config.storage.clone(),
                identity: Default::default(),
                notify: config.notify.clone(),
                lease: config.lease.clone(),
                sweep_interval: Duration::from_secs(3600),
                api_listen: loopback(),
                api_token: format!("token-{i}"),
                outbound: config.outbound.clone(),
            };
            std::fs::create_dir_all(&options.data_dir)?;
            let node = Node::start(options.clone()).await?;
            slots.push(Slot { options, node: Some(node) });
        }
        let net = Self { slots, _root: root };
        net.settle().await;
        Ok(net)
    }

    /// The running node `i`. Panics if it is stopped (a test bug).
    pub fn node(&self, i: usize) -> &Node {
        self.slots[i].node.as_ref().unwrap_or_else(|| panic!("node {i} is stopped"))
    }

    /// Node `i`'s data directory (running or not): tests plant files there
    /// (a poisoned `peers.json`, say) while the node is stopped.
    pub fn data_dir(&self, i: usize) -> &Path {
        &self.slots[i].options.data_dir
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Indices of running nodes.
    pub fn running(&self) -> Vec<usize> {
        (0..self.slots.len()).filter(|i| self.slots[*i].node.is_some()).collect()
    }

    /// Stops node `i` (its connections drop; its store stays on disk).
    pub async fn stop(&mut self, i: usize) {
        if let Some(node) = self.slots[i].node.take() {
            node.shutdown().await;
        }
    }

    /// Starts node `i` again from its data directory, bootstrapping through
    /// the first running node.
    pub async fn restart(&mut self, i: usize) -> Result<(), NodeError> {
        let bootstrap =
            self.running().first().map(|r| self.node(*r).listen_addrs.clone()).unwrap_or_default();
        let mut options = self.slots[i].options.clone();
        options.dht.bootstrap = bootstrap;
        self.slots[i].node = Some(Node::start(options).await?);
        self.settle().await;
        Ok(())
    }

    /// Waits (bounded, on peer events) until every running node's routing
    /// table holds every other running node.
    pub async fn settle(&self) {
        let _ = self.known_peers_reach(self.running().len().saturating_sub(1)).await;
    }

    /// Waits, at most 30 s, on peer events until every running node's
    /// routing table holds at least `peers` peers (peers outside the test
    /// network count too); whether they all did.
    pub async fn known_peers_reach(&self, peers: usize) -> bool {
        let wait = async {
            for i in self.running() {
                let dht = self.node(i).dht();
                let mut events = dht.subscribe();
                while dht.status().await.is_some_and(|s| s.known_peers < peers) {
                    let _ = tokio::time::timeout(Duration::from_millis(200), events.recv()).await;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(30), wait).await.is_ok()
    }

    /// Cuts the running nodes in two: those in `side` and the rest. Each
    /// blocks the other side's peers (open connections close, new ones are
    /// refused), as a network partition would. Returns once no connection
    /// crosses the cut. A node restarted during a partition is not cut.
    pub async fn partition(&self, side: &[usize]) {
        let others: Vec<usize> = self.running().into_iter().filter(|i| !side.contains(i)).collect();
        for a in side {
            for b in &others {
                self.node(*a).dht().block(self.node(*b).peer_id).await;
                self.node(*b).dht().block(self.node(*a).peer_id).await;
            }
        }
        let crossing = |peers: &[epost_dht::PeerId], other: &[usize]| {
            peers.iter().any(|p| other.iter().any(|o| self.node(*o).peer_id == *p))
        };
        let wait = async {
            for i in self.running() {
                let other = if side.contains(&i) { &others[..] } else { side };
                let dht = self.node(i).dht();
                let mut events = dht.subscribe();
                while dht.status().await.is_some_and(|s| crossing(&s.connected_peers, other)) {
                    let _ = tokio::time::timeout(Duration::from_millis(200), events.recv()).await;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(30), wait).await;
    }

    /// Ends a partition: every running node unblocks and dials every other,
    /// then the network settles.
    pub async fn heal(&self) {
        let running = self.running();
        for a in &running {
            for b in &running {
                if a != b {
                    let dht = self.node(*a).dht();
                    dht.unblock(self.node(*b).peer_id).await;
                    if let Some(addr) = self.node(*b).listen_addrs.first() {
                        let _ = dht.dial(addr.clone()).await;
                    }
                }
            }
        }
        self.settle().await;
    }

    /// Stops every node in order.
    pub async fn shutdown(mut self) {
        for i in 0..self.slots.len() {
            self.stop(i).await;
        }
    }
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}
