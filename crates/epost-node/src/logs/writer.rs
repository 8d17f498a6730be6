//! One log's writer: loads its view of the log once, then appends in
//! order. An append stores the entry object (durable at k + m/2
//! fragments), then commits, in one local transaction, the entry into the
//! lease book and the new signed head as this node's own; only then is
//! the head published, and the append acknowledged. A crash before that
//! commit leaves an orphan entry nothing references, which expires with
//! its lease; after it, the head is this node's and is published by the
//! next renewal pass if the overlay did not take it now.

use std::sync::Arc;
use std::time::Duration;

use epost_types::id::LogId;
use epost_types::log::{EntryBody, EntryRef, LogEntry, LogHead, LogKey};
use epost_types::record::RecordKey;
use epost_types::time::Timestamp;
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use super::walk::{Visit, Walk, walk};
use super::{AppendReport, Inner, LogError};
use crate::chain::Chain;
use crate::identity::HostedUser;
use crate::lease::{Change, HeadUpdate, NewRoot, OwnerId, RootKind};

/// A writer with nothing to do for this long stops (and restarts on demand).
const IDLE: Duration = Duration::from_secs(300);

pub(super) struct Job {
    pub(super) body: Vec<u8>,
    pub(super) reply: oneshot::Sender<Result<AppendReport, LogError>>,
}

/// What a writer knows about its log between appends.
struct Tail {
    seq: u64,
    newest: Option<EntryRef>,
    /// Entries after the newest snapshot, oldest first (the next
    /// snapshot's index).
    since_snapshot: Vec<EntryRef>,
    last_snapshot: Option<EntryRef>,
}

/// One log's writer: loads the tail once, then appends jobs in order.
pub(super) async fn run(
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
                tail = Some(load_tail(&inner, log, &log_key).await?);
            }
            let Some(current) = tail.as_mut() else { return Err(LogError::Stopped) };
            if LogEntry::is_snapshot_seq(current.seq + 1) {
                let body = EntryBody::Snapshot {
                    index: current.since_snapshot.clone(),
                    state: None,
                    prev_snapshot: current.last_snapshot.clone(),
                };
                write_entry(&inner, &user, &name, log, &log_key, current, body).await?;
            }
            let entry = write_entry(
                &inner,
                &user,
                &name,
                log,
                &log_key,
                current,
                EntryBody::Data(job.body),
            )
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

/// Rebuilds a writer's view from the newest head: walks back to the
/// newest snapshot (at most 499 entries).
async fn load_tail(inner: &Inner, log: LogId, log_key: &LogKey) -> Result<Tail, LogError> {
    let Some((head, _)) = inner.fetch_head(log).await else {
        return Ok(Tail { seq: 0, newest: None, since_snapshot: Vec::new(), last_snapshot: None });
    };
    let newest = head
        .newest_entry(log_key)
        .map_err(|e| LogError::Corrupt { seq: head.seq, detail: e.to_string() })?;
    let mut since_snapshot = Vec::new();
    let mut last_snapshot = None;
    let from = Walk { log, newest: (head.seq, newest.clone()), floor: 0, open_indexed: false };
    walk(inner, from, |seq, entry_ref, _| {
        if LogEntry::is_snapshot_seq(seq) {
            last_snapshot = Some(entry_ref.clone());
            return Visit::Enough;
        }
        since_snapshot.push(entry_ref.clone());
        Visit::More
    })
    .await?;
    since_snapshot.reverse();
    Ok(Tail { seq: head.seq, newest: Some(newest), since_snapshot, last_snapshot })
}

/// Writes entry `tail.seq + 1` and the head naming it.
async fn write_entry(
    inner: &Inner,
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
    let expires = inner.storage.put_sealed_object(&sealed).await?;
    let entry_ref = sealed.capability();
    let head =
        LogHead::new(&user.keys.verifying_key(), name, seq, &entry_ref, log_key, Timestamp::now());
    let envelope =
        LogHead::sign(&user.keys.signing, &head).map_err(|e| LogError::Head(e.to_string()))?;
    let owner = user.keys.address.clone();
    // The commit point: the entry is in the lease book and the head is
    // this node's, together.
    inner
        .book
        .change(Change {
            owner: Some(OwnerId::logs(&owner)),
            add: vec![NewRoot {
                id: entry_ref.id,
                kind: RootKind::LogEntry,
                capability: None,
                members: Some(Vec::new()),
                expires,
            }],
            head: Some(HeadUpdate::Appended {
                log,
                owner,
                name: name.to_owned(),
                envelope: envelope.encode(),
                seq,
            }),
            ..Change::default()
        })
        .await?;
    let key = RecordKey::from(log).encode();
    if let Err(e) = inner.dht.put_record(&key, envelope.encode()).await {
        // Committed here: holders get it from the next republish.
        debug!(%log, seq, error = %Chain(&e), "head kept here; published at the next renewal");
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
