//! The holder task: the one owner of the pending buffer. It answers
//! peers' `/epost/notify/1` requests (rate-limited per peer), this node's
//! own requests (not rate-limited), and the node's questions, one at a
//! time, and sweeps expired entries. Every answer is sent after the
//! change it reports is on disk.

use std::sync::Arc;

use epost_dht::{DhtClient, InboundNotify, PeerId, RequestError};
use epost_store::Store;
use epost_types::cbor;
use epost_types::envelope::{EnvelopeError, SignedEnvelope};
use epost_types::limits::MAX_ENVELOPE_PAYLOAD;
use epost_types::limits::{MAX_DELIVER, MAX_PENDING};
use epost_types::notify::{Receipt, ReceiptError, SealedNotification};
use epost_types::sign::VerifyingKey;
use epost_types::time::Timestamp;
use epost_types::wire::notify::{NotifyRefusal, NotifyRequest, NotifyResponse};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::buffer::{Buffer, BufferError};
use super::metrics::NotifyMetrics;
use super::rate::RateLimiter;
use super::{DeliverError, NotifyConfig, PullError, SendReceiptError, auth};
use crate::chain::Chain;
use crate::worker::{self, Worker, WorkerCtx, Workers};

/// Questions and local requests queued for the holder task.
const COMMAND_QUEUE: usize = 64;
/// Arrival announcements a slow recipient task may lag behind.
const ARRIVALS: usize = 256;

/// The holder task has stopped (the node is shutting down).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the notification holder has stopped")]
pub struct HolderStopped;

enum Command {
    PendingCount { inbox: [u8; 32], reply: oneshot::Sender<usize> },
    Local { request: NotifyRequest, reply: oneshot::Sender<NotifyResponse> },
}

/// The handle to this node's notification holder. Cheap to clone.
#[derive(Clone)]
pub struct NotifyHolder {
    commands: mpsc::Sender<Command>,
    arrivals: broadcast::Sender<[u8; 32]>,
    metrics: Arc<NotifyMetrics>,
}

impl NotifyHolder {
    /// Starts the holder's worker: it reloads the buffer from `store`, then
    /// answers `inbound` requests. Stopped, it stops taking requests once
    /// the one in hand is answered (a request still queued is dropped, so
    /// its sender sees a failure, never a false `Accepted`).
    pub(crate) fn start(
        config: NotifyConfig,
        dht: DhtClient,
        store: Store,
        inbound: mpsc::Receiver<InboundNotify>,
        workers: &Workers,
    ) -> (Self, Worker) {
        let metrics = Arc::new(NotifyMetrics::default());
        let (arrivals, _) = broadcast::channel(ARRIVALS);
        let (commands, commands_rx) = mpsc::channel(COMMAND_QUEUE);
        let holder =
            Holder { config, dht, store, metrics: metrics.clone(), arrivals: arrivals.clone() };
        let task = workers.start("notify-holder", |ctx| run(holder, inbound, commands_rx, ctx));
        (Self { commands, metrics, arrivals }, task)
    }

    /// Notifications held now for `inbox`.
    pub async fn pending_count(&self, inbox: &[u8; 32]) -> Result<usize, HolderStopped> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::PendingCount { inbox: *inbox, reply })
            .await
            .map_err(|_| HolderStopped)?;
        rx.await.map_err(|_| HolderStopped)
    }

    /// Inbox keys for which new notifications were just kept here (the
    /// recipient side listens for its users' inboxes). Bounded: a slow
    /// listener is told it lagged, and then checks every inbox.
    pub fn arrivals(&self) -> broadcast::Receiver<[u8; 32]> {
        self.arrivals.subscribe()
    }

    /// The holder's counters.
    pub fn metrics(&self) -> &NotifyMetrics {
        &self.metrics
    }

    /// [`deliver_to`](super::deliver_to) this node itself (when it is among
    /// an inbox's holders, or the recipient's home node).
    pub async fn deliver_local(
        &self,
        notifications: Vec<SealedNotification>,
    ) -> Result<Vec<[u8; 32]>, DeliverError> {
        super::deliver_with(notifications, |request| self.local(request)).await
    }

    /// [`send_receipt`](super::send_receipt) to this node itself.
    pub async fn receipt_local(&self, receipt: &SignedEnvelope) -> Result<(), SendReceiptError> {
        super::receipt_with(self.local(super::receipt_request(receipt))).await
    }

    /// [`pull_from`](super::pull_from) this node itself.
    pub async fn pull_local(
        &self,
        inbox: [u8; 32],
        auth: &SignedEnvelope,
    ) -> Result<Vec<SealedNotification>, PullError> {
        super::pull_with(inbox, self.local(super::pull_request(inbox, auth))).await
    }

    async fn local(&self, request: NotifyRequest) -> Result<NotifyResponse, RequestError> {
        let (reply, rx) = oneshot::channel();
        self.commands
            .send(Command::Local { request, reply })
            .await
            .map_err(|_| RequestError::Stopped)?;
        rx.await.map_err(|_| RequestError::Stopped)
    }
}

/// What the task works with, besides the buffer it builds.
struct Holder {
    arrivals: broadcast::Sender<[u8; 32]>,
    config: NotifyConfig,
    dht: DhtClient,
    store: Store,
    metrics: Arc<NotifyMetrics>,
}

async fn run(
    holder: Holder,
    mut inbound: mpsc::Receiver<InboundNotify>,
    mut commands: mpsc::Receiver<Command>,
    ctx: WorkerCtx,
) {
    let Holder { config, dht, store, metrics, arrivals } = holder;
    let now = Timestamp::now().as_millis();
    let mut buffer = match Buffer::load(store, config.clone(), now).await {
        Ok((buffer, loaded)) => {
            info!(
                pending = loaded.pending,
                receipted = loaded.receipted,
                dropped = loaded.dropped,
                "notification buffer reloaded"
            );
            buffer
        }
        Err(e) => {
            // Without its buffer the holder would answer as if it held
            // nothing; better to refuse (peers fail over to other holders).
            warn!(error = %Chain(&e), "cannot reload the notification buffer; not holding notifications");
            ctx.failed(&e);
            return;
        }
    };
    update_gauges(&metrics, &buffer);
    // A full `Deliver` must always be able to pass an idle peer's bucket.
    let burst = config.burst.max(MAX_DELIVER as u32);
    let mut limiter = RateLimiter::new(config.rate_per_sec, burst, config.max_tracked_peers);
    // Not now: the load just swept.
    let mut sweep = worker::every(config.gc_interval, false);

    loop {
        tokio::select! {
            biased;
            () = ctx.stop.stopped() => break,
            Some(InboundNotify { peer, request, reply }) = inbound.recv() => {
                let _busy = ctx.busy();
                let response = if limiter.allow(peer, cost(&request), Instant::now()) {
                    answer(&mut buffer, &metrics, &arrivals, Some(peer), request).await
                } else {
                    NotifyMetrics::inc(&metrics.rate_limited);
                    NotifyResponse::Refused {
                        reason: NotifyRefusal::RateLimited,
                        detail: format!("more than {} notifications a second", config.rate_per_sec),
                    }
                };
                dht.respond_notify(reply, response).await;
            }
            Some(command) = commands.recv() => match command {
                Command::PendingCount { inbox, reply } => {
                    let _ = reply.send(buffer.pending_count(&inbox));
                }
                Command::Local { request, reply } => {
                    let _ = reply.send(answer(&mut buffer, &metrics, &arrivals, None, request).await);
                }
            },
            _ = sweep.tick() => {
                match buffer.collect_expired(Timestamp::now().as_millis()).await {
                    Ok(n) => NotifyMetrics::add(&metrics.gc_removed, n as u64),
                    Err(e) => {
                        ctx.failed(&e);
                        warn!(error = %Chain(&e), "expired notifications not removed");
                    }
                }
                limiter.prune(Instant::now());
                update_gauges(&metrics, &buffer);
            }
        }
    }
    debug!("notification holder stopped");
}

/// Tokens a request takes from its peer's bucket.
fn cost(request: &NotifyRequest) -> u32 {
    match request {
        NotifyRequest::Deliver { notifications } => {
            u32::try_from(notifications.len()).unwrap_or(u32::MAX).max(1)
        }
        NotifyRequest::Receipt { .. } | NotifyRequest::Pull { .. } => 1,
    }
}

fn update_gauges(metrics: &NotifyMetrics, buffer: &Buffer) {
    NotifyMetrics::set(&metrics.pending, buffer.pending_total());
    NotifyMetrics::set(&metrics.receipted, buffer.receipted_total());
}

/// Answers one request. `peer` is `None` for this node's own requests.
async fn answer(
    buffer: &mut Buffer,
    metrics: &NotifyMetrics,
    arrivals: &broadcast::Sender<[u8; 32]>,
    peer: Option<PeerId>,
    request: NotifyRequest,
) -> NotifyResponse {
    let now = Timestamp::now();
    let response = match request {
        NotifyRequest::Deliver { notifications } => {
            deliver(buffer, metrics, arrivals, notifications, now.as_millis()).await
        }
        NotifyRequest::Receipt { receipt } => receipt_of(buffer, metrics, &receipt, now).await,
        NotifyRequest::Pull { inbox, auth } => pull(buffer, metrics, inbox, &auth, now).await,
    };
    update_gauges(metrics, buffer);
    if let NotifyResponse::Refused { reason, detail } = &response {
        match reason {
            NotifyRefusal::Malformed => NotifyMetrics::inc(&metrics.malformed),
            NotifyRefusal::Full => NotifyMetrics::inc(&metrics.full),
            NotifyRefusal::Unauthorized => NotifyMetrics::inc(&metrics.unauthorized),
            NotifyRefusal::Internal => NotifyMetrics::inc(&metrics.internal_errors),
            NotifyRefusal::RateLimited => NotifyMetrics::inc(&metrics.rate_limited),
        }
        debug!(peer = ?peer, %reason, %detail, "refused a notify request");
    }
    response
}

fn refused(reason: NotifyRefusal, detail: impl Into<String>) -> NotifyResponse {
    NotifyResponse::Refused { reason, detail: detail.into() }
}

async fn deliver(
    buffer: &mut Buffer,
    metrics: &NotifyMetrics,
    arrivals: &broadcast::Sender<[u8; 32]>,
    encoded: Vec<serde_bytes::ByteBuf>,
    now: u64,
) -> NotifyResponse {
    if encoded.len() > MAX_DELIVER {
        return refused(
            NotifyRefusal::Malformed,
            format!("{} notifications in one request; at most {MAX_DELIVER}", encoded.len()),
        );
    }
    // Every one is checked before anything is kept: a bad one refuses the lot.
    let mut notifications = Vec::with_capacity(encoded.len());
    for (i, bytes) in encoded.into_iter().enumerate() {
        match SealedNotification::decode(&bytes) {
            Ok(sealed) => notifications.push((sealed, bytes.into_vec())),
            Err(e) => return refused(NotifyRefusal::Malformed, format!("notification {i}: {e}")),
        }
    }
    let inboxes: std::collections::BTreeSet<[u8; 32]> =
        notifications.iter().map(|(sealed, _)| sealed.inbox).collect();
    match buffer.keep(notifications, now).await {
        Ok(kept) => {
            if kept.new > 0 {
                for inbox in inboxes {
                    // Nobody listening (no recipient service) is fine.
                    let _ = arrivals.send(inbox);
                }
            }
            NotifyMetrics::add(&metrics.kept, kept.new as u64);
            NotifyMetrics::add(&metrics.duplicates, kept.duplicates as u64);
            NotifyMetrics::add(&metrics.expired_on_arrival, kept.expired as u64);
            NotifyResponse::Accepted { ids: kept.ids }
        }
        Err(e @ (BufferError::InboxFull { .. } | BufferError::HolderFull { .. })) => {
            refused(NotifyRefusal::Full, e.to_string())
        }
        Err(e @ BufferError::Store(_)) => {
            warn!(error = %Chain(&e), "notifications not kept");
            refused(NotifyRefusal::Internal, e.to_string())
        }
    }
}

async fn receipt_of(
    buffer: &mut Buffer,
    metrics: &NotifyMetrics,
    encoded: &[u8],
    now: Timestamp,
) -> NotifyResponse {
    let envelope = match SignedEnvelope::decode(encoded) {
        Ok(envelope) => envelope,
        Err(e) => return refused(NotifyRefusal::Malformed, format!("receipt: {e}")),
    };
    // Unverified, only to learn which inbox's recipient must have signed it.
    let claimed: Receipt = match cbor::decode(&envelope.payload, MAX_ENVELOPE_PAYLOAD) {
        Ok(receipt) => receipt,
        Err(e) => return refused(NotifyRefusal::Malformed, format!("receipt: {e}")),
    };
    let recipients = buffer.recipients(&claimed.inbox);
    let Some(expected) = expected_key(&recipients, &envelope.signer) else {
        // Nothing held there, so nothing to release and no key to check
        // it against: done, and nothing remembered.
        return NotifyResponse::Done;
    };
    let receipt = match Receipt::verify(&envelope, &expected) {
        Ok(receipt) => receipt,
        Err(
            e @ (ReceiptError::WrongSigner { .. }
            | ReceiptError::Envelope(EnvelopeError::BadSignature)),
        ) => {
            return refused(NotifyRefusal::Unauthorized, e.to_string());
        }
        Err(e) => return refused(NotifyRefusal::Malformed, e.to_string()),
    };
    match buffer.release(&receipt.inbox, expected, &receipt.ids, now.as_millis()).await {
        Ok(released) => {
            NotifyMetrics::inc(&metrics.receipts);
            NotifyMetrics::add(&metrics.released, released as u64);
            NotifyResponse::Done
        }
        Err(e) => {
            warn!(error = %Chain(&e), "receipt not applied");
            refused(NotifyRefusal::Internal, e.to_string())
        }
    }
}

/// The key a receipt or pull at an inbox must be signed by: its signer if
/// that is one of the inbox's recipients, else one of them (so the check
/// fails naming it). `None` when the inbox holds nothing.
fn expected_key(recipients: &[VerifyingKey], signer: &VerifyingKey) -> Option<VerifyingKey> {
    if recipients.contains(signer) { Some(*signer) } else { recipients.first().copied() }
}

async fn pull(
    buffer: &mut Buffer,
    metrics: &NotifyMetrics,
    inbox: [u8; 32],
    encoded: &[u8],
    now: Timestamp,
) -> NotifyResponse {
    let envelope = match SignedEnvelope::decode(encoded) {
        Ok(envelope) => envelope,
        Err(e) => return refused(NotifyRefusal::Malformed, format!("pull authorisation: {e}")),
    };
    let signer = match auth::verify_pull_auth(&envelope, inbox, now) {
        Ok(signer) => signer,
        Err(e) => return refused(NotifyRefusal::Unauthorized, e.to_string()),
    };
    let recipients = buffer.recipients(&inbox);
    if !recipients.is_empty() && !recipients.contains(&signer) {
        return refused(
            NotifyRefusal::Unauthorized,
            format!("the pull is signed by {signer}, not by this inbox's recipient"),
        );
    }
    match buffer.page(&inbox, &signer, MAX_PENDING, now.as_millis()).await {
        Ok(page) => {
            NotifyMetrics::inc(&metrics.pulls);
            NotifyMetrics::add(&metrics.served, page.len() as u64);
            NotifyResponse::Pending { notifications: page.into_iter().map(Into::into).collect() }
        }
        Err(e) => {
            warn!(error = %Chain(&e), "pull not answered");
            refused(NotifyRefusal::Internal, e.to_string())
        }
    }
}
