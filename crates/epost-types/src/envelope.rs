//! Signed envelopes: the one container for every small signed value kept
//! in the DHT or sent between nodes (log heads, certificates, presence,
//! notifications, receipts).
//!
//! The signature covers a domain-separated, length-prefixed encoding
//! rather than the CBOR bytes, so what was signed never depends on a CBOR
//! library's choices and can be recomputed by hand:
//!
//! `"epost/v1/envelope" || version (1 byte) || kind (u16 BE) ||
//! payload length (u64 BE) || payload`
//!
//! Ed25519 hashes the signer's public key into the signature, so the
//! signer is bound without repeating it here.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::cbor::{self, DecodeError, Versioned};
use crate::limits::{MAX_ENVELOPE, MAX_ENVELOPE_PAYLOAD};
use crate::sign::{Signature, SigningKey, VerifyingKey};

/// The envelope format this code writes and reads.
pub const ENVELOPE_VERSION: u8 = 1;

/// Prefix of the signed bytes; no other signature in epost starts so.
pub const SIGNATURE_DOMAIN: &[u8] = b"epost/v1/envelope";

/// What an envelope's payload is. On the wire a `u16`; codes without a
/// name here travel as [`EnvelopeKind::Other`] so new kinds pass through
/// old nodes. Equality is by code: `Other(1)` equals `LogHead`.
#[derive(Debug, Clone, Copy)]
pub enum EnvelopeKind {
    LogHead,
    Certificate,
    Presence,
    Notification,
    Receipt,
    MxRecord,
    Other(u16),
}

impl EnvelopeKind {
    pub const fn code(self) -> u16 {
        match self {
            EnvelopeKind::LogHead => 1,
            EnvelopeKind::Certificate => 2,
            EnvelopeKind::Presence => 3,
            EnvelopeKind::Notification => 4,
            EnvelopeKind::Receipt => 5,
            EnvelopeKind::MxRecord => 6,
            EnvelopeKind::Other(code) => code,
        }
    }

    pub const fn from_code(code: u16) -> Self {
        match code {
            1 => EnvelopeKind::LogHead,
            2 => EnvelopeKind::Certificate,
            3 => EnvelopeKind::Presence,
            4 => EnvelopeKind::Notification,
            5 => EnvelopeKind::Receipt,
            6 => EnvelopeKind::MxRecord,
            other => EnvelopeKind::Other(other),
        }
    }
}

impl PartialEq for EnvelopeKind {
    fn eq(&self, other: &Self) -> bool {
        self.code() == other.code()
    }
}

impl Eq for EnvelopeKind {}

impl std::hash::Hash for EnvelopeKind {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.code().hash(state);
    }
}

impl fmt::Display for EnvelopeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Self::from_code(self.code()) {
            EnvelopeKind::Other(code) => write!(f, "kind {code}"),
            named => write!(f, "{named:?}"),
        }
    }
}

impl Serialize for EnvelopeKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u16(self.code())
    }
}

impl<'de> Deserialize<'de> for EnvelopeKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        u16::deserialize(deserializer).map(Self::from_code)
    }
}

/// A payload signed by `signer`. Construct with [`sign`](Self::sign);
/// trust the payload only through [`verify`](Self::verify) or
/// [`verify_kind`](Self::verify_kind).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedEnvelope {
    #[serde(rename = "v")]
    pub version: u8,
    pub kind: EnvelopeKind,
    pub signer: VerifyingKey,
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    pub signature: Signature,
}

/// Why an envelope was not made or not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("payload is {len} bytes; an envelope carries at most {max}")]
    PayloadTooLarge { len: usize, max: usize },
    #[error("envelope version {found} is not supported (this build reads version {supported})")]
    UnsupportedVersion { found: u8, supported: u8 },
    #[error("the signature does not verify under the envelope's signer key")]
    BadSignature,
    #[error("expected a {expected} envelope, got a {found} envelope")]
    WrongKind { expected: EnvelopeKind, found: EnvelopeKind },
}

impl Versioned for SignedEnvelope {
    const VERSION: u8 = ENVELOPE_VERSION;

    fn version(&self) -> u8 {
        self.version
    }
}

impl SignedEnvelope {
    /// Signs `payload` as a `kind` envelope.
    pub fn sign(
        key: &SigningKey,
        kind: EnvelopeKind,
        payload: Vec<u8>,
    ) -> Result<Self, EnvelopeError> {
        if payload.len() > MAX_ENVELOPE_PAYLOAD {
            return Err(EnvelopeError::PayloadTooLarge {
                len: payload.len(),
                max: MAX_ENVELOPE_PAYLOAD,
            });
        }
        let signature = key.sign(&signed_bytes(ENVELOPE_VERSION, kind, &payload));
        Ok(SignedEnvelope {
            version: ENVELOPE_VERSION,
            kind,
            signer: key.verifying_key(),
            payload,
            signature,
        })
    }

    /// The payload, if the signature verifies.
    pub fn verify(&self) -> Result<&[u8], EnvelopeError> {
        if self.version != ENVELOPE_VERSION {
            return Err(EnvelopeError::UnsupportedVersion {
                found: self.version,
                supported: ENVELOPE_VERSION,
            });
        }
        let message = signed_bytes(self.version, self.kind, &self.payload);
        self.signer.verify(&message, &self.signature).map_err(|_| EnvelopeError::BadSignature)?;
        Ok(&self.payload)
    }

    /// The payload, if the envelope is of kind `expected` and verifies.
    /// Checking the kind stops a signed presence record from being
    /// replayed as, say, a log head.
    pub fn verify_kind(&self, expected: EnvelopeKind) -> Result<&[u8], EnvelopeError> {
        if self.kind != expected {
            return Err(EnvelopeError::WrongKind { expected, found: self.kind });
        }
        self.verify()
    }

    /// The canonical CBOR encoding.
    pub fn encode(&self) -> Vec<u8> {
        cbor::encode(self)
    }

    /// Decodes at most [`MAX_ENVELOPE`] bytes. This checks the form only;
    /// call [`verify`](Self::verify) before believing the payload.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        cbor::decode(bytes, MAX_ENVELOPE)
    }
}

/// The bytes an envelope's signature covers.
pub fn signed_bytes(version: u8, kind: EnvelopeKind, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SIGNATURE_DOMAIN.len() + 1 + 2 + 8 + payload.len());
    out.extend_from_slice(SIGNATURE_DOMAIN);
    out.push(version);
    out.extend_from_slice(&kind.code().to_be_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

impl fmt::Debug for SignedEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedEnvelope")
            .field("version", &self.version)
            .field("kind", &self.kind)
            .field("signer", &self.signer)
            .field("payload_len", &self.payload.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> SigningKey {
        SigningKey::from_seed([42; 32])
    }

    #[test]
    fn sign_encode_decode_verify() {
        let envelope =
            SignedEnvelope::sign(&key(), EnvelopeKind::LogHead, b"head".to_vec()).unwrap();
        let bytes = envelope.encode();
        let decoded = SignedEnvelope::decode(&bytes).unwrap();
        assert_eq!(decoded, envelope);
        assert_eq!(decoded.verify(), Ok(&b"head"[..]));
        assert_eq!(decoded.verify_kind(EnvelopeKind::LogHead), Ok(&b"head"[..]));
        assert_eq!(
            decoded.verify_kind(EnvelopeKind::Presence),
            Err(EnvelopeError::WrongKind {
                expected: EnvelopeKind::Presence,
                found: EnvelopeKind::LogHead
            })
        );
    }

    #[test]
    fn kind_codes() {
        for code in 0..=10u16 {
            assert_eq!(EnvelopeKind::from_code(code).code(), code);
        }
        assert_eq!(EnvelopeKind::Other(4), EnvelopeKind::Notification);
        assert_eq!(EnvelopeKind::Other(4).to_string(), "Notification");
        assert_eq!(EnvelopeKind::Other(900).to_string(), "kind 900");
        // Unknown kinds pass through and still verify.
        let envelope = SignedEnvelope::sign(&key(), EnvelopeKind::Other(900), vec![1]).unwrap();
        let decoded = SignedEnvelope::decode(&envelope.encode()).unwrap();
        assert_eq!(decoded.kind, EnvelopeKind::Other(900));
        assert!(decoded.verify().is_ok());
    }

    #[test]
    fn tampering_is_refused() {
        let envelope = SignedEnvelope::sign(&key(), EnvelopeKind::Receipt, b"ok".to_vec()).unwrap();
        let mut other_kind = envelope.clone();
        other_kind.kind = EnvelopeKind::Notification;
        assert_eq!(other_kind.verify(), Err(EnvelopeError::BadSignature));
        let mut other_signer = envelope.clone();
        other_signer.signer = SigningKey::from_seed([1; 32]).verifying_key();
        assert_eq!(other_signer.verify(), Err(EnvelopeError::BadSignature));
        let mut future = envelope.clone();
        future.version = 2;
        assert_eq!(
            future.verify(),
            Err(EnvelopeError::UnsupportedVersion { found: 2, supported: 1 })
        );
        assert_eq!(
            SignedEnvelope::decode(&future.encode()),
            Err(DecodeError::UnsupportedVersion { found: 2, supported: 1 })
        );
    }

    #[test]
    fn size_limits_hold_both_ways() {
        let largest = vec![0xa5; MAX_ENVELOPE_PAYLOAD];
        let envelope = SignedEnvelope::sign(&key(), EnvelopeKind::Other(65535), largest).unwrap();
        let bytes = envelope.encode();
        assert!(bytes.len() <= MAX_ENVELOPE, "{} bytes", bytes.len());
        assert!(SignedEnvelope::decode(&bytes).is_ok());
        let too_big = vec![0; MAX_ENVELOPE_PAYLOAD + 1];
        assert!(matches!(
            SignedEnvelope::sign(&key(), EnvelopeKind::LogHead, too_big),
            Err(EnvelopeError::PayloadTooLarge { .. })
        ));
        let oversized = vec![0u8; MAX_ENVELOPE + 1];
        assert!(matches!(SignedEnvelope::decode(&oversized), Err(DecodeError::TooLarge { .. })));
    }

    #[test]
    fn signed_bytes_layout() {
        let bytes = signed_bytes(1, EnvelopeKind::Presence, b"ab");
        let mut expected = b"epost/v1/envelope".to_vec();
        expected.extend_from_slice(&[1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 2, b'a', b'b']);
        assert_eq!(bytes, expected);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// A flipped bit anywhere in the encoded envelope is either refused
        /// by the decoder or by the signature check: never accepted as a
        /// different (or even the same) signed value.
        #[test]
        fn any_flipped_bit_is_refused(
            payload in prop::collection::vec(any::<u8>(), 0..64),
            code in any::<u16>(),
            bit in any::<prop::sample::Index>(),
        ) {
            let envelope = SignedEnvelope::sign(&key(), EnvelopeKind::from_code(code), payload).unwrap();
            let mut bytes = envelope.encode();
            let at = bit.index(bytes.len() * 8);
            bytes[at / 8] ^= 1 << (at % 8);
            let accepted = SignedEnvelope::decode(&bytes).ok().filter(|e| e.verify().is_ok());
            prop_assert!(accepted.is_none(), "accepted {:?}", accepted);
        }
    }
}
