//! Header fields read by hand, exactly as written: where a header block
//! ends, its fields in order with their folding, and a field's value
//! unfolded. mail-parser decodes values; IMAP answers with the bytes as
//! they are (RFC 3501: ENVELOPE's subject and date, HEADER.FIELDS), so
//! both the structure found at ingest and the gateway read fields here.

/// One header field: its name and where it is (with its line end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a [u8],
    /// The raw value after the colon, folding included.
    pub value: &'a [u8],
    /// The whole field, name to line end.
    pub whole: &'a [u8],
}

/// The fields of a header block, in order; lines that are not fields are
/// left out, and the first empty line ends the block.
pub fn fields(header: &[u8]) -> Vec<Field<'_>> {
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

/// `bytes` without ASCII whitespace at either end.
pub fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &bytes[start..end]
}

/// A field's value unfolded and trimmed.
pub fn unfold(value: &[u8]) -> Vec<u8> {
    let joined: Vec<u8> = value.iter().copied().filter(|&b| b != b'\r' && b != b'\n').collect();
    trim(&joined).to_vec()
}

/// The first field named `name` (any case), unfolded.
pub fn header_value(header: &[u8], name: &str) -> Option<Vec<u8>> {
    fields(header)
        .into_iter()
        .find(|f| f.name.eq_ignore_ascii_case(name.as_bytes()))
        .map(|f| unfold(f.value))
}

/// Where a header block ends (after its empty line), by hand; the whole
/// input if no line is empty.
pub fn header_end(raw: &[u8]) -> usize {
    let mut at = 0;
    for line in raw.split_inclusive(|&b| b == b'\n') {
        at += line.len();
        if line == b"\r\n" || line == b"\n" {
            return at;
        }
    }
    raw.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_keep_folding() {
        let header = b"A: 1\r\nB: x\r\n y\r\nnot a field\r\nC:3\r\n\r\nbody: no\r\n";
        let found = fields(header);
        assert_eq!(found.len(), 3);
        assert_eq!(found[1].whole, b"B: x\r\n y\r\n");
        assert_eq!(unfold(found[1].value), b"x y");
        assert_eq!(header_value(header, "c").unwrap(), b"3");
        assert_eq!(header_end(header), 36);
        assert_eq!(header_end(b"A: 1\r\n"), 6);
    }
}
