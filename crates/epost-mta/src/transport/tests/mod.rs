//! The transport against scripted SMTP servers on loopback: MX delivery
//! host by host (the hosts are IP addresses, so no DNS is asked), TLS,
//! the smart host, timeouts. [`dns`]: the whole attempt, MX lookup
//! included, against a scripted DNS server.

mod dns;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use super::*;
use crate::outbound::{DnsConfig, Notify, Recipient, Ret, Status};

/// How a scripted server behaves.
#[derive(Clone)]
struct Script {
    /// `None`: it never greets.
    greeting: Option<&'static str>,
    /// The EHLO reply's lines after the first.
    extensions: Vec<&'static str>,
    /// A whole EHLO reply instead of the usual one.
    ehlo: Option<&'static str>,
    tls: ServerTls,
    /// The reply to `AUTH PLAIN ...`.
    auth: &'static str,
    mail: &'static str,
    /// A reply to RCPT TO; `None`: it never answers (nor anything after).
    rcpt: fn(&str) -> Option<&'static str>,
    data: &'static str,
    /// After the data; `None`: it never answers.
    end: Option<&'static str>,
}

#[derive(Clone)]
enum ServerTls {
    None,
    /// STARTTLS offered and done with this certificate.
    StartTls(Arc<rustls::ServerConfig>),
    /// STARTTLS offered, answered `220`, then garbage instead of a handshake.
    Broken,
    /// TLS from the first byte.
    Implicit(Arc<rustls::ServerConfig>),
}

impl Default for Script {
    fn default() -> Self {
        Self {
            greeting: Some("220 mx.test ESMTP"),
            extensions: vec!["PIPELINING", "8BITMIME"],
            ehlo: None,
            tls: ServerTls::None,
            auth: "235 2.7.0 ok",
            mail: "250 2.1.0 ok",
            rcpt: |_| Some("250 2.1.5 ok"),
            data: "354 go ahead",
            end: Some("250 2.0.0 queued as 1"),
        }
    }
}

/// What a server saw of one connection.
#[derive(Debug, Default)]
struct Seen {
    commands: Vec<String>,
    /// The data as it came, dot-stuffed, up to and with the final `.`.
    data: Vec<u8>,
    tls: bool,
}

impl Seen {
    fn verbs(&self) -> Vec<String> {
        self.commands
            .iter()
            .map(|c| c.split([' ', ':']).next().unwrap_or("").to_ascii_uppercase())
            .collect()
    }

    fn command(&self, verb: &str) -> Option<&str> {
        self.commands.iter().map(String::as_str).find(|c| c.starts_with(verb))
    }
}

/// Serves `connections` connections on `listener`, one after the other.
fn serve(listener: TcpListener, script: Script, connections: usize) -> JoinHandle<Vec<Seen>> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        for _ in 0..connections {
            let Ok((stream, _)) = listener.accept().await else { break };
            seen.push(one(stream, &script).await);
        }
        seen
    })
}

async fn one(stream: TcpStream, script: &Script) -> Seen {
    let mut seen = Seen::default();
    if let ServerTls::Implicit(config) = &script.tls {
        if let Ok(tls) = TlsAcceptor::from(config.clone()).accept(stream).await {
            seen.tls = true;
            talk(tls, script, &mut seen, true).await;
        }
        return seen;
    }
    if let Some(plain) = talk(stream, script, &mut seen, true).await
        && let ServerTls::StartTls(config) = &script.tls
        && let Ok(tls) = TlsAcceptor::from(config.clone()).accept(plain).await
    {
        seen.tls = true;
        talk(tls, script, &mut seen, false).await;
    }
    seen
}

/// One conversation; the stream back when STARTTLS was accepted.
async fn talk<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    script: &Script,
    seen: &mut Seen,
    greet: bool,
) -> Option<S> {
    let mut io = BufReader::new(stream);
    if greet {
        match script.greeting {
            Some(g) => say(&mut io, g).await,
            None => return drain(io).await,
        }
    }
    let mut line = String::new();
    loop {
        line.clear();
        if io.read_line(&mut line).await.unwrap_or(0) == 0 {
            return None;
        }
        let cmd = line.trim_end().to_owned();
        seen.commands.push(cmd.clone());
        let upper = cmd.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            match script.ehlo {
                Some(r) => r.to_owned(),
                None => {
                    let mut lines = vec!["mx.test hello".to_owned()];
                    lines.extend(script.extensions.iter().map(|e| e.to_string()));
                    if matches!(script.tls, ServerTls::StartTls(_) | ServerTls::Broken) && !seen.tls
                    {
                        lines.push("STARTTLS".into());
                    }
                    let last = lines.len() - 1;
                    lines
                        .iter()
                        .enumerate()
                        .map(|(i, l)| format!("250{}{l}", if i == last { ' ' } else { '-' }))
                        .collect::<Vec<_>>()
                        .join("\r\n")
                }
            }
        } else if upper.starts_with("HELO") {
            "250 mx.test".into()
        } else if upper == "STARTTLS" {
            match script.tls {
                ServerTls::StartTls(_) => {
                    say(&mut io, "220 2.0.0 ready").await;
                    return Some(io.into_inner());
                }
                ServerTls::Broken => {
                    say(&mut io, "220 2.0.0 ready").await;
                    say(&mut io, "this is no TLS handshake").await;
                    return None;
                }
                _ => "502 5.5.1 no".into(),
            }
        } else if upper.starts_with("AUTH PLAIN") {
            script.auth.into()
        } else if upper.starts_with("MAIL") {
            script.mail.into()
        } else if upper.starts_with("RCPT") {
            match (script.rcpt)(&cmd) {
                Some(reply) => reply.into(),
                None => return drain(io).await,
            }
        } else if upper == "DATA" {
            say(&mut io, script.data).await;
            if !script.data.starts_with("354") {
                continue;
            }
            loop {
                let mut l = Vec::new();
                if io.read_until(b'\n', &mut l).await.unwrap_or(0) == 0 {
                    return None;
                }
                seen.data.extend_from_slice(&l);
                if l == b".\r\n" {
                    break;
                }
            }
            match script.end {
                Some(end) => end.into(),
                None => return drain(io).await,
            }
        } else if upper == "QUIT" {
            say(&mut io, "221 2.0.0 bye").await;
            return None;
        } else {
            "500 5.5.2 what?".into()
        };
        say(&mut io, &reply).await;
    }
}

async fn say<S: AsyncWrite + Unpin>(io: &mut S, reply: &str) {
    let _ = io.write_all(format!("{reply}\r\n").as_bytes()).await;
    let _ = io.flush().await;
}

/// Waits, answering nothing, until the client goes.
async fn drain<S: AsyncRead + Unpin, T>(mut io: S) -> Option<T> {
    let mut buf = [0u8; 512];
    while io.read(&mut buf).await.unwrap_or(0) > 0 {}
    None
}

/// A certificate for `name` and the server side that shows it.
fn certificate(name: &str) -> (CertificateDer<'static>, Arc<rustls::ServerConfig>) {
    let made = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
    let cert = made.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert.clone()], key)
    .unwrap();
    (cert, Arc::new(config))
}

/// Listeners on the same port of several loopback addresses (MX hosts
/// share the transport's one port); addresses left unbound refuse.
/// Two hosts on one port: 127.0.0.1 greets with `421` (busy), 127.0.0.2
/// takes one transaction.
async fn busy_then_good() -> (u16, JoinHandle<Vec<Seen>>, JoinHandle<Vec<Seen>>) {
    let (port, mut ls) = listeners(&["127.0.0.1", "127.0.0.2"]).await;
    let second = ls.pop().unwrap();
    let busy = serve(
        ls.pop().unwrap(),
        Script { greeting: Some("421 4.3.2 busy"), ..Script::default() },
        1,
    );
    let good = serve(second, Script::default(), 1);
    (port, busy, good)
}

async fn listeners(ips: &[&str]) -> (u16, Vec<TcpListener>) {
    'again: for _ in 0..20 {
        let first = TcpListener::bind((ips[0], 0)).await.unwrap();
        let port = first.local_addr().unwrap().port();
        let mut all = vec![first];
        for ip in &ips[1..] {
            match TcpListener::bind((*ip, port)).await {
                Ok(l) => all.push(l),
                Err(_) => continue 'again,
            }
        }
        return (port, all);
    }
    panic!("no common free port");
}

fn config(port: u16) -> TransportConfig {
    let mut c = TransportConfig::new("client.test");
    c.mx_port = port;
    c.timeouts = Timeouts::all(Duration::from_secs(10));
    // Never asked: every host in these tests is an IP address.
    c.dns = DnsConfig { nameservers: vec!["127.0.0.1:9".parse::<SocketAddr>().unwrap()] };
    c
}

fn rcpt(address: &str) -> Recipient {
    Recipient { address: address.into(), notify: Notify::default(), orcpt: None }
}

fn message<'a>(recipients: &'a [Recipient], body: &'a [u8]) -> Message<'a> {
    Message {
        reverse_path: Some("alice@ours.test"),
        recipients,
        body,
        envid: Some("env-1"),
        ret: Some(Ret::Full),
        smtputf8: false,
        eight_bit: false,
    }
}

const BODY: &[u8] = b"From: alice@ours.test\r\nSubject: hi\r\n\r\n.hidden dot\r\nbye\r\n";
const STUFFED: &[u8] = b"From: alice@ours.test\r\nSubject: hi\r\n\r\n..hidden dot\r\nbye\r\n.\r\n";

async fn to_mx(config: TransportConfig, hosts: &[&str], message: Message<'_>) -> Vec<Outcome> {
    let t = SmtpTransport::new(config).unwrap();
    let hosts = hosts.iter().map(|h| h.to_string()).collect();
    t.to_hosts("theirs.test", hosts, false, &message).await
}

fn status(o: &Outcome) -> Option<Status> {
    match o {
        Outcome::Failed { status, .. } => Some(*status),
        _ => None,
    }
}

#[tokio::test]
async fn happy_path() {
    let (port, mut ls) = listeners(&["127.0.0.1"]).await;
    let server = serve(ls.remove(0), Script::default(), 1);
    let rcpts = [rcpt("bob@theirs.test"), rcpt("carol@theirs.test")];
    let outcomes = to_mx(config(port), &["127.0.0.1"], message(&rcpts, BODY)).await;
    assert_eq!(outcomes.len(), 2);
    for o in &outcomes {
        match o {
            Outcome::Delivered { host, reply } => {
                assert_eq!(host, "127.0.0.1");
                assert_eq!(reply.code, 250);
                assert_eq!(reply.status, Some(Status { class: 2, subject: 0, detail: 0 }));
            }
            other => panic!("{other:?}"),
        }
    }
    let seen = server.await.unwrap();
    assert_eq!(seen[0].verbs(), ["EHLO", "MAIL", "RCPT", "RCPT", "DATA", "QUIT"]);
    assert_eq!(seen[0].commands[0], "EHLO client.test");
    // No DSN, no SIZE advertised: no parameters.
    assert_eq!(seen[0].command("MAIL"), Some("MAIL FROM:<alice@ours.test>"));
    assert_eq!(seen[0].command("RCPT"), Some("RCPT TO:<bob@theirs.test>"));
    assert_eq!(seen[0].data, STUFFED);
    assert!(!seen[0].tls);
}

#[tokio::test]
async fn each_recipient_gets_its_own_outcome() {
    let (port, mut ls) = listeners(&["127.0.0.1"]).await;
    let script = Script {
        rcpt: |cmd| {
            Some(if cmd.contains("nobody@") {
                "550 5.1.1 no such user"
            } else if cmd.contains("later@") {
                "452 4.2.2 mailbox full"
            } else {
                "250 ok"
            })
        },
        ..Script::default()
    };
    let server = serve(ls.remove(0), script, 1);
    let rcpts = [
        rcpt("bob@theirs.test"),
        rcpt("nobody@theirs.test"),
        rcpt("later@theirs.test"),
        rcpt("bad\r\nRSET@theirs.test"),
        rcpt("carol@theirs.test"),
    ];
    let outcomes = to_mx(config(port), &["127.0.0.1"], message(&rcpts, BODY)).await;
    assert!(matches!(outcomes[0], Outcome::Delivered { .. }), "{:?}", outcomes[0]);
    assert_eq!(status(&outcomes[1]), Some(Status { class: 5, subject: 1, detail: 1 }));
    match &outcomes[2] {
        Outcome::Deferred { host, reply: Some(r), reason } => {
            assert_eq!(host.as_deref(), Some("127.0.0.1"));
            assert_eq!(r.code, 452);
            assert!(reason.contains("mailbox full"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(status(&outcomes[3]), Some(envelope::BAD_RECIPIENT));
    assert!(matches!(outcomes[4], Outcome::Delivered { .. }), "{:?}", outcomes[4]);
    let seen = server.await.unwrap();
    // The unsendable address never went out.
    assert_eq!(seen[0].verbs(), ["EHLO", "MAIL", "RCPT", "RCPT", "RCPT", "RCPT", "DATA", "QUIT"]);
}

#[tokio::test]
async fn no_data_when_every_recipient_was_refused() {
    let (port, mut ls) = listeners(&["127.0.0.1"]).await;
    let script = Script { rcpt: |_| Some("550 5.7.1 go away"), ..Script::default() };
    let server = serve(ls.remove(0), script, 1);
    let rcpts = [rcpt("bob@theirs.test"), rcpt("carol@theirs.test")];
    let outcomes = to_mx(config(port), &["127.0.0.1"], message(&rcpts, BODY)).await;
    let failed = Some(Status { class: 5, subject: 7, detail: 1 });
    assert_eq!(outcomes.iter().map(status).collect::<Vec<_>>(), [failed, failed]);
    let seen = server.await.unwrap();
    assert_eq!(seen[0].verbs(), ["EHLO", "MAIL", "RCPT", "RCPT", "QUIT"]);
}

#[tokio::test]
async fn the_data_reply_answers_for_every_accepted_recipient() {
    for (end, want_failed) in [("554 5.6.0 rejected content", true), ("451 4.3.0 try later", false)]
    {
        let (port, mut ls) = listeners(&["127.0.0.1"]).await;
        let script = Script {
            rcpt: |cmd| Some(if cmd.contains("nobody@") { "550 5.1.1 no" } else { "250 ok" }),
            end: Some(end),
            ..Script::default()
        };
        let server = serve(ls.remove(0), script, 1);
        let rcpts =
            [rcpt("bob@theirs.test"), rcpt("nobody@theirs.test"), rcpt("carol@theirs.test")];
        let outcomes = to_mx(config(port), &["127.0.0.1"], message(&rcpts, BODY)).await;
        assert_eq!(status(&outcomes[1]), Some(Status { class: 5, subject: 1, detail: 1 }));
        for o in [&outcomes[0], &outcomes[2]] {
            if want_failed {
                assert_eq!(status(o), Some(Status { class: 5, subject: 6, detail: 0 }), "{o:?}");
            } else {
                assert!(
                    matches!(o, Outcome::Deferred { reply: Some(r), .. } if r.code == 451),
                    "{o:?}"
                );
            }
        }
        server.await.unwrap();
    }
}

#[tokio::test]
async fn a_refused_mail_from_answers_for_all() {
    let (port, mut ls) = listeners(&["127.0.0.1"]).await;
    let script = Script { mail: "553 5.7.1 sender refused", ..Script::default() };
    let server = serve(ls.remove(0), script, 1);
    let rcpts = [rcpt("bob@theirs.test")];
    let outcomes = to_mx(config(port), &["127.0.0.1", "127.0.0.2"], message(&rcpts, BODY)).await;
    // The first host answered the transaction: no other host is tried.
    assert_eq!(status(&outcomes[0]), Some(Status { class: 5, subject: 7, detail: 1 }));
    let seen = server.await.unwrap();
    assert_eq!(seen[0].verbs(), ["EHLO", "MAIL", "QUIT"]);
}

#[tokio::test]
async fn a_4xx_greeting_moves_on_to_the_next_host() {
    let (port, busy, good) = busy_then_good().await;
    let rcpts = [rcpt("bob@theirs.test")];
    let outcomes = to_mx(config(port), &["127.0.0.1", "127.0.0.2"], message(&rcpts, BODY)).await;
    match &outcomes[0] {
        Outcome::Delivered { host, .. } => assert_eq!(host, "127.0.0.2"),
        other => panic!("{other:?}"),
    }
    assert_eq!(busy.await.unwrap()[0].verbs(), ["QUIT"]);
    assert_eq!(good.await.unwrap()[0].verbs(), ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]);
}

#[tokio::test]
async fn refused_connections_move_on_and_then_defer() {
    // 127.0.0.3 has no listener: the connection is refused.
    let (port, mut ls) = listeners(&["127.0.0.1"]).await;
    let busy =
        serve(ls.remove(0), Script { greeting: Some("421 4.3.2 busy"), ..Script::default() }, 1);
    let rcpts = [rcpt("bob@theirs.test"), rcpt("carol@theirs.test")];
    let outcomes = to_mx(config(port), &["127.0.0.3", "127.0.0.1"], message(&rcpts, BODY)).await;
    for o in &outcomes {
        match o {
            Outcome::Deferred { host, reply: Some(r), reason } => {
                assert_eq!(host.as_deref(), Some("127.0.0.1"));
                assert_eq!(r.code, 421);
                assert!(reason.contains("greeting"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
    busy.await.unwrap();

    let outcomes = to_mx(config(port), &["127.0.0.3"], message(&rcpts, BODY)).await;
    match &outcomes[0] {
        Outcome::Deferred { host, reply: None, reason } => {
            assert_eq!(host.as_deref(), Some("127.0.0.3"));
            assert!(reason.contains("cannot connect"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_address_limit_bounds_an_attempt() {
    // A port nothing listens on any more: every host refuses.
    let (port, ls) = listeners(&["127.0.0.1"]).await;
    drop(ls);
    let mut c = config(port);
    c.max_addresses = 2;
    let rcpts = [rcpt("bob@theirs.test")];
    let outcomes = to_mx(c, &["127.0.0.5", "127.0.0.6", "127.0.0.7"], message(&rcpts, BODY)).await;
    // Two tried, the third never reached.
    match &outcomes[0] {
        Outcome::Deferred { host, .. } => assert_eq!(host.as_deref(), Some("127.0.0.6")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn starttls_when_offered() {
    let (_, tls) = certificate("mx.test");
    let (port, mut ls) = listeners(&["127.0.0.1"]).await;
    let server =
        serve(ls.remove(0), Script { tls: ServerTls::StartTls(tls), ..Script::default() }, 1);
    let rcpts = [rcpt("bob@theirs.test")];
    let outcomes = to_mx(config(port), &["127.0.0.1"], message(&rcpts, BODY)).await;
    assert!(matches!(outcomes[0], Outcome::Delivered { .. }), "{:?}", outcomes[0]);
    let seen = server.await.unwrap();
    assert!(seen[0].tls);
    assert_eq!(seen[0].verbs(), ["EHLO", "STARTTLS", "EHLO", "MAIL", "RCPT", "DATA", "QUIT"]);
    assert_eq!(seen[0].data, STUFFED);
}

#[tokio::test]
async fn a_failed_handshake_retries_the_host_in_plaintext() {
    let (port, mut ls) = listeners(&["127.0.0.1"]).await;
    let server = serve(ls.remove(0), Script { tls: ServerTls::Broken, ..Script::default() }, 2);
    let rcpts = [rcpt("bob@theirs.test")];
    let outcomes = to_mx(config(port), &["127.0.0.1"], message(&rcpts, BODY)).await;
    assert!(matches!(outcomes[0], Outcome::Delivered { .. }), "{:?}", outcomes[0]);
    let seen = server.await.unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].verbs(), ["EHLO", "STARTTLS"]);
    // Offered again, not taken again.
    assert_eq!(seen[1].verbs(), ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]);
}

#[tokio::test]
async fn a_refused_starttls_goes_on_in_plaintext() {
    let (port, mut ls) = listeners(&["127.0.0.1"]).await;
    // Advertised, but answered 502.
    let script = Script { extensions: vec!["STARTTLS"], ..Script::default() };
    let server = serve(ls.remove(0), script, 1);
    let rcpts = [rcpt("bob@theirs.test")];
    let outcomes = to_mx(config(port), &["127.0.0.1"], message(&rcpts, BODY)).await;
    assert!(matches!(outcomes[0], Outcome::Delivered { .. }), "{:?}", outcomes[0]);
    let seen = server.await.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].verbs(), ["EHLO", "STARTTLS", "MAIL", "RCPT", "DATA", "QUIT"]);
}

#[tokio::test]
async fn dsn_parameters_only_when_advertised() {
    let (port, mut ls) = listeners(&["127.0.0.1"]).await;
    let script = Script { extensions: vec!["DSN", "SIZE 100000", "8BITMIME"], ..Script::default() };
    let server = serve(ls.remove(0), script, 1);
    let rcpts = [Recipient {
        address: "bob@theirs.test".into(),
        notify: Notify { success: true, failure: true, delay: false },
        orcpt: Some("rfc822;bob+x@theirs.test".into()),
    }];
    let m = Message { eight_bit: true, ..message(&rcpts, BODY) };
    let outcomes = to_mx(config(port), &["127.0.0.1"], m).await;
    assert!(matches!(outcomes[0], Outcome::Delivered { .. }), "{:?}", outcomes[0]);
    let seen = server.await.unwrap();
    assert_eq!(
        seen[0].command("MAIL"),
        Some(
            format!(
                "MAIL FROM:<alice@ours.test> SIZE={} BODY=8BITMIME RET=FULL ENVID=env-1",
                BODY.len()
            )
            .as_str()
        )
    );
    assert_eq!(
        seen[0].command("RCPT"),
        Some("RCPT TO:<bob@theirs.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+2Bx@theirs.test")
    );
}

#[tokio::test]
async fn too_big_or_needing_smtputf8_fails_before_mail_from() {
    let cases: [(Vec<&'static str>, bool, Status); 2] = [
        (vec!["SIZE 10"], false, envelope::TOO_BIG),
        (vec!["8BITMIME"], true, envelope::NO_SMTPUTF8),
    ];
    for (extensions, smtputf8, want) in cases {
        let (port, mut ls) = listeners(&["127.0.0.1"]).await;
        let server = serve(ls.remove(0), Script { extensions, ..Script::default() }, 1);
        let rcpts = [rcpt("bob@theirs.test")];
        let m = Message { smtputf8, ..message(&rcpts, BODY) };
        let outcomes = to_mx(config(port), &["127.0.0.1", "127.0.0.2"], m).await;
        match &outcomes[0] {
            Outcome::Failed { host, status, .. } => {
                assert_eq!(host.as_deref(), Some("127.0.0.1"));
                assert_eq!(*status, want);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(server.await.unwrap()[0].verbs(), ["EHLO", "QUIT"]);
    }
}

#[tokio::test]
async fn helo_when_ehlo_is_refused() {
    let (port, mut ls) = listeners(&["127.0.0.1"]).await;
    let script = Script { ehlo: Some("502 5.5.1 no EHLO here"), ..Script::default() };
    let server = serve(ls.remove(0), script, 1);
    let rcpts = [rcpt("bob@theirs.test")];
    let outcomes = to_mx(config(port), &["127.0.0.1"], message(&rcpts, BODY)).await;
    assert!(matches!(outcomes[0], Outcome::Delivered { .. }), "{:?}", outcomes[0]);
    let seen = server.await.unwrap();
    assert_eq!(seen[0].verbs(), ["EHLO", "HELO", "MAIL", "RCPT", "DATA", "QUIT"]);
}

#[tokio::test]
async fn a_silent_greeting_times_out_and_moves_on() {
    let (port, mut ls) = listeners(&["127.0.0.1", "127.0.0.2"]).await;
    let second = ls.pop().unwrap();
    let silent = serve(ls.pop().unwrap(), Script { greeting: None, ..Script::default() }, 1);
    let good = serve(second, Script::default(), 1);
    let mut c = config(port);
    c.timeouts.greeting = Duration::from_millis(200);
    let rcpts = [rcpt("bob@theirs.test")];
    let outcomes = to_mx(c, &["127.0.0.1", "127.0.0.2"], message(&rcpts, BODY)).await;
    match &outcomes[0] {
        Outcome::Delivered { host, .. } => assert_eq!(host, "127.0.0.2"),
        other => panic!("{other:?}"),
    }
    silent.await.unwrap();
    good.await.unwrap();
}

#[tokio::test]
async fn a_session_lost_midway_defers_what_was_not_decided() {
    let (port, mut ls) = listeners(&["127.0.0.1"]).await;
    let script = Script {
        rcpt: |cmd| if cmd.contains("carol@") { None } else { Some("550 5.1.1 no such user") },
        ..Script::default()
    };
    let server = serve(ls.remove(0), script, 1);
    let mut c = config(port);
    c.timeouts.rcpt = Duration::from_millis(200);
    let rcpts = [rcpt("bob@theirs.test"), rcpt("carol@theirs.test"), rcpt("dave@theirs.test")];
    let outcomes = to_mx(c, &["127.0.0.1", "127.0.0.2"], message(&rcpts, BODY)).await;
    // The refusal given stays; the rest wait for another try.
    assert_eq!(status(&outcomes[0]), Some(Status { class: 5, subject: 1, detail: 1 }));
    for o in &outcomes[1..] {
        match o {
            Outcome::Deferred { host, reason, .. } => {
                assert_eq!(host.as_deref(), Some("127.0.0.1"));
                assert!(reason.contains("RCPT TO: no answer within"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
    let seen = server.await.unwrap();
    assert_eq!(seen[0].verbs(), ["EHLO", "MAIL", "RCPT", "RCPT"]);
}

#[tokio::test]
async fn a_large_message_arrives_whole() {
    let (port, mut ls) = listeners(&["127.0.0.1"]).await;
    let script = Script { extensions: vec!["SIZE 10000000"], ..Script::default() };
    let server = serve(ls.remove(0), script, 1);
    let mut body = b"Subject: big\r\n\r\n".to_vec();
    for i in 0..5000 {
        body.extend_from_slice(
            format!(".line {i} of a message longer than one block\r\n").as_bytes(),
        );
    }
    let rcpts = [rcpt("bob@theirs.test")];
    let outcomes = to_mx(config(port), &["127.0.0.1"], message(&rcpts, &body)).await;
    assert!(matches!(outcomes[0], Outcome::Delivered { .. }), "{:?}", outcomes[0]);
    let seen = server.await.unwrap();
    assert!(body.len() > 3 * 64 * 1024);
    assert!(seen[0].data.starts_with(b"Subject: big\r\n\r\n..line 0 of"));
    assert!(seen[0].data.ends_with(b"\r\n..line 4999 of a message longer than one block\r\n.\r\n"));
    assert_eq!(seen[0].data, data::stuffed(&body));
    assert_eq!(
        seen[0].command("MAIL"),
        Some(format!("MAIL FROM:<alice@ours.test> SIZE={}", body.len()).as_str())
    );
}

#[tokio::test]
async fn no_answer_to_the_data_defers() {
    let (port, mut ls) = listeners(&["127.0.0.1"]).await;
    let server = serve(ls.remove(0), Script { end: None, ..Script::default() }, 1);
    let mut c = config(port);
    c.timeouts.data_done = Duration::from_millis(200);
    let rcpts = [rcpt("bob@theirs.test")];
    let outcomes = to_mx(c, &["127.0.0.1", "127.0.0.2"], message(&rcpts, BODY)).await;
    match &outcomes[0] {
        Outcome::Deferred { host, reason, .. } => {
            assert_eq!(host.as_deref(), Some("127.0.0.1"));
            assert!(reason.contains("end of data: no answer within"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    let seen = server.await.unwrap();
    assert_eq!(seen[0].data, STUFFED);
}

fn smart(port: u16, tls: SmartHostTls, verify: bool, auth: bool) -> TransportConfig {
    let mut c = config(25);
    let mut s = SmartHost::parse(&format!("127.0.0.1:{port}")).unwrap();
    s.tls = tls;
    s.tls_verify = verify;
    if auth {
        s.username = Some("relay-user".into());
        s.password = Some("secret".into());
    }
    c.smart_host = Some(s);
    c
}

async fn to_smart_host(
    config: TransportConfig,
    roots: Vec<CertificateDer<'static>>,
    message: Message<'_>,
) -> Vec<Outcome> {
    let t = SmtpTransport::with_roots(config, roots).unwrap();
    t.send("anywhere.test", message).await
}

#[tokio::test]
async fn smart_host_with_starttls_verified_and_auth() {
    let (cert, tls) = certificate("127.0.0.1");
    let (port, mut ls) = listeners(&["127.0.0.1"]).await;
    let script = Script {
        tls: ServerTls::StartTls(tls),
        extensions: vec!["AUTH PLAIN", "8BITMIME"],
        ..Script::default()
    };
    let server = serve(ls.remove(0), script, 1);
    let rcpts = [rcpt("bob@anywhere.test")];
    let c = smart(port, SmartHostTls::Starttls, true, true);
    let outcomes = to_smart_host(c, vec![cert], message(&rcpts, BODY)).await;
    assert!(
        matches!(&outcomes[0], Outcome::Delivered { host, .. } if host == "127.0.0.1"),
        "{:?}",
        outcomes[0]
    );
    let seen = server.await.unwrap();
    assert!(seen[0].tls);
    assert_eq!(
        seen[0].verbs(),
        ["EHLO", "STARTTLS", "EHLO", "AUTH", "MAIL", "RCPT", "DATA", "QUIT"]
    );
}

#[tokio::test]
async fn smart_host_refusing_our_password_defers() {
    let (cert, tls) = certificate("127.0.0.1");
    let (port, mut ls) = listeners(&["127.0.0.1"]).await;
    let script = Script {
        tls: ServerTls::StartTls(tls),
        extensions: vec!["AUTH PLAIN"],
        auth: "535 5.7.8 bad credentials",
        ..Script::default()
    };
    let server = serve(ls.remove(0), script, 1);
    let rcpts = [rcpt("bob@anywhere.test")];
    let c = smart(port, SmartHostTls::Starttls, true, true);
    let outcomes = to_smart_host(c, vec![cert], message(&rcpts, BODY)).await;
    // Our configuration's fault, not the message's: deferred, not failed.
    match &outcomes[0] {
        Outcome::Deferred { host, reply: Some(r), .. } => {
            assert_eq!(host.as_deref(), Some("127.0.0.1"));
            assert_eq!(r.code, 535);
        }
        other => panic!("{other:?}"),
    }
    let seen = server.await.unwrap();
    assert_eq!(seen[0].verbs(), ["EHLO", "STARTTLS", "EHLO", "AUTH", "QUIT"]);
}

#[tokio::test]
async fn smart_host_with_an_unknown_certificate_defers() {
    let (_, tls) = certificate("127.0.0.1");
    let (other_root, _) = certificate("127.0.0.1");
    let (port, mut ls) = listeners(&["127.0.0.1"]).await;
    let server =
        serve(ls.remove(0), Script { tls: ServerTls::StartTls(tls), ..Script::default() }, 1);
    let rcpts = [rcpt("bob@anywhere.test")];
    let c = smart(port, SmartHostTls::Starttls, true, false);
    let outcomes = to_smart_host(c, vec![other_root], message(&rcpts, BODY)).await;
    match &outcomes[0] {
        Outcome::Deferred { host, reason, .. } => {
            assert_eq!(host.as_deref(), Some("127.0.0.1"));
            assert!(reason.contains("TLS handshake failed"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // No plaintext retry toward the smart host.
    let seen = server.await.unwrap();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].command("MAIL").is_none());
}

#[tokio::test]
async fn smart_host_without_starttls_defers() {
    let (port, mut ls) = listeners(&["127.0.0.1"]).await;
    let server = serve(ls.remove(0), Script::default(), 1);
    let rcpts = [rcpt("bob@anywhere.test")];
    let c = smart(port, SmartHostTls::Starttls, true, true);
    let (root, _) = certificate("127.0.0.1");
    let outcomes = to_smart_host(c, vec![root], message(&rcpts, BODY)).await;
    match &outcomes[0] {
        Outcome::Deferred { reason, .. } => {
            assert!(reason.contains("STARTTLS is not offered"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(server.await.unwrap()[0].verbs(), ["EHLO", "QUIT"]);
}

#[tokio::test]
async fn smart_host_with_implicit_tls_unverified() {
    let (_, tls) = certificate("relay.lab");
    let (port, mut ls) = listeners(&["127.0.0.1"]).await;
    let script = Script {
        tls: ServerTls::Implicit(tls),
        extensions: vec!["AUTH PLAIN"],
        ..Script::default()
    };
    let server = serve(ls.remove(0), script, 1);
    let rcpts = [rcpt("bob@anywhere.test")];
    let c = smart(port, SmartHostTls::Implicit, false, true);
    let outcomes = to_smart_host(c, vec![], message(&rcpts, BODY)).await;
    assert!(matches!(outcomes[0], Outcome::Delivered { .. }), "{:?}", outcomes[0]);
    let seen = server.await.unwrap();
    assert!(seen[0].tls);
    assert_eq!(seen[0].verbs(), ["EHLO", "AUTH", "MAIL", "RCPT", "DATA", "QUIT"]);
}

#[tokio::test]
async fn smart_host_in_plaintext_when_configured() {
    let (port, mut ls) = listeners(&["127.0.0.1"]).await;
    let (_, tls) = certificate("relay.lab");
    // STARTTLS offered, but tls = "none" does not take it.
    let server =
        serve(ls.remove(0), Script { tls: ServerTls::StartTls(tls), ..Script::default() }, 1);
    let rcpts = [rcpt("bob@anywhere.test")];
    let c = smart(port, SmartHostTls::None, true, false);
    let outcomes = to_smart_host(c, vec![], message(&rcpts, BODY)).await;
    assert!(matches!(outcomes[0], Outcome::Delivered { .. }), "{:?}", outcomes[0]);
    let seen = server.await.unwrap();
    assert!(!seen[0].tls);
    assert_eq!(seen[0].verbs(), ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]);
}

#[tokio::test]
async fn smart_host_may_takes_tls_when_offered_and_goes_on_without() {
    // Offered (a self-signed certificate): taken, unverified.
    let (port, mut ls) = listeners(&["127.0.0.1"]).await;
    let (_, tls) = certificate("relay.lab");
    let server =
        serve(ls.remove(0), Script { tls: ServerTls::StartTls(tls), ..Script::default() }, 1);
    let rcpts = [rcpt("bob@anywhere.test")];
    let c = smart(port, SmartHostTls::May, true, false);
    let outcomes = to_smart_host(c, vec![], message(&rcpts, BODY)).await;
    assert!(matches!(outcomes[0], Outcome::Delivered { .. }), "{:?}", outcomes[0]);
    let seen = server.await.unwrap();
    assert!(seen[0].tls);
    assert_eq!(seen[0].verbs(), ["EHLO", "STARTTLS", "EHLO", "MAIL", "RCPT", "DATA", "QUIT"]);

    // Not offered: plaintext, as the relay of an older config was spoken to.
    let (port, mut ls) = listeners(&["127.0.0.1"]).await;
    let server = serve(ls.remove(0), Script::default(), 1);
    let c = smart(port, SmartHostTls::May, true, false);
    let outcomes = to_smart_host(c, vec![], message(&rcpts, BODY)).await;
    assert!(matches!(outcomes[0], Outcome::Delivered { .. }), "{:?}", outcomes[0]);
    let seen = server.await.unwrap();
    assert!(!seen[0].tls);
    assert_eq!(seen[0].verbs(), ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"]);
}
