//! The queue as the control API and `epost queue` show and steer it:
//! the request and reply types the node and the CLI share.

use epost_types::time::Timestamp;
use serde::{Deserialize, Serialize};

use super::record::{QueueId, RcptState, Record};

/// One queued message (`GET /v1/queue`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    pub id: QueueId,
    /// `MAIL FROM`; empty for `<>`.
    pub from: String,
    pub recipients: Vec<RcptEntry>,
    /// Bytes of the signed message.
    pub size: u64,
    pub queued_at: Timestamp,
    /// Delivery passes that tried it.
    pub attempts: u32,
    pub next_attempt: Timestamp,
    /// The newest reason a recipient was not delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// One recipient of a queued message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RcptEntry {
    pub address: String,
    #[serde(flatten)]
    pub state: RcptState,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl From<&Record> for QueueEntry {
    fn from(record: &Record) -> Self {
        Self {
            id: record.id.clone(),
            from: record.reverse_path.clone().unwrap_or_default(),
            recipients: record
                .recipients
                .iter()
                .map(|r| RcptEntry {
                    address: r.recipient.address.clone(),
                    state: r.state.clone(),
                    attempts: r.attempts,
                    last_error: r.last_error.clone(),
                })
                .collect(),
            size: record.size,
            queued_at: record.queued_at,
            attempts: record.attempts,
            next_attempt: record.next_attempt,
            last_error: record.last_error().map(str::to_owned),
        }
    }
}

/// `POST /v1/queue/retry`: try now one message, or all (`id` absent).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    #[serde(default)]
    pub id: Option<QueueId>,
}

/// What a retry or a delete touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueChanged {
    /// Messages it applied to.
    pub messages: usize,
}
