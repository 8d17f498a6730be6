//! Undoing a part's Content-Transfer-Encoding (RFC 2045 section 6), for
//! BINARY: base64 and quoted-printable decoded leniently, as mail
//! readers do (what is not part of the encoding is skipped or kept, never
//! an error), and the identity encodings left alone. An encoding not
//! known here is the caller's `UNKNOWN-CTE`.

/// How a body is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// None named, `7bit`, `8bit` or `binary`: the bytes are the content.
    Identity,
    Base64,
    QuotedPrintable,
}

/// An encoding this server cannot undo (`x-uuencode`, a typo, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unknown;

impl Encoding {
    /// The encoding a Content-Transfer-Encoding value names (any case);
    /// `None` when the part names none.
    pub(crate) fn named(value: Option<&[u8]>) -> Result<Self, Unknown> {
        let Some(value) = value else { return Ok(Encoding::Identity) };
        let is = |name: &str| value.eq_ignore_ascii_case(name.as_bytes());
        if is("7bit") || is("8bit") || is("binary") {
            Ok(Encoding::Identity)
        } else if is("base64") {
            Ok(Encoding::Base64)
        } else if is("quoted-printable") {
            Ok(Encoding::QuotedPrintable)
        } else {
            Err(Unknown)
        }
    }

    /// The content `body` encodes.
    pub(crate) fn decode(self, body: &[u8]) -> Vec<u8> {
        match self {
            Encoding::Identity => body.to_vec(),
            Encoding::Base64 => base64(body),
            Encoding::QuotedPrintable => quoted_printable(body),
        }
    }
}

/// Base64: line breaks, spaces and any other byte outside the alphabet
/// are skipped; the first `=` ends the data; a last incomplete group
/// gives the whole bytes it holds.
fn base64(body: &[u8]) -> Vec<u8> {
    let value = |b: u8| match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(body.len() / 4 * 3);
    let (mut bits, mut held) = (0u32, 0u32);
    for &b in body.iter().take_while(|&&b| b != b'=') {
        let Some(v) = value(b) else { continue };
        bits = (bits << 6) | u32::from(v);
        held += 6;
        if held >= 8 {
            held -= 8;
            out.push((bits >> held) as u8);
            bits &= (1 << held) - 1;
        }
    }
    out
}

/// Quoted-printable: `=XX` (either case) is the byte XX; a line ending
/// in `=` (maybe followed by blanks) continues on the next; blanks at a
/// line's end are dropped (they were added in transport); every other
/// byte, a stray `=` included, is itself. Line breaks stay as written.
fn quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    for line in body.split_inclusive(|&b| b == b'\n') {
        let (text, end) = match line.strip_suffix(b"\r\n") {
            Some(text) => (text, &b"\r\n"[..]),
            None => match line.strip_suffix(b"\n") {
                Some(text) => (text, &b"\n"[..]),
                None => (line, &b""[..]),
            },
        };
        let blank = |b: &u8| *b == b' ' || *b == b'\t';
        let kept = text.iter().rposition(|b| !blank(b)).map_or(0, |last| last + 1);
        let text = &text[..kept];
        match text.strip_suffix(b"=") {
            Some(soft) => unquote(soft, &mut out),
            None => {
                unquote(text, &mut out);
                out.extend_from_slice(end);
            }
        }
    }
    out
}

/// One line's `=XX` escapes undone.
fn unquote(text: &[u8], out: &mut Vec<u8>) {
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut at = 0;
    while let Some(&b) = text.get(at) {
        let escaped = match (b, text.get(at + 1), text.get(at + 2)) {
            (b'=', Some(&h), Some(&l)) => hex(h).zip(hex(l)).map(|(h, l)| (h * 16 + l) as u8),
            _ => None,
        };
        match escaped {
            Some(byte) => {
                out.push(byte);
                at += 3;
            }
            None => {
                out.push(b);
                at += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_by_name() {
        type Case = (Option<&'static [u8]>, Result<Encoding, Unknown>);
        let table: [Case; 8] = [
            (None, Ok(Encoding::Identity)),
            (Some(b"7bit"), Ok(Encoding::Identity)),
            (Some(b"8BIT"), Ok(Encoding::Identity)),
            (Some(b"Binary"), Ok(Encoding::Identity)),
            (Some(b"BASE64"), Ok(Encoding::Base64)),
            (Some(b"Quoted-Printable"), Ok(Encoding::QuotedPrintable)),
            (Some(b"x-uuencode"), Err(Unknown)),
            (Some(b""), Err(Unknown)),
        ];
        for (value, want) in table {
            assert_eq!(Encoding::named(value), want, "{value:?}");
        }
    }

    #[test]
    fn base64_skips_what_is_not_base64() {
        let table: [(&[u8], &[u8]); 8] = [
            (b"aGVsbG8gd29ybGQ=", b"hello world"),
            (b"\r\naGVs\r\nbG8gd29y\r\nbGQ=\r\n", b"hello world"),
            (b"  aGVs    \r\n bG8g  \r\n   d29y  \t \r\n    bGQ= \r\n", b"hello world"),
            (b"YWJjZGVmZw1oaWprbA0KbW5vCnBxcnN0dXZxeHl6", b"abcdefg\rhijkl\r\nmno\npqrstuvqxyz"),
            (b"AC3kCg0KCg==", b"\x00-\xe4\n\r\n\n"),
            // Unpadded, and a lone last character (no whole byte).
            (b"aGk", b"hi"),
            (b"aGk=ignored", b"hi"),
            (b"", b""),
        ];
        for (body, want) in table {
            assert_eq!(Encoding::Base64.decode(body), want, "{:?}", String::from_utf8_lossy(body));
        }
        assert_eq!(Encoding::Base64.decode(b"aGkh!a"), b"hi!");
    }

    #[test]
    fn quoted_printable_soft_breaks_and_blanks() {
        let table: [(&[u8], &[u8]); 9] = [
            (b"caf=C3=A9", "café".as_bytes()),
            (b"lower =c3=a9", "lower é".as_bytes()),
            (b"hello  \r\nbar", b"hello\r\nbar"),
            (b"bar=\r\n\r\nfoo", b"bar\r\nfoo"),
            (b"foo\t \t= \r\n=62\r\n", b"foo\t \tb\r\n"),
            (b"foo = \t\r\nbar\r\n", b"foo bar\r\n"),
            (b"bare lf=\nand\n", b"bare lfand\n"),
            // Not an escape: kept.
            (b"a=ZZ b= c=4", b"a=ZZ b= c=4"),
            (b"=3D=\r\n", b"="),
        ];
        for (body, want) in table {
            assert_eq!(
                Encoding::QuotedPrintable.decode(body),
                want,
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    /// The body of imaptest's quoted-printable sample and what Dovecot
    /// makes of it (65 bytes).
    #[test]
    fn quoted_printable_as_dovecot_decodes_it() {
        let body =
            b"hello  \r\nbar=\r\n\r\nfoo\t=\r\nbar\r\nfoo\t \t= \r\n=62\r\nfoo = \t\r\nbar\r\n\
foo =\r\n=62\r\nfoo  \r\nbar=\r\n\r\nfoo_bar\r\n";
        let want = b"hello\r\nbar\r\nfoo\tbar\r\nfoo\t \tb\r\nfoo bar\r\nfoo b\r\nfoo\r\nbar\r\nfoo_bar\r\n";
        assert_eq!(Encoding::QuotedPrintable.decode(body), want);
        assert_eq!(want.len(), 65);
    }
}
