//! Single-writer logs (POST's second service): a user's append-only logs
//! whose entries are encrypted objects in the storage network and whose
//! signed head is a Kademlia record on the K closest nodes.
//!
//! - One writer task per log on this node serialises its appends: put the
//!   entry object (durable at k + m/2 fragments), then put the new head.
//!   A crash between the two leaves the old head; the orphan entry is never
//!   referenced and expires with its lease. So the log is always at the
//!   old head or the new one, never broken.
//! - Every 500th entry is a snapshot listing the 499 before it, so a reader
//!   walks at most 499 entries one by one and fetches the rest in parallel.
//! - Readers take the newest valid head from every holder that answers
//!   (holders already refuse forged and older heads), and never one older
//!   than the newest they have verified before; the head names the newest
//!   entry, and each entry names its predecessor.
//!
//! Normative formats: `spec/logs.md`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use epost_dht::DhtClient;
use epost_types::address::Address;
use epost_types::envelope::SignedEnvelope;
use epost_types::id::LogId;
use epost_types::limits::{MAX_LOG_ENTRY, MAX_LOG_NAME};
use epost_types::log::{EntryBody, EntryRef, LogEntry, LogHead, LogKey};
use epost_types::record::{self, RecordKey};
use epost_types::time::Timestamp;
use futures::StreamExt;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::debug;

use crate::identity::{HostedUser, Identity, IdentityError};
use crate::storage::{GetError, PutError, StorageService};

/// Appends queued per log before callers wait.
const QUEUE: usize = 64;
/// A writer with nothing to do for this long stops (and restarts on demand).
const IDLE: Duration = Duration::from_secs(300);
/// Entries fetched at once when reading behind a snapshot.
const PARALLEL_FETCHES: usize = 16;

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
    #[error("the log service is shutting down")]
    Stopped,
}

/// The result of an append.
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
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

struct Job {
    body: Vec<u8>,
    reply: oneshot::Sender<Result<AppendReport, LogError>>,
}

struct Writer {
    tx: mpsc::Sender<Job>,
    task: JoinHandle<()>,
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
    writers: Mutex<Option<HashMap<LogId, Writer>>>,
    /// The newest head this node has verified for each log it read: a
    /// reader never goes back below it, even when only holders serving an
    /// older head (stale, or hostile) answer.
    seen: Mutex<HashMap<LogId, Vec<u8>>>,
}

/// Logs whose newest head is remembered at most (then the memory starts
/// afresh; the holders still refuse rollbacks).
const SEEN_MAX: usize = 4096;

/// What a writer knows about its log between appends.
struct Tail {
    seq: u64,
    newest: Option<EntryRef>,
    /// Entries after the newest snapshot, oldest first (the next
    /// snapshot's index).
    since_snapshot: Vec<EntryRef>,
    last_snapshot: Option<EntryRef>,
}

impl LogService {
    pub fn new(storage: StorageService, identity: Identity, dht: DhtClient) -> Self {
        Self {
            inner: Arc::new(Inner {
                storage,
                identity,
                dht,
                writers: Mutex::new(Some(HashMap::new())),
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
        let mut guard = self.inner.writers.lock().unwrap_or_else(|p| p.into_inner());
        let writers = guard.as_mut().ok_or(LogError::Stopped)?;
        if let Some(writer) = writers.get(&log).filter(|w| !w.tx.is_closed()) {
            return Ok(writer.tx.clone());
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        let task =
            tokio::spawn(run_writer(self.inner.clone(), log, user.clone(), name.to_owned(), rx));
        writers.insert(log, Writer { tx: tx.clone(), task });
        Ok(tx)
    }

    /// Every data entry of `address`'s log `name`, oldest first (the user
    /// must be hosted here: entries open with keys only the owner derives).
    pub async fn read(&self, address: &Address, name: &str) -> Result<Vec<ReadEntry>, LogError> {
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
        let mut entries: BTreeMap<u64, LogEntry> = BTreeMap::new();
        // Walk back one by one to the newest snapshot.
        let mut next = Some((head.seq, newest));
        let mut snapshot = None;
        while let Some((seq, entry_ref)) = next.take() {
            let entry = self.inner.fetch_entry(&log, seq, &entry_ref).await?;
            if LogEntry::is_snapshot_seq(seq) {
                snapshot = Some(entry);
                break;
            }
            next = entry.prev.clone().map(|prev| (seq - 1, prev));
            entries.insert(seq, entry);
        }
        // Behind each snapshot: its index in parallel, then the one before.
        while let Some(snap) = snapshot.take() {
            let mut wanted = Vec::new();
            let mut previous = None;
            for (seq, link) in snap.links() {
                if LogEntry::is_snapshot_seq(seq) {
                    previous = Some((seq, link.clone()));
                } else {
                    wanted.push((seq, link.clone()));
                }
            }
            let mut fetches = futures::stream::iter(wanted.into_iter().map(|(seq, link)| {
                let inner = self.inner.clone();
                async move { inner.fetch_entry(&log, seq, &link).await.map(|e| (seq, e)) }
            }))
            .buffer_unordered(PARALLEL_FETCHES);
            while let Some(fetched) = fetches.next().await {
                let (seq, entry) = fetched?;
                entries.insert(seq, entry);
            }
            if let Some((seq, link)) = previous {
                snapshot = Some(self.inner.fetch_entry(&log, seq, &link).await?);
            }
        }
        Ok(entries
            .into_values()
            .filter_map(|entry| match entry.body {
                EntryBody::Data(body) => {
                    Some(ReadEntry { seq: entry.seq, time: entry.time.as_millis(), body })
                }
                EntryBody::Snapshot { .. } => None,
            })
            .collect())
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
        let writers = self.inner.writers.lock().unwrap_or_else(|p| p.into_inner()).take();
        for (_, writer) in writers.into_iter().flatten() {
            drop(writer.tx);
            let _ = writer.task.await;
        }
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
                debug!(%log, error = %e, "head lookup failed");
                Vec::new()
            }
        };
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner()).get(&log).cloned();
        let trust = self.identity.trusted();
        let candidates = found.iter().map(|r| r.value.as_slice()).chain(seen.as_deref());
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

    /// Rebuilds a writer's view from the newest head: walks back to the
    /// newest snapshot (at most 499 entries).
    async fn load_tail(&self, log: LogId, log_key: &LogKey) -> Result<Tail, LogError> {
        let Some((head, _)) = self.fetch_head(log).await else {
            return Ok(Tail {
                seq: 0,
                newest: None,
                since_snapshot: Vec::new(),
                last_snapshot: None,
            });
        };
        let newest = head
            .newest_entry(log_key)
            .map_err(|e| LogError::Corrupt { seq: head.seq, detail: e.to_string() })?;
        let mut since_snapshot = Vec::new();
        let mut last_snapshot = None;
        let mut next = Some((head.seq, newest.clone()));
        while let Some((seq, entry_ref)) = next.take() {
            if LogEntry::is_snapshot_seq(seq) {
                last_snapshot = Some(entry_ref);
                break;
            }
            let entry = self.fetch_entry(&log, seq, &entry_ref).await?;
            since_snapshot.push(entry_ref);
            next = entry.prev.map(|prev| (seq - 1, prev));
        }
        since_snapshot.reverse();
        Ok(Tail { seq: head.seq, newest: Some(newest), since_snapshot, last_snapshot })
    }

    /// Writes entry `tail.seq + 1` and the head naming it.
    async fn write_entry(
        &self,
        user: &HostedUser,
        name: &str,
        log: LogId,
        log_key: &LogKey,
        tail: &mut Tail,
        body: EntryBody,
    ) -> Result<EntryRef, LogError> {
        let seq = tail.seq + 1;
        let entry = LogEntry::new(log, seq, tail.newest.clone(), Timestamp::now(), body);
        let sealed = epost_types::log::seal_entry(log_key, &entry)
            .map_err(|e| LogError::Corrupt { seq, detail: e.to_string() })?;
        self.storage.put_sealed_object(&sealed).await?;
        let entry_ref = sealed.capability();
        let head = LogHead::new(
            &user.keys.verifying_key(),
            name,
            seq,
            &entry_ref,
            log_key,
            Timestamp::now(),
        );
        let envelope =
            LogHead::sign(&user.keys.signing, &head).map_err(|e| LogError::Head(e.to_string()))?;
        let key = RecordKey::from(log).encode();
        match self.dht.put_record(&key, envelope.encode()).await {
            Ok(()) => {}
            // Kept here and republished by Kademlia; readers that reach
            // this node see it. Only a lone node gets this.
            Err(epost_dht::RecordError::QuorumFailed(why)) => {
                debug!(%log, seq, %why, "head stored here only for now");
            }
            Err(e) => return Err(LogError::Head(e.to_string())),
        }
        if LogEntry::is_snapshot_seq(seq) {
            tail.since_snapshot.clear();
            tail.last_snapshot = Some(entry_ref.clone());
        } else {
            tail.since_snapshot.push(entry_ref.clone());
        }
        tail.seq = seq;
        tail.newest = Some(entry_ref.clone());
        Ok(entry_ref)
    }
}

/// One log's writer: loads the tail once, then appends jobs in order.
async fn run_writer(
    inner: Arc<Inner>,
    log: LogId,
    user: Arc<HostedUser>,
    name: String,
    mut jobs: mpsc::Receiver<Job>,
) {
    let log_key = LogKey::derive(&user.keys.signing, &log);
    let mut tail: Option<Tail> = None;
    loop {
        let job = match tokio::time::timeout(IDLE, jobs.recv()).await {
            Ok(Some(job)) => job,
            Ok(None) => break,
            Err(_idle) => {
                // Close first so no job is accepted and then dropped.
                jobs.close();
                match jobs.recv().await {
                    Some(job) => job,
                    None => break,
                }
            }
        };
        let result = async {
            if tail.is_none() {
                tail = Some(inner.load_tail(log, &log_key).await?);
            }
            let Some(current) = tail.as_mut() else { return Err(LogError::Stopped) };
            if LogEntry::is_snapshot_seq(current.seq + 1) {
                let body = EntryBody::Snapshot {
                    index: current.since_snapshot.clone(),
                    state: None,
                    prev_snapshot: current.last_snapshot.clone(),
                };
                inner.write_entry(&user, &name, log, &log_key, current, body).await?;
            }
            let entry = inner
                .write_entry(&user, &name, log, &log_key, current, EntryBody::Data(job.body))
                .await?;
            Ok(AppendReport { log: log.to_string(), seq: current.seq, entry: entry.id.to_string() })
        }
        .await;
        if result.is_err() {
            // What failed may have half-happened (entry stored, head not):
            // reload from the overlay before the next append.
            tail = None;
        }
        let _ = job.reply.send(result);
    }
}

fn check_name(name: &str) -> Result<(), LogError> {
    if name.is_empty() || name.len() > MAX_LOG_NAME {
        return Err(LogError::BadName { len: name.len() });
    }
    Ok(())
}
