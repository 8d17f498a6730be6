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

use std::collections::{BTreeMap, HashMap, HashSet};

use epost_types::capability::Capability;
use epost_types::cbor::DecodeError;
use epost_types::convergent::ConvergenceSecret;
use epost_types::id::ObjectId;
use epost_types::mail::{
    Checkpoint, CheckpointFolder, DayRef, DeliveredPage, MailOp, MessagePage, PAGE_SPAN, PageRef,
    PagedMessage,
};
use epost_types::mailbox::MailError;
use epost_types::time::Timestamp;
use futures::StreamExt;

use super::state::{Folder, MailState, Stored};
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
            MailOp::Subscribe { .. } | MailOp::Checkpoint { .. } => {}
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

async fn put(
    storage: &StorageService,
    secret: &ConvergenceSecret,
    bytes: Vec<u8>,
) -> Result<(Capability, Vec<ObjectId>, u64), MailError> {
    let report = storage
        .put_reader_with(secret, bytes.as_slice())
        .await
        .map_err(|e| MailError::unavailable("cannot store a checkpoint", e))?;
    Ok((report.capability, report.ids, report.expires))
}

/// Stores `state` as of log entry `covers`: only pages changed since
/// `tracker`'s checkpoint are stored again.
pub(super) async fn write(
    storage: &StorageService,
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
            });
        }
        let mut pages = Vec::with_capacity(by_page.len());
        for (number, messages) in by_page {
            let page = match tracker.clean(name, number) {
                Some(page) => page.clone(),
                None => {
                    let count = messages.len() as u32;
                    let encoded = MessagePage { v: 1, messages }.encode();
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
            subscribed: folder.subscribed,
            pages,
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
                    put(storage, secret, DeliveredPage { v: 1, ids }.encode()).await?;
                expires = expires.min(until);
                Page { capability, count, objects }
            }
        };
        delivered.push(DayRef { day, capability: page.capability.clone() });
        next.days.insert(day, page);
    }
    let index = Checkpoint { v: 1, covers, entries: state.entries, folders, delivered };
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

async fn fetch(storage: &StorageService, capability: &Capability) -> Result<Vec<u8>, MailError> {
    let mut out = Vec::new();
    storage
        .get_to(capability, &mut out)
        .await
        .map_err(|e| MailError::unavailable("cannot read a checkpoint", e))?;
    Ok(out)
}

/// The state a checkpoint describes, and a tracker starting from it.
pub(super) async fn load(
    storage: &StorageService,
    capability: &Capability,
) -> Result<(MailState, Tracker, u64), MailError> {
    let corrupt = |what: &str, e: DecodeError| {
        MailError::corrupt(format!("checkpoint {}: {what}", capability.id), e)
    };
    let index =
        Checkpoint::decode(&fetch(storage, capability).await?).map_err(|e| corrupt("index", e))?;
    let mut tracker = Tracker { root: Some(capability.id), ..Tracker::default() };
    let mut folders = BTreeMap::new();
    for folder in index.folders {
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
                messages.insert(paged.uid, Stored { message: paged.message, flags: paged.flags });
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
        folders.insert(
            folder.name,
            Folder {
                uid_validity: folder.uid_validity,
                uid_next: folder.uid_next,
                subscribed: folder.subscribed,
                messages,
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
    Ok((MailState::restore(folders, delivered, index.entries), tracker, index.covers))
}

/// The checkpoint an entry names, if it is a checkpoint entry.
pub(super) fn named(ops: &[MailOp]) -> Option<(&Capability, u64)> {
    ops.iter().find_map(|op| match op {
        MailOp::Checkpoint { state, covers } => Some((state, *covers)),
        _ => None,
    })
}
