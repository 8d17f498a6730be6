//! The SMTP, IMAP and POP3 sessions fed arbitrary bytes, and sequences of
//! plausible command lines mixed with garbage, cut into reads at random
//! (through [`crate::fuzzing`], which the fuzz targets use too): no
//! panic, output within [`output_bound`], and a protocol error for every
//! unknown command.

use proptest::prelude::*;

use crate::fuzzing::{self, Peer, output_bound};

/// Cases per property; the sessions are fast, IMAP a little less so.
const CASES: u32 = 256;
const IMAP_CASES: u32 = 128;

const SMTP_LINES: &[&str] = &[
    "EHLO client.test",
    "HELO client.test",
    "MAIL FROM:<a@elsewhere.test>",
    "MAIL FROM:<alice@example.test> SIZE=100 BODY=8BITMIME",
    "MAIL FROM:<>",
    "RCPT TO:<bob@example.test>",
    "RCPT TO:<alice@example.test>",
    "RCPT TO:<nobody@example.test>",
    "RCPT TO:<victim@foreign.test>",
    "DATA",
    "Subject: hi",
    "",
    ".",
    "..stuffed",
    "BDAT 12",
    "BDAT 5 LAST",
    "BDAT 0 LAST",
    "RSET",
    "NOOP",
    "VRFY bob",
    "EXPN list",
    "HELP",
    "STARTTLS",
    "AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABhbGljZS1wdw==",
    "AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdAB3cm9uZw==",
    "AUTH PLAIN",
    "AUTH LOGIN",
    "YWxpY2VAZXhhbXBsZS50ZXN0",
    "YWxpY2UtcHc=",
    "*",
    "QUIT",
];

const IMAP_LINES: &[&str] = &[
    "a CAPABILITY",
    "a LOGIN alice@example.test alice-pw",
    "a LOGIN alice@example.test wrong",
    "a AUTHENTICATE PLAIN",
    "AGFsaWNlQGV4YW1wbGUudGVzdABhbGljZS1wdw==",
    "a SELECT INBOX",
    "a EXAMINE INBOX",
    "a FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE ENVELOPE BODYSTRUCTURE)",
    "a FETCH 1:* BODY[]",
    "a UID FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)] BODY[2.1] BODY[1]<2.5>)",
    "a FETCH 2 (BODY[1.MIME] BODY[2] BODY[TEXT] BINARY[2])",
    "a SEARCH OR FROM bob SINCE 1-Jan-2020",
    "a UID SEARCH TEXT alice NOT SEEN",
    "a STORE 1 +FLAGS (\\Seen \\Deleted)",
    "a UID STORE 1:* -FLAGS.SILENT (\\Seen)",
    "a COPY 1 Trash",
    "a UID MOVE 2 Sent",
    "a EXPUNGE",
    "a UID EXPUNGE 1",
    "a CLOSE",
    "a UNSELECT",
    "a LIST \"\" *",
    "a LSUB \"\" %",
    "a STATUS INBOX (MESSAGES UIDNEXT UNSEEN)",
    "a CREATE foo/bar",
    "a RENAME foo/bar baz",
    "a DELETE baz",
    "a SUBSCRIBE Sent",
    "a NAMESPACE",
    "a ID (\"name\" \"x\")",
    "a APPEND INBOX {12}",
    "a APPEND INBOX (\\Seen) {5+}",
    "Subject: x\r\n",
    "a IDLE",
    "DONE",
    "a STARTTLS",
    "a NOOP",
    "a LOGOUT",
];

const POP3_LINES: &[&str] = &[
    "CAPA",
    "USER alice@example.test",
    "PASS alice-pw",
    "PASS wrong",
    "AUTH",
    "AUTH PLAIN",
    "AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABhbGljZS1wdw==",
    "AGFsaWNlQGV4YW1wbGUudGVzdABhbGljZS1wdw==",
    "STAT",
    "LIST",
    "LIST 2",
    "UIDL",
    "UIDL 1",
    "RETR 1",
    "RETR 2",
    "TOP 2 1",
    "TOP 1 0",
    "DELE 1",
    "RSET",
    "NOOP",
    "STLS",
    "APOP alice x",
    "QUIT",
];

/// A client's bytes: known lines, garbage lines and raw bytes, each line
/// ended by CRLF or bare LF (or not at all).
fn script(known: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        4 => prop::sample::select(known).prop_map(|l| l.as_bytes().to_vec()),
        1 => "[ -~]{0,40}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..40),
        1 => (0usize..1200).prop_map(|n| vec![b'x'; n]),
    ];
    let ending = prop_oneof![
        4 => Just(&b"\r\n"[..]),
        1 => Just(&b"\n"[..]),
        1 => Just(&b""[..]),
    ];
    prop::collection::vec((line, ending), 0..25).prop_map(|lines| {
        lines
            .into_iter()
            .flat_map(|(line, end)| line.into_iter().chain(end.iter().copied()))
            .collect()
    })
}

/// `bytes` cut into reads at random points.
fn reads(bytes: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Vec<Vec<u8>>> {
    (bytes, prop::collection::vec(any::<prop::sample::Index>(), 0..6)).prop_map(|(bytes, cuts)| {
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        cuts.push(0);
        cuts.push(bytes.len());
        cuts.sort_unstable();
        cuts.dedup();
        cuts.windows(2).map(|w| bytes[w[0]..w[1]].to_vec()).collect()
    })
}

fn peer() -> impl Strategy<Value = Peer> {
    prop_oneof![Just(Peer::Loopback), Just(Peer::Remote)]
}

/// Input that is either a script or arbitrary bytes.
fn input(known: &'static [&'static str]) -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop_oneof![3 => reads(script(known)), 1 => reads(prop::collection::vec(any::<u8>(), 0..2000))]
}

/// A command word none of the protocols knows, and some arguments.
fn unknown_command() -> impl Strategy<Value = String> {
    const KNOWN: &[&str] = &[
        "EHLO", "HELO", "LHLO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "VRFY", "EXPN",
        "HELP", "STARTTLS", "AUTH", "QUIT", "ETRN", "ATRN", "BURL", "CAPA", "USER", "PASS", "STLS",
        "APOP", "STAT", "LIST", "UIDL", "RETR", "TOP", "DELE",
    ];
    ("[A-Za-z][A-Za-z0-9]{0,11}", "( [!-~]{1,20}){0,3}")
        .prop_filter("not a known command", |(verb, _)| {
            !KNOWN.iter().any(|k| k.eq_ignore_ascii_case(verb))
        })
        .prop_map(|(verb, args)| format!("{verb}{args}"))
}

fn all(reads: &[Vec<u8>]) -> Vec<u8> {
    reads.concat()
}

/// Every line of an SMTP transcript is a reply line: `NNN ` or `NNN-`.
fn smtp_replies_are_well_formed(output: &[u8]) -> Result<(), TestCaseError> {
    prop_assert!(output.is_empty() || output.ends_with(b"\r\n"), "unterminated: {:?}", output);
    for line in output.split_inclusive(|&b| b == b'\n') {
        let ok = line.len() >= 6
            && line[..3].iter().all(u8::is_ascii_digit)
            && (line[3] == b' ' || line[3] == b'-')
            && line.ends_with(b"\r\n");
        prop_assert!(ok, "not a reply line: {:?}", String::from_utf8_lossy(line));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn smtp_sessions_survive_anything(submission in any::<bool>(), peer in peer(), reads in input(SMTP_LINES)) {
        let transcript = fuzzing::smtp(submission, peer, &reads);
        prop_assert!(transcript.output.len() <= output_bound(&all(&reads)));
        smtp_replies_are_well_formed(&transcript.output)?;
    }

    #[test]
    fn pop3_sessions_survive_anything(peer in peer(), reads in input(POP3_LINES)) {
        let transcript = fuzzing::pop3(peer, &reads);
        prop_assert!(transcript.output.len() <= output_bound(&all(&reads)));
        prop_assert!(transcript.output.starts_with(b"+OK "));
        prop_assert!(transcript.output.ends_with(b"\r\n"));
    }

    /// An unknown command gets one 5xx reply, and the session goes on.
    #[test]
    fn smtp_refuses_unknown_commands(submission in any::<bool>(), command in unknown_command()) {
        let line = format!("{command}\r\nNOOP\r\n").into_bytes();
        let transcript = fuzzing::smtp(submission, Peer::Loopback, &[line]);
        let text = String::from_utf8_lossy(&transcript.output);
        let replies: Vec<&str> = text.lines().skip(1).collect();
        prop_assert_eq!(replies.len(), 2, "{}", text);
        prop_assert!(replies[0].starts_with('5'), "{}", text);
        prop_assert!(replies[1].starts_with("250 "), "{}", text);
    }

    #[test]
    fn pop3_refuses_unknown_commands(logged_in in any::<bool>(), command in unknown_command()) {
        let login = if logged_in { "USER alice@example.test\r\nPASS alice-pw\r\n" } else { "" };
        let input = format!("{login}{command}\r\nCAPA\r\n").into_bytes();
        let transcript = fuzzing::pop3(Peer::Loopback, &[input]);
        let text = String::from_utf8_lossy(&transcript.output);
        let lines: Vec<&str> = text.lines().collect();
        let at = if logged_in { 3 } else { 1 };
        prop_assert!(lines[at].starts_with("-ERR "), "{}", text);
        prop_assert!(lines[at + 1].starts_with("+OK "), "{}", text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(IMAP_CASES))]

    #[test]
    fn imap_sessions_survive_anything(peer in peer(), reads in input(IMAP_LINES)) {
        let bound = output_bound(&all(&reads));
        let transcript = fuzzing::imap(peer, &reads, bound);
        prop_assert!(transcript.output.len() <= bound);
        prop_assert!(transcript.output.starts_with(b"* OK "));
    }

    /// An unknown command (or garbage where a command belongs) gets BAD,
    /// and the session goes on.
    #[test]
    fn imap_refuses_unknown_commands(
        command in prop_oneof![
            unknown_command().prop_map(|c| format!("t1 {c}")),
            "[^\r\n]{0,60}".prop_filter("not a command", |l| !l.starts_with("t2 ")),
        ],
    ) {
        // A line ending in a literal announcement is another property.
        prop_assume!(!command.ends_with('}'));
        let input = format!("{command}\r\nt2 NOOP\r\n").into_bytes();
        let transcript = fuzzing::imap(Peer::Loopback, &[input], 1 << 16);
        let text = String::from_utf8_lossy(&transcript.output);
        let lines: Vec<&str> = text.lines().skip(1).collect();
        prop_assert!(lines[0].starts_with("t1 BAD ") || lines[0].contains(" BAD "), "{}", text);
        prop_assert!(lines.last().is_some_and(|l| l.starts_with("t2 OK")), "{}", text);
    }
}

/// The harness drives whole sessions (so the properties above reach past
/// the greeting): log in, read the preloaded mail, deliver, say goodbye.
#[test]
fn the_harness_runs_whole_sessions() {
    let imap = b"a LOGIN alice@example.test alice-pw\r\nb SELECT INBOX\r\nc FETCH 2 BODY[]\r\nd LOGOUT\r\n";
    let transcript = fuzzing::imap(Peer::Loopback, &[imap.to_vec()], 1 << 20);
    let text = String::from_utf8_lossy(&transcript.output);
    assert!(text.contains("\r\nb OK [READ-WRITE]"), "{text}");
    assert!(text.contains("boundary=\"b1\"") && text.contains("\r\nc OK"), "{text}");
    assert!(text.ends_with("d OK LOGOUT completed\r\n"), "{text}");

    let smtp = b"EHLO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n";
    let transcript = fuzzing::smtp(false, Peer::Remote, &[smtp.to_vec()]);
    let text = String::from_utf8_lossy(&transcript.output);
    let codes: Vec<&str> =
        text.lines().filter(|l| l.as_bytes()[3] == b' ').map(|l| &l[..3]).collect();
    assert_eq!(codes, ["220", "250", "250", "250", "354", "250", "221"], "{text}");
    assert!(transcript.closed);

    let pop3 = b"USER alice@example.test\r\nPASS alice-pw\r\nRETR 1\r\nQUIT\r\n";
    let transcript = fuzzing::pop3(Peer::Loopback, &[pop3.to_vec()]);
    let text = String::from_utf8_lossy(&transcript.output);
    assert!(text.contains("\r\n..dot line\r\n") && text.ends_with("+OK Bye\r\n"), "{text}");
    assert!(transcript.closed);
}
