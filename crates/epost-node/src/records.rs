//! Kademlia records on disk: reloaded at start, written behind while the
//! node runs (through the store's group commit), so a restarted holder
//! still knows what it held, and still refuses an older log head.
//!
//! The store's record space is shared with other services (the
//! notification buffer keeps its entries there under 65-byte keys), so
//! only keys that are Kademlia record keys ([`RecordKey`], 33 bytes) are
//! reloaded, and only those are written: a peer cannot plant an entry in
//! another service's part of the space by publishing a record under its
//! key.

use std::time::Duration;

use epost_dht::{RecordWrite, StoredRecords};
use epost_store::Store;
use epost_types::record::RecordKey;
use epost_types::time::Timestamp;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

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
                page.into_iter()
                    .filter(|(k, r)| r.expires > now && is_record_key(k))
                    .map(|(k, r)| (k, r.value)),
            );
            if !full {
                break;
            }
        }
        let (tx, mut rx) = mpsc::channel::<RecordWrite>(QUEUE);
        let task = tokio::spawn(async move {
            while let Some(write) = rx.recv().await {
                if !is_record_key(&write.key) {
                    debug!(len = write.key.len(), "not writing a record under a foreign key");
                    continue;
                }
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

/// Whether `key` is a Kademlia record key, not another service's entry.
fn is_record_key(key: &[u8]) -> bool {
    RecordKey::decode(key).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_kademlia_record_keys_are_reloaded_and_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), epost_store::Backend::Redb).unwrap();
        let far = Timestamp::now().saturating_add(Duration::from_secs(3600)).as_millis();
        let mut kad_key = vec![0x02];
        kad_key.extend_from_slice(&[7; 32]);
        let mut notify_key = vec![0x40];
        notify_key.extend_from_slice(&[7; 64]);
        store.put_record(kad_key.clone(), b"cert".to_vec(), far).await.unwrap();
        store.put_record(notify_key.clone(), b"pending".to_vec(), far).await.unwrap();
        store.put_record(b"junk".to_vec(), b"junk".to_vec(), far).await.unwrap();

        let (loaded, writer) = RecordWriter::start(store.clone());
        assert_eq!(loaded, vec![(kad_key.clone(), b"cert".to_vec())]);

        // A peer's record under a foreign key does not reach the disk.
        let tx = writer.sender();
        tx.send(RecordWrite { key: notify_key.clone(), value: b"planted".to_vec() }).await.unwrap();
        let mut log_key = vec![0x01];
        log_key.extend_from_slice(&[9; 32]);
        tx.send(RecordWrite { key: log_key.clone(), value: b"head".to_vec() }).await.unwrap();
        drop(tx);
        writer.shutdown().await;
        assert_eq!(store.get_record(&notify_key).unwrap().unwrap().value, b"pending");
        assert_eq!(store.get_record(&log_key).unwrap().unwrap().value, b"head");
    }
}
