//! CONDSTORE (RFC 7162 section 3.1): MODSEQs in FETCH, FETCH
//! (CHANGEDSINCE), STORE (UNCHANGEDSINCE) with MODIFIED, SEARCH MODSEQ
//! and the HIGHESTMODSEQ a session has told. The MODSEQs themselves are
//! the mail service's (a position in the user's mail log, `spec/mail.md`);
//! this file decides what a session says about them.
//!
//! Once a client has used any of these (or ENABLEd it), every FETCH that
//! tells it of a change carries UID and MODSEQ, whatever caused the change.

use std::num::NonZeroU64;

use imap_codec::imap_types::command::{FetchModifier, StoreModifier};
use imap_codec::imap_types::core::Vec1;
use imap_codec::imap_types::fetch::MessageDataItem;
use imap_codec::imap_types::response::{Code, Data, Response, StatusKind};
use imap_codec::imap_types::search::SearchKey;
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

use crate::backend::{MailBackend, MessageMeta};
use crate::imap::enable::Enabled;
use crate::imap::esearch::ReturnOptions;
use crate::imap::session::{Gone, Session, Sink, flags_response, nonzero, untagged};

/// A MODSEQ as IMAP writes it (never 0: the mail service starts at 1).
pub(crate) fn modseq(n: u64) -> NonZeroU64 {
    NonZeroU64::new(n).unwrap_or(NonZeroU64::MIN)
}

/// The untagged FETCH that tells of a message's new flags: FLAGS and UID,
/// and MODSEQ once CONDSTORE is on.
pub(crate) fn change_response(
    seq: usize,
    meta: &MessageMeta,
    recent: bool,
    on: Enabled,
) -> Response<'static> {
    let mut response = flags_response(seq, meta, recent);
    if on.condstore
        && let Response::Data(Data::Fetch { items, .. }) = &mut response
    {
        let mut all = items.as_ref().to_vec();
        all.push(MessageDataItem::ModSeq(modseq(meta.modseq)));
        if let Ok(with) = Vec1::try_from(all) {
            *items = with;
        }
    }
    response
}

/// The untagged FETCH a `.SILENT` STORE still owes a CONDSTORE client for
/// a message it changed: its UID and new MODSEQ.
pub(crate) fn modseq_response(seq: usize, meta: &MessageMeta) -> Response<'static> {
    let items = Vec1::from(MessageDataItem::Uid(nonzero(meta.uid)));
    let mut items = items.as_ref().to_vec();
    items.push(MessageDataItem::ModSeq(modseq(meta.modseq)));
    Response::Data(Data::Fetch {
        seq: nonzero(seq as u32),
        items: Vec1::try_from(items)
            .unwrap_or_else(|_| Vec1::from(MessageDataItem::Uid(nonzero(meta.uid)))),
    })
}

/// What FETCH's modifiers ask for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FetchOptions {
    /// Only messages whose MODSEQ is above this, with their MODSEQ.
    pub(crate) changed_since: Option<u64>,
    /// Also the UIDs expunged since then (QRESYNC, UID FETCH only).
    pub(crate) vanished: bool,
}

impl FetchOptions {
    pub(crate) fn of(modifiers: &[FetchModifier]) -> Self {
        let mut options = Self::default();
        for modifier in modifiers {
            match modifier {
                FetchModifier::ChangedSince(n) => options.changed_since = Some(n.get()),
                FetchModifier::Vanished => options.vanished = true,
            }
        }
        options
    }

    /// Why these options cannot be used here, if they cannot
    /// (RFC 7162 section 3.2.6).
    pub(crate) fn refusal(&self, uid: bool, on: Enabled) -> Option<&'static str> {
        match (self.vanished, on.qresync, uid, self.changed_since) {
            (false, ..) => None,
            (true, false, ..) => Some("VANISHED needs ENABLE QRESYNC"),
            (true, true, false, _) => Some("VANISHED is for UID FETCH only"),
            (true, true, true, None) => Some("VANISHED needs CHANGEDSINCE"),
            (true, true, true, Some(_)) => None,
        }
    }
}

/// STORE's `UNCHANGEDSINCE`, if given.
pub(crate) fn unchanged_since(modifiers: &[StoreModifier]) -> Option<u64> {
    modifiers.iter().map(|StoreModifier::UnchangedSince(n)| *n).min()
}

/// Whether a search uses the MODSEQ key (its answer then carries the
/// highest MODSEQ among what it found).
pub(crate) fn searches_modseq(key: &SearchKey<'_>) -> bool {
    match key {
        SearchKey::ModSequence { .. } => true,
        SearchKey::And(keys) => keys.as_ref().iter().any(searches_modseq),
        SearchKey::Not(key) => searches_modseq(key),
        SearchKey::Or(a, b) => searches_modseq(a) || searches_modseq(b),
        _ => false,
    }
}

/// Ascending numbers (sequence numbers or UIDs) as inclusive ranges.
pub(crate) fn ranges_of(sorted: &[u32]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &n in sorted {
        match out.last_mut() {
            Some(range) if range.1.checked_add(1) == Some(n) => range.1 = n,
            Some(range) if range.1 >= n => {}
            _ => out.push((n, n)),
        }
    }
    out
}

/// Ascending, disjoint ranges as a sequence set (`None` when empty).
pub(crate) fn sequence_set(ranges: &[(u32, u32)]) -> Option<SequenceSet> {
    let sequences: Vec<Sequence> = ranges
        .iter()
        .map(|&(first, last)| {
            let (first, last) = (SeqOrUid::Value(nonzero(first)), SeqOrUid::Value(nonzero(last)));
            if first == last { Sequence::Single(first) } else { Sequence::Range(first, last) }
        })
        .collect();
    SequenceSet::try_from(sequences).ok()
}

/// The response code for what an UNCHANGEDSINCE STORE left alone
/// (sequence numbers for STORE, UIDs for UID STORE).
pub(crate) fn modified_code(mut numbers: Vec<u32>) -> Option<Code<'static>> {
    numbers.sort_unstable();
    sequence_set(&ranges_of(&numbers)).map(Code::Modified)
}

impl<B: MailBackend> Session<B> {
    /// The highest MODSEQ of the messages at `positions` of the view, for
    /// a SEARCH or SORT that used the MODSEQ key and found something.
    pub(crate) fn highest_found(&self, by_modseq: bool, positions: &[usize]) -> Option<u64> {
        let selected = self.selected.as_ref().filter(|_| by_modseq)?;
        positions.iter().filter_map(|&p| selected.messages.get(p)).map(|m| m.modseq).max()
    }

    /// The same for what an ESEARCH answer returns of `found` (in result
    /// order): the first for MIN, the last for MAX, all of them for ALL,
    /// COUNT or PARTIAL.
    pub(crate) fn highest_returned(
        &self,
        by_modseq: bool,
        found: &[usize],
        options: &ReturnOptions,
    ) -> Option<u64> {
        if options.all || options.count || options.partial.is_some() {
            return self.highest_found(by_modseq, found);
        }
        let mut returned = Vec::new();
        if options.min {
            returned.extend(found.first().copied());
        }
        if options.max {
            returned.extend(found.last().copied());
        }
        self.highest_found(by_modseq, &returned)
    }

    /// A CONDSTORE enabling command ran: from now on changes carry
    /// MODSEQs. The first time, with a folder selected, the client is
    /// told its HIGHESTMODSEQ (RFC 7162 section 3.1.2.1).
    pub(crate) async fn condstore_on<O: Sink>(&mut self, out: &mut O) -> Result<(), Gone> {
        if self.enabled.condstore {
            return Ok(());
        }
        self.enabled.condstore = true;
        if let Some(selected) = &self.selected {
            let code = Code::HighestModSeq(modseq(selected.highest_modseq));
            out.send(untagged(StatusKind::Ok, Some(code), "highest")).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Account;
    use crate::imap::session::tests::{logged_in, run};
    use bytes::Bytes;

    #[test]
    fn numbers_become_compact_sets() {
        assert_eq!(ranges_of(&[1, 2, 3, 5, 7, 8]), vec![(1, 3), (5, 5), (7, 8)]);
        assert_eq!(ranges_of(&[4, 4, 5]), vec![(4, 5)]);
        assert!(sequence_set(&[]).is_none());
        let code = modified_code(vec![7, 1, 2, 3]).unwrap();
        assert_eq!(code, Code::Modified(SequenceSet::try_from("1:3,7").unwrap()));
    }

    #[test]
    fn vanished_is_only_for_qresync_uid_fetch_changedsince() {
        let on = Enabled { condstore: true, qresync: true, ..Enabled::default() };
        let changed = FetchOptions { changed_since: Some(3), vanished: true };
        assert_eq!(changed.refusal(true, on), None);
        assert!(changed.refusal(false, on).is_some());
        assert!(changed.refusal(true, Enabled { condstore: true, ..Enabled::default() }).is_some());
        let bare = FetchOptions { changed_since: None, vanished: true };
        assert!(bare.refusal(true, on).is_some());
        assert_eq!(FetchOptions::default().refusal(false, Enabled::default()), None);
    }

    async fn three_messages() -> crate::imap::session::Session<crate::memory::MemoryBackend> {
        let (s, _) = logged_in().await;
        let account = s.account().unwrap();
        for n in 1..=3 {
            let raw = Bytes::from(format!("Subject: {n}\r\n\r\nbody\r\n"));
            account.append("INBOX", raw, vec![], None).await.unwrap();
        }
        s
    }

    /// The MODSEQ the test backend gives the nth change of an account
    /// (the six standard folders are its first six).
    fn nth(n: u64) -> u64 {
        6 + n
    }

    #[tokio::test]
    async fn fetch_modseq_and_changedsince() {
        let mut s = three_messages().await;
        let select = run(&mut s, "a SELECT INBOX").await;
        assert!(select.contains(&format!("* OK [HIGHESTMODSEQ {}]", nth(3))), "{select}");
        // The first CONDSTORE command tells the HIGHESTMODSEQ, once.
        let first = run(&mut s, "b FETCH 1:* (MODSEQ)").await;
        assert_eq!(
            first,
            format!(
                "* OK [HIGHESTMODSEQ {}] highest\r\n* 1 FETCH (MODSEQ ({}))\r\n* 2 FETCH (MODSEQ ({}))\r\n* 3 FETCH (MODSEQ ({}))\r\nb OK FETCH completed\r\n",
                nth(3),
                nth(1),
                nth(2),
                nth(3)
            )
        );
        let changed =
            run(&mut s, &format!("c UID FETCH 1:* (FLAGS) (CHANGEDSINCE {})", nth(1))).await;
        assert_eq!(
            changed,
            format!(
                "* 2 FETCH (UID 2 FLAGS (\\Recent) MODSEQ ({}))\r\n* 3 FETCH (UID 3 FLAGS (\\Recent) MODSEQ ({}))\r\nc OK FETCH completed\r\n",
                nth(2),
                nth(3)
            )
        );
        let refused = run(&mut s, "d UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)").await;
        assert!(refused.starts_with("d BAD"), "{refused}");
        // Setting \Seen by fetching a body tells the new MODSEQ too.
        let body = run(&mut s, "e FETCH 1 (BODY[TEXT])").await;
        let told = format!("FLAGS (\\Seen \\Recent) UID 1 MODSEQ ({}))", nth(4));
        assert!(body.contains(&told), "{body}");
    }

    #[tokio::test]
    async fn store_unchangedsince_reports_what_changed_since() {
        let mut s = three_messages().await;
        run(&mut s, "a SELECT INBOX").await;
        // Not yet CONDSTORE: no MODSEQ in the answer.
        let plain = run(&mut s, "b STORE 1 +FLAGS (\\Seen)").await;
        assert_eq!(plain, "* 1 FETCH (FLAGS (\\Seen \\Recent) UID 1)\r\nb OK STORE completed\r\n");
        // UNCHANGEDSINCE below message 1's MODSEQ (it just changed).
        let since = nth(3);
        let conditional =
            run(&mut s, &format!("c STORE 1:3 (UNCHANGEDSINCE {since}) +FLAGS.SILENT (\\Flagged)"))
                .await;
        assert_eq!(
            conditional,
            format!(
                "* OK [HIGHESTMODSEQ {}] highest\r\n* 2 FETCH (UID 2 MODSEQ ({m}))\r\n* 3 FETCH (UID 3 MODSEQ ({m}))\r\nc OK [MODIFIED 1] STORE completed\r\n",
                nth(3),
                m = nth(5)
            )
        );
        let by_uid = run(&mut s, "d UID STORE 1:2 (UNCHANGEDSINCE 0) -FLAGS (\\Flagged)").await;
        assert_eq!(by_uid, "d OK [MODIFIED 1:2] STORE completed\r\n");
        // A change that changes nothing keeps the MODSEQ.
        let again = run(&mut s, "e STORE 2 +FLAGS (\\Flagged)").await;
        assert_eq!(
            again,
            format!(
                "* 2 FETCH (FLAGS (\\Flagged \\Recent) UID 2 MODSEQ ({}))\r\ne OK STORE completed\r\n",
                nth(5)
            )
        );
        let search = run(&mut s, &format!("f SEARCH MODSEQ {}", nth(5))).await;
        assert_eq!(
            search,
            format!("* SEARCH 2 3 (MODSEQ {})\r\nf OK SEARCH completed\r\n", nth(5))
        );
        let none = run(&mut s, &format!("g UID SEARCH MODSEQ {}", nth(9))).await;
        assert_eq!(none, "* SEARCH\r\ng OK SEARCH completed\r\n");
        let status = run(&mut s, "h STATUS INBOX (HIGHESTMODSEQ MESSAGES)").await;
        assert!(
            status.starts_with(&format!("* STATUS INBOX (HIGHESTMODSEQ {} MESSAGES 3)", nth(5))),
            "{status}"
        );
    }

    #[tokio::test]
    async fn changes_by_another_session_carry_modseq() {
        let mut s = three_messages().await;
        run(&mut s, "a ENABLE CONDSTORE").await;
        run(&mut s, "b SELECT INBOX").await;
        let account = s.account().unwrap();
        use epost_types::mail::FlagChange;
        account.store("INBOX", &[2], FlagChange::Add, vec!["$Work".into()], None).await.unwrap();
        let noop = run(&mut s, "c NOOP").await;
        assert_eq!(
            noop,
            format!(
                "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)\r\n\
                 * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work \\*)] flags that stay\r\n\
                 * 2 FETCH (FLAGS ($Work \\Recent) UID 2 MODSEQ ({}))\r\nc OK NOOP completed\r\n",
                nth(4)
            )
        );
    }

    #[tokio::test]
    async fn esearch_and_sort_tell_the_modseq_of_what_they_return() {
        let mut s = three_messages().await;
        run(&mut s, "a ENABLE CONDSTORE").await;
        run(&mut s, "a SELECT INBOX").await;
        // Changed in the order 1, 3, 2: their MODSEQs are nth(4), (6), (5).
        for (tag, n) in [("b", 1), ("c", 3), ("d", 2)] {
            run(&mut s, &format!("{tag} STORE {n} +FLAGS.SILENT (\\Seen)")).await;
        }
        let key = format!("MODSEQ \"/flags/\\\\seen\" all {}", nth(4));
        // (what is asked, what ESEARCH says after its TAG)
        let cases = [
            ("RETURN (MIN) 1:3", format!(" MIN 1 MODSEQ {}", nth(4))),
            ("RETURN (MAX) 1:3", format!(" MAX 3 MODSEQ {}", nth(5))),
            ("RETURN () 1:3", format!(" ALL 1:3 MODSEQ {}", nth(6))),
            ("RETURN (MIN MAX) 2:3", format!(" MIN 2 MAX 3 MODSEQ {}", nth(6))),
        ];
        for (asked, said) in cases {
            let reply = run(&mut s, &format!("e SEARCH {asked} {key}")).await;
            assert!(reply.starts_with(&format!("* ESEARCH (TAG \"e\"){said}\r\n")), "{reply}");
        }
        let none = run(&mut s, &format!("f SEARCH RETURN (ALL) MODSEQ {}", nth(7))).await;
        assert!(none.starts_with("* ESEARCH (TAG \"f\")\r\n"), "{none}");
        let sorted = run(&mut s, &format!("g SORT (ARRIVAL) UTF-8 MODSEQ {}", nth(5))).await;
        assert!(sorted.starts_with(&format!("* SORT 2 3 (MODSEQ {})\r\n", nth(6))), "{sorted}");
    }
}
