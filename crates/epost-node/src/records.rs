//! Kademlia records on disk: reloaded at start, written behind while the
//! node runs (through the store's group commit), so a restarted holder
//! still knows what it held, and still refuses an older log head.

use std::time::Duration;

use epost_dht::{RecordWrite, StoredRecords};
use epost_store::Store;
use epost_types::time::Timestamp;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::warn;

/// Records are kept this long unless republished (their owners republish
/// far more often).
const RECORD_LEASE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Records queued for disk before the overlay keeps new ones in memory only.
const QUEUE: usize = 4096;
const PAGE: usize = 1024;

pub(crate) struct RecordWriter {
    tx: mpsc::Sender<RecordWrite>,
    task: JoinHandle<()>,
}

impl RecordWriter {
    /// Loads the records held at the last shutdown and starts the writer.
    pub(crate) fn start(store: Store) -> (StoredRecords, Self) {
        let now = Timestamp::now().as_millis();
        let mut loaded = Vec::new();
        let mut from = Vec::new();
        loop {
            let page = match store.records_from(&from, PAGE) {
                Ok(page) => page,
                Err(e) => {
                    warn!(error = %e, "cannot reload stored records; starting without them");
                    break;
                }
            };
            let full = page.len() == PAGE;
            if let Some((last, _)) = page.last() {
                from = last.clone();
                from.push(0);
            }
            loaded.extend(
                page.into_iter().filter(|(_, r)| r.expires > now).map(|(k, r)| (k, r.value)),
            );
            if !full {
                break;
            }
        }
        let (tx, mut rx) = mpsc::channel::<RecordWrite>(QUEUE);
        let task = tokio::spawn(async move {
            while let Some(write) = rx.recv().await {
                let expires = Timestamp::now().saturating_add(RECORD_LEASE).as_millis();
                if let Err(e) = store.put_record(write.key, write.value, expires).await {
                    warn!(error = %e, "a record could not be written to disk");
                }
            }
        });
        (loaded, Self { tx, task })
    }

    pub(crate) fn sender(&self) -> mpsc::Sender<RecordWrite> {
        self.tx.clone()
    }

    /// Writes what is queued, then stops (call after the overlay stopped).
    pub(crate) async fn shutdown(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}
