//! The defences on real swarms on loopback: connections over a limit and
//! from banned peers are refused and counted by cause, and a peer that
//! floods requests is answered `Busy`, then blocked. Every assertion is on
//! the counters or the answers, never on how long anything took.

use std::time::Duration;

use epost_types::wire::frag::{FragRequest, FragResponse, RefusalReason};
use futures::StreamExt;
use futures::stream::FuturesUnordered;

use crate::tests::{DEADLINE, start, start_with, until_everyone_knows_everyone};
use crate::{ConnectionLimits, ConnectionRefusal, DhtConfig, Limited, Rate, RequestLimits};

/// A dialler that lifts its own limits, so only the other side's count.
fn unlimited() -> DhtConfig {
    let connections =
        ConnectionLimits { max_incoming: u32::MAX, max_per_peer: u32::MAX, ..Default::default() };
    DhtConfig { connections, ..DhtConfig::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_per_peer_limit_are_refused_by_name() {
    let connections = ConnectionLimits { max_per_peer: 2, ..Default::default() };
    let (a, _ia) = start_with(51, None, DhtConfig { connections, ..DhtConfig::default() }).await;
    let (b, _ib) = start_with(52, Some(&a), unlimited()).await;
    let addr = a.started.listen_addrs[0].clone();
    for _ in 0..6 {
        b.client.dial(addr.clone()).await.unwrap();
    }
    let refused = |s: &crate::DefenceStats| s.connections_refused(ConnectionRefusal::PerPeer) >= 1;
    tokio::time::timeout(DEADLINE, a.client.defence_until(refused))
        .await
        .expect("no connection was refused as one too many for the peer");
    let stats = a.client.defence();
    assert_eq!(stats.connections_refused(ConnectionRefusal::OtherLimit), 0, "{stats:?}");
    assert_eq!(stats.connections_refused(ConnectionRefusal::Incoming), 0, "{stats:?}");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn established_incoming_connections_are_capped() {
    let connections = ConnectionLimits { max_incoming: 1, ..Default::default() };
    let (a, _ia) = start_with(61, None, DhtConfig { connections, ..DhtConfig::default() }).await;
    let (b, _ib) = start_with(62, Some(&a), unlimited()).await;
    let (c, _ic) = start_with(63, Some(&a), unlimited()).await;
    let refused = |s: &crate::DefenceStats| s.connections_refused(ConnectionRefusal::Incoming) >= 1;
    tokio::time::timeout(DEADLINE, a.client.defence_until(refused))
        .await
        .expect("a second incoming connection was not refused");
    for net in [a, b, c] {
        net.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_banned_in_the_config_is_refused_from_the_start() {
    let (b_config, b_peer) = {
        let id = crate::peer_id_of([72; 32]).unwrap();
        (DhtConfig::default(), id)
    };
    let banning = DhtConfig { banned: vec![b_peer], ..DhtConfig::default() };
    let (a, _ia) = start_with(71, None, banning).await;
    let (b, _ib) = start_with(72, Some(&a), b_config).await;
    assert_eq!(b.started.peer_id, b_peer);
    let refused = |s: &crate::DefenceStats| s.connections_refused(ConnectionRefusal::Blocked) >= 1;
    tokio::time::timeout(DEADLINE, a.client.defence_until(refused))
        .await
        .expect("the banned peer's connection was not refused");
    let status = a.client.status().await.unwrap();
    assert!(!status.connected_peers.contains(&b_peer), "{status:?}");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_peer_is_answered_busy_then_blocked() {
    // One request a second and a burst of 5: a flood of 40 at once is far over.
    let requests = RequestLimits {
        frag: Rate::new(1, 5),
        flood_block: Duration::from_secs(3600),
        ..RequestLimits::default()
    };
    let (a, inbound_a) = start_with(81, None, DhtConfig { requests, ..DhtConfig::default() }).await;
    let (b, _ib) = start(82, Some(&a)).await;
    until_everyone_knows_everyone(&[&a, &b]).await;
    let mut frag_a = inbound_a.frag;
    let holder = a.client.clone();
    let serve = tokio::spawn(async move {
        let mut served = 0u64;
        while let Some(request) = frag_a.recv().await {
            served += 1;
            holder.respond(request.reply, FragResponse::Held(vec![Vec::new()])).await;
        }
        served
    });

    let probe = || FragRequest::Probe { objects: vec![[5; 32]] };
    let target = a.started.peer_id;
    // One after another: the burst is served, then the peer is told why not.
    let mut held = 0u64;
    let refusal = loop {
        match b.client.request(target, probe()).await.unwrap() {
            FragResponse::Held(_) if held < 10 => held += 1,
            other => break other,
        }
    };
    let FragResponse::Refused { reason: RefusalReason::Busy, detail } = refusal else {
        panic!("over the rate: {refusal:?}");
    };
    assert!(detail.contains("rate limited"), "{detail}");
    assert!((5..=6).contains(&held), "{held} served at one a second with a burst of 5");
    assert_eq!(a.client.defence().throttled(Limited::Frag), 1);

    // Then a flood: refused, and the flooder is cut off.
    let mut asks: FuturesUnordered<_> =
        (0..40).map(|_| b.client.request(target, probe())).collect();
    let mut cut = 0;
    while let Some(answer) = tokio::time::timeout(DEADLINE, asks.next()).await.unwrap() {
        match answer {
            Ok(FragResponse::Refused { reason: RefusalReason::Busy, .. }) => {}
            Ok(FragResponse::Held(_)) => held += 1,
            Ok(other) => panic!("unexpected answer {other:?}"),
            Err(_) => cut += 1,
        }
    }
    drop(asks);
    let stats = a.client.defence();
    assert!(cut >= 1, "the flooder was never cut off");
    assert_eq!(stats.flood_blocks, 1, "{stats:?}");
    assert_eq!(stats.benched, 1, "{stats:?}");
    assert!(stats.throttled(Limited::Frag) >= 6, "{stats:?}");
    // Blocked: the flooder's next request fails at once, in either direction.
    assert!(b.client.request(target, probe()).await.is_err());
    assert!(a.client.request(b.started.peer_id, probe()).await.is_err());
    a.shutdown().await;
    assert_eq!(serve.await.unwrap(), held, "only what was served reached the service");
    b.shutdown().await;
}
