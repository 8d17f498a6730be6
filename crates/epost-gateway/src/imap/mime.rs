//! IMAP's view of a message's MIME structure ([`epost_types::mime`],
//! found once when the message was received, or from its bytes for mail
//! stored before that): ENVELOPE and BODYSTRUCTURE rendered from it, and
//! BODY[section] cut from the unchanged raw bytes by its ranges. What
//! IMAP adds to the neutral description (upper case, defaults, NIL,
//! group markers) is decided here, and nothing here parses MIME.

use std::borrow::Cow;
use std::num::NonZeroU32;

use epost_types::mime::{self, AddressEntry, Entity, Kind, MessageStructure, Span};
use imap_codec::imap_types::body::{
    BasicFields, Body, BodyStructure, Disposition, Language, Location, MultiPartExtensionData,
    SinglePartExtensionData, SpecificFields,
};
use imap_codec::imap_types::core::{AString, IString, NString, Quoted, Vec1};
use imap_codec::imap_types::envelope::{Address, Envelope};
use imap_codec::imap_types::fetch::{Part, Section};

// ---- Header fields -------------------------------------------------------------

/// HEADER.FIELDS and HEADER.FIELDS.NOT: the chosen fields, exactly as
/// they are, then the blank line.
pub(crate) fn filter_fields(header: &[u8], names: &[AString<'_>], keep: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for field in mime::fields(header) {
        let listed = names.iter().any(|n| n.as_ref().eq_ignore_ascii_case(field.name));
        if listed == keep {
            out.extend_from_slice(field.whole);
            if !field.whole.ends_with(b"\n") {
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

// ---- Sections ------------------------------------------------------------------

/// The bytes of `range` in `raw`; nothing if `raw` does not reach that
/// far (a checked structure's ranges always lie inside its message).
fn cut(raw: &[u8], span: Span) -> &[u8] {
    raw.get(span.range()).unwrap_or_default()
}

/// The entity a part number names (RFC 3501 section 6.4.5), walked as
/// Dovecot walks it: a multipart's number picks its part; any other
/// entity has one part, numbered 1 (the entity itself: a message that is
/// not a multipart has its body as part 1), after which only a
/// message/rfc822 goes on, its further numbers counting the parts of the
/// message it encapsulates.
pub(crate) fn part<'s>(structure: &'s MessageStructure, path: &[NonZeroU32]) -> Option<&'s Entity> {
    let mut entity = structure.root().filter(|_| !path.is_empty())?;
    for (at, n) in path.iter().enumerate() {
        let more = at + 1 < path.len();
        entity = match &entity.kind {
            Kind::Multipart(children) => nth(structure, children, n.get())?,
            Kind::Message { .. } if n.get() == 1 => entity,
            Kind::Leaf if n.get() == 1 && !more => entity,
            Kind::Message { .. } | Kind::Leaf => return None,
        };
        if let (true, Kind::Message { root, .. }) = (more, &entity.kind) {
            entity = structure.entity(*root)?;
        }
    }
    Some(entity)
}

fn nth<'s>(structure: &'s MessageStructure, children: &[u32], n: u32) -> Option<&'s Entity> {
    let index = usize::try_from(n.checked_sub(1)?).ok()?;
    structure.entity(*children.get(index)?)
}

/// The top-level entity of the message whose header or text a section
/// names: the whole message's, or that of the message a message/rfc822
/// part encapsulates (any other part has no header or text of its own).
fn message_at<'s>(structure: &'s MessageStructure, path: Option<&Part>) -> Option<&'s Entity> {
    match path {
        None => structure.root(),
        Some(path) => match &part(structure, path.0.as_ref())?.kind {
            Kind::Message { root, .. } => structure.entity(*root),
            _ => None,
        },
    }
}

/// The bytes of the message a BODY[section] is cut from (for
/// HEADER.FIELDS and HEADER.FIELDS.NOT, the header they choose from);
/// `None` if the section names no part there is (its answer is empty).
/// What it needs read of the message is decided from this alone.
pub(crate) fn extent(structure: &MessageStructure, section: &Section<'_>) -> Option<Span> {
    Some(match section {
        Section::Part(path) => part(structure, path.0.as_ref())?.body,
        Section::Mime(path) => part(structure, path.0.as_ref())?.header,
        Section::Header(path)
        | Section::HeaderFields(path, _)
        | Section::HeaderFieldsNot(path, _) => message_at(structure, path.as_ref())?.header,
        Section::Text(path) => text(structure, path.as_ref())?,
    })
}

/// A message's text: its top-level entity's body, and for an embedded
/// message everything through the end of the part holding it (after a
/// multipart's closing boundary comes its epilogue, which mail-parser
/// leaves out of the multipart's body but is the message's text).
fn text(structure: &MessageStructure, path: Option<&Part>) -> Option<Span> {
    let top = message_at(structure, path)?;
    let Some(path) = path else { return Some(top.body) };
    let holder = part(structure, path.0.as_ref())?;
    Some(Span(top.body.0, top.body.1.max(holder.body.1)))
}

/// The bytes a BODY[section] names in `raw`: the whole message, or as
/// much of it as reaches past the section's [`extent`]; `None` if there
/// is no such part.
pub(crate) fn section<'r>(
    raw: &'r [u8],
    structure: &MessageStructure,
    section: Option<&Section<'_>>,
) -> Option<Cow<'r, [u8]>> {
    let Some(section) = section else { return Some(Cow::Borrowed(raw)) };
    let bytes = cut(raw, extent(structure, section)?);
    Some(match section {
        Section::HeaderFields(_, names) => Cow::Owned(filter_fields(bytes, names.as_ref(), true)),
        Section::HeaderFieldsNot(_, names) => {
            Cow::Owned(filter_fields(bytes, names.as_ref(), false))
        }
        _ => Cow::Borrowed(bytes),
    })
}

// ---- ENVELOPE and BODYSTRUCTURE ---------------------------------------------------

/// An IMAP string for any text (NULs dropped: IMAP strings cannot carry
/// them).
pub(crate) fn istring(bytes: &[u8]) -> IString<'static> {
    let clean: Vec<u8> = bytes.iter().copied().filter(|&b| b != 0).collect();
    IString::try_from(clean).unwrap_or_else(|_| IString::Quoted(Quoted::unvalidated("")))
}

fn nstring(bytes: Option<&[u8]>) -> NString<'static> {
    NString(bytes.map(istring))
}

/// ENVELOPE: Sender and Reply-To default to From (RFC 3501 section 7.4.2).
pub(crate) fn envelope(fields: &mime::Envelope) -> Envelope<'static> {
    let from = addresses(&fields.from);
    let or_from = |list: Vec<Address<'static>>| if list.is_empty() { from.clone() } else { list };
    Envelope {
        date: nstring(fields.date.as_deref()),
        subject: nstring(fields.subject.as_deref()),
        sender: or_from(addresses(&fields.sender)),
        reply_to: or_from(addresses(&fields.reply_to)),
        from: from.clone(),
        to: addresses(&fields.to),
        cc: addresses(&fields.cc),
        bcc: addresses(&fields.bcc),
        in_reply_to: nstring(fields.in_reply_to.as_deref()),
        message_id: nstring(fields.message_id.as_deref()),
    }
}

/// An address field; a named group between its start and end markers.
fn addresses(entries: &[AddressEntry]) -> Vec<Address<'static>> {
    let marker = |group: Option<&str>| Address {
        name: NString(None),
        adl: NString(None),
        mailbox: nstring(group.map(str::as_bytes)),
        host: NString(None),
    };
    let mut out = Vec::new();
    for entry in entries {
        match entry {
            AddressEntry::Mailbox(mailbox) => out.push(address(mailbox)),
            AddressEntry::Group { name: Some(name), members } => {
                out.push(marker(Some(name)));
                out.extend(members.iter().filter(|m| in_group(m)).map(address));
                out.push(marker(None));
            }
            AddressEntry::Group { name: None, members } => out.extend(members.iter().map(address)),
        }
    }
    out
}

/// Whether a group member is an address: mail-parser reads a comment
/// in a group (`group: (none) ;`) as a member with a name and no
/// address, which RFC 3501's envelope leaves out.
fn in_group(member: &mime::Mailbox) -> bool {
    member.address.as_deref().is_some_and(|a| !a.is_empty())
}

/// One address: its name, the source route of an obsolete route address
/// (`<@route:user@domain>`), its mailbox and its host.
fn address(mailbox: &mime::Mailbox) -> Address<'static> {
    let whole = mailbox.address.as_deref().unwrap_or_default();
    let (route, address) = match whole.strip_prefix('@').and_then(|_| whole.split_once(':')) {
        Some((route, address)) => (Some(route), address),
        None => (None, whole),
    };
    let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
    Address {
        name: nstring(mailbox.name.as_deref().map(str::as_bytes)),
        adl: nstring(route.map(str::as_bytes)),
        mailbox: nstring(Some(local.as_bytes())),
        host: nstring(Some(domain.as_bytes())),
    }
}

fn params(list: &[(String, String)]) -> Vec<(IString<'static>, IString<'static>)> {
    list.iter()
        .map(|(k, v)| (istring(k.to_ascii_uppercase().as_bytes()), istring(v.as_bytes())))
        .collect()
}

/// A single part's parameters. A text part that names no charset is
/// US-ASCII (RFC 2046 section 4.1.2), which is said, as Dovecot does.
fn single_params(entity: &Entity) -> Vec<(IString<'static>, IString<'static>)> {
    let named = entity.params.iter().any(|(k, _)| k.eq_ignore_ascii_case("charset"));
    match (&entity.kind, entity.media_type.as_str()) {
        // A digest's part that names no type is a message/rfc822;
        // structures stored before that was seen to call it text/plain
        // with the default charset, which a message has not.
        (Kind::Message { .. }, "text") => Vec::new(),
        (_, "text") if !named => {
            let mut list = params(&entity.params);
            list.push((istring(b"CHARSET"), istring(b"us-ascii")));
            list
        }
        _ => params(&entity.params),
    }
}

fn disposition(entity: &Entity) -> Disposition<'static> {
    Disposition {
        disposition: entity
            .disposition
            .as_ref()
            .map(|d| (istring(d.kind.as_bytes()), params(&d.params))),
        tail: Some(Language {
            language: entity.language.iter().map(|tag| istring(tag)).collect(),
            tail: Some(Location {
                location: nstring(entity.location.as_deref()),
                extensions: Vec::new(),
            }),
        }),
    }
}

fn upper(text: &str) -> IString<'static> {
    istring(text.to_ascii_uppercase().as_bytes())
}

/// BODYSTRUCTURE (`extended`) or BODY of the message's top entity.
pub(crate) fn body_structure(
    structure: &MessageStructure,
    extended: bool,
) -> BodyStructure<'static> {
    match structure.root() {
        Some(root) => entity_structure(structure, root, extended, 0),
        None => entity_structure(structure, &Entity::missing(), extended, 0),
    }
}

fn entity_structure(
    structure: &MessageStructure,
    entity: &Entity,
    extended: bool,
    depth: usize,
) -> BodyStructure<'static> {
    // Bounded: a checked structure is a tree of bounded depth.
    let deeper = depth < epost_types::limits::MAX_MIME_DEPTH + 1;
    if let Kind::Multipart(children) = &entity.kind
        && deeper
        && let Ok(bodies) = Vec1::try_from(
            children
                .iter()
                .filter_map(|&c| structure.entity(c))
                .map(|c| entity_structure(structure, c, extended, depth + 1))
                .collect::<Vec<_>>(),
        )
    {
        return BodyStructure::Multi {
            bodies,
            subtype: upper(&entity.subtype),
            extension_data: extended.then(|| MultiPartExtensionData {
                parameter_list: params(&entity.params),
                tail: Some(disposition(entity)),
            }),
        };
    }
    let encoding = entity
        .encoding
        .as_ref()
        .map(|e| e.to_ascii_uppercase())
        .unwrap_or_else(|| b"7BIT".to_vec());
    let basic = BasicFields {
        parameter_list: single_params(entity),
        id: nstring(entity.id.as_deref()),
        description: nstring(entity.description.as_deref()),
        content_transfer_encoding: istring(&encoding),
        size: entity.body.len() as u32,
    };
    let inner = match &entity.kind {
        Kind::Message { envelope, root } if deeper => {
            structure.entity(*root).map(|root| (envelope, root))
        }
        _ => None,
    };
    let lines = entity.lines as u32;
    let specific = match inner {
        Some((fields, root)) => SpecificFields::Message {
            envelope: Box::new(envelope(fields)),
            body_structure: Box::new(entity_structure(structure, root, extended, depth + 1)),
            number_of_lines: lines,
        },
        None if entity.media_type == "text" => {
            SpecificFields::Text { subtype: upper(&entity.subtype), number_of_lines: lines }
        }
        None => SpecificFields::Basic {
            r#type: upper(&entity.media_type),
            subtype: upper(&entity.subtype),
        },
    };
    BodyStructure::Single {
        body: Body { basic, specific },
        extension_data: extended.then(|| SinglePartExtensionData {
            md5: NString(None),
            tail: Some(disposition(entity)),
        }),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use imap_codec::imap_types::fetch::Part;

    pub(crate) const MULTIPART: &[u8] = b"From: Alice <alice@example.test>\r\n\
To: bob@example.test, \"Carol C.\" <carol@example.test>\r\n\
Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= and files\r\n\
Date: Mon, 6 Jan 2025 10:00:00 +0000\r\n\
Message-ID: <m1@example.test>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"XX\"\r\n\
\r\n\
preamble\r\n\
--XX\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln\r\n\
--XX\r\n\
Content-Type: application/octet-stream; name=\"a.bin\"\r\n\
Content-Disposition: attachment; filename=\"a.bin\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
AAECAwQ=\r\n\
--XX\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: inner@example.test\r\n\
Subject: inner\r\n\
\r\n\
inner body\r\n\
--XX--\r\n\
epilogue\r\n";

    fn part(numbers: &[u32]) -> Part {
        Part(
            Vec1::try_from(
                numbers.iter().map(|&n| NonZeroU32::new(n).unwrap()).collect::<Vec<_>>(),
            )
            .unwrap(),
        )
    }

    fn text(raw: &[u8], structure: &MessageStructure, s: Section<'_>) -> String {
        String::from_utf8_lossy(&section(raw, structure, Some(&s)).unwrap()).into_owned()
    }

    #[test]
    fn sections_are_exact_byte_ranges() {
        let raw = MULTIPART;
        let structure = &mime::parse(raw).structure;
        assert!(text(raw, structure, Section::Header(None)).ends_with("boundary=\"XX\"\r\n\r\n"));
        assert!(text(raw, structure, Section::Text(None)).starts_with("preamble\r\n--XX"));
        assert_eq!(text(raw, structure, Section::Part(part(&[1]))), "Grüße aus Köln");
        assert_eq!(text(raw, structure, Section::Part(part(&[2]))), "AAECAwQ=");
        assert!(
            text(raw, structure, Section::Mime(part(&[2])))
                .starts_with("Content-Type: application/octet-stream")
        );
        assert!(
            text(raw, structure, Section::Part(part(&[3])))
                .starts_with("From: inner@example.test\r\n")
        );
        assert_eq!(
            text(raw, structure, Section::Header(Some(part(&[3])))),
            "From: inner@example.test\r\nSubject: inner\r\n\r\n"
        );
        assert_eq!(text(raw, structure, Section::Part(part(&[3, 1]))), "inner body");
        assert!(section(raw, structure, Some(&Section::Part(part(&[4])))).is_none());
        let names = Vec1::from(AString::try_from("subject").unwrap());
        assert_eq!(
            text(raw, structure, Section::HeaderFields(None, names)),
            "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= and files\r\n\r\n"
        );
    }

    #[test]
    fn structure_and_envelope() {
        let structure = mime::parse(MULTIPART).structure;
        let envelope = envelope(&structure.envelope);
        assert_eq!(envelope.from.len(), 1);
        assert_eq!(envelope.to.len(), 2);
        assert_eq!(envelope.sender, envelope.from);
        let BodyStructure::Multi { bodies, .. } = body_structure(&structure, true) else {
            panic!("multipart expected");
        };
        assert_eq!(bodies.as_ref().len(), 3);
        let encoded = format!("{:?}", bodies.as_ref()[2]);
        assert!(encoded.contains("Message"), "{encoded}");
    }

    #[test]
    fn malformed_messages_get_a_plain_structure() {
        for raw in [
            &b""[..],
            b"no header at all",
            b"\r\n\r\n",
            b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n",
            b"\xff\xfe\x00\x01",
        ] {
            let structure = mime::parse(raw).structure;
            let _ = body_structure(&structure, true);
            assert_eq!(section(raw, &structure, None).unwrap().as_ref(), raw);
            let _ = section(raw, &structure, Some(&Section::Text(None)));
        }
    }

    #[test]
    fn a_structure_without_entities_or_bytes_answers_without_panicking() {
        let mut structure = mime::parse(MULTIPART).structure;
        // The first bytes only: sections beyond them are empty, not a panic.
        let head = &MULTIPART[..40];
        assert!(section(head, &structure, Some(&Section::Part(part(&[3, 1])))).unwrap().is_empty());
        structure.entities.clear();
        let _ = body_structure(&structure, true);
        assert!(section(MULTIPART, &structure, Some(&Section::Text(None))).is_none());
    }

    /// imaptest's message/rfc822 inside message/rfc822: a top level that
    /// is not a multipart has one part, its body.
    const NESTED: &[u8] = b"From: user@domain.org\r\nContent-Type: message/rfc822\r\n\r\n\
From: user2@domain.org\r\nContent-Type: message/rfc822\r\n\r\n\
From: sub@domain.org\r\nSubject: submsg\r\n\r\nHello world\r\n";

    /// A forwarded message and a single-part one inside a multipart, and
    /// a digest (whose parts are messages without saying so).
    const FORWARDS: &[u8] = b"From: outer@example.test\r\n\
Content-Type: multipart/mixed; boundary=o\r\n\r\n\
--o\r\nContent-Type: text/plain\r\n\r\nsee below\r\n\
--o\r\nContent-Type: message/rfc822\r\nContent-Description: single\r\n\r\n\
From: one@example.test\r\nSubject: one\r\n\r\none body\r\n\
--o\r\nContent-Type: message/rfc822\r\n\r\n\
From: two@example.test\r\nSubject: two\r\nContent-Type: multipart/alternative; boundary=a\r\n\r\n\
--a\r\nContent-Type: text/plain\r\n\r\nplain\r\n\
--a\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--a--\r\nepilogue\r\n\
--o\r\nContent-Type: multipart/digest; boundary=d\r\n\r\n\
--d\r\n\r\nSubject: m1\r\n\r\nm1 body\r\n\
--d\r\nX-Mime: m2 header\r\n\r\nSubject: m2\r\n\r\nm2 body\r\n--d--\r\n\
--o--\r\n";

    fn header(names: &[&str]) -> Vec1<AString<'static>> {
        let names: Vec<AString<'static>> =
            names.iter().map(|n| AString::try_from(n.to_string()).unwrap()).collect();
        Vec1::try_from(names).unwrap()
    }

    #[test]
    fn parts_are_numbered_within_their_message() {
        type Make = fn(Part) -> Section<'static>;
        let body: Make = Section::Part;
        let mime: Make = Section::Mime;
        let head: Make = |p| Section::Header(Some(p));
        let text: Make = |p| Section::Text(Some(p));
        let fields: Make = |p| Section::HeaderFields(Some(p), header(&["subject", "x-none"]));
        let not: Make = |p| Section::HeaderFieldsNot(Some(p), header(&["from"]));
        let nested_inner = "From: sub@domain.org\r\nSubject: submsg\r\n\r\nHello world\r\n";
        type Case = (&'static [u8], &'static [u32], Make, Option<&'static str>);
        let table: [Case; 31] = [
            (
                NESTED,
                &[1],
                body,
                Some(
                    "From: user2@domain.org\r\nContent-Type: message/rfc822\r\n\r\nFrom: sub@domain.org\r\nSubject: submsg\r\n\r\nHello world\r\n",
                ),
            ),
            (
                NESTED,
                &[1],
                mime,
                Some("From: user@domain.org\r\nContent-Type: message/rfc822\r\n\r\n"),
            ),
            (
                NESTED,
                &[1],
                head,
                Some("From: user2@domain.org\r\nContent-Type: message/rfc822\r\n\r\n"),
            ),
            (NESTED, &[1], text, Some(nested_inner)),
            (NESTED, &[1, 1], body, Some(nested_inner)),
            (NESTED, &[1, 1], head, Some("From: sub@domain.org\r\nSubject: submsg\r\n\r\n")),
            (NESTED, &[1, 1], text, Some("Hello world\r\n")),
            (NESTED, &[1, 1, 1], body, Some("Hello world\r\n")),
            (NESTED, &[1, 1, 1, 1], body, None),
            (NESTED, &[2], body, None),
            (FORWARDS, &[1], body, Some("see below")),
            (FORWARDS, &[1], mime, Some("Content-Type: text/plain\r\n\r\n")),
            // A part that is not a message has no header or text of its own.
            (FORWARDS, &[1], head, None),
            (FORWARDS, &[1], text, None),
            // A part that is not a multipart is its own part 1 (Dovecot).
            (FORWARDS, &[1, 1], body, Some("see below")),
            (FORWARDS, &[1, 1, 1], body, None),
            (
                FORWARDS,
                &[2],
                mime,
                Some("Content-Type: message/rfc822\r\nContent-Description: single\r\n\r\n"),
            ),
            (FORWARDS, &[2], fields, Some("Subject: one\r\n\r\n")),
            (FORWARDS, &[2], not, Some("Subject: one\r\n\r\n")),
            (FORWARDS, &[2, 1], body, Some("one body")),
            // The body of a single-part message: its MIME header is the
            // message's.
            (FORWARDS, &[2, 1], mime, Some("From: one@example.test\r\nSubject: one\r\n\r\n")),
            (FORWARDS, &[2, 1, 1], body, None),
            (FORWARDS, &[3, 1], body, Some("plain")),
            (FORWARDS, &[3, 2], mime, Some("Content-Type: text/html\r\n\r\n")),
            (FORWARDS, &[3, 3], body, None),
            (
                FORWARDS,
                &[3],
                text,
                Some(
                    "--a\r\nContent-Type: text/plain\r\n\r\nplain\r\n--a\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--a--\r\nepilogue",
                ),
            ),
            (FORWARDS, &[4, 1], body, Some("Subject: m1\r\n\r\nm1 body")),
            (FORWARDS, &[4, 1], mime, Some("\r\n")),
            (FORWARDS, &[4, 2], mime, Some("X-Mime: m2 header\r\n\r\n")),
            (FORWARDS, &[4, 2], head, Some("Subject: m2\r\n\r\n")),
            (FORWARDS, &[4, 2], text, Some("m2 body")),
        ];
        for (raw, numbers, make, want) in table {
            let structure = mime::parse(raw).structure;
            let asked = make(part(numbers));
            let got = section(raw, &structure, Some(&asked));
            let got = got.as_deref().map(|b| String::from_utf8_lossy(b).into_owned());
            assert_eq!(got.as_deref(), want, "{numbers:?} {asked:?}");
            // What the answer is cut from is what is asked to be read.
            if let (Some(span), Some(_)) = (extent(&structure, &asked), want) {
                let cut = section(&raw[..span.1 as usize], &structure, Some(&asked));
                assert_eq!(cut.as_deref(), section(raw, &structure, Some(&asked)).as_deref());
            }
        }
    }

    #[test]
    fn a_digest_part_is_a_message_without_parameters() {
        let structure = mime::parse(FORWARDS).structure;
        let BodyStructure::Multi { bodies, .. } = body_structure(&structure, false) else {
            panic!("multipart expected");
        };
        let BodyStructure::Multi { bodies: digest, .. } = &bodies.as_ref()[3] else {
            panic!("digest expected");
        };
        for message in digest.as_ref() {
            let BodyStructure::Single { body, .. } = message else { panic!("{message:?}") };
            assert!(body.basic.parameter_list.is_empty(), "{body:?}");
            assert!(matches!(body.specific, SpecificFields::Message { .. }), "{body:?}");
        }
        // A text part naming no charset is US-ASCII; one naming it keeps it.
        let BodyStructure::Single { body, .. } = &bodies.as_ref()[0] else { panic!() };
        assert_eq!(body.basic.parameter_list, vec![(istring(b"CHARSET"), istring(b"us-ascii"))]);
    }

    #[test]
    fn envelope_addresses() {
        let raw = b"From: <@route:user@domain>\r\n\
To: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\r\n\
Cc: group:;, group2: (foo) ;\r\nSubject: a\r\n\r\nbody\r\n";
        let structure = mime::parse(raw).structure;
        let envelope = envelope(&structure.envelope);
        let show = |list: &[Address<'_>]| {
            let part = |s: &NString<'_>| match &s.0 {
                Some(s) => String::from_utf8_lossy(s.as_ref()).into_owned(),
                None => "NIL".into(),
            };
            list.iter()
                .map(|a| {
                    format!(
                        "{} {} {} {}",
                        part(&a.name),
                        part(&a.adl),
                        part(&a.mailbox),
                        part(&a.host)
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(show(&envelope.from), ["NIL @route user domain"]);
        assert_eq!(
            show(&envelope.to),
            [
                "NIL NIL group NIL",
                "NIL NIL g1 d1.org",
                "NIL NIL g2 d2.org",
                "NIL NIL NIL NIL",
                "NIL NIL group2 NIL",
                "NIL NIL g3 d3.org",
                "NIL NIL NIL NIL"
            ]
        );
        // An empty group, and one holding only a comment.
        assert_eq!(
            show(&envelope.cc),
            ["NIL NIL group NIL", "NIL NIL NIL NIL", "NIL NIL group2 NIL", "NIL NIL NIL NIL"]
        );
    }
}
