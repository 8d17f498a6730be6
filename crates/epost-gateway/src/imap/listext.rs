//! LIST-EXTENDED (RFC 5258) with LIST-STATUS (RFC 5819) and SPECIAL-USE
//! (RFC 6154): the options a LIST may carry, read from the words
//! [`crate::imap::lift`] took out of the command, and the pure decision
//! of which names a LIST shows with which attributes and CHILDINFO.
//! [`crate::imap::mailbox`] turns the answer into responses.
//!
//! Selection options: SUBSCRIBED, REMOTE (we have no remote mailboxes:
//! ignored), RECURSIVEMATCH (only with SUBSCRIBED) and SPECIAL-USE.
//! Return options: SUBSCRIBED, CHILDREN, SPECIAL-USE and STATUS (...).
//! Anything else is BAD, as RFC 5258 section 3 asks.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use imap_codec::ResponseCodec;
use imap_codec::encode::Encoder;
use imap_codec::imap_types::core::{Atom, QuotedChar, Tag};
use imap_codec::imap_types::flag::FlagNameAttribute;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::imap_types::status::StatusDataItemName;

use crate::backend::{Account, FolderInfo, MailBackend, SpecialUse};
use crate::imap::mailbox::{name_matches, pattern_text, reference_name, root};
use crate::imap::session::{Done, Gone, Session, Sink, bad, mail_error, ok};

/// The hierarchy delimiter.
pub(crate) const DELIMITER: char = '/';

/// Most patterns one LIST may give (each is matched against every name).
pub(crate) const MAX_PATTERNS: usize = 64;

/// What an extended LIST asks for, beside its reference.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ListOptions {
    pub(crate) selection: Selection,
    pub(crate) returns: Returns,
    /// Every pattern, as the client wrote it (before modified UTF-7 is
    /// decoded); the codec read only the first.
    pub(crate) patterns: Vec<Vec<u8>>,
}

/// Which names are shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Selection {
    pub(crate) subscribed: bool,
    pub(crate) recursive_match: bool,
    pub(crate) special_use: bool,
}

/// What is said of each name shown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Returns {
    pub(crate) subscribed: bool,
    pub(crate) children: bool,
    pub(crate) special_use: bool,
    /// STATUS items to send after each selectable folder (RFC 5819).
    pub(crate) status: Option<Vec<StatusDataItemName>>,
}

/// Why the options are refused (the command is answered BAD).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ListError {
    #[error("unknown LIST selection option {0}")]
    Selection(String),
    #[error("RECURSIVEMATCH needs SUBSCRIBED")]
    RecursiveAlone,
    #[error("unknown LIST return option {0}")]
    Return(String),
    #[error("unknown STATUS item {0}")]
    StatusItem(String),
    #[error("STATUS needs a parenthesised list of items")]
    StatusList,
    #[error("a LIST needs at least one pattern")]
    NoPattern,
    #[error("a LIST may give at most {MAX_PATTERNS} patterns")]
    TooManyPatterns,
}

impl Selection {
    /// The selection options, as words.
    pub(crate) fn parse(words: &[&[u8]]) -> Result<Self, ListError> {
        let mut selection = Selection::default();
        for word in words {
            match word.to_ascii_uppercase().as_slice() {
                b"SUBSCRIBED" => selection.subscribed = true,
                b"REMOTE" => {}
                b"RECURSIVEMATCH" => selection.recursive_match = true,
                b"SPECIAL-USE" => selection.special_use = true,
                _ => return Err(ListError::Selection(String::from_utf8_lossy(word).into())),
            }
        }
        if selection.recursive_match && !selection.subscribed {
            return Err(ListError::RecursiveAlone);
        }
        Ok(selection)
    }
}

/// One item of a RETURN list: a word, or STATUS's list of items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReturnItem<'a> {
    Word(&'a [u8]),
    List(Vec<&'a [u8]>),
}

impl Returns {
    /// The return options, as words and lists.
    pub(crate) fn parse(items: &[ReturnItem<'_>]) -> Result<Self, ListError> {
        let mut returns = Returns::default();
        let mut items = items.iter();
        while let Some(item) = items.next() {
            let ReturnItem::Word(word) = item else { return Err(ListError::StatusList) };
            match word.to_ascii_uppercase().as_slice() {
                b"SUBSCRIBED" => returns.subscribed = true,
                b"CHILDREN" => returns.children = true,
                b"SPECIAL-USE" => returns.special_use = true,
                b"STATUS" => {
                    let Some(ReturnItem::List(names)) = items.next() else {
                        return Err(ListError::StatusList);
                    };
                    let mut parsed = Vec::with_capacity(names.len());
                    for name in names {
                        parsed.push(status_item(name)?);
                    }
                    returns.status = Some(parsed);
                }
                _ => return Err(ListError::Return(String::from_utf8_lossy(word).into())),
            }
        }
        Ok(returns)
    }
}

/// A STATUS item name (RFC 3501, 7162 and 8438).
fn status_item(name: &[u8]) -> Result<StatusDataItemName, ListError> {
    Ok(match name.to_ascii_uppercase().as_slice() {
        b"MESSAGES" => StatusDataItemName::Messages,
        b"RECENT" => StatusDataItemName::Recent,
        b"UIDNEXT" => StatusDataItemName::UidNext,
        b"UIDVALIDITY" => StatusDataItemName::UidValidity,
        b"UNSEEN" => StatusDataItemName::Unseen,
        b"DELETED" => StatusDataItemName::Deleted,
        b"DELETED-STORAGE" => StatusDataItemName::DeletedStorage,
        b"HIGHESTMODSEQ" => StatusDataItemName::HighestModSeq,
        b"SIZE" => StatusDataItemName::Size,
        _ => return Err(ListError::StatusItem(String::from_utf8_lossy(name).into())),
    })
}

/// One name an extended LIST shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shown {
    pub(crate) name: String,
    /// No folder has the name (a subscription, or the parent of a
    /// folder): `\NonExistent`, which implies `\Noselect`.
    pub(crate) nonexistent: bool,
    /// `\Subscribed`, when the selection or the return options ask.
    pub(crate) subscribed: bool,
    /// `\HasChildren` or `\HasNoChildren`, among existing folders.
    pub(crate) children: bool,
    pub(crate) special_use: Option<SpecialUse>,
    /// CHILDINFO ("SUBSCRIBED"): a subscribed descendant that no pattern
    /// matches (RECURSIVEMATCH).
    pub(crate) child_subscribed: bool,
}

/// What an extended LIST shows, in name order. `matches` says whether a
/// name matches any of the patterns (reference applied).
pub(crate) fn select(
    names: &[FolderInfo],
    options: &ListOptions,
    matches: &dyn Fn(&str) -> bool,
) -> Vec<Shown> {
    let selection = options.selection;
    let exists: BTreeSet<&str> =
        names.iter().filter(|f| f.exists).map(|f| f.name.as_str()).collect();
    let subscribed: BTreeSet<&str> =
        names.iter().filter(|f| f.subscribed).map(|f| f.name.as_str()).collect();
    let special: BTreeMap<&str, SpecialUse> =
        names.iter().filter_map(|f| f.special_use.map(|s| (f.name.as_str(), s))).collect();
    // What a plain selection shows: the folders and their missing
    // parents (so that clients can draw the tree).
    let mut tree: BTreeSet<&str> = BTreeSet::new();
    for name in &exists {
        tree.insert(name);
        tree.extend(parents(name));
    }
    // Every name a LIST may show: those, subscriptions and their parents.
    let mut every: BTreeSet<&str> = tree.clone();
    for name in &subscribed {
        every.insert(name);
        every.extend(parents(name));
    }
    // Children count existing folders only.
    let has_children = |name: &str| {
        let prefix = format!("{name}{DELIMITER}");
        exists.iter().any(|n| n.starts_with(&prefix))
    };
    let chosen = |name: &str| {
        if selection.subscribed {
            subscribed.contains(name) && (!selection.special_use || special.contains_key(name))
        } else if selection.special_use {
            special.contains_key(name)
        } else {
            tree.contains(name)
        }
    };
    let mut shown = Vec::new();
    for name in every {
        if !matches(name) {
            continue;
        }
        let is_chosen = chosen(name);
        let child_subscribed = selection.recursive_match && {
            let prefix = format!("{name}{DELIMITER}");
            subscribed.iter().any(|n| n.starts_with(&prefix) && !matches(n))
        };
        if !is_chosen && !child_subscribed {
            continue;
        }
        shown.push(Shown {
            name: name.to_owned(),
            nonexistent: !exists.contains(name),
            subscribed: subscribed.contains(name)
                && (selection.subscribed || options.returns.subscribed),
            children: has_children(name),
            special_use: special.get(name).copied(),
            child_subscribed,
        });
    }
    shown
}

impl<B: MailBackend> Session<B> {
    /// An extended LIST: `options` lifted out of it, `reference` as the
    /// codec read it.
    pub(crate) async fn list_extended<O: Sink>(
        &mut self,
        tag: Tag<'static>,
        reference: &Mailbox<'static>,
        options: ListOptions,
        out: &mut O,
    ) -> Result<Done, Gone> {
        let Some(account) = self.account() else {
            return Ok(Done::now(bad(&tag, "log in first")));
        };
        let utf8 = self.enabled.imap4rev2;
        let Some(reference) = reference_name(reference, utf8) else {
            return Ok(Done::now(bad(&tag, "bad reference name")));
        };
        let mut patterns = Vec::with_capacity(options.patterns.len());
        for pattern in &options.patterns {
            let Some(text) = pattern_text(pattern, utf8) else {
                return Ok(Done::now(bad(&tag, "bad mailbox pattern")));
            };
            patterns.push(text);
        }
        // `LIST "" ""` keeps its meaning when nothing is selected.
        if options.selection == Selection::default() && patterns.iter().all(String::is_empty) {
            out.send(root()).await?;
            return Ok(Done::now(ok(&tag, None, "LIST completed")));
        }
        let names = match account.folders().await {
            Ok(names) => names,
            Err(error) => return Ok(Done::now(mail_error(&tag, &error))),
        };
        let full: Vec<Vec<char>> = patterns
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| format!("{reference}{p}").chars().collect())
            .collect();
        let matches = |name: &str| full.iter().any(|p| name_matches(p, name));
        let shown = select(&names, &options, &matches);
        let status = options.returns.status.as_deref();
        if status.is_some_and(|s| s.contains(&StatusDataItemName::HighestModSeq)) {
            self.condstore_on(out).await?;
        }
        for entry in shown {
            let Some(name) = self.mailbox_name(&entry.name) else { continue };
            out.send_encoded(list_line(&entry, name.clone())).await?;
            // LIST-STATUS: a STATUS for each selectable folder; one that
            // cannot be read now is left out (RFC 5819 section 2).
            if let Some(items) = status
                && !entry.nonexistent
                && let Ok(items) = self.status_items(&account, &entry.name, items).await
            {
                let data = Data::Status { mailbox: name, items: Cow::Owned(items) };
                out.send(Response::Data(data)).await?;
            }
        }
        Ok(Done::now(ok(&tag, None, "LIST completed")))
    }
}

/// The LIST response for one name, CHILDINFO included (which imap-types
/// cannot write: it is added to the codec's line).
fn list_line(entry: &Shown, name: Mailbox<'static>) -> Vec<u8> {
    let mut items = Vec::new();
    let mut push = |attribute: &'static str| {
        if let Ok(atom) = Atom::try_from(attribute) {
            items.push(FlagNameAttribute::from(atom));
        }
    };
    if entry.nonexistent {
        push("NonExistent");
    }
    if entry.subscribed {
        push("Subscribed");
    }
    push(if entry.children { "HasChildren" } else { "HasNoChildren" });
    if let Some(special) = entry.special_use {
        push(match special {
            SpecialUse::Sent => "Sent",
            SpecialUse::Drafts => "Drafts",
            SpecialUse::Trash => "Trash",
            SpecialUse::Junk => "Junk",
            SpecialUse::Archive => "Archive",
        });
    }
    let data = Data::List { items, delimiter: QuotedChar::try_from(DELIMITER).ok(), mailbox: name };
    let mut line = ResponseCodec::default().encode(&Response::Data(data)).dump();
    if entry.child_subscribed && line.ends_with(b"\r\n") {
        line.truncate(line.len() - 2);
        line.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n");
    }
    line
}

/// The parents of a name, nearest last (`a` and `a/b` of `a/b/c`).
fn parents(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices(DELIMITER).map(|(at, _)| &name[..at]).filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<&[u8]> {
        line.split_whitespace().map(str::as_bytes).collect()
    }

    #[test]
    fn selection_options() {
        let cases: &[(&str, Result<Selection, ListError>)] = &[
            ("", Ok(Selection::default())),
            ("remote", Ok(Selection::default())),
            ("SUBSCRIBED", Ok(Selection { subscribed: true, ..Default::default() })),
            (
                "subscribed RecursiveMatch remote",
                Ok(Selection { subscribed: true, recursive_match: true, special_use: false }),
            ),
            ("special-use", Ok(Selection { special_use: true, ..Default::default() })),
            ("recursivematch", Err(ListError::RecursiveAlone)),
            ("recursivematch remote", Err(ListError::RecursiveAlone)),
            ("recursivematch special-use", Err(ListError::RecursiveAlone)),
            ("imaptest", Err(ListError::Selection("imaptest".into()))),
        ];
        for (line, want) in cases {
            assert_eq!(&Selection::parse(&words(line)), want, "{line:?}");
        }
    }

    #[test]
    fn return_options() {
        use ReturnItem::{List, Word};
        let status = [b"MESSAGES".as_slice(), b"unseen"];
        let got = Returns::parse(&[Word(b"children"), Word(b"STATUS"), List(status.to_vec())]);
        assert_eq!(
            got,
            Ok(Returns {
                children: true,
                status: Some(vec![StatusDataItemName::Messages, StatusDataItemName::Unseen]),
                ..Default::default()
            })
        );
        let got = Returns::parse(&[Word(b"subscribed"), Word(b"Special-Use")]);
        assert_eq!(got, Ok(Returns { subscribed: true, special_use: true, ..Default::default() }));
        assert_eq!(Returns::parse(&[]), Ok(Returns::default()));
        assert_eq!(Returns::parse(&[Word(b"imaptest")]), Err(ListError::Return("imaptest".into())));
        assert_eq!(Returns::parse(&[Word(b"STATUS")]), Err(ListError::StatusList));
        assert_eq!(
            Returns::parse(&[Word(b"STATUS"), Word(b"MESSAGES")]),
            Err(ListError::StatusList)
        );
        assert_eq!(
            Returns::parse(&[Word(b"STATUS"), List(vec![b"BOGUS"])]),
            Err(ListError::StatusItem("BOGUS".into()))
        );
        assert_eq!(Returns::parse(&[List(vec![])]), Err(ListError::StatusList));
    }

    fn folder(name: &str, subscribed: bool, exists: bool) -> FolderInfo {
        FolderInfo {
            name: name.into(),
            special_use: if exists { crate::backend::special_use(name) } else { None },
            subscribed,
            exists,
        }
    }

    /// The folders of imaptest's `listext` script: `t/test6` deleted
    /// while subscribed.
    fn tree() -> Vec<FolderInfo> {
        [
            ("t", false, true),
            ("t/test1", true, true),
            ("t/test2", false, true),
            ("t/test2/test1", true, true),
            ("t/test3", false, true),
            ("t/test4/test5", false, true),
            ("t/test4/test52", false, true),
            ("t/test6", true, false),
            ("t/test7/test7", true, true),
            ("t/test8/test8", true, true),
            ("t/test8/test9", true, true),
            ("Sent", true, true),
        ]
        .iter()
        .map(|(n, s, e)| folder(n, *s, *e))
        .collect()
    }

    /// (name, \NonExistent, \Subscribed, \HasChildren, CHILDINFO)
    type Row = (&'static str, bool, bool, bool, bool);

    fn selected(selection: &str, returns: Returns, patterns: &[&str]) -> Vec<Row> {
        let options = ListOptions {
            selection: Selection::parse(&words(selection)).unwrap(),
            returns,
            patterns: Vec::new(),
        };
        let patterns: Vec<Vec<char>> = patterns.iter().map(|p| p.chars().collect()).collect();
        let matches = |name: &str| {
            let name: Vec<char> = name.chars().collect();
            patterns.iter().any(|p| crate::imap::mailbox::wildcard(p, &name))
        };
        select(&tree(), &options, &matches)
            .into_iter()
            .map(|s| {
                let name: &'static str = Box::leak(s.name.into_boxed_str());
                (name, s.nonexistent, s.subscribed, s.children, s.child_subscribed)
            })
            .collect()
    }

    #[test]
    fn what_an_extended_list_shows() {
        let plain = Returns::default();
        let subscribed = Returns { subscribed: true, ..Default::default() };
        let cases: Vec<(&str, Returns, Vec<&str>, Vec<Row>)> = vec![
            // Several patterns; no subscriptions of names no folder has.
            (
                "",
                plain.clone(),
                vec!["t/*2", "t/test3"],
                vec![
                    ("t/test2", false, false, true, false),
                    ("t/test3", false, false, false, false),
                    ("t/test4/test52", false, false, false, false),
                ],
            ),
            // SUBSCRIBED: subscribed names, made or not.
            (
                "subscribed",
                plain.clone(),
                vec!["t/*"],
                vec![
                    ("t/test1", false, true, false, false),
                    ("t/test2/test1", false, true, false, false),
                    ("t/test6", true, true, false, false),
                    ("t/test7/test7", false, true, false, false),
                    ("t/test8/test8", false, true, false, false),
                    ("t/test8/test9", false, true, false, false),
                ],
            ),
            // RECURSIVEMATCH: a parent for a subscribed child no pattern
            // matches.
            (
                "subscribed recursivematch",
                plain.clone(),
                vec!["t/test2%"],
                vec![("t/test2", false, false, true, true)],
            ),
            (
                "subscribed recursivematch",
                plain.clone(),
                vec!["t*test7"],
                vec![("t/test7/test7", false, true, false, false)],
            ),
            (
                "subscribed recursivematch",
                plain.clone(),
                vec!["t*test8"],
                vec![
                    ("t/test8", true, false, true, true),
                    ("t/test8/test8", false, true, false, false),
                ],
            ),
            (
                "subscribed recursivematch",
                plain.clone(),
                vec!["t/test2", "t/test2/test1"],
                vec![("t/test2/test1", false, true, false, false)],
            ),
            // Plain selection with RETURN (SUBSCRIBED): missing parents
            // are shown, \NonExistent.
            (
                "",
                subscribed,
                vec!["t/%"],
                vec![
                    ("t/test1", false, true, false, false),
                    ("t/test2", false, false, true, false),
                    ("t/test3", false, false, false, false),
                    ("t/test4", true, false, true, false),
                    ("t/test7", true, false, true, false),
                    ("t/test8", true, false, true, false),
                ],
            ),
            ("special-use", plain, vec!["*"], vec![("Sent", false, false, false, false)]),
        ];
        for (selection, returns, patterns, want) in cases {
            assert_eq!(selected(selection, returns, &patterns), want, "{selection} {patterns:?}");
        }
    }

    use crate::imap::session::tests::{logged_in, run};

    /// The folders and subscriptions of imaptest's `listext` script.
    async fn script() -> crate::imap::session::Session<crate::memory::MemoryBackend> {
        let (mut s, _) = logged_in().await;
        for name in [
            "t/",
            "t/test1",
            "t/test2/",
            "t/test2/test1",
            "t/test3",
            "t/test4/test5",
            "t/test4/test52",
            "t/test6",
            "t/test7/test7",
            "t/test8/test8",
            "t/test8/test9",
        ] {
            assert!(run(&mut s, &format!("c CREATE {name}")).await.starts_with("c OK"));
        }
        for name in ["test1", "test2/test1", "test6", "test7/test7", "test8/test8", "test8/test9"] {
            assert!(run(&mut s, &format!("s SUBSCRIBE t/{name}")).await.starts_with("s OK"));
        }
        assert!(run(&mut s, "d DELETE t/test6").await.starts_with("d OK"));
        s
    }

    #[tokio::test]
    async fn the_listext_script() {
        let mut s = script().await;
        let reply = run(&mut s, "a LIST \"\" (t/*2 t/test3)").await;
        assert_eq!(
            reply,
            "* LIST (\\HasChildren) \"/\" t/test2\r\n\
             * LIST (\\HasNoChildren) \"/\" t/test3\r\n\
             * LIST (\\HasNoChildren) \"/\" t/test4/test52\r\n\
             a OK LIST completed\r\n"
        );
        let reply = run(&mut s, "b LIST (remote) \"\" %").await;
        assert!(reply.contains("\"/\" INBOX\r\n") && reply.ends_with("b OK LIST completed\r\n"));
        let reply = run(&mut s, "c LIST (subscribed) \"\" t/*").await;
        assert_eq!(
            reply,
            "* LIST (\\Subscribed \\HasNoChildren) \"/\" t/test1\r\n\
             * LIST (\\Subscribed \\HasNoChildren) \"/\" t/test2/test1\r\n\
             * LIST (\\NonExistent \\Subscribed \\HasNoChildren) \"/\" t/test6\r\n\
             * LIST (\\Subscribed \\HasNoChildren) \"/\" t/test7/test7\r\n\
             * LIST (\\Subscribed \\HasNoChildren) \"/\" t/test8/test8\r\n\
             * LIST (\\Subscribed \\HasNoChildren) \"/\" t/test8/test9\r\n\
             c OK LIST completed\r\n"
        );
        let reply =
            run(&mut s, "d LIST (subscribed recursivematch) \"\" t/test2% RETURN (children)").await;
        assert_eq!(
            reply,
            "* LIST (\\HasChildren) \"/\" t/test2 (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n\
             d OK LIST completed\r\n"
        );
        let reply = run(&mut s, "e LIST \"\" t/% RETURN (CHILDREN SUBSCRIBED)").await;
        assert!(
            reply.contains("* LIST (\\Subscribed \\HasNoChildren) \"/\" t/test1\r\n"),
            "{reply}"
        );
        assert!(
            reply.contains("* LIST (\\NonExistent \\HasChildren) \"/\" t/test4\r\n"),
            "{reply}"
        );
        assert!(!reply.contains("t/test6"), "{reply}");
        let reply = run(&mut s, "f LIST (subscribed recursivematch) \"\" t*test7").await;
        assert_eq!(
            reply,
            "* LIST (\\Subscribed \\HasNoChildren) \"/\" t/test7/test7\r\nf OK LIST completed\r\n"
        );
        let reply = run(&mut s, "g LIST (subscribed recursivematch) \"\" t*test8").await;
        assert!(reply.starts_with(
            "* LIST (\\NonExistent \\HasChildren) \"/\" t/test8 (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"
        ), "{reply}");
        let reply =
            run(&mut s, "h LIST (subscribed recursivematch) \"\" (t/test2 t/test2/test1)").await;
        assert_eq!(
            reply,
            "* LIST (\\Subscribed \\HasNoChildren) \"/\" t/test2/test1\r\nh OK LIST completed\r\n"
        );
        let reply = run(&mut s, "i LIST \"\" (\"\")").await;
        assert_eq!(reply, "* LIST (\\Noselect) \"/\" \"\"\r\ni OK LIST completed\r\n");
    }

    #[tokio::test]
    async fn subscriptions_outlive_their_folder_and_lsub_shows_them() {
        let mut s = script().await;
        let lsub = run(&mut s, "a LSUB \"\" t/test6").await;
        assert_eq!(lsub, "* LSUB () \"/\" t/test6\r\na OK LSUB completed\r\n");
        // Made again, it is subscribed still; plain LIST shows folders only.
        assert!(run(&mut s, "b LIST \"\" t/test6").await.starts_with("b OK"));
        run(&mut s, "c CREATE t/test6").await;
        let list = run(&mut s, "d LIST \"\" t/test6 RETURN (SUBSCRIBED)").await;
        assert!(
            list.starts_with("* LIST (\\Subscribed \\HasNoChildren) \"/\" t/test6\r\n"),
            "{list}"
        );
        // A name never made can be subscribed and unsubscribed.
        run(&mut s, "e SUBSCRIBE never/made").await;
        let list = run(&mut s, "f LIST (SUBSCRIBED) \"\" never*").await;
        assert!(list.starts_with("* LIST (\\NonExistent \\Subscribed"), "{list}");
        run(&mut s, "g UNSUBSCRIBE never/made").await;
        assert_eq!(run(&mut s, "h LIST (SUBSCRIBED) \"\" never*").await, "h OK LIST completed\r\n");
    }

    #[tokio::test]
    async fn list_status_and_special_use() {
        let (mut s, _) = logged_in().await;
        let account = s.account().unwrap();
        account
            .append("INBOX", bytes::Bytes::from_static(b"Subject: x\r\n\r\n"), vec![], None)
            .await
            .unwrap();
        let reply = run(&mut s, "a LIST \"\" (INBOX Sent) RETURN (STATUS (MESSAGES UNSEEN))").await;
        assert_eq!(
            reply,
            "* LIST (\\HasNoChildren) \"/\" INBOX\r\n\
             * STATUS INBOX (MESSAGES 1 UNSEEN 1)\r\n\
             * LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n\
             * STATUS Sent (MESSAGES 0 UNSEEN 0)\r\n\
             a OK LIST completed\r\n"
        );
        // No STATUS for a name that is no folder.
        run(&mut s, "b CREATE p/c").await;
        let reply = run(&mut s, "c LIST \"\" p RETURN (STATUS (MESSAGES))").await;
        assert_eq!(
            reply,
            "* LIST (\\NonExistent \\HasChildren) \"/\" p\r\nc OK LIST completed\r\n"
        );
        let reply = run(&mut s, "d LIST (SPECIAL-USE) \"\" * RETURN (SPECIAL-USE)").await;
        let lines: Vec<&str> = reply.lines().collect();
        assert_eq!(lines.len(), 6, "{reply}");
        assert!(lines[..5].iter().all(|l| l.contains("\\Sent")
            || l.contains("\\Trash")
            || l.contains("\\Drafts")
            || l.contains("\\Junk")
            || l.contains("\\Archive")));
        let reply = run(&mut s, "e LIST \"\" INBOX RETURN (STATUS (HIGHESTMODSEQ))").await;
        assert!(reply.contains("* STATUS INBOX (HIGHESTMODSEQ "), "{reply}");
    }
}
