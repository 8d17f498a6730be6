//! Folder commands: SELECT/EXAMINE (with CONDSTORE and QRESYNC, whose
//! resync is in [`crate::imap::qresync`]), CLOSE, CREATE, DELETE, RENAME,
//! SUBSCRIBE/UNSUBSCRIBE, LIST/LSUB (with SPECIAL-USE attributes) and
//! STATUS.

use std::borrow::Cow;

use imap_codec::imap_types::command::SelectParameter;
use imap_codec::imap_types::core::{Atom, QuotedChar, Tag};
use imap_codec::imap_types::flag::{Flag, FlagNameAttribute, FlagPerm};
use imap_codec::imap_types::mailbox::{ListMailbox, Mailbox};
use imap_codec::imap_types::response::{Code, Data, Response, StatusKind};
use imap_codec::imap_types::status::{StatusDataItem, StatusDataItemName};

use epost_types::mailbox::MailError;

use crate::backend::{Account, FolderInfo, MailBackend, SpecialUse};
use crate::imap::condstore::modseq;
use crate::imap::qresync::SelectOptions;
use crate::imap::session::{
    Done, Gone, Selected, Session, Sink, bad, folder_name, has_flag, mail_error, mailbox, no,
    nonzero, ok, untagged,
};
use crate::imap::utf7;

/// The hierarchy delimiter.
const DELIMITER: char = '/';

/// The system flags every folder keeps.
fn system_flags() -> Vec<Flag<'static>> {
    vec![Flag::Answered, Flag::Flagged, Flag::Deleted, Flag::Seen, Flag::Draft]
}

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
        let (Some(account), Some(name)) = (self.account(), folder_name(requested)) else {
            return Ok(Done::now(no(&tag, None, "no such mailbox")));
        };
        let snapshot = match account.snapshot(&name).await {
            Ok(snapshot) => snapshot,
            Err(error) => return Ok(Done::now(mail_error(&tag, &error))),
        };
        out.send(Response::Data(Data::Flags(system_flags()))).await?;
        out.send(Response::Data(Data::Exists(snapshot.messages.len() as u32))).await?;
        out.send(Response::Data(Data::Recent(0))).await?;
        if let Some(first) = snapshot.messages.iter().position(|m| !has_flag(&m.flags, "\\Seen")) {
            let code = Code::Unseen(nonzero(first as u32 + 1));
            out.send(untagged(StatusKind::Ok, Some(code), "first unseen")).await?;
        }
        let mut permanent: Vec<FlagPerm<'static>> =
            system_flags().into_iter().map(FlagPerm::Flag).collect();
        permanent.push(FlagPerm::Asterisk);
        if read_only {
            permanent.clear();
        }
        let codes = [
            (Code::PermanentFlags(permanent), "flags that stay"),
            (Code::UidValidity(nonzero(snapshot.uid_validity)), "UIDs valid"),
            (Code::UidNext(nonzero(snapshot.uid_next)), "predicted next UID"),
            (Code::HighestModSeq(modseq(snapshot.highest_modseq)), "highest"),
        ];
        for (code, message) in codes {
            out.send(untagged(StatusKind::Ok, Some(code), message)).await?;
        }
        self.selected = Some(Selected {
            name,
            read_only,
            uid_validity: snapshot.uid_validity,
            uid_next: snapshot.uid_next,
            highest_modseq: snapshot.highest_modseq,
            messages: snapshot.messages,
        });
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
        let (Some(account), Some(name)) = (self.account(), folder_name(requested)) else {
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
        match account.create(name).await {
            Ok(()) => Done::now(ok(&tag, None, "CREATE completed")),
            Err(error) => Done::now(mail_error(&tag, &error)),
        }
    }

    pub(crate) async fn delete(&mut self, tag: Tag<'static>, requested: &Mailbox<'static>) -> Done {
        let (Some(account), Some(name)) = (self.account(), folder_name(requested)) else {
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
            (self.account(), folder_name(from), folder_name(to))
        else {
            return Done::now(no(&tag, None, "bad mailbox name"));
        };
        match account.rename(&from, &to).await {
            Ok(()) => Done::now(ok(&tag, None, "RENAME completed")),
            Err(error) => Done::now(mail_error(&tag, &error)),
        }
    }

    pub(crate) async fn subscribe(
        &mut self,
        tag: Tag<'static>,
        requested: &Mailbox<'static>,
        subscribed: bool,
    ) -> Done {
        let (Some(account), Some(name)) = (self.account(), folder_name(requested)) else {
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
        let Some(account) = self.account() else {
            return Ok(Done::now(bad(&tag, "log in first")));
        };
        let reference = match reference {
            Mailbox::Inbox => "INBOX".to_owned(),
            Mailbox::Other(other) => {
                match std::str::from_utf8(other.as_ref()).ok().and_then(utf7::decode) {
                    Some(reference) => reference,
                    None => return Ok(Done::now(bad(&tag, "bad reference name"))),
                }
            }
        };
        let pattern = match pattern {
            ListMailbox::Token(token) => std::str::from_utf8(token.as_ref()).ok(),
            ListMailbox::String(string) => std::str::from_utf8(string.as_ref()).ok(),
        };
        let Some(pattern) = pattern.and_then(utf7::decode) else {
            return Ok(Done::now(bad(&tag, "bad mailbox pattern")));
        };
        let verb = if lsub { "LSUB" } else { "LIST" };
        if pattern.is_empty() && !lsub {
            // The hierarchy delimiter and root (RFC 3501 section 6.3.8).
            if let Ok(root) = Mailbox::try_from("") {
                let data = Data::List {
                    items: vec![FlagNameAttribute::Noselect],
                    delimiter: QuotedChar::try_from(DELIMITER).ok(),
                    mailbox: root,
                };
                out.send(Response::Data(data)).await?;
            }
            return Ok(Done::now(ok(&tag, None, "LIST completed")));
        }
        let folders = match account.folders().await {
            Ok(folders) => folders,
            Err(error) => return Ok(Done::now(mail_error(&tag, &error))),
        };
        let full: Vec<char> = format!("{reference}{pattern}").chars().collect();
        for folder in &folders {
            if lsub && !folder.subscribed {
                continue;
            }
            let name: Vec<char> = folder.name.chars().collect();
            let matched = if folder.name == "INBOX" {
                let upper: Vec<char> = full.iter().map(char::to_ascii_uppercase).collect();
                wildcard(&upper, &name)
            } else {
                wildcard(&full, &name)
            };
            if !matched {
                continue;
            }
            let Some(mailbox) = mailbox(&folder.name) else { continue };
            let items = attributes(folder, &folders);
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
        let (Some(account), Some(name)) = (self.account(), folder_name(requested)) else {
            return Ok(Done::now(no(&tag, None, "no such mailbox")));
        };
        let snapshot = match account.snapshot(&name).await {
            Ok(snapshot) => snapshot,
            Err(error) => return Ok(Done::now(mail_error(&tag, &error))),
        };
        if names.contains(&StatusDataItemName::HighestModSeq) {
            self.condstore_on(out).await?;
        }
        let count =
            |flag: &str| snapshot.messages.iter().filter(|m| has_flag(&m.flags, flag)).count();
        let mut items = Vec::new();
        for item in names {
            items.push(match item {
                StatusDataItemName::Messages => {
                    StatusDataItem::Messages(snapshot.messages.len() as u32)
                }
                StatusDataItemName::Recent => StatusDataItem::Recent(0),
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
            });
        }
        out.send(Response::Data(Data::Status {
            mailbox: requested.clone(),
            items: Cow::Owned(items),
        }))
        .await?;
        Ok(Done::now(ok(&tag, None, "STATUS completed")))
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

/// LIST attributes: special use (RFC 6154) and children (RFC 3348).
fn attributes(folder: &FolderInfo, all: &[FolderInfo]) -> Vec<FlagNameAttribute<'static>> {
    let mut items = Vec::new();
    let prefix = format!("{}{DELIMITER}", folder.name);
    let children = all.iter().any(|f| f.name.starts_with(&prefix));
    let mut push = |name: &'static str| {
        if let Ok(atom) = Atom::try_from(name) {
            items.push(FlagNameAttribute::from(atom));
        }
    };
    push(if children { "HasChildren" } else { "HasNoChildren" });
    if let Some(special) = folder.special_use {
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
}
