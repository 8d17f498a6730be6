//! A user's mail as the replay of their mail log: folders, UIDs, flags
//! and MODSEQs. Pure and deterministic, so every node that reads the log
//! agrees.
//!
//! A message's MODSEQ (IMAP CONDSTORE's mod-sequence) is the position in
//! the log of the last operation that changed it: [`modseq`] of the
//! entry's number and the operation's index in it. So it is the same on
//! every node and after every restart, whichever checkpoint the replay
//! started from, and it only grows. A folder's HIGHESTMODSEQ is the
//! position of the last operation that changed any of its messages
//! (including taking one out), or that made it.
//!
//! Subscriptions are a set of names beside the folders (IMAP's
//! subscription list): a folder made is subscribed, one deleted or renamed
//! away loses its subscription, as they always did; a
//! [`MailOp::Subscription`] subscribes any name, made or not, and the
//! writer logs one after a DELETE to keep a subscribed name subscribed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use epost_types::id::ObjectId;
use epost_types::mail::{FlagChange, MailOp, MessageRef};
use epost_types::mailbox::Vanished;

use super::expunged::Expunged;

/// Subscribed names no folder has, at most (each is at most a folder
/// name long): a subscription past that is refused.
pub const MAX_SUBSCRIBED_NAMES: usize = 1024;

/// The standard folders (subscribed, as every folder made is).
pub const STANDARD: [&str; 6] = ["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"];

/// Bits of a MODSEQ that number the operation within its entry (an
/// entry of at most 64 KiB holds far fewer than 2^16 operations).
const OP_BITS: u32 = 16;
/// The largest operation index a MODSEQ tells apart.
const OP_MAX: u64 = (1 << OP_BITS) - 2;

/// The MODSEQ of the operation at `index` (from 0) of mail log data entry
/// number `entry` (from 1, as [`MailState::entries`] counts them).
pub fn modseq(entry: u64, index: usize) -> u64 {
    (entry << OP_BITS) | ((index as u64).min(OP_MAX) + 1)
}

/// A MODSEQ at least that of every operation in the first `entries`
/// entries, and below that of any operation after them: what a state
/// restored without MODSEQs (a version 1 checkpoint) gives what it holds.
pub fn modseq_bound(entries: u64) -> u64 {
    ((entries + 1) << OP_BITS) - 1
}

/// One message in a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub message: MessageRef,
    pub flags: Vec<String>,
    /// The position of the last operation that put it here or changed
    /// its flags.
    pub modseq: u64,
}

/// One folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    pub uid_validity: u32,
    pub uid_next: u32,
    pub messages: BTreeMap<u32, Stored>,
    /// The position of the last operation that made the folder or
    /// changed what it holds.
    pub highest_modseq: u64,
    /// Its recent expunges.
    pub expunged: Expunged,
}

impl Folder {
    fn new(uid_validity: u32, at: u64) -> Self {
        Self {
            uid_validity,
            uid_next: 1,
            messages: BTreeMap::new(),
            highest_modseq: at,
            expunged: Expunged::default(),
        }
    }

    /// The UIDs expunged after MODSEQ `since` (a superset when that is
    /// further back than the folder remembers).
    pub fn vanished_since(&self, since: u64) -> Vanished {
        self.expunged.since(since, self.uid_next, self.messages.keys().copied())
    }

    /// Takes out `uids` (those it holds) as the operation at `at` does.
    fn remove(&mut self, uids: &[u32], at: u64) -> Vec<(u32, Stored)> {
        let gone: Vec<(u32, Stored)> =
            uids.iter().filter_map(|uid| self.messages.remove(uid).map(|s| (*uid, s))).collect();
        if !gone.is_empty() {
            let removed: Vec<u32> = gone.iter().map(|(uid, _)| *uid).collect();
            self.expunged.record(at, &removed);
            self.highest_modseq = self.highest_modseq.max(at);
        }
        gone
    }

    /// Puts `stored` in at the next UID, as the operation at `at` does.
    fn put(&mut self, mut stored: Stored, at: u64) -> u32 {
        let uid = self.uid_next;
        self.uid_next += 1;
        stored.modseq = at;
        self.messages.insert(uid, stored);
        self.highest_modseq = self.highest_modseq.max(at);
        uid
    }
}

/// Why an operation cannot apply to the current state (the writer checks
/// before it appends; replay skips such an operation, as the writer would
/// never have written it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    #[error("no folder named {0:?}")]
    NoFolder(String),
    #[error("a folder named {0:?} already exists")]
    Exists(String),
    #[error("{0}")]
    NotAllowed(String),
}

/// The replayed state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailState {
    pub folders: BTreeMap<String, Folder>,
    /// The subscribed names: folders' and names no folder has.
    pub subscriptions: BTreeSet<String>,
    /// Notifications already turned into messages, with when they were
    /// (the message's internal date, ms).
    pub delivered: HashMap<Vec<u8>, u64>,
    /// Entries applied so far (0: an empty log).
    pub entries: u64,
    /// How many folder entries name each message manifest: what the lease
    /// book holds for this user is exactly the manifests counted here.
    refs: HashMap<ObjectId, u32>,
    /// The largest UIDVALIDITY any folder has had in this replay (deleted
    /// ones included): the writer gives a new folder a larger one, so a
    /// folder deleted and made again never reuses it (RFC 3501 2.3.1.1).
    validity_high: u32,
}

impl MailState {
    /// The state a checkpoint describes (the counts are derived).
    pub fn restore(
        folders: BTreeMap<String, Folder>,
        subscriptions: BTreeSet<String>,
        delivered: HashMap<Vec<u8>, u64>,
        entries: u64,
    ) -> Self {
        let validity_high = folders.values().map(|f| f.uid_validity).max().unwrap_or(0);
        let mut state = Self {
            folders,
            subscriptions,
            delivered,
            entries,
            refs: HashMap::new(),
            validity_high,
        };
        let messages: Vec<MessageRef> = state
            .folders
            .values()
            .flat_map(|f| f.messages.values().map(|s| s.message.clone()))
            .collect();
        for message in &messages {
            state.count(message, true);
        }
        state
    }

    /// The smallest UIDVALIDITY a folder made now may have: larger than
    /// every one this state has seen, including folders since deleted.
    pub fn next_validity_floor(&self) -> u32 {
        self.validity_high.saturating_add(1)
    }

    /// Whether `name` is subscribed.
    pub fn subscribed(&self, name: &str) -> bool {
        self.subscriptions.contains(name)
    }

    /// The subscribed names that no folder has, in name order.
    pub fn subscribed_names(&self) -> impl Iterator<Item = &String> {
        self.subscriptions.iter().filter(|name| !self.folders.contains_key(*name))
    }

    fn subscribe(&mut self, name: &str, subscribed: bool) {
        if subscribed {
            self.subscriptions.insert(name.to_owned());
        } else {
            self.subscriptions.remove(name);
        }
    }

    /// Folder entries naming the manifest `id`.
    pub fn refs(&self, id: &ObjectId) -> u32 {
        self.refs.get(id).copied().unwrap_or(0)
    }

    /// Every manifest some folder names, with one message naming it.
    pub fn live_manifests(&self) -> HashMap<ObjectId, &MessageRef> {
        let mut out = HashMap::with_capacity(self.refs.len());
        for folder in self.folders.values() {
            for stored in folder.messages.values() {
                out.entry(stored.message.manifest.id).or_insert(&stored.message);
            }
        }
        out
    }

    /// The messages whose count of folder entries `op` may change.
    pub fn touched(&self, op: &MailOp) -> Vec<MessageRef> {
        let pick = |folder: &str, uids: &[u32]| -> Vec<MessageRef> {
            self.folders.get(folder).map_or_else(Vec::new, |f| {
                uids.iter()
                    .filter_map(|uid| f.messages.get(uid).map(|s| s.message.clone()))
                    .collect()
            })
        };
        match op {
            MailOp::Insert { message, .. } => vec![message.clone()],
            MailOp::Copy { from, uids, .. } | MailOp::Expunge { folder: from, uids } => {
                pick(from, uids)
            }
            MailOp::Delete { folder } => self.folders.get(folder).map_or_else(Vec::new, |f| {
                f.messages.values().map(|s| s.message.clone()).collect()
            }),
            MailOp::Create { .. }
            | MailOp::Checkpoint { .. }
            | MailOp::Rename { .. }
            | MailOp::Subscribe { .. }
            | MailOp::Subscription { .. }
            | MailOp::Flags { .. }
            | MailOp::Move { .. } => Vec::new(),
        }
    }

    fn count(&mut self, message: &MessageRef, up: bool) {
        let id = message.manifest.id;
        if up {
            *self.refs.entry(id).or_insert(0) += 1;
        } else if let Some(n) = self.refs.get_mut(&id) {
            *n -= 1;
            if *n == 0 {
                self.refs.remove(&id);
            }
        }
    }

    fn folder(&mut self, name: &str) -> Result<&mut Folder, OpError> {
        self.folders.get_mut(name).ok_or_else(|| OpError::NoFolder(name.to_owned()))
    }

    /// Applies one operation, the one at log position `at` (its
    /// [`modseq`]); returns the UIDs it assigned (for inserts, copies and
    /// moves), in order. An operation that changes no message leaves
    /// every MODSEQ as it was.
    pub fn apply(&mut self, op: &MailOp, at: u64) -> Result<Vec<u32>, OpError> {
        match op {
            MailOp::Create { folder, uid_validity } => {
                if self.folders.contains_key(folder) {
                    return Err(OpError::Exists(folder.clone()));
                }
                self.validity_high = self.validity_high.max(*uid_validity);
                self.folders.insert(folder.clone(), Folder::new(*uid_validity, at));
                self.subscribe(folder, true);
                Ok(Vec::new())
            }
            MailOp::Delete { folder } => {
                if folder == "INBOX" {
                    return Err(OpError::NotAllowed("INBOX cannot be deleted".into()));
                }
                let gone =
                    self.folders.remove(folder).ok_or_else(|| OpError::NoFolder(folder.clone()))?;
                self.subscribe(folder, false);
                for stored in gone.messages.values() {
                    self.count(&stored.message, false);
                }
                Ok(Vec::new())
            }
            MailOp::Rename { from, to, uid_validity } => {
                if self.folders.contains_key(to) {
                    return Err(OpError::Exists(to.clone()));
                }
                self.validity_high = self.validity_high.max(*uid_validity);
                if from == "INBOX" {
                    // RFC 3501: renaming INBOX moves its messages to a new
                    // folder and leaves INBOX, empty, in place.
                    let inbox = self.folder(from)?;
                    let uids: Vec<u32> = inbox.messages.keys().copied().collect();
                    let messages = inbox.remove(&uids, at);
                    let mut folder = Folder::new(*uid_validity, at);
                    for (_, stored) in messages {
                        folder.put(stored, at);
                    }
                    self.folders.insert(to.clone(), folder);
                    self.subscribe(to, true);
                } else {
                    let mut folder =
                        self.folders.remove(from).ok_or_else(|| OpError::NoFolder(from.clone()))?;
                    folder.uid_validity = *uid_validity;
                    self.folders.insert(to.clone(), folder);
                    // The subscription goes with the folder.
                    let subscribed = self.subscriptions.remove(from);
                    self.subscribe(to, subscribed);
                }
                Ok(Vec::new())
            }
            MailOp::Subscribe { folder, subscribed } => {
                self.folder(folder)?;
                self.subscribe(folder, *subscribed);
                Ok(Vec::new())
            }
            MailOp::Subscription { name, subscribed } => {
                let new_name =
                    !self.folders.contains_key(name) && !self.subscriptions.contains(name);
                if *subscribed
                    && new_name
                    && self.subscribed_names().count() >= MAX_SUBSCRIBED_NAMES
                {
                    return Err(OpError::NotAllowed(format!(
                        "at most {MAX_SUBSCRIBED_NAMES} names without a folder can be subscribed"
                    )));
                }
                self.subscribe(name, *subscribed);
                Ok(Vec::new())
            }
            MailOp::Insert { folder, message, flags, notification } => {
                let target = self.folder(folder)?;
                let stored = Stored { message: message.clone(), flags: clean(flags), modseq: at };
                let uid = target.put(stored, at);
                self.count(message, true);
                if let Some(id) = notification {
                    self.delivered.insert(id.clone(), message.internal_date);
                }
                Ok(vec![uid])
            }
            MailOp::Flags { folder, uids, change, flags } => {
                let target = self.folder(folder)?;
                for uid in uids {
                    if let Some(stored) = target.messages.get_mut(uid) {
                        let now = changed(&stored.flags, *change, flags);
                        if !same_flags(&now, &stored.flags) {
                            stored.flags = now;
                            stored.modseq = at;
                            target.highest_modseq = target.highest_modseq.max(at);
                        }
                    }
                }
                Ok(Vec::new())
            }
            MailOp::Copy { from, uids, to } => self.copy(from, uids, to, false, at),
            MailOp::Move { from, uids, to } => self.copy(from, uids, to, true, at),
            MailOp::Checkpoint { .. } => Ok(Vec::new()),
            MailOp::Expunge { folder, uids } => {
                let gone = self.folder(folder)?.remove(uids, at);
                for (_, stored) in &gone {
                    self.count(&stored.message, false);
                }
                Ok(Vec::new())
            }
        }
    }

    fn copy(
        &mut self,
        from: &str,
        uids: &[u32],
        to: &str,
        remove: bool,
        at: u64,
    ) -> Result<Vec<u32>, OpError> {
        self.folder(to)?;
        let source = self.folder(from)?;
        let picked: Vec<Stored> = if remove {
            source.remove(uids, at).into_iter().map(|(_, stored)| stored).collect()
        } else {
            uids.iter().filter_map(|uid| source.messages.get(uid).cloned()).collect()
        };
        if !remove {
            for stored in &picked {
                self.count(&stored.message, true);
            }
        }
        let target = self.folder(to)?;
        Ok(picked.into_iter().map(|stored| target.put(stored, at)).collect())
    }
}

/// Flags as stored: no duplicates (IMAP flags compare case-insensitively),
/// `\Recent` never stored (it is per session).
fn clean(flags: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(flags.len());
    for flag in flags {
        if !flag.eq_ignore_ascii_case("\\Recent")
            && !out.iter().any(|f| f.eq_ignore_ascii_case(flag))
        {
            out.push(flag.clone());
        }
    }
    out
}

/// Whether two sets of stored flags are the same (IMAP flags compare
/// without case; stored flags are kept once each).
pub fn same_flags(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|f| b.iter().any(|g| g.eq_ignore_ascii_case(f)))
}

/// The flags after a change.
pub fn changed(current: &[String], change: FlagChange, flags: &[String]) -> Vec<String> {
    match change {
        FlagChange::Replace => clean(flags),
        FlagChange::Add => {
            let mut all = current.to_vec();
            all.extend(flags.iter().cloned());
            clean(&all)
        }
        FlagChange::Remove => current
            .iter()
            .filter(|f| !flags.iter().any(|g| g.eq_ignore_ascii_case(f)))
            .cloned()
            .collect(),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::mail) fn msg(n: u64) -> MessageRef {
        let manifest = epost_types::capability::Capability::new(
            ObjectId::of(&n.to_be_bytes()),
            epost_types::capability::ObjectKey::from_bytes([7; 32]),
        );
        MessageRef { manifest, size: n, internal_date: n, envelope_from: None }
    }

    fn insert(folder: &str, n: u64) -> MailOp {
        MailOp::Insert { folder: folder.into(), message: msg(n), flags: vec![], notification: None }
    }

    /// Applies `op` as the only operation of the next log entry.
    pub(in crate::mail) fn step(state: &mut MailState, op: &MailOp) -> Result<Vec<u32>, OpError> {
        let at = modseq(state.entries + 1, 0);
        state.entries += 1;
        state.apply(op, at)
    }

    /// The standard folders, made by the log's first entry.
    pub(in crate::mail) fn standard() -> MailState {
        let mut state = MailState::default();
        for (i, name) in STANDARD.iter().enumerate() {
            let op = MailOp::Create { folder: (*name).into(), uid_validity: 100 + i as u32 };
            state.apply(&op, modseq(1, i)).unwrap();
        }
        state.entries = 1;
        state
    }

    #[test]
    fn uids_ascend_per_folder_and_are_never_reused() {
        let mut state = standard();
        assert_eq!(step(&mut state, &insert("INBOX", 1)).unwrap(), vec![1]);
        assert_eq!(step(&mut state, &insert("INBOX", 2)).unwrap(), vec![2]);
        step(&mut state, &MailOp::Expunge { folder: "INBOX".into(), uids: vec![2] }).unwrap();
        assert_eq!(step(&mut state, &insert("INBOX", 3)).unwrap(), vec![3]);
        let moved = MailOp::Move { from: "INBOX".into(), uids: vec![1, 3, 99], to: "Trash".into() };
        assert_eq!(step(&mut state, &moved).unwrap(), vec![1, 2]);
        assert!(state.folders["INBOX"].messages.is_empty());
        assert_eq!(state.folders["INBOX"].uid_next, 4);
        assert_eq!(state.folders["Trash"].messages[&2].message, msg(3));
    }

    #[test]
    fn replay_is_deterministic_and_flags_compare_without_case() {
        let ops = vec![
            insert("INBOX", 1),
            MailOp::Flags {
                folder: "INBOX".into(),
                uids: vec![1],
                change: FlagChange::Add,
                flags: vec!["\\Seen".into(), "\\seen".into(), "\\Recent".into()],
            },
            MailOp::Copy { from: "INBOX".into(), uids: vec![1], to: "Archive".into() },
            MailOp::Flags {
                folder: "INBOX".into(),
                uids: vec![1],
                change: FlagChange::Remove,
                flags: vec!["\\SEEN".into()],
            },
        ];
        let (mut a, mut b) = (standard(), standard());
        for op in &ops {
            step(&mut a, op).unwrap();
            step(&mut b, op).unwrap();
        }
        assert_eq!(a, b);
        assert!(a.folders["INBOX"].messages[&1].flags.is_empty());
        assert_eq!(a.folders["Archive"].messages[&1].flags, vec!["\\Seen".to_string()]);
    }

    #[test]
    fn renaming_inbox_moves_its_messages_and_keeps_it() {
        let mut state = standard();
        step(&mut state, &insert("INBOX", 1)).unwrap();
        let rename = MailOp::Rename { from: "INBOX".into(), to: "Old".into(), uid_validity: 9 };
        step(&mut state, &rename).unwrap();
        assert!(state.folders["INBOX"].messages.is_empty());
        assert_eq!(state.folders["Old"].messages.len(), 1);
        assert!(step(&mut state, &MailOp::Delete { folder: "INBOX".into() }).is_err());
        assert_eq!(step(&mut state, &insert("Nope", 1)), Err(OpError::NoFolder("Nope".into())));
    }

    fn flags(uids: Vec<u32>, change: FlagChange, flags: &[&str]) -> MailOp {
        MailOp::Flags {
            folder: "INBOX".into(),
            uids,
            change,
            flags: flags.iter().map(|f| f.to_string()).collect(),
        }
    }

    fn modseqs(state: &MailState, folder: &str) -> Vec<(u32, u64)> {
        state.folders[folder].messages.iter().map(|(uid, s)| (*uid, s.modseq)).collect()
    }

    #[test]
    fn a_modseq_is_the_log_position_of_the_last_change() {
        let mut state = standard();
        let inbox_made = modseq(1, 0);
        assert_eq!(state.folders["INBOX"].highest_modseq, inbox_made);
        assert_eq!(state.folders["Sent"].highest_modseq, modseq(1, 1));
        for n in 1..=3 {
            step(&mut state, &insert("INBOX", n)).unwrap();
        }
        assert_eq!(
            modseqs(&state, "INBOX"),
            vec![(1, modseq(2, 0)), (2, modseq(3, 0)), (3, modseq(4, 0))]
        );
        // Two operations in one entry: each has its own position.
        let seen = flags(vec![1, 2], FlagChange::Add, &["\\Seen"]);
        let flagged = flags(vec![2], FlagChange::Add, &["\\Flagged"]);
        state.apply(&seen, modseq(5, 0)).unwrap();
        state.apply(&flagged, modseq(5, 1)).unwrap();
        state.entries += 1;
        assert_eq!(
            modseqs(&state, "INBOX"),
            vec![(1, modseq(5, 0)), (2, modseq(5, 1)), (3, modseq(4, 0))]
        );
        assert_eq!(state.folders["INBOX"].highest_modseq, modseq(5, 1));
        // A change that changes nothing moves nothing (case does not count).
        step(&mut state, &flags(vec![1, 3], FlagChange::Add, &["\\SEEN"])).unwrap();
        assert_eq!(modseqs(&state, "INBOX")[0], (1, modseq(5, 0)));
        assert_eq!(modseqs(&state, "INBOX")[2], (3, modseq(6, 0)));
        // Positions only grow, so the folder's highest only grows.
        assert!(modseq(6, 0) > modseq(5, OP_MAX as usize + 10));
        assert!(modseq_bound(5) >= modseq(5, usize::MAX) && modseq_bound(5) < modseq(6, 0));
    }

    #[test]
    fn moves_and_expunges_are_remembered_with_their_modseq() {
        let mut state = standard();
        for n in 1..=4 {
            step(&mut state, &insert("INBOX", n)).unwrap();
        }
        let moved = MailOp::Move { from: "INBOX".into(), uids: vec![2, 3], to: "Archive".into() };
        step(&mut state, &moved).unwrap();
        let moved_at = modseq(state.entries, 0);
        step(&mut state, &MailOp::Expunge { folder: "INBOX".into(), uids: vec![4, 9] }).unwrap();
        let expunged_at = modseq(state.entries, 0);
        let inbox = &state.folders["INBOX"];
        assert_eq!(inbox.highest_modseq, expunged_at);
        assert_eq!(inbox.vanished_since(0).ranges, vec![(2, 4)]);
        assert_eq!(inbox.vanished_since(moved_at).ranges, vec![(4, 4)]);
        assert!(inbox.vanished_since(expunged_at).ranges.is_empty());
        let archive = &state.folders["Archive"];
        assert_eq!(modseqs(&state, "Archive"), vec![(1, moved_at), (2, moved_at)]);
        assert_eq!(archive.highest_modseq, moved_at);
        // Renaming INBOX takes everything out of it, at the rename's position.
        let rename = MailOp::Rename { from: "INBOX".into(), to: "Old".into(), uid_validity: 9 };
        step(&mut state, &rename).unwrap();
        let renamed_at = modseq(state.entries, 0);
        assert_eq!(state.folders["INBOX"].vanished_since(expunged_at).ranges, vec![(1, 1)]);
        assert_eq!(state.folders["Old"].highest_modseq, renamed_at);
        assert_eq!(modseqs(&state, "Old"), vec![(1, renamed_at)]);
    }

    #[test]
    fn subscriptions_are_names_kept_beside_the_folders() {
        let sub = |name: &str, subscribed| MailOp::Subscription { name: name.into(), subscribed };
        let names =
            |state: &MailState| -> Vec<String> { state.subscriptions.iter().cloned().collect() };
        let ops = vec![
            MailOp::Create { folder: "Lists".into(), uid_validity: 9 },
            MailOp::Subscribe { folder: "Sent".into(), subscribed: false },
            sub("Nowhere", true),
            MailOp::Delete { folder: "Lists".into() },
            sub("Lists", true),
            MailOp::Create { folder: "Old".into(), uid_validity: 10 },
            MailOp::Rename { from: "Old".into(), to: "New".into(), uid_validity: 11 },
            sub("Gone", true),
            sub("Gone", false),
        ];
        let (mut a, mut b) = (standard(), standard());
        for op in &ops {
            step(&mut a, op).unwrap();
            step(&mut b, op).unwrap();
        }
        assert_eq!(a, b, "replayed alike");
        // A folder made is subscribed; DELETE takes its subscription, a
        // Subscription after it keeps the name; RENAME carries it along.
        assert_eq!(
            names(&a),
            ["Archive", "Drafts", "INBOX", "Junk", "Lists", "New", "Nowhere", "Trash"]
        );
        assert_eq!(a.subscribed_names().collect::<Vec<_>>(), ["Lists", "Nowhere"]);
        assert!(!a.subscribed("Sent") && a.subscribed("New") && !a.subscribed("Old"));
        // The old operation still needs a folder.
        let old = MailOp::Subscribe { folder: "Nowhere".into(), subscribed: false };
        assert_eq!(step(&mut a, &old), Err(OpError::NoFolder("Nowhere".into())));
        // Renaming INBOX subscribes the new folder and keeps INBOX's.
        let rename = MailOp::Rename { from: "INBOX".into(), to: "Kept".into(), uid_validity: 12 };
        step(&mut a, &rename).unwrap();
        assert!(a.subscribed("INBOX") && a.subscribed("Kept"));
    }

    #[test]
    fn subscribed_names_without_a_folder_are_bounded() {
        let mut state = standard();
        for n in 0..MAX_SUBSCRIBED_NAMES {
            let op = MailOp::Subscription { name: format!("n{n}"), subscribed: true };
            state.apply(&op, modseq(2, n)).unwrap();
        }
        let more = MailOp::Subscription { name: "one more".into(), subscribed: true };
        assert!(matches!(state.apply(&more, modseq(3, 0)), Err(OpError::NotAllowed(_))));
        // Again, a folder's name, or taking one away, is always fine.
        let again = MailOp::Subscription { name: "n0".into(), subscribed: true };
        state.apply(&again, modseq(3, 1)).unwrap();
        let folder = MailOp::Subscription { name: "Sent".into(), subscribed: true };
        state.apply(&folder, modseq(3, 2)).unwrap();
        let away = MailOp::Subscription { name: "n1".into(), subscribed: false };
        state.apply(&away, modseq(3, 3)).unwrap();
        state.apply(&more, modseq(3, 4)).unwrap();
    }
}
