//! POST's third service, event notification: the inbox holder side, and
//! thin typed calls of `/epost/notify/1` for the sender and recipient
//! sides built on top.
//!
//! A sealed notification is delivered to the [`INBOX_HOLDERS`] peers
//! closest to its inbox key (and to the recipient's home node). Each keeps
//! it durably ([`NotifyHolder`], [`buffer`]) until the recipient releases
//! it with a signed receipt or its lease ends, and hands what it holds to
//! the recipient when asked with a pull signed by the recipient's key.
//!
//! A holder learns the inbox, the recipient's signing key, an id and a
//! size, never the sender or the contents. It must never keep more than
//! its limits (per inbox, in all, per peer and second), never release or
//! show a notification to anyone but the key it is sealed for, and never
//! answer `Accepted` before what it accepted is on disk. Normative text:
//! `spec/notify.md` section 2.

mod auth;
mod buffer;
mod holder;
pub mod metrics;
mod rate;
mod sender;
mod service;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::time::Duration;

use epost_dht::{DhtClient, PeerId, RequestError};
use epost_types::envelope::SignedEnvelope;
use epost_types::limits::MAX_PENDING;
use epost_types::notify::SealedNotification;
use epost_types::wire::notify::{NotifyRefusal, NotifyRequest, NotifyResponse};

pub use auth::{PULL_AUTH_WINDOW, PullAuthError, pull_auth, verify_pull_auth};
pub use holder::{HolderStopped, NotifyHolder};
pub use metrics::NotifyMetrics;
pub use service::{Miss, NotifyError, NotifyService, Received, ReceivedCursor, SendReport};

/// How many peers closest to an inbox key buffer its notifications.
pub const INBOX_HOLDERS: usize = 8;

/// Settings of the holder. `Default` gives production values.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// Notifications a peer may deliver per second, sustained (receipts and
    /// pulls count one each).
    pub rate_per_sec: u32,
    /// How many a peer may deliver at once after being quiet. Never below
    /// one full `Deliver` (64), so a full batch can always pass.
    pub burst: u32,
    /// Pending notifications kept per inbox; more are refused `Full`.
    pub max_pending_per_inbox: usize,
    /// Pending notifications kept in all; more are refused `Full`.
    pub max_pending_total: usize,
    /// Receipted ids remembered per inbox (to drop late re-deliveries);
    /// past it the soonest to expire are forgotten.
    pub max_receipted_per_inbox: usize,
    /// The longest a notification is kept, whatever its sender asks.
    pub max_lease: Duration,
    /// How often expired notifications and receipted ids are removed.
    pub gc_interval: Duration,
    /// Peers whose send rate is tracked at once.
    pub max_tracked_peers: usize,
    /// How often the recipient side pulls from every inbox holder of its
    /// users, to catch what a lost push missed.
    pub resync_interval: Duration,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            rate_per_sec: 200,
            burst: 400,
            max_pending_per_inbox: 10_000,
            max_pending_total: 200_000,
            max_receipted_per_inbox: 10_000,
            max_lease: epost_types::time::DEFAULT_LEASE,
            gc_interval: Duration::from_secs(60),
            max_tracked_peers: 4096,
            resync_interval: Duration::from_secs(30),
        }
    }
}

/// Why notifications were not delivered to a holder.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("{source}")]
    Request {
        source: RequestError,
        /// Ids the holder had accepted in earlier batches of this call.
        accepted: Vec<[u8; 32]>,
    },
    #[error("the holder refused the notifications ({reason}): {detail}")]
    Refused {
        reason: NotifyRefusal,
        detail: String,
        /// Ids the holder had accepted in earlier batches of this call.
        accepted: Vec<[u8; 32]>,
    },
    #[error("the holder broke the protocol: {detail}")]
    Protocol { detail: String },
}

impl DeliverError {
    /// Ids the holder accepted before the failure (the caller need not
    /// send those again).
    pub fn accepted(&self) -> &[[u8; 32]] {
        match self {
            DeliverError::Request { accepted, .. } | DeliverError::Refused { accepted, .. } => {
                accepted
            }
            DeliverError::Protocol { .. } => &[],
        }
    }
}

/// Why a receipt did not reach a holder or was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SendReceiptError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("the holder refused the receipt ({reason}): {detail}")]
    Refused { reason: NotifyRefusal, detail: String },
    #[error("the holder broke the protocol: {detail}")]
    Protocol { detail: String },
}

/// Why pending notifications could not be pulled from a holder.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("the holder refused the pull ({reason}): {detail}")]
    Refused { reason: NotifyRefusal, detail: String },
    #[error("the holder broke the protocol: {detail}")]
    Protocol { detail: String },
}

/// Delivers `notifications` to the holder `peer` (in batches within the
/// protocol's limits) and returns the ids it holds now (kept, already
/// held, or already receipted). An expired notification is not kept and
/// its id not returned. Stops at the first refusal. To keep them on this
/// node itself, use [`NotifyHolder::deliver_local`] (a node does not dial
/// itself).
pub async fn deliver_to(
    dht: &DhtClient,
    peer: PeerId,
    notifications: Vec<SealedNotification>,
) -> Result<Vec<[u8; 32]>, DeliverError> {
    deliver_with(notifications, |request| dht.notify(peer, request)).await
}

/// Sends a signed receipt (an envelope of kind Receipt, signed by the
/// recipient) to the holder `peer`, which releases the ids it names.
pub async fn send_receipt(
    dht: &DhtClient,
    peer: PeerId,
    receipt: &SignedEnvelope,
) -> Result<(), SendReceiptError> {
    receipt_with(dht.notify(peer, receipt_request(receipt))).await
}

/// Up to [`MAX_PENDING`] notifications `peer` holds for `inbox`, shown for
/// `auth` (from [`pull_auth`]). A full page means there may be more: the
/// recipient receipts these and pulls again.
pub async fn pull_from(
    dht: &DhtClient,
    peer: PeerId,
    inbox: [u8; 32],
    auth: &SignedEnvelope,
) -> Result<Vec<SealedNotification>, PullError> {
    pull_with(inbox, dht.notify(peer, pull_request(inbox, auth))).await
}

pub(crate) async fn deliver_with<F, Fut>(
    notifications: Vec<SealedNotification>,
    mut send: F,
) -> Result<Vec<[u8; 32]>, DeliverError>
where
    F: FnMut(NotifyRequest) -> Fut,
    Fut: Future<Output = Result<NotifyResponse, RequestError>>,
{
    let sent: std::collections::HashSet<[u8; 32]> = notifications.iter().map(|n| n.id).collect();
    let encoded = notifications.iter().map(|n| n.encode().into()).collect();
    let mut accepted = Vec::new();
    for request in NotifyRequest::deliver_batches(encoded) {
        match send(request).await {
            Ok(NotifyResponse::Accepted { ids }) => {
                // Only what was sent counts, once.
                for id in ids {
                    if sent.contains(&id) && !accepted.contains(&id) {
                        accepted.push(id);
                    }
                }
            }
            Ok(NotifyResponse::Refused { reason, detail }) => {
                return Err(DeliverError::Refused { reason, detail, accepted });
            }
            Ok(other) => return Err(unexpected("a delivery", &other)),
            Err(source) => return Err(DeliverError::Request { source, accepted }),
        }
    }
    Ok(accepted)
}

pub(crate) fn receipt_request(receipt: &SignedEnvelope) -> NotifyRequest {
    NotifyRequest::Receipt { receipt: receipt.encode().into() }
}

pub(crate) async fn receipt_with(
    answer: impl Future<Output = Result<NotifyResponse, RequestError>>,
) -> Result<(), SendReceiptError> {
    match answer.await? {
        NotifyResponse::Done => Ok(()),
        NotifyResponse::Refused { reason, detail } => {
            Err(SendReceiptError::Refused { reason, detail })
        }
        other => Err(SendReceiptError::Protocol {
            detail: format!("answered a receipt with {}", response_name(&other)),
        }),
    }
}

pub(crate) fn pull_request(inbox: [u8; 32], auth: &SignedEnvelope) -> NotifyRequest {
    NotifyRequest::Pull { inbox, auth: auth.encode().into() }
}

pub(crate) async fn pull_with(
    inbox: [u8; 32],
    answer: impl Future<Output = Result<NotifyResponse, RequestError>>,
) -> Result<Vec<SealedNotification>, PullError> {
    let notifications = match answer.await? {
        NotifyResponse::Pending { notifications } => notifications,
        NotifyResponse::Refused { reason, detail } => {
            return Err(PullError::Refused { reason, detail });
        }
        other => {
            return Err(PullError::Protocol {
                detail: format!("answered a pull with {}", response_name(&other)),
            });
        }
    };
    if notifications.len() > MAX_PENDING {
        return Err(PullError::Protocol {
            detail: format!(
                "{} notifications in one page (at most {MAX_PENDING})",
                notifications.len()
            ),
        });
    }
    let mut out = Vec::with_capacity(notifications.len());
    for bytes in notifications {
        let sealed = SealedNotification::decode(&bytes)
            .map_err(|e| PullError::Protocol { detail: format!("a pulled notification: {e}") })?;
        if sealed.inbox != inbox {
            return Err(PullError::Protocol {
                detail: "a pulled notification belongs to another inbox".into(),
            });
        }
        out.push(sealed);
    }
    Ok(out)
}

fn unexpected(what: &str, response: &NotifyResponse) -> DeliverError {
    DeliverError::Protocol { detail: format!("answered {what} with {}", response_name(response)) }
}

fn response_name(response: &NotifyResponse) -> &'static str {
    match response {
        NotifyResponse::Accepted { .. } => "Accepted",
        NotifyResponse::Done => "Done",
        NotifyResponse::Pending { .. } => "Pending",
        NotifyResponse::Refused { .. } => "Refused",
    }
}
