//! Writer and reader together, and readers against hostile trees.

use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::capability::{Capability, ObjectKey};
use crate::cbor::DecodeError;
use crate::convergent::{self, ConvergenceSecret, Kind, OpenError, SealedObject};
use crate::id::ObjectId;
use crate::limits::MAX_MANIFEST;

type Store = HashMap<ObjectId, Vec<u8>>;

fn secret() -> ConvergenceSecret {
    ConvergenceSecret::new(b"test realm".to_vec())
}

/// The smallest layout: 16-byte chunks, 16 children per manifest, so a
/// depth-2 tree needs only 257 chunks (4 KiB).
fn tiny() -> Layout {
    Layout::new(16, 16).unwrap()
}

fn input(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn keep(store: &mut Store, objects: Vec<SealedObject>) {
    for object in objects {
        store.insert(object.id, object.ciphertext);
    }
}

/// Writes `data` in pieces of `piece` bytes; returns the capability, the
/// stored objects, and how many objects `push` handed out before `finish`.
fn write(data: &[u8], layout: Layout, piece: usize) -> (Finished, Store, usize) {
    let mut writer = ObjectWriter::with_layout(secret(), layout);
    let mut store = Store::new();
    let mut early = 0;
    for part in data.chunks(piece.max(1)) {
        let objects = writer.push(part);
        early += objects.len();
        keep(&mut store, objects);
    }
    let finished = writer.finish();
    keep(&mut store, finished.objects.clone());
    (finished, store, early)
}

fn read(capability: &Capability, store: &Store) -> Result<Vec<u8>, ReadError> {
    let mut reader = ObjectReader::new(capability.clone());
    let mut out = Vec::new();
    while let Some(next) = reader.next_needed() {
        let ciphertext = store.get(&next.id).cloned().unwrap_or_default();
        if let Some(data) = reader.feed(&next, &ciphertext)? {
            out.extend(data);
        }
    }
    let delivered = reader.finish()?;
    assert_eq!(delivered, out.len() as u64);
    Ok(out)
}

fn manifest_object(manifest: &Manifest) -> SealedObject {
    convergent::seal(&secret(), Kind::Manifest, &manifest.encode())
}

fn child(object: &SealedObject, len: u64) -> ChildRef {
    ChildRef { capability: object.capability(), len }
}

#[test]
fn round_trips_at_the_edges() {
    let cs = tiny().chunk_size();
    let cases = [
        (0, 1),
        (1, 1),
        (cs - 1, 1),
        (cs, 1),
        (cs + 1, 3),
        (5 * cs + 3, 7),
        (16 * cs, 17),                        // exactly one full manifest
        (16 * cs + 1, 17 + 2 + 1),            // two depth-1 manifests under a depth-2 root
        (256 * cs, 256 + 16 + 1),             // a full depth-2 tree
        (300 * cs, 300 + 19 + 2 + 1),         // depth 3
        (4097 * cs, 4097 + 257 + 17 + 2 + 1), // depth 4
    ];
    for (len, objects) in cases {
        let data = input(len);
        let (finished, store, early) = write(&data, tiny(), 7);
        assert_eq!(finished.len, len as u64);
        // Counted as emitted: the repeating input makes some chunks dedup.
        assert_eq!(early + finished.objects.len(), objects, "objects for {len} bytes");
        assert_eq!(read(&finished.capability, &store).unwrap(), data, "{len} bytes");
    }
}

#[test]
fn small_inputs_are_one_data_object() {
    for len in [0, 1, 16] {
        let (finished, store, _) = write(&input(len), tiny(), 16);
        assert_eq!(store.len(), 1);
        let sealed = convergent::seal(&secret(), Kind::Data, &input(len));
        assert_eq!(finished.capability, sealed.capability());
    }
}

#[test]
fn chunks_are_handed_out_as_soon_as_sealed() {
    let mut writer = ObjectWriter::with_layout(secret(), tiny());
    assert_eq!(writer.push(&input(15)).len(), 0);
    assert_eq!(writer.push(&input(1)).len(), 1);
    assert_eq!(writer.push(&input(48)).len(), 3);
    assert_eq!(writer.total_len(), 64);
    // The 16th chunk completes a manifest too, sealed after its children.
    let objects = writer.push(&input(16 * 12));
    assert_eq!(objects.len(), 13);
    assert!(objects[..12].iter().all(|o| o.ciphertext.len() == 16 + 17));
}

#[test]
fn default_writer_uses_one_mebibyte_chunks() {
    let data = input(DEFAULT_CHUNK_SIZE * 2 + 10);
    let mut writer = ObjectWriter::new(secret(), DEFAULT_CHUNK_SIZE);
    let mut store = Store::new();
    keep(&mut store, writer.push(&data));
    assert_eq!(store.len(), 2);
    let finished = writer.finish();
    assert_eq!(finished.objects.len(), 2); // the last chunk and the manifest
    keep(&mut store, finished.objects);
    assert_eq!(read(&finished.capability, &store).unwrap(), data);
    // Sizes out of range are clamped, not trusted.
    let mut clamped = ObjectWriter::new(secret(), 1);
    assert_eq!(clamped.push(&input(MIN_CHUNK_SIZE)).len(), 1);
}

#[test]
fn layouts_are_bounded() {
    assert_eq!(Layout::new(15, 16), Err(LayoutError::ChunkSize { size: 15 }));
    assert_eq!(
        Layout::new(MAX_CHUNK_SIZE + 1, 16),
        Err(LayoutError::ChunkSize { size: MAX_CHUNK_SIZE + 1 })
    );
    assert_eq!(Layout::new(16, 15), Err(LayoutError::Fanout { fanout: 15 }));
    assert_eq!(
        Layout::new(16, MAX_FANOUT + 1),
        Err(LayoutError::Fanout { fanout: MAX_FANOUT + 1 })
    );
    assert_eq!(Layout::default().chunk_size(), DEFAULT_CHUNK_SIZE);
}

#[test]
fn a_full_manifest_fits_its_limit() {
    let key = ObjectKey::from_bytes([0xff; 32]);
    let child = ChildRef {
        capability: Capability::new(ObjectId::from_bytes([0xff; 32]), key),
        len: u64::MAX / MAX_FANOUT as u64,
    };
    let manifest = Manifest {
        v: MANIFEST_VERSION,
        depth: MAX_TREE_DEPTH,
        chunk_size: MAX_CHUNK_SIZE as u32,
        total_len: child.len * MAX_FANOUT as u64,
        children: vec![child; MAX_FANOUT],
    };
    let bytes = manifest.encode();
    assert!(bytes.len() <= MAX_MANIFEST, "{} bytes", bytes.len());
    assert_eq!(Manifest::decode(&bytes), Ok(manifest));
}

#[test]
fn manifest_decode_refuses_oversized_input_and_bad_structure() {
    let huge = vec![0u8; MAX_MANIFEST + 1];
    assert_eq!(
        Manifest::decode(&huge),
        Err(ManifestError::Decode(DecodeError::TooLarge {
            len: MAX_MANIFEST + 1,
            max: MAX_MANIFEST
        }))
    );
    let chunk = convergent::seal(&secret(), Kind::Data, b"0123456789");
    let good = Manifest {
        v: 1,
        depth: 1,
        chunk_size: 16,
        total_len: 10,
        children: vec![child(&chunk, 10)],
    };
    assert_eq!(Manifest::decode(&good.encode()), Ok(good.clone()));
    let refused = |change: &dyn Fn(&mut Manifest)| {
        let mut m = good.clone();
        change(&mut m);
        Manifest::decode(&m.encode()).unwrap_err()
    };
    assert_eq!(
        refused(&|m| m.v = 2),
        ManifestError::Decode(DecodeError::UnsupportedVersion { found: 2, supported: 1 })
    );
    assert_eq!(refused(&|m| m.depth = 0), ManifestError::BadDepth { depth: 0 });
    assert_eq!(refused(&|m| m.depth = 17), ManifestError::BadDepth { depth: 17 });
    assert_eq!(refused(&|m| m.chunk_size = 8), ManifestError::BadChunkSize { size: 8 });
    assert_eq!(refused(&|m| m.children.clear()), ManifestError::BadChildCount { count: 0 });
    assert_eq!(
        refused(&|m| m.total_len = 11),
        ManifestError::LengthSum { declared: 11, sum: Some(10) }
    );
    assert_eq!(
        refused(&|m| {
            m.children[0].len = 0;
            m.total_len = 0;
        }),
        ManifestError::EmptyChild { index: 0 }
    );
    assert_eq!(
        refused(&|m| {
            m.children[0].len = 17;
            m.total_len = 17;
        }),
        ManifestError::ChunkTooLong { index: 0, len: 17, chunk_size: 16 }
    );
    assert_eq!(
        refused(&|m| {
            m.depth = 2;
            m.children = vec![child(&chunk, u64::MAX), child(&chunk, 1)];
            m.total_len = 0;
        }),
        ManifestError::LengthSum { declared: 0, sum: None }
    );
}

/// A two-chunk tree whose manifest says what `lie` makes it say.
fn lying_tree(lie: impl Fn(&mut Manifest)) -> (Capability, Store) {
    let a = convergent::seal(&secret(), Kind::Data, &input(16));
    let b = convergent::seal(&secret(), Kind::Data, &input(9));
    let mut manifest = Manifest {
        v: MANIFEST_VERSION,
        depth: 1,
        chunk_size: 16,
        total_len: 25,
        children: vec![child(&a, 16), child(&b, 9)],
    };
    lie(&mut manifest);
    let root = manifest_object(&manifest);
    let capability = root.capability();
    let mut store = Store::new();
    keep(&mut store, vec![a, b, root]);
    (capability, store)
}

#[test]
fn lying_manifests_give_errors_not_data() {
    let (cap, store) = lying_tree(|_| {});
    assert_eq!(read(&cap, &store).unwrap(), [input(16), input(9)].concat());

    let (cap, store) = lying_tree(|m| {
        m.children[1].len = 10;
        m.total_len = 26;
    });
    assert!(matches!(
        read(&cap, &store),
        Err(ReadError::ChunkLength { expected: 10, found: 9, .. })
    ));

    let (cap, store) = lying_tree(|m| {
        m.children[1].len = 8;
        m.total_len = 24;
    });
    assert!(matches!(
        read(&cap, &store),
        Err(ReadError::ChunkLength { expected: 8, found: 9, .. })
    ));

    // A manifest listed where the parent promised data.
    let (cap, store) = lying_tree(|m| m.depth = 2);
    assert!(matches!(
        read(&cap, &store),
        Err(ReadError::UnexpectedKind { expected: Kind::Manifest, found: Kind::Data, .. })
    ));

    // A child whose key does not fit its id.
    let (cap, store) =
        lying_tree(|m| m.children[0].capability.key = ObjectKey::from_bytes([1; 32]));
    assert!(matches!(read(&cap, &store), Err(ReadError::Open(OpenError::Decrypt))));
}

#[test]
fn lying_subtrees_give_errors_not_data() {
    let (inner_cap, mut store) = lying_tree(|_| {});
    let inner = store.get(&inner_cap.id).cloned().unwrap();
    let inner = SealedObject { id: inner_cap.id, key: inner_cap.key.clone(), ciphertext: inner };
    let top = |depth: u8, len: u64, chunk_size: u32| Manifest {
        v: MANIFEST_VERSION,
        depth,
        chunk_size,
        total_len: len,
        children: vec![child(&inner, len)],
    };
    let cases = [
        (top(2, 26, 16), "ManifestLength"),
        (top(3, 25, 16), "Depth"),
        (top(2, 25, 32), "ChunkSize"),
    ];
    for (manifest, expected) in cases {
        let root = manifest_object(&manifest);
        let cap = root.capability();
        keep(&mut store, vec![root]);
        let error = read(&cap, &store).unwrap_err();
        assert!(format!("{error:?}").starts_with(expected), "{error:?}");
    }
    // A data object where a manifest was promised.
    let chunk = convergent::seal(&secret(), Kind::Data, &input(25));
    let root = manifest_object(&Manifest { children: vec![child(&chunk, 25)], ..top(2, 25, 16) });
    let cap = root.capability();
    keep(&mut store, vec![chunk, root]);
    assert!(matches!(
        read(&cap, &store),
        Err(ReadError::UnexpectedKind { expected: Kind::Manifest, found: Kind::Data, .. })
    ));
}

#[test]
fn feeding_rules() {
    let (finished, store, _) = write(&input(40), tiny(), 40);
    let mut reader = ObjectReader::new(finished.capability.clone());
    let root = reader.next_needed().unwrap();
    assert!(root.is_manifest());
    assert_eq!(root.expected_len(), None);
    // Wrong bytes: refused, and the reader is unchanged, so a retry works.
    assert!(matches!(
        reader.feed(&root, b"not it"),
        Err(ReadError::Open(OpenError::IdMismatch { .. }))
    ));
    assert_eq!(reader.feed(&root, &store[&root.id]), Ok(None));
    let chunks = reader.upcoming(10);
    assert_eq!(chunks.len(), 3);
    assert!(chunks.iter().all(|c| !c.is_manifest()));
    assert_eq!(
        chunks.iter().map(|c| c.expected_len()).collect::<Vec<_>>(),
        [Some(16), Some(16), Some(8)]
    );
    // Out of order.
    assert!(matches!(
        reader.feed(&chunks[1], &store[&chunks[1].id]),
        Err(ReadError::OutOfOrder { .. })
    ));
    assert!(matches!(reader.skip(&chunks[2]), Err(ReadError::OutOfOrder { .. })));
    assert_eq!(reader.feed(&chunks[0], &store[&chunks[0].id]), Ok(Some(input(16))));
    let early = ObjectReader::new(finished.capability.clone());
    assert!(matches!(early.finish(), Err(ReadError::Incomplete { .. })));
    assert_eq!(reader.feed(&chunks[1], &store[&chunks[1].id]).unwrap().map(|d| d.len()), Some(16));
    assert_eq!(reader.feed(&chunks[2], &store[&chunks[2].id]).unwrap().map(|d| d.len()), Some(8));
    assert!(reader.is_done());
    assert_eq!(reader.feed(&chunks[2], &store[&chunks[2].id]), Err(ReadError::NothingNeeded));
    assert_eq!(reader.finish(), Ok(40));
}

#[test]
fn upcoming_stops_at_unopened_manifests() {
    let (finished, store, _) = write(&input(40 * 16), tiny(), 1000);
    let mut reader = ObjectReader::new(finished.capability);
    let root = reader.next_needed().unwrap();
    reader.feed(&root, &store[&root.id]).unwrap();
    let next = reader.upcoming(100);
    assert_eq!(next.len(), 1);
    assert!(next[0].is_manifest());
    reader.feed(&next[0], &store[&next[0].id]).unwrap();
    let next = reader.upcoming(100);
    assert_eq!(next.len(), 17); // 16 chunks, then the next manifest
    assert!(next[..16].iter().all(|n| !n.is_manifest()) && next[16].is_manifest());
    assert_eq!(reader.upcoming(5).len(), 5);
}

#[test]
fn skipping_lists_every_id_without_fetching_chunks() {
    let (finished, store, _) = write(&input(40 * 16), tiny(), 1000);
    let mut reader = ObjectReader::new(finished.capability);
    let mut ids = Vec::new();
    while let Some(next) = reader.next_needed() {
        ids.push(next.id);
        if next.is_manifest() {
            reader.feed(&next, &store[&next.id]).unwrap();
        } else {
            reader.skip(&next).unwrap();
        }
    }
    ids.sort();
    let mut all: Vec<ObjectId> = store.keys().copied().collect();
    all.sort();
    assert_eq!(ids, all);
    assert_eq!(reader.finish(), Ok(0));
}

#[test]
fn dedups_and_depends_on_the_secret() {
    let data = input(100);
    let (a, _, _) = write(&data, tiny(), 3);
    let (b, _, _) = write(&data, tiny(), 100);
    assert_eq!(a.capability, b.capability);
    let mut other = ObjectWriter::with_layout(ConvergenceSecret::global(), tiny());
    other.push(&data);
    assert_ne!(other.finish().capability.id, a.capability.id);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn any_input_round_trips_whatever_the_push_sizes(
        len in 0usize..1200,
        piece in 1usize..100,
    ) {
        let data = input(len);
        let (finished, store, _) = write(&data, tiny(), piece);
        let (again, _, _) = write(&data, tiny(), len.max(1));
        prop_assert_eq!(&finished.capability, &again.capability);
        prop_assert_eq!(read(&finished.capability, &store).unwrap(), data);
    }

    /// Corrupting any stored object of a tree makes the read fail.
    #[test]
    fn a_flipped_bit_in_any_object_fails_the_read(
        len in 17usize..700,
        which in any::<prop::sample::Index>(),
        bit in any::<prop::sample::Index>(),
    ) {
        let (finished, mut store, _) = write(&input(len), tiny(), 64);
        let mut ids: Vec<ObjectId> = store.keys().copied().collect();
        ids.sort();
        let id = ids[which.index(ids.len())];
        let object = store.get_mut(&id).unwrap();
        let at = bit.index(object.len() * 8);
        object[at / 8] ^= 1 << (at % 8);
        prop_assert!(read(&finished.capability, &store).is_err());
    }
}
