//! EXPUNGE and UID EXPUNGE (RFC 4315); with QRESYNC, the tagged OK
//! carries the HIGHESTMODSEQ the client has caught up to.

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::sequence::SequenceSet;

use imap_codec::imap_types::response::Code;

use crate::backend::{Account, MailBackend};
use crate::imap::condstore::modseq;
use crate::imap::session::{Done, Gone, Session, Sink, mail_error, ok};

impl<B: MailBackend> Session<B> {
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
        let code = match (&self.selected, self.enabled.qresync) {
            (Some(selected), true) => Some(Code::HighestModSeq(modseq(selected.highest_modseq))),
            _ => None,
        };
        Ok(Done::now(ok(&tag, code, "EXPUNGE completed")))
    }
}
