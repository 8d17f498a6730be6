//! Checkpoints of a user's mail state (spec/mail.md, "Checkpoints"), so
//! opening a mailbox costs what changed since the last one, not the whole
//! log.
//!
//! Every [`EVERY`] mail log entries the account task writes the state as
//! objects sealed under a secret only the log's owner derives: a page per
//! [`PAGE_SPAN`] UIDs of each folder, a page per day of filed
//! notification ids, and an index naming them; then a log entry
//! `Checkpoint { state, covers }`. Pages no operation touched since the
//! last checkpoint are the same objects as before and are not stored
//! again. A reader walks back from the head to the newest checkpoint entry,
//! loads the index and its pages, and replays only the entries after
//! `covers`.
//!
//! Version 2 carries MODSEQs: each message's, each folder's highest and
//! its remembered expunges. A version 1 checkpoint is still read: what it
//! holds gets the MODSEQ [`state::modseq_bound`] of its entries (at least
//! that of any change it includes, below any change after it), the
//! folders remember no expunge before it, and the next checkpoint writes
//! every page anew in version 2.
//!
//! Version 3 adds the subscribed names no folder has to the index (a
//! folder's subscription stays in its entry of the index); a version 1 or
//! 2 index has none, since only folders could be subscribed then. Pages
//! are unchanged (still version 2).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use epost_types::capability::Capability;
use epost_types::cbor::DecodeError;
use epost_types::convergent::ConvergenceSecret;
use epost_types::id::ObjectId;
use epost_types::mail::{
    CHECKPOINT_VERSION, CHECKPOINT_VERSION_PLAIN, Checkpoint, CheckpointFolder,
    DELIVERED_PAGE_VERSION, DayRef, DeliveredPage, MailOp, MessagePage, PAGE_SPAN, PAGE_VERSION,
    PageRef, PagedMessage,
};
use epost_types::mailbox::MailError;
use epost_types::time::Timestamp;
use futures::StreamExt;

use super::expunged::Expunged;
use super::state::{self, Folder, MailState, Stored};
use crate::storage::StorageService;

/// Mail log entries between checkpoints.
pub(super) const EVERY: u64 = 128;
/// What the checkpoint secret is derived for (from the mail log's key).
pub(super) const PURPOSE: &[u8] = b"mail-checkpoint";
/// Filed notification ids are kept this long: no holder keeps or hands
/// out a notification longer than two leases, and the notification
/// service remembers its nonce as long.
const DELIVERED_KEPT_DAYS: u64 = 400;
/// Pages fetched at once when loading.
const PARALLEL: usize = 16;
const DAY_MS: u64 = 24 * 3600 * 1000;

/// A page as the last checkpoint stored it.
#[derive(Debug, Clone)]
struct Page {
    capability: Capability,
    count: u32,
    /// Every object the page is stored as.
    objects: Vec<ObjectId>,
}

/// What the last checkpoint was and what changed since: the account task
/// notes every operation it applies.
#[derive(Debug, Default)]
pub(super) struct Tracker {
    /// The last checkpoint's index object (its root in the lease book).
    pub(super) root: Option<ObjectId>,
    pages: HashMap<(String, u32), Page>,
    days: HashMap<u64, Page>,
    dirty: HashSet<(String, u32)>,
    /// Folders created, renamed or deleted since: every page is new.
    dirty_folders: HashSet<String>,
    dirty_days: HashSet<u64>,
    /// Mail log entries appended since the last checkpoint.
    pub(super) since: u64,
}

fn page_of(uid: u32) -> u32 {
    uid / PAGE_SPAN
}

impl Tracker {
    /// Notes `op`, applied with `assigned` the UIDs it gave.
    pub(super) fn note(&mut self, op: &MailOp, assigned: &[u32]) {
        let mut mark = |folder: &str, uids: &[u32]| {
            for uid in uids {
                self.dirty.insert((folder.to_owned(), page_of(*uid)));
            }
        };
        match op {
            MailOp::Insert { folder, message, notification, .. } => {
                mark(folder, assigned);
                if notification.is_some() {
                    self.dirty_days.insert(message.internal_date / DAY_MS);
                }
            }
            MailOp::Flags { folder, uids, .. } | MailOp::Expunge { folder, uids } => {
                mark(folder, uids)
            }
            MailOp::Copy { to, .. } => mark(to, assigned),
            MailOp::Move { from, uids, to } => {
                mark(from, uids);
                mark(to, assigned);
            }
            MailOp::Create { folder, .. } | MailOp::Delete { folder } => {
                self.dirty_folders.insert(folder.clone());
            }
            MailOp::Rename { from, to, .. } => {
                self.dirty_folders.insert(from.clone());
                self.dirty_folders.insert(to.clone());
            }
            MailOp::Subscribe { .. } | MailOp::Subscription { .. } | MailOp::Checkpoint { .. } => {}
        }
    }

    /// Every object of the last checkpoint's pages.
    pub(super) fn objects(&self) -> Vec<ObjectId> {
        let mut all: Vec<ObjectId> = self
            .pages
            .values()
            .chain(self.days.values())
            .flat_map(|p| p.objects.iter().copied())
            .collect();
        all.sort();
        all.dedup();
        all
    }

    fn clean(&self, folder: &str, page: u32) -> Option<&Page> {
        if self.dirty_folders.contains(folder) || self.dirty.contains(&(folder.to_owned(), page)) {
            return None;
        }
        self.pages.get(&(folder.to_owned(), page))
    }
}

/// A checkpoint stored, not yet named by the log.
pub(super) struct Written {
    pub(super) capability: Capability,
    /// Every object under the index (pages, chunks), for the lease book.
    pub(super) members: Vec<ObjectId>,
    pub(super) expires: u64,
    /// The tracker to keep once the checkpoint entry is appended.
    tracker: Tracker,
}

impl Written {
    /// The checkpoint is in the log: start tracking from it.
    pub(super) fn into_tracker(self) -> Tracker {
        self.tracker
    }
}

/// Where checkpoint objects are kept: the storage service (or, in the
/// tests of this module, a map).
pub(super) trait Objects: Sync {
    /// Stores `bytes` sealed under `secret`; returns its capability, every
    /// object it is stored as, and until when they are leased.
    fn put(
        &self,
        secret: &ConvergenceSecret,
        bytes: Vec<u8>,
    ) -> impl Future<Output = Result<(Capability, Vec<ObjectId>, u64), MailError>> + Send;

    fn get(
        &self,
        capability: &Capability,
    ) -> impl Future<Output = Result<Vec<u8>, MailError>> + Send;
}

impl Objects for StorageService {
    async fn put(
        &self,
        secret: &ConvergenceSecret,
        bytes: Vec<u8>,
    ) -> Result<(Capability, Vec<ObjectId>, u64), MailError> {
        let report = self
            .put_reader_with(secret, bytes.as_slice())
            .await
            .map_err(|e| MailError::unavailable("cannot store a checkpoint", e))?;
        Ok((report.capability, report.ids, report.expires))
    }

    async fn get(&self, capability: &Capability) -> Result<Vec<u8>, MailError> {
        let mut out = Vec::new();
        self.get_to(capability, &mut out)
            .await
            .map_err(|e| MailError::unavailable("cannot read a checkpoint", e))?;
        Ok(out)
    }
}

async fn put<O: Objects>(
    storage: &O,
    secret: &ConvergenceSecret,
    bytes: Vec<u8>,
) -> Result<(Capability, Vec<ObjectId>, u64), MailError> {
    storage.put(secret, bytes).await
}

/// Stores `state` as of log entry `covers`: only pages changed since
/// `tracker`'s checkpoint are stored again.
pub(super) async fn write<O: Objects>(
    storage: &O,
    secret: &ConvergenceSecret,
    state: &MailState,
    tracker: &Tracker,
    covers: u64,
) -> Result<Written, MailError> {
    let mut next = Tracker::default();
    let mut expires = u64::MAX;
    let mut folders = Vec::with_capacity(state.folders.len());
    for (name, folder) in &state.folders {
        let mut by_page: BTreeMap<u32, Vec<PagedMessage>> = BTreeMap::new();
        for (uid, stored) in &folder.messages {
            by_page.entry(page_of(*uid)).or_default().push(PagedMessage {
                uid: *uid,
                message: stored.message.clone(),
                flags: stored.flags.clone(),
                modseq: stored.modseq,
            });
        }
        let mut pages = Vec::with_capacity(by_page.len());
        for (number, messages) in by_page {
            let page = match tracker.clean(name, number) {
                Some(page) => page.clone(),
                None => {
                    let count = messages.len() as u32;
                    let encoded = MessagePage { v: PAGE_VERSION, messages }.encode();
                    let (capability, objects, until) = put(storage, secret, encoded).await?;
                    expires = expires.min(until);
                    Page { capability, count, objects }
                }
            };
            pages.push(PageRef {
                first_uid: number * PAGE_SPAN,
                count: page.count,
                capability: page.capability.clone(),
            });
            next.pages.insert((name.clone(), number), page);
        }
        folders.push(CheckpointFolder {
            name: name.clone(),
            uid_validity: folder.uid_validity,
            uid_next: folder.uid_next,
            subscribed: state.subscribed(name),
            pages,
            highest_modseq: folder.highest_modseq,
            expunged: folder.expunged.ranges().to_vec(),
            expunged_before: folder.expunged.forgotten(),
        });
    }
    let oldest = (Timestamp::now().as_millis() / DAY_MS).saturating_sub(DELIVERED_KEPT_DAYS);
    let mut by_day: BTreeMap<u64, Vec<(serde_bytes::ByteBuf, u64)>> = BTreeMap::new();
    for (id, at) in &state.delivered {
        let day = at / DAY_MS;
        if day >= oldest {
            by_day.entry(day).or_default().push((serde_bytes::ByteBuf::from(id.clone()), *at));
        }
    }
    let mut delivered = Vec::with_capacity(by_day.len());
    for (day, mut ids) in by_day {
        let page = match tracker.days.get(&day).filter(|_| !tracker.dirty_days.contains(&day)) {
            Some(page) => page.clone(),
            None => {
                ids.sort();
                let count = ids.len() as u32;
                let (capability, objects, until) =
                    put(storage, secret, DeliveredPage { v: DELIVERED_PAGE_VERSION, ids }.encode())
                        .await?;
                expires = expires.min(until);
                Page { capability, count, objects }
            }
        };
        delivered.push(DayRef { day, capability: page.capability.clone() });
        next.days.insert(day, page);
    }
    let index = Checkpoint {
        v: CHECKPOINT_VERSION,
        covers,
        entries: state.entries,
        folders,
        delivered,
        subscribed: state.subscribed_names().cloned().collect(),
    };
    let (capability, index_objects, until) = put(storage, secret, index.encode()).await?;
    expires = expires.min(until);
    let mut members: Vec<ObjectId> = next
        .pages
        .values()
        .chain(next.days.values())
        .flat_map(|p| p.objects.iter().copied())
        .chain(index_objects.into_iter().filter(|id| *id != capability.id))
        .collect();
    members.sort();
    members.dedup();
    next.root = Some(capability.id);
    Ok(Written { capability, members, expires, tracker: next })
}

async fn fetch<O: Objects>(storage: &O, capability: &Capability) -> Result<Vec<u8>, MailError> {
    storage.get(capability).await
}

/// The state a checkpoint describes, and a tracker starting from it.
pub(super) async fn load<O: Objects>(
    storage: &O,
    capability: &Capability,
) -> Result<(MailState, Tracker, u64), MailError> {
    let corrupt = |what: &str, e: DecodeError| {
        MailError::corrupt(format!("checkpoint {}: {what}", capability.id), e)
    };
    let index =
        Checkpoint::decode(&fetch(storage, capability).await?).map_err(|e| corrupt("index", e))?;
    let mut tracker = Tracker { root: Some(capability.id), ..Tracker::default() };
    // What a checkpoint without MODSEQs holds gets this one.
    let plain = index.v == CHECKPOINT_VERSION_PLAIN;
    let bound = state::modseq_bound(index.entries);
    let or_bound = |modseq: u64| if modseq == 0 { bound } else { modseq };
    let mut folders = BTreeMap::new();
    // Before version 3 only folders were subscribed; the list is empty.
    let mut subscriptions: BTreeSet<String> = index.subscribed.into_iter().collect();
    for folder in index.folders {
        if plain {
            // Its pages are written anew, with MODSEQs, next time.
            tracker.dirty_folders.insert(folder.name.clone());
        }
        let pages: Vec<Result<(PageRef, Vec<u8>), MailError>> =
            futures::stream::iter(folder.pages.into_iter().map(|page| async move {
                fetch(storage, &page.capability).await.map(|bytes| (page, bytes))
            }))
            .buffered(PARALLEL)
            .collect()
            .await;
        let mut messages = BTreeMap::new();
        for page in pages {
            let (page, bytes) = page?;
            let decoded = MessagePage::decode(&bytes).map_err(|e| corrupt("page", e))?;
            for paged in decoded.messages {
                let stored = Stored {
                    message: paged.message,
                    flags: paged.flags,
                    modseq: or_bound(paged.modseq),
                };
                messages.insert(paged.uid, stored);
            }
            let number = page_of(page.first_uid);
            tracker.pages.insert(
                (folder.name.clone(), number),
                Page {
                    objects: vec![page.capability.id],
                    capability: page.capability,
                    count: page.count,
                },
            );
        }
        let expunged = if plain {
            Expunged::forgetting(bound)
        } else {
            Expunged::restore(folder.expunged, folder.expunged_before)
        };
        if folder.subscribed {
            subscriptions.insert(folder.name.clone());
        }
        folders.insert(
            folder.name,
            Folder {
                uid_validity: folder.uid_validity,
                uid_next: folder.uid_next,
                messages,
                highest_modseq: or_bound(folder.highest_modseq),
                expunged,
            },
        );
    }
    let mut delivered = HashMap::new();
    for day in index.delivered {
        let page = DeliveredPage::decode(&fetch(storage, &day.capability).await?)
            .map_err(|e| corrupt("filed notifications", e))?;
        let count = page.ids.len() as u32;
        for (id, at) in page.ids {
            delivered.insert(id.into_vec(), at);
        }
        tracker.days.insert(
            day.day,
            Page { objects: vec![day.capability.id], capability: day.capability, count },
        );
    }
    let state = MailState::restore(folders, subscriptions, delivered, index.entries);
    Ok((state, tracker, index.covers))
}

/// The checkpoint an entry names, if it is a checkpoint entry.
pub(super) fn named(ops: &[MailOp]) -> Option<(&Capability, u64)> {
    ops.iter().find_map(|op| match op {
        MailOp::Checkpoint { state, covers } => Some((state, *covers)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use epost_types::capability::ObjectKey;
    use epost_types::mail::{CHECKPOINT_VERSION_MODSEQ, FlagChange, MESSAGE_VERSION_PLAIN};

    use super::*;
    use crate::mail::state::tests::{msg, standard, step};

    /// Checkpoint objects in memory.
    #[derive(Default)]
    struct Memory(Mutex<HashMap<ObjectId, Vec<u8>>>);

    impl Objects for Memory {
        async fn put(
            &self,
            _: &ConvergenceSecret,
            bytes: Vec<u8>,
        ) -> Result<(Capability, Vec<ObjectId>, u64), MailError> {
            let id = ObjectId::of(&bytes);
            self.0.lock().unwrap().insert(id, bytes);
            Ok((Capability::new(id, ObjectKey::from_bytes([1; 32])), vec![id], u64::MAX))
        }

        async fn get(&self, capability: &Capability) -> Result<Vec<u8>, MailError> {
            Ok(self.0.lock().unwrap()[&capability.id].clone())
        }
    }

    fn secret() -> ConvergenceSecret {
        ConvergenceSecret::new(vec![3; 32])
    }

    /// INBOX with three messages, one flagged and one expunged.
    fn mailbox() -> MailState {
        let mut state = standard();
        for n in 1..=3 {
            let op = MailOp::Insert {
                folder: "INBOX".into(),
                message: msg(n),
                flags: vec![],
                notification: None,
            };
            step(&mut state, &op).unwrap();
        }
        let flag = MailOp::Flags {
            folder: "INBOX".into(),
            uids: vec![2],
            change: FlagChange::Add,
            flags: vec!["\\Flagged".into()],
        };
        step(&mut state, &flag).unwrap();
        step(&mut state, &MailOp::Expunge { folder: "INBOX".into(), uids: vec![3] }).unwrap();
        state
    }

    #[tokio::test]
    async fn a_checkpoint_keeps_every_modseq_and_the_expunges() {
        let objects = Memory::default();
        let state = mailbox();
        let written = write(&objects, &secret(), &state, &Tracker::default(), 9).await.unwrap();
        let (loaded, _, covers) = load(&objects, &written.capability).await.unwrap();
        assert_eq!(covers, 9);
        assert_eq!(loaded, state);
        let inbox = &loaded.folders["INBOX"];
        assert_eq!(inbox.highest_modseq, state::modseq(6, 0));
        assert_eq!(inbox.messages[&2].modseq, state::modseq(5, 0));
        let vanished = inbox.vanished_since(state::modseq(5, 0));
        assert!(vanished.exact);
        assert_eq!(vanished.ranges, vec![(3, 3)]);
    }

    #[tokio::test]
    async fn a_version_1_checkpoint_still_reads_and_is_rewritten_with_modseqs() {
        let objects = Memory::default();
        let key = secret();
        // Objects as the code before MODSEQs wrote them.
        let page = MessagePage {
            v: CHECKPOINT_VERSION_PLAIN,
            messages: vec![PagedMessage {
                uid: 4,
                message: msg(1),
                flags: vec!["\\Seen".into()],
                modseq: 0,
            }],
        };
        let page_bytes = page.encode();
        assert!(!page_bytes.windows(6).any(|w| w == b"modseq"), "no field the old code lacked");
        let (page_cap, _, _) = objects.put(&key, page_bytes).await.unwrap();
        let index = Checkpoint {
            v: CHECKPOINT_VERSION_PLAIN,
            covers: 40,
            entries: 37,
            folders: vec![CheckpointFolder {
                name: "INBOX".into(),
                uid_validity: 7,
                uid_next: 5,
                subscribed: true,
                pages: vec![PageRef { first_uid: 0, count: 1, capability: page_cap.clone() }],
                highest_modseq: 0,
                expunged: Vec::new(),
                expunged_before: 0,
            }],
            delivered: Vec::new(),
            subscribed: Vec::new(),
        };
        let index_bytes = index.encode();
        assert!(!index_bytes.windows(7).any(|w| w == b"highest"), "no field the old code lacked");
        assert_eq!(index_bytes[..4], [0xa5, 0x61, b'v', MESSAGE_VERSION_PLAIN]);
        let (index_cap, _, _) = objects.put(&key, index_bytes).await.unwrap();

        let (mut loaded, tracker, _) = load(&objects, &index_cap).await.unwrap();
        let bound = state::modseq_bound(37);
        let inbox = &loaded.folders["INBOX"];
        assert_eq!(inbox.messages[&4].modseq, bound);
        assert_eq!(inbox.highest_modseq, bound);
        // It cannot say what went before: every UID it lacks, below UIDNEXT.
        let vanished = inbox.vanished_since(5);
        assert!(!vanished.exact);
        assert_eq!(vanished.ranges, vec![(1, 3)]);
        // The next change is above everything the old checkpoint held.
        let seen = MailOp::Flags {
            folder: "INBOX".into(),
            uids: vec![4],
            change: FlagChange::Remove,
            flags: vec!["\\Seen".into()],
        };
        step(&mut loaded, &seen).unwrap();
        assert!(loaded.folders["INBOX"].messages[&4].modseq > bound);

        // The next checkpoint writes the page anew, in version 2.
        let next = write(&objects, &key, &loaded, &tracker, 50).await.unwrap();
        let index = Checkpoint::decode(&objects.get(&next.capability).await.unwrap()).unwrap();
        assert_eq!(index.v, CHECKPOINT_VERSION);
        let page_ref = &index.folders[0].pages[0];
        assert_ne!(page_ref.capability, page_cap);
        let page = MessagePage::decode(&objects.get(&page_ref.capability).await.unwrap()).unwrap();
        assert_eq!(page.v, PAGE_VERSION);
        assert_eq!(page.messages[0].modseq, loaded.folders["INBOX"].messages[&4].modseq);
        let (reloaded, _, _) = load(&objects, &next.capability).await.unwrap();
        assert_eq!(reloaded, loaded);
    }

    #[tokio::test]
    async fn a_checkpoint_keeps_subscriptions_of_names_without_a_folder() {
        let objects = Memory::default();
        let mut state = mailbox();
        let sub = |name: &str, subscribed| MailOp::Subscription { name: name.into(), subscribed };
        step(&mut state, &sub("Nowhere", true)).unwrap();
        step(&mut state, &sub("Junk", false)).unwrap();
        let written = write(&objects, &secret(), &state, &Tracker::default(), 9).await.unwrap();
        let index = Checkpoint::decode(&objects.get(&written.capability).await.unwrap()).unwrap();
        assert_eq!(index.v, CHECKPOINT_VERSION);
        assert_eq!(index.subscribed, ["Nowhere"]);
        let (loaded, _, _) = load(&objects, &written.capability).await.unwrap();
        assert_eq!(loaded, state);
        assert!(loaded.subscribed("Nowhere") && !loaded.subscribed("Junk"));
    }

    #[tokio::test]
    async fn a_version_2_checkpoint_still_reads_with_its_folders_subscriptions() {
        let objects = Memory::default();
        let key = secret();
        let folder = |name: &str, subscribed| CheckpointFolder {
            name: name.into(),
            uid_validity: 7,
            uid_next: 1,
            subscribed,
            pages: Vec::new(),
            highest_modseq: state::modseq(1, 0),
            expunged: Vec::new(),
            expunged_before: 0,
        };
        let index = Checkpoint {
            v: CHECKPOINT_VERSION_MODSEQ,
            covers: 3,
            entries: 2,
            folders: vec![folder("INBOX", true), folder("Lists", false)],
            delivered: Vec::new(),
            subscribed: Vec::new(),
        };
        let bytes = index.encode();
        let named = bytes.windows(10).filter(|w| *w == b"subscribed").count();
        assert_eq!(named, 2, "each folder's flag, no top-level list the old code lacked");
        let (capability, _, _) = objects.put(&key, bytes).await.unwrap();
        let (loaded, tracker, _) = load(&objects, &capability).await.unwrap();
        assert!(loaded.subscribed("INBOX") && !loaded.subscribed("Lists"));
        assert_eq!(loaded.subscribed_names().count(), 0);
        // Written again, it is version 3 and reads back the same.
        let next = write(&objects, &key, &loaded, &tracker, 5).await.unwrap();
        let (reloaded, _, _) = load(&objects, &next.capability).await.unwrap();
        assert_eq!(reloaded, loaded);
    }
}
