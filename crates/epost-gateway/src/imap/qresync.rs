//! QRESYNC (RFC 7162 section 3.2): SELECT/EXAMINE (QRESYNC (uidvalidity
//! modseq [known-uids [seq-match]])) answers with what vanished and what
//! changed since the client's MODSEQ, UID FETCH (CHANGEDSINCE n VANISHED)
//! with what vanished, and expunges are told as VANISHED.
//!
//! The folder remembers its recent expunges (`spec/mail.md`, "MODSEQ");
//! asked about older ones it names every UID it no longer holds, which is
//! why the sequence-match data, a way to narrow such an answer, is not
//! needed and is ignored.

use imap_codec::imap_types::command::SelectParameter;
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

use epost_types::mailbox::MailError;

use crate::backend::{Account, MailBackend};
use crate::imap::condstore::{change_response, sequence_set};
use crate::imap::session::{Gone, Session, Sink};

/// UID ranges in one VANISHED response at most (a long answer is several
/// responses, so no line grows without bound).
const RANGES_PER_RESPONSE: usize = 256;

/// What SELECT/EXAMINE was asked for beyond the plain command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SelectOptions {
    pub(crate) condstore: bool,
    pub(crate) qresync: Option<Resync>,
}

/// The client's cache, as `(QRESYNC (...))` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resync {
    pub(crate) uid_validity: u32,
    pub(crate) modseq: u64,
    /// The UIDs it knows (all, when not said).
    pub(crate) known: Option<SequenceSet>,
}

impl SelectOptions {
    pub(crate) fn of(parameters: &[SelectParameter]) -> Self {
        let mut options = Self::default();
        for parameter in parameters {
            match parameter {
                SelectParameter::CondStore => options.condstore = true,
                SelectParameter::QResync {
                    uid_validity, mod_sequence_value, known_uids, ..
                } => {
                    options.qresync = Some(Resync {
                        uid_validity: uid_validity.get(),
                        modseq: mod_sequence_value.get(),
                        known: known_uids.clone(),
                    })
                }
            }
        }
        options
    }
}

/// A UID set as ascending, disjoint, inclusive ranges; `*` is the
/// largest UID there could be.
fn uid_ranges(set: &SequenceSet) -> Vec<(u32, u32)> {
    let value = |v: &SeqOrUid| match v {
        SeqOrUid::Value(n) => n.get(),
        SeqOrUid::Asterisk => u32::MAX,
    };
    let mut ranges: Vec<(u32, u32)> = set
        .0
        .as_ref()
        .iter()
        .map(|sequence| match sequence {
            Sequence::Single(v) => (value(v), value(v)),
            Sequence::Range(a, b) => (value(a).min(value(b)), value(a).max(value(b))),
        })
        .collect();
    ranges.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
    for (first, last) in ranges {
        match merged.last_mut() {
            Some(previous) if first <= previous.1.saturating_add(1) => {
                previous.1 = previous.1.max(last)
            }
            _ => merged.push((first, last)),
        }
    }
    merged
}

/// The part of `ranges` inside `within` (both ascending and disjoint).
pub(crate) fn intersect(ranges: &[(u32, u32)], within: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < ranges.len() && j < within.len() {
        let first = ranges[i].0.max(within[j].0);
        let last = ranges[i].1.min(within[j].1);
        if first <= last {
            out.push((first, last));
        }
        if ranges[i].1 < within[j].1 { i += 1 } else { j += 1 }
    }
    out
}

/// `* VANISHED [(EARLIER)] ...` for these UID ranges, in as many
/// responses as it takes.
pub(crate) fn vanished_responses(ranges: &[(u32, u32)], earlier: bool) -> Vec<Response<'static>> {
    ranges
        .chunks(RANGES_PER_RESPONSE)
        .filter_map(sequence_set)
        .map(|known_uids| Response::Data(Data::Vanished { earlier, known_uids }))
        .collect()
}

impl<B: MailBackend> Session<B> {
    /// UIDs of the selected folder expunged after `since`, among `set`.
    pub(crate) async fn vanished_within(
        &self,
        since: u64,
        set: Option<&SequenceSet>,
    ) -> Result<Vec<(u32, u32)>, MailError> {
        let (Some(account), Some(selected)) = (self.account(), self.selected.as_ref()) else {
            return Ok(Vec::new());
        };
        let vanished = account.vanished(&selected.name, since).await?;
        // Not what the client may still see: it hears of those later.
        let shown: Vec<u32> = selected.messages.iter().map(|m| m.uid).collect();
        let gone: Vec<(u32, u32)> = vanished
            .ranges
            .iter()
            .flat_map(|&(first, last)| split_around(first, last, &shown))
            .collect();
        Ok(match set {
            Some(set) => intersect(&gone, &uid_ranges(set)),
            None => gone,
        })
    }

    /// The end of a SELECT/EXAMINE with QRESYNC whose UIDVALIDITY matches:
    /// what vanished since the client's MODSEQ, then what changed.
    pub(crate) async fn resync<O: Sink>(
        &mut self,
        resync: &Resync,
        out: &mut O,
    ) -> Result<Result<(), MailError>, Gone> {
        let Some(selected) = self.selected.as_ref() else { return Ok(Ok(())) };
        if selected.uid_validity != resync.uid_validity {
            return Ok(Ok(()));
        }
        let gone = match self.vanished_within(resync.modseq, resync.known.as_ref()).await {
            Ok(gone) => gone,
            Err(error) => return Ok(Err(error)),
        };
        for response in vanished_responses(&gone, true) {
            out.send(response).await?;
        }
        let Some(selected) = self.selected.as_ref() else { return Ok(Ok(())) };
        let known = resync.known.as_ref().map(uid_ranges);
        let on = self.enabled;
        for (position, meta) in selected.messages.iter().enumerate() {
            let asked = known
                .as_ref()
                .is_none_or(|known| !intersect(&[(meta.uid, meta.uid)], known).is_empty());
            if asked && meta.modseq > resync.modseq {
                let recent = selected.is_recent(meta.uid);
                out.send(change_response(position + 1, meta, recent, on)).await?;
            }
        }
        Ok(Ok(()))
    }
}

/// `first ..= last` without the UIDs in `shown` (ascending).
fn split_around(first: u32, last: u32, shown: &[u32]) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let mut next = first;
    let start = shown.partition_point(|uid| *uid < first);
    for &uid in shown[start..].iter().take_while(|uid| **uid <= last) {
        if uid > next {
            out.push((next, uid - 1));
        }
        next = uid.saturating_add(1);
    }
    if next <= last && next >= first {
        out.push((next, last));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::session::tests::{logged_in, run};
    use bytes::Bytes;

    /// The number in a reply's `[HIGHESTMODSEQ n]`.
    fn highest_modseq(reply: &str) -> u64 {
        let at = reply.find("[HIGHESTMODSEQ ").expect("a HIGHESTMODSEQ") + 15;
        reply[at..].split(']').next().unwrap().parse().unwrap()
    }

    #[test]
    fn ranges_intersect_and_split() {
        let set = SequenceSet::try_from("5:*,1,2").unwrap();
        assert_eq!(uid_ranges(&set), vec![(1, 2), (5, u32::MAX)]);
        assert_eq!(intersect(&[(1, 3), (6, 9)], &[(2, 7)]), vec![(2, 3), (6, 7)]);
        assert_eq!(intersect(&[(1, 3)], &[(4, 7)]), vec![]);
        assert_eq!(split_around(1, 9, &[0, 3, 4, 9, 12]), vec![(1, 2), (5, 8)]);
        assert_eq!(split_around(3, 3, &[3]), vec![]);
        let many: Vec<(u32, u32)> = (1..=600).map(|n| (2 * n, 2 * n)).collect();
        let responses = vanished_responses(&many, false);
        assert_eq!(responses.len(), 3);
    }

    #[tokio::test]
    async fn select_qresync_tells_what_vanished_and_changed() {
        let (mut s, _) = logged_in().await;
        let account = s.account().unwrap();
        for n in 1..=5 {
            let raw = Bytes::from(format!("Subject: {n}\r\n\r\nbody\r\n"));
            account.append("INBOX", raw, vec![], None).await.unwrap();
        }
        let refused = run(&mut s, "a SELECT INBOX (QRESYNC (1 1))").await;
        assert!(refused.starts_with("a BAD"), "{refused}");
        run(&mut s, "b ENABLE QRESYNC").await;
        let select = run(&mut s, "c SELECT INBOX").await;
        let highest = highest_modseq(&select);
        // Another session changes message 2 and expunges 3 and 4.
        use epost_types::mail::FlagChange;
        account.store("INBOX", &[2], FlagChange::Add, vec!["\\Seen".into()], None).await.unwrap();
        account.expunge("INBOX", &[3, 4]).await.unwrap();
        let resync = run(&mut s, &format!("d SELECT INBOX (QRESYNC (1 {highest}))")).await;
        assert!(resync.starts_with("* OK [CLOSED]"), "{resync}");
        assert!(resync.contains("* 3 EXISTS\r\n"), "{resync}");
        assert!(
            resync.contains("* VANISHED (EARLIER) 3:4\r\n* 2 FETCH (FLAGS (\\Seen) UID 2 MODSEQ ("),
            "{resync}"
        );
        // Known UIDs narrow both answers.
        let narrow = run(&mut s, &format!("e EXAMINE INBOX (QRESYNC (1 {highest} 1,4:5))")).await;
        assert!(narrow.contains("* VANISHED (EARLIER) 4\r\n"), "{narrow}");
        assert!(!narrow.contains("FETCH"), "{narrow}");
        // Another UIDVALIDITY: a plain SELECT.
        let other = run(&mut s, &format!("f SELECT INBOX (QRESYNC (99 {highest}))")).await;
        assert!(!other.contains("VANISHED") && !other.contains("FETCH"), "{other}");
        // UID FETCH ... VANISHED, and expunges told as VANISHED.
        let fetch =
            run(&mut s, &format!("g UID FETCH 1:* (FLAGS) (CHANGEDSINCE {highest} VANISHED)"))
                .await;
        assert!(
            fetch.starts_with("* VANISHED (EARLIER) 3:4\r\n* 2 FETCH (UID 2 FLAGS (\\Seen) MODSEQ"),
            "{fetch}"
        );
        run(&mut s, "h STORE 1 +FLAGS.SILENT (\\Deleted)").await;
        let expunge = run(&mut s, "i EXPUNGE").await;
        assert!(expunge.starts_with("* VANISHED 1\r\ni OK [HIGHESTMODSEQ "), "{expunge}");
    }
}
