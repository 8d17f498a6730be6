//! Kademlia records on disk: reloaded at start, written behind while the
//! node runs (through the store's group commit), so a restarted holder
//! still knows what it held, and still refuses an older log head.
//!
//! Records live in their own keyspace, each until the lease end the
//! overlay gave it (its publisher's last put plus the record TTL); start-up
//! reads only the live ones, and the sweeper removes the rest. Only keys
//! that are Kademlia record keys ([`RecordKey`], 33 bytes) are written or
//! reloaded.

use epost_dht::{RecordWrite, StoredRecords};
use epost_store::Store;
use epost_types::record::RecordKey;
use epost_types::time::Timestamp;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::chain::Chain;
use crate::keyspaces::KAD_RECORDS;
use crate::worker::{DRAIN, Worker, Workers};

/// Records queued for disk before the overlay keeps new ones in memory only.
const QUEUE: usize = 4096;
const PAGE: usize = 1024;

pub(crate) struct RecordWriter {
    tx: mpsc::Sender<RecordWrite>,
    worker: Worker,
}

impl RecordWriter {
    /// Loads the records held at the last shutdown and starts the writer.
    pub(crate) fn start(store: Store, workers: &Workers) -> (StoredRecords, Self) {
        let now = Timestamp::now().as_millis();
        let mut loaded = Vec::new();
        let reloaded = store.for_each_live(&KAD_RECORDS, now, PAGE, |key, entry| {
            if is_record_key(&key) {
                loaded.push(RecordWrite { key, value: entry.value, expires: entry.expires });
            }
        });
        if let Err(e) = reloaded {
            warn!(error = %Chain(&e), "cannot reload stored records; starting without them");
        }
        let (tx, mut rx) = mpsc::channel::<RecordWrite>(QUEUE);
        // Ends when every sender is gone (the overlay's, then this
        // handle's at shutdown), not on the stop signal: what the overlay
        // queued before it stopped is written.
        let worker = workers.start("records", |ctx| async move {
            while let Some(write) = rx.recv().await {
                if !is_record_key(&write.key) {
                    debug!(len = write.key.len(), "not writing a record under a foreign key");
                    continue;
                }
                let _busy = ctx.busy();
                if let Err(e) = store.put(&KAD_RECORDS, write.key, write.value, write.expires).await
                {
                    ctx.failed(&e);
                    warn!(error = %Chain(&e), "a record could not be written to disk");
                }
            }
        });
        (loaded, Self { tx, worker })
    }

    pub(crate) fn sender(&self) -> mpsc::Sender<RecordWrite> {
        self.tx.clone()
    }

    /// Writes what is queued, then stops (call after the overlay stopped).
    pub(crate) async fn shutdown(self) {
        drop(self.tx);
        self.worker.join(DRAIN).await;
    }
}

/// Whether `key` is a Kademlia record key, not another service's entry.
fn is_record_key(key: &[u8]) -> bool {
    RecordKey::decode(key).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: Vec<u8>, value: &[u8], expires: u64) -> RecordWrite {
        RecordWrite { key, value: value.to_vec(), expires }
    }

    #[tokio::test]
    async fn only_live_kademlia_records_are_reloaded_and_only_those_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(dir.path(), epost_store::Backend::Redb, crate::keyspaces::ALL).unwrap();
        let now = Timestamp::now().as_millis();
        let mut cert = vec![0x02];
        cert.extend_from_slice(&[7; 32]);
        let mut lapsed = vec![0x03];
        lapsed.extend_from_slice(&[7; 32]);
        store.put(&KAD_RECORDS, cert.clone(), b"cert".to_vec(), now + 60_000).await.unwrap();
        store.put(&KAD_RECORDS, lapsed, b"old".to_vec(), now - 1).await.unwrap();
        store.put(&KAD_RECORDS, b"junk".to_vec(), b"junk".to_vec(), now + 60_000).await.unwrap();

        let (loaded, writer) = RecordWriter::start(store.clone(), &Workers::new());
        assert_eq!(loaded, vec![record(cert.clone(), b"cert", now + 60_000)]);

        // Only record keys reach the disk, each with its own lease end.
        let tx = writer.sender();
        tx.send(record(vec![0x40; 65], b"planted", now + 1)).await.unwrap();
        let mut head = vec![0x01];
        head.extend_from_slice(&[9; 32]);
        tx.send(record(head.clone(), b"head", now + 5_000)).await.unwrap();
        drop(tx);
        writer.shutdown().await;
        assert!(store.get(&KAD_RECORDS, &[0x40; 65]).unwrap().is_none());
        let stored = store.get(&KAD_RECORDS, &head).unwrap().unwrap();
        assert_eq!((stored.value.as_slice(), stored.expires), (&b"head"[..], now + 5_000));
    }
}
