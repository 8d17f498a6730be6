//! Pull authorisation: proof that the puller holds the recipient's
//! signing key, without a format of its own. It is a Receipt envelope
//! naming no ids, with a fresh time, for the inbox pulled: a holder
//! releases nothing for it (a receipt names 1 to 256 ids), and it is only
//! good for that inbox and for [`PULL_AUTH_WINDOW`] either side of its
//! time.

use std::time::Duration;

use epost_types::cbor::{self, DecodeError};
use epost_types::envelope::{EnvelopeError, EnvelopeKind, SignedEnvelope};
use epost_types::limits::MAX_ENVELOPE_PAYLOAD;
use epost_types::notify::Receipt;
use epost_types::sign::{SigningKey, VerifyingKey};
use epost_types::time::Timestamp;

/// How far a pull authorisation's time may be from the holder's clock.
pub const PULL_AUTH_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Why a pull authorisation was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PullAuthError {
    #[error("pull authorisation envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    #[error("pull authorisation does not decode: {0}")]
    Payload(#[from] DecodeError),
    #[error("a pull authorisation names no ids, this one names {count}")]
    HasIds { count: usize },
    #[error("the pull authorisation is for another inbox")]
    WrongInbox,
    #[error("the pull authorisation's time {time} is more than 10 minutes from now ({now})")]
    Stale { time: Timestamp, now: Timestamp },
}

/// Signs a pull authorisation for `inbox` at `time` with the recipient's key.
pub fn pull_auth(
    recipient: &SigningKey,
    inbox: [u8; 32],
    time: Timestamp,
) -> Result<SignedEnvelope, EnvelopeError> {
    // `Receipt::sign` insists on at least one id; this is not a receipt.
    let payload = cbor::encode(&Receipt::new(inbox, Vec::new(), time));
    SignedEnvelope::sign(recipient, EnvelopeKind::Receipt, payload)
}

/// The key that signed `auth`, if it is a valid pull authorisation for
/// `inbox` at `now`. The holder then checks that key against the
/// recipient of what it holds.
pub fn verify_pull_auth(
    auth: &SignedEnvelope,
    inbox: [u8; 32],
    now: Timestamp,
) -> Result<VerifyingKey, PullAuthError> {
    let payload = auth.verify_kind(EnvelopeKind::Receipt)?;
    let claim: Receipt = cbor::decode(payload, MAX_ENVELOPE_PAYLOAD)?;
    if !claim.ids.is_empty() {
        return Err(PullAuthError::HasIds { count: claim.ids.len() });
    }
    if claim.inbox != inbox {
        return Err(PullAuthError::WrongInbox);
    }
    let window = u64::try_from(PULL_AUTH_WINDOW.as_millis()).unwrap_or(u64::MAX);
    if claim.time.as_millis().abs_diff(now.as_millis()) > window {
        return Err(PullAuthError::Stale { time: claim.time, now });
    }
    Ok(auth.signer)
}
