//! What every backend must do, checked the same way for each.

use super::{BLOCKS, OWNED, RECORDS, backends, content, key, open};
use crate::{Batch, OpenError, Stats, StoreError, keyspace};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn immutable_values_keep_their_bytes_and_leases_only_grow() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), backend);
        runtime().block_on(async {
            store.put(&BLOCKS, key(1), b"first".to_vec(), 100).await.unwrap();
            // Same key again: data kept, lease the later of the two.
            store.put(&BLOCKS, key(1), b"other".to_vec(), 50).await.unwrap();
            let block = store.get(&BLOCKS, &key(1)).unwrap().unwrap();
            assert_eq!(
                (block.value.as_slice(), block.expires),
                (&b"first"[..], 100),
                "{backend:?}"
            );
            store.put(&BLOCKS, key(1), b"first".to_vec(), 300).await.unwrap();
            assert_eq!(store.get(&BLOCKS, &key(1)).unwrap().unwrap().expires, 300);
            store.extend(&BLOCKS, key(1), 200).await.unwrap();
            assert_eq!(store.get(&BLOCKS, &key(1)).unwrap().unwrap().expires, 300, "never earlier");
            store.extend(&BLOCKS, key(1), 400).await.unwrap();
            assert_eq!(store.get(&BLOCKS, &key(1)).unwrap().unwrap().expires, 400);
            store.extend(&BLOCKS, key(9), 400).await.unwrap();
            assert!(
                store.get(&BLOCKS, &key(9)).unwrap().is_none(),
                "extend of a missing value creates nothing"
            );
            store.delete(&BLOCKS, key(1)).await.unwrap();
            assert!(store.get(&BLOCKS, &key(1)).unwrap().is_none());
            assert_eq!(store.stats(&BLOCKS), Stats::default(), "{backend:?}");
        });
    }
}

#[test]
fn mutable_values_overwrite() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), backend);
        runtime().block_on(async {
            store.put(&RECORDS, b"head".to_vec(), b"seq 1".to_vec(), 100).await.unwrap();
            store.put(&RECORDS, b"head".to_vec(), b"seq 2".to_vec(), 50).await.unwrap();
            let record = store.get(&RECORDS, b"head").unwrap().unwrap();
            assert_eq!(
                (record.value.as_slice(), record.expires),
                (&b"seq 2"[..], 50),
                "{backend:?}"
            );
            store.delete(&RECORDS, b"head".to_vec()).await.unwrap();
            assert!(store.get(&RECORDS, b"head").unwrap().is_none());
        });
    }
}

#[test]
fn keyspaces_are_separate_and_must_be_declared() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), backend);
        runtime().block_on(async {
            store.put(&RECORDS, key(1), b"record".to_vec(), 100).await.unwrap();
            store.put(&OWNED, key(1), b"owned".to_vec(), 100).await.unwrap();
            assert_eq!(store.get(&RECORDS, &key(1)).unwrap().unwrap().value, b"record");
            assert_eq!(store.get(&OWNED, &key(1)).unwrap().unwrap().value, b"owned");
            assert!(store.get(&BLOCKS, &key(1)).unwrap().is_none(), "{backend:?}");
            let stranger = keyspace!("stranger", Mutable, key: 8, value: 8);
            let err = store.put(&stranger, key(1), b"x".to_vec(), 1).await.unwrap_err();
            assert!(matches!(err, StoreError::UnknownKeyspace("stranger")), "{err}");
            assert!(store.get(&stranger, &key(1)).is_err());
        });
        drop(store);
        let twice = crate::Store::open(dir.path(), backend, &[RECORDS, RECORDS]);
        assert!(matches!(twice, Err(OpenError::DuplicateKeyspace("records"))));
    }
}

#[test]
fn a_batch_commits_across_keyspaces_all_or_nothing() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), backend);
        runtime().block_on(async {
            store.put(&RECORDS, key(7), b"old".to_vec(), 10).await.unwrap();
            let mut batch = Batch::new();
            batch.put(&OWNED, key(1), b"a".to_vec(), 10);
            batch.put(&BLOCKS, key(2), content(2), 10);
            batch.delete(&RECORDS, key(7));
            batch.extend(&OWNED, key(1), 20);
            store.commit(batch).await.unwrap();
            assert_eq!(store.get(&OWNED, &key(1)).unwrap().unwrap().expires, 20);
            assert_eq!(store.get(&BLOCKS, &key(2)).unwrap().unwrap().value, content(2));
            assert!(store.get(&RECORDS, &key(7)).unwrap().is_none(), "{backend:?}");

            // One bad change refuses the whole batch before anything is written.
            let mut bad = Batch::new();
            bad.put(&OWNED, key(3), b"b".to_vec(), 10);
            bad.put(&OWNED, key(4), vec![0; 2048], 10);
            assert!(matches!(
                store.commit(bad).await.unwrap_err(),
                StoreError::ValueTooLarge { .. }
            ));
            assert!(store.get(&OWNED, &key(3)).unwrap().is_none());
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
                store.put(&BLOCKS, key(i), content(i), 1000 + i).await.unwrap();
                store.put(&RECORDS, key(i), b"r".to_vec(), 1000 + i).await.unwrap();
            }
            assert_eq!(store.expire(&BLOCKS, 1000).await.unwrap(), 0);
            assert_eq!(store.expire(&BLOCKS, 1020).await.unwrap(), 20, "{backend:?}");
            assert_eq!(store.expire(&RECORDS, 1010).await.unwrap(), 10);
            assert!(store.get(&BLOCKS, &key(19)).unwrap().is_none());
            assert_eq!(store.get(&BLOCKS, &key(20)).unwrap().unwrap().value, content(20));
            assert!(store.get(&RECORDS, &key(9)).unwrap().is_none());
            assert!(store.get(&RECORDS, &key(10)).unwrap().is_some());
            // An extended lease is no longer due.
            store.extend(&BLOCKS, key(30), 5000).await.unwrap();
            assert_eq!(store.expire(&BLOCKS, 2000).await.unwrap(), 29);
            assert_eq!(store.get(&BLOCKS, &key(30)).unwrap().unwrap().value, content(30));
            assert_eq!(store.stats(&BLOCKS).count, 1);
        });
    }
}

#[test]
fn a_sweep_expires_every_swept_keyspace_but_not_unswept_ones() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), backend);
        runtime().block_on(async {
            for i in 0..10u64 {
                store.put(&BLOCKS, key(i), content(i), 100).await.unwrap();
                store.put(&RECORDS, key(i), b"r".to_vec(), 100 + i).await.unwrap();
                store.put(&OWNED, key(i), b"o".to_vec(), 100).await.unwrap();
            }
            let swept = store.sweep(105).await.unwrap();
            let removed = |name| swept.iter().find(|s| s.keyspace == name).map(|s| s.removed);
            assert_eq!(removed("blocks"), Some(10), "{backend:?}");
            assert_eq!(removed("records"), Some(5));
            assert_eq!(removed("owned"), None, "an unswept keyspace is left to its owner");
            assert!(store.get(&OWNED, &key(0)).unwrap().is_some());
        });
    }
}

#[test]
fn live_entries_are_read_in_lease_order_without_touching_expired_ones() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), backend);
        runtime().block_on(async {
            // Leases 0..100; ties at 60 ordered by key; one kept "for ever".
            for i in 0..100u64 {
                store.put(&RECORDS, key(i), i.to_be_bytes().to_vec(), i).await.unwrap();
            }
            store.put(&RECORDS, key(500), b"tie".to_vec(), 60).await.unwrap();
            store.put(&RECORDS, key(600), b"forever".to_vec(), u64::MAX).await.unwrap();
        });
        let mut seen = Vec::new();
        store.for_each_live(&RECORDS, 59, 7, |k, e| seen.push((k, e.expires))).unwrap();
        let mut expected: Vec<_> = (60..100u64).map(|i| (key(i), i)).collect();
        expected.insert(1, (key(500), 60));
        expected.push((key(600), u64::MAX));
        assert_eq!(seen, expected, "{backend:?}");
        // A bounded window, for lease renewal: ends before 63.
        let due = store.expiring(&RECORDS, (0, &[]), Some(63), 1000).unwrap();
        assert_eq!(due.len(), 64, "{backend:?}");
        assert_eq!(due.last().map(|(k, _)| k.clone()), Some(key(62)));
    }
}

#[test]
fn scans_page_in_key_order() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), backend);
        runtime().block_on(async {
            for i in (0..30u64).rev() {
                store.put(&BLOCKS, key(i), content(i), 10).await.unwrap();
            }
            store.put(&RECORDS, vec![1, 2, 3], b"x".to_vec(), 10).await.unwrap();
            store.put(&RECORDS, vec![1, 2, 4], b"y".to_vec(), 10).await.unwrap();
            store.put(&RECORDS, vec![1, 3], b"z".to_vec(), 10).await.unwrap();
        });
        let mut seen = Vec::new();
        let mut from = Vec::new();
        loop {
            let page = store.scan(&BLOCKS, &from, 7).unwrap();
            seen.extend(page.iter().map(|(k, e)| (k.clone(), e.value.len() as u64)));
            let Some((last, _)) = page.last() else { break };
            from = crate::successor(last);
        }
        let expected: Vec<_> = (0..30u64).map(|i| (key(i), content(i).len() as u64)).collect();
        assert_eq!(seen, expected, "{backend:?}");
        let stats = store.stats(&BLOCKS);
        assert_eq!(stats.count, 30);
        assert_eq!(stats.bytes, expected.iter().map(|(_, s)| s).sum::<u64>());
        let first = store.scan_prefix(&RECORDS, &[1, 2], None, 1).unwrap();
        assert_eq!(first.len(), 1);
        let rest = store.scan_prefix(&RECORDS, &[1, 2], Some(&first[0].0), 10).unwrap();
        assert_eq!(rest.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(), vec![vec![1, 2, 4]]);
    }
}

#[test]
fn limits_are_refused_before_writing() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), backend);
        runtime().block_on(async {
            let long_key = vec![1u8; BLOCKS.max_key() + 1];
            let err = store.put(&BLOCKS, long_key, b"x".to_vec(), 1).await.unwrap_err();
            assert!(matches!(err, StoreError::KeyTooLarge { .. }), "{err}");
            let big = vec![0u8; RECORDS.max_value() + 1];
            let err = store.put(&RECORDS, b"k".to_vec(), big, 1).await.unwrap_err();
            assert!(matches!(err, StoreError::ValueTooLarge { .. }), "{err}");
        });
    }
}

#[test]
fn data_and_totals_survive_reopen() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let before = {
            let store = open(dir.path(), backend);
            for i in 0..20u64 {
                store
                    .put_blocking(&BLOCKS, key(i), content(i), if i < 5 { 10 } else { 99 })
                    .unwrap();
            }
            // A second put of a held key changes nothing; a delete and an
            // expiry take entries and bytes away.
            store.put_blocking(&BLOCKS, key(7), content(7), 99).unwrap();
            runtime().block_on(store.delete(&BLOCKS, key(6))).unwrap();
            assert_eq!(runtime().block_on(store.expire(&BLOCKS, 50)).unwrap(), 5);
            let stats = store.stats(&BLOCKS);
            store.close();
            stats
        };
        assert_eq!(before.count, 14, "{backend:?}");
        let bytes: u64 = (7..20u64).chain([5]).map(|i| content(i).len() as u64).sum();
        assert_eq!(before.bytes, bytes, "{backend:?}");
        let store = open(dir.path(), backend);
        for i in (5..20u64).filter(|i| *i != 6) {
            assert_eq!(
                store.get(&BLOCKS, &key(i)).unwrap().unwrap().value,
                content(i),
                "{backend:?}"
            );
        }
        let after = store.stats(&BLOCKS);
        assert_eq!((after.count, after.bytes), (before.count, before.bytes), "{backend:?}");
    }
}

#[test]
fn one_process_per_directory() {
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path(), backend);
        let second = crate::Store::open(dir.path(), backend, &[BLOCKS]);
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
        store.put_blocking(&BLOCKS, key(1), content(1), 5).unwrap();
        store.close();
        assert!(matches!(
            store.put_blocking(&BLOCKS, key(2), content(2), 5),
            Err(StoreError::Closed)
        ));
        assert_eq!(store.get(&BLOCKS, &key(1)).unwrap().unwrap().value, content(1));
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
                            store.put(&BLOCKS, key(k), content(k), 10).await.unwrap();
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
                store.get(&BLOCKS, &key(w * 1000 + 19)).unwrap().unwrap().value,
                content(w * 1000 + 19)
            );
        }
    }
}

#[test]
fn a_store_without_kept_totals_is_counted_once_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path(), crate::Backend::Redb);
        for i in 0..10u64 {
            store.put_blocking(&BLOCKS, key(i), content(i), 99).unwrap();
        }
        store.close();
    }
    // As a store written before totals were kept: no row for `blocks`.
    {
        let db = redb::Database::open(dir.path().join("epost.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        let table: redb::TableDefinition<'_, &str, &[u8]> =
            redb::TableDefinition::new(crate::engine::TOTALS);
        assert!(txn.open_table(table).unwrap().remove("blocks").unwrap().is_some());
        txn.commit().unwrap();
    }
    let bytes: u64 = (0..10u64).map(|i| content(i).len() as u64).sum();
    for _ in 0..2 {
        let store = open(dir.path(), crate::Backend::Redb);
        let stats = store.stats(&BLOCKS);
        assert_eq!((stats.count, stats.bytes), (10, bytes));
        store.put_blocking(&BLOCKS, key(10), content(10), 99).unwrap();
        runtime().block_on(store.delete(&BLOCKS, key(10))).unwrap();
        store.close();
    }
}
