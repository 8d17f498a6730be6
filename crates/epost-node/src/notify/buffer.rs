//! The pending buffer: the notifications this node holds for inboxes, and
//! the ids their recipients have receipted, durable in the local store's
//! record space and indexed in memory.
//!
//! On disk, in two keyspaces of its own, both keyed `inbox || id` (64
//! bytes):
//!
//! - [`NOTIFY_PENDING`]: a pending notification; the value is the encoded
//!   `SealedNotification` as delivered, the entry's expiry its lease (the
//!   sender's `expires`, capped).
//! - [`NOTIFY_RECEIPTED`]: a receipted id; the value is a versioned
//!   `{v: 1, recipient}` naming the key that receipted it, the expiry that
//!   of the notification it released.
//!
//! Memory holds only the index (recipient key and expiry per entry); the
//! notifications themselves are read from disk when pulled. Every change
//! is on disk before the caller is answered. Start-up reads only live
//! entries; expired ones are removed by [`Buffer::collect_expired`].

use std::collections::{BTreeMap, HashMap, HashSet};

use epost_store::{Keyspace, Store, StoreError};
use epost_types::cbor::{self, Versioned};
use epost_types::notify::SealedNotification;
use epost_types::sign::VerifyingKey;
use futures::future::join_all;
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use super::NotifyConfig;
use crate::keyspaces::{NOTIFY_PENDING, NOTIFY_RECEIPTED};

/// Length of both kinds of key.
const KEY_LEN: usize = 64;
/// Entries read per page while reloading.
const PAGE: usize = 1024;
/// Store mutations in flight at once (the committer groups them).
const WRITE_BATCH: usize = 1024;

/// Why the buffer could not keep or release something.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BufferError {
    #[error("inbox {inbox} holds {held} notifications; at most {max} are kept")]
    InboxFull { inbox: String, held: usize, max: usize },
    #[error("this holder keeps {held} notifications; at most {max}")]
    HolderFull { held: usize, max: usize },
    #[error("the local store failed: {0}")]
    Store(#[from] StoreError),
}

/// What a delivery changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Kept {
    /// Every id now held or already receipted, in request order.
    pub(crate) ids: Vec<[u8; 32]>,
    pub(crate) new: usize,
    pub(crate) duplicates: usize,
    pub(crate) expired: usize,
}

/// What a reload found.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Loaded {
    pub(crate) pending: usize,
    pub(crate) receipted: usize,
    /// Entries that did not decode, or whose lease had ended.
    pub(crate) dropped: usize,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiptedValue {
    v: u8,
    recipient: VerifyingKey,
}

impl Versioned for ReceiptedValue {
    const VERSION: u8 = 1;

    fn version(&self) -> u8 {
        self.v
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    recipient: VerifyingKey,
    expires: u64,
}

#[derive(Debug, Default)]
struct Inbox {
    /// By id, so pages come out in a stable order.
    pending: BTreeMap<[u8; 32], Entry>,
    receipted: HashMap<[u8; 32], Entry>,
}

pub(crate) struct Buffer {
    store: Store,
    config: NotifyConfig,
    inboxes: HashMap<[u8; 32], Inbox>,
    pending_total: usize,
    receipted_total: usize,
}

pub(crate) fn key(inbox: &[u8; 32], id: &[u8; 32]) -> Vec<u8> {
    let mut key = Vec::with_capacity(KEY_LEN);
    key.extend_from_slice(inbox);
    key.extend_from_slice(id);
    key
}

fn split_key(key: &[u8]) -> Option<([u8; 32], [u8; 32])> {
    if key.len() != KEY_LEN {
        return None;
    }
    let inbox = key[..32].try_into().ok()?;
    let id = key[32..].try_into().ok()?;
    Some((inbox, id))
}

fn short(inbox: &[u8; 32]) -> String {
    data_encoding::HEXLOWER.encode(&inbox[..8])
}

impl Buffer {
    /// Reloads what was held at the last shutdown: only live entries are
    /// read. Entries that fail to decode are deleted.
    pub(crate) async fn load(
        store: Store,
        config: NotifyConfig,
        now: u64,
    ) -> Result<(Self, Loaded), StoreError> {
        let mut buffer =
            Self { store, config, inboxes: HashMap::new(), pending_total: 0, receipted_total: 0 };
        let mut loaded = Loaded::default();
        for keyspace in [NOTIFY_PENDING, NOTIFY_RECEIPTED] {
            let mut doomed = Vec::new();
            let mut found = Vec::new();
            buffer.store.for_each_live(&keyspace, now, PAGE, |raw_key, record| {
                let entry = split_key(&raw_key).and_then(|(inbox, id)| {
                    decode_entry(&keyspace, &inbox, &id, &record.value, record.expires)
                        .map(|e| (inbox, id, e))
                });
                match entry {
                    Some(entry) => found.push(entry),
                    None => doomed.push(raw_key),
                }
            })?;
            for (inbox, id, entry) in found {
                let slot = buffer.inboxes.entry(inbox).or_default();
                if keyspace == NOTIFY_PENDING {
                    slot.pending.insert(id, entry);
                    buffer.pending_total += 1;
                    loaded.pending += 1;
                } else {
                    slot.receipted.insert(id, entry);
                    buffer.receipted_total += 1;
                    loaded.receipted += 1;
                }
            }
            loaded.dropped += doomed.len();
            buffer.delete_all(&keyspace, doomed).await?;
        }
        Ok((buffer, loaded))
    }

    pub(crate) fn pending_count(&self, inbox: &[u8; 32]) -> usize {
        self.inboxes.get(inbox).map_or(0, |i| i.pending.len())
    }

    pub(crate) fn pending_total(&self) -> usize {
        self.pending_total
    }

    pub(crate) fn receipted_total(&self) -> usize {
        self.receipted_total
    }

    /// The keys the buffer has seen receipts and notifications for at
    /// `inbox`: the only ones that may release or pull there.
    pub(crate) fn recipients(&self, inbox: &[u8; 32]) -> Vec<VerifyingKey> {
        let Some(slot) = self.inboxes.get(inbox) else { return Vec::new() };
        let keys: HashSet<VerifyingKey> =
            slot.pending.values().chain(slot.receipted.values()).map(|e| e.recipient).collect();
        let mut keys: Vec<VerifyingKey> = keys.into_iter().collect();
        keys.sort();
        keys
    }

    /// Keeps `notifications` (decoded, with their encoding), each until its
    /// own expiry capped at the maximum lease, unless already held,
    /// already receipted, or expired. All or nothing with respect to the
    /// limits: if the new ones do not fit, nothing is kept.
    pub(crate) async fn keep(
        &mut self,
        notifications: Vec<(SealedNotification, Vec<u8>)>,
        now: u64,
    ) -> Result<Kept, BufferError> {
        let lease = u64::try_from(self.config.max_lease.as_millis()).unwrap_or(u64::MAX);
        let cap = now.saturating_add(lease);
        let mut kept = Kept::default();
        let mut seen = HashSet::new();
        let mut fresh = Vec::new();
        let mut order = Vec::new();
        let mut per_inbox: HashMap<[u8; 32], usize> = HashMap::new();
        for (sealed, bytes) in notifications {
            let id = sealed.id;
            let slot = self.inboxes.get(&sealed.inbox);
            let held =
                slot.is_some_and(|s| s.pending.contains_key(&id) || s.receipted.contains_key(&id));
            if held || !seen.insert((sealed.inbox, id)) {
                kept.duplicates += 1;
                if !order.contains(&id) {
                    order.push(id);
                }
                continue;
            }
            let expires = sealed.expires.as_millis().min(cap);
            if expires <= now {
                kept.expired += 1;
                continue;
            }
            order.push(id);
            *per_inbox.entry(sealed.inbox).or_default() += 1;
            fresh.push((sealed, bytes, expires));
        }
        for (inbox, new) in &per_inbox {
            let held = self.pending_count(inbox);
            let max = self.config.max_pending_per_inbox;
            if held + new > max {
                return Err(BufferError::InboxFull { inbox: short(inbox), held, max });
            }
        }
        if self.pending_total + fresh.len() > self.config.max_pending_total {
            return Err(BufferError::HolderFull {
                held: self.pending_total,
                max: self.config.max_pending_total,
            });
        }

        let (filed, writes): (Vec<_>, Vec<_>) = fresh
            .into_iter()
            .map(|(sealed, bytes, expires)| {
                let key = key(&sealed.inbox, &sealed.id);
                let entry = Entry { recipient: sealed.recipient, expires };
                (
                    (sealed.inbox, sealed.id, entry),
                    self.store.put(&NOTIFY_PENDING, key, bytes, expires),
                )
            })
            .unzip();
        let results = join_all(writes).await;
        let mut failure = None;
        for ((inbox, id, entry), result) in filed.into_iter().zip(results) {
            match result {
                Ok(()) => {
                    let slot = self.inboxes.entry(inbox).or_default();
                    if slot.pending.insert(id, entry).is_none() {
                        self.pending_total += 1;
                    }
                    kept.new += 1;
                }
                Err(e) => failure = Some(e),
            }
        }
        match failure {
            // What was written is held (and reloads); the sender retries
            // the lot and the rest count as duplicates.
            Some(e) => Err(e.into()),
            None => {
                kept.ids = order;
                Ok(kept)
            }
        }
    }

    /// Releases the notifications `ids` at `inbox` whose recipient is
    /// `signer` (the caller verified the receipt under that key), and
    /// remembers every named id as receipted by `signer`, so a late
    /// re-delivery is not kept. Returns how many were released.
    pub(crate) async fn release(
        &mut self,
        inbox: &[u8; 32],
        signer: VerifyingKey,
        ids: &[[u8; 32]],
        now: u64,
    ) -> Result<usize, BufferError> {
        let lease = u64::try_from(self.config.max_lease.as_millis()).unwrap_or(u64::MAX);
        let slot = self.inboxes.entry(*inbox).or_default();
        let mut released = Vec::new();
        let mut remembered = Vec::new();
        let mut named = HashSet::new();
        for id in ids.iter().filter(|id| named.insert(**id)) {
            match slot.pending.get(id) {
                Some(entry) if entry.recipient == signer => {
                    released.push(*id);
                    remembered.push((*id, Entry { recipient: signer, expires: entry.expires }));
                }
                // Someone else's notification under the same id: not ours to release.
                Some(_) => {}
                None if !slot.receipted.contains_key(id) => {
                    let expires = now.saturating_add(lease);
                    remembered.push((*id, Entry { recipient: signer, expires }));
                }
                None => {}
            }
        }

        // Receipted markers first: a crash in between leaves the
        // notification held and receipted, which the next receipt or the
        // lease clears, never a released id that could be kept again.
        let value = cbor::encode(&ReceiptedValue { v: 1, recipient: signer });
        let puts = remembered.iter().map(|(id, entry)| {
            self.store.put(&NOTIFY_RECEIPTED, key(inbox, id), value.clone(), entry.expires)
        });
        for result in join_all(puts).await {
            result?;
        }
        let slot = self.inboxes.entry(*inbox).or_default();
        for (id, entry) in remembered {
            if slot.receipted.insert(id, entry).is_none() {
                self.receipted_total += 1;
            }
        }
        let deletes = released.iter().map(|id| self.store.delete(&NOTIFY_PENDING, key(inbox, id)));
        let results = join_all(deletes).await;
        let slot = self.inboxes.entry(*inbox).or_default();
        let mut count = 0;
        let mut failure = None;
        for (id, result) in released.iter().zip(results) {
            match result {
                Ok(()) => {
                    if slot.pending.remove(id).is_some() {
                        self.pending_total -= 1;
                        count += 1;
                    }
                }
                Err(e) => failure = Some(e),
            }
        }
        self.forget_oldest_receipts(inbox).await?;
        match failure {
            Some(e) => Err(e.into()),
            None => Ok(count),
        }
    }

    /// Keeps the receipted set of `inbox` within its bound, forgetting the
    /// ids whose lease ends soonest.
    async fn forget_oldest_receipts(&mut self, inbox: &[u8; 32]) -> Result<(), StoreError> {
        let max = self.config.max_receipted_per_inbox;
        let Some(slot) = self.inboxes.get_mut(inbox) else { return Ok(()) };
        let excess = slot.receipted.len().saturating_sub(max);
        if excess == 0 {
            return Ok(());
        }
        let mut by_expiry: Vec<([u8; 32], u64)> =
            slot.receipted.iter().map(|(id, e)| (*id, e.expires)).collect();
        by_expiry.sort_unstable_by_key(|(id, expires)| (*expires, *id));
        let doomed: Vec<[u8; 32]> = by_expiry.into_iter().take(excess).map(|(id, _)| id).collect();
        for id in &doomed {
            slot.receipted.remove(id);
        }
        self.receipted_total -= doomed.len();
        let keys = doomed.iter().map(|id| key(inbox, id)).collect();
        self.delete_all(&NOTIFY_RECEIPTED, keys).await
    }

    /// Up to `max` notifications held at `inbox` for `recipient` whose
    /// lease has not ended by `now`, in id order, as they were delivered.
    /// An entry that no longer reads back intact is dropped, not served.
    pub(crate) async fn page(
        &mut self,
        inbox: &[u8; 32],
        recipient: &VerifyingKey,
        max: usize,
        now: u64,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let Some(slot) = self.inboxes.get(inbox) else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        let mut lost = Vec::new();
        for (id, entry) in &slot.pending {
            if out.len() == max {
                break;
            }
            if entry.recipient != *recipient || entry.expires <= now {
                continue;
            }
            let stored = self.store.get(&NOTIFY_PENDING, &key(inbox, id))?;
            match stored
                .filter(|r| decode_entry(&NOTIFY_PENDING, inbox, id, &r.value, r.expires).is_some())
            {
                Some(record) => out.push(record.value),
                None => lost.push(*id),
            }
        }
        if !lost.is_empty() {
            warn!(inbox = %short(inbox), count = lost.len(), "dropped unreadable notifications");
            if let Some(slot) = self.inboxes.get_mut(inbox) {
                for id in &lost {
                    slot.pending.remove(id);
                }
            }
            self.pending_total -= lost.len();
            self.delete_all(&NOTIFY_PENDING, lost.iter().map(|id| key(inbox, id)).collect())
                .await?;
        }
        Ok(out)
    }

    /// Removes every notification and receipted id whose lease ended at
    /// or before `now`, from memory and from disk (where entries that
    /// expired while the node was down are too); returns how many.
    pub(crate) async fn collect_expired(&mut self, now: u64) -> Result<usize, StoreError> {
        for slot in self.inboxes.values_mut() {
            let (pending, receipted) = (slot.pending.len(), slot.receipted.len());
            slot.pending.retain(|_, entry| entry.expires > now);
            slot.receipted.retain(|_, entry| entry.expires > now);
            self.pending_total -= pending - slot.pending.len();
            self.receipted_total -= receipted - slot.receipted.len();
        }
        self.inboxes.retain(|_, slot| !slot.pending.is_empty() || !slot.receipted.is_empty());
        // The store removes leases ending before its bound: up to `now`
        // included, as in memory.
        let bound = now.saturating_add(1);
        let removed = self.store.expire(&NOTIFY_PENDING, bound).await?
            + self.store.expire(&NOTIFY_RECEIPTED, bound).await?;
        if removed > 0 {
            debug!(removed, "notification leases ended");
        }
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }

    async fn delete_all(&self, keyspace: &Keyspace, keys: Vec<Vec<u8>>) -> Result<(), StoreError> {
        for chunk in keys.chunks(WRITE_BATCH) {
            let deletes = chunk.iter().map(|k| self.store.delete(keyspace, k.clone()));
            for result in join_all(deletes).await {
                result?;
            }
        }
        Ok(())
    }
}

/// The index entry of a stored value, if it is intact and belongs under
/// its key.
fn decode_entry(
    keyspace: &Keyspace,
    inbox: &[u8; 32],
    id: &[u8; 32],
    value: &[u8],
    expires: u64,
) -> Option<Entry> {
    if *keyspace == NOTIFY_PENDING {
        let sealed = SealedNotification::decode(value).ok()?;
        (sealed.inbox == *inbox && sealed.id == *id)
            .then_some(Entry { recipient: sealed.recipient, expires })
    } else {
        let stored: ReceiptedValue = cbor::decode(value, 128).ok()?;
        Some(Entry { recipient: stored.recipient, expires })
    }
}
