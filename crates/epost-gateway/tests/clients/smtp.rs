//! SMTP against real clients: Python's smtplib (and raw sockets for what
//! smtplib will not send), and curl when it is installed.

use std::time::Duration;

use epost_types::mailbox::{Recipient, Route};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::fixture::{Running, addr, client_script, python, read_line, results};

/// Splits a delivered message into our `Received:` header (folded over
/// three lines) and the client's bytes.
fn split_received(raw: &[u8]) -> (String, Vec<u8>) {
    assert!(raw.starts_with(b"Received: from "), "{}", String::from_utf8_lossy(raw));
    let mut end = 0;
    while let Some(pos) = raw[end..].windows(2).position(|w| w == b"\r\n") {
        end += pos + 2;
        if raw.get(end) != Some(&b'\t') {
            break;
        }
    }
    (String::from_utf8_lossy(&raw[..end]).into_owned(), raw[end..].to_vec())
}

/// Python source: smtplib and `code_of`, the code of a reply or of a
/// refusal, then `body`.
macro_rules! script {
    ($body:expr) => {
        client_script!(
            "smtplib, socket, threading",
            r#"def code_of(f):
    try:
        return f()[0]
    except smtplib.SMTPResponseException as e:
        return e.smtp_code
"#,
            $body
        )
    };
}

#[tokio::test]
async fn submission_with_auth_plain_and_login_over_starttls() {
    let running = Running::start().await;
    let port = running.port(running.gateway.addrs.submission);
    let out = python(
        script!(
            r#"
port = int(sys.argv[1])
for mech in ["PLAIN", "LOGIN"]:
    s = smtplib.SMTP(HOST, port, timeout=30)
    s.ehlo("client.test")
    print("starttls-offered", s.has_extn("starttls"))
    print("auth-before-tls", s.has_extn("auth"))
    s.starttls(context=tls())
    s.ehlo("client.test")
    s.user, s.password = "alice@example.test", "alice-pw"
    print("auth-" + mech, s.auth(mech, getattr(s, "auth_" + mech.lower()))[0])
    msg = b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: " + mech.encode() + b"\r\n\r\n.Hello Bob.\r\n"
    s.sendmail("alice@example.test", ["bob@example.test"], msg)
    print("quit", s.quit()[0])
"#
        ),
        vec![port],
    )
    .await;
    let results = results(&out);
    // Loopback may authenticate without TLS, so AUTH shows before it too.
    assert_eq!(results["starttls-offered"], "True");
    assert_eq!(results["auth-PLAIN"], "235");
    assert_eq!(results["auth-LOGIN"], "235");
    assert_eq!(results["quit"], "221");
    let inbox = running.inbox("bob@example.test").await;
    assert_eq!(inbox.len(), 2);
    for (raw, mech) in inbox.iter().zip(["PLAIN", "LOGIN"]) {
        let (received, rest) = split_received(raw);
        assert!(received.contains("from client.test ([127.0.0.1])"), "{received}");
        assert!(received.contains("by gateway.example.test with ESMTPSA;"), "{received}");
        let sent = format!(
            "From: alice@example.test\r\nTo: bob@example.test\r\nSubject: {mech}\r\n\r\n.Hello Bob.\r\n"
        );
        assert_eq!(String::from_utf8_lossy(&rest), sent);
    }
}

#[tokio::test]
async fn submission_on_loopback_without_tls_and_its_refusals() {
    let running = Running::start().await;
    let port = running.port(running.gateway.addrs.submission);
    let out = python(
        script!(
            r#"
s = smtplib.SMTP(HOST, int(sys.argv[1]), timeout=30)
s.ehlo("laptop.test")
print("mail-before-auth", code_of(lambda: s.mail("alice@example.test")))
s.login("alice@example.test", "alice-pw")
print("other-sender", code_of(lambda: s.mail("bob@example.test")))
print("mail", code_of(lambda: s.mail("alice@example.test")))
print("relay", code_of(lambda: s.rcpt("friend@foreign.test")))
print("unknown", code_of(lambda: s.rcpt("nobody@example.test")))
print("rcpt", code_of(lambda: s.rcpt("bob@example.test")))
print("data", code_of(lambda: s.data(b"Subject: local\r\n\r\nhi\r\n")))
s.quit()
"#
        ),
        vec![port],
    )
    .await;
    let results = results(&out);
    assert_eq!(results["mail-before-auth"], "530");
    assert_eq!(results["other-sender"], "553");
    assert_eq!(results["mail"], "250");
    assert_eq!(results["relay"], "550");
    assert_eq!(results["unknown"], "550");
    assert_eq!(results["rcpt"], "250");
    assert_eq!(results["data"], "250");
    let inbox = running.inbox("bob@example.test").await;
    let (received, rest) = split_received(&inbox[0]);
    assert!(received.contains("with ESMTPA;"), "{received}");
    assert_eq!(rest, b"Subject: local\r\n\r\nhi\r\n");
    assert!(running.backend.relayed().is_empty());
}

#[tokio::test]
async fn submitters_may_relay_when_configured() {
    let running = Running::start_with(|c| c.relay_for_submitters = true).await;
    let port = running.port(running.gateway.addrs.submission);
    python(
        script!(
            r#"
s = smtplib.SMTP(HOST, int(sys.argv[1]), timeout=30)
s.starttls(context=tls())
s.login("alice@example.test", "alice-pw")
s.sendmail("alice@example.test", ["friend@foreign.test", "bob@example.test"], b"Subject: out\r\n\r\nx\r\n")
s.quit()
"#
        ),
        vec![port],
    )
    .await;
    let relayed = running.backend.relayed();
    assert_eq!(relayed.len(), 1);
    assert_eq!(relayed[0].0.to, [Recipient::new(addr("friend@foreign.test"), Route::Foreign)]);
    assert_eq!(running.inbox("bob@example.test").await.len(), 1);
}

#[tokio::test]
async fn mx_takes_mail_for_users_without_auth_and_refuses_the_rest() {
    let running = Running::start().await;
    let port = running.port(running.gateway.addrs.smtp);
    let out = python(
        script!(
            r#"
s = smtplib.SMTP(HOST, int(sys.argv[1]), timeout=30)
s.ehlo("sender.test")
print("auth-offered", s.has_extn("auth"))
print("mail", code_of(lambda: s.mail("someone@elsewhere.test")))
print("unknown", code_of(lambda: s.rcpt("nobody@example.test")))
print("relay", code_of(lambda: s.rcpt("victim@foreign.test")))
print("rcpt", code_of(lambda: s.rcpt("bob@example.test")))
print("data", code_of(lambda: s.data(b"Subject: from afar\r\n\r\nhello\r\n")))
s.quit()
"#
        ),
        vec![port],
    )
    .await;
    let results = results(&out);
    assert_eq!(results["auth-offered"], "False");
    assert_eq!(results["mail"], "250");
    assert_eq!(results["unknown"], "550");
    assert_eq!(results["relay"], "550");
    assert_eq!(results["rcpt"], "250");
    assert_eq!(results["data"], "250");
    let inbox = running.inbox("bob@example.test").await;
    let (received, rest) = split_received(&inbox[0]);
    assert!(received.contains("from sender.test ([127.0.0.1])"), "{received}");
    assert!(received.contains("with ESMTP;"), "{received}");
    assert_eq!(rest, b"Subject: from afar\r\n\r\nhello\r\n");
    assert!(running.backend.relayed().is_empty());
}

#[tokio::test]
async fn oversize_is_refused_at_mail_and_after_data() {
    let running = Running::start_with(|c| c.limits.max_message = 1000).await;
    let port = running.port(running.gateway.addrs.smtp);
    let out = python(
        script!(
            r#"
s = smtplib.SMTP(HOST, int(sys.argv[1]), timeout=30)
s.ehlo("sender.test")
print("size", s.esmtp_features.get("size"))
print("declared", code_of(lambda: s.mail("a@elsewhere.test", ["SIZE=5000"])))
print("mail", code_of(lambda: s.mail("a@elsewhere.test", ["SIZE=500"])))
print("rcpt", code_of(lambda: s.rcpt("bob@example.test")))
print("data", code_of(lambda: s.data(b"Subject: big\r\n\r\n" + b"0123456789\r\n" * 500)))
print("noop", s.noop()[0])
s.sendmail("a@elsewhere.test", ["bob@example.test"], b"Subject: small\r\n\r\nok\r\n")
s.quit()
"#
        ),
        vec![port],
    )
    .await;
    let results = results(&out);
    assert_eq!(results["size"], "1000");
    assert_eq!(results["declared"], "552");
    assert_eq!(results["mail"], "250");
    assert_eq!(results["rcpt"], "250");
    assert_eq!(results["data"], "552");
    assert_eq!(results["noop"], "250");
    let inbox = running.inbox("bob@example.test").await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(split_received(&inbox[0]).1, b"Subject: small\r\n\r\nok\r\n");
}

#[tokio::test]
async fn odd_content_is_stored_as_received() {
    let running = Running::start().await;
    let port = running.port(running.gateway.addrs.smtp);
    python(
        script!(
            r#"
s = smtplib.SMTP(HOST, int(sys.argv[1]), timeout=30)
s.ehlo("sender.test")
assert s.has_extn("smtputf8") and s.has_extn("8bitmime")
# Bare LF lines, and a bare-LF "." that must not end the message.
s.sendmail("a@elsewhere.test", ["bob@example.test"], b"Subject: lf\nX: y\n\nline\n.\nafter\r\n")
# NUL bytes.
s.sendmail("a@elsewhere.test", ["bob@example.test"], b"Subject: nul\r\n\r\na\x00b\r\n")
# 8-bit headers under SMTPUTF8.
s.sendmail("a@elsewhere.test", ["bob@example.test"],
    "Subject: Grüße 日本\r\nFrom: Jürgen <a@elsewhere.test>\r\n\r\nKörper\r\n".encode(),
    mail_options=["SMTPUTF8", "BODY=8BITMIME"])
s.quit()
"#
        ),
        vec![port],
    )
    .await;
    let inbox = running.inbox("bob@example.test").await;
    let bodies: Vec<Vec<u8>> = inbox.iter().map(|raw| split_received(raw).1).collect();
    assert_eq!(bodies[0], b"Subject: lf\nX: y\n\nline\n.\nafter\r\n");
    assert_eq!(bodies[1], b"Subject: nul\r\n\r\na\0b\r\n");
    assert_eq!(
        bodies[2],
        "Subject: Grüße 日本\r\nFrom: Jürgen <a@elsewhere.test>\r\n\r\nKörper\r\n".as_bytes()
    );
}

#[tokio::test]
async fn garbage_and_pipelined_commands_over_a_raw_socket() {
    let running = Running::start().await;
    let port = running.port(running.gateway.addrs.smtp);
    let out = python(
        script!(
            r#"
sock = socket.create_connection((HOST, int(sys.argv[1])), timeout=30)
f = sock.makefile("rb")
def reply():
    lines = []
    while True:
        line = f.readline()
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            return lines
def codes(n):
    return ",".join(reply()[-1][:3].decode() for _ in range(n))
print("greeting", codes(1))
sock.sendall(b"\xff\xfe\x00garbage\r\nFOO bar\r\nMAIL FROM:<<<>\r\n" + b"X" * 20000 + b"\r\nNOOP\r\n")
print("garbage", codes(5))
# A smuggling attempt: a bare-LF "." line is content (its period taken
# as stuffing), so the forged second message is part of the first.
batch = (b"EHLO p.test\r\nMAIL FROM:<a@elsewhere.test>\r\nRCPT TO:<bob@example.test>\r\n"
         b"RCPT TO:<nobody@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
sock.sendall(batch)
print("pipelined", codes(6))
sock.sendall(b"Subject: one\r\n\r\nbody\n.\nMAIL FROM:<forged@example.test>\r\n.\r\nRSET\r\nQUIT\r\n")
print("end", codes(3))
"#
        ),
        vec![port],
    )
    .await;
    let results = results(&out);
    assert_eq!(results["greeting"], "220");
    assert_eq!(results["garbage"], "500,500,501,500,250");
    assert_eq!(results["pipelined"], "250,250,250,550,250,354");
    assert_eq!(results["end"], "250,250,221");
    for user in ["alice@example.test", "bob@example.test"] {
        let inbox = running.inbox(user).await;
        assert_eq!(inbox.len(), 1, "{user}");
        assert_eq!(
            split_received(&inbox[0]).1,
            b"Subject: one\r\n\r\nbody\n\nMAIL FROM:<forged@example.test>\r\n"
        );
    }
}

#[tokio::test]
async fn a_hundred_wrong_passwords_lock_the_address_but_not_other_users() {
    let running = Running::start().await;
    let port = running.port(running.gateway.addrs.submission);
    let out = python(
        script!(
            r#"
port = int(sys.argv[1])
started = threading.Event()
codes = []
def attack():
    for i in range(100):
        s = smtplib.SMTP(HOST, port, timeout=60)
        s.ehlo("attacker.test")
        s.user, s.password = "alice@example.test", "guess-%d" % i
        codes.append(code_of(lambda: s.auth("PLAIN", s.auth_plain)))
        s.quit()
        if i == 4:
            started.set()
t = threading.Thread(target=attack)
t.start()
started.wait()
# Meanwhile, bob logs in and sends.
s = smtplib.SMTP(HOST, port, timeout=60)
s.login("bob@example.test", "bob-pw")
s.sendmail("bob@example.test", ["alice@example.test"], b"Subject: meanwhile\r\n\r\nhi\r\n")
s.quit()
print("bob", "sent")
t.join()
print("first", ",".join(str(c) for c in codes[:10]))
print("rest", ",".join(sorted(set(str(c) for c in codes[10:]))))
s = smtplib.SMTP(HOST, port, timeout=60)
s.user, s.password = "alice@example.test", "alice-pw"
s.ehlo("laptop.test")
print("alice-locked", code_of(lambda: s.auth("PLAIN", s.auth_plain)))
s.quit()
"#
        ),
        vec![port],
    )
    .await;
    let results = results(&out);
    assert_eq!(results["bob"], "sent");
    assert_eq!(results["first"], ["535"; 10].join(","));
    assert_eq!(results["rest"], "454");
    assert_eq!(results["alice-locked"], "454");
    assert_eq!(running.inbox("alice@example.test").await.len(), 1);
}

#[tokio::test]
async fn curl_uploads_a_message() {
    let curl = std::process::Command::new("curl").arg("--version").output();
    if !curl.is_ok_and(|out| out.status.success()) {
        println!("curl is not installed; skipping the curl SMTP test");
        return;
    }
    let running = Running::start().await;
    let port = running.port(running.gateway.addrs.smtp);
    let message: &[u8] = b"From: a@elsewhere.test\r\nSubject: curl\r\n\r\n.dot line\r\nend\r\n";
    let file = running.dir.path().join("message.eml");
    std::fs::write(&file, message).unwrap();
    let status = tokio::process::Command::new("curl")
        .args(["--silent", "--show-error", "--url"])
        .arg(format!("smtp://127.0.0.1:{port}"))
        .args(["--mail-from", "a@elsewhere.test", "--mail-rcpt", "bob@example.test", "-T"])
        .arg(&file)
        .status()
        .await
        .unwrap();
    assert!(status.success(), "curl failed: {status}");
    let inbox = running.inbox("bob@example.test").await;
    assert_eq!(split_received(&inbox[0]).1, message);
}

#[tokio::test]
async fn idle_clients_and_a_shutdown_hear_421() {
    let idle = Duration::from_millis(300);
    let running = Running::start_with(|c| c.limits.idle_timeout = idle).await;
    let stream = TcpStream::connect(running.gateway.addrs.smtp.unwrap()).await.unwrap();
    let mut idler = BufReader::new(stream);
    assert!(read_line(&mut idler).await.starts_with("220 "));
    assert!(read_line(&mut idler).await.starts_with("421 "), "an idle client is told");

    let Running { gateway, .. } = Running::start().await;
    let stream = TcpStream::connect(gateway.addrs.submission.unwrap()).await.unwrap();
    let mut client = BufReader::new(stream);
    assert!(read_line(&mut client).await.starts_with("220 "));
    client.get_mut().write_all(b"NOOP\r\n").await.unwrap();
    assert!(read_line(&mut client).await.starts_with("250 "));
    let stopping = tokio::spawn(gateway.shutdown());
    let goodbye = read_line(&mut client).await;
    assert!(goodbye.starts_with("421 4.3.2 gateway.example.test "), "{goodbye}");
    assert_eq!(read_line(&mut client).await, "", "then the connection closes");
    stopping.await.unwrap();
}
