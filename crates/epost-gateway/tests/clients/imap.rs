//! The IMAP server driven by Python's imaplib (and raw sockets for what
//! imaplib cannot say): a Thunderbird-like session with IDLE, MOVE and a
//! QRESYNC resync after another session's changes, exact bytes through
//! APPEND and FETCH, STARTTLS, bad input and the login throttle, and
//! SEARCH.

use bytes::Bytes;
use epost_gateway::backend::{Envelope, MailBackend};
use epost_types::mailbox::{Recipient, Route};
use tokio::net::TcpListener;

use crate::fixture::{Running, addr, python};

const THUNDERBIRD: &str = r#"
import imaplib, socket, sys
port, signal = int(sys.argv[1]), int(sys.argv[2])
imaplib.Commands['ID'] = ('NONAUTH', 'AUTH', 'SELECTED')
imaplib.Commands['MOVE'] = ('SELECTED',)
M = imaplib.IMAP4('127.0.0.1', port)
M.sock.settimeout(30)
for cap in ('IMAP4REV1', 'IDLE', 'UIDPLUS', 'MOVE', 'LITERAL+', 'SPECIAL-USE', 'NAMESPACE', 'ID', 'STARTTLS', 'AUTH=PLAIN', 'ENABLE', 'CONDSTORE', 'QRESYNC'):
    assert cap in M.capabilities, (cap, M.capabilities)
typ, data = M._simple_command('ID', '("name" "Thunderbird" "version" "128.0")')
assert typ == 'OK', (typ, data)
typ, data = M._untagged_response(typ, data, 'ID')
assert b'"epost"' in data[0], data
M.login('alice@example.test', 'alice-pw')
typ, data = M.list('""', '*')
assert typ == 'OK', data
for attr, name in ((b'\\Sent', b'Sent'), (b'\\Trash', b'Trash'), (b'\\Drafts', b'Drafts'), (b'\\Junk', b'Junk'), (b'\\Archive', b'Archive')):
    assert any(attr in line and line.endswith(b' ' + name) for line in data), (attr, data)
assert any(line.endswith(b' INBOX') for line in data), data
typ, data = M.select('INBOX')
assert typ == 'OK' and data == [b'0'], data
# Two messages arrive through a second connection.
N = imaplib.IMAP4('127.0.0.1', port)
N.login('alice@example.test', 'alice-pw')
for i in range(2):
    typ, data = N.append('INBOX', None, None, b'Subject: m%d\r\n\r\nbody %d\r\n' % (i, i))
    assert typ == 'OK' and (b'[APPENDUID 1 %d]' % (i + 1)) in data[0], data
typ, data = M.noop()
assert typ == 'OK', data
typ, data = M.response('EXISTS')
assert data[-1] == b'2', data
typ, data = M.uid('FETCH', '1:*', '(FLAGS)')
assert typ == 'OK' and len(data) == 2, data
# New to this session, so \\Recent here (and in no other session).
assert b'UID 1' in data[0] and b'FLAGS (\\Recent)' in data[0], data
# IDLE; the test delivers a message once we say we are idling.
tag = M._new_tag()
M.send(tag + b' IDLE\r\n')
line = M.readline()
assert line.startswith(b'+ '), line
sig = socket.create_connection(('127.0.0.1', signal))
line = M.readline()
assert line == b'* 3 EXISTS\r\n', line
line = M.readline()
assert line == b'* 3 RECENT\r\n', line
M.send(b'DONE\r\n')
line = M.readline()
assert line.startswith(tag + b' OK'), line
sig.close()
typ, data = M.uid('FETCH', '3', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
assert data[0][1] == b'Subject: delivered\r\n\r\n', data
# MOVE to Trash: COPYUID, then EXPUNGE.
typ, data = M.uid('MOVE', '3', 'Trash')
assert typ == 'OK', (typ, data)
typ, data = M.response('COPYUID')
assert data == [b'4 3 1'], data
typ, data = M.response('EXPUNGE')
assert data == [b'3'], data
typ, data = M.store('1', '+FLAGS', '(\\Deleted)')
assert typ == 'OK', data
typ, data = M.expunge()
assert typ == 'OK' and data == [b'1'], data
typ, data = M.select('Trash')
assert data == [b'1'], data
# QRESYNC: INBOX holds UID 2; two more arrive, and the client remembers
# the folder as of its HIGHESTMODSEQ.
for i in (4, 5):
    typ, data = N.append('INBOX', None, None, b'Subject: m%d\r\n\r\nbody\r\n' % i)
    assert typ == 'OK' and (b'[APPENDUID 1 %d]' % i) in data[0], data
typ, data = M.unselect()
assert typ == 'OK', data
typ, data = M.enable('QRESYNC')
assert typ == 'OK' and M.response('ENABLED')[1] == [b'QRESYNC'], data
typ, data = M.select('INBOX')
assert data == [b'3'], data
uidvalidity = int(M.response('UIDVALIDITY')[1][0])
highest = int(M.response('HIGHESTMODSEQ')[1][0])
typ, data = M.unselect()
assert typ == 'OK', data
# Meanwhile another session flags UID 2 and expunges UID 4.
N.select('INBOX')
typ, data = N.uid('STORE', '2', '+FLAGS', '(\\Flagged)')
assert typ == 'OK', data
typ, data = N.uid('STORE', '4', '+FLAGS', '(\\Deleted)')
N.expunge()
for kind in ('FETCH', 'VANISHED', 'EXISTS'):
    M.response(kind)
typ, data = M._simple_command('SELECT', 'INBOX', '(QRESYNC (%d %d))' % (uidvalidity, highest))
assert typ == 'OK', (typ, data)
M.state = 'SELECTED'
typ, data = M.response('VANISHED')
assert data == [b'(EARLIER) 4'], data
typ, data = M.response('FETCH')
assert len(data) == 1 and b'UID 2' in data[0] and b'\\Flagged' in data[0], data
assert int(data[0].split(b'MODSEQ (')[1].split(b')')[0]) > highest, data
typ, data = M.response('HIGHESTMODSEQ')
assert int(data[0]) > highest, data
# Live: an expunge elsewhere is told as VANISHED, never EXPUNGE.
typ, data = N.uid('STORE', '5', '+FLAGS', '(\\Deleted)')
N.expunge()
typ, data = M.noop()
assert typ == 'OK', data
typ, data = M.response('VANISHED')
assert data == [b'5'], data
typ, data = M.response('EXPUNGE')
assert data == [None], data
M.logout()
N.logout()
print('thunderbird ok')
"#;

#[tokio::test]
async fn a_thunderbird_like_session_with_idle_and_move() {
    let running = Running::start().await;
    let signal = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let args = vec![
        running.port(running.gateway.addrs.imap),
        signal.local_addr().unwrap().port().to_string(),
    ];
    let mut script = tokio::spawn(python(THUNDERBIRD, args));
    let accepted = tokio::select! {
        accepted = signal.accept() => accepted.unwrap(),
        out = &mut script => panic!("the client ended before idling: {out:?}"),
    };
    let envelope = Envelope {
        from: Some("carol@elsewhere.test".into()),
        to: vec![Recipient::new(addr("alice@example.test"), Route::Local)],
        submitter: None,
        dsn: Default::default(),
    };
    let raw = Bytes::from_static(b"Subject: delivered\r\n\r\nhello while idle\r\n");
    running.backend.deliver(envelope, raw).await.unwrap();
    let out = script.await.unwrap();
    drop(accepted);
    assert!(out.contains("thunderbird ok"), "{out}");
}

const EXACT: &str = r#"
import imaplib, sys, time
port = int(sys.argv[1])
M = imaplib.IMAP4('127.0.0.1', port)
M.login('alice@example.test', 'alice-pw')
msg = (b'From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nSubject: files\r\n'
       b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b1"\r\n\r\n'
       b'--b1\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
       b'Gr\xfc\xdfe, 8-bit: \xe4\xf6\xfc \xc3\xa4\r\n'
       b'--b1\r\nContent-Type: application/octet-stream; name="x.bin"\r\n'
       b'Content-Disposition: attachment; filename="x.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
       b'AAECAwQFBgcICQ==\r\n--b1--\r\n')
typ, data = M.append('INBOX', '(\\Flagged)', imaplib.Time2Internaldate(1700000000), msg)
assert typ == 'OK' and b'[APPENDUID 1 1]' in data[0], data
M.select('INBOX')
typ, data = M.uid('FETCH', '1', '(BODY.PEEK[] RFC822.SIZE FLAGS INTERNALDATE)')
assert typ == 'OK', data
assert data[0][1] == msg, data[0][1]
rest = data[1]
assert b'RFC822.SIZE %d' % len(msg) in rest and b'FLAGS (\\Flagged \\Recent)' in rest, rest
assert time.mktime(imaplib.Internaldate2tuple(b'* 1 FETCH (' + rest)) == 1700000000, rest

def parse(text):
    # A tiny reader for parenthesised IMAP data (no literals here).
    stack, current, i = [], [], 0
    while i < len(text):
        c = text[i:i+1]
        if c == b'(':
            stack.append(current); current = []; i += 1
        elif c == b')':
            done = current; current = stack.pop(); current.append(done); i += 1
        elif c == b' ':
            i += 1
        elif c == b'"':
            j = i + 1
            while text[j:j+1] != b'"':
                j += 2 if text[j:j+1] == b'\\' else 1
            current.append(text[i+1:j].decode()); i = j + 1
        else:
            j = i
            while j < len(text) and text[j:j+1] not in b' ()':
                j += 1
            current.append(text[i:j].decode()); i = j
    assert not stack, 'unbalanced'
    return current

typ, data = M.uid('FETCH', '1', '(BODYSTRUCTURE)')
line = data[0]
structure = parse(line[line.index(b'BODYSTRUCTURE ') + len(b'BODYSTRUCTURE '):-1])[0]
text, attachment = structure[0], structure[1]
assert structure[2] == 'MIXED', structure
assert text[:3] == ['TEXT', 'PLAIN', ['CHARSET', 'iso-8859-1']], text
assert attachment[:2] == ['APPLICATION', 'OCTET-STREAM'] and attachment[5] == 'BASE64', attachment
assert attachment[8] == ['attachment', ['FILENAME', 'x.bin']], attachment
typ, data = M.uid('FETCH', '1', '(BODY.PEEK[2])')
assert data[0][1] == b'AAECAwQFBgcICQ==', data
typ, data = M.uid('FETCH', '1', '(BODY.PEEK[1] BODY.PEEK[HEADER.FIELDS (SUBJECT TO)])')
assert data[0][1] == b'Gr\xfc\xdfe, 8-bit: \xe4\xf6\xfc \xc3\xa4', data
assert data[1][1] == b'To: bob@example.test\r\nSubject: files\r\n\r\n', data
typ, data = M.uid('FETCH', '1', '(BODY[TEXT])')
assert b'\\Seen' in data[1], data
typ, data = M.uid('FETCH', '1', '(ENVELOPE)')
assert b'"files" (("Alice" NIL "alice" "example.test"))' in data[0], data
M.logout()
print('exact ok')
"#;

#[tokio::test]
async fn append_then_fetch_gives_the_exact_bytes() {
    let running = Running::start().await;
    let out = python(EXACT, vec![running.port(running.gateway.addrs.imap)]).await;
    assert!(out.contains("exact ok"), "{out}");
    use epost_gateway::backend::Account;
    let account = running.account("alice@example.test").await;
    let stored = account.fetch("INBOX", 1).await.unwrap();
    assert!(stored.windows(4).any(|w| w == b"\xfc\xdfe,"), "8-bit bytes kept as sent");
}

const STARTTLS: &str = r#"
import imaplib, ssl, sys
port = int(sys.argv[1])
M = imaplib.IMAP4('127.0.0.1', port)
assert 'STARTTLS' in M.capabilities, M.capabilities
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
typ, data = M.starttls(ssl_context=ctx)
assert typ == 'OK', data
assert 'STARTTLS' not in M.capabilities, M.capabilities
typ, data = M.login('bob@example.test', 'bob-pw')
assert typ == 'OK', data
typ, data = M.append('Drafts', None, None, b'Subject: over TLS\r\n\r\nsecret\r\n')
assert typ == 'OK', data
typ, data = M.select('Drafts')
assert data == [b'1'], data
typ, data = M.fetch('1', '(BODY.PEEK[TEXT])')
assert data[0][1] == b'secret\r\n', data
M.logout()
print('tls ok')
"#;

const COMPRESSED: &str = r#"
import socket, ssl, sys, zlib
port = int(sys.argv[1])
raw = socket.create_connection(('127.0.0.1', port), timeout=5)
def line(f):
    return f.readline()
f = raw.makefile('rb')
assert line(f).startswith(b'* OK'), 'greeting'
raw.sendall(b'a STARTTLS\r\n')
assert line(f).startswith(b'a OK')
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
sock = ctx.wrap_socket(raw)
sock.sendall(b'b LOGIN alice@example.test alice-pw\r\n')
buf = b''
while b'b OK' not in buf:
    buf += sock.recv(4096)
assert b'COMPRESS=DEFLATE' in buf, buf
sock.sendall(b'c COMPRESS DEFLATE\r\n')
buf = b''
while not buf.endswith(b'\r\n'):
    buf += sock.recv(1)
assert buf.startswith(b'c OK'), buf
# From here on: raw deflate (wbits -15) both ways, Python's zlib.
out = zlib.compressobj(6, zlib.DEFLATED, -15)
inflate = zlib.decompressobj(-15)
def send(data):
    sock.sendall(out.compress(data) + out.flush(zlib.Z_SYNC_FLUSH))
def until(tag):
    text = b''
    while not any(l.startswith(tag + b' ') for l in text.split(b'\r\n')):
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            raise AssertionError((tag, text[:300]))
        assert chunk, text
        text += inflate.decompress(chunk)
    return text
body = b'Subject: squeezed\r\n\r\n' + b'the same words again and again ' * 2000 + b'\r\n'
send(b'd APPEND INBOX {%d+}\r\n' % len(body) + body + b'\r\n')
assert b'd OK [APPENDUID' in until(b'd')
send(b'e SELECT INBOX\r\n')
assert b'* 1 EXISTS' in until(b'e')
send(b'f FETCH 1 BODY.PEEK[]\r\n')
got = until(b'f')
assert body in got, len(got)
send(b'g COMPRESS DEFLATE\r\n')
assert b'g NO [COMPRESSIONACTIVE]' in until(b'g')
send(b'h LOGOUT\r\n')
assert b'h OK' in until(b'h')
print('compress ok')
"#;

/// COMPRESS=DEFLATE over STARTTLS, against Python's zlib: a message
/// larger than any buffer on the way, in and out.
#[tokio::test]
async fn compress_deflate_after_starttls_speaks_zlib() {
    let running = Running::start().await;
    let out = python(COMPRESSED, vec![running.port(running.gateway.addrs.imap)]).await;
    assert!(out.contains("compress ok"), "{out}");
}

#[tokio::test]
async fn starttls_then_login() {
    let running = Running::start().await;
    let out = python(STARTTLS, vec![running.port(running.gateway.addrs.imap)]).await;
    assert!(out.contains("tls ok"), "{out}");
}

const BAD_INPUT: &str = r#"
import socket, sys
port = int(sys.argv[1])
s = socket.create_connection(('127.0.0.1', port))
s.settimeout(30)
f = s.makefile('rb')
assert f.readline().startswith(b'* OK [CAPABILITY'), 'greeting'
def say(data):
    s.sendall(data)
    return f.readline()
for data, expect in ((b'garbage\r\n', b'BAD'), (b'a1 FROB\r\n', b'a1 BAD'), (b'\x00\x01\x02\r\n', b'* BAD'),
                     (b'a2 NOOP\x00\r\n', b'a2 BAD'), (b'a3 NOOP\n', b'a3 BAD'), (b'a4 LOGIN \xff\xfe x\r\n', b'a4 '),
                     (b'a5 SELECT INBOX\r\n', b'a5 BAD'), (b'a6 ' + b'x' * 20000 + b'\r\n', b'a6 BAD')):
    line = say(data)
    assert line.startswith(expect) or expect in line, (data[:20], line)
line = say(b'a7 LOGIN alice@example.test alice-pw\r\n')
assert line.startswith(b'a7 OK'), line
# A 100 MB literal is refused at once: no continuation, nothing read.
line = say(b'a8 APPEND INBOX {104857600}\r\n')
assert line.startswith(b'a8 NO [TOOBIG]'), line
line = say(b'a9 NOOP\r\n')
assert line.startswith(b'a9 OK'), line
# A literal of the right size is taken after a continuation.
line = say(b'b1 APPEND INBOX {11}\r\n')
assert line.startswith(b'+ '), line
line = say(b'Subject: x\n\r\n')
assert line.startswith(b'b1 OK [APPENDUID'), line
# LITERAL+ within the limit needs no continuation.
line = say(b'b2 APPEND INBOX {14+}\r\nSubject: y\r\n\r\n\r\n')
assert line.startswith(b'b2 OK [APPENDUID'), line
# A bad command's non-synchronizing literal is read and thrown away.
line = say(b'b3 FROB {5+}\r\nhello\r\n')
assert line.startswith(b'b3 BAD'), line
line = say(b'b4 NOOP\r\n')
assert line.startswith(b'b4 OK'), line
# A too large LITERAL+ cannot be refused politely: BYE and close.
line = say(b'b5 APPEND INBOX {104857600+}\r\n')
assert line.startswith(b'* BYE'), line
assert f.readline() == b'', 'closed'
print('bad input ok')
"#;

#[tokio::test]
async fn bad_input_gets_replies_and_the_session_goes_on() {
    let running = Running::start().await;
    let out = python(BAD_INPUT, vec![running.port(running.gateway.addrs.imap)]).await;
    assert!(out.contains("bad input ok"), "{out}");
}

const TOO_MANY_ERRORS: &str = r#"
import socket, sys
port = int(sys.argv[1])
s = socket.create_connection(('127.0.0.1', port))
s.settimeout(30)
f = s.makefile('rb')
f.readline()
lines = []
for i in range(30):
    try:
        s.sendall(b'x%d FROB\r\n' % i)
    except OSError:
        break
    line = f.readline()
    if not line:
        break
    lines.append(line)
assert lines[-1].startswith(b'* BYE'), lines[-3:]
assert len(lines) == 21, len(lines)
print('errors ok')
"#;

#[tokio::test]
async fn too_many_bad_commands_end_the_session() {
    let running = Running::start().await;
    let out = python(TOO_MANY_ERRORS, vec![running.port(running.gateway.addrs.imap)]).await;
    assert!(out.contains("errors ok"), "{out}");
}

const WRONG_PASSWORDS: &str = r#"
import imaplib, sys
port = int(sys.argv[1])
B = imaplib.IMAP4('127.0.0.1', port)
B.login('bob@example.test', 'bob-pw')
B.select('INBOX')
A = imaplib.IMAP4('127.0.0.1', port)
failed = locked = 0
for i in range(100):
    try:
        A.login('alice@example.test', 'wrong-%d' % i)
        raise SystemExit('a wrong password logged in')
    except A.error as e:
        if 'UNAVAILABLE' in str(e):
            locked += 1
        elif 'AUTHENTICATIONFAILED' in str(e):
            failed += 1
        else:
            raise
    if i % 10 == 0:
        assert B.noop()[0] == 'OK'
assert failed >= 3 and locked >= 80, (failed, locked)
try:
    A.login('alice@example.test', 'alice-pw')
    raise SystemExit('a locked address logged in')
except A.error as e:
    assert 'UNAVAILABLE' in str(e), e
C = imaplib.IMAP4('127.0.0.1', port)
typ, data = C.login('bob@example.test', 'bob-pw')
assert typ == 'OK', data
assert B.select('Sent')[0] == 'OK'
for M in (A, B, C):
    M.logout()
print('throttle ok', failed, locked)
"#;

#[tokio::test]
async fn wrong_passwords_are_throttled_without_hurting_others() {
    let running = Running::start().await;
    let out = python(WRONG_PASSWORDS, vec![running.port(running.gateway.addrs.imap)]).await;
    assert!(out.contains("throttle ok"), "{out}");
}

const SEARCH: &str = r#"
import imaplib, sys
port = int(sys.argv[1])
M = imaplib.IMAP4('127.0.0.1', port)
M.login('alice@example.test', 'alice-pw')
messages = (
    (b'From: Alice <alice@example.test>\r\nSubject: Quarterly report\r\n\r\nThe numbers are in.\r\n', '"01-Jan-2024 10:00:00 +0000"', None),
    (b'From: Carol <carol@example.test>\r\nSubject: Lunch\r\n\r\nPizza at noon?\r\n', '"01-Jul-2024 10:00:00 +0000"', None),
    (b'From: Dave <dave@example.test>\r\nSubject: Old news\r\n\r\nNothing new.\r\n', '"01-Aug-2024 10:00:00 +0000"', '(\\Seen)'),
)
for raw, date, flags in messages:
    typ, data = M.append('INBOX', flags, date, raw)
    assert typ == 'OK', data
M.select('INBOX')
def search(*criteria):
    typ, data = M.search(None, *criteria)
    assert typ == 'OK', data
    return data[0]
assert search('FROM', 'alice') == b'1'
assert search('SUBJECT', '"quarterly report"') == b'1'
assert search('SINCE', '1-Jun-2024') == b'2 3'
assert search('UNSEEN') == b'1 2'
assert search('TEXT', 'pizza') == b'2'
assert search('NOT', 'FROM', 'carol', 'BEFORE', '1-Jul-2024') == b'1'
typ, data = M.uid('SEARCH', 'OR', 'FROM', 'carol', 'SEEN')
assert data[0] == b'2 3', data
M.logout()
print('search ok')
"#;

#[tokio::test]
async fn search_by_sender_subject_date_flags_and_text() {
    let running = Running::start().await;
    let out = python(SEARCH, vec![running.port(running.gateway.addrs.imap)]).await;
    assert!(out.contains("search ok"), "{out}");
}
