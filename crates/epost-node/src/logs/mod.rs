//! Single-writer logs (POST's second service): a user's append-only logs
//! whose entries are encrypted objects in the storage network and whose
//! signed head is a Kademlia record on the K closest nodes.
//!
//! - One writer task per log on this node serialises its appends
//!   ([`writer`]): put the entry object (durable at k + m/2 fragments),
//!   then commit the entry into the lease book and the new head as this
//!   node's own in one transaction, then publish the head. A crash before
//!   the commit leaves the old head; the orphan entry is never referenced
//!   and expires with its lease. So the log is always at the old head or
//!   the new one, never broken, and every entry it names is renewed.
//! - Every 500th entry is a snapshot listing the 499 before it, so a reader
//!   walks at most 499 entries one by one and fetches the rest in parallel.
//! - Readers take the newest valid head from every holder that answers
//!   (holders already refuse forged and older heads), the owner's own copy
//!   included, and never one older than the newest they have verified
//!   before; the head names the newest entry, and each entry names its
//!   predecessor ([`walk`]).
//!
//! Normative formats: `spec/logs.md`.

mod catchup;
mod walk;
mod writer;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use epost_dht::DhtClient;
use epost_store::Store;
use epost_types::address::Address;
use epost_types::envelope::SignedEnvelope;
use epost_types::id::LogId;
use epost_types::limits::{MAX_LOG_ENTRY, MAX_LOG_NAME};
use epost_types::log::{EntryBody, EntryRef, LogEntry, LogHead, LogKey};
use epost_types::record::{self, RecordKey};
use epost_types::time::Timestamp;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use crate::chain::Chain;
use crate::identity::{HostedUser, Identity, IdentityError};
use crate::keyed::PerKey;
use crate::lease::{BookError, LeaseBook};
use crate::storage::{GetError, PutError, StorageService};
use walk::{Visit, Walk, walk};
use writer::Job;

/// Appends queued per log before callers wait.
const QUEUE: usize = 64;

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("a log name is 1 to {MAX_LOG_NAME} bytes; {len} given")]
    BadName { len: usize },
    #[error("an entry is at most {MAX_LOG_ENTRY} bytes; {len} given")]
    EntryTooLarge { len: usize },
    #[error("cannot store the entry durably: {0}")]
    Put(#[from] PutError),
    #[error("cannot read entry {seq}: {source}")]
    Get { seq: u64, source: GetError },
    #[error("entry {seq} is not what its log says it is: {detail}")]
    Corrupt { seq: u64, detail: String },
    #[error("log {name:?} of {address} has no entries (no head found)")]
    Empty { address: Address, name: String },
    #[error("cannot sign or publish the new head: {0}")]
    Head(String),
    #[error("cannot record the entry in the lease book")]
    Book(#[from] BookError),
    #[error("the log service is shutting down")]
    Stopped,
}

/// The result of an append.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct AppendReport {
    pub log: String,
    /// The entry's sequence number (snapshots take numbers too).
    pub seq: u64,
    pub entry: String,
}

/// One data entry as read back.
#[derive(Debug, Clone, Serialize)]
pub struct ReadEntry {
    pub seq: u64,
    /// Milliseconds since the UNIX epoch, as the writer stamped it.
    pub time: u64,
    #[serde(skip)]
    pub body: Vec<u8>,
}

/// A log's head as anyone can check it.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct HeadReport {
    pub address: Address,
    pub name: String,
    pub log: String,
    pub seq: u64,
    pub time: u64,
    pub newest: String,
    /// The owner's signing key (from the realm-certified certificate).
    pub signer: String,
    /// The signed head record itself, base64, for independent checking.
    pub envelope: String,
}

/// The log service. Clone freely.
#[derive(Clone)]
pub struct LogService {
    inner: Arc<Inner>,
}

struct Inner {
    storage: StorageService,
    identity: Identity,
    dht: DhtClient,
    book: LeaseBook,
    /// The overlay's records held here (heads to adopt after an upgrade).
    store: Store,
    adopted: AtomicBool,
    /// One writer task per log, the only one that appends to it.
    writers: PerKey<LogId, mpsc::Sender<Job>>,
    /// The newest head this node has verified for each log it read: a
    /// reader never goes back below it, even when only holders serving an
    /// older head (stale, or hostile) answer.
    seen: Mutex<HashMap<LogId, Vec<u8>>>,
}

/// Logs whose newest head is remembered at most (then the memory starts
/// afresh; the holders still refuse rollbacks).
const SEEN_MAX: usize = 4096;

impl LogService {
    pub fn new(
        storage: StorageService,
        identity: Identity,
        dht: DhtClient,
        book: LeaseBook,
        store: Store,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                storage,
                identity,
                dht,
                book,
                store,
                adopted: AtomicBool::new(false),
                writers: PerKey::new(),
                seen: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Appends `body` to `address`'s log `name` (the user must be hosted
    /// here); returns once the entry and the new head are stored.
    pub async fn append(
        &self,
        address: &Address,
        name: &str,
        body: Vec<u8>,
    ) -> Result<AppendReport, LogError> {
        check_name(name)?;
        if body.len() > MAX_LOG_ENTRY {
            return Err(LogError::EntryTooLarge { len: body.len() });
        }
        let user = self.inner.identity.user(address)?;
        let log = LogId::derive(&user.keys.verifying_key(), name);
        let mut job = Job { body, reply: oneshot::channel().0 };
        // A writer that just went idle may refuse the job: start a new one.
        for _attempt in 0..2 {
            let (reply, rx) = oneshot::channel();
            job.reply = reply;
            let tx = self.writer(log, &user, name)?;
            match tx.send(job).await {
                Ok(()) => return rx.await.map_err(|_| LogError::Stopped)?,
                Err(mpsc::error::SendError(back)) => job = back,
            }
        }
        Err(LogError::Stopped)
    }

    fn writer(
        &self,
        log: LogId,
        user: &Arc<HostedUser>,
        name: &str,
    ) -> Result<mpsc::Sender<Job>, LogError> {
        self.inner
            .writers
            .get_or_start(&log, || {
                let (tx, rx) = mpsc::channel(QUEUE);
                let run = writer::run(self.inner.clone(), log, user.clone(), name.to_owned(), rx);
                (tx, tokio::spawn(run))
            })
            .map_err(|_| LogError::Stopped)
    }

    /// Every data entry of `address`'s log `name`, oldest first (the user
    /// must be hosted here: entries open with keys only the owner derives).
    pub async fn read(&self, address: &Address, name: &str) -> Result<Vec<ReadEntry>, LogError> {
        self.read_back(address, name, |_| false).await
    }

    /// The data entries of `address`'s log `name` from the newest back to
    /// the newest for which `until` holds (included), oldest first; all of
    /// them if none does. Reading what followed a checkpoint costs only
    /// what followed it.
    pub async fn read_back(
        &self,
        address: &Address,
        name: &str,
        mut until: impl FnMut(&[u8]) -> bool,
    ) -> Result<Vec<ReadEntry>, LogError> {
        check_name(name)?;
        let user = self.inner.identity.user(address)?;
        let log = LogId::derive(&user.keys.verifying_key(), name);
        let log_key = LogKey::derive(&user.keys.signing, &log);
        let Some((head, _)) = self.inner.fetch_head(log).await else {
            return Ok(Vec::new());
        };
        let newest = head
            .newest_entry(&log_key)
            .map_err(|e| LogError::Corrupt { seq: head.seq, detail: e.to_string() })?;
        let mut entries = Vec::new();
        let from = Walk { log, newest: (head.seq, newest), floor: 0, open_indexed: true };
        walk(&self.inner, from, |_, _, entry| {
            let Some(LogEntry { seq, time, body: EntryBody::Data(body), .. }) = entry else {
                return Visit::More;
            };
            let found = until(body);
            entries.push(ReadEntry { seq: *seq, time: time.as_millis(), body: body.clone() });
            if found { Visit::Enough } else { Visit::More }
        })
        .await?;
        entries.reverse();
        Ok(entries)
    }

    /// A convergence secret only the owner of `address`'s log `name` can
    /// derive, for objects that belong with the log (checkpoints).
    pub fn derived_secret(
        &self,
        address: &Address,
        name: &str,
        purpose: &[u8],
    ) -> Result<epost_types::convergent::ConvergenceSecret, LogError> {
        check_name(name)?;
        let user = self.inner.identity.user(address)?;
        let log = LogId::derive(&user.keys.verifying_key(), name);
        Ok(LogKey::derive(&user.keys.signing, &log).derived_secret(purpose))
    }

    /// Registers in the lease book the entries of this node's logs it does
    /// not list yet (after an upgrade, the heads this node published are
    /// adopted first); returns how many it added.
    pub async fn register_unlisted_entries(&self) -> u64 {
        if !self.inner.adopted.swap(true, Ordering::Relaxed) {
            catchup::adopt_heads(&self.inner).await;
        }
        catchup::register_unlisted(&self.inner).await
    }

    /// The newest valid head of `address`'s log `name`, for anyone: the
    /// owner key comes from the user's realm-certified certificate.
    pub async fn head(&self, address: &Address, name: &str) -> Result<HeadReport, LogError> {
        check_name(name)?;
        let cert = self.inner.identity.lookup_certificate(address).await?;
        let log = LogId::derive(&cert.signing_key, name);
        let (head, envelope) = self
            .inner
            .fetch_head(log)
            .await
            .ok_or_else(|| LogError::Empty { address: address.clone(), name: name.to_owned() })?;
        Ok(HeadReport {
            address: address.clone(),
            name: head.name,
            log: head.log.to_string(),
            seq: head.seq,
            time: head.time.as_millis(),
            newest: head.newest.to_string(),
            signer: envelope.signer.to_string(),
            envelope: data_encoding::BASE64.encode(&envelope.encode()),
        })
    }

    /// Lets every writer finish what it was given, then returns.
    pub async fn shutdown(&self) {
        self.inner.writers.close().await;
    }
}

impl Inner {
    /// The newest valid head the holders (and this node) have, and never
    /// one older than this node has already seen.
    async fn fetch_head(&self, log: LogId) -> Option<(LogHead, SignedEnvelope)> {
        let key = RecordKey::from(log).encode();
        let found = match self.dht.get_record(&key).await {
            Ok(found) => found,
            Err(e) => {
                debug!(%log, error = %Chain(&e), "head lookup failed");
                Vec::new()
            }
        };
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner()).get(&log).cloned();
        // This node's own head of a log it writes, even if the overlay's
        // copies lapsed while it was away.
        let owned = self.book.head(log).ok().flatten().map(|h| h.envelope);
        let trust = self.identity.trusted();
        let candidates =
            found.iter().map(|r| r.value.as_slice()).chain(seen.as_deref()).chain(owned.as_deref());
        let newest = record::newest_record(&key, candidates, &trust, Timestamp::now())?;
        let envelope = SignedEnvelope::decode(newest).ok()?;
        let head = LogHead::verify(&envelope).ok()?;
        if seen.as_deref() != Some(newest) {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if seen.len() >= SEEN_MAX && !seen.contains_key(&log) {
                seen.clear();
            }
            seen.insert(log, newest.to_vec());
        }
        Some((head, envelope))
    }

    async fn fetch_entry(
        &self,
        log: &LogId,
        seq: u64,
        entry: &EntryRef,
    ) -> Result<LogEntry, LogError> {
        let ciphertext = self
            .storage
            .fetch_object(entry.id)
            .await
            .map_err(|source| LogError::Get { seq, source })?;
        epost_types::log::open_entry(entry, &ciphertext, log, seq)
            .map_err(|e| LogError::Corrupt { seq, detail: e.to_string() })
    }
}

fn check_name(name: &str) -> Result<(), LogError> {
    if name.is_empty() || name.len() > MAX_LOG_NAME {
        return Err(LogError::BadName { len: name.len() });
    }
    Ok(())
}
