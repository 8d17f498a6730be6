//! Fragments in this node's local store: the only place the storage
//! service touches `epost-store`. Keys are the object id followed by the
//! fragment index, so one object's fragments sit together and a range scan
//! lists them. Every read is verified; a fragment that fails is deleted and
//! reported, never returned.
//!
//! Beside each fragment, under the same key, is who it is charged to
//! ([`FRAG_CHARGES`]), written in the same commit; whatever stores or
//! extends a fragment goes through [`super::quota`] first.

use std::collections::{BTreeMap, HashMap};

use epost_dht::PeerId;
use epost_store::{Batch, Store};

use super::quota::{Admission, Charges, Moves, QuotaLimits, QuotaStats};
use crate::keyspaces::{BLOCKS, FRAG_CHARGES};
use epost_types::fragment::Fragment;
use epost_types::id::ObjectId;
use epost_types::limits::MAX_RENEW;

/// Why a local store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("no space left on this node's disk")]
    NoSpace,
    #[error("this node keeps at most {capacity} bytes of fragments and holds {stored}")]
    Full { stored: u64, capacity: u64 },
    #[error("the peer's quota here is {quota} bytes and {charged} are charged to it")]
    OverQuota { charged: u64, quota: u64 },
    #[error("this node already keeps fragments for {max} peers")]
    TooManyPeers { max: usize },
    #[error("fragment {index} of {id} was corrupt on disk and has been dropped")]
    Corrupt { id: ObjectId, index: u8 },
    #[error(transparent)]
    Store(epost_store::StoreError),
}

impl LocalError {
    fn refused(admission: Admission) -> Self {
        match admission {
            Admission::Full { stored, capacity } => Self::Full { stored, capacity },
            Admission::OverQuota { charged, quota } => Self::OverQuota { charged, quota },
            Admission::TooManyPeers { max } => Self::TooManyPeers { max },
            // Not a refusal; never passed here.
            Admission::Accept => Self::TooManyPeers { max: 0 },
        }
    }
}

/// A fragment held here, and who it is charged to (`None`: stored before
/// charges were kept, charged to nobody until it is stored or extended).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    len: u64,
    expires: u64,
    sponsor: Option<PeerId>,
}

/// A charge as stored: the fragment's length, then the peer's id.
fn encode_charge(len: u64, sponsor: &PeerId) -> Vec<u8> {
    let mut value = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes().to_vec();
    value.extend_from_slice(&sponsor.to_bytes());
    value
}

fn decode_charge(value: &[u8]) -> Option<(u64, PeerId)> {
    let len: [u8; 4] = value.get(..4)?.try_into().ok()?;
    let peer = PeerId::from_bytes(value.get(4..)?).ok()?;
    Some((u64::from(u32::from_be_bytes(len)), peer))
}

impl From<epost_store::StoreError> for LocalError {
    fn from(e: epost_store::StoreError) -> Self {
        if e.is_no_space() { Self::NoSpace } else { Self::Store(e) }
    }
}

const KEY_LEN: usize = 33;

fn key(id: ObjectId, index: u8) -> [u8; KEY_LEN] {
    let mut key = [0u8; KEY_LEN];
    key[..32].copy_from_slice(id.as_bytes());
    key[32] = index;
    key
}

fn split(key: &[u8]) -> Option<(ObjectId, u8)> {
    let id: [u8; 32] = key.get(..32)?.try_into().ok()?;
    Some((ObjectId::from_bytes(id), *key.get(32)?))
}

/// The node's fragments. Cheap to clone; all clones share one store.
#[derive(Clone)]
pub struct LocalFragments {
    store: Store,
    charges: Charges,
}

impl LocalFragments {
    /// The fragments in `store`, with their charges counted from it; `own`
    /// is this node, which `limits` bind by its capacity only.
    pub fn new(store: Store, limits: QuotaLimits, own: PeerId) -> Self {
        let local = Self { store, charges: Charges::new(limits, own) };
        if let Err(e) = local.recount(epost_types::time::Timestamp::now().as_millis()) {
            // The next maintenance pass counts again.
            tracing::warn!(error = %crate::chain::Chain(&e), "cannot count the fragments' charges");
        }
        local
    }

    /// The quota's totals now.
    pub fn quota(&self) -> QuotaStats {
        self.charges.stats()
    }

    /// Bytes charged to `peer` here.
    pub fn charged_to(&self, peer: &PeerId) -> u64 {
        self.charges.of(peer)
    }

    /// Counts the live charges again, replacing the running totals (which
    /// only ever overcount: fragments that expired since still count).
    pub(crate) fn recount(&self, now: u64) -> Result<(), LocalError> {
        let mut totals: HashMap<PeerId, u64> = HashMap::new();
        self.store.for_each_live(&FRAG_CHARGES, now, 4096, |_, entry| {
            if let Some((len, peer)) = decode_charge(&entry.value) {
                *totals.entry(peer).or_default() += len;
            }
        })?;
        self.charges.replace(totals);
        Ok(())
    }

    fn held_at(&self, id: ObjectId, index: u8) -> Result<Option<Held>, LocalError> {
        let key = key(id, index);
        let Some(block) = self.store.get(&BLOCKS, &key)? else { return Ok(None) };
        let sponsor = self
            .store
            .get(&FRAG_CHARGES, &key)?
            .and_then(|c| decode_charge(&c.value))
            .map(|(_, p)| p);
        Ok(Some(Held { len: block.value.len() as u64, expires: block.expires, sponsor }))
    }

    /// Every fragment of `id` held here, by index.
    fn held_of(&self, id: ObjectId) -> Result<BTreeMap<u8, Held>, LocalError> {
        let mut held: BTreeMap<u8, Held> = BTreeMap::new();
        for (k, entry) in self.store.scan_prefix(&BLOCKS, id.as_bytes(), None, 256)? {
            if let Some((_, index)) = split(&k) {
                let len = entry.value.len() as u64;
                held.insert(index, Held { len, expires: entry.expires, sponsor: None });
            }
        }
        for (k, entry) in self.store.scan_prefix(&FRAG_CHARGES, id.as_bytes(), None, 256)? {
            if let (Some((_, index)), Some((_, peer))) = (split(&k), decode_charge(&entry.value))
                && let Some(h) = held.get_mut(&index)
            {
                h.sponsor = Some(peer);
            }
        }
        Ok(held)
    }

    /// Stores verified fragments durably until `expires` (or later, if
    /// held with a later lease), charged to `sponsor`, in one commit; if
    /// the quota refuses, nothing is stored.
    pub(crate) async fn put(
        &self,
        sponsor: PeerId,
        fragments: Vec<(Fragment, Vec<u8>)>,
        expires: u64,
    ) -> Result<(), LocalError> {
        // A fragment offered twice is stored (and charged) once.
        let mut unique: BTreeMap<(ObjectId, u8), Vec<u8>> = BTreeMap::new();
        for (f, bytes) in fragments {
            unique.insert((f.object_id, f.index), bytes);
        }
        let (mut new, mut moves, mut batch) = (0u64, Moves::new(), Batch::new());
        for ((id, index), bytes) in unique {
            let k = key(id, index);
            let (len, lease) = match self.held_at(id, index)? {
                None => {
                    new += bytes.len() as u64;
                    (bytes.len() as u64, expires)
                }
                // The bytes held are kept (the keyspace is immutable).
                Some(held) => {
                    moves.push((held.sponsor, held.len));
                    (held.len, held.expires.max(expires))
                }
            };
            batch.put(&FRAG_CHARGES, k.to_vec(), encode_charge(len, &sponsor), lease);
            batch.put(&BLOCKS, k.to_vec(), bytes, expires);
        }
        let stored = self.store.stats(&BLOCKS).bytes;
        let reservation =
            self.charges.reserve(sponsor, stored, new, moves).map_err(LocalError::refused)?;
        self.store.commit(batch).await?;
        reservation.commit();
        Ok(())
    }

    /// The encoded fragment, verified against itself and its key.
    pub(crate) async fn get(&self, id: ObjectId, index: u8) -> Result<Option<Vec<u8>>, LocalError> {
        let Some(block) = self.store.get(&BLOCKS, &key(id, index))? else { return Ok(None) };
        if Fragment::decode_checked(&block.value, id, index).is_err() {
            self.delete(id, index).await?;
            return Err(LocalError::Corrupt { id, index });
        }
        Ok(Some(block.value))
    }

    /// Indices of `id` held here (unchecked; see [`Self::scrub`]).
    pub(crate) fn indices(&self, id: ObjectId) -> Result<Vec<u8>, LocalError> {
        self.indices_leased_after(id, 0)
    }

    /// Indices of `id` held here whose lease has not ended by `now`: what
    /// this node tells a peer it holds (an expired fragment is garbage).
    pub(crate) fn indices_leased_after(
        &self,
        id: ObjectId,
        now: u64,
    ) -> Result<Vec<u8>, LocalError> {
        let page = self.store.scan_prefix(&BLOCKS, id.as_bytes(), None, 256)?;
        Ok(page
            .into_iter()
            .filter(|(_, entry)| entry.expires >= now)
            .filter_map(|(k, _)| split(&k).map(|(_, index)| index))
            .collect())
    }

    /// Indices of `id` whose fragment still verifies and whose lease has
    /// not ended by `now`; bad ones are dropped and returned as the second
    /// list (expired ones are left for garbage collection).
    pub(crate) async fn scrub(
        &self,
        id: ObjectId,
        now: u64,
    ) -> Result<(Vec<u8>, Vec<u8>), LocalError> {
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for index in self.indices(id)? {
            let Some(block) = self.store.get(&BLOCKS, &key(id, index))? else { continue };
            if block.expires < now {
                continue;
            }
            if Fragment::decode_checked(&block.value, id, index).is_ok() {
                good.push(index);
            } else {
                self.delete(id, index).await?;
                bad.push(index);
            }
        }
        Ok((good, bad))
    }

    /// When the lease of fragment `index` of `id` ends.
    pub(crate) fn expiry(&self, id: ObjectId, index: u8) -> Result<Option<u64>, LocalError> {
        Ok(self.store.get(&BLOCKS, &key(id, index))?.map(|m| m.expires))
    }

    /// Extends every fragment held here of each object in `ids` to at
    /// least `expires`, charging them to `sponsor`, one commit per
    /// [`MAX_RENEW`] objects; returns per object the indices held (each now
    /// leased until `expires` or later). If the quota refuses a part,
    /// that part and the rest are not extended.
    pub(crate) async fn extend(
        &self,
        sponsor: PeerId,
        ids: &[ObjectId],
        expires: u64,
    ) -> Result<Vec<Vec<u8>>, LocalError> {
        let mut out = Vec::with_capacity(ids.len());
        for part in ids.chunks(MAX_RENEW) {
            let (mut moves, mut batch) = (Moves::new(), Batch::new());
            for id in part {
                let held = self.held_of(*id)?;
                for (index, h) in &held {
                    let k = key(*id, *index).to_vec();
                    let lease = h.expires.max(expires);
                    batch.extend(&BLOCKS, k.clone(), expires);
                    batch.put(&FRAG_CHARGES, k, encode_charge(h.len, &sponsor), lease);
                    moves.push((h.sponsor, h.len));
                }
                out.push(held.into_keys().collect());
            }
            let stored = self.store.stats(&BLOCKS).bytes;
            let reservation =
                self.charges.reserve(sponsor, stored, 0, moves).map_err(LocalError::refused)?;
            self.store.commit(batch).await?;
            reservation.commit();
        }
        Ok(out)
    }

    /// Deletes a fragment and its charge.
    pub(crate) async fn delete(&self, id: ObjectId, index: u8) -> Result<(), LocalError> {
        let k = key(id, index).to_vec();
        let charge = self.store.get(&FRAG_CHARGES, &k)?.and_then(|c| decode_charge(&c.value));
        let mut batch = Batch::new();
        batch.delete(&BLOCKS, k.clone());
        batch.delete(&FRAG_CHARGES, k);
        self.store.commit(batch).await?;
        if let Some((len, sponsor)) = charge {
            self.charges.release(sponsor, len);
        }
        Ok(())
    }

    /// Distinct object ids after `cursor`, in key order, at most `limit`.
    pub(crate) fn objects_after(
        &self,
        cursor: Option<ObjectId>,
        limit: usize,
    ) -> Result<Vec<ObjectId>, LocalError> {
        // Past every fragment of the cursor object: its index 255 key, then on.
        let start = cursor.map_or_else(Vec::new, |id| {
            let mut k = key(id, u8::MAX).to_vec();
            k.push(0);
            k
        });
        let mut out: Vec<ObjectId> = Vec::with_capacity(limit);
        let mut from = start;
        'pages: loop {
            let page = self.store.scan(&BLOCKS, &from, 1024)?;
            let Some((last, _)) = page.last() else { break };
            let mut next = last.clone();
            next.push(0);
            for (k, _) in &page {
                if let Some((id, _)) = split(k)
                    && out.last() != Some(&id)
                {
                    if out.len() == limit {
                        break 'pages;
                    }
                    out.push(id);
                }
            }
            if page.len() < 1024 {
                break;
            }
            from = next;
        }
        Ok(out)
    }

    /// Drops every fragment whose lease ended before `now`, and its
    /// charge, then counts the charges again; returns how many fragments.
    pub(crate) async fn collect_expired(&self, now: u64) -> Result<u64, LocalError> {
        let removed = self.store.expire(&BLOCKS, now).await?;
        self.store.expire(&FRAG_CHARGES, now).await?;
        self.recount(now)?;
        Ok(removed)
    }

    /// (fragments, bytes) held here.
    pub fn usage(&self) -> (u64, u64) {
        let stats = self.store.stats(&BLOCKS);
        (stats.count, stats.bytes)
    }

    /// Test hook: flips one bit of the data of the first fragment of `id`
    /// held here, bypassing every check, as a failing disk would. Returns
    /// whether one was.
    pub(crate) async fn flip_bit(&self, id: ObjectId) -> Result<bool, LocalError> {
        let Some(index) = self.indices(id)?.first().copied() else { return Ok(false) };
        let Some(block) = self.store.get(&BLOCKS, &key(id, index))? else { return Ok(false) };
        let Ok(mut fragment) = Fragment::decode(&block.value) else { return Ok(false) };
        let Some(byte) = fragment.data.first_mut() else { return Ok(false) };
        *byte ^= 1;
        self.store.delete(&BLOCKS, key(id, index).to_vec()).await?;
        self.store.put(&BLOCKS, key(id, index).to_vec(), fragment.encode(), block.expires).await?;
        Ok(true)
    }
}
