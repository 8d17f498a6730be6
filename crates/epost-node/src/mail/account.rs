//! One task per hosted user owns that user's mail state: it opens the
//! mailbox once (the newest checkpoint and what followed, [`super::open`]),
//! then turns requests into log operations, group-commits the operations
//! of every request that arrived meanwhile as one entry, and answers each
//! request only once that entry is durable. Operations are grouped into
//! entries as they are planned, so each is applied knowing its position
//! in the log, which is its MODSEQ ([`super::state::modseq`]). What the
//! folders start or stop naming goes to the lease book with it, and every
//! [`checkpoint::EVERY`](super::checkpoint::EVERY) entries the state is
//! checkpointed.

use epost_types::address::Address;
use epost_types::convergent::ConvergenceSecret;
use epost_types::limits::MAX_LOG_ENTRY;
use epost_types::mail::{MAX_OP_UIDS, MailEntry, MailOp};
use epost_types::mailbox::{Change, Flagged, FolderChanged, MailError};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::checkpoint::{self, Tracker};
use super::leases::{self, Leases};
use super::state::{self, Folder, MailState, OpError};
use crate::chain::Chain;
use crate::lease::{self, LeaseBook, NewRoot, OwnerId, RootKind};
use crate::logs::LogService;
use crate::stop::Stop;
use crate::storage::StorageService;

/// The log every user's mail lives in.
pub const MAIL_LOG: &str = "mail";
/// Requests queued per account.
const QUEUE: usize = 256;
/// Requests one entry commits at most.
const BATCH: usize = 64;
/// Bytes of operations per entry (the entry limit, less room for framing).
const ENTRY_BUDGET: usize = MAX_LOG_ENTRY - 1024;

/// What a change did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changed {
    /// UIDs assigned in the destination, in order (insert, copy, move).
    pub uids: Vec<u32>,
    /// The source UIDs that were copied or moved, in the same order.
    pub sources: Vec<u32>,
    /// The destination folder's UIDVALIDITY.
    pub uid_validity: u32,
    /// For a flag change: every message it was asked of that is in the
    /// folder and passed its `unchanged_since` test, with its flags and
    /// MODSEQ now (changed or not).
    pub flags: Vec<Flagged>,
    /// For a flag change: the messages left alone because they changed
    /// after its `unchanged_since`.
    pub modified: Vec<u32>,
    /// False when nothing needed doing (a notification already delivered).
    pub applied: bool,
}

/// Changes applied in order, and each one's outcome.
type ChangeReply = oneshot::Sender<Vec<Result<Changed, MailError>>>;

enum Request {
    /// Changes, and whether they go in as one ([`plan_together`]).
    Change(Vec<Change>, bool, ChangeReply),
    Read(Box<dyn FnOnce(&MailState) + Send>),
}

/// A handle on one user's mail. Clone freely.
#[derive(Clone)]
pub struct Mailbox {
    pub address: Address,
    tx: mpsc::Sender<Request>,
    changes: broadcast::Sender<FolderChanged>,
}

impl Mailbox {
    /// Starts the task; it replays the log before taking requests.
    pub(super) fn start(
        address: Address,
        services: Services,
        stopped: Stop,
    ) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (changes, _) = broadcast::channel(256);
        let task = tokio::spawn(run(address.clone(), services, rx, changes.clone(), stopped));
        (Self { address, tx, changes }, task)
    }

    /// Applies a change (or a bare [`MailOp`]) durably.
    pub async fn change(&self, change: impl Into<Change>) -> Result<Changed, MailError> {
        self.change_all(vec![change.into()]).await?.pop().unwrap_or(Err(MailError::Stopped))
    }

    /// Applies `changes` durably, in order, committed together (an import
    /// keeps the order of its messages and costs few log entries); returns
    /// each one's outcome.
    pub async fn change_all(
        &self,
        changes: Vec<Change>,
    ) -> Result<Vec<Result<Changed, MailError>>, MailError> {
        self.request(changes, false).await
    }

    /// Stores new messages in one folder as one change: in one log entry,
    /// so that every reader (this node's, or one replaying the log) sees
    /// all of them or none, and all are refused if one cannot go in (IMAP
    /// MULTIAPPEND). Every change must be an insert, without a
    /// notification, into the same folder.
    pub async fn insert_together(
        &self,
        changes: Vec<Change>,
    ) -> Result<Vec<Result<Changed, MailError>>, MailError> {
        self.request(changes, true).await
    }

    async fn request(
        &self,
        changes: Vec<Change>,
        together: bool,
    ) -> Result<Vec<Result<Changed, MailError>>, MailError> {
        let (reply, answer) = oneshot::channel();
        let request = Request::Change(changes, together, reply);
        self.tx.send(request).await.map_err(|_| MailError::Stopped)?;
        answer.await.map_err(|_| MailError::Stopped)
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
    pub fn changes(&self) -> broadcast::Receiver<FolderChanged> {
        self.changes.subscribe()
    }
}

impl crate::keyed::Alive for Mailbox {
    fn is_alive(&self) -> bool {
        !self.tx.is_closed()
    }
}

/// What an account task works with.
#[derive(Clone)]
pub(super) struct Services {
    pub(super) logs: LogService,
    pub(super) book: LeaseBook,
    pub(super) storage: StorageService,
}

/// One account's task state besides the mail itself.
struct Account {
    address: Address,
    services: Services,
    tracker: Tracker,
    /// Whether every batch since the book's mark was registered (then a
    /// checkpoint moves the mark with it).
    registered: bool,
}

async fn run(
    address: Address,
    services: Services,
    mut rx: mpsc::Receiver<Request>,
    changes: broadcast::Sender<FolderChanged>,
    stopped: Stop,
) {
    let opened =
        super::open::open(&address, &services.logs, &services.book, &services.storage).await;
    let opened = match opened {
        Ok(opened) => opened,
        Err(e) => {
            warn!(%address, error = %Chain(&e), "cannot read the mail log; requests fail until it can");
            // Answer what is queued with the error, then stop: the next
            // request starts a new task that tries again.
            rx.close();
            while let Some(request) = rx.recv().await {
                if let Request::Change(changes, _, reply) = request {
                    let failed = changes.iter().map(|_| Err(e.clone()));
                    let _ = reply.send(failed.collect());
                }
            }
            return;
        }
    };
    let mut state = opened.state;
    let mut account = Account { address, services, tracker: opened.tracker, registered: true };
    if account.tracker.since >= checkpoint::EVERY {
        account.checkpoint(&mut state, opened.last_seq).await;
    }
    loop {
        let first = tokio::select! {
            first = rx.recv() => match first {
                Some(first) => first,
                None => break,
            },
            () = stopped.stopped() => break,
        };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(more) => batch.push(more),
                Err(_) => break,
            }
        }
        let mut planned = Planned::new(state.entries);
        let mut replies = Vec::new();
        let mut touched = Vec::new();
        let mut leases = Leases::default();
        for request in batch {
            match request {
                Request::Read(job) => job(&state),
                Request::Change(changes, together, reply) => {
                    let mut context = Context {
                        planned: &mut planned,
                        touched: &mut touched,
                        leases: &mut leases,
                        tracker: &mut account.tracker,
                    };
                    let results = if together {
                        plan_together(&mut state, changes, &mut context)
                    } else {
                        changes.into_iter().map(|change| context.plan(&mut state, change)).collect()
                    };
                    replies.push((reply, results));
                }
            }
        }
        let mut last_seq = None;
        for entry in planned.into_entries() {
            match account.append(&entry).await {
                Ok(seq) => last_seq = Some(seq),
                Err(e) => {
                    // What this task holds may now be ahead of the log:
                    // refuse the batch and stop; the next request replays
                    // afresh (and registers what was written).
                    warn!(address = %account.address, error = %Chain(&e), "mail log append failed; the batch is refused");
                    for (reply, results) in replies {
                        let failed = results.into_iter().map(|r| r.and(Err(e.clone()))).collect();
                        let _ = reply.send(failed);
                    }
                    return;
                }
            }
            state.entries += 1;
        }
        // The lease book learns what the folders now name, and a due
        // checkpoint is written, before anyone is answered: whoever reads
        // the book after a change returned sees the change (tests/lease.rs).
        if let Some(seq) = last_seq {
            let ok = leases.register(&account.services.book, &account.address, &state, seq).await;
            account.registered &= ok;
            if account.tracker.since >= checkpoint::EVERY {
                account.checkpoint(&mut state, seq).await;
            }
        }
        for (reply, result) in replies {
            let _ = reply.send(result);
        }
        touched.sort();
        touched.dedup();
        for folder in touched {
            let _ = changes.send(FolderChanged { folder });
        }
    }
    debug!(address = %account.address, "mail task stopped");
}

impl Account {
    /// Appends one mail log entry; returns its sequence number.
    async fn append(&mut self, entry: &MailEntry) -> Result<u64, MailError> {
        let appended = self
            .services
            .logs
            .append(&self.address, MAIL_LOG, entry.encode())
            .await
            .map_err(|e| MailError::unavailable("cannot append to the mail log", e))?;
        self.tracker.since += 1;
        Ok(appended.seq)
    }

    fn secret(&self) -> Result<ConvergenceSecret, MailError> {
        self.services
            .logs
            .derived_secret(&self.address, MAIL_LOG, checkpoint::PURPOSE)
            .map_err(|e| MailError::unavailable("cannot derive the checkpoint key", e))
    }

    /// Checkpoints `state` as of entry `covers`. A failure is logged and
    /// the next batch tries again; nothing else depends on it.
    async fn checkpoint(&mut self, state: &mut MailState, covers: u64) {
        if let Err(e) = self.try_checkpoint(state, covers).await {
            warn!(address = %self.address, error = %Chain(&e), "checkpoint not written; the next batch retries");
        }
    }

    async fn try_checkpoint(
        &mut self,
        state: &mut MailState,
        covers: u64,
    ) -> Result<(), MailError> {
        let secret = self.secret()?;
        let written =
            checkpoint::write(&self.services.storage, &secret, state, &self.tracker, covers)
                .await?;
        let entry =
            MailEntry::new(vec![MailOp::Checkpoint { state: written.capability.clone(), covers }]);
        let seq = self.append(&entry).await?;
        state.entries += 1;
        let root = NewRoot {
            id: written.capability.id,
            kind: RootKind::MailState,
            capability: Some(written.capability.clone()),
            members: Some(written.members.clone()),
            expires: written.expires,
        };
        let previous = self.tracker.root.filter(|id| *id != written.capability.id);
        let change = lease::Change {
            owner: Some(OwnerId::logs(&self.address)),
            add: vec![root],
            drop: previous.into_iter().collect(),
            marks: if self.registered {
                vec![leases::mark(seq, &self.address)]
            } else {
                Vec::new()
            },
            head: None,
        };
        if let Err(e) = self.services.book.change(change).await {
            // The next open registers the checkpoint it loads.
            warn!(address = %self.address, error = %Chain(&e), "cannot record the checkpoint in the lease book");
        }
        self.tracker = written.into_tracker();
        debug!(address = %self.address, seq, "mail state checkpointed");
        Ok(())
    }
}

/// A fresh UIDVALIDITY: the time in seconds (as Dovecot does), plus an
/// offset so folders made together differ.
pub(super) fn validity(offset: u32) -> u32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(1);
    (secs as u32).wrapping_add(offset).max(1)
}

/// The operations of one batch, grouped into log entries as they are
/// planned: each entry holds what fits the entry limit, and each
/// operation knows the entry and the place in it it will have.
struct Planned {
    /// The number of the batch's first entry.
    first: u64,
    entries: Vec<Vec<MailOp>>,
    /// Encoded bytes of the last entry's operations.
    size: usize,
    /// Operations queued, in all entries.
    count: usize,
}

impl Planned {
    /// A batch after `entries` log entries.
    fn new(entries: u64) -> Self {
        Self { first: entries + 1, entries: Vec::new(), size: 0, count: 0 }
    }

    /// Whether an operation of `len` encoded bytes starts a new entry.
    fn starts_entry(&self, len: usize) -> bool {
        match self.entries.last() {
            None => true,
            Some(last) => {
                !last.is_empty() && (self.size + len > ENTRY_BUDGET || last.len() >= MAX_ENTRY_OPS)
            }
        }
    }

    /// The position (MODSEQ) the next operation of `len` bytes will have.
    fn next_at(&self, len: usize) -> u64 {
        let (entry, index) = if self.starts_entry(len) {
            (self.entries.len(), 0)
        } else {
            (self.entries.len() - 1, self.entries.last().map_or(0, Vec::len))
        };
        state::modseq(self.first + entry as u64, index)
    }

    /// Queues an operation of `len` bytes where [`Self::next_at`] said.
    fn push(&mut self, op: MailOp, len: usize) {
        if self.starts_entry(len) {
            self.entries.push(Vec::new());
            self.size = 0;
        }
        self.size += len;
        self.count += 1;
        if let Some(last) = self.entries.last_mut() {
            last.push(op);
        }
    }

    /// Makes room for operations of `len` bytes in all in one entry:
    /// starts a new one unless the current one has that room.
    fn keep_together(&mut self, len: usize, ops: usize) {
        if let Some(last) = self.entries.last()
            && !last.is_empty()
            && (self.size + len > ENTRY_BUDGET || last.len() + ops > MAX_ENTRY_OPS)
        {
            self.entries.push(Vec::new());
            self.size = 0;
        }
    }

    fn into_entries(self) -> Vec<MailEntry> {
        self.entries.into_iter().map(MailEntry::new).collect()
    }
}

/// Operations one entry holds at most (far more than its size allows;
/// it keeps an operation's index within what a MODSEQ tells apart).
const MAX_ENTRY_OPS: usize = 60_000;

/// What planning a batch's changes writes to besides the state.
struct Context<'a> {
    planned: &'a mut Planned,
    touched: &'a mut Vec<String>,
    leases: &'a mut Leases,
    tracker: &'a mut Tracker,
}

impl Context<'_> {
    fn plan(&mut self, state: &mut MailState, change: Change) -> Result<Changed, MailError> {
        plan(state, change, self.planned, self.touched, self.leases, self.tracker)
    }
}

/// Plans inserts into one folder as one (see [`Mailbox::insert_together`]):
/// refused whole unless every change is an insert into the same folder,
/// the folder is there and their operations fit one log entry; then
/// queued in one entry. An insert into a folder that is there cannot
/// fail, so none is refused once the first passed.
fn plan_together(
    state: &mut MailState,
    changes: Vec<Change>,
    context: &mut Context<'_>,
) -> Vec<Result<Changed, MailError>> {
    let refuse = |error: MailError| changes.iter().map(|_| Err(error.clone())).collect();
    let Some(MailOp::Insert { folder, .. }) = changes.first().map(|c| &c.op) else {
        return refuse(MailError::NotAllowed("only new messages are stored together".into()));
    };
    let one_folder = changes.iter().all(
        |c| matches!(&c.op, MailOp::Insert { folder: f, notification: None, .. } if f == folder),
    );
    if !one_folder {
        return refuse(MailError::NotAllowed(
            "only new messages into one folder are stored together".into(),
        ));
    }
    if !state.folders.contains_key(folder) {
        return refuse(MailError::NoFolder(folder.clone()));
    }
    let len: usize = changes.iter().map(|c| epost_types::cbor::encode(&c.op).len()).sum();
    if len > ENTRY_BUDGET || changes.len() > MAX_ENTRY_OPS {
        return refuse(MailError::NotAllowed(format!(
            "{} messages are more than can be stored together",
            changes.len()
        )));
    }
    context.planned.keep_together(len, changes.len());
    changes.into_iter().map(|change| context.plan(state, change)).collect()
}

/// Checks a change against the state, applies it, and queues its op.
fn plan(
    state: &mut MailState,
    change: Change,
    planned: &mut Planned,
    touched: &mut Vec<String>,
    leases: &mut Leases,
    tracker: &mut Tracker,
) -> Result<Changed, MailError> {
    let Change { op, objects, unchanged_since } = change;
    let mut modified = Vec::new();
    let mut asked = Vec::new();
    let op = match op {
        MailOp::Create { folder, .. } => {
            check_folder_name(&folder)?;
            let uid_validity = validity(planned.count as u32).max(state.next_validity_floor());
            MailOp::Create { uid_validity, folder }
        }
        MailOp::Rename { from, to, .. } => {
            check_folder_name(&to)?;
            let uid_validity = validity(planned.count as u32).max(state.next_validity_floor());
            MailOp::Rename { uid_validity, from, to }
        }
        MailOp::Insert { notification: Some(id), .. } if state.delivered.contains_key(&id) => {
            return Ok(Changed::default());
        }
        MailOp::Insert { folder, message, flags, notification } => {
            if let Some(objects) = objects {
                leases.objects.insert(message.manifest.id, objects);
            }
            MailOp::Insert { folder, message, flags, notification }
        }
        MailOp::Flags { folder, uids, change, flags } => {
            let target = state.folders.get(&folder);
            let (passed, failed) =
                unchanged(target, present(state, &folder, uids)?, unchanged_since);
            modified = failed;
            // Only the messages whose flags change are logged (and get a
            // new MODSEQ); the rest are reported as they are.
            let changing = passed
                .iter()
                .copied()
                .filter(|uid| {
                    target.and_then(|f| f.messages.get(uid)).is_some_and(|stored| {
                        let now = state::changed(&stored.flags, change, &flags);
                        !state::same_flags(&now, &stored.flags)
                    })
                })
                .collect();
            asked = passed;
            MailOp::Flags { uids: changing, folder, change, flags }
        }
        MailOp::Copy { from, uids, to } => {
            MailOp::Copy { uids: present(state, &from, uids)?, from, to }
        }
        MailOp::Move { from, uids, to } => {
            MailOp::Move { uids: present(state, &from, uids)?, from, to }
        }
        MailOp::Expunge { folder, uids } => {
            MailOp::Expunge { uids: present(state, &folder, uids)?, folder }
        }
        MailOp::Subscription { name, subscribed } => {
            check_folder_name(&name)?;
            MailOp::Subscription { name, subscribed }
        }
        op @ (MailOp::Delete { .. } | MailOp::Subscribe { .. }) => op,
        MailOp::Checkpoint { .. } => {
            return Err(MailError::NotAllowed(
                "a checkpoint is written by the log's writer".into(),
            ));
        }
    };
    let sources = match &op {
        MailOp::Copy { uids, .. } | MailOp::Move { uids, .. } => uids.clone(),
        _ => Vec::new(),
    };
    // Operations that change nothing are applied (for their checks: a
    // copy to a folder that is not there fails) but not logged.
    let empty = matches!(&op, MailOp::Flags { uids, .. } | MailOp::Copy { uids, .. }
        | MailOp::Move { uids, .. } | MailOp::Expunge { uids, .. } if uids.is_empty());
    let parts = if empty { vec![op.clone()] } else { split_op(op.clone()) };
    let mut uids = Vec::new();
    for part in parts {
        let len = epost_types::cbor::encode(&part).len();
        let at = planned.next_at(len);
        leases.before(state, &part);
        let assigned = state.apply(&part, at).map_err(|e| match e {
            OpError::NoFolder(name) => MailError::NoFolder(name),
            OpError::Exists(name) => MailError::FolderExists(name),
            OpError::NotAllowed(text) => MailError::NotAllowed(text),
        })?;
        tracker.note(&part, &assigned);
        uids.extend(assigned);
        if !empty {
            planned.push(part, len);
        }
    }
    let mut changed = Changed { uids, sources, modified, applied: true, ..Default::default() };
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
        MailOp::Flags { folder, .. } => {
            let target = &state.folders[folder];
            changed.flags = asked
                .iter()
                .filter_map(|uid| {
                    target.messages.get(uid).map(|m| Flagged {
                        uid: *uid,
                        flags: m.flags.clone(),
                        modseq: m.modseq,
                    })
                })
                .collect();
            touched.push(folder.clone());
        }
        MailOp::Expunge { folder, uids } => {
            changed.uids = uids.clone();
            touched.push(folder.clone());
        }
        MailOp::Delete { folder }
        | MailOp::Subscribe { folder, .. }
        | MailOp::Subscription { name: folder, .. } => touched.push(folder.clone()),
        MailOp::Rename { from, to, .. } => {
            touched.push(from.clone());
            touched.push(to.clone());
        }
        MailOp::Checkpoint { .. } => {}
    }
    Ok(changed)
}

/// Splits `uids` into those whose MODSEQ is at most `since` (all of them
/// when there is no condition) and those changed after it.
fn unchanged(folder: Option<&Folder>, uids: Vec<u32>, since: Option<u64>) -> (Vec<u32>, Vec<u32>) {
    let (Some(folder), Some(since)) = (folder, since) else { return (uids, Vec::new()) };
    uids.into_iter()
        .partition(|uid| folder.messages.get(uid).is_none_or(|stored| stored.modseq <= since))
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

#[cfg(test)]
mod tests {
    use epost_types::mail::FlagChange;
    use epost_types::mailbox::MailErrorKind;

    use super::*;
    use crate::mail::state::tests::{msg, standard, step};

    /// The standard folders and one message (UID 1) in INBOX.
    fn seeded() -> MailState {
        let mut state = standard();
        let seed = MailOp::Insert {
            folder: "INBOX".into(),
            message: msg(1),
            flags: vec![],
            notification: Some(vec![9]),
        };
        step(&mut state, &seed).unwrap();
        state
    }

    /// Plans `changes` as one batch on `state`; returns their outcomes and
    /// the entries to log.
    fn plan_all(
        state: &mut MailState,
        changes: Vec<Change>,
    ) -> (Vec<Result<Changed, MailError>>, Vec<MailEntry>) {
        let mut planned = Planned::new(state.entries);
        let outcomes = changes
            .into_iter()
            .map(|change| {
                plan(
                    state,
                    change,
                    &mut planned,
                    &mut Vec::new(),
                    &mut Leases::default(),
                    &mut Tracker::default(),
                )
            })
            .collect();
        (outcomes, planned.into_entries())
    }

    /// Plans `change` on [`seeded`]; returns the outcome and the ops queued.
    fn planned(change: Change) -> (Result<Changed, MailError>, Vec<MailOp>) {
        let mut state = seeded();
        let (mut outcomes, entries) = plan_all(&mut state, vec![change]);
        let ops = entries.into_iter().flat_map(|e| e.ops).collect();
        (outcomes.remove(0), ops)
    }

    /// What a reader makes of `entries` after `state` (as `open` replays).
    fn replay(state: &mut MailState, entries: &[MailEntry]) {
        for entry in entries {
            for (index, op) in entry.ops.iter().enumerate() {
                let _ = state.apply(op, state::modseq(state.entries + 1, index));
            }
            state.entries += 1;
        }
    }

    #[test]
    fn inserts_together_go_in_one_entry_or_not_at_all() {
        let mut state = seeded();
        let mut planned = Planned::new(state.entries);
        // Another request's operations almost fill the batch's entry.
        let filler = MailOp::Subscribe { folder: "INBOX".into(), subscribed: true };
        planned.push(filler, ENTRY_BUDGET - 10);
        let (mut touched, mut leases, mut tracker) =
            (Vec::new(), Leases::default(), Tracker::default());
        let mut context = Context {
            planned: &mut planned,
            touched: &mut touched,
            leases: &mut leases,
            tracker: &mut tracker,
        };
        let inserts = |folder: &str| -> Vec<Change> {
            (2..5).map(|n| Change::insert(folder, msg(n), vec![], None, None)).collect()
        };
        let results = plan_together(&mut state, inserts("INBOX"), &mut context);
        let uids: Vec<u32> = results.into_iter().map(|r| r.unwrap().uids[0]).collect();
        assert_eq!(uids, vec![2, 3, 4]);
        // Refused whole: a folder that is not there; another kind of op.
        let mixed = vec![
            Change::insert("INBOX", msg(7), vec![], None, None),
            MailOp::Expunge { folder: "INBOX".into(), uids: vec![1] }.into(),
        ];
        for changes in [inserts("Nowhere"), mixed] {
            let results = plan_together(&mut state, changes, &mut context);
            assert!(results.iter().all(Result::is_err), "{results:?}");
        }
        assert_eq!(state.folders["INBOX"].messages.len(), 4);
        let entries = planned.into_entries();
        assert_eq!(entries.iter().map(|e| e.ops.len()).collect::<Vec<_>>(), vec![1, 3]);
    }

    #[test]
    fn the_writer_checks_a_change_before_it_is_logged() {
        let flags = |uids: Vec<u32>| MailOp::Flags {
            folder: "INBOX".into(),
            uids,
            change: FlagChange::Add,
            flags: vec!["\\Seen".into()],
        };
        let redelivered = Change::insert("INBOX", msg(2), vec![], Some(vec![9]), None);
        let checkpoint = MailOp::Checkpoint { state: msg(3).manifest, covers: 1 };
        // (what, change, logged ops, error kind)
        let cases: Vec<(&str, Change, usize, Option<MailErrorKind>)> = vec![
            ("a new folder", Change::create("Lists"), 1, None),
            (
                "a name with a control character",
                Change::create("a\u{7}b"),
                0,
                Some(MailErrorKind::Refused),
            ),
            ("flags on a held UID", flags(vec![1]).into(), 1, None),
            ("flags on UIDs the folder lacks only", flags(vec![5, 6]).into(), 0, None),
            (
                "flags a message has already",
                Change::flags("INBOX", vec![1], FlagChange::Remove, vec!["\\Seen".into()], None),
                0,
                None,
            ),
            (
                "flags on a message changed since",
                Change::flags("INBOX", vec![1], FlagChange::Add, vec!["\\Seen".into()], Some(1)),
                0,
                None,
            ),
            ("a notification already filed", redelivered, 0, None),
            ("a checkpoint from a client", checkpoint.into(), 0, Some(MailErrorKind::Refused)),
            (
                "a folder that is not there",
                MailOp::Expunge { folder: "Nope".into(), uids: vec![1] }.into(),
                0,
                Some(MailErrorKind::NoFolder),
            ),
        ];
        for (what, change, logged, error) in cases {
            let (outcome, ops) = planned(change);
            assert_eq!(ops.len(), logged, "{what}: {ops:?}");
            assert_eq!(outcome.as_ref().err().map(MailError::kind), error, "{what}: {outcome:?}");
        }
    }

    #[test]
    fn a_new_folder_gets_its_uid_validity_from_the_writer() {
        let (outcome, ops) = planned(Change::create("Lists"));
        let Some(MailOp::Create { uid_validity, .. }) = ops.first() else {
            panic!("no create logged: {ops:?}");
        };
        assert_ne!(*uid_validity, 0, "the caller's placeholder is replaced");
        assert_eq!(outcome.unwrap().uid_validity, *uid_validity);
    }

    #[test]
    fn a_folder_made_again_at_once_never_reuses_its_uid_validity() {
        // Delete and create within one second (one batch, even): a client's
        // cache keyed by (UIDVALIDITY, UID) must not show the old mail.
        let mut state = standard();
        let lists = || MailOp::Delete { folder: "Lists".into() }.into();
        let changes = vec![Change::create("Lists"), lists(), Change::create("Lists"), lists()];
        let (outcomes, entries) = plan_all(&mut state, changes);
        let validity = |i: usize| outcomes[i].as_ref().unwrap().uid_validity;
        assert!(validity(2) > validity(0), "{} after {}", validity(2), validity(0));
        // A replay of what was logged agrees, and goes on from there.
        let mut replayed = standard();
        replay(&mut replayed, &entries);
        assert!(replayed.next_validity_floor() > validity(2));
    }

    #[test]
    fn a_conditional_store_leaves_what_changed_since_and_says_so() {
        let mut state = seeded();
        step(&mut state, &MailOp::Copy { from: "INBOX".into(), uids: vec![1], to: "INBOX".into() })
            .unwrap();
        let first = state.folders["INBOX"].messages[&1].modseq;
        let second = state.folders["INBOX"].messages[&2].modseq;
        assert!(first < second);
        let seen = vec!["\\Seen".to_string()];
        let change = Change::flags("INBOX", vec![1, 2, 7], FlagChange::Add, seen, Some(first));
        let (mut outcomes, entries) = plan_all(&mut state, vec![change]);
        let changed = outcomes.remove(0).unwrap();
        assert_eq!(changed.modified, vec![2]);
        let at = state::modseq(state.entries + 1, 0);
        assert_eq!(
            changed.flags,
            vec![Flagged { uid: 1, flags: vec!["\\Seen".into()], modseq: at }]
        );
        assert_eq!(entries.len(), 1);
        assert_eq!(state.folders["INBOX"].messages[&2].flags, Vec::<String>::new());
    }

    #[test]
    fn the_writer_and_a_reader_give_the_same_modseqs() {
        let before = seeded();
        let mut writer = before.clone();
        let many: Vec<u32> = (1..=(MAX_OP_UIDS as u32 + 5)).collect();
        let seen = || vec!["\\Seen".to_string()];
        let mut changes: Vec<Change> = Vec::new();
        for n in 2..40 {
            changes.push(Change::insert("INBOX", msg(n), vec![], None, None));
        }
        changes.extend([
            Change::flags("INBOX", many.clone(), FlagChange::Add, seen(), None),
            Change::flags("INBOX", vec![3], FlagChange::Add, seen(), None),
            MailOp::Move { from: "INBOX".into(), uids: vec![4, 5], to: "Archive".into() }.into(),
            MailOp::Expunge { folder: "INBOX".into(), uids: many }.into(),
            Change::create("Lists"),
        ]);
        // Large enough to need more than one entry.
        for n in 0..1500 {
            changes.push(Change::create(format!("F{n:04}-{}", "x".repeat(40))));
        }
        let (outcomes, entries) = plan_all(&mut writer, changes);
        assert!(entries.len() > 1, "{} entries", entries.len());
        assert!(outcomes.iter().all(Result::is_ok));
        writer.entries += entries.len() as u64;
        let mut reader = before;
        replay(&mut reader, &entries);
        assert_eq!(writer, reader);
        let inbox = &reader.folders["INBOX"];
        assert!(inbox.messages.is_empty());
        assert_eq!(inbox.vanished_since(0).ranges, vec![(1, 39)]);
        assert_eq!(reader.folders["Archive"].messages.len(), 2);
    }

    #[test]
    fn subscriptions_as_the_gateway_writes_them_replay_alike() {
        let before = seeded();
        let mut writer = before.clone();
        let sub = |name: &str, subscribed| -> Change {
            MailOp::Subscription { name: name.into(), subscribed }.into()
        };
        // CREATE (unsubscribed), SUBSCRIBE, DELETE keeping the name, a
        // name never made, and one too long to be a folder's.
        let changes = vec![
            Change::create("Lists"),
            sub("Lists", false),
            sub("Lists", true),
            MailOp::Delete { folder: "Lists".into() }.into(),
            sub("Lists", true),
            sub("Never/Made", true),
            sub(&"x".repeat(epost_types::mail::MAX_FOLDER_NAME + 1), true),
        ];
        let (outcomes, entries) = plan_all(&mut writer, changes);
        assert!(outcomes[..6].iter().all(Result::is_ok));
        assert!(outcomes[6].is_err(), "a name longer than a folder's is refused");
        writer.entries += entries.len() as u64;
        let mut reader = before;
        replay(&mut reader, &entries);
        assert_eq!(writer, reader);
        assert!(!reader.folders.contains_key("Lists"));
        assert_eq!(reader.subscribed_names().collect::<Vec<_>>(), ["Lists", "Never/Made"]);
    }
}
