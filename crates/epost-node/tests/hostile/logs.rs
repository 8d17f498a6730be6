//! Hostile record holders: one keeps serving an old, validly signed log
//! head (a replay), one serves a head and a certificate forged with keys
//! of its own. (Holders refusing pushed forgeries and replays is
//! `tests/logs.rs`; here the liars are the holders themselves.)

use epost_dht::DhtEvent;
use epost_testkit::{NetConfig, TestNet, addr, await_event};
use epost_types::address::Address;
use epost_types::envelope::{EnvelopeKind, SignedEnvelope};
use epost_types::id::LogId;
use epost_types::identity::{Certificate, UserKeys};
use epost_types::log::LogHead;
use epost_types::record::RecordKey;
use epost_types::sign::SigningKey;
use epost_types::time::Timestamp;

use crate::await_known_peers;
use crate::rogue::{Fragments, Rogue};

fn alice() -> Address {
    addr("alice@example.org")
}

async fn head_seq(net: &TestNet, i: usize) -> u64 {
    net.node(i).logs.head(&alice(), "notes").await.expect("head").seq
}

/// A rogue holder frozen at alice's first head and another serving a
/// seq-99 head and a certificate for alice, both signed by keys of its
/// own: every reader gets the newest genuine head and the genuine
/// certificate. A reader cut off from every honest holder (so only the
/// frozen rogue and its own older copy answer) does not go back below
/// the head it has already seen; and the owner keeps appending in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_and_forged_heads_from_holders_are_never_believed() {
    let net = TestNet::start(4, NetConfig::default()).await.unwrap();
    let boot = net.node(0).listen_addrs.clone();
    let frozen = Rogue::start(0xc0, &boot, Fragments::Honest, Vec::new()).await;
    let forger = Rogue::start(0xc1, &boot, Fragments::Honest, Vec::new()).await;
    await_known_peers(&net, 5).await;
    net.realm_on(0, "example.org").unwrap();
    net.node(0).identity.add_user(alice(), None).await.unwrap();
    let owner = net.node(0).identity.user(&alice()).unwrap();
    let key = RecordKey::from(LogId::derive(&owner.keys.verifying_key(), "notes")).encode();
    let is_head = |e: &DhtEvent| matches!(e, DhtEvent::RecordKept { key: k, .. } if *k == key);

    // Seq 1 reaches every holder, the frozen rogue included, which keeps it.
    let mut at_rogue = frozen.dht.subscribe();
    let mut at_3 = net.node(3).dht().subscribe();
    net.node(0).logs.append(&alice(), "notes", b"one".to_vec()).await.unwrap();
    await_event(&mut at_rogue, is_head).await;
    await_event(&mut at_3, is_head).await;

    // Seqs 2 and 3 while node 3 is cut off from the honest nodes (not from
    // the rogues): it keeps its copy of seq 1; the rogue refuses them.
    net.partition(&[3]).await;
    let mut refused = frozen.dht.subscribe();
    for text in ["two", "three"] {
        net.node(0).logs.append(&alice(), "notes", text.as_bytes().to_vec()).await.unwrap();
        await_event(&mut refused, |e| matches!(e, DhtEvent::RecordRefused { key: k } if *k == key))
            .await;
    }
    let stale = frozen.dht.get_record(&key).await.unwrap();
    let stale = stale.iter().find(|r| r.peer.is_none()).expect("the rogue's copy").value.clone();
    let stale_head = LogHead::verify(&SignedEnvelope::decode(&stale).unwrap()).unwrap();
    assert_eq!(stale_head.seq, 1, "the rogue serves a validly signed, older head");

    // The forger: a head for alice's log at seq 99 signed by mallory, and
    // a certificate making mallory's key alice's, signed by a realm of its
    // own. Stored in its own record store, served to every reader.
    let mallory = UserKeys::generate(alice()).unwrap();
    let mut forged = stale_head.clone();
    forged.seq = 99;
    let forged = SignedEnvelope::sign(
        &mallory.signing,
        EnvelopeKind::LogHead,
        epost_types::cbor::encode(&forged),
    )
    .unwrap();
    let _ = forger.dht.put_record(&key, forged.encode()).await;
    let fake_realm = SigningKey::from_seed([0x66; 32]);
    let cert = mallory.certificate(99, Timestamp(0), Timestamp(u64::MAX));
    let fake_cert: SignedEnvelope = Certificate::issue(&fake_realm, &cert).unwrap();
    let cert_key = RecordKey::for_certificate(&alice()).encode();
    let _ = forger.dht.put_record(&cert_key, fake_cert.encode()).await;
    let served = forger.dht.get_record(&key).await.unwrap();
    assert!(served.iter().any(|r| r.peer.is_none() && r.value == forged.encode()));

    // Honest readers: the newest genuine head and certificate.
    net.heal().await;
    for i in 0..4 {
        assert_eq!(head_seq(&net, i).await, 3, "node {i}");
        let cert = net.node(i).identity.lookup_certificate(&alice()).await.unwrap();
        assert_eq!(cert.signing_key, owner.keys.verifying_key(), "node {i}: forged certificate");
    }
    // Node 3 has seen seq 3, but only holds seq 1 itself. Cut off again,
    // it hears only its own copy, the frozen rogue's and the forgery.
    net.partition(&[3]).await;
    let copies = net.node(3).dht().get_record(&key).await.unwrap();
    let seqs: Vec<u64> = copies
        .iter()
        .filter_map(|r| SignedEnvelope::decode(&r.value).ok())
        .filter_map(|e| LogHead::verify(&e).ok())
        .map(|h| h.seq)
        .collect();
    assert!(!seqs.is_empty() && seqs.iter().all(|s| *s < 3), "a genuine seq 3 reached: {seqs:?}");
    assert_eq!(head_seq(&net, 3).await, 3, "the reader rolled back to what the rogue serves");

    // The owner appends on: seq 4, read by everyone once healed.
    net.heal().await;
    let seq = net.node(0).logs.append(&alice(), "notes", b"four".to_vec()).await.unwrap().seq;
    assert_eq!(seq, 4);
    let texts: Vec<Vec<u8>> = net
        .node(0)
        .logs
        .read(&alice(), "notes")
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.body)
        .collect();
    assert_eq!(texts, [&b"one"[..], b"two", b"three", b"four"]);
    for i in 1..4 {
        assert_eq!(head_seq(&net, i).await, 4, "node {i}");
    }
    frozen.shutdown().await;
    forger.shutdown().await;
    net.shutdown().await;
}
