//! What SORT and THREAD know of a message (RFC 5256, RFC 5957), read from
//! its outline (stored structure and header bytes; no part body): the
//! sent date, the decoded subject, the first From/To/Cc address and the
//! Message-ID and References that threading links by.

use epost_types::mime::{self, AddressEntry, MessageOutline};
use mail_parser::MessageParser;

use crate::backend::MessageMeta;

/// The sort and thread keys of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Summary {
    /// INTERNALDATE, milliseconds since the epoch.
    pub(crate) arrival: u64,
    pub(crate) size: u64,
    /// The Date header in UTC (milliseconds since the epoch), or the
    /// arrival when it is missing or unreadable (RFC 5256 section 2.2).
    pub(crate) sent: i64,
    /// The subject, RFC 2047 decoded.
    pub(crate) subject: String,
    pub(crate) from: Option<First>,
    pub(crate) to: Option<First>,
    pub(crate) cc: Option<First>,
    /// The first valid id of Message-ID, without its angle brackets.
    pub(crate) message_id: Option<String>,
    /// The valid ids of References, oldest first; without any, the first
    /// valid id of In-Reply-To.
    pub(crate) references: Vec<String>,
}

/// The first address of an address field, as SORT compares it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct First {
    /// The local part (RFC 5256 `addr-mailbox`); a group's name for a group.
    pub(crate) mailbox: String,
    /// The display name if there is one, else `mailbox@host` (RFC 5957).
    pub(crate) display: String,
}

impl Summary {
    /// From the folder's metadata alone (enough for ARRIVAL and SIZE).
    pub(crate) fn of_meta(meta: &MessageMeta) -> Self {
        let arrival = meta.internal_date;
        Summary {
            arrival,
            size: meta.size,
            sent: i64::try_from(arrival).unwrap_or(i64::MAX),
            ..Summary::default()
        }
    }

    /// From the metadata and the message's outline.
    pub(crate) fn of(meta: &MessageMeta, outline: &MessageOutline) -> Self {
        let mut summary = Summary::of_meta(meta);
        let envelope = &outline.structure.envelope;
        summary.from = first(&envelope.from);
        summary.to = first(&envelope.to);
        summary.cc = first(&envelope.cc);
        if let Some(message) = MessageParser::default().parse_headers(&outline.head) {
            summary.subject = message.subject().unwrap_or_default().to_owned();
            if let Some(date) = message.date().filter(|d| d.is_valid()) {
                summary.sent = date.to_timestamp().saturating_mul(1000);
            }
        }
        let head = &outline.head[..];
        let ids = |name: &str| mime::header_value(head, name).map(|v| message_ids(&v));
        summary.message_id = ids("message-id").and_then(|ids| ids.into_iter().next());
        summary.references = ids("references").unwrap_or_default();
        if summary.references.is_empty() {
            summary.references =
                ids("in-reply-to").and_then(|ids| ids.into_iter().next()).into_iter().collect();
        }
        summary
    }
}

fn first(entries: &[AddressEntry]) -> Option<First> {
    let of = |m: &mime::Mailbox| {
        let name = m.name.as_deref().map(str::trim).unwrap_or_default();
        // A bare word (`From: d`) is read as a name without an address; it
        // is a local part without a domain, as Dovecot reads it.
        let address = m.address.clone().unwrap_or_else(|| name.to_owned());
        let mailbox = match address.rsplit_once('@') {
            Some((local, _)) => local.to_owned(),
            None => address.clone(),
        };
        let display = if name.is_empty() { address } else { name.to_owned() };
        First { mailbox, display }
    };
    match entries.first()? {
        AddressEntry::Mailbox(m) => Some(of(m)),
        AddressEntry::Group { name: Some(name), .. } => {
            Some(First { mailbox: name.clone(), display: name.clone() })
        }
        AddressEntry::Group { name: None, members } => members.first().map(of),
    }
}

/// The message ids (`<local@domain>`) in a header value, in order,
/// without their brackets; anything else (comments, words, ids without
/// `@` or with spaces) is passed over.
pub(crate) fn message_ids(value: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(value);
    let mut ids = Vec::new();
    let mut rest = text.as_ref();
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        let Some(close) = rest.find(['>', '<']) else { break };
        let id = &rest[..close];
        if rest.as_bytes()[close] == b'>' {
            let valid = id.contains('@')
                && !id.starts_with('@')
                && !id.ends_with('@')
                && !id.chars().any(char::is_whitespace);
            if valid {
                ids.push(id.to_owned());
            }
            rest = &rest[close + 1..];
        } else {
            rest = &rest[close..];
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(head: &str, internal_date: u64) -> Summary {
        let raw = head.as_bytes();
        let outline = MessageOutline::of(raw, mime::parse(raw).structure);
        let meta = MessageMeta { uid: 1, flags: vec![], internal_date, size: 10, modseq: 1 };
        Summary::of(&meta, &outline)
    }

    #[test]
    fn ids_are_read_loosely_but_only_valid_ones_kept() {
        assert_eq!(message_ids(b"<a@b> <c@d>"), vec!["a@b", "c@d"]);
        assert_eq!(message_ids(b"(comment <x@y>) <a@b>"), vec!["x@y", "a@b"]);
        assert_eq!(message_ids(b"<no-at> <a b@c> <a@b"), Vec::<String>::new());
        assert_eq!(message_ids(b"<<a@b>"), vec!["a@b"]);
        assert!(message_ids(b"").is_empty());
    }

    #[test]
    fn keys_come_from_the_header() {
        let s = summary(
            "From: =?iso-8859-1?q?J=F6rg?= <joerg@example.test>\r\n\
             To: Friends: a@example.test, b@example.test;\r\n\
             Cc: c@example.test (comment)\r\n\
             Subject: =?utf-8?q?Re:_Gr=C3=BC=C3=9Fe?=\r\n\
             Date: Fri, 22 Feb 2008 02:00:00 +0200\r\n\
             Message-ID: <m2@example.test>\r\n\
             In-Reply-To: <m1@example.test>\r\n\r\nbody\r\n",
            5,
        );
        assert_eq!(s.subject, "Re: Grüße");
        assert_eq!(s.sent, 1_203_638_400_000);
        assert_eq!(s.from, Some(First { mailbox: "joerg".into(), display: "Jörg".into() }));
        assert_eq!(s.to, Some(First { mailbox: "Friends".into(), display: "Friends".into() }));
        // A comment after the address is its display name, as in ENVELOPE.
        let cc = s.cc.unwrap();
        assert_eq!((cc.mailbox.as_str(), cc.display.as_str()), ("c", "comment"));
        assert_eq!(s.message_id.as_deref(), Some("m2@example.test"));
        assert_eq!(s.references, vec!["m1@example.test"]);
    }

    #[test]
    fn a_bare_word_is_a_local_part() {
        let s = summary("From: d\r\nTo: undisclosed:;\r\nCc: \"\" <e@x>\r\n\r\n", 0);
        assert_eq!(s.from, Some(First { mailbox: "d".into(), display: "d".into() }));
        assert_eq!(s.to.map(|t| t.mailbox), Some("undisclosed".into()));
        assert_eq!(s.cc, Some(First { mailbox: "e".into(), display: "e@x".into() }));
    }

    #[test]
    fn references_win_over_in_reply_to_and_bad_dates_fall_back() {
        let s = summary(
            "References: <r1@x> <r2@x>\r\nIn-Reply-To: <i@x>\r\nDate: someday\r\n\r\n",
            7_000,
        );
        assert_eq!(s.references, vec!["r1@x", "r2@x"]);
        assert_eq!(s.sent, 7_000);
        assert_eq!(s.from, None);
        assert_eq!(s.subject, "");
    }
}
