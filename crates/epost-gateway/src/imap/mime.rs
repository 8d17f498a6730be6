//! IMAP's view of a message's MIME structure ([`epost_types::mime`],
//! found once when the message was received, or from its bytes for mail
//! stored before that): ENVELOPE and BODYSTRUCTURE rendered from it, and
//! BODY[section] cut from the unchanged raw bytes by its ranges. What
//! IMAP adds to the neutral description (upper case, defaults, NIL,
//! group markers) is decided here, and nothing here parses MIME.

use std::borrow::Cow;
use std::num::NonZeroU32;

use epost_types::mime::{self, AddressEntry, Entity, Kind, MessageStructure};
use imap_codec::imap_types::body::{
    BasicFields, Body, BodyStructure, Disposition, Language, Location, MultiPartExtensionData,
    SinglePartExtensionData, SpecificFields,
};
use imap_codec::imap_types::core::{AString, IString, NString, Quoted, Vec1};
use imap_codec::imap_types::envelope::{Address, Envelope};
use imap_codec::imap_types::fetch::Section;

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
fn cut(raw: &[u8], span: mime::Span) -> &[u8] {
    raw.get(span.range()).unwrap_or_default()
}

/// The entity a part number names (RFC 3501 section 6.4.5).
fn find<'s>(structure: &'s MessageStructure, path: &[NonZeroU32]) -> Option<&'s Entity> {
    let mut entity = structure.root()?;
    for n in path {
        entity = child(structure, entity, n.get() as usize, 0)?;
    }
    Some(entity)
}

fn child<'s>(
    structure: &'s MessageStructure,
    entity: &'s Entity,
    n: usize,
    hops: usize,
) -> Option<&'s Entity> {
    match &entity.kind {
        Kind::Multipart(children) => structure.entity(*children.get(n.checked_sub(1)?)?),
        // Bounded: a checked structure is a tree of bounded depth.
        Kind::Message { root, .. } if hops <= epost_types::limits::MAX_MIME_DEPTH => {
            child(structure, structure.entity(*root)?, n, hops + 1)
        }
        Kind::Message { .. } => None,
        Kind::Leaf => (n == 1).then_some(entity),
    }
}

/// The message whose header or text a section names: the top level, or
/// an embedded message/rfc822.
fn message_at<'s>(
    structure: &'s MessageStructure,
    path: Option<&[NonZeroU32]>,
) -> Option<&'s Entity> {
    match path {
        None => structure.root(),
        Some(path) => match &find(structure, path)?.kind {
            Kind::Message { root, .. } => structure.entity(*root),
            _ => None,
        },
    }
}

/// Whether a section lies in the top-level header, so the message's
/// first bytes through its header answer it.
pub(crate) fn in_header(section: &Section<'_>) -> bool {
    matches!(
        section,
        Section::Header(None) | Section::HeaderFields(None, _) | Section::HeaderFieldsNot(None, _)
    )
}

/// The bytes a BODY[section] names in `raw` (the whole message, or for
/// a section [`in_header`] its first bytes through the header); `None`
/// if there is no such part.
pub(crate) fn section<'r>(
    raw: &'r [u8],
    structure: &MessageStructure,
    section: Option<&Section<'_>>,
) -> Option<Cow<'r, [u8]>> {
    let path = |part: &Option<imap_codec::imap_types::fetch::Part>| {
        part.as_ref().map(|p| p.0.as_ref().to_vec())
    };
    Some(match section {
        None => Cow::Borrowed(raw),
        Some(Section::Part(part)) => {
            Cow::Borrowed(cut(raw, find(structure, part.0.as_ref())?.body))
        }
        Some(Section::Mime(part)) => {
            Cow::Borrowed(cut(raw, find(structure, part.0.as_ref())?.header))
        }
        Some(Section::Header(part)) => {
            Cow::Borrowed(cut(raw, message_at(structure, path(part).as_deref())?.header))
        }
        Some(Section::Text(part)) => {
            Cow::Borrowed(cut(raw, message_at(structure, path(part).as_deref())?.body))
        }
        Some(Section::HeaderFields(part, names)) => {
            let message = message_at(structure, path(part).as_deref())?;
            Cow::Owned(filter_fields(cut(raw, message.header), names.as_ref(), true))
        }
        Some(Section::HeaderFieldsNot(part, names)) => {
            let message = message_at(structure, path(part).as_deref())?;
            Cow::Owned(filter_fields(cut(raw, message.header), names.as_ref(), false))
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
    let one = |mailbox: &mime::Mailbox| {
        let address = mailbox.address.as_deref();
        let (local, domain) = match address.and_then(|a| a.rsplit_once('@')) {
            Some((local, domain)) => (local, domain),
            None => (address.unwrap_or_default(), ""),
        };
        Address {
            name: nstring(mailbox.name.as_deref().map(str::as_bytes)),
            adl: NString(None),
            mailbox: nstring(Some(local.as_bytes())),
            host: nstring(Some(domain.as_bytes())),
        }
    };
    let marker = |group: Option<&str>| Address {
        name: NString(None),
        adl: NString(None),
        mailbox: nstring(group.map(str::as_bytes)),
        host: NString(None),
    };
    let mut out = Vec::new();
    for entry in entries {
        match entry {
            AddressEntry::Mailbox(mailbox) => out.push(one(mailbox)),
            AddressEntry::Group { name: Some(name), members } => {
                out.push(marker(Some(name)));
                out.extend(members.iter().map(one));
                out.push(marker(None));
            }
            AddressEntry::Group { name: None, members } => out.extend(members.iter().map(one)),
        }
    }
    out
}

fn params(list: &[(String, String)]) -> Vec<(IString<'static>, IString<'static>)> {
    list.iter()
        .map(|(k, v)| (istring(k.to_ascii_uppercase().as_bytes()), istring(v.as_bytes())))
        .collect()
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
        parameter_list: params(&entity.params),
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
}
