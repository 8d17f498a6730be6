//! Commands that change messages: STORE, COPY (with COPYUID), MOVE
//! (RFC 6851) and EXPUNGE / UID EXPUNGE (RFC 4315).

use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::extensions::uidplus::{UidElement, UidSet};
use imap_codec::imap_types::flag::{Flag, StoreResponse, StoreType};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Code, Data, Response, StatusKind};
use imap_codec::imap_types::sequence::SequenceSet;

use crate::backend::{Account, FlagOp, MailBackend, MailError};
use crate::imap::session::{
    Done, Gone, Session, Sink, flag_string, flags_response, folder_name, mail_error, no, nonzero,
    ok, resolve, untagged,
};

/// UIDs as a compact UID set (runs become ranges).
pub(crate) fn uid_set(uids: impl IntoIterator<Item = u32>) -> Option<UidSet> {
    let mut elements: Vec<UidElement> = Vec::new();
    let mut run: Option<(u32, u32)> = None;
    let close = |run: (u32, u32), elements: &mut Vec<UidElement>| {
        elements.push(if run.0 == run.1 {
            UidElement::Single(nonzero(run.0))
        } else {
            UidElement::Range(nonzero(run.0), nonzero(run.1))
        })
    };
    for uid in uids {
        run = match run {
            Some((start, end)) if end.checked_add(1) == Some(uid) => Some((start, uid)),
            Some(previous) => {
                close(previous, &mut elements);
                Some((uid, uid))
            }
            None => Some((uid, uid)),
        };
    }
    if let Some(last) = run {
        close(last, &mut elements);
    }
    Vec1::try_from(elements).ok().map(UidSet)
}

impl<B: MailBackend> Session<B> {
    /// The selected folder, if it may be changed.
    fn writable(&self, tag: &Tag<'static>) -> Result<(B::Account, String), Box<Done>> {
        match (self.account(), self.selected.as_ref()) {
            (Some(_), Some(selected)) if selected.read_only => Err(Box::new(Done::now(no(
                tag,
                Some(crate::imap::session::code("CANNOT")),
                "mailbox is read-only",
            )))),
            (Some(account), Some(selected)) => Ok((account, selected.name.clone())),
            _ => Err(Box::new(Done::now(no(tag, None, "select a mailbox first")))),
        }
    }

    fn uids_of(&self, set: &SequenceSet, uid: bool) -> Vec<u32> {
        let Some(selected) = self.selected.as_ref() else { return Vec::new() };
        resolve(set, uid, &selected.messages)
            .into_iter()
            .map(|p| selected.messages[p].uid)
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn store<O: Sink>(
        &mut self,
        tag: Tag<'static>,
        set: &SequenceSet,
        kind: StoreType,
        response: StoreResponse,
        flags: Vec<Flag<'static>>,
        uid: bool,
        out: &mut O,
    ) -> Result<Done, Gone> {
        let (account, folder) = match self.writable(&tag) {
            Ok(target) => target,
            Err(done) => return Ok(*done),
        };
        let uids = self.uids_of(set, uid);
        let op = match kind {
            StoreType::Add => FlagOp::Add,
            StoreType::Remove => FlagOp::Remove,
            StoreType::Replace => FlagOp::Replace,
        };
        let flags: Vec<String> = flags.iter().map(flag_string).collect();
        let changed = match account.store(&folder, &uids, op, flags).await {
            Ok(changed) => changed,
            Err(error) => return Ok(Done::now(mail_error(&tag, &error))),
        };
        for (uid, flags) in changed {
            let Some(selected) = self.selected.as_mut() else { break };
            let Ok(position) = selected.messages.binary_search_by_key(&uid, |m| m.uid) else {
                continue;
            };
            selected.messages[position].flags = flags;
            if response == StoreResponse::Answer {
                out.send(flags_response(position + 1, &selected.messages[position])).await?;
            }
        }
        Ok(Done::now(ok(&tag, None, "STORE completed")))
    }

    /// COPY and MOVE (`remove`).
    pub(crate) async fn copy<O: Sink>(
        &mut self,
        tag: Tag<'static>,
        set: &SequenceSet,
        destination: &Mailbox<'static>,
        uid: bool,
        remove: bool,
        out: &mut O,
    ) -> Result<Done, Gone> {
        let verb = if remove { "MOVE" } else { "COPY" };
        let (account, folder) = if remove {
            match self.writable(&tag) {
                Ok(target) => target,
                Err(done) => return Ok(*done),
            }
        } else {
            match (self.account(), self.selected.as_ref()) {
                (Some(account), Some(selected)) => (account, selected.name.clone()),
                _ => return Ok(Done::now(no(&tag, None, "select a mailbox first"))),
            }
        };
        let Some(target) = folder_name(destination) else {
            return Ok(Done::now(no(&tag, Some(Code::TryCreate), "no such mailbox")));
        };
        let uids = self.uids_of(set, uid);
        if uids.is_empty() {
            return Ok(Done::now(ok(&tag, None, &format!("{verb} completed (nothing to do)"))));
        }
        let report = if remove {
            account.move_to(&folder, &uids, &target).await
        } else {
            account.copy(&folder, &uids, &target).await
        };
        let report = match report {
            Ok(report) => report,
            Err(MailError::NoFolder(name)) if name == target => {
                return Ok(Done::now(no(&tag, Some(Code::TryCreate), "no such mailbox")));
            }
            Err(error) => return Ok(Done::now(mail_error(&tag, &error))),
        };
        let code = match (
            uid_set(report.mapping.iter().map(|m| m.0)),
            uid_set(report.mapping.iter().map(|m| m.1)),
        ) {
            (Some(source), Some(destination)) => Some(Code::CopyUid {
                uid_validity: nonzero(report.uid_validity),
                source,
                destination,
            }),
            _ => None,
        };
        if !remove {
            if target == folder {
                self.refresh(false, out).await?;
            }
            return Ok(Done::now(ok(&tag, code, "COPY completed")));
        }
        // RFC 6851: COPYUID in an untagged OK, then the expunges.
        out.send(untagged(StatusKind::Ok, code, "moved")).await?;
        let moved: Vec<u32> = report.mapping.iter().map(|m| m.0).collect();
        self.report_expunged(&moved, out).await?;
        Ok(Done::now(ok(&tag, None, "MOVE completed")))
    }

    /// EXPUNGE and UID EXPUNGE (`only`).
    pub(crate) async fn expunge<O: Sink>(
        &mut self,
        tag: Tag<'static>,
        only: Option<SequenceSet>,
        out: &mut O,
    ) -> Result<Done, Gone> {
        let (account, folder) = match self.writable(&tag) {
            Ok(target) => target,
            Err(done) => return Ok(*done),
        };
        let mut deleted = match self.deleted(&folder).await {
            Ok(deleted) => deleted,
            Err(error) => return Ok(Done::now(mail_error(&tag, &error))),
        };
        if let Some(set) = only {
            let allowed = self.uids_of(&set, true);
            deleted.retain(|uid| allowed.binary_search(uid).is_ok());
        }
        if !deleted.is_empty() {
            let removed = match account.expunge(&folder, &deleted).await {
                Ok(removed) => removed,
                Err(error) => return Ok(Done::now(mail_error(&tag, &error))),
            };
            self.report_expunged(&removed, out).await?;
        }
        self.refresh(true, out).await?;
        Ok(Done::now(ok(&tag, None, "EXPUNGE completed")))
    }

    /// Tells the client these UIDs are gone (highest first, so the
    /// sequence numbers stay right) and drops them from the view.
    async fn report_expunged<O: Sink>(&mut self, uids: &[u32], out: &mut O) -> Result<(), Gone> {
        let Some(selected) = self.selected.as_mut() else { return Ok(()) };
        let mut positions: Vec<usize> = uids
            .iter()
            .filter_map(|uid| selected.messages.binary_search_by_key(uid, |m| m.uid).ok())
            .collect();
        positions.sort_unstable();
        positions.dedup();
        for &position in positions.iter().rev() {
            selected.messages.remove(position);
            out.send(Response::Data(Data::Expunge(nonzero(position as u32 + 1)))).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::session::tests::{logged_in, run};
    use bytes::Bytes;

    #[test]
    fn uid_sets_are_compact() {
        let set = uid_set([1, 2, 3, 5, 7, 8]).unwrap();
        assert_eq!(set.0.as_ref().len(), 3);
        assert!(uid_set([]).is_none());
    }

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
        assert!(stored.starts_with("* 1 FETCH (FLAGS (\\Deleted) UID 1)"), "{stored}");
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
}
