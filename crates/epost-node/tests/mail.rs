//! ePOST mail across in-process nodes: delivery by notification to a user
//! hosted elsewhere, exact bytes back, an attachment stored once, folder
//! operations, and UIDs that survive a restart.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

use epost_node::mail::message::load_manifest;
use epost_testkit::{NetConfig, TestNet, addr, await_inbox};
use epost_types::mail::{FlagChange, MailOp, Piece};
use epost_types::mailbox::{Recipient, Route};

fn message(subject: &str, attachment: &str) -> Vec<u8> {
    format!(
        "From: alice@example.test\r\nTo: bob@example.test\r\nSubject: {subject}\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"sep\"\r\n\r\n\
         --sep\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello \u{e9}\r\n--sep\r\n\
         Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n\
         {attachment}\r\n--sep--\r\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_reaches_remote_users_exactly_and_attachments_are_stored_once() {
    let mut net = TestNet::start(4, NetConfig::default()).await.unwrap();
    net.host_users("example.test", &[("alice", 0), ("bob", 2), ("carol", 3)]).await.unwrap();
    let (alice, bob, carol) =
        (addr("alice@example.test"), addr("bob@example.test"), addr("carol@example.test"));
    let bob_box = net.node(2).mail.mailbox(&bob).unwrap();
    let carol_box = net.node(3).mail.mailbox(&carol).unwrap();

    let attachment = "U2FtZSBieXRlcw==".repeat(2500);
    let to_bob = message("for bob", &attachment);
    let to_carol = message("for carol", &attachment);
    // Both are hosted elsewhere: delivery goes by the route given.
    let mail = &net.node(0).mail;
    let (to_bob_rcpt, to_carol_rcpt) =
        (Recipient::new(bob.clone(), Route::Remote), Recipient::new(carol.clone(), Route::Remote));
    mail.deliver(Some(&alice), &[to_bob_rcpt], &to_bob).await.unwrap();
    mail.deliver(Some(&alice), &[to_carol_rcpt], &to_carol).await.unwrap();
    await_inbox(&bob_box, 1).await;
    await_inbox(&carol_box, 1).await;

    let bob_inbox = bob_box.folder("INBOX").await.unwrap();
    let (uid, stored) = bob_inbox.messages.iter().next().unwrap();
    assert_eq!(stored.message.size, to_bob.len() as u64);
    assert_eq!(net.node(2).mail.fetch(&stored.message).await.unwrap(), to_bob);
    let carol_inbox = carol_box.folder("INBOX").await.unwrap();
    let carol_msg = &carol_inbox.messages.values().next().unwrap().message;
    assert_eq!(net.node(3).mail.fetch(carol_msg).await.unwrap(), to_carol);

    // Two manifests, one attachment object.
    let parts =
        |manifest: epost_types::mail::MessageManifest| -> Vec<epost_types::capability::Capability> {
            manifest
                .pieces
                .into_iter()
                .filter_map(|p| match p {
                    Piece::Part { capability, .. } => Some(capability),
                    Piece::Inline(_) => None,
                })
                .collect()
        };
    let storage = &net.node(2).storage;
    let bob_parts = parts(load_manifest(storage, &stored.message.manifest).await.unwrap());
    let carol_parts = parts(load_manifest(storage, &carol_msg.manifest).await.unwrap());
    assert_eq!(bob_parts.len(), 1);
    assert_eq!(bob_parts, carol_parts);
    assert_ne!(stored.message.manifest, carol_msg.manifest);

    // Flags and a move, then a restart: the same UIDs and UIDVALIDITY.
    let uid = *uid;
    let flagged = MailOp::Flags {
        folder: "INBOX".into(),
        uids: vec![uid],
        change: FlagChange::Add,
        flags: vec!["\\Seen".into()],
    };
    bob_box.change(flagged).await.unwrap();
    let moved = MailOp::Move { from: "INBOX".into(), uids: vec![uid], to: "Trash".into() };
    let report = bob_box.change(moved).await.unwrap();
    assert_eq!(report.sources, vec![uid]);
    let trash_before = bob_box.folder("Trash").await.unwrap();
    net.stop(2).await;
    net.restart(2).await.unwrap();
    let bob_box = net.node(2).mail.mailbox(&bob).unwrap();
    let trash_after = bob_box.folder("Trash").await.unwrap();
    assert_eq!(trash_after, trash_before);
    assert_eq!(trash_after.messages[&report.uids[0]].flags, vec!["\\Seen".to_string()]);
    assert!(bob_box.folder("INBOX").await.unwrap().messages.is_empty());
    // The notification is not filed twice after the restart.
    net.node(2).notifications.resync_now().await;
    net.node(2).mail.reconcile().await;
    assert!(bob_box.folder("INBOX").await.unwrap().messages.is_empty());
}
