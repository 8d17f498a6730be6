//! What every backend must do, checked the same way for each.

use super::{backends, content, key, open};
use crate::{MAX_BLOCK_KEY, MAX_RECORD_VALUE, OpenError, Stats, StoreError};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn blocks_are_immutable_and_leases_only_grow() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), backend);
        runtime().block_on(async {
            store.put_block(key(1), b"first".to_vec(), 100).await.unwrap();
            // Same key again: data kept, lease the later of the two.
            store.put_block(key(1), b"other".to_vec(), 50).await.unwrap();
            let block = store.get_block(&key(1)).unwrap().unwrap();
            assert_eq!((block.data.as_slice(), block.expires), (&b"first"[..], 100), "{backend:?}");
            store.put_block(key(1), b"first".to_vec(), 300).await.unwrap();
            assert_eq!(store.block_meta(&key(1)).unwrap().unwrap().expires, 300);
            store.extend_block(key(1), 200).await.unwrap();
            assert_eq!(store.block_meta(&key(1)).unwrap().unwrap().expires, 300, "never earlier");
            store.extend_block(key(1), 400).await.unwrap();
            assert_eq!(store.block_meta(&key(1)).unwrap().unwrap().expires, 400);
            store.extend_block(key(9), 400).await.unwrap();
            assert!(
                store.get_block(&key(9)).unwrap().is_none(),
                "extend of a missing block creates nothing"
            );
            store.delete_block(key(1)).await.unwrap();
            assert!(store.get_block(&key(1)).unwrap().is_none());
            assert_eq!(store.block_stats(), Stats::default(), "{backend:?}");
        });
    }
}

#[test]
fn records_overwrite() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), backend);
        runtime().block_on(async {
            store.put_record(b"head".to_vec(), b"seq 1".to_vec(), 100).await.unwrap();
            store.put_record(b"head".to_vec(), b"seq 2".to_vec(), 50).await.unwrap();
            let record = store.get_record(b"head").unwrap().unwrap();
            assert_eq!(
                (record.value.as_slice(), record.expires),
                (&b"seq 2"[..], 50),
                "{backend:?}"
            );
            store.delete_record(b"head".to_vec()).await.unwrap();
            assert!(store.get_record(b"head").unwrap().is_none());
        });
    }
}

#[test]
fn expired_entries_are_collected_and_only_those() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), backend);
        runtime().block_on(async {
            for i in 0..50u64 {
                store.put_block(key(i), content(i), 1000 + i).await.unwrap();
                store.put_record(key(i), b"r".to_vec(), 1000 + i).await.unwrap();
            }
            assert_eq!(store.collect_expired_blocks(1000).await.unwrap(), 0);
            assert_eq!(store.collect_expired_blocks(1020).await.unwrap(), 20, "{backend:?}");
            assert_eq!(store.collect_expired_records(1010).await.unwrap(), 10);
            assert!(store.get_block(&key(19)).unwrap().is_none());
            assert_eq!(store.get_block(&key(20)).unwrap().unwrap().data, content(20));
            assert!(store.get_record(&key(9)).unwrap().is_none());
            assert!(store.get_record(&key(10)).unwrap().is_some());
            // An extended lease is no longer due.
            store.extend_block(key(30), 5000).await.unwrap();
            assert_eq!(store.collect_expired_blocks(2000).await.unwrap(), 29);
            assert_eq!(store.get_block(&key(30)).unwrap().unwrap().data, content(30));
            assert_eq!(store.block_stats().count, 1);
        });
    }
}

#[test]
fn scans_page_in_key_order() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), backend);
        runtime().block_on(async {
            for i in (0..30u64).rev() {
                store.put_block(key(i), content(i), 10).await.unwrap();
            }
        });
        let mut seen = Vec::new();
        let mut from = Vec::new();
        loop {
            let page = store.blocks_from(&from, 7).unwrap();
            seen.extend(page.iter().map(|(k, m)| (k.clone(), m.size)));
            let Some((last, _)) = page.last() else { break };
            from = last.clone();
            from.push(0);
        }
        let expected: Vec<_> = (0..30u64).map(|i| (key(i), content(i).len() as u64)).collect();
        assert_eq!(seen, expected, "{backend:?}");
        let stats = store.block_stats();
        assert_eq!(stats.count, 30);
        assert_eq!(stats.bytes, expected.iter().map(|(_, s)| s).sum::<u64>());
    }
}

#[test]
fn limits_are_refused_before_writing() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), backend);
        runtime().block_on(async {
            let long_key = vec![1u8; MAX_BLOCK_KEY + 1];
            let err = store.put_block(long_key, b"x".to_vec(), 1).await.unwrap_err();
            assert!(matches!(err, StoreError::KeyTooLarge { .. }), "{err}");
            let big = vec![0u8; MAX_RECORD_VALUE + 1];
            let err = store.put_record(b"k".to_vec(), big, 1).await.unwrap_err();
            assert!(matches!(err, StoreError::ValueTooLarge { .. }), "{err}");
        });
    }
}

#[test]
fn data_survives_reopen_and_totals_are_rebuilt() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = open(dir.path(), backend);
            for i in 0..20u64 {
                store.put_block_blocking(key(i), content(i), 99).unwrap();
            }
            store.close();
        }
        let store = open(dir.path(), backend);
        for i in 0..20u64 {
            assert_eq!(store.get_block(&key(i)).unwrap().unwrap().data, content(i), "{backend:?}");
        }
        assert_eq!(store.block_stats().count, 20);
    }
}

#[test]
fn one_process_per_directory() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), backend);
        let second = crate::Store::open(dir.path(), backend);
        assert!(matches!(second, Err(OpenError::Locked { .. })), "{backend:?}");
        drop(store);
        // The lock goes with the store.
        open(dir.path(), backend);
    }
}

#[test]
fn closed_store_refuses_writes_and_still_reads() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), backend);
        store.put_block_blocking(key(1), content(1), 5).unwrap();
        store.close();
        assert!(matches!(store.put_block_blocking(key(2), content(2), 5), Err(StoreError::Closed)));
        assert_eq!(store.get_block(&key(1)).unwrap().unwrap().data, content(1));
    }
}

#[test]
fn concurrent_writers_share_commits() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), backend);
        runtime().block_on(async {
            let writers: Vec<_> = (0..64u64)
                .map(|w| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        for i in 0..20u64 {
                            let k = w * 1000 + i;
                            store.put_block(key(k), content(k), 10).await.unwrap();
                        }
                    })
                })
                .collect();
            for writer in writers {
                writer.await.unwrap();
            }
        });
        let metrics = store.metrics();
        assert_eq!(metrics.mutations, 64 * 20);
        assert!(
            metrics.commits * 4 <= metrics.mutations,
            "{backend:?}: {metrics:?}: no group commit"
        );
        for w in [0u64, 63] {
            assert_eq!(
                store.get_block(&key(w * 1000 + 19)).unwrap().unwrap().data,
                content(w * 1000 + 19)
            );
        }
    }
}
