//! Keys made, written, read back and used; our own signatures verified
//! by mail-auth's verifier against the records `records()` prints.

use std::time::Duration;

use epost_types::time::Timestamp;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::{AuthenticatedMessage, DkimResult, Parameters};

use super::*;
use crate::inbound::{InboundPolicy, Verifier};
use crate::outbound::DnsConfig;

const MESSAGE: &[u8] = b"From: Alice <alice@example.org>\r\n\
To: bob@other.test\r\n\
Subject: hello\r\n\
Date: Thu, 3 Dec 2026 17:00:00 +0000\r\n\
Message-ID: <1@example.org>\r\n\
\r\n\
Hello Bob.\r\n";

/// A verifier whose DNS is nowhere: every answer must be primed.
pub(crate) fn offline_verifier() -> Verifier {
    let dns = DnsConfig { nameservers: vec!["127.0.0.1:1".parse().unwrap()] };
    Verifier::new(&dns, "mx.other.test", InboundPolicy::default()).unwrap()
}

/// Puts a domain's records in the verifier's cache.
pub(crate) fn publish(verifier: &Verifier, keys: &DomainKeys) {
    for record in keys.records() {
        let key = DomainKey::parse(record.value.as_bytes()).unwrap();
        verifier.cache().prime(&record.name, key, Duration::from_secs(3600));
    }
}

async fn dkim_results(verifier: &Verifier, message: &[u8]) -> Vec<DkimResult> {
    let parsed = AuthenticatedMessage::parse(message).unwrap();
    verifier
        .authenticator()
        .verify_dkim(Parameters::new(&parsed).with_txt_cache(verifier.cache()))
        .await
        .iter()
        .map(|output| output.result().clone())
        .collect()
}

fn signed(signer: &Signer, domain: &str, message: &[u8]) -> Vec<u8> {
    let mut out = signer.sign(domain, message).unwrap();
    out.extend_from_slice(message);
    out
}

#[tokio::test]
async fn keys_round_trip_and_both_signatures_verify() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, made) = keys::ensure(dir.path(), "Example.org", Timestamp::now()).unwrap();
    assert!(made);
    assert_eq!(keys.domain(), "example.org");
    let [ed, rsa] = keys.selectors();
    assert!(ed.starts_with("epost-ed-") && rsa.starts_with("epost-rsa-"), "{ed} {rsa}");

    // Again: nothing made, the same records.
    let (again, made) = keys::ensure(dir.path(), "example.org", Timestamp::now()).unwrap();
    assert!(!made);
    assert_eq!(again.records(), keys.records());

    // Files are private.
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(dir.path().join("dkim/example.org")).unwrap() {
        let mode = entry.unwrap().metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let signer = Signer::load(dir.path()).unwrap();
    assert_eq!(signer.domains(), ["example.org"]);
    let message = signed(&signer, "example.org", MESSAGE);
    let text = String::from_utf8_lossy(&message);
    assert_eq!(text.matches("DKIM-Signature:").count(), 2);
    assert!(text.contains("a=ed25519-sha256") && text.contains("a=rsa-sha256"));
    assert!(text.contains("c=relaxed/relaxed"));

    let verifier = offline_verifier();
    publish(&verifier, &keys);
    assert_eq!(dkim_results(&verifier, &message).await, [DkimResult::Pass, DkimResult::Pass]);

    // A changed body fails both (mail-auth says `neutral` for a body
    // hash that does not match, `fail` for a bad signature).
    let tampered = String::from_utf8(message.clone()).unwrap().replace("Hello Bob.", "Pay Eve.");
    let results = dkim_results(&verifier, tampered.as_bytes()).await;
    assert_eq!(results.len(), 2);
    assert!(
        results.iter().all(|r| matches!(r, DkimResult::Neutral(_) | DkimResult::Fail(_))),
        "{results:?}"
    );
    // So does a changed subject.
    let tampered = String::from_utf8(message.clone()).unwrap().replace("hello", "urgent");
    let results = dkim_results(&verifier, tampered.as_bytes()).await;
    assert!(results.iter().all(|r| matches!(r, DkimResult::Fail(_))), "{results:?}");

    // A second From added after signing fails too (From is oversigned).
    let mut added = b"From: mallory@evil.test\r\n".to_vec();
    added.extend_from_slice(&message);
    let results = dkim_results(&verifier, &added).await;
    assert!(results.iter().all(|r| !matches!(r, DkimResult::Pass)), "{results:?}");
}

#[test]
fn no_key_no_signature() {
    let signer = Signer::default();
    assert!(matches!(
        signer.sign("example.org", MESSAGE),
        Err(SignError::NoKey { domain }) if domain == "example.org"
    ));
}

#[test]
fn the_signed_fields_are_those_present_and_from_twice() {
    let message = b"from: a@b\r\nSubject: s\r\nList-Id: <l.b>\r\nX-Other: 1\r\n\r\nbody\r\n";
    assert_eq!(signed_fields(message), ["From", "Subject", "List-Id", "From"]);
}

#[test]
fn a_half_key_set_is_an_error_and_copies_load() {
    let dir = tempfile::tempdir().unwrap();
    keys::ensure(dir.path(), "example.org", Timestamp::now()).unwrap();
    let other = tempfile::tempdir().unwrap();
    keys::copy_domain(dir.path(), other.path(), "example.org").unwrap();
    let original = Signer::load(dir.path()).unwrap();
    let copy = Signer::load(other.path()).unwrap();
    assert_eq!(
        copy.domains.get("example.org").unwrap().records(),
        original.domains.get("example.org").unwrap().records()
    );

    let domain_dir = dir.path().join("dkim/example.org");
    for entry in std::fs::read_dir(&domain_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".rsa.pem") {
            std::fs::remove_file(path).unwrap();
        }
    }
    assert!(matches!(Signer::load(dir.path()), Err(DkimError::Incomplete { .. })));
    // No keys at all is an empty signer.
    assert!(Signer::load(&dir.path().join("nothing")).unwrap().domains().is_empty());
}
