//! Log entries: their format, their structural rules, and their
//! encryption as ordinary storage objects.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::LogKey;
use crate::capability::Capability;
use crate::cbor::{self, DecodeError, Versioned};
use crate::convergent::{self, Kind, OpenError, SealedObject};
use crate::id::LogId;
use crate::limits::{MAX_LOG_ENTRY, MAX_LOG_SNAPSHOT, MAX_SNAPSHOT_STATE, OBJECT_OVERHEAD};
use crate::time::Timestamp;

/// The log entry format this code writes and reads.
pub const ENTRY_VERSION: u8 = 1;

/// Every entry whose sequence number is a multiple of this is a snapshot.
pub const SNAPSHOT_EVERY: u64 = 500;

/// How to read an entry: its object id and key. In CBOR the pair
/// `[id, key]`, exactly a capability, and usable as one.
pub type EntryRef = Capability;

/// One entry of a log. Construct it, [`seal_entry`] it, store the object,
/// then publish a head naming it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogEntry {
    // Fields are in CBOR key order, which is the order they are encoded in.
    pub v: u8,
    pub log: LogId,
    /// From 1, one more than the predecessor's.
    pub seq: u64,
    pub body: EntryBody,
    /// The entry `seq - 1`; absent only for entry 1.
    pub prev: Option<EntryRef>,
    pub time: Timestamp,
}

/// What an entry carries.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum EntryBody {
    /// Application bytes, at most [`MAX_LOG_ENTRY`].
    Data(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The entry at every multiple of [`SNAPSHOT_EVERY`].
    Snapshot {
        /// The entries `seq - 499 ..= seq - 1`, in order.
        index: Vec<EntryRef>,
        /// Application state as of this entry, at most
        /// [`MAX_SNAPSHOT_STATE`] bytes, so readers need not replay what
        /// came before.
        #[serde(with = "serde_bytes")]
        state: Option<Vec<u8>>,
        /// The snapshot `seq - 500`; absent only for the first snapshot.
        prev_snapshot: Option<EntryRef>,
    },
}

impl fmt::Debug for EntryBody {
    /// The contents are someone's mail folder: lengths only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryBody::Data(data) => write!(f, "Data({} bytes)", data.len()),
            EntryBody::Snapshot { index, state, prev_snapshot } => f
                .debug_struct("Snapshot")
                .field("index", &index.len())
                .field("state_len", &state.as_ref().map(Vec::len))
                .field("prev_snapshot", &prev_snapshot.as_ref().map(|r| r.id))
                .finish(),
        }
    }
}

/// Why an entry was not sealed or not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogEntryError {
    #[error("the entry object is {len} bytes; an entry object is at most {max}")]
    TooLarge { len: usize, max: usize },
    #[error("the entry object does not open: {0}")]
    Open(#[from] OpenError),
    #[error("the object is a chunk manifest, not a log entry")]
    NotAnEntry,
    #[error("the entry does not decode: {0}")]
    Decode(#[from] DecodeError),
    #[error("the entry has sequence number 0; the first entry is 1")]
    ZeroSeq,
    #[error("entry {seq} {}", if *seq == 1 { "must not name a predecessor" } else { "must name its predecessor" })]
    BadPrev { seq: u64 },
    #[error("entry {seq} {}", if *snapshot { "must be a snapshot" } else { "must not be a snapshot" })]
    BadBodyKind { seq: u64, snapshot: bool },
    #[error("the entry carries {len} bytes; at most {MAX_LOG_ENTRY} are allowed")]
    DataTooLarge { len: usize },
    #[error("the snapshot state is {len} bytes; at most {MAX_SNAPSHOT_STATE} are allowed")]
    StateTooLarge { len: usize },
    #[error("snapshot {seq} lists {len} entries; it must list the {} before it, ending with its predecessor", SNAPSHOT_EVERY - 1)]
    BadIndex { seq: u64, len: usize },
    #[error("snapshot {seq} {}", if *seq == SNAPSHOT_EVERY { "must not name a previous snapshot" } else { "must name the previous snapshot" })]
    BadPrevSnapshot { seq: u64 },
    #[error("the object is entry {found_seq} of log {found_log}, not entry {seq} of log {log}")]
    Unexpected { log: LogId, seq: u64, found_log: LogId, found_seq: u64 },
}

impl Versioned for LogEntry {
    const VERSION: u8 = ENTRY_VERSION;

    fn version(&self) -> u8 {
        self.v
    }
}

impl LogEntry {
    pub fn new(
        log: LogId,
        seq: u64,
        prev: Option<EntryRef>,
        time: Timestamp,
        body: EntryBody,
    ) -> Self {
        LogEntry { v: ENTRY_VERSION, log, seq, body, prev, time }
    }

    /// Whether the entry at `seq` must be a snapshot.
    pub const fn is_snapshot_seq(seq: u64) -> bool {
        seq.is_multiple_of(SNAPSHOT_EVERY)
    }

    /// The entries this one names, each with its sequence number: the
    /// predecessor, and for a snapshot its index and previous snapshot.
    /// A reader opens each with [`open_entry`] expecting that number.
    pub fn links(&self) -> Vec<(u64, &EntryRef)> {
        let mut out: Vec<(u64, &EntryRef)> = Vec::new();
        if let EntryBody::Snapshot { index, prev_snapshot, .. } = &self.body {
            let first = self.seq.saturating_sub(SNAPSHOT_EVERY);
            out.extend(prev_snapshot.iter().map(|r| (first, r)));
            out.extend(index.iter().enumerate().map(|(i, r)| (first + 1 + i as u64, r)));
        } else {
            out.extend(self.prev.iter().map(|r| (self.seq - 1, r)));
        }
        out
    }

    /// Checks the rules an entry obeys on its own.
    pub fn validate(&self) -> Result<(), LogEntryError> {
        let seq = self.seq;
        if self.v != ENTRY_VERSION {
            return Err(LogEntryError::Decode(DecodeError::UnsupportedVersion {
                found: self.v,
                supported: ENTRY_VERSION,
            }));
        }
        if seq == 0 {
            return Err(LogEntryError::ZeroSeq);
        }
        if self.prev.is_some() != (seq > 1) {
            return Err(LogEntryError::BadPrev { seq });
        }
        match &self.body {
            EntryBody::Data(data) => {
                if Self::is_snapshot_seq(seq) {
                    return Err(LogEntryError::BadBodyKind { seq, snapshot: true });
                }
                if data.len() > MAX_LOG_ENTRY {
                    return Err(LogEntryError::DataTooLarge { len: data.len() });
                }
            }
            EntryBody::Snapshot { index, state, prev_snapshot } => {
                if !Self::is_snapshot_seq(seq) {
                    return Err(LogEntryError::BadBodyKind { seq, snapshot: false });
                }
                // The predecessor is the index's last entry: one entry, one reference.
                if index.len() as u64 != SNAPSHOT_EVERY - 1 || index.last() != self.prev.as_ref() {
                    return Err(LogEntryError::BadIndex { seq, len: index.len() });
                }
                if prev_snapshot.is_some() != (seq > SNAPSHOT_EVERY) {
                    return Err(LogEntryError::BadPrevSnapshot { seq });
                }
                if let Some(state) = state.as_ref().filter(|s| s.len() > MAX_SNAPSHOT_STATE) {
                    return Err(LogEntryError::StateTooLarge { len: state.len() });
                }
            }
        }
        Ok(())
    }
}

/// Encrypts `entry` as a storage object: a convergent data object whose
/// convergence secret is the log key. Store `ciphertext` under `id`;
/// [`SealedObject::capability`] is the entry's [`EntryRef`].
pub fn seal_entry(log_key: &LogKey, entry: &LogEntry) -> Result<SealedObject, LogEntryError> {
    entry.validate()?;
    Ok(convergent::seal(&log_key.convergence_secret(), Kind::Data, &cbor::encode(entry)))
}

/// Opens the entry object `entry` names, which must be entry `seq` of
/// `log`: the id, the tag, the framing, the form and the rules are all
/// checked before anything is returned.
pub fn open_entry(
    entry: &EntryRef,
    ciphertext: &[u8],
    log: &LogId,
    seq: u64,
) -> Result<LogEntry, LogEntryError> {
    let max = MAX_LOG_SNAPSHOT + OBJECT_OVERHEAD;
    if ciphertext.len() > max {
        return Err(LogEntryError::TooLarge { len: ciphertext.len(), max });
    }
    let opened = convergent::open(entry, ciphertext)?;
    if opened.kind != Kind::Data {
        return Err(LogEntryError::NotAnEntry);
    }
    let decoded: LogEntry = cbor::decode(&opened.body, MAX_LOG_SNAPSHOT)?;
    decoded.validate()?;
    if decoded.log != *log || decoded.seq != seq {
        return Err(LogEntryError::Unexpected {
            log: *log,
            seq,
            found_log: decoded.log,
            found_seq: decoded.seq,
        });
    }
    Ok(decoded)
}
