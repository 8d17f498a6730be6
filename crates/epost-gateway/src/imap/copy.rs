//! COPY (with COPYUID, RFC 4315) and MOVE (RFC 6851).

use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::extensions::uidplus::{UidElement, UidSet};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Code, StatusKind};
use imap_codec::imap_types::sequence::SequenceSet;

use epost_types::mailbox::MailError;

use crate::backend::{Account, MailBackend};
use crate::imap::session::{Done, Gone, Session, Sink, mail_error, no, nonzero, ok, untagged};

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
        let Some(target) = self.folder_name(destination) else {
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
        if let Some(first) = report.mapping.iter().map(|m| m.1).min() {
            let user = self.user_name();
            self.shared.recent.added(&user, &target, report.uid_validity, first);
        }
        if !remove {
            if target == folder {
                self.refresh(false, out).await?;
            }
            return Ok(Done::now(ok(&tag, code, "COPY completed")));
        }
        // RFC 6851: COPYUID in an untagged OK, then the expunges, then (a
        // move into the folder itself) the messages' new UIDs.
        out.send(untagged(StatusKind::Ok, code, "moved")).await?;
        let moved: Vec<u32> = report.mapping.iter().map(|m| m.0).collect();
        self.report_expunged(&moved, out).await?;
        if target == folder {
            self.refresh(false, out).await?;
        }
        Ok(Done::now(ok(&tag, None, "MOVE completed")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_are_compact() {
        let set = uid_set([1, 2, 3, 5, 7, 8]).unwrap();
        assert_eq!(set.0.as_ref().len(), 3);
        assert!(uid_set([]).is_none());
    }
}
