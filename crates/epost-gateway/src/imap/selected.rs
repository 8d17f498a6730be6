//! The selected folder as the commands that change it see it: whether it
//! may be changed, the UIDs a sequence set names, and telling the client
//! which messages went (EXPUNGE, or VANISHED once QRESYNC is on).

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::imap_types::sequence::SequenceSet;

use crate::backend::MailBackend;
use crate::imap::condstore::ranges_of;
use crate::imap::qresync::vanished_responses;
use crate::imap::session::{Done, Gone, Session, Sink, no, nonzero, resolve};

impl<B: MailBackend> Session<B> {
    /// The selected folder, if it may be changed.
    pub(crate) fn writable(&self, tag: &Tag<'static>) -> Result<(B::Account, String), Box<Done>> {
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

    pub(crate) fn uids_of(&self, set: &SequenceSet, uid: bool) -> Vec<u32> {
        let Some(selected) = self.selected.as_ref() else { return Vec::new() };
        resolve(set, uid, &selected.messages)
            .into_iter()
            .map(|p| selected.messages[p].uid)
            .collect()
    }

    /// Tells the client these UIDs are gone (highest first, so the
    /// sequence numbers stay right) and drops them from the view.
    pub(crate) async fn report_expunged<O: Sink>(
        &mut self,
        uids: &[u32],
        out: &mut O,
    ) -> Result<(), Gone> {
        let qresync = self.enabled.qresync;
        // Live search contexts hear of it first, by the numbers it undoes.
        self.contexts_expunging(uids, out).await?;
        let Some(selected) = self.selected.as_mut() else { return Ok(()) };
        let mut positions: Vec<usize> = uids
            .iter()
            .filter_map(|uid| selected.messages.binary_search_by_key(uid, |m| m.uid).ok())
            .collect();
        positions.sort_unstable();
        positions.dedup();
        let gone: Vec<u32> = positions.iter().map(|&p| selected.messages[p].uid).collect();
        for &position in positions.iter().rev() {
            selected.messages.remove(position);
            if !qresync {
                out.send(Response::Data(Data::Expunge(nonzero(position as u32 + 1)))).await?;
            }
        }
        if qresync {
            for response in vanished_responses(&ranges_of(&gone), false) {
                out.send(response).await?;
            }
        }
        Ok(())
    }
}
