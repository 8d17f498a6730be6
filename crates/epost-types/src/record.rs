//! DHT records: their keys, and the one rule by which every holder judges
//! a record it is offered ([`validate_record`]) and every reader picks
//! among the copies it is given ([`newest_record`]).
//!
//! Kademlia records hold four kinds of small signed value: log heads,
//! user certificates, presence and realms' MX records. A record key is one tag byte naming
//! the kind followed by 32 bytes: the log id, or a hash of the address.
//! Holders refuse a record that is malformed, badly signed, of the wrong
//! kind, stored under a key it does not belong to, certified by a realm
//! they do not trust, expired, or not newer than the one they hold (so
//! nobody can roll a head back). Normative text: `spec/identity.md`
//! (keys, certificates, presence) and `spec/logs.md` (heads).

use std::fmt;
use std::time::Duration;

use crate::address::Address;
use crate::cbor::DecodeError;
use crate::envelope::{EnvelopeError, EnvelopeKind, SignedEnvelope};
use crate::hash::sha256_parts;
use crate::id::LogId;
use crate::identity::mx::{MxError, MxRecord};
use crate::identity::{CertError, Certificate, Presence, PresenceError, TrustedRealms};
use crate::limits::MAX_RECORD;
use crate::log::{LogHead, LogHeadError};
use crate::text;
use crate::time::Timestamp;

/// Hash prefix of a certificate's record key.
pub const CERT_DOMAIN: &[u8] = b"epost/v1/cert";
/// Hash prefix of a presence record's key.
pub const PRESENCE_DOMAIN: &[u8] = b"epost/v1/presence";
/// Hash prefix of a realm's MX record key.
pub const MX_DOMAIN: &[u8] = b"epost/v1/mx";
/// Hash prefix of an inbox (where notifications for an address wait).
pub const INBOX_DOMAIN: &[u8] = b"epost/v1/inbox";

/// How far ahead of the holder's clock a presence time may be. Without a
/// bound, one forged presence dated in the far future would make a holder
/// refuse every genuine update after it.
pub const MAX_FUTURE_SKEW: Duration = Duration::from_secs(10 * 60);

/// SHA-256("epost/v1/cert" || address): where the address's certificate is kept.
pub fn cert_key(address: &Address) -> [u8; 32] {
    sha256_parts(&[CERT_DOMAIN, address.as_str().as_bytes()])
}

/// SHA-256("epost/v1/presence" || address): where the address's presence is kept.
pub fn presence_key(address: &Address) -> [u8; 32] {
    sha256_parts(&[PRESENCE_DOMAIN, address.as_str().as_bytes()])
}

/// SHA-256("epost/v1/mx" || lowercase domain): where the realm's MX record is kept.
pub fn mx_key(domain: &str) -> [u8; 32] {
    sha256_parts(&[MX_DOMAIN, domain.to_ascii_lowercase().as_bytes()])
}

/// SHA-256("epost/v1/inbox" || address): the nodes closest to it buffer
/// the address's notifications. Not a record key.
pub fn inbox_key(address: &Address) -> [u8; 32] {
    sha256_parts(&[INBOX_DOMAIN, address.as_str().as_bytes()])
}

/// The key of a DHT record: `tag (1 byte) || 32 bytes`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKey {
    /// Tag 0x01: the head of this log.
    LogHead(LogId),
    /// Tag 0x02: the certificate of the address with this [`cert_key`].
    Certificate([u8; 32]),
    /// Tag 0x03: the presence of the address with this [`presence_key`].
    Presence([u8; 32]),
    /// Tag 0x04: the MX record of the domain with this [`mx_key`].
    Mx([u8; 32]),
}

/// Why bytes are not a record key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordKeyError {
    #[error("a record key is {} bytes, not {len}", RecordKey::LEN)]
    WrongLength { len: usize },
    #[error("record key tag {tag:#04x} is unknown")]
    UnknownTag { tag: u8 },
}

impl RecordKey {
    /// Length of an encoded record key.
    pub const LEN: usize = 33;
    /// The first byte of a log head's key.
    pub const LOG_HEAD_TAG: u8 = 0x01;
    /// The first byte of a certificate's key.
    pub const CERTIFICATE_TAG: u8 = 0x02;
    /// The first byte of a presence's key.
    pub const PRESENCE_TAG: u8 = 0x03;
    /// The first byte of an MX record's key.
    pub const MX_TAG: u8 = 0x04;

    pub fn for_certificate(address: &Address) -> Self {
        RecordKey::Certificate(cert_key(address))
    }

    pub fn for_presence(address: &Address) -> Self {
        RecordKey::Presence(presence_key(address))
    }

    pub fn for_mx(domain: &str) -> Self {
        RecordKey::Mx(mx_key(domain))
    }

    pub const fn tag(&self) -> u8 {
        match self {
            RecordKey::LogHead(_) => Self::LOG_HEAD_TAG,
            RecordKey::Certificate(_) => Self::CERTIFICATE_TAG,
            RecordKey::Presence(_) => Self::PRESENCE_TAG,
            RecordKey::Mx(_) => Self::MX_TAG,
        }
    }

    /// The envelope kind a record under this key must have.
    pub const fn kind(&self) -> EnvelopeKind {
        match self {
            RecordKey::LogHead(_) => EnvelopeKind::LogHead,
            RecordKey::Certificate(_) => EnvelopeKind::Certificate,
            RecordKey::Presence(_) => EnvelopeKind::Presence,
            RecordKey::Mx(_) => EnvelopeKind::MxRecord,
        }
    }

    fn hash(&self) -> &[u8; 32] {
        match self {
            RecordKey::LogHead(log) => log.as_bytes(),
            RecordKey::Certificate(hash) | RecordKey::Presence(hash) | RecordKey::Mx(hash) => hash,
        }
    }

    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[0] = self.tag();
        out[1..].copy_from_slice(self.hash());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, RecordKeyError> {
        let bytes: &[u8; Self::LEN] =
            bytes.try_into().map_err(|_| RecordKeyError::WrongLength { len: bytes.len() })?;
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&bytes[1..]);
        match bytes[0] {
            Self::LOG_HEAD_TAG => Ok(RecordKey::LogHead(LogId::from_bytes(hash))),
            Self::CERTIFICATE_TAG => Ok(RecordKey::Certificate(hash)),
            Self::PRESENCE_TAG => Ok(RecordKey::Presence(hash)),
            Self::MX_TAG => Ok(RecordKey::Mx(hash)),
            tag => Err(RecordKeyError::UnknownTag { tag }),
        }
    }
}

impl From<LogId> for RecordKey {
    fn from(log: LogId) -> Self {
        RecordKey::LogHead(log)
    }
}

impl fmt::Display for RecordKey {
    /// `log/<base32>`, `cert/<base32>`, `presence/<base32>` or `mx/<base32>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            RecordKey::LogHead(_) => "log",
            RecordKey::Certificate(_) => "cert",
            RecordKey::Presence(_) => "presence",
            RecordKey::Mx(_) => "mx",
        };
        write!(f, "{name}/{}", text::encode(self.hash()))
    }
}

impl fmt::Debug for RecordKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordKey({self})")
    }
}

/// Why a holder refuses a record, or a reader ignores a copy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordRefusal {
    #[error("malformed record: {0}")]
    Malformed(#[from] Malformation),
    #[error("the record's signature does not verify")]
    BadSignature,
    #[error("the record's envelope is not of the kind its key names")]
    WrongKind,
    #[error("the record does not belong under this key")]
    WrongKey,
    #[error("the certificate or MX record is not signed by a realm key trusted for its domain")]
    Untrusted,
    #[error("the certificate or MX record has expired")]
    Expired,
    #[error("the presence is dated {time}, too far after now ({now})")]
    FromTheFuture { time: Timestamp, now: Timestamp },
    #[error("the record is not newer than the one held ({offered} <= {held})")]
    Stale { offered: u64, held: u64 },
}

/// What is wrong with a malformed record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformation {
    #[error(transparent)]
    Key(#[from] RecordKeyError),
    #[error("the value is {len} bytes; a record holds at most {MAX_RECORD}")]
    TooLarge { len: usize },
    #[error("the value is not a signed envelope: {0}")]
    Envelope(DecodeError),
    #[error("envelope version {found} is not supported")]
    EnvelopeVersion { found: u8 },
    #[error(transparent)]
    Head(LogHeadError),
    #[error(transparent)]
    Certificate(CertError),
    #[error(transparent)]
    Presence(PresenceError),
    #[error(transparent)]
    Mx(MxError),
}

impl From<RecordKeyError> for RecordRefusal {
    fn from(error: RecordKeyError) -> Self {
        RecordRefusal::Malformed(Malformation::Key(error))
    }
}

impl From<EnvelopeError> for RecordRefusal {
    fn from(error: EnvelopeError) -> Self {
        match error {
            EnvelopeError::BadSignature => RecordRefusal::BadSignature,
            EnvelopeError::WrongKind { .. } => RecordRefusal::WrongKind,
            EnvelopeError::UnsupportedVersion { found, .. } => {
                Malformation::EnvelopeVersion { found }.into()
            }
            // Only signing reports this; a decoded envelope is within bounds.
            EnvelopeError::PayloadTooLarge { len, .. } => Malformation::TooLarge { len }.into(),
        }
    }
}

impl From<LogHeadError> for RecordRefusal {
    fn from(error: LogHeadError) -> Self {
        match error {
            LogHeadError::Envelope(e) => e.into(),
            LogHeadError::NotOwner { .. } => RecordRefusal::WrongKey,
            other => Malformation::Head(other).into(),
        }
    }
}

impl From<CertError> for RecordRefusal {
    fn from(error: CertError) -> Self {
        match error {
            CertError::Envelope(e) => e.into(),
            CertError::Untrusted { .. } => RecordRefusal::Untrusted,
            CertError::Expired { .. } => RecordRefusal::Expired,
            other => Malformation::Certificate(other).into(),
        }
    }
}

impl From<PresenceError> for RecordRefusal {
    fn from(error: PresenceError) -> Self {
        match error {
            PresenceError::Envelope(e) => e.into(),
            other => Malformation::Presence(other).into(),
        }
    }
}

impl From<MxError> for RecordRefusal {
    fn from(error: MxError) -> Self {
        match error {
            MxError::Envelope(e) => e.into(),
            MxError::Untrusted { .. } => RecordRefusal::Untrusted,
            MxError::Expired { .. } => RecordRefusal::Expired,
            other => Malformation::Mx(other).into(),
        }
    }
}

/// Whether a holder keeps `value` under `key`, given the value it holds
/// now (`current`, if any), the realms it trusts and its clock.
///
/// A record is refused unless it is valid on its own (see
/// [`RecordRefusal`]) and either nothing valid is held, or it is newer
/// than what is held (log head: higher `seq`; certificate and MX record:
/// higher `serial`; presence: later `time`), or it is byte-identical to it (a
/// republish). Presence is checked against the key inside its own
/// envelope only: a holder has no certificate at hand, so readers check
/// the signer against the user's certificate ([`Presence::newest`]).
pub fn validate_record(
    key: &[u8],
    value: &[u8],
    current: Option<&[u8]>,
    trust: &TrustedRealms,
    now: Timestamp,
) -> Result<(), RecordRefusal> {
    let key = RecordKey::decode(key)?;
    let offered = judge(&key, value, trust, now)?;
    let Some(current) = current else {
        return Ok(());
    };
    if current == value {
        return Ok(());
    }
    match judge(&key, current, trust, now) {
        Ok(held) if offered <= held => Err(RecordRefusal::Stale { offered, held }),
        // Nothing valid is held (it expired, or trust changed): replace it.
        _ => Ok(()),
    }
}

/// Of the copies of the record at `key` that the closest holders
/// returned, the newest valid one (by the rules of [`validate_record`]).
/// Equally new copies are ordered by their bytes, smallest first, so
/// every reader picks the same one. For presence this is the holders'
/// rule only: a reader that knows the user's certificate uses
/// [`Presence::newest`], which also checks the signer.
pub fn newest_record<'a>(
    key: &[u8],
    candidates: impl IntoIterator<Item = &'a [u8]>,
    trust: &TrustedRealms,
    now: Timestamp,
) -> Option<&'a [u8]> {
    let key = RecordKey::decode(key).ok()?;
    candidates
        .into_iter()
        .filter_map(|value| judge(&key, value, trust, now).ok().map(|order| (order, value)))
        .max_by(|(a, a_bytes), (b, b_bytes)| a.cmp(b).then(b_bytes.cmp(a_bytes)))
        .map(|(_, value)| value)
}

/// Checks `value` on its own and returns its order: the head's `seq`,
/// the certificate's or MX record's `serial`, or the presence's `time`.
fn judge(
    key: &RecordKey,
    value: &[u8],
    trust: &TrustedRealms,
    now: Timestamp,
) -> Result<u64, RecordRefusal> {
    if value.len() > MAX_RECORD {
        return Err(Malformation::TooLarge { len: value.len() }.into());
    }
    let envelope = SignedEnvelope::decode(value).map_err(Malformation::Envelope)?;
    match key {
        RecordKey::LogHead(log) => {
            let head = LogHead::verify(&envelope)?;
            if head.log != *log {
                return Err(RecordRefusal::WrongKey);
            }
            Ok(head.seq)
        }
        RecordKey::Certificate(hash) => {
            let cert = Certificate::verify_signature(&envelope)?;
            if cert_key(&cert.address) != *hash {
                return Err(RecordRefusal::WrongKey);
            }
            if !trust.is_trusted(cert.address.domain(), &envelope.signer) {
                return Err(RecordRefusal::Untrusted);
            }
            if now >= cert.expires {
                return Err(RecordRefusal::Expired);
            }
            Ok(cert.serial)
        }
        RecordKey::Presence(hash) => {
            let presence = Presence::verify_signature(&envelope)?;
            if presence_key(&presence.address) != *hash {
                return Err(RecordRefusal::WrongKey);
            }
            if presence.time > now.saturating_add(MAX_FUTURE_SKEW) {
                return Err(RecordRefusal::FromTheFuture { time: presence.time, now });
            }
            Ok(presence.time.as_millis())
        }
        RecordKey::Mx(hash) => {
            let record = MxRecord::verify_signature(&envelope)?;
            if mx_key(&record.domain) != *hash {
                return Err(RecordRefusal::WrongKey);
            }
            MxRecord::verify(&envelope, trust, now)?;
            Ok(record.serial)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::UserKeys;
    use crate::log::{EntryBody, LogEntry, LogKey, seal_entry};
    use crate::seal::HpkeSecretKey;
    use crate::sign::SigningKey;
    use proptest::prelude::*;

    const NOW: Timestamp = Timestamp(1_000_000);

    fn owner() -> SigningKey {
        SigningKey::from_seed([0x31; 32])
    }

    fn realm() -> SigningKey {
        SigningKey::from_seed([0x32; 32])
    }

    fn alice() -> UserKeys {
        UserKeys {
            address: "alice@example.org".parse().unwrap(),
            signing: SigningKey::from_seed([0x33; 32]),
            hpke: HpkeSecretKey::derive(&[0x34; 32]),
        }
    }

    fn trust() -> TrustedRealms {
        let mut trust = TrustedRealms::new();
        trust.trust("example.org", realm().verifying_key()).unwrap();
        trust
    }

    fn inbox() -> LogId {
        LogId::derive(&owner().verifying_key(), "INBOX")
    }

    /// A head at `seq`, signed by `signer`, claiming to be `owner`'s INBOX.
    fn head_signed_by(signer: &SigningKey, seq: u64, time: u64) -> Vec<u8> {
        let key = LogKey::derive(&owner(), &inbox());
        let entry = LogEntry::new(inbox(), 1, None, Timestamp(1), EntryBody::Data(vec![]));
        let newest = seal_entry(&key, &entry).unwrap().capability();
        let head =
            LogHead::new(&owner().verifying_key(), "INBOX", seq, &newest, &key, Timestamp(time));
        SignedEnvelope::sign(signer, EnvelopeKind::LogHead, crate::cbor::encode(&head))
            .unwrap()
            .encode()
    }

    fn head(seq: u64) -> Vec<u8> {
        head_signed_by(&owner(), seq, 0)
    }

    fn cert_signed_by(signer: &SigningKey, serial: u64, expires: u64) -> Vec<u8> {
        let cert = alice().certificate(serial, Timestamp(1), Timestamp(expires));
        Certificate::issue(signer, &cert).unwrap().encode()
    }

    fn cert(serial: u64) -> Vec<u8> {
        cert_signed_by(&realm(), serial, NOW.0 + 1)
    }

    fn presence_at(time: u64) -> Vec<u8> {
        let presence = Presence::new(alice().address, vec![vec![1; 38]], vec![], Timestamp(time));
        Presence::sign(&alice().signing, &presence).unwrap().encode()
    }

    fn check(key: RecordKey, value: &[u8], current: Option<&[u8]>) -> Result<(), RecordRefusal> {
        validate_record(&key.encode(), value, current, &trust(), NOW)
    }

    #[test]
    fn keys_encode_and_decode() {
        let address = alice().address;
        for key in [
            RecordKey::from(inbox()),
            RecordKey::for_certificate(&address),
            RecordKey::for_presence(&address),
        ] {
            assert_eq!(RecordKey::decode(&key.encode()), Ok(key));
        }
        let cert = RecordKey::for_certificate(&address).encode();
        assert_eq!(cert[0], 0x02);
        assert_eq!(cert[1..], sha256_parts(&[b"epost/v1/cert", b"alice@example.org"]));
        assert_ne!(cert_key(&address), presence_key(&address));
        assert_ne!(presence_key(&address), inbox_key(&address));
        assert_eq!(RecordKey::decode(&[1; 32]), Err(RecordKeyError::WrongLength { len: 32 }));
        assert_eq!(RecordKey::decode(&[9; 33]), Err(RecordKeyError::UnknownTag { tag: 9 }));
        assert!(RecordKey::from(inbox()).to_string().starts_with("log/"));
    }

    #[test]
    fn heads_move_forward_only() {
        let key = RecordKey::from(inbox());
        assert_eq!(check(key, &head(5), None), Ok(()));
        assert_eq!(check(key, &head(6), Some(&head(5))), Ok(()));
        // A replayed older head, or a different head at the same seq.
        assert_eq!(
            check(key, &head(4), Some(&head(5))),
            Err(RecordRefusal::Stale { offered: 4, held: 5 })
        );
        let same_seq = head_signed_by(&owner(), 5, 99);
        assert_eq!(
            check(key, &same_seq, Some(&head(5))),
            Err(RecordRefusal::Stale { offered: 5, held: 5 })
        );
        // Republishing the very same bytes is fine.
        assert_eq!(check(key, &head(5), Some(&head(5))), Ok(()));
        // Garbage held is replaced.
        assert_eq!(check(key, &head(1), Some(b"junk")), Ok(()));
    }

    #[test]
    fn heads_belong_to_their_owner_and_key() {
        let mallory = SigningKey::from_seed([0x66; 32]);
        let key = RecordKey::from(inbox());
        assert_eq!(check(key, &head_signed_by(&mallory, 9, 0), None), Err(RecordRefusal::WrongKey));
        let sent = RecordKey::from(LogId::derive(&owner().verifying_key(), "Sent"));
        assert_eq!(check(sent, &head(5), None), Err(RecordRefusal::WrongKey));
        let as_cert = RecordKey::for_certificate(&alice().address);
        assert_eq!(check(as_cert, &head(5), None), Err(RecordRefusal::WrongKind));
        let mut tampered = SignedEnvelope::decode(&head(5)).unwrap();
        tampered.payload =
            crate::cbor::encode(&LogHead { seq: 6, ..LogHead::verify(&tampered).unwrap() });
        assert_eq!(check(key, &tampered.encode(), None), Err(RecordRefusal::BadSignature));
    }

    fn mx(signer: &SigningKey, domain: &str, serial: u64, expires: u64) -> Vec<u8> {
        let nodes = vec![SigningKey::from_seed([0x71; 32]).verifying_key()];
        let record = MxRecord::new(domain, nodes, serial, Timestamp(1), Timestamp(expires));
        MxRecord::issue(signer, &record).unwrap().encode()
    }

    #[test]
    fn mx_records_need_trust_time_their_own_key_and_a_higher_serial() {
        let key = RecordKey::for_mx("Example.org");
        assert_eq!(key, RecordKey::for_mx("example.org"), "the key ignores case");
        let live = NOW.0 + 1;
        assert_eq!(check(key, &mx(&realm(), "example.org", 2, live), None), Ok(()));
        let held = mx(&realm(), "example.org", 2, live);
        assert_eq!(check(key, &mx(&realm(), "example.org", 3, live), Some(&held)), Ok(()));
        assert_eq!(
            check(key, &mx(&realm(), "example.org", 1, live), Some(&held)),
            Err(RecordRefusal::Stale { offered: 1, held: 2 })
        );
        let stranger = SigningKey::from_seed([0x66; 32]);
        assert_eq!(
            check(key, &mx(&stranger, "example.org", 9, live), None),
            Err(RecordRefusal::Untrusted)
        );
        assert_eq!(
            check(key, &mx(&realm(), "example.org", 9, NOW.0), None),
            Err(RecordRefusal::Expired)
        );
        assert_eq!(
            check(RecordKey::for_mx("other.org"), &mx(&realm(), "example.org", 2, live), None),
            Err(RecordRefusal::WrongKey)
        );
        // A certificate is not an MX record, even under an MX key.
        assert_eq!(check(key, &cert(2), None), Err(RecordRefusal::WrongKind));
        let encoded = key.encode();
        assert_eq!(encoded[0], RecordKey::MX_TAG);
        assert_eq!(RecordKey::decode(&encoded), Ok(key));
    }

    #[test]
    fn certificates_need_trust_time_and_a_higher_serial() {
        let key = RecordKey::for_certificate(&alice().address);
        assert_eq!(check(key, &cert(2), None), Ok(()));
        assert_eq!(check(key, &cert(3), Some(&cert(2))), Ok(()));
        assert_eq!(
            check(key, &cert(1), Some(&cert(2))),
            Err(RecordRefusal::Stale { offered: 1, held: 2 })
        );
        assert_eq!(check(key, &cert(2), Some(&cert(2))), Ok(()));
        let stranger = SigningKey::from_seed([0x66; 32]);
        assert_eq!(
            check(key, &cert_signed_by(&stranger, 9, NOW.0 + 1), None),
            Err(RecordRefusal::Untrusted)
        );
        assert_eq!(
            check(key, &cert_signed_by(&realm(), 9, NOW.0), None),
            Err(RecordRefusal::Expired)
        );
        // An expired certificate held does not block its successor.
        let expired = cert_signed_by(&realm(), 9, NOW.0);
        assert_eq!(check(key, &cert(3), Some(&expired)), Ok(()));
        let bob: Address = "bob@example.org".parse().unwrap();
        assert_eq!(
            check(RecordKey::for_certificate(&bob), &cert(2), None),
            Err(RecordRefusal::WrongKey)
        );
    }

    #[test]
    fn presence_needs_a_newer_time_and_no_future() {
        let key = RecordKey::for_presence(&alice().address);
        assert_eq!(check(key, &presence_at(500), None), Ok(()));
        assert_eq!(check(key, &presence_at(600), Some(&presence_at(500))), Ok(()));
        assert_eq!(
            check(key, &presence_at(400), Some(&presence_at(500))),
            Err(RecordRefusal::Stale { offered: 400, held: 500 })
        );
        let far = NOW.0 + 10 * 60 * 1000 + 1;
        assert_eq!(
            check(key, &presence_at(far), None),
            Err(RecordRefusal::FromTheFuture { time: Timestamp(far), now: NOW })
        );
        assert_eq!(check(key, &presence_at(far - 1), None), Ok(()));
        let cert_key = RecordKey::for_certificate(&alice().address);
        assert_eq!(check(cert_key, &presence_at(500), None), Err(RecordRefusal::WrongKind));
    }

    #[test]
    fn malformed_records_say_what_is_wrong() {
        let key = RecordKey::from(inbox()).encode();
        let refuse = |key: &[u8], value: &[u8]| validate_record(key, value, None, &trust(), NOW);
        assert!(matches!(
            refuse(&key[..32], &head(1)),
            Err(RecordRefusal::Malformed(Malformation::Key(_)))
        ));
        assert!(matches!(
            refuse(&key, &vec![0; MAX_RECORD + 1]),
            Err(RecordRefusal::Malformed(Malformation::TooLarge { .. }))
        ));
        assert!(matches!(
            refuse(&key, b"junk"),
            Err(RecordRefusal::Malformed(Malformation::Envelope(_)))
        ));
        let empty = SignedEnvelope::sign(&owner(), EnvelopeKind::LogHead, vec![]).unwrap();
        assert!(matches!(
            refuse(&key, &empty.encode()),
            Err(RecordRefusal::Malformed(Malformation::Head(LogHeadError::Payload(_))))
        ));
    }

    #[test]
    fn newest_record_picks_the_highest_valid_copy() {
        let key = RecordKey::from(inbox()).encode();
        let mallory = SigningKey::from_seed([0x66; 32]);
        let forged = head_signed_by(&mallory, 1_000, 0);
        let copies = [head(3), forged, head(7), b"junk".to_vec(), head(5)];
        let picked = newest_record(&key, copies.iter().map(Vec::as_slice), &trust(), NOW);
        assert_eq!(picked, Some(&head(7)[..]));
        assert_eq!(newest_record(&key, [&b"junk"[..]], &trust(), NOW), None);
        // Certificates: a forged higher serial from an untrusted key loses.
        let key = RecordKey::for_certificate(&alice().address).encode();
        let stranger = SigningKey::from_seed([0x66; 32]);
        let copies = [cert(2), cert_signed_by(&stranger, 99, NOW.0 + 1), cert(4)];
        let picked = newest_record(&key, copies.iter().map(Vec::as_slice), &trust(), NOW);
        assert_eq!(picked, Some(&cert(4)[..]));
        // Equal seqs: every reader picks the same copy whatever the order.
        let key = RecordKey::from(inbox()).encode();
        let (a, b) = (head_signed_by(&owner(), 9, 1), head_signed_by(&owner(), 9, 2));
        let one = newest_record(&key, [&a[..], &b[..]], &trust(), NOW);
        let other = newest_record(&key, [&b[..], &a[..]], &trust(), NOW);
        assert_eq!(one, other);
        assert_eq!(one, Some(a.as_slice().min(b.as_slice())));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// A flipped bit in any record is refused, held or not.
        #[test]
        fn any_flipped_bit_is_refused(which in 0u8..3, bit in any::<prop::sample::Index>()) {
            let (key, mut value) = match which {
                0 => (RecordKey::from(inbox()), head(5)),
                1 => (RecordKey::for_certificate(&alice().address), cert(5)),
                _ => (RecordKey::for_presence(&alice().address), presence_at(5)),
            };
            let at = bit.index(value.len() * 8);
            value[at / 8] ^= 1 << (at % 8);
            prop_assert!(check(key, &value, None).is_err());
        }
    }
}
