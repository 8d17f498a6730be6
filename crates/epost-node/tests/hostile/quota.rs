//! A peer that stores past its quota: a holder charges every fragment to
//! the peer that asked it to keep it, refuses `OverQuota` once that peer's
//! share of its capacity is used (for `Store` and for `Extend` of others'
//! fragments alike), and keeps taking honest peers' fragments; a placer
//! told `OverQuota` puts the fragment on another peer, as for `NoSpace`.

use epost_dht::PeerId;
use epost_node::Node;
use epost_node::storage::{QuotaLimits, StorageConfig, erasure};
use epost_testkit::{NetConfig, TestNet};
use epost_types::id::ObjectId;
use epost_types::wire::frag::{FragRequest, FragResponse, RefusalReason};
use serde_bytes::ByteBuf;

use crate::rogue::{Fragments, Rogue};
use crate::storage::repair_until_full;
use crate::{await_known_peers, content, get, metric};

/// 256 MiB of capacity, 1 % of it per peer: 2.5 MiB each.
fn limits() -> QuotaLimits {
    QuotaLimits { capacity: 256 * 1024 * 1024, peer_percent: 1, peer_floor: 0 }
}

/// One valid fragment of 64 KiB of made-up data, as the rogue's own.
fn rogue_fragment(n: u32) -> ByteBuf {
    let mut id = [0xee; 32];
    id[..4].copy_from_slice(&n.to_be_bytes());
    let data: Vec<u8> = (0..256 * 1024u32).map(|i| (i ^ n) as u8).collect();
    let fragments = erasure::encode(ObjectId::from_bytes(id), &data, 4, 4).unwrap();
    ByteBuf::from(fragments[0].encode())
}

async fn store(rogue: &Rogue, holder: &Node, fragments: Vec<ByteBuf>) -> FragResponse {
    let request = FragRequest::Store { fragments, expires: u64::MAX };
    rogue.dht.request(holder.peer_id, request).await.expect("the holder answers")
}

fn refused_over_quota(answer: &FragResponse) -> bool {
    matches!(answer, FragResponse::Refused { reason: RefusalReason::OverQuota, .. })
}

/// Eight honest nodes with a small quota and one rogue. The rogue stores
/// its own fragments on node 0 until it is refused `OverQuota`: exactly
/// what fits its quota was kept, charged to it, and no more. Honest puts
/// still succeed, node 0 keeps taking its share of them, and where the
/// rogue is a holder (it answers `OverQuota` to every store) the fragment
/// goes to the spare (at once if the refusal comes before the put's
/// quorum, else at the next maintenance pass): every object ends with one
/// fragment on each of eight honest peers. The rogue cannot take over
/// honest fragments with `Extend` either. Node 0's `/metrics` counts each
/// refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_over_its_quota_is_refused_and_honest_data_is_placed_elsewhere() {
    let config = NetConfig {
        storage: StorageConfig { quota: limits(), ..NetConfig::default().storage },
        ..NetConfig::default()
    };
    let net = TestNet::start(8, config).await.unwrap();
    let holder = net.node(0);
    let rogue = Rogue::start(0xc0, &holder.listen_addrs, Fragments::OverQuota, Vec::new()).await;
    let rogue_id: PeerId = rogue.dht.local_peer_id();
    await_known_peers(&net, 8).await;
    let quota = limits().per_peer();

    // Fill the quota, one fragment at a time, until refused.
    let mut kept = 0u64;
    let mut refusal = None;
    for n in 0..200 {
        let fragment = rogue_fragment(n);
        let len = fragment.len() as u64;
        let answer = store(&rogue, holder, vec![fragment]).await;
        match answer {
            FragResponse::Stored => kept += len,
            other => {
                refusal = Some((other, len));
                break;
            }
        }
    }
    let (answer, len) = refusal.expect("the rogue stored 200 fragments past a 2.5 MiB quota");
    assert!(refused_over_quota(&answer), "{answer:?}");
    assert!(kept <= quota && kept + len > quota, "{kept} kept of a {quota}-byte quota");
    assert_eq!(holder.storage.charged_to(&rogue_id), kept, "every kept byte is charged to it");
    // Asking again changes nothing.
    assert!(refused_over_quota(&store(&rogue, holder, vec![rogue_fragment(999)]).await));
    assert_eq!(holder.storage.charged_to(&rogue_id), kept);

    // Honest puts, each from another node, so each placer's share is small.
    let objects: Vec<Vec<u8>> = (0..6).map(|i| content(70 + i, 400_000 + i * 1000)).collect();
    let mut reports = Vec::new();
    for (i, data) in objects.iter().enumerate() {
        let placer = net.node(1 + i % 7);
        reports.push(placer.storage.put_reader(&data[..]).await.expect("an honest put"));
    }
    assert!(rogue.offered.load(std::sync::atomic::Ordering::Relaxed) > 0, "the rogue never held");
    // Extending fragments node 0 holds for others would move them to the
    // rogue's account: refused, and nothing moves.
    let ids: Vec<[u8; 32]> =
        reports.iter().flat_map(|r| r.ids.iter().map(|id| *id.as_bytes())).collect();
    let probe = FragRequest::Probe { objects: ids.clone() };
    let FragResponse::Held(held) = rogue.dht.request(holder.peer_id, probe).await.unwrap() else {
        panic!("no probe answer");
    };
    assert!(held.iter().any(|h| !h.is_empty()), "node 0 holds none of the honest objects");
    let honest: u64 = (1..8).map(|i| holder.storage.charged_to(&net.node(i).peer_id)).sum();
    assert!(honest > 0, "node 0 took no honest fragments");
    let extend = FragRequest::Extend { objects: ids, expires: u64::MAX };
    let answer = rogue.dht.request(holder.peer_id, extend).await.unwrap();
    assert!(refused_over_quota(&answer), "{answer:?}");
    assert_eq!(holder.storage.charged_to(&rogue_id), kept);
    // (Stores of the puts still landing can only add to the honest peers'.)
    let after: u64 = (1..8).map(|i| holder.storage.charged_to(&net.node(i).peer_id)).sum();
    assert!(after >= honest, "{after} charged to honest peers, {honest} before");

    let caps: Vec<_> = reports.iter().map(|r| r.capability.clone()).collect();
    repair_until_full(&net, &caps).await;
    for (report, data) in reports.iter().zip(&objects) {
        let check = net.node(7).storage.check(&report.capability).await.unwrap();
        assert_eq!(check.fragments_alive, check.fragments_total, "{check:?}");
        for object in &check.details {
            assert_eq!(object.holders, 8, "one fragment on each honest peer: {check:?}");
        }
        assert_eq!(get(net.node(0), &report.capability).await.map_err(|(e, _)| e).unwrap(), *data);
    }

    // Three refusals, each counted; the quota shows too.
    assert_eq!(metric(holder, "epost_fragment_refusals_total{reason=\"over_quota\"}").await, 3);
    assert_eq!(metric(holder, "epost_fragment_refusals_total{reason=\"no_space\"}").await, 0);
    assert_eq!(metric(holder, "epost_storage_peer_quota_bytes").await, quota);
    rogue.shutdown().await;
    net.shutdown().await;
}
