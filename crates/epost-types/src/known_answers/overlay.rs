//! Vectors of the overlay's signed, sealed and derived values: record
//! keys, certificates, presence, log keys, entries and heads,
//! notifications, receipts, user bundles and password hashes
//! (`spec/identity.md`, `spec/logs.md`, `spec/notify.md`).

use serde_json::{Value, json};

use super::{hex, unhex};
use crate::address::Address;
use crate::capability::{Capability, ObjectKey};
use crate::cbor;
use crate::convergent::{self, ConvergenceSecret};
use crate::envelope::SignedEnvelope;
use crate::hash::{sha256, sha256_parts};
use crate::id::{LogId, ObjectId};
use crate::identity::bundle::UserBundle;
use crate::identity::password::{self, Argon2idParams};
use crate::identity::{Certificate, Presence, TrustedRealms, UserKeys};
use crate::log::{self, EntryBody, LogEntry, LogHead, LogKey};
use crate::notify::{self, Notification, Receipt, SealedNotification};
use crate::record::{self, RecordKey};
use crate::seal::HpkeSecretKey;
use crate::sign::{SigningKey, VerifyingKey};
use crate::time::Timestamp;

const REALM_SEED: [u8; 32] = [0x09; 32];
const TIME: Timestamp = Timestamp(1_700_000_000_000);
const TINY: Argon2idParams = Argon2idParams { m_cost: 256, t_cost: 1, p_cost: 1 };

fn alice() -> UserKeys {
    UserKeys {
        address: "alice@example.org".parse().expect("address"),
        signing: SigningKey::from_seed([0x0a; 32]),
        hpke: HpkeSecretKey::derive(&[0x0b; 32]),
    }
}

fn bob() -> UserKeys {
    UserKeys {
        address: "bob@example.org".parse().expect("address"),
        signing: SigningKey::from_seed([0x0c; 32]),
        hpke: HpkeSecretKey::derive(&[0x0d; 32]),
    }
}

fn realm() -> SigningKey {
    SigningKey::from_seed(REALM_SEED)
}

fn cert_of(keys: &UserKeys) -> Certificate {
    keys.certificate(1, TIME, Timestamp(TIME.0 + 365 * 24 * 3600 * 1000))
}

fn keys_json(keys: &UserKeys, signing_seed: u8, hpke_ikm: u8) -> Value {
    json!({
        "address": keys.address.to_string(),
        "signing_seed": hex(&[signing_seed; 32]),
        "signing_public": keys.verifying_key().to_string(),
        "hpke_ikm": hex(&[hpke_ikm; 32]),
        "hpke_secret": hex(keys.hpke.to_bytes().as_ref()),
        "hpke_public": hex(keys.hpke_public().as_bytes()),
    })
}

pub(super) fn users() -> Value {
    json!({
        "realm_seed": hex(&REALM_SEED),
        "realm_public": realm().verifying_key().to_string(),
        "alice": keys_json(&alice(), 0x0a, 0x0b),
        "bob": keys_json(&bob(), 0x0c, 0x0d),
    })
}

pub(super) fn record_keys() -> Value {
    let address = alice().address;
    let log = LogId::derive(&alice().verifying_key(), "INBOX");
    json!({
        "address": address.to_string(),
        "cert_key": hex(&record::cert_key(&address)),
        "presence_key": hex(&record::presence_key(&address)),
        "inbox_key": hex(&record::inbox_key(&address)),
        "log_head_key_for_alice_inbox": hex(&RecordKey::from(log).encode()),
        "certificate_record_key": hex(&RecordKey::for_certificate(&address).encode()),
        "presence_record_key": hex(&RecordKey::for_presence(&address).encode()),
    })
}

pub(super) fn certificates() -> Value {
    let cert = cert_of(&alice());
    let envelope = Certificate::issue(&realm(), &cert).expect("issues");
    json!([{
        "serial": cert.serial,
        "issued": cert.issued.as_millis(),
        "expires": cert.expires.as_millis(),
        "payload": hex(&envelope.payload),
        "encoded": hex(&envelope.encode()),
    }])
}

pub(super) fn presences() -> Value {
    let presence = Presence::new(
        alice().address,
        vec![unhex("0024080112206a04ab98d9e4774ad806e302dddeb63bea16b5cb5f223ee77478e861bb583eb3")],
        vec!["/ip4/127.0.0.1/tcp/4001".to_owned(), "/ip6/::1/udp/4001/quic-v1".to_owned()],
        TIME,
    );
    let envelope = Presence::sign(&alice().signing, &presence).expect("signs");
    json!([{
        "time": TIME.as_millis(),
        "payload": hex(&envelope.payload),
        "encoded": hex(&envelope.encode()),
    }])
}

fn inbox() -> LogId {
    LogId::derive(&alice().verifying_key(), "INBOX")
}

fn log_key() -> LogKey {
    LogKey::derive(&alice().signing, &inbox())
}

/// Entry `i` of the snapshot vector's index.
fn index_ref(i: u64) -> Capability {
    let key = sha256_parts(&[b"key", &i.to_be_bytes()]);
    Capability::new(ObjectId::from_bytes(sha256(&i.to_be_bytes())), ObjectKey::from_bytes(key))
}

pub(super) fn logs() -> Value {
    let first = LogEntry::new(inbox(), 1, None, TIME, EntryBody::Data(b"first entry".to_vec()));
    let first_sealed = log::seal_entry(&log_key(), &first).expect("seals");
    let second = LogEntry::new(
        inbox(),
        2,
        Some(first_sealed.capability()),
        Timestamp(TIME.0 + 1),
        EntryBody::Data(b"second entry".to_vec()),
    );
    let second_sealed = log::seal_entry(&log_key(), &second).expect("seals");
    let entry_json = |entry: &LogEntry, sealed: &convergent::SealedObject| {
        json!({
            "seq": entry.seq,
            "encoded": hex(&cbor::encode(entry)),
            "key": hex(sealed.key.as_bytes()),
            "ciphertext": hex(&sealed.ciphertext),
            "id": sealed.id.to_string(),
        })
    };
    let head = LogHead::new(
        &alice().verifying_key(),
        "INBOX",
        2,
        &second_sealed.capability(),
        &log_key(),
        Timestamp(TIME.0 + 2),
    );
    let head_envelope = LogHead::sign(&alice().signing, &head).expect("signs");
    let index: Vec<Capability> = (1..500).map(index_ref).collect();
    let snapshot = LogEntry::new(
        inbox(),
        500,
        Some(index_ref(499)),
        TIME,
        EntryBody::Snapshot { index, state: Some(b"state".to_vec()), prev_snapshot: None },
    );
    let snapshot_encoded = cbor::encode(&snapshot);
    let snapshot_sealed = log::seal_entry(&log_key(), &snapshot).expect("seals");
    json!({
        "owner_seed": hex(&[0x0a; 32]),
        "name": "INBOX",
        "log_id": inbox().to_string(),
        "log_key": hex(log_key().as_bytes()),
        "entries": [entry_json(&first, &first_sealed), entry_json(&second, &second_sealed)],
        "wrapped_key_of_entry_2": hex(&log::wrap_entry_key(&log_key(), &second_sealed.capability())),
        "head_payload": hex(&head_envelope.payload),
        "head_encoded": hex(&head_envelope.encode()),
        "snapshot": {
            "seq": 500,
            "index": "entry i (1 to 499): id = SHA-256(i as u64 BE), key = SHA-256(\"key\" || i as u64 BE); prev = entry 499",
            "state": hex(b"state"),
            "time": TIME.as_millis(),
            "encoded_len": snapshot_encoded.len(),
            "encoded_sha256": hex(&sha256(&snapshot_encoded)),
            "key": hex(snapshot_sealed.key.as_bytes()),
            "id": snapshot_sealed.id.to_string(),
        },
    })
}

pub(super) fn notifications() -> Value {
    let notice = Notification {
        v: notify::NOTIFICATION_VERSION,
        to: bob().address,
        from: alice().address,
        time: TIME,
        nonce: [0x0e; 16],
        summary: "Lunch on Friday?".to_owned(),
        capability: Some(index_ref(1)),
    };
    let ikm_e = [0x0f; 32];
    let expires = Timestamp(TIME.0 + 28 * 24 * 3600 * 1000);
    let sealed =
        notify::seal_notification(&alice(), &cert_of(&bob()), &notice, expires, Some(&ikm_e))
            .expect("seals");
    let (opened, signer) = sealed.open(&bob()).expect("opens");
    assert_eq!((opened, signer), (notice.clone(), alice().verifying_key()));
    let inner = SignedEnvelope::sign(
        &alice().signing,
        crate::envelope::EnvelopeKind::Notification,
        cbor::encode(&notice),
    )
    .expect("signs");
    let receipt = Receipt::new(sealed.inbox, vec![sealed.id], Timestamp(TIME.0 + 5));
    let receipt_envelope = Receipt::sign(&bob().signing, &receipt).expect("signs");
    json!({
        "payload": hex(&inner.payload),
        "envelope": hex(&inner.encode()),
        "ikm_e": hex(&ikm_e),
        "sealed_encoded": hex(&sealed.encode()),
        "id": hex(&sealed.id),
        "receipt_payload": hex(&receipt_envelope.payload),
        "receipt_encoded": hex(&receipt_envelope.encode()),
    })
}

pub(super) fn bundles() -> Value {
    let cert = Certificate::issue(&realm(), &cert_of(&alice())).expect("issues");
    let bundle = UserBundle::new(alice(), cert).expect("matches");
    let salt = [0x10; 16];
    let nonce = [0x11; 12];
    let wrapped = bundle
        .wrap_with_salt_and_nonce("correct horse battery staple", TINY, salt, nonce)
        .expect("wraps");
    let phc = password::hash_password_with_salt(
        "correct horse battery staple",
        Argon2idParams::DEFAULT,
        b"epost test salt!",
    )
    .expect("hashes");
    let carried =
        bundle.clone().with_extras(Some(ConvergenceSecret::new(vec![0x12; 32])), Some(phc.clone()));
    json!({
        "plain": hex(&bundle.encode_plain()),
        "plain_with_realm_secret_and_password": hex(&carried.encode_plain()),
        "realm_secret": hex(&[0x12; 32]),
        "passphrase": "correct horse battery staple",
        "kdf": { "m_cost": TINY.m_cost, "t_cost": TINY.t_cost, "p_cost": TINY.p_cost, "salt": hex(&salt) },
        "nonce": hex(&nonce),
        "wrapped": hex(&wrapped),
        "password_phc": phc,
    })
}

/// Every CBOR encoding (top-level values and signed payloads) of the
/// overlay vectors, for the determinism check.
pub(super) fn encodings(vectors: &Value) -> Vec<Vec<u8>> {
    let s = |v: &Value| unhex(v.as_str().expect("hex"));
    let mut out = Vec::new();
    for section in ["certificate", "presence"] {
        for case in vectors[section].as_array().expect("array") {
            out.push(s(&case["payload"]));
            out.push(s(&case["encoded"]));
        }
    }
    let logs = &vectors["log"];
    for entry in logs["entries"].as_array().expect("array") {
        out.push(s(&entry["encoded"]));
    }
    out.extend([s(&logs["head_payload"]), s(&logs["head_encoded"])]);
    let n = &vectors["notification"];
    for field in ["payload", "envelope", "sealed_encoded", "receipt_payload", "receipt_encoded"] {
        out.push(s(&n[field]));
    }
    let bundles = &vectors["user_bundle"];
    for field in ["plain", "plain_with_realm_secret_and_password", "wrapped"] {
        out.push(s(&bundles[field]));
    }
    out
}

/// The published overlay vectors, checked with the decoders and openers
/// alone, as another implementation would use them.
pub(super) fn check_published(published: &Value) {
    let s = |v: &Value| v.as_str().expect("string").to_owned();
    let users = &published["users"];
    let realm: VerifyingKey = s(&users["realm_public"]).parse().expect("key");
    let mut trust = TrustedRealms::new();
    trust.trust("example.org", realm).expect("domain");
    let alice_key: VerifyingKey = s(&users["alice"]["signing_public"]).parse().expect("key");
    let bob = UserKeys {
        address: s(&users["bob"]["address"]).parse::<Address>().expect("address"),
        signing: SigningKey::from_seed(
            unhex(&s(&users["bob"]["signing_seed"])).try_into().expect("32"),
        ),
        hpke: HpkeSecretKey::from_bytes(
            unhex(&s(&users["bob"]["hpke_secret"])).try_into().expect("32"),
        ),
    };
    let envelope = |v: &Value| SignedEnvelope::decode(&unhex(&s(v))).expect("envelope");

    let cert = &published["certificate"][0];
    let cert = Certificate::verify(&envelope(&cert["encoded"]), &trust, TIME).expect("certificate");
    assert_eq!(cert.signing_key, alice_key);
    let presence = Presence::verify(&envelope(&published["presence"][0]["encoded"]), &alice_key);
    assert_eq!(presence.expect("presence").time, TIME);

    let logs = &published["log"];
    let key = LogKey::from_bytes(unhex(&s(&logs["log_key"])).try_into().expect("32"));
    let head = LogHead::verify(&envelope(&logs["head_encoded"])).expect("head");
    let newest = head.newest_entry(&key).expect("unwraps");
    let second = &logs["entries"][1];
    let entry = log::open_entry(&newest, &unhex(&s(&second["ciphertext"])), &head.log, 2);
    let entry = entry.expect("opens");
    let first = &logs["entries"][0];
    let prev = entry.prev.expect("entry 2 names entry 1");
    assert_eq!(prev.id.to_string(), s(&first["id"]));
    log::open_entry(&prev, &unhex(&s(&first["ciphertext"])), &head.log, 1).expect("opens");

    let n = &published["notification"];
    let sealed = SealedNotification::decode(&unhex(&s(&n["sealed_encoded"]))).expect("decodes");
    let (notice, signer) = sealed.open(&bob).expect("opens");
    assert_eq!((notice.summary.as_str(), signer), ("Lunch on Friday?", alice_key));
    let receipt = Receipt::verify(&envelope(&n["receipt_encoded"]), &bob.verifying_key());
    assert_eq!(receipt.expect("receipt").ids, vec![sealed.id]);

    let b = &published["user_bundle"];
    let plain = UserBundle::decode(&unhex(&s(&b["plain"])), None).expect("plain bundle");
    assert_eq!(plain.keys.verifying_key(), alice_key);
    let wrapped = UserBundle::decode(&unhex(&s(&b["wrapped"])), Some(&s(&b["passphrase"])));
    assert_eq!(wrapped.expect("wrapped bundle").keys.verifying_key(), alice_key);
    assert!(password::verify_password(&s(&b["password_phc"]), &s(&b["passphrase"])));
    let carried = UserBundle::decode(&unhex(&s(&b["plain_with_realm_secret_and_password"])), None)
        .expect("bundle with extras");
    assert_eq!(carried.realm_secret.expect("secret").as_bytes(), unhex(&s(&b["realm_secret"])));
    assert_eq!(carried.password_hash.as_deref(), b["password_phc"].as_str());
}
