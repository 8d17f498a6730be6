use std::collections::HashMap;

use super::*;
use crate::capability::ObjectKey;
use crate::convergent::{self, Kind};
use crate::limits::MAX_LOG_ENTRY;
use proptest::prelude::*;

fn owner() -> SigningKey {
    SigningKey::from_seed([0x21; 32])
}

fn inbox() -> LogId {
    LogId::derive(&owner().verifying_key(), "INBOX")
}

fn log_key() -> LogKey {
    LogKey::derive(&owner(), &inbox())
}

fn first_entry() -> LogEntry {
    LogEntry::new(inbox(), 1, None, Timestamp(100), EntryBody::Data(b"hello".to_vec()))
}

fn head_for(entry: &LogEntry) -> LogHead {
    let sealed = seal_entry(&log_key(), entry).unwrap();
    LogHead::new(
        &owner().verifying_key(),
        "INBOX",
        entry.seq,
        &sealed.capability(),
        &log_key(),
        Timestamp(200),
    )
}

#[test]
fn log_key_is_per_owner_and_log() {
    let key = log_key();
    assert_eq!(key.as_bytes(), LogKey::derive(&owner(), &inbox()).as_bytes());
    let sent = LogId::derive(&owner().verifying_key(), "Sent");
    assert_ne!(key.as_bytes(), LogKey::derive(&owner(), &sent).as_bytes());
    let other = SigningKey::from_seed([0x22; 32]);
    assert_ne!(key.as_bytes(), LogKey::derive(&other, &inbox()).as_bytes());
    let expected = crate::symmetric::hkdf_sha256(
        b"epost/v1/log-key",
        owner().seed_bytes().as_ref(),
        inbox().as_bytes(),
    );
    assert_eq!(key.as_bytes(), &*expected);
    assert_eq!(format!("{key:?}"), "LogKey(redacted)");
}

#[test]
fn entry_keys_wrap_and_unwrap() {
    let sealed = seal_entry(&log_key(), &first_entry()).unwrap();
    let wrapped = wrap_entry_key(&log_key(), &sealed.capability());
    assert_eq!(unwrap_entry_key(&log_key(), &sealed.id, &wrapped), Ok(sealed.key.clone()));
    let other = LogKey::from_bytes([9; 32]);
    assert_eq!(unwrap_entry_key(&other, &sealed.id, &wrapped), Err(UnwrapError::Decrypt));
    let other_id = ObjectId::of(b"another entry");
    assert_eq!(unwrap_entry_key(&log_key(), &other_id, &wrapped), Err(UnwrapError::Decrypt));
}

#[test]
fn entries_are_storage_objects() {
    let entry = first_entry();
    let sealed = seal_entry(&log_key(), &entry).unwrap();
    // The standard opener reads it: a data object whose body is the entry.
    let opened = convergent::open(&sealed.capability(), &sealed.ciphertext).unwrap();
    assert_eq!(opened.kind, Kind::Data);
    assert_eq!(opened.body, cbor::encode(&entry));
    assert_eq!(open_entry(&sealed.capability(), &sealed.ciphertext, &inbox(), 1), Ok(entry));
    // Asking for another position or log is refused.
    assert!(matches!(
        open_entry(&sealed.capability(), &sealed.ciphertext, &inbox(), 2),
        Err(LogEntryError::Unexpected { found_seq: 1, .. })
    ));
    let sent = LogId::derive(&owner().verifying_key(), "Sent");
    assert!(matches!(
        open_entry(&sealed.capability(), &sealed.ciphertext, &sent, 1),
        Err(LogEntryError::Unexpected { .. })
    ));
    // A manifest object is not an entry even if its body were one.
    let manifest = convergent::seal(
        &ConvergenceSecret::new(log_key().as_bytes().to_vec()),
        Kind::Manifest,
        &cbor::encode(&first_entry()),
    );
    assert_eq!(
        open_entry(&manifest.capability(), &manifest.ciphertext, &inbox(), 1),
        Err(LogEntryError::NotAnEntry)
    );
}

#[test]
fn entry_rules() {
    let prev = seal_entry(&log_key(), &first_entry()).unwrap().capability();
    let data = |seq, prev: Option<EntryRef>, body: Vec<u8>| {
        LogEntry::new(inbox(), seq, prev, Timestamp(1), EntryBody::Data(body)).validate()
    };
    assert_eq!(data(0, None, vec![]), Err(LogEntryError::ZeroSeq));
    assert_eq!(data(1, Some(prev.clone()), vec![]), Err(LogEntryError::BadPrev { seq: 1 }));
    assert_eq!(data(2, None, vec![]), Err(LogEntryError::BadPrev { seq: 2 }));
    assert_eq!(data(2, Some(prev.clone()), vec![0; MAX_LOG_ENTRY]), Ok(()));
    assert_eq!(
        data(2, Some(prev.clone()), vec![0; MAX_LOG_ENTRY + 1]),
        Err(LogEntryError::DataTooLarge { len: MAX_LOG_ENTRY + 1 })
    );
    assert_eq!(
        data(500, Some(prev.clone()), vec![]),
        Err(LogEntryError::BadBodyKind { seq: 500, snapshot: true })
    );
    let snapshot = |seq, index: Vec<EntryRef>, prev_snapshot: Option<EntryRef>| {
        let prev = index.last().cloned();
        let body = EntryBody::Snapshot { index, state: None, prev_snapshot };
        LogEntry::new(inbox(), seq, prev, Timestamp(1), body).validate()
    };
    let full = vec![prev.clone(); 499];
    assert_eq!(snapshot(500, full.clone(), None), Ok(()));
    assert_eq!(snapshot(1000, full.clone(), Some(prev.clone())), Ok(()));
    assert_eq!(
        snapshot(499, full.clone(), None),
        Err(LogEntryError::BadBodyKind { seq: 499, snapshot: false })
    );
    assert_eq!(
        snapshot(500, vec![prev.clone(); 498], None),
        Err(LogEntryError::BadIndex { seq: 500, len: 498 })
    );
    assert_eq!(
        snapshot(500, full.clone(), Some(prev.clone())),
        Err(LogEntryError::BadPrevSnapshot { seq: 500 })
    );
    assert_eq!(snapshot(1000, full, None), Err(LogEntryError::BadPrevSnapshot { seq: 1000 }));
}

#[test]
fn head_sign_and_verify() {
    let head = head_for(&first_entry());
    let envelope = LogHead::sign(&owner(), &head).unwrap();
    let decoded = SignedEnvelope::decode(&envelope.encode()).unwrap();
    let verified = LogHead::verify(&decoded).unwrap();
    assert_eq!(verified, head);
    let newest = verified.newest_entry(&log_key()).unwrap();
    let sealed = seal_entry(&log_key(), &first_entry()).unwrap();
    assert_eq!(newest, sealed.capability());
}

#[test]
fn only_the_owner_signs_a_head() {
    let head = head_for(&first_entry());
    let mallory = SigningKey::from_seed([0x66; 32]);
    assert!(matches!(LogHead::sign(&mallory, &head), Err(LogHeadError::NotOwner { .. })));
    // Even if mallory signs it anyway, verification refuses it.
    let forged =
        SignedEnvelope::sign(&mallory, EnvelopeKind::LogHead, cbor::encode(&head)).unwrap();
    assert!(matches!(LogHead::verify(&forged), Err(LogHeadError::NotOwner { .. })));
    let zero = LogHead { seq: 0, ..head.clone() };
    assert_eq!(LogHead::sign(&owner(), &zero), Err(LogHeadError::ZeroSeq));
    let long = "x".repeat(MAX_LOG_NAME + 1);
    let named = LogHead { log: LogId::derive(&owner().verifying_key(), &long), name: long, ..head };
    assert!(matches!(LogHead::sign(&owner(), &named), Err(LogHeadError::NameTooLong { .. })));
}

#[test]
fn the_largest_head_fits_a_record() {
    let name = "x".repeat(MAX_LOG_NAME);
    let sealed = seal_entry(&log_key(), &first_entry()).unwrap();
    let head = LogHead::new(
        &owner().verifying_key(),
        &name,
        u64::MAX,
        &sealed.capability(),
        &log_key(),
        Timestamp(u64::MAX),
    );
    let bytes = LogHead::sign(&owner(), &head).unwrap().encode();
    assert!(bytes.len() <= crate::limits::MAX_RECORD, "{}", bytes.len());
}

/// What a writer keeps between appends.
struct Writer {
    seq: u64,
    newest: Option<EntryRef>,
    since_snapshot: Vec<EntryRef>,
    last_snapshot: Option<EntryRef>,
}

impl Writer {
    fn append(&mut self, store: &mut HashMap<ObjectId, Vec<u8>>, data: Vec<u8>) {
        let seq = self.seq + 1;
        let body = if LogEntry::is_snapshot_seq(seq) {
            EntryBody::Snapshot {
                index: std::mem::take(&mut self.since_snapshot),
                state: Some(format!("state at {seq}").into_bytes()),
                prev_snapshot: self.last_snapshot.clone(),
            }
        } else {
            EntryBody::Data(data)
        };
        let entry = LogEntry::new(inbox(), seq, self.newest.clone(), Timestamp(seq), body);
        let sealed = seal_entry(&log_key(), &entry).unwrap();
        store.insert(sealed.id, sealed.ciphertext.clone());
        let reference = sealed.capability();
        if LogEntry::is_snapshot_seq(seq) {
            self.last_snapshot = Some(reference.clone());
        } else {
            self.since_snapshot.push(reference.clone());
        }
        self.seq = seq;
        self.newest = Some(reference);
    }
}

/// A log of 1,200 entries, read back from its head: sequentially via
/// `prev` down to the newest snapshot, then through the snapshots, with
/// every other entry known up front (a reader fetches them in parallel).
#[test]
fn a_long_log_walks_back_through_snapshots() {
    let mut store = HashMap::new();
    let mut writer = Writer { seq: 0, newest: None, since_snapshot: vec![], last_snapshot: None };
    for _ in 0..1_200 {
        let n = writer.seq + 1;
        writer.append(&mut store, format!("entry {n}").into_bytes());
    }
    assert_eq!(store.len(), 1_200);
    let newest = writer.newest.clone().unwrap();
    let head =
        LogHead::new(&owner().verifying_key(), "INBOX", 1_200, &newest, &log_key(), Timestamp(0));
    let envelope = LogHead::sign(&owner(), &head).unwrap();

    // The reader: only the envelope, the log key and the store.
    let head = LogHead::verify(&envelope).unwrap();
    let mut found: HashMap<u64, LogEntry> = HashMap::new();
    let mut sequential_fetches = 0;
    let open = |reference: &EntryRef, seq: u64| {
        open_entry(reference, &store[&reference.id], &head.log, seq).unwrap()
    };
    // 1. Back along `prev` to the newest snapshot.
    let mut at = (head.seq, head.newest_entry(&log_key()).unwrap());
    let mut pending: Vec<(u64, EntryRef)> = Vec::new();
    loop {
        let entry = open(&at.1, at.0);
        sequential_fetches += 1;
        let links: Vec<(u64, EntryRef)> =
            entry.links().into_iter().map(|(s, r)| (s, r.clone())).collect();
        let is_snapshot = matches!(entry.body, EntryBody::Snapshot { .. });
        found.insert(entry.seq, entry);
        if is_snapshot {
            // 2. Snapshots chain to each other; everything else they list
            //    can be fetched at once.
            let mut snapshot_link = None;
            for (seq, reference) in links {
                if LogEntry::is_snapshot_seq(seq) {
                    snapshot_link = Some((seq, reference));
                } else {
                    pending.push((seq, reference));
                }
            }
            match snapshot_link {
                Some(next) => at = next,
                None => break,
            }
        } else {
            match links.into_iter().next() {
                Some(next) => at = next,
                None => break,
            }
        }
    }
    assert_eq!(sequential_fetches, 200 + 2, "1200 down to 1000, then 1000 and 500");
    assert_eq!(pending.len(), 998);
    // 3. The parallel part.
    for (seq, reference) in &pending {
        let entry = open(reference, *seq);
        assert!(found.insert(*seq, entry).is_none(), "entry {seq} reached twice");
    }
    assert_eq!(found.len(), 1_200);
    for seq in 1..=1_200u64 {
        let entry = &found[&seq];
        match &entry.body {
            EntryBody::Data(data) => assert_eq!(data, format!("entry {seq}").as_bytes()),
            EntryBody::Snapshot { state, .. } => {
                assert_eq!(seq % 500, 0);
                assert_eq!(state.as_deref(), Some(format!("state at {seq}").as_bytes()));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A flipped bit in a signed head is refused, never read as another head.
    #[test]
    fn any_flipped_bit_in_a_head_is_refused(bit in any::<prop::sample::Index>()) {
        let head = head_for(&first_entry());
        let mut bytes = LogHead::sign(&owner(), &head).unwrap().encode();
        let at = bit.index(bytes.len() * 8);
        bytes[at / 8] ^= 1 << (at % 8);
        let accepted = SignedEnvelope::decode(&bytes).ok().and_then(|e| LogHead::verify(&e).ok());
        prop_assert!(accepted.is_none(), "accepted {:?}", accepted);
    }

    /// A flipped bit in a wrapped key never unwraps to a key.
    #[test]
    fn any_flipped_bit_in_a_wrapped_key_is_refused(bit in 0usize..WRAPPED_KEY_LEN * 8) {
        let sealed = seal_entry(&log_key(), &first_entry()).unwrap();
        let mut wrapped = wrap_entry_key(&log_key(), &sealed.capability());
        wrapped[bit / 8] ^= 1 << (bit % 8);
        prop_assert_eq!(unwrap_entry_key(&log_key(), &sealed.id, &wrapped), Err(UnwrapError::Decrypt));
    }

    /// A flipped bit in an entry object, its id or its key is refused.
    #[test]
    fn any_flipped_bit_in_an_entry_is_refused(
        body in prop::collection::vec(any::<u8>(), 0..200),
        target in 0u8..3,
        bit in any::<prop::sample::Index>(),
    ) {
        let entry = LogEntry::new(inbox(), 1, None, Timestamp(7), EntryBody::Data(body));
        let sealed = seal_entry(&log_key(), &entry).unwrap();
        let mut reference = sealed.capability();
        let mut ciphertext = sealed.ciphertext.clone();
        match target {
            0 => {
                let at = bit.index(ciphertext.len() * 8);
                ciphertext[at / 8] ^= 1 << (at % 8);
            }
            1 => {
                let mut id = *reference.id.as_bytes();
                let at = bit.index(256);
                id[at / 8] ^= 1 << (at % 8);
                reference.id = ObjectId::from_bytes(id);
            }
            _ => {
                let mut key = *reference.key.as_bytes();
                let at = bit.index(256);
                key[at / 8] ^= 1 << (at % 8);
                reference.key = ObjectKey::from_bytes(key);
            }
        }
        prop_assert!(open_entry(&reference, &ciphertext, &inbox(), 1).is_err());
    }

    #[test]
    fn entries_round_trip(body in prop::collection::vec(any::<u8>(), 0..2000), seq in 2u64..10_000) {
        prop_assume!(seq % SNAPSHOT_EVERY != 0);
        let prev = seal_entry(&log_key(), &first_entry()).unwrap().capability();
        let entry = LogEntry::new(inbox(), seq, Some(prev), Timestamp(seq), EntryBody::Data(body));
        let sealed = seal_entry(&log_key(), &entry).unwrap();
        prop_assert_eq!(open_entry(&sealed.capability(), &sealed.ciphertext, &inbox(), seq), Ok(entry));
    }
}

#[test]
fn entry_bodies_refuse_unknown_fields_and_variants() {
    use ciborium::Value;
    let text = |s: &str| Value::Text(s.to_owned());
    let snapshot = |extra: bool| {
        let mut fields = vec![
            (text("index"), Value::Array(vec![])),
            (text("state"), Value::Null),
            (text("prev_snapshot"), Value::Null),
        ];
        if extra {
            fields.push((text("zzz"), Value::Null));
        }
        cbor::encode(&Value::Map(vec![(text("snapshot"), Value::Map(fields))]))
    };
    assert!(cbor::decode_any::<EntryBody>(&snapshot(false), 1024).is_ok());
    assert!(matches!(
        cbor::decode_any::<EntryBody>(&snapshot(true), 1024),
        Err(DecodeError::Invalid { .. })
    ));
    let other = cbor::encode(&Value::Map(vec![(text("manifest"), Value::Bytes(vec![]))]));
    assert!(matches!(
        cbor::decode_any::<EntryBody>(&other, 1024),
        Err(DecodeError::Invalid { .. })
    ));
    // Data is a byte string, never an array of integers.
    let data = cbor::encode(&EntryBody::Data(vec![1, 2]));
    assert_eq!(data, [0xa1, 0x64, b'd', b'a', b't', b'a', 0x42, 1, 2]);
}
