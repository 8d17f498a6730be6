//! A user's mail as the replay of their mail log: folders, UIDs, flags.
//! Pure and deterministic, so every node that reads the log agrees.

use std::collections::{BTreeMap, HashMap};

use epost_types::id::ObjectId;
use epost_types::mail::{FlagChange, MailOp, MessageRef};

/// The standard folders and whether they are subscribed at creation.
pub const STANDARD: [&str; 6] = ["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"];

/// One message in a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub message: MessageRef,
    pub flags: Vec<String>,
}

/// One folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    pub uid_validity: u32,
    pub uid_next: u32,
    pub subscribed: bool,
    pub messages: BTreeMap<u32, Stored>,
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
        delivered: HashMap<Vec<u8>, u64>,
        entries: u64,
    ) -> Self {
        let validity_high = folders.values().map(|f| f.uid_validity).max().unwrap_or(0);
        let mut state = Self { folders, delivered, entries, refs: HashMap::new(), validity_high };
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

    /// Applies one operation; returns the UIDs it assigned (for inserts,
    /// copies and moves), in order.
    pub fn apply(&mut self, op: &MailOp) -> Result<Vec<u32>, OpError> {
        match op {
            MailOp::Create { folder, uid_validity } => {
                if self.folders.contains_key(folder) {
                    return Err(OpError::Exists(folder.clone()));
                }
                self.validity_high = self.validity_high.max(*uid_validity);
                self.folders.insert(
                    folder.clone(),
                    Folder {
                        uid_validity: *uid_validity,
                        uid_next: 1,
                        subscribed: true,
                        messages: BTreeMap::new(),
                    },
                );
                Ok(Vec::new())
            }
            MailOp::Delete { folder } => {
                if folder == "INBOX" {
                    return Err(OpError::NotAllowed("INBOX cannot be deleted".into()));
                }
                let gone =
                    self.folders.remove(folder).ok_or_else(|| OpError::NoFolder(folder.clone()))?;
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
                    let messages = std::mem::take(&mut inbox.messages);
                    let mut folder = Folder {
                        uid_validity: *uid_validity,
                        uid_next: 1,
                        subscribed: true,
                        messages: BTreeMap::new(),
                    };
                    for (_, stored) in messages {
                        folder.messages.insert(folder.uid_next, stored);
                        folder.uid_next += 1;
                    }
                    self.folders.insert(to.clone(), folder);
                } else {
                    let mut folder =
                        self.folders.remove(from).ok_or_else(|| OpError::NoFolder(from.clone()))?;
                    folder.uid_validity = *uid_validity;
                    self.folders.insert(to.clone(), folder);
                }
                Ok(Vec::new())
            }
            MailOp::Subscribe { folder, subscribed } => {
                self.folder(folder)?.subscribed = *subscribed;
                Ok(Vec::new())
            }
            MailOp::Insert { folder, message, flags, notification } => {
                let target = self.folder(folder)?;
                let uid = target.uid_next;
                target.uid_next += 1;
                target
                    .messages
                    .insert(uid, Stored { message: message.clone(), flags: clean(flags) });
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
                        stored.flags = changed(&stored.flags, *change, flags);
                    }
                }
                Ok(Vec::new())
            }
            MailOp::Copy { from, uids, to } => self.copy(from, uids, to, false),
            MailOp::Move { from, uids, to } => self.copy(from, uids, to, true),
            MailOp::Checkpoint { .. } => Ok(Vec::new()),
            MailOp::Expunge { folder, uids } => {
                let target = self.folder(folder)?;
                let gone: Vec<Stored> =
                    uids.iter().filter_map(|uid| target.messages.remove(uid)).collect();
                for stored in &gone {
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
    ) -> Result<Vec<u32>, OpError> {
        self.folder(to)?;
        let source = self.folder(from)?;
        let picked: Vec<Stored> = if remove {
            uids.iter().filter_map(|uid| source.messages.remove(uid)).collect()
        } else {
            uids.iter().filter_map(|uid| source.messages.get(uid).cloned()).collect()
        };
        if !remove {
            for stored in &picked {
                self.count(&stored.message, true);
            }
        }
        let target = self.folder(to)?;
        let mut assigned = Vec::with_capacity(picked.len());
        for stored in picked {
            let uid = target.uid_next;
            target.uid_next += 1;
            target.messages.insert(uid, stored);
            assigned.push(uid);
        }
        Ok(assigned)
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

    pub(in crate::mail) fn standard() -> MailState {
        let mut state = MailState::default();
        for (i, name) in STANDARD.iter().enumerate() {
            state
                .apply(&MailOp::Create { folder: (*name).into(), uid_validity: 100 + i as u32 })
                .unwrap();
        }
        state
    }

    #[test]
    fn uids_ascend_per_folder_and_are_never_reused() {
        let mut state = standard();
        assert_eq!(state.apply(&insert("INBOX", 1)).unwrap(), vec![1]);
        assert_eq!(state.apply(&insert("INBOX", 2)).unwrap(), vec![2]);
        state.apply(&MailOp::Expunge { folder: "INBOX".into(), uids: vec![2] }).unwrap();
        assert_eq!(state.apply(&insert("INBOX", 3)).unwrap(), vec![3]);
        let moved = MailOp::Move { from: "INBOX".into(), uids: vec![1, 3, 99], to: "Trash".into() };
        assert_eq!(state.apply(&moved).unwrap(), vec![1, 2]);
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
            a.apply(op).unwrap();
            b.apply(op).unwrap();
        }
        assert_eq!(a, b);
        assert!(a.folders["INBOX"].messages[&1].flags.is_empty());
        assert_eq!(a.folders["Archive"].messages[&1].flags, vec!["\\Seen".to_string()]);
    }

    #[test]
    fn renaming_inbox_moves_its_messages_and_keeps_it() {
        let mut state = standard();
        state.apply(&insert("INBOX", 1)).unwrap();
        let rename = MailOp::Rename { from: "INBOX".into(), to: "Old".into(), uid_validity: 9 };
        state.apply(&rename).unwrap();
        assert!(state.folders["INBOX"].messages.is_empty());
        assert_eq!(state.folders["Old"].messages.len(), 1);
        assert!(state.apply(&MailOp::Delete { folder: "INBOX".into() }).is_err());
        assert_eq!(state.apply(&insert("Nope", 1)), Err(OpError::NoFolder("Nope".into())));
    }
}
