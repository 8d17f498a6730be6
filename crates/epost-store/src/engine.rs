//! The engine layer: what a storage engine must provide. Small and
//! synchronous; batching, durability timing and concurrency live above it.

use crate::error::EngineError;

/// Raw (key, stored value) pairs from a scan.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// A keyspace by its position in the list the store was opened with.
pub type SpaceId = usize;

/// One change, applied inside a batch.
#[derive(Debug, Clone)]
pub struct Mutation {
    pub space: SpaceId,
    pub op: Op,
}

/// What a mutation does to its keyspace.
#[derive(Debug, Clone)]
pub enum Op {
    /// Immutable keyspaces: idempotent (same key keeps its data; lease
    /// becomes the later of old and new). Mutable ones: overwrite.
    Put {
        key: Vec<u8>,
        payload: Vec<u8>,
        expires: u64,
    },
    Delete {
        key: Vec<u8>,
    },
    /// Moves the lease later, never earlier; no-op if absent.
    Extend {
        key: Vec<u8>,
        expires: u64,
    },
    /// Removes up to `limit` entries whose lease ended before `now`.
    Expire {
        now: u64,
        limit: usize,
    },
}

impl Op {
    /// Bytes this op adds to a batch, for the committer's bound.
    pub(crate) fn weight(&self) -> usize {
        match self {
            Op::Put { payload, key, .. } => payload.len() + key.len(),
            _ => 64,
        }
    }
}

/// What a committed batch changed, for the store's running totals.
#[derive(Debug, Default, Clone)]
pub struct Applied {
    /// Net change in (entries, payload bytes) per counted keyspace.
    pub deltas: Vec<(SpaceId, i64, i64)>,
    /// Entries removed by `Expire` mutations.
    pub expired: u64,
}

impl Applied {
    pub(crate) fn count(&mut self, space: SpaceId, entries: i64, bytes: i64) {
        match self.deltas.iter_mut().find(|(s, _, _)| *s == space) {
            Some((_, e, b)) => {
                *e += entries;
                *b += bytes;
            }
            None => self.deltas.push((space, entries, bytes)),
        }
    }
}

/// A storage engine. Implementations must make `apply` atomic (all or
/// nothing) and durable (fsynced) before returning `Ok`, and keep each
/// keyspace's expiry index (`expires (u64 BE) || key`) exact.
pub trait Engine: Send + Sync + 'static {
    /// Applies every mutation in one transaction with one fsync.
    fn apply(&self, batch: &[Mutation]) -> Result<Applied, EngineError>;
    /// The raw stored value (header included) at `key`.
    fn get(&self, space: SpaceId, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError>;
    /// Up to `limit` (key, raw value) pairs with key >= `from` and below
    /// `until` (no bound when `None`), in key order.
    fn scan(
        &self,
        space: SpaceId,
        from: &[u8],
        until: Option<&[u8]>,
        limit: usize,
    ) -> Result<Entries, EngineError>;
    /// Up to `limit` (key, raw value) pairs whose expiry-index key is in
    /// `[from, until)` (no upper bound when `until` is `None`), in expiry
    /// order, read in one read transaction.
    fn scan_expiry(
        &self,
        space: SpaceId,
        from: &[u8],
        until: Option<&[u8]>,
        limit: usize,
    ) -> Result<Entries, EngineError>;
    /// (entries, payload bytes) of a keyspace, by a full scan (used at
    /// open, for counted keyspaces only).
    fn totals(&self, space: SpaceId) -> Result<(u64, u64), EngineError>;
}
