//! Which Kademlia records a node keeps, and how they reach the disk.
//!
//! Records are small signed values (log heads, certificates, presence).
//! Inbound ones pass a [`RecordValidator`] before they are kept; kept ones
//! are written behind to the local record store so a restart (and its
//! rollback checks) starts from what was held, and reloaded at start.

use libp2p::kad;
use tokio::sync::mpsc;
use tracing::warn;

/// Why a record was refused.
#[derive(Debug, thiserror::Error)]
pub enum RecordRejection {
    #[error("record value is not a signed envelope: {0}")]
    Malformed(String),
    #[error("record signature is invalid")]
    BadSignature,
    #[error("record is not for this key")]
    WrongKey,
    #[error("record is older than the one held (seq {offered} <= {held})")]
    Stale { offered: u64, held: u64 },
    #[error("{0}")]
    Other(String),
}

/// Decides whether an inbound record may replace what is held at its key.
/// Services (logs, identity, presence) supply one that knows their formats.
pub trait RecordValidator: Send + Sync + 'static {
    fn validate(
        &self,
        key: &[u8],
        value: &[u8],
        current: Option<&[u8]>,
    ) -> Result<(), RecordRejection>;
}

/// The baseline rule: only a well-formed signed envelope with a valid
/// signature is kept. Services layer their own checks on top.
#[derive(Debug, Default, Clone, Copy)]
pub struct SignedEnvelopeValidator;

impl RecordValidator for SignedEnvelopeValidator {
    fn validate(
        &self,
        _key: &[u8],
        value: &[u8],
        _current: Option<&[u8]>,
    ) -> Result<(), RecordRejection> {
        let envelope = epost_types::envelope::SignedEnvelope::decode(value)
            .map_err(|e| RecordRejection::Malformed(e.to_string()))?;
        envelope.verify().map(drop).map_err(|_| RecordRejection::BadSignature)
    }
}

/// A record on its way to disk, or back from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordWrite {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// When holders stop keeping it, ms since the UNIX epoch (the clock of
    /// `epost_types::time`): its publisher's last put plus the record TTL.
    pub expires: u64,
}

/// Between the overlay's monotonic expiry instants and the wall-clock
/// lease ends kept on disk.
pub(crate) mod expiry {
    use std::time::{Duration, Instant};

    use epost_types::time::Timestamp;

    pub(crate) fn to_millis(expires: Option<Instant>) -> u64 {
        let Some(at) = expires else { return u64::MAX };
        let left = at.saturating_duration_since(Instant::now());
        Timestamp::now().saturating_add(left).as_millis()
    }

    /// `None` when the lease has ended.
    pub(crate) fn to_instant(millis: u64) -> Option<Instant> {
        let left = millis.checked_sub(Timestamp::now().as_millis()).filter(|l| *l > 0)?;
        Instant::now().checked_add(Duration::from_millis(left))
    }
}

/// The event loop's end of the write-behind queue. Never blocks: if the
/// disk falls behind, the record stays in memory (and on the other K-1
/// holders) and the miss is logged.
pub(crate) struct RecordSink {
    tx: Option<mpsc::Sender<RecordWrite>>,
}

impl RecordSink {
    pub(crate) fn new(tx: Option<mpsc::Sender<RecordWrite>>) -> Self {
        Self { tx }
    }

    pub(crate) fn save(&self, record: &kad::Record) {
        let Some(tx) = &self.tx else { return };
        let op = RecordWrite {
            key: record.key.to_vec(),
            value: record.value.clone(),
            expires: expiry::to_millis(record.expires),
        };
        if tx.try_send(op).is_err() {
            warn!(
                "record store is behind; a record is held in memory only until it is republished"
            );
        }
    }
}
