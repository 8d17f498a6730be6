//! SORT and UID SORT (RFC 5256) with DISPLAYFROM and DISPLAYTO (RFC
//! 5957), and ESORT's RETURN options (RFC 5267): the SEARCH criteria pick
//! the messages, [`order`] sorts their [`Summary`]s (a pure function),
//! and the answer is `* SORT` or, with RETURN, `* ESEARCH` (with UPDATE,
//! a live context: [`crate::imap::contexts`]). Ties go by
//! mailbox order, whatever REVERSE says. Keys that need headers read each
//! message's outline, one at a time; ARRIVAL and SIZE read nothing.

use std::cmp::Ordering;

use imap_codec::imap_types::core::{Charset, Tag, Vec1};
use imap_codec::imap_types::extensions::sort::{SortCriterion, SortKey};
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::imap_types::search::SearchKey;

use epost_types::mailbox::MailErrorKind;

use crate::backend::{Account, MailBackend};
use crate::imap::condstore::searches_modseq;
use crate::imap::esearch::Esearch;
use crate::imap::session::{Done, Gone, Session, Sink, mail_error, nonzero, ok};
use crate::imap::subject::{base_subject, collation_key};
use crate::imap::summary::{First, Summary};

impl<B: MailBackend> Session<B> {
    pub(crate) async fn sort<O: Sink>(
        &mut self,
        tag: Tag<'static>,
        criteria: Vec1<SortCriterion>,
        charset: Charset<'static>,
        search: Vec1<SearchKey<'static>>,
        uid: bool,
        out: &mut O,
    ) -> Result<Done, Gone> {
        let returns = self.lifted.returns.take();
        let kept = match self.context_key(&tag, returns.as_ref(), &search) {
            Ok(kept) => kept,
            Err(done) => return Ok(*done),
        };
        let by_modseq = search.as_ref().iter().any(searches_modseq);
        if by_modseq {
            self.condstore_on(out).await?;
        }
        let found = match self.matching(&tag, Some(&charset), search).await {
            Ok(found) => found,
            Err(done) => {
                if returns.as_ref().is_some_and(|r| r.save) {
                    self.save_result(Vec::new());
                }
                return Ok(done);
            }
        };
        let criteria = criteria.into_inner();
        let sorted = match self.sorted(&tag, &criteria, &found).await {
            Ok(sorted) => sorted,
            Err(done) => return Ok(*done),
        };
        let numbers: Vec<u32> = sorted.iter().map(|&p| self.number(p, uid)).collect();
        match returns {
            Some(options) => {
                if options.save {
                    // SAVE's MIN and MAX are the first and last sorted.
                    let uids: Vec<u32> = sorted.iter().map(|&p| self.number(p, true)).collect();
                    self.save_result(options.saved(&uids));
                }
                if !options.silent() {
                    let mut esearch = Esearch::answer(tag.as_ref(), uid, &numbers, &options, true);
                    esearch.modseq = self.highest_returned(by_modseq, &sorted, &options);
                    out.send_esearch(esearch).await?;
                }
            }
            None => {
                let highest = self.highest_found(by_modseq, &sorted);
                out.send(sort_response(numbers, highest)).await?
            }
        }
        if let Some(key) = kept {
            self.keep_context(&tag, uid, key, Some(criteria), &sorted, out).await?;
        }
        Ok(Done::now(ok(&tag, None, "SORT completed")))
    }

    /// The view positions of the messages at `positions` in the order
    /// `criteria` give (messages gone meanwhile are left out).
    pub(crate) async fn sorted(
        &self,
        tag: &Tag<'static>,
        criteria: &[SortCriterion],
        positions: &[usize],
    ) -> Result<Vec<usize>, Box<Done>> {
        let headers = criteria.iter().any(needs_header);
        let summaries = self.summaries(tag, positions, headers).await?;
        Ok(order(criteria, &summaries).into_iter().map(|i| summaries[i].0).collect())
    }

    /// The summaries of the messages at `positions` of the view, each with
    /// its position; from the outline when `headers` (messages gone
    /// meanwhile are left out).
    pub(crate) async fn summaries(
        &self,
        tag: &Tag<'static>,
        positions: &[usize],
        headers: bool,
    ) -> Result<Vec<(usize, Summary)>, Box<Done>> {
        let (Some(account), Some(selected)) = (self.account(), self.selected.as_ref()) else {
            return Ok(Vec::new());
        };
        let mut summaries = Vec::with_capacity(positions.len());
        for &position in positions {
            let Some(meta) = selected.messages.get(position) else { continue };
            let summary = if headers {
                match account.outline(&selected.name, meta.uid).await {
                    Ok(outline) => Summary::of(meta, &outline),
                    Err(e) if e.kind() == MailErrorKind::NoMessage => continue,
                    Err(error) => return Err(Box::new(Done::now(mail_error(tag, &error)))),
                }
            } else {
                Summary::of_meta(meta)
            };
            summaries.push((position, summary));
        }
        Ok(summaries)
    }
}

/// `* SORT n... [(MODSEQ m)]` (the one place it is built).
fn sort_response(numbers: Vec<u32>, highest: Option<u64>) -> Response<'static> {
    let highest = highest.map(crate::imap::condstore::modseq);
    Response::Data(Data::Sort(numbers.into_iter().map(nonzero).collect(), highest))
}

fn needs_header(criterion: &SortCriterion) -> bool {
    !matches!(criterion.key, SortKey::Arrival | SortKey::Size)
}

/// The indexes of `items` (in mailbox order) sorted by `criteria`.
pub(crate) fn order(criteria: &[SortCriterion], items: &[(usize, Summary)]) -> Vec<usize> {
    // Keys are made once per message, not once per comparison.
    let keys: Vec<Vec<Key>> = items
        .iter()
        .map(|(_, summary)| criteria.iter().map(|c| Key::of(&c.key, summary)).collect())
        .collect();
    let mut indexes: Vec<usize> = (0..items.len()).collect();
    indexes.sort_by(|&a, &b| {
        for (k, criterion) in criteria.iter().enumerate() {
            let ordering = keys[a][k].cmp(&keys[b][k]);
            let ordering = if criterion.reverse { ordering.reverse() } else { ordering };
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        a.cmp(&b)
    });
    indexes
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Number(i128),
    Text(String),
}

impl Key {
    fn of(key: &SortKey, summary: &Summary) -> Key {
        let mailbox = |first: &Option<First>| {
            Key::Text(first.as_ref().map(|f| collation_key(&f.mailbox)).unwrap_or_default())
        };
        let display = |first: &Option<First>| {
            Key::Text(first.as_ref().map(|f| collation_key(&f.display)).unwrap_or_default())
        };
        match key {
            SortKey::Arrival => Key::Number(i128::from(summary.arrival)),
            SortKey::Date => Key::Number(i128::from(summary.sent)),
            SortKey::Size => Key::Number(i128::from(summary.size)),
            SortKey::Subject => Key::Text(collation_key(&base_subject(&summary.subject).text)),
            SortKey::From => mailbox(&summary.from),
            SortKey::To => mailbox(&summary.to),
            SortKey::Cc => mailbox(&summary.cc),
            SortKey::DisplayFrom => display(&summary.from),
            SortKey::DisplayTo => display(&summary.to),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::session::tests::{logged_in, run};
    use bytes::Bytes;

    fn criteria(keys: &[(bool, SortKey)]) -> Vec<SortCriterion> {
        keys.iter()
            .map(|(reverse, key)| SortCriterion { reverse: *reverse, key: key.clone() })
            .collect()
    }

    fn item(arrival: u64, size: u64, subject: &str, from: &str) -> (usize, Summary) {
        let first = First { mailbox: from.into(), display: from.into() };
        let summary = Summary {
            arrival,
            size,
            sent: arrival as i64,
            subject: subject.into(),
            from: (!from.is_empty()).then_some(first),
            ..Summary::default()
        };
        (0, summary)
    }

    #[test]
    fn sort_orders() {
        let items = vec![
            item(3, 10, "Re: b", "zed"),
            item(1, 30, "a", ""),
            item(2, 10, "B", "Adam"),
            item(4, 5, "[fwd: a]", "adam"),
        ];
        type Keys<'a> = &'a [(bool, SortKey)];
        let cases: &[(Keys<'_>, &[usize])] = &[
            (&[(false, SortKey::Arrival)], &[1, 2, 0, 3]),
            (&[(true, SortKey::Arrival)], &[3, 0, 2, 1]),
            (&[(false, SortKey::Size)], &[3, 0, 2, 1]),
            (&[(true, SortKey::Size)], &[1, 0, 2, 3]),
            (&[(false, SortKey::Subject)], &[1, 3, 0, 2]),
            (&[(false, SortKey::Subject), (true, SortKey::Arrival)], &[3, 1, 0, 2]),
            (&[(false, SortKey::From)], &[1, 2, 3, 0]),
            (&[(false, SortKey::DisplayFrom), (false, SortKey::Size)], &[1, 3, 2, 0]),
            (&[(false, SortKey::To)], &[0, 1, 2, 3]),
        ];
        for (keys, want) in cases {
            assert_eq!(order(&criteria(keys), &items), *want, "{keys:?}");
        }
    }

    #[tokio::test]
    async fn sort_and_esort_answer() {
        let (mut s, _) = logged_in().await;
        let account = s.account().unwrap();
        let messages = [
            ("From: c@x\r\nSubject: b\r\nDate: Fri, 22 Feb 2008 02:00:00 +0200\r\n\r\n1\r\n", 3),
            (
                "From: a@x\r\nSubject: Re: a\r\nDate: Fri, 22 Feb 2008 00:00:00 +0200\r\n\r\n22\r\n",
                1,
            ),
            ("From: b@x\r\nSubject: a\r\n\r\n333\r\n", 2),
        ];
        for (raw, day) in messages {
            let date = 1_203_000_000_000 + day * 86_400_000;
            account.append("INBOX", Bytes::from(raw), vec![], Some(date)).await.unwrap();
        }
        run(&mut s, "a SELECT INBOX").await;
        let cases = [
            ("b SORT (ARRIVAL) UTF-8 ALL", "* SORT 2 3 1\r\n"),
            ("b SORT (REVERSE SIZE) US-ASCII ALL", "* SORT 2 1 3\r\n"),
            ("b SORT (SUBJECT DATE) UTF-8 ALL", "* SORT 3 2 1\r\n"),
            ("b SORT (REVERSE DATE) UTF-8 ALL", "* SORT 1 2 3\r\n"),
            ("b SORT (FROM) UTF-8 NOT FROM b", "* SORT 2 1\r\n"),
            ("b UID SORT (DISPLAYFROM) UTF-8 2:3", "* SORT 2 3\r\n"),
            (
                "b SORT RETURN (MIN MAX COUNT) (ARRIVAL) UTF-8 ALL",
                "* ESEARCH (TAG \"b\") MIN 2 MAX 1 COUNT 3\r\n",
            ),
            ("b SORT RETURN () (REVERSE ARRIVAL) UTF-8 ALL", "* ESEARCH (TAG \"b\") ALL 1,3,2\r\n"),
            ("b UID SORT RETURN (ALL) (ARRIVAL) UTF-8 1000", "* ESEARCH (TAG \"b\") UID\r\n"),
            ("b SORT RETURN (SAVE MIN) (SIZE) UTF-8 ALL", "* ESEARCH (TAG \"b\") MIN 3\r\n"),
            ("b SEARCH $", "* SEARCH 3\r\n"),
        ];
        for (command, want) in cases {
            let reply = run(&mut s, command).await;
            assert!(reply.starts_with(want), "{command}: {reply}");
            assert!(reply.ends_with(" completed\r\n"), "{command}: {reply}");
        }
        assert!(run(&mut s, "c SORT (ARRIVAL) KOI8-R ALL").await.starts_with("c NO [BADCHARSET"));
    }
}
