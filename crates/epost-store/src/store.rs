//! `Store`: the façade the rest of epost uses. Writes go through the group
//! committer and return once durable; reads go straight to the engine.

use std::fs::{self, File};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use crate::committer::{self, Counters, Op};
use crate::engine::{Applied, Engine, Mutation, Space};
use crate::error::{EngineError, OpenError, StoreError};
use crate::{Backend, MAX_BLOCK_KEY, MAX_BLOCK_VALUE, MAX_RECORD_KEY, MAX_RECORD_VALUE, value};

/// Mutations waiting for the committer before writers wait for a slot.
const QUEUE: usize = 4096;
/// Expired entries removed per transaction by a sweep.
const EXPIRE_BATCH: usize = 4096;

/// A stored block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub data: Vec<u8>,
    pub expires: u64,
}

/// A block's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockMeta {
    pub expires: u64,
    pub size: u64,
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub value: Vec<u8>,
    pub expires: u64,
}

/// Block totals.
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

/// The local store. Cheap to clone; clones share one engine and committer.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Arc<dyn Engine>,
    tx: Mutex<Option<mpsc::Sender<Op>>>,
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

fn close(tx: &Mutex<Option<mpsc::Sender<Op>>>, thread: &Mutex<Option<JoinHandle<()>>>) {
    // Dropping the sender lets the committer drain what it accepted, then exit.
    drop(tx.lock().map(|mut t| t.take()).ok().flatten());
    if let Some(handle) = thread.lock().ok().and_then(|mut h| h.take()) {
        let _ = handle.join();
    }
}

impl Store {
    /// Opens (creating if needed) the store in directory `dir`.
    pub fn open(dir: &Path, backend: Backend) -> Result<Self, OpenError> {
        let shown = dir.display().to_string();
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
                crate::redb_engine::RedbEngine::open(&dir.join("epost.redb"))
                    .map_err(|e| engine_open_error(&shown, e))?,
            ),
            #[cfg(feature = "sled")]
            Backend::Sled => Arc::new(
                crate::sled_engine::SledEngine::open(&dir.join("sled"))
                    .map_err(|e| engine_open_error(&shown, e))?,
            ),
            #[cfg(not(feature = "sled"))]
            Backend::Sled => return Err(OpenError::BackendMissing(backend)),
        };
        let (blocks, bytes) = engine.block_totals().map_err(|e| engine_open_error(&shown, e))?;
        let counters = Arc::new(Counters::default());
        counters.blocks.store(i64::try_from(blocks).unwrap_or(i64::MAX), Ordering::Relaxed);
        counters.bytes.store(i64::try_from(bytes).unwrap_or(i64::MAX), Ordering::Relaxed);
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

    async fn submit(&self, mutation: Mutation) -> Result<Applied, StoreError> {
        let (reply, rx) = oneshot::channel();
        let tx = self.sender()?;
        tx.send(Op { mutation, reply }).await.map_err(|_| StoreError::Closed)?;
        Ok(rx.await.map_err(|_| StoreError::Closed)??)
    }

    fn submit_blocking(&self, mutation: Mutation) -> Result<Applied, StoreError> {
        let (reply, rx) = oneshot::channel();
        let tx = self.sender()?;
        tx.blocking_send(Op { mutation, reply }).map_err(|_| StoreError::Closed)?;
        Ok(rx.blocking_recv().map_err(|_| StoreError::Closed)??)
    }

    fn sender(&self) -> Result<mpsc::Sender<Op>, StoreError> {
        self.inner.tx.lock().ok().and_then(|t| t.clone()).ok_or(StoreError::Closed)
    }

    /// Stores a block durably. Re-putting a key keeps its data and extends
    /// its lease to the later of the two.
    pub async fn put_block(
        &self,
        key: Vec<u8>,
        data: Vec<u8>,
        expires: u64,
    ) -> Result<(), StoreError> {
        check(&key, MAX_BLOCK_KEY, &data, MAX_BLOCK_VALUE)?;
        self.submit(Mutation::Put { space: Space::Blocks, key, payload: data, expires })
            .await
            .map(drop)
    }

    /// [`Self::put_block`] for threads outside an async runtime.
    pub fn put_block_blocking(
        &self,
        key: Vec<u8>,
        data: Vec<u8>,
        expires: u64,
    ) -> Result<(), StoreError> {
        check(&key, MAX_BLOCK_KEY, &data, MAX_BLOCK_VALUE)?;
        self.submit_blocking(Mutation::Put { space: Space::Blocks, key, payload: data, expires })
            .map(drop)
    }

    pub async fn delete_block(&self, key: Vec<u8>) -> Result<(), StoreError> {
        self.submit(Mutation::Delete { space: Space::Blocks, key }).await.map(drop)
    }

    /// Moves a block's lease later (never earlier).
    pub async fn extend_block(&self, key: Vec<u8>, expires: u64) -> Result<(), StoreError> {
        self.submit(Mutation::Extend { space: Space::Blocks, key, expires }).await.map(drop)
    }

    pub fn get_block(&self, key: &[u8]) -> Result<Option<Block>, StoreError> {
        let Some(raw) = self.inner.engine.get(Space::Blocks, key)? else { return Ok(None) };
        let (expires, data) = value::decode(&raw)?;
        Ok(Some(Block { data: data.to_vec(), expires }))
    }

    pub fn block_meta(&self, key: &[u8]) -> Result<Option<BlockMeta>, StoreError> {
        Ok(self
            .get_block(key)?
            .map(|b| BlockMeta { expires: b.expires, size: b.data.len() as u64 }))
    }

    /// Up to `limit` blocks with key >= `from`, in key order.
    pub fn blocks_from(
        &self,
        from: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, BlockMeta)>, StoreError> {
        let mut out = Vec::new();
        for (key, raw) in self.inner.engine.scan(Space::Blocks, from, limit)? {
            let (expires, data) = value::decode(&raw)?;
            out.push((key, BlockMeta { expires, size: data.len() as u64 }));
        }
        Ok(out)
    }

    /// Removes every block whose lease ended before `now`; returns how many.
    pub async fn collect_expired_blocks(&self, now: u64) -> Result<u64, StoreError> {
        self.collect_expired(Space::Blocks, now).await
    }

    async fn collect_expired(&self, space: Space, now: u64) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let applied = self.submit(Mutation::Expire { space, now, limit: EXPIRE_BATCH }).await?;
            total += applied.expired;
            if applied.expired < EXPIRE_BATCH as u64 {
                return Ok(total);
            }
        }
    }

    /// Blocks held and their payload bytes.
    pub fn block_stats(&self) -> Stats {
        let c = &self.inner.counters;
        Stats {
            count: u64::try_from(c.blocks.load(Ordering::Relaxed)).unwrap_or(0),
            bytes: u64::try_from(c.bytes.load(Ordering::Relaxed)).unwrap_or(0),
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

    /// Stores (overwrites) a record durably.
    pub async fn put_record(
        &self,
        key: Vec<u8>,
        value: Vec<u8>,
        expires: u64,
    ) -> Result<(), StoreError> {
        check(&key, MAX_RECORD_KEY, &value, MAX_RECORD_VALUE)?;
        self.submit(Mutation::Put { space: Space::Records, key, payload: value, expires })
            .await
            .map(drop)
    }

    pub async fn delete_record(&self, key: Vec<u8>) -> Result<(), StoreError> {
        self.submit(Mutation::Delete { space: Space::Records, key }).await.map(drop)
    }

    pub fn get_record(&self, key: &[u8]) -> Result<Option<Record>, StoreError> {
        let Some(raw) = self.inner.engine.get(Space::Records, key)? else { return Ok(None) };
        let (expires, value) = value::decode(&raw)?;
        Ok(Some(Record { value: value.to_vec(), expires }))
    }

    /// Up to `limit` records with key >= `from`, in key order.
    pub fn records_from(
        &self,
        from: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Record)>, StoreError> {
        let mut out = Vec::new();
        for (key, raw) in self.inner.engine.scan(Space::Records, from, limit)? {
            let (expires, value) = value::decode(&raw)?;
            out.push((key, Record { value: value.to_vec(), expires }));
        }
        Ok(out)
    }

    /// Removes every record whose lease ended before `now`.
    pub async fn collect_expired_records(&self, now: u64) -> Result<u64, StoreError> {
        self.collect_expired(Space::Records, now).await
    }
}

fn check(key: &[u8], max_key: usize, value: &[u8], max_value: usize) -> Result<(), StoreError> {
    if key.len() > max_key {
        return Err(StoreError::KeyTooLarge { len: key.len(), max: max_key });
    }
    if value.len() > max_value {
        return Err(StoreError::ValueTooLarge { len: value.len(), max: max_value });
    }
    Ok(())
}

fn engine_open_error(path: &str, e: EngineError) -> OpenError {
    match e {
        EngineError::NoSpace(source) => OpenError::NoSpace { path: path.to_owned(), source },
        other => OpenError::Engine { path: path.to_owned(), source: other },
    }
}
