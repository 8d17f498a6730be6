//! Notifications: small signed, sealed messages ("you have mail: object
//! X, key K") that the DHT buffers while the recipient is offline, and
//! the receipts that release them.
//!
//! A [`Notification`] is signed by the sender's user key (a
//! `Notification` envelope), and the encoded envelope is sealed with HPKE
//! to the recipient's certified key, with the recipient's inbox key as
//! associated data. The result, a [`SealedNotification`], is what inbox
//! holders keep: it shows them the inbox, the recipient's signing key (to
//! check receipts and presence) and an id, and nothing else, not even the
//! sender. The recipient acknowledges with a signed [`Receipt`] of ids.
//!
//! The opener learns the signer's key; whether that key is the sender's
//! is checked against the sender's certificate by the caller
//! ([`Notification::check_sender`]), who looks the certificate up. Mail
//! from the internet is announced by the realm's MX as
//! `postmaster@<domain>`, signed by the MX node's own key
//! ([`Notification::seal_relayed`]); the caller checks that key against
//! the realm's MX record instead ([`Notification::check_relay`]).
//! Normative text: `spec/notify.md`.

use std::fmt;

use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::address::Address;
use crate::address::AddressError;
use crate::capability::Capability;
use crate::cbor::{self, DecodeError, Versioned};
use crate::envelope::{EnvelopeError, EnvelopeKind, SignedEnvelope};
use crate::hash::sha256_parts;
use crate::identity::mx::MxRecord;
use crate::identity::{Certificate, UserKeys};
use crate::limits::{MAX_ENVELOPE_PAYLOAD, MAX_NOTIFICATION, MAX_RECEIPT_IDS, MAX_SUMMARY};
use crate::record::inbox_key;
use crate::seal::{self, SealError, SealedMessage, UnsealError, info};
use crate::sign::{RngError, SigningKey, VerifyingKey};
use crate::time::Timestamp;

/// The notification format this code writes and reads.
pub const NOTIFICATION_VERSION: u8 = 1;

/// The sealed notification format this code writes and reads.
pub const SEALED_NOTIFICATION_VERSION: u8 = 1;

/// The receipt format this code writes and reads.
pub const RECEIPT_VERSION: u8 = 1;

/// What the sender tells the recipient. Trust it only through
/// [`SealedNotification::open`] and [`Notification::check_sender`].
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notification {
    // Fields are in CBOR key order, which is the order they are encoded in.
    pub v: u8,
    pub to: Address,
    pub from: Address,
    pub time: Timestamp,
    /// Random; a recipient drops a nonce it has seen (replay).
    #[serde(with = "crate::fixed")]
    pub nonce: [u8; 16],
    /// At most [`MAX_SUMMARY`] bytes of UTF-8, for display.
    pub summary: String,
    /// The object the notice is about; absent for a plain text notice.
    pub capability: Option<Capability>,
}

impl fmt::Debug for Notification {
    /// The summary is part of someone's mail: its length only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notification")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("time", &self.time)
            .field("summary_len", &self.summary.len())
            .field("object", &self.capability.as_ref().map(|c| c.id))
            .finish_non_exhaustive()
    }
}

/// The unit inbox holders buffer. Its fields are in the clear and not
/// authenticated; holders use them for bookkeeping only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedNotification {
    // Fields are in CBOR key order, which is the order they are encoded in.
    pub v: u8,
    /// SHA-256(sealed.enc || sealed.ciphertext): what receipts name.
    #[serde(with = "crate::fixed")]
    pub id: [u8; 32],
    /// [`inbox_key`] of the recipient's address.
    #[serde(with = "crate::fixed")]
    pub inbox: [u8; 32],
    pub sealed: SealedMessage,
    /// When holders may drop it unacknowledged.
    pub expires: Timestamp,
    /// The recipient's signing key, which signs receipts and presence.
    pub recipient: VerifyingKey,
}

/// A recipient's acknowledgement: holders of `inbox` drop these ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    // Fields are in CBOR key order, which is the order they are encoded in.
    pub v: u8,
    #[serde(with = "crate::fixed::hash_list")]
    pub ids: Vec<[u8; 32]>,
    pub time: Timestamp,
    #[serde(with = "crate::fixed")]
    pub inbox: [u8; 32],
}

/// Why a notification was not made or sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealNotificationError {
    #[error("the summary is {len} bytes; at most {MAX_SUMMARY} are allowed")]
    SummaryTooLong { len: usize },
    #[error("the notification is from {from}, but the signing keys are {keys}'s")]
    SenderMismatch { from: Address, keys: Address },
    #[error("the notification is to {to}, but the certificate is {cert}'s")]
    RecipientMismatch { to: Address, cert: Address },
    #[error("a relayed notification is from postmaster@{domain}, not from {from}")]
    NotRelayAddress { from: Address, domain: String },
    #[error("the sealed notification is {len} bytes; at most {MAX_NOTIFICATION} are allowed")]
    TooLarge { len: usize },
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Rng(#[from] RngError),
}

/// Why a sealed notification was refused. None of these yields a notice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenNotificationError {
    #[error("the sealed notification does not decode: {0}")]
    Decode(#[from] DecodeError),
    #[error("the sealed notification's id does not match its contents")]
    IdMismatch,
    #[error("the notification was left at another inbox")]
    WrongInbox,
    #[error("the notification does not open with this key: {0}")]
    Unseal(#[from] UnsealError),
    #[error("the sealed envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    #[error("the notification's summary is {len} bytes; at most {MAX_SUMMARY} are allowed")]
    SummaryTooLong { len: usize },
    #[error("the notification is addressed to {to}, not to this recipient")]
    WrongRecipient { to: Address },
    #[error(
        "the notification claims to be from {from} but is not signed by that address's certified key"
    )]
    SenderNotCertified { from: Address },
    #[error("the notification is relayed for {domain} by a node its MX record does not name")]
    RelayNotNamed { domain: String },
}

/// Why a receipt was not signed or not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    #[error("receipt envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    #[error("receipt does not decode: {0}")]
    Payload(#[from] DecodeError),
    #[error("a receipt names 1 to {MAX_RECEIPT_IDS} notifications, not {count}")]
    BadIdCount { count: usize },
    #[error("the receipt is signed by {found}, not by the recipient's key {expected}")]
    WrongSigner { expected: VerifyingKey, found: VerifyingKey },
}

impl Versioned for Notification {
    const VERSION: u8 = NOTIFICATION_VERSION;

    fn version(&self) -> u8 {
        self.v
    }
}

impl Versioned for SealedNotification {
    const VERSION: u8 = SEALED_NOTIFICATION_VERSION;

    fn version(&self) -> u8 {
        self.v
    }
}

impl Versioned for Receipt {
    const VERSION: u8 = RECEIPT_VERSION;

    fn version(&self) -> u8 {
        self.v
    }
}

impl Notification {
    /// A notification with a fresh random nonce.
    pub fn new(
        from: Address,
        to: Address,
        capability: Option<Capability>,
        summary: String,
        time: Timestamp,
    ) -> Result<Self, SealNotificationError> {
        let mut nonce = [0u8; 16];
        SystemRandom::new().fill(&mut nonce).map_err(|_| RngError)?;
        let notification =
            Notification { v: NOTIFICATION_VERSION, to, from, time, nonce, summary, capability };
        check_summary(&notification.summary)
            .map_err(|len| SealNotificationError::SummaryTooLong { len })?;
        Ok(notification)
    }

    /// Signs `notification` with the sender's key and seals it to the
    /// recipient's certified HPKE key (the certificate must already be
    /// verified). `expires` is the lease the holders are asked for.
    pub fn seal(
        sender: &UserKeys,
        recipient_cert: &Certificate,
        notification: &Notification,
        expires: Timestamp,
    ) -> Result<SealedNotification, SealNotificationError> {
        seal_notification(sender, recipient_cert, notification, expires, None)
    }

    /// Signs `notification` with an MX node's own key, for mail it took
    /// from the internet: the notification must be from the relay
    /// address of the recipient's domain ([`relay_address`]).
    pub fn seal_relayed(
        node_key: &SigningKey,
        recipient_cert: &Certificate,
        notification: &Notification,
        expires: Timestamp,
    ) -> Result<SealedNotification, SealNotificationError> {
        if !notification.is_relayed() {
            return Err(SealNotificationError::NotRelayAddress {
                from: notification.from.clone(),
                domain: notification.to.domain().to_owned(),
            });
        }
        seal_signed(node_key, recipient_cert, notification, expires, None)
    }

    /// Whether this claims to be relayed by the recipient realm's MX: it
    /// is from `postmaster@` the recipient's domain.
    pub fn is_relayed(&self) -> bool {
        relay_address(self.to.domain()).is_ok_and(|relay| relay == self.from)
    }

    /// Checks that `signer`, the key [`SealedNotification::open`]
    /// returned, is a node that `mx` (the recipient realm's verified MX
    /// record) names, and that this is a relayed notification.
    pub fn check_relay(
        &self,
        signer: &VerifyingKey,
        mx: &MxRecord,
    ) -> Result<(), OpenNotificationError> {
        if !self.is_relayed() {
            return Err(OpenNotificationError::SenderNotCertified { from: self.from.clone() });
        }
        if !mx.domain.eq_ignore_ascii_case(self.to.domain()) || !mx.names(signer) {
            return Err(OpenNotificationError::RelayNotNamed { domain: self.to.domain().into() });
        }
        Ok(())
    }

    /// Checks that `signer`, the key [`SealedNotification::open`]
    /// returned, is the certified key of the claimed sender. The caller
    /// looks up and verifies `sender_cert` (the certificate of `from`).
    pub fn check_sender(
        &self,
        signer: &VerifyingKey,
        sender_cert: &Certificate,
    ) -> Result<(), OpenNotificationError> {
        if sender_cert.address != self.from || sender_cert.signing_key != *signer {
            return Err(OpenNotificationError::SenderNotCertified { from: self.from.clone() });
        }
        Ok(())
    }
}

/// [`Notification::seal`], with a fixed HPKE ephemeral for the vectors.
pub(crate) fn seal_notification(
    sender: &UserKeys,
    recipient_cert: &Certificate,
    notification: &Notification,
    expires: Timestamp,
    ikm_e: Option<&[u8; 32]>,
) -> Result<SealedNotification, SealNotificationError> {
    if notification.from != sender.address {
        return Err(SealNotificationError::SenderMismatch {
            from: notification.from.clone(),
            keys: sender.address.clone(),
        });
    }
    seal_signed(&sender.signing, recipient_cert, notification, expires, ikm_e)
}

/// `postmaster@<domain>`: who the realm's MX announces internet mail as.
pub fn relay_address(domain: &str) -> Result<Address, AddressError> {
    format!("postmaster@{domain}").parse()
}

/// Signs with `signing` and seals to the recipient; the caller has
/// checked that the key may speak for `notification.from`.
fn seal_signed(
    signing: &SigningKey,
    recipient_cert: &Certificate,
    notification: &Notification,
    expires: Timestamp,
    ikm_e: Option<&[u8; 32]>,
) -> Result<SealedNotification, SealNotificationError> {
    check_summary(&notification.summary)
        .map_err(|len| SealNotificationError::SummaryTooLong { len })?;
    if notification.to != recipient_cert.address {
        return Err(SealNotificationError::RecipientMismatch {
            to: notification.to.clone(),
            cert: recipient_cert.address.clone(),
        });
    }
    let envelope =
        SignedEnvelope::sign(signing, EnvelopeKind::Notification, cbor::encode(notification))?;
    // The capability's key is inside: zeroize the plaintext after use.
    let plaintext = Zeroizing::new(envelope.encode());
    let inbox = inbox_key(&notification.to);
    let hpke_key = &recipient_cert.hpke_key;
    let sealed = match ikm_e {
        None => seal::seal_to(hpke_key, info::NOTIFICATION, &inbox, &plaintext)?,
        Some(ikm_e) => {
            seal::seal_with_ephemeral(hpke_key, info::NOTIFICATION, &inbox, &plaintext, ikm_e)?
        }
    };
    let out = SealedNotification {
        v: SEALED_NOTIFICATION_VERSION,
        id: SealedNotification::id_of(&sealed),
        inbox,
        sealed,
        expires,
        recipient: recipient_cert.signing_key,
    };
    let len = out.encode().len();
    if len > MAX_NOTIFICATION {
        return Err(SealNotificationError::TooLarge { len });
    }
    Ok(out)
}

fn check_summary(summary: &str) -> Result<(), usize> {
    if summary.len() > MAX_SUMMARY { Err(summary.len()) } else { Ok(()) }
}

impl SealedNotification {
    /// The id of a sealed message: SHA-256(enc || ciphertext).
    pub fn id_of(sealed: &SealedMessage) -> [u8; 32] {
        sha256_parts(&[&sealed.enc, &sealed.ciphertext])
    }

    /// The canonical CBOR encoding.
    pub fn encode(&self) -> Vec<u8> {
        cbor::encode(self)
    }

    /// Decodes at most [`MAX_NOTIFICATION`] bytes and checks the id, as a
    /// holder does before buffering. The contents stay sealed.
    pub fn decode(bytes: &[u8]) -> Result<Self, OpenNotificationError> {
        let sealed: SealedNotification = cbor::decode(bytes, MAX_NOTIFICATION)?;
        sealed.check_id()?;
        Ok(sealed)
    }

    pub fn check_id(&self) -> Result<(), OpenNotificationError> {
        if Self::id_of(&self.sealed) != self.id {
            return Err(OpenNotificationError::IdMismatch);
        }
        Ok(())
    }

    /// Opens the notification as its recipient: it must open with the
    /// recipient's HPKE key for their inbox, hold a notification envelope
    /// whose signature verifies, and be addressed to them. Returns the
    /// notification and the key that signed it, which the caller checks
    /// with [`Notification::check_sender`].
    pub fn open(
        &self,
        recipient: &UserKeys,
    ) -> Result<(Notification, VerifyingKey), OpenNotificationError> {
        self.check_id()?;
        let inbox = inbox_key(&recipient.address);
        if self.inbox != inbox {
            return Err(OpenNotificationError::WrongInbox);
        }
        let plaintext = Zeroizing::new(seal::open_sealed(
            &recipient.hpke,
            info::NOTIFICATION,
            &inbox,
            &self.sealed,
        )?);
        let envelope = SignedEnvelope::decode(&plaintext)?;
        let payload = envelope.verify_kind(EnvelopeKind::Notification)?;
        let notification: Notification = cbor::decode(payload, MAX_ENVELOPE_PAYLOAD)?;
        check_summary(&notification.summary)
            .map_err(|len| OpenNotificationError::SummaryTooLong { len })?;
        if notification.to != recipient.address {
            return Err(OpenNotificationError::WrongRecipient { to: notification.to });
        }
        Ok((notification, envelope.signer))
    }
}

impl Receipt {
    pub fn new(inbox: [u8; 32], ids: Vec<[u8; 32]>, time: Timestamp) -> Self {
        Receipt { v: RECEIPT_VERSION, ids, time, inbox }
    }

    /// Signs `receipt` with the recipient's signing key (a `Receipt` envelope).
    pub fn sign(recipient: &SigningKey, receipt: &Receipt) -> Result<SignedEnvelope, ReceiptError> {
        receipt.validate()?;
        Ok(SignedEnvelope::sign(recipient, EnvelopeKind::Receipt, cbor::encode(receipt))?)
    }

    /// The receipt in `envelope`, if it is well formed and signed by
    /// `expected_recipient_key` (the `recipient` of the buffered
    /// notifications it names).
    pub fn verify(
        envelope: &SignedEnvelope,
        expected_recipient_key: &VerifyingKey,
    ) -> Result<Receipt, ReceiptError> {
        let payload = envelope.verify_kind(EnvelopeKind::Receipt)?;
        if envelope.signer != *expected_recipient_key {
            return Err(ReceiptError::WrongSigner {
                expected: *expected_recipient_key,
                found: envelope.signer,
            });
        }
        let receipt: Receipt = cbor::decode(payload, MAX_ENVELOPE_PAYLOAD)?;
        receipt.validate()?;
        Ok(receipt)
    }

    fn validate(&self) -> Result<(), ReceiptError> {
        if self.v != RECEIPT_VERSION {
            return Err(ReceiptError::Payload(DecodeError::UnsupportedVersion {
                found: self.v,
                supported: RECEIPT_VERSION,
            }));
        }
        let count = self.ids.len();
        if count == 0 || count > MAX_RECEIPT_IDS {
            return Err(ReceiptError::BadIdCount { count });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
