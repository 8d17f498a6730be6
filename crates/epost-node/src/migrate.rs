//! Moving a store written before keyspaces had names: every record then
//! lived in one `records` table, its owner told by a tag byte or the key's
//! length. Each live entry moves to its own keyspace (without the tag),
//! each expired or unrecognised one is dropped, in atomic pages, so a
//! crash midway leaves every entry in exactly one of the two places and
//! the next start carries on. An empty legacy table costs one read.

use epost_store::{Batch, Store, StoreError};
use tracing::{info, warn};

use crate::keyspaces::{
    KAD_RECORDS, LEGACY_RECORDS, NOTIFY_PENDING, NOTIFY_RECEIPTED, NOTIFY_RECEIVED, NOTIFY_SEEN,
};
use epost_store::Keyspace;

/// Entries moved per transaction.
const PAGE: usize = 512;

/// What a migration did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Migrated {
    pub(crate) moved: u64,
    pub(crate) dropped: u64,
}

/// Where a legacy entry belongs, and its key there.
fn destination(key: &[u8]) -> Option<(Keyspace, Vec<u8>)> {
    let (tag, rest) = key.split_first()?;
    match (*tag, key.len()) {
        // Kademlia record keys keep their tag: it is part of the key.
        (0x01..=0x03, 33) => Some((KAD_RECORDS, key.to_vec())),
        (0x40, 65) => Some((NOTIFY_PENDING, rest.to_vec())),
        (0x41, 65) => Some((NOTIFY_RECEIPTED, rest.to_vec())),
        (0x42, 49) => Some((NOTIFY_SEEN, rest.to_vec())),
        (0x43, 73) => Some((NOTIFY_RECEIVED, rest.to_vec())),
        _ => None,
    }
}

/// Moves every legacy record into its keyspace.
pub(crate) async fn legacy_records(store: &Store, now: u64) -> Result<Migrated, StoreError> {
    let mut done = Migrated::default();
    loop {
        let page = store.scan(&LEGACY_RECORDS, &[], PAGE)?;
        if page.is_empty() {
            break;
        }
        let mut batch = Batch::new();
        for (key, entry) in page {
            match destination(&key) {
                Some((keyspace, new_key)) if entry.expires > now => {
                    batch.put(&keyspace, new_key, entry.value, entry.expires);
                    done.moved += 1;
                }
                _ => done.dropped += 1,
            }
            batch.delete(&LEGACY_RECORDS, key);
        }
        store.commit(batch).await?;
    }
    if done != Migrated::default() {
        info!(moved = done.moved, dropped = done.dropped, "records moved to named keyspaces");
    }
    if done.dropped > 0 {
        warn!(dropped = done.dropped, "expired or unrecognised records were not carried over");
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn legacy_records_move_to_their_keyspaces_and_expired_ones_go() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(dir.path(), epost_store::Backend::Redb, crate::keyspaces::ALL).unwrap();
        let mut kad = vec![0x02];
        kad.extend_from_slice(&[7; 32]);
        let mut pending = vec![0x40];
        pending.extend_from_slice(&[8; 64]);
        let mut seen = vec![0x42];
        seen.extend_from_slice(&[9; 48]);
        let mut old = vec![0x43];
        old.extend_from_slice(&[1; 72]);
        store.put(&LEGACY_RECORDS, kad.clone(), b"cert".to_vec(), 500).await.unwrap();
        store.put(&LEGACY_RECORDS, pending.clone(), b"sealed".to_vec(), 500).await.unwrap();
        store.put(&LEGACY_RECORDS, seen.clone(), Vec::new(), 500).await.unwrap();
        store.put(&LEGACY_RECORDS, old, b"received".to_vec(), 50).await.unwrap();
        store.put(&LEGACY_RECORDS, b"junk".to_vec(), b"?".to_vec(), 500).await.unwrap();

        let done = legacy_records(&store, 100).await.unwrap();
        assert_eq!(done, Migrated { moved: 3, dropped: 2 });
        assert_eq!(store.get(&KAD_RECORDS, &kad).unwrap().unwrap().value, b"cert");
        assert_eq!(store.get(&NOTIFY_PENDING, &pending[1..]).unwrap().unwrap().value, b"sealed");
        assert_eq!(store.get(&NOTIFY_SEEN, &seen[1..]).unwrap().unwrap().expires, 500);
        assert!(store.scan(&LEGACY_RECORDS, &[], 10).unwrap().is_empty());
        assert_eq!(legacy_records(&store, 100).await.unwrap(), Migrated::default());
    }
}
