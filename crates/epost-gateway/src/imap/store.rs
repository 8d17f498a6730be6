//! STORE: flag changes, answered with the new flags unless `.SILENT`
//! (CONDSTORE: with MODSEQs, a silent change still told by its MODSEQ,
//! and `UNCHANGEDSINCE` answered with what was left alone, in
//! [`crate::imap::condstore`]).

use imap_codec::imap_types::command::StoreModifier;
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::sequence::SequenceSet;

use epost_types::mail::FlagChange;

use crate::backend::{Account, MailBackend};
use crate::imap::condstore::{change_response, modified_code, modseq_response, unchanged_since};
use crate::imap::session::{Done, Gone, Session, Sink, flag_string, mail_error, ok};

impl<B: MailBackend> Session<B> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn store<O: Sink>(
        &mut self,
        tag: Tag<'static>,
        set: &SequenceSet,
        kind: StoreType,
        response: StoreResponse,
        flags: Vec<Flag<'static>>,
        uid: bool,
        modifiers: &[StoreModifier],
        out: &mut O,
    ) -> Result<Done, Gone> {
        let (account, folder) = match self.writable(&tag) {
            Ok(target) => target,
            Err(done) => return Ok(*done),
        };
        let since = unchanged_since(modifiers);
        if since.is_some() {
            self.condstore_on(out).await?;
        }
        let uids = self.uids_of(set, uid);
        let op = match kind {
            StoreType::Add => FlagChange::Add,
            StoreType::Remove => FlagChange::Remove,
            StoreType::Replace => FlagChange::Replace,
        };
        let flags: Vec<String> = flags.iter().map(flag_string).collect();
        let report = match account.store(&folder, &uids, op, flags, since).await {
            Ok(report) => report,
            Err(error) => return Ok(Done::now(mail_error(&tag, &error))),
        };
        let on = self.enabled;
        let Some(selected) = self.selected.as_mut() else {
            return Ok(Done::now(ok(&tag, None, "STORE completed")));
        };
        // A keyword made now is announced before any FETCH shows it, also
        // to a .SILENT store: the client may FETCH next.
        let all: Vec<String> = report.stored.iter().flat_map(|s| s.flags.iter().cloned()).collect();
        if selected.learn_keywords(&all) {
            for response in selected.flags_responses() {
                out.send(response).await?;
            }
        }
        for stored in report.stored {
            let Ok(position) = selected.messages.binary_search_by_key(&stored.uid, |m| m.uid)
            else {
                continue;
            };
            let meta = &mut selected.messages[position];
            let changed = meta.modseq != stored.modseq;
            meta.flags = stored.flags;
            meta.modseq = stored.modseq;
            if response == StoreResponse::Answer {
                let recent = selected.is_recent(stored.uid);
                let meta = &selected.messages[position];
                out.send(change_response(position + 1, meta, recent, on)).await?;
            } else if on.condstore && changed {
                let meta = &selected.messages[position];
                out.send(modseq_response(position + 1, meta)).await?;
            }
        }
        // What was left alone, as the client named it (RFC 7162 3.1.3).
        let modified: Vec<u32> = if uid {
            report.modified
        } else {
            report
                .modified
                .iter()
                .filter_map(|u| selected.messages.binary_search_by_key(u, |m| m.uid).ok())
                .map(|position| position as u32 + 1)
                .collect()
        };
        Ok(Done::now(ok(&tag, modified_code(modified), "STORE completed")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::session::tests::{logged_in, run};
    use bytes::Bytes;

    #[tokio::test]
    async fn store_move_expunge() {
        let (mut s, _) = logged_in().await;
        let account = s.account().unwrap();
        for n in 0..4 {
            let raw = format!("Subject: {n}\r\n\r\nbody\r\n");
            account.append("INBOX", Bytes::from(raw), vec![], None).await.unwrap();
        }
        run(&mut s, "a SELECT INBOX").await;
        let stored = run(&mut s, "b STORE 1:2 +FLAGS (\\Deleted)").await;
        assert!(stored.starts_with("* 1 FETCH (FLAGS (\\Deleted \\Recent) UID 1)"), "{stored}");
        assert!(run(&mut s, "c STORE 3 +FLAGS.SILENT (\\Seen)").await.starts_with("c OK"));
        let moved = run(&mut s, "d UID MOVE 3:4 Trash").await;
        assert!(
            moved.starts_with(
                "* OK [COPYUID 4 3:4 1:2] moved\r\n* 4 EXPUNGE\r\n* 3 EXPUNGE\r\nd OK"
            ),
            "{moved}"
        );
        let expunged = run(&mut s, "e UID EXPUNGE 2").await;
        assert!(expunged.starts_with("* 2 EXPUNGE\r\ne OK"), "{expunged}");
        let expunged = run(&mut s, "f EXPUNGE").await;
        assert!(expunged.starts_with("* 1 EXPUNGE\r\nf OK"), "{expunged}");
        let copied = run(&mut s, "g COPY 1 Nowhere").await;
        assert!(copied.starts_with("g OK"), "{copied}"); // nothing left to copy
        run(&mut s, "h SELECT Trash").await;
        let copied = run(&mut s, "i COPY 1:* Archive").await;
        assert!(copied.starts_with("i OK [COPYUID 6 1:2 1:2]"), "{copied}");
        assert!(run(&mut s, "j COPY 1 Nowhere").await.starts_with("j NO [TRYCREATE]"));
        run(&mut s, "k EXAMINE Trash").await;
        assert!(run(&mut s, "l STORE 1 +FLAGS (\\Seen)").await.starts_with("l NO"));
    }

    #[tokio::test]
    async fn a_new_keyword_is_in_flags_before_any_fetch_shows_it() {
        let (mut s, _) = logged_in().await;
        let account = s.account().unwrap();
        let raw = Bytes::from_static(b"Subject: k\r\n\r\nbody\r\n");
        account.append("INBOX", raw.clone(), vec!["$Old".into()], None).await.unwrap();
        let select = run(&mut s, "a SELECT INBOX").await;
        assert!(
            select.starts_with("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Old)"),
            "{select}"
        );
        assert!(
            select.contains(
                "[PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Old \\*)]"
            ),
            "{select}"
        );
        let stored = run(&mut s, "b STORE 1 +FLAGS.SILENT ($New)").await;
        assert!(
            stored.starts_with(
                "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $New $Old)\r\n"
            ),
            "{stored}"
        );
        assert!(!stored.contains("FETCH"), "silent: {stored}");
        // Another session's keyword arrives with the change, FLAGS first.
        account.store("INBOX", &[1], FlagChange::Add, vec!["$Other".into()], None).await.unwrap();
        let noop = run(&mut s, "c NOOP").await;
        let flags = noop.find("* FLAGS").expect(&noop);
        assert!(flags < noop.find("FETCH").expect(&noop), "{noop}");
        assert!(run(&mut s, "d STORE 1 +FLAGS ($New)").await.starts_with("* 1 FETCH"));
    }

    #[tokio::test]
    async fn a_move_into_the_selected_folder_reports_the_new_message_at_once() {
        let (mut s, _) = logged_in().await;
        let account = s.account().unwrap();
        let raw = Bytes::from_static(b"Subject: m\r\n\r\nbody\r\n");
        account.append("INBOX", raw, vec![], None).await.unwrap();
        run(&mut s, "a SELECT INBOX").await;
        let moved = run(&mut s, "b MOVE 1 INBOX").await;
        assert!(moved.contains("* 1 EXPUNGE\r\n* 1 EXISTS\r\n"), "{moved}");
        assert!(moved.ends_with("b OK MOVE completed\r\n"), "{moved}");
        let fetch = run(&mut s, "c FETCH 1 (UID FLAGS)").await;
        assert!(fetch.starts_with("* 1 FETCH (UID 2 FLAGS (\\Recent))"), "{fetch}");
    }
}
