//! The gateway under hostile clients, over real sockets: login guessing
//! slowed then locked out, TLS below 1.2 refused, sessions past the limit
//! told to come back later, and slow-loris clients cut off.
//!
//! Covered elsewhere, not repeated here: no open relay on the MX port and
//! no mail without AUTH on submission (`smtp.rs`:
//! `mx_takes_mail_for_users_without_auth_and_refuses_the_rest`,
//! `submission_on_loopback_without_tls_and_its_refusals`, and the
//! session test `submission_needs_auth_and_tls_away_from_loopback`);
//! SMTP DATA past SIZE gets 552 (`smtp.rs`:
//! `oversize_is_refused_at_mail_and_after_data`); an IMAP literal over
//! the limit is refused without a continuation, and a LITERAL+ one with
//! BYE (`imap.rs`: `bad_input_gets_replies_and_the_session_goes_on`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use epost_gateway::GatewayConfig;
use epost_gateway::backend::Account;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::fixture::Running;

/// A line-oriented raw client.
struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Client {
    async fn connect(to: Option<std::net::SocketAddr>) -> Self {
        let stream = TcpStream::connect(to.expect("listener configured")).await.unwrap();
        let (read, writer) = stream.into_split();
        Self { reader: BufReader::new(read), writer }
    }

    /// The next line ("" at EOF).
    async fn line(&mut self) -> String {
        let mut line = Vec::new();
        // A reset after the server's last words is an end too.
        let _ = self.reader.read_until(b'\n', &mut line).await;
        String::from_utf8_lossy(&line).into_owned()
    }

    async fn say(&mut self, bytes: impl AsRef<[u8]>) {
        self.writer.write_all(bytes.as_ref()).await.unwrap();
    }

    /// Sends a line, then reads to the last line of the reply (SMTP's
    /// `NNN-` continuation lines are skipped).
    async fn ask(&mut self, line: &str) -> String {
        self.say(format!("{line}\r\n")).await;
        loop {
            let reply = self.line().await;
            if reply.len() < 4 || reply.as_bytes()[3] != b'-' {
                return reply;
            }
        }
    }

    /// Whether the server has closed: the next read is EOF (or a reset).
    async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        let _ = self.reader.read_to_end(&mut rest).await;
        rest.is_empty()
    }

    /// Sends `start`, then one byte every 300 ms, from another task, until
    /// the server closes (or a minute passes): a slow-loris client.
    fn trickle(self, start: &'static [u8]) -> BufReader<OwnedReadHalf> {
        let Client { reader, mut writer } = self;
        tokio::spawn(async move {
            if writer.write_all(start).await.is_err() {
                return;
            }
            for _ in 0..200 {
                tokio::time::sleep(Duration::from_millis(300)).await;
                if writer.write_all(b"x").await.is_err() {
                    return;
                }
            }
        });
        reader
    }
}

/// Reads lines until EOF; returns them and how long that took.
async fn until_closed(reader: &mut BufReader<OwnedReadHalf>) -> (Vec<String>, Duration) {
    let started = Instant::now();
    let mut lines = Vec::new();
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return (lines, started.elapsed()),
            Ok(_) => lines.push(String::from_utf8_lossy(&line).into_owned()),
        }
    }
}

// ---- (b) login guessing ------------------------------------------------------

/// One free failure, then 200 ms more per failure, locked from the third.
fn guessing(config: &mut GatewayConfig) {
    config.limits.login_free_failures = 1;
    config.limits.login_lockout = 3;
    config.limits.login_window = Duration::from_secs(3600);
}

/// Tries `attempts` wrong passwords and then the right one, timing each
/// reply; `login(client, password)` performs one attempt.
async fn guess<F>(mut client: Client, attempts: usize, login: F) -> Vec<(String, Duration)>
where
    F: AsyncFn(&mut Client, String) -> String,
{
    let mut replies = Vec::new();
    for i in 0..=attempts {
        let password = if i == attempts { "alice-pw".to_owned() } else { format!("guess-{i}") };
        let started = Instant::now();
        let reply = login(&mut client, password).await;
        replies.push((reply, started.elapsed()));
    }
    replies
}

fn plain(user: &str, password: &str) -> String {
    let mut raw = vec![0u8];
    raw.extend_from_slice(user.as_bytes());
    raw.push(0);
    raw.extend_from_slice(password.as_bytes());
    data_encoding::BASE64.encode(&raw)
}

/// The replies of a guessing run: failures answered ever more slowly,
/// then locked (`locked` prefix) even for the right password.
fn assert_slowed_then_locked(replies: &[(String, Duration)], failed: &str, locked: &str) {
    let ms = |n| Duration::from_millis(n);
    for (i, (reply, _)) in replies[..3].iter().enumerate() {
        assert!(reply.starts_with(failed), "attempt {i}: {reply}");
    }
    // Upper bounds leave room for a loaded machine: a fourth counted
    // failure would have waited 600 ms.
    assert!(replies[0].1 < ms(600), "the first failure is not delayed: {replies:?}");
    assert!(replies[1].1 >= ms(200), "the second failure waits 200 ms: {replies:?}");
    assert!(replies[2].1 >= ms(400), "the third failure waits 400 ms: {replies:?}");
    for (reply, took) in &replies[3..] {
        assert!(reply.starts_with(locked), "locked out: {reply}");
        assert!(*took < ms(600), "a locked login is refused at once: {replies:?}");
    }
}

#[tokio::test]
async fn smtp_auth_guessing_is_slowed_then_locked_out() {
    let running = Running::start_with(guessing).await;
    let mut client = Client::connect(running.gateway.addrs.submission).await;
    assert!(client.line().await.starts_with("220 "));
    assert!(client.ask("EHLO guesser.test").await.starts_with("250 "));
    let replies = guess(client, 4, async |client: &mut Client, password: String| {
        client.ask(&format!("AUTH PLAIN {}", plain("alice@example.test", &password))).await
    })
    .await;
    assert_slowed_then_locked(&replies, "535 ", "454 ");
    // Another user is not locked out (on loopback, the address is the key).
    let mut bob = Client::connect(running.gateway.addrs.submission).await;
    bob.line().await;
    bob.ask("EHLO bob.test").await;
    let reply = bob.ask(&format!("AUTH PLAIN {}", plain("bob@example.test", "bob-pw"))).await;
    assert!(reply.starts_with("235 "), "{reply}");
}

#[tokio::test]
async fn imap_login_guessing_is_slowed_then_locked_out() {
    let running = Running::start_with(guessing).await;
    let mut client = Client::connect(running.gateway.addrs.imap).await;
    assert!(client.line().await.starts_with("* OK "));
    let replies = guess(client, 4, async |client: &mut Client, password: String| {
        client.ask(&format!("a LOGIN alice@example.test {password}")).await
    })
    .await;
    assert_slowed_then_locked(&replies, "a NO [AUTHENTICATIONFAILED]", "a NO [UNAVAILABLE]");
}

#[tokio::test]
async fn pop3_login_guessing_is_slowed_then_locked_out() {
    let running = Running::start_with(guessing).await;
    let mut client = Client::connect(running.gateway.addrs.pop3).await;
    assert!(client.line().await.starts_with("+OK "));
    let replies = guess(client, 4, async |client: &mut Client, password: String| {
        assert!(client.ask("USER alice@example.test").await.starts_with("+OK "));
        client.ask(&format!("PASS {password}")).await
    })
    .await;
    assert_slowed_then_locked(&replies, "-ERR [AUTH]", "-ERR [SYS/TEMP]");
}

// ---- (c) TLS 1.2 and 1.3 only --------------------------------------------------

/// A ClientHello offering only `version` (0x0301 TLS 1.0, 0x0302 TLS 1.1),
/// without a supported_versions extension but with everything else a
/// modern client sends, so the version is the only thing wrong with it.
fn legacy_client_hello(version: u16) -> Vec<u8> {
    let mut extensions = Vec::new();
    let mut extension = |kind: u16, body: &[u8]| {
        extensions.extend_from_slice(&kind.to_be_bytes());
        extensions.extend_from_slice(&(body.len() as u16).to_be_bytes());
        extensions.extend_from_slice(body);
    };
    // signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256,
    // rsa_pkcs1_sha256, ed25519.
    extension(0x000d, &[0, 8, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, 0x08, 0x07]);
    // supported_groups: x25519, secp256r1; ec_point_formats: uncompressed.
    extension(0x000a, &[0, 4, 0x00, 0x1d, 0x00, 0x17]);
    extension(0x000b, &[1, 0]);
    let mut hello = Vec::new();
    hello.extend_from_slice(&version.to_be_bytes());
    hello.extend_from_slice(&[0x42; 32]); // random
    hello.push(0); // no session id
    // ECDHE-ECDSA/RSA with AES-GCM and AES-CBC, and plain RSA.
    let suites: [u16; 5] = [0xc02b, 0xc02f, 0xc009, 0xc013, 0x002f];
    hello.extend_from_slice(&((suites.len() * 2) as u16).to_be_bytes());
    suites.iter().for_each(|s| hello.extend_from_slice(&s.to_be_bytes()));
    hello.extend_from_slice(&[1, 0]); // null compression
    hello.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
    hello.extend_from_slice(&extensions);
    let mut handshake = vec![0x01];
    handshake.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
    handshake.extend_from_slice(&hello);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

/// An SMTP submission connection right after `220 Ready to start TLS`.
async fn smtp_starttls(running: &Running) -> TcpStream {
    let mut client = Client::connect(running.gateway.addrs.submission).await;
    assert!(client.line().await.starts_with("220 "));
    assert!(client.ask("EHLO tls.test").await.starts_with("250 "));
    assert!(client.ask("STARTTLS").await.starts_with("220 "));
    client.reader.into_inner().reunite(client.writer).unwrap()
}

/// An IMAP connection right after `OK Begin TLS`.
async fn imap_starttls(running: &Running) -> TcpStream {
    let mut client = Client::connect(running.gateway.addrs.imap).await;
    assert!(client.line().await.starts_with("* OK "));
    assert!(client.ask("t STARTTLS").await.starts_with("t OK"));
    client.reader.into_inner().reunite(client.writer).unwrap()
}

#[tokio::test]
async fn tls_below_1_2_is_refused_with_a_protocol_version_alert() {
    let running = Running::start().await;
    for (protocol, version) in [("smtp", 0x0301), ("smtp", 0x0302), ("imap", 0x0302)] {
        let mut stream = match protocol {
            "smtp" => smtp_starttls(&running).await,
            _ => imap_starttls(&running).await,
        };
        stream.write_all(&legacy_client_hello(version)).await.unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        // One alert record: fatal (2), protocol_version (70); then the close.
        assert_eq!(answer.len(), 7, "{protocol} {version:#06x}: {answer:?}");
        assert_eq!(answer[0], 0x15, "an alert record: {answer:?}");
        assert_eq!(answer[5..], [2, 70], "a fatal protocol_version alert: {answer:?}");
    }
}

#[tokio::test]
async fn tls_1_2_and_1_3_are_accepted() {
    let running = Running::start().await;
    let pem = running.dir.path().join("gateway-cert.pem");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&pem).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let versions = [
        (&rustls::version::TLS12, rustls::ProtocolVersion::TLSv1_2),
        (&rustls::version::TLS13, rustls::ProtocolVersion::TLSv1_3),
    ];
    for (version, expected) in versions {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        for protocol in ["smtp", "imap"] {
            let stream = match protocol {
                "smtp" => smtp_starttls(&running).await,
                _ => imap_starttls(&running).await,
            };
            let name = ServerName::try_from("localhost").unwrap();
            let tls = connector.connect(name, stream).await.unwrap();
            assert_eq!(tls.get_ref().1.protocol_version(), Some(expected), "{protocol}");
            let mut tls = BufReader::new(tls);
            let command: &[u8] = if protocol == "smtp" { b"NOOP\r\n" } else { b"n NOOP\r\n" };
            tls.get_mut().write_all(command).await.unwrap();
            let mut reply = String::new();
            tls.read_line(&mut reply).await.unwrap();
            assert!(reply.starts_with("250 ") || reply.starts_with("n OK"), "{reply}");
        }
    }
}

// ---- (d) the session limit ---------------------------------------------------

#[tokio::test]
async fn sessions_past_the_limit_are_told_to_come_back_later() {
    let running = Running::start_with(|c| c.limits.max_sessions = 2).await;
    let addrs = running.gateway.addrs;
    // Two sessions take the two places (greeted, so they are counted).
    let mut first = Client::connect(addrs.smtp).await;
    assert!(first.line().await.starts_with("220 "));
    let mut second = Client::connect(addrs.imap).await;
    assert!(second.line().await.starts_with("* OK "));
    // Every protocol refuses the next one in its own words, then closes.
    let refusals = [
        (addrs.smtp, "421 4.7.0 gateway.example.test Too many connections"),
        (addrs.submission, "421 4.7.0 gateway.example.test Too many connections"),
        (addrs.imap, "* BYE [UNAVAILABLE] Too many connections"),
        (addrs.pop3, "-ERR [SYS/TEMP] Too many connections"),
    ];
    for (to, expected) in refusals {
        let mut refused = Client::connect(to).await;
        let line = refused.line().await;
        assert!(line.starts_with(expected), "{line}");
        assert!(refused.closed().await, "then the connection closes");
    }
    // The earlier sessions are unharmed.
    assert!(first.ask("NOOP").await.starts_with("250 "));
    assert!(second.ask("a NOOP").await.starts_with("a OK"));
    assert!(first.ask("QUIT").await.starts_with("221 "));
    assert!(second.ask("b LOGOUT").await.starts_with("* BYE"));
}

// ---- (e) slow-loris clients ------------------------------------------------------

/// A long idle timeout and short command and data deadlines: a client cut
/// off within seconds was cut off by a deadline, not by idling.
fn deadlines(config: &mut GatewayConfig) {
    config.limits.idle_timeout = Duration::from_secs(60);
    config.limits.command_timeout = Duration::from_secs(1);
    config.limits.data_timeout = Duration::from_secs(2);
}

/// Checks a cut-off: the goodbye (if the protocol has one) came after the
/// deadline and long before the idle timeout.
fn assert_cut_off(lines: &[String], took: Duration, deadline: Duration, goodbye: Option<&str>) {
    assert!(took >= deadline.saturating_sub(Duration::from_millis(400)), "too early: {took:?}");
    assert!(took < Duration::from_secs(20), "not cut off by the deadline: {took:?}");
    match goodbye {
        Some(goodbye) => assert!(
            lines.last().is_some_and(|l| l.starts_with(goodbye)),
            "expected {goodbye:?}, got {lines:?}"
        ),
        None => assert!(lines.is_empty(), "POP3 closes without a word: {lines:?}"),
    }
}

#[tokio::test]
async fn smtp_command_lines_have_a_deadline() {
    let running = Running::start_with(deadlines).await;
    // One byte at a time, each well inside the idle timeout.
    let mut trickler = Client::connect(running.gateway.addrs.smtp).await;
    assert!(trickler.line().await.starts_with("220 "));
    let mut reader = trickler.trickle(b"NOOP");
    let (lines, took) = until_closed(&mut reader).await;
    assert_cut_off(&lines, took, Duration::from_secs(1), Some("421 4.3.2 "));
    // Half a command, then silence.
    let mut silent = Client::connect(running.gateway.addrs.submission).await;
    assert!(silent.line().await.starts_with("220 "));
    silent.say(b"EHLO half").await;
    let (lines, took) = until_closed(&mut silent.reader).await;
    assert_cut_off(&lines, took, Duration::from_secs(1), Some("421 4.3.2 "));
}

#[tokio::test]
async fn smtp_message_content_has_a_deadline() {
    let running = Running::start_with(deadlines).await;
    let mut client = Client::connect(running.gateway.addrs.smtp).await;
    assert!(client.line().await.starts_with("220 "));
    assert!(client.ask("EHLO slow.test").await.starts_with("250 "));
    assert!(client.ask("MAIL FROM:<a@elsewhere.test>").await.starts_with("250 "));
    assert!(client.ask("RCPT TO:<bob@example.test>").await.starts_with("250 "));
    assert!(client.ask("DATA").await.starts_with("354 "));
    // Whole lines, but never the end of the message.
    let mut reader = client.trickle(b"Subject: slow\r\n\r\n");
    let (lines, took) = until_closed(&mut reader).await;
    assert_cut_off(&lines, took, Duration::from_secs(2), Some("421 4.3.2 "));
    let account = running.account("bob@example.test").await;
    assert!(account.snapshot("INBOX").await.unwrap().messages.is_empty(), "nothing delivered");
}

#[tokio::test]
async fn imap_commands_and_literals_have_a_deadline() {
    let running = Running::start_with(deadlines).await;
    let mut trickler = Client::connect(running.gateway.addrs.imap).await;
    assert!(trickler.line().await.starts_with("* OK "));
    let mut reader = trickler.trickle(b"a NOOP");
    let (lines, took) = until_closed(&mut reader).await;
    assert_cut_off(&lines, took, Duration::from_secs(1), Some("* BYE command not completed"));

    let mut literal = Client::connect(running.gateway.addrs.imap).await;
    assert!(literal.line().await.starts_with("* OK "));
    assert!(literal.ask("b LOGIN {200}").await.starts_with("+ "));
    let mut reader = literal.trickle(b"alice");
    let (lines, took) = until_closed(&mut reader).await;
    assert_cut_off(&lines, took, Duration::from_secs(2), Some("* BYE command not completed"));
}

#[tokio::test]
async fn pop3_command_lines_have_a_deadline() {
    let running = Running::start_with(deadlines).await;
    let mut trickler = Client::connect(running.gateway.addrs.pop3).await;
    assert!(trickler.line().await.starts_with("+OK "));
    let mut reader = trickler.trickle(b"CAPA");
    let (lines, took) = until_closed(&mut reader).await;
    assert_cut_off(&lines, took, Duration::from_secs(1), None);
}
