//! The sled 0.34 engine (feature `sled`): each keyspace two trees (values
//! and expiry index), every batch one multi-tree transaction followed by
//! `flush` (fsync) before the batch is acknowledged.

use std::path::Path;

use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::{Db, Transactional, Tree};

use crate::engine::{
    Applied, Engine, Entries, Mutation, Op, SpaceId, TOTALS, add_totals, bounds, decode_totals,
    encode_totals,
};
use crate::error::EngineError;
use crate::keyspace::{Keyspace, Kind};
use crate::value;

pub(crate) struct SledEngine {
    db: Db,
    spaces: Vec<Keyspace>,
    /// Per keyspace: its values tree, then its expiry tree; last, the
    /// totals tree.
    trees: Vec<Tree>,
}

fn map(e: sled::Error) -> EngineError {
    match e {
        sled::Error::Io(io) => EngineError::from_io(io),
        sled::Error::Corruption { .. } => EngineError::Corrupt(e.to_string()),
        other => EngineError::Other(other.to_string()),
    }
}

type TxResult<T> = Result<T, ConflictableTransactionError<EngineError>>;

fn abort(e: EngineError) -> ConflictableTransactionError<EngineError> {
    ConflictableTransactionError::Abort(e)
}

impl SledEngine {
    pub(crate) fn open(path: &Path, spaces: &[Keyspace]) -> Result<Self, EngineError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(crate::engine::CACHE_BYTES as u64)
            .open()
            .map_err(map)?;
        let mut trees = Vec::with_capacity(2 * spaces.len());
        for space in spaces {
            trees.push(db.open_tree(space.name()).map_err(map)?);
            trees.push(db.open_tree(space.expiry_name()).map_err(map)?);
        }
        trees.push(db.open_tree(TOTALS).map_err(map)?);
        Ok(Self { db, spaces: spaces.to_vec(), trees })
    }

    fn tree(&self, space: SpaceId, which: usize) -> Result<&Tree, EngineError> {
        self.trees
            .get(2 * space + which)
            .ok_or_else(|| EngineError::Other(format!("no keyspace number {space}")))
    }
}

struct Trees<'a> {
    id: SpaceId,
    kind: Kind,
    values: &'a TransactionalTree,
    expiry: &'a TransactionalTree,
}

impl Trees<'_> {
    fn count(&self, applied: &mut Applied, entries: i64, bytes: usize) {
        if self.kind == Kind::Immutable {
            applied.count(self.id, entries, entries * bytes as i64);
        }
    }

    fn delete(&self, key: &[u8], applied: &mut Applied) -> TxResult<bool> {
        let Some(raw) = self.values.remove(key)? else { return Ok(false) };
        if let Ok((expires, payload)) = value::decode(&raw) {
            self.expiry.remove(value::expiry_key(expires, key))?;
            self.count(applied, -1, payload.len());
        }
        Ok(true)
    }

    fn apply(&self, op: &Op, expired: &[Vec<u8>], applied: &mut Applied) -> TxResult<()> {
        match op {
            Op::Put { key, payload, expires } => {
                let old = self.values.get(key)?;
                let old = old
                    .as_deref()
                    .and_then(|raw| value::decode(raw).ok().map(|(e, p)| (e, p.to_vec())));
                let (expires, payload): (u64, &[u8]) = match (&old, self.kind) {
                    (Some((old_expires, old_payload)), Kind::Immutable) => {
                        ((*old_expires).max(*expires), old_payload)
                    }
                    _ => (*expires, payload),
                };
                if let Some((old_expires, old_payload)) = &old {
                    self.expiry.remove(value::expiry_key(*old_expires, key))?;
                    self.count(applied, -1, old_payload.len());
                }
                self.values.insert(key.as_slice(), value::encode(expires, payload))?;
                self.expiry.insert(value::expiry_key(expires, key), &[][..])?;
                self.count(applied, 1, payload.len());
            }
            Op::Delete { key } => {
                self.delete(key, applied)?;
            }
            Op::Extend { key, expires } => {
                if let Some(raw) = self.values.get(key)? {
                    let (old_expires, payload) = value::decode(&raw).map_err(abort)?;
                    if *expires > old_expires {
                        self.expiry.remove(value::expiry_key(old_expires, key))?;
                        self.values.insert(key.as_slice(), value::encode(*expires, payload))?;
                        self.expiry.insert(value::expiry_key(*expires, key), &[][..])?;
                    }
                }
            }
            Op::Expire { .. } => {
                for key in expired {
                    if self.delete(key, applied)? {
                        applied.expired += 1;
                    }
                }
            }
        }
        Ok(())
    }
}

impl Engine for SledEngine {
    fn apply(&self, batch: &[Mutation]) -> Result<Applied, EngineError> {
        // sled transactions cannot range-scan: find expired keys first (the
        // transaction re-checks each one).
        let mut expired: Vec<Vec<Vec<u8>>> = Vec::with_capacity(batch.len());
        for mutation in batch {
            let mut keys = Vec::new();
            if let Op::Expire { now, limit } = mutation.op {
                for entry in
                    self.tree(mutation.space, 1)?.range(..now.to_be_bytes().to_vec()).take(limit)
                {
                    let (k, _) = entry.map_err(map)?;
                    keys.push(k[8..].to_vec());
                }
            }
            expired.push(keys);
        }
        let result = self.trees.as_slice().transaction(|trees| {
            let mut applied = Applied::default();
            for (mutation, expired) in batch.iter().zip(&expired) {
                let (Some(values), Some(expiry), Some(space)) = (
                    trees.get(2 * mutation.space),
                    trees.get(2 * mutation.space + 1),
                    self.spaces.get(mutation.space),
                ) else {
                    return Err(abort(EngineError::Other(format!(
                        "no keyspace number {}",
                        mutation.space
                    ))));
                };
                let trees = Trees { id: mutation.space, kind: space.kind(), values, expiry };
                trees.apply(&mutation.op, expired, &mut applied)?;
            }
            if let Some(kept) = trees.last() {
                for (id, entries, bytes) in &applied.deltas {
                    let Some(space) = self.spaces.get(*id) else { continue };
                    let row = kept.get(space.name())?;
                    // No row yet: `totals` counts the keyspace at the next open.
                    if let Some(row) = row.as_deref().and_then(decode_totals) {
                        let (e, b) = add_totals(row, *entries, *bytes);
                        kept.insert(space.name(), &encode_totals(e, b)[..])?;
                    }
                }
            }
            Ok(applied)
        });
        let applied = result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => map(e),
        })?;
        self.db.flush().map_err(map)?;
        Ok(applied)
    }

    fn get(&self, space: SpaceId, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(self.tree(space, 0)?.get(key).map_err(map)?.map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        space: SpaceId,
        from: &[u8],
        until: Option<&[u8]>,
        limit: usize,
    ) -> Result<Entries, EngineError> {
        let Some(range) = bounds(from, until) else {
            return Ok(Vec::new());
        };
        let tree = self.tree(space, 0)?;
        let mut out = Vec::new();
        for entry in tree.range::<&[u8], _>(range).take(limit) {
            let (k, v) = entry.map_err(map)?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    fn scan_expiry(
        &self,
        space: SpaceId,
        from: &[u8],
        until: Option<&[u8]>,
        limit: usize,
    ) -> Result<Entries, EngineError> {
        let Some(range) = bounds(from, until) else {
            return Ok(Vec::new());
        };
        let values = self.tree(space, 0)?;
        let index = self.tree(space, 1)?;
        let mut out = Vec::new();
        for entry in index.range::<&[u8], _>(range).take(limit) {
            let (k, _) = entry.map_err(map)?;
            let key = k.get(8..).unwrap_or_default();
            if let Some(v) = values.get(key).map_err(map)? {
                out.push((key.to_vec(), v.to_vec()));
            }
        }
        Ok(out)
    }

    fn totals(&self, space: SpaceId) -> Result<(u64, u64), EngineError> {
        let name = self.spaces.get(space).map(Keyspace::name).unwrap_or_default();
        let kept = self.trees.last().ok_or_else(|| EngineError::Other("no totals tree".into()))?;
        if let Some(totals) = kept.get(name).map_err(map)?.as_deref().and_then(decode_totals) {
            return Ok(totals);
        }
        // Written before totals were kept: count once, and keep the count.
        let (mut count, mut bytes) = (0u64, 0u64);
        for entry in self.tree(space, 0)?.iter() {
            let (_, v) = entry.map_err(map)?;
            count += 1;
            bytes += v.len().saturating_sub(value::HEADER) as u64;
        }
        kept.insert(name, &encode_totals(count, bytes)[..]).map_err(map)?;
        self.db.flush().map_err(map)?;
        Ok((count, bytes))
    }
}
