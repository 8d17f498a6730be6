//! The store's tests: one conformance suite run against every backend,
//! group commit, and child processes killed mid-write or starved of disk.

mod conformance;
mod crash;

use std::path::Path;

use crate::{Backend, Keyspace, Store, keyspace};

/// Content-addressed values, as the node's fragments.
pub(crate) const BLOCKS: Keyspace = keyspace!("blocks", Immutable, key: 64, value: 17 << 20);
/// Small mutable values, as the node's records.
pub(crate) const RECORDS: Keyspace = keyspace!("records", Mutable, key: 256, value: 64 << 10);
/// Swept by nobody but its owner.
pub(crate) const OWNED: Keyspace = keyspace!("owned", Mutable, key: 256, value: 1024).unswept();

/// Every backend compiled in.
pub(crate) fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Redb];
    if cfg!(feature = "sled") {
        all.push(Backend::Sled);
    }
    all
}

pub(crate) fn open(dir: &Path, backend: Backend) -> Store {
    Store::open(dir, backend, &[BLOCKS, RECORDS, OWNED])
        .unwrap_or_else(|e| panic!("open {backend:?}: {e}"))
}

/// Content derived from a key index, so anything read back can be checked.
pub(crate) fn content(index: u64) -> Vec<u8> {
    let len = 100 + (index * 7919 % 20_000) as usize;
    let mut state = index.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

pub(crate) fn key(index: u64) -> Vec<u8> {
    index.to_be_bytes().to_vec()
}
