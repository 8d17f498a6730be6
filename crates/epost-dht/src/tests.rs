//! Several overlays in one process on loopback TCP: they find each other,
//! agree on who is closest to a key, carry fragment requests, and keep
//! only records that pass validation.

use std::sync::Arc;
use std::time::Duration;

use epost_types::envelope::{EnvelopeKind, SignedEnvelope};
use epost_types::sign::SigningKey;
use tokio::sync::mpsc;

use crate::frag::{FragRequest, FragResponse};
use crate::{Dht, DhtConfig, InboundFrag, SignedEnvelopeValidator, StartOptions};

const DEADLINE: Duration = Duration::from_secs(30);

async fn start(seed: u8, bootstrap: Option<&Dht>) -> (Dht, mpsc::Receiver<InboundFrag>) {
    let config = DhtConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootstrap: bootstrap.map(|b| vec![b.started.listen_addrs[0].clone()]).unwrap_or_default(),
        ..DhtConfig::default()
    };
    Dht::start(StartOptions {
        config,
        identity_seed: [seed; 32],
        validator: Arc::new(SignedEnvelopeValidator),
        stored_records: Vec::new(),
        record_writes: None,
    })
    .await
    .unwrap()
}

/// Waits (on peer events, bounded) until every node knows all the others.
async fn until_everyone_knows_everyone(nets: &[&Dht]) {
    let wanted = nets.len() - 1;
    tokio::time::timeout(DEADLINE, async {
        for net in nets {
            let mut events = net.client.subscribe();
            while net.client.status().await.unwrap().known_peers < wanted {
                // Each new connection can bring new routing-table entries.
                let _ = tokio::time::timeout(Duration::from_millis(200), events.recv()).await;
            }
        }
    })
    .await
    .expect("routing tables did not fill");
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
    let (b, mut inbound_b) = start(12, Some(&a)).await;
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
async fn only_validly_signed_records_are_kept_by_peers() {
    let (a, _ia) = start(21, None).await;
    let (b, _ib) = start(22, Some(&a)).await;
    let (c, _ic) = start(23, Some(&a)).await;
    until_everyone_knows_everyone(&[&a, &b, &c]).await;

    let owner = SigningKey::from_seed([7; 32]);
    let good =
        SignedEnvelope::sign(&owner, EnvelopeKind::Presence, b"here".to_vec()).unwrap().encode();
    a.client.put_record(b"good", good.clone()).await.unwrap();
    let found = c.client.get_record(b"good").await.unwrap();
    assert!(found.iter().filter(|r| r.peer.is_some()).count() >= 2, "{found:?}");
    assert!(found.iter().all(|r| r.value == good));

    // A forged signature: the publisher keeps its own copy, nobody else does.
    let mut forged =
        SignedEnvelope::sign(&owner, EnvelopeKind::Presence, b"here".to_vec()).unwrap().encode();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let _ = a.client.put_record(b"forged", forged).await;
    let found = c.client.get_record(b"forged").await.unwrap();
    let holders: Vec<_> = found.iter().filter_map(|r| r.peer).collect();
    assert!(holders.iter().all(|p| *p == a.started.peer_id), "forged record kept by {holders:?}");

    // Not a signed envelope at all.
    let _ = a.client.put_record(b"junk", b"not an envelope".to_vec()).await;
    let found = b.client.get_record(b"junk").await.unwrap();
    assert!(found.iter().filter_map(|r| r.peer).all(|p| p == a.started.peer_id));
    for net in [a, b, c] {
        net.shutdown().await;
    }
}
