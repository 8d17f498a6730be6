//! The sled 0.34 engine (feature `sled`): the same four keyspaces as trees,
//! every batch one multi-tree transaction followed by `flush` (fsync)
//! before the batch is acknowledged.

use std::path::Path;

use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::{Db, Transactional, Tree};

use crate::engine::{Applied, Engine, Entries, Mutation, Space};
use crate::error::EngineError;
use crate::value;

pub(crate) struct SledEngine {
    db: Db,
    blocks: Tree,
    block_expiry: Tree,
    records: Tree,
    record_expiry: Tree,
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
    pub(crate) fn open(path: &Path) -> Result<Self, EngineError> {
        let db = sled::Config::new().path(path).open().map_err(map)?;
        Ok(Self {
            blocks: db.open_tree("blocks").map_err(map)?,
            block_expiry: db.open_tree("block_expiry").map_err(map)?,
            records: db.open_tree("records").map_err(map)?,
            record_expiry: db.open_tree("record_expiry").map_err(map)?,
            db,
        })
    }

    fn trees(&self, space: Space) -> (&Tree, &Tree) {
        match space {
            Space::Blocks => (&self.blocks, &self.block_expiry),
            Space::Records => (&self.records, &self.record_expiry),
        }
    }
}

fn delete(
    values: &TransactionalTree,
    expiry: &TransactionalTree,
    space: Space,
    key: &[u8],
    applied: &mut Applied,
) -> TxResult<bool> {
    let Some(raw) = values.remove(key)? else { return Ok(false) };
    if let Ok((expires, payload)) = value::decode(&raw) {
        expiry.remove(value::expiry_key(expires, key))?;
        if space == Space::Blocks {
            applied.blocks_delta -= 1;
            applied.bytes_delta -= payload.len() as i64;
        }
    }
    Ok(true)
}

fn apply_one(
    values: &TransactionalTree,
    expiry: &TransactionalTree,
    mutation: &Mutation,
    expired: &[Vec<u8>],
    applied: &mut Applied,
) -> TxResult<()> {
    match mutation {
        Mutation::Put { space, key, payload, expires } => {
            let old = values.get(key)?;
            let old = old
                .as_deref()
                .and_then(|raw| value::decode(raw).ok().map(|(e, p)| (e, p.to_vec())));
            let (expires, payload): (u64, &[u8]) = match (&old, space) {
                (Some((old_expires, old_payload)), Space::Blocks) => {
                    ((*old_expires).max(*expires), old_payload)
                }
                _ => (*expires, payload),
            };
            if let Some((old_expires, old_payload)) = &old {
                expiry.remove(value::expiry_key(*old_expires, key))?;
                if *space == Space::Blocks {
                    applied.blocks_delta -= 1;
                    applied.bytes_delta -= old_payload.len() as i64;
                }
            }
            values.insert(key.as_slice(), value::encode(expires, payload))?;
            expiry.insert(value::expiry_key(expires, key), &[][..])?;
            if *space == Space::Blocks {
                applied.blocks_delta += 1;
                applied.bytes_delta += payload.len() as i64;
            }
        }
        Mutation::Delete { space, key } => {
            delete(values, expiry, *space, key, applied)?;
        }
        Mutation::Extend { key, expires, .. } => {
            if let Some(raw) = values.get(key)? {
                let (old_expires, payload) = value::decode(&raw).map_err(abort)?;
                if *expires > old_expires {
                    expiry.remove(value::expiry_key(old_expires, key))?;
                    values.insert(key.as_slice(), value::encode(*expires, payload))?;
                    expiry.insert(value::expiry_key(*expires, key), &[][..])?;
                }
            }
        }
        Mutation::Expire { space, .. } => {
            for key in expired {
                if delete(values, expiry, *space, key, applied)? {
                    applied.expired += 1;
                }
            }
        }
    }
    Ok(())
}

impl Engine for SledEngine {
    fn apply(&self, batch: &[Mutation]) -> Result<Applied, EngineError> {
        // sled transactions cannot range-scan: find expired keys first (the
        // transaction re-checks each one).
        let mut expired: Vec<Vec<Vec<u8>>> = Vec::with_capacity(batch.len());
        for mutation in batch {
            let mut keys = Vec::new();
            if let Mutation::Expire { space, now, limit } = mutation {
                let (_, expiry) = self.trees(*space);
                for entry in expiry.range(..now.to_be_bytes().to_vec()).take(*limit) {
                    let (k, _) = entry.map_err(map)?;
                    keys.push(k[8..].to_vec());
                }
            }
            expired.push(keys);
        }
        let result = (&self.blocks, &self.block_expiry, &self.records, &self.record_expiry)
            .transaction(|(blocks, block_expiry, records, record_expiry)| {
                let mut applied = Applied::default();
                for (mutation, expired) in batch.iter().zip(&expired) {
                    let space = match mutation {
                        Mutation::Put { space, .. }
                        | Mutation::Delete { space, .. }
                        | Mutation::Extend { space, .. }
                        | Mutation::Expire { space, .. } => *space,
                    };
                    let (values, expiry) = if space == Space::Blocks {
                        (blocks, block_expiry)
                    } else {
                        (records, record_expiry)
                    };
                    apply_one(values, expiry, mutation, expired, &mut applied)?;
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

    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(self.trees(space).0.get(key).map_err(map)?.map(|v| v.to_vec()))
    }

    fn scan(&self, space: Space, from: &[u8], limit: usize) -> Result<Entries, EngineError> {
        let mut out = Vec::new();
        for entry in self.trees(space).0.range(from.to_vec()..).take(limit) {
            let (k, v) = entry.map_err(map)?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    fn block_totals(&self) -> Result<(u64, u64), EngineError> {
        let (mut count, mut bytes) = (0u64, 0u64);
        for entry in self.blocks.iter() {
            let (_, v) = entry.map_err(map)?;
            count += 1;
            bytes += v.len().saturating_sub(value::HEADER) as u64;
        }
        Ok((count, bytes))
    }
}
