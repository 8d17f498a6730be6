//! The node key file (`node.key`, written mode 0600 by `epost init`): the
//! node's Ed25519 seed, which is also its libp2p identity.
//!
//! The public key is stored beside the seed so a damaged file is refused
//! instead of silently becoming a different identity. Version 1 is
//! unencrypted; passphrase wrapping will be a new version, and decoders of
//! that version will keep reading this one.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::cbor::{self, DecodeError, Versioned};
use crate::limits::MAX_KEYFILE;
use crate::sign::{SigningKey, VerifyingKey};

/// The key file format this code writes and reads.
pub const KEYFILE_VERSION: u8 = 1;

/// A node's key file. Zeroized on drop; `Debug` shows the public key only.
#[derive(Clone)]
pub struct NodeKeyFile {
    seed: Zeroizing<[u8; 32]>,
    public: VerifyingKey,
}

/// Why a key file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFileError {
    #[error("not a node key file: {0}")]
    Decode(#[from] DecodeError),
    #[error("the key file is damaged: its seed does not give its public key {stored}")]
    PublicKeyMismatch { stored: VerifyingKey },
}

/// The stored layout: `{"v": 1, "ed25519_seed": bytes(32), "ed25519_public": bytes(32)}`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    v: u8,
    #[serde(with = "crate::fixed")]
    ed25519_seed: [u8; 32],
    ed25519_public: VerifyingKey,
}

impl Drop for Stored {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.ed25519_seed);
    }
}

impl Versioned for Stored {
    const VERSION: u8 = KEYFILE_VERSION;

    fn version(&self) -> u8 {
        self.v
    }
}

impl NodeKeyFile {
    pub fn new(key: &SigningKey) -> Self {
        NodeKeyFile { seed: key.seed_bytes(), public: key.verifying_key() }
    }

    /// The node's signing key.
    pub fn signing_key(&self) -> SigningKey {
        SigningKey::from_seed(*self.seed)
    }

    /// The Ed25519 seed (the libp2p identity's secret).
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        self.seed.clone()
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.public
    }

    /// The file's bytes. Zeroized on drop: they hold the seed.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let stored =
            Stored { v: KEYFILE_VERSION, ed25519_seed: *self.seed, ed25519_public: self.public };
        // Sized up front so the buffer never reallocates and leaves a copy behind.
        let mut out = Zeroizing::new(Vec::with_capacity(128));
        cbor::encode_into(&stored, &mut out);
        out
    }

    /// Reads a key file of at most [`MAX_KEYFILE`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, KeyFileError> {
        let stored: Stored = cbor::decode(bytes, MAX_KEYFILE)?;
        let key = SigningKey::from_seed(stored.ed25519_seed);
        if key.verifying_key() != stored.ed25519_public {
            return Err(KeyFileError::PublicKeyMismatch { stored: stored.ed25519_public });
        }
        Ok(NodeKeyFile::new(&key))
    }
}

impl fmt::Debug for NodeKeyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeKeyFile(public {}, seed redacted)", self.public)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips() {
        let key = SigningKey::generate().unwrap();
        let file = NodeKeyFile::new(&key);
        let bytes = file.encode();
        // It fits the preallocated buffer, so no stray copy was left by a reallocation.
        assert_eq!(bytes.len(), 100);
        assert_eq!(bytes.capacity(), 128);
        let back = NodeKeyFile::decode(&bytes).unwrap();
        assert_eq!(*back.seed(), *key.seed_bytes());
        assert_eq!(back.verifying_key(), key.verifying_key());
        assert_eq!(back.signing_key().verifying_key(), key.verifying_key());
    }

    #[test]
    fn refuses_unknown_versions_and_oversized_files() {
        let key = SigningKey::from_seed([1; 32]);
        let future = Stored { v: 2, ed25519_seed: [1; 32], ed25519_public: key.verifying_key() };
        assert_eq!(
            NodeKeyFile::decode(&cbor::encode(&future)).unwrap_err(),
            KeyFileError::Decode(DecodeError::UnsupportedVersion { found: 2, supported: 1 })
        );
        let big = vec![0u8; MAX_KEYFILE + 1];
        assert!(matches!(
            NodeKeyFile::decode(&big),
            Err(KeyFileError::Decode(DecodeError::TooLarge { .. }))
        ));
    }

    #[test]
    fn debug_hides_the_seed() {
        let file = NodeKeyFile::new(&SigningKey::from_seed([0x5a; 32]));
        let shown = format!("{file:?}");
        assert!(shown.contains("redacted"));
        assert!(!shown.contains(&crate::text::encode(&[0x5a; 32])));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// A damaged key file never loads as some other key.
        #[test]
        fn any_flipped_bit_is_refused(seed in any::<[u8; 32]>(), bit in any::<prop::sample::Index>()) {
            let mut bytes = NodeKeyFile::new(&SigningKey::from_seed(seed)).encode();
            let at = bit.index(bytes.len() * 8);
            bytes[at / 8] ^= 1 << (at % 8);
            prop_assert!(NodeKeyFile::decode(&bytes).is_err());
        }
    }
}
