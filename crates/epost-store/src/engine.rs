//! The engine layer: what a storage engine must provide. Small and
//! synchronous; batching, durability timing and concurrency live above it.

use std::ops::Bound;

use crate::error::EngineError;

/// Bytes of pages an engine keeps in memory. Both engines default to
/// 1 GiB per database, which a node fills as it writes (every mail log
/// entry is a few fragments on several nodes), a node on a small machine
/// cannot spare, and `epost dev` has five of in one process; the file's
/// pages stay in the OS page cache besides.
pub(crate) const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// The table (tree) holding each counted keyspace's running totals, by
/// keyspace name: `entries (u64 BE) || payload bytes (u64 BE)`, updated in
/// the transaction of every batch that changes them, so opening a store
/// does not read every value to count them.
pub(crate) const TOTALS: &str = "store.totals";

/// A totals row.
pub(crate) fn encode_totals(entries: u64, bytes: u64) -> [u8; 16] {
    let mut row = [0u8; 16];
    row[..8].copy_from_slice(&entries.to_be_bytes());
    row[8..].copy_from_slice(&bytes.to_be_bytes());
    row
}

/// A totals row read back (`None` if it is not 16 bytes).
pub(crate) fn decode_totals(row: &[u8]) -> Option<(u64, u64)> {
    let entries = u64::from_be_bytes(row.get(..8)?.try_into().ok()?);
    let bytes = u64::from_be_bytes(row.get(8..16)?.try_into().ok()?);
    (row.len() == 16).then_some((entries, bytes))
}

/// `(entries, bytes)` moved by a signed delta, never below zero.
pub(crate) fn add_totals(row: (u64, u64), entries: i64, bytes: i64) -> (u64, u64) {
    (row.0.saturating_add_signed(entries), row.1.saturating_add_signed(bytes))
}

/// A key range as an engine's range scan takes it.
pub(crate) type KeyRange<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// The key range `[from, until)` (no upper bound without `until`); `None`
/// when it is empty.
pub(crate) fn bounds<'a>(from: &'a [u8], until: Option<&'a [u8]>) -> Option<KeyRange<'a>> {
    match until {
        Some(until) if from >= until => None,
        Some(until) => Some((Bound::Included(from), Bound::Excluded(until))),
        None => Some((Bound::Included(from), Bound::Unbounded)),
    }
}

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
    /// (entries, payload bytes) of a counted keyspace, as kept by every
    /// commit in the totals table ([`TOTALS`]); a store written before that
    /// table existed is counted by one full scan, then kept. Read at open.
    fn totals(&self, space: SpaceId) -> Result<(u64, u64), EngineError>;
}
