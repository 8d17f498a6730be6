//! A rogue peer flooding a recipient's inbox holders with junk, oversized
//! and forged notifications (a forged sender, an uncertified sender, a
//! tampered ciphertext) while a real sender writes to the same recipient.
//! (Rate limiting one honest node's flood of valid notifications is
//! `tests/notify.rs`; here the flood is hostile and mostly lies.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use epost_dht::{DhtClient, PeerId};
use epost_node::notify::{NotifyConfig, NotifyMetrics, Received};
use epost_testkit::{NetConfig, TestNet, addr};
use epost_types::address::Address;
use epost_types::identity::{Certificate, UserKeys};
use epost_types::notify::{Notification, SealedNotification};
use epost_types::record::inbox_key;
use epost_types::time::Timestamp;
use epost_types::wire::notify::{NotifyRefusal, NotifyRequest, NotifyResponse};
use serde_bytes::ByteBuf;
use tokio::sync::{Notify, broadcast};

use crate::await_known_peers;
use crate::rogue::{Fragments, Rogue};

const CAP: usize = 300;

/// `n` notifications to `to` that a holder cannot tell from real ones,
/// each forged one of three ways.
fn forgeries(to: &Certificate, carol: &Address, n: usize) -> Vec<SealedNotification> {
    let fake_carol = UserKeys::generate(carol.clone()).unwrap();
    let nobody = UserKeys::generate(addr("nobody@nowhere.test")).unwrap();
    let expires = Timestamp(Timestamp::now().as_millis() + 3_600_000);
    (0..n)
        .map(|i| {
            let from = if i % 3 == 1 { &nobody } else { &fake_carol };
            let notice = Notification::new(
                from.address.clone(),
                to.address.clone(),
                None,
                format!("forged {i}"),
                Timestamp::now(),
            )
            .unwrap();
            let mut sealed = Notification::seal(from, to, &notice, expires).unwrap();
            if i % 3 == 2 {
                // Tampered in transit, with an id that matches the damage.
                sealed.sealed.ciphertext[0] ^= 1;
                sealed.id = SealedNotification::id_of(&sealed.sealed);
            }
            sealed
        })
        .collect()
}

/// What the rogue's flood met at one victim.
#[derive(Debug, Default)]
struct Met {
    accepted: usize,
    rate_limited: usize,
    full: usize,
    other: usize,
}

/// Sends `batches` to each victim in turn, round and round, until `stop`
/// (or a minute, if the test forgets).
/// Floods `victims` with `batches` until `stop`; `filled` is told each
/// time a victim answers that it is full.
async fn flood(
    dht: DhtClient,
    victims: Vec<PeerId>,
    batches: Vec<NotifyRequest>,
    stop: Arc<AtomicBool>,
    filled: Arc<Vec<Notify>>,
) -> Vec<Met> {
    let mut met: Vec<Met> = victims.iter().map(|_| Met::default()).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    'flood: while tokio::time::Instant::now() < deadline {
        for batch in &batches {
            for (v, victim) in victims.iter().enumerate() {
                if stop.load(Ordering::Relaxed) {
                    break 'flood;
                }
                match dht.notify(*victim, batch.clone()).await {
                    Ok(NotifyResponse::Accepted { ids }) => met[v].accepted += ids.len(),
                    Ok(NotifyResponse::Refused { reason: NotifyRefusal::RateLimited, .. }) => {
                        met[v].rate_limited += 1
                    }
                    Ok(NotifyResponse::Refused { reason: NotifyRefusal::Full, .. }) => {
                        met[v].full += 1;
                        filled[v].notify_one();
                    }
                    _ => met[v].other += 1,
                }
            }
        }
    }
    met
}

/// Waits (bounded) for the next notification to `to`.
async fn next_for(events: &mut broadcast::Receiver<Received>, to: &Address) -> Option<Received> {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(r) if r.to == *to => return r,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("service stopped"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(2), wait).await.ok()
}

/// Bob is hosted on node 1; node 2 is another of his inbox holders; a
/// rogue floods both with forged notifications as fast as they answer
/// (after a junk and an oversized one, refused `Malformed`). The holders
/// rate-limit it and node 2 caps bob's inbox; carol's real notification,
/// sent mid-flood, reaches bob, and nothing forged is ever accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_flood_is_bounded_and_nothing_forged_is_accepted() {
    let config = NetConfig {
        notify: NotifyConfig { max_pending_per_inbox: CAP, ..NotifyConfig::default() },
        ..NetConfig::default()
    };
    let net = TestNet::start(3, config).await.unwrap();
    let rogue = Rogue::start(0xd0, &net.node(0).listen_addrs, Fragments::Honest, Vec::new()).await;
    await_known_peers(&net, 3).await;
    let hosted = net.host_in_own_realms(&[("carol", 0), ("bob", 1)]).await.unwrap();
    let (carol, bob) = (hosted[0].clone(), hosted[1].clone());
    let inbox = inbox_key(&bob);
    let bob_cert = net.node(1).identity.user(&bob).unwrap().certificate.clone();
    let (home, other) = (net.node(1).peer_id, net.node(2).peer_id);
    let mut events = net.node(1).notifications.subscribe();

    // Junk, and a notification past the 8 KiB limit (with a matching id).
    let mut big = forgeries(&bob_cert, &carol, 1).remove(0);
    big.sealed.ciphertext.resize(9_000, 7);
    big.id = SealedNotification::id_of(&big.sealed);
    for junk in [b"\xa1\x00 junk".to_vec(), big.encode()] {
        let request = NotifyRequest::Deliver { notifications: vec![ByteBuf::from(junk)] };
        let answer = rogue.dht.notify(other, request).await.unwrap();
        assert!(
            matches!(answer, NotifyResponse::Refused { reason: NotifyRefusal::Malformed, .. }),
            "{answer:?}"
        );
    }

    let forged = {
        let (cert, carol) = (bob_cert.clone(), carol.clone());
        tokio::task::spawn_blocking(move || forgeries(&cert, &carol, 1_500)).await.unwrap()
    };
    let batches =
        NotifyRequest::deliver_batches(forged.iter().map(|n| ByteBuf::from(n.encode())).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let filled = Arc::new(vec![Notify::new(), Notify::new()]);
    let flooding = tokio::spawn(flood(
        rogue.dht.clone(),
        vec![home, other],
        batches,
        stop.clone(),
        filled.clone(),
    ));

    // Once node 2 says it is full of bob's forgeries, carol writes.
    tokio::time::timeout(Duration::from_secs(20), filled[1].notified())
        .await
        .expect("node 2 never filled up");
    assert!(NotifyMetrics::get(&net.node(2).notify.metrics().full) > 0);
    let report =
        net.node(0).notifications.send(&carol, &bob, None, "the real one".into()).await.unwrap();
    assert!(report.holders >= 1, "{report:?}");
    // It reaches bob while the flood goes on (pulls from every holder are
    // kicked only if the push path is slow).
    let mut got = None;
    for _ in 0..10 {
        if let Some(r) = next_for(&mut events, &bob).await {
            got = Some(r);
            break;
        }
        net.node(1).notifications.resync_now().await;
    }
    let got = got.expect("carol's notification never reached bob during the flood");
    assert_eq!((got.from.clone(), got.summary.as_str()), (carol.clone(), "the real one"));
    assert!(!flooding.is_finished(), "the flood ended before carol's got through");
    stop.store(true, Ordering::Relaxed);
    let met = flooding.await.unwrap();

    for (v, name) in [(0, "bob's home"), (1, "node 2")] {
        assert!(met[v].rate_limited > 0, "{name} never rate-limited the rogue: {:?}", met[v]);
        assert_eq!(met[v].other, 0, "{name}: {:?}", met[v]);
    }
    assert!(met[1].full > 0, "{:?}", met[1]);
    let holder = net.node(2).notify.metrics();
    assert!(NotifyMetrics::get(&holder.malformed) >= 2);
    assert!(net.node(2).notify.pending_count(&inbox).await.unwrap() <= CAP);
    assert!(NotifyMetrics::get(&holder.pending) as usize <= CAP);

    // Bob drains every holder: every forgery is dropped, never listed.
    for _ in 0..10 {
        net.node(1).notifications.resync_now().await;
    }
    assert!(next_for(&mut events, &bob).await.is_none(), "something else was accepted");
    let listed = net.node(1).notifications.list(&bob).unwrap();
    assert_eq!(listed, vec![got], "only carol's real notification is listed");
    rogue.shutdown().await;
    net.shutdown().await;
}
