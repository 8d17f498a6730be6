//! Identity and single-writer logs across in-process nodes: certificates
//! found through the overlay, appends and reads across a snapshot, forged
//! and replayed heads refused, and a user moved to another node by export
//! and import with their whole log.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

use epost_dht::DhtEvent;
use epost_node::Node;
use epost_testkit::{NetConfig, TestNet, addr, await_event};
use epost_types::address::Address;
use epost_types::envelope::SignedEnvelope;
use epost_types::log::LogHead;
use epost_types::record::RecordKey;
use epost_types::sign::{SigningKey, VerifyingKey};

fn alice() -> Address {
    addr("alice@example.org")
}

/// Realm on node 0, trusted by every node; alice hosted on node 0.
async fn realm_and_alice(net: &TestNet) -> VerifyingKey {
    let key = net.realm_on(0, "example.org").unwrap();
    net.node(0).identity.add_user(alice(), Some("pw")).await.unwrap();
    key
}

async fn append(node: &Node, text: &str) -> u64 {
    node.logs.append(&alice(), "notes", text.as_bytes().to_vec()).await.expect("append").seq
}

async fn texts(node: &Node) -> Vec<(u64, String)> {
    let entries = node.logs.read(&alice(), "notes").await.expect("read");
    entries.into_iter().map(|e| (e.seq, String::from_utf8(e.body).unwrap())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_are_found_and_checked_through_the_overlay() {
    let net = TestNet::start(4, NetConfig::default()).await.unwrap();
    realm_and_alice(&net).await;
    let cert = net.node(3).identity.lookup_certificate(&alice()).await.expect("lookup");
    let hosted = net.node(0).identity.user(&alice()).unwrap();
    assert_eq!(cert, hosted.certificate);
    assert!(net.node(0).identity.check_password(&alice(), "pw"));
    assert!(!net.node(0).identity.check_password(&alice(), "wrong"));
    // An address nobody certified has no certificate.
    let stranger = addr("bob@example.org");
    assert!(net.node(2).identity.lookup_certificate(&stranger).await.is_err());
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_replayed_heads_are_refused_by_holders_and_readers() {
    let net = TestNet::start(4, NetConfig::default()).await.unwrap();
    realm_and_alice(&net).await;
    let owner = net.node(0).identity.user(&alice()).unwrap();
    let key = RecordKey::from(epost_types::id::LogId::derive(&owner.keys.verifying_key(), "notes"));
    let key = key.encode();
    append(net.node(0), "one").await;
    let first_head = net.node(0).dht().get_record(&key).await.unwrap();
    let old = first_head.iter().find(|r| r.peer.is_none()).expect("own copy").value.clone();
    append(net.node(0), "two").await;
    let mut holders: Vec<_> = (0..3).map(|i| net.node(i).dht().subscribe()).collect();
    assert_eq!(append(net.node(0), "three").await, 3);
    let valid = net.node(0).dht().get_record(&key).await.unwrap();
    let valid = valid.iter().find(|r| r.peer.is_none()).unwrap().value.clone();
    // An append returns once one holder has the head; wait until the other
    // holders keep it too, so what follows tests refusal, not propagation.
    for events in &mut holders[1..] {
        await_event(
            events,
            |e| matches!(e, DhtEvent::RecordKept { key: k, value } if *k == key && *value == valid),
        )
        .await;
    }

    // A head for alice's log signed by someone else, claiming seq 99.
    let mallory = SigningKey::from_seed([7; 32]);
    let head = LogHead::verify(&SignedEnvelope::decode(&valid).unwrap()).unwrap();
    let mut forged = head.clone();
    forged.seq = 99;
    let forged_sig = SignedEnvelope::sign(
        &mallory,
        epost_types::envelope::EnvelopeKind::LogHead,
        epost_types::cbor::encode(&forged),
    )
    .unwrap();
    // Mallory's own log of the same name is a different log id.
    assert!(LogHead::sign(&mallory, &forged).is_err(), "only the owner can sign a head");
    let attacker = net.node(3).dht();
    let _ = attacker.put_record(&key, forged_sig.encode()).await;
    let _ = attacker.put_record(&key, old.clone()).await;
    // Each other holder refuses both.
    for events in &mut holders {
        for _ in 0..2 {
            await_event(events, |e| matches!(e, DhtEvent::RecordRefused { key: k } if *k == key))
                .await;
        }
    }

    // Every other holder still has exactly the valid newest head...
    let attacker_peer = net.node(3).peer_id;
    let copies = net.node(1).dht().get_record(&key).await.unwrap();
    let others: Vec<_> = copies.iter().filter(|r| r.peer != Some(attacker_peer)).collect();
    assert!(!others.is_empty());
    assert!(others.iter().all(|r| r.value == valid), "a holder kept a forged or older head");
    // ...and readers take it, whatever the attacker's own store says.
    for i in 0..4 {
        let report = net.node(i).logs.head(&alice(), "notes").await.expect("head");
        assert_eq!(report.seq, 3, "node {i}");
    }
    assert_eq!(texts(net.node(0)).await.len(), 3);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_log_survives_restart_and_moves_to_another_node() {
    let mut net = TestNet::start(3, NetConfig::default()).await.unwrap();
    realm_and_alice(&net).await;
    let mut want = Vec::new();
    for i in 0..520 {
        let seq = append(net.node(0), &format!("entry {i}")).await;
        want.push((seq, format!("entry {i}")));
    }
    // Entry 500 is a snapshot: data entries skip its number.
    assert_eq!(want[498].0, 499);
    assert_eq!(want[499].0, 501);
    assert_eq!(texts(net.node(0)).await, want);

    // A restarted writer picks up from the head in the overlay.
    net.stop(0).await;
    net.restart(0).await.unwrap();
    let seq = append(net.node(0), "after restart").await;
    assert_eq!(seq, 522);
    want.push((seq, "after restart".to_owned()));

    // Moved: export from node 0, which then stops; import on node 2.
    let bundle = net.node(0).identity.export_user(&alice(), Some("moving day")).unwrap();
    net.stop(0).await;
    assert!(net.node(2).identity.import_user(&bundle, Some("wrong"), None).await.is_err());
    net.node(2).identity.import_user(&bundle, Some("moving day"), None).await.expect("import");
    assert_eq!(texts(net.node(2)).await, want);
    let seq = append(net.node(2), "from the new node").await;
    assert_eq!(seq, 523);

    // Reading a log needs the owner's keys: only a hosting node can.
    net.node(2).identity.remove_user(&alice()).unwrap();
    assert!(net.node(2).logs.read(&alice(), "notes").await.is_err());
    assert!(net.node(2).identity.remove_user(&alice()).is_err(), "already gone");
    assert!(net.node(1).logs.read(&alice(), "notes").await.is_err());
    net.shutdown().await;
}
