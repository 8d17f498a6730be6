//! Keeping the client's view of the selected folder current: NOOP, CHECK
//! and IDLE (RFC 2177) compare a fresh snapshot with what the client was
//! told and send EXPUNGE, FETCH (FLAGS) and EXISTS for the difference.
//! Other commands may report new messages and flag changes but never
//! expunges, which would renumber messages under the client's feet. A
//! selected folder deleted or renamed elsewhere ends the session with BYE.

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::response::{Code, Data, Response, Status, StatusKind};
use tokio::sync::broadcast;

use epost_types::mailbox::{FolderChanged, MailError};

use crate::backend::{Account, FolderSnapshot, MailBackend};
use crate::imap::session::{
    Done, Gone, Selected, Session, Sink, flags_response, nonzero, ok, untagged,
};

impl Selected {
    /// Takes in a fresh snapshot; returns what to tell the client.
    pub(crate) fn apply(
        &mut self,
        snapshot: FolderSnapshot,
        expunge: bool,
    ) -> Vec<Response<'static>> {
        let mut responses = Vec::new();
        if snapshot.uid_validity != self.uid_validity {
            // The folder was replaced: its UIDs name other messages now.
            if !expunge {
                return responses;
            }
            for position in (0..self.messages.len()).rev() {
                responses.push(Response::Data(Data::Expunge(nonzero(position as u32 + 1))));
            }
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
        if expunge {
            for position in (0..self.messages.len()).rev() {
                if current(self.messages[position].uid).is_none() {
                    self.messages.remove(position);
                    responses.push(Response::Data(Data::Expunge(nonzero(position as u32 + 1))));
                }
            }
        }
        for (position, meta) in self.messages.iter_mut().enumerate() {
            if let Some(now) = current(meta.uid)
                && now.flags != meta.flags
            {
                meta.flags = now.flags.clone();
                responses.push(flags_response(position + 1, meta));
            }
        }
        let known = self.messages.last().map_or(0, |m| m.uid);
        let before = self.messages.len();
        self.messages.extend(snapshot.messages.iter().filter(|m| m.uid > known).cloned());
        if self.messages.len() != before {
            responses.push(Response::Data(Data::Exists(self.messages.len() as u32)));
        }
        self.uid_next = self.uid_next.max(snapshot.uid_next);
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
        let (Some(account), Some(selected)) = (self.account(), self.selected.as_mut()) else {
            return Ok(());
        };
        let snapshot = match account.snapshot(&selected.name).await {
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
        for response in selected.apply(snapshot, expunge) {
            out.send(response).await?;
        }
        Ok(())
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
        }
    }

    #[test]
    fn expunges_wait_until_allowed() {
        let mut view = Selected {
            name: "INBOX".into(),
            read_only: false,
            uid_validity: 1,
            uid_next: 4,
            messages: vec![meta(1, &[]), meta(2, &[]), meta(3, &[])],
        };
        let snapshot = FolderSnapshot {
            name: "INBOX".into(),
            uid_validity: 1,
            uid_next: 5,
            messages: vec![meta(1, &["\\Seen"]), meta(3, &[]), meta(4, &[])],
        };
        let quiet = view.apply(snapshot.clone(), false);
        assert_eq!(view.messages.len(), 4);
        assert_eq!(quiet.len(), 2, "{quiet:?}"); // FETCH FLAGS, EXISTS
        let told = view.apply(snapshot, true);
        assert_eq!(told, vec![Response::Data(Data::Expunge(nonzero(2)))]);
        assert_eq!(view.messages.iter().map(|m| m.uid).collect::<Vec<_>>(), vec![1, 3, 4]);
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
            (
                &["w STORE 1 +FLAGS (\\Flagged $Forwarded)"],
                "* 1 FETCH (FLAGS (\\Flagged $Forwarded) UID 1)\r\n",
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
            (&["w UID MOVE 4 Archive"], "* 3 EXPUNGE\r\n", "* 1 EXISTS\r\n"),
            // New mail arrives at the end.
            (&["w APPEND INBOX {10+}\r\nSubject:\r\n"], "* 3 EXISTS\r\n", ""),
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
        assert!(matches!(&out[..], [Response::Status(Status::Bye(_))]), "{out:?}");
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
        assert!(reply.starts_with("* 1 EXISTS\r\nb OK"), "{reply}");
        assert!(s.concerns(Some(&FolderChanged { folder: "INBOX".into() })));
        assert!(!s.concerns(Some(&FolderChanged { folder: "Sent".into() })));
    }
}
