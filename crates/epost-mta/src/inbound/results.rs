//! The `Authentication-Results` header (RFC 8601) on a message from
//! outside: any such field already claiming our host name is forged (or
//! stale) and is removed before ours goes on top (section 5). Pure.

use crate::header;

/// `message` without the `Authentication-Results` fields whose
/// authserv-id is `hostname`, with `header` (a whole field, CRLF ended)
/// in front.
pub fn with_results(message: &[u8], hostname: &str, header: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len() + message.len());
    out.extend_from_slice(header.as_bytes());
    let mut copied = 0;
    for field in header::fields(message) {
        if field.name.eq_ignore_ascii_case(b"Authentication-Results")
            && authserv_id(field.value).eq_ignore_ascii_case(hostname.as_bytes())
        {
            out.extend_from_slice(&message[copied..field.range.start]);
            copied = field.range.end;
        }
    }
    out.extend_from_slice(&message[copied..]);
    out
}

/// The authserv-id of a field value: its first token, after white space
/// and comments, up to `;`, white space or a comment.
fn authserv_id(value: &[u8]) -> &[u8] {
    let mut rest = value;
    loop {
        rest = rest.trim_ascii_start();
        if rest.first() == Some(&b'(') {
            // Skip one (unnested) comment.
            match rest.iter().position(|&b| b == b')') {
                Some(end) => rest = &rest[end + 1..],
                None => return &[],
            }
        } else {
            break;
        }
    }
    let end = rest
        .iter()
        .position(|&b| b == b';' || b == b'(' || b.is_ascii_whitespace())
        .unwrap_or(rest.len());
    &rest[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_results_under_our_name_go_and_others_stay() {
        let message = b"Received: x\r\n\
Authentication-Results: MX.Example.org; dkim=pass header.d=bank.test\r\n\
Authentication-Results: other.test; spf=fail\r\n\
Subject: hi\r\n\
authentication-results: (forged)\r\n mx.example.org;\r\n\tdmarc=pass\r\n\
\r\n\
Authentication-Results: mx.example.org; in the body\r\n";
        let out = with_results(
            message,
            "mx.example.org",
            "Authentication-Results: mx.example.org; none\r\n",
        );
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "Authentication-Results: mx.example.org; none\r\n\
Received: x\r\n\
Authentication-Results: other.test; spf=fail\r\n\
Subject: hi\r\n\
\r\n\
Authentication-Results: mx.example.org; in the body\r\n"
        );
    }

    #[test]
    fn authserv_ids() {
        assert_eq!(authserv_id(b" mx.test; spf=pass"), b"mx.test");
        assert_eq!(authserv_id(b" mx.test 1; none"), b"mx.test");
        assert_eq!(authserv_id(b" (c) mx.test;"), b"mx.test");
        assert_eq!(authserv_id(b"\r\n\tmx.test(c);"), b"mx.test");
        assert_eq!(authserv_id(b" (open"), b"");
    }
}
