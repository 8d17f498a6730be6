//! The IMAP URLs (RFC 5092) a CATENATE part may name: one message of the
//! user's own mailboxes, or a section or a partial range of it. Read as a
//! pure function; [`super::catenate`] finds the bytes.
//!
//! Accepted forms (keywords in any case, the mailbox and section
//! percent-encoded, the mailbox in UTF-8):
//! - `imap://[user@]host[:port]/mailbox[;UIDVALIDITY=n]/;UID=n[...]`,
//!   kept only if user and host are this session's (checked by the caller);
//! - `/mailbox[;UIDVALIDITY=n]/;UID=n[/;SECTION=s][/;PARTIAL=o[.l]]`;
//! - `;UID=n[/;SECTION=s][/;PARTIAL=o[.l]]`, in the selected mailbox.
//!
//! Anything else (URLAUTH and EXPIRE among them, a search, a mailbox
//! without a UID) is refused, and the APPEND answered `NO [BADURL]`. The
//! section is read by `imap-codec`'s own FETCH grammar, so a URL's
//! section means exactly what `BODY[section]` does.

use std::num::NonZeroU32;

use imap_codec::CommandCodec;
use imap_codec::decode::Decoder;
use imap_codec::imap_types::command::CommandBody;
use imap_codec::imap_types::fetch::{MacroOrMessageDataItemNames, MessageDataItemName, Section};

/// One message, or a piece of it, named by an IMAP URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MessageUrl {
    /// `imap://user@host`, when the URL is absolute.
    pub(crate) server: Option<Server>,
    /// The folder as the backend names it; `None`: the selected one.
    pub(crate) folder: Option<String>,
    pub(crate) uid_validity: Option<u32>,
    pub(crate) uid: u32,
    /// `None`: the whole message.
    pub(crate) section: Option<Section<'static>>,
    /// `(offset, length)`; no length: to the end.
    pub(crate) partial: Option<(u32, Option<NonZeroU32>)>,
}

/// The server part of an absolute URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Server {
    pub(crate) user: Option<String>,
    pub(crate) host: String,
}

/// Why a URL names no message here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum UrlError {
    #[error("not an IMAP message URL this server reads")]
    Form,
    #[error("bad percent-encoding")]
    Encoding,
    #[error("bad UID or UIDVALIDITY")]
    Number,
    #[error("bad section")]
    Section,
    #[error("bad partial range")]
    Partial,
}

/// Reads `url`.
pub(crate) fn parse(url: &[u8]) -> Result<MessageUrl, UrlError> {
    let url = std::str::from_utf8(url).map_err(|_| UrlError::Encoding)?;
    let (server, path) = match strip_prefix_ignore_case(url, "imap://") {
        Some(rest) => {
            let slash = rest.find('/').ok_or(UrlError::Form)?;
            (Some(server(&rest[..slash])?), &rest[slash..])
        }
        None => (None, url),
    };
    let (folder, uid_validity, rest) = match path.strip_prefix('/') {
        Some(path) => {
            let at = find_ignore_case(path, "/;UID=").ok_or(UrlError::Form)?;
            let (mailbox, validity) = match path[..at].split_once(';') {
                Some((mailbox, param)) => {
                    let value =
                        strip_prefix_ignore_case(param, "UIDVALIDITY=").ok_or(UrlError::Form)?;
                    (mailbox, Some(nz_number(value)?))
                }
                None => (&path[..at], None),
            };
            (Some(folder(mailbox)?), validity, &path[at + 1..])
        }
        None if server.is_some() => return Err(UrlError::Form),
        None => (None, None, path),
    };
    let rest = strip_prefix_ignore_case(rest, ";UID=").ok_or(UrlError::Form)?;
    let (uid, mut rest) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let uid = nz_number(uid)?;
    let mut section = None;
    if let Some(after) = strip_prefix_ignore_case(rest, "/;SECTION=") {
        let end = find_ignore_case(after, "/;PARTIAL=").unwrap_or(after.len());
        section = Some(parse_section(&decode(&after[..end])?)?);
        rest = &after[end..];
    }
    let mut partial = None;
    if let Some(after) = strip_prefix_ignore_case(rest, "/;PARTIAL=") {
        partial = Some(parse_partial(after)?);
        rest = "";
    }
    if !rest.is_empty() {
        return Err(UrlError::Form);
    }
    Ok(MessageUrl { server, folder, uid_validity, uid, section, partial })
}

/// `[enc-user [";AUTH=" ...] "@"] host [":" port]`; an `;AUTH=` is
/// refused (no URLAUTH here).
fn server(authority: &str) -> Result<Server, UrlError> {
    let (user, host) = match authority.rsplit_once('@') {
        Some((user, host)) => (Some(user), host),
        None => (None, authority),
    };
    if user.is_some_and(|u| u.contains(';')) {
        return Err(UrlError::Form);
    }
    let host = host.split_once(':').map_or(host, |(host, _port)| host);
    if host.is_empty() {
        return Err(UrlError::Form);
    }
    let user = user.map(decode).transpose()?;
    let user = user.map(|u| String::from_utf8(u).map_err(|_| UrlError::Encoding)).transpose()?;
    Ok(Server { user, host: host.to_ascii_lowercase() })
}

/// A percent-encoded UTF-8 mailbox name as the backend names it (INBOX
/// in any case is INBOX).
fn folder(encoded: &str) -> Result<String, UrlError> {
    let name = String::from_utf8(decode(encoded)?).map_err(|_| UrlError::Encoding)?;
    if name.is_empty() || name.contains(['\r', '\n', '\0']) {
        return Err(UrlError::Form);
    }
    Ok(if name.eq_ignore_ascii_case("INBOX") { "INBOX".to_owned() } else { name })
}

fn nz_number(digits: &str) -> Result<u32, UrlError> {
    match digits.parse::<u32>() {
        Ok(n) if n > 0 && digits.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(UrlError::Number),
    }
}

/// `offset ["." length]`, the length not zero.
fn parse_partial(range: &str) -> Result<(u32, Option<NonZeroU32>), UrlError> {
    let number = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
            .ok_or(UrlError::Partial)
    };
    match range.split_once('.') {
        Some((offset, length)) => {
            let length = NonZeroU32::new(number(length)?).ok_or(UrlError::Partial)?;
            Ok((number(offset)?, Some(length)))
        }
        None => Ok((number(range)?, None)),
    }
}

/// A section's text (`HEADER`, `1.2.MIME`, `HEADER.FIELDS (SUBJECT)`),
/// read as FETCH reads `BODY[...]`.
fn parse_section(text: &[u8]) -> Result<Section<'static>, UrlError> {
    if text.is_empty() || text.iter().any(|b| b"]{\r\n\0".contains(b)) {
        return Err(UrlError::Section);
    }
    let mut command = b"0 FETCH 1 BODY.PEEK[".to_vec();
    command.extend_from_slice(text);
    command.extend_from_slice(b"]\r\n");
    let Ok((rest, command)) = CommandCodec::default().decode_static(&command) else {
        return Err(UrlError::Section);
    };
    if !rest.is_empty() {
        return Err(UrlError::Section);
    }
    match command.body {
        CommandBody::Fetch {
            macro_or_item_names: MacroOrMessageDataItemNames::MessageDataItemNames(names),
            ..
        } => match names.as_slice() {
            [MessageDataItemName::BodyExt { section: Some(section), partial: None, .. }] => {
                Ok(section.clone())
            }
            _ => Err(UrlError::Section),
        },
        _ => Err(UrlError::Section),
    }
}

/// Percent-decoding.
fn decode(text: &str) -> Result<Vec<u8>, UrlError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%' {
            let hex = bytes.get(at + 1..at + 3).ok_or(UrlError::Encoding)?;
            let hex = std::str::from_utf8(hex).map_err(|_| UrlError::Encoding)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| UrlError::Encoding)?);
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    Ok(out)
}

fn strip_prefix_ignore_case<'t>(text: &'t str, prefix: &str) -> Option<&'t str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

fn find_ignore_case(text: &str, needle: &str) -> Option<usize> {
    let (haystack, needle) = (text.as_bytes(), needle.as_bytes());
    haystack.windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle))
}

/// A URL as a BADURL response code may carry it (`url-resp-text`: no
/// `]`, no controls): as the client wrote it, but for what may not stand
/// there (and spaces and 8-bit bytes), which is percent-encoded.
pub(crate) fn for_response(url: &[u8]) -> String {
    let mut out = String::with_capacity(url.len());
    for &b in url {
        if (0x21..0x7f).contains(&b) && b != b']' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use imap_codec::imap_types::core::Vec1;
    use imap_codec::imap_types::fetch::Part;

    fn url(
        folder: Option<&str>,
        uid_validity: Option<u32>,
        uid: u32,
        section: Option<Section<'static>>,
        partial: Option<(u32, Option<u32>)>,
    ) -> MessageUrl {
        MessageUrl {
            server: None,
            folder: folder.map(str::to_owned),
            uid_validity,
            uid,
            section,
            partial: partial.map(|(o, l)| (o, l.and_then(NonZeroU32::new))),
        }
    }

    fn part(numbers: &[u32]) -> Part {
        let numbers: Vec<NonZeroU32> = numbers.iter().filter_map(|&n| NonZeroU32::new(n)).collect();
        Part(Vec1::try_from(numbers).unwrap())
    }

    #[test]
    fn the_forms_imaptest_and_clients_send() {
        let table = [
            ("/INBOX/;UID=5", url(Some("INBOX"), None, 5, None, None)),
            ("/inbox/;uid=5", url(Some("INBOX"), None, 5, None, None)),
            (
                "/imaptest;uidvalidity=1700/;uid=2/;section=header",
                url(Some("imaptest"), Some(1700), 2, Some(Section::Header(None)), None),
            ),
            (
                "/Lists/epost%20dev/;UID=3/;SECTION=TEXT",
                url(Some("Lists/epost dev"), None, 3, Some(Section::Text(None)), None),
            ),
            (
                "/K%C3%B6ln/;UID=3/;SECTION=1.2.MIME",
                url(Some("Köln"), None, 3, Some(Section::Mime(part(&[1, 2]))), None),
            ),
            (
                "/x/;uid=4/;section=1",
                url(Some("x"), None, 4, Some(Section::Part(part(&[1]))), None),
            ),
            ("/x/;uid=4/;partial=100000.1", url(Some("x"), None, 4, None, Some((100000, Some(1))))),
            (
                "/x/;uid=4/;section=2.text/;partial=7",
                url(Some("x"), None, 4, Some(Section::Text(Some(part(&[2])))), Some((7, None))),
            ),
            (";UID=9", url(None, None, 9, None, None)),
            (";uid=9/;section=HEADER", url(None, None, 9, Some(Section::Header(None)), None)),
        ];
        for (text, want) in table {
            assert_eq!(parse(text.as_bytes()), Ok(want), "{text}");
        }
        let fields = parse(b"/x/;UID=1/;SECTION=HEADER.FIELDS%20(SUBJECT%20FROM)").unwrap();
        assert!(matches!(fields.section, Some(Section::HeaderFields(None, _))), "{fields:?}");
    }

    #[test]
    fn absolute_urls_name_their_server() {
        let absolute =
            parse(b"imap://alice%40example.test@Mail.Example.test:143/INBOX/;UID=2").unwrap();
        assert_eq!(
            absolute.server,
            Some(Server {
                user: Some("alice@example.test".into()),
                host: "mail.example.test".into()
            })
        );
        assert_eq!(absolute.folder.as_deref(), Some("INBOX"));
        assert_eq!(parse(b"imap://host/;UID=2"), Err(UrlError::Form));
    }

    #[test]
    fn other_urls_are_refused() {
        for text in [
            "",
            "/INBOX",
            "/INBOX/",
            "/INBOX/;UID=",
            "/INBOX/;UID=0",
            "/INBOX/;UID=x",
            "/INBOX/;UID=1;EXPIRE=2030-01-01T00:00:00Z",
            "/INBOX/;UID=1;URLAUTH=anonymous",
            "/INBOX;UIDVALIDITY=0/;UID=1",
            "/INBOX;FOO=1/;UID=1",
            "/INBOX?SUBJECT%20x",
            "/INBOX/;UID=1/;SECTION=",
            "/INBOX/;UID=1/;SECTION=BOGUS",
            "/INBOX/;UID=1/;SECTION=1%5D%20FLAGS",
            "/INBOX/;UID=1/;PARTIAL=1.0",
            "/INBOX/;UID=1/;PARTIAL=",
            "/INBOX/;UID=1/trailing",
            "/%ZZ/;UID=1",
            "/%FF/;UID=1",
            "UID=1",
            "imap://user;AUTH=*@host/INBOX/;UID=1",
            "imap://host",
        ] {
            assert!(parse(text.as_bytes()).is_err(), "{text}: {:?}", parse(text.as_bytes()));
        }
    }

    #[test]
    fn urls_in_response_codes_stay_inside_them() {
        assert_eq!(for_response(b"/INBOX/;UID=1"), "/INBOX/;UID=1");
        assert_eq!(for_response(b"/a%20b/;UID=1"), "/a%20b/;UID=1");
        assert_eq!(for_response(b"/a]b c\r\n"), "/a%5Db%20c%0D%0A");
    }
}
