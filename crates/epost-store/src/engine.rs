//! The engine layer: what a storage engine must provide. Small and
//! synchronous; batching, durability timing and concurrency live above it.

use crate::error::EngineError;

/// Raw (key, stored value) pairs from a scan.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// One of the two keyspaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    Blocks,
    Records,
}

/// One change, applied inside a batch.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Blocks: idempotent (same key keeps its data; lease becomes the later
    /// of old and new). Records: overwrite.
    Put {
        space: Space,
        key: Vec<u8>,
        payload: Vec<u8>,
        expires: u64,
    },
    Delete {
        space: Space,
        key: Vec<u8>,
    },
    /// Moves the lease later, never earlier; no-op if absent.
    Extend {
        space: Space,
        key: Vec<u8>,
        expires: u64,
    },
    /// Removes up to `limit` entries whose lease ended before `now`.
    Expire {
        space: Space,
        now: u64,
        limit: usize,
    },
}

/// What a committed batch changed, for the store's running totals.
#[derive(Debug, Default, Clone, Copy)]
pub struct Applied {
    /// Net change in stored block count and payload bytes.
    pub blocks_delta: i64,
    pub bytes_delta: i64,
    /// Entries removed by `Expire` mutations.
    pub expired: u64,
}

/// A storage engine. Implementations must make `apply` atomic (all or
/// nothing) and durable (fsynced) before returning `Ok`.
pub trait Engine: Send + Sync + 'static {
    /// Applies every mutation in one transaction with one fsync.
    fn apply(&self, batch: &[Mutation]) -> Result<Applied, EngineError>;
    /// The raw stored value (header included) at `key`.
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError>;
    /// Up to `limit` (key, raw value) pairs with key >= `from`, in key order.
    fn scan(&self, space: Space, from: &[u8], limit: usize) -> Result<Entries, EngineError>;
    /// (count, payload bytes) of the blocks, by a full scan (used at open).
    fn block_totals(&self) -> Result<(u64, u64), EngineError>;
}
