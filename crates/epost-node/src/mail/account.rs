//! One task per hosted user owns that user's mail state: it replays the
//! mail log once, then turns requests into log operations, group-commits
//! the operations of every request that arrived meanwhile as one entry,
//! and answers each request only once that entry is durable.

use std::collections::HashMap;

use epost_types::address::Address;
use epost_types::id::ObjectId;
use epost_types::limits::MAX_LOG_ENTRY;
use epost_types::mail::{FlagChange, MAX_OP_UIDS, MailEntry, MailOp, MessageRef};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::MailError;
use super::state::{Folder, MailState, OpError, STANDARD, manifest_id};
use crate::lease::{self, LeaseBook, NewRoot, OwnerId, RootKind};
use crate::logs::LogService;

/// The log every user's mail lives in.
pub const MAIL_LOG: &str = "mail";
/// Requests queued per account.
const QUEUE: usize = 256;
/// Requests one entry commits at most.
const BATCH: usize = 64;
/// Bytes of operations per entry (the entry limit, less room for framing).
const ENTRY_BUDGET: usize = MAX_LOG_ENTRY - 1024;

/// A change a client asks for.
#[derive(Debug, Clone)]
pub enum Change {
    Create(String),
    Delete(String),
    Rename(String, String),
    Subscribe(String, bool),
    Insert {
        folder: String,
        message: MessageRef,
        flags: Vec<String>,
        notification: Option<Vec<u8>>,
        /// The message's objects, when the caller just stored them (else
        /// the renewal finds them by opening the message).
        objects: Option<StoredObjects>,
    },
    Flags {
        folder: String,
        uids: Vec<u32>,
        change: FlagChange,
        flags: Vec<String>,
    },
    Copy {
        from: String,
        uids: Vec<u32>,
        to: String,
    },
    Move {
        from: String,
        uids: Vec<u32>,
        to: String,
    },
    Expunge {
        folder: String,
        uids: Vec<u32>,
    },
}

/// What a change did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changed {
    /// UIDs assigned in the destination, in order (insert, copy, move).
    pub uids: Vec<u32>,
    /// The source UIDs that were copied or moved, in the same order.
    pub sources: Vec<u32>,
    /// The destination folder's UIDVALIDITY.
    pub uid_validity: u32,
    /// The new flags of every message whose flags changed.
    pub flags: Vec<(u32, Vec<String>)>,
    /// False when nothing needed doing (a notification already delivered).
    pub applied: bool,
}

/// The objects a message was just stored as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObjects {
    /// Every object besides the manifest's root.
    pub members: Vec<ObjectId>,
    /// The lease they were stored with.
    pub expires: u64,
}

enum Request {
    Change(Change, oneshot::Sender<Result<Changed, MailError>>),
    Read(Box<dyn FnOnce(&MailState) + Send>),
}

/// A handle on one user's mail. Clone freely.
#[derive(Clone)]
pub struct Mailbox {
    pub address: Address,
    tx: mpsc::Sender<Request>,
    changes: broadcast::Sender<String>,
}

impl Mailbox {
    /// Starts the task; it replays the log before taking requests.
    pub(super) fn start(
        address: Address,
        logs: LogService,
        book: LeaseBook,
        stopped: watch::Receiver<bool>,
    ) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (changes, _) = broadcast::channel(256);
        let task = tokio::spawn(run(address.clone(), logs, book, rx, changes.clone(), stopped));
        (Self { address, tx, changes }, task)
    }

    /// Applies a change durably.
    pub async fn change(&self, change: Change) -> Result<Changed, MailError> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Request::Change(change, reply)).await.map_err(|_| MailError::Stopped)?;
        answer.await.map_err(|_| MailError::Stopped)?
    }

    /// Reads the current state through `f`.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&MailState) -> T + Send + 'static,
    ) -> Result<T, MailError> {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(move |state: &MailState| {
            let _ = reply.send(f(state));
        });
        self.tx.send(Request::Read(job)).await.map_err(|_| MailError::Stopped)?;
        answer.await.map_err(|_| MailError::Stopped)
    }

    /// A copy of one folder.
    pub async fn folder(&self, name: &str) -> Result<Folder, MailError> {
        let name = name.to_owned();
        let missing = name.clone();
        self.read(move |state| state.folders.get(&name).cloned())
            .await?
            .ok_or(MailError::NoFolder(missing))
    }

    /// The names of folders as they change (bounded; a lagging receiver
    /// should look at every folder again).
    pub fn changes(&self) -> broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    pub(super) fn is_running(&self) -> bool {
        !self.tx.is_closed()
    }
}

async fn run(
    address: Address,
    logs: LogService,
    book: LeaseBook,
    mut rx: mpsc::Receiver<Request>,
    changes: broadcast::Sender<String>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut state = match replay(&address, &logs, &book).await {
        Ok(state) => state,
        Err(e) => {
            warn!(%address, error = %e, "cannot read the mail log; requests fail until it can");
            // Answer what is queued with the error, then stop: the next
            // request starts a new task that tries again.
            rx.close();
            while let Some(request) = rx.recv().await {
                if let Request::Change(_, reply) = request {
                    let _ = reply.send(Err(MailError::Temporary(e.to_string())));
                }
            }
            return;
        }
    };
    loop {
        let first = tokio::select! {
            first = rx.recv() => match first {
                Some(first) => first,
                None => break,
            },
            _ = stopped.changed() => break,
        };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let mut ops = Vec::new();
        let mut replies = Vec::new();
        let mut touched = Vec::new();
        let mut leases = Leases::default();
        for request in batch {
            match request {
                Request::Read(job) => job(&state),
                Request::Change(change, reply) => {
                    let result = plan(&mut state, change, &mut ops, &mut touched, &mut leases);
                    replies.push((reply, result));
                }
            }
        }
        let mut last_seq = None;
        for entry in entries(ops) {
            match logs.append(&address, MAIL_LOG, entry.encode()).await {
                Ok(appended) => last_seq = Some(appended.seq),
                Err(e) => {
                    // What this task holds may now be ahead of the log:
                    // refuse the batch and stop; the next request replays
                    // afresh (and registers what was written).
                    warn!(%address, error = %e, "mail log append failed; the batch is refused");
                    for (reply, result) in replies {
                        let _ = reply.send(result.and(Err(MailError::Temporary(e.to_string()))));
                    }
                    return;
                }
            }
            state.entries += 1;
        }
        if let Some(seq) = last_seq {
            leases.register(&book, &address, &state, seq).await;
        }
        for (reply, result) in replies {
            let _ = reply.send(result);
        }
        touched.sort();
        touched.dedup();
        for folder in touched {
            let _ = changes.send(folder);
        }
    }
    debug!(%address, "mail task stopped");
}

/// Reads and replays the user's mail log; writes the standard folders if
/// the log is new. What the log says this user holds is brought into the
/// lease book: entries after the book's mark are replayed with their
/// changes tracked (a crash between an append and its registration).
async fn replay(
    address: &Address,
    logs: &LogService,
    book: &LeaseBook,
) -> Result<MailState, MailError> {
    let entries =
        logs.read(address, MAIL_LOG).await.map_err(|e| MailError::Temporary(e.to_string()))?;
    let mark = registered_mark(book, address);
    let mut state = MailState::default();
    let mut leases = Leases::default();
    for entry in &entries {
        match MailEntry::decode(&entry.body) {
            Ok(decoded) => {
                for op in &decoded.ops {
                    if entry.seq > mark {
                        leases.before(&state, op);
                    }
                    if let Err(e) = state.apply(op) {
                        debug!(%address, seq = entry.seq, error = %e, "skipping an operation");
                    }
                }
            }
            Err(e) => {
                warn!(%address, seq = entry.seq, error = %e, "skipping an unreadable mail log entry")
            }
        }
        state.entries += 1;
    }
    if let Some(last) = entries.last().filter(|e| e.seq > mark) {
        leases.register(book, address, &state, last.seq).await;
    }
    let missing: Vec<MailOp> = STANDARD
        .iter()
        .enumerate()
        .filter(|(_, name)| entries.is_empty() && !state.folders.contains_key(**name))
        .map(|(i, name)| MailOp::Create {
            folder: (*name).to_owned(),
            uid_validity: validity(i as u32),
        })
        .collect();
    if !missing.is_empty() {
        let entry = MailEntry::new(missing.clone());
        logs.append(address, MAIL_LOG, entry.encode())
            .await
            .map_err(|e| MailError::Temporary(e.to_string()))?;
        for op in &missing {
            let _ = state.apply(op);
        }
        state.entries += 1;
    }
    Ok(state)
}

/// The key of the mark saying up to which mail log entry the lease book
/// holds what `address`'s folders name.
fn mark_key(address: &Address) -> Vec<u8> {
    let mut key = OwnerId::mail(address).as_bytes().to_vec();
    key.push(b'r');
    key
}

fn registered_mark(book: &LeaseBook, address: &Address) -> u64 {
    book.mark(&mark_key(address))
        .ok()
        .flatten()
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map_or(0, u64::from_be_bytes)
}

/// The changes a batch makes to which messages this user holds: the count
/// of folder entries of each manifest it touched, before the batch, and
/// the objects of messages it stores.
#[derive(Debug, Default)]
struct Leases {
    before: HashMap<ObjectId, (MessageRef, u32)>,
    objects: HashMap<ObjectId, StoredObjects>,
}

impl Leases {
    /// Notes what `op` may change, before it is applied to `state`.
    fn before(&mut self, state: &MailState, op: &MailOp) {
        for message in state.touched(op) {
            if let Some(id) = manifest_id(&message) {
                let count = state.refs(&id);
                self.before.entry(id).or_insert((message, count));
            }
        }
    }

    /// The manifests now held that were not, and those no longer held.
    fn transitions(&mut self, state: &MailState) -> (Vec<NewRoot>, Vec<ObjectId>) {
        let mut add = Vec::new();
        let mut drop = Vec::new();
        for (id, (message, before)) in self.before.drain() {
            let after = state.refs(&id);
            if before == 0 && after > 0 {
                let objects = self.objects.remove(&id);
                add.push(NewRoot {
                    id,
                    kind: RootKind::Message,
                    capability: message.manifest.parse().ok(),
                    members: objects.as_ref().map(|o| o.members.clone()),
                    expires: objects.map_or(0, |o| o.expires),
                });
            } else if before > 0 && after == 0 {
                drop.push(id);
            }
        }
        (add, drop)
    }

    /// Commits the batch's changes to the lease book, with the mark of the
    /// log entry `seq` they bring it to. A failure is logged: the next
    /// replay finds the changes again from the mark.
    async fn register(mut self, book: &LeaseBook, address: &Address, state: &MailState, seq: u64) {
        let (add, drop) = self.transitions(state);
        if add.is_empty() && drop.is_empty() {
            return;
        }
        let change = lease::Change {
            owner: Some(OwnerId::mail(address)),
            add,
            drop,
            marks: vec![(mark_key(address), seq.to_be_bytes().to_vec())],
            head: None,
        };
        if let Err(e) = book.change(change).await {
            warn!(%address, error = %e, "cannot record in the lease book what the folders hold; the next start does");
        }
    }
}

/// A fresh UIDVALIDITY: the time in seconds (as Dovecot does), plus an
/// offset so folders made together differ.
fn validity(offset: u32) -> u32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(1);
    (secs as u32).wrapping_add(offset).max(1)
}

/// Checks a change against the state, applies it, and queues its op.
fn plan(
    state: &mut MailState,
    change: Change,
    ops: &mut Vec<MailOp>,
    touched: &mut Vec<String>,
    leases: &mut Leases,
) -> Result<Changed, MailError> {
    let op = match change {
        Change::Create(folder) => {
            check_folder_name(&folder)?;
            MailOp::Create { uid_validity: validity(ops.len() as u32), folder }
        }
        Change::Delete(folder) => MailOp::Delete { folder },
        Change::Rename(from, to) => {
            check_folder_name(&to)?;
            MailOp::Rename { uid_validity: validity(ops.len() as u32), from, to }
        }
        Change::Subscribe(folder, subscribed) => MailOp::Subscribe { folder, subscribed },
        Change::Insert { notification: Some(id), .. } if state.delivered.contains(&id) => {
            return Ok(Changed::default());
        }
        Change::Insert { folder, message, flags, notification, objects } => {
            if let (Some(objects), Some(id)) = (objects, manifest_id(&message)) {
                leases.objects.insert(id, objects);
            }
            MailOp::Insert { folder, message, flags, notification }
        }
        Change::Flags { folder, uids, change, flags } => {
            MailOp::Flags { uids: present(state, &folder, uids)?, folder, change, flags }
        }
        Change::Copy { from, uids, to } => {
            MailOp::Copy { uids: present(state, &from, uids)?, from, to }
        }
        Change::Move { from, uids, to } => {
            MailOp::Move { uids: present(state, &from, uids)?, from, to }
        }
        Change::Expunge { folder, uids } => {
            MailOp::Expunge { uids: present(state, &folder, uids)?, folder }
        }
    };
    let sources = match &op {
        MailOp::Copy { uids, .. } | MailOp::Move { uids, .. } => uids.clone(),
        _ => Vec::new(),
    };
    leases.before(state, &op);
    let uids = state.apply(&op).map_err(|e| match e {
        OpError::NoFolder(name) => MailError::NoFolder(name),
        OpError::Exists(name) => MailError::FolderExists(name),
        OpError::NotAllowed(text) => MailError::NotAllowed(text),
    })?;
    let mut changed = Changed { uids, sources, applied: true, ..Default::default() };
    match &op {
        MailOp::Insert { folder, .. } | MailOp::Create { folder, .. } => {
            changed.uid_validity = state.folders[folder].uid_validity;
            touched.push(folder.clone());
        }
        MailOp::Copy { from, to, .. } | MailOp::Move { from, to, .. } => {
            changed.uid_validity = state.folders[to].uid_validity;
            touched.push(from.clone());
            touched.push(to.clone());
        }
        MailOp::Flags { folder, uids, .. } => {
            let target = &state.folders[folder];
            changed.flags = uids
                .iter()
                .filter_map(|uid| target.messages.get(uid).map(|m| (*uid, m.flags.clone())))
                .collect();
            touched.push(folder.clone());
        }
        MailOp::Expunge { folder, uids } => {
            changed.uids = uids.clone();
            touched.push(folder.clone());
        }
        MailOp::Delete { folder } | MailOp::Subscribe { folder, .. } => {
            touched.push(folder.clone())
        }
        MailOp::Rename { from, to, .. } => {
            touched.push(from.clone());
            touched.push(to.clone());
        }
    }
    // Skip writing operations that change nothing.
    let empty = matches!(&op, MailOp::Flags { uids, .. } | MailOp::Copy { uids, .. }
        | MailOp::Move { uids, .. } | MailOp::Expunge { uids, .. } if uids.is_empty());
    if !empty {
        ops.extend(split_op(op));
    }
    Ok(changed)
}

/// An operation on many UIDs as several, each within a log entry.
fn split_op(op: MailOp) -> Vec<MailOp> {
    const N: usize = MAX_OP_UIDS;
    match op {
        MailOp::Flags { folder, uids, change, flags } if uids.len() > N => uids
            .chunks(N)
            .map(|c| MailOp::Flags {
                folder: folder.clone(),
                uids: c.to_vec(),
                change,
                flags: flags.clone(),
            })
            .collect(),
        MailOp::Expunge { folder, uids } if uids.len() > N => uids
            .chunks(N)
            .map(|c| MailOp::Expunge { folder: folder.clone(), uids: c.to_vec() })
            .collect(),
        // Copies and moves assign UIDs in order, so chunks replay the same.
        MailOp::Copy { from, uids, to } if uids.len() > N => uids
            .chunks(N)
            .map(|c| MailOp::Copy { from: from.clone(), uids: c.to_vec(), to: to.clone() })
            .collect(),
        MailOp::Move { from, uids, to } if uids.len() > N => uids
            .chunks(N)
            .map(|c| MailOp::Move { from: from.clone(), uids: c.to_vec(), to: to.clone() })
            .collect(),
        op => vec![op],
    }
}

/// Operations grouped into entries that fit the log's entry limit.
fn entries(ops: Vec<MailOp>) -> Vec<MailEntry> {
    let mut out = Vec::new();
    let mut current: Vec<MailOp> = Vec::new();
    let mut size = 0;
    for op in ops {
        let len = epost_types::cbor::encode(&op).len();
        if !current.is_empty() && size + len > ENTRY_BUDGET {
            out.push(MailEntry::new(std::mem::take(&mut current)));
            size = 0;
        }
        size += len;
        current.push(op);
    }
    if !current.is_empty() {
        out.push(MailEntry::new(current));
    }
    out
}

/// The UIDs of `uids` that exist in `folder`, in the order given.
fn present(state: &MailState, folder: &str, uids: Vec<u32>) -> Result<Vec<u32>, MailError> {
    let target = state.folders.get(folder).ok_or_else(|| MailError::NoFolder(folder.to_owned()))?;
    Ok(uids.into_iter().filter(|uid| target.messages.contains_key(uid)).collect())
}

fn check_folder_name(name: &str) -> Result<(), MailError> {
    if name.is_empty() || name.len() > epost_types::mail::MAX_FOLDER_NAME {
        return Err(MailError::NotAllowed(format!(
            "a folder name is 1 to {} bytes",
            epost_types::mail::MAX_FOLDER_NAME
        )));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(MailError::NotAllowed("a folder name has no control characters".into()));
    }
    Ok(())
}
