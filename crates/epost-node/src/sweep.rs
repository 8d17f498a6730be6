//! The sweeper: every keyspace marked swept (spec/store.md section 1) is
//! rid of its expired entries on a schedule, and on demand (`epost
//! repair`), so nothing stays on disk for ever and start-up, which reads
//! only live entries, never meets a growing pile of dead ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use epost_store::{Store, Swept};
use epost_types::time::Timestamp;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

/// Handle to run a sweep now. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Sweeper {
    store: Store,
    removed: Arc<AtomicU64>,
}

/// The periodic task, for an orderly shutdown.
pub(crate) struct SweepTask {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl SweepTask {
    pub(crate) async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

impl Sweeper {
    /// Sweeps `store` every `interval`, the first time one interval after
    /// start (start-up is not slowed by a sweep).
    pub(crate) fn start(store: Store, interval: Duration) -> (Self, SweepTask) {
        let sweeper = Self { store, removed: Arc::new(AtomicU64::new(0)) };
        let (stop, mut stopped) = watch::channel(false);
        let worker = sweeper.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Err(e) = worker.sweep_now().await {
                            warn!(error = %e, "sweeping expired entries failed; the next sweep retries");
                        }
                    }
                    _ = stopped.changed() => break,
                }
            }
        });
        (sweeper, SweepTask { stop, task })
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
