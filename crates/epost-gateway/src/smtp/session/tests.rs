//! The SMTP session fed byte strings, against the in-memory backend.

use epost_types::address::Address;
use epost_types::mailbox::{MailError, Recipient, Route};

use super::{Session, Step};
use crate::backend::MailBackend;
use crate::context::Throttle;
use crate::memory::MemoryBackend;
use crate::smtp::Mode;
use crate::testing::{Fed, Setup, addr, tls};

const LOOPBACK: &str = "127.0.0.1";
const REMOTE: &str = "192.0.2.10";

type Harness = Fed<Session<MemoryBackend>>;

impl Harness {
    fn new(mode: Mode, peer: &str) -> Self {
        Self::with(mode, peer, |_| {})
    }

    /// An SMTP session from `peer` on the MX or submission port, greeting
    /// as mx.example.test, with STARTTLS; `adjust` changes the rest.
    fn with(mode: Mode, peer: &str, adjust: impl FnOnce(&mut Setup)) -> Self {
        let mut setup = Setup { tls: Some(tls()), hostname: "mx.example.test", ..Setup::default() };
        adjust(&mut setup);
        let peer = peer.parse().unwrap();
        let (h, greeting) = Fed::open(setup.start(), |shared| Session::new(shared, mode, peer));
        assert!(greeting.starts_with("220 mx.example.test "), "{greeting}");
        h
    }

    /// Sends and returns the reply codes, one per reply (the last line of
    /// a multi-line reply).
    async fn codes(&mut self, bytes: impl AsRef<[u8]>) -> Vec<u16> {
        let (out, _) = self.send(bytes).await;
        reply_codes(&out)
    }

    async fn login_plain(&mut self, user: &str, password: &str) -> String {
        let token = data_encoding::BASE64.encode(format!("\0{user}\0{password}").as_bytes());
        self.send(format!("AUTH PLAIN {token}\r\n")).await.0
    }
}

fn reply_codes(out: &str) -> Vec<u16> {
    out.split("\r\n")
        .filter(|line| line.len() >= 4 && line.as_bytes()[3] == b' ')
        .filter_map(|line| line[..3].parse().ok())
        .collect()
}

/// Splits a stored message into our Received header and the rest.
fn split_received(raw: &[u8]) -> (String, &[u8]) {
    let text = String::from_utf8_lossy(raw);
    assert!(text.starts_with("Received: from "), "{text}");
    // The header ends at the first CRLF not followed by a tab.
    let mut end = 0;
    while let Some(pos) = raw[end..].windows(2).position(|w| w == b"\r\n") {
        end += pos + 2;
        if raw.get(end) != Some(&b'\t') {
            break;
        }
    }
    (String::from_utf8_lossy(&raw[..end]).into_owned(), &raw[end..])
}

#[tokio::test]
async fn mx_delivers_to_a_local_user_with_a_trace_header() {
    let mut h = Harness::new(Mode::Inbound, REMOTE);
    let (ehlo, _) = h.send("EHLO client.test\r\n").await;
    assert!(ehlo.contains("250-STARTTLS\r\n"), "{ehlo}");
    assert!(ehlo.contains("PIPELINING"), "{ehlo}");
    assert!(!ehlo.contains("AUTH"), "no AUTH on MX: {ehlo}");
    assert_eq!(h.codes("MAIL FROM:<someone@elsewhere.test>\r\n").await, [250]);
    assert_eq!(h.codes("RCPT TO:<bob@example.test>\r\n").await, [250]);
    assert_eq!(h.codes("DATA\r\n").await, [354]);
    let message = b"Subject: hi\r\n\r\n..dot\r\nline\0nul\nbare\r\n";
    let mut stuffed = message.to_vec();
    stuffed.extend_from_slice(b".\r\n");
    let (reply, step) = h.send(&stuffed).await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    assert_eq!(step, Step::Continue);
    let inbox = h.gateway.inbox("bob@example.test").await;
    assert_eq!(inbox.len(), 1);
    let (received, rest) = split_received(&inbox[0]);
    assert!(received.contains("from client.test ([192.0.2.10])"), "{received}");
    assert!(received.contains("by mx.example.test with ESMTP;"), "{received}");
    assert_eq!(rest, b"Subject: hi\r\n\r\n.dot\r\nline\0nul\nbare\r\n");
}

#[tokio::test]
async fn mx_refuses_unknown_users_and_relaying() {
    let mut h = Harness::new(Mode::Inbound, REMOTE);
    h.send("EHLO client.test\r\n").await;
    h.send("MAIL FROM:<x@elsewhere.test>\r\n").await;
    let (unknown, _) = h.send("RCPT TO:<nobody@example.test>\r\n").await;
    assert!(unknown.starts_with("550 5.1.1 "), "{unknown}");
    let (relay, _) = h.send("RCPT TO:<someone@foreign.test>\r\n").await;
    assert!(relay.starts_with("550 5.7.1 "), "{relay}");
    let (data, _) = h.send("DATA\r\n").await;
    assert!(data.starts_with("554 5.5.1 "), "{data}");
    // AUTH is not for the MX port, even from loopback.
    let (auth, _) = h.send("AUTH PLAIN AGFsaWNlAGFsaWNlLXB3\r\n").await;
    assert!(auth.starts_with("503 "), "{auth}");
    assert!(h.gateway.backend.relayed().is_empty());
}

#[tokio::test]
async fn submission_needs_auth_and_tls_away_from_loopback() {
    let mut h = Harness::new(Mode::Submission, REMOTE);
    let (ehlo, _) = h.send("EHLO client.test\r\n").await;
    assert!(!ehlo.contains("AUTH"), "no AUTH in plaintext: {ehlo}");
    let (mail, _) = h.send("MAIL FROM:<alice@example.test>\r\n").await;
    assert!(mail.starts_with("530 5.7.0 "), "{mail}");
    let auth = h.login_plain("alice@example.test", "alice-pw").await;
    assert!(auth.starts_with("530 5.7.0 Must issue STARTTLS first"), "{auth}");
    // STARTTLS: anything pipelined behind it is dropped, then all resets.
    let (reply, step) = h.send("STARTTLS\r\nMAIL FROM:<alice@example.test>\r\n").await;
    assert_eq!((reply.as_str(), step), ("220 2.0.0 Ready to start TLS\r\n", Step::StartTls));
    h.session.tls_started();
    let (mail, _) = h.send("MAIL FROM:<alice@example.test>\r\n").await;
    assert!(mail.starts_with("503 5.5.1 Send HELO"), "state reset after TLS: {mail}");
    let (ehlo, _) = h.send("EHLO client.test\r\n").await;
    assert!(ehlo.contains("AUTH PLAIN LOGIN"), "{ehlo}");
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    let auth = h.login_plain("alice@example.test", "alice-pw").await;
    assert!(auth.starts_with("235 2.7.0 "), "{auth}");
    assert_eq!(
        h.codes("MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n").await,
        [250, 250, 354]
    );
    assert_eq!(h.codes("Subject: x\r\n\r\nhello\r\n.\r\n").await, [250]);
    let inbox = h.gateway.inbox("bob@example.test").await;
    let (received, rest) = split_received(&inbox[0]);
    assert!(received.contains("with ESMTPSA;"), "{received}");
    assert_eq!(rest, b"Subject: x\r\n\r\nhello\r\n");
}

#[tokio::test]
async fn submissions_is_secure_from_its_greeting_so_auth_is_offered_at_once() {
    let setup = Setup { tls: Some(tls()), hostname: "mx.example.test", ..Setup::default() };
    let peer = REMOTE.parse().unwrap();
    let (mut h, greeting) =
        Fed::open(setup.start(), |shared| Session::under_tls(shared, Mode::Submission, peer));
    assert!(greeting.starts_with("220 mx.example.test "), "{greeting}");
    let (ehlo, _) = h.send("EHLO client.test\r\n").await;
    assert!(ehlo.contains("AUTH PLAIN LOGIN") && !ehlo.contains("STARTTLS"), "{ehlo}");
    let auth = h.login_plain("alice@example.test", "alice-pw").await;
    assert!(auth.starts_with("235 2.7.0 "), "{auth}");
    let (again, _) = h.send("STARTTLS\r\n").await;
    assert!(again.starts_with("503 5.5.1 Already under TLS"), "{again}");
}

#[tokio::test]
async fn submission_sender_must_be_the_login_and_relaying_is_configured() {
    let mut h = Harness::new(Mode::Submission, LOOPBACK);
    h.send("EHLO client.test\r\n").await;
    assert!(h.login_plain("alice@example.test", "alice-pw").await.starts_with("235"));
    let (mail, _) = h.send("MAIL FROM:<bob@example.test>\r\n").await;
    assert!(mail.starts_with("553 5.7.1 "), "{mail}");
    assert_eq!(h.codes("MAIL FROM:<alice@EXAMPLE.test>\r\n").await, [250]);
    let (relay, _) = h.send("RCPT TO:<friend@foreign.test>\r\n").await;
    assert!(relay.starts_with("550 5.7.1 "), "{relay}");
    assert_eq!(h.codes("RSET\r\nMAIL FROM:<>\r\n").await, [250, 250]);

    let mut h = Harness::with(Mode::Submission, LOOPBACK, |s| s.relay = true);
    h.send("EHLO client.test\r\n").await;
    h.login_plain("alice@example.test", "alice-pw").await;
    let codes = h
        .codes("MAIL FROM:<alice@example.test>\r\nRCPT TO:<friend@foreign.test>\r\nDATA\r\n")
        .await;
    assert_eq!(codes, [250, 250, 354]);
    assert_eq!(h.codes("hi\r\n.\r\n").await, [250]);
    let relayed = h.gateway.backend.relayed();
    assert_eq!(relayed.len(), 1);
    assert_eq!(relayed[0].0.to, [Recipient::new(addr("friend@foreign.test"), Route::Foreign)]);
    assert_eq!(relayed[0].0.submitter, Some(addr("alice@example.test")));
}

#[tokio::test]
async fn submission_offers_dsn_and_its_parameters_reach_the_envelope() {
    use epost_mta::outbound::{Notify, Ret};

    use crate::backend::{DsnRequest, RcptDsn};

    let mut h = Harness::new(Mode::Inbound, REMOTE);
    let (ehlo, _) = h.send("EHLO client.test\r\n").await;
    assert!(!ehlo.contains("250-DSN\r\n") && !ehlo.contains("250 DSN\r\n"), "{ehlo}");

    let mut h = Harness::with(Mode::Submission, LOOPBACK, |s| s.relay = true);
    let (ehlo, _) = h.send("EHLO client.test\r\n").await;
    assert!(ehlo.contains("250-DSN\r\n") || ehlo.contains("250 DSN\r\n"), "{ehlo}");
    h.login_plain("alice@example.test", "alice-pw").await;
    let codes = h
        .codes(
            "MAIL FROM:<alice@example.test> RET=FULL ENVID=QQ+2B1\r\n\
             RCPT TO:<friend@foreign.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;Friend@foreign.test\r\n\
             RCPT TO:<other@foreign.test>\r\n\
             RCPT TO:<quiet@foreign.test> NOTIFY=NEVER\r\n\
             DATA\r\n",
        )
        .await;
    assert_eq!(codes, [250, 250, 250, 250, 354]);
    assert_eq!(h.codes("hi\r\n.\r\n").await, [250]);
    let relayed = h.gateway.backend.relayed();
    let dsn = &relayed[0].0.dsn;
    let never = Notify { success: false, failure: false, delay: false };
    assert_eq!(
        *dsn,
        DsnRequest {
            ret: Some(Ret::Full),
            envid: Some("QQ+1".into()),
            recipients: vec![
                RcptDsn {
                    address: addr("friend@foreign.test"),
                    notify: Notify { success: true, failure: false, delay: true },
                    orcpt: Some("rfc822;Friend@foreign.test".into()),
                },
                RcptDsn { address: addr("quiet@foreign.test"), notify: never, orcpt: None },
            ],
        }
    );
    assert_eq!(dsn.of(&addr("other@foreign.test")), (Notify::default(), None));
    assert_eq!(dsn.of(&addr("quiet@foreign.test")), (never, None));
    // A bad NOTIFY is a syntax error.
    let (bad, _) = h
        .send("MAIL FROM:<alice@example.test>\r\nRCPT TO:<x@foreign.test> NOTIFY=SOMETIMES\r\n")
        .await;
    assert!(bad.contains("501 5.5.4 "), "{bad}");
}

#[tokio::test]
async fn auth_login_and_the_throttle() {
    let mut h = Harness::with(Mode::Submission, LOOPBACK, |s| {
        s.throttle = Throttle::new(std::time::Duration::from_secs(60), 5, 2);
    });
    h.send("EHLO client.test\r\n").await;
    let b64 = |s: &str| data_encoding::BASE64.encode(s.as_bytes());
    let (challenge, _) = h.send("AUTH LOGIN\r\n").await;
    assert_eq!(challenge, "334 VXNlcm5hbWU6\r\n");
    let (challenge, _) = h.send(format!("{}\r\n", b64("alice@example.test"))).await;
    assert_eq!(challenge, "334 UGFzc3dvcmQ6\r\n");
    let (reply, _) = h.send(format!("{}\r\n", b64("wrong"))).await;
    assert!(reply.starts_with("535 5.7.8 "), "{reply}");
    let (reply, _) = h.send("AUTH PLAIN\r\n*\r\n").await;
    assert_eq!(reply_codes(&reply), [334, 501]);
    assert!(h.login_plain("alice@example.test", "bad").await.starts_with("535"));
    // Locked now: even the right password is refused without a check.
    let locked = h.login_plain("alice@example.test", "alice-pw").await;
    assert!(locked.starts_with("454 4.7.0 "), "{locked}");
    // Another user is not locked out on loopback.
    let (reply, _) =
        h.send(format!("AUTH LOGIN {}\r\n{}\r\n", b64("bob@example.test"), b64("bob-pw"))).await;
    assert_eq!(reply_codes(&reply), [334, 235]);
}

#[tokio::test]
async fn a_guesser_elsewhere_never_locks_the_user_out() {
    let mut setup = Setup { hostname: "mx.example.test", ..Setup::default() };
    setup.throttle = Throttle::new(std::time::Duration::from_secs(60), 1, 2);
    let gateway = setup.start();
    let plain = |user: &str, password: &str| {
        let token = data_encoding::BASE64.encode(format!("\0{user}\0{password}").as_bytes());
        format!("AUTH PLAIN {token}\r\n")
    };
    // Both over TLS (implicit, port 465), as AUTH from afar must be.
    let mut guesser = Session::under_tls(
        gateway.shared.clone(),
        Mode::Submission,
        "198.51.100.66".parse().unwrap(),
    );
    let guesses = format!(
        "EHLO x.test\r\n{}{}{}",
        plain("alice@example.test", "guess-1"),
        plain("alice@example.test", "guess-2"),
        plain("alice@example.test", "alice-pw")
    );
    guesser.feed(guesses.as_bytes()).await;
    let out = String::from_utf8(guesser.take_output()).unwrap();
    let codes: Vec<&str> = out.lines().filter(|l| l.as_bytes().get(3) == Some(&b' ')).collect();
    assert!(codes[2].starts_with("535 ") && codes[3].starts_with("535 "), "{out}");
    assert!(codes[4].starts_with("454 4.7.0 "), "the guesser is stopped: {out}");
    // alice, from her own address, has her password checked.
    let mut alice =
        Session::under_tls(gateway.shared.clone(), Mode::Submission, REMOTE.parse().unwrap());
    alice
        .feed(format!("EHLO laptop.test\r\n{}", plain("alice@example.test", "alice-pw")).as_bytes())
        .await;
    let out = String::from_utf8(alice.take_output()).unwrap();
    assert!(out.contains("\r\n235 "), "{out}");
}

#[tokio::test]
async fn sizes_are_enforced_at_mail_and_during_data() {
    let mut h = Harness::with(Mode::Inbound, REMOTE, |s| s.limits.max_message = 100);
    let (ehlo, _) = h.send("EHLO client.test\r\n").await;
    assert!(ehlo.contains("SIZE 100\r\n"), "{ehlo}");
    let (mail, _) = h.send("MAIL FROM:<x@elsewhere.test> SIZE=101\r\n").await;
    assert!(mail.starts_with("552 5.3.4 "), "{mail}");
    let codes = h
        .codes("MAIL FROM:<x@elsewhere.test> SIZE=50\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
        .await;
    assert_eq!(codes, [250, 250, 354]);
    let big = vec![b'x'; 300];
    assert_eq!(h.codes(&big).await, Vec::<u16>::new());
    assert_eq!(h.codes("\r\n.\r\nNOOP\r\n").await, [552, 250]);
    assert!(h.gateway.inbox("bob@example.test").await.is_empty());
}

#[tokio::test]
async fn long_lines_garbage_and_too_many_errors() {
    let mut h = Harness::with(Mode::Inbound, REMOTE, |s| {
        s.limits.max_line = 64;
        s.limits.max_errors = 5;
    });
    let (reply, _) = h.send(vec![b'A'; 100]).await;
    assert!(reply.starts_with("500 5.5.2 Line too long"), "{reply}");
    // The rest of that line is dropped; the next one is a command.
    assert_eq!(h.codes("AAAA\r\nNOOP\r\n").await, [250]);
    for garbage in [&b"\x00\xff\xfe\r\n"[..], b"MAIL FROM:<<>>\r\n", b"RCPT\r\n"] {
        let (reply, step) = h.send(garbage).await;
        assert!(reply.starts_with('5'), "{reply}");
        assert_eq!(step, Step::Continue);
    }
    let (reply, step) = h.send("FOO\r\n").await;
    assert!(reply.ends_with("421 4.7.0 Too many errors; closing\r\n"), "{reply}");
    assert_eq!(step, Step::Close);
}

#[tokio::test]
async fn arbitrary_bytes_never_panic() {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for _ in 0..200 {
        let mut h = Harness::with(Mode::Submission, LOOPBACK, |s| s.limits.max_line = 128);
        let pick = b"MAIL FROM:<a@b.c>RCPT TO DATA BDAT 3 LAST AUTH PLAIN\r\n.\0\xff ";
        h.babble(&mut seed, 64, pick).await;
    }
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let mut h = Harness::new(Mode::Inbound, REMOTE);
    let batch = "EHLO c.test\r\nMAIL FROM:<x@elsewhere.test>\r\nRCPT TO:<bob@example.test>\r\n\
                 RCPT TO:<nobody@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n\
                 Subject: p\r\n\r\nbody\r\n.\r\nQUIT\r\n";
    let (out, step) = h.send(batch).await;
    assert_eq!(reply_codes(&out), [250, 250, 250, 550, 250, 354, 250, 221]);
    assert_eq!(step, Step::Close);
    assert_eq!(h.gateway.inbox("alice@example.test").await.len(), 1);
    assert_eq!(h.gateway.inbox("bob@example.test").await.len(), 1);
}

#[tokio::test]
async fn bdat_chunks_make_one_message() {
    let mut h = Harness::new(Mode::Inbound, REMOTE);
    h.send("EHLO c.test\r\nMAIL FROM:<>\r\nRCPT TO:<bob@example.test>\r\n").await;
    let (out, _) = h.send("BDAT 5\r\nab\r\n.").await;
    assert_eq!(reply_codes(&out), [250]);
    let (out, _) = h.send("BDAT 3 LAST\r\nxyz").await;
    assert_eq!(reply_codes(&out), [250]);
    let inbox = h.gateway.inbox("bob@example.test").await;
    assert_eq!(split_received(&inbox[0]).1, b"ab\r\n.xyz");
    // A chunk without a transaction is read, then refused.
    let (out, _) = h.send("BDAT 4 LAST\r\nQUITNOOP\r\n").await;
    assert_eq!(reply_codes(&out), [503, 250]);
}

/// A backend whose overlay is down for one domain and for delivery, and
/// which cannot relay to two users hosted elsewhere: `far` (this node is
/// not the realm's MX) and `away` (the MX record cannot be looked up).
#[derive(Clone)]
struct Flaky(MemoryBackend);

impl MailBackend for Flaky {
    type Account = crate::memory::MemoryAccount;

    async fn authenticate(
        &self,
        user: &str,
        password: &str,
    ) -> Result<Address, crate::backend::AuthError> {
        self.0.authenticate(user, password).await
    }

    async fn recipient(&self, rcpt: &Address) -> Result<Route, MailError> {
        if rcpt.domain() == "flaky.test" {
            return Err(MailError::Unavailable { what: "overlay unreachable".into(), cause: None });
        }
        if ["far", "away"].contains(&rcpt.local()) {
            return Ok(Route::Remote);
        }
        self.0.recipient(rcpt).await
    }

    async fn can_announce(&self, _: Option<&Address>, rcpt: &Address) -> Result<(), MailError> {
        match rcpt.local() {
            "far" => Err(MailError::NotAllowed("the MX record does not name this node".into())),
            "away" => {
                Err(MailError::Unavailable { what: "no MX record answer".into(), cause: None })
            }
            _ => Ok(()),
        }
    }

    fn domains(&self) -> Vec<String> {
        vec!["flaky.test".into(), "example.test".into()]
    }

    async fn deliver(&self, _: crate::backend::Envelope, _: bytes::Bytes) -> Result<(), MailError> {
        Err(MailError::Unavailable { what: "no storage quorum".into(), cause: None })
    }

    async fn account(&self, user: &Address) -> Result<crate::memory::MemoryAccount, MailError> {
        self.0.account(user).await
    }
}

#[tokio::test]
async fn backend_trouble_is_a_temporary_failure() {
    let gateway = Setup { hostname: "mx.example.test", ..Setup::default() }.start_over(Flaky);
    let mut session = Session::new(gateway.shared.clone(), Mode::Inbound, REMOTE.parse().unwrap());
    session.take_output();
    let batch = "EHLO c.test\r\nSTARTTLS\r\nMAIL FROM:<>\r\nRCPT TO:<x@flaky.test>\r\n\
                 RCPT TO:<bob@example.test>\r\nDATA\r\nhi\r\n.\r\n";
    assert_eq!(session.feed(batch.as_bytes()).await, Step::Continue);
    let out = String::from_utf8(session.take_output()).unwrap();
    assert!(!out.contains("STARTTLS\r\n"), "no TLS, not offered: {out}");
    let lines: Vec<&str> = out.lines().filter(|l| l.as_bytes().get(3) == Some(&b' ')).collect();
    assert!(lines[1].starts_with("454 4.7.0 "), "{out}");
    assert!(lines[3].starts_with("451 4.4.3 <x@flaky.test>: "), "{out}");
    assert!(lines[6].starts_with("451 4.3.0 Temporary failure: no storage quorum"), "{out}");
}

#[tokio::test]
async fn a_node_that_cannot_relay_to_a_user_elsewhere_says_try_later_at_rcpt() {
    let gateway = Setup { hostname: "mx.example.test", ..Setup::default() }.start_over(Flaky);
    let mut session = Session::new(gateway.shared.clone(), Mode::Inbound, REMOTE.parse().unwrap());
    session.take_output();
    let batch = "EHLO c.test\r\nMAIL FROM:<>\r\nRCPT TO:<far@example.test>\r\n\
                 RCPT TO:<away@example.test>\r\n";
    assert_eq!(session.feed(batch.as_bytes()).await, Step::Continue);
    let out = String::from_utf8(session.take_output()).unwrap();
    let lines: Vec<&str> = out.lines().filter(|l| l.as_bytes().get(3) == Some(&b' ')).collect();
    assert!(
        lines[2].starts_with("451 4.3.5 <far@example.test>: Cannot relay to this user from here: the MX record does not name this node"),
        "{out}"
    );
    assert!(lines[3].starts_with("451 4.4.3 <away@example.test>: "), "{out}");
}

/// The realm's users with a postmaster among them.
const WITH_POSTMASTER: [(&str, &str); 3] = [
    ("alice@example.test", "alice-pw"),
    ("bob@example.test", "bob-pw"),
    ("postmaster@example.test", "pm-pw"),
];

/// Sends one message from outside to `rcpt` (as written) on `mode`;
/// returns the RCPT reply and the reply to the data.
async fn send_to(h: &mut Harness, rcpt: &str) -> (String, String) {
    h.send("EHLO client.test\r\nMAIL FROM:<someone@elsewhere.test>\r\n").await;
    let (rcpt, _) = h.send(format!("RCPT TO:{rcpt}\r\n")).await;
    let (data, _) = h.send("DATA\r\nSubject: to the postmaster\r\n\r\nhi\r\n.\r\n").await;
    (rcpt, data)
}

#[tokio::test]
async fn a_bare_postmaster_is_taken_on_every_port_and_delivered() {
    // postmaster@ the realm, when it is a user; on MX and on submission
    // (after AUTH, as every submission needs).
    let mut mx = Harness::with(Mode::Inbound, REMOTE, |s| s.users = &WITH_POSTMASTER);
    let (rcpt, data) = send_to(&mut mx, "<Postmaster>").await;
    assert!(rcpt.starts_with("250 2.1.5 "), "{rcpt}");
    assert_eq!(reply_codes(&data), [354, 250], "{data}");
    assert_eq!(mx.gateway.inbox("postmaster@example.test").await.len(), 1);
    let mut sub = Harness::with(Mode::Submission, LOOPBACK, |s| s.users = &WITH_POSTMASTER);
    sub.send("EHLO client.test\r\n").await;
    assert!(sub.login_plain("alice@example.test", "alice-pw").await.starts_with("235"));
    assert_eq!(
        sub.codes("MAIL FROM:<alice@example.test>\r\nRCPT TO:<postmaster>\r\nDATA\r\n").await,
        [250, 250, 354]
    );
    assert_eq!(sub.codes("Subject: x\r\n\r\nhi\r\n.\r\n").await, [250]);
    assert_eq!(sub.gateway.inbox("postmaster@example.test").await.len(), 1);
}

#[tokio::test]
async fn the_configured_postmaster_comes_first_and_none_at_all_is_a_clear_refusal() {
    let mut h = Harness::with(Mode::Inbound, REMOTE, |s| {
        s.users = &WITH_POSTMASTER;
        s.postmaster = Some(addr("alice@example.test"));
    });
    let (rcpt, _) = send_to(&mut h, "<postmaster>").await;
    assert!(rcpt.starts_with("250 "), "{rcpt}");
    assert_eq!(h.gateway.inbox("alice@example.test").await.len(), 1);
    assert!(h.gateway.inbox("postmaster@example.test").await.is_empty());

    // No postmaster user and none configured.
    let mut h = Harness::new(Mode::Inbound, REMOTE);
    let (rcpt, _) = send_to(&mut h, "<postmaster>").await;
    assert!(rcpt.starts_with("550 5.1.1 <postmaster>: "), "{rcpt}");
    assert!(rcpt.contains("gateway.postmaster"), "says what to set: {rcpt}");
    // `<>` is no recipient at all.
    h.send("RSET\r\nMAIL FROM:<>\r\n").await;
    let (empty, _) = h.send("RCPT TO:<>\r\n").await;
    assert!(empty.starts_with("501 5.1.3 "), "{empty}");
}

#[tokio::test]
async fn a_postmaster_that_cannot_be_looked_up_now_is_a_temporary_failure() {
    let gateway = Setup { hostname: "mx.example.test", ..Setup::default() }.start_over(Flaky);
    let mut session = Session::new(gateway.shared.clone(), Mode::Inbound, REMOTE.parse().unwrap());
    session.take_output();
    session.feed(b"EHLO c.test\r\nMAIL FROM:<>\r\nRCPT TO:<postmaster>\r\n").await;
    let out = String::from_utf8(session.take_output()).unwrap();
    let last = out.lines().last().unwrap();
    assert!(last.starts_with("451 4.4.3 <postmaster>: Cannot check"), "{out}");
}

/// The realm's users with one whose local part is not ASCII.
const WITH_UTF8: [(&str, &str); 2] =
    [("alice@example.test", "alice-pw"), ("jörg@example.test", "j-pw")];

#[tokio::test]
async fn utf8_addresses_need_smtputf8_in_mail() {
    let mut h = Harness::with(Mode::Inbound, REMOTE, |s| s.users = &WITH_UTF8);
    let (ehlo, _) = h.send("EHLO client.test\r\n").await;
    assert!(ehlo.contains("250-SMTPUTF8\r\n"), "{ehlo}");
    // Without SMTPUTF8: refused, sender or recipient.
    let (mail, _) = h.send("MAIL FROM:<josé@elsewhere.test>\r\n").await;
    assert!(mail.starts_with("553 5.6.7 "), "{mail}");
    assert_eq!(h.codes("MAIL FROM:<jose@elsewhere.test>\r\n").await, [250]);
    let (rcpt, _) = h.send("RCPT TO:<jörg@example.test>\r\n").await;
    assert!(rcpt.starts_with("553 5.6.7 "), "{rcpt}");
    // With it: taken and delivered.
    h.send("RSET\r\n").await;
    assert_eq!(
        h.codes("MAIL FROM:<josé@elsewhere.test> SMTPUTF8\r\nRCPT TO:<jörg@example.test>\r\n")
            .await,
        [250, 250]
    );
    assert_eq!(h.codes("DATA\r\nSubject: grüße\r\n\r\nhallo\r\n.\r\n").await, [354, 250]);
    let inbox = h.gateway.inbox("jörg@example.test").await;
    let (received, rest) = split_received(&inbox[0]);
    assert!(received.contains("with UTF8SMTP;"), "RFC 6531 section 4.3: {received}");
    assert_eq!(rest, "Subject: grüße\r\n\r\nhallo\r\n".as_bytes());
    // An unknown UTF-8 user is still unknown, and the domain rules stay.
    h.send("MAIL FROM:<> SMTPUTF8\r\n").await;
    let (unknown, _) = h.send("RCPT TO:<jürgen@example.test>\r\n").await;
    assert!(unknown.starts_with("550 5.1.1 "), "{unknown}");
    let (idn, _) = h.send("RCPT TO:<jörg@bücher.example>\r\n").await;
    assert!(idn.starts_with("501 5.1.3 "), "{idn}");
}

/// Refuses mail from `forger@`, marks the rest; counts its calls.
#[derive(Default)]
struct FakeChecks {
    calls: std::sync::atomic::AtomicUsize,
}

impl crate::inbound::Verify for FakeChecks {
    fn verify<'a>(
        &'a self,
        mail: crate::inbound::Inbound<'a>,
    ) -> std::pin::Pin<Box<dyn Future<Output = crate::inbound::Checked> + Send + 'a>> {
        use crate::inbound::Checked;
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async move {
            if mail.mail_from.is_some_and(|f| f.starts_with("forger@")) {
                return Checked::Refuse {
                    code: 550,
                    status: [5, 7, 1],
                    text: "Rejected by the DMARC policy of bank.test".into(),
                };
            }
            let mut out = format!("X-Checked: {} {}\r\n", mail.client_ip, mail.helo).into_bytes();
            out.extend_from_slice(mail.message);
            Checked::Deliver(out)
        })
    }
}

#[tokio::test]
async fn mx_mail_is_checked_and_refused_or_marked_and_submission_is_not() {
    let checks = std::sync::Arc::new(FakeChecks::default());
    let inbound = Some(crate::inbound::InboundChecks(checks.clone()));
    let mut h = Harness::with(Mode::Inbound, REMOTE, |s| s.inbound = inbound.clone());
    h.send("EHLO client.test\r\n").await;
    h.send("MAIL FROM:<forger@bank.test>\r\nRCPT TO:<bob@example.test>\r\n").await;
    assert_eq!(h.codes("DATA\r\n").await, [354]);
    let (reply, _) = h.send("Subject: pay\r\n\r\nnow\r\n.\r\n").await;
    assert!(reply.starts_with("550 5.7.1 Rejected by the DMARC policy"), "{reply}");
    assert!(h.gateway.inbox("bob@example.test").await.is_empty());

    // The session goes on; BDAT goes through the same door.
    h.send("MAIL FROM:<friend@elsewhere.test>\r\nRCPT TO:<bob@example.test>\r\n").await;
    let (reply, _) = h.send("BDAT 17 LAST\r\nSubject: hi\r\n\r\nyo").await;
    assert!(reply.starts_with("250 "), "{reply}");
    let inbox = h.gateway.inbox("bob@example.test").await;
    assert_eq!(inbox.len(), 1);
    let text = String::from_utf8_lossy(&inbox[0]);
    assert!(
        text.starts_with("X-Checked: 192.0.2.10 client.test\r\nReceived: from client.test"),
        "{text}"
    );
    assert_eq!(checks.calls.load(std::sync::atomic::Ordering::SeqCst), 2);

    // Submission is our users' own mail: not checked.
    let mut h = Harness::with(Mode::Submission, LOOPBACK, |s| s.inbound = inbound.clone());
    h.send("EHLO me\r\n").await;
    assert!(h.login_plain("alice@example.test", "alice-pw").await.starts_with("235"));
    h.send("MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n").await;
    let (reply, _) = h.send("Subject: hi\r\n\r\nyo\r\n.\r\n").await;
    assert!(reply.starts_with("250 "), "{reply}");
    assert_eq!(checks.calls.load(std::sync::atomic::Ordering::SeqCst), 2);
}
