//! The outbound service in a running node: a message for another domain
//! that its transport refuses comes back to the sender's INBOX as a DSN,
//! through the node's own delivery, and leaves the queue.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail by panicking")]

use epost_mta::outbound::{Message, Notify, Outcome, Recipient, Reply, Status, Transport};
use epost_node::outbound::{OutboundOptions, SharedTransport, Submission};
use epost_testkit::{NetConfig, TestNet, addr, await_inbox};

/// Refuses every recipient for good.
struct Refuses;

impl Transport for Refuses {
    async fn send(&self, _domain: &str, message: Message<'_>) -> Vec<Outcome> {
        let status = Status { class: 5, subject: 1, detail: 1 };
        let reply = Reply { code: 550, status: Some(status), text: "no such user".into() };
        message
            .recipients
            .iter()
            .map(|_| Outcome::Failed {
                host: Some("mx.far.test".into()),
                reply: Some(reply.clone()),
                status,
                reason: "refused".into(),
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_message_bounces_into_the_senders_inbox() {
    let config = NetConfig {
        outbound: OutboundOptions {
            transport: SharedTransport::new("refuses", Refuses),
            ..OutboundOptions::default()
        },
        ..NetConfig::default()
    };
    let net = TestNet::start(2, config).await.unwrap();
    net.host_users("example.test", &[("alice", 0)]).await.unwrap();
    let alice = addr("alice@example.test");
    let inbox = net.node(0).mail.mailbox(&alice).unwrap();
    let outbound = &net.node(0).outbound;
    outbound
        .enqueue(Submission {
            reverse_path: Some(alice.to_string()),
            recipients: vec![Recipient {
                address: "bob@far.test".into(),
                notify: Notify::default(),
                orcpt: None,
            }],
            raw: b"From: alice@example.test\r\nSubject: out\r\n\r\nhi\r\n".to_vec(),
            envid: None,
            ret: None,
            signing_domain: "example.test".into(),
        })
        .await
        .unwrap();
    await_inbox(&inbox, 1).await;
    let folder = inbox.folder("INBOX").await.unwrap();
    let stored = &folder.messages.values().next().unwrap().message;
    let dsn = String::from_utf8(net.node(0).mail.fetch(stored).await.unwrap().to_vec()).unwrap();
    assert!(dsn.contains("From: Mail Delivery System <MAILER-DAEMON@example.test>"), "{dsn}");
    assert!(dsn.contains("Final-Recipient: rfc822; bob@far.test\r\nAction: failed\r\n"), "{dsn}");
    assert!(dsn.contains("Subject: out\r\n"), "{dsn}");
    // Reported and done: the queue lets it go (the filing's answer and
    // the removal follow the INBOX change closely).
    let drained = outbound.queue().drained();
    tokio::time::timeout(std::time::Duration::from_secs(30), drained).await.expect("still queued");
    assert!(outbound.queue().list().await.is_empty());
    let figures = outbound.queue().figures();
    assert_eq!((figures.messages, figures.failed, figures.bounces), (0, 1, 1));
    net.shutdown().await;
}
