//! The outbound service: this node's durable queue of mail for other
//! domains (`epost-mta`'s queue, in `<data-dir>/outbound`), and the worker
//! that delivers it. The gateway enqueues what its submitters send to
//! foreign recipients; the worker runs a delivery pass whenever a message
//! is queued or retried and when the earliest one is due, and files the
//! DSNs in the sender's INBOX through the node's own mail delivery.
//!
//! The transport and the signer are given by the binary, typed
//! ([`SharedTransport`], [`SharedSigner`]); a node given none holds
//! [`NoTransport`] (everything deferred: "no transport configured") and
//! [`Unsigned`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use epost_mta::queue::placeholder::{NoTransport, Unsigned};
pub use epost_mta::queue::{
    DsnFileError, EnqueueError, FileDsn, ManageError, OpenError, Queue, QueueChanged, QueueConfig,
    QueueEntry, QueueFigures, QueueId, RetryRequest, SharedSigner, SharedTransport, Submission,
};
use epost_types::address::Address;
use epost_types::mailbox::{MailError, MailErrorKind, Recipient, Route};
use epost_types::time::Timestamp;
use tracing::info;

use crate::mail::MailService;
use crate::worker::{Worker, Workers};

/// The longest the worker sleeps without looking at the queue (a clock
/// that jumped, a message whose time came while it slept).
const LONGEST_SLEEP: Duration = Duration::from_secs(60);

/// How the node's outbound queue is set up.
#[derive(Debug, Clone)]
pub struct OutboundOptions {
    pub queue: QueueConfig,
    /// Where mail for other domains is handed on.
    pub transport: SharedTransport,
    /// What signs it (DKIM), once, at enqueue.
    pub signer: SharedSigner,
}

impl Default for OutboundOptions {
    fn default() -> Self {
        Self {
            queue: QueueConfig::default(),
            transport: SharedTransport::new("none", NoTransport),
            signer: SharedSigner::new("unsigned", Unsigned),
        }
    }
}

/// The queue, for the gateway, the control API and `/metrics`.
#[derive(Clone, Debug)]
pub struct OutboundService {
    queue: Queue,
}

/// Files DSNs into the sender's INBOX by the node's normal delivery.
struct Filer {
    mail: MailService,
}

impl FileDsn for Filer {
    async fn file(&self, to: &str, dsn: Vec<u8>) -> Result<(), DsnFileError> {
        // Not an address: refused for good, with the parser's reason.
        let address = to
            .parse::<Address>()
            .map_err(|e| DsnFileError::Refused { to: to.to_owned(), source: Box::new(e) })?;
        let route = self.mail.route(&address).await.map_err(|e| refusal(to, e))?;
        match route {
            Route::Local | Route::Remote => self
                .mail
                .deliver(None, &[Recipient::new(address, route)], &dsn)
                .await
                .map_err(|e| refusal(to, e)),
            Route::Foreign | Route::Unknown => Err(DsnFileError::NoSender(to.to_owned())),
        }
    }
}

/// A mail error met filing a DSN to `to`: try later, or never.
fn refusal(to: &str, e: MailError) -> DsnFileError {
    match e.kind() {
        MailErrorKind::Temporary => DsnFileError::Temporary(Box::new(e)),
        _ => DsnFileError::Refused { to: to.to_owned(), source: Box::new(e) },
    }
}

impl OutboundService {
    /// Opens the queue in `dir` and starts its worker.
    pub(crate) async fn start(
        dir: &Path,
        options: OutboundOptions,
        mail: MailService,
        workers: &Workers,
    ) -> Result<(Self, Worker), OpenError> {
        let queue = Queue::open(dir, options.queue, Arc::new(options.signer)).await?;
        let service = Self { queue: queue.clone() };
        let transport = options.transport;
        let filer = Filer { mail };
        let worker = workers.start("outbound", move |ctx| async move {
            loop {
                let wait = match queue.next_due().await {
                    Some(at) => Duration::from_millis(
                        at.as_millis().saturating_sub(Timestamp::now().as_millis()),
                    ),
                    None => LONGEST_SLEEP,
                };
                if !wait.is_zero() {
                    tokio::select! {
                        () = ctx.stop.stopped() => break,
                        () = queue.woken() => {}
                        () = tokio::time::sleep(wait.min(LONGEST_SLEEP)) => {}
                    }
                }
                if ctx.stop.stopping() {
                    break;
                }
                let _busy = ctx.busy();
                // A pass cut short by shutdown loses nothing: every
                // outcome is on disk as soon as it is known.
                let report = tokio::select! {
                    report = queue.pass(&transport, &filer) => report,
                    () = ctx.stop.stopped() => break,
                };
                if report.messages > 0 {
                    info!(
                        messages = report.messages,
                        delivered = report.delivered,
                        deferred = report.deferred,
                        failed = report.failed,
                        bounces = report.bounces,
                        "outbound delivery pass"
                    );
                }
                // Each is logged where it happened; the worker's status
                // counts them and shows the last.
                for error in &report.errors {
                    ctx.failed(error);
                }
            }
        });
        Ok((service, worker))
    }

    /// Queues a message durably (a submission's `250` may follow).
    pub async fn enqueue(&self, submission: Submission) -> Result<QueueId, EnqueueError> {
        self.queue.enqueue(submission).await
    }

    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// The queue's figures in Prometheus text.
    pub(crate) fn render(&self, out: &mut String) {
        let f = self.queue.figures();
        out.push_str(&format!(
            "# TYPE epost_outbound_queued_messages gauge\nepost_outbound_queued_messages {}\n\
             # TYPE epost_outbound_queued_bytes gauge\nepost_outbound_queued_bytes {}\n\
             # TYPE epost_outbound_deliveries_total counter\n\
             epost_outbound_deliveries_total{{outcome=\"delivered\"}} {}\n\
             epost_outbound_deliveries_total{{outcome=\"deferred\"}} {}\n\
             epost_outbound_deliveries_total{{outcome=\"failed\"}} {}\n\
             # TYPE epost_outbound_bounces_total counter\nepost_outbound_bounces_total {}\n\
             # TYPE epost_outbound_corrupt_total counter\nepost_outbound_corrupt_total {}\n",
            f.messages, f.bytes, f.delivered, f.deferred, f.failed, f.bounces, f.corrupt
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn metrics_show_what_is_queued() {
        let dir = tempfile::tempdir().unwrap();
        let queue =
            Queue::open(dir.path(), QueueConfig::default(), Arc::new(Unsigned)).await.unwrap();
        let raw = b"Subject: x\r\n\r\nhi\r\n".to_vec();
        let size = raw.len();
        queue
            .enqueue(Submission {
                reverse_path: Some("a@here.test".into()),
                recipients: vec![epost_mta::outbound::Recipient {
                    address: "b@far.test".into(),
                    notify: Default::default(),
                    orcpt: None,
                }],
                raw,
                envid: None,
                ret: None,
                signing_domain: "here.test".into(),
            })
            .await
            .unwrap();
        let mut out = String::new();
        OutboundService { queue }.render(&mut out);
        assert!(out.contains("epost_outbound_queued_messages 1\n"), "{out}");
        assert!(out.contains(&format!("epost_outbound_queued_bytes {size}\n")), "{out}");
        assert!(out.contains("epost_outbound_deliveries_total{outcome=\"deferred\"} 0\n"), "{out}");
        assert!(out.contains("epost_outbound_bounces_total 0\n"), "{out}");
    }
}
