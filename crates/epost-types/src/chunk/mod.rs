//! Large objects: split into chunks under a tree of manifests, written and
//! read by sans-IO state machines.
//!
//! Every chunk and manifest is an ordinary convergent object, so a shared
//! attachment or a repeated chunk is stored once. A capability names the
//! root: a data object if the input fit in one chunk (so small objects
//! cost one object, no manifest), otherwise a manifest whose children are
//! data chunks (depth 1) or manifests one level lower (depth > 1).
//!
//! The tree is canonical for a given input, secret and [`Layout`]: chunks
//! are cut at multiples of the chunk size, and each level is grouped into
//! runs of `fanout` children, left to right, until one node remains.
//!
//! Memory is bounded on both sides: the writer holds one chunk and at most
//! `fanout` child entries per level; the reader holds one pending child
//! list per level, and the tree is at most [`MAX_TREE_DEPTH`] levels deep.

mod manifest;
mod reader;
mod writer;

pub use manifest::{ChildRef, MANIFEST_VERSION, Manifest, ManifestError};
pub use reader::{Needed, ObjectReader, ReadError};
pub use writer::{Finished, ObjectWriter};

pub use crate::limits::{
    DEFAULT_CHUNK_SIZE, DEFAULT_FANOUT, MAX_CHUNK_SIZE, MAX_FANOUT, MAX_TREE_DEPTH, MIN_CHUNK_SIZE,
    MIN_FANOUT,
};

/// How a writer cuts and groups: bytes per chunk, children per manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    chunk_size: usize,
    fanout: usize,
}

/// A layout outside the bounds every reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("chunk size {size} is outside {MIN_CHUNK_SIZE}..={MAX_CHUNK_SIZE}")]
    ChunkSize { size: usize },
    #[error("fanout {fanout} is outside {MIN_FANOUT}..={MAX_FANOUT}")]
    Fanout { fanout: usize },
}

impl Layout {
    pub const DEFAULT: Layout = Layout { chunk_size: DEFAULT_CHUNK_SIZE, fanout: DEFAULT_FANOUT };

    pub fn new(chunk_size: usize, fanout: usize) -> Result<Self, LayoutError> {
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
            return Err(LayoutError::ChunkSize { size: chunk_size });
        }
        if !(MIN_FANOUT..=MAX_FANOUT).contains(&fanout) {
            return Err(LayoutError::Fanout { fanout });
        }
        Ok(Layout { chunk_size, fanout })
    }

    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    pub fn fanout(&self) -> usize {
        self.fanout
    }
}

impl Default for Layout {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests;
