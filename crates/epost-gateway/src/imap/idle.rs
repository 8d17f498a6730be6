//! Keeping the client's view of the selected folder current: NOOP, CHECK
//! and IDLE (RFC 2177) compare a fresh snapshot with what the client was
//! told and send EXPUNGE (VANISHED with QRESYNC), FETCH (FLAGS, and MODSEQ
//! with CONDSTORE) and EXISTS for the difference, and live search contexts
//! their ADDTO and REMOVEFROM (RFC 5267). Other commands may
//! report new messages and flag changes but never expunges, which would
//! renumber messages under the client's feet. A selected folder deleted or
//! renamed elsewhere ends the session with BYE.

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::response::{Code, Data, Response, Status, StatusKind};
use tokio::sync::broadcast;

use epost_types::mailbox::{FolderChanged, MailError};

use crate::backend::{Account, FolderSnapshot, MailBackend};
use crate::imap::condstore::{change_response, ranges_of};
use crate::imap::enable::Enabled;
use crate::imap::qresync::vanished_responses;
use crate::imap::session::{Done, Gone, Selected, Session, Sink, nonzero, ok, untagged};

impl Selected {
    /// The UIDs of the view that `snapshot` no longer has (all of them
    /// when the folder was replaced).
    pub(crate) fn gone_in(&self, snapshot: &FolderSnapshot) -> Vec<u32> {
        let replaced = snapshot.uid_validity != self.uid_validity;
        self.messages
            .iter()
            .map(|m| m.uid)
            .filter(|uid| {
                replaced || snapshot.messages.binary_search_by_key(uid, |m| m.uid).is_err()
            })
            .collect()
    }

    /// Takes in a fresh snapshot; returns what to tell the client.
    pub(crate) fn apply(
        &mut self,
        snapshot: FolderSnapshot,
        expunge: bool,
        on: Enabled,
    ) -> Vec<Response<'static>> {
        let mut responses = Vec::new();
        let expunged =
            |responses: &mut Vec<Response<'static>>, positions: &[usize], uids: &[u32]| {
                if on.qresync {
                    responses.extend(vanished_responses(&ranges_of(uids), false));
                } else {
                    for &position in positions {
                        responses.push(Response::Data(Data::Expunge(nonzero(position as u32 + 1))));
                    }
                }
            };
        if snapshot.uid_validity != self.uid_validity {
            // The folder was replaced: its UIDs name other messages now.
            if !expunge {
                return responses;
            }
            let positions: Vec<usize> = (0..self.messages.len()).rev().collect();
            let uids: Vec<u32> = self.messages.iter().map(|m| m.uid).collect();
            expunged(&mut responses, &positions, &uids);
            self.messages.clear();
            self.uid_validity = snapshot.uid_validity;
            let code = Code::UidValidity(nonzero(snapshot.uid_validity));
            responses.push(untagged(StatusKind::Ok, Some(code), "UIDs changed"));
        }
        let current = |uid: u32| {
            snapshot
                .messages
                .binary_search_by_key(&uid, |m| m.uid)
                .ok()
                .map(|at| &snapshot.messages[at])
        };
        let mut pending = false;
        if expunge {
            let (mut positions, mut uids) = (Vec::new(), Vec::new());
            for position in (0..self.messages.len()).rev() {
                if current(self.messages[position].uid).is_none() {
                    uids.push(self.messages.remove(position).uid);
                    positions.push(position);
                }
            }
            uids.reverse();
            expunged(&mut responses, &positions, &uids);
        }
        let known = self.messages.last().map_or(0, |m| m.uid);
        let mut keywords_grew = false;
        let mut changes = Vec::new();
        for (position, meta) in self.messages.iter_mut().enumerate() {
            let Some(now) = current(meta.uid) else {
                pending = true;
                continue;
            };
            let told = now.flags != meta.flags || (on.condstore && now.modseq != meta.modseq);
            meta.flags = now.flags.clone();
            meta.modseq = now.modseq;
            if told {
                changes.push(position);
            }
        }
        for &position in &changes {
            let flags = self.messages[position].flags.clone();
            keywords_grew |= self.learn_keywords(&flags);
        }
        let arrived: Vec<_> = snapshot.messages.iter().filter(|m| m.uid > known).cloned().collect();
        for meta in &arrived {
            keywords_grew |= self.learn_keywords(&meta.flags);
        }
        if keywords_grew {
            // Before any FETCH or message that shows a new keyword.
            responses.extend(self.flags_responses());
        }
        for position in changes {
            let meta = &self.messages[position];
            responses.push(change_response(position + 1, meta, self.is_recent(meta.uid), on));
        }
        if !arrived.is_empty() {
            self.messages.extend(arrived);
            responses.push(Response::Data(Data::Exists(self.messages.len() as u32)));
            // Only what is still in the view: a recent message expunged
            // since stays in `recent` but is no longer counted.
            let recent = self.messages.iter().filter(|m| self.recent.contains(&m.uid)).count();
            let recent = u32::try_from(recent).unwrap_or(u32::MAX);
            if !on.imap4rev2 {
                responses.push(Response::Data(Data::Recent(recent)));
            }
        }
        self.uid_next = self.uid_next.max(snapshot.uid_next);
        // Caught up, unless expunges are still to be told.
        if !pending {
            self.highest_modseq = self.highest_modseq.max(snapshot.highest_modseq);
        }
        responses
    }
}

impl<B: MailBackend> Session<B> {
    /// Brings the client's view of the selected folder up to date.
    pub(crate) async fn refresh<O: Sink>(
        &mut self,
        expunge: bool,
        out: &mut O,
    ) -> Result<(), Gone> {
        let on = self.enabled;
        let user = self.user_name();
        let (Some(account), Some(name)) =
            (self.account(), self.selected.as_ref().map(|s| s.name.clone()))
        else {
            return Ok(());
        };
        let snapshot = match account.snapshot(&name).await {
            Ok(snapshot) => snapshot,
            Err(MailError::NoFolder(_)) => {
                // Deleted or renamed by another session: nothing this
                // session shows is there any more. Say so and end, as
                // Dovecot does (RFC 3501 leaves it to the server).
                if let Ok(bye) = Status::bye(None, "the selected mailbox was deleted or renamed") {
                    out.send(Response::Status(bye)).await?;
                }
                self.selected = None;
                // Gone ends the connection, which is what is wanted here.
                return Err(Gone);
            }
            // A folder that cannot be read now is simply not refreshed.
            Err(_) => return Ok(()),
        };
        if expunge {
            // Live search contexts hear of expunges before the EXPUNGEs.
            let gone = self.selected.as_ref().map(|s| s.gone_in(&snapshot)).unwrap_or_default();
            self.contexts_expunging(&gone, out).await?;
        }
        let Some(selected) = self.selected.as_mut() else { return Ok(()) };
        if !selected.read_only && !on.imap4rev2 && snapshot.uid_validity == selected.uid_validity {
            let name = &selected.name;
            let taken =
                self.shared.recent.take(&user, name, snapshot.uid_validity, &snapshot.messages);
            selected.recent.extend(taken);
        }
        for response in selected.apply(snapshot, expunge, on) {
            out.send(response).await?;
        }
        self.update_contexts(out).await
    }

    /// NOOP and CHECK.
    pub(crate) async fn noop<O: Sink>(
        &mut self,
        tag: Tag<'static>,
        out: &mut O,
    ) -> Result<Done, Gone> {
        self.refresh(true, out).await?;
        Ok(Done::now(ok(&tag, None, "NOOP completed")))
    }

    /// Subscribes to the account's changes (before IDLE's first refresh,
    /// so nothing falls between the two).
    pub(crate) fn changes(&self) -> Option<broadcast::Receiver<FolderChanged>> {
        self.account().map(|account| account.changes())
    }

    /// Whether a change (or `None`: changes were lost) concerns the view.
    pub(crate) fn concerns(&self, change: Option<&FolderChanged>) -> bool {
        match (change, &self.selected) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(change), Some(selected)) => change.folder == selected.name,
        }
    }

    /// The end of IDLE (the client said DONE).
    pub(crate) fn idle_done(&self, tag: &Tag<'static>) -> Done {
        Done::now(ok(tag, None, "IDLE terminated"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MessageMeta;
    use crate::imap::session::tests::{logged_in, run};
    use bytes::Bytes;

    fn meta(uid: u32, flags: &[&str]) -> MessageMeta {
        MessageMeta {
            uid,
            flags: flags.iter().map(|f| f.to_string()).collect(),
            internal_date: 0,
            size: 1,
            modseq: 1,
        }
    }

    #[test]
    fn expunges_wait_until_allowed() {
        let mut view = Selected {
            name: "INBOX".into(),
            read_only: false,
            uid_validity: 1,
            uid_next: 4,
            highest_modseq: 1,
            messages: vec![meta(1, &[]), meta(2, &[]), meta(3, &[])],
            recent: Default::default(),
            keywords: Default::default(),
            saved: Vec::new(),
            contexts: Vec::new(),
        };
        let snapshot = FolderSnapshot {
            name: "INBOX".into(),
            uid_validity: 1,
            uid_next: 5,
            highest_modseq: 9,
            messages: vec![meta(1, &["\\Seen"]), meta(3, &[]), meta(4, &[])],
        };
        let quiet = view.apply(snapshot.clone(), false, Enabled::default());
        assert_eq!(view.messages.len(), 4);
        assert_eq!(quiet.len(), 3, "{quiet:?}"); // FETCH FLAGS, EXISTS, RECENT
        assert_eq!(view.highest_modseq, 1, "an expunge is still to be told");
        let told = view.apply(snapshot, true, Enabled::default());
        assert_eq!(told, vec![Response::Data(Data::Expunge(nonzero(2)))]);
        assert_eq!(view.messages.iter().map(|m| m.uid).collect::<Vec<_>>(), vec![1, 3, 4]);
        assert_eq!(view.highest_modseq, 9);
    }

    /// A second session of the same user on the same gateway.
    async fn second_session(
        first: &Session<crate::memory::MemoryBackend>,
    ) -> Session<crate::memory::MemoryBackend> {
        let mut other = Session::new(first.shared.clone(), "127.0.0.1".parse().unwrap(), false);
        let reply = run(&mut other, "a LOGIN alice@example.test alice-pw").await;
        assert!(reply.starts_with("a OK"), "{reply}");
        other
    }

    #[tokio::test]
    async fn what_one_session_changes_every_other_hears_of_at_noop_in_order() {
        let (mut writer, _) = logged_in().await;
        let account = writer.account().unwrap();
        for n in 1..=4 {
            let raw = format!("Subject: {n}\r\n\r\nbody\r\n");
            account.append("INBOX", Bytes::from(raw), vec![], None).await.unwrap();
        }
        let mut reader = second_session(&writer).await;
        let mut archive = second_session(&writer).await;
        for s in [&mut writer, &mut reader] {
            assert!(run(s, "s SELECT INBOX").await.contains("* 4 EXISTS"));
        }
        assert!(run(&mut archive, "s SELECT Archive").await.contains("* 0 EXISTS"));

        // (what the writer does, what the reader's NOOP then says,
        // what the archive watcher's NOOP says): sequence numbers as the
        // reader knows them at that point.
        let steps: [(&[&str], &str, &str); 5] = [
            // A keyword the reader was not told of: FLAGS and
            // PERMANENTFLAGS again first, then the FETCH that shows it.
            (
                &["w STORE 1 +FLAGS (\\Flagged $Forwarded)"],
                "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)\r\n\
                 * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \
                 $Forwarded \\*)] flags that stay\r\n\
                 * 1 FETCH (FLAGS (\\Flagged $Forwarded) UID 1)\r\n",
                "",
            ),
            (&["w STORE 1 -FLAGS ($Forwarded)"], "* 1 FETCH (FLAGS (\\Flagged) UID 1)\r\n", ""),
            // An expunge, then a flag change on a message after it: the
            // EXPUNGE first, then the FETCH by the new numbering.
            (
                &["w STORE 2 +FLAGS.SILENT (\\Deleted)", "w EXPUNGE", "w STORE 2 +FLAGS (\\Seen)"],
                "* 2 EXPUNGE\r\n* 2 FETCH (FLAGS (\\Seen) UID 3)\r\n",
                "",
            ),
            // Recent for the archive watcher: it sees the message first.
            (&["w UID MOVE 4 Archive"], "* 3 EXPUNGE\r\n", "* 1 EXISTS\r\n* 1 RECENT\r\n"),
            // New mail arrives at the end.
            // (recent for the writer, whose APPEND saw it first)
            (&["w APPEND INBOX {10+}\r\nSubject:\r\n"], "* 3 EXISTS\r\n* 0 RECENT\r\n", ""),
        ];
        for (done, heard, archived) in steps {
            for line in done {
                let reply = run(&mut writer, line).await;
                assert!(reply.contains("w OK"), "{line}: {reply}");
            }
            let noop = run(&mut reader, "n NOOP").await;
            assert_eq!(noop.strip_suffix("n OK NOOP completed\r\n"), Some(heard), "{done:?}");
            let noop = run(&mut archive, "n NOOP").await;
            assert_eq!(noop.strip_suffix("n OK NOOP completed\r\n"), Some(archived), "{done:?}");
        }
        // The writer's own commands kept its view current (its APPEND
        // into the selected folder said EXISTS): its NOOP adds nothing.
        let own = run(&mut writer, "n NOOP").await;
        assert_eq!(own, "n OK NOOP completed\r\n");
    }

    #[tokio::test]
    async fn a_selected_folder_deleted_elsewhere_ends_the_session() {
        let (mut writer, _) = logged_in().await;
        let mut reader = second_session(&writer).await;
        assert!(run(&mut writer, "a CREATE Lists").await.starts_with("a OK"));
        assert!(run(&mut reader, "b SELECT Lists").await.contains("b OK"));
        assert!(run(&mut writer, "c DELETE Lists").await.starts_with("c OK"));
        let mut out = Vec::new();
        let command = imap_codec::CommandCodec::default().decode_static(b"d NOOP\r\n").unwrap().1;
        use imap_codec::decode::Decoder;
        assert_eq!(reader.handle(command, &mut out).await.err(), Some(Gone));
        let said = String::from_utf8_lossy(&out);
        assert_eq!(said, "* BYE the selected mailbox was deleted or renamed\r\n");
        assert!(reader.selected.is_none());
    }

    #[tokio::test]
    async fn a_session_that_renames_its_selected_folder_follows_it() {
        let (mut s, _) = logged_in().await;
        run(&mut s, "a CREATE Lists").await;
        let account = s.account().unwrap();
        account
            .append("Lists", Bytes::from_static(b"Subject: x\r\n\r\n"), vec![], None)
            .await
            .unwrap();
        assert!(run(&mut s, "b SELECT Lists").await.contains("* 1 EXISTS"));
        assert!(run(&mut s, "c RENAME Lists Old").await.starts_with("c OK"));
        assert_eq!(s.selected.as_ref().map(|f| f.name.as_str()), Some("Old"));
        let noop = run(&mut s, "d NOOP").await;
        assert!(noop.ends_with("d OK NOOP completed\r\n") && !noop.contains("BYE"), "{noop}");
    }

    #[tokio::test]
    async fn noop_reports_new_mail() {
        let (mut s, _) = logged_in().await;
        run(&mut s, "a SELECT INBOX").await;
        let account = s.account().unwrap();
        account
            .append("INBOX", Bytes::from_static(b"Subject: x\r\n\r\nhi\r\n"), vec![], None)
            .await
            .unwrap();
        let reply = run(&mut s, "b NOOP").await;
        assert!(reply.starts_with("* 1 EXISTS\r\n* 1 RECENT\r\nb OK"), "{reply}");
        assert!(s.concerns(Some(&FolderChanged { folder: "INBOX".into() })));
        assert!(!s.concerns(Some(&FolderChanged { folder: "Sent".into() })));
    }
}
