//! Fragments in this node's local store: the only place the storage
//! service touches `epost-store`. Keys are the object id followed by the
//! fragment index, so one object's fragments sit together and a range scan
//! lists them. Every read is verified; a fragment that fails is deleted and
//! reported, never returned.

use epost_store::Store;

use crate::keyspaces::BLOCKS;
use epost_types::fragment::Fragment;
use epost_types::id::ObjectId;

/// Why a local store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("no space left on this node's disk")]
    NoSpace,
    #[error("fragment {index} of {id} was corrupt on disk and has been dropped")]
    Corrupt { id: ObjectId, index: u8 },
    #[error(transparent)]
    Store(epost_store::StoreError),
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
}

impl LocalFragments {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// Stores verified fragments durably (one group commit for the lot).
    pub(crate) async fn put(
        &self,
        fragments: Vec<(Fragment, Vec<u8>)>,
        expires: u64,
    ) -> Result<(), LocalError> {
        let puts = fragments.into_iter().map(|(f, bytes)| {
            self.store.put(&BLOCKS, key(f.object_id, f.index).to_vec(), bytes, expires)
        });
        for result in futures::future::join_all(puts).await {
            result?;
        }
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

    /// Extends every fragment of `id` held here to `expires`.
    pub(crate) async fn extend(&self, id: ObjectId, expires: u64) -> Result<u32, LocalError> {
        let mut n = 0;
        for index in self.indices(id)? {
            self.store.extend(&BLOCKS, key(id, index).to_vec(), expires).await?;
            n += 1;
        }
        Ok(n)
    }

    /// Extends every fragment held here of each object in `ids` to at
    /// least `expires`, in one commit; returns per object the indices held
    /// (each now leased until `expires` or later).
    pub(crate) async fn renew(
        &self,
        ids: &[ObjectId],
        expires: u64,
    ) -> Result<Vec<Vec<u8>>, LocalError> {
        let mut batch = epost_store::Batch::new();
        let mut held = Vec::with_capacity(ids.len());
        for id in ids {
            let indices = self.indices(*id)?;
            for index in &indices {
                batch.extend(&BLOCKS, key(*id, *index).to_vec(), expires);
            }
            held.push(indices);
        }
        self.store.commit(batch).await?;
        Ok(held)
    }

    pub(crate) async fn delete(&self, id: ObjectId, index: u8) -> Result<(), LocalError> {
        Ok(self.store.delete(&BLOCKS, key(id, index).to_vec()).await?)
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

    /// Drops every fragment whose lease ended before `now`; returns how many.
    pub(crate) async fn collect_expired(&self, now: u64) -> Result<u64, LocalError> {
        Ok(self.store.expire(&BLOCKS, now).await?)
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
