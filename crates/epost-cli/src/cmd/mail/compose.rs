//! Builds an RFC 5322 message for `epost send`: text body, optional
//! attachments as multipart/mixed with base64 parts.

use anyhow::{Result, bail};
use ring::rand::{SecureRandom, SystemRandom};

/// Longest line RFC 5322 allows, without CRLF.
const MAX_LINE: usize = 998;

pub(crate) fn message(
    from: &str,
    to: &[String],
    subject: &str,
    body: &str,
    attachments: &[(String, Vec<u8>)],
) -> Result<Vec<u8>> {
    let mut values = [from, subject].into_iter().chain(to.iter().map(String::as_str));
    if values.any(|h| h.contains(['\r', '\n'])) {
        bail!("header values cannot contain line breaks");
    }
    let domain = from.rsplit_once('@').map(|(_, d)| d).unwrap_or("localhost");
    let mut out = String::new();
    out.push_str(&format!("From: {from}\r\n"));
    out.push_str(&format!("To: {}\r\n", to.join(", ")));
    out.push_str(&format!("Subject: {}\r\n", encode_header(subject)));
    out.push_str(&format!("Date: {}\r\n", rfc5322_date(now_secs())));
    out.push_str(&format!("Message-ID: <{}@{domain}>\r\n", hex(&random::<12>()?)));
    out.push_str("MIME-Version: 1.0\r\n");
    let text = crlf(body);
    if attachments.is_empty() {
        out.push_str(&text_part(&text));
        return Ok(out.into_bytes());
    }
    let boundary = format!("=_epost_{}", hex(&random::<12>()?));
    out.push_str(&format!("Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"));
    out.push_str("This is a multi-part message in MIME format.\r\n");
    out.push_str(&format!("--{boundary}\r\n"));
    out.push_str(&text_part(&text));
    for (name, bytes) in attachments {
        out.push_str(&format!("\r\n--{boundary}\r\n"));
        let name = name.replace(['"', '\\', '\r', '\n'], "_");
        out.push_str(&format!("Content-Type: application/octet-stream; name=\"{name}\"\r\n"));
        out.push_str(&format!("Content-Disposition: attachment; filename=\"{name}\"\r\n"));
        out.push_str("Content-Transfer-Encoding: base64\r\n\r\n");
        out.push_str(&base64_lines(bytes));
    }
    out.push_str(&format!("\r\n--{boundary}--\r\n"));
    Ok(out.into_bytes())
}

/// Headers and body of a text/plain part (7bit, 8bit or base64 as needed).
fn text_part(text: &str) -> String {
    let long = text.split("\r\n").any(|line| line.len() > MAX_LINE);
    let (encoding, body) = if long {
        ("base64", base64_lines(text.as_bytes()))
    } else if text.is_ascii() {
        ("7bit", text.to_owned())
    } else {
        ("8bit", text.to_owned())
    };
    let mut body = body;
    if !body.ends_with("\r\n") {
        body.push_str("\r\n");
    }
    format!(
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n{body}"
    )
}

fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\n', "\r\n")
}

fn base64_lines(bytes: &[u8]) -> String {
    let encoded = data_encoding::BASE64.encode(bytes);
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 38);
    for chunk in encoded.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push_str("\r\n");
    }
    out
}

/// A header value as RFC 2047 encoded words when it is not ASCII.
fn encode_header(value: &str) -> String {
    if value.is_ascii() {
        return value.to_owned();
    }
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in value.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    words.push(chunk);
    words
        .iter()
        .map(|w| format!("=?UTF-8?B?{}?=", data_encoding::BASE64.encode(w.as_bytes())))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn rfc5322_date(secs: u64) -> String {
    epost_types::maildate::rfc5322(secs)
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    SystemRandom::new().fill(&mut out).map_err(|_| anyhow::anyhow!("no system randomness"))?;
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_with_an_attachment_parses_back() {
        let raw = message(
            "alice@example.test",
            &["bob@example.test".into()],
            "Grüße",
            "hi\nthere\n",
            &[("a.bin".into(), vec![0, 1, 2, 255])],
        )
        .unwrap();
        let parsed = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(parsed.subject(), Some("Grüße"));
        assert_eq!(parsed.attachment(0).unwrap().contents(), &[0, 1, 2, 255]);
        assert!(parsed.body_text(0).unwrap().contains("there"));
    }
}
