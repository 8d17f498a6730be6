//! The lease book: what this node renews, on disk in four keyspaces of its
//! own, changed by one task only (adding an owner to a root and removing
//! another's must never lose either).
//!
//! - [`LEASE_ROOTS`]: root object id → [`RootValue`]; the entry's expiry
//!   is the lease end last secured on the holders for the root and every
//!   object under it.
//! - [`LEASE_MEMBERS`]: root id || object id, for every object under a
//!   root besides itself (a message's part and chunk objects, a
//!   checkpoint's pages).
//! - [`LEASE_OWNERS`]: owner id || root id, to find an owner's roots.
//! - [`OWNED_HEADS`]: log id → [`OwnedHead`], the newest head of each log
//!   written here, republished by the renewal.
//!
//! Each change commits in one transaction with whatever marks its caller
//! asks written alongside (the mail service's position in its log), and
//! changes queued meanwhile share that commit.

use std::collections::{BTreeSet, HashMap};

use epost_store::{Batch, Store, StoreError, successor};
use epost_types::address::Address;
use epost_types::capability::Capability;
use epost_types::cbor::{self, Versioned};
use epost_types::hash::sha256_parts;
use epost_types::id::{LogId, ObjectId};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteArray;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::chain::Chain;
use crate::keyspaces::{LEASE_MEMBERS, LEASE_OWNERS, LEASE_ROOTS, MAIL_MARKS, OWNED_HEADS};
use crate::worker::{Worker, WorkerCtx, Workers};

/// Changes queued before callers wait.
const QUEUE: usize = 1024;
/// Changes that share one commit at most.
const GROUP: usize = 64;
/// Roots dropped per commit when a whole owner goes.
const FORGET_PAGE: usize = 512;

/// Who holds a root: a hosted user's mail, or their logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OwnerId([u8; 32]);

impl OwnerId {
    /// The messages in `address`'s folders and its mail-state checkpoint.
    pub fn mail(address: &Address) -> Self {
        Self(sha256_parts(&[b"epost/v1/lease-owner/mail/", address.as_str().as_bytes()]))
    }

    /// The entries of `address`'s logs.
    pub fn logs(address: &Address) -> Self {
        Self(sha256_parts(&[b"epost/v1/lease-owner/logs/", address.as_str().as_bytes()]))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// What a root is, for listing its objects and for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RootKind {
    /// A message manifest: its part objects (and their chunks) are members.
    Message,
    /// One entry of a log: the object itself.
    LogEntry,
    /// A mail-state checkpoint index: its pages are members.
    MailState,
}

/// A root to hold for an owner.
#[derive(Debug, Clone)]
pub struct NewRoot {
    pub id: ObjectId,
    pub kind: RootKind,
    /// Opens the root, to list its objects later when `members` is `None`.
    pub capability: Option<Capability>,
    /// Every object under the root besides itself, when known.
    pub members: Option<Vec<ObjectId>>,
    /// The lease its objects were stored with (0 if unknown: due now).
    pub expires: u64,
}

/// A root as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RootValue {
    v: u8,
    kind: RootKind,
    capability: Option<Capability>,
    /// Sorted, no duplicates.
    owners: Vec<ByteArray<32>>,
    /// Whether [`LEASE_MEMBERS`] lists every object under the root.
    listed: bool,
}

impl Versioned for RootValue {
    const VERSION: u8 = 1;

    fn version(&self) -> u8 {
        self.v
    }
}

/// A root due for renewal.
#[derive(Debug, Clone)]
pub struct DueRoot {
    pub id: ObjectId,
    /// The lease end last secured.
    pub expires: u64,
    pub kind: RootKind,
    pub capability: Option<Capability>,
    /// Whether its members are known.
    pub listed: bool,
}

/// The newest head of a log written here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedHead {
    pub v: u8,
    /// The log's owner, hosted here.
    pub owner: Address,
    /// The log's name.
    pub name: String,
    /// The signed head record, as published.
    #[serde(with = "serde_bytes")]
    pub envelope: Vec<u8>,
    /// The head's sequence number.
    pub seq: u64,
    /// Entries `1..=registered` are in the book (the rest are registered
    /// by walking the log back, after an upgrade or a crash).
    pub registered: u64,
}

impl Versioned for OwnedHead {
    const VERSION: u8 = 1;

    fn version(&self) -> u8 {
        self.v
    }
}

impl OwnedHead {
    pub fn new(owner: Address, name: String, envelope: Vec<u8>, seq: u64, registered: u64) -> Self {
        Self { v: 1, owner, name, envelope, seq, registered }
    }
}

/// Why the book could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum BookError {
    #[error("the lease book's store failed")]
    Store(#[from] StoreError),
    #[error("the lease book entry of {id} is damaged")]
    Damaged { id: ObjectId, source: cbor::DecodeError },
    #[error("the lease book has stopped")]
    Stopped,
}

/// One change of one owner's holdings, committed as a whole.
#[derive(Debug, Default)]
pub struct Change {
    pub owner: Option<OwnerId>,
    pub add: Vec<NewRoot>,
    pub drop: Vec<ObjectId>,
    /// `(key, value)` in [`MAIL_MARKS`], written in the same commit.
    pub marks: Vec<(Vec<u8>, Vec<u8>)>,
    /// A log's head, changed in the same commit.
    pub head: Option<HeadUpdate>,
}

/// How a change moves a log's owned head.
#[derive(Debug)]
pub enum HeadUpdate {
    /// The writer published entry `seq` (registered in the same change):
    /// the head is now this one, and if every entry before it was
    /// registered, so is this one.
    Appended { log: LogId, owner: Address, name: String, envelope: Vec<u8>, seq: u64 },
    /// Entries up to `upto` were found and registered by walking the log.
    Registered { log: LogId, upto: u64 },
    /// A head found here that this node wrote before it kept a book (an
    /// upgrade): none of its entries is registered yet. Ignored if the
    /// log already has an owned head.
    Adopted { log: LogId, owner: Address, name: String, envelope: Vec<u8>, seq: u64 },
}

type Reply = oneshot::Sender<Result<(), BookError>>;

enum Command {
    Change(Change, Reply),
    Forget(Address, Reply),
    Renewed(Vec<(ObjectId, u64)>, Reply),
    Listed(ObjectId, Vec<ObjectId>, Reply),
    Lost(ObjectId, Reply),
}

/// The handle: reads go straight to the store, changes to the book's task.
#[derive(Clone)]
pub struct LeaseBook {
    store: Store,
    tx: mpsc::Sender<Command>,
}

impl LeaseBook {
    /// Starts the book's worker. Stopping it (after every writer stopped)
    /// commits what is queued; later changes fail `Stopped`.
    pub(crate) fn start(store: Store, workers: &Workers) -> (Self, Worker) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = workers.start("lease-book", |ctx| run(store.clone(), rx, ctx));
        (Self { store, tx }, task)
    }

    async fn send(&self, make: impl FnOnce(Reply) -> Command) -> Result<(), BookError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| BookError::Stopped)?;
        rx.await.map_err(|_| BookError::Stopped)?
    }

    /// Commits `change` (durable when this returns `Ok`).
    pub async fn change(&self, change: Change) -> Result<(), BookError> {
        self.send(|reply| Command::Change(change, reply)).await
    }

    /// Drops every root of `address` (mail and logs) and its owned heads:
    /// a removed user's objects are no longer renewed.
    pub async fn forget(&self, address: &Address) -> Result<(), BookError> {
        self.send(|reply| Command::Forget(address.clone(), reply)).await
    }

    /// Records that `roots` are now leased until the given times (a root
    /// dropped meanwhile stays dropped).
    pub async fn renewed(&self, roots: Vec<(ObjectId, u64)>) -> Result<(), BookError> {
        self.send(|reply| Command::Renewed(roots, reply)).await
    }

    /// Records the objects under `root`, found by opening it.
    pub async fn listed(&self, root: ObjectId, members: Vec<ObjectId>) -> Result<(), BookError> {
        self.send(|reply| Command::Listed(root, members, reply)).await
    }

    /// Drops `root` for every owner: its objects are gone from the holders.
    pub async fn lost(&self, root: ObjectId) -> Result<(), BookError> {
        self.send(|reply| Command::Lost(root, reply)).await
    }

    /// Up to `limit` roots whose lease ends before `until`, soonest first,
    /// after `after` (the last of an earlier page).
    pub fn due(
        &self,
        until: u64,
        after: Option<(u64, ObjectId)>,
        limit: usize,
    ) -> Result<Vec<DueRoot>, BookError> {
        let (from_expiry, from_key) = match &after {
            Some((expires, id)) => (*expires, successor(id.as_bytes())),
            None => (0, Vec::new()),
        };
        let page =
            self.store.expiring(&LEASE_ROOTS, (from_expiry, &from_key), Some(until), limit)?;
        let mut out = Vec::with_capacity(page.len());
        for (key, entry) in page {
            let Some(id) = object_id(&key) else { continue };
            let value = decode_root(id, &entry.value)?;
            out.push(DueRoot {
                id,
                expires: entry.expires,
                kind: value.kind,
                capability: value.capability,
                listed: value.listed,
            });
        }
        Ok(out)
    }

    /// The objects under `root` besides itself.
    pub fn members(&self, root: ObjectId) -> Result<Vec<ObjectId>, BookError> {
        prefixed_ids(&self.store, &LEASE_MEMBERS, root.as_bytes())
    }

    /// Every root `owner` holds.
    pub fn roots_of(&self, owner: OwnerId) -> Result<Vec<ObjectId>, BookError> {
        prefixed_ids(&self.store, &LEASE_OWNERS, owner.as_bytes())
    }

    /// When the lease of `root` ends, if the book holds it.
    pub fn expiry(&self, root: ObjectId) -> Result<Option<u64>, BookError> {
        Ok(self.store.get(&LEASE_ROOTS, root.as_bytes())?.map(|e| e.expires))
    }

    /// Every log head written here.
    pub fn heads(&self) -> Result<Vec<(LogId, OwnedHead)>, BookError> {
        read_heads(&self.store)
    }

    /// The head of log `log` written here, if any.
    pub fn head(&self, log: LogId) -> Result<Option<OwnedHead>, BookError> {
        let Some(entry) = self.store.get(&OWNED_HEADS, log.as_bytes())? else { return Ok(None) };
        Ok(cbor::decode(&entry.value, OWNED_HEADS.max_value()).ok())
    }

    /// A mark written by [`Change::marks`].
    pub fn mark(&self, key: &[u8]) -> Result<Option<Vec<u8>>, BookError> {
        Ok(self.store.get(&MAIL_MARKS, key)?.map(|e| e.value))
    }
}

/// Every owned head in the store.
fn read_heads(store: &Store) -> Result<Vec<(LogId, OwnedHead)>, BookError> {
    let mut out = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = store.scan_prefix(&OWNED_HEADS, &[], after.as_deref(), 256)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        let full = page.len() == 256;
        for (key, entry) in page {
            let Ok(id) = <[u8; 32]>::try_from(key.as_slice()) else { continue };
            match cbor::decode::<OwnedHead>(&entry.value, OWNED_HEADS.max_value()) {
                Ok(head) => out.push((LogId::from_bytes(id), head)),
                Err(e) => {
                    warn!(log = %LogId::from_bytes(id), error = %Chain(&e), "skipping a damaged owned head")
                }
            }
        }
        if !full {
            break;
        }
    }
    Ok(out)
}

fn object_id(key: &[u8]) -> Option<ObjectId> {
    <[u8; 32]>::try_from(key).ok().map(ObjectId::from_bytes)
}

fn decode_root(id: ObjectId, bytes: &[u8]) -> Result<RootValue, BookError> {
    cbor::decode(bytes, LEASE_ROOTS.max_value()).map_err(|source| BookError::Damaged { id, source })
}

/// The second halves of every `prefix (32) || id (32)` key.
fn prefixed_ids(
    store: &Store,
    keyspace: &epost_store::Keyspace,
    prefix: &[u8; 32],
) -> Result<Vec<ObjectId>, BookError> {
    let mut out = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = store.scan_prefix(keyspace, prefix, after.as_deref(), 1024)?;
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        let full = page.len() == 1024;
        out.extend(page.iter().filter_map(|(k, _)| k.get(32..).and_then(object_id)));
        if !full {
            break;
        }
    }
    Ok(out)
}

fn pair(a: &[u8; 32], b: &[u8; 32]) -> Vec<u8> {
    let mut key = Vec::with_capacity(64);
    key.extend_from_slice(a);
    key.extend_from_slice(b);
    key
}

async fn run(store: Store, mut rx: mpsc::Receiver<Command>, ctx: WorkerCtx) {
    loop {
        let first = tokio::select! {
            first = rx.recv() => first,
            () = ctx.stop.stopped() => {
                // Nothing new is taken; what was queued is committed.
                rx.close();
                rx.recv().await
            }
        };
        let Some(first) = first else { break };
        let _busy = ctx.busy();
        let mut group = vec![first];
        while group.len() < GROUP {
            match rx.try_recv() {
                Ok(more) => group.push(more),
                Err(_) => break,
            }
        }
        let mut work = Work::new(&store);
        let mut replies = Vec::new();
        for command in group {
            match command {
                // A whole owner commits in pages of its own.
                Command::Forget(address, reply) => {
                    let _ = reply.send(forget(&store, &address).await);
                }
                Command::Change(change, reply) => {
                    let applied = work.change(change);
                    replies.push((reply, applied));
                }
                Command::Renewed(roots, reply) => {
                    for (id, expires) in roots {
                        work.batch.extend(&LEASE_ROOTS, id.as_bytes().to_vec(), expires);
                    }
                    replies.push((reply, Ok(())));
                }
                Command::Listed(root, members, reply) => {
                    let applied = work.listed(root, members);
                    replies.push((reply, applied));
                }
                Command::Lost(root, reply) => {
                    let applied = work.lost(root);
                    replies.push((reply, applied));
                }
            }
        }
        let committed = work.commit().await;
        if let Err(e) = &committed {
            ctx.failed(e);
        }
        for (reply, applied) in replies {
            let result = match (&committed, applied) {
                (Ok(()), applied) => applied,
                (Err(e), _) => Err(BookError::Store(e.duplicate())),
            };
            let _ = reply.send(result);
        }
    }
}

/// The changes of one group, over what the store holds.
struct Work<'a> {
    store: &'a Store,
    /// Roots read or changed so far: `None` once dropped.
    roots: HashMap<ObjectId, Option<(RootValue, u64)>>,
    changed: BTreeSet<ObjectId>,
    /// Owned heads read or changed so far.
    heads: HashMap<LogId, Option<OwnedHead>>,
    batch: Batch,
}

impl<'a> Work<'a> {
    fn new(store: &'a Store) -> Self {
        Self {
            store,
            roots: HashMap::new(),
            changed: BTreeSet::new(),
            heads: HashMap::new(),
            batch: Batch::new(),
        }
    }

    fn head(&mut self, log: LogId) -> Result<&mut Option<OwnedHead>, BookError> {
        if !self.heads.contains_key(&log) {
            let stored = match self.store.get(&OWNED_HEADS, log.as_bytes())? {
                Some(entry) => cbor::decode(&entry.value, OWNED_HEADS.max_value()).ok(),
                None => None,
            };
            self.heads.insert(log, stored);
        }
        Ok(self.heads.entry(log).or_default())
    }

    fn update_head(&mut self, update: HeadUpdate) -> Result<(), BookError> {
        match update {
            HeadUpdate::Appended { log, owner, name, envelope, seq } => {
                let slot = self.head(log)?;
                let before = slot.as_ref().map_or(0, |h| h.registered);
                let registered = if before + 1 >= seq { seq } else { before };
                *slot = Some(OwnedHead::new(owner, name, envelope, seq, registered));
            }
            HeadUpdate::Adopted { log, owner, name, envelope, seq } => {
                let slot = self.head(log)?;
                if slot.is_none() {
                    *slot = Some(OwnedHead::new(owner, name, envelope, seq, 0));
                }
            }
            HeadUpdate::Registered { log, upto } => {
                if let Some(head) = self.head(log)? {
                    head.registered = head.registered.max(upto.min(head.seq));
                }
            }
        }
        Ok(())
    }

    fn root(&mut self, id: ObjectId) -> Result<Option<&mut (RootValue, u64)>, BookError> {
        if !self.roots.contains_key(&id) {
            let stored = match self.store.get(&LEASE_ROOTS, id.as_bytes())? {
                Some(entry) => Some((decode_root(id, &entry.value)?, entry.expires)),
                None => None,
            };
            self.roots.insert(id, stored);
        }
        Ok(self.roots.get_mut(&id).and_then(Option::as_mut))
    }

    fn change(&mut self, change: Change) -> Result<(), BookError> {
        if let Some(owner) = change.owner {
            for root in change.add {
                self.add(owner, root)?;
            }
            for id in change.drop {
                self.drop_root(owner, id)?;
            }
        }
        for (key, value) in change.marks {
            self.batch.put(&MAIL_MARKS, key, value, u64::MAX);
        }
        if let Some(update) = change.head {
            self.update_head(update)?;
        }
        Ok(())
    }

    fn add(&mut self, owner: OwnerId, root: NewRoot) -> Result<(), BookError> {
        let owner_bytes = ByteArray::new(owner.0);
        let members = root.members.clone();
        let listed_now = match self.root(root.id)? {
            Some((value, expires)) => {
                let newly_listed = !value.listed && members.is_some();
                if let Err(at) = value.owners.binary_search(&owner_bytes) {
                    value.owners.insert(at, owner_bytes);
                }
                if value.capability.is_none() {
                    value.capability = root.capability;
                }
                value.listed |= members.is_some();
                *expires = (*expires).max(root.expires);
                newly_listed
            }
            None => {
                let value = RootValue {
                    v: 1,
                    kind: root.kind,
                    capability: root.capability,
                    owners: vec![owner_bytes],
                    listed: members.is_some(),
                };
                self.roots.insert(root.id, Some((value, root.expires)));
                members.is_some()
            }
        };
        if listed_now {
            for member in members.into_iter().flatten().filter(|m| *m != root.id) {
                self.batch.put(
                    &LEASE_MEMBERS,
                    pair(root.id.as_bytes(), member.as_bytes()),
                    Vec::new(),
                    u64::MAX,
                );
            }
        }
        self.batch.put(&LEASE_OWNERS, pair(&owner.0, root.id.as_bytes()), Vec::new(), u64::MAX);
        self.changed.insert(root.id);
        Ok(())
    }

    fn drop_root(&mut self, owner: OwnerId, id: ObjectId) -> Result<(), BookError> {
        self.batch.delete(&LEASE_OWNERS, pair(&owner.0, id.as_bytes()));
        let Some((value, _)) = self.root(id)? else { return Ok(()) };
        if let Ok(at) = value.owners.binary_search(&ByteArray::new(owner.0)) {
            value.owners.remove(at);
        }
        if value.owners.is_empty() {
            for member in prefixed_ids(self.store, &LEASE_MEMBERS, id.as_bytes())? {
                self.batch.delete(&LEASE_MEMBERS, pair(id.as_bytes(), member.as_bytes()));
            }
            self.roots.insert(id, None);
        }
        self.changed.insert(id);
        Ok(())
    }

    fn lost(&mut self, id: ObjectId) -> Result<(), BookError> {
        let owners = match self.root(id)? {
            Some((value, _)) => value.owners.clone(),
            None => return Ok(()),
        };
        for owner in owners {
            self.drop_root(OwnerId(owner.into_array()), id)?;
        }
        Ok(())
    }

    fn listed(&mut self, root: ObjectId, members: Vec<ObjectId>) -> Result<(), BookError> {
        let Some((value, _)) = self.root(root)? else { return Ok(()) };
        if value.listed {
            return Ok(());
        }
        value.listed = true;
        for member in members.into_iter().filter(|m| *m != root) {
            self.batch.put(
                &LEASE_MEMBERS,
                pair(root.as_bytes(), member.as_bytes()),
                Vec::new(),
                u64::MAX,
            );
        }
        self.changed.insert(root);
        Ok(())
    }

    async fn commit(mut self) -> Result<(), StoreError> {
        for (log, head) in std::mem::take(&mut self.heads) {
            if let Some(head) = head {
                self.batch.put(
                    &OWNED_HEADS,
                    log.as_bytes().to_vec(),
                    cbor::encode(&head),
                    u64::MAX,
                );
            }
        }
        for id in std::mem::take(&mut self.changed) {
            match self.roots.get(&id) {
                Some(Some((value, expires))) => self.batch.put(
                    &LEASE_ROOTS,
                    id.as_bytes().to_vec(),
                    cbor::encode(value),
                    *expires,
                ),
                _ => self.batch.delete(&LEASE_ROOTS, id.as_bytes().to_vec()),
            }
        }
        self.store.commit(self.batch).await
    }
}

/// Drops every root of `address`'s owners, a page per commit, then its
/// owned heads and marks.
async fn forget(store: &Store, address: &Address) -> Result<(), BookError> {
    for owner in [OwnerId::mail(address), OwnerId::logs(address)] {
        loop {
            let page: Vec<ObjectId> = {
                let found =
                    store.scan_prefix(&LEASE_OWNERS, owner.as_bytes(), None, FORGET_PAGE)?;
                found.iter().filter_map(|(k, _)| k.get(32..).and_then(object_id)).collect()
            };
            if page.is_empty() {
                break;
            }
            let mut work = Work::new(store);
            for id in page {
                work.drop_root(owner, id)?;
            }
            work.commit().await?;
        }
        let mut marks = Batch::new();
        for (key, _) in store.scan_prefix(&MAIL_MARKS, owner.as_bytes(), None, 64)? {
            marks.delete(&MAIL_MARKS, key);
        }
        store.commit(marks).await?;
    }
    let mut heads = Batch::new();
    for (log, head) in read_heads(store)? {
        if head.owner == *address {
            heads.delete(&OWNED_HEADS, log.as_bytes().to_vec());
        }
    }
    store.commit(heads).await?;
    Ok(())
}
