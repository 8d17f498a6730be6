//! epost's local store: immutable blocks (erasure-coded fragments) and
//! small mutable records (Kademlia records, log heads), each with a lease,
//! on disk, crash-safe.
//!
//! The rest of epost uses [`Store`]: many concurrent writers, one committer
//! thread that groups their mutations into one transaction and one fsync
//! (group commit), and a write is acknowledged only once it is durable.
//! Reads go straight to the engine. The engine sits behind our own
//! [`engine::Engine`] trait: `redb` by default, `sled` behind the `sled`
//! cargo feature. This is the only crate that names a storage engine.
//!
//! It must never acknowledge a write before its fsync, never return bytes
//! that fail their stored header as data, and never panic on an I/O error
//! or a full disk: those come back to the callers of the failed batch.

mod committer;
pub mod engine;
mod error;
mod redb_engine;
#[cfg(feature = "sled")]
mod sled_engine;
mod store;
mod value;

#[cfg(test)]
mod tests;

pub use error::{EngineError, OpenError, StoreError};
pub use store::{Block, BlockMeta, Record, Stats, Store, StoreMetrics};

/// Largest block key (an object id and a fragment index fit easily).
pub const MAX_BLOCK_KEY: usize = 64;
/// Largest block value (one fragment of the largest chunk, with headroom).
pub const MAX_BLOCK_VALUE: usize = 17 * 1024 * 1024;
/// Largest record key.
pub const MAX_RECORD_KEY: usize = 256;
/// Largest record value (records are small signed values).
pub const MAX_RECORD_VALUE: usize = 64 * 1024;

/// Which engine stores the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// redb: ACID, copy-on-write B-trees, maintained. The default.
    Redb,
    /// sled 0.34: unmaintained; available with the `sled` feature because
    /// the original design named it, and run through the same tests.
    Sled,
}
