//! Convergent encryption of stored objects: the key is derived from the
//! plaintext, so the same plaintext under the same convergence secret
//! always becomes the same ciphertext and id, and is stored once.
//!
//! Steps (normative in `spec/formats.md`):
//!
//! 1. framed = kind byte (0x00 data, 0x01 manifest) || body
//! 2. key = HKDF-SHA256(salt = convergence secret, IKM = SHA-256(framed),
//!    info = "epost/v1/convergent-key"), 32 bytes
//! 3. ciphertext = AES-256-GCM(key, nonce = 12 zero bytes, framed,
//!    aad = "epost/v1/object")
//! 4. id = SHA-256(ciphertext)
//!
//! The fixed nonce is safe because a key encrypts exactly one plaintext:
//! the same key implies the same framed plaintext, hence the same
//! ciphertext. The secret (per realm by default) stops an outsider from
//! confirming a guessed plaintext by computing its id, the attack plain
//! POST allowed; an empty secret opts into global dedup.

use std::fmt;

use zeroize::Zeroizing;

use crate::capability::{Capability, ObjectKey};
use crate::hash::sha256;
use crate::id::ObjectId;
use crate::symmetric;

/// HKDF info for the object key.
pub const KEY_INFO: &[u8] = b"epost/v1/convergent-key";
/// AES-GCM associated data of every object.
pub const OBJECT_AAD: &[u8] = b"epost/v1/object";

/// The salt of convergent key derivation. Objects dedup only among those
/// sealed under the same secret. Zeroized on drop; `Debug` shows only its
/// length.
#[derive(Clone, Default)]
pub struct ConvergenceSecret(Zeroizing<Vec<u8>>);

impl ConvergenceSecret {
    pub fn new(bytes: Vec<u8>) -> Self {
        ConvergenceSecret(Zeroizing::new(bytes))
    }

    /// The empty secret: global dedup, and no protection against
    /// confirmation of a guessed plaintext.
    pub fn global() -> Self {
        Self::default()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ConvergenceSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConvergenceSecret({} bytes, redacted)", self.0.len())
    }
}

/// What an object's body is, from its first plaintext byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Kind {
    /// File or message bytes (a whole small object, or one chunk).
    Data = 0x00,
    /// A CBOR chunk manifest ([`crate::chunk::Manifest`]).
    Manifest = 0x01,
}

impl Kind {
    pub const fn as_byte(self) -> u8 {
        self as u8
    }

    pub const fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0x00 => Some(Kind::Data),
            0x01 => Some(Kind::Manifest),
            _ => None,
        }
    }
}

/// An object ready to store: its id, the key a capability carries, and
/// the ciphertext the storage network holds.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedObject {
    pub id: ObjectId,
    pub key: ObjectKey,
    pub ciphertext: Vec<u8>,
}

impl SealedObject {
    /// The capability that reads this object.
    pub fn capability(&self) -> Capability {
        Capability::new(self.id, self.key.clone())
    }
}

impl fmt::Debug for SealedObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedObject")
            .field("id", &self.id)
            .field("key", &self.key)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

/// A verified, decrypted object.
#[derive(Clone, PartialEq, Eq)]
pub struct Opened {
    pub kind: Kind,
    pub body: Vec<u8>,
}

impl fmt::Debug for Opened {
    /// The body is someone's mail: show its length only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("kind", &self.kind)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Why an object did not open. Each case means the bytes are not the
/// object the capability names; none yields data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("the ciphertext hashes to {actual}, not to the requested object {expected}")]
    IdMismatch { expected: ObjectId, actual: ObjectId },
    #[error("the ciphertext does not decrypt under the capability's key (wrong key or tampered)")]
    Decrypt,
    #[error("the plaintext is empty; every object starts with a kind byte")]
    Unframed,
    #[error("unknown object kind byte {byte:#04x}")]
    UnknownKind { byte: u8 },
}

/// Seals `body` as an object of `kind`.
///
/// # Panics
///
/// If `body` exceeds AES-GCM's limit of about 64 GiB, which no chunked
/// object approaches (chunks are at most a few MiB).
pub fn seal(secret: &ConvergenceSecret, kind: Kind, body: &[u8]) -> SealedObject {
    let mut framed = Vec::with_capacity(body.len() + crate::limits::OBJECT_OVERHEAD);
    framed.push(kind.as_byte());
    framed.extend_from_slice(body);
    seal_framed(secret, framed)
}

/// Seals an already framed plaintext in place (the chunk writer builds
/// chunks with their kind byte in front, saving a copy per chunk).
pub(crate) fn seal_framed(secret: &ConvergenceSecret, mut framed: Vec<u8>) -> SealedObject {
    let key = derive_key(secret, &framed);
    symmetric::seal_in_place(&key, ZERO_NONCE, OBJECT_AAD, &mut framed);
    SealedObject { id: ObjectId::of(&framed), key: ObjectKey::from_bytes(*key), ciphertext: framed }
}

/// Verifies and decrypts the object `capability` names: the id first
/// (cheap, and catches a wrong or corrupt object before any decryption),
/// then the AEAD tag, then the framing.
pub fn open(capability: &Capability, ciphertext: &[u8]) -> Result<Opened, OpenError> {
    let actual = ObjectId::of(ciphertext);
    if actual != capability.id {
        return Err(OpenError::IdMismatch { expected: capability.id, actual });
    }
    let mut buffer = ciphertext.to_vec();
    symmetric::open_in_place(capability.key.as_bytes(), ZERO_NONCE, OBJECT_AAD, &mut buffer)
        .map_err(|()| OpenError::Decrypt)?;
    let byte = *buffer.first().ok_or(OpenError::Unframed)?;
    let kind = Kind::from_byte(byte).ok_or(OpenError::UnknownKind { byte })?;
    buffer.remove(0);
    Ok(Opened { kind, body: buffer })
}

fn derive_key(secret: &ConvergenceSecret, framed: &[u8]) -> Zeroizing<[u8; 32]> {
    let ikm = Zeroizing::new(sha256(framed));
    symmetric::hkdf_sha256(secret.as_bytes(), ikm.as_ref(), KEY_INFO)
}

/// The nonce of every object: safe because a key encrypts one plaintext.
const ZERO_NONCE: [u8; 12] = [0u8; 12];

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn realm() -> ConvergenceSecret {
        ConvergenceSecret::new(b"realm example.org".to_vec())
    }

    #[test]
    fn round_trips_every_kind_and_the_empty_body() {
        for (kind, body) in [(Kind::Data, &b""[..]), (Kind::Data, b"hello"), (Kind::Manifest, b"m")]
        {
            let sealed = seal(&realm(), kind, body);
            assert_eq!(sealed.ciphertext.len(), body.len() + 17);
            assert_eq!(sealed.id, ObjectId::of(&sealed.ciphertext));
            let opened = open(&sealed.capability(), &sealed.ciphertext).unwrap();
            assert_eq!(opened, Opened { kind, body: body.to_vec() });
        }
    }

    #[test]
    fn is_deterministic_per_secret() {
        let a = seal(&realm(), Kind::Data, b"attachment");
        let b = seal(&realm(), Kind::Data, b"attachment");
        assert_eq!(a, b);
        let other =
            seal(&ConvergenceSecret::new(b"other realm".to_vec()), Kind::Data, b"attachment");
        assert_ne!(a.id, other.id);
        assert_ne!(a.key, other.key);
        let global = seal(&ConvergenceSecret::global(), Kind::Data, b"attachment");
        assert_ne!(a.id, global.id);
        // The kind is part of the plaintext: same body, different object.
        assert_ne!(a.id, seal(&realm(), Kind::Manifest, b"attachment").id);
    }

    #[test]
    fn checks_the_id_before_decrypting() {
        let a = seal(&realm(), Kind::Data, b"one");
        let b = seal(&realm(), Kind::Data, b"two");
        let wrong = open(&a.capability(), &b.ciphertext);
        assert_eq!(wrong, Err(OpenError::IdMismatch { expected: a.id, actual: b.id }));
    }

    #[test]
    fn refuses_bad_framing_even_when_authentic() {
        // Build objects whose plaintext is empty or has an unknown kind,
        // as a buggy or hostile writer could.
        for (framed, expected) in
            [(vec![], OpenError::Unframed), (vec![7, 1, 2], OpenError::UnknownKind { byte: 7 })]
        {
            let sealed = seal_framed(&realm(), framed);
            assert_eq!(open(&sealed.capability(), &sealed.ciphertext), Err(expected));
        }
    }

    #[test]
    fn debug_hides_secrets_and_contents() {
        let secret = ConvergenceSecret::new(b"topsecret".to_vec());
        assert!(!format!("{secret:?}").contains("topsecret"));
        let sealed = seal(&secret, Kind::Data, b"private words");
        let shown = format!("{sealed:?}");
        assert!(shown.contains("redacted"));
        let opened = open(&sealed.capability(), &sealed.ciphertext).unwrap();
        assert!(!format!("{opened:?}").contains("private"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_flipped_bit_is_refused(
            body in prop::collection::vec(any::<u8>(), 0..200),
            target in 0u8..3,
            bit in any::<prop::sample::Index>(),
        ) {
            let sealed = seal(&realm(), Kind::Data, &body);
            let mut cap = sealed.capability();
            let mut ciphertext = sealed.ciphertext.clone();
            match target {
                0 => {
                    let at = bit.index(ciphertext.len() * 8);
                    ciphertext[at / 8] ^= 1 << (at % 8);
                }
                1 => {
                    let mut id = *cap.id.as_bytes();
                    let at = bit.index(256);
                    id[at / 8] ^= 1 << (at % 8);
                    cap.id = ObjectId::from_bytes(id);
                }
                _ => {
                    let mut key = *cap.key.as_bytes();
                    let at = bit.index(256);
                    key[at / 8] ^= 1 << (at % 8);
                    cap.key = ObjectKey::from_bytes(key);
                }
            }
            let result = open(&cap, &ciphertext);
            match target {
                0 | 1 => {
                    let mismatch = matches!(result, Err(OpenError::IdMismatch { .. }));
                    prop_assert!(mismatch);
                }
                _ => prop_assert_eq!(result, Err(OpenError::Decrypt)),
            }
        }

        #[test]
        fn round_trips(body in prop::collection::vec(any::<u8>(), 0..2000), secret in prop::collection::vec(any::<u8>(), 0..40)) {
            let secret = ConvergenceSecret::new(secret);
            let sealed = seal(&secret, Kind::Data, &body);
            prop_assert_eq!(open(&sealed.capability(), &sealed.ciphertext).map(|o| o.body), Ok(body));
        }
    }
}
