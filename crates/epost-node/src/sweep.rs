//! The sweeper: every keyspace marked swept (spec/store.md section 1) is
//! rid of its expired entries on a schedule, and on demand (`epost
//! repair`), so nothing stays on disk for ever and start-up, which reads
//! only live entries, never meets a growing pile of dead ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use epost_store::{Store, Swept};
use epost_types::time::Timestamp;
use tracing::{debug, warn};

use crate::chain::Chain;
use crate::worker::{self, Worker, Workers};

/// Handle to run a sweep now. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Sweeper {
    store: Store,
    removed: Arc<AtomicU64>,
}

impl Sweeper {
    /// Sweeps `store` every `interval`, the first time one interval after
    /// start (start-up is not slowed by a sweep).
    pub(crate) fn start(store: Store, interval: Duration, workers: &Workers) -> (Self, Worker) {
        let sweeper = Self { store, removed: Arc::new(AtomicU64::new(0)) };
        let sweeps = sweeper.clone();
        let task = workers.start("sweep", move |ctx| async move {
            let mut tick = worker::every(interval, false);
            while ctx.tick(&mut tick).await {
                let _busy = ctx.busy();
                if let Err(e) = sweeps.sweep_now().await {
                    ctx.failed(&e);
                    warn!(error = %Chain(&e), "sweeping expired entries failed; the next sweep retries");
                }
            }
        });
        (sweeper, task)
    }

    /// Removes every expired entry of every swept keyspace now.
    pub(crate) async fn sweep_now(&self) -> Result<Vec<Swept>, epost_store::StoreError> {
        let swept = self.store.sweep(Timestamp::now().as_millis()).await?;
        let total: u64 = swept.iter().map(|s| s.removed).sum();
        self.removed.fetch_add(total, Ordering::Relaxed);
        if total > 0 {
            debug!(?swept, "expired entries swept");
        }
        Ok(swept)
    }

    /// Entries removed by sweeps since start.
    pub(crate) fn removed(&self) -> u64 {
        self.removed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use epost_store::{Backend, Batch};

    use super::*;
    use crate::keyspaces::{ALL, KAD_RECORDS, NOTIFY_SEEN};

    /// A node that held 100,000 records now expired reads none of them at
    /// start, and a sweep leaves only the live ones on disk.
    #[tokio::test]
    async fn expired_records_are_never_read_at_start_and_a_sweep_removes_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Backend::Redb, ALL).unwrap();
        let now = Timestamp::now().as_millis();
        for chunk in 0..100u32 {
            let mut batch = Batch::new();
            for i in 0..1000u32 {
                let mut key = vec![0x02];
                key.extend_from_slice(&[0; 24]);
                key.extend_from_slice(&(chunk * 1000 + i).to_be_bytes());
                key.extend_from_slice(&[0; 4]);
                batch.put(&KAD_RECORDS, key, b"an old certificate".to_vec(), now - 1000);
            }
            store.commit(batch).await.unwrap();
        }
        let mut live = vec![0x03];
        live.extend_from_slice(&[9; 32]);
        store.put(&KAD_RECORDS, live.clone(), b"presence".to_vec(), now + 60_000).await.unwrap();
        store.put(&NOTIFY_SEEN, vec![1; 48], Vec::new(), now - 1).await.unwrap();

        let mut visited = 0;
        store.for_each_live(&KAD_RECORDS, now, 1024, |_, _| visited += 1).unwrap();
        assert_eq!(visited, 1, "start-up reads the live record only");
        let workers = Workers::new();
        let (loaded, writer) = crate::records::RecordWriter::start(store.clone(), &workers);
        assert_eq!(loaded.len(), 1);
        writer.shutdown().await;

        let (sweeper, task) = Sweeper::start(store.clone(), Duration::from_secs(3600), &workers);
        let swept = sweeper.sweep_now().await.unwrap();
        task.shutdown(worker::DRAIN).await;
        let removed = |name| swept.iter().find(|s| s.keyspace == name).map(|s| s.removed);
        assert_eq!(removed("kad_records"), Some(100_000));
        assert_eq!(removed("notify_seen"), Some(1));
        assert_eq!(sweeper.removed(), 100_001);
        let left = store.scan(&KAD_RECORDS, &[], 10).unwrap();
        assert_eq!(left.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(), vec![live]);
    }
}
