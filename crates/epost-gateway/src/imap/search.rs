//! SEARCH and UID SEARCH over the selected folder's view. Flag, size,
//! date and number keys use the metadata; header and text keys fetch and
//! parse each message (one at a time) with `mail-parser`, matching
//! case-insensitively on raw and decoded values.

use imap_codec::imap_types::core::{AString, Charset, Tag, Vec1};
use imap_codec::imap_types::datetime::NaiveDate;
use imap_codec::imap_types::response::{Code, Data, Response};
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use mail_parser::{HeaderValue, MessageParser, PartType};

use epost_types::mailbox::MailErrorKind;
use epost_types::mime;

use crate::backend::{Account, MailBackend, MessageMeta};
use crate::imap::condstore::{modseq, searches_modseq};
use crate::imap::session::{Done, Gone, Session, Sink, bad, has_flag, mail_error, no, nonzero, ok};

/// What the text keys look at, lower-cased.
struct Content {
    /// (lower-case name, raw and decoded value).
    headers: Vec<(String, String)>,
    body: String,
    /// The Date header's calendar day, as written.
    sent: Option<chrono::NaiveDate>,
}

impl Content {
    fn new(raw: &[u8]) -> Self {
        let header_end = mime::parse(raw).structure.head_len();
        let mut headers: Vec<(String, String)> = mime::fields(&raw[..header_end])
            .into_iter()
            .map(|f| {
                let name = String::from_utf8_lossy(f.name).to_lowercase();
                (name, String::from_utf8_lossy(&mime::unfold(f.value)).to_lowercase())
            })
            .collect();
        let mut body = String::new();
        let mut sent = None;
        match MessageParser::default().parse(raw) {
            Some(message) => {
                if let Some(root) = message.parts.first() {
                    for header in &root.headers {
                        let decoded = match &header.value {
                            HeaderValue::Text(text) => text.to_string(),
                            HeaderValue::TextList(list) => list.join(" "),
                            HeaderValue::Address(address) => address
                                .iter()
                                .map(|a| {
                                    format!(
                                        "{} {}",
                                        a.name().unwrap_or(""),
                                        a.address().unwrap_or("")
                                    )
                                })
                                .collect::<Vec<_>>()
                                .join(" "),
                            HeaderValue::DateTime(date) => {
                                sent = chrono::NaiveDate::from_ymd_opt(
                                    i32::from(date.year),
                                    u32::from(date.month),
                                    u32::from(date.day),
                                );
                                continue;
                            }
                            _ => continue,
                        };
                        headers.push((header.name.as_str().to_lowercase(), decoded.to_lowercase()));
                    }
                }
                for part in &message.parts {
                    if let PartType::Text(text) | PartType::Html(text) = &part.body {
                        body.push_str(&text.to_lowercase());
                        body.push('\n');
                    }
                }
            }
            None => body = String::from_utf8_lossy(&raw[header_end..]).to_lowercase(),
        }
        Content { headers, body, sent }
    }

    fn header(&self, name: &str, needle: &str) -> bool {
        self.headers.iter().any(|(n, v)| n == name && v.contains(needle))
    }
}

fn needle(value: &AString<'_>) -> String {
    String::from_utf8_lossy(value.as_ref()).to_lowercase()
}

/// Whether the key needs the message's contents.
fn needs_content(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().any(needs_content),
        SearchKey::Not(key) => needs_content(key),
        SearchKey::Or(a, b) => needs_content(a) || needs_content(b),
        SearchKey::Bcc(_)
        | SearchKey::Body(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::Header(..)
        | SearchKey::Subject(_)
        | SearchKey::Text(_)
        | SearchKey::To(_)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_) => true,
        _ => false,
    }
}

fn in_set(set: &SequenceSet, value: u32, largest: u32) -> bool {
    let number = |v: &SeqOrUid| match v {
        SeqOrUid::Value(n) => n.get(),
        SeqOrUid::Asterisk => largest,
    };
    set.0.as_ref().iter().any(|sequence| match sequence {
        Sequence::Single(v) => number(v) == value,
        Sequence::Range(a, b) => {
            let (a, b) = (number(a), number(b));
            (a.min(b)..=a.max(b)).contains(&value)
        }
    })
}

fn day(millis: u64) -> Option<chrono::NaiveDate> {
    chrono::DateTime::from_timestamp(i64::try_from(millis / 1000).ok()?, 0).map(|d| d.date_naive())
}

/// The numbers the search keys are evaluated against.
struct Ctx {
    count: u32,
    largest_uid: u32,
}

fn matches(
    key: &SearchKey<'_>,
    seq: u32,
    meta: &MessageMeta,
    content: Option<&Content>,
    ctx: &Ctx,
) -> bool {
    let flag = |name: &str| has_flag(&meta.flags, name);
    let text = |f: &dyn Fn(&Content) -> bool| content.is_some_and(f);
    let date = |d: &NaiveDate, f: fn(chrono::NaiveDate, chrono::NaiveDate) -> bool| {
        day(meta.internal_date).is_some_and(|day| f(day, *d.as_ref()))
    };
    let sent = |d: &NaiveDate, f: fn(chrono::NaiveDate, chrono::NaiveDate) -> bool| {
        content.and_then(|c| c.sent).is_some_and(|day| f(day, *d.as_ref()))
    };
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().all(|k| matches(k, seq, meta, content, ctx)),
        SearchKey::Not(key) => !matches(key, seq, meta, content, ctx),
        SearchKey::Or(a, b) => {
            matches(a, seq, meta, content, ctx) || matches(b, seq, meta, content, ctx)
        }
        SearchKey::SequenceSet(set) => in_set(set, seq, ctx.count),
        SearchKey::Uid(set) => in_set(set, meta.uid, ctx.largest_uid),
        SearchKey::All | SearchKey::Old => true,
        SearchKey::New | SearchKey::Recent => false,
        SearchKey::Answered => flag("\\Answered"),
        SearchKey::Deleted => flag("\\Deleted"),
        SearchKey::Draft => flag("\\Draft"),
        SearchKey::Flagged => flag("\\Flagged"),
        SearchKey::Seen => flag("\\Seen"),
        SearchKey::Unanswered => !flag("\\Answered"),
        SearchKey::Undeleted => !flag("\\Deleted"),
        SearchKey::Undraft => !flag("\\Draft"),
        SearchKey::Unflagged => !flag("\\Flagged"),
        SearchKey::Unseen => !flag("\\Seen"),
        SearchKey::Keyword(k) => flag(k.as_ref()),
        SearchKey::Unkeyword(k) => !flag(k.as_ref()),
        SearchKey::Larger(n) => meta.size > u64::from(*n),
        SearchKey::Smaller(n) => meta.size < u64::from(*n),
        SearchKey::Before(d) => date(d, |a, b| a < b),
        SearchKey::On(d) => date(d, |a, b| a == b),
        SearchKey::Since(d) => date(d, |a, b| a >= b),
        SearchKey::SentBefore(d) => sent(d, |a, b| a < b),
        SearchKey::SentOn(d) => sent(d, |a, b| a == b),
        SearchKey::SentSince(d) => sent(d, |a, b| a >= b),
        SearchKey::From(v) => text(&|c| c.header("from", &needle(v))),
        SearchKey::To(v) => text(&|c| c.header("to", &needle(v))),
        SearchKey::Cc(v) => text(&|c| c.header("cc", &needle(v))),
        SearchKey::Bcc(v) => text(&|c| c.header("bcc", &needle(v))),
        SearchKey::Subject(v) => text(&|c| c.header("subject", &needle(v))),
        SearchKey::Header(name, v) => {
            let name = needle(name);
            text(&|c| c.header(&name, &needle(v)))
        }
        SearchKey::Body(v) => text(&|c| c.body.contains(&needle(v))),
        // One MODSEQ per message, whatever flag the key names (RFC 7162).
        SearchKey::ModSequence { modseq, .. } => meta.modseq >= *modseq,
        SearchKey::Text(v) => {
            let n = needle(v);
            text(&|c| {
                c.body.contains(&n)
                    || c.headers.iter().any(|(name, value)| name.contains(&n) || value.contains(&n))
            })
        }
    }
}

impl<B: MailBackend> Session<B> {
    pub(crate) async fn search<O: Sink>(
        &mut self,
        tag: Tag<'static>,
        charset: Option<Charset<'static>>,
        criteria: Vec1<SearchKey<'static>>,
        uid: bool,
        out: &mut O,
    ) -> Result<Done, Gone> {
        if let Some(charset) = charset {
            let name = charset.as_ref().to_ascii_uppercase();
            if name != "UTF-8" && name != "US-ASCII" {
                let allowed = ["US-ASCII", "UTF-8"]
                    .into_iter()
                    .filter_map(|c| Charset::try_from(c).ok())
                    .collect();
                return Ok(Done::now(no(
                    &tag,
                    Some(Code::BadCharset { allowed }),
                    "unsupported charset",
                )));
            }
        }
        let key = SearchKey::And(criteria);
        let by_modseq = searches_modseq(&key);
        if by_modseq {
            self.condstore_on(out).await?;
        }
        let (Some(account), Some(selected)) = (self.account(), self.selected.as_ref()) else {
            return Ok(Done::now(bad(&tag, "select a mailbox first")));
        };
        let content_needed = needs_content(&key);
        let ctx = Ctx {
            count: selected.messages.len() as u32,
            largest_uid: selected.messages.last().map_or(0, |m| m.uid),
        };
        let mut found = Vec::new();
        let mut highest = 0;
        for (position, meta) in selected.messages.iter().enumerate() {
            let content = if content_needed {
                match account.fetch(&selected.name, meta.uid).await {
                    Ok(raw) => Some(Content::new(&raw)),
                    Err(e) if e.kind() == MailErrorKind::NoMessage => continue,
                    Err(error) => return Ok(Done::now(mail_error(&tag, &error))),
                }
            } else {
                None
            };
            let seq = position as u32 + 1;
            if matches(&key, seq, meta, content.as_ref(), &ctx) {
                found.push(nonzero(if uid { meta.uid } else { seq }));
                highest = highest.max(meta.modseq);
            }
        }
        let highest = (by_modseq && !found.is_empty()).then(|| modseq(highest));
        out.send(Response::Data(Data::Search(found, highest))).await?;
        Ok(Done::now(ok(&tag, None, "SEARCH completed")))
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::Account;
    use crate::imap::session::tests::{logged_in, run};
    use bytes::Bytes;

    #[tokio::test]
    async fn search_keys() {
        let (mut s, _) = logged_in().await;
        let account = s.account().unwrap();
        let day = 86_400_000u64;
        let messages = [
            (&b"From: Alice <alice@example.test>\r\nSubject: Lunch plans\r\nDate: Mon, 6 Jan 2025 10:00:00 +0000\r\n\r\nPizza?\r\n"[..], 20_000 * day, vec![]),
            (b"From: bob@example.test\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n\r\nHello there\r\n", 20_010 * day, vec!["\\Seen".to_string()]),
            (b"garbage without header", 20_020 * day, vec!["$Work".to_string()]),
        ];
        for (raw, date, flags) in messages {
            account.append("INBOX", Bytes::from_static(raw), flags, Some(date)).await.unwrap();
        }
        run(&mut s, "a SELECT INBOX").await;
        assert!(run(&mut s, "b SEARCH FROM alice").await.starts_with("* SEARCH 1\r\n"));
        assert!(run(&mut s, "c SEARCH SUBJECT gr").await.starts_with("* SEARCH 2\r\n"));
        let utf8 = run(&mut s, "c SEARCH CHARSET UTF-8 SUBJECT {7+}\r\ngrüße").await;
        assert!(utf8.starts_with("* SEARCH 2\r\n"), "{utf8}");
        assert!(run(&mut s, "d SEARCH UNSEEN").await.starts_with("* SEARCH 1 3\r\n"));
        assert!(run(&mut s, "e SEARCH TEXT pizza").await.starts_with("* SEARCH 1\r\n"));
        assert!(run(&mut s, "f SEARCH BODY there").await.starts_with("* SEARCH 2\r\n"));
        assert!(run(&mut s, "g SEARCH SINCE 10-Oct-2024").await.starts_with("* SEARCH 2 3\r\n"));
        assert!(
            run(&mut s, "h SEARCH BEFORE 10-Oct-2024 NOT SEEN").await.starts_with("* SEARCH 1\r\n")
        );
        assert!(
            run(&mut s, "i UID SEARCH OR KEYWORD $Work FROM bob")
                .await
                .starts_with("* SEARCH 2 3\r\n")
        );
        assert!(run(&mut s, "j SEARCH 2:* LARGER 30").await.starts_with("* SEARCH 2\r\n"));
        assert!(
            run(&mut s, "k SEARCH UID 3 HEADER subject lunch").await.starts_with("* SEARCH\r\n")
        );
        assert!(run(&mut s, "l SEARCH SENTON 6-Jan-2025").await.starts_with("* SEARCH 1\r\n"));
        assert!(run(&mut s, "m SEARCH CHARSET KOI8-R ALL").await.starts_with("m NO [BADCHARSET"));
    }
}
