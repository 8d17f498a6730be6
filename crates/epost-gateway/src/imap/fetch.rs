//! FETCH and UID FETCH: flags, dates, sizes, ENVELOPE, BODYSTRUCTURE and
//! body sections cut from the stored bytes. A non-PEEK body fetch sets
//! `\Seen` (RFC 3501 section 6.4.5). One message is fetched at a time and
//! its response sent before the next, so memory stays at one message.
//!
//! What each item needs decides what is read: sizes and flags come from
//! the folder's view; ENVELOPE, BODY, BODYSTRUCTURE and the top-level
//! header come from the message's outline (its stored structure and the
//! bytes through its header, no part body); only BODY[], the text, a
//! part or an embedded message's header reads the whole message.
//!
//! MODSEQ, `(CHANGEDSINCE n)` and `(CHANGEDSINCE n VANISHED)` follow
//! RFC 7162 ([`crate::imap::condstore`], [`crate::imap::qresync`]).

use std::borrow::Cow;

use bytes::Bytes;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::FetchModifier;
use imap_codec::imap_types::core::{IString, Literal, NString, Tag, Vec1};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::fetch::{
    MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName,
};
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::imap_types::sequence::SequenceSet;

use epost_types::mail::FlagChange;
use epost_types::mailbox::{MailError, MailErrorKind};
use epost_types::mime::{Entity, MessageStructure, STRUCTURE_VERSION, Span};

use crate::backend::{Account, MailBackend};
use crate::imap::condstore::{FetchOptions, modseq};
use crate::imap::mime;
use crate::imap::qresync::vanished_responses;
use crate::imap::session::{
    Done, Gone, Session, Sink, bad, fetch_flags, has_flag, mail_error, nonzero, ok, resolve,
};

/// INTERNALDATE from milliseconds since the epoch (UTC, whole seconds).
pub(crate) fn internal_date(millis: u64) -> DateTime {
    let seconds = i64::try_from(millis / 1000).unwrap_or(0);
    chrono::DateTime::from_timestamp(seconds, 0)
        .and_then(|d| DateTime::try_from(d.fixed_offset()).ok())
        .or_else(|| {
            chrono::DateTime::from_timestamp(0, 0)
                .and_then(|d| DateTime::try_from(d.fixed_offset()).ok())
        })
        .unwrap_or_else(|| DateTime::unvalidated(chrono::DateTime::UNIX_EPOCH.fixed_offset()))
}

/// Message bytes as an IMAP literal. IMAP literals cannot carry NUL; like
/// other servers we send those (only possible in mail that came in by
/// SMTP) as 0x80 rather than break the response.
pub(crate) fn literal(bytes: Cow<'_, [u8]>) -> NString<'static> {
    let owned = match Literal::try_from(bytes.as_ref()) {
        Ok(_) => bytes.into_owned(),
        Err(_) => bytes.iter().map(|&b| if b == 0 { 0x80 } else { b }).collect(),
    };
    match Literal::try_from(owned) {
        Ok(literal) => NString(Some(IString::Literal(literal))),
        Err(_) => NString(None),
    }
}

impl<B: MailBackend> Session<B> {
    pub(crate) async fn fetch<O: Sink>(
        &mut self,
        tag: Tag<'static>,
        set: &SequenceSet,
        items: MacroOrMessageDataItemNames<'static>,
        uid: bool,
        modifiers: &[FetchModifier],
        out: &mut O,
    ) -> Result<Done, Gone> {
        let options = FetchOptions::of(modifiers);
        if let Some(refusal) = options.refusal(uid, self.enabled) {
            return Ok(Done::now(bad(&tag, refusal)));
        }
        let mut names: Vec<MessageDataItemName<'static>> = match items {
            MacroOrMessageDataItemNames::Macro(m) => {
                m.expand().into_iter().map(IntoStatic::into_static).collect()
            }
            MacroOrMessageDataItemNames::MessageDataItemNames(names) => names,
        };
        if names.iter().any(|n| {
            matches!(n, MessageDataItemName::Binary { .. } | MessageDataItemName::BinarySize { .. })
        }) {
            return Ok(Done::now(bad(&tag, "BINARY is not supported")));
        }
        if uid && !names.contains(&MessageDataItemName::Uid) {
            names.insert(0, MessageDataItemName::Uid);
        }
        if options.changed_since.is_some() && !names.contains(&MessageDataItemName::ModSeq) {
            names.push(MessageDataItemName::ModSeq);
        }
        if names.contains(&MessageDataItemName::ModSeq) && self.selected.is_some() {
            self.condstore_on(out).await?;
        }
        if let (true, Some(since)) = (options.vanished, options.changed_since) {
            let gone = match self.vanished_within(since, Some(set)).await {
                Ok(gone) => gone,
                Err(error) => return Ok(Done::now(mail_error(&tag, &error))),
            };
            for response in vanished_responses(&gone, true) {
                out.send(response).await?;
            }
        }
        let needs = names.iter().map(Needs::of).fold(Needs::default(), Needs::and);
        let marks_seen = names.iter().any(|n| {
            matches!(
                n,
                MessageDataItemName::BodyExt { peek: false, .. }
                    | MessageDataItemName::Rfc822
                    | MessageDataItemName::Rfc822Text
            )
        });
        let (Some(account), Some(selected)) = (self.account(), self.selected.as_ref()) else {
            return Ok(Done::now(bad(&tag, "select a mailbox first")));
        };
        let folder = selected.name.clone();
        let read_only = selected.read_only;
        let positions = resolve(set, uid, &selected.messages);
        let condstore = self.enabled.condstore;
        for position in positions {
            let Some(meta) = self.selected.as_ref().and_then(|s| s.messages.get(position)).cloned()
            else {
                continue;
            };
            if options.changed_since.is_some_and(|since| meta.modseq <= since) {
                continue;
            }
            let read = match read(&account, &folder, meta.uid, needs).await {
                Ok(read) => read,
                // Expunged by another session; the client hears of it later.
                Err(e) if e.kind() == MailErrorKind::NoMessage => continue,
                Err(error) => return Ok(Done::now(mail_error(&tag, &error))),
            };
            let mut meta = meta;
            let mut flags_changed = false;
            if marks_seen && !read_only && !has_flag(&meta.flags, "\\Seen") {
                match account
                    .store(&folder, &[meta.uid], FlagChange::Add, vec!["\\Seen".into()], None)
                    .await
                {
                    Ok(report) => {
                        if let Some(now) = report.stored.into_iter().find(|f| f.uid == meta.uid) {
                            meta.flags = now.flags;
                            meta.modseq = now.modseq;
                        }
                        if let Some(view) =
                            self.selected.as_mut().and_then(|s| s.messages.get_mut(position))
                        {
                            view.flags = meta.flags.clone();
                            view.modseq = meta.modseq;
                        }
                        flags_changed = true;
                    }
                    Err(error) => return Ok(Done::now(mail_error(&tag, &error))),
                }
            }
            let mut items = Vec::with_capacity(names.len() + 3);
            for name in &names {
                items.push(item(name, &meta, &meta.flags, &read));
            }
            if flags_changed && !names.contains(&MessageDataItemName::Flags) {
                items.push(MessageDataItem::Flags(fetch_flags(&meta.flags)));
            }
            // A change this FETCH made carries UID and MODSEQ (RFC 7162 3.1).
            if flags_changed && condstore {
                if !names.contains(&MessageDataItemName::Uid) {
                    items.push(MessageDataItem::Uid(nonzero(meta.uid)));
                }
                if !names.contains(&MessageDataItemName::ModSeq) {
                    items.push(MessageDataItem::ModSeq(modseq(meta.modseq)));
                }
            }
            let Ok(items) = Vec1::try_from(items) else { continue };
            out.send(Response::Data(Data::Fetch { seq: nonzero(position as u32 + 1), items }))
                .await?;
        }
        Ok(Done::now(ok(&tag, None, "FETCH completed")))
    }
}

/// What answering items takes besides the folder's view.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Needs {
    /// The message's outline: its structure and bytes through its header.
    outline: bool,
    /// The whole message.
    whole: bool,
}

impl Needs {
    fn of(name: &MessageDataItemName<'_>) -> Self {
        let (outline, whole) = match name {
            MessageDataItemName::Envelope
            | MessageDataItemName::Body
            | MessageDataItemName::BodyStructure
            | MessageDataItemName::Rfc822Header => (true, false),
            MessageDataItemName::BodyExt { section: None, .. } | MessageDataItemName::Rfc822 => {
                (false, true)
            }
            MessageDataItemName::BodyExt { section: Some(section), .. } => {
                (true, !mime::in_header(section))
            }
            MessageDataItemName::Rfc822Text => (true, true),
            MessageDataItemName::Uid
            | MessageDataItemName::ModSeq
            | MessageDataItemName::Flags
            | MessageDataItemName::InternalDate
            | MessageDataItemName::Rfc822Size
            | MessageDataItemName::Binary { .. }
            | MessageDataItemName::BinarySize { .. } => (false, false),
        };
        Needs { outline, whole }
    }

    fn and(self, other: Needs) -> Needs {
        Needs { outline: self.outline || other.outline, whole: self.whole || other.whole }
    }
}

/// What was read of one message.
struct Read {
    /// Its structure; empty when no item needed it.
    structure: MessageStructure,
    /// Its bytes as far as they were read: all of them, those through
    /// its header, or none.
    bytes: Bytes,
}

async fn read<A: Account>(
    account: &A,
    folder: &str,
    uid: u32,
    needs: Needs,
) -> Result<Read, MailError> {
    let mut read = Read {
        structure: MessageStructure {
            v: STRUCTURE_VERSION,
            envelope: Default::default(),
            entities: Vec::new(),
        },
        bytes: Bytes::new(),
    };
    if needs.outline {
        let outline = account.outline(folder, uid).await?;
        read = Read { structure: outline.structure, bytes: Bytes::from(outline.head) };
    }
    if needs.whole {
        read.bytes = account.fetch(folder, uid).await?;
    }
    Ok(read)
}

/// One requested item of one message.
fn item(
    name: &MessageDataItemName<'static>,
    meta: &crate::backend::MessageMeta,
    flags: &[String],
    read: &Read,
) -> MessageDataItem<'static> {
    let (raw, structure) = (read.bytes.as_ref(), &read.structure);
    let root = |span: fn(&Entity) -> Span| {
        structure.root().and_then(|root| raw.get(span(root).range())).unwrap_or_default()
    };
    match name {
        MessageDataItemName::Uid => MessageDataItem::Uid(nonzero(meta.uid)),
        MessageDataItemName::ModSeq => MessageDataItem::ModSeq(modseq(meta.modseq)),
        MessageDataItemName::Flags => MessageDataItem::Flags(fetch_flags(flags)),
        MessageDataItemName::InternalDate => {
            MessageDataItem::InternalDate(internal_date(meta.internal_date))
        }
        MessageDataItemName::Rfc822Size => {
            MessageDataItem::Rfc822Size(u32::try_from(meta.size).unwrap_or(u32::MAX))
        }
        MessageDataItemName::Envelope => {
            MessageDataItem::Envelope(mime::envelope(&structure.envelope))
        }
        MessageDataItemName::Body => MessageDataItem::Body(mime::body_structure(structure, false)),
        MessageDataItemName::BodyStructure => {
            MessageDataItem::BodyStructure(mime::body_structure(structure, true))
        }
        MessageDataItemName::Rfc822 => MessageDataItem::Rfc822(literal(Cow::Borrowed(raw))),
        MessageDataItemName::Rfc822Header => {
            MessageDataItem::Rfc822Header(literal(Cow::Borrowed(root(|e| e.header))))
        }
        MessageDataItemName::Rfc822Text => {
            MessageDataItem::Rfc822Text(literal(Cow::Borrowed(root(|e| e.body))))
        }
        MessageDataItemName::BodyExt { section, partial, .. } => {
            let bytes = mime::section(raw, structure, section.as_ref());
            let bytes = bytes.unwrap_or(Cow::Borrowed(&[][..]));
            let (bytes, origin) = match partial {
                Some((start, length)) => {
                    let from = (*start as usize).min(bytes.len());
                    let to = from.saturating_add(length.get() as usize).min(bytes.len());
                    (Cow::Owned(bytes[from..to].to_vec()), Some(*start))
                }
                None => (bytes, None),
            };
            MessageDataItem::BodyExt { section: section.clone(), origin, data: literal(bytes) }
        }
        // Refused before any message is looked at.
        MessageDataItemName::Binary { .. } | MessageDataItemName::BinarySize { .. } => {
            MessageDataItem::Uid(nonzero(meta.uid))
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::imap::mime::tests::MULTIPART;
    use crate::imap::session::tests::{logged_in, run};

    #[tokio::test]
    async fn fetch_returns_exact_bytes_and_sets_seen() {
        let (mut s, _) = logged_in().await;
        let account = s.account().unwrap();
        use crate::backend::Account;
        account
            .append("INBOX", bytes::Bytes::from_static(MULTIPART), vec![], Some(1_700_000_000_000))
            .await
            .unwrap();
        run(&mut s, "a SELECT INBOX").await;
        let reply = run(&mut s, "b FETCH 1 (UID FLAGS INTERNALDATE RFC822.SIZE)").await;
        assert!(
            reply.contains(
                "* 1 FETCH (UID 1 FLAGS () INTERNALDATE \"14-Nov-2023 22:13:20 +0000\" RFC822.SIZE"
            ),
            "{reply}"
        );
        let peek = run(&mut s, "c UID FETCH 1 (BODY.PEEK[1])").await;
        assert!(peek.contains("BODY[1] {17}\r\nGrüße aus Köln)"), "{peek}");
        assert!(!peek.contains("\\Seen"));
        let body = run(&mut s, "d FETCH 1 BODY[]").await;
        assert!(body.contains("FLAGS (\\Seen)"), "{body}");
        let partial = run(&mut s, "e FETCH 1 BODY.PEEK[]<6.5>").await;
        assert!(partial.contains("BODY[]<6> {5}\r\nAlice"), "{partial}");
        let structure = run(&mut s, "f FETCH 1 (BODYSTRUCTURE ENVELOPE)").await;
        assert!(
            structure.contains("(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"utf-8\") NIL NIL \"8BIT\" 17 1"),
            "{structure}"
        );
        assert!(structure.contains("\"MIXED\""), "{structure}");
        assert!(structure.contains("ENVELOPE (\"Mon, 6 Jan 2025 10:00:00 +0000\""), "{structure}");
        let fields = run(&mut s, "g FETCH 1 BODY.PEEK[HEADER.FIELDS (FROM MESSAGE-ID)]").await;
        assert!(
            fields.contains(
                "From: Alice <alice@example.test>\r\nMessage-ID: <m1@example.test>\r\n\r\n"
            ),
            "{fields}"
        );
        assert!(run(&mut s, "h FETCH 1 BINARY[1]").await.starts_with("h BAD"));
        let nothing = run(&mut s, "i FETCH 5 FLAGS").await;
        assert!(nothing.starts_with("i OK"), "{nothing}");
    }
}
