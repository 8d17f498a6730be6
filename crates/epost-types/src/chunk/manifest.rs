//! The manifest: the body of a manifest object, listing its children.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::capability::Capability;
use crate::cbor::{self, DecodeError, Versioned};
use crate::limits::{MAX_CHUNK_SIZE, MAX_FANOUT, MAX_MANIFEST, MAX_TREE_DEPTH, MIN_CHUNK_SIZE};

/// The manifest format this code writes and reads.
pub const MANIFEST_VERSION: u8 = 1;

/// A node of the chunk tree. Decoding validates it, so a `Manifest` from
/// [`Manifest::decode`] is always internally consistent; whether it tells
/// the truth about its children is checked as they are read.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    // Fields are in CBOR key order (RFC 8949 deterministic: shorter keys
    // first, then bytewise), which is the order they are encoded in.
    pub v: u8,
    /// 1: the children are data chunks. d > 1: they are manifests of depth d - 1.
    pub depth: u8,
    pub children: Vec<ChildRef>,
    /// Bytes of data under this manifest: the sum of its children's `len`.
    pub total_len: u64,
    /// The writer's chunk size; every data chunk in the tree is at most this.
    pub chunk_size: u32,
}

/// One child: how to read it and how many data bytes it stands for.
/// Encoded as the CBOR array `[capability, len]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildRef {
    pub capability: Capability,
    pub len: u64,
}

/// Why a manifest is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest does not decode: {0}")]
    Decode(#[from] DecodeError),
    #[error("manifest version {found} is not supported (this build reads version {supported})")]
    UnsupportedVersion { found: u8, supported: u8 },
    #[error("manifest depth {depth} is outside 1..={MAX_TREE_DEPTH}")]
    BadDepth { depth: u8 },
    #[error("manifest chunk size {size} is outside {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE}")]
    BadChunkSize { size: u32 },
    #[error("manifest has {count} children; it must have 1..={MAX_FANOUT}")]
    BadChildCount { count: usize },
    #[error("child {index} claims 0 bytes; only a whole object can be empty")]
    EmptyChild { index: usize },
    #[error("chunk {index} claims {len} bytes, over the chunk size {chunk_size}")]
    ChunkTooLong { index: usize, len: u64, chunk_size: u32 },
    #[error("manifest claims {declared} bytes but its children add up to {sum:?}")]
    LengthSum { declared: u64, sum: Option<u64> },
}

impl Versioned for Manifest {
    const VERSION: u8 = MANIFEST_VERSION;

    fn version(&self) -> u8 {
        self.v
    }
}

impl Manifest {
    /// The canonical CBOR encoding (the body of a manifest object).
    pub fn encode(&self) -> Vec<u8> {
        cbor::encode(self)
    }

    /// Decodes at most [`MAX_MANIFEST`] bytes and validates the result.
    pub fn decode(bytes: &[u8]) -> Result<Self, ManifestError> {
        let manifest: Manifest = cbor::decode(bytes, MAX_MANIFEST)?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Checks the rules a manifest obeys on its own.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if self.v != MANIFEST_VERSION {
            return Err(ManifestError::UnsupportedVersion {
                found: self.v,
                supported: MANIFEST_VERSION,
            });
        }
        if !(1..=MAX_TREE_DEPTH).contains(&self.depth) {
            return Err(ManifestError::BadDepth { depth: self.depth });
        }
        let size = self.chunk_size;
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&(size as usize)) {
            return Err(ManifestError::BadChunkSize { size });
        }
        let count = self.children.len();
        if !(1..=MAX_FANOUT).contains(&count) {
            return Err(ManifestError::BadChildCount { count });
        }
        let mut sum = Some(0u64);
        for (index, child) in self.children.iter().enumerate() {
            if child.len == 0 {
                return Err(ManifestError::EmptyChild { index });
            }
            if self.depth == 1 && child.len > u64::from(size) {
                return Err(ManifestError::ChunkTooLong {
                    index,
                    len: child.len,
                    chunk_size: size,
                });
            }
            sum = sum.and_then(|s| s.checked_add(child.len));
        }
        if sum != Some(self.total_len) {
            return Err(ManifestError::LengthSum { declared: self.total_len, sum });
        }
        Ok(())
    }
}

impl fmt::Debug for Manifest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manifest")
            .field("v", &self.v)
            .field("depth", &self.depth)
            .field("chunk_size", &self.chunk_size)
            .field("total_len", &self.total_len)
            .field("children", &self.children.len())
            .finish()
    }
}

impl Serialize for ChildRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (&self.capability, self.len).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ChildRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (capability, len) = <(Capability, u64)>::deserialize(deserializer)?;
        Ok(ChildRef { capability, len })
    }
}
