//! Bounded waits on events, never on sleep: mail reaching an INBOX, an
//! overlay event. The `await_` ones are a test's assertions: they panic
//! with what never happened.

use std::time::Duration;

use epost_dht::DhtEvent;
use epost_node::mail::Mailbox;
use tokio::sync::broadcast;

/// Waits, at most `within`, until `mailbox`'s INBOX holds `n` messages;
/// whether it did.
pub async fn inbox_reaches(mailbox: &Mailbox, n: usize, within: Duration) -> bool {
    let mut changes = mailbox.changes();
    let wait = async {
        loop {
            if mailbox.folder("INBOX").await.is_ok_and(|f| f.messages.len() >= n) {
                return;
            }
            let _ = changes.recv().await;
        }
    };
    tokio::time::timeout(within, wait).await.is_ok()
}

/// Waits until `mailbox`'s INBOX holds `n` messages; panics after a
/// minute.
pub async fn await_inbox(mailbox: &Mailbox, n: usize) {
    assert!(inbox_reaches(mailbox, n, Duration::from_secs(60)).await, "mail never arrived");
}

/// Waits for the first overlay event that `wanted` accepts (missed ones
/// are skipped); panics after 30 s or if the overlay stops.
pub async fn await_event(
    events: &mut broadcast::Receiver<DhtEvent>,
    wanted: impl Fn(&DhtEvent) -> bool,
) {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(event) if wanted(&event) => return,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("overlay stopped"),
            }
        }
    };
    let came = tokio::time::timeout(Duration::from_secs(30), wait).await;
    assert!(came.is_ok(), "event never came");
}
