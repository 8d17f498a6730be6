//! A message's MIME structure as byte ranges into its unchanged raw bytes,
//! found with `mail-parser`: ENVELOPE, BODYSTRUCTURE and BODY[section]
//! are cut from it. Malformed messages get a plain-text structure rather
//! than an error, and nesting is bounded.

use std::borrow::Cow;
use std::ops::Range;

use imap_codec::imap_types::body::{
    BasicFields, Body, BodyStructure, Disposition, Language, Location, MultiPartExtensionData,
    SinglePartExtensionData, SpecificFields,
};
use imap_codec::imap_types::core::{AString, IString, NString, Quoted, Vec1};
use imap_codec::imap_types::envelope::{Address, Envelope};
use imap_codec::imap_types::fetch::Section;
use mail_parser::{Encoding, HeaderValue, Message, MessageParser, MessagePart, PartType};

/// Deeper nesting than this is shown as an opaque part.
const MAX_DEPTH: usize = 32;

/// One MIME entity.
#[derive(Debug, Clone)]
pub(crate) struct Entity {
    /// Its header (for the top level: the message header), with the blank
    /// line that ends it.
    pub(crate) header: Range<usize>,
    pub(crate) body: Range<usize>,
    pub(crate) ctype: String,
    pub(crate) subtype: String,
    pub(crate) params: Vec<(String, String)>,
    pub(crate) disposition: Option<(String, Vec<(String, String)>)>,
    pub(crate) kind: Kind,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Leaf,
    Multipart(Vec<Entity>),
    /// message/rfc822: the embedded message's envelope and top entity.
    Message(Box<Envelope<'static>>, Box<Entity>),
}

/// A parsed message: its envelope and top-level entity.
#[derive(Debug, Clone)]
pub(crate) struct Structure {
    pub(crate) envelope: Envelope<'static>,
    pub(crate) root: Entity,
}

/// Finds the structure of `raw` (never fails: a message mail-parser
/// cannot read is one text/plain part).
pub(crate) fn parse(raw: &[u8]) -> Structure {
    match MessageParser::default().parse(raw) {
        Some(message) if !message.parts.is_empty() => {
            let root = build(raw, &message, 0, 0);
            let envelope = envelope(raw, root.header.clone(), &message.parts[0]);
            Structure { envelope, root }
        }
        _ => {
            let split = header_end(raw);
            let root = Entity {
                header: 0..split,
                body: split..raw.len(),
                ctype: "text".into(),
                subtype: "plain".into(),
                params: vec![("charset".into(), "us-ascii".into())],
                disposition: None,
                kind: Kind::Leaf,
            };
            let envelope = envelope_from_fields(raw, root.header.clone(), None);
            Structure { envelope, root }
        }
    }
}

/// Where the header ends (after its blank line), by hand.
fn header_end(raw: &[u8]) -> usize {
    let mut at = 0;
    for line in raw.split_inclusive(|&b| b == b'\n') {
        at += line.len();
        if line == b"\r\n" || line == b"\n" {
            return at;
        }
    }
    raw.len()
}

fn clamp(raw: &[u8], start: u32, end: u32) -> Range<usize> {
    let start = (start as usize).min(raw.len());
    let end = (end as usize).clamp(start, raw.len());
    start..end
}

fn build(raw: &[u8], message: &Message<'_>, id: usize, depth: usize) -> Entity {
    let Some(part) = message.parts.get(id) else {
        return Entity {
            header: 0..0,
            body: 0..0,
            ctype: "text".into(),
            subtype: "plain".into(),
            params: Vec::new(),
            disposition: None,
            kind: Kind::Leaf,
        };
    };
    let header = clamp(raw, part.offset_header, part.offset_body);
    let body = clamp(raw, part.offset_body, part.offset_end);
    let content_type = find_header(part, "content-type").and_then(|v| v.as_content_type());
    let (ctype, subtype, params) = match content_type {
        Some(ct) => (
            ct.ctype().to_ascii_lowercase(),
            ct.subtype().unwrap_or("plain").to_ascii_lowercase(),
            ct.attributes()
                .unwrap_or_default()
                .iter()
                .map(|a| (a.name.to_string(), a.value.to_string()))
                .collect(),
        ),
        None => ("text".into(), "plain".into(), vec![("charset".into(), "us-ascii".into())]),
    };
    let disposition =
        find_header(part, "content-disposition").and_then(|v| v.as_content_type()).map(|d| {
            let params = d
                .attributes()
                .unwrap_or_default()
                .iter()
                .map(|a| (a.name.to_string(), a.value.to_string()))
                .collect();
            (d.ctype().to_owned(), params)
        });
    let kind = match &part.body {
        _ if depth >= MAX_DEPTH => Kind::Leaf,
        PartType::Multipart(children) if ctype == "multipart" && !children.is_empty() => {
            Kind::Multipart(
                children
                    .iter()
                    .filter(|&&child| child as usize != id)
                    .map(|&child| build(raw, message, child as usize, depth + 1))
                    .collect(),
            )
        }
        // Offsets are into our bytes only when the embedded message was
        // not transfer-encoded.
        PartType::Message(inner) if part.encoding == Encoding::None && !inner.parts.is_empty() => {
            let top = build(raw, inner, 0, depth + 1);
            let envelope = envelope(raw, top.header.clone(), &inner.parts[0]);
            Kind::Message(Box::new(envelope), Box::new(top))
        }
        _ => Kind::Leaf,
    };
    Entity { header, body, ctype, subtype, params, disposition, kind }
}

fn find_header<'p, 'x>(part: &'p MessagePart<'x>, name: &str) -> Option<&'p HeaderValue<'x>> {
    part.headers.iter().find(|h| h.name.as_str().eq_ignore_ascii_case(name)).map(|h| &h.value)
}

// ---- Header fields, by hand and exactly -------------------------------------

/// One header field: its name and where it is (with its line end).
#[derive(Debug, Clone)]
pub(crate) struct Field<'a> {
    pub(crate) name: &'a [u8],
    /// The raw value after the colon, folding included.
    pub(crate) value: &'a [u8],
    pub(crate) whole: &'a [u8],
}

/// The fields of a header block, in order; lines that are not fields are
/// left out.
pub(crate) fn fields(header: &[u8]) -> Vec<Field<'_>> {
    let mut fields = Vec::new();
    let mut start: Option<usize> = None;
    let mut at = 0;
    fn close<'h>(header: &'h [u8], fields: &mut Vec<Field<'h>>, from: usize, to: usize) {
        let whole = &header[from..to];
        if let Some(colon) = whole.iter().position(|&b| b == b':') {
            let name = trim(&whole[..colon]);
            if !name.is_empty() {
                fields.push(Field { name, value: &whole[colon + 1..], whole });
            }
        }
    }
    for line in header.split_inclusive(|&b| b == b'\n') {
        let folded = matches!(line.first(), Some(b' ' | b'\t'));
        if !folded {
            if let Some(from) = start.take() {
                close(header, &mut fields, from, at);
            }
            if line == b"\r\n" || line == b"\n" {
                break;
            }
            start = Some(at);
        }
        at += line.len();
    }
    if let Some(from) = start {
        close(header, &mut fields, from, at);
    }
    fields
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &bytes[start..end]
}

/// A field's value unfolded and trimmed.
pub(crate) fn unfold(value: &[u8]) -> Vec<u8> {
    let joined: Vec<u8> = value.iter().copied().filter(|&b| b != b'\r' && b != b'\n').collect();
    trim(&joined).to_vec()
}

/// The first field named `name` (any case), unfolded.
pub(crate) fn header_value(header: &[u8], name: &str) -> Option<Vec<u8>> {
    fields(header)
        .into_iter()
        .find(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
        .map(|f| unfold(f.value))
}

/// HEADER.FIELDS and HEADER.FIELDS.NOT: the chosen fields, exactly as
/// they are, then the blank line.
pub(crate) fn filter_fields(header: &[u8], names: &[AString<'_>], keep: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for field in fields(header) {
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

/// The entity a part number names (RFC 3501 section 6.4.5).
fn find<'e>(root: &'e Entity, path: &[std::num::NonZeroU32]) -> Option<&'e Entity> {
    let mut entity = root;
    for n in path {
        entity = child(entity, n.get() as usize)?;
    }
    Some(entity)
}

fn child(entity: &Entity, n: usize) -> Option<&Entity> {
    match &entity.kind {
        Kind::Multipart(children) => children.get(n.checked_sub(1)?),
        Kind::Message(_, inner) => child(inner, n),
        Kind::Leaf => (n == 1).then_some(entity),
    }
}

/// The message whose header or text a section names: the top level, or
/// an embedded message/rfc822.
fn message_at<'e>(root: &'e Entity, path: Option<&[std::num::NonZeroU32]>) -> Option<&'e Entity> {
    match path {
        None => Some(root),
        Some(path) => match &find(root, path)?.kind {
            Kind::Message(_, inner) => Some(inner),
            _ => None,
        },
    }
}

/// The bytes a BODY[section] names; `None` if there is no such part.
pub(crate) fn section<'r>(
    raw: &'r [u8],
    root: &Entity,
    section: Option<&Section<'_>>,
) -> Option<Cow<'r, [u8]>> {
    let slice = |range: &Range<usize>| Cow::Borrowed(&raw[range.clone()]);
    Some(match section {
        None => Cow::Borrowed(raw),
        Some(Section::Part(part)) => slice(&find(root, part.0.as_ref())?.body),
        Some(Section::Mime(part)) => slice(&find(root, part.0.as_ref())?.header),
        Some(Section::Header(part)) => {
            slice(&message_at(root, part.as_ref().map(|p| p.0.as_ref()))?.header)
        }
        Some(Section::Text(part)) => {
            slice(&message_at(root, part.as_ref().map(|p| p.0.as_ref()))?.body)
        }
        Some(Section::HeaderFields(part, names)) => {
            let message = message_at(root, part.as_ref().map(|p| p.0.as_ref()))?;
            Cow::Owned(filter_fields(&raw[message.header.clone()], names.as_ref(), true))
        }
        Some(Section::HeaderFieldsNot(part, names)) => {
            let message = message_at(root, part.as_ref().map(|p| p.0.as_ref()))?;
            Cow::Owned(filter_fields(&raw[message.header.clone()], names.as_ref(), false))
        }
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

fn envelope(raw: &[u8], header: Range<usize>, part: &MessagePart<'_>) -> Envelope<'static> {
    envelope_from_fields(raw, header, Some(part))
}

fn envelope_from_fields(
    raw: &[u8],
    header: Range<usize>,
    part: Option<&MessagePart<'_>>,
) -> Envelope<'static> {
    let header = &raw[header];
    let text = |name: &str| nstring(header_value(header, name).as_deref());
    let list = |name: &str| part.map(|p| addresses(p, name)).unwrap_or_default();
    let from = list("from");
    let or_from = |list: Vec<Address<'static>>| if list.is_empty() { from.clone() } else { list };
    Envelope {
        date: text("date"),
        subject: text("subject"),
        sender: or_from(list("sender")),
        reply_to: or_from(list("reply-to")),
        from: from.clone(),
        to: list("to"),
        cc: list("cc"),
        bcc: list("bcc"),
        in_reply_to: text("in-reply-to"),
        message_id: text("message-id"),
    }
}

fn addresses(part: &MessagePart<'_>, name: &str) -> Vec<Address<'static>> {
    let one = |addr: &mail_parser::Addr<'_>| {
        let (mailbox, host) = match addr.address.as_deref().and_then(|a| a.rsplit_once('@')) {
            Some((local, domain)) => (local.to_owned(), domain.to_owned()),
            None => (addr.address.as_deref().unwrap_or_default().to_owned(), String::new()),
        };
        Address {
            name: nstring(addr.name.as_deref().map(str::as_bytes)),
            adl: NString(None),
            mailbox: nstring(Some(mailbox.as_bytes())),
            host: nstring(Some(host.as_bytes())),
        }
    };
    let marker = |group: Option<&str>| Address {
        name: NString(None),
        adl: NString(None),
        mailbox: nstring(group.map(str::as_bytes)),
        host: NString(None),
    };
    let mut out = Vec::new();
    match find_header(part, name).and_then(|v| v.as_address()) {
        Some(mail_parser::Address::List(list)) => out.extend(list.iter().map(one)),
        Some(mail_parser::Address::Group(groups)) => {
            for group in groups {
                match &group.name {
                    Some(name) => {
                        out.push(marker(Some(name)));
                        out.extend(group.addresses.iter().map(one));
                        out.push(marker(None));
                    }
                    None => out.extend(group.addresses.iter().map(one)),
                }
            }
        }
        None => {}
    }
    out
}

fn params(list: &[(String, String)]) -> Vec<(IString<'static>, IString<'static>)> {
    list.iter()
        .map(|(k, v)| (istring(k.to_ascii_uppercase().as_bytes()), istring(v.as_bytes())))
        .collect()
}

fn disposition(raw: &[u8], entity: &Entity) -> Disposition<'static> {
    let header = &raw[entity.header.clone()];
    let language = header_value(header, "content-language")
        .map(|v| v.split(|&b| b == b',').map(trim).filter(|l| !l.is_empty()).map(istring).collect())
        .unwrap_or_default();
    Disposition {
        disposition: entity
            .disposition
            .as_ref()
            .map(|(kind, list)| (istring(kind.as_bytes()), params(list))),
        tail: Some(Language {
            language,
            tail: Some(Location {
                location: nstring(header_value(header, "content-location").as_deref()),
                extensions: Vec::new(),
            }),
        }),
    }
}

/// Lines of a body; an unterminated last line counts.
fn lines(bytes: &[u8]) -> u32 {
    let ends = bytes.iter().filter(|&&b| b == b'\n').count();
    let open = usize::from(!bytes.is_empty() && !bytes.ends_with(b"\n"));
    (ends + open) as u32
}

/// BODYSTRUCTURE (`extended`) or BODY.
pub(crate) fn body_structure(
    raw: &[u8],
    entity: &Entity,
    extended: bool,
) -> BodyStructure<'static> {
    if let Kind::Multipart(children) = &entity.kind
        && let Ok(bodies) = Vec1::try_from(
            children.iter().map(|c| body_structure(raw, c, extended)).collect::<Vec<_>>(),
        )
    {
        return BodyStructure::Multi {
            bodies,
            subtype: istring(entity.subtype.to_ascii_uppercase().as_bytes()),
            extension_data: extended.then(|| MultiPartExtensionData {
                parameter_list: params(&entity.params),
                tail: Some(disposition(raw, entity)),
            }),
        };
    }
    let header = &raw[entity.header.clone()];
    let body = &raw[entity.body.clone()];
    let encoding = header_value(header, "content-transfer-encoding")
        .map(|e| e.to_ascii_uppercase())
        .unwrap_or_else(|| b"7BIT".to_vec());
    let basic = BasicFields {
        parameter_list: params(&entity.params),
        id: nstring(header_value(header, "content-id").as_deref()),
        description: nstring(header_value(header, "content-description").as_deref()),
        content_transfer_encoding: istring(&encoding),
        size: body.len() as u32,
    };
    let specific = match &entity.kind {
        Kind::Message(envelope, inner) => SpecificFields::Message {
            envelope: envelope.clone(),
            body_structure: Box::new(body_structure(raw, inner, extended)),
            number_of_lines: lines(body),
        },
        _ if entity.ctype == "text" => SpecificFields::Text {
            subtype: istring(entity.subtype.to_ascii_uppercase().as_bytes()),
            number_of_lines: lines(body),
        },
        _ => SpecificFields::Basic {
            r#type: istring(entity.ctype.to_ascii_uppercase().as_bytes()),
            subtype: istring(entity.subtype.to_ascii_uppercase().as_bytes()),
        },
    };
    BodyStructure::Single {
        body: Body { basic, specific },
        extension_data: extended.then(|| SinglePartExtensionData {
            md5: NString(None),
            tail: Some(disposition(raw, entity)),
        }),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use imap_codec::imap_types::fetch::Part;
    use std::num::NonZeroU32;

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

    fn text(raw: &[u8], root: &Entity, s: Section<'_>) -> String {
        String::from_utf8_lossy(&section(raw, root, Some(&s)).unwrap()).into_owned()
    }

    #[test]
    fn sections_are_exact_byte_ranges() {
        let raw = MULTIPART;
        let parsed = parse(raw);
        let root = &parsed.root;
        assert!(text(raw, root, Section::Header(None)).ends_with("boundary=\"XX\"\r\n\r\n"));
        assert!(text(raw, root, Section::Text(None)).starts_with("preamble\r\n--XX"));
        assert_eq!(text(raw, root, Section::Part(part(&[1]))), "Grüße aus Köln");
        assert_eq!(text(raw, root, Section::Part(part(&[2]))), "AAECAwQ=");
        assert!(
            text(raw, root, Section::Mime(part(&[2])))
                .starts_with("Content-Type: application/octet-stream")
        );
        assert!(
            text(raw, root, Section::Part(part(&[3]))).starts_with("From: inner@example.test\r\n")
        );
        assert_eq!(
            text(raw, root, Section::Header(Some(part(&[3])))),
            "From: inner@example.test\r\nSubject: inner\r\n\r\n"
        );
        assert_eq!(text(raw, root, Section::Part(part(&[3, 1]))), "inner body");
        assert!(section(raw, root, Some(&Section::Part(part(&[4])))).is_none());
        let names = Vec1::from(AString::try_from("subject").unwrap());
        assert_eq!(
            text(raw, root, Section::HeaderFields(None, names)),
            "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= and files\r\n\r\n"
        );
    }

    #[test]
    fn structure_and_envelope() {
        let parsed = parse(MULTIPART);
        assert_eq!(parsed.envelope.from.len(), 1);
        assert_eq!(parsed.envelope.to.len(), 2);
        assert_eq!(parsed.envelope.sender, parsed.envelope.from);
        let BodyStructure::Multi { bodies, .. } = body_structure(MULTIPART, &parsed.root, true)
        else {
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
            let parsed = parse(raw);
            let _ = body_structure(raw, &parsed.root, true);
            assert_eq!(section(raw, &parsed.root, None).unwrap().as_ref(), raw);
            let _ = section(raw, &parsed.root, Some(&Section::Text(None)));
        }
    }

    #[test]
    fn fields_keep_folding() {
        let header = b"A: 1\r\nB: x\r\n y\r\nnot a field\r\nC:3\r\n\r\nbody: no\r\n";
        let found = fields(header);
        assert_eq!(found.len(), 3);
        assert_eq!(found[1].whole, b"B: x\r\n y\r\n");
        assert_eq!(unfold(found[1].value), b"x y");
        assert_eq!(header_value(header, "c").unwrap(), b"3");
    }
}
