//! A mail backend in memory: the gateway's sessions are tested against it
//! without an overlay. It follows the same rules as the node's mail
//! service (UIDs ascend and are never reused, standard folders exist, a
//! message's structure is found once when it is stored, every change
//! takes the next MODSEQ of the account and expunges are remembered with
//! theirs, subscriptions are names kept across DELETE and not given by
//! CREATE), and counts the reads of whole messages so tests can see what
//! a command cost.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use epost_types::address::Address;
use epost_types::mail::FlagChange;
use epost_types::mailbox::{FolderChanged, MailError, Route, Vanished};
use epost_types::mime::{self, MessageOutline, MessageStructure};
use tokio::sync::broadcast;

use crate::backend::{
    Account, AuthError, CopyReport, Envelope, Flagged, FolderInfo, FolderSnapshot, MailBackend,
    MessageMeta, NewMessage, Quota, STANDARD_FOLDERS, StoreReport, special_use,
};

/// Users, their passwords and mailboxes, in memory.
#[derive(Clone, Default)]
pub struct MemoryBackend {
    inner: Arc<Mutex<Users>>,
}

#[derive(Default)]
struct Users {
    /// Store messages without their structure (as mail stored before
    /// structures were kept).
    no_structures: bool,
    /// Reads of a whole message, by every account.
    full_reads: Arc<AtomicU64>,
    domains: Vec<String>,
    users: HashMap<Address, (String, MemoryAccount)>,
    /// Every message delivered to a foreign recipient (the "smart host").
    relayed: Vec<(Envelope, Bytes)>,
    /// The storage and message limits of users added from now on.
    limits: (Option<u64>, Option<u64>),
}

impl MemoryBackend {
    /// A backend whose realms are `domains`.
    pub fn new(domains: &[&str]) -> Self {
        let backend = Self::default();
        backend.lock().domains = domains.iter().map(|d| d.to_string()).collect();
        backend
    }

    /// From now on, messages are stored without their structure, as mail
    /// stored before structures were kept: an outline then reads and
    /// parses the whole message.
    pub fn without_structures(self) -> Self {
        self.lock().no_structures = true;
        self
    }

    /// Users added from now on may store at most `storage` bytes and
    /// `messages` messages (reported by GETQUOTA; nothing enforces them).
    pub fn with_quota(self, storage: Option<u64>, messages: Option<u64>) -> Self {
        self.lock().limits = (storage, messages);
        self
    }

    /// How many times a message's whole bytes were read so far (FETCH of
    /// a body, or an outline of a message stored without a structure).
    pub fn full_reads(&self) -> u64 {
        self.lock().full_reads.load(Ordering::Relaxed)
    }

    /// Adds a user with a password and the standard folders.
    pub fn add_user(&self, address: &Address, password: &str) {
        let mut users = self.lock();
        let mut account = MemoryAccount::new(!users.no_structures, users.full_reads.clone());
        account.limits = users.limits;
        users.users.insert(address.clone(), (password.to_owned(), account));
    }

    /// Messages handed to the smart host so far.
    pub fn relayed(&self) -> Vec<(Envelope, Bytes)> {
        self.lock().relayed.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Users> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl MailBackend for MemoryBackend {
    type Account = MemoryAccount;

    async fn authenticate(&self, user: &str, password: &str) -> Result<Address, AuthError> {
        let address: Address = user.parse().map_err(|_| AuthError::Invalid)?;
        match self.lock().users.get(&address) {
            Some((expected, _)) if expected == password => Ok(address),
            _ => Err(AuthError::Invalid),
        }
    }

    async fn recipient(&self, rcpt: &Address) -> Result<Route, MailError> {
        let users = self.lock();
        Ok(if users.users.contains_key(rcpt) {
            Route::Local
        } else if users.domains.iter().any(|d| d == rcpt.domain()) {
            Route::Unknown
        } else {
            Route::Foreign
        })
    }

    fn domains(&self) -> Vec<String> {
        self.lock().domains.clone()
    }

    async fn deliver(&self, envelope: Envelope, raw: Bytes) -> Result<(), MailError> {
        let mut targets = Vec::new();
        {
            let mut users = self.lock();
            let mut foreign = Vec::new();
            // By the route RCPT decided, as the node does.
            for rcpt in &envelope.to {
                match (rcpt.route, users.users.get(&rcpt.address)) {
                    (Route::Local | Route::Remote, Some((_, account))) => {
                        targets.push(account.clone())
                    }
                    (Route::Foreign, _) => foreign.push(rcpt.clone()),
                    _ => return Err(MailError::UnknownUser(rcpt.address.clone())),
                }
            }
            if !foreign.is_empty() {
                let relayed = Envelope { to: foreign, ..envelope.clone() };
                users.relayed.push((relayed, raw.clone()));
            }
        }
        for account in targets {
            account.append("INBOX", raw.clone(), Vec::new(), None).await?;
        }
        Ok(())
    }

    async fn account(&self, user: &Address) -> Result<MemoryAccount, MailError> {
        self.lock()
            .users
            .get(user)
            .map(|(_, account)| account.clone())
            .ok_or_else(|| MailError::NotHosted(user.clone()))
    }
}

/// One user's folders in memory.
#[derive(Clone)]
pub struct MemoryAccount {
    inner: Arc<Mutex<Folders>>,
    changes: broadcast::Sender<FolderChanged>,
    structures: bool,
    full_reads: Arc<AtomicU64>,
    /// Storage and message limits, as [`Quota`] reports them.
    limits: (Option<u64>, Option<u64>),
}

/// A message as this backend keeps it.
#[derive(Clone)]
struct Stored {
    meta: MessageMeta,
    raw: Bytes,
    /// Found when it was stored and kept encoded, as the node does.
    structure: Option<Vec<u8>>,
}

struct Folders {
    next_validity: u32,
    /// The last MODSEQ given out (one counter for the account).
    modseq: u64,
    folders: BTreeMap<String, Folder>,
    /// Subscribed names, folders or not.
    subscriptions: BTreeSet<String>,
}

struct Folder {
    uid_validity: u32,
    uid_next: u32,
    messages: BTreeMap<u32, Stored>,
    highest_modseq: u64,
    /// Every UID taken out, with the MODSEQ of the change that did.
    expunged: Vec<(u64, u32)>,
}

impl Folder {
    fn take_out(&mut self, uids: &[u32], modseq: u64) -> Vec<u32> {
        let removed: Vec<u32> =
            uids.iter().filter(|uid| self.messages.remove(uid).is_some()).copied().collect();
        if !removed.is_empty() {
            self.expunged.extend(removed.iter().map(|uid| (modseq, *uid)));
            self.highest_modseq = self.highest_modseq.max(modseq);
        }
        removed
    }

    fn put_in(&mut self, mut stored: Stored, modseq: u64) -> u32 {
        stored.meta.uid = self.uid_next;
        stored.meta.modseq = modseq;
        self.uid_next += 1;
        self.highest_modseq = self.highest_modseq.max(modseq);
        let uid = stored.meta.uid;
        self.messages.insert(uid, stored);
        uid
    }
}

impl MemoryAccount {
    fn new(structures: bool, full_reads: Arc<AtomicU64>) -> Self {
        let mut folders = Folders {
            next_validity: 1,
            modseq: 0,
            folders: BTreeMap::new(),
            subscriptions: BTreeSet::new(),
        };
        for (name, _) in STANDARD_FOLDERS {
            folders.create(name);
            folders.subscriptions.insert(name.to_owned());
        }
        Self {
            inner: Arc::new(Mutex::new(folders)),
            changes: broadcast::channel(64).0,
            structures,
            full_reads,
            limits: (None, None),
        }
    }

    fn message(&self, folder: &str, uid: u32) -> Result<Stored, MailError> {
        let mut folders = self.lock();
        let target = folders.get(folder)?;
        target.messages.get(&uid).cloned().ok_or(MailError::NoMessage(uid))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Folders> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn changed(&self, folder: &str) {
        let _ = self.changes.send(FolderChanged { folder: folder.to_owned() });
    }
}

impl Folders {
    fn create(&mut self, name: &str) {
        let uid_validity = self.next_validity;
        self.next_validity += 1;
        let highest_modseq = self.next_modseq();
        self.folders.insert(
            name.to_owned(),
            Folder {
                uid_validity,
                uid_next: 1,
                messages: BTreeMap::new(),
                highest_modseq,
                expunged: Vec::new(),
            },
        );
    }

    fn next_modseq(&mut self) -> u64 {
        self.modseq += 1;
        self.modseq
    }

    fn get(&mut self, name: &str) -> Result<&mut Folder, MailError> {
        self.folders.get_mut(name).ok_or_else(|| MailError::NoFolder(name.to_owned()))
    }
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Account for MemoryAccount {
    async fn folders(&self) -> Result<Vec<FolderInfo>, MailError> {
        let folders = self.lock();
        let info = |name: &String, exists| FolderInfo {
            name: name.clone(),
            special_use: if exists { special_use(name) } else { None },
            subscribed: folders.subscriptions.contains(name),
            exists,
        };
        let mut all: Vec<FolderInfo> = folders.folders.keys().map(|n| info(n, true)).collect();
        let unmade = folders.subscriptions.iter().filter(|n| !folders.folders.contains_key(*n));
        all.extend(unmade.map(|n| info(n, false)));
        Ok(all)
    }

    async fn quota(&self) -> Result<Quota, MailError> {
        let folders = self.lock();
        let messages = folders.folders.values().flat_map(|f| f.messages.values());
        let (count, bytes) = messages.fold((0, 0), |(n, b), m| (n + 1, b + m.meta.size));
        Ok(Quota {
            storage_bytes: bytes,
            messages: count,
            storage_limit: self.limits.0,
            message_limit: self.limits.1,
        })
    }

    async fn create(&self, name: &str) -> Result<(), MailError> {
        let mut folders = self.lock();
        if folders.folders.contains_key(name) {
            return Err(MailError::FolderExists(name.to_owned()));
        }
        folders.create(name);
        Ok(())
    }

    async fn delete(&self, name: &str) -> Result<(), MailError> {
        if name == "INBOX" {
            return Err(MailError::NotAllowed("INBOX cannot be deleted".into()));
        }
        self.lock().folders.remove(name).ok_or_else(|| MailError::NoFolder(name.to_owned()))?;
        Ok(())
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), MailError> {
        let mut folders = self.lock();
        if folders.folders.contains_key(to) {
            return Err(MailError::FolderExists(to.to_owned()));
        }
        if from == "INBOX" {
            // RFC 3501: renaming INBOX moves its messages and leaves it empty.
            let modseq = folders.next_modseq();
            let inbox = folders.get(from)?;
            let messages = inbox.messages.clone();
            let uids: Vec<u32> = messages.keys().copied().collect();
            inbox.take_out(&uids, modseq);
            folders.create(to);
            folders.subscriptions.insert(to.to_owned());
            let target = folders.get(to)?;
            for (_, stored) in messages {
                target.put_in(stored, modseq);
            }
            return Ok(());
        }
        let mut folder =
            folders.folders.remove(from).ok_or_else(|| MailError::NoFolder(from.to_owned()))?;
        folder.uid_validity = folders.next_validity;
        folders.next_validity += 1;
        folders.folders.insert(to.to_owned(), folder);
        // The subscription goes with the folder, as the node's does.
        if folders.subscriptions.remove(from) {
            folders.subscriptions.insert(to.to_owned());
        } else {
            folders.subscriptions.remove(to);
        }
        Ok(())
    }

    async fn subscribe(&self, name: &str, subscribed: bool) -> Result<(), MailError> {
        let mut folders = self.lock();
        if subscribed {
            folders.subscriptions.insert(name.to_owned());
        } else {
            folders.subscriptions.remove(name);
        }
        Ok(())
    }

    async fn snapshot(&self, name: &str) -> Result<FolderSnapshot, MailError> {
        let mut folders = self.lock();
        let folder = folders.get(name)?;
        Ok(FolderSnapshot {
            name: name.to_owned(),
            uid_validity: folder.uid_validity,
            uid_next: folder.uid_next,
            highest_modseq: folder.highest_modseq,
            messages: folder.messages.values().map(|stored| stored.meta.clone()).collect(),
        })
    }

    async fn append(
        &self,
        folder: &str,
        raw: Bytes,
        flags: Vec<String>,
        internal_date: Option<u64>,
    ) -> Result<(u32, u32), MailError> {
        let structure = self.structures.then(|| mime::parse(&raw).structure.encode());
        let result = {
            let mut folders = self.lock();
            folders.get(folder)?;
            let modseq = folders.next_modseq();
            let target = folders.get(folder)?;
            let meta = MessageMeta {
                uid: 0,
                flags,
                internal_date: internal_date.unwrap_or_else(now_millis),
                size: raw.len() as u64,
                modseq: 0,
            };
            let uid = target.put_in(Stored { meta, raw, structure }, modseq);
            (target.uid_validity, uid)
        };
        self.changed(folder);
        Ok(result)
    }

    async fn append_all(
        &self,
        folder: &str,
        messages: Vec<NewMessage>,
    ) -> Result<(u32, Vec<u32>), MailError> {
        // Parsed before the lock is taken; then all go in under it, with
        // one MODSEQ, as one change.
        let parsed: Vec<(NewMessage, Option<Vec<u8>>)> = messages
            .into_iter()
            .map(|m| {
                let structure = self.structures.then(|| mime::parse(&m.raw).structure.encode());
                (m, structure)
            })
            .collect();
        let result = {
            let mut folders = self.lock();
            folders.get(folder)?;
            let modseq = folders.next_modseq();
            let target = folders.get(folder)?;
            let mut uids = Vec::with_capacity(parsed.len());
            for (message, structure) in parsed {
                let meta = MessageMeta {
                    uid: 0,
                    flags: message.flags,
                    internal_date: message.internal_date.unwrap_or_else(now_millis),
                    size: message.raw.len() as u64,
                    modseq: 0,
                };
                uids.push(target.put_in(Stored { meta, raw: message.raw, structure }, modseq));
            }
            (target.uid_validity, uids)
        };
        self.changed(folder);
        Ok(result)
    }

    async fn store(
        &self,
        folder: &str,
        uids: &[u32],
        op: FlagChange,
        flags: Vec<String>,
        unchanged_since: Option<u64>,
    ) -> Result<StoreReport, MailError> {
        let report = {
            let mut folders = self.lock();
            folders.get(folder)?;
            let modseq = folders.modseq + 1;
            let target = folders.get(folder)?;
            let mut report = StoreReport::default();
            let mut any = false;
            for uid in uids {
                let Some(Stored { meta, .. }) = target.messages.get_mut(uid) else { continue };
                if unchanged_since.is_some_and(|since| meta.modseq > since) {
                    report.modified.push(*uid);
                    continue;
                }
                let mut now = meta.flags.clone();
                match op {
                    FlagChange::Replace => now = flags.clone(),
                    FlagChange::Add => {
                        for flag in &flags {
                            if !now.iter().any(|f| f.eq_ignore_ascii_case(flag)) {
                                now.push(flag.clone());
                            }
                        }
                    }
                    FlagChange::Remove => {
                        now.retain(|f| !flags.iter().any(|g| g.eq_ignore_ascii_case(f)))
                    }
                }
                let same = now.len() == meta.flags.len()
                    && now.iter().all(|f| meta.flags.iter().any(|g| g.eq_ignore_ascii_case(f)));
                if !same {
                    meta.flags = now;
                    meta.modseq = modseq;
                    any = true;
                }
                report.stored.push(Flagged {
                    uid: *uid,
                    flags: meta.flags.clone(),
                    modseq: meta.modseq,
                });
            }
            if any {
                target.highest_modseq = modseq;
                folders.modseq = modseq;
            }
            report
        };
        self.changed(folder);
        Ok(report)
    }

    async fn copy(&self, from: &str, uids: &[u32], to: &str) -> Result<CopyReport, MailError> {
        let report = {
            let mut folders = self.lock();
            let picked: Vec<Stored> = {
                let source = folders.get(from)?;
                uids.iter().filter_map(|uid| source.messages.get(uid).cloned()).collect()
            };
            folders.get(to)?;
            let modseq = folders.next_modseq();
            let target = folders.get(to)?;
            let mut mapping = Vec::new();
            for stored in picked {
                let old = stored.meta.uid;
                mapping.push((old, target.put_in(stored, modseq)));
            }
            CopyReport { uid_validity: target.uid_validity, mapping }
        };
        self.changed(to);
        Ok(report)
    }

    async fn move_to(&self, from: &str, uids: &[u32], to: &str) -> Result<CopyReport, MailError> {
        let report = self.copy(from, uids, to).await?;
        {
            let mut folders = self.lock();
            folders.get(from)?;
            let modseq = folders.next_modseq();
            let moved: Vec<u32> = report.mapping.iter().map(|(old, _)| *old).collect();
            folders.get(from)?.take_out(&moved, modseq);
        }
        self.changed(from);
        Ok(report)
    }

    async fn expunge(&self, folder: &str, uids: &[u32]) -> Result<Vec<u32>, MailError> {
        let removed = {
            let mut folders = self.lock();
            folders.get(folder)?;
            let modseq = folders.next_modseq();
            folders.get(folder)?.take_out(uids, modseq)
        };
        self.changed(folder);
        Ok(removed)
    }

    async fn vanished(&self, folder: &str, since: u64) -> Result<Vanished, MailError> {
        let mut folders = self.lock();
        let target = folders.get(folder)?;
        let mut uids: Vec<u32> =
            target.expunged.iter().filter(|(m, _)| *m > since).map(|(_, uid)| *uid).collect();
        uids.sort_unstable();
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        for uid in uids {
            match ranges.last_mut() {
                Some(last) if last.1 + 1 >= uid => last.1 = last.1.max(uid),
                _ => ranges.push((uid, uid)),
            }
        }
        Ok(Vanished { ranges, exact: true })
    }

    async fn outline(&self, folder: &str, uid: u32) -> Result<MessageOutline, MailError> {
        let stored = self.message(folder, uid)?;
        let size = stored.raw.len() as u64;
        let structure = match stored.structure.map(|s| MessageStructure::decode(&s, size)) {
            Some(Ok(structure)) => structure,
            // As the node does for mail stored without one (or with one it
            // cannot read): found from the whole message.
            _ => {
                self.full_reads.fetch_add(1, Ordering::Relaxed);
                mime::parse(&stored.raw).structure
            }
        };
        Ok(MessageOutline::of(&stored.raw, structure))
    }

    async fn fetch(&self, folder: &str, uid: u32) -> Result<Bytes, MailError> {
        let stored = self.message(folder, uid)?;
        self.full_reads.fetch_add(1, Ordering::Relaxed);
        Ok(stored.raw)
    }

    fn changes(&self) -> broadcast::Receiver<FolderChanged> {
        self.changes.subscribe()
    }
}
