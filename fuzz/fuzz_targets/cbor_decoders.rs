//! Every CBOR decoder of untrusted bytes, chosen by the first input byte:
//! none may panic, and whatever one accepts must re-encode to exactly the
//! bytes it was given (one encoding per value). Payload decoders behind a
//! signature are reached by signing the input with a fixed key.
#![no_main]

use epost_types::address::Address;
use epost_types::capability::Capability;
use epost_types::cbor;
use epost_types::chunk::{ChildRef, Manifest};
use epost_types::envelope::{EnvelopeKind, SignedEnvelope};
use epost_types::fragment::Fragment;
use epost_types::id::{LogId, ObjectId};
use epost_types::identity::bundle::UserBundle;
use epost_types::identity::{Certificate, Presence, TrustedRealms};
use epost_types::keyfile::NodeKeyFile;
use epost_types::log::{EntryBody, LogEntry, LogHead};
use epost_types::mail::{MailEntry, MessageManifest};
use epost_types::notify::{Receipt, SealedNotification};
use epost_types::record::{RecordKey, validate_record};
use epost_types::seal::{HpkePublicKey, SealedMessage};
use epost_types::sign::{Signature, SigningKey, VerifyingKey};
use epost_types::time::Timestamp;
use libfuzzer_sys::fuzz_target;

/// Decodes a bare component value; if accepted, it must be canonical.
fn component<T: serde::de::DeserializeOwned + serde::Serialize>(bytes: &[u8]) {
    if let Ok(value) = cbor::decode_any::<T>(bytes, 64 * 1024) {
        assert_eq!(cbor::encode(&value), bytes, "a non-canonical encoding was accepted");
    }
}

fn canonical(encoded: Vec<u8>, bytes: &[u8]) {
    assert_eq!(encoded, bytes, "a non-canonical encoding was accepted");
}

fn signed(kind: EnvelopeKind, payload: &[u8]) -> Option<SignedEnvelope> {
    SignedEnvelope::sign(&SigningKey::from_seed([7; 32]), kind, payload.to_vec()).ok()
}

fuzz_target!(|input: &[u8]| {
    let Some((&which, bytes)) = input.split_first() else { return };
    match which % 24 {
        0 => {
            if let Ok(fragment) = Fragment::decode(bytes) {
                canonical(fragment.encode(), bytes);
                let _ = fragment.verify();
            }
        }
        1 => {
            if let Ok(manifest) = Manifest::decode(bytes) {
                canonical(manifest.encode(), bytes);
            }
        }
        2 => {
            if let Ok(manifest) = MessageManifest::decode(bytes) {
                canonical(manifest.encode(), bytes);
            }
        }
        3 => {
            if let Ok(entry) = MailEntry::decode(bytes) {
                canonical(entry.encode(), bytes);
            }
        }
        4 => {
            if let Ok(envelope) = SignedEnvelope::decode(bytes) {
                canonical(envelope.encode(), bytes);
                let _ = envelope.verify();
            }
        }
        5 => {
            if let Ok(sealed) = SealedNotification::decode(bytes) {
                canonical(sealed.encode(), bytes);
            }
        }
        6 => {
            if let Ok(file) = NodeKeyFile::decode(bytes) {
                canonical(file.encode().to_vec(), bytes);
            }
        }
        7 => {
            let _ = UserBundle::is_passphrase_protected(bytes);
            // No passphrase: a wrapped bundle stops before the KDF.
            if let Ok(bundle) = UserBundle::decode(bytes, None) {
                canonical(bundle.encode_plain().to_vec(), bytes);
            }
        }
        8 => {
            if let Ok(key) = RecordKey::decode(bytes) {
                canonical(key.encode().to_vec(), bytes);
            }
            if bytes.len() > RecordKey::LEN {
                let (key, value) = bytes.split_at(RecordKey::LEN);
                let trust = TrustedRealms::new();
                let _ = validate_record(key, value, None, &trust, Timestamp(1 << 40));
            }
        }
        9 => {
            if let Some(envelope) = signed(EnvelopeKind::LogHead, bytes)
                && let Ok(head) = LogHead::verify(&envelope)
            {
                canonical(cbor::encode(&head), bytes);
            }
        }
        10 => {
            if let Some(envelope) = signed(EnvelopeKind::Certificate, bytes)
                && let Ok(cert) = Certificate::verify_signature(&envelope)
            {
                canonical(cbor::encode(&cert), bytes);
            }
        }
        11 => {
            if let Some(envelope) = signed(EnvelopeKind::Presence, bytes)
                && let Ok(presence) = Presence::verify_signature(&envelope)
            {
                canonical(cbor::encode(&presence), bytes);
            }
        }
        12 => {
            if let Some(envelope) = signed(EnvelopeKind::Receipt, bytes)
                && let Ok(receipt) = Receipt::verify(&envelope, &envelope.signer)
            {
                canonical(cbor::encode(&receipt), bytes);
            }
        }
        13 => {
            let entry: Result<LogEntry, _> = cbor::decode(bytes, 128 * 1024);
            if let Ok(entry) = entry {
                canonical(cbor::encode(&entry), bytes);
                let _ = entry.validate();
            }
        }
        14 => component::<SealedMessage>(bytes),
        15 => component::<Capability>(bytes),
        16 => component::<Address>(bytes),
        17 => component::<EntryBody>(bytes),
        18 => component::<ChildRef>(bytes),
        19 => component::<Signature>(bytes),
        20 => component::<VerifyingKey>(bytes),
        21 => component::<HpkePublicKey>(bytes),
        22 => {
            component::<ObjectId>(bytes);
            component::<LogId>(bytes);
        }
        _ => component::<Timestamp>(bytes),
    }
});
