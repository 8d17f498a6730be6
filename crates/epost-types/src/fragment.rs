//! Erasure-coded fragments: the unit the storage network moves and keeps.
//!
//! An object's ciphertext is split into `k` data and `m` parity fragments
//! (the codec lives in the storage service). Each fragment carries the
//! SHA-256 of every fragment's data, so a holder or reader can check the
//! fragment in hand against its own hash entry ([`Fragment::verify`]).
//!
//! What one fragment cannot prove alone: that its header and hash list
//! belong to `object_id`. Readers therefore decode with the header and
//! hash list that most fragments agree on, and finally check
//! SHA-256(ciphertext) == object id; a fragment that disagrees is dropped.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::cbor::{self, DecodeError, Versioned};
use crate::hash::sha256;
use crate::id::ObjectId;
use crate::limits::{MAX_FRAGMENT, MAX_FRAGMENT_PADDING, MAX_OBJECT_CIPHERTEXT};

/// The fragment format this code writes and reads.
pub const FRAGMENT_VERSION: u8 = 1;

/// One of the `k + m` fragments of an object.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fragment {
    // Fields are in CBOR key order (RFC 8949 deterministic: shorter keys
    // first, then bytewise), which is the order they are encoded in.
    pub k: u8,
    pub m: u8,
    pub v: u8,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    /// Position in `0..k + m`; the first `k` are the data fragments.
    pub index: u8,
    /// SHA-256 of each fragment's `data`, in index order: `k + m` entries.
    #[serde(with = "crate::fixed::hash_list")]
    pub hashes: Vec<[u8; 32]>,
    pub object_id: ObjectId,
    /// Length of the object's ciphertext (the codec pads the last shard).
    pub object_len: u64,
}

/// Why a fragment is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FragmentError {
    #[error("fragment version {found} is not supported (this build reads version {supported})")]
    UnsupportedVersion { found: u8, supported: u8 },
    #[error("k = {k}, m = {m}: need k >= 1 and k + m <= 255")]
    BadLayout { k: u8, m: u8 },
    #[error("index {index} is outside 0..{total}")]
    BadIndex { index: u8, total: u16 },
    #[error("{found} hashes listed; k + m = {expected}")]
    HashCount { found: usize, expected: u16 },
    #[error("object length {len} is over the {max}-byte object limit")]
    ObjectTooLarge { len: u64, max: usize },
    #[error("fragment data is {len} bytes; a share of this object is {min} to {max}")]
    BadDataLength { len: usize, min: u64, max: u64 },
    #[error("fragment data does not match its hash")]
    HashMismatch,
}

/// Why bytes are not a fragment that can be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("not a fragment")]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Invalid(#[from] FragmentError),
    #[error("fragment {found_index} of {found_id}, not fragment {index} of {id} as asked")]
    NotAsked { id: ObjectId, index: u8, found_id: ObjectId, found_index: u8 },
}

impl Versioned for Fragment {
    const VERSION: u8 = FRAGMENT_VERSION;

    fn version(&self) -> u8 {
        self.v
    }
}

impl Fragment {
    /// Checks the fragment's structure and that its data matches its own
    /// hash entry. Holders run this before storing, readers before using.
    pub fn verify(&self) -> Result<(), FragmentError> {
        if self.v != FRAGMENT_VERSION {
            return Err(FragmentError::UnsupportedVersion {
                found: self.v,
                supported: FRAGMENT_VERSION,
            });
        }
        let total = u16::from(self.k) + u16::from(self.m);
        if self.k == 0 || total > 255 {
            return Err(FragmentError::BadLayout { k: self.k, m: self.m });
        }
        if u16::from(self.index) >= total {
            return Err(FragmentError::BadIndex { index: self.index, total });
        }
        if self.hashes.len() != usize::from(total) {
            return Err(FragmentError::HashCount { found: self.hashes.len(), expected: total });
        }
        if self.object_len > MAX_OBJECT_CIPHERTEXT as u64 {
            return Err(FragmentError::ObjectTooLarge {
                len: self.object_len,
                max: MAX_OBJECT_CIPHERTEXT,
            });
        }
        // Whatever the codec, k shares must cover the object, and padding
        // is small: this stops a tiny object's fragment carrying megabytes.
        let min = self.object_len.div_ceil(u64::from(self.k));
        let max = min + MAX_FRAGMENT_PADDING as u64;
        let len = self.data.len() as u64;
        if len < min || len > max {
            return Err(FragmentError::BadDataLength { len: self.data.len(), min, max });
        }
        let expected = self.hashes.get(usize::from(self.index));
        if expected != Some(&sha256(&self.data)) {
            return Err(FragmentError::HashMismatch);
        }
        Ok(())
    }

    /// The canonical CBOR encoding.
    pub fn encode(&self) -> Vec<u8> {
        cbor::encode(self)
    }

    /// Decodes at most [`MAX_FRAGMENT`] bytes. Call [`verify`](Self::verify)
    /// before trusting the data.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        cbor::decode(bytes, MAX_FRAGMENT)
    }

    /// Decodes and [`verify`](Self::verify)s: what a holder checks before
    /// it stores a fragment it was given.
    pub fn decode_verified(bytes: &[u8]) -> Result<Self, CheckError> {
        let fragment = Self::decode(bytes)?;
        fragment.verify()?;
        Ok(fragment)
    }

    /// Decodes, verifies, and checks that it is fragment `index` of `id`:
    /// what is checked whenever a fragment is read (from disk or a peer).
    pub fn decode_checked(bytes: &[u8], id: ObjectId, index: u8) -> Result<Self, CheckError> {
        let fragment = Self::decode_verified(bytes)?;
        if fragment.object_id != id || fragment.index != index {
            return Err(CheckError::NotAsked {
                id,
                index,
                found_id: fragment.object_id,
                found_index: fragment.index,
            });
        }
        Ok(fragment)
    }
}

impl fmt::Debug for Fragment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fragment")
            .field("v", &self.v)
            .field("object_id", &self.object_id)
            .field("index", &self.index)
            .field("k", &self.k)
            .field("m", &self.m)
            .field("object_len", &self.object_len)
            .field("hashes", &self.hashes.len())
            .field("data_len", &self.data.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Fragments of `object` split naively into `k` shares plus `m` copies
    /// of the first share as stand-in parity (the format does not care).
    pub(crate) fn fragments(object: &[u8], k: u8, m: u8) -> Vec<Fragment> {
        let share = object.len().div_ceil(usize::from(k)).max(1);
        let mut shards: Vec<Vec<u8>> = (0..usize::from(k))
            .map(|i| {
                let mut s = object.get(i * share..).unwrap_or(&[]).to_vec();
                s.resize(share, 0);
                s
            })
            .collect();
        let first = shards[0].clone();
        shards.extend((0..m).map(|_| first.clone()));
        let hashes: Vec<[u8; 32]> = shards.iter().map(|s| sha256(s)).collect();
        shards
            .into_iter()
            .enumerate()
            .map(|(i, data)| Fragment {
                v: FRAGMENT_VERSION,
                object_id: ObjectId::of(object),
                index: i as u8,
                k,
                m,
                object_len: object.len() as u64,
                hashes: hashes.clone(),
                data,
            })
            .collect()
    }

    #[test]
    fn valid_fragments_pass_and_round_trip() {
        for fragment in fragments(b"some object ciphertext", 4, 4) {
            assert_eq!(fragment.verify(), Ok(()));
            let bytes = fragment.encode();
            assert_eq!(Fragment::decode(&bytes), Ok(fragment));
        }
    }

    #[test]
    fn structural_checks() {
        let good = fragments(b"0123456789abcdef", 2, 1).remove(0);
        let check = |change: &dyn Fn(&mut Fragment)| {
            let mut f = good.clone();
            change(&mut f);
            f.verify()
        };
        assert_eq!(
            check(&|f| f.v = 2),
            Err(FragmentError::UnsupportedVersion { found: 2, supported: 1 })
        );
        assert_eq!(check(&|f| f.k = 0), Err(FragmentError::BadLayout { k: 0, m: 1 }));
        assert_eq!(check(&|f| f.m = 255), Err(FragmentError::BadLayout { k: 2, m: 255 }));
        assert_eq!(check(&|f| f.index = 3), Err(FragmentError::BadIndex { index: 3, total: 3 }));
        assert_eq!(
            check(&|f| {
                f.hashes.pop();
            }),
            Err(FragmentError::HashCount { found: 2, expected: 3 })
        );
        assert!(matches!(
            check(&|f| f.object_len = u64::MAX),
            Err(FragmentError::ObjectTooLarge { .. })
        ));
        assert!(matches!(check(&|f| f.object_len = 100), Err(FragmentError::BadDataLength { .. })));
        assert!(matches!(
            check(&|f| f.data.extend([0; 65])),
            Err(FragmentError::BadDataLength { .. })
        ));
        assert_eq!(check(&|f| f.data[0] ^= 1), Err(FragmentError::HashMismatch));
        assert_eq!(check(&|f| f.hashes[0][31] ^= 1), Err(FragmentError::HashMismatch));
        // Another fragment's hash entry does not protect this one.
        assert_eq!(check(&|f| f.hashes[1][0] ^= 1), Ok(()));
    }

    #[test]
    fn a_read_fragment_must_be_valid_and_the_one_asked_for() {
        let fragment = fragments(b"checked", 2, 1).remove(1);
        let (id, bytes) = (fragment.object_id, fragment.encode());
        assert_eq!(Fragment::decode_checked(&bytes, id, 1), Ok(fragment.clone()));
        assert!(matches!(
            Fragment::decode_checked(&bytes, id, 0),
            Err(CheckError::NotAsked { index: 0, found_index: 1, .. })
        ));
        let other = ObjectId::of(b"another object");
        assert!(matches!(
            Fragment::decode_checked(&bytes, other, 1),
            Err(CheckError::NotAsked { .. })
        ));
        let mut damaged = fragment;
        damaged.data[0] ^= 1;
        assert_eq!(
            Fragment::decode_checked(&damaged.encode(), id, 1),
            Err(CheckError::Invalid(FragmentError::HashMismatch))
        );
        assert!(matches!(Fragment::decode_verified(b"not cbor"), Err(CheckError::Decode(_))));
    }

    #[test]
    fn decode_refuses_oversized_and_unknown_versions() {
        let huge = vec![0u8; MAX_FRAGMENT + 1];
        assert!(matches!(Fragment::decode(&huge), Err(DecodeError::TooLarge { .. })));
        let mut future = fragments(b"x", 1, 0).remove(0);
        future.v = 9;
        assert_eq!(
            Fragment::decode(&future.encode()),
            Err(DecodeError::UnsupportedVersion { found: 9, supported: 1 })
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Flipping any bit of an encoded fragment either gets it refused
        /// (decode or verify), or leaves the data intact and changes a
        /// header field or another fragment's hash, which the reader's
        /// agreement check and the final object id check catch. The data
        /// a passing fragment carries is never wrong.
        #[test]
        fn a_flipped_bit_never_yields_wrong_data(
            object in prop::collection::vec(any::<u8>(), 1..300),
            which in 0usize..6,
            bit in any::<prop::sample::Index>(),
        ) {
            let all = fragments(&object, 3, 3);
            let original = &all[which];
            let mut bytes = original.encode();
            let at = bit.index(bytes.len() * 8);
            bytes[at / 8] ^= 1 << (at % 8);
            if let Ok(decoded) = Fragment::decode(&bytes)
                && decoded.verify().is_ok()
            {
                prop_assert_eq!(&decoded.data, &original.data);
                let own = usize::from(decoded.index);
                prop_assert_eq!(decoded.hashes.get(own), original.hashes.get(own));
                prop_assert_ne!(&decoded, original);
            }
        }
    }
}
