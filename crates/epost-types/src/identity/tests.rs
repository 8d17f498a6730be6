use super::*;
use proptest::prelude::*;

fn realm() -> SigningKey {
    SigningKey::from_seed([0x10; 32])
}

fn trust() -> TrustedRealms {
    let mut trust = TrustedRealms::new();
    trust.trust("Example.ORG", realm().verifying_key()).unwrap();
    trust
}

fn alice() -> UserKeys {
    UserKeys {
        address: "alice@example.org".parse().unwrap(),
        signing: SigningKey::from_seed([0x11; 32]),
        hpke: HpkeSecretKey::derive(&[0x12; 32]),
    }
}

fn cert() -> Certificate {
    alice().certificate(7, Timestamp(1_000), Timestamp(10_000))
}

fn presence() -> Presence {
    Presence::new(
        alice().address,
        vec![vec![0, 36, 8, 1, 18, 32, 7, 7]],
        vec!["/ip4/127.0.0.1/tcp/4001".to_owned()],
        Timestamp(5_000),
    )
}

#[test]
fn trust_is_per_domain_and_case_insensitive() {
    let trust = trust();
    assert!(trust.is_trusted("example.org", &realm().verifying_key()));
    assert!(trust.is_trusted("EXAMPLE.org", &realm().verifying_key()));
    assert!(!trust.is_trusted("example.com", &realm().verifying_key()));
    assert!(!trust.is_trusted("example.org", &alice().verifying_key()));
    assert_eq!(trust.domains().collect::<Vec<_>>(), ["example.org"]);
    assert_eq!(trust.keys("example.org").count(), 1);
    let mut bad = TrustedRealms::new();
    assert!(bad.trust("example .org", realm().verifying_key()).is_err());
    assert!(bad.is_empty());
}

#[test]
fn a_key_trusted_for_any_domain_certifies_every_domain_and_only_that_key() {
    let mut trust = TrustedRealms::new();
    trust.trust(ANY_DOMAIN, realm().verifying_key()).unwrap();
    assert!(trust.is_trusted("example.org", &realm().verifying_key()));
    assert!(trust.is_trusted("other.test", &realm().verifying_key()));
    assert!(!trust.is_trusted("example.org", &alice().verifying_key()));
    let json = serde_json::to_string(&trust).unwrap();
    assert_eq!(serde_json::from_str::<TrustedRealms>(&json).unwrap(), trust);
}

#[test]
fn trust_round_trips_through_config_text() {
    let trust = trust();
    let json = serde_json::to_string(&trust).unwrap();
    assert_eq!(json, format!("{{\"example.org\":[\"{}\"]}}", realm().verifying_key()));
    assert_eq!(serde_json::from_str::<TrustedRealms>(&json).unwrap(), trust);
    // Domains are canonicalised on load, and merge.
    let mixed = format!(
        "{{\"Example.org\":[\"{k}\"],\"example.ORG\":[\"{k}\"]}}",
        k = realm().verifying_key()
    );
    assert_eq!(serde_json::from_str::<TrustedRealms>(&mixed).unwrap(), trust);
    let typo = format!("{{\"example..org\":[\"{}\"]}}", realm().verifying_key());
    let error = serde_json::from_str::<TrustedRealms>(&typo).unwrap_err().to_string();
    assert!(error.contains("example..org"), "{error}");
}

#[test]
fn certificate_issue_and_verify() {
    let envelope = Certificate::issue(&realm(), &cert()).unwrap();
    assert_eq!(envelope.kind, EnvelopeKind::Certificate);
    let decoded = SignedEnvelope::decode(&envelope.encode()).unwrap();
    assert_eq!(Certificate::verify(&decoded, &trust(), Timestamp(9_999)), Ok(cert()));
    // Valid from the moment of use even before `issued` (clock skew).
    assert_eq!(Certificate::verify(&decoded, &trust(), Timestamp(0)), Ok(cert()));
}

#[test]
fn certificate_refusals_say_why() {
    let envelope = Certificate::issue(&realm(), &cert()).unwrap();
    assert!(matches!(
        Certificate::verify(&envelope, &trust(), Timestamp(10_000)),
        Err(CertError::Expired { expires: Timestamp(10_000), .. })
    ));
    assert!(matches!(
        Certificate::verify(&envelope, &TrustedRealms::new(), Timestamp(5_000)),
        Err(CertError::Untrusted { .. })
    ));
    // Self-signed by the user: untrusted.
    let own = Certificate::issue(&alice().signing, &cert()).unwrap();
    assert!(matches!(
        Certificate::verify(&own, &trust(), Timestamp(5_000)),
        Err(CertError::Untrusted { .. })
    ));
    // A realm trusted for another domain cannot certify this one.
    let mut other = TrustedRealms::new();
    other.trust("example.com", realm().verifying_key()).unwrap();
    assert!(matches!(
        Certificate::verify(&envelope, &other, Timestamp(5_000)),
        Err(CertError::Untrusted { .. })
    ));
    // A presence signature is not a certificate.
    let wrong_kind =
        SignedEnvelope::sign(&realm(), EnvelopeKind::Presence, envelope.payload.clone()).unwrap();
    assert!(matches!(
        Certificate::verify(&wrong_kind, &trust(), Timestamp(5_000)),
        Err(CertError::Envelope(EnvelopeError::WrongKind { .. }))
    ));
    let mut backwards = cert();
    backwards.expires = backwards.issued;
    assert!(matches!(Certificate::issue(&realm(), &backwards), Err(CertError::BadValidity { .. })));
    let message =
        CertError::Expired { address: cert().address, expires: Timestamp(1), now: Timestamp(2) }
            .to_string();
    assert!(message.contains("alice@example.org") && message.contains("new one"), "{message}");
}

#[test]
fn presence_sign_and_verify() {
    let envelope = Presence::sign(&alice().signing, &presence()).unwrap();
    let decoded = SignedEnvelope::decode(&envelope.encode()).unwrap();
    assert_eq!(Presence::verify(&decoded, &alice().verifying_key()), Ok(presence()));
    let stranger = SigningKey::from_seed([0x66; 32]);
    let forged = Presence::sign(&stranger, &presence()).unwrap();
    assert!(matches!(
        Presence::verify(&forged, &alice().verifying_key()),
        Err(PresenceError::WrongSigner { .. })
    ));
    // Holders can only check that it is self-consistent.
    assert_eq!(Presence::verify_signature(&forged), Ok(presence()));
}

#[test]
fn presence_bounds() {
    let key = alice().signing;
    let sign = |p: Presence| Presence::sign(&key, &p).map(|_| ());
    assert_eq!(sign(Presence { peers: vec![], ..presence() }), Err(PresenceError::NoPeers));
    assert_eq!(
        sign(Presence { peers: vec![vec![1]; 9], ..presence() }),
        Err(PresenceError::TooManyPeers { count: 9 })
    );
    assert_eq!(
        sign(Presence { peers: vec![vec![1], vec![2; 65]], ..presence() }),
        Err(PresenceError::BadPeerId { index: 1, len: 65 })
    );
    assert_eq!(
        sign(Presence { addrs: vec!["/a".into(); 17], ..presence() }),
        Err(PresenceError::TooManyAddrs { count: 17 })
    );
    assert_eq!(
        sign(Presence { addrs: vec![String::new()], ..presence() }),
        Err(PresenceError::BadAddr { index: 0, len: 0 })
    );
    // The largest presence fits a DHT record.
    let largest = Presence {
        peers: vec![vec![0xff; crate::limits::MAX_PEER_ID]; MAX_PRESENCE_PEERS],
        addrs: vec!["x".repeat(MAX_MULTIADDR); MAX_PRESENCE_ADDRS],
        ..presence()
    };
    let envelope = Presence::sign(&key, &largest).unwrap();
    assert!(envelope.encode().len() <= crate::limits::MAX_RECORD);
}

#[test]
fn newest_presence_ignores_forgeries() {
    let cert = cert();
    let older = Presence::sign(&alice().signing, &presence()).unwrap().encode();
    let newer =
        Presence::sign(&alice().signing, &Presence { time: Timestamp(6_000), ..presence() })
            .unwrap()
            .encode();
    let stranger = SigningKey::from_seed([0x66; 32]);
    let forged = Presence::sign(&stranger, &Presence { time: Timestamp(u64::MAX), ..presence() })
        .unwrap()
        .encode();
    let picked = Presence::newest([&older[..], &forged[..], &newer[..], b"junk"], &cert).unwrap();
    assert_eq!(picked.time, Timestamp(6_000));
    assert_eq!(Presence::newest([&forged[..]], &cert), None);
}

#[test]
fn user_keys_debug_redacts() {
    let keys = alice();
    let shown = format!("{keys:?}");
    assert!(shown.contains("alice@example.org") && shown.contains("redacted"));
    assert!(!shown.contains(&crate::text::encode(keys.signing.seed_bytes().as_ref())));
    assert!(!shown.contains(&crate::text::encode(keys.hpke.to_bytes().as_ref())));
    let fresh = UserKeys::generate(keys.address.clone()).unwrap();
    assert_ne!(fresh.verifying_key(), keys.verifying_key());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A flipped bit anywhere in an encoded certificate is refused:
    /// never a trusted certificate with different contents.
    #[test]
    fn any_flipped_bit_in_a_certificate_is_refused(bit in any::<prop::sample::Index>()) {
        let mut bytes = Certificate::issue(&realm(), &cert()).unwrap().encode();
        let at = bit.index(bytes.len() * 8);
        bytes[at / 8] ^= 1 << (at % 8);
        let accepted = SignedEnvelope::decode(&bytes)
            .ok()
            .and_then(|e| Certificate::verify(&e, &trust(), Timestamp(5_000)).ok());
        prop_assert!(accepted.is_none(), "accepted {:?}", accepted);
    }

    #[test]
    fn any_flipped_bit_in_a_presence_is_refused(bit in any::<prop::sample::Index>()) {
        let mut bytes = Presence::sign(&alice().signing, &presence()).unwrap().encode();
        let at = bit.index(bytes.len() * 8);
        bytes[at / 8] ^= 1 << (at % 8);
        let accepted = SignedEnvelope::decode(&bytes)
            .ok()
            .and_then(|e| Presence::verify(&e, &alice().verifying_key()).ok());
        prop_assert!(accepted.is_none(), "accepted {:?}", accepted);
    }
}
