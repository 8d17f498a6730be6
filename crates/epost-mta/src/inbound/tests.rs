//! The checks end to end over a primed DNS cache: our own signed mail
//! passes, a forgery under `p=reject` is refused, a DNS failure defers.

use std::time::Duration;

use epost_types::time::Timestamp;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::dmarc::Dmarc;
use mail_auth::hickory_resolver::proto::op::ResponseCode;
use mail_auth::spf::Spf;
use mail_auth::{DnsError, Error, Txt};

use super::*;
use crate::dkim::tests::{offline_verifier, publish};
use crate::dkim::{Signer, keys};
use crate::outbound::Sign;

const HOUR: Duration = Duration::from_secs(3600);
const MESSAGE: &[u8] =
    b"From: alice@example.org\r\nTo: bob@other.test\r\nSubject: hi\r\n\r\nHello.\r\n";

fn not_found() -> Txt {
    Txt::Error(Error::Dns(DnsError::RecordNotFound(ResponseCode::NXDomain)))
}

/// A verifier that knows example.org's SPF (192.0.2.10 only), DMARC
/// (`dmarc`) and DKIM keys; and a signer with those keys.
fn world(dmarc: &str) -> (Verifier, Signer) {
    let dir = tempfile::tempdir().unwrap();
    let (keys, _) = keys::ensure(dir.path(), "example.org", Timestamp::now()).unwrap();
    let verifier = offline_verifier();
    publish(&verifier, &keys);
    let cache = verifier.cache();
    for name in ["example.org", "mail.example.org"] {
        cache.prime(name, Spf::parse(b"v=spf1 ip4:192.0.2.10 -all").unwrap(), HOUR);
    }
    cache.prime("_dmarc.example.org", Dmarc::parse(dmarc.as_bytes()).unwrap(), HOUR);
    cache.prime("_dmarc.org", not_found(), HOUR);
    (verifier, Signer::from_keys([keys]))
}

fn mail<'a>(ip: &str, message: &'a [u8]) -> Mail<'a> {
    Mail {
        client_ip: ip.parse().unwrap(),
        helo: "mail.example.org",
        mail_from: Some("alice@example.org"),
        message,
    }
}

#[tokio::test]
async fn our_own_signed_mail_from_the_right_host_passes() {
    let (verifier, signer) = world("v=DMARC1; p=reject");
    let mut message = signer.sign("example.org", MESSAGE).unwrap();
    message.extend_from_slice(MESSAGE);
    let checked = verifier.check(mail("192.0.2.10", &message)).await;
    assert_eq!(checked.verdict, Verdict::Deliver { quarantine: false });
    let header = checked.header.as_deref().unwrap();
    assert!(header.starts_with("Authentication-Results: mx.other.test;"), "{header}");
    assert!(header.contains("spf=pass"), "{header}");
    assert!(header.contains("smtp.mailfrom=alice@example.org"), "{header}");
    assert!(header.contains("smtp.helo=mail.example.org"), "{header}");
    assert!(header.contains("dkim=pass header.d=example.org header.s=epost-ed-"), "{header}");
    assert!(header.contains("header.s=epost-rsa-"), "{header}");
    assert!(header.contains("dmarc=pass header.from=example.org"), "{header}");
    assert!(header.ends_with("\r\n") && !header[..header.len() - 2].contains("\r\n\r\n"));
}

#[tokio::test]
async fn a_forgery_under_p_reject_is_refused_and_under_quarantine_marked() {
    // Unsigned, from a host SPF does not list.
    let (verifier, _) = world("v=DMARC1; p=reject");
    let checked = verifier.check(mail("198.51.100.7", MESSAGE)).await;
    let Verdict::Refuse(reply) = &checked.verdict else { panic!("{checked:?}") };
    assert_eq!((reply.code, reply.status.unwrap().to_string()), (550, "5.7.1".into()));
    assert!(checked.header.as_deref().unwrap().contains("spf=fail"), "{:?}", checked.header);
    assert!(checked.header.as_deref().unwrap().contains("dkim=none"), "{:?}", checked.header);
    assert!(checked.header.as_deref().unwrap().contains("dmarc=fail"), "{:?}", checked.header);

    // Signed, but the body changed on the way.
    let (verifier, signer) = world("v=DMARC1; p=quarantine");
    let mut message = signer.sign("example.org", MESSAGE).unwrap();
    message.extend_from_slice(
        b"From: alice@example.org\r\nTo: bob@other.test\r\nSubject: hi\r\n\r\nChanged.\r\n",
    );
    let checked = verifier.check(mail("198.51.100.7", &message)).await;
    assert_eq!(checked.verdict, Verdict::Deliver { quarantine: true });
    // mail-auth says `neutral` for a body hash that does not match.
    assert!(
        checked.header.as_deref().unwrap().contains("dkim=neutral (body hash did not verify)"),
        "{:?}",
        checked.header
    );
}

#[tokio::test]
async fn a_dns_failure_with_a_reject_at_stake_defers() {
    let (verifier, _) = world("v=DMARC1; p=reject");
    verifier.cache().prime(
        "_dmarc.example.org",
        Txt::Error(Error::Dns(DnsError::Resolver("timed out".into()))),
        HOUR,
    );
    let checked = verifier.check(mail("198.51.100.7", MESSAGE)).await;
    let Verdict::Defer(reply) = &checked.verdict else { panic!("{checked:?}") };
    assert_eq!((reply.code, reply.status.unwrap().to_string()), (451, "4.7.1".into()));
}

#[tokio::test]
async fn the_policy_none_only_records() {
    let (mut verifier, _) = world("v=DMARC1; p=reject");
    verifier.policy = InboundPolicy { dmarc: DmarcMode::None, check_loopback: false };
    let checked = verifier.check(mail("198.51.100.7", MESSAGE)).await;
    assert_eq!(checked.verdict, Verdict::Deliver { quarantine: false });
    assert_eq!(checked.evaluation.outcome, DmarcOutcome::Fail);
    assert_eq!(checked.evaluation.policy, SenderPolicy::Reject);
}

#[tokio::test]
async fn loopback_clients_are_not_checked_unless_asked() {
    let (mut verifier, _) = world("v=DMARC1; p=reject");
    let checked = verifier.check(mail("127.0.0.1", MESSAGE)).await;
    assert_eq!(checked.verdict, Verdict::Deliver { quarantine: false });
    assert_eq!(checked.header, None);
    verifier.policy.check_loopback = true;
    let checked = verifier.check(mail("127.0.0.1", MESSAGE)).await;
    assert!(matches!(checked.verdict, Verdict::Refuse(_)), "{checked:?}");
}
