//! The durable outbound queue: mail for other domains waits here, on the
//! node whose gateway took it, until each recipient is delivered or
//! given up on. A submission's `250` means [`Queue::enqueue`] returned:
//! the signed message and its state are fsynced in the [`spool`].
//!
//! - [`record`]: what the state file of a message holds;
//! - [`spool`]: the files, written atomically, checked at open;
//! - [`schedule`]: backoff, delay warning and lifetime, pure;
//! - [`notices`]: which DSNs a message's state asks for, pure;
//! - [`pass`]: one delivery pass over the due messages;
//! - [`listing`]: the control API's view (list, retry, delete);
//! - [`erased`], [`placeholder`]: transports and signers behind an `Arc`,
//!   and stand-ins for a node given none.
//!
//! The queue never sends a message twice to a recipient recorded as
//! delivered, never bounces a bounce, and never grows beyond its limits
//! (an enqueue past them is refused with a temporary error).

pub mod erased;
pub mod listing;
pub mod notices;
pub mod pass;
pub mod placeholder;
pub mod record;
pub mod schedule;
pub mod spool;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use epost_types::time::Timestamp;
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::outbound::{Recipient, Ret, Sign, SignError};
pub use erased::{SharedSigner, SharedTransport};
pub use listing::{QueueChanged, QueueEntry, RcptEntry, RetryRequest};
pub use pass::{DsnFileError, FileDsn, PassError, PassReport};
pub use record::{QueueId, RcptRecord, RcptState, Record};
pub use schedule::Schedule;
use spool::{Spool, SpoolError};

/// How big the queue may grow and how it delivers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueConfig {
    /// Most messages queued; an enqueue beyond is refused (temporary).
    pub max_messages: usize,
    /// Most bytes of queued messages; an enqueue beyond is refused.
    pub max_bytes: u64,
    pub schedule: Schedule,
    /// Most deliveries at once to one domain.
    pub per_domain: usize,
    /// Most deliveries at once in all.
    pub total: usize,
    /// This node's name, as DSNs give it (`Reporting-MTA`).
    pub hostname: String,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            max_messages: 10_000,
            max_bytes: 1 << 30,
            schedule: Schedule::default(),
            per_domain: 4,
            total: 16,
            hostname: "localhost".into(),
        }
    }
}

/// A message to queue.
#[derive(Debug, Clone)]
pub struct Submission {
    /// `MAIL FROM`; `None` is `<>`.
    pub reverse_path: Option<String>,
    pub recipients: Vec<Recipient>,
    /// The message as received (with our trace header), CRLF line ends.
    pub raw: Vec<u8>,
    pub envid: Option<String>,
    pub ret: Option<Ret>,
    /// The domain whose DKIM key signs it: the sender's (the submitter's
    /// for `<>`).
    pub signing_domain: String,
}

/// Why a message was not queued. Every one but `NoRecipients` is
/// temporary for the client (`451`): it may try again later.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    #[error("the outbound queue is full ({messages} messages, {bytes} bytes queued)")]
    Full { messages: usize, bytes: u64 },
    /// No DKIM key for the sender's domain on this node (`451 4.3.5`).
    #[error("cannot sign the message: {0}")]
    Sign(#[source] SignError),
    #[error("a message to queue needs a recipient")]
    NoRecipients,
    #[error("cannot write the message to the outbound queue")]
    Spool(#[source] SpoolError),
    #[error("the outbound queue's disk task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// Why the queue could not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open the outbound queue")]
    Spool(#[source] SpoolError),
    #[error("the outbound queue's disk task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// Why a management request failed.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("no queued message {0}")]
    NoSuchMessage(QueueId),
    #[error("cannot update the outbound queue")]
    Spool(#[source] SpoolError),
    #[error("the outbound queue's disk task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    pub delivered: AtomicU64,
    pub deferred: AtomicU64,
    pub failed: AtomicU64,
    pub bounces: AtomicU64,
    pub corrupt: AtomicU64,
}

/// The queue's figures now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueFigures {
    pub messages: usize,
    pub bytes: u64,
    pub delivered: u64,
    pub deferred: u64,
    pub failed: u64,
    pub bounces: u64,
    /// Messages moved to `corrupt/` since start.
    pub corrupt: u64,
}

/// One queued message in memory: its state, and whether it was deleted
/// while a pass held it.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) record: Record,
    pub(crate) removed: bool,
}

type SlotRef = Arc<tokio::sync::Mutex<Slot>>;

struct Inner {
    spool: Spool,
    config: QueueConfig,
    signer: Arc<dyn Sign>,
    /// Every queued message. The std mutex is never held across an await;
    /// a slot's own mutex serialises its state writes.
    index: Mutex<BTreeMap<QueueId, SlotRef>>,
    /// Messages and bytes queued, reserved before the files are written;
    /// a watch, so that [`Queue::drained`] can wait for it.
    usage: tokio::sync::watch::Sender<(usize, u64)>,
    wake: tokio::sync::Notify,
    next_id: AtomicU64,
    counters: Counters,
    clock: Clock,
}

/// Where the queue reads the time: [`Timestamp::now`] (which honours
/// `EPOST_CLOCK_SKEW_SECS`), or a test's own clock.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The queue. Clone freely; every clone is the same queue.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("figures", &self.figures()).finish()
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    tokio::task::spawn_blocking(work).await
}

impl Queue {
    /// Opens (or makes) the spool in `dir` and loads what it holds:
    /// message files without a state are removed, states that cannot be
    /// trusted are moved to `corrupt/` and counted.
    pub async fn open(
        dir: &Path,
        config: QueueConfig,
        signer: Arc<dyn Sign>,
    ) -> Result<Self, OpenError> {
        Self::open_with_clock(dir, config, signer, Arc::new(Timestamp::now)).await
    }

    /// [`Queue::open`] with another clock (tests live through days).
    pub async fn open_with_clock(
        dir: &Path,
        config: QueueConfig,
        signer: Arc<dyn Sign>,
        clock: Clock,
    ) -> Result<Self, OpenError> {
        let dir = dir.to_path_buf();
        let (spool, loaded) = blocking(move || {
            let spool = Spool::create(&dir)?;
            let loaded = spool.load()?;
            Ok::<_, SpoolError>((spool, loaded))
        })
        .await
        .map_err(OpenError::Task)?
        .map_err(OpenError::Spool)?;
        if loaded.orphans + loaded.corrupt > 0 || !loaded.records.is_empty() {
            info!(
                queued = loaded.records.len(),
                orphans_removed = loaded.orphans,
                corrupt = loaded.corrupt,
                "outbound queue opened"
            );
        }
        let usage = (loaded.records.len(), loaded.records.iter().map(|r| r.size).sum());
        let index = loaded
            .records
            .into_iter()
            .map(|record| {
                (
                    record.id.clone(),
                    Arc::new(tokio::sync::Mutex::new(Slot { record, removed: false })),
                )
            })
            .collect();
        let counters = Counters::default();
        counters.corrupt.store(loaded.corrupt as u64, Ordering::Relaxed);
        Ok(Self {
            inner: Arc::new(Inner {
                spool,
                config,
                signer,
                index: Mutex::new(index),
                usage: tokio::sync::watch::Sender::new(usage),
                wake: tokio::sync::Notify::new(),
                next_id: AtomicU64::new(0),
                counters,
                clock,
            }),
        })
    }

    pub(crate) fn now(&self) -> Timestamp {
        (self.inner.clock)()
    }

    pub fn config(&self) -> &QueueConfig {
        &self.inner.config
    }

    /// Signs `submission` and stores it durably; once this returns `Ok`
    /// the message is queued (a submission may say `250`), and the worker
    /// is woken.
    pub async fn enqueue(&self, submission: Submission) -> Result<QueueId, EnqueueError> {
        if submission.recipients.is_empty() {
            return Err(EnqueueError::NoRecipients);
        }
        let header = self
            .inner
            .signer
            .sign(&submission.signing_domain, &submission.raw)
            .map_err(EnqueueError::Sign)?;
        let mut signed = header;
        signed.extend_from_slice(&submission.raw);
        let size = signed.len() as u64;
        self.reserve(size)?;
        let now = self.now();
        let id = self.new_id(now);
        let record = Record {
            version: record::VERSION,
            id: id.clone(),
            smtputf8: needs_smtputf8(&submission, &signed),
            eight_bit: signed.iter().any(|b| *b >= 0x80),
            reverse_path: submission.reverse_path,
            recipients: submission.recipients.into_iter().map(RcptRecord::new).collect(),
            envid: submission.envid,
            ret: submission.ret,
            size,
            sha256: spool::digest(&signed),
            queued_at: now,
            next_attempt: now,
            attempts: 0,
            delay_warned: false,
        };
        let spool = self.inner.spool.clone();
        let stored = record.clone();
        let written = blocking(move || {
            spool.write_message(&stored.id, &signed)?;
            // The commit point: from here on the message is queued.
            spool.write_state(&stored).inspect_err(|_| spool.remove_message(&stored.id))
        })
        .await;
        let written = match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(EnqueueError::Spool(e)),
            Err(e) => Err(EnqueueError::Task(e)),
        };
        if let Err(e) = written {
            self.release(size);
            return Err(e);
        }
        self.lock_index()
            .insert(id.clone(), Arc::new(tokio::sync::Mutex::new(Slot { record, removed: false })));
        self.inner.wake.notify_one();
        Ok(id)
    }

    fn reserve(&self, size: u64) -> Result<(), EnqueueError> {
        let mut refused = None;
        self.inner.usage.send_if_modified(|usage| {
            let (messages, bytes) = *usage;
            if messages >= self.inner.config.max_messages
                || bytes.saturating_add(size) > self.inner.config.max_bytes
            {
                refused = Some(EnqueueError::Full { messages, bytes });
                return false;
            }
            *usage = (messages + 1, bytes + size);
            true
        });
        refused.map_or(Ok(()), Err)
    }

    fn release(&self, size: u64) {
        self.inner.usage.send_modify(|usage| {
            usage.0 = usage.0.saturating_sub(1);
            usage.1 = usage.1.saturating_sub(size);
        });
    }

    /// Returns once nothing is queued (or being queued).
    pub async fn drained(&self) {
        let mut usage = self.inner.usage.subscribe();
        // The sender lives in `self`, so the wait ends only by the count.
        let _ = usage.wait_for(|(messages, _)| *messages == 0).await;
    }

    fn new_id(&self, now: Timestamp) -> QueueId {
        // Milliseconds, then a counter: unique within this process; a
        // clock set back across a restart could repeat one, so an id
        // still queued is skipped (its files must never be overwritten).
        loop {
            let n = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
            let id = QueueId(format!("{:012x}{:06x}", now.as_millis(), n & 0xff_ffff));
            if !self.lock_index().contains_key(&id) {
                return id;
            }
        }
    }

    fn lock_index(&self) -> std::sync::MutexGuard<'_, BTreeMap<QueueId, SlotRef>> {
        self.inner.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn slots(&self) -> Vec<SlotRef> {
        self.lock_index().values().cloned().collect()
    }

    /// Resolves when a message was queued or retried (the worker's wake).
    pub async fn woken(&self) {
        self.inner.wake.notified().await
    }

    /// When the earliest queued message is due, if any is queued.
    pub async fn next_due(&self) -> Option<Timestamp> {
        let mut earliest = None;
        for slot in self.slots() {
            let at = slot.lock().await.record.next_attempt;
            earliest = Some(earliest.map_or(at, |e: Timestamp| e.min(at)));
        }
        earliest
    }

    /// Every queued message, oldest first.
    pub async fn list(&self) -> Vec<QueueEntry> {
        let mut out = Vec::new();
        for slot in self.slots() {
            out.push(QueueEntry::from(&slot.lock().await.record));
        }
        out
    }

    /// Makes one message (or every one) due now, and wakes the worker.
    pub async fn retry(&self, id: Option<&QueueId>) -> Result<QueueChanged, ManageError> {
        let slots = match id {
            Some(id) => vec![
                self.lock_index()
                    .get(id)
                    .cloned()
                    .ok_or_else(|| ManageError::NoSuchMessage(id.clone()))?,
            ],
            None => self.slots(),
        };
        let now = self.now();
        let mut messages = 0;
        for slot in slots {
            let mut slot = slot.lock().await;
            if slot.removed {
                continue;
            }
            slot.record.next_attempt = now;
            self.persist(&slot.record).await.map_err(|e| match e {
                Persist::Spool(e) => ManageError::Spool(e),
                Persist::Task(e) => ManageError::Task(e),
            })?;
            messages += 1;
        }
        self.inner.wake.notify_one();
        Ok(QueueChanged { messages })
    }

    /// Takes a message out of the queue without a bounce: deleting is the
    /// operator's decision, and the operator tells the sender if needed.
    pub async fn delete(&self, id: &QueueId) -> Result<QueueChanged, ManageError> {
        let slot = self
            .lock_index()
            .get(id)
            .cloned()
            .ok_or_else(|| ManageError::NoSuchMessage(id.clone()))?;
        let mut slot = slot.lock().await;
        if slot.removed {
            return Err(ManageError::NoSuchMessage(id.clone()));
        }
        self.remove(&mut slot).await.map_err(|e| match e {
            Persist::Spool(e) => ManageError::Spool(e),
            Persist::Task(e) => ManageError::Task(e),
        })?;
        Ok(QueueChanged { messages: 1 })
    }

    /// Writes a message's state durably.
    pub(crate) async fn persist(&self, record: &Record) -> Result<(), Persist> {
        let spool = self.inner.spool.clone();
        let record = record.clone();
        blocking(move || spool.write_state(&record))
            .await
            .map_err(Persist::Task)?
            .map_err(Persist::Spool)
    }

    /// Removes a message's files and forgets it.
    pub(crate) async fn remove(&self, slot: &mut Slot) -> Result<(), Persist> {
        let spool = self.inner.spool.clone();
        let id = slot.record.id.clone();
        blocking(move || spool.remove(&id))
            .await
            .map_err(Persist::Task)?
            .map_err(Persist::Spool)?;
        slot.removed = true;
        self.lock_index().remove(&slot.record.id);
        self.release(slot.record.size);
        Ok(())
    }

    /// Reads a queued message's bytes.
    pub(crate) async fn read(&self, record: &Record) -> Result<Vec<u8>, Persist> {
        let spool = self.inner.spool.clone();
        let record = record.clone();
        blocking(move || spool.read_message(&record))
            .await
            .map_err(Persist::Task)?
            .map_err(Persist::Spool)
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.inner.counters
    }

    /// What the queue holds now, and what it did since start.
    pub fn figures(&self) -> QueueFigures {
        let (messages, bytes) = *self.inner.usage.borrow();
        let c = &self.inner.counters;
        QueueFigures {
            messages,
            bytes,
            delivered: c.delivered.load(Ordering::Relaxed),
            deferred: c.deferred.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            bounces: c.bounces.load(Ordering::Relaxed),
            corrupt: c.corrupt.load(Ordering::Relaxed),
        }
    }
}

/// A state write or read that failed inside a pass or a request.
#[derive(Debug, thiserror::Error)]
pub enum Persist {
    #[error(transparent)]
    Spool(SpoolError),
    #[error("the outbound queue's disk task failed")]
    Task(#[source] tokio::task::JoinError),
}

/// Whether the envelope or the header has non-ASCII (RFC 6531).
fn needs_smtputf8(submission: &Submission, signed: &[u8]) -> bool {
    let header_end =
        signed.windows(4).position(|w| w == b"\r\n\r\n").map_or(signed.len(), |p| p + 2);
    !submission.reverse_path.as_deref().unwrap_or("").is_ascii()
        || submission.recipients.iter().any(|r| !r.address.is_ascii())
        || !signed[..header_end].is_ascii()
}

/// The domain of an address: what follows its last `@`, lowercased.
pub fn domain_of(address: &str) -> String {
    address.rsplit_once('@').map_or(address, |(_, d)| d).to_ascii_lowercase()
}
