//! Folder commands: SELECT/EXAMINE (with CONDSTORE and QRESYNC, whose
//! resync is in [`crate::imap::qresync`]), CLOSE, CREATE, DELETE, RENAME,
//! SUBSCRIBE/UNSUBSCRIBE, LIST/LSUB (with SPECIAL-USE attributes; the
//! extended LIST is [`crate::imap::listext`]) and STATUS; in IMAP4rev2
//! ([`crate::imap::rev2`]) SELECT leaves out RECENT and sends the folder's
//! LIST response.

use std::borrow::Cow;

use imap_codec::imap_types::command::SelectParameter;
use imap_codec::imap_types::core::{Atom, QuotedChar, Tag};
use imap_codec::imap_types::flag::FlagNameAttribute;
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::response::{Code, Data, Response, StatusKind};
use imap_codec::imap_types::status::{StatusDataItem, StatusDataItemName};

use epost_types::mailbox::MailError;

use crate::backend::{Account, FolderInfo, MailBackend, SpecialUse};
use crate::imap::condstore::modseq;
use crate::imap::listext::DELIMITER;
use crate::imap::qresync::SelectOptions;
use crate::imap::session::{
    Done, Gone, Selected, Session, Sink, bad, has_flag, mail_error, no, nonzero, ok, untagged,
};
use crate::imap::utf7;

impl<B: MailBackend> Session<B> {
    pub(crate) async fn select<O: Sink>(
        &mut self,
        tag: Tag<'static>,
        requested: &Mailbox<'static>,
        read_only: bool,
        parameters: &[SelectParameter],
        out: &mut O,
    ) -> Result<Done, Gone> {
        let options = SelectOptions::of(parameters);
        if options.qresync.is_some() && !self.enabled.qresync {
            return Ok(Done::now(bad(&tag, "QRESYNC needs ENABLE QRESYNC first")));
        }
        if options.condstore {
            self.enabled.condstore = true;
        }
        // A failed SELECT leaves no folder selected (RFC 3501 section 6.3.1);
        // what follows is about the new one (RFC 7162 section 3.2.11).
        if self.selected.take().is_some() {
            out.send(untagged(StatusKind::Ok, Some(Code::Closed), "previous mailbox closed"))
                .await?;
        }
        let (Some(account), Some(name)) = (self.account(), self.folder_name(requested)) else {
            return Ok(Done::now(no(&tag, None, "no such mailbox")));
        };
        let snapshot = match account.snapshot(&name).await {
            Ok(snapshot) => snapshot,
            Err(error) => return Ok(Done::now(mail_error(&tag, &error))),
        };
        let user = self.user_name();
        let recent = &self.shared.recent;
        let recent = if self.enabled.imap4rev2 {
            // IMAP4rev2 has no \Recent: this session takes none, so they
            // stay recent for an IMAP4rev1 session (spec/mail.md).
            Vec::new()
        } else if read_only {
            recent.untaken(&user, &name, snapshot.uid_validity, &snapshot.messages)
        } else {
            recent.take(&user, &name, snapshot.uid_validity, &snapshot.messages)
        };
        let selected = Selected::new(name, read_only, &snapshot, recent);
        let [flags, permanent] = <[Response<'static>; 2]>::try_from(selected.flags_responses())
            .unwrap_or_else(|_| unreachable!("FLAGS and PERMANENTFLAGS"));
        out.send(flags).await?;
        out.send(Response::Data(Data::Exists(selected.messages.len() as u32))).await?;
        if !self.enabled.imap4rev2 {
            // RFC 9051 has neither RECENT nor the UNSEEN code.
            out.send(Response::Data(Data::Recent(selected.recent.len() as u32))).await?;
            if let Some(first) =
                selected.messages.iter().position(|m| !has_flag(&m.flags, "\\Seen"))
            {
                let code = Code::Unseen(nonzero(first as u32 + 1));
                out.send(untagged(StatusKind::Ok, Some(code), "first unseen")).await?;
            }
        }
        out.send(permanent).await?;
        let codes = [
            (Code::UidValidity(nonzero(snapshot.uid_validity)), "UIDs valid"),
            (Code::UidNext(nonzero(snapshot.uid_next)), "predicted next UID"),
            (Code::HighestModSeq(modseq(snapshot.highest_modseq)), "highest"),
        ];
        for (code, message) in codes {
            out.send(untagged(StatusKind::Ok, Some(code), message)).await?;
        }
        if self.enabled.imap4rev2 {
            self.select_list(&account, &selected.name, out).await?;
        }
        self.selected = Some(selected);
        if let Some(resync) = &options.qresync
            && let Err(error) = self.resync(resync, out).await?
        {
            self.selected = None;
            return Ok(Done::now(mail_error(&tag, &error)));
        }
        Ok(Done::now(if read_only {
            ok(&tag, Some(Code::ReadOnly), "EXAMINE completed")
        } else {
            ok(&tag, Some(Code::ReadWrite), "SELECT completed")
        }))
    }

    /// The `* LIST` response an IMAP4rev2 SELECT or EXAMINE sends for its
    /// folder (RFC 9051 section 6.3.2), with LIST's attributes; left out
    /// if the folder list cannot be read now (the SELECT still succeeds).
    async fn select_list<O: Sink>(
        &self,
        account: &B::Account,
        name: &str,
        out: &mut O,
    ) -> Result<(), Gone> {
        let Ok(folders) = account.folders().await else { return Ok(()) };
        let entry = listing(&folders, false).into_iter().find(|entry| entry.name == name);
        if let (Some(entry), Some(mailbox)) = (entry, self.mailbox_name(name)) {
            let delimiter = QuotedChar::try_from(DELIMITER).ok();
            let data = Data::List { items: attributes(&entry), delimiter, mailbox };
            out.send(Response::Data(data)).await?;
        }
        Ok(())
    }

    /// CLOSE: expunges silently (unless read-only) and deselects.
    pub(crate) async fn close(&mut self, tag: Tag<'static>) -> Result<Done, Gone> {
        if let (Some(account), Some(selected)) = (self.account(), self.selected.take())
            && !selected.read_only
            && let Ok(snapshot) = account.snapshot(&selected.name).await
        {
            let deleted: Vec<u32> = snapshot
                .messages
                .iter()
                .filter(|m| has_flag(&m.flags, "\\Deleted"))
                .map(|m| m.uid)
                .collect();
            if !deleted.is_empty()
                && let Err(error) = account.expunge(&selected.name, &deleted).await
            {
                return Ok(Done::now(mail_error(&tag, &error)));
            }
        }
        Ok(Done::now(ok(&tag, None, "CLOSE completed")))
    }

    pub(crate) async fn create(&mut self, tag: Tag<'static>, requested: &Mailbox<'static>) -> Done {
        let (Some(account), Some(name)) = (self.account(), self.folder_name(requested)) else {
            return Done::now(no(&tag, None, "bad mailbox name"));
        };
        let name = name.trim_end_matches(DELIMITER);
        if name.is_empty() || name.eq_ignore_ascii_case("INBOX") {
            return Done::now(no(
                &tag,
                Some(crate::imap::session::code("ALREADYEXISTS")),
                "INBOX exists",
            ));
        }
        // CREATE does not subscribe (RFC 3501 section 6.3.3): clients
        // that want the folder shown subscribe to it themselves; a name
        // subscribed before stays subscribed.
        match account.create(name).await {
            Ok(()) => Done::now(ok(&tag, None, "CREATE completed")),
            Err(error) => Done::now(mail_error(&tag, &error)),
        }
    }

    pub(crate) async fn delete(&mut self, tag: Tag<'static>, requested: &Mailbox<'static>) -> Done {
        let (Some(account), Some(name)) = (self.account(), self.folder_name(requested)) else {
            return Done::now(no(&tag, None, "bad mailbox name"));
        };
        match account.delete(&name).await {
            Ok(()) => {
                if self.selected.as_ref().is_some_and(|s| s.name == name) {
                    self.selected = None;
                }
                Done::now(ok(&tag, None, "DELETE completed"))
            }
            Err(error) => Done::now(mail_error(&tag, &error)),
        }
    }

    pub(crate) async fn rename(
        &mut self,
        tag: Tag<'static>,
        from: &Mailbox<'static>,
        to: &Mailbox<'static>,
    ) -> Done {
        let (Some(account), Some(from), Some(to)) =
            (self.account(), self.folder_name(from), self.folder_name(to))
        else {
            return Done::now(no(&tag, None, "bad mailbox name"));
        };
        match account.rename(&from, &to).await {
            Ok(()) => {
                // This session's selected folder goes by its new name (its
                // next refresh sees the new UIDVALIDITY); another session
                // that had it selected is told BYE at its next refresh.
                // INBOX stays, emptied: its refresh reports the expunges.
                let follows = |s: &&mut Selected| s.name == from && from != "INBOX";
                if let Some(selected) = self.selected.as_mut().filter(follows) {
                    selected.name = to;
                }
                Done::now(ok(&tag, None, "RENAME completed"))
            }
            Err(error) => Done::now(mail_error(&tag, &error)),
        }
    }

    pub(crate) async fn subscribe(
        &mut self,
        tag: Tag<'static>,
        requested: &Mailbox<'static>,
        subscribed: bool,
    ) -> Done {
        let (Some(account), Some(name)) = (self.account(), self.folder_name(requested)) else {
            return Done::now(no(&tag, None, "bad mailbox name"));
        };
        match account.subscribe(&name, subscribed).await {
            Ok(()) => Done::now(ok(&tag, None, "done")),
            Err(error) => Done::now(mail_error(&tag, &error)),
        }
    }

    pub(crate) async fn list<O: Sink>(
        &mut self,
        tag: Tag<'static>,
        reference: &Mailbox<'static>,
        pattern: &ListMailbox<'static>,
        lsub: bool,
        out: &mut O,
    ) -> Result<Done, Gone> {
        if !lsub && let Some(options) = self.lifted.list.take() {
            return self.list_extended(tag, reference, options, out).await;
        }
        let Some(account) = self.account() else {
            return Ok(Done::now(bad(&tag, "log in first")));
        };
        let utf8 = self.enabled.imap4rev2;
        let Some(reference) = reference_name(reference, utf8) else {
            return Ok(Done::now(bad(&tag, "bad reference name")));
        };
        let pattern = match pattern {
            ListMailbox::Token(token) => token.as_ref(),
            ListMailbox::String(string) => string.as_ref(),
        };
        let Some(pattern) = pattern_text(pattern, utf8) else {
            return Ok(Done::now(bad(&tag, "bad mailbox pattern")));
        };
        let verb = if lsub { "LSUB" } else { "LIST" };
        if pattern.is_empty() && !lsub {
            out.send(root()).await?;
            return Ok(Done::now(ok(&tag, None, "LIST completed")));
        }
        let folders = match account.folders().await {
            Ok(folders) => folders,
            Err(error) => return Ok(Done::now(mail_error(&tag, &error))),
        };
        let full: Vec<char> = format!("{reference}{pattern}").chars().collect();
        for entry in listing(&folders, lsub) {
            if !name_matches(&full, &entry.name) {
                continue;
            }
            let Some(mailbox) = self.mailbox_name(&entry.name) else { continue };
            let items = attributes(&entry);
            let delimiter = QuotedChar::try_from(DELIMITER).ok();
            let data = if lsub {
                Data::Lsub { items, delimiter, mailbox }
            } else {
                Data::List { items, delimiter, mailbox }
            };
            out.send(Response::Data(data)).await?;
        }
        Ok(Done::now(ok(&tag, None, &format!("{verb} completed"))))
    }

    pub(crate) async fn status<O: Sink>(
        &mut self,
        tag: Tag<'static>,
        requested: &Mailbox<'static>,
        names: &[StatusDataItemName],
        out: &mut O,
    ) -> Result<Done, Gone> {
        let (Some(account), Some(name)) = (self.account(), self.folder_name(requested)) else {
            return Ok(Done::now(no(&tag, None, "no such mailbox")));
        };
        if names.contains(&StatusDataItemName::HighestModSeq) {
            self.condstore_on(out).await?;
        }
        let items = match self.status_items(&account, &name, names).await {
            Ok(items) => items,
            Err(error) => return Ok(Done::now(mail_error(&tag, &error))),
        };
        out.send(Response::Data(Data::Status {
            mailbox: requested.clone(),
            items: Cow::Owned(items),
        }))
        .await?;
        Ok(Done::now(ok(&tag, None, "STATUS completed")))
    }

    /// The STATUS items `names` of the folder `name`.
    pub(crate) async fn status_items(
        &self,
        account: &B::Account,
        name: &str,
        names: &[StatusDataItemName],
    ) -> Result<Vec<StatusDataItem>, MailError> {
        let snapshot = account.snapshot(name).await?;
        let count =
            |flag: &str| snapshot.messages.iter().filter(|m| has_flag(&m.flags, flag)).count();
        let mut items = Vec::new();
        for item in names {
            items.push(match item {
                StatusDataItemName::Messages => {
                    StatusDataItem::Messages(snapshot.messages.len() as u32)
                }
                StatusDataItemName::Recent => StatusDataItem::Recent(
                    self.shared
                        .recent
                        .untaken(&self.user_name(), name, snapshot.uid_validity, &snapshot.messages)
                        .len() as u32,
                ),
                StatusDataItemName::UidNext => StatusDataItem::UidNext(nonzero(snapshot.uid_next)),
                StatusDataItemName::UidValidity => {
                    StatusDataItem::UidValidity(nonzero(snapshot.uid_validity))
                }
                StatusDataItemName::Unseen => {
                    StatusDataItem::Unseen((snapshot.messages.len() - count("\\Seen")) as u32)
                }
                StatusDataItemName::Deleted => StatusDataItem::Deleted(count("\\Deleted") as u32),
                StatusDataItemName::DeletedStorage => StatusDataItem::DeletedStorage(
                    snapshot
                        .messages
                        .iter()
                        .filter(|m| has_flag(&m.flags, "\\Deleted"))
                        .map(|m| m.size)
                        .sum(),
                ),
                StatusDataItemName::HighestModSeq => {
                    StatusDataItem::HighestModSeq(snapshot.highest_modseq)
                }
                // RFC 8438: the messages' sizes, added up.
                StatusDataItemName::Size => {
                    StatusDataItem::Size(snapshot.messages.iter().map(|m| m.size).sum())
                }
            });
        }
        Ok(items)
    }

    /// The messages flagged `\Deleted`, optionally only within `uids`.
    pub(crate) async fn deleted(&self, name: &str) -> Result<Vec<u32>, MailError> {
        let account = self.account().ok_or_else(|| MailError::NotAllowed("log in first".into()))?;
        let snapshot = account.snapshot(name).await?;
        Ok(snapshot
            .messages
            .iter()
            .filter(|m| has_flag(&m.flags, "\\Deleted"))
            .map(|m| m.uid)
            .collect())
    }
}

/// One name a LIST or LSUB may show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    pub(crate) name: String,
    /// Not a folder (or, for LSUB, not subscribed): only the parent of
    /// one (RFC 3501 sections 6.3.8 and 6.3.9).
    pub(crate) noselect: bool,
    /// For LIST: whether it has children (RFC 3348); `None` for LSUB,
    /// which shows no child attributes.
    pub(crate) children: Option<bool>,
    pub(crate) special_use: Option<SpecialUse>,
}

/// The names LIST (every folder) or LSUB (every subscribed name) may
/// show, in name order: those names, and each missing parent of one as
/// `\Noselect`, so that `%` finds `Parent` of `Parent/Child` and clients
/// can draw the tree.
pub(crate) fn listing(folders: &[FolderInfo], lsub: bool) -> Vec<Listed> {
    use std::collections::BTreeMap;
    // LIST shows folders; LSUB every subscribed name, made or not.
    let shown = |f: &&FolderInfo| if lsub { f.subscribed } else { f.exists };
    let mut names: BTreeMap<String, Listed> = BTreeMap::new();
    for folder in folders.iter().filter(shown) {
        names.insert(
            folder.name.clone(),
            Listed {
                name: folder.name.clone(),
                noselect: false,
                children: None,
                special_use: if lsub { None } else { folder.special_use },
            },
        );
    }
    let real: Vec<String> = names.keys().cloned().collect();
    for name in &real {
        let mut end = 0;
        while let Some(at) = name[end..].find(DELIMITER) {
            let parent = &name[..end + at];
            end += at + 1;
            if parent.is_empty() {
                continue;
            }
            names.entry(parent.to_owned()).or_insert_with(|| Listed {
                name: parent.to_owned(),
                noselect: true,
                children: None,
                special_use: None,
            });
        }
    }
    if !lsub {
        let all: Vec<String> = names.keys().cloned().collect();
        for entry in names.values_mut() {
            let prefix = format!("{}{DELIMITER}", entry.name);
            entry.children = Some(all.iter().any(|n| n.starts_with(&prefix)));
        }
    }
    names.into_values().collect()
}

/// The reference of a LIST, decoded from modified UTF-7 (as written in
/// IMAP4rev2, `utf8`).
pub(crate) fn reference_name(reference: &Mailbox<'_>, utf8: bool) -> Option<String> {
    match reference {
        Mailbox::Inbox => Some("INBOX".to_owned()),
        Mailbox::Other(other) => {
            let raw = std::str::from_utf8(other.as_ref()).ok()?;
            if utf8 { Some(raw.to_owned()) } else { utf7::decode(raw) }
        }
    }
}

/// A LIST pattern's text. One that is not modified UTF-7 matches as
/// written (it can only name folders nobody made), as Dovecot does; never
/// BAD. In IMAP4rev2 (`utf8`) the pattern is UTF-8 as written. `None`:
/// not UTF-8.
pub(crate) fn pattern_text(pattern: &[u8], utf8: bool) -> Option<String> {
    let pattern = std::str::from_utf8(pattern).ok()?;
    let decoded = if utf8 { None } else { utf7::decode(pattern) };
    Some(decoded.unwrap_or_else(|| pattern.to_owned()))
}

/// The hierarchy delimiter and root (RFC 3501 section 6.3.8), LIST's
/// answer to an empty pattern.
pub(crate) fn root() -> Response<'static> {
    Response::Data(Data::List {
        items: vec![FlagNameAttribute::Noselect],
        delimiter: QuotedChar::try_from(DELIMITER).ok(),
        mailbox: Mailbox::try_from("").unwrap_or(Mailbox::Inbox),
    })
}

/// Whether a folder name matches a LIST pattern (reference applied):
/// INBOX in any case.
pub(crate) fn name_matches(full: &[char], name: &str) -> bool {
    let chars: Vec<char> = name.chars().collect();
    if name == "INBOX" {
        let upper: Vec<char> = full.iter().map(char::to_ascii_uppercase).collect();
        wildcard(&upper, &chars)
    } else {
        wildcard(full, &chars)
    }
}

/// LIST attributes: `\Noselect`, children (RFC 3348) and special use
/// (RFC 6154).
fn attributes(entry: &Listed) -> Vec<FlagNameAttribute<'static>> {
    let mut items = Vec::new();
    if entry.noselect {
        items.push(FlagNameAttribute::Noselect);
    }
    let mut push = |name: &'static str| {
        if let Ok(atom) = Atom::try_from(name) {
            items.push(FlagNameAttribute::from(atom));
        }
    };
    match entry.children {
        Some(true) => push("HasChildren"),
        Some(false) => push("HasNoChildren"),
        None => {}
    }
    if let Some(special) = entry.special_use {
        push(match special {
            SpecialUse::Sent => "Sent",
            SpecialUse::Drafts => "Drafts",
            SpecialUse::Trash => "Trash",
            SpecialUse::Junk => "Junk",
            SpecialUse::Archive => "Archive",
        });
    }
    items
}

/// LIST pattern matching: `*` matches anything, `%` anything but the
/// delimiter. Dynamic programming, so no pattern can make it blow up.
pub(crate) fn wildcard(pattern: &[char], name: &[char]) -> bool {
    let n = name.len();
    let mut row = vec![false; n + 1];
    row[0] = true;
    let mut previous: Option<char> = None;
    for &p in pattern {
        if p == '*' && previous == Some('*') {
            continue;
        }
        previous = Some(p);
        let mut next = vec![false; n + 1];
        match p {
            '*' => {
                let mut any = false;
                for j in 0..=n {
                    any |= row[j];
                    next[j] = any;
                }
            }
            '%' => {
                for j in 0..=n {
                    next[j] = row[j] || (j > 0 && next[j - 1] && name[j - 1] != DELIMITER);
                }
            }
            c => {
                for j in 1..=n {
                    next[j] = row[j - 1] && name[j - 1] == c;
                }
            }
        }
        row = next;
    }
    row[n]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::session::tests::{logged_in, run};

    fn matches(pattern: &str, name: &str) -> bool {
        wildcard(&pattern.chars().collect::<Vec<_>>(), &name.chars().collect::<Vec<_>>())
    }

    #[test]
    fn wildcards() {
        assert!(matches("*", "a/b/c"));
        assert!(matches("%", "Sent"));
        assert!(!matches("%", "a/b"));
        assert!(matches("a/%", "a/b"));
        assert!(matches("a*c", "a/b/c"));
        assert!(!matches("a%c", "a/b/c"));
        assert!(matches("", ""));
        assert!(!matches("x", "xy"));
    }

    #[tokio::test]
    async fn list_select_status_append() {
        let (mut s, _) = logged_in().await;
        let list = run(&mut s, "a LIST \"\" \"*\"").await;
        assert!(list.contains("* LIST (\\HasNoChildren \\Sent) \"/\" Sent"), "{list}");
        assert!(list.contains("\\Trash) \"/\" Trash"), "{list}");
        let root = run(&mut s, "b LIST \"\" \"\"").await;
        assert!(root.starts_with("* LIST (\\Noselect) \"/\" \"\""), "{root}");
        assert!(run(&mut s, "c CREATE Projekte/Entw&APw-rfe").await.starts_with("c OK"));
        let list = run(&mut s, "d LIST \"\" \"Projekte/%\"").await;
        assert!(list.contains("\"/\" Projekte/Entw&APw-rfe"), "{list}");
        let append = run(&mut s, "e APPEND INBOX (\\Seen) {14+}\r\nSubject: x\r\n\r\n").await;
        assert!(append.starts_with("e OK [APPENDUID 1 1]"), "{append}");
        let status = run(&mut s, "f STATUS INBOX (MESSAGES UIDNEXT UNSEEN)").await;
        assert!(status.contains("* STATUS INBOX (MESSAGES 1 UIDNEXT 2 UNSEEN 0)"), "{status}");
        let select = run(&mut s, "g SELECT inbox").await;
        assert!(select.contains("* 1 EXISTS") && select.contains("g OK [READ-WRITE]"), "{select}");
        let failed = run(&mut s, "h SELECT Nope").await;
        assert!(failed.starts_with("* OK [CLOSED]") && failed.contains("h NO [NONEXISTENT]"));
        assert!(s.selected.is_none());
        assert!(run(&mut s, "i APPEND Nope {1+}\r\nx").await.starts_with("i NO [TRYCREATE]"));
    }

    fn info(name: &str, subscribed: bool) -> FolderInfo {
        let special_use = crate::backend::special_use(name);
        FolderInfo { name: name.into(), special_use, subscribed, exists: true }
    }

    #[test]
    fn listings_show_missing_parents_as_noselect() {
        // (folders with their subscription, lsub?, expected (name, noselect, children))
        type Case =
            (&'static [(&'static str, bool)], bool, &'static [(&'static str, bool, Option<bool>)]);
        let cases: &[Case] = &[
            (&[("INBOX", true)], false, &[("INBOX", false, Some(false))]),
            (
                &[("INBOX", true), ("Lone/Nested", false)],
                false,
                &[
                    ("INBOX", false, Some(false)),
                    ("Lone", true, Some(true)),
                    ("Lone/Nested", false, Some(false)),
                ],
            ),
            (
                &[("a/b/c", false), ("a", false)],
                false,
                &[
                    ("a", false, Some(true)),
                    ("a/b", true, Some(true)),
                    ("a/b/c", false, Some(false)),
                ],
            ),
            // LSUB: subscribed only, parents that are not subscribed are
            // \Noselect, and no child attributes.
            (
                &[("t", false), ("t/x", true), ("u", true)],
                true,
                &[("t", true, None), ("t/x", false, None), ("u", false, None)],
            ),
            (&[("t", true), ("t/x", false)], true, &[("t", false, None)]),
        ];
        for (folders, lsub, expected) in cases {
            let folders: Vec<FolderInfo> = folders.iter().map(|(n, s)| info(n, *s)).collect();
            let got: Vec<(String, bool, Option<bool>)> = listing(&folders, *lsub)
                .into_iter()
                .map(|l| (l.name, l.noselect, l.children))
                .collect();
            let expected: Vec<(String, bool, Option<bool>)> =
                expected.iter().map(|(n, x, c)| (n.to_string(), *x, *c)).collect();
            assert_eq!(got, expected, "{folders:?} lsub={lsub}");
        }
    }

    #[tokio::test]
    async fn create_does_not_subscribe_and_lsub_shows_parents() {
        let (mut s, _) = logged_in().await;
        assert!(run(&mut s, "a CREATE box/test3/").await.starts_with("a OK"));
        assert!(run(&mut s, "b CREATE box/test3/test3").await.starts_with("b OK"));
        assert!(run(&mut s, "c SUBSCRIBE box/test3/test3").await.starts_with("c OK"));
        let lsub = run(&mut s, "d LSUB \"\" box/%").await;
        assert_eq!(lsub, "* LSUB (\\Noselect) \"/\" box/test3\r\nd OK LSUB completed\r\n");
        run(&mut s, "e UNSUBSCRIBE box/test3/test3").await;
        let lsub = run(&mut s, "f LSUB \"\" box/%").await;
        assert_eq!(lsub, "f OK LSUB completed\r\n", "CREATE subscribed nothing");
        // The parent of a nested folder made alone is listed, \Noselect.
        assert!(run(&mut s, "g CREATE Lone/Nested").await.starts_with("g OK"));
        let list = run(&mut s, "h LIST \"\" Lone").await;
        assert!(list.starts_with("* LIST (\\Noselect \\HasChildren) \"/\" Lone\r\n"), "{list}");
        run(&mut s, "i DELETE box/test3").await;
        let list = run(&mut s, "j LIST \"\" box/%").await;
        assert!(
            list.starts_with("* LIST (\\Noselect \\HasChildren) \"/\" box/test3\r\n"),
            "{list}"
        );
    }

    #[tokio::test]
    async fn a_pattern_that_is_not_modified_utf7_matches_nothing_but_is_no_error() {
        let (mut s, _) = logged_in().await;
        let reply = run(&mut s, "a LIST \"\" \"!#$&'+,-.0123456789:;<=>?@^_`|[}%*\"").await;
        assert_eq!(reply, "a OK LIST completed\r\n");
    }

    #[tokio::test]
    async fn recent_is_seen_by_one_session_and_examine_takes_nothing() {
        let (mut s, backend) = logged_in().await;
        let account = s.account().unwrap();
        for n in 0..2 {
            let raw = format!("Subject: {n}\r\n\r\nbody\r\n");
            account.append("INBOX", bytes::Bytes::from(raw), vec![], None).await.unwrap();
        }
        let examine = run(&mut s, "a EXAMINE INBOX").await;
        assert!(examine.contains("* 2 RECENT\r\n"), "{examine}");
        let status = run(&mut s, "b STATUS INBOX (RECENT)").await;
        assert!(status.contains("(RECENT 2)"), "{status}");
        let select = run(&mut s, "c SELECT INBOX").await;
        assert!(select.contains("* 2 RECENT\r\n"), "{select}");
        let fetch = run(&mut s, "d FETCH 1 FLAGS").await;
        assert!(fetch.starts_with("* 1 FETCH (FLAGS (\\Recent))"), "{fetch}");
        assert_eq!(
            run(&mut s, "e SEARCH RECENT").await,
            "* SEARCH 1 2\r\ne OK SEARCH completed\r\n"
        );
        assert_eq!(run(&mut s, "f SEARCH NEW").await, "* SEARCH 1 2\r\nf OK SEARCH completed\r\n");
        assert_eq!(run(&mut s, "g SEARCH OLD").await, "* SEARCH\r\ng OK SEARCH completed\r\n");
        // A second session of the same user sees them, but not as recent.
        let (mut other, _) = crate::imap::session::tests::session_for(&s, &backend);
        run(&mut other, "a LOGIN alice@example.test alice-pw").await;
        let examine = run(&mut other, "b EXAMINE INBOX").await;
        assert!(examine.contains("* 2 EXISTS\r\n* 0 RECENT\r\n"), "{examine}");
        // A copy into the first session's folder is recent there, as the
        // read-only session takes nothing.
        let copied = run(&mut other, "c COPY 1 INBOX").await;
        assert!(copied.contains("c OK [COPYUID"), "{copied}");
        let noop = run(&mut s, "h NOOP").await;
        assert!(noop.contains("* 3 EXISTS\r\n* 3 RECENT\r\n"), "{noop}");
    }

    #[tokio::test]
    async fn a_folder_made_again_has_a_new_uid_validity() {
        let (mut s, _) = logged_in().await;
        run(&mut s, "a CREATE again").await;
        let first = run(&mut s, "b STATUS again (UIDVALIDITY)").await;
        run(&mut s, "c DELETE again").await;
        run(&mut s, "d CREATE again").await;
        let second = run(&mut s, "e STATUS again (UIDVALIDITY)").await;
        assert_ne!(first.lines().next(), second.lines().next());
    }
}
