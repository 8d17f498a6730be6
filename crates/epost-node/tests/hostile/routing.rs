//! Lies in routing: a rogue whose routing table is full of made-up,
//! unreachable peers (so every Kademlia answer it gives names them), and
//! an honest node whose remembered peers were poisoned with them (it dials
//! them at start, but only peers that answer enter its routing table).
//! Lookups, records and objects still work.

use std::time::Duration;

use epost_dht::{Multiaddr, PeerId};
use epost_testkit::{NetConfig, TestNet, addr};

use crate::rogue::{Fragments, Rogue};
use epost_node::storage::{GetError, PutError};
use epost_types::capability::Capability;

use crate::{await_known_peers, content, get, put};

/// Made-up peers at a loopback port nothing listens on.
fn bogus_peers(n: u8) -> (Vec<PeerId>, Vec<Multiaddr>) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let ids: Vec<PeerId> = (0..n).map(|i| epost_dht::peer_id_of([0x70 + i; 32]).unwrap()).collect();
    let addrs = ids
        .iter()
        .map(|id| format!("/ip4/127.0.0.1/tcp/{port}/p2p/{id}").parse().unwrap())
        .collect();
    (ids, addrs)
}

/// Bounds one operation: slower is allowed, hanging is not.
async fn within<T>(what: &str, op: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), op)
        .await
        .unwrap_or_else(|_| panic!("{what} hung behind the bogus peers"))
}

/// Five nodes and a rogue lying in routing (its fragments handled as
/// `fragments` says); node 4 restarted with 24 made-up peers among its
/// remembered ones. Checks that the liar's poison took and that node 4's
/// did not.
async fn poisoned_net(fragments: Fragments) -> (TestNet, Rogue) {
    let mut net = TestNet::start(5, NetConfig::default()).await.unwrap();
    let (bogus, bogus_addrs) = bogus_peers(24);
    let lies = bogus.iter().copied().zip(bogus_addrs.iter().cloned()).collect();
    let liar = Rogue::start(0xe0, &net.node(0).listen_addrs, fragments, lies).await;

    net.stop(4).await;
    let remembered = net.data_dir(4).join("peers.json");
    let mut addrs: Vec<String> = bogus_addrs.iter().map(ToString::to_string).collect();
    if let Ok(bytes) = std::fs::read(&remembered) {
        addrs.extend(serde_json::from_slice::<Vec<String>>(&bytes).unwrap_or_default());
    }
    std::fs::write(&remembered, serde_json::to_vec(&addrs).unwrap()).unwrap();
    net.restart(4).await.unwrap();
    await_known_peers(&net, 5).await;

    // The liar's routing table names made-up peers, or the tests prove
    // nothing; node 4 dialled its remembered ones and kept none that failed.
    let key = [0u8; 32];
    let fakes = |known: Vec<PeerId>| known.iter().filter(|p| bogus.contains(p)).count();
    let fake = fakes(liar.dht.known_closest(&key, 64).await.unwrap());
    assert!(fake >= 8, "the liar knows only {fake} bogus peers: the test proves nothing");
    let fake = fakes(net.node(4).dht().known_closest(&key, 64).await.unwrap());
    assert_eq!(fake, 0, "node 4 put unanswered remembered peers in its routing table");

    (net, liar)
}

/// Node 4 is restarted with 24 made-up peers among its remembered ones,
/// and a rogue joins that answers every routing query with the same
/// made-up peers. Certificates and log heads are found from every node
/// (through queries the rogue answers); objects put on honest nodes read
/// back exactly on the poisoned node and everywhere else; a put on the
/// poisoned node succeeds or fails with a typed error; and maintenance
/// spreads every stored object over the honest peers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_and_objects_survive_bogus_routing_entries() {
    // The liar keeps no fragments: one it kept would stay where a put left
    // it, as it never hands fragments over (see the ignored test below).
    let (net, liar) = poisoned_net(Fragments::Refuse).await;

    // Records: certificates and a log head found from every node.
    net.realm_on(0, "example.org").unwrap();
    let alice = addr("alice@example.org");
    within("add user", net.node(0).identity.add_user(alice.clone(), None)).await.unwrap();
    within("append", net.node(0).logs.append(&alice, "notes", b"hello".to_vec())).await.unwrap();
    for i in net.running() {
        let cert = within("lookup", net.node(i).identity.lookup_certificate(&alice)).await;
        assert_eq!(cert.expect("certificate").address, alice, "node {i}");
        let head = within("head", net.node(i).logs.head(&alice, "notes")).await;
        assert_eq!(head.expect("head").seq, 1, "node {i}");
    }

    // Objects put by honest nodes, and by the poisoned node, read
    // everywhere. The poisoned node's put may find no close peer willing
    // to hold (the made-up peers crowd out all but the refusing liar):
    // then it fails with a typed error, never a false acknowledgement.
    let mut caps = Vec::new();
    for (i, from) in [1, 4, 2, 4].into_iter().enumerate() {
        let data = content(70 + i, 12_000 + i * 7_000);
        match within("put", net.node(from).storage.put_reader(&data[..])).await {
            Ok(report) => caps.push((report.capability, data)),
            Err(e) if from == 4 => {
                assert!(matches!(e, PutError::NotEnoughHolders { .. }), "{e}");
            }
            Err(e) => panic!("an honest node's put failed: {e}"),
        }
    }
    assert!(caps.len() >= 2);
    let caps: Vec<(Capability, Vec<u8>)> = caps;
    for (cap, data) in &caps {
        for i in net.running() {
            match within("get", get(net.node(i), cap)).await {
                Ok(got) => assert_eq!(got, *data, "node {i} read wrong bytes"),
                // The poisoned node asks its 2(k+m) closest: the made-up
                // peers may crowd out every real holder (the ignored test
                // below). Then it says so; it never returns wrong data.
                Err((GetError::NotEnoughFragments { .. }, written)) if i == 4 => {
                    assert!(written.is_empty());
                }
                Err((e, _)) => panic!("node {i}: {e}"),
            }
        }
        let report = within("check", net.node(2).storage.check(cap)).await.unwrap();
        assert!(report.readable && report.min_alive >= 6, "{report:?}");
    }
    // A put from the poisoned node may have wrapped its fragments round
    // the few real peers it reached; maintenance (which drops peers that
    // never answer) spreads every object one fragment per honest peer
    // (the liar declines its share).
    let mut spread = false;
    for _round in 0..6 {
        for i in net.running() {
            within("repair", net.node(i).storage.repair_now()).await.expect("repair");
        }
        spread = true;
        for (cap, _) in &caps {
            let report = within("check", net.node(0).storage.check(cap)).await.unwrap();
            spread &= report.fragments_alive == 8 && report.details[0].holders == 5;
        }
        if spread {
            break;
        }
    }
    assert!(spread, "objects not spread over the five honest peers");
    liar.shutdown().await;
    net.shutdown().await;
}

/// Known gaps, kept as a failing test. A node whose routing table is
/// mostly made-up peers takes them for the closest peers (the overlay
/// answers "closest" from its table while no bucket is full, reachable or
/// not): its put wraps every fragment round the few peers that answered,
/// with these seeds all k + m on the rogue, acknowledged as durable and
/// held by no honest node, so no maintenance ever spreads it; and its get
/// asks only its 2(k + m) "closest", so it cannot read objects the real
/// holders have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "known gap: unreachable routing entries count as closest peers for puts and gets"]
async fn a_node_with_bogus_routing_entries_still_spreads_and_reads() {
    let (net, liar) = poisoned_net(Fragments::Honest).await;
    for i in 0..3 {
        let data = content(70 + i, 12_000 + i * 7_000);
        let cap = within("put", put(net.node(4), &data)).await;
        let report = within("check", net.node(0).storage.check(&cap)).await.unwrap();
        assert!(report.details[0].holders >= 4, "object {i} on too few peers: {report:?}");
        let other = within("put", put(net.node(1), &content(90 + i, 9_000))).await;
        let got = within("get", get(net.node(4), &other)).await.map_err(|(e, _)| e);
        assert_eq!(got.expect("the poisoned node reads"), content(90 + i, 9_000));
    }
    liar.shutdown().await;
    net.shutdown().await;
}
