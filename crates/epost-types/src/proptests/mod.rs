//! Hostile-input properties for every decoder of untrusted bytes in this
//! crate, beside the per-module tests that check each format's rules:
//!
//! - [`hostile`]: arbitrary bytes, and valid encodings damaged at random,
//!   never panic; every refusal is a typed error; whatever *is* accepted
//!   re-encodes to exactly the bytes given (one encoding per value).
//! - [`round_trip`]: arbitrary valid values survive encode then decode.
//! - [`tamper`]: a signed or authenticated object cut short, or with any
//!   one byte replaced, is refused by the signature, hash or AEAD check.
//!
//! The same decoders are fuzzed by the cargo-fuzz targets in `fuzz/`; these
//! run in the ordinary test binary with a moderate number of cases.

mod hostile;
mod round_trip;
mod tamper;

use proptest::prelude::*;

use crate::address::Address;
use crate::capability::{Capability, ObjectKey};
use crate::chunk::{ChildRef, MANIFEST_VERSION, Manifest};
use crate::hash::sha256;
use crate::id::{LogId, ObjectId};
use crate::identity::{Certificate, Presence, UserKeys};
use crate::mail::{FlagChange, MailEntry, MailOp, MessageManifest, MessageRef, Piece};
use crate::notify::{Notification, Receipt, SealedNotification};
use crate::record::inbox_key;
use crate::seal::HpkeSecretKey;
use crate::sign::SigningKey;
use crate::time::Timestamp;
use crate::{fragment, log};

/// Cases per property: enough to shake out shallow bugs on every run,
/// few enough that the crate's tests stay quick on two cores.
const CASES: u32 = 256;

/// The same for properties that sign, seal or derive keys per case.
const CRYPTO_CASES: u32 = 96;

fn user(name: &str, seed: u8) -> UserKeys {
    UserKeys {
        address: format!("{name}@example.org").parse().unwrap(),
        signing: SigningKey::from_seed([seed; 32]),
        hpke: HpkeSecretKey::derive(&[seed.wrapping_add(1); 32]),
    }
}

fn alice() -> UserKeys {
    user("alice", 0x41)
}

fn bob() -> UserKeys {
    user("bob", 0x51)
}

fn realm() -> SigningKey {
    SigningKey::from_seed([0x10; 32])
}

fn capability(seed: u8) -> Capability {
    Capability::new(ObjectId::of(&[seed]), ObjectKey::from_bytes([seed; 32]))
}

/// Valid samples of each format, the starting points of damaged inputs.
mod samples {
    use super::*;

    pub(super) fn fragment() -> fragment::Fragment {
        let data = b"some fragment data".to_vec();
        let mut hashes = vec![[7u8; 32]; 5];
        hashes[1] = sha256(&data);
        fragment::Fragment {
            k: 3,
            m: 2,
            v: fragment::FRAGMENT_VERSION,
            object_len: data.len() as u64 * 3,
            data,
            index: 1,
            hashes,
            object_id: ObjectId::of(b"object"),
        }
    }

    pub(super) fn manifest() -> Manifest {
        Manifest {
            v: MANIFEST_VERSION,
            depth: 1,
            children: vec![
                ChildRef { capability: capability(1), len: 64 },
                ChildRef { capability: capability(2), len: 10 },
            ],
            total_len: 74,
            chunk_size: 64,
        }
    }

    pub(super) fn message() -> MessageManifest {
        MessageManifest::new(vec![
            Piece::Inline(b"Subject: x\r\n\r\n".to_vec()),
            Piece::Part { capability: capability(3), len: 5000 },
        ])
    }

    /// A message with a part, an attachment and an embedded message.
    pub(super) const STRUCTURED: &[u8] = b"From: A <a@x.test>\r\nTo: g: b@x.test;\r\n\
Subject: s\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Language: en\r\n\r\nhi\r\n--b\r\n\
Content-Type: application/pdf; name=a.pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\n\
Content-ID: <c>\r\n\r\nJVBERi0=\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n\
From: c@x.test\r\nSubject: in\r\n\r\nbody\r\n--b--\r\n";

    pub(super) fn structure() -> crate::mime::MessageStructure {
        crate::mime::parse(STRUCTURED).structure
    }

    pub(super) fn structured_message() -> MessageManifest {
        MessageManifest::with_structure(vec![Piece::Inline(STRUCTURED.to_vec())], &structure())
    }

    /// Piece lengths near the top of u64: their sum overflows.
    pub(super) fn huge_message() -> MessageManifest {
        MessageManifest {
            v: crate::mail::MESSAGE_VERSION_PLAIN,
            structure: None,
            size: 3,
            pieces: vec![
                Piece::Part { capability: capability(3), len: u64::MAX - 2 },
                Piece::Inline(b"12345".to_vec()),
            ],
        }
    }

    pub(super) fn mail_entry() -> MailEntry {
        MailEntry::new(vec![
            MailOp::Create { folder: "INBOX".into(), uid_validity: 7 },
            MailOp::Insert {
                folder: "INBOX".into(),
                message: MessageRef {
                    manifest: capability(4),
                    size: 10,
                    internal_date: 5,
                    envelope_from: Some("a@b.test".into()),
                },
                flags: vec!["\\Seen".into()],
                notification: Some(vec![1, 2, 3]),
            },
            MailOp::Flags {
                folder: "INBOX".into(),
                uids: vec![1, 2],
                change: FlagChange::Add,
                flags: vec!["\\Flagged".into()],
            },
        ])
    }

    pub(super) fn notification() -> Notification {
        Notification {
            v: crate::notify::NOTIFICATION_VERSION,
            to: bob().address,
            from: alice().address,
            time: Timestamp(1_000),
            nonce: [9; 16],
            summary: "Lunch?".into(),
            capability: Some(capability(5)),
        }
    }

    pub(super) fn sealed_notification() -> SealedNotification {
        let cert = bob().certificate(1, Timestamp(0), Timestamp(u64::MAX));
        crate::notify::seal_notification(
            &alice(),
            &cert,
            &notification(),
            Timestamp(9_000),
            Some(&[3; 32]),
        )
        .unwrap()
    }

    pub(super) fn receipt() -> Receipt {
        Receipt::new(inbox_key(&bob().address), vec![[3; 32]; 2], Timestamp(5))
    }

    pub(super) fn certificate() -> Certificate {
        alice().certificate(7, Timestamp(1_000), Timestamp(10_000))
    }

    pub(super) fn presence() -> Presence {
        Presence::new(
            alice().address,
            vec![vec![0, 36, 8, 1, 18, 32, 7, 7]],
            vec!["/ip4/127.0.0.1/tcp/4001".to_owned()],
            Timestamp(5_000),
        )
    }

    pub(super) fn log_entry() -> log::LogEntry {
        let owner = alice().signing;
        let log = LogId::derive(&owner.verifying_key(), "INBOX");
        log::LogEntry::new(
            log,
            2,
            Some(capability(6)),
            Timestamp(100),
            log::EntryBody::Data(b"hello".to_vec()),
        )
    }

    pub(super) fn head() -> log::LogHead {
        let entry = log_entry();
        let key = log::LogKey::derive(&alice().signing, &entry.log);
        let newest = capability(8);
        log::LogHead::new(&alice().verifying_key(), "INBOX", 2, &newest, &key, Timestamp(200))
    }

    pub(super) fn address() -> Address {
        "alice@example.org".parse().unwrap()
    }
}

/// One way of damaging an encoding.
#[derive(Debug, Clone)]
enum Edit {
    Flip { at: prop::sample::Index, bit: u8 },
    Set { at: prop::sample::Index, byte: u8 },
    Insert { at: prop::sample::Index, bytes: Vec<u8> },
    Remove { at: prop::sample::Index, len: usize },
    Truncate { at: prop::sample::Index },
}

fn edit() -> impl Strategy<Value = Edit> {
    let at = any::<prop::sample::Index>;
    prop_oneof![
        (at(), 0u8..8).prop_map(|(at, bit)| Edit::Flip { at, bit }),
        (at(), any::<u8>()).prop_map(|(at, byte)| Edit::Set { at, byte }),
        (at(), prop::collection::vec(any::<u8>(), 1..9))
            .prop_map(|(at, bytes)| Edit::Insert { at, bytes }),
        (at(), 1usize..9).prop_map(|(at, len)| Edit::Remove { at, len }),
        at().prop_map(|at| Edit::Truncate { at }),
    ]
}

fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    let len = bytes.len();
    match edit {
        Edit::Flip { at, bit } if len > 0 => bytes[at.index(len)] ^= 1 << bit,
        Edit::Set { at, byte } if len > 0 => bytes[at.index(len)] = *byte,
        Edit::Insert { at, bytes: new } => {
            let at = at.index(len + 1);
            bytes.splice(at..at, new.iter().copied());
        }
        Edit::Remove { at, len: n } if len > 0 => {
            let at = at.index(len);
            bytes.drain(at..(at + n).min(len));
        }
        Edit::Truncate { at } => bytes.truncate(at.index(len + 1)),
        _ => {}
    }
}

/// `valid` with one to four random edits, or (one time in four) bytes
/// that owe nothing to it.
fn damaged(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::collection::vec(edit(), 1..5).prop_map(move |edits| {
            let mut bytes = valid.clone();
            for edit in &edits {
                apply(&mut bytes, edit);
            }
            bytes
        }),
        1 => prop::collection::vec(any::<u8>(), 0..300),
    ]
}
