//! A peer that opens too many connections: past the per-peer limit, and
//! past the node's limit of incoming connections, new ones are refused at
//! the handshake, while the honest peer already connected keeps its
//! connection. Each refusal shows, by cause, in `/metrics`.

use std::time::Duration;

use epost_dht::{ConnectionLimits, ConnectionRefusal, DhtConfig};
use epost_testkit::{NetConfig, TestNet};

use crate::metric;
use crate::rogue::{Fragments, Rogue};

/// A rogue that lifts its own limits, so only the node's count.
fn unlimited() -> DhtConfig {
    let connections =
        ConnectionLimits { max_incoming: u32::MAX, max_per_peer: u32::MAX, ..Default::default() };
    DhtConfig { connections, ..DhtConfig::default() }
}

/// Waits (bounded) until node `holder` has refused a connection for `why`.
async fn refused(holder: &epost_node::Node, why: ConnectionRefusal) {
    let wait = holder.dht().defence_until(|s| s.connections_refused(why) >= 1);
    let done = tokio::time::timeout(Duration::from_secs(30), wait).await;
    assert!(done.is_ok(), "no connection was refused for {why:?}");
}

/// Two honest nodes (node 1 connected to node 0) whose node 0 takes at
/// most 2 connections per peer and 4 incoming. One rogue dials node 0
/// eight times: two connections are kept, the rest refused per peer. A
/// second rogue takes the last incoming slot, and a third finds none and
/// is refused. Node 1 stays connected throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_connections_are_refused_and_the_honest_peer_stays() {
    let connections = ConnectionLimits { max_per_peer: 2, max_incoming: 4, ..Default::default() };
    let config = NetConfig {
        dht: DhtConfig { connections, ..DhtConfig::default() },
        ..NetConfig::default()
    };
    let net = TestNet::start(2, config).await.unwrap();
    let holder = net.node(0);
    let honest = net.node(1).peer_id;
    let addr = holder.listen_addrs[0].clone();

    let greedy = Rogue::start_with(
        0xe0,
        std::slice::from_ref(&addr),
        Fragments::Honest,
        Vec::new(),
        unlimited(),
    )
    .await;
    for _ in 0..8 {
        greedy.dht.dial(addr.clone()).await.unwrap();
    }
    refused(holder, ConnectionRefusal::PerPeer).await;
    let per_peer = "epost_connections_refused_total{reason=\"per_peer\"}";
    assert!(metric(holder, per_peer).await >= 1);

    // Every incoming connection so far was kept or refused per peer.
    assert_eq!(holder.dht().defence().connections_refused(ConnectionRefusal::Incoming), 0);
    let last = Rogue::start_with(
        0xe1,
        std::slice::from_ref(&addr),
        Fragments::Honest,
        Vec::new(),
        unlimited(),
    )
    .await;
    let late = Rogue::start_with(
        0xe2,
        std::slice::from_ref(&addr),
        Fragments::Honest,
        Vec::new(),
        unlimited(),
    )
    .await;
    refused(holder, ConnectionRefusal::Incoming).await;
    assert!(metric(holder, "epost_connections_refused_total{reason=\"incoming\"}").await >= 1);
    assert_eq!(metric(holder, "epost_connections_refused_total{reason=\"other_limit\"}").await, 0);

    let status = holder.dht().status().await.unwrap();
    assert!(status.connected_peers.contains(&honest), "the honest peer lost its connection");
    assert!(!status.connected_peers.contains(&late.dht.local_peer_id()), "{status:?}");
    assert!(status.connected_peers.contains(&last.dht.local_peer_id()), "{status:?}");
    greedy.shutdown().await;
    last.shutdown().await;
    late.shutdown().await;
    net.shutdown().await;
}
