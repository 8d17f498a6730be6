//! Signed and authenticated objects cut short, or with any one byte
//! replaced by any other value, are refused (the per-module tests flip
//! single bits; this covers whole-byte changes and truncation).

use proptest::prelude::*;

use super::{CRYPTO_CASES, alice, bob, realm, samples};
use crate::convergent::{self, ConvergenceSecret, Kind};
use crate::envelope::SignedEnvelope;
use crate::fragment::Fragment;
use crate::identity::bundle::UserBundle;
use crate::identity::password::Argon2idParams;
use crate::identity::{Certificate, Presence, TrustedRealms};
use crate::keyfile::NodeKeyFile;
use crate::log::{LogKey, open_entry, seal_entry};
use crate::notify::{Receipt, SealedNotification};
use crate::record::{RecordKey, validate_record};
use crate::time::Timestamp;

/// How an object is damaged: cut at a position, or one byte changed.
#[derive(Debug, Clone)]
enum Damage {
    Cut(prop::sample::Index),
    Change(prop::sample::Index, u8),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<prop::sample::Index>().prop_map(Damage::Cut),
        (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(at, delta)| Damage::Change(at, delta)),
    ]
}

fn apply(mut bytes: Vec<u8>, damage: &Damage) -> Vec<u8> {
    match damage {
        // Strictly shorter: from empty to all but the last byte.
        Damage::Cut(at) => bytes.truncate(at.index(bytes.len())),
        Damage::Change(at, delta) => {
            let at = at.index(bytes.len());
            bytes[at] ^= delta;
        }
    }
    bytes
}

fn trust() -> TrustedRealms {
    let mut trust = TrustedRealms::new();
    trust.trust("example.org", realm().verifying_key()).unwrap();
    trust
}

/// Tiny Argon2id costs: the property is about the AEAD, not the KDF.
const TINY: Argon2idParams = Argon2idParams { m_cost: 8, t_cost: 1, p_cost: 1 };

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CRYPTO_CASES))]

    /// Every DHT record kind: refused by the holder's rule.
    #[test]
    fn records(which in 0u8..3, damage in damage()) {
        let (key, value) = match which {
            0 => {
                let cert = samples::certificate();
                let value = Certificate::issue(&realm(), &cert).unwrap().encode();
                (RecordKey::for_certificate(&cert.address), value)
            }
            1 => {
                let presence = samples::presence();
                let value = Presence::sign(&alice().signing, &presence).unwrap().encode();
                (RecordKey::for_presence(&presence.address), value)
            }
            _ => {
                let head = samples::head();
                let value = crate::log::LogHead::sign(&alice().signing, &head).unwrap().encode();
                (RecordKey::from(head.log), value)
            }
        };
        let now = Timestamp(5_000);
        prop_assert_eq!(validate_record(&key.encode(), &value, None, &trust(), now), Ok(()));
        let bad = apply(value, &damage);
        prop_assert!(validate_record(&key.encode(), &bad, None, &trust(), now).is_err());
    }

    /// A receipt: refused by decode or verify.
    #[test]
    fn receipts(damage in damage()) {
        let bytes = Receipt::sign(&bob().signing, &samples::receipt()).unwrap().encode();
        let bad = apply(bytes, &damage);
        let accepted = SignedEnvelope::decode(&bad)
            .ok()
            .and_then(|e| Receipt::verify(&e, &bob().verifying_key()).ok());
        prop_assert!(accepted.is_none(), "accepted {:?}", accepted);
    }

    /// A sealed notification never opens as a different notice. Changes
    /// to the unauthenticated bookkeeping fields (`expires`,
    /// `recipient`) may leave it opening as the same one.
    #[test]
    fn sealed_notifications(damage in damage()) {
        let sealed = samples::sealed_notification();
        let bad = apply(sealed.encode(), &damage);
        if let Ok(changed) = SealedNotification::decode(&bad)
            && let Ok((opened, signer)) = changed.open(&bob())
        {
            prop_assert!(matches!(damage, Damage::Change(..)));
            prop_assert_eq!(opened, samples::notification());
            prop_assert_eq!(signer, alice().verifying_key());
            prop_assert_eq!(changed.sealed, sealed.sealed);
        }
    }

    /// A fragment cut short is refused; a changed byte never yields
    /// other data under the fragment's own hash.
    #[test]
    fn fragments(damage in damage()) {
        let original = samples::fragment();
        let bad = apply(original.encode(), &damage);
        let accepted = Fragment::decode(&bad).ok().filter(|f| f.verify().is_ok());
        if let Some(fragment) = accepted {
            prop_assert!(matches!(damage, Damage::Change(..)));
            prop_assert_eq!(&fragment.data, &original.data);
            prop_assert_ne!(fragment, original);
        }
    }

    #[test]
    fn key_files(damage in damage()) {
        let bytes = NodeKeyFile::new(&alice().signing).encode().to_vec();
        prop_assert!(NodeKeyFile::decode(&apply(bytes, &damage)).is_err());
    }

    #[test]
    fn user_bundles(wrapped in any::<bool>(), damage in damage()) {
        let keys = alice();
        let cert = keys.certificate(1, Timestamp(0), Timestamp(10_000));
        let bundle = UserBundle::new(keys, Certificate::issue(&realm(), &cert).unwrap()).unwrap();
        let bytes = if wrapped { bundle.wrap_with("pw", TINY).unwrap() } else { bundle.encode_plain().to_vec() };
        let decoded = UserBundle::decode(&apply(bytes, &damage), Some("pw"));
        prop_assert!(decoded.is_err(), "accepted {:?}", decoded);
    }

    /// Storage objects (log entries among them): the id, tag and framing
    /// checks refuse any damage.
    #[test]
    fn objects(entry in any::<bool>(), damage in damage()) {
        let sample = samples::log_entry();
        let key = LogKey::derive(&alice().signing, &sample.log);
        let sealed = if entry {
            seal_entry(&key, &sample).unwrap()
        } else {
            convergent::seal(&ConvergenceSecret::global(), Kind::Manifest, &samples::manifest().encode())
        };
        let bad = apply(sealed.ciphertext.clone(), &damage);
        prop_assert!(convergent::open(&sealed.capability(), &bad).is_err());
        prop_assert!(open_entry(&sealed.capability(), &bad, &sample.log, 2).is_err());
    }
}
