//! BINARY, BINARY.PEEK and BINARY.SIZE (RFC 3516): a part's content with
//! its Content-Transfer-Encoding undone, cut from the unchanged stored
//! bytes by the message's structure, and its size. A part whose encoding
//! is not known fails the command with `UNKNOWN-CTE`; a multipart or an
//! embedded message is its bytes as they are (it may only be 7bit, 8bit
//! or binary); `BINARY[]` is the whole message as stored. Content with
//! NUL goes out as a literal8, which is what the extension is for.
//!
//! imap-codec cannot write the origin of a partial BINARY
//! (`BINARY[1]<0>`, RFC 3516 section 4.2, RFC 9051 section 7.5.2), so a
//! FETCH response with one is written here, from imap-codec's own
//! encoding of each item.

use std::borrow::Cow;
use std::num::NonZeroU32;

use imap_codec::ResponseCodec;
use imap_codec::encode::Encoder;
use imap_codec::imap_types::core::{IString, Literal, LiteralMode, NString, NString8, Vec1};
use imap_codec::imap_types::extensions::binary::Literal8;
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::response::{Data, Response};

use epost_types::mime::{Entity, Kind, MessageStructure, Span};

use crate::imap::cte::{Encoding, Unknown};
use crate::imap::mime;

/// How the content of a part is found from its body.
fn encoding(entity: &Entity) -> Result<Encoding, Unknown> {
    match entity.kind {
        Kind::Leaf => Encoding::named(entity.encoding.as_deref()),
        Kind::Multipart(_) | Kind::Message { .. } => Ok(Encoding::Identity),
    }
}

/// Whether BINARY or BINARY.SIZE of `section` cannot be answered: it
/// names a part in an encoding this server does not know. Decided from
/// the structure, before anything is read or answered.
pub(crate) fn unknown(structure: &MessageStructure, section: &[NonZeroU32]) -> bool {
    mime::part(structure, section).is_some_and(|entity| encoding(entity).is_err())
}

/// The bytes of a message of `size` bytes that BINARY[section]
/// (`size_only`: BINARY.SIZE[section]) is found from; `None` if none are
/// needed (no such part, or a size the structure gives).
pub(crate) fn extent(
    structure: &MessageStructure,
    section: &[NonZeroU32],
    size_only: bool,
    size: u64,
) -> Option<Span> {
    if section.is_empty() {
        return (!size_only).then_some(Span(0, size));
    }
    let entity = mime::part(structure, section)?;
    match encoding(entity) {
        Ok(Encoding::Identity) | Err(Unknown) if size_only => None,
        _ => Some(entity.body),
    }
}

/// The content BINARY[section] names in `raw` (the whole message, or as
/// much of it as reaches past the section's [`extent`]).
pub(crate) fn content<'r>(
    raw: &'r [u8],
    structure: &MessageStructure,
    section: &[NonZeroU32],
) -> Result<Cow<'r, [u8]>, Unknown> {
    if section.is_empty() {
        return Ok(Cow::Borrowed(raw));
    }
    let Some(entity) = mime::part(structure, section) else { return Ok(Cow::Borrowed(&[])) };
    let body = raw.get(entity.body.range()).unwrap_or_default();
    Ok(match encoding(entity)? {
        Encoding::Identity => Cow::Borrowed(body),
        decoding => Cow::Owned(decoding.decode(body)),
    })
}

/// BINARY.SIZE[section] of a message of `size` bytes: the length of what
/// BINARY[section] gives, from the structure when nothing is encoded.
pub(crate) fn size(
    raw: &[u8],
    structure: &MessageStructure,
    section: &[NonZeroU32],
    size: u64,
) -> Result<u64, Unknown> {
    if section.is_empty() {
        return Ok(size);
    }
    let Some(entity) = mime::part(structure, section) else { return Ok(0) };
    match encoding(entity)? {
        Encoding::Identity => Ok(entity.body.len()),
        _ => Ok(content(raw, structure, section)?.len() as u64),
    }
}

/// Content as a BINARY value: a literal, or a literal8 if it holds NUL
/// (which a literal cannot carry).
pub(crate) fn value(bytes: Cow<'_, [u8]>) -> NString8<'static> {
    let owned = bytes.into_owned();
    if owned.contains(&0) {
        return NString8::Literal8(Literal8 { data: Cow::Owned(owned), mode: LiteralMode::Sync });
    }
    match Literal::try_from(owned) {
        Ok(literal) => NString8::NString(NString(Some(IString::Literal(literal)))),
        Err(_) => NString8::NString(NString(None)),
    }
}

/// The FETCH response for message `seq` with `items`, the BINARY items
/// at the positions in `origins` written with their partial's origin:
/// each item as imap-codec writes it alone, the origin after its section.
pub(crate) fn encode_fetch(
    seq: NonZeroU32,
    items: Vec<MessageDataItem<'static>>,
    origins: &[(usize, u32)],
) -> Vec<u8> {
    let prefix = format!("* {seq} FETCH (");
    let mut out = prefix.clone().into_bytes();
    for (at, item) in items.into_iter().enumerate() {
        if at > 0 {
            out.push(b' ');
        }
        let alone = Response::Data(Data::Fetch { seq, items: Vec1::from(item) });
        let encoded = ResponseCodec::default().encode(&alone).dump();
        // imap-codec writes one item between exactly these.
        let item = encoded
            .strip_prefix(prefix.as_bytes())
            .and_then(|rest| rest.strip_suffix(b")\r\n"))
            .unwrap_or(&encoded);
        match origins.iter().find(|(index, _)| *index == at) {
            // `BINARY[1.2]`: the section is digits and dots, so its `]`
            // is the first.
            Some((_, origin)) => {
                let close = item.iter().position(|&b| b == b']').map_or(0, |end| end + 1);
                out.extend_from_slice(&item[..close]);
                out.extend_from_slice(format!("<{origin}>").as_bytes());
                out.extend_from_slice(&item[close..]);
            }
            None => out.extend_from_slice(item),
        }
    }
    out.extend_from_slice(b")\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use epost_types::mime::parse;
    use imap_codec::imap_types::fetch::MessageDataItem;

    /// imaptest's base64 sample, shortened: identity, base64 with odd
    /// whitespace, base64 with a bare CR and LF, an unknown encoding,
    /// and an embedded message.
    const ENCODED: &[u8] = b"From: user@domain.org\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n\
--b\r\nContent-Transfer-Encoding: base64\r\n\r\n  aGVs    \r\n bG8g  \r\n   d29y  \t \r\n    bGQ= \r\n\r\n\
--b\r\nContent-Transfer-Encoding: BASE64\r\n\r\nYWJjZGVmZw1oaWprbA0KbW5vCnBxcnN0dXZxeHl6\r\n\
--b\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n\
--b\r\nContent-Type: message/rfc822\r\n\r\n\
Subject: inner\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9\r\n\
--b\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00-\xe4\n\r\n\
--b--\r\n";

    fn path(numbers: &[u32]) -> Vec<NonZeroU32> {
        numbers.iter().map(|&n| NonZeroU32::new(n).unwrap()).collect()
    }

    #[test]
    fn content_and_size_of_each_kind_of_part() {
        let structure = parse(ENCODED).structure;
        let whole = ENCODED.len() as u64;
        type Case = (&'static [u32], Result<&'static [u8], Unknown>);
        let table: [Case; 11] = [
            (&[], Ok(ENCODED)),
            (&[1], Ok(b"hello")),
            (&[2], Ok(b"hello world")),
            (&[3], Ok(b"abcdefg\rhijkl\r\nmno\npqrstuvqxyz")),
            (&[4], Err(Unknown)),
            // The embedded message as it is; its body decoded.
            (&[5], Ok(b"Subject: inner\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=C3=A9")),
            (&[5, 1], Ok("café".as_bytes())),
            (&[6], Ok(b"\x00-\xe4\n")),
            (&[7], Ok(b"")),
            (&[1, 1], Ok(b"hello")),
            (&[1, 1, 1], Ok(b"")),
        ];
        for (numbers, want) in table {
            let section = path(numbers);
            let got = content(ENCODED, &structure, &section);
            assert_eq!(got.as_deref().map_err(|e| *e), want, "{numbers:?}");
            let want_size = want.map(|w| w.len() as u64);
            assert_eq!(size(ENCODED, &structure, &section, whole), want_size, "{numbers:?}");
            assert_eq!(unknown(&structure, &section), want.is_err(), "{numbers:?}");
        }
    }

    #[test]
    fn sizes_without_an_encoding_need_no_bytes() {
        let structure = parse(ENCODED).structure;
        let size = ENCODED.len() as u64;
        let head = structure.head_len();
        // From the structure alone: the message's size, an identity part's
        // length, a part that is not there.
        for numbers in [&[][..], &[1], &[5], &[6], &[9]] {
            let section = path(numbers);
            assert_eq!(extent(&structure, &section, true, size), None, "{numbers:?}");
            let from_head = super::size(&ENCODED[..head], &structure, &section, size);
            assert_eq!(from_head, super::size(ENCODED, &structure, &section, size));
        }
        // A decoded size reads the part's body, and only it.
        let body = extent(&structure, &path(&[2]), true, size).unwrap();
        assert!(body.0 as usize > head && body.1 < size);
        assert_eq!(extent(&structure, &[], false, size), Some(Span(0, size)));
    }

    #[test]
    fn nul_makes_a_literal8() {
        assert!(matches!(value(Cow::Borrowed(b"a\x00b")), NString8::Literal8(_)));
        assert!(matches!(value(Cow::Borrowed(b"a\r\xe4")), NString8::NString(_)));
    }

    #[test]
    fn a_partial_origin_is_written_after_its_section() {
        let seq = NonZeroU32::new(3).unwrap();
        let items = || {
            vec![
                MessageDataItem::Uid(NonZeroU32::new(7).unwrap()),
                MessageDataItem::Binary {
                    section: path(&[1, 2]),
                    value: value(Cow::Borrowed(b"ab")),
                },
                MessageDataItem::Binary {
                    section: path(&[]),
                    value: value(Cow::Borrowed(b"\x00")),
                },
            ]
        };
        let written = encode_fetch(seq, items(), &[(1, 10), (2, 0)]);
        assert_eq!(
            String::from_utf8_lossy(&written),
            "* 3 FETCH (UID 7 BINARY[1.2]<10> {2}\r\nab BINARY[]<0> ~{1}\r\n\x00)\r\n"
        );
        // Without origins it is exactly imap-codec's response.
        let whole = Response::Data(Data::Fetch { seq, items: Vec1::try_from(items()).unwrap() });
        assert_eq!(encode_fetch(seq, items(), &[]), ResponseCodec::default().encode(&whole).dump());
    }
}
