//! Single-writer logs: a user's folders and state as append-only chains
//! of encrypted entries, whose signed head lives in the DHT.
//!
//! - The **log id** is SHA-256(owner key || name) ([`LogId`]), so only the
//!   owner can sign a head that holders accept for it.
//! - The **log key** ([`LogKey`]) is derived from the owner's signing
//!   seed and the log id: only the owner can compute it; whoever is given
//!   it can read the log.
//! - Each **entry** ([`LogEntry`]) is an ordinary storage object,
//!   convergent-encrypted with the log key as the convergence secret, so
//!   its key depends on its plaintext and no key ever encrypts two
//!   plaintexts. Each entry names its predecessor by id and key; every
//!   500th entry is a snapshot listing the 499 entries before it, so a
//!   reader walks back to the newest snapshot and then fetches the rest in
//!   parallel.
//! - The **head** ([`LogHead`]) names the newest entry's id and carries its
//!   key wrapped under the log key, signed by the owner. Holders keep the
//!   head with the highest sequence number (see [`crate::record`]).
//!
//! Normative text: `spec/logs.md`.

mod entry;

pub use entry::{
    ENTRY_VERSION, EntryBody, EntryRef, LogEntry, LogEntryError, SNAPSHOT_EVERY, open_entry,
    seal_entry,
};

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::capability::{Capability, ObjectKey};
use crate::cbor::{self, DecodeError, Versioned};
use crate::convergent::ConvergenceSecret;
use crate::envelope::{EnvelopeError, EnvelopeKind, SignedEnvelope};
use crate::id::{LogId, ObjectId};
use crate::limits::{MAX_ENVELOPE_PAYLOAD, MAX_LOG_NAME};
use crate::sign::{SigningKey, VerifyingKey};
use crate::symmetric;
use crate::time::Timestamp;

/// The log head format this code writes and reads.
pub const HEAD_VERSION: u8 = 1;

/// HKDF salt of the log key.
pub const LOG_KEY_SALT: &[u8] = b"epost/v1/log-key";

/// Salt of [`LogKey::derived_secret`].
pub const DERIVED_SECRET_SALT: &[u8] = b"epost/v1/log-derived-secret";

/// AES-GCM associated data of a wrapped entry key.
pub const KEY_WRAP_AAD: &[u8] = b"epost/v1/log-key-wrap";

/// Length of a wrapped entry key: the 32-byte key and a 16-byte tag.
pub const WRAPPED_KEY_LEN: usize = 32 + symmetric::TAG_LEN;

/// The secret of one log: the convergence secret of its entries and the
/// key that wraps the head's entry key. Zeroized on drop; `Debug` never
/// shows it.
#[derive(Clone)]
pub struct LogKey(Zeroizing<[u8; 32]>);

impl LogKey {
    /// HKDF-SHA256(salt = "epost/v1/log-key", IKM = owner's signing seed,
    /// info = log id): only the owner can compute it.
    pub fn derive(owner: &SigningKey, log: &LogId) -> Self {
        let seed = owner.seed_bytes();
        LogKey(symmetric::hkdf_sha256(LOG_KEY_SALT, seed.as_ref(), log.as_bytes()))
    }

    /// A log key handed over by its owner (to another of their devices).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        LogKey(Zeroizing::new(bytes))
    }

    /// A convergence secret for objects only this log's owner reads (a
    /// mail-state checkpoint): HKDF-SHA256 of the log key with `purpose`.
    pub fn derived_secret(&self, purpose: &[u8]) -> crate::convergent::ConvergenceSecret {
        let secret = symmetric::hkdf_sha256(DERIVED_SECRET_SALT, self.0.as_ref(), purpose);
        crate::convergent::ConvergenceSecret::new(secret.to_vec())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn convergence_secret(&self) -> ConvergenceSecret {
        ConvergenceSecret::new(self.0.to_vec())
    }
}

impl fmt::Debug for LogKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LogKey(redacted)")
    }
}

/// A wrapped entry key did not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UnwrapError {
    #[error("the wrapped entry key does not open under this log key (wrong log or tampered)")]
    Decrypt,
}

/// The entry's object key encrypted under the log key: AES-256-GCM with
/// nonce = the first 12 bytes of the entry id. Distinct entries have
/// distinct ids, and one id always wraps the same key, so a nonce never
/// encrypts two different plaintexts.
pub fn wrap_entry_key(log_key: &LogKey, entry: &Capability) -> [u8; WRAPPED_KEY_LEN] {
    let mut buffer = entry.key.as_bytes().to_vec();
    symmetric::seal_in_place(log_key.as_bytes(), nonce_of(&entry.id), KEY_WRAP_AAD, &mut buffer);
    let mut out = [0u8; WRAPPED_KEY_LEN];
    out.copy_from_slice(&buffer);
    out
}

/// The object key of entry `id`, from its wrapped form.
pub fn unwrap_entry_key(
    log_key: &LogKey,
    id: &ObjectId,
    wrapped: &[u8; WRAPPED_KEY_LEN],
) -> Result<ObjectKey, UnwrapError> {
    let mut buffer = Zeroizing::new(wrapped.to_vec());
    symmetric::open_in_place(log_key.as_bytes(), nonce_of(id), KEY_WRAP_AAD, &mut buffer)
        .map_err(|()| UnwrapError::Decrypt)?;
    let mut key = [0u8; 32];
    key.copy_from_slice(&buffer);
    Ok(ObjectKey::from_bytes(key))
}

fn nonce_of(id: &ObjectId) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&id.as_bytes()[..12]);
    nonce
}

/// The signed pointer to a log's newest entry. A log without entries has
/// no head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogHead {
    // Fields are in CBOR key order, which is the order they are encoded in.
    pub v: u8,
    pub log: LogId,
    /// The newest entry's sequence number, from 1.
    pub seq: u64,
    pub name: String,
    pub time: Timestamp,
    /// The newest entry's object id.
    pub newest: ObjectId,
    /// The newest entry's key, wrapped ([`wrap_entry_key`]).
    #[serde(with = "crate::fixed")]
    pub newest_key: [u8; WRAPPED_KEY_LEN],
}

/// Why a head was not signed or not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogHeadError {
    #[error("log head envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    #[error("log head does not decode: {0}")]
    Payload(#[from] DecodeError),
    #[error("log name is {len} bytes; at most {MAX_LOG_NAME} are allowed")]
    NameTooLong { len: usize },
    #[error("log head has sequence number 0; the first entry is 1")]
    ZeroSeq,
    #[error("log {log} is not the log {name:?} of {signer}: only its owner may sign its head")]
    NotOwner { log: LogId, name: String, signer: VerifyingKey },
}

impl Versioned for LogHead {
    const VERSION: u8 = HEAD_VERSION;

    fn version(&self) -> u8 {
        self.v
    }
}

impl LogHead {
    /// The head of `owner`'s log `name` whose newest entry is `newest`.
    pub fn new(
        owner: &VerifyingKey,
        name: &str,
        seq: u64,
        newest: &EntryRef,
        log_key: &LogKey,
        time: Timestamp,
    ) -> Self {
        LogHead {
            v: HEAD_VERSION,
            log: LogId::derive(owner, name),
            seq,
            name: name.to_owned(),
            time,
            newest: newest.id,
            newest_key: wrap_entry_key(log_key, newest),
        }
    }

    /// Signs `head` with the log owner's key (a `LogHead` envelope).
    pub fn sign(owner: &SigningKey, head: &LogHead) -> Result<SignedEnvelope, LogHeadError> {
        head.validate(&owner.verifying_key())?;
        Ok(SignedEnvelope::sign(owner, EnvelopeKind::LogHead, cbor::encode(head))?)
    }

    /// The head in `envelope`, if it is a log head envelope with a valid
    /// signature by the log's owner: `LogId::derive(signer, name) = log`.
    pub fn verify(envelope: &SignedEnvelope) -> Result<LogHead, LogHeadError> {
        let payload = envelope.verify_kind(EnvelopeKind::LogHead)?;
        let head: LogHead = cbor::decode(payload, MAX_ENVELOPE_PAYLOAD)?;
        head.validate(&envelope.signer)?;
        Ok(head)
    }

    /// The newest entry's id and key, for [`open_entry`].
    pub fn newest_entry(&self, log_key: &LogKey) -> Result<EntryRef, UnwrapError> {
        let key = unwrap_entry_key(log_key, &self.newest, &self.newest_key)?;
        Ok(Capability::new(self.newest, key))
    }

    fn validate(&self, signer: &VerifyingKey) -> Result<(), LogHeadError> {
        if self.v != HEAD_VERSION {
            return Err(LogHeadError::Payload(DecodeError::UnsupportedVersion {
                found: self.v,
                supported: HEAD_VERSION,
            }));
        }
        if self.name.len() > MAX_LOG_NAME {
            return Err(LogHeadError::NameTooLong { len: self.name.len() });
        }
        if self.seq == 0 {
            return Err(LogHeadError::ZeroSeq);
        }
        if LogId::derive(signer, &self.name) != self.log {
            return Err(LogHeadError::NotOwner {
                log: self.log,
                name: self.name.clone(),
                signer: *signer,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
