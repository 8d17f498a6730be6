//! Arbitrary valid values survive encode then decode (and sign then
//! verify, seal then open) unchanged.

use proptest::prelude::*;

use super::{CASES, CRYPTO_CASES, alice, bob, capability, realm};
use crate::chunk::{ChildRef, MANIFEST_VERSION, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, Manifest};
use crate::envelope::{EnvelopeKind, SignedEnvelope};
use crate::fragment::{FRAGMENT_VERSION, Fragment};
use crate::id::{LogId, ObjectId};
use crate::identity::{Certificate, Presence};
use crate::keyfile::NodeKeyFile;
use crate::log::{EntryBody, LogEntry, LogHead, LogKey, open_entry, seal_entry};
use crate::mail::{FlagChange, MailEntry, MailOp, MessageManifest, MessageRef, Piece};
use crate::notify::{Notification, Receipt, SealedNotification};
use crate::record::{RecordKey, inbox_key};
use crate::sign::SigningKey;
use crate::time::Timestamp;

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn folder() -> impl Strategy<Value = String> {
    "\\PC{1,20}"
}

fn flags() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("\\\\?[A-Za-z$]{1,10}", 0..4)
}

fn uids() -> impl Strategy<Value = Vec<u32>> {
    prop::collection::vec(any::<u32>(), 0..10)
}

fn mail_op() -> impl Strategy<Value = MailOp> {
    let change =
        prop_oneof![Just(FlagChange::Add), Just(FlagChange::Remove), Just(FlagChange::Replace)];
    let message = (any::<u8>(), any::<u64>(), any::<u64>(), prop::option::of("\\PC{0,30}"))
        .prop_map(|(seed, size, internal_date, envelope_from)| MessageRef {
            manifest: super::capability(seed),
            size,
            internal_date,
            envelope_from,
        });
    prop_oneof![
        (folder(), any::<u32>())
            .prop_map(|(folder, uid_validity)| MailOp::Create { folder, uid_validity }),
        folder().prop_map(|folder| MailOp::Delete { folder }),
        (folder(), folder(), any::<u32>()).prop_map(|(from, to, uid_validity)| MailOp::Rename {
            from,
            to,
            uid_validity
        }),
        (folder(), any::<bool>())
            .prop_map(|(folder, subscribed)| MailOp::Subscribe { folder, subscribed }),
        (folder(), any::<bool>())
            .prop_map(|(name, subscribed)| MailOp::Subscription { name, subscribed }),
        (folder(), message, flags(), prop::option::of(bytes(40))).prop_map(
            |(folder, message, flags, notification)| MailOp::Insert {
                folder,
                message,
                flags,
                notification
            }
        ),
        (folder(), uids(), change, flags()).prop_map(|(folder, uids, change, flags)| {
            MailOp::Flags { folder, uids, change, flags }
        }),
        (folder(), uids(), folder()).prop_map(|(from, uids, to)| MailOp::Copy { from, uids, to }),
        (folder(), uids(), folder()).prop_map(|(from, uids, to)| MailOp::Move { from, uids, to }),
        (folder(), uids()).prop_map(|(folder, uids)| MailOp::Expunge { folder, uids }),
    ]
}

fn piece() -> impl Strategy<Value = Piece> {
    prop_oneof![
        bytes(200).prop_map(Piece::Inline),
        (any::<u8>(), 0u64..1 << 40)
            .prop_map(|(seed, len)| Piece::Part { capability: super::capability(seed), len }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn fragments(
        k in any::<u8>(),
        m in any::<u8>(),
        index in any::<u8>(),
        data in bytes(300),
        hashes in prop::collection::vec(any::<[u8; 32]>(), 0..10),
        id in any::<[u8; 32]>(),
        object_len in any::<u64>(),
    ) {
        let fragment = Fragment {
            k, m, v: FRAGMENT_VERSION, data, index, hashes,
            object_id: ObjectId::from_bytes(id), object_len,
        };
        prop_assert_eq!(Fragment::decode(&fragment.encode()), Ok(fragment));
    }

    #[test]
    fn chunk_manifests(
        depth in 1u8..=16,
        chunk_size in MIN_CHUNK_SIZE as u32..=MAX_CHUNK_SIZE as u32,
        children in prop::collection::vec((any::<u8>(), any::<prop::sample::Index>()), 1..20),
    ) {
        let children: Vec<ChildRef> = children
            .into_iter()
            .map(|(seed, len)| ChildRef {
                capability: capability(seed),
                len: 1 + len.index(chunk_size as usize) as u64,
            })
            .collect();
        let total_len = children.iter().map(|c| c.len).sum();
        let manifest = Manifest { v: MANIFEST_VERSION, depth, children, total_len, chunk_size };
        prop_assert_eq!(Manifest::decode(&manifest.encode()), Ok(manifest));
    }

    #[test]
    fn message_manifests(pieces in prop::collection::vec(piece(), 0..12)) {
        let manifest = MessageManifest::new(pieces);
        prop_assert_eq!(MessageManifest::decode(&manifest.encode()).unwrap(), manifest);
    }

    #[test]
    fn mail_entries(ops in prop::collection::vec(mail_op(), 0..8)) {
        let entry = MailEntry::new(ops);
        prop_assert_eq!(MailEntry::decode(&entry.encode()), Ok(entry));
    }

    #[test]
    fn record_keys(tag in 1u8..=3, hash in any::<[u8; 32]>()) {
        let key = match tag {
            1 => RecordKey::LogHead(LogId::from_bytes(hash)),
            2 => RecordKey::Certificate(hash),
            _ => RecordKey::Presence(hash),
        };
        prop_assert_eq!(RecordKey::decode(&key.encode()), Ok(key));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CRYPTO_CASES))]

    #[test]
    fn envelopes(seed in any::<[u8; 32]>(), code in any::<u16>(), payload in bytes(600)) {
        let key = SigningKey::from_seed(seed);
        let envelope = SignedEnvelope::sign(&key, EnvelopeKind::from_code(code), payload.clone()).unwrap();
        let decoded = SignedEnvelope::decode(&envelope.encode()).unwrap();
        prop_assert_eq!(decoded.verify(), Ok(payload.as_slice()));
        prop_assert_eq!(decoded, envelope);
    }

    #[test]
    fn log_heads(name in "\\PC{0,60}", seq in 1u64.., time in any::<u64>(), seed in any::<u8>()) {
        let owner = alice().signing;
        let log = LogId::derive(&owner.verifying_key(), &name);
        let key = LogKey::derive(&owner, &log);
        let head = LogHead::new(&owner.verifying_key(), &name, seq, &capability(seed), &key, Timestamp(time));
        let envelope = SignedEnvelope::decode(&LogHead::sign(&owner, &head).unwrap().encode()).unwrap();
        let verified = LogHead::verify(&envelope).unwrap();
        prop_assert_eq!(verified.newest_entry(&key).unwrap(), capability(seed));
        prop_assert_eq!(verified, head);
    }

    #[test]
    fn certificates(serial in any::<u64>(), issued in 0u64..u64::MAX - 1, life in 1u64..1 << 50) {
        let expires = Timestamp(issued.saturating_add(life));
        let cert = alice().certificate(serial, Timestamp(issued), expires);
        let envelope = SignedEnvelope::decode(&Certificate::issue(&realm(), &cert).unwrap().encode()).unwrap();
        prop_assert_eq!(Certificate::verify_signature(&envelope), Ok(cert));
    }

    #[test]
    fn presences(
        peers in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..=64), 1..=8),
        addrs in prop::collection::vec("[ -~]{1,80}", 0..=16),
        time in any::<u64>(),
    ) {
        let presence = Presence::new(alice().address, peers, addrs, Timestamp(time));
        let envelope = SignedEnvelope::decode(&Presence::sign(&alice().signing, &presence).unwrap().encode()).unwrap();
        prop_assert_eq!(Presence::verify(&envelope, &alice().verifying_key()), Ok(presence));
    }

    #[test]
    fn receipts(ids in prop::collection::vec(any::<[u8; 32]>(), 1..=256), time in any::<u64>()) {
        let receipt = Receipt::new(inbox_key(&bob().address), ids, Timestamp(time));
        let envelope = SignedEnvelope::decode(&Receipt::sign(&bob().signing, &receipt).unwrap().encode()).unwrap();
        prop_assert_eq!(Receipt::verify(&envelope, &bob().verifying_key()), Ok(receipt));
    }

    #[test]
    fn notifications(
        summary in "\\PC{0,60}",
        with_capability in any::<bool>(),
        time in any::<u64>(),
        nonce in any::<[u8; 16]>(),
    ) {
        let notice = Notification {
            v: crate::notify::NOTIFICATION_VERSION,
            to: bob().address,
            from: alice().address,
            time: Timestamp(time),
            nonce,
            summary,
            capability: with_capability.then(|| capability(9)),
        };
        let cert = bob().certificate(1, Timestamp(0), Timestamp(u64::MAX));
        let sealed = Notification::seal(&alice(), &cert, &notice, Timestamp(time)).unwrap();
        let decoded = SealedNotification::decode(&sealed.encode()).unwrap();
        prop_assert_eq!(&decoded, &sealed);
        let (opened, signer) = decoded.open(&bob()).unwrap();
        prop_assert_eq!(opened, notice);
        prop_assert_eq!(signer, alice().verifying_key());
    }

    #[test]
    fn log_entries(seq in 1u64..100_000, data in bytes(500), time in any::<u64>()) {
        prop_assume!(!LogEntry::is_snapshot_seq(seq));
        let owner = alice().signing;
        let log = LogId::derive(&owner.verifying_key(), "INBOX");
        let prev = (seq > 1).then(|| capability(1));
        let entry = LogEntry::new(log, seq, prev, Timestamp(time), EntryBody::Data(data));
        let key = LogKey::derive(&owner, &log);
        let sealed = seal_entry(&key, &entry).unwrap();
        prop_assert_eq!(open_entry(&sealed.capability(), &sealed.ciphertext, &log, seq), Ok(entry));
    }

    #[test]
    fn key_files(seed in any::<[u8; 32]>()) {
        let key = SigningKey::from_seed(seed);
        let file = NodeKeyFile::decode(&NodeKeyFile::new(&key).encode()).unwrap();
        prop_assert_eq!(file.verifying_key(), key.verifying_key());
        prop_assert_eq!(*file.seed(), seed);
    }
}
