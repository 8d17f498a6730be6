//! `Store`: the façade the rest of epost uses. Writes go through the group
//! committer and return once durable; reads go straight to the engine.
//! Every call names its [`Keyspace`], which must have been declared when
//! the store was opened.

use std::collections::HashMap;
use std::fs::{self, File};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use crate::committer::{self, Counters, Group, Totals};
use crate::engine::{Engine, Mutation, Op, SpaceId};
use crate::error::{EngineError, OpenError, StoreError};
use crate::keyspace::{Keyspace, Kind};
use crate::{Backend, value};

/// Groups waiting for the committer before writers wait for a slot.
const QUEUE: usize = 4096;
/// Expired entries removed per transaction by a sweep.
const EXPIRE_BATCH: usize = 4096;

/// A stored value and its lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub value: Vec<u8>,
    /// ms since the UNIX epoch; `u64::MAX` for "kept until deleted".
    pub expires: u64,
}

/// Totals of a counted ([`Kind::Immutable`]) keyspace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub count: u64,
    pub bytes: u64,
}

/// Write-side counters: commits far fewer than mutations means group
/// commit is doing its job.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreMetrics {
    pub mutations: u64,
    pub commits: u64,
    pub failed_commits: u64,
}

/// What one sweep removed from one keyspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub keyspace: &'static str,
    pub removed: u64,
}

/// Changes to several keyspaces applied together: all are durable, or
/// none is.
#[derive(Debug, Default)]
pub struct Batch {
    ops: Vec<(Keyspace, Op)>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn put(&mut self, keyspace: &Keyspace, key: Vec<u8>, value: Vec<u8>, expires: u64) {
        self.ops.push((*keyspace, Op::Put { key, payload: value, expires }));
    }

    pub fn delete(&mut self, keyspace: &Keyspace, key: Vec<u8>) {
        self.ops.push((*keyspace, Op::Delete { key }));
    }

    pub fn extend(&mut self, keyspace: &Keyspace, key: Vec<u8>, expires: u64) {
        self.ops.push((*keyspace, Op::Extend { key, expires }));
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }
}

/// The local store. Cheap to clone; clones share one engine and committer.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Arc<dyn Engine>,
    spaces: Vec<Keyspace>,
    ids: HashMap<&'static str, SpaceId>,
    tx: Mutex<Option<mpsc::Sender<Group>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
    /// Held for the store's lifetime: the OS lock says "one process here".
    _lock: File,
}

impl Drop for Inner {
    fn drop(&mut self) {
        close(&self.tx, &self.thread);
    }
}

fn close(tx: &Mutex<Option<mpsc::Sender<Group>>>, thread: &Mutex<Option<JoinHandle<()>>>) {
    // Dropping the sender lets the committer drain what it accepted, then exit.
    drop(tx.lock().map(|mut t| t.take()).ok().flatten());
    if let Some(handle) = thread.lock().ok().and_then(|mut h| h.take()) {
        let _ = handle.join();
    }
}

impl Store {
    /// Opens (creating if needed) the store in directory `dir` with every
    /// keyspace in `keyspaces` (their trees are created now).
    pub fn open(dir: &Path, backend: Backend, keyspaces: &[Keyspace]) -> Result<Self, OpenError> {
        let shown = dir.display().to_string();
        let mut ids = HashMap::new();
        for (id, space) in keyspaces.iter().enumerate() {
            if ids.insert(space.name(), id).is_some() {
                return Err(OpenError::DuplicateKeyspace(space.name()));
            }
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| OpenError::Create { path: shown.clone(), source })?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("LOCK"))
            .map_err(|source| OpenError::Create { path: shown.clone(), source })?;
        if lock.try_lock().is_err() {
            return Err(OpenError::Locked { path: shown });
        }
        let engine: Arc<dyn Engine> = match backend {
            Backend::Redb => Arc::new(
                crate::redb_engine::RedbEngine::open(&dir.join("epost.redb"), keyspaces)
                    .map_err(|e| engine_open_error(&shown, e))?,
            ),
            #[cfg(feature = "sled")]
            Backend::Sled => Arc::new(
                crate::sled_engine::SledEngine::open(&dir.join("sled"), keyspaces)
                    .map_err(|e| engine_open_error(&shown, e))?,
            ),
            #[cfg(not(feature = "sled"))]
            Backend::Sled => return Err(OpenError::BackendMissing(backend)),
        };
        let mut totals = Vec::with_capacity(keyspaces.len());
        for (id, space) in keyspaces.iter().enumerate() {
            let slot = Totals::default();
            if space.kind() == Kind::Immutable {
                let (count, bytes) = engine.totals(id).map_err(|e| engine_open_error(&shown, e))?;
                slot.entries.store(i64::try_from(count).unwrap_or(i64::MAX), Ordering::Relaxed);
                slot.bytes.store(i64::try_from(bytes).unwrap_or(i64::MAX), Ordering::Relaxed);
            }
            totals.push(slot);
        }
        let counters = Arc::new(Counters { totals, ..Counters::default() });
        let (tx, rx) = mpsc::channel(QUEUE);
        let thread = {
            let engine = engine.clone();
            let counters = counters.clone();
            std::thread::Builder::new()
                .name("epost-store-commit".into())
                .spawn(move || committer::run(engine, rx, counters))
                .map_err(|source| OpenError::Create { path: shown.clone(), source })?
        };
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                spaces: keyspaces.to_vec(),
                ids,
                tx: Mutex::new(Some(tx)),
                thread: Mutex::new(Some(thread)),
                counters,
                _lock: lock,
            }),
        })
    }

    /// Finishes every accepted write, then stops the committer. Later
    /// writes fail with `Closed`; reads keep working.
    pub fn close(&self) {
        close(&self.inner.tx, &self.inner.thread);
    }

    fn id(&self, keyspace: &Keyspace) -> Result<SpaceId, StoreError> {
        self.inner
            .ids
            .get(keyspace.name())
            .copied()
            .ok_or(StoreError::UnknownKeyspace(keyspace.name()))
    }

    /// Checks limits and names the keyspace by its number.
    fn mutation(&self, keyspace: &Keyspace, op: Op) -> Result<Mutation, StoreError> {
        let space = self.id(keyspace)?;
        match &op {
            Op::Put { key, payload, .. } => {
                check_key(keyspace, key)?;
                if payload.len() > keyspace.max_value() {
                    return Err(StoreError::ValueTooLarge {
                        len: payload.len(),
                        max: keyspace.max_value(),
                    });
                }
            }
            Op::Delete { key } | Op::Extend { key, .. } => check_key(keyspace, key)?,
            Op::Expire { .. } => {}
        }
        Ok(Mutation { space, op })
    }

    async fn submit(&self, mutations: Vec<Mutation>) -> Result<u64, StoreError> {
        let (reply, rx) = oneshot::channel();
        let tx = self.sender()?;
        tx.send(Group { mutations, reply }).await.map_err(|_| StoreError::Closed)?;
        Ok(rx.await.map_err(|_| StoreError::Closed)??)
    }

    fn submit_blocking(&self, mutations: Vec<Mutation>) -> Result<u64, StoreError> {
        let (reply, rx) = oneshot::channel();
        let tx = self.sender()?;
        tx.blocking_send(Group { mutations, reply }).map_err(|_| StoreError::Closed)?;
        Ok(rx.blocking_recv().map_err(|_| StoreError::Closed)??)
    }

    fn sender(&self) -> Result<mpsc::Sender<Group>, StoreError> {
        self.inner.tx.lock().ok().and_then(|t| t.clone()).ok_or(StoreError::Closed)
    }

    /// Stores a value durably until `expires`. In an immutable keyspace a
    /// second put of a key keeps its data and extends its lease to the
    /// later of the two; elsewhere it overwrites.
    pub async fn put(
        &self,
        keyspace: &Keyspace,
        key: Vec<u8>,
        value: Vec<u8>,
        expires: u64,
    ) -> Result<(), StoreError> {
        let m = self.mutation(keyspace, Op::Put { key, payload: value, expires })?;
        self.submit(vec![m]).await.map(drop)
    }

    /// [`Self::put`] for threads outside an async runtime.
    pub fn put_blocking(
        &self,
        keyspace: &Keyspace,
        key: Vec<u8>,
        value: Vec<u8>,
        expires: u64,
    ) -> Result<(), StoreError> {
        let m = self.mutation(keyspace, Op::Put { key, payload: value, expires })?;
        self.submit_blocking(vec![m]).map(drop)
    }

    pub async fn delete(&self, keyspace: &Keyspace, key: Vec<u8>) -> Result<(), StoreError> {
        let m = self.mutation(keyspace, Op::Delete { key })?;
        self.submit(vec![m]).await.map(drop)
    }

    /// Moves a value's lease later (never earlier); nothing if absent.
    pub async fn extend(
        &self,
        keyspace: &Keyspace,
        key: Vec<u8>,
        expires: u64,
    ) -> Result<(), StoreError> {
        let m = self.mutation(keyspace, Op::Extend { key, expires })?;
        self.submit(vec![m]).await.map(drop)
    }

    /// Applies every change of `batch` in one transaction: once this
    /// returns `Ok`, all of them are durable; on an error, none is.
    pub async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mutations = batch
            .ops
            .into_iter()
            .map(|(keyspace, op)| self.mutation(&keyspace, op))
            .collect::<Result<Vec<_>, _>>()?;
        self.submit(mutations).await.map(drop)
    }

    /// Removes every entry of `keyspace` whose lease ended before `now`;
    /// returns how many.
    pub async fn expire(&self, keyspace: &Keyspace, now: u64) -> Result<u64, StoreError> {
        let space = self.id(keyspace)?;
        let mut total = 0;
        loop {
            let expire = Mutation { space, op: Op::Expire { now, limit: EXPIRE_BATCH } };
            let removed = self.submit(vec![expire]).await?;
            total += removed;
            if removed < EXPIRE_BATCH as u64 {
                return Ok(total);
            }
        }
    }

    /// Expires every swept keyspace (see [`Keyspace::unswept`]) at `now`.
    pub async fn sweep(&self, now: u64) -> Result<Vec<Swept>, StoreError> {
        let mut out = Vec::new();
        for keyspace in self.inner.spaces.iter().filter(|k| k.swept()) {
            let removed = self.expire(keyspace, now).await?;
            out.push(Swept { keyspace: keyspace.name(), removed });
        }
        Ok(out)
    }

    /// The value at `key`, whatever its lease (callers compare it with
    /// their clock: a sweep may not have run yet).
    pub fn get(&self, keyspace: &Keyspace, key: &[u8]) -> Result<Option<Entry>, StoreError> {
        let Some(raw) = self.inner.engine.get(self.id(keyspace)?, key)? else { return Ok(None) };
        decode(&raw).map(Some)
    }

    /// Up to `limit` entries with key >= `from`, in key order.
    pub fn scan(
        &self,
        keyspace: &Keyspace,
        from: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Entry)>, StoreError> {
        let raw = self.inner.engine.scan(self.id(keyspace)?, from, None, limit)?;
        raw.into_iter().map(|(k, v)| Ok((k, decode(&v)?))).collect()
    }

    /// Up to `limit` entries whose key starts with `prefix`, after `after`
    /// (a key of an earlier page) or from the first, in key order.
    pub fn scan_prefix(
        &self,
        keyspace: &Keyspace,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Entry)>, StoreError> {
        let from = match after {
            Some(key) => successor(key),
            None => prefix.to_vec(),
        };
        // Stops at the prefix's end: nothing past it is read.
        let end = prefix_end(prefix);
        let raw = self.inner.engine.scan(self.id(keyspace)?, &from, end.as_deref(), limit)?;
        raw.into_iter().map(|(k, v)| Ok((k, decode(&v)?))).collect()
    }

    /// Up to `limit` entries whose lease ends at or after `from.0` and
    /// before `until` (no bound when `None`), in lease order (ties by key),
    /// starting at `(from.0, from.1)`.
    pub fn expiring(
        &self,
        keyspace: &Keyspace,
        from: (u64, &[u8]),
        until: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Entry)>, StoreError> {
        let start = value::expiry_key(from.0, from.1);
        let end = until.map(u64::to_be_bytes);
        let raw = self.inner.engine.scan_expiry(
            self.id(keyspace)?,
            &start,
            end.as_ref().map(|e| &e[..]),
            limit,
        )?;
        raw.into_iter().map(|(k, v)| Ok((k, decode(&v)?))).collect()
    }

    /// Every live entry of `keyspace` (lease ending after `now`), read in
    /// pages of `page` in lease order, through `f`. Expired entries are
    /// never read, however many there are: what start-up needs.
    pub fn for_each_live(
        &self,
        keyspace: &Keyspace,
        now: u64,
        page: usize,
        mut f: impl FnMut(Vec<u8>, Entry),
    ) -> Result<(), StoreError> {
        let mut cursor: (u64, Vec<u8>) = (now.saturating_add(1), Vec::new());
        loop {
            let entries = self.expiring(keyspace, (cursor.0, &cursor.1), None, page)?;
            let full = entries.len() == page;
            let last = entries.last().map(|(k, e)| (e.expires, successor(k)));
            for (key, entry) in entries {
                f(key, entry);
            }
            match last {
                Some(next) if full => cursor = next,
                _ => return Ok(()),
            }
        }
    }

    /// Totals of a counted keyspace (zero for others).
    pub fn stats(&self, keyspace: &Keyspace) -> Stats {
        let Ok(id) = self.id(keyspace) else { return Stats::default() };
        let Some(totals) = self.inner.counters.totals.get(id) else { return Stats::default() };
        Stats {
            count: u64::try_from(totals.entries.load(Ordering::Relaxed)).unwrap_or(0),
            bytes: u64::try_from(totals.bytes.load(Ordering::Relaxed)).unwrap_or(0),
        }
    }

    /// Write-side counters.
    pub fn metrics(&self) -> StoreMetrics {
        let c = &self.inner.counters;
        StoreMetrics {
            mutations: c.mutations.load(Ordering::Relaxed),
            commits: c.commits.load(Ordering::Relaxed),
            failed_commits: c.failed_commits.load(Ordering::Relaxed),
        }
    }
}

/// The smallest key after every key starting with `prefix` (`None`: no
/// such key, the prefix is all `0xff` or empty).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The smallest key after `key` in byte order.
pub fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

fn decode(raw: &[u8]) -> Result<Entry, StoreError> {
    let (expires, value) = value::decode(raw)?;
    Ok(Entry { value: value.to_vec(), expires })
}

fn check_key(keyspace: &Keyspace, key: &[u8]) -> Result<(), StoreError> {
    if key.len() > keyspace.max_key() {
        return Err(StoreError::KeyTooLarge { len: key.len(), max: keyspace.max_key() });
    }
    Ok(())
}

fn engine_open_error(path: &str, e: EngineError) -> OpenError {
    match e {
        EngineError::NoSpace(source) => OpenError::NoSpace { path: path.to_owned(), source },
        other => OpenError::Engine { path: path.to_owned(), source: other },
    }
}
