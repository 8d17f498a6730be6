//! The header fields of a raw message, located without decoding them:
//! what DKIM signing (which fields are present) and the inbound checks
//! (which `Authentication-Results` to drop) need. Pure, never reads past
//! the empty line that ends the header.

use std::ops::Range;

/// One header field: its name and where the whole field (continuation
/// lines and line end included) lies in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field<'a> {
    pub(crate) name: &'a [u8],
    /// The value after the colon, unfolded lines and line end included.
    pub(crate) value: &'a [u8],
    pub(crate) range: Range<usize>,
}

/// The fields of `message`'s header, in order. A line without a colon
/// is yielded with an empty name (it matches nothing).
pub(crate) fn fields(message: &[u8]) -> Fields<'_> {
    Fields { message, pos: 0 }
}

pub(crate) struct Fields<'a> {
    message: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        let rest = &self.message[self.pos..];
        if rest.is_empty() || rest.starts_with(b"\r\n") || rest.starts_with(b"\n") {
            return None;
        }
        let start = self.pos;
        let mut end = start;
        // The first line, then every line starting with a space or a tab.
        loop {
            end = match self.message[end..].iter().position(|&b| b == b'\n') {
                Some(p) => end + p + 1,
                None => self.message.len(),
            };
            if !matches!(self.message.get(end), Some(b' ' | b'\t')) {
                break;
            }
        }
        self.pos = end;
        let field = &self.message[start..end];
        let first_line = field.split(|&b| b == b'\n').next().unwrap_or_default();
        let (name, value) = match first_line.iter().position(|&b| b == b':') {
            Some(colon) => (trim_end(&field[..colon]), &field[colon + 1..]),
            None => (&field[..0], field),
        };
        Some(Field { name, value, range: start..end })
    }
}

fn trim_end(name: &[u8]) -> &[u8] {
    let len = name.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(0, |p| p + 1);
    &name[..len]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_folding_stop_at_the_empty_line() {
        let message = b"From: a@b\r\nSubject: one\r\n two\r\nX:\r\n\r\nBody: no\r\n";
        let found: Vec<_> = fields(message).collect();
        let names: Vec<&[u8]> = found.iter().map(|f| f.name).collect();
        assert_eq!(names, [&b"From"[..], b"Subject", b"X"]);
        assert_eq!(&message[found[1].range.clone()], b"Subject: one\r\n two\r\n");
        assert_eq!(found[1].value, b" one\r\n two\r\n");
    }

    #[test]
    fn bare_lf_and_a_missing_end() {
        let names: Vec<_> = fields(b"A: 1\nB : 2").map(|f| f.name.to_vec()).collect();
        assert_eq!(names, [b"A".to_vec(), b"B".to_vec()]);
        assert_eq!(fields(b"\r\nA: 1\r\n").count(), 0);
        assert_eq!(fields(b"no colon\r\n\r\n").next().unwrap().name, b"");
    }
}
