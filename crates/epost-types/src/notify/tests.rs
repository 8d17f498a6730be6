use super::*;
use crate::capability::ObjectKey;
use crate::id::ObjectId;
use crate::seal::HpkeSecretKey;
use proptest::prelude::*;

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

fn cert_of(keys: &UserKeys) -> Certificate {
    keys.certificate(1, Timestamp(0), Timestamp(u64::MAX))
}

fn capability() -> Capability {
    Capability::new(ObjectId::of(b"message"), ObjectKey::from_bytes([7; 32]))
}

fn notice() -> Notification {
    Notification::new(
        alice().address,
        bob().address,
        Some(capability()),
        "Lunch on Friday?".to_owned(),
        Timestamp(1_000),
    )
    .unwrap()
}

fn sealed() -> SealedNotification {
    Notification::seal(&alice(), &cert_of(&bob()), &notice(), Timestamp(9_000)).unwrap()
}

#[test]
fn seal_decode_open() {
    let notice = notice();
    let sealed = Notification::seal(&alice(), &cert_of(&bob()), &notice, Timestamp(9_000)).unwrap();
    assert_eq!(sealed.inbox, inbox_key(&bob().address));
    assert_eq!(sealed.recipient, bob().verifying_key());
    assert_eq!(sealed.id, sha256_parts(&[&sealed.sealed.enc, &sealed.sealed.ciphertext]));
    let decoded = SealedNotification::decode(&sealed.encode()).unwrap();
    assert_eq!(decoded, sealed);
    let (opened, signer) = decoded.open(&bob()).unwrap();
    assert_eq!(opened, notice);
    assert_eq!(signer, alice().verifying_key());
    assert_eq!(opened.check_sender(&signer, &cert_of(&alice())), Ok(()));
    // Fresh HPKE ephemeral and nonce every time.
    assert_ne!(sealed.id, self::sealed().id);
    assert_ne!(notice.nonce, self::notice().nonce);
}

#[test]
fn plain_text_notices_have_no_capability() {
    let notice = Notification { capability: None, ..notice() };
    let sealed = Notification::seal(&alice(), &cert_of(&bob()), &notice, Timestamp(1)).unwrap();
    assert_eq!(sealed.open(&bob()).unwrap().0, notice);
}

#[test]
fn only_the_recipient_opens() {
    let sealed = sealed();
    // Someone else: another inbox.
    assert_eq!(sealed.open(&alice()).unwrap_err(), OpenNotificationError::WrongInbox);
    // Bob's address but not Bob's HPKE key.
    let impostor = UserKeys { hpke: HpkeSecretKey::derive(&[0x99; 32]), ..bob() };
    assert!(matches!(sealed.open(&impostor), Err(OpenNotificationError::Unseal(_))));
}

#[test]
fn the_sender_is_checked_against_its_certificate() {
    let (opened, signer) = sealed().open(&bob()).unwrap();
    let mallory = user("mallory", 0x61);
    assert_eq!(
        opened.check_sender(&signer, &cert_of(&mallory)),
        Err(OpenNotificationError::SenderNotCertified { from: alice().address })
    );
    // Mallory signing a notice "from alice" with her own key.
    let forged_from = Notification { from: alice().address, ..notice() };
    let mallory_as_alice = UserKeys { address: alice().address, ..mallory };
    let sealed =
        Notification::seal(&mallory_as_alice, &cert_of(&bob()), &forged_from, Timestamp(1))
            .unwrap();
    let (opened, signer) = sealed.open(&bob()).unwrap();
    assert!(opened.check_sender(&signer, &cert_of(&alice())).is_err());
}

#[test]
fn sealing_checks_its_inputs() {
    let carol = user("carol", 0x71);
    assert!(matches!(
        Notification::seal(&carol, &cert_of(&bob()), &notice(), Timestamp(1)),
        Err(SealNotificationError::SenderMismatch { .. })
    ));
    assert!(matches!(
        Notification::seal(&alice(), &cert_of(&carol), &notice(), Timestamp(1)),
        Err(SealNotificationError::RecipientMismatch { .. })
    ));
    let long = "x".repeat(MAX_SUMMARY + 1);
    assert_eq!(
        Notification::new(alice().address, bob().address, None, long.clone(), Timestamp(1))
            .unwrap_err(),
        SealNotificationError::SummaryTooLong { len: MAX_SUMMARY + 1 }
    );
    let too_long = Notification { summary: long, ..notice() };
    assert!(matches!(
        Notification::seal(&alice(), &cert_of(&bob()), &too_long, Timestamp(1)),
        Err(SealNotificationError::SummaryTooLong { .. })
    ));
}

/// Seals an arbitrary envelope to Bob's inbox, as a buggy or hostile
/// sender could.
fn seal_raw(envelope: &SignedEnvelope) -> SealedNotification {
    let inbox = inbox_key(&bob().address);
    let sealed =
        seal::seal_to(&bob().hpke_public(), info::NOTIFICATION, &inbox, &envelope.encode())
            .unwrap();
    SealedNotification {
        v: SEALED_NOTIFICATION_VERSION,
        id: SealedNotification::id_of(&sealed),
        inbox,
        sealed,
        expires: Timestamp(1),
        recipient: bob().verifying_key(),
    }
}

#[test]
fn the_inside_is_checked_too() {
    // Addressed to carol, left in bob's inbox.
    let to_carol = Notification { to: user("carol", 0x71).address, ..notice() };
    let envelope =
        SignedEnvelope::sign(&alice().signing, EnvelopeKind::Notification, cbor::encode(&to_carol))
            .unwrap();
    assert!(matches!(
        seal_raw(&envelope).open(&bob()),
        Err(OpenNotificationError::WrongRecipient { .. })
    ));
    // A receipt is not a notification.
    let receipt =
        SignedEnvelope::sign(&alice().signing, EnvelopeKind::Receipt, cbor::encode(&notice()))
            .unwrap();
    assert!(matches!(
        seal_raw(&receipt).open(&bob()),
        Err(OpenNotificationError::Envelope(EnvelopeError::WrongKind { .. }))
    ));
    // A relabelled id is noticed before any decryption.
    let mut relabelled = sealed();
    relabelled.id[0] ^= 1;
    assert_eq!(relabelled.open(&bob()).unwrap_err(), OpenNotificationError::IdMismatch);
    assert_eq!(
        SealedNotification::decode(&relabelled.encode()).unwrap_err(),
        OpenNotificationError::IdMismatch
    );
}

#[test]
fn the_largest_notification_fits() {
    let local = "x".repeat(64);
    let domain = vec!["y".repeat(61); 3].join(".");
    let long: Address = format!("{local}@{domain}").parse().unwrap();
    let sender = UserKeys { address: long.clone(), ..alice() };
    let recipient = UserKeys { address: long.clone(), ..bob() };
    let notice = Notification {
        from: long.clone(),
        to: long,
        summary: "é".repeat(MAX_SUMMARY / 2),
        ..notice()
    };
    let sealed = Notification::seal(&sender, &cert_of(&recipient), &notice, Timestamp(1)).unwrap();
    assert!(sealed.encode().len() <= MAX_NOTIFICATION / 2, "{}", sealed.encode().len());
    assert_eq!(sealed.open(&recipient).unwrap().0, notice);
    let oversized = vec![0u8; MAX_NOTIFICATION + 1];
    assert!(matches!(
        SealedNotification::decode(&oversized),
        Err(OpenNotificationError::Decode(DecodeError::TooLarge { .. }))
    ));
}

#[test]
fn debug_hides_the_summary() {
    let shown = format!("{:?}", notice());
    assert!(!shown.contains("Lunch"));
    assert!(!shown.contains(&crate::text::encode(&[7; 32])));
}

#[test]
fn receipts() {
    let inbox = inbox_key(&bob().address);
    let receipt = Receipt::new(inbox, vec![sealed().id, [2; 32]], Timestamp(5));
    let envelope = Receipt::sign(&bob().signing, &receipt).unwrap();
    let decoded = SignedEnvelope::decode(&envelope.encode()).unwrap();
    assert_eq!(Receipt::verify(&decoded, &bob().verifying_key()), Ok(receipt.clone()));
    assert!(matches!(
        Receipt::verify(&decoded, &alice().verifying_key()),
        Err(ReceiptError::WrongSigner { .. })
    ));
    let empty = Receipt::new(inbox, vec![], Timestamp(5));
    assert_eq!(Receipt::sign(&bob().signing, &empty), Err(ReceiptError::BadIdCount { count: 0 }));
    let over = Receipt::new(inbox, vec![[1; 32]; MAX_RECEIPT_IDS + 1], Timestamp(5));
    assert!(matches!(Receipt::sign(&bob().signing, &over), Err(ReceiptError::BadIdCount { .. })));
    let full = Receipt::new(inbox, vec![[1; 32]; MAX_RECEIPT_IDS], Timestamp(u64::MAX));
    let envelope = Receipt::sign(&bob().signing, &full).unwrap();
    let decoded = SignedEnvelope::decode(&envelope.encode()).unwrap();
    assert_eq!(Receipt::verify(&decoded, &bob().verifying_key()), Ok(full));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A flipped bit anywhere in a buffered notification never opens as a
    /// (different) notice. Flips in `expires` and `recipient` are
    /// bookkeeping fields, not covered by anything, and open unchanged.
    #[test]
    fn any_flipped_bit_in_a_sealed_notification(bit in any::<prop::sample::Index>()) {
        let sealed = sealed();
        let mut bytes = sealed.encode();
        let at = bit.index(bytes.len() * 8);
        bytes[at / 8] ^= 1 << (at % 8);
        if let Ok(changed) = SealedNotification::decode(&bytes)
            && let Ok((opened, signer)) = changed.open(&bob())
        {
            prop_assert_eq!(opened, notice_of(&sealed));
            prop_assert_eq!(signer, alice().verifying_key());
            prop_assert_eq!(&changed.sealed, &sealed.sealed);
            prop_assert_eq!(changed.id, sealed.id);
        }
    }

    #[test]
    fn any_flipped_bit_in_the_sealed_bytes_is_refused(bit in any::<prop::sample::Index>()) {
        let mut sealed = sealed();
        let at = bit.index((32 + sealed.sealed.ciphertext.len()) * 8);
        if at < 256 {
            sealed.sealed.enc[at / 8] ^= 1 << (at % 8);
        } else {
            let at = at - 256;
            sealed.sealed.ciphertext[at / 8] ^= 1 << (at % 8);
        }
        // With the id recomputed, as a forger would: it still must not open.
        sealed.id = SealedNotification::id_of(&sealed.sealed);
        prop_assert!(sealed.open(&bob()).is_err());
    }

    #[test]
    fn any_flipped_bit_in_a_receipt_is_refused(bit in any::<prop::sample::Index>()) {
        let receipt = Receipt::new(inbox_key(&bob().address), vec![[3; 32]; 3], Timestamp(5));
        let mut bytes = Receipt::sign(&bob().signing, &receipt).unwrap().encode();
        let at = bit.index(bytes.len() * 8);
        bytes[at / 8] ^= 1 << (at % 8);
        let accepted = SignedEnvelope::decode(&bytes)
            .ok()
            .and_then(|e| Receipt::verify(&e, &bob().verifying_key()).ok());
        prop_assert!(accepted.is_none(), "accepted {:?}", accepted);
    }
}

/// The notice inside `sealed`, opened by Bob.
fn notice_of(sealed: &SealedNotification) -> Notification {
    sealed.open(&bob()).unwrap().0
}

#[test]
fn a_relayed_notice_holds_only_while_the_mx_record_names_its_node() {
    let node = SigningKey::from_seed([0x61; 32]);
    let relay = relay_address("example.org").unwrap();
    let relayed = Notification { from: relay, ..notice() };
    let sealed =
        Notification::seal_relayed(&node, &cert_of(&bob()), &relayed, Timestamp(9_000)).unwrap();
    let (opened, signer) = sealed.open(&bob()).unwrap();
    assert!(opened.is_relayed());
    assert_eq!(signer, node.verifying_key());
    let named = |nodes, domain| MxRecord::new(domain, nodes, 1, Timestamp(0), Timestamp(10));
    let mx = named(vec![node.verifying_key()], "Example.org");
    assert_eq!(opened.check_relay(&signer, &mx), Ok(()));
    // Another node, or another realm's record, does not do.
    let other = named(vec![alice().verifying_key()], "example.org");
    assert!(matches!(
        opened.check_relay(&signer, &other),
        Err(OpenNotificationError::RelayNotNamed { .. })
    ));
    let elsewhere = named(vec![node.verifying_key()], "elsewhere.org");
    assert!(opened.check_relay(&signer, &elsewhere).is_err());
    // A user's notice is not relayed, however its signer is named.
    let plain = notice();
    assert!(!plain.is_relayed());
    assert!(matches!(
        plain.check_relay(&signer, &mx),
        Err(OpenNotificationError::SenderNotCertified { .. })
    ));
    assert!(matches!(
        Notification::seal_relayed(&node, &cert_of(&bob()), &plain, Timestamp(9_000)),
        Err(SealNotificationError::NotRelayAddress { .. })
    ));
}
