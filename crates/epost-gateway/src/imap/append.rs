//! APPEND (with APPENDUID, RFC 4315): a message from the client into a
//! folder, refused before it is read when over the size limit.

use bytes::Bytes;
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::Code;

use epost_types::mailbox::MailError;

use crate::backend::{Account, MailBackend};
use crate::imap::session::{
    Done, Gone, Session, Sink, flag_string, folder_name, mail_error, no, nonzero, ok,
};

impl<B: MailBackend> Session<B> {
    pub(crate) async fn append<O: Sink>(
        &mut self,
        tag: Tag<'static>,
        requested: &Mailbox<'static>,
        flags: Vec<Flag<'static>>,
        date: Option<DateTime>,
        message: LiteralOrLiteral8<'static>,
        out: &mut O,
    ) -> Result<Done, Gone> {
        let (Some(account), Some(name)) = (self.account(), folder_name(requested)) else {
            return Ok(Done::now(no(&tag, Some(Code::TryCreate), "no such mailbox")));
        };
        let raw = match message {
            LiteralOrLiteral8::Literal(literal) => literal.into_inner(),
            LiteralOrLiteral8::Literal8(literal) => literal.data,
        };
        if raw.len() > self.shared.limits.max_message {
            return Ok(Done::now(no(&tag, Some(Code::TooBig), "message too large")));
        }
        let flags: Vec<String> = flags.iter().map(flag_string).collect();
        let date = date.and_then(|d| u64::try_from(d.as_ref().timestamp_millis()).ok());
        let raw = Bytes::from(raw.into_owned());
        match account.append(&name, raw, flags, date).await {
            Ok((validity, uid)) => {
                self.shared.recent.added(&self.user_name(), &name, validity, uid);
                if self.selected.as_ref().is_some_and(|s| s.name == name) {
                    self.refresh(false, out).await?;
                }
                let code = Code::AppendUid { uid_validity: nonzero(validity), uid: nonzero(uid) };
                Ok(Done::now(ok(&tag, Some(code), "APPEND completed")))
            }
            Err(MailError::NoFolder(_)) => {
                Ok(Done::now(no(&tag, Some(Code::TryCreate), "no such mailbox")))
            }
            Err(error) => Ok(Done::now(mail_error(&tag, &error))),
        }
    }
}
