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

/// A client's first sync asks ENVELOPE and BODYSTRUCTURE of every
/// message: the outline answers them from the manifest (the structure
/// stored at ingest, the header in its inline pieces) and reads no part
/// object; only the body needs the attachments. Mail stored before
/// structures were kept gets the same outline, from its bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outline_reads_no_part_object() {
    use std::sync::atomic::Ordering;

    use epost_types::mail::MessageManifest;
    use epost_types::mime;

    let net = TestNet::start(3, NetConfig::default()).await.unwrap();
    net.host_users("example.test", &[("alice", 0), ("bob", 1)]).await.unwrap();
    let (alice, bob) = (addr("alice@example.test"), addr("bob@example.test"));
    let bob_box = net.node(1).mail.mailbox(&bob).unwrap();
    // Three different attachments of 40 KiB: three part objects.
    let attachments: Vec<String> =
        ["QUJD", "REVG", "R0hJ"].iter().map(|chunk| chunk.repeat(10_000)).collect();
    let mut raw = b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: files\r\n\
        MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"sep\"\r\n\r\n\
        --sep\r\nContent-Type: text/plain\r\n\r\nthree files\r\n"
        .to_vec();
    for (i, attachment) in attachments.iter().enumerate() {
        raw.extend_from_slice(
            format!(
                "--sep\r\nContent-Type: application/octet-stream; name=\"f{i}\"\r\n\
                 Content-Disposition: attachment\r\nContent-Transfer-Encoding: base64\r\n\r\n\
                 {attachment}\r\n"
            )
            .as_bytes(),
        );
    }
    raw.extend_from_slice(b"--sep--\r\n");
    let rcpt = Recipient::new(bob.clone(), Route::Remote);
    net.node(0).mail.deliver(Some(&alice), &[rcpt], &raw).await.unwrap();
    await_inbox(&bob_box, 1).await;
    let stored = bob_box.folder("INBOX").await.unwrap().messages.values().next().unwrap().clone();
    let node = net.node(1);
    // The renewal pass at start (which opens new messages once to list
    // their objects) is over before anything is counted.
    node.renewer.renew_now().await.unwrap();

    let got = || node.storage.metrics().objects_got.load(Ordering::Relaxed);
    let before = got();
    let outline = node.mail.outline(&stored.message).await.unwrap();
    let outline_reads = got() - before;
    let before = got();
    let whole = node.mail.fetch(&stored.message).await.unwrap();
    let body_reads = got() - before;

    assert_eq!(whole, raw);
    let parsed = mime::parse(&raw).structure;
    assert_eq!(outline.structure, parsed);
    assert_eq!(outline.head, raw[..parsed.head_len()]);
    // The manifest at most (it stays cached from filing); none of the parts.
    assert!(outline_reads <= 1, "the outline read {outline_reads} objects");
    assert!(body_reads >= 3, "the body read {body_reads} objects");
    let manifest = load_manifest(&node.storage, &stored.message.manifest).await.unwrap();
    let parts = manifest.pieces.iter().filter(|p| matches!(p, Piece::Part { .. })).count();
    assert_eq!(parts, 3);
    assert_eq!(manifest.structure().unwrap().unwrap(), parsed);

    // A manifest of before (version 1, no structure): the outline parses
    // the whole message, and says the same.
    let old = MessageManifest::new(vec![Piece::Inline(raw.clone())]);
    assert_eq!(old.v, 1);
    let report = node.storage.put_reader(old.encode().as_slice()).await.unwrap();
    let old_ref = epost_types::mail::MessageRef {
        manifest: report.capability,
        size: raw.len() as u64,
        internal_date: 0,
        envelope_from: None,
    };
    assert_eq!(node.mail.outline(&old_ref).await.unwrap(), outline);
    assert_eq!(node.mail.fetch(&old_ref).await.unwrap(), raw);
}
