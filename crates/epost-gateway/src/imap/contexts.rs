//! CONTEXT=SEARCH and CONTEXT=SORT (RFC 5267 section 4): a SEARCH or SORT
//! with RETURN (UPDATE) stays live while its folder is selected, and the
//! client is told how its result changes as the view does, in `* ESEARCH`
//! responses with REMOVEFROM and ADDTO; CANCELUPDATE ends contexts.
//!
//! What changed is decided purely: [`membership`] says which messages stay
//! in a result and which join it, given fresh verdicts on some messages,
//! and [`changes`] turns the old and the new result into REMOVEFROM and
//! ADDTO items. The session around them picks the messages to judge again
//! (those whose MODSEQ moved and new ones; every one when the key names
//! positions), reads what the key needs for those only, and sends the line.
//!
//! When: removals of expunged messages just before their EXPUNGEs (so their
//! sequence numbers still hold), everything else after each command and at
//! each refresh (NOOP, IDLE, new mail), after the EXISTS that announced new
//! mail. Bounds: [`MAX_CONTEXTS`] per selected folder (one more is answered
//! as a plain search with `* NO [NOUPDATE "tag"]`, as Dovecot does); each
//! holds its tag, its search key (within the command line limit), its sort
//! criteria, and its result as one UID per matching message of the view.

use std::collections::{HashMap, HashSet};

use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::extensions::sort::SortCriterion;
use imap_codec::imap_types::search::SearchKey;

use epost_types::mailbox::MailError;

use crate::backend::{MailBackend, MessageMeta};
use crate::imap::esearch::{EsearchUpdate, ReturnOptions};
use crate::imap::search::by_position;
use crate::imap::session::{Done, Gone, Session, Sink, bad, no, ok};

/// The most live contexts a selected folder keeps.
pub(crate) const MAX_CONTEXTS: usize = 5;

/// A live SEARCH or SORT result.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    tag: Tag<'static>,
    /// Told in UIDs (UID SEARCH, UID SORT), else in sequence numbers.
    uid: bool,
    key: SearchKey<'static>,
    /// A SORT's criteria: the result keeps their order.
    sort: Option<Vec<SortCriterion>>,
    /// The key names positions: any change may change any verdict.
    by_position: bool,
    /// The matching UIDs in result order.
    result: Vec<u32>,
    /// The view when the result was last brought up to date.
    seen: Stamp,
}

/// What a view looked like, to tell which of its messages changed since.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Stamp {
    /// The highest MODSEQ of a message in it.
    modseq: u64,
    /// Its last UID.
    last_uid: u32,
    count: usize,
}

impl Stamp {
    fn of(view: &[MessageMeta]) -> Self {
        Stamp {
            modseq: view.iter().map(|m| m.modseq).max().unwrap_or(0),
            last_uid: view.last().map_or(0, |m| m.uid),
            count: view.len(),
        }
    }
}

/// How a result changed, as UIDs: (position, UIDs in result order) pairs
/// to apply in order, removals first. A SEARCH result has one pair of each
/// at position 0 ("no position": it is kept ascending); a SORT result has
/// a pair per run of neighbours, the position being where the run's first
/// message stands (1-based) when its pair is applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Changes {
    pub(crate) removed: Vec<(u32, Vec<u32>)>,
    pub(crate) added: Vec<(u32, Vec<u32>)>,
}

/// The result once some messages were judged again: `old` (in result
/// order) without the messages judged not to match or no longer `present`
/// in the view, and, apart and ascending, those judged to match that were
/// not in it.
pub(crate) fn membership(
    old: &[u32],
    verdicts: &[(u32, bool)],
    present: impl Fn(u32) -> bool,
) -> (Vec<u32>, Vec<u32>) {
    let verdict: HashMap<u32, bool> = verdicts.iter().copied().collect();
    let kept: Vec<u32> = old
        .iter()
        .copied()
        .filter(|&uid| present(uid) && verdict.get(&uid) != Some(&false))
        .collect();
    let had: HashSet<u32> = old.iter().copied().collect();
    let mut joined: Vec<u32> = verdicts
        .iter()
        .filter(|&&(uid, matches)| matches && !had.contains(&uid) && present(uid))
        .map(|&(uid, _)| uid)
        .collect();
    joined.sort_unstable();
    joined.dedup();
    (kept, joined)
}

/// What turns `old` into `new` (both in result order; the messages in both
/// keep their relative order, as sort keys never change).
pub(crate) fn changes(old: &[u32], new: &[u32], sorted: bool) -> Changes {
    let now: HashSet<u32> = new.iter().copied().collect();
    let had: HashSet<u32> = old.iter().copied().collect();
    if !sorted {
        let removed: Vec<u32> = old.iter().copied().filter(|uid| !now.contains(uid)).collect();
        let added: Vec<u32> = new.iter().copied().filter(|uid| !had.contains(uid)).collect();
        let pair = |uids: Vec<u32>| if uids.is_empty() { Vec::new() } else { vec![(0, uids)] };
        return Changes { removed: pair(removed), added: pair(added) };
    }
    // Removals from the front: a run's position counts what is left of
    // the runs before it.
    let mut removed: Vec<(u32, Vec<u32>)> = Vec::new();
    let mut gone_before = 0u32;
    let mut in_run = false;
    for (index, &uid) in old.iter().enumerate() {
        if now.contains(&uid) {
            in_run = false;
            continue;
        }
        match removed.last_mut() {
            Some((_, run)) if in_run => run.push(uid),
            _ => removed.push((index as u32 + 1 - gone_before, vec![uid])),
        }
        gone_before += 1;
        in_run = true;
    }
    // Additions from the front: everything before a run is in place by
    // then, so its position is its final one.
    let mut added: Vec<(u32, Vec<u32>)> = Vec::new();
    let mut in_run = false;
    for (index, &uid) in new.iter().enumerate() {
        if had.contains(&uid) {
            in_run = false;
            continue;
        }
        match added.last_mut() {
            Some((_, run)) if in_run => run.push(uid),
            _ => added.push((index as u32 + 1, vec![uid])),
        }
        in_run = true;
    }
    Changes { removed, added }
}

impl Context {
    /// The `* ESEARCH` line (with CRLF) telling `changes` by the numbers
    /// of `view`, or `None` when there is nothing to tell.
    fn line(&self, changes: &Changes, view: &[MessageMeta]) -> Option<Vec<u8>> {
        let number = |uid: u32| {
            if self.uid {
                Some(uid)
            } else {
                view.binary_search_by_key(&uid, |m| m.uid).ok().map(|p| p as u32 + 1)
            }
        };
        let numbered = |pairs: &[(u32, Vec<u32>)]| -> Vec<(u32, Vec<u32>)> {
            pairs
                .iter()
                .map(|(position, uids)| {
                    (*position, uids.iter().filter_map(|&u| number(u)).collect())
                })
                .filter(|(_, numbers): &(u32, Vec<u32>)| !numbers.is_empty())
                .collect()
        };
        let update = EsearchUpdate {
            tag: self.tag.as_ref().to_owned(),
            uid: self.uid,
            removed: numbered(&changes.removed),
            added: numbered(&changes.added),
        };
        let mut line = update.encode()?;
        line.extend_from_slice(b"\r\n");
        Some(line)
    }
}

/// Why a context could not be brought up to date now (it is tried again
/// at the next chance, from where it was).
#[derive(Debug, thiserror::Error)]
enum Unjudged {
    #[error("a message could not be read")]
    Read(#[source] MailError),
    #[error("the new members could not be sorted")]
    Sort,
}

impl<B: MailBackend> Session<B> {
    /// The key to keep when `returns` has UPDATE (`None` without), or the
    /// refusal: a live context has this tag already (tags correlate the
    /// updates, RFC 5267 section 4.3).
    pub(crate) fn context_key(
        &self,
        tag: &Tag<'static>,
        returns: Option<&ReturnOptions>,
        criteria: &Vec1<SearchKey<'static>>,
    ) -> Result<Option<SearchKey<'static>>, Box<Done>> {
        if !returns.is_some_and(|r| r.update) {
            return Ok(None);
        }
        let Some(selected) = self.selected.as_ref() else { return Ok(None) };
        if selected.contexts.iter().any(|c| c.tag == *tag) {
            let refusal = bad(tag, "a live search context has this tag already");
            return Err(Box::new(Done::now(refusal)));
        }
        Ok(Some(SearchKey::And(criteria.clone())))
    }

    /// Keeps a SEARCH's or SORT's result (`found`: view positions in result
    /// order) as a live context, or says `NO [NOUPDATE]` when as many are
    /// live as may be.
    pub(crate) async fn keep_context<O: Sink>(
        &mut self,
        tag: &Tag<'static>,
        uid: bool,
        key: SearchKey<'static>,
        sort: Option<Vec<SortCriterion>>,
        found: &[usize],
        out: &mut O,
    ) -> Result<(), Gone> {
        let Some(selected) = self.selected.as_mut() else { return Ok(()) };
        if selected.contexts.len() >= MAX_CONTEXTS {
            // A tag is ASTRING-CHARs without `"` or `\`: safe to quote.
            let line = format!(
                "* NO [NOUPDATE \"{}\"] at most {MAX_CONTEXTS} search contexts are kept\r\n",
                tag.as_ref()
            );
            return out.send_encoded(line.into_bytes()).await;
        }
        let view = &selected.messages;
        let result = found.iter().filter_map(|&p| view.get(p).map(|m| m.uid)).collect();
        let context = Context {
            tag: tag.clone(),
            uid,
            by_position: by_position(&key),
            key,
            sort,
            result,
            seen: Stamp::of(view),
        };
        selected.contexts.push(context);
        Ok(())
    }

    /// CANCELUPDATE: the contexts of `tags` end; an unknown tag is NO
    /// (the known ones end all the same).
    pub(crate) fn cancel_update(&mut self, tag: &Tag<'static>, tags: &[String]) -> Done {
        if self.user.is_none() {
            return Done::now(bad(tag, "log in first"));
        }
        let Some(selected) = self.selected.as_mut() else {
            return Done::now(bad(tag, "CANCELUPDATE needs a selected mailbox"));
        };
        let before = selected.contexts.len();
        selected.contexts.retain(|c| !tags.iter().any(|t| t == c.tag.as_ref()));
        let known: HashSet<&String> = tags.iter().collect();
        if before - selected.contexts.len() < known.len() {
            return Done::now(no(tag, None, "no live search context has some of these tags"));
        }
        Done::now(ok(tag, None, "CANCELUPDATE completed"))
    }

    /// Tells every context that loses one of `gone` (UIDs of the view
    /// about to be expunged), before the EXPUNGEs are sent.
    pub(crate) async fn contexts_expunging<O: Sink>(
        &mut self,
        gone: &[u32],
        out: &mut O,
    ) -> Result<(), Gone> {
        let Some(selected) = self.selected.as_mut() else { return Ok(()) };
        if selected.contexts.is_empty() || gone.is_empty() {
            return Ok(());
        }
        let gone: HashSet<u32> = gone.iter().copied().collect();
        let mut lines = Vec::new();
        for context in selected.contexts.iter_mut() {
            let (kept, _) = membership(&context.result, &[], |uid| !gone.contains(&uid));
            let changes = changes(&context.result, &kept, context.sort.is_some());
            lines.extend(context.line(&changes, &selected.messages));
            context.result = kept;
        }
        for line in lines {
            out.send_encoded(line).await?;
        }
        Ok(())
    }

    /// Brings every live context up to date with the view and tells the
    /// client what changed.
    pub(crate) async fn update_contexts<O: Sink>(&mut self, out: &mut O) -> Result<(), Gone> {
        let Some(selected) = self.selected.as_mut() else { return Ok(()) };
        if selected.contexts.is_empty() {
            return Ok(());
        }
        let mut contexts = std::mem::take(&mut selected.contexts);
        let mut lines = Vec::new();
        for context in contexts.iter_mut() {
            match self.judge(context).await {
                Ok(line) => lines.extend(line),
                Err(error) => {
                    tracing::debug!(tag = %context.tag.as_ref(), %error, "context kept as it was")
                }
            }
        }
        if let Some(selected) = self.selected.as_mut() {
            selected.contexts = contexts;
        }
        for line in lines {
            out.send_encoded(line).await?;
        }
        Ok(())
    }

    /// Judges again what changed since `context` last looked; the line
    /// telling it, if anything changed.
    async fn judge(&self, context: &mut Context) -> Result<Option<Vec<u8>>, Unjudged> {
        let Some(selected) = self.selected.as_ref() else { return Ok(None) };
        let view = &selected.messages;
        let stamp = Stamp::of(view);
        let position = |uid: u32| view.binary_search_by_key(&uid, |m| m.uid).ok();
        let candidates: Vec<usize> = if context.by_position && stamp != context.seen {
            (0..view.len()).collect()
        } else {
            let seen = context.seen;
            let changed = |m: &MessageMeta| m.uid > seen.last_uid || m.modseq > seen.modseq;
            view.iter().enumerate().filter(|(_, m)| changed(m)).map(|(p, _)| p).collect()
        };
        let lost = context.result.iter().any(|&uid| position(uid).is_none());
        if candidates.is_empty() && !lost {
            context.seen = stamp;
            return Ok(None);
        }
        let verdicts: Vec<(u32, bool)> = self
            .verdicts(&context.key, &candidates)
            .await
            .map_err(Unjudged::Read)?
            .into_iter()
            .map(|(p, matches)| (view[p].uid, matches))
            .collect();
        let (kept, joined) = membership(&context.result, &verdicts, |uid| position(uid).is_some());
        let new = match &context.sort {
            None => {
                let mut all = kept;
                all.extend(joined);
                all.sort_unstable();
                all
            }
            Some(_) if joined.is_empty() => kept,
            Some(criteria) => {
                let mut positions: Vec<usize> =
                    kept.iter().chain(&joined).filter_map(|&uid| position(uid)).collect();
                positions.sort_unstable();
                let sorted = self
                    .sorted(&context.tag, criteria, &positions)
                    .await
                    .map_err(|_| Unjudged::Sort)?;
                sorted.into_iter().map(|p| view[p].uid).collect()
            }
        };
        let changes = changes(&context.result, &new, context.sort.is_some());
        context.result = new;
        context.seen = stamp;
        Ok(context.line(&changes, view))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Account;
    use crate::imap::session::tests::{logged_in, run};
    use bytes::Bytes;

    fn pairs(items: &[(u32, &[u32])]) -> Vec<(u32, Vec<u32>)> {
        items.iter().map(|(p, uids)| (*p, uids.to_vec())).collect()
    }

    #[test]
    fn membership_follows_the_verdicts() {
        let present = |uid: u32| uid != 9;
        // (old result, fresh verdicts, kept, joined)
        type Case<'a> = (&'a [u32], &'a [(u32, bool)], &'a [u32], &'a [u32]);
        let cases: &[Case<'_>] = &[
            (&[1, 2, 4], &[], &[1, 2, 4], &[]),
            (&[1, 2, 4], &[(2, false), (3, true), (4, true)], &[1, 4], &[3]),
            // Gone from the view: out, whatever the verdict.
            (&[1, 9], &[(9, true)], &[1], &[]),
            (&[], &[(9, true), (7, true), (5, true), (7, true)], &[], &[5, 7]),
            // A SORT result keeps its order.
            (&[5, 3, 8], &[(3, false), (1, true)], &[5, 8], &[1]),
        ];
        for (old, verdicts, kept, joined) in cases {
            let (k, j) = membership(old, verdicts, present);
            assert_eq!((k.as_slice(), j.as_slice()), (*kept, *joined), "{old:?} {verdicts:?}");
        }
    }

    #[test]
    fn changes_of_search_results() {
        // (old, new, removed, added): as imaptest's search-context-update2.
        type Case<'a> = (&'a [u32], &'a [u32], &'a [(u32, &'a [u32])], &'a [(u32, &'a [u32])]);
        let cases: &[Case<'_>] = &[
            (&[1, 2], &[1, 2], &[], &[]),
            (&[1, 2], &[1, 2, 3, 4, 5], &[], &[(0, &[3, 4, 5])]),
            (&[1, 2, 3, 4, 5], &[2], &[(0, &[1, 3, 4, 5])], &[]),
            (&[2, 4], &[1, 2, 5], &[(0, &[4])], &[(0, &[1, 5])]),
            (&[], &[], &[], &[]),
        ];
        for (old, new, removed, added) in cases {
            let want = Changes { removed: pairs(removed), added: pairs(added) };
            assert_eq!(changes(old, new, false), want, "{old:?} -> {new:?}");
        }
    }

    #[test]
    fn changes_of_sort_results_name_positions() {
        type Case<'a> = (&'a [u32], &'a [u32], &'a [(u32, &'a [u32])], &'a [(u32, &'a [u32])]);
        let cases: &[Case<'_>] = &[
            // Runs removed from the front: the second run's position counts
            // what the first left.
            (&[5, 3, 8, 1, 7], &[5, 1], &[(2, &[3, 8]), (3, &[7])], &[]),
            // Runs added where they end up.
            (&[5, 1], &[9, 5, 4, 6, 1, 2], &[], &[(1, &[9]), (3, &[4, 6]), (6, &[2])]),
            // Both: removals first, then additions by the final order.
            (&[5, 3, 1], &[3, 7, 1], &[(1, &[5])], &[(2, &[7])]),
            (&[], &[2, 1], &[], &[(1, &[2, 1])]),
            (&[2, 1], &[], &[(1, &[2, 1])], &[]),
        ];
        for (old, new, removed, added) in cases {
            let want = Changes { removed: pairs(removed), added: pairs(added) };
            let got = changes(old, new, true);
            assert_eq!(got, want, "{old:?} -> {new:?}");
            // Applying the pairs in order turns old into new.
            let mut result = old.to_vec();
            for (position, uids) in &got.removed {
                let at = *position as usize - 1;
                assert_eq!(&result[at..at + uids.len()], uids.as_slice());
                result.drain(at..at + uids.len());
            }
            for (position, uids) in &got.added {
                let at = *position as usize - 1;
                result.splice(at..at, uids.iter().copied());
            }
            assert_eq!(result, *new, "{old:?} -> {new:?}");
        }
    }

    async fn mailbox(subjects: &[&str]) -> Session<crate::memory::MemoryBackend> {
        let (mut s, _) = logged_in().await;
        let account = s.account().unwrap();
        for subject in subjects {
            let raw = format!("Subject: {subject}\r\n\r\nbody of {subject}\r\n");
            account.append("INBOX", Bytes::from(raw), vec![], None).await.unwrap();
        }
        run(&mut s, "a SELECT INBOX").await;
        s
    }

    /// The untagged lines of a reply that are ESEARCH or EXPUNGE or EXISTS.
    fn told(reply: &str) -> Vec<&str> {
        reply
            .lines()
            .filter(|l| {
                l.starts_with("* ESEARCH") || l.ends_with("EXPUNGE") || l.ends_with("EXISTS")
            })
            .collect()
    }

    #[tokio::test]
    async fn search_context_updates_follow_stores_expunges_and_appends() {
        // imaptest's search-context-update, step by step.
        let mut s = mailbox(&["s1", "s2", "s3", "s4", "s5"]).await;
        let first = run(&mut s, "t SEARCH RETURN (UPDATE) BODY body SEEN").await;
        assert_eq!(first, "* ESEARCH (TAG \"t\")\r\nt OK SEARCH completed\r\n");
        let steps: &[(&str, &[&str])] = &[
            ("a STORE 1,2,4 +FLAGS (\\Seen)", &["* ESEARCH (TAG \"t\") ADDTO (0 1:2,4)"]),
            ("b STORE 1,2 -FLAGS (\\Seen)", &["* ESEARCH (TAG \"t\") REMOVEFROM (0 1:2)"]),
            ("c STORE 3:5 +FLAGS.SILENT (\\Deleted)", &[]),
            // REMOVEFROM before the EXPUNGEs, by the numbers they undo.
            (
                "d EXPUNGE",
                &[
                    "* ESEARCH (TAG \"t\") REMOVEFROM (0 4)",
                    "* 5 EXPUNGE",
                    "* 4 EXPUNGE",
                    "* 3 EXPUNGE",
                ],
            ),
            (
                "e APPEND INBOX (\\Seen) {20+}\r\nSubject: n\r\n\r\nbody\r\n",
                &["* 3 EXISTS", "* ESEARCH (TAG \"t\") ADDTO (0 3)"],
            ),
            ("f CANCELUPDATE \"t\"", &[]),
            ("g STORE 1 +FLAGS (\\Seen)", &[]),
        ];
        for (command, want) in steps {
            let reply = run(&mut s, command).await;
            assert_eq!(told(&reply), *want, "{command}: {reply}");
            assert!(reply.contains(" OK "), "{command}: {reply}");
        }
        let unknown = run(&mut s, "h CANCELUPDATE \"t\"").await;
        assert!(unknown.starts_with("h NO"), "{unknown}");
    }

    #[tokio::test]
    async fn uid_contexts_tell_uids_and_other_sessions_changes_arrive_at_noop() {
        // imaptest's search-context-update3: UIDs that are not sequence numbers.
        let mut s = mailbox(&["x", "x", "s33", "x", "x", "x"]).await;
        run(&mut s, "a STORE 1 +FLAGS.SILENT (\\Deleted)").await;
        run(&mut s, "b EXPUNGE").await;
        run(&mut s, "c STORE 1,2 +FLAGS.SILENT (\\Seen)").await;
        let first = run(&mut s, "t UID SEARCH RETURN (UPDATE ALL) OR SEEN SUBJECT s33").await;
        assert!(first.starts_with("* ESEARCH (TAG \"t\") UID ALL 2:3\r\n"), "{first}");
        let steps: &[(&str, &[&str])] = &[
            ("d STORE 3:5 +FLAGS (\\Seen)", &["* ESEARCH (TAG \"t\") UID ADDTO (0 4:6)"]),
            ("e STORE 1:5 -FLAGS (\\Seen)", &["* ESEARCH (TAG \"t\") UID REMOVEFROM (0 2,4:6)"]),
            ("f UID STORE 4,5 +FLAGS (\\Seen)", &["* ESEARCH (TAG \"t\") UID ADDTO (0 4:5)"]),
            ("g STORE 3 +FLAGS.SILENT (\\Deleted)", &[]),
            ("h EXPUNGE", &["* ESEARCH (TAG \"t\") UID REMOVEFROM (0 4)", "* 3 EXPUNGE"]),
        ];
        for (command, want) in steps {
            let reply = run(&mut s, command).await;
            assert_eq!(told(&reply), *want, "{command}: {reply}");
        }
        // Another session's change is heard at NOOP, after the FETCH.
        let account = s.account().unwrap();
        use epost_types::mail::FlagChange;
        account.store("INBOX", &[6], FlagChange::Add, vec!["\\Seen".into()], None).await.unwrap();
        let noop = run(&mut s, "i NOOP").await;
        assert_eq!(told(&noop), ["* ESEARCH (TAG \"t\") UID ADDTO (0 6)"], "{noop}");
        // A new SELECT ends every context.
        run(&mut s, "j SELECT INBOX").await;
        assert!(run(&mut s, "k CANCELUPDATE \"t\"").await.starts_with("k NO"));
    }

    #[tokio::test]
    async fn sort_contexts_insert_where_the_sort_puts_messages() {
        let mut s = mailbox(&["d", "b", "e", "a", "c"]).await;
        run(&mut s, "a STORE 2,5 +FLAGS.SILENT (\\Flagged)").await;
        let first = run(&mut s, "t SORT RETURN (UPDATE ALL) (SUBJECT) UTF-8 FLAGGED").await;
        assert!(first.starts_with("* ESEARCH (TAG \"t\") ALL 2,5\r\n"), "{first}");
        let steps: &[(&str, &[&str])] = &[
            // a (4) goes first, d (1) between c (5) and nothing after.
            ("b STORE 1,4 +FLAGS (\\Flagged)", &["* ESEARCH (TAG \"t\") ADDTO (1 4 4 1)"]),
            // Result a b c d: b and c go, from position 2.
            ("c STORE 2,5 -FLAGS (\\Flagged)", &["* ESEARCH (TAG \"t\") REMOVEFROM (2 2,5)"]),
            // Result a d: expunging d (1) renumbers a to 3.
            ("d STORE 1 +FLAGS.SILENT (\\Deleted)", &[]),
            ("e EXPUNGE", &["* ESEARCH (TAG \"t\") REMOVEFROM (2 1)", "* 1 EXPUNGE"]),
        ];
        for (command, want) in steps {
            let reply = run(&mut s, command).await;
            assert_eq!(told(&reply), *want, "{command}: {reply}");
        }
    }

    #[tokio::test]
    async fn contexts_are_bounded_and_tags_unique() {
        let mut s = mailbox(&["a", "b"]).await;
        for n in 0..MAX_CONTEXTS {
            let reply = run(&mut s, &format!("c{n} SEARCH RETURN (UPDATE) SEEN")).await;
            assert!(!reply.contains("NOUPDATE"), "{reply}");
        }
        let over = run(&mut s, "over SEARCH RETURN (UPDATE COUNT) SEEN").await;
        assert_eq!(
            over,
            "* ESEARCH (TAG \"over\") COUNT 0\r\n\
             * NO [NOUPDATE \"over\"] at most 5 search contexts are kept\r\n\
             over OK SEARCH completed\r\n"
        );
        let again = run(&mut s, "c0 SEARCH RETURN (UPDATE) ALL").await;
        assert!(again.starts_with("c0 BAD"), "{again}");
        // The refused one is not live; the others are, each told apart.
        let stored = run(&mut s, "x STORE 1 +FLAGS (\\Seen)").await;
        assert_eq!(told(&stored).len(), MAX_CONTEXTS, "{stored}");
        assert!(!stored.contains("TAG \"over\""), "{stored}");
        assert!(run(&mut s, "y CANCELUPDATE \"c0\" \"c1\"").await.starts_with("y OK"));
        assert!(
            run(&mut s, "z SEARCH RETURN (UPDATE) SEEN")
                .await
                .ends_with("z OK SEARCH completed\r\n")
        );
    }

    #[tokio::test]
    async fn keys_by_position_are_judged_again_when_numbers_move() {
        let mut s = mailbox(&["a", "b", "c", "d"]).await;
        let first = run(&mut s, "t SEARCH RETURN (UPDATE ALL) 2:3").await;
        assert!(first.starts_with("* ESEARCH (TAG \"t\") ALL 2:3\r\n"), "{first}");
        run(&mut s, "a STORE 1 +FLAGS.SILENT (\\Deleted)").await;
        // 1 goes (not in the result); then the old 2 is number 1 and no
        // longer matches, the old 4 is number 3 and does.
        let expunged = run(&mut s, "b EXPUNGE").await;
        assert_eq!(
            told(&expunged),
            ["* 1 EXPUNGE", "* ESEARCH (TAG \"t\") REMOVEFROM (0 1) ADDTO (0 3)"],
            "{expunged}"
        );
    }
}
