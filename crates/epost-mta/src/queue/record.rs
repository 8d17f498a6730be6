//! What the state file of one queued message holds: the envelope, each
//! recipient's fate so far, and the message's schedule. Written as JSON
//! with a version, so a later node can read an older spool.

use epost_types::time::Timestamp;
use serde::{Deserialize, Serialize};

use crate::outbound::{Recipient, Reply, Ret, Status};

/// The state format this node writes.
pub const VERSION: u32 = 1;

/// A queued message's id: its file names in the spool. Made of the
/// enqueue time and a counter, in lowercase hex, so it sorts by age.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct QueueId(pub String);

impl QueueId {
    /// Whether `text` could be an id (and so a safe file name).
    pub fn is_valid(text: &str) -> bool {
        (1..=64).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }
}

impl std::fmt::Display for QueueId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where one recipient stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RcptState {
    /// Not delivered yet; tried again at the message's next attempt.
    Pending,
    /// The remote side said `250`: never sent again.
    Delivered { host: String, reply: Reply },
    /// Refused for good, or given up on at the end of the queue lifetime.
    Failed { host: Option<String>, reply: Option<Reply>, status: Status, reason: String },
}

/// One recipient in the state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RcptRecord {
    pub recipient: Recipient,
    pub state: RcptState,
    /// Attempts made for this recipient.
    pub attempts: u32,
    /// Why the last attempt did not deliver (a deferral's reason).
    pub last_error: Option<String>,
    /// The DSN this recipient's final state asks for was filed (or none
    /// was asked for): nothing more to do for it.
    pub reported: bool,
}

impl RcptRecord {
    pub fn new(recipient: Recipient) -> Self {
        Self {
            recipient,
            state: RcptState::Pending,
            attempts: 0,
            last_error: None,
            reported: false,
        }
    }

    pub fn is_pending(&self) -> bool {
        self.state == RcptState::Pending
    }

    /// Final, and its DSN (if any) filed.
    pub fn is_done(&self) -> bool {
        !self.is_pending() && self.reported
    }
}

/// The state file of one queued message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub version: u32,
    pub id: QueueId,
    /// `MAIL FROM`; `None` is `<>` (a bounce: never bounced).
    pub reverse_path: Option<String>,
    pub recipients: Vec<RcptRecord>,
    pub envid: Option<String>,
    pub ret: Option<Ret>,
    pub smtputf8: bool,
    pub eight_bit: bool,
    /// Bytes of the (signed) message file.
    pub size: u64,
    /// SHA-256 of the message file, lowercase hex: a damaged file is told
    /// from a good one at open.
    pub sha256: String,
    pub queued_at: Timestamp,
    /// When the pending recipients are tried next.
    pub next_attempt: Timestamp,
    /// Delivery passes that tried this message.
    pub attempts: u32,
    /// The delay warning DSN has been filed (it is sent once).
    pub delay_warned: bool,
}

impl Record {
    /// Every recipient final and reported: the message can go.
    pub fn is_done(&self) -> bool {
        self.recipients.iter().all(RcptRecord::is_done)
    }

    pub fn has_pending(&self) -> bool {
        self.recipients.iter().any(RcptRecord::is_pending)
    }

    /// The newest reason a pending recipient gave, for listings.
    pub fn last_error(&self) -> Option<&str> {
        self.recipients.iter().filter_map(|r| r.last_error.as_deref()).next_back()
    }

    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings, numbers and enums always serialises.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// Reads a state file; `None` for anything this node cannot trust.
    pub fn from_json(bytes: &[u8]) -> Option<Record> {
        let record: Record = serde_json::from_slice(bytes).ok()?;
        (record.version == VERSION && QueueId::is_valid(&record.id.0)).then_some(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_names() {
        assert!(QueueId::is_valid("0193ab00000001"));
        for bad in ["", "../x", "ABC", "x", &"a".repeat(65)] {
            assert!(!QueueId::is_valid(bad), "{bad}");
        }
    }
}
