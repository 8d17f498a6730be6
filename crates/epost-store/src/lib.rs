//! epost's local store: named keyspaces of values, each value with a lease,
//! on disk, crash-safe. Immutable keyspaces hold content-addressed values
//! (erasure-coded fragments); mutable ones small records (Kademlia records,
//! notifications, the lease book). Each keyspace has an expiry index, so
//! expired entries are swept in order and start-up reads only live ones.
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
mod keyspace;
mod redb_engine;
#[cfg(feature = "sled")]
mod sled_engine;
mod store;
mod value;

#[cfg(test)]
mod tests;

pub use error::{EngineError, OpenError, StoreError};
pub use keyspace::{Keyspace, Kind};
pub use store::{Batch, Entry, Stats, Store, StoreMetrics, Swept, successor};

/// Which engine stores the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// redb: ACID, copy-on-write B-trees, maintained. The default.
    Redb,
    /// sled 0.34: unmaintained; available with the `sled` feature because
    /// the original design named it, and run through the same tests.
    Sled,
}
