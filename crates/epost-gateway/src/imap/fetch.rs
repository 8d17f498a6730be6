//! FETCH and UID FETCH: flags, dates, sizes, ENVELOPE, BODYSTRUCTURE and
//! body sections cut from the stored bytes. A non-PEEK body fetch sets
//! `\Seen` (RFC 3501 section 6.4.5). Responses go out in order, each
//! before the next is built; whole messages are read one at a time, so
//! memory stays at one message, while outlines (small) are read up to
//! [`READ_AHEAD`] ahead, so that a folder nothing is cached of yet (after
//! a restart) costs round trips side by side, not one after another.
//!
//! What each item needs decides what is read: sizes and flags come from
//! the folder's view; ENVELOPE, BODY, BODYSTRUCTURE, BINARY.SIZE of a
//! part that is not encoded, and whatever lies in the top-level header
//! come from the message's outline (its stored structure and the bytes
//! through its header, no part body); the whole message is read only
//! when an item's bytes reach past that header (BODY[], the text, a
//! part, an embedded message's header, BINARY). BINARY (RFC 3516) is in
//! [`super::binary`].
//!
//! MODSEQ, `(CHANGEDSINCE n)` and `(CHANGEDSINCE n VANISHED)` follow
//! RFC 7162 ([`crate::imap::condstore`], [`crate::imap::qresync`]);
//! `(PARTIAL range)` (RFC 9394, lifted out by [`crate::imap::lift`])
//! fetches only that window of the messages the set and CHANGEDSINCE name.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;

use bytes::Bytes;
use futures::StreamExt;
use imap_codec::imap_types::IntoStatic;
use imap_codec::imap_types::command::FetchModifier;
use imap_codec::imap_types::core::{IString, Literal, NString, Tag, Vec1};
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::fetch::{
    MacroOrMessageDataItemNames, MessageDataItem, MessageDataItemName, Section,
};
use imap_codec::imap_types::response::{Code, Data, Response};
use imap_codec::imap_types::sequence::SequenceSet;

use epost_types::mail::FlagChange;
use epost_types::mailbox::{MailError, MailErrorKind};
use epost_types::mime::{Entity, MessageStructure, STRUCTURE_VERSION, Span};

use crate::backend::{Account, MailBackend, MessageMeta};
use crate::imap::condstore::{FetchOptions, modseq};
use crate::imap::qresync::vanished_responses;
use crate::imap::session::{
    Done, Gone, Session, Sink, bad, fetch_flags, has_flag, mail_error, no, nonzero, ok, resolve,
};
use crate::imap::{binary, mime};

/// Outline reads in flight at most, ahead of the response being sent.
const READ_AHEAD: usize = 4;

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
        let outline = names.iter().any(needs_structure);
        let marks_seen = names.iter().any(|n| {
            matches!(
                n,
                MessageDataItemName::BodyExt { peek: false, .. }
                    | MessageDataItemName::Binary { peek: false, .. }
                    | MessageDataItemName::Rfc822
                    | MessageDataItemName::Rfc822Text
            )
        });
        let (Some(account), Some(selected)) = (self.account(), self.selected.as_ref()) else {
            return Ok(Done::now(bad(&tag, "select a mailbox first")));
        };
        let folder = selected.name.clone();
        let read_only = selected.read_only;
        let condstore = self.enabled.condstore;
        let named: Vec<usize> = resolve(set, uid, &selected.messages)
            .into_iter()
            .filter(|&p| {
                let changed = |meta: &MessageMeta| {
                    options.changed_since.is_none_or(|since| meta.modseq > since)
                };
                selected.messages.get(p).is_some_and(changed)
            })
            .collect();
        // PARTIAL (RFC 9394) windows what the set and CHANGEDSINCE name.
        let named = match self.lifted.fetch_partial {
            Some(partial) => partial.window(&named),
            None => &named[..],
        };
        let mut wanted: Vec<(usize, MessageMeta)> =
            named.iter().filter_map(|&p| Some((p, selected.messages.get(p)?.clone()))).collect();
        // A BINARY item can fail the command on a message's encoding
        // (UNKNOWN-CTE), found only once that message is read: then each
        // message is marked as it is answered, so a refused FETCH marks
        // nothing it did not answer.
        let one_by_one = names.iter().any(|n| matches!(n, MessageDataItemName::Binary { .. }));
        let marks_seen = marks_seen && !read_only;
        let mut marked = if marks_seen && !one_by_one {
            match self.mark_seen(&account, &folder, &mut wanted).await {
                Ok(marked) => marked,
                Err(error) => return Ok(Done::now(mail_error(&tag, &error))),
            }
        } else {
            HashSet::new()
        };
        // Reading ahead is for outlines: whole messages one at a time, so
        // memory stays at one message.
        let ahead = if names.iter().all(header_only) { READ_AHEAD } else { 1 };
        let mut reads = futures::stream::iter(wanted)
            .map(|(position, meta)| {
                let (account, folder, names) = (account.clone(), folder.clone(), &names);
                async move {
                    let result = read(&account, &folder, &meta, names, outline).await;
                    (position, meta, result)
                }
            })
            .buffered(ahead);
        // Nothing but this loop changes the view while it runs, so each
        // message's metadata is the one it was read with.
        while let Some((position, meta, result)) = reads.next().await {
            let read = match result {
                Ok(read) => read,
                // Expunged by another session; the client hears of it later.
                Err(e) if e.kind() == MailErrorKind::NoMessage => continue,
                Err(error) => return Ok(Done::now(mail_error(&tag, &error))),
            };
            if names.iter().any(|name| unknown_encoding(name, &read.structure)) {
                let text = "a part's Content-Transfer-Encoding is not known";
                return Ok(Done::now(no(&tag, Some(Code::UnknownCte), text)));
            }
            let mut meta = meta;
            if marks_seen && one_by_one {
                let mut one = [(position, meta)];
                match self.mark_seen(&account, &folder, &mut one).await {
                    Ok(now) => marked.extend(now),
                    Err(error) => return Ok(Done::now(mail_error(&tag, &error))),
                }
                let [(_, now)] = one;
                meta = now;
            }
            let flags_changed = marked.contains(&meta.uid);
            let flags = meta.flags.clone();
            let recent = self.selected.as_ref().is_some_and(|s| s.is_recent(meta.uid));
            let mut items = Vec::with_capacity(names.len() + 1);
            let mut origins = Vec::new();
            for name in &names {
                if let MessageDataItemName::Binary { partial: Some((start, _)), .. } = name {
                    origins.push((items.len(), *start));
                }
                items.push(item(name, &meta, (&flags, recent), &read));
            }
            if flags_changed && !names.contains(&MessageDataItemName::Flags) {
                items.push(MessageDataItem::Flags(fetch_flags(&flags, recent)));
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
            let seq = nonzero(position as u32 + 1);
            if origins.is_empty() {
                let Ok(items) = Vec1::try_from(items) else { continue };
                out.send(Response::Data(Data::Fetch { seq, items })).await?;
            } else {
                out.send_encoded(binary::encode_fetch(seq, items, &origins)).await?;
            }
        }
        Ok(Done::now(ok(&tag, None, "FETCH completed")))
    }

    /// Sets `\Seen` on every message of `wanted` that lacks it, in one
    /// store (one log entry however many messages the FETCH names), before
    /// any is read: their responses then carry the flag. Updates `wanted`
    /// and the selected view; returns the UIDs it changed.
    async fn mark_seen(
        &mut self,
        account: &B::Account,
        folder: &str,
        wanted: &mut [(usize, MessageMeta)],
    ) -> Result<HashSet<u32>, MailError> {
        let unseen: Vec<u32> = wanted
            .iter()
            .filter(|(_, meta)| !has_flag(&meta.flags, "\\Seen"))
            .map(|(_, meta)| meta.uid)
            .collect();
        if unseen.is_empty() {
            return Ok(HashSet::new());
        }
        let report =
            account.store(folder, &unseen, FlagChange::Add, vec!["\\Seen".into()], None).await?;
        let now: HashMap<u32, _> =
            report.stored.into_iter().map(|flagged| (flagged.uid, flagged)).collect();
        let mut marked = HashSet::with_capacity(now.len());
        for (position, meta) in wanted.iter_mut() {
            let Some(flagged) = now.get(&meta.uid) else { continue };
            meta.flags = flagged.flags.clone();
            meta.modseq = flagged.modseq;
            if let Some(view) = self.selected.as_mut().and_then(|s| s.messages.get_mut(*position)) {
                view.flags = meta.flags.clone();
                view.modseq = meta.modseq;
            }
            marked.insert(meta.uid);
        }
        Ok(marked)
    }
}

/// Whether an item is answered from the folder's view and the message's
/// outline alone (never its part bodies).
fn header_only(name: &MessageDataItemName<'_>) -> bool {
    match name {
        MessageDataItemName::BodyExt { section: Some(section), .. } => matches!(
            section,
            Section::Header(None)
                | Section::HeaderFields(None, _)
                | Section::HeaderFieldsNot(None, _)
        ),
        MessageDataItemName::Envelope
        | MessageDataItemName::Body
        | MessageDataItemName::BodyStructure
        | MessageDataItemName::Rfc822Header
        | MessageDataItemName::Uid
        | MessageDataItemName::ModSeq
        | MessageDataItemName::Flags
        | MessageDataItemName::InternalDate
        | MessageDataItemName::Rfc822Size => true,
        _ => false,
    }
}

/// Whether answering an item takes the message's structure.
fn needs_structure(name: &MessageDataItemName<'_>) -> bool {
    match name {
        MessageDataItemName::Envelope
        | MessageDataItemName::Body
        | MessageDataItemName::BodyStructure
        | MessageDataItemName::Rfc822Header
        | MessageDataItemName::Rfc822Text
        | MessageDataItemName::BodyExt { section: Some(_), .. } => true,
        MessageDataItemName::Binary { section, .. }
        | MessageDataItemName::BinarySize { section } => !section.is_empty(),
        MessageDataItemName::BodyExt { section: None, .. }
        | MessageDataItemName::Rfc822
        | MessageDataItemName::Uid
        | MessageDataItemName::ModSeq
        | MessageDataItemName::Flags
        | MessageDataItemName::InternalDate
        | MessageDataItemName::Rfc822Size => false,
    }
}

/// The bytes of a message of `size` bytes an item is answered from;
/// `None` if it needs none (what it says is in the folder's view or the
/// structure, or it names a part there is not). Decided from the
/// structure alone, so only what lies past the outline's head makes the
/// whole message be read.
fn extent(name: &MessageDataItemName<'_>, structure: &MessageStructure, size: u64) -> Option<Span> {
    let root = structure.root();
    match name {
        MessageDataItemName::Uid
        | MessageDataItemName::ModSeq
        | MessageDataItemName::Flags
        | MessageDataItemName::InternalDate
        | MessageDataItemName::Rfc822Size
        | MessageDataItemName::Envelope
        | MessageDataItemName::Body
        | MessageDataItemName::BodyStructure => None,
        MessageDataItemName::Rfc822 | MessageDataItemName::BodyExt { section: None, .. } => {
            Some(Span(0, size))
        }
        MessageDataItemName::Rfc822Header => root.map(|root| root.header),
        MessageDataItemName::Rfc822Text => root.map(|root| root.body),
        MessageDataItemName::BodyExt { section: Some(section), .. } => {
            mime::extent(structure, section)
        }
        MessageDataItemName::Binary { section, .. } => {
            binary::extent(structure, section, false, size)
        }
        MessageDataItemName::BinarySize { section } => {
            binary::extent(structure, section, true, size)
        }
    }
}

/// Whether an item is a BINARY of a part in an encoding not known here.
fn unknown_encoding(name: &MessageDataItemName<'_>, structure: &MessageStructure) -> bool {
    match name {
        MessageDataItemName::Binary { section, .. }
        | MessageDataItemName::BinarySize { section } => binary::unknown(structure, section),
        _ => false,
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

/// Reads what answering `names` for one message takes: its outline if
/// an item needs the structure (`outline`), and the whole message only
/// if an item needs bytes past the outline's head.
async fn read<A: Account>(
    account: &A,
    folder: &str,
    meta: &MessageMeta,
    names: &[MessageDataItemName<'_>],
    outline: bool,
) -> Result<Read, MailError> {
    let mut read = Read {
        structure: MessageStructure {
            v: STRUCTURE_VERSION,
            envelope: Default::default(),
            entities: Vec::new(),
        },
        bytes: Bytes::new(),
    };
    if outline {
        let outline = account.outline(folder, meta.uid).await?;
        read = Read { structure: outline.structure, bytes: Bytes::from(outline.head) };
    }
    let held = read.bytes.len() as u64;
    let beyond = |name: &MessageDataItemName<'_>| {
        extent(name, &read.structure, meta.size).is_some_and(|span| span.1 > held)
    };
    if names.iter().any(beyond) {
        read.bytes = account.fetch(folder, meta.uid).await?;
    }
    Ok(read)
}

/// The bytes `BODY.PEEK[section]<partial>` answers for one message,
/// read and cut as FETCH reads and cuts them (a partial without a length
/// runs to the end); `None` if the section names no part there is. For
/// CATENATE's URLs ([`super::catenate`]).
pub(crate) async fn body_section<A: Account>(
    account: &A,
    folder: &str,
    meta: &MessageMeta,
    section: Option<Section<'static>>,
    partial: Option<(u32, Option<NonZeroU32>)>,
) -> Result<Option<Vec<u8>>, MailError> {
    let partial = partial.map(|(start, length)| (start, length.unwrap_or(NonZeroU32::MAX)));
    let name = MessageDataItemName::BodyExt { section: section.clone(), partial, peek: true };
    let outline = needs_structure(&name);
    let read = read(account, folder, meta, std::slice::from_ref(&name), outline).await?;
    let Some(bytes) = mime::section(&read.bytes, &read.structure, section.as_ref()) else {
        return Ok(None);
    };
    Ok(Some(cut_partial(bytes, partial).into_owned()))
}

/// One requested item of one message.
fn item(
    name: &MessageDataItemName<'static>,
    meta: &MessageMeta,
    (flags, recent): (&[String], bool),
    read: &Read,
) -> MessageDataItem<'static> {
    let (raw, structure) = (read.bytes.as_ref(), &read.structure);
    let root = |span: fn(&Entity) -> Span| {
        structure.root().and_then(|root| raw.get(span(root).range())).unwrap_or_default()
    };
    match name {
        MessageDataItemName::Uid => MessageDataItem::Uid(nonzero(meta.uid)),
        MessageDataItemName::ModSeq => MessageDataItem::ModSeq(modseq(meta.modseq)),
        MessageDataItemName::Flags => MessageDataItem::Flags(fetch_flags(flags, recent)),
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
            let origin = partial.map(|(start, _)| start);
            let data = literal(cut_partial(bytes, *partial));
            MessageDataItem::BodyExt { section: section.clone(), origin, data }
        }
        MessageDataItemName::Binary { section, partial, .. } => {
            // An unknown encoding was refused before anything was answered.
            let content = binary::content(raw, structure, section).unwrap_or_default();
            let value = binary::value(cut_partial(content, *partial));
            MessageDataItem::Binary { section: section.clone(), value }
        }
        MessageDataItemName::BinarySize { section } => {
            let size = binary::size(raw, structure, section, meta.size).unwrap_or_default();
            let size = u32::try_from(size).unwrap_or(u32::MAX);
            MessageDataItem::BinarySize { section: section.clone(), size }
        }
    }
}

/// The bytes a partial fetch `<start.length>` asks for.
fn cut_partial(bytes: Cow<'_, [u8]>, partial: Option<(u32, NonZeroU32)>) -> Cow<'_, [u8]> {
    let Some((start, length)) = partial else { return bytes };
    let from = (start as usize).min(bytes.len());
    let to = from.saturating_add(length.get() as usize).min(bytes.len());
    match bytes {
        Cow::Borrowed(bytes) => Cow::Borrowed(&bytes[from..to]),
        Cow::Owned(bytes) => Cow::Owned(bytes[from..to].to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use crate::backend::Account;
    use crate::imap::mime::tests::MULTIPART;
    use crate::imap::session::Session;
    use crate::imap::session::tests::{logged_in, run};
    use crate::memory::MemoryBackend;

    #[tokio::test]
    async fn one_fetch_marks_all_its_messages_seen_in_one_store() {
        let (mut s, _) = logged_in().await;
        let account = s.account().unwrap();
        for _ in 0..3 {
            let message = bytes::Bytes::from_static(b"Subject: s\r\n\r\nbody\r\n");
            account.append("INBOX", message, vec![], None).await.unwrap();
        }
        account
            .store("INBOX", &[2], epost_types::mail::FlagChange::Add, vec!["\\Seen".into()], None)
            .await
            .unwrap();
        run(&mut s, "a SELECT INBOX").await;
        let before = run(&mut s, "b FETCH 2 MODSEQ").await;
        let reply = run(&mut s, "c FETCH 1:3 (BODY[] MODSEQ FLAGS)").await;
        // One piece per response: each runs from its `* n FETCH` through
        // its literal to its closing parenthesis.
        let lines: Vec<&str> = reply.split("* ").filter(|r| r.contains(" FETCH (")).collect();
        assert_eq!(lines.len(), 3, "{reply}");
        // Every response shows the flag; the two that lacked it share the
        // MODSEQ of the one store that set it; the third kept its own.
        fn modseq(line: &str) -> Option<&str> {
            line.split("MODSEQ (").nth(1)?.split(')').next()
        }
        for line in &lines {
            assert!(line.contains("\\Seen"), "{reply}");
        }
        assert_eq!(modseq(lines[0]), modseq(lines[2]), "{reply}");
        assert_ne!(modseq(lines[0]), modseq(lines[1]), "{reply}");
        assert!(before.contains(&format!("MODSEQ ({})", modseq(lines[1]).unwrap())));
        assert!(run(&mut s, "d FETCH 1:3 FLAGS").await.matches("\\Seen").count() == 3);
    }

    #[tokio::test]
    async fn fetch_returns_exact_bytes_and_sets_seen() {
        let (mut s, _) = logged_in().await;
        let account = s.account().unwrap();
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
        let nothing = run(&mut s, "i FETCH 5 FLAGS").await;
        assert!(nothing.starts_with("i OK"), "{nothing}");
    }

    /// A base64 part, a part in an encoding not known, and an embedded
    /// message that is not a multipart.
    const ENCODED: &[u8] = b"From: a@example.test\r\nSubject: files\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n\
AAECAwQ=\r\n\
--b\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\n\
--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n\
--b--\r\n";

    async fn selected(raw: &'static [u8]) -> (Session<MemoryBackend>, MemoryBackend) {
        let (mut s, backend) = logged_in().await;
        let account = s.account().unwrap();
        account.append("INBOX", bytes::Bytes::from_static(raw), vec![], None).await.unwrap();
        run(&mut s, "a SELECT INBOX").await;
        (s, backend)
    }

    #[tokio::test]
    async fn partial_fetches_a_window_of_what_the_set_names() {
        let (mut s, _) = logged_in().await;
        let account = s.account().unwrap();
        for n in 1..=6 {
            let raw = bytes::Bytes::from(format!("Subject: {n}\r\n\r\nbody\r\n"));
            account.append("INBOX", raw, vec![], None).await.unwrap();
        }
        run(&mut s, "a SELECT INBOX").await;
        run(&mut s, "b STORE 2 +FLAGS.SILENT (\\Deleted)").await;
        run(&mut s, "c EXPUNGE").await;
        let uids = |reply: &str| -> Vec<u32> {
            reply
                .lines()
                .filter_map(|l| l.split("(UID ").nth(1)?.split(')').next()?.parse().ok())
                .collect()
        };
        // (command, the UIDs answered): UIDs 1 and 3 to 6 are left.
        let cases: &[(&str, &[u32])] = &[
            ("d UID FETCH 1:* (UID) (PARTIAL -1:-2)", &[5, 6]),
            ("d UID FETCH 1:* (UID) (PARTIAL 2:3)", &[3, 4]),
            ("d FETCH 2:* (UID) (PARTIAL 1:1)", &[3]),
            ("d UID FETCH 1:* (UID) (PARTIAL 9:10)", &[]),
            ("d UID FETCH 4:* UID (PARTIAL -1:-100)", &[4, 5, 6]),
        ];
        for (command, want) in cases {
            let reply = run(&mut s, command).await;
            assert!(reply.ends_with("d OK FETCH completed\r\n"), "{command}: {reply}");
            assert_eq!(uids(&reply), *want, "{command}: {reply}");
        }
        // After CHANGEDSINCE: the window is of the changed ones.
        run(&mut s, "e STORE 1,3 +FLAGS.SILENT (\\Seen)").await;
        let modseq = s.selected.as_ref().unwrap().messages[1].modseq;
        let reply = run(
            &mut s,
            &format!("f UID FETCH 1:* (UID) (CHANGEDSINCE {} PARTIAL 1:1)", modseq - 1),
        )
        .await;
        assert!(reply.contains("* 1 FETCH (UID 1 MODSEQ"), "{reply}");
        assert_eq!(reply.matches(" FETCH (").count(), 1, "{reply}");
    }

    #[tokio::test]
    async fn binary_decodes_parts_and_writes_partial_origins() {
        let (mut s, _) = selected(ENCODED).await;
        let reply = run(&mut s, "b FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1] BINARY.SIZE[3])").await;
        assert!(
            reply.starts_with(
                "* 1 FETCH (BINARY.SIZE[1] 5 BINARY[1] ~{5}\r\n\x00\x01\x02\x03\x04 BINARY.SIZE[3] 28)"
            ),
            "{reply}"
        );
        assert!(!reply.contains("Seen"), "{reply}");
        let partial =
            run(&mut s, "c FETCH 1 (UID BINARY.PEEK[1]<1.2> BINARY.PEEK[3.1]<6.100>)").await;
        assert!(
            partial.starts_with(
                "* 1 FETCH (UID 1 BINARY[1]<1> {2}\r\n\x01\x02 BINARY[3.1]<6> {4}\r\nbody)"
            ),
            "{partial}"
        );
        let unknown = run(&mut s, "d FETCH 1 (FLAGS BINARY[2])").await;
        assert!(unknown.starts_with("d NO [UNKNOWN-CTE]"), "{unknown}");
        let seen = run(&mut s, "e FETCH 1 BINARY[3.1]").await;
        assert!(seen.contains("BINARY[3.1] {10}\r\ninner body FLAGS (\\Seen \\Recent))"), "{seen}");
    }

    #[tokio::test]
    async fn only_items_past_the_header_read_the_message() {
        let (mut s, backend) = selected(ENCODED).await;
        let table = [
            ("ENVELOPE BODYSTRUCTURE RFC822.SIZE", 0),
            ("BODY.PEEK[HEADER.FIELDS (SUBJECT)] RFC822.HEADER", 0),
            // Parts that are not there, and a size the structure gives.
            ("BODY.PEEK[9] BODY.PEEK[9.MIME] BINARY.PEEK[9] BINARY.SIZE[3]", 0),
            ("BINARY.SIZE[1]", 1),
            ("BODY.PEEK[1.MIME]", 1),
            ("BODY.PEEK[3.HEADER]", 1),
            ("BODY.PEEK[]", 1),
        ];
        for (items, reads) in table {
            let before = backend.full_reads();
            let reply = run(&mut s, &format!("f FETCH 1 ({items})")).await;
            assert!(reply.contains("f OK"), "{items}: {reply}");
            assert_eq!(backend.full_reads() - before, reads, "{items}");
        }
        // A message that is all header: BODY[] is its outline's head.
        let (mut s, backend) = selected(b"Subject: only a header\r\n\r\n").await;
        let reply = run(&mut s, "g FETCH 1 (BODY.PEEK[] BODY.PEEK[1.MIME])").await;
        assert!(reply.contains("BODY[] {26}\r\nSubject: only a header\r\n\r\n"), "{reply}");
        assert_eq!(backend.full_reads(), 0);
    }

    #[tokio::test]
    async fn binary_is_advertised() {
        let (mut s, _) = logged_in().await;
        assert!(run(&mut s, "a CAPABILITY").await.contains(" BINARY"));
    }
}
