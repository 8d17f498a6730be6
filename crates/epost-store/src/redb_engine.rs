//! The redb engine: two tables per keyspace (its values, and its expiry
//! index), every batch one write transaction committed with
//! `Durability::Immediate` (fsync before `commit` returns); its page cache
//! is bounded by `engine::CACHE_BYTES`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, Table, TableDefinition};

use crate::engine::{
    Applied, CACHE_BYTES, Engine, Entries, Mutation, Op, SpaceId, TOTALS, add_totals, bounds,
    decode_totals, encode_totals,
};
use crate::error::EngineError;
use crate::keyspace::{Keyspace, Kind};
use crate::value;
use tracing::warn;

type Values = TableDefinition<'static, &'static [u8], &'static [u8]>;
type Expiry = TableDefinition<'static, &'static [u8], ()>;
const TOTALS_TABLE: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new(TOTALS);

pub(crate) struct RedbEngine {
    path: PathBuf,
    spaces: Vec<Keyspace>,
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

fn values(space: &Keyspace) -> Values {
    TableDefinition::new(space.name())
}

fn expiry(space: &Keyspace) -> Expiry {
    TableDefinition::new(space.expiry_name())
}

impl RedbEngine {
    pub(crate) fn open(path: &Path, spaces: &[Keyspace]) -> Result<Self, EngineError> {
        Ok(Self {
            path: path.to_path_buf(),
            spaces: spaces.to_vec(),
            db: RwLock::new(Some(open_db(path, spaces)?)),
        })
    }

    fn space(&self, space: SpaceId) -> Result<&Keyspace, EngineError> {
        self.spaces
            .get(space)
            .ok_or_else(|| EngineError::Other(format!("no keyspace number {space}")))
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
        let db = open_db(&self.path, &self.spaces)?;
        warn!(path = %self.path.display(), "reopened the store after an I/O failure");
        let result = op(&db);
        *guard = Some(db);
        result
    }
}

/// Opens (or creates) the database with every keyspace's tables in it.
fn open_db(path: &Path, spaces: &[Keyspace]) -> Result<Database, EngineError> {
    let db = Database::builder().set_cache_size(CACHE_BYTES).create(path).map_err(map)?;
    // Create the tables once, so readers never meet a missing table.
    let txn = db.begin_write().map_err(map)?;
    for space in spaces {
        txn.open_table(values(space)).map_err(map)?;
        txn.open_table(expiry(space)).map_err(map)?;
    }
    txn.open_table(TOTALS_TABLE).map_err(map)?;
    txn.commit().map_err(map)?;
    Ok(db)
}

struct Tables<'t> {
    id: SpaceId,
    kind: Kind,
    values: Table<'t, &'static [u8], &'static [u8]>,
    expiry: Table<'t, &'static [u8], ()>,
}

impl Tables<'_> {
    fn count(&self, applied: &mut Applied, entries: i64, bytes: usize) {
        if self.kind == Kind::Immutable {
            applied.count(self.id, entries, entries * bytes as i64);
        }
    }

    fn put(
        &mut self,
        key: &[u8],
        payload: &[u8],
        expires: u64,
        applied: &mut Applied,
    ) -> Result<(), EngineError> {
        let old = self.values.get(key).map_err(map)?.map(|g| g.value().to_vec());
        let old =
            old.as_deref().and_then(|raw| value::decode(raw).ok().map(|(e, p)| (e, p.to_vec())));
        let (expires, payload): (u64, &[u8]) = match (&old, self.kind) {
            // Immutable: keep the stored bytes, extend the lease.
            (Some((old_expires, old_payload)), Kind::Immutable) => {
                ((*old_expires).max(expires), old_payload)
            }
            _ => (expires, payload),
        };
        if let Some((old_expires, old_payload)) = &old {
            self.expiry.remove(value::expiry_key(*old_expires, key).as_slice()).map_err(map)?;
            self.count(applied, -1, old_payload.len());
        }
        self.values.insert(key, value::encode(expires, payload).as_slice()).map_err(map)?;
        self.expiry.insert(value::expiry_key(expires, key).as_slice(), ()).map_err(map)?;
        self.count(applied, 1, payload.len());
        Ok(())
    }

    fn delete(&mut self, key: &[u8], applied: &mut Applied) -> Result<bool, EngineError> {
        let old = self.values.remove(key).map_err(map)?.map(|g| g.value().to_vec());
        let Some(raw) = old else { return Ok(false) };
        if let Ok((expires, payload)) = value::decode(&raw) {
            self.expiry.remove(value::expiry_key(expires, key).as_slice()).map_err(map)?;
            self.count(applied, -1, payload.len());
        }
        Ok(true)
    }

    fn extend(&mut self, key: &[u8], expires: u64) -> Result<(), EngineError> {
        let old = self.values.get(key).map_err(map)?.map(|g| g.value().to_vec());
        let Some(raw) = old else { return Ok(()) };
        let (old_expires, payload) = value::decode(&raw)?;
        if expires > old_expires {
            self.expiry.remove(value::expiry_key(old_expires, key).as_slice()).map_err(map)?;
            self.values.insert(key, value::encode(expires, payload).as_slice()).map_err(map)?;
            self.expiry.insert(value::expiry_key(expires, key).as_slice(), ()).map_err(map)?;
        }
        Ok(())
    }

    fn expire(&mut self, now: u64, limit: usize, applied: &mut Applied) -> Result<(), EngineError> {
        let end = now.to_be_bytes();
        let mut keys = Vec::new();
        for entry in self.expiry.range::<&[u8]>(..&end[..]).map_err(map)?.take(limit) {
            let (k, _) = entry.map_err(map)?;
            keys.push(k.value()[8..].to_vec());
        }
        for key in keys {
            if self.delete(&key, applied)? {
                applied.expired += 1;
            }
        }
        Ok(())
    }
}

impl Engine for RedbEngine {
    fn apply(&self, batch: &[Mutation]) -> Result<Applied, EngineError> {
        for mutation in batch {
            self.space(mutation.space)?;
        }
        self.with_db(|db| self.apply_on(db, batch))
    }

    fn get(&self, space: SpaceId, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        let space = self.space(space)?;
        self.with_db(|db| {
            let txn = db.begin_read().map_err(map)?;
            let table = txn.open_table(values(space)).map_err(map)?;
            Ok(table.get(key).map_err(map)?.map(|g| g.value().to_vec()))
        })
    }

    fn scan(
        &self,
        space: SpaceId,
        from: &[u8],
        until: Option<&[u8]>,
        limit: usize,
    ) -> Result<Entries, EngineError> {
        let space = self.space(space)?;
        let Some(range) = bounds(from, until) else {
            return Ok(Vec::new());
        };
        self.with_db(|db| {
            let txn = db.begin_read().map_err(map)?;
            let table = txn.open_table(values(space)).map_err(map)?;
            let mut out = Vec::new();
            for entry in table.range::<&[u8]>(range).map_err(map)?.take(limit) {
                let (k, v) = entry.map_err(map)?;
                out.push((k.value().to_vec(), v.value().to_vec()));
            }
            Ok(out)
        })
    }

    fn scan_expiry(
        &self,
        space: SpaceId,
        from: &[u8],
        until: Option<&[u8]>,
        limit: usize,
    ) -> Result<Entries, EngineError> {
        let space = self.space(space)?;
        let Some(range) = bounds(from, until) else {
            return Ok(Vec::new());
        };
        self.with_db(|db| {
            let txn = db.begin_read().map_err(map)?;
            let index = txn.open_table(expiry(space)).map_err(map)?;
            let table = txn.open_table(values(space)).map_err(map)?;
            let mut out = Vec::new();
            for entry in index.range::<&[u8]>(range).map_err(map)?.take(limit) {
                let (k, _) = entry.map_err(map)?;
                let key = k.value().get(8..).unwrap_or_default();
                if let Some(v) = table.get(key).map_err(map)? {
                    out.push((key.to_vec(), v.value().to_vec()));
                }
            }
            Ok(out)
        })
    }

    fn totals(&self, space: SpaceId) -> Result<(u64, u64), EngineError> {
        let space = self.space(space)?;
        self.with_db(|db| {
            let txn = db.begin_read().map_err(map)?;
            let kept = txn.open_table(TOTALS_TABLE).map_err(map)?;
            if let Some(totals) =
                kept.get(space.name()).map_err(map)?.and_then(|row| decode_totals(row.value()))
            {
                return Ok(totals);
            }
            // Written before totals were kept (or the row is damaged):
            // count once, and keep the count from now on.
            let table = txn.open_table(values(space)).map_err(map)?;
            let (mut count, mut bytes) = (0u64, 0u64);
            for entry in table.iter().map_err(map)? {
                let (_, v) = entry.map_err(map)?;
                count += 1;
                bytes += v.value().len().saturating_sub(value::HEADER) as u64;
            }
            drop((table, kept, txn));
            let txn = db.begin_write().map_err(map)?;
            txn.open_table(TOTALS_TABLE)
                .map_err(map)?
                .insert(space.name(), encode_totals(count, bytes).as_slice())
                .map_err(map)?;
            txn.commit().map_err(map)?;
            Ok((count, bytes))
        })
    }
}

impl RedbEngine {
    /// Applies one batch in one write transaction, fsynced before it returns.
    fn apply_on(&self, db: &Database, batch: &[Mutation]) -> Result<Applied, EngineError> {
        let mut txn = db.begin_write().map_err(map)?;
        txn.set_durability(Durability::Immediate).map_err(map)?;
        let mut applied = Applied::default();
        {
            // Each keyspace's tables are opened once per transaction.
            let mut open: BTreeMap<SpaceId, Tables<'_>> = BTreeMap::new();
            for mutation in batch {
                let tables = match open.entry(mutation.space) {
                    std::collections::btree_map::Entry::Occupied(slot) => slot.into_mut(),
                    std::collections::btree_map::Entry::Vacant(slot) => {
                        let space = self.space(mutation.space)?;
                        slot.insert(Tables {
                            id: mutation.space,
                            kind: space.kind(),
                            values: txn.open_table(values(space)).map_err(map)?,
                            expiry: txn.open_table(expiry(space)).map_err(map)?,
                        })
                    }
                };
                match &mutation.op {
                    Op::Put { key, payload, expires } => {
                        tables.put(key, payload, *expires, &mut applied)?
                    }
                    Op::Delete { key } => {
                        tables.delete(key, &mut applied)?;
                    }
                    Op::Extend { key, expires } => tables.extend(key, *expires)?,
                    Op::Expire { now, limit } => tables.expire(*now, *limit, &mut applied)?,
                }
            }
        }
        if !applied.deltas.is_empty() {
            let mut kept = txn.open_table(TOTALS_TABLE).map_err(map)?;
            for (id, entries, bytes) in &applied.deltas {
                let name = self.space(*id)?.name();
                let row = kept.get(name).map_err(map)?.and_then(|r| decode_totals(r.value()));
                // No row yet: `totals` counts the keyspace at the next open.
                if let Some(row) = row {
                    let (e, b) = add_totals(row, *entries, *bytes);
                    kept.insert(name, encode_totals(e, b).as_slice()).map_err(map)?;
                }
            }
        }
        txn.commit().map_err(map)?;
        Ok(applied)
    }
}
