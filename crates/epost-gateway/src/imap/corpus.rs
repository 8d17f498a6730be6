//! Test messages for ENVELOPE, BODYSTRUCTURE and body sections: every
//! shape the structure code must answer for (attachments, nested
//! messages, alternatives, broken headers, no body, 8-bit data, long
//! lines), and the answers the gateway gave them before structures were
//! stored (`testdata/fetch-structure.txt`; since changed only where they
//! were wrong: a text part's default charset, a digest's parts), which
//! every way of answering must still give byte for byte.

/// `(name, message)` pairs.
pub(crate) fn messages() -> Vec<(&'static str, Vec<u8>)> {
    let attachment = "QUJDREVGR0g=\r\n".repeat(100);
    let long_line = "x".repeat(1500);
    let folded_subject = (0..40).map(|i| format!(" word{i}")).collect::<Vec<_>>().join("\r\n");
    let mut deep = String::from("From: deep@example.test\r\nSubject: deep\r\n");
    for level in 0..40 {
        deep.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{level}\"\r\n\r\n--b{level}\r\n"
        ));
    }
    deep.push_str("Content-Type: text/plain\r\n\r\nbottom\r\n");
    for level in (0..40).rev() {
        deep.push_str(&format!("--b{level}--\r\n"));
    }
    vec![
        ("mixed with attachment and message", super::mime::tests::MULTIPART.to_vec()),
        (
            "mixed with a large attachment",
            format!(
                "Received: from x by y; Mon, 6 Jan 2025 10:00:00 +0000\r\n\
                 From: \"Alice A.\" <alice@example.test>\r\nTo: bob@example.test\r\n\
                 Cc: Friends: carol@example.test, Dave <dave@example.test>;, eve@example.test\r\n\
                 Bcc: undisclosed-recipients:;\r\nSender: list@example.test\r\n\
                 Reply-To: <replies@example.test>\r\nSubject: report\r\n\
                 Date: Tue, 7 Jan 2025 11:00:00 +0100\r\nMessage-ID: <r1@example.test>\r\n\
                 In-Reply-To: <r0@example.test>\r\nMIME-Version: 1.0\r\n\
                 Content-Type: multipart/mixed;\r\n\tboundary=\"==outer==\"\r\n\
                 Content-Language: en, de\r\n\r\n\
                 --==outer==\r\nContent-Type: text/plain; charset=\"ISO-8859-1\"; format=flowed\r\n\
                 Content-Transfer-Encoding: quoted-printable\r\n\r\nSee =E9 attached.\r\n\
                 --==outer==\r\nContent-Type: application/pdf; name=\"report.pdf\"\r\n\
                 Content-Disposition: attachment;\r\n filename=\"report.pdf\"; size=42000\r\n\
                 Content-Transfer-Encoding: base64\r\nContent-ID: <part2@example.test>\r\n\
                 Content-Description: The report\r\nContent-Language: fr\r\n\
                 Content-Location: http://example.test/report.pdf\r\n\r\n\
                 {attachment}--==outer==--\r\n"
            )
            .into_bytes(),
        ),
        (
            "nested message with alternative",
            b"From: outer@example.test\r\nTo: x@example.test\r\nSubject: fwd\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=o\r\n\r\n\
--o\r\nContent-Type: text/plain\r\n\r\nsee below\r\n\
--o\r\nContent-Type: message/rfc822; name=\"fwd.eml\"\r\nContent-Disposition: inline\r\n\r\n\
From: Inner Person <inner@example.test>\r\nTo: y@example.test, z@example.test\r\n\
Subject: =?iso-8859-1?q?caf=E9?=\r\nDate: Wed, 8 Jan 2025 12:00:00 -0500\r\n\
Message-ID: <inner@example.test>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\
--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nplain\r\nlines\r\n\
--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html</p>\r\n\
--alt--\r\n\r\n--o--\r\n"
                .to_vec(),
        ),
        (
            "alternative",
            b"From: a@example.test\r\nSubject: alt\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nHello\r\n\
--b\r\nContent-Type: text/html; charset=us-ascii\r\nContent-Transfer-Encoding: 7bit\r\n\r\n\
<b>Hello</b>\r\n--b\r\nContent-Type: multipart/related; boundary=\"r\"; type=\"text/html\"\r\n\r\n\
--r\r\nContent-Type: text/html\r\n\r\n<img src=\"cid:i\">\r\n\
--r\r\nContent-Type: image/png\r\nContent-ID: <i>\r\nContent-Transfer-Encoding: base64\r\n\r\n\
iVBORw0KGgo=\r\n--r--\r\n--b--\r\n"
                .to_vec(),
        ),
        (
            "malformed headers",
            b"From alice Mon Jan  6 10:00:00 2025\r\nthis line has no colon\r\n\
From: broken <@>\r\nTo: ,,, <>\r\nSubject: \xff\xfe latin \xe9\r\n\
Content-Type: multipart/mixed\r\n : folded onto nothing\r\n\r\nbody without boundary\r\n"
                .to_vec(),
        ),
        (
            "bad multipart",
            b"From: a@example.test\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n\
--x\r\nContent-Type: text/plain\r\n\r\nunterminated part\r\n"
                .to_vec(),
        ),
        ("no body", b"From: a@example.test\r\nSubject: empty\r\n\r\n".to_vec()),
        ("no blank line", b"From: a@example.test\r\nSubject: headers only\r\n".to_vec()),
        ("empty", Vec::new()),
        ("not mail", b"\xff\xfe\x00\x01".to_vec()),
        (
            "8bit and nul",
            b"From: =?utf-8?b?SsO8cmdlbg==?= <j@example.test>\r\nSubject: Gr\xc3\xbc\xc3\x9fe\r\n\
MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\r\nK\xc3\xb6ln \x00 nul\r\nlast line without end"
                .to_vec(),
        ),
        (
            "long lines",
            format!(
                "From: a@example.test\r\nSubject:{folded_subject}\r\n\
                 X-Long: {long_line}\r\n\r\n{long_line}\r\n{long_line}"
            )
            .into_bytes(),
        ),
        (
            "bare lf",
            b"From: a@example.test\nSubject: lf\nContent-Type: multipart/mixed; boundary=q\n\n\
--q\nContent-Type: text/plain\n\none\n--q\nContent-Type: application/octet-stream\n\n\x01\x02\n--q--\n"
                .to_vec(),
        ),
        (
            "encoded message part",
            b"From: a@example.test\r\nContent-Type: multipart/mixed; boundary=e\r\n\r\n\
--e\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n\
U3ViamVjdDogaW5uZXINCg0KYm9keQ0K\r\n--e--\r\n"
                .to_vec(),
        ),
        (
            "digest and odd parameters",
            b"From: a@example.test\r\nContent-Type: MULTIPART/DIGEST; Boundary=\"d\"\r\n\r\n\
--d\r\n\r\nSubject: first\r\n\r\none\r\n\
--d\r\nContent-Type: Application/X-Thing; filename*0=\"long\"; filename*1=\"name.txt\"; flag\r\n\
Content-Disposition: ATTACHMENT; filename*=utf-8''%C3%A9t%C3%A9.txt\r\n\r\ndata\r\n--d--\r\n"
                .to_vec(),
        ),
        (
            "duplicate and missing fields",
            b"Subject: one\r\nSubject: two\r\nContent-Type: text/plain; charset=\"a\"\r\n\
Content-Type: text/html\r\nMessage-ID:\r\nDate: not a date\r\nReply-To: a@example.test\r\n\r\nx"
                .to_vec(),
        ),
        ("deep nesting", deep.into_bytes()),
    ]
}

/// What the corpus is asked, first the items a client's first sync asks
/// (answered without reading part bodies), then sections.
pub(crate) const STRUCTURE_ITEMS: &str = "(UID RFC822.SIZE ENVELOPE BODY BODYSTRUCTURE RFC822.HEADER \
BODY.PEEK[HEADER] BODY.PEEK[HEADER.FIELDS (FROM SUBJECT X-NONE)] \
BODY.PEEK[HEADER.FIELDS.NOT (RECEIVED FROM)])";
pub(crate) const SECTION_ITEMS: &str = "(UID BODY.PEEK[TEXT] BODY.PEEK[1] BODY.PEEK[1.MIME] \
BODY.PEEK[2] BODY.PEEK[2.1] BODY.PEEK[3.HEADER] BODY.PEEK[3.TEXT] BODY.PEEK[3.1] \
BODY.PEEK[2.HEADER.FIELDS (SUBJECT)] BODY.PEEK[]<0.20> RFC822.TEXT)";

/// Bytes as readable text: printable ASCII as it is, a line break after
/// each LF, everything else escaped.
pub(crate) fn escape(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n\n"),
            b'\r' => out.push_str("\\r"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Account;
    use crate::imap::mime;
    use crate::imap::session::Session;
    use crate::memory::MemoryBackend;
    use epost_types::mime::MessageStructure;
    use imap_codec::imap_types::command::Command;
    use imap_codec::imap_types::core::{AString, Vec1};
    use imap_codec::imap_types::fetch::Section;
    use imap_codec::{CommandCodec, decode::Decoder};

    fn command(line: &str) -> Command<'static> {
        let input = format!("{line}\r\n");
        CommandCodec::default().decode_static(input.as_bytes()).unwrap().1
    }

    async fn handle(session: &mut Session<MemoryBackend>, line: &str) -> String {
        let mut sink: Vec<u8> = Vec::new();
        session.handle(command(line), &mut sink).await.unwrap();
        escape(&sink)
    }

    /// The corpus's answers from a backend that keeps structures, or not;
    /// and how many whole messages the structure items read.
    async fn answers(adjust: impl FnOnce(MemoryBackend) -> MemoryBackend) -> (String, u64) {
        let (mut session, backend) = crate::imap::session::tests::session_on(adjust);
        assert!(handle(&mut session, "a LOGIN alice@example.test alice-pw").await.is_empty());
        let account = session.account().unwrap();
        let corpus = messages();
        for (_, raw) in &corpus {
            let raw = bytes::Bytes::from(raw.clone());
            account.append("INBOX", raw, vec![], Some(1_700_000_000_000)).await.unwrap();
        }
        handle(&mut session, "s SELECT INBOX").await;
        let mut out = String::new();
        let mut structure_reads = 0;
        for (i, (name, _)) in corpus.iter().enumerate() {
            out.push_str(&format!("== {name}\n"));
            let before = backend.full_reads();
            out.push_str(
                &handle(&mut session, &format!("f FETCH {} {STRUCTURE_ITEMS}", i + 1)).await,
            );
            structure_reads += backend.full_reads() - before;
            out.push('\n');
            out.push_str(
                &handle(&mut session, &format!("f FETCH {} {SECTION_ITEMS}", i + 1)).await,
            );
            out.push('\n');
        }
        (out, structure_reads)
    }

    /// The first line where `got` and `want` differ, for a readable failure.
    fn first_difference(got: &str, want: &str) -> Option<String> {
        let lines = got.lines().zip(want.lines()).enumerate();
        let found = lines.into_iter().find(|(_, (g, w))| g != w);
        match found {
            Some((n, (g, w))) => Some(format!("line {}:\n got: {g}\nwant: {w}", n + 1)),
            None if got.len() != want.len() => Some("one is a prefix of the other".into()),
            None => None,
        }
    }

    const BEFORE: &str = include_str!("../../testdata/fetch-structure.txt");

    #[tokio::test]
    async fn stored_structures_answer_as_before_without_reading_messages() {
        let (got, reads) = answers(|backend| backend).await;
        assert_eq!(first_difference(&got, BEFORE), None);
        assert_eq!(reads, 0, "structure items read whole messages");
    }

    #[tokio::test]
    async fn mail_stored_without_a_structure_answers_as_before() {
        let (got, reads) = answers(MemoryBackend::without_structures).await;
        assert_eq!(first_difference(&got, BEFORE), None);
        assert_eq!(reads, messages().len() as u64);
    }

    /// ENVELOPE, BODY, BODYSTRUCTURE and the header sections from a
    /// structure as stored (encoded, decoded and checked) with only the
    /// bytes through the header equal those from parsing the whole
    /// message.
    #[test]
    fn stored_structure_and_head_equal_a_parse_of_the_whole_message() {
        let names = Vec1::try_from(vec![
            AString::try_from("from").unwrap(),
            AString::try_from("subject").unwrap(),
        ])
        .unwrap();
        let header_sections = [
            Section::Header(None),
            Section::HeaderFields(None, names.clone()),
            Section::HeaderFieldsNot(None, names),
        ];
        for (name, raw) in messages() {
            let parsed = epost_types::mime::parse(&raw).structure;
            let stored = MessageStructure::decode(&parsed.encode(), raw.len() as u64)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let head = &raw[..stored.head_len()];
            assert_eq!(
                mime::envelope(&stored.envelope),
                mime::envelope(&parsed.envelope),
                "{name}"
            );
            for extended in [false, true] {
                assert_eq!(
                    mime::body_structure(&stored, extended),
                    mime::body_structure(&parsed, extended),
                    "{name}"
                );
            }
            for section in &header_sections {
                let extent = mime::extent(&stored, section);
                assert!(extent.is_none_or(|span| span.1 as usize <= head.len()), "{name}");
                assert_eq!(
                    mime::section(head, &stored, Some(section)),
                    mime::section(&raw, &parsed, Some(section)),
                    "{name}: {section:?}"
                );
            }
        }
    }
}
