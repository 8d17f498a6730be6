//! Finding a message's structure: one mail-parser parse gives both the
//! [`MessageStructure`] and the byte ranges of the leaf part bodies (which
//! the node stores as objects of their own), so a message is parsed once
//! when it is received. A message mail-parser cannot read is one
//! text/plain entity: never an error, and the bytes are never changed.

use std::ops::Range;

use mail_parser::{Encoding, HeaderValue, Message, MessageParser, MessagePart, PartType};
use serde_bytes::ByteBuf;

use super::fields::{header_end, header_value, trim};
use super::{
    AddressEntry, Disposition, Entity, Envelope, Kind, Mailbox, MessageStructure,
    STRUCTURE_VERSION, Span,
};
use crate::limits::MAX_MIME_DEPTH;

/// What one parse of a message found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub structure: MessageStructure,
    /// The body of every part that is not a multipart (an embedded
    /// message's whole body is one), in the order mail-parser lists
    /// them; empty if the message could not be parsed.
    pub leaf_bodies: Vec<Range<usize>>,
}

/// Parses `raw` once (never fails; see the module docs). The structure
/// is not checked against the stored limits: a caller that stores it
/// calls [`MessageStructure::check`].
pub fn parse(raw: &[u8]) -> Parsed {
    match MessageParser::default().parse(raw) {
        Some(message) if !message.parts.is_empty() => {
            let mut builder = Builder { raw, entities: Vec::new() };
            builder.build(&message, 0, 0, false);
            let header = builder.entities.first().map(|e| e.header.range()).unwrap_or_default();
            let envelope = envelope(&raw[header], message.parts.first());
            let structure =
                MessageStructure { v: STRUCTURE_VERSION, envelope, entities: builder.entities };
            Parsed { structure, leaf_bodies: leaf_bodies(raw, &message) }
        }
        _ => {
            let split = header_end(raw);
            let root = entity(raw, 0..split, split..raw.len(), Kind::Leaf);
            let envelope = envelope(&raw[..split], None);
            let structure =
                MessageStructure { v: STRUCTURE_VERSION, envelope, entities: vec![root] };
            Parsed { structure, leaf_bodies: Vec::new() }
        }
    }
}

/// The body of every non-multipart part whose offsets make sense.
fn leaf_bodies(raw: &[u8], message: &Message<'_>) -> Vec<Range<usize>> {
    message
        .parts
        .iter()
        .filter(|part| !matches!(part.body, PartType::Multipart(_)))
        .map(|part| part.offset_body as usize..part.offset_end as usize)
        .filter(|body| body.start <= body.end && body.end <= raw.len())
        .collect()
}

/// Builds the entities depth first, each parent before its children.
struct Builder<'r> {
    raw: &'r [u8],
    entities: Vec<Entity>,
}

impl Builder<'_> {
    /// Adds part `id` of `message` and what it contains; its index. A
    /// part of a multipart/digest (`in_digest`) that names no type is a
    /// message/rfc822 (RFC 2046 section 5.1.5).
    fn build(&mut self, message: &Message<'_>, id: usize, depth: usize, in_digest: bool) -> u32 {
        let index = u32::try_from(self.entities.len()).unwrap_or(u32::MAX);
        let Some(part) = message.parts.get(id) else {
            self.entities.push(Entity::missing());
            return index;
        };
        let raw = self.raw;
        let header = clamp(raw, part.offset_header, part.offset_body);
        let body = clamp(raw, part.offset_body, part.offset_end);
        let mut found = entity(raw, header, body, Kind::Leaf);
        if let Some(ct) = find_header(part, "content-type").and_then(|v| v.as_content_type()) {
            found.media_type = ct.ctype().to_ascii_lowercase();
            found.subtype = ct.subtype().unwrap_or("plain").to_ascii_lowercase();
            found.params = attributes(ct.attributes());
        } else if in_digest {
            found.media_type = "message".into();
            found.subtype = "rfc822".into();
            found.params = Vec::new();
        }
        found.disposition =
            find_header(part, "content-disposition").and_then(|v| v.as_content_type()).map(|d| {
                Disposition { kind: d.ctype().to_owned(), params: attributes(d.attributes()) }
            });
        let is_multipart = found.media_type == "multipart";
        let is_digest = is_multipart && found.subtype == "digest";
        self.entities.push(found);
        let kind = match &part.body {
            _ if depth >= MAX_MIME_DEPTH => Kind::Leaf,
            PartType::Multipart(children) if is_multipart && !children.is_empty() => {
                let children: Vec<u32> = children
                    .iter()
                    .filter(|&&child| child as usize != id)
                    .map(|&child| self.build(message, child as usize, depth + 1, is_digest))
                    .collect();
                Kind::Multipart(children)
            }
            // Offsets are into our bytes only when the embedded message
            // was not transfer-encoded.
            PartType::Message(inner)
                if part.encoding == Encoding::None && !inner.parts.is_empty() =>
            {
                let root = self.build(inner, 0, depth + 1, false);
                let header = self.entities.get(root as usize).map(|e| e.header.range());
                let envelope = envelope(&raw[header.unwrap_or_default()], inner.parts.first());
                Kind::Message { envelope: Box::new(envelope), root }
            }
            _ => Kind::Leaf,
        };
        if let Some(entity) = self.entities.get_mut(index as usize) {
            entity.kind = kind;
        }
        index
    }
}

/// An entity at `header` and `body`, its fields read from its header by
/// hand, typed text/plain with charset us-ascii until told otherwise.
fn entity(raw: &[u8], header: Range<usize>, body: Range<usize>, kind: Kind) -> Entity {
    let fields = &raw[header.clone()];
    let field = |name: &str| header_value(fields, name);
    let language = header_value(fields, "content-language")
        .map(|v| {
            v.split(|&b| b == b',')
                .map(trim)
                .filter(|l| !l.is_empty())
                .map(|l| ByteBuf::from(l.to_vec()))
                .collect()
        })
        .unwrap_or_default();
    Entity {
        header: span(&header),
        lines: lines(&raw[body.clone()]),
        body: span(&body),
        media_type: "text".into(),
        subtype: "plain".into(),
        params: vec![("charset".into(), "us-ascii".into())],
        encoding: field("content-transfer-encoding"),
        id: field("content-id"),
        description: field("content-description"),
        disposition: None,
        language,
        location: field("content-location"),
        kind,
    }
}

fn span(range: &Range<usize>) -> Span {
    Span(range.start as u64, range.end as u64)
}

fn clamp(raw: &[u8], start: u32, end: u32) -> Range<usize> {
    let start = (start as usize).min(raw.len());
    let end = (end as usize).clamp(start, raw.len());
    start..end
}

/// Lines of a body; an unterminated last line counts.
fn lines(bytes: &[u8]) -> u64 {
    let ends = bytes.iter().filter(|&&b| b == b'\n').count();
    let open = usize::from(!bytes.is_empty() && !bytes.ends_with(b"\n"));
    (ends + open) as u64
}

fn attributes(list: Option<&[mail_parser::Attribute<'_>]>) -> Vec<(String, String)> {
    list.unwrap_or_default().iter().map(|a| (a.name.to_string(), a.value.to_string())).collect()
}

fn find_header<'p, 'x>(part: &'p MessagePart<'x>, name: &str) -> Option<&'p HeaderValue<'x>> {
    part.headers.iter().find(|h| h.name.as_str().eq_ignore_ascii_case(name)).map(|h| &h.value)
}

/// The envelope fields of a message whose header is `header`; address
/// fields need mail-parser's reading of the part (none without it).
fn envelope(header: &[u8], part: Option<&MessagePart<'_>>) -> Envelope {
    let text = |name: &str| header_value(header, name);
    let list = |name: &str| part.map(|p| addresses(p, name)).unwrap_or_default();
    Envelope {
        date: text("date"),
        subject: text("subject"),
        from: list("from"),
        sender: list("sender"),
        reply_to: list("reply-to"),
        to: list("to"),
        cc: list("cc"),
        bcc: list("bcc"),
        in_reply_to: text("in-reply-to"),
        message_id: text("message-id"),
    }
}

fn addresses(part: &MessagePart<'_>, name: &str) -> Vec<AddressEntry> {
    let mailbox = |addr: &mail_parser::Addr<'_>| Mailbox {
        name: addr.name.as_deref().map(str::to_owned),
        address: addr.address.as_deref().map(str::to_owned),
    };
    match find_header(part, name).and_then(|v| v.as_address()) {
        Some(mail_parser::Address::List(list)) => {
            list.iter().map(|a| AddressEntry::Mailbox(mailbox(a))).collect()
        }
        Some(mail_parser::Address::Group(groups)) => groups
            .iter()
            .map(|group| AddressEntry::Group {
                name: group.name.as_deref().map(str::to_owned),
                members: group.addresses.iter().map(mailbox).collect(),
            })
            .collect(),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &[u8] =
        b"From: Alice <alice@example.test>\r\nTo: Friends: b@x.test, c@x.test;\r\n\
Subject: hi\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n\
--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: inner@x.test\r\nSubject: inner\r\n\r\nbody\r\n\
--b--\r\n";

    #[test]
    fn one_parse_gives_the_tree_and_the_leaf_bodies() {
        let parsed = parse(MIXED);
        let structure = &parsed.structure;
        structure.check(MIXED.len() as u64).unwrap();
        let root = structure.root().unwrap();
        assert_eq!((root.media_type.as_str(), root.subtype.as_str()), ("multipart", "mixed"));
        let Kind::Multipart(children) = &root.kind else { panic!("{root:?}") };
        let text = structure.entity(children[0]).unwrap();
        assert_eq!(&MIXED[text.body.range()], b"hello");
        let message = structure.entity(children[1]).unwrap();
        let Kind::Message { envelope, root: inner } = &message.kind else { panic!("{message:?}") };
        assert_eq!(envelope.subject.as_deref(), Some(&b"inner"[..]));
        assert_eq!(&MIXED[structure.entity(*inner).unwrap().body.range()], b"body");
        assert_eq!(structure.envelope.subject.as_deref(), Some(&b"hi"[..]));
        assert!(matches!(&structure.envelope.to[0], AddressEntry::Group { name: Some(n), members }
            if n == "Friends" && members.len() == 2));
        let leaves: Vec<&[u8]> = parsed.leaf_bodies.iter().map(|r| &MIXED[r.clone()]).collect();
        assert!(leaves.contains(&&b"hello"[..]), "{leaves:?}");
    }

    #[test]
    fn a_digest_part_that_names_no_type_is_a_message() {
        let raw = b"Content-Type: multipart/digest; boundary=d\r\n\r\n\
--d\r\n\r\nSubject: m1\r\n\r\none\r\n\
--d\r\nContent-Type: text/plain\r\n\r\ntwo\r\n--d--\r\n";
        let structure = parse(raw).structure;
        let Kind::Multipart(children) = &structure.root().unwrap().kind else { panic!() };
        let first = structure.entity(children[0]).unwrap();
        assert_eq!((first.media_type.as_str(), first.subtype.as_str()), ("message", "rfc822"));
        assert!(first.params.is_empty());
        assert!(matches!(first.kind, Kind::Message { .. }));
        let second = structure.entity(children[1]).unwrap();
        assert_eq!((second.media_type.as_str(), second.subtype.as_str()), ("text", "plain"));
        // Outside a digest, no type is text/plain in US-ASCII.
        let plain = parse(b"Subject: x\r\n\r\nbody").structure;
        assert_eq!(plain.root().unwrap().params, [("charset".into(), "us-ascii".into())]);
    }

    #[test]
    fn what_cannot_be_parsed_is_one_plain_entity() {
        for raw in [&b""[..], b"\xff\xfe\x00\x01", b"no header at all"] {
            let parsed = parse(raw);
            parsed.structure.check(raw.len() as u64).unwrap();
            let root = parsed.structure.root().unwrap();
            assert_eq!(root.kind, Kind::Leaf);
            assert_eq!(root.body.1, raw.len() as u64);
        }
    }

    #[test]
    fn structures_round_trip_and_hostile_ones_are_refused() {
        let structure = parse(MIXED).structure;
        let size = MIXED.len() as u64;
        assert_eq!(MessageStructure::decode(&structure.encode(), size).unwrap(), structure);
        // A range past the message.
        assert!(matches!(
            MessageStructure::decode(&structure.encode(), 10),
            Err(crate::mime::StructureError::OutOfBounds { .. })
        ));
        // A child before its parent, or contained twice.
        let mut cycle = structure.clone();
        cycle.entities[1].kind = Kind::Multipart(vec![0]);
        assert!(matches!(cycle.check(size), Err(crate::mime::StructureError::BadChild { .. })));
        let mut twice = structure.clone();
        twice.entities[0].kind = Kind::Multipart(vec![1, 1]);
        assert!(matches!(twice.check(size), Err(crate::mime::StructureError::NotATree { .. })));
        let mut orphan = structure.clone();
        orphan.entities[0].kind = Kind::Leaf;
        assert!(matches!(orphan.check(size), Err(crate::mime::StructureError::NotATree { .. })));
        let mut long = structure;
        long.envelope.subject = Some(vec![b'x'; crate::limits::MAX_MIME_TEXT + 1]);
        assert!(matches!(long.check(size), Err(crate::mime::StructureError::TextTooLong { .. })));
    }
}
