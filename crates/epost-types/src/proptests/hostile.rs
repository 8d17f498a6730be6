//! Every decoder fed arbitrary and damaged bytes: no panic, a typed error,
//! and nothing accepted that would encode differently.

use proptest::prelude::*;

use super::{CASES, CRYPTO_CASES, alice, bob, damaged, realm, samples};
use crate::address::Address;
use crate::capability::Capability;
use crate::cbor::{self, DecodeError};
use crate::chunk::{ChildRef, Manifest, ObjectReader};
use crate::convergent::{self, ConvergenceSecret, Kind};
use crate::envelope::{EnvelopeKind, SignedEnvelope};
use crate::fragment::Fragment;
use crate::id::{LogId, ObjectId};
use crate::identity::bundle::UserBundle;
use crate::identity::{Certificate, Presence, TrustedRealms};
use crate::keyfile::NodeKeyFile;
use crate::log::{EntryBody, LogEntry, LogHead, LogKey, open_entry};
use crate::mail::{MailEntry, MessageManifest};
use crate::mime::{self, MessageStructure, StructureError};
use crate::notify::{Receipt, SealedNotification};
use crate::record::{RecordKey, inbox_key, newest_record, validate_record};
use crate::seal::{self, HpkePublicKey, SealedMessage, info};
use crate::sign::{Signature, VerifyingKey};
use crate::time::Timestamp;
use crate::{maildate, text};

/// The payload of an envelope signed with `key` as `kind`: how hostile
/// payloads reach the decoders behind the signature check.
fn signed(key: &crate::sign::SigningKey, kind: EnvelopeKind, payload: &[u8]) -> SignedEnvelope {
    SignedEnvelope::sign(key, kind, payload.to_vec()).unwrap()
}

/// Bytes that decode as `T` (any `decode_any` component) re-encode the same.
fn canonical_component<T>(bytes: &[u8]) -> Result<(), TestCaseError>
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    if let Ok(value) = cbor::decode_any::<T>(bytes, 4096) {
        prop_assert_eq!(cbor::encode(&value), bytes);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn fragments(bytes in damaged(samples::fragment().encode())) {
        if let Ok(fragment) = Fragment::decode(&bytes) {
            prop_assert_eq!(fragment.encode(), bytes);
            let _ = fragment.verify();
        }
    }

    #[test]
    fn chunk_manifests(bytes in damaged(samples::manifest().encode())) {
        if let Ok(manifest) = Manifest::decode(&bytes) {
            prop_assert_eq!(manifest.encode(), bytes);
            prop_assert_eq!(manifest.validate(), Ok(()));
        }
    }

    #[test]
    fn message_manifests(bytes in prop_oneof![
        damaged(samples::message().encode()),
        damaged(samples::huge_message().encode()),
    ]) {
        if let Ok(manifest) = MessageManifest::decode(&bytes) {
            prop_assert_eq!(manifest.encode(), bytes);
            let sum = manifest.pieces.iter().try_fold(0u64, |s, p| s.checked_add(p.len()));
            prop_assert_eq!(sum, Some(manifest.size));
        }
    }

    #[test]
    fn message_structures(bytes in prop_oneof![
        damaged(samples::structure().encode()),
        damaged(samples::structured_message().encode()),
    ]) {
        let size = samples::STRUCTURED.len() as u64;
        if let Ok(structure) = MessageStructure::decode(&bytes, size) {
            prop_assert_eq!(structure.encode(), bytes.clone());
            prop_assert_eq!(structure.check(size), Ok(()));
        }
        if let Ok(manifest) = MessageManifest::decode(&bytes) {
            prop_assert_eq!(manifest.encode(), bytes);
            if let Some(Ok(structure)) = manifest.structure() {
                prop_assert_eq!(structure.check(manifest.size), Ok(()));
            }
        }
    }

    /// Whatever the bytes, one parse finds a structure whose ranges lie
    /// inside them and whose entities form a tree: only a stored limit
    /// can refuse it.
    #[test]
    fn any_message_has_a_structure(raw in prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        damaged(samples::STRUCTURED.to_vec()),
    ]) {
        let parsed = mime::parse(&raw);
        match parsed.structure.check(raw.len() as u64) {
            Ok(()) | Err(StructureError::TextTooLong { .. } | StructureError::ListTooLong { .. }) => {}
            Err(other) => prop_assert!(false, "{other}"),
        }
        for body in &parsed.leaf_bodies {
            prop_assert!(body.start <= body.end && body.end <= raw.len());
        }
    }

    #[test]
    fn mail_entries(bytes in damaged(samples::mail_entry().encode())) {
        if let Ok(entry) = MailEntry::decode(&bytes) {
            prop_assert_eq!(entry.encode(), bytes);
        }
    }

    #[test]
    fn envelopes(bytes in damaged(signed(&alice().signing, EnvelopeKind::Presence, b"x").encode())) {
        if let Ok(envelope) = SignedEnvelope::decode(&bytes) {
            prop_assert_eq!(envelope.encode(), bytes);
            let _ = envelope.verify();
        }
    }

    #[test]
    fn sealed_notifications(bytes in damaged(samples::sealed_notification().encode())) {
        if let Ok(sealed) = SealedNotification::decode(&bytes) {
            prop_assert_eq!(sealed.encode(), bytes);
            let _ = sealed.open(&bob());
        }
    }

    #[test]
    fn key_files(bytes in damaged(NodeKeyFile::new(&alice().signing).encode().to_vec())) {
        if let Ok(file) = NodeKeyFile::decode(&bytes) {
            prop_assert_eq!(file.encode().to_vec(), bytes);
        }
    }

    #[test]
    fn user_bundles(bytes in damaged(bundle_bytes())) {
        let _ = UserBundle::is_passphrase_protected(&bytes);
        // No passphrase: a wrapped bundle stops before the (costly) KDF.
        if let Ok(bundle) = UserBundle::decode(&bytes, None) {
            prop_assert_eq!(bundle.encode_plain().to_vec(), bytes);
        }
    }

    #[test]
    fn record_keys(bytes in prop::collection::vec(any::<u8>(), 0..40)) {
        if let Ok(key) = RecordKey::decode(&bytes) {
            prop_assert_eq!(key.encode().to_vec(), bytes);
        }
    }

    #[test]
    fn component_values(bytes in prop_oneof![
        damaged(cbor::encode(&samples::sealed_notification().sealed)),
        damaged(cbor::encode(&super::capability(1))),
        damaged(cbor::encode(&samples::address())),
        damaged(cbor::encode(&samples::log_entry().body)),
        damaged(cbor::encode(&samples::manifest().children[0])),
        damaged(cbor::encode(&alice().signing.sign(b"x"))),
    ]) {
        canonical_component::<SealedMessage>(&bytes)?;
        canonical_component::<Capability>(&bytes)?;
        canonical_component::<Address>(&bytes)?;
        canonical_component::<EntryBody>(&bytes)?;
        canonical_component::<ChildRef>(&bytes)?;
        canonical_component::<Signature>(&bytes)?;
        canonical_component::<VerifyingKey>(&bytes)?;
        canonical_component::<HpkePublicKey>(&bytes)?;
        canonical_component::<ObjectId>(&bytes)?;
        canonical_component::<LogId>(&bytes)?;
        canonical_component::<Timestamp>(&bytes)?;
    }

    /// Any text: parsers refuse or give a value that prints and parses back.
    #[test]
    fn text_forms(text in prop_oneof![
        any::<String>(),
        damaged(super::capability(1).to_string().into_bytes())
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        damaged(b"alice.smith+tag@Example.ORG".to_vec())
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        damaged(maildate::asctime(1_700_000_000).into_bytes())
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]) {
        fn back<T>(text: &str) -> Result<(), TestCaseError>
        where
            T: std::str::FromStr + std::fmt::Display + PartialEq + std::fmt::Debug,
        {
            if let Ok(value) = text.parse::<T>() {
                prop_assert_eq!(value.to_string().parse::<T>().ok(), Some(value));
            }
            Ok(())
        }
        back::<Capability>(&text)?;
        back::<Address>(&text)?;
        back::<VerifyingKey>(&text)?;
        back::<Signature>(&text)?;
        back::<HpkePublicKey>(&text)?;
        back::<ObjectId>(&text)?;
        back::<LogId>(&text)?;
        if let Ok(bytes) = text::decode_fixed::<32>(&text) {
            prop_assert_eq!(text::decode_fixed::<32>(&text::encode(&bytes)), Ok(bytes));
        }
        if let Some(secs) = maildate::parse_asctime(&text) {
            prop_assert_eq!(maildate::parse_asctime(&maildate::asctime(secs)), Some(secs));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CRYPTO_CASES))]

    /// Hostile payloads behind a good signature reach each payload decoder.
    #[test]
    fn signed_payloads(
        which in 0u8..4,
        payload in prop_oneof![
            damaged(cbor::encode(&samples::certificate())),
            damaged(cbor::encode(&samples::presence())),
            damaged(cbor::encode(&samples::receipt())),
            damaged(cbor::encode(&samples::head())),
        ],
    ) {
        let alice = alice();
        match which {
            0 => {
                let envelope = signed(&realm(), EnvelopeKind::Certificate, &payload);
                if let Ok(cert) = Certificate::verify_signature(&envelope) {
                    prop_assert_eq!(cbor::encode(&cert), payload);
                }
            }
            1 => {
                let envelope = signed(&alice.signing, EnvelopeKind::Presence, &payload);
                if let Ok(presence) = Presence::verify(&envelope, &alice.verifying_key()) {
                    prop_assert_eq!(cbor::encode(&presence), payload);
                }
            }
            2 => {
                let envelope = signed(&bob().signing, EnvelopeKind::Receipt, &payload);
                if let Ok(receipt) = Receipt::verify(&envelope, &bob().verifying_key()) {
                    prop_assert_eq!(cbor::encode(&receipt), payload);
                }
            }
            _ => {
                let envelope = signed(&alice.signing, EnvelopeKind::LogHead, &payload);
                if let Ok(head) = LogHead::verify(&envelope) {
                    prop_assert_eq!(cbor::encode(&head), payload);
                }
            }
        }
    }

    /// A hostile notification payload, correctly signed and sealed to Bob.
    #[test]
    fn notification_payloads(payload in damaged(cbor::encode(&samples::notification()))) {
        let envelope = signed(&alice().signing, EnvelopeKind::Notification, &payload);
        let inbox = inbox_key(&bob().address);
        let sealed = seal::seal_with_ephemeral(
            &bob().hpke_public(),
            info::NOTIFICATION,
            &inbox,
            &envelope.encode(),
            &[4; 32],
        )
        .unwrap();
        let notification = SealedNotification {
            v: crate::notify::SEALED_NOTIFICATION_VERSION,
            id: SealedNotification::id_of(&sealed),
            inbox,
            sealed,
            expires: Timestamp(9_000),
            recipient: bob().verifying_key(),
        };
        if let Ok((opened, signer)) = notification.open(&bob()) {
            prop_assert_eq!(cbor::encode(&opened), payload);
            prop_assert_eq!(signer, alice().verifying_key());
        }
    }

    /// Hostile records under hostile keys, held or not.
    #[test]
    fn records(
        key in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..40),
            Just(RecordKey::from(samples::head().log).encode().to_vec()),
            Just(RecordKey::for_presence(&alice().address).encode().to_vec()),
        ],
        value in damaged(LogHead::sign(&alice().signing, &samples::head()).unwrap().encode()),
        held in any::<bool>(),
    ) {
        let mut trust = TrustedRealms::new();
        trust.trust("example.org", realm().verifying_key()).unwrap();
        let current = LogHead::sign(&alice().signing, &samples::head()).unwrap().encode();
        let current = held.then_some(current.as_slice());
        let _ = validate_record(&key, &value, current, &trust, Timestamp(5_000));
        let _ = newest_record(&key, [value.as_slice()], &trust, Timestamp(5_000));
    }

    /// A hostile entry body inside a correctly encrypted entry object.
    #[test]
    fn log_entries(body in damaged(cbor::encode(&samples::log_entry()))) {
        let entry = samples::log_entry();
        let key = LogKey::derive(&alice().signing, &entry.log);
        let secret = ConvergenceSecret::new(key.as_bytes().to_vec());
        let sealed = convergent::seal(&secret, Kind::Data, &body);
        if let Ok(opened) = open_entry(&sealed.capability(), &sealed.ciphertext, &entry.log, 2) {
            prop_assert_eq!(&cbor::encode(&opened), &body);
            prop_assert_eq!(opened.validate(), Ok(()));
        }
        let direct: Result<LogEntry, DecodeError> = cbor::decode(&body, 4096);
        if let Ok(decoded) = direct {
            prop_assert_eq!(cbor::encode(&decoded), body);
        }
    }

    /// A hostile manifest inside a correctly encrypted object, as a reader
    /// of a large object meets it; and hostile ciphertext.
    #[test]
    fn object_readers(body in damaged(samples::manifest().encode()), raw in any::<bool>()) {
        let sealed = convergent::seal(&ConvergenceSecret::global(), Kind::Manifest, &body);
        let mut reader = ObjectReader::new(sealed.capability());
        let needed = reader.next_needed().unwrap();
        let ciphertext = if raw { body.clone() } else { sealed.ciphertext.clone() };
        if reader.feed(&needed, &ciphertext).is_ok() {
            prop_assert!(!raw);
            prop_assert_eq!(Manifest::decode(&body).map(|m| m.encode()), Ok(body.clone()));
        }
    }
}

fn bundle_bytes() -> Vec<u8> {
    let keys = alice();
    let cert = keys.certificate(1, Timestamp(0), Timestamp(10_000));
    let envelope = Certificate::issue(&realm(), &cert).unwrap();
    UserBundle::new(keys, envelope).unwrap().encode_plain().to_vec()
}
