//! Known-answer vectors: recomputes every published vector and compares
//! it with `spec/vectors/formats-v1.json`, so the spec's vectors and this
//! code cannot drift apart. Another implementation of the formats should
//! reproduce the file.
//!
//! Regenerate after an intended format change (then review the diff!):
//! `EPOST_REGEN_VECTORS=1 cargo test -p epost-types known_answers::vectors_match`

use data_encoding::HEXLOWER;
use serde_json::{Value, json};

use crate::address::Address;
use crate::capability::Capability;
use crate::chunk::{Layout, Manifest, ObjectReader, ObjectWriter};
use crate::convergent::{self, ConvergenceSecret, Kind};
use crate::envelope::{self, EnvelopeKind, SignedEnvelope};
use crate::fragment::{FRAGMENT_VERSION, Fragment};
use crate::hash::sha256;
use crate::id::{LogId, ObjectId};
use crate::keyfile::NodeKeyFile;
use crate::seal::{self, HpkePublicKey, HpkeSecretKey, SealedMessage};
use crate::sign::SigningKey;
use crate::text;

mod overlay;

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../spec/vectors/formats-v1.json");

fn hex(bytes: &[u8]) -> String {
    HEXLOWER.encode(bytes)
}

fn unhex(text: &str) -> Vec<u8> {
    HEXLOWER.decode(text.as_bytes()).expect("vector hex")
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn realm() -> Vec<u8> {
    b"epost test realm".to_vec()
}

fn base32() -> Value {
    let cases: Vec<Value> = [vec![0u8; 32], (0u8..32).collect(), vec![0xff; 32]]
        .iter()
        .map(|bytes| json!({ "bytes": hex(bytes), "text": text::encode(bytes) }))
        .collect();
    Value::Array(cases)
}

fn convergent_objects() -> Value {
    let cases = [
        (Vec::new(), Kind::Data, Vec::new()),
        (realm(), Kind::Data, Vec::new()),
        (realm(), Kind::Data, b"hello, world\n".to_vec()),
        (Vec::new(), Kind::Data, b"hello, world\n".to_vec()),
        (realm(), Kind::Manifest, b"not really a manifest".to_vec()),
        (realm(), Kind::Data, pattern(1000)),
    ];
    let out = cases.into_iter().map(|(secret, kind, body)| {
        let sealed = convergent::seal(&ConvergenceSecret::new(secret.clone()), kind, &body);
        let opened = convergent::open(&sealed.capability(), &sealed.ciphertext).expect("opens");
        assert_eq!((opened.kind, &opened.body), (kind, &body));
        json!({
            "secret": hex(&secret),
            "kind": kind.as_byte(),
            "body": hex(&body),
            "key": hex(sealed.key.as_bytes()),
            "ciphertext": hex(&sealed.ciphertext),
            "id": sealed.id.to_string(),
            "capability": sealed.capability().to_string(),
        })
    });
    Value::Array(out.collect())
}

fn chunked() -> Value {
    let out = [0usize, 16, 17, 300, 4097].into_iter().map(|len| {
        let layout = Layout::new(16, 16).expect("layout");
        let mut writer = ObjectWriter::with_layout(ConvergenceSecret::new(realm()), layout);
        let mut objects = writer.push(&pattern(len));
        let finished = writer.finish();
        objects.extend(finished.objects);
        // Read it back to prove the vector is whole.
        let mut reader = ObjectReader::new(finished.capability.clone());
        let mut data = Vec::new();
        while let Some(next) = reader.next_needed() {
            let object = objects.iter().find(|o| o.id == next.id).expect("object written");
            data.extend(reader.feed(&next, &object.ciphertext).expect("reads").unwrap_or_default());
        }
        assert_eq!(data, pattern(len));
        let root = objects.iter().find(|o| o.id == finished.capability.id).expect("root");
        let root_plaintext = convergent::open(&finished.capability, &root.ciphertext).expect("root");
        let mut framed = vec![root_plaintext.kind.as_byte()];
        framed.extend(&root_plaintext.body);
        if root_plaintext.kind == Kind::Manifest {
            Manifest::decode(&root_plaintext.body).expect("root manifest");
        }
        json!({
            "input": format!("{len} bytes, byte i = i mod 251"),
            "len": len,
            "secret": hex(&realm()),
            "chunk_size": layout.chunk_size(),
            "fanout": layout.fanout(),
            "capability": finished.capability.to_string(),
            "root_plaintext": hex(&framed),
            "object_ids_in_write_order": objects.iter().map(|o| o.id.to_string()).collect::<Vec<_>>(),
        })
    });
    Value::Array(out.collect())
}

fn signatures() -> Value {
    let out = [([0x01u8; 32], &b""[..]), ([0x01; 32], b"epost"), ([0x9d; 32], b"epost/v1")]
        .into_iter()
        .map(|(seed, message)| {
            let key = SigningKey::from_seed(seed);
            let signature = key.sign(message);
            assert!(key.verifying_key().verify(message, &signature).is_ok());
            json!({
                "seed": hex(&seed),
                "public": key.verifying_key().to_string(),
                "public_hex": hex(key.verifying_key().as_bytes()),
                "message": hex(message),
                "signature": hex(signature.as_bytes()),
            })
        });
    Value::Array(out.collect())
}

fn log_ids() -> Value {
    let owner = SigningKey::from_seed([0x01; 32]).verifying_key();
    let out = ["INBOX", "Sent", ""].into_iter().map(|name| {
        json!({ "owner": owner.to_string(), "name": name, "log_id": LogId::derive(&owner, name).to_string() })
    });
    Value::Array(out.collect())
}

fn envelopes() -> Value {
    let key = SigningKey::from_seed([0x02; 32]);
    let cases = [
        (EnvelopeKind::LogHead, b"head payload".to_vec()),
        (EnvelopeKind::Presence, Vec::new()),
        (EnvelopeKind::Other(1000), vec![0xff; 40]),
    ];
    let out = cases.into_iter().map(|(kind, payload)| {
        let envelope = SignedEnvelope::sign(&key, kind, payload.clone()).expect("small payload");
        let encoded = envelope.encode();
        let decoded = SignedEnvelope::decode(&encoded).expect("decodes");
        assert_eq!(decoded.verify_kind(kind), Ok(&payload[..]));
        json!({
            "seed": hex(&[0x02; 32]),
            "kind": kind.code(),
            "payload": hex(&payload),
            "signed_bytes": hex(&envelope::signed_bytes(envelope::ENVELOPE_VERSION, kind, &payload)),
            "encoded": hex(&encoded),
        })
    });
    Value::Array(out.collect())
}

fn hpke() -> Value {
    struct Case {
        note: &'static str,
        recipient: HpkeSecretKey,
        ikm_e: [u8; 32],
        info: Vec<u8>,
        aad: Vec<u8>,
        plaintext: Vec<u8>,
    }
    let rfc = Case {
        note: "RFC 9180 appendix A.2.1, first message; recipient_secret is the RFC's skRm as stored, clamped (RFC 9180 section 7.1.2)",
        recipient: HpkeSecretKey::from_bytes(
            unhex("8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb")
                .try_into()
                .expect("32"),
        ),
        ikm_e: unhex("909a9b35d3dc4713a5e72a4da274b55d3d3821a37e5d099e74a647db583a904b")
            .try_into()
            .expect("32"),
        info: unhex("4f6465206f6e2061204772656369616e2055726e"),
        aad: unhex("436f756e742d30"),
        plaintext: unhex("4265617574792069732074727574682c20747275746820626561757479"),
    };
    let epost = Case {
        note: "an epost notification; recipient key = DeriveKeyPair(32 x 0x11)",
        recipient: HpkeSecretKey::derive(&[0x11; 32]),
        ikm_e: [0x22; 32],
        info: seal::info::NOTIFICATION.to_vec(),
        aad: Vec::new(),
        plaintext: b"you have mail".to_vec(),
    };
    let out = [rfc, epost].into_iter().map(|case| {
        let public: HpkePublicKey = case.recipient.public_key();
        let sealed =
            seal::seal_with_ephemeral(&public, &case.info, &case.aad, &case.plaintext, &case.ikm_e)
                .expect("seals");
        let opened = seal::open_sealed(&case.recipient, &case.info, &case.aad, &sealed);
        assert_eq!(opened.as_deref(), Ok(&case.plaintext[..]));
        json!({
            "note": case.note,
            "recipient_secret": hex(case.recipient.to_bytes().as_ref()),
            "recipient_public": hex(public.as_bytes()),
            "ikm_e": hex(&case.ikm_e),
            "info": hex(&case.info),
            "aad": hex(&case.aad),
            "plaintext": hex(&case.plaintext),
            "enc": hex(&sealed.enc),
            "ciphertext": hex(&sealed.ciphertext),
            "sealed_message_cbor": hex(&crate::cbor::encode(&SealedMessage { ..sealed })),
        })
    });
    Value::Array(out.collect())
}

fn fragments() -> Value {
    // Layout only: two data shards and an XOR parity shard of a 5-byte
    // "ciphertext", padded to 4 bytes each. The real codec lives elsewhere.
    let object = b"abcde";
    let shards: [Vec<u8>; 3] =
        [b"abc".to_vec(), b"de\0".to_vec(), vec![b'a' ^ b'd', b'b' ^ b'e', b'c']];
    let hashes: Vec<[u8; 32]> = shards.iter().map(|s| sha256(s)).collect();
    let out = shards.iter().enumerate().map(|(index, data)| {
        let fragment = Fragment {
            v: FRAGMENT_VERSION,
            object_id: ObjectId::of(object),
            index: index as u8,
            k: 2,
            m: 1,
            object_len: object.len() as u64,
            hashes: hashes.clone(),
            data: data.clone(),
        };
        assert_eq!(fragment.verify(), Ok(()));
        json!({ "index": index, "data": hex(data), "encoded": hex(&fragment.encode()) })
    });
    Value::Array(out.collect())
}

fn keyfiles() -> Value {
    let file = NodeKeyFile::new(&SigningKey::from_seed([0x07; 32]));
    json!([{ "seed": hex(&[0x07; 32]), "public": file.verifying_key().to_string(), "encoded": hex(&file.encode()) }])
}

fn addresses() -> Value {
    let valid = [
        "alice@example.org",
        "Alice.Smith+tag@Mail.Example.ORG",
        "bob@localhost",
        "josé@Example.org",
    ];
    let invalid = [
        "alice",
        "@example.org",
        "a..b@example.org",
        "a@-x.org",
        "jo\u{202e}se@example.org",
        "jos\u{a0}@example.org",
        "josé@bücher.example",
        "a@[127.0.0.1]",
    ];
    json!({
        "valid": valid.iter().map(|text| {
            let address: Address = text.parse().expect("valid");
            json!({ "input": text, "canonical": address.to_string() })
        }).collect::<Vec<_>>(),
        "invalid": invalid.iter().inspect(|text| {
            assert!(text.parse::<Address>().is_err());
        }).collect::<Vec<_>>(),
    })
}

fn compute() -> Value {
    json!({
        "title": "epost formats, version 1: known-answer vectors",
        "spec": "spec/formats.md",
        "notes": "Byte strings are lowercase hex. Sections users to user_bundle are specified in spec/identity.md, spec/logs.md and spec/notify.md. Ids, keys and capabilities also appear in their base32 text forms. Regenerate with EPOST_REGEN_VECTORS=1 cargo test -p epost-types known_answers::vectors_match.",
        "base32": base32(),
        "convergent": convergent_objects(),
        "chunked": chunked(),
        "ed25519": signatures(),
        "log_id": log_ids(),
        "envelope": envelopes(),
        "hpke": hpke(),
        "fragment": fragments(),
        "keyfile": keyfiles(),
        "address": addresses(),
        "users": overlay::users(),
        "record_key": overlay::record_keys(),
        "certificate": overlay::certificates(),
        "presence": overlay::presences(),
        "log": overlay::logs(),
        "notification": overlay::notifications(),
        "user_bundle": overlay::bundles(),
    })
}

#[test]
fn vectors_match_the_published_file() {
    let computed = compute();
    if std::env::var_os("EPOST_REGEN_VECTORS").is_some() {
        let mut text = serde_json::to_string_pretty(&computed).expect("json");
        text.push('\n');
        std::fs::write(PATH, text).expect("write the vectors file");
        return;
    }
    let published = std::fs::read_to_string(PATH).unwrap_or_else(|e| {
        panic!("cannot read {PATH} ({e}); generate it with EPOST_REGEN_VECTORS=1")
    });
    let published: Value = serde_json::from_str(&published).expect("vectors file is JSON");
    for (section, value) in computed.as_object().expect("object") {
        assert_eq!(Some(value), published.get(section), "section {section:?} differs from {PATH}");
    }
    assert_eq!(computed, published, "{PATH} has extra sections");
}

/// Every encoded value in the vectors is RFC 8949 core deterministic
/// CBOR, so implementations can use an off-the-shelf deterministic encoder.
#[test]
fn encodings_are_core_deterministic() {
    let vectors = compute();
    let mut encodings: Vec<Vec<u8>> = Vec::new();
    for (section, field) in [
        ("envelope", "encoded"),
        ("fragment", "encoded"),
        ("keyfile", "encoded"),
        ("hpke", "sealed_message_cbor"),
    ] {
        for case in vectors[section].as_array().expect("array") {
            encodings.push(unhex(case[field].as_str().expect("hex")));
        }
    }
    encodings.extend(overlay::encodings(&vectors));
    for case in vectors["chunked"].as_array().expect("array") {
        let plaintext = unhex(case["root_plaintext"].as_str().expect("hex"));
        if plaintext.first() == Some(&Kind::Manifest.as_byte()) {
            encodings.push(plaintext[1..].to_vec());
        }
    }
    assert!(encodings.len() > 10);
    for bytes in encodings {
        assert!(crate::cbor::keys_are_deterministic(&bytes), "{}", hex(&bytes));
    }
}

/// The published vectors open with the decoders alone (no sealing code),
/// as another implementation reading the file would use them.
#[test]
fn published_vectors_decode_and_open() {
    // While regenerating, the file may be half written by the other test.
    if std::env::var_os("EPOST_REGEN_VECTORS").is_some() {
        return;
    }
    let text = std::fs::read_to_string(PATH).expect("the vectors file exists");
    let published: Value = serde_json::from_str(&text).expect("json");
    let s = |v: &Value| v.as_str().expect("string").to_owned();
    for case in published["convergent"].as_array().expect("array") {
        let cap: Capability = s(&case["capability"]).parse().expect("capability");
        let opened = convergent::open(&cap, &unhex(&s(&case["ciphertext"]))).expect("opens");
        assert_eq!(opened.body, unhex(&s(&case["body"])));
    }
    for case in published["envelope"].as_array().expect("array") {
        let envelope = SignedEnvelope::decode(&unhex(&s(&case["encoded"]))).expect("decodes");
        assert_eq!(envelope.verify().map(<[u8]>::to_vec), Ok(unhex(&s(&case["payload"]))));
    }
    for case in published["hpke"].as_array().expect("array") {
        let secret =
            HpkeSecretKey::from_bytes(unhex(&s(&case["recipient_secret"])).try_into().expect("32"));
        let message = SealedMessage {
            enc: unhex(&s(&case["enc"])).try_into().expect("32"),
            ciphertext: unhex(&s(&case["ciphertext"])),
        };
        let opened = seal::open_sealed(
            &secret,
            &unhex(&s(&case["info"])),
            &unhex(&s(&case["aad"])),
            &message,
        );
        assert_eq!(opened, Ok(unhex(&s(&case["plaintext"]))));
    }
    for case in published["fragment"].as_array().expect("array") {
        let fragment = Fragment::decode(&unhex(&s(&case["encoded"]))).expect("decodes");
        assert_eq!(fragment.verify(), Ok(()));
    }
    for case in published["keyfile"].as_array().expect("array") {
        let file = NodeKeyFile::decode(&unhex(&s(&case["encoded"]))).expect("decodes");
        assert_eq!(file.verifying_key().to_string(), s(&case["public"]));
    }
    overlay::check_published(&published);
}
