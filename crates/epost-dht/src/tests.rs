//! Several overlays in one process on loopback TCP: they find each other,
//! agree on who is closest to a key, carry fragment requests, and keep
//! only records that pass validation.

use std::sync::Arc;
use std::time::Duration;

use epost_types::envelope::{EnvelopeKind, SignedEnvelope};
use epost_types::sign::SigningKey;
use futures::StreamExt;

use crate::{Dht, DhtConfig, DhtEvent, Inbound, SignedEnvelopeValidator, StartOptions};
use epost_types::wire::frag::{FragRequest, FragResponse};
use epost_types::wire::notify::{NotifyRefusal, NotifyRequest, NotifyResponse};

pub(crate) const DEADLINE: Duration = Duration::from_secs(30);

pub(crate) async fn start(seed: u8, bootstrap: Option<&Dht>) -> (Dht, Inbound) {
    start_with(seed, bootstrap, DhtConfig::default()).await
}

pub(crate) async fn start_with(
    seed: u8,
    bootstrap: Option<&Dht>,
    config: DhtConfig,
) -> (Dht, Inbound) {
    let config = DhtConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootstrap: bootstrap.map(|b| vec![b.started.listen_addrs[0].clone()]).unwrap_or_default(),
        ..config
    };
    Dht::start(StartOptions {
        config,
        identity_seed: [seed; 32],
        validator: Arc::new(SignedEnvelopeValidator),
        stored_records: Vec::new(),
        record_writes: None,
        remembered_peers: Vec::new(),
    })
    .await
    .unwrap()
}

/// Waits (on peer events, bounded) until every node knows all the others.
/// Waits (bounded) for this node's verdict on the record at `key`: true if
/// it kept it, false if it refused it.
async fn judged(events: &mut tokio::sync::broadcast::Receiver<DhtEvent>, key: &[u8]) -> bool {
    let verdict = async {
        loop {
            match events.recv().await {
                Ok(DhtEvent::RecordKept { key: k, .. }) if k == key => return true,
                Ok(DhtEvent::RecordRefused { key: k }) if k == key => return false,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => panic!("overlay stopped"),
            }
        }
    };
    tokio::time::timeout(DEADLINE, verdict).await.expect("the record never arrived")
}

/// If discovery alone has not done it in a while (a loaded machine can
/// lose the one bootstrap query that would have), the nodes dial each
/// other, as an operator would.
pub(crate) async fn until_everyone_knows_everyone(nets: &[&Dht]) {
    let wanted = nets.len() - 1;
    let all_known = || async {
        for net in nets {
            let mut events = net.client.subscribe();
            while net.client.status().await.unwrap().known_peers < wanted {
                // Each new connection can bring new routing-table entries.
                let _ = tokio::time::timeout(Duration::from_millis(200), events.recv()).await;
            }
        }
    };
    if tokio::time::timeout(DEADLINE / 3, all_known()).await.is_ok() {
        return;
    }
    for net in nets {
        for other in nets {
            if let Some(addr) = other.started.listen_addrs.first() {
                let _ = net.client.dial(addr.clone()).await;
            }
        }
    }
    tokio::time::timeout(DEADLINE, all_known()).await.expect("routing tables did not fill");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_find_each_other_and_agree_on_placement() {
    let (a, _ia) = start(1, None).await;
    let (b, _ib) = start(2, Some(&a)).await;
    let (c, _ic) = start(3, Some(&a)).await;
    let (d, _id) = start(4, Some(&b)).await;
    until_everyone_knows_everyone(&[&a, &b, &c, &d]).await;

    let key = b"some object id";
    let mut answers = Vec::new();
    for net in [&a, &b, &c, &d] {
        answers.push(net.client.closest_peers(key, 3).await.unwrap());
        assert_eq!(net.client.known_closest(key, 3).await.unwrap(), answers[0]);
    }
    assert!(answers.iter().all(|x| *x == answers[0]), "{answers:?}");
    assert_eq!(answers[0].len(), 3);
    for net in [a, b, c, d] {
        net.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragment_requests_reach_the_holder_and_come_back() {
    let (a, _ia) = start(11, None).await;
    let (b, inbound_b) = start(12, Some(&a)).await;
    let mut inbound_b = inbound_b.frag;
    until_everyone_knows_everyone(&[&a, &b]).await;
    let holder = b.client.clone();
    let serve = tokio::spawn(async move {
        let request = inbound_b.recv().await.unwrap();
        assert_eq!(request.request, FragRequest::Probe { objects: vec![[9; 32]] });
        holder.respond(request.reply, FragResponse::Held(vec![vec![1, 5]])).await;
        // A request answered by dropping the handle fails cleanly for the asker.
        drop(inbound_b.recv().await.unwrap());
    });
    let answer = a
        .client
        .request(b.started.peer_id, FragRequest::Probe { objects: vec![[9; 32]] })
        .await
        .unwrap();
    assert_eq!(answer, FragResponse::Held(vec![vec![1, 5]]));
    let dropped =
        a.client.request(b.started.peer_id, FragRequest::Fetch { object: [9; 32], index: 0 }).await;
    assert!(dropped.is_err(), "{dropped:?}");
    serve.await.unwrap();
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_requests_reach_the_holder_and_come_back() {
    let (a, _ia) = start(31, None).await;
    let (b, inbound_b) = start(32, Some(&a)).await;
    let mut inbound_b = inbound_b.notify;
    until_everyone_knows_everyone(&[&a, &b]).await;
    let asker = a.started.peer_id;
    let holder = b.client.clone();
    let serve = tokio::spawn(async move {
        let request = inbound_b.recv().await.unwrap();
        assert_eq!(request.peer, asker);
        assert_eq!(request.request, NotifyRequest::Pull { inbox: [3; 32], auth: vec![1].into() });
        let pending = NotifyResponse::Pending { notifications: vec![vec![7; 100].into()] };
        holder.respond_notify(request.reply, pending).await;
        // A request answered by dropping the handle fails cleanly for the asker.
        drop(inbound_b.recv().await.unwrap());
    });
    let answer = a
        .client
        .notify(b.started.peer_id, NotifyRequest::Pull { inbox: [3; 32], auth: vec![1].into() })
        .await
        .unwrap();
    assert_eq!(answer, NotifyResponse::Pending { notifications: vec![vec![7; 100].into()] });
    let dropped = a
        .client
        .notify(b.started.peer_id, NotifyRequest::Receipt { receipt: vec![2].into() })
        .await;
    assert!(dropped.is_err(), "{dropped:?}");
    serve.await.unwrap();
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_notify_queue_answers_rate_limited_and_frag_is_unaffected() {
    let (a, _ia) = start(41, None).await;
    let config = DhtConfig { notify_queue: 1, ..DhtConfig::default() };
    let (b, inbound_b) = start_with(42, Some(&a), config).await;
    let Inbound { frag: mut frag_b, notify: notify_b } = inbound_b;
    until_everyone_knows_everyone(&[&a, &b]).await;
    let deliver = || NotifyRequest::Deliver { notifications: Vec::new() };

    // Nobody drains the queue: one request fills it, the others are refused
    // by the overlay itself, at once.
    let holder = b.started.peer_id;
    let mut asks: futures::stream::FuturesUnordered<_> =
        (0..3).map(|_| a.client.notify(holder, deliver())).collect();
    let first = tokio::time::timeout(DEADLINE, asks.next()).await.unwrap().unwrap().unwrap();
    assert!(
        matches!(first, NotifyResponse::Refused { reason: NotifyRefusal::RateLimited, .. }),
        "{first:?}"
    );

    // Fragments travel on their own queue.
    let responder = b.client.clone();
    let serve = tokio::spawn(async move {
        let request = frag_b.recv().await.unwrap();
        responder.respond(request.reply, FragResponse::NotFound).await;
    });
    let fetched =
        a.client.request(holder, FragRequest::Fetch { object: [1; 32], index: 0 }).await.unwrap();
    assert_eq!(fetched, FragResponse::NotFound);
    serve.await.unwrap();

    // Closing the queue fails the queued request; none was ever accepted.
    drop(notify_b);
    while let Some(answer) = tokio::time::timeout(DEADLINE, asks.next()).await.unwrap() {
        assert!(matches!(answer, Err(_) | Ok(NotifyResponse::Refused { .. })), "{answer:?}");
    }
    drop(asks);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_validly_signed_records_are_kept_by_peers() {
    let (a, _ia) = start(21, None).await;
    let (b, _ib) = start(22, Some(&a)).await;
    let (c, _ic) = start(23, Some(&a)).await;
    until_everyone_knows_everyone(&[&a, &b, &c]).await;

    let owner = SigningKey::from_seed([7; 32]);
    let good =
        SignedEnvelope::sign(&owner, EnvelopeKind::Presence, b"here".to_vec()).unwrap().encode();
    let mut seen_by = [b.client.subscribe(), c.client.subscribe()];
    a.client.put_record(b"good", good.clone()).await.unwrap();
    // The put returns once one peer holds it; wait until both have judged it.
    for events in &mut seen_by {
        assert!(judged(events, b"good").await, "a valid record was refused");
    }
    let found = c.client.get_record(b"good").await.unwrap();
    assert!(found.iter().filter(|r| r.peer.is_some()).count() >= 2, "{found:?}");
    assert!(found.iter().all(|r| r.value == good));

    // A forged signature: the publisher keeps its own copy, nobody else does.
    let mut forged =
        SignedEnvelope::sign(&owner, EnvelopeKind::Presence, b"here".to_vec()).unwrap().encode();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let _ = a.client.put_record(b"forged", forged).await;
    for events in &mut seen_by {
        assert!(!judged(events, b"forged").await, "a forged record was kept");
    }
    let found = c.client.get_record(b"forged").await.unwrap();
    let holders: Vec<_> = found.iter().filter_map(|r| r.peer).collect();
    assert!(holders.iter().all(|p| *p == a.started.peer_id), "forged record kept by {holders:?}");

    // Not a signed envelope at all.
    let _ = a.client.put_record(b"junk", b"not an envelope".to_vec()).await;
    for events in &mut seen_by {
        assert!(!judged(events, b"junk").await, "junk was kept");
    }
    let found = b.client.get_record(b"junk").await.unwrap();
    assert!(found.iter().filter_map(|r| r.peer).all(|p| p == a.started.peer_id));
    for net in [a, b, c] {
        net.shutdown().await;
    }
}

/// A node's peer id holds the very key its seed signs with (ring and
/// libp2p read an Ed25519 seed alike), so a realm can name it by peer id.
#[test]
fn a_peer_id_names_the_key_its_seed_signs_with() {
    let seed = [0x5a; 32];
    let peer = crate::peer_id_of(seed).unwrap();
    let key = SigningKey::from_seed(seed).verifying_key();
    assert_eq!(crate::ed25519_key_of(&peer), Some(key));
    assert_eq!(crate::peer_id_of_key(&key), Some(peer));
    assert_eq!(crate::ed25519_key_of(&libp2p::PeerId::random()), None, "not an Ed25519 id");
}
