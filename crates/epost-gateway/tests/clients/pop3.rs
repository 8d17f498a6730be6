//! POP3 against Python's poplib.

use bytes::Bytes;
use epost_gateway::backend::{Account, MailBackend};

use tokio::io::BufReader;
use tokio::net::TcpStream;

use crate::fixture::{Running, addr, client_script, python, read_line, results};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Python source: poplib and `joined`, lines as the bytes they were,
/// then `body`.
macro_rules! script {
    ($body:expr) => {
        client_script!(
            "poplib",
            r#"def joined(lines):
    return b"".join(line + b"\r\n" for line in lines)
"#,
            $body
        )
    };
}

const FIRST: &[u8] =
    b"From: bob@example.test\r\nSubject: one\r\n\r\n.a line with a dot\r\nbody\r\n";
const SECOND: &[u8] = b"From: bob@example.test\r\nSubject: two\r\n\r\nl1\r\nl2\r\nl3\r\n";

async fn with_two_messages(running: &Running) -> (u32, Vec<u32>) {
    let account = running.account("alice@example.test").await;
    let mut uids = Vec::new();
    let mut validity = 0;
    for raw in [FIRST, SECOND] {
        let (v, uid) =
            account.append("INBOX", Bytes::from_static(raw), Vec::new(), None).await.unwrap();
        validity = v;
        uids.push(uid);
    }
    (validity, uids)
}

#[tokio::test]
async fn poplib_lists_reads_and_deletes() {
    let running = Running::start().await;
    let (validity, uids) = with_two_messages(&running).await;
    let port = running.port(running.gateway.addrs.pop3);
    let out = python(
        script!(
            r#"
p = poplib.POP3(HOST, int(sys.argv[1]), timeout=30)
caps = p.capa()
print("capa", ",".join(sorted(caps)))
p.user("alice@example.test")
p.pass_("alice-pw")
print("stat", "%d,%d" % p.stat())
print("list", b",".join(p.list()[1]).decode())
print("uidl", b",".join(p.uidl()[1]).decode())
resp, lines, octets = p.retr(1)
print("retr1", joined(lines).hex())
print("retr1-octets", octets)
print("retr2", joined(p.retr(2)[1]).hex())
print("top", joined(p.top(2, 1)[1]).hex())
print("dele", p.dele(1).decode())
print("quit", p.quit().decode())
p = poplib.POP3(HOST, int(sys.argv[1]), timeout=30)
p.user("alice@example.test")
p.pass_("alice-pw")
print("stat-after", "%d,%d" % p.stat())
p.quit()
"#
        ),
        vec![port],
    )
    .await;
    let results = results(&out);
    for cap in ["PIPELINING", "STLS", "TOP", "UIDL", "USER"] {
        assert!(results["capa"].contains(cap), "{}", results["capa"]);
    }
    assert_eq!(results["stat"], format!("2,{}", FIRST.len() + SECOND.len()));
    assert_eq!(results["list"], format!("1 {},2 {}", FIRST.len(), SECOND.len()));
    assert_eq!(results["uidl"], format!("1 {validity}.{},2 {validity}.{}", uids[0], uids[1]));
    // poplib undoes the byte-stuffing; the lines are the stored bytes.
    assert_eq!(results["retr1"], hex(FIRST));
    assert_eq!(results["retr2"], hex(SECOND));
    assert_eq!(results["top"], hex(b"From: bob@example.test\r\nSubject: two\r\n\r\nl1\r\n"));
    assert!(results["dele"].starts_with("+OK"));
    assert!(results["quit"].starts_with("+OK"));
    assert_eq!(results["stat-after"], format!("1,{}", SECOND.len()));
    let account = running.account("alice@example.test").await;
    let left = account.snapshot("INBOX").await.unwrap();
    assert_eq!(left.messages.iter().map(|m| m.uid).collect::<Vec<_>>(), [uids[1]]);
}

#[tokio::test]
async fn stls_then_login_and_a_closed_connection_expunges_nothing() {
    let running = Running::start().await;
    with_two_messages(&running).await;
    let port = running.port(running.gateway.addrs.pop3);
    let out = python(
        script!(
            r#"
p = poplib.POP3(HOST, int(sys.argv[1]), timeout=30)
print("stls", p.stls(context=tls()).decode())
print("capa-has-stls", "STLS" in p.capa())
p.user("alice@example.test")
print("pass", p.pass_("alice-pw").decode())
p.dele(1)
p.dele(2)
# Gone without QUIT: RFC 1939 says nothing is deleted.
p.sock.close()
p = poplib.POP3(HOST, int(sys.argv[1]), timeout=30)
try:
    p.user("alice@example.test")
    p.pass_("wrong")
except poplib.error_proto as e:
    print("wrong", e.args[0].decode())
p.quit()
"#
        ),
        vec![port],
    )
    .await;
    let results = results(&out);
    assert!(results["stls"].starts_with("+OK"), "{}", results["stls"]);
    assert_eq!(results["capa-has-stls"], "False");
    assert!(results["pass"].starts_with("+OK alice@example.test has 2 messages"));
    assert_eq!(results["wrong"], "-ERR [AUTH] Invalid credentials");
    // The session without QUIT ends on the server a moment after the
    // client closes; the messages must still all be there.
    let account = running.account("alice@example.test").await;
    assert_eq!(account.snapshot("INBOX").await.unwrap().messages.len(), 2);
}

#[tokio::test]
async fn a_shutdown_ends_sessions_without_expunging() {
    let running = Running::start().await;
    with_two_messages(&running).await;
    let Running { gateway, backend, .. } = running;
    let stream = TcpStream::connect(gateway.addrs.pop3.unwrap()).await.unwrap();
    let mut client = BufReader::new(stream);
    assert!(read_line(&mut client).await.starts_with("+OK "));
    let login = "USER alice@example.test\r\nPASS alice-pw\r\nDELE 1\r\n";
    tokio::io::AsyncWriteExt::write_all(client.get_mut(), login.as_bytes()).await.unwrap();
    for _ in 0..3 {
        assert!(read_line(&mut client).await.starts_with("+OK"));
    }
    let stopping = tokio::spawn(gateway.shutdown());
    assert_eq!(read_line(&mut client).await, "-ERR [SYS/TEMP] Server shutting down\r\n");
    stopping.await.unwrap();
    let account = backend.account(&addr("alice@example.test")).await.unwrap();
    assert_eq!(account.snapshot("INBOX").await.unwrap().messages.len(), 2);
}
