//! The redb engine: four tables (blocks, records, and an expiry index for
//! each), every batch one write transaction committed with
//! `Durability::Immediate` (fsync before `commit` returns).

use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, Table, TableDefinition};

use crate::engine::{Applied, Engine, Entries, Mutation, Space};
use crate::error::EngineError;
use crate::value;
use tracing::warn;

const BLOCKS: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("blocks");
const BLOCK_EXPIRY: TableDefinition<'static, &[u8], ()> = TableDefinition::new("block_expiry");
const RECORDS: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("records");
const RECORD_EXPIRY: TableDefinition<'static, &[u8], ()> = TableDefinition::new("record_expiry");

pub(crate) struct RedbEngine {
    path: PathBuf,
    /// `None` only after a database that hit an I/O failure was dropped and
    /// opening it again failed too (the disk is still full, say).
    db: RwLock<Option<Database>>,
}

fn map(e: impl Into<redb::Error>) -> EngineError {
    match e.into() {
        redb::Error::Io(io) => EngineError::from_io(io),
        redb::Error::PreviousIo => EngineError::NeedsReopen,
        redb::Error::Corrupted(what) => EngineError::Corrupt(what),
        other => EngineError::Other(other.to_string()),
    }
}

impl RedbEngine {
    pub(crate) fn open(path: &Path) -> Result<Self, EngineError> {
        Ok(Self { path: path.to_path_buf(), db: RwLock::new(Some(open_db(path)?)) })
    }

    /// Runs `op` on the database. After an I/O failure (a full disk, say)
    /// redb refuses every later transaction until the database is opened
    /// again; so that a node recovers by itself once space is freed, the
    /// database is then reopened (at its last commit: nothing acknowledged
    /// is lost) and `op` tried once more.
    fn with_db<T>(
        &self,
        op: impl Fn(&Database) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        {
            let guard = self.db.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(db) = guard.as_ref() {
                match op(db) {
                    Err(EngineError::NeedsReopen) => {}
                    other => return other,
                }
            }
        }
        let mut guard = self.db.write().unwrap_or_else(PoisonError::into_inner);
        // Another caller may have reopened it meanwhile.
        if let Some(db) = guard.as_ref() {
            match op(db) {
                Err(EngineError::NeedsReopen) => {}
                other => return other,
            }
        }
        // Only one `Database` may hold the file: drop the failed one first.
        *guard = None;
        let db = open_db(&self.path)?;
        warn!(path = %self.path.display(), "reopened the store after an I/O failure");
        let result = op(&db);
        *guard = Some(db);
        result
    }
}

/// Opens (or creates) the database with every table in it.
fn open_db(path: &Path) -> Result<Database, EngineError> {
    let db = Database::create(path).map_err(map)?;
    // Create the tables once, so readers never meet a missing table.
    let txn = db.begin_write().map_err(map)?;
    {
        txn.open_table(BLOCKS).map_err(map)?;
        txn.open_table(BLOCK_EXPIRY).map_err(map)?;
        txn.open_table(RECORDS).map_err(map)?;
        txn.open_table(RECORD_EXPIRY).map_err(map)?;
    }
    txn.commit().map_err(map)?;
    Ok(db)
}

struct Tables<'t> {
    values: Table<'t, &'static [u8], &'static [u8]>,
    expiry: Table<'t, &'static [u8], ()>,
}

fn put(
    t: &mut Tables<'_>,
    space: Space,
    key: &[u8],
    payload: &[u8],
    expires: u64,
    applied: &mut Applied,
) -> Result<(), EngineError> {
    let old = t.values.get(key).map_err(map)?.map(|g| g.value().to_vec());
    let old = old.as_deref().and_then(|raw| value::decode(raw).ok().map(|(e, p)| (e, p.to_vec())));
    let (expires, payload): (u64, &[u8]) = match (&old, space) {
        // Blocks are immutable: keep the stored bytes, extend the lease.
        (Some((old_expires, old_payload)), Space::Blocks) => {
            ((*old_expires).max(expires), old_payload)
        }
        _ => (expires, payload),
    };
    if let Some((old_expires, old_payload)) = &old {
        t.expiry.remove(value::expiry_key(*old_expires, key).as_slice()).map_err(map)?;
        if space == Space::Blocks {
            applied.blocks_delta -= 1;
            applied.bytes_delta -= old_payload.len() as i64;
        }
    }
    t.values.insert(key, value::encode(expires, payload).as_slice()).map_err(map)?;
    t.expiry.insert(value::expiry_key(expires, key).as_slice(), ()).map_err(map)?;
    if space == Space::Blocks {
        applied.blocks_delta += 1;
        applied.bytes_delta += payload.len() as i64;
    }
    Ok(())
}

fn delete(
    t: &mut Tables<'_>,
    space: Space,
    key: &[u8],
    applied: &mut Applied,
) -> Result<bool, EngineError> {
    let old = t.values.remove(key).map_err(map)?.map(|g| g.value().to_vec());
    let Some(raw) = old else { return Ok(false) };
    if let Ok((expires, payload)) = value::decode(&raw) {
        t.expiry.remove(value::expiry_key(expires, key).as_slice()).map_err(map)?;
        if space == Space::Blocks {
            applied.blocks_delta -= 1;
            applied.bytes_delta -= payload.len() as i64;
        }
    }
    Ok(true)
}

fn extend(t: &mut Tables<'_>, key: &[u8], expires: u64) -> Result<(), EngineError> {
    let old = t.values.get(key).map_err(map)?.map(|g| g.value().to_vec());
    let Some(raw) = old else { return Ok(()) };
    let (old_expires, payload) = value::decode(&raw)?;
    if expires > old_expires {
        t.expiry.remove(value::expiry_key(old_expires, key).as_slice()).map_err(map)?;
        t.values.insert(key, value::encode(expires, payload).as_slice()).map_err(map)?;
        t.expiry.insert(value::expiry_key(expires, key).as_slice(), ()).map_err(map)?;
    }
    Ok(())
}

fn expire(
    t: &mut Tables<'_>,
    space: Space,
    now: u64,
    limit: usize,
    applied: &mut Applied,
) -> Result<(), EngineError> {
    let end = now.to_be_bytes();
    let mut keys = Vec::new();
    for entry in t.expiry.range::<&[u8]>(..&end[..]).map_err(map)?.take(limit) {
        let (k, _) = entry.map_err(map)?;
        keys.push(k.value()[8..].to_vec());
    }
    for key in keys {
        if delete(t, space, &key, applied)? {
            applied.expired += 1;
        }
    }
    Ok(())
}

impl Engine for RedbEngine {
    fn apply(&self, batch: &[Mutation]) -> Result<Applied, EngineError> {
        self.with_db(|db| apply_on(db, batch))
    }

    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.with_db(|db| {
            let txn = db.begin_read().map_err(map)?;
            let table = txn
                .open_table(if space == Space::Blocks { BLOCKS } else { RECORDS })
                .map_err(map)?;
            Ok(table.get(key).map_err(map)?.map(|g| g.value().to_vec()))
        })
    }

    fn scan(&self, space: Space, from: &[u8], limit: usize) -> Result<Entries, EngineError> {
        self.with_db(|db| {
            let txn = db.begin_read().map_err(map)?;
            let table = txn
                .open_table(if space == Space::Blocks { BLOCKS } else { RECORDS })
                .map_err(map)?;
            let mut out = Vec::new();
            for entry in table.range::<&[u8]>(from..).map_err(map)?.take(limit) {
                let (k, v) = entry.map_err(map)?;
                out.push((k.value().to_vec(), v.value().to_vec()));
            }
            Ok(out)
        })
    }

    fn block_totals(&self) -> Result<(u64, u64), EngineError> {
        self.with_db(|db| {
            let txn = db.begin_read().map_err(map)?;
            let table = txn.open_table(BLOCKS).map_err(map)?;
            let (mut count, mut bytes) = (0u64, 0u64);
            for entry in table.iter().map_err(map)? {
                let (_, v) = entry.map_err(map)?;
                count += 1;
                bytes += v.value().len().saturating_sub(value::HEADER) as u64;
            }
            Ok((count, bytes))
        })
    }
}

/// Applies one batch in one write transaction, fsynced before it returns.
fn apply_on(db: &Database, batch: &[Mutation]) -> Result<Applied, EngineError> {
    let mut txn = db.begin_write().map_err(map)?;
    txn.set_durability(Durability::Immediate).map_err(map)?;
    let mut applied = Applied::default();
    {
        let mut blocks = Tables {
            values: txn.open_table(BLOCKS).map_err(map)?,
            expiry: txn.open_table(BLOCK_EXPIRY).map_err(map)?,
        };
        let mut records = Tables {
            values: txn.open_table(RECORDS).map_err(map)?,
            expiry: txn.open_table(RECORD_EXPIRY).map_err(map)?,
        };
        for mutation in batch {
            let space = match mutation {
                Mutation::Put { space, .. }
                | Mutation::Delete { space, .. }
                | Mutation::Extend { space, .. }
                | Mutation::Expire { space, .. } => *space,
            };
            let t = if space == Space::Blocks { &mut blocks } else { &mut records };
            match mutation {
                Mutation::Put { key, payload, expires, .. } => {
                    put(t, space, key, payload, *expires, &mut applied)?
                }
                Mutation::Delete { key, .. } => {
                    delete(t, space, key, &mut applied)?;
                }
                Mutation::Extend { key, expires, .. } => extend(t, key, *expires)?,
                Mutation::Expire { now, limit, .. } => {
                    expire(t, space, *now, *limit, &mut applied)?
                }
            }
        }
    }
    txn.commit().map_err(map)?;
    Ok(applied)
}
