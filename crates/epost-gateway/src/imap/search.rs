//! SEARCH and UID SEARCH over the selected folder's view, answered as
//! `* SEARCH` or, with RETURN options, as `* ESEARCH` (RFC 4731), saving
//! the result for `$` on RETURN (SAVE) (RFC 5182) and keeping it as a live
//! context on RETURN (UPDATE) (RFC 5267, in [`crate::imap::contexts`]).
//! [`Session::matching`] is also what SORT and THREAD select with, and
//! [`Session::verdicts`] what a context's changes are judged by.
//!
//! Flag, size, date and number keys use the metadata; header keys read
//! each message's outline (its header bytes, no part body); BODY and TEXT
//! read the whole message. Messages are read one at a time and matched
//! case-insensitively on raw and decoded values with `mail-parser`.

use imap_codec::imap_types::core::{AString, Atom, Charset, Tag, Vec1};
use imap_codec::imap_types::datetime::NaiveDate;
use imap_codec::imap_types::extensions::sort::SortAlgorithm;
use imap_codec::imap_types::extensions::thread::ThreadingAlgorithm;
use imap_codec::imap_types::response::{Capability, Code, Data, Response};
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};
use mail_parser::{HeaderValue, MessageParser, PartType};

use bytes::Bytes;
use epost_types::mailbox::{MailError, MailErrorKind};
use epost_types::mime;

use crate::backend::{Account, MailBackend, MessageMeta};
use crate::imap::condstore::searches_modseq;
use crate::imap::esearch::{Esearch, ReturnOptions};
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

/// What of a message a key needs besides the folder's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Need {
    Nothing,
    /// The header (the outline's bytes).
    Head,
    /// The whole message.
    Whole,
}

fn need(key: &SearchKey<'_>) -> Need {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().map(need).max().unwrap_or(Need::Nothing),
        SearchKey::Not(key) => need(key),
        SearchKey::Or(a, b) => need(a).max(need(b)),
        SearchKey::Body(_) | SearchKey::Text(_) => Need::Whole,
        SearchKey::Bcc(_)
        | SearchKey::Cc(_)
        | SearchKey::From(_)
        | SearchKey::Header(..)
        | SearchKey::Subject(_)
        | SearchKey::To(_)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_) => Need::Head,
        _ => Need::Nothing,
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
struct Ctx<'a> {
    count: u32,
    largest_uid: u32,
    /// The UIDs recent in this session.
    recent: &'a std::collections::BTreeSet<u32>,
}

fn matches(
    key: &SearchKey<'_>,
    seq: u32,
    meta: &MessageMeta,
    content: Option<&Content>,
    ctx: &Ctx<'_>,
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
        SearchKey::All => true,
        SearchKey::Old => !ctx.recent.contains(&meta.uid),
        SearchKey::Recent => ctx.recent.contains(&meta.uid),
        SearchKey::New => ctx.recent.contains(&meta.uid) && !flag("\\Seen"),
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
        let mut returns = self.lifted.returns.take();
        if returns.is_none() && self.enabled.imap4rev2 {
            // IMAP4rev2 has no `* SEARCH`: a plain SEARCH is RETURN (ALL)
            // (RFC 9051 section 6.4.4).
            returns = Some(ReturnOptions { all: true, ..ReturnOptions::default() });
        }
        let kept = match self.context_key(&tag, returns.as_ref(), &criteria) {
            Ok(kept) => kept,
            Err(done) => return Ok(*done),
        };
        let by_modseq = criteria.as_ref().iter().any(searches_modseq);
        if by_modseq {
            self.condstore_on(out).await?;
        }
        let found = match self.matching(&tag, charset.as_ref(), criteria).await {
            Ok(found) => found,
            Err(done) => {
                // A failed SEARCH ... RETURN (SAVE) saves nothing (RFC 5182).
                if returns.as_ref().is_some_and(|r| r.save) {
                    self.save_result(Vec::new());
                }
                return Ok(done);
            }
        };
        let numbers: Vec<u32> = found.iter().map(|&p| self.number(p, uid)).collect();
        match returns {
            None => {
                let highest = self.highest_found(by_modseq, &found);
                out.send(search_response(numbers, highest)).await?
            }
            Some(options) => {
                if options.save {
                    let uids: Vec<u32> = found.iter().map(|&p| self.number(p, true)).collect();
                    self.save_result(options.saved(&uids));
                }
                if !options.silent() {
                    let mut esearch = Esearch::answer(tag.as_ref(), uid, &numbers, &options, false);
                    esearch.modseq = self.highest_returned(by_modseq, &found, &options);
                    out.send_esearch(esearch).await?;
                }
            }
        }
        if let Some(key) = kept {
            self.keep_context(&tag, uid, key, None, &found, out).await?;
        }
        Ok(Done::now(ok(&tag, None, "SEARCH completed")))
    }

    /// The number a result names the message at `position` of the view
    /// by: its UID, or its sequence number.
    pub(crate) fn number(&self, position: usize, uid: bool) -> u32 {
        match (uid, self.selected.as_ref().and_then(|s| s.messages.get(position))) {
            (true, Some(meta)) => meta.uid,
            _ => position as u32 + 1,
        }
    }

    /// The positions in the view (ascending) of the messages that match
    /// `criteria`, or the command's refusal.
    pub(crate) async fn matching(
        &self,
        tag: &Tag<'static>,
        charset: Option<&Charset<'static>>,
        criteria: Vec1<SearchKey<'static>>,
    ) -> Result<Vec<usize>, Done> {
        if let Some(charset) = charset {
            let name = charset.as_ref().to_ascii_uppercase();
            if name != "UTF-8" && name != "US-ASCII" {
                let allowed = ["US-ASCII", "UTF-8"]
                    .into_iter()
                    .filter_map(|c| Charset::try_from(c).ok())
                    .collect();
                let code = Some(Code::BadCharset { allowed });
                return Err(Done::now(no(tag, code, "unsupported charset")));
            }
        }
        let key = SearchKey::And(criteria);
        let Some(selected) = self.selected.as_ref() else {
            return Err(Done::now(bad(tag, "select a mailbox first")));
        };
        let everything: Vec<usize> = (0..selected.messages.len()).collect();
        match self.verdicts(&key, &everything).await {
            Ok(verdicts) => Ok(verdicts.into_iter().filter(|&(_, m)| m).map(|(p, _)| p).collect()),
            Err(error) => Err(Done::now(mail_error(tag, &error))),
        }
    }

    /// Whether each message at `positions` (ascending) of the view matches
    /// `key`; a message expunged meanwhile is left out (the client hears
    /// of it later), so are positions the view does not have.
    pub(crate) async fn verdicts(
        &self,
        key: &SearchKey<'static>,
        positions: &[usize],
    ) -> Result<Vec<(usize, bool)>, MailError> {
        let (Some(account), Some(selected)) = (self.account(), self.selected.as_ref()) else {
            return Ok(Vec::new());
        };
        let need = need(key);
        let ctx = Ctx {
            count: selected.messages.len() as u32,
            largest_uid: selected.messages.last().map_or(0, |m| m.uid),
            recent: &selected.recent,
        };
        let mut verdicts = Vec::with_capacity(positions.len());
        for &position in positions {
            let Some(meta) = selected.messages.get(position) else { continue };
            let read: Result<Option<Bytes>, MailError> = match need {
                Need::Nothing => Ok(None),
                Need::Head => {
                    account.outline(&selected.name, meta.uid).await.map(|o| Some(o.head.into()))
                }
                Need::Whole => account.fetch(&selected.name, meta.uid).await.map(Some),
            };
            let content = match read {
                Ok(bytes) => bytes.map(|bytes| Content::new(&bytes)),
                Err(e) if e.kind() == MailErrorKind::NoMessage => continue,
                Err(error) => return Err(error),
            };
            let seq = position as u32 + 1;
            verdicts.push((position, matches(key, seq, meta, content.as_ref(), &ctx)));
        }
        Ok(verdicts)
    }
}

/// Whether `key` depends on where messages stand in the view (a sequence
/// set, or `*` in a UID set): then a message's verdict may change when
/// others come or go, not only when it changes itself.
pub(crate) fn by_position(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::And(keys) => keys.as_ref().iter().any(by_position),
        SearchKey::Not(key) => by_position(key),
        SearchKey::Or(a, b) => by_position(a) || by_position(b),
        SearchKey::SequenceSet(_) => true,
        SearchKey::Uid(set) => set.0.as_ref().iter().any(|sequence| match sequence {
            Sequence::Single(v) => *v == SeqOrUid::Asterisk,
            Sequence::Range(a, b) => *a == SeqOrUid::Asterisk || *b == SeqOrUid::Asterisk,
        }),
        _ => false,
    }
}

/// What the search family adds to CAPABILITY.
pub(crate) fn capabilities() -> Vec<Capability<'static>> {
    let mut caps = vec![
        Capability::Sort(None),
        Capability::Sort(Some(SortAlgorithm::Display)),
        Capability::Thread(ThreadingAlgorithm::OrderedSubject),
        Capability::Thread(ThreadingAlgorithm::References),
    ];
    for name in ["ESEARCH", "ESORT", "SEARCHRES", "CONTEXT=SEARCH", "CONTEXT=SORT", "PARTIAL"] {
        if let Ok(atom) = Atom::try_from(name) {
            caps.push(Capability::from(atom));
        }
    }
    caps
}

/// `* SEARCH n... [(MODSEQ m)]` (the one place it is built).
fn search_response(numbers: Vec<u32>, highest: Option<u64>) -> Response<'static> {
    let highest = highest.map(crate::imap::condstore::modseq);
    Response::Data(Data::Search(numbers.into_iter().map(nonzero).collect(), highest))
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
        // PARTIAL from the end (RFC 9394), in SEARCH and SORT.
        let last = run(&mut s, "n UID SEARCH RETURN (PARTIAL -1:-2) ALL").await;
        assert!(last.starts_with("* ESEARCH (TAG \"n\") UID PARTIAL (-1:-2 2:3)\r\n"), "{last}");
        let sorted = run(&mut s, "o SORT RETURN (PARTIAL -3:-1) (REVERSE ARRIVAL) UTF-8 ALL").await;
        assert!(sorted.starts_with("* ESEARCH (TAG \"o\") PARTIAL (-1:-3 3,2,1)\r\n"), "{sorted}");
    }

    #[tokio::test]
    async fn header_keys_read_outlines_and_body_keys_whole_messages() {
        let (mut s, backend) = logged_in().await;
        let account = s.account().unwrap();
        for i in 0..4 {
            let raw = format!("From: u{i}@example.test\r\nSubject: s{i}\r\n\r\nbody {i}\r\n");
            account.append("INBOX", Bytes::from(raw), vec![], None).await.unwrap();
        }
        run(&mut s, "a SELECT INBOX").await;
        let before = backend.full_reads();
        let reply =
            run(&mut s, "b SEARCH OR FROM u1 HEADER subject s3 NOT SENTON 1-Jan-2000").await;
        assert!(reply.starts_with("* SEARCH 2 4\r\n"), "{reply}");
        assert!(run(&mut s, "c SORT (SUBJECT) UTF-8 UNSEEN").await.starts_with("* SORT 1 2 3 4"));
        assert!(run(&mut s, "d THREAD REFERENCES UTF-8 ALL").await.starts_with("* THREAD (1)"));
        assert_eq!(backend.full_reads(), before, "header keys read whole messages");
        assert!(run(&mut s, "e SEARCH BODY \"body 2\"").await.starts_with("* SEARCH 3\r\n"));
        assert_eq!(backend.full_reads(), before + 4);
    }
}
