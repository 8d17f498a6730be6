//! The lease book and renewal across in-process nodes: what users' folders
//! and logs reference is in the book, a renewal pass reaches every object
//! on its holders, deletion lets go of exactly what nothing references
//! (a shared attachment stays), a removed user's objects are no longer
//! renewed, and a mailbox reopens from its checkpoint.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

use std::time::Duration;

use epost_node::lease::{LeaseConfig, OwnerId};
use epost_testkit::{NetConfig, TestNet, addr, await_inbox};
use epost_types::mail::{FlagChange, MailEntry, MailOp};
use epost_types::mailbox::{Change, Recipient, Route};

/// Every root is due at every pass, so a test can see each one renewed.
fn config() -> NetConfig {
    NetConfig {
        lease: LeaseConfig { renew_after: Duration::ZERO, ..NetConfig::default().lease },
        ..NetConfig::default()
    }
}

fn message(subject: &str, attachment: &str) -> Vec<u8> {
    format!(
        "From: alice@example.test\r\nTo: bob@example.test\r\nSubject: {subject}\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"sep\"\r\n\r\n\
         --sep\r\nContent-Type: text/plain\r\n\r\n{subject}\r\n--sep\r\n\
         Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         {attachment}\r\n--sep--\r\n"
    )
    .into_bytes()
}

fn manifest_id(
    mailbox_folder: &epost_node::mail::state::Folder,
    uid: u32,
) -> epost_types::id::ObjectId {
    let manifest = &mailbox_folder.messages[&uid].message.manifest;
    manifest.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_folders_and_logs_reference_is_renewed_and_nothing_else() {
    let net = TestNet::start(5, config()).await.unwrap();
    net.host_users("example.test", &[("alice", 0), ("bob", 2)]).await.unwrap();
    let (alice, bob) = (addr("alice@example.test"), addr("bob@example.test"));
    let bob_box = net.node(2).mail.mailbox(&bob).unwrap();

    // Two messages sharing an attachment, and one with its own.
    let shared = "U2hhcmVkIGJ5dGVz".repeat(3000);
    let own = "T3duIGJ5dGVzIQ==".repeat(3000);
    for (subject, attachment) in [("one", &shared), ("two", &shared), ("three", &own)] {
        let raw = message(subject, attachment);
        let to = [Recipient::new(bob.clone(), Route::Remote)];
        net.node(0).mail.deliver(Some(&alice), &to, &raw).await.unwrap();
    }
    await_inbox(&bob_box, 3).await;
    let inbox = bob_box.folder("INBOX").await.unwrap();
    let uids: Vec<u32> = inbox.messages.keys().copied().collect();
    let book = &net.node(2).book;
    let mail_roots = book.roots_of(OwnerId::mail(&bob)).unwrap();
    assert_eq!(mail_roots.len(), 3, "one root per message");
    for uid in &uids {
        assert!(mail_roots.contains(&manifest_id(&inbox, *uid)));
    }
    let log_roots = book.roots_of(OwnerId::logs(&bob)).unwrap();
    assert!(log_roots.len() >= 2, "bob's mail log entries are in the book: {log_roots:?}");

    // A pass renews every object on its holders; filed messages' parts are
    // found by opening them.
    let report = net.node(2).renewer.renew_now().await.unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    assert!(report.roots as usize >= mail_roots.len() + log_roots.len(), "{report:?}");
    // Each message: its manifest and one attachment part.
    assert!(report.renewed as usize >= 3 * 2 + log_roots.len(), "{report:?}");
    let members_one = book.members(manifest_id(&inbox, uids[0])).unwrap();
    let members_two = book.members(manifest_id(&inbox, uids[1])).unwrap();
    let members_three = book.members(manifest_id(&inbox, uids[2])).unwrap();
    assert_eq!(members_one.len(), 1, "the attachment is the one part");
    assert_eq!(members_one, members_two, "the shared attachment is one object");
    assert_ne!(members_one, members_three);
    assert!(report.heads_republished >= 1);

    // A copy keeps a message held when the original is expunged; the
    // last entry going lets it go. The shared attachment stays with the
    // message still holding it.
    let copied = bob_box
        .change(MailOp::Copy { from: "INBOX".into(), uids: vec![uids[2]], to: "Archive".into() })
        .await
        .unwrap();
    bob_box
        .change(MailOp::Expunge { folder: "INBOX".into(), uids: vec![uids[0], uids[2]] })
        .await
        .unwrap();
    let held = book.roots_of(OwnerId::mail(&bob)).unwrap();
    assert!(!held.contains(&manifest_id(&inbox, uids[0])), "expunged, nothing else names it");
    assert!(
        held.contains(&manifest_id(&inbox, uids[1])),
        "the other message sharing the attachment"
    );
    assert!(held.contains(&manifest_id(&inbox, uids[2])), "still in Archive");
    bob_box
        .change(MailOp::Expunge { folder: "Archive".into(), uids: copied.uids.clone() })
        .await
        .unwrap();
    let held = book.roots_of(OwnerId::mail(&bob)).unwrap();
    assert_eq!(held, vec![manifest_id(&inbox, uids[1])]);
    let after = net.node(2).renewer.renew_now().await.unwrap();
    assert!(after.roots < report.roots + 3, "dropped roots are not renewed: {after:?}");

    // A removed user's objects are no longer renewed from here.
    net.node(2).identity.remove_user(&bob).unwrap();
    net.node(2).book.forget(&bob).await.unwrap();
    assert!(book.roots_of(OwnerId::mail(&bob)).unwrap().is_empty());
    assert!(book.roots_of(OwnerId::logs(&bob)).unwrap().is_empty());
    assert!(book.heads().unwrap().iter().all(|(_, h)| h.owner != bob));
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_reopens_from_its_checkpoint_with_the_same_state() {
    let mut net = TestNet::start(4, config()).await.unwrap();
    net.host_users("example.test", &[("bob", 1)]).await.unwrap();
    let bob = addr("bob@example.test");
    let mailbox = net.node(1).mail.mailbox(&bob).unwrap();
    let raw = message("kept", &"S2VlcCBtZQ==".repeat(10));
    let (stored, objects) = net.node(1).mail.store_message(&raw, &bob).await.unwrap();
    let insert = Change::insert("INBOX", stored, Vec::new(), None, Some(objects));
    let uid = mailbox.change(insert).await.unwrap().uids[0];
    // A second message, expunged: the folder remembers it went.
    let (other, objects) = net.node(1).mail.store_message(&raw, &bob).await.unwrap();
    let insert = Change::insert("INBOX", other, Vec::new(), None, Some(objects));
    let gone = mailbox.change(insert).await.unwrap().uids[0];
    mailbox.change(MailOp::Expunge { folder: "INBOX".into(), uids: vec![gone] }).await.unwrap();
    // More entries than a checkpoint interval, one flag change each.
    for i in 0..140u32 {
        let change = MailOp::Flags {
            folder: "INBOX".into(),
            uids: vec![uid],
            change: if i % 2 == 0 { FlagChange::Add } else { FlagChange::Remove },
            flags: vec!["\\Seen".into()],
        };
        mailbox.change(change).await.unwrap();
    }
    let before = mailbox.read(|s| s.folders.clone()).await.unwrap();
    let entries = net.node(1).logs.read(&bob, "mail").await.unwrap();
    let checkpoints = entries
        .iter()
        .filter(|e| {
            MailEntry::decode(&e.body)
                .is_ok_and(|m| m.ops.iter().any(|op| matches!(op, MailOp::Checkpoint { .. })))
        })
        .count();
    assert_eq!(checkpoints, 1, "one checkpoint after 128 entries");
    let state_roots = net.node(1).book.roots_of(OwnerId::logs(&bob)).unwrap().len();

    net.stop(1).await;
    net.restart(1).await.unwrap();
    let mailbox = net.node(1).mail.mailbox(&bob).unwrap();
    let after = mailbox.read(|s| s.folders.clone()).await.unwrap();
    assert_eq!(after, before, "the state read from the checkpoint and what followed");
    // MODSEQs included: the last flag change is the folder's highest.
    let inbox = &after["INBOX"];
    assert_eq!(inbox.highest_modseq, inbox.messages[&uid].modseq);
    assert_eq!(inbox.vanished_since(0).ranges, vec![(gone, gone)]);
    let fetched = mailbox.folder("INBOX").await.unwrap();
    assert_eq!(net.node(1).mail.fetch(&fetched.messages[&uid].message).await.unwrap(), raw);
    // Nothing new was registered for log entries already in the book.
    assert_eq!(net.node(1).book.roots_of(OwnerId::logs(&bob)).unwrap().len(), state_roots);
    // And the mailbox goes on from there.
    let deleted = MailOp::Expunge { folder: "INBOX".into(), uids: vec![uid] };
    mailbox.change(deleted).await.unwrap();
    assert!(net.node(1).book.roots_of(OwnerId::mail(&bob)).unwrap().is_empty());
    net.shutdown().await;
}
