//! The POP3 session fed byte strings, against the in-memory backend.

use super::{Session, Step};
use crate::context::{Limits, Throttle};
use crate::memory::MemoryBackend;
use crate::testing::{Fed, Setup, tls};

type Harness = Fed<Session<MemoryBackend>>;

impl Harness {
    fn new(peer: &str) -> Self {
        Self::with(peer, Limits::default(), Throttle::default())
    }

    /// A POP3 session from `peer` for alice (password "alice pw"), with STLS.
    fn with(peer: &str, limits: Limits, throttle: Throttle) -> Self {
        let setup = Setup {
            users: &[("alice@example.test", "alice pw")],
            tls: Some(tls()),
            limits,
            throttle,
            hostname: "pop.example.test",
            ..Setup::default()
        };
        let peer = peer.parse().unwrap();
        let (h, greeting) = Fed::open(setup.start(), |shared| Session::new(shared, peer));
        assert!(greeting.starts_with("+OK "), "{greeting}");
        h
    }

    async fn out(&mut self, bytes: impl AsRef<[u8]>) -> String {
        self.send(bytes).await.0
    }

    async fn deliver(&self, raw: &'static [u8]) -> u32 {
        self.gateway.deliver("alice@example.test", raw).await
    }
}

#[tokio::test]
async fn a_session_lists_reads_and_deletes() {
    let mut h = Harness::new("127.0.0.1");
    let first: &[u8] = b"Subject: one\r\n\r\n.leading dot\r\nbody\r\n";
    let second: &[u8] = b"Subject: two\r\n\r\nl1\r\nl2\r\nl3\r\n";
    h.deliver(first).await;
    let uid = h.deliver(second).await;
    let capa = h.out("CAPA\r\n").await;
    assert!(capa.contains("\r\nUSER\r\n") && capa.contains("\r\nSTLS\r\n"), "{capa}");
    assert!(capa.ends_with("\r\n.\r\n"), "{capa}");
    assert_eq!(h.out("STAT\r\n").await, "-ERR Command not valid in this state\r\n");
    assert!(h.out("USER alice@example.test\r\n").await.starts_with("+OK"));
    let login = h.out("PASS alice pw\r\n").await;
    assert!(login.starts_with("+OK alice@example.test has 2 messages"), "{login}");
    let total = first.len() + second.len();
    assert_eq!(h.out("STAT\r\n").await, format!("+OK 2 {total}\r\n"));
    let list = h.out("LIST\r\n").await;
    assert!(list.ends_with(&format!("1 {}\r\n2 {}\r\n.\r\n", first.len(), second.len())));
    let snapshot = h.gateway.snapshot("alice@example.test").await;
    let v = snapshot.uid_validity;
    assert_eq!(h.out("UIDL 2\r\n").await, format!("+OK 2 {v}.{uid}\r\n"));
    let retr = h.out("RETR 1\r\n").await;
    assert_eq!(
        retr,
        format!("+OK {} octets\r\nSubject: one\r\n\r\n..leading dot\r\nbody\r\n.\r\n", first.len())
    );
    let top = h.out("TOP 2 1\r\n").await;
    assert!(top.ends_with("\r\nSubject: two\r\n\r\nl1\r\n.\r\n"), "{top}");
    assert!(h.out("DELE 1\r\n").await.starts_with("+OK"));
    assert!(h.out("RETR 1\r\n").await.starts_with("-ERR Message already deleted"));
    assert!(h.out("RSET\r\nDELE 2\r\n").await.starts_with("+OK 2 messages"));
    assert!(h.out("RETR 9\r\n").await.starts_with("-ERR No such message"));
    let (bye, step) = h.send("QUIT\r\n").await;
    assert_eq!((bye.as_str(), step), ("+OK Bye (1 messages deleted)\r\n", Step::Close));
    let left = h.gateway.snapshot("alice@example.test").await;
    assert_eq!(left.messages.len(), 1);
    assert_ne!(left.messages[0].uid, uid);
}

#[tokio::test]
async fn no_plaintext_passwords_away_from_loopback_until_stls() {
    let mut h = Harness::new("192.0.2.9");
    let capa = h.out("CAPA\r\n").await;
    assert!(!capa.contains("USER") && !capa.contains("SASL"), "{capa}");
    assert!(h.out("USER alice@example.test\r\n").await.starts_with("-ERR"));
    assert!(
        h.out("AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABhbGljZSBwdw==\r\n").await.starts_with("-ERR")
    );
    let (reply, step) = h.send("STLS\r\nUSER alice@example.test\r\n").await;
    assert_eq!((reply.as_str(), step), ("+OK Begin TLS negotiation\r\n", Step::StartTls));
    h.session.tls_started();
    let capa = h.out("CAPA\r\n").await;
    assert!(capa.contains("USER") && !capa.contains("STLS"), "{capa}");
    let token = data_encoding::BASE64.encode(b"\0alice@example.test\0alice pw");
    let (reply, _) = h.send(format!("AUTH PLAIN\r\n{token}\r\n")).await;
    assert!(reply.starts_with("+ \r\n+OK alice@example.test has 0 messages"), "{reply}");
}

#[tokio::test]
async fn wrong_passwords_are_throttled_and_errors_counted() {
    let throttle = Throttle::new(std::time::Duration::from_secs(60), 5, 2);
    let limits = Limits { max_errors: 6, max_line: 40, ..Limits::default() };
    let mut h = Harness::with("127.0.0.1", limits, throttle);
    for _ in 0..2 {
        let reply = h.out("USER alice@example.test\r\nPASS nope\r\n").await;
        assert!(reply.ends_with("-ERR [AUTH] Invalid credentials\r\n"), "{reply}");
    }
    let reply = h.out("USER alice@example.test\r\nPASS alice pw\r\n").await;
    assert!(reply.ends_with("-ERR [SYS/TEMP] Too many failed logins; try again later\r\n"));
    assert!(h.out("PASS alone\r\n").await.starts_with("-ERR USER first"));
    let long = h.out([b'X'; 60]).await;
    assert!(long.starts_with("-ERR Line too long"), "{long}");
    assert_eq!(h.out("XXXX\r\n").await, "");
    let (reply, step) = h.send(b"\xff\xfe\r\n").await;
    assert!(reply.ends_with("-ERR Too many errors; closing\r\n"), "{reply}");
    assert_eq!(step, Step::Close);
}

#[tokio::test]
async fn arbitrary_bytes_never_panic() {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..200 {
        let mut h = Harness::new("127.0.0.1");
        h.deliver(b"A: b\r\n\r\n.x\r\n").await;
        let pick = b"USER alice@example.test\r\nPASS alice pw\r\nTOP 1 RETR DELE LIST 0 -1\xff ";
        h.babble(&mut seed, 48, pick).await;
    }
}
