//! The buffer against a real store, and the holder's answers to this
//! node's own requests (the same code peers' requests go through).

use epost_dht::{Dht, DhtConfig, SignedEnvelopeValidator, StartOptions};
use epost_store::{Backend, Store};
use epost_types::address::Address;
use epost_types::identity::UserKeys;
use epost_types::limits::MAX_PENDING;
use epost_types::notify::{Notification, Receipt, SealedNotification};
use epost_types::record::inbox_key;
use epost_types::time::Timestamp;
use epost_types::wire::notify::NotifyRefusal;

use super::buffer::{self, Buffer, BufferError};
use super::*;
use crate::keyspaces::{KAD_RECORDS, NOTIFY_PENDING};

const DAY: u64 = 24 * 3600 * 1000;

fn user(name: &str) -> UserKeys {
    UserKeys::generate(format!("{name}@example.org").parse::<Address>().unwrap()).unwrap()
}

fn sealed_for(from: &UserKeys, to: &UserKeys, expires: u64) -> SealedNotification {
    let cert = to.certificate(1, Timestamp(0), Timestamp(u64::MAX));
    let notice = Notification::new(
        from.address.clone(),
        to.address.clone(),
        None,
        "hello".into(),
        Timestamp::now(),
    )
    .unwrap();
    Notification::seal(from, &cert, &notice, Timestamp(expires)).unwrap()
}

fn with_bytes(notes: &[SealedNotification]) -> Vec<(SealedNotification, Vec<u8>)> {
    notes.iter().map(|n| (n.clone(), n.encode())).collect()
}

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Backend::Redb, crate::keyspaces::ALL).unwrap();
    (dir, store)
}

fn now() -> u64 {
    Timestamp::now().as_millis()
}

#[tokio::test]
async fn keeps_once_caps_the_lease_and_skips_the_expired() {
    let (_dir, store) = store();
    let (alice, bob) = (user("alice"), user("bob"));
    let mut buffer = Buffer::load(store.clone(), NotifyConfig::default(), now()).await.unwrap().0;
    let t = now();
    let long = sealed_for(&alice, &bob, t + 365 * DAY);
    let short = sealed_for(&alice, &bob, t + DAY);
    let stale = sealed_for(&alice, &bob, t - 1);
    let kept = buffer
        .keep(with_bytes(&[long.clone(), short.clone(), stale, long.clone()]), t)
        .await
        .unwrap();
    assert_eq!(kept.ids, vec![long.id, short.id]);
    assert_eq!((kept.new, kept.duplicates, kept.expired), (2, 1, 1));
    let inbox = inbox_key(&bob.address);
    assert_eq!(buffer.pending_count(&inbox), 2);
    assert_eq!(buffer.recipients(&inbox), vec![bob.verifying_key()]);

    let record = store.get(&NOTIFY_PENDING, &buffer::key(&inbox, &long.id)).unwrap().unwrap();
    assert_eq!(record.value, long.encode(), "kept as delivered");
    let lease = NotifyConfig::default().max_lease.as_millis() as u64;
    assert!(lease < 365 * DAY);
    assert_eq!(record.expires, t + lease, "lease capped");

    // Delivered again: held already, not kept twice.
    let again = buffer.keep(with_bytes(std::slice::from_ref(&short)), t).await.unwrap();
    assert_eq!((again.ids, again.new, again.duplicates), (vec![short.id], 0, 1));
    assert_eq!(buffer.pending_total(), 2);
}

#[tokio::test]
async fn a_full_inbox_refuses_the_whole_batch() {
    let (_dir, store) = store();
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    let config = NotifyConfig { max_pending_per_inbox: 3, ..NotifyConfig::default() };
    let mut buffer = Buffer::load(store, config, now()).await.unwrap().0;
    let far = now() + DAY;
    let two: Vec<_> = (0..2).map(|_| sealed_for(&alice, &bob, far)).collect();
    buffer.keep(with_bytes(&two), now()).await.unwrap();
    let mut more: Vec<_> = (0..2).map(|_| sealed_for(&alice, &bob, far)).collect();
    more.push(sealed_for(&alice, &carol, far));
    let err = buffer.keep(with_bytes(&more), now()).await.unwrap_err();
    assert!(matches!(err, BufferError::InboxFull { held: 2, max: 3, .. }), "{err}");
    assert_eq!(buffer.pending_total(), 2, "nothing of the refused batch was kept");
    // Another inbox is unaffected.
    buffer.keep(with_bytes(&more[2..]), now()).await.unwrap();
    assert_eq!(buffer.pending_count(&inbox_key(&carol.address)), 1);
}

#[tokio::test]
async fn release_needs_the_recipient_and_remembers_the_ids() {
    let (_dir, store) = store();
    let (alice, bob, mallory) = (user("alice"), user("bob"), user("mallory"));
    let mut buffer = Buffer::load(store, NotifyConfig::default(), now()).await.unwrap().0;
    let inbox = inbox_key(&bob.address);
    let notes: Vec<_> = (0..3).map(|_| sealed_for(&alice, &bob, now() + DAY)).collect();
    buffer.keep(with_bytes(&notes), now()).await.unwrap();

    // Mallory's key matches none of them: nothing is released.
    let ids = [notes[0].id, notes[1].id];
    let released = buffer.release(&inbox, mallory.verifying_key(), &ids, now()).await.unwrap();
    assert_eq!(released, 0);
    assert_eq!(buffer.pending_count(&inbox), 3);

    let later = [7u8; 32];
    let released = buffer
        .release(&inbox, bob.verifying_key(), &[ids[0], ids[1], ids[0], later], now())
        .await
        .unwrap();
    assert_eq!(released, 2);
    assert_eq!(buffer.pending_count(&inbox), 1);
    // A late re-delivery of a receipted id is not kept again.
    let kept = buffer.keep(with_bytes(&notes[..1]), now()).await.unwrap();
    assert_eq!((kept.new, kept.duplicates, kept.ids), (0, 1, vec![notes[0].id]));
    assert_eq!(buffer.pending_count(&inbox), 1);
}

#[tokio::test]
async fn the_receipted_set_is_bounded() {
    let (_dir, store) = store();
    let (alice, bob) = (user("alice"), user("bob"));
    let config = NotifyConfig { max_receipted_per_inbox: 2, ..NotifyConfig::default() };
    let mut buffer = Buffer::load(store.clone(), config.clone(), now()).await.unwrap().0;
    let inbox = inbox_key(&bob.address);
    let t = now();
    let notes: Vec<_> = (1..=3).map(|d| sealed_for(&alice, &bob, t + d * DAY)).collect();
    buffer.keep(with_bytes(&notes), t).await.unwrap();
    let ids: Vec<_> = notes.iter().map(|n| n.id).collect();
    buffer.release(&inbox, bob.verifying_key(), &ids, t).await.unwrap();
    assert_eq!(buffer.receipted_total(), 2);
    // The one forgotten is the one whose lease ends first.
    let kept = buffer.keep(with_bytes(&notes), t).await.unwrap();
    assert_eq!(kept.new, 1);
    assert_eq!(kept.ids[0], notes[0].id);
    // And the bound holds on disk too.
    drop(buffer);
    let (buffer, loaded) = Buffer::load(store, config, t).await.unwrap();
    assert_eq!((loaded.pending, loaded.receipted), (1, 2));
    assert_eq!(buffer.pending_count(&inbox), 1);
}

#[tokio::test]
async fn reload_restores_the_buffer_and_drops_what_is_broken_or_expired() {
    let (_dir, store) = store();
    let (alice, bob) = (user("alice"), user("bob"));
    let t = now();
    let inbox = inbox_key(&bob.address);
    let notes: Vec<_> = (0..4).map(|_| sealed_for(&alice, &bob, t + DAY)).collect();
    {
        let mut buffer = Buffer::load(store.clone(), NotifyConfig::default(), t).await.unwrap().0;
        buffer.keep(with_bytes(&notes), t).await.unwrap();
        buffer.release(&inbox, bob.verifying_key(), &[notes[0].id], t).await.unwrap();
    }
    // Garbage under a pending key, a notification filed under the wrong
    // id, and a Kademlia record that must be left alone.
    let garbage = vec![1; 64];
    store.put(&NOTIFY_PENDING, garbage.clone(), b"junk".to_vec(), t + DAY).await.unwrap();
    let misfiled = buffer::key(&inbox, &[2; 32]);
    store.put(&NOTIFY_PENDING, misfiled.clone(), notes[1].encode(), t + DAY).await.unwrap();
    let mut kad = vec![0x02];
    kad.extend_from_slice(&[3; 32]);
    store.put(&KAD_RECORDS, kad.clone(), b"cert".to_vec(), t + DAY).await.unwrap();

    let (buffer, loaded) = Buffer::load(store.clone(), NotifyConfig::default(), t).await.unwrap();
    assert_eq!(loaded, super::buffer::Loaded { pending: 3, receipted: 1, dropped: 2 });
    assert_eq!(buffer.pending_count(&inbox), 3);
    assert!(store.get(&NOTIFY_PENDING, &garbage).unwrap().is_none());
    assert!(store.get(&NOTIFY_PENDING, &misfiled).unwrap().is_none());
    assert!(store.get(&KAD_RECORDS, &kad).unwrap().is_some());

    // Once their lease is over, a reload keeps nothing and reads nothing
    // (not even to drop it): the expired entries are left to the sweep.
    let later = t + 2 * DAY;
    let (mut buffer, loaded) =
        Buffer::load(store.clone(), NotifyConfig::default(), later).await.unwrap();
    assert_eq!(loaded, super::buffer::Loaded::default());
    assert_eq!(buffer.collect_expired(later).await.unwrap(), 4);
    assert!(store.scan(&NOTIFY_PENDING, &[], 10).unwrap().is_empty());
}

#[tokio::test]
async fn expired_entries_are_collected() {
    let (_dir, store) = store();
    let (alice, bob) = (user("alice"), user("bob"));
    let t = now();
    let mut buffer = Buffer::load(store, NotifyConfig::default(), t).await.unwrap().0;
    let soon = sealed_for(&alice, &bob, t + 1000);
    let later = sealed_for(&alice, &bob, t + DAY);
    buffer.keep(with_bytes(&[soon.clone(), later]), t).await.unwrap();
    buffer.release(&inbox_key(&bob.address), bob.verifying_key(), &[soon.id], t).await.unwrap();
    assert_eq!(buffer.collect_expired(t + 999).await.unwrap(), 0);
    // The released notification's receipted id goes with its lease.
    assert_eq!(buffer.collect_expired(t + 1000).await.unwrap(), 1);
    assert_eq!((buffer.pending_total(), buffer.receipted_total()), (1, 0));
    assert_eq!(buffer.collect_expired(t + DAY).await.unwrap(), 1);
    assert_eq!(buffer.pending_total(), 0);
}

#[test]
fn pull_auth_is_for_one_inbox_one_key_and_ten_minutes() {
    let bob = user("bob");
    let inbox = inbox_key(&bob.address);
    let t = Timestamp::now();
    let auth = pull_auth(&bob.signing, inbox, t).unwrap();
    assert_eq!(verify_pull_auth(&auth, inbox, t), Ok(bob.verifying_key()));
    let nine = Timestamp(t.as_millis() + 9 * 60 * 1000);
    assert!(verify_pull_auth(&auth, inbox, nine).is_ok());
    let eleven = Timestamp(t.as_millis() + 11 * 60 * 1000);
    assert!(matches!(verify_pull_auth(&auth, inbox, eleven), Err(PullAuthError::Stale { .. })));
    assert_eq!(verify_pull_auth(&auth, [0; 32], t), Err(PullAuthError::WrongInbox));
    // A real receipt is not a pull authorisation.
    let receipt = Receipt::sign(&bob.signing, &Receipt::new(inbox, vec![[1; 32]], t)).unwrap();
    assert_eq!(verify_pull_auth(&receipt, inbox, t), Err(PullAuthError::HasIds { count: 1 }));
    // Nor is anything with its signature broken.
    let mut forged = auth.clone();
    forged.payload = epost_types::cbor::encode(&Receipt::new(inbox, Vec::new(), nine));
    assert!(matches!(verify_pull_auth(&forged, inbox, t), Err(PullAuthError::Envelope(_))));
}

async fn overlay() -> Dht {
    let config =
        DhtConfig { listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()], ..DhtConfig::default() };
    Dht::start(StartOptions {
        config,
        identity_seed: [0x77; 32],
        validator: std::sync::Arc::new(SignedEnvelopeValidator),
        stored_records: Vec::new(),
        record_writes: None,
        remembered_peers: Vec::new(),
    })
    .await
    .unwrap()
    .0
}

#[tokio::test]
async fn the_holder_answers_this_nodes_own_requests() {
    let (_dir, store) = store();
    let dht = overlay().await;
    let (_tx, inbound) = tokio::sync::mpsc::channel(1);
    let workers = crate::worker::Workers::new();
    let (holder, tasks) =
        NotifyHolder::start(NotifyConfig::default(), dht.client.clone(), store, inbound, &workers);
    let (alice, bob, mallory) = (user("alice"), user("bob"), user("mallory"));
    let inbox = inbox_key(&bob.address);
    let notes: Vec<_> =
        (0..MAX_PENDING + 3).map(|_| sealed_for(&alice, &bob, now() + DAY)).collect();
    let mut ids = holder.deliver_local(notes.clone()).await.unwrap();
    assert_eq!(ids.len(), notes.len());
    assert_eq!(holder.pending_count(&inbox).await.unwrap(), notes.len());

    // Pages of MAX_PENDING, in id order; receipting a page reveals the next.
    let auth = pull_auth(&bob.signing, inbox, Timestamp::now()).unwrap();
    let page = holder.pull_local(inbox, &auth).await.unwrap();
    assert_eq!(page.len(), MAX_PENDING);
    ids.sort_unstable();
    assert_eq!(page.iter().map(|n| n.id).collect::<Vec<_>>(), ids[..MAX_PENDING]);
    let receipt = Receipt::new(inbox, ids[..MAX_PENDING].to_vec(), Timestamp::now());
    holder.receipt_local(&Receipt::sign(&bob.signing, &receipt).unwrap()).await.unwrap();
    let rest = holder.pull_local(inbox, &auth).await.unwrap();
    assert_eq!(rest.iter().map(|n| n.id).collect::<Vec<_>>(), ids[MAX_PENDING..]);

    // Someone else's pull and receipt are refused.
    let wrong = pull_auth(&mallory.signing, inbox, Timestamp::now()).unwrap();
    let err = holder.pull_local(inbox, &wrong).await.unwrap_err();
    assert!(matches!(err, PullError::Refused { reason: NotifyRefusal::Unauthorized, .. }), "{err}");
    let forged =
        Receipt::sign(&mallory.signing, &Receipt::new(inbox, ids.clone(), Timestamp::now()));
    let err = holder.receipt_local(&forged.unwrap()).await.unwrap_err();
    assert!(matches!(err, SendReceiptError::Refused { reason: NotifyRefusal::Unauthorized, .. }));
    assert_eq!(holder.pending_count(&inbox).await.unwrap(), 3);
    assert_eq!(NotifyMetrics::get(&holder.metrics().unauthorized), 2);
    assert_eq!(NotifyMetrics::get(&holder.metrics().pending), 3);

    // A notification whose id does not match its contents refuses the batch.
    let mut bad = sealed_for(&alice, &bob, now() + DAY);
    bad.id[0] ^= 1;
    let good = sealed_for(&alice, &bob, now() + DAY);
    let err = holder.deliver_local(vec![good, bad]).await.unwrap_err();
    assert!(matches!(err, DeliverError::Refused { reason: NotifyRefusal::Malformed, .. }), "{err}");
    assert_eq!(holder.pending_count(&inbox).await.unwrap(), 3);
    assert_eq!(NotifyMetrics::get(&holder.metrics().malformed), 1);

    let mut text = String::new();
    holder.metrics().render(&mut text);
    assert!(text.contains("epost_notify_pending 3\n"), "{text}");

    tasks.shutdown(crate::worker::DRAIN).await;
    assert!(holder.pending_count(&inbox).await.is_err());
    dht.shutdown().await;
}
