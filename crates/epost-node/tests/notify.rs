//! The inbox holder across in-process nodes on loopback TCP: delivery and
//! its duplicates, receipts from the right and the wrong key, pulls,
//! restarts, and one flooding peer among well-behaved ones.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

use std::collections::BTreeSet;

use epost_node::notify::{
    self, DeliverError, NotifyMetrics, PullError, SendReceiptError, pull_auth,
};
use epost_testkit::{NetConfig, TestNet};
use epost_types::address::Address;
use epost_types::envelope::SignedEnvelope;
use epost_types::identity::UserKeys;
use epost_types::notify::{Notification, Receipt, SealedNotification};
use epost_types::record::inbox_key;
use epost_types::time::Timestamp;
use epost_types::wire::notify::{NotifyRefusal, NotifyRequest, NotifyResponse};
use tokio::sync::oneshot;

const DAY_MS: u64 = 24 * 3600 * 1000;

fn user(name: &str) -> UserKeys {
    UserKeys::generate(format!("{name}@example.org").parse::<Address>().unwrap()).unwrap()
}

/// `n` fresh notifications from `from` to `to`, leased for a day.
fn notes(from: &UserKeys, to: &UserKeys, n: usize) -> Vec<SealedNotification> {
    let cert = to.certificate(1, Timestamp(0), Timestamp(u64::MAX));
    let expires = Timestamp(Timestamp::now().as_millis() + DAY_MS);
    (0..n)
        .map(|i| {
            let notice = Notification::new(
                from.address.clone(),
                to.address.clone(),
                None,
                format!("message {i}"),
                Timestamp::now(),
            )
            .unwrap();
            Notification::seal(from, &cert, &notice, expires).unwrap()
        })
        .collect()
}

fn receipt(by: &UserKeys, inbox: [u8; 32], ids: &[[u8; 32]]) -> SignedEnvelope {
    Receipt::sign(&by.signing, &Receipt::new(inbox, ids.to_vec(), Timestamp::now())).unwrap()
}

fn ids(notes: &[SealedNotification]) -> BTreeSet<[u8; 32]> {
    notes.iter().map(|n| n.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_duplicates_and_receipts() {
    let net = TestNet::start(3, NetConfig::default()).await.unwrap();
    let (holder, sender, other) = (net.node(0), net.node(1), net.node(2));
    let (alice, bob, mallory) = (user("alice"), user("bob"), user("mallory"));
    let inbox = inbox_key(&bob.address);
    let sent = notes(&alice, &bob, 3);

    let accepted = notify::deliver_to(sender.dht(), holder.peer_id, sent.clone()).await.unwrap();
    assert_eq!(accepted.iter().copied().collect::<BTreeSet<_>>(), ids(&sent));
    assert_eq!(holder.notify.pending_count(&inbox).await.unwrap(), 3);

    // The same notifications again, from another peer: held once.
    let again = notify::deliver_to(other.dht(), holder.peer_id, sent.clone()).await.unwrap();
    assert_eq!(again.len(), 3, "already held counts as accepted");
    assert_eq!(holder.notify.pending_count(&inbox).await.unwrap(), 3);
    assert_eq!(NotifyMetrics::get(&holder.notify.metrics().duplicates), 3);

    // Mallory cannot release Bob's notifications.
    let forged = receipt(&mallory, inbox, &[sent[0].id, sent[1].id]);
    let err = notify::send_receipt(other.dht(), holder.peer_id, &forged).await.unwrap_err();
    assert!(
        matches!(err, SendReceiptError::Refused { reason: NotifyRefusal::Unauthorized, .. }),
        "{err}"
    );
    assert_eq!(holder.notify.pending_count(&inbox).await.unwrap(), 3);

    // Bob can, from any node.
    let signed = receipt(&bob, inbox, &[sent[0].id, sent[1].id]);
    notify::send_receipt(other.dht(), holder.peer_id, &signed).await.unwrap();
    assert_eq!(holder.notify.pending_count(&inbox).await.unwrap(), 1);
    // A retried receipt is harmless.
    notify::send_receipt(sender.dht(), holder.peer_id, &signed).await.unwrap();
    assert_eq!(NotifyMetrics::get(&holder.notify.metrics().released), 2);

    // A late re-delivery of a receipted notification is not kept again.
    let late = notify::deliver_to(sender.dht(), holder.peer_id, sent[..2].to_vec()).await.unwrap();
    assert_eq!(late.len(), 2, "receipted counts as accepted: nothing to retry");
    assert_eq!(holder.notify.pending_count(&inbox).await.unwrap(), 1);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_returns_what_is_pending_to_the_recipient_only() {
    let net = TestNet::start(3, NetConfig::default()).await.unwrap();
    let (holder, sender, recipient_node) = (net.node(0), net.node(1), net.node(2));
    let (alice, carol, bob, mallory) = (user("alice"), user("carol"), user("bob"), user("mallory"));
    let inbox = inbox_key(&bob.address);
    let mut sent = notes(&alice, &bob, 4);
    sent.extend(notes(&carol, &bob, 2));
    notify::deliver_to(sender.dht(), holder.peer_id, sent.clone()).await.unwrap();
    // Someone else's inbox on the same holder stays out of Bob's pull.
    notify::deliver_to(sender.dht(), holder.peer_id, notes(&alice, &carol, 2)).await.unwrap();
    let released = [sent[0].id];
    let signed = receipt(&bob, inbox, &released);
    notify::send_receipt(recipient_node.dht(), holder.peer_id, &signed).await.unwrap();

    let auth = pull_auth(&bob.signing, inbox, Timestamp::now()).unwrap();
    let pulled =
        notify::pull_from(recipient_node.dht(), holder.peer_id, inbox, &auth).await.unwrap();
    assert_eq!(ids(&pulled), ids(&sent[1..]));
    assert!(pulled.iter().all(|n| sent.contains(n)), "exactly as delivered");
    // And they open for Bob.
    for sealed in &pulled {
        let (notice, signer) = sealed.open(&bob).unwrap();
        assert_eq!(notice.to, bob.address);
        assert!(signer == alice.verifying_key() || signer == carol.verifying_key());
    }

    let refusal = |result: Result<Vec<SealedNotification>, PullError>| match result {
        Err(PullError::Refused { reason, .. }) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    };
    // Signed by someone else.
    let wrong = pull_auth(&mallory.signing, inbox, Timestamp::now()).unwrap();
    let result = notify::pull_from(recipient_node.dht(), holder.peer_id, inbox, &wrong).await;
    assert_eq!(refusal(result), NotifyRefusal::Unauthorized);
    // Too old.
    let stale = pull_auth(&bob.signing, inbox, Timestamp(Timestamp::now().as_millis() - 3_600_000))
        .unwrap();
    let result = notify::pull_from(recipient_node.dht(), holder.peer_id, inbox, &stale).await;
    assert_eq!(refusal(result), NotifyRefusal::Unauthorized);
    // For another inbox.
    let elsewhere = pull_auth(&bob.signing, [9; 32], Timestamp::now()).unwrap();
    let result = notify::pull_from(recipient_node.dht(), holder.peer_id, inbox, &elsewhere).await;
    assert_eq!(refusal(result), NotifyRefusal::Unauthorized);
    // Not an envelope at all.
    let garbage = NotifyRequest::Pull { inbox, auth: vec![0xa1, 0x00].into() };
    let answer = recipient_node.dht().notify(holder.peer_id, garbage).await.unwrap();
    assert!(
        matches!(answer, NotifyResponse::Refused { reason: NotifyRefusal::Malformed, .. }),
        "{answer:?}"
    );
    assert_eq!(holder.notify.pending_count(&inbox).await.unwrap(), 5, "pulls remove nothing");
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_holder_still_holds_its_notifications() {
    let mut net = TestNet::start(3, NetConfig::default()).await.unwrap();
    let (alice, bob) = (user("alice"), user("bob"));
    let inbox = inbox_key(&bob.address);
    let sent = notes(&alice, &bob, 5);
    let holder = net.node(0).peer_id;
    notify::deliver_to(net.node(1).dht(), holder, sent.clone()).await.unwrap();
    let signed = receipt(&bob, inbox, &[sent[0].id]);
    notify::send_receipt(net.node(1).dht(), holder, &signed).await.unwrap();

    net.stop(0).await;
    net.restart(0).await.unwrap();
    assert_eq!(net.node(0).notify.pending_count(&inbox).await.unwrap(), 4);
    let auth = pull_auth(&bob.signing, inbox, Timestamp::now()).unwrap();
    let pulled = notify::pull_from(net.node(2).dht(), holder, inbox, &auth).await.unwrap();
    assert_eq!(ids(&pulled), ids(&sent[1..]));
    // The receipt survived the restart too: a late copy is not kept.
    notify::deliver_to(net.node(2).dht(), holder, sent[..1].to_vec()).await.unwrap();
    assert_eq!(net.node(0).notify.pending_count(&inbox).await.unwrap(), 4);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_peer_is_rate_limited_while_another_gets_through() {
    let net = TestNet::start(3, NetConfig::default()).await.unwrap();
    let (alice, bob) = (user("alice"), user("bob"));
    let inbox = inbox_key(&bob.address);
    let flood = tokio::task::spawn_blocking({
        let (alice, bob) = (alice.clone(), bob.clone());
        move || notes(&alice, &bob, 10_000)
    })
    .await
    .unwrap();
    let holder = net.node(0).peer_id;
    let second_wave = flood[7_000..].to_vec();

    // The flooder sends every batch, refused or not, and says when it was
    // first refused.
    let (first_refusal, refused) = oneshot::channel();
    let flooder = net.node(1).dht().clone();
    let flooding = tokio::spawn(async move {
        let mut first_refusal = Some(first_refusal);
        let (mut accepted, mut limited) = (0usize, 0usize);
        let batches =
            NotifyRequest::deliver_batches(flood.iter().map(|n| n.encode().into()).collect());
        for batch in batches {
            match flooder.notify(holder, batch).await.unwrap() {
                NotifyResponse::Accepted { ids } => accepted += ids.len(),
                NotifyResponse::Refused { reason: NotifyRefusal::RateLimited, .. } => {
                    limited += 1;
                    if let Some(tell) = first_refusal.take() {
                        let _ = tell.send(());
                    }
                }
                other => panic!("unexpected answer to the flooder: {other:?}"),
            }
        }
        (accepted, limited)
    });

    refused.await.expect("the flooder was never rate limited");
    let polite = notes(&alice, &bob, 1);
    let accepted = notify::deliver_to(net.node(2).dht(), holder, polite.clone()).await.unwrap();
    assert_eq!(accepted, vec![polite[0].id]);

    let (flood_accepted, flood_limited) = flooding.await.unwrap();
    assert!(flood_limited > 0);
    assert!(flood_accepted < 10_000, "{flood_accepted} of the flood kept");
    let holder_node = net.node(0);
    assert_eq!(holder_node.notify.pending_count(&inbox).await.unwrap(), flood_accepted + 1);
    assert!(NotifyMetrics::get(&holder_node.notify.metrics().rate_limited) >= flood_limited as u64);

    // The typed call reports the refusal, and what got through before it.
    let err = notify::deliver_to(net.node(1).dht(), holder, second_wave).await.unwrap_err();
    assert!(
        matches!(err, DeliverError::Refused { reason: NotifyRefusal::RateLimited, .. }),
        "{err}"
    );
    net.shutdown().await;
}

// ---- The sender and recipient sides, end to end through the service ----

mod service {
    use std::collections::HashSet;
    use std::time::Duration;

    use epost_node::Node;
    use epost_node::notify::Received;
    use epost_testkit::{NetConfig, TestNet, addr};
    use epost_types::address::Address;
    use epost_types::record::inbox_key;
    use tokio::sync::broadcast;

    /// Waits (bounded) for the next notification to `to` on `events`.
    async fn next_for(events: &mut broadcast::Receiver<Received>, to: &Address) -> Received {
        let wait = async {
            loop {
                match events.recv().await {
                    Ok(r) if r.to == *to => return r,
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => panic!("service stopped"),
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(60), wait).await.expect("no notification came")
    }

    /// Pending notifications for `inbox` on every running node, summed.
    async fn pending(net: &TestNet, inbox: &[u8; 32]) -> usize {
        let mut total = 0;
        for i in net.running() {
            total += net.node(i).notify.pending_count(inbox).await.unwrap();
        }
        total
    }

    /// Runs the recipient's resync passes (bounded) until no holder keeps
    /// anything for `inbox`: each pass pulls and receipts what is left.
    async fn released(net: &TestNet, recipient: &Node, inbox: &[u8; 32]) {
        for _ in 0..20 {
            if pending(net, inbox).await == 0 {
                return;
            }
            recipient.notifications.resync_now().await;
        }
        panic!("holders still keep {} notifications", pending(net, inbox).await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_online_recipient_gets_it_and_holders_let_go() {
        let net = TestNet::start(4, NetConfig::default()).await.unwrap();
        net.host_in_own_realms(&[("alice", 0), ("bob", 2)]).await.unwrap();
        let (alice, bob) = (addr("alice@alice.test"), addr("bob@bob.test"));
        let mut events = net.node(2).notifications.subscribe();
        let report =
            net.node(0).notifications.send(&alice, &bob, None, "hi bob".into()).await.unwrap();
        assert!(report.direct, "bob's home node took it directly: {report:?}");
        assert!(report.holders >= 1, "{report:?}");
        let got = next_for(&mut events, &bob).await;
        assert_eq!((got.from.clone(), got.summary.as_str()), (alice.clone(), "hi bob"));
        assert_eq!(net.node(2).notifications.list(&bob).unwrap(), vec![got]);
        released(&net, net.node(2), &inbox_key(&bob)).await;
        // Only bob's node can list bob's notifications.
        assert!(net.node(1).notifications.list(&bob).is_err());
        net.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_offline_recipient_gets_all_fifty_exactly_once_from_one_surviving_holder() {
        let mut net = TestNet::start(6, NetConfig::default()).await.unwrap();
        net.host_in_own_realms(&[("alice", 0), ("bob", 5)]).await.unwrap();
        let (alice, bob) = (addr("alice@alice.test"), addr("bob@bob.test"));
        let inbox = inbox_key(&bob);
        net.stop(5).await;
        for i in 0..50 {
            let report =
                net.node(0).notifications.send(&alice, &bob, None, format!("n{i}")).await.unwrap();
            assert!(!report.direct);
        }
        // Every running node is an inbox holder; all but node 0 are killed.
        assert!(net.node(0).notify.pending_count(&inbox).await.unwrap() == 50);
        for i in 1..5 {
            net.stop(i).await;
        }
        net.restart(5).await.unwrap();
        released(&net, net.node(5), &inbox).await;
        let got = net.node(5).notifications.list(&bob).unwrap();
        let summaries: HashSet<String> = got.iter().map(|r| r.summary.clone()).collect();
        assert_eq!(got.len(), 50, "each exactly once");
        assert_eq!(summaries, (0..50).map(|i| format!("n{i}")).collect());
        // The killed holders come back with stale copies: bob receives none twice.
        for i in 1..5 {
            net.restart(i).await.unwrap();
        }
        released(&net, net.node(5), &inbox).await;
        assert_eq!(net.node(5).notifications.list(&bob).unwrap().len(), 50);
        net.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flooding_sender_does_not_hold_up_another() {
        let net = TestNet::start(3, NetConfig::default()).await.unwrap();
        net.host_in_own_realms(&[("mallory", 0), ("carol", 1), ("bob", 2)]).await.unwrap();
        let (mallory, carol, bob) =
            (addr("mallory@mallory.test"), addr("carol@carol.test"), addr("bob@bob.test"));
        let mut events = net.node(2).notifications.subscribe();
        // Mallory sends 10,000 as fast as her node can; holders throttle her.
        let flood = {
            let service = net.node(0).notifications.clone();
            let (from, to) = (mallory.clone(), bob.clone());
            tokio::spawn(async move {
                let mut sent = 0;
                for i in 0..10_000 {
                    if service.send(&from, &to, None, format!("spam {i}")).await.is_ok() {
                        sent += 1;
                    }
                }
                sent
            })
        };
        // Once the flood is arriving, carol sends one.
        let mut from_mallory = 0;
        while from_mallory < 50 {
            if next_for(&mut events, &bob).await.from == mallory {
                from_mallory += 1;
            }
        }
        net.node(1).notifications.send(&carol, &bob, None, "real mail".into()).await.unwrap();
        loop {
            let got = next_for(&mut events, &bob).await;
            if got.from == carol {
                break;
            }
            from_mallory += 1;
        }
        // Carol's came through while mallory's were still arriving: it did
        // not wait behind her backlog.
        assert!(!flood.is_finished() || from_mallory < 5_000, "{from_mallory} of mallory's first");
        flood.abort();
        net.shutdown().await;
    }
}
