//! The storage service across several in-process nodes on loopback TCP:
//! put anywhere, read anywhere, lose nodes, repair, corrupt a fragment.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

use epost_node::Node;
use epost_node::control::WorkerState;
use epost_testkit::{NetConfig, TestNet};
use epost_types::capability::Capability;

fn content(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 7 + seed * 13) % 251) as u8).collect()
}

async fn put(node: &Node, data: &[u8]) -> Capability {
    let report = node.storage.put_reader(data).await.expect("put");
    report.capability
}

async fn get(node: &Node, cap: &Capability) -> Vec<u8> {
    let mut out = Vec::new();
    node.storage.get_to(cap, &mut out).await.expect("get");
    out
}

async fn repair_until_full(net: &TestNet, caps: &[Capability]) -> u64 {
    let mut repaired = 0;
    for _round in 0..10 {
        for i in net.running() {
            repaired += net.node(i).storage.repair_now().await.expect("repair").fragments_repaired;
        }
        let checker = net.node(net.running()[0]);
        let mut full = true;
        for cap in caps {
            let report = checker.storage.check(cap).await.expect("check");
            full &= report.fragments_alive == report.fragments_total;
        }
        if full {
            return repaired;
        }
    }
    panic!("objects not back to full redundancy after 10 rounds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_put_anywhere_read_anywhere() {
    let net = TestNet::start(5, NetConfig::default()).await.unwrap();
    let sizes = [0, 1, 4811, 3 * 1024 * 1024 + 17];
    let mut caps = Vec::new();
    for (i, len) in sizes.iter().enumerate() {
        let cap = put(net.node(i % 5), &content(i, *len)).await;
        assert_eq!(get(net.node((i + 2) % 5), &cap).await, content(i, *len), "size {len}");
        let report = net.node((i + 3) % 5).storage.check(&cap).await.unwrap();
        assert_eq!(report.fragments_alive, report.fragments_total, "{report:?}");
        assert!(report.readable);
        caps.push(cap);
    }
    // A refresh reaches every fragment of every object under the capability.
    let refreshed = net.node(1).storage.refresh(&caps[3]).await.unwrap();
    assert!(refreshed.objects > 1, "a 3 MiB object is a manifest and chunks");
    assert_eq!(refreshed.fragments_extended, 8 * refreshed.objects as u64, "{refreshed:?}");
    // Same plaintext, same realm secret: the same object, stored once.
    assert_eq!(put(net.node(4), &content(2, 4811)).await, caps[2]);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_four_of_ten_loses_nothing_and_repair_restores_redundancy() {
    let mut net = TestNet::start(10, NetConfig::default()).await.unwrap();
    let mut caps = Vec::new();
    for i in 0..12 {
        caps.push(put(net.node(i % 10), &content(i, 1000 + i * 3000)).await);
    }
    for i in 6..10 {
        net.stop(i).await;
    }
    for (i, cap) in caps.iter().enumerate() {
        assert_eq!(get(net.node(i % 6), cap).await, content(i, 1000 + i * 3000));
    }
    assert!(repair_until_full(&net, &caps).await > 0, "four lost nodes must need repairs");
    for i in 6..10 {
        net.restart(i).await.unwrap();
    }
    // Returning nodes make copies excess; nothing is rebuilt.
    let mut rebuilt = 0;
    for i in net.running() {
        rebuilt += net.node(i).storage.repair_now().await.unwrap().fragments_repaired;
    }
    assert_eq!(rebuilt, 0, "returning nodes caused rebuilds");
    for (i, cap) in caps.iter().enumerate() {
        assert_eq!(get(net.node(9), cap).await, content(i, 1000 + i * 3000));
    }
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_fragment_is_never_served_and_is_repaired() {
    let net = TestNet::start(8, NetConfig::default()).await.unwrap();
    let data = content(99, 20_000);
    let cap = put(net.node(0), &data).await;
    // Flip one bit of the stored fragment on three holders (fewer than m).
    let mut flipped = 0;
    for i in net.running() {
        if flipped < 3 && net.node(i).storage.inject_corruption(cap.id).await {
            flipped += 1;
        }
    }
    assert_eq!(flipped, 3);
    // Readers still get the right bytes, whichever fragments they are sent.
    for i in net.running() {
        assert_eq!(get(net.node(i), &cap).await, data);
    }
    // Maintenance scrubs what reads did not touch, and rebuilds the lot.
    repair_until_full(&net, std::slice::from_ref(&cap)).await;
    let corrupt: u64 =
        net.running().iter().map(|i| net.node(*i).storage.metrics().corrupt_count()).sum();
    assert_eq!(corrupt, 3, "every flipped fragment is detected once");
    assert_eq!(get(net.node(5), &cap).await, data);
    // Every service's worker runs, and the passes asked for were counted.
    let workers = net.node(5).workers();
    let names: Vec<&str> = workers.iter().map(|w| w.name.as_str()).collect();
    for name in ["repair", "renew", "storage-holder", "notify-holder", "mail-filing", "api"] {
        assert!(names.contains(&name), "{name} is not among {names:?}");
    }
    let repair = workers.iter().find(|w| w.name == "repair").unwrap();
    assert!(repair.runs >= 1, "{repair:?}");
    assert!(
        workers.iter().all(|w| matches!(w.state, WorkerState::Idle | WorkerState::Busy)),
        "{workers:?}"
    );
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holders_refuse_forged_and_malformed_fragments() {
    use epost_node::storage::erasure;
    use epost_types::wire::frag::{FragRequest, FragResponse, RefusalReason};
    use serde_bytes::ByteBuf;

    let net = TestNet::start(2, NetConfig::default()).await.unwrap();
    let (liar, holder) = (net.node(0), net.node(1));
    let sealed = liar.storage.seal(&content(7, 5000));
    let fragments = erasure::encode(sealed.id, &sealed.ciphertext, 4, 4).unwrap();

    let mut forged = fragments[0].clone();
    forged.data[0] ^= 1; // wrong hash for its index
    let mut relabelled = fragments[1].clone();
    relabelled.index = 2; // claims to be another fragment
    let offers = [forged.encode(), relabelled.encode(), b"not a fragment at all".to_vec()];
    for offer in offers {
        // A good fragment in the same batch does not sneak the bad one in.
        let request = FragRequest::Store {
            fragments: vec![ByteBuf::from(fragments[3].encode()), ByteBuf::from(offer)],
            expires: u64::MAX,
        };
        let answer = liar.dht().request(holder.peer_id, request).await.unwrap();
        assert!(
            matches!(answer, FragResponse::Refused { reason: RefusalReason::BadFragment, .. }),
            "{answer:?}"
        );
    }
    assert_eq!(holder.storage.local_usage().0, 0, "nothing from a refused batch is stored");
    assert_eq!(holder.storage.metrics().rejected_count(), 3, "every bad offer is counted");
    let fetch = FragRequest::Fetch { object: *sealed.id.as_bytes(), index: 0 };
    assert_eq!(liar.dht().request(holder.peer_id, fetch).await.unwrap(), FragResponse::NotFound);
    net.shutdown().await;
}

/// Runs maintenance passes until every object sits one fragment per peer
/// on `peers` distinct holders (bounded).
async fn repair_until_spread(net: &TestNet, caps: &[Capability], peers: usize) {
    for _round in 0..10 {
        for i in net.running() {
            net.node(i).storage.repair_now().await.expect("repair");
        }
        let checker = net.node(net.running()[0]);
        let mut spread = true;
        for cap in caps {
            let report = checker.storage.check(cap).await.expect("check");
            spread &= report.fragments_alive == report.fragments_total
                && report.details.iter().all(|o| o.holders == peers);
        }
        if spread {
            return;
        }
    }
    panic!("objects not spread over {peers} holders after 10 rounds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_keeps_both_sides_working_and_healing_respreads() {
    let net = TestNet::start(6, NetConfig::default()).await.unwrap();
    let before = content(1, 30_000);
    let cap_before = put(net.node(0), &before).await;

    net.partition(&[0, 1, 2]).await;
    // Each side still reads what was stored before the cut: any k = 4 of
    // the 4+4 fragments will do, and with these node and object ids each
    // side holds four.
    for i in 0..6 {
        assert_eq!(get(net.node(i), &cap_before).await, before, "node {i} during the partition");
    }
    // Each side accepts new objects: fragments meant for the unreachable
    // side wrap round the reachable peers, and then all eight are needed.
    let during_a = content(2, 30_000);
    let cap_a = put(net.node(0), &during_a).await;
    let during_b = content(3, 30_000);
    let cap_b = put(net.node(4), &during_b).await;
    let report = net.node(1).storage.check(&cap_a).await.unwrap();
    assert_eq!((report.fragments_alive, report.details[0].holders), (8, 3), "{report:?}");
    let across = net.node(5).storage.check(&cap_a).await;
    assert!(!matches!(across, Ok(ref r) if r.readable), "{across:?}");

    net.heal().await;
    for i in 0..6 {
        assert_eq!(get(net.node(i), &cap_a).await, during_a, "node {i} after healing");
        assert_eq!(get(net.node(i), &cap_b).await, during_b, "node {i} after healing");
    }
    // Maintenance moves the wrapped fragments to their rightful holders:
    // one peer lost costs at most its share again.
    let caps = [cap_before, cap_a, cap_b];
    repair_until_spread(&net, &caps, 6).await;
    let rebuilt: u64 =
        net.running().iter().map(|i| net.node(*i).storage.metrics().repaired_count()).sum();
    assert_eq!(rebuilt, 0, "healing moves fragments; it never rebuilds them");
    net.shutdown().await;
}
