//! The real backend: an epost node's mail service and identity behind the
//! gateway's [`MailBackend`] trait. Both speak [`epost_types::mailbox`],
//! so nothing here translates: errors, flag changes and folder events
//! pass through as they are, and delivery follows the routes RCPT took.
//! Mail for foreign recipients goes into the node's outbound queue, with
//! the envelope's DSN parameters; the submitter hears `250` once it is
//! queued durably.
//!
//! The only module that names `epost_node` (the cargo feature `node`).

use std::sync::Arc;

use bytes::Bytes;
use epost_node::identity::Identity;
use epost_node::mail::{self, MailService, Mailbox};
use epost_node::outbound::{OutboundService, Submission};
use epost_types::address::Address;
use epost_types::mail::{FlagChange, MailOp, MessageRef};
use epost_types::mailbox::{Change, FolderChanged, MailError, Route, Vanished};
use epost_types::mime::MessageOutline;
use tokio::sync::broadcast;

use crate::backend::{
    Account, AuthError, CopyReport, Envelope, FolderInfo, FolderSnapshot, MailBackend, MessageMeta,
    NewMessage, Quota, StoreReport, special_use,
};

/// A node's mail, for the gateway.
#[derive(Clone)]
pub struct NodeBackend {
    mail: MailService,
    identity: Identity,
    outbound: Option<OutboundService>,
}

impl NodeBackend {
    pub fn new(mail: MailService, identity: Identity) -> Self {
        Self { mail, identity, outbound: None }
    }

    /// Mail for domains outside the trusted realms goes into `outbound`.
    pub fn with_outbound(mut self, outbound: OutboundService) -> Self {
        self.outbound = Some(outbound);
        self
    }

    /// Queues `raw` for the foreign recipients of `envelope`.
    async fn enqueue(
        &self,
        envelope: &Envelope,
        foreign: Vec<Address>,
        raw: &Bytes,
    ) -> Result<(), MailError> {
        let Some(outbound) = &self.outbound else {
            let list: Vec<String> = foreign.iter().map(ToString::to_string).collect();
            return Err(MailError::NotAllowed(format!(
                "{} is outside the realms trusted here and this node sends no mail out",
                list.join(", ")
            )));
        };
        // The sender's domain signs; for `<>` the submitter's.
        let signing_domain = envelope
            .from
            .as_deref()
            .and_then(|f| f.parse::<Address>().ok())
            .or_else(|| envelope.submitter.clone())
            .map(|a| a.domain().to_owned())
            .ok_or_else(|| {
                MailError::NotAllowed("mail for other domains needs a sender of this realm".into())
            })?;
        let recipients = foreign
            .iter()
            .map(|address| {
                let (notify, orcpt) = envelope.dsn.of(address);
                epost_mta::outbound::Recipient { address: address.to_string(), notify, orcpt }
            })
            .collect();
        let submission = Submission {
            reverse_path: envelope.from.clone(),
            recipients,
            raw: raw.to_vec(),
            envid: envelope.dsn.envid.clone(),
            ret: envelope.dsn.ret,
            signing_domain,
        };
        outbound
            .enqueue(submission)
            .await
            .map(|_| ())
            .map_err(|e| MailError::unavailable("cannot queue the message", e))
    }
}

impl MailBackend for NodeBackend {
    type Account = NodeAccount;

    async fn authenticate(&self, user: &str, password: &str) -> Result<Address, AuthError> {
        let address: Address = user.parse().map_err(|_| AuthError::Invalid)?;
        let identity = self.identity.clone();
        let (checked, password) = (address.clone(), password.to_owned());
        // Argon2id takes tens of milliseconds: off the async workers.
        let good =
            tokio::task::spawn_blocking(move || identity.check_password(&checked, &password))
                .await
                .map_err(|e| {
                    AuthError::Temporary(MailError::unavailable("the password check failed", e))
                })?;
        if good { Ok(address) } else { Err(AuthError::Invalid) }
    }

    async fn recipient(&self, rcpt: &Address) -> Result<Route, MailError> {
        self.mail.route(rcpt).await
    }

    async fn can_announce(
        &self,
        submitter: Option<&Address>,
        rcpt: &Address,
    ) -> Result<(), MailError> {
        self.mail.can_announce(submitter, rcpt).await
    }

    fn domains(&self) -> Vec<String> {
        let mut domains: Vec<String> =
            self.identity.realms().into_iter().map(|realm| realm.domain).collect();
        for domain in self.identity.trusted().domains() {
            if domain != epost_types::identity::ANY_DOMAIN && !domains.iter().any(|d| d == domain) {
                domains.push(domain.to_owned());
            }
        }
        domains
    }

    async fn deliver(&self, envelope: Envelope, raw: Bytes) -> Result<(), MailError> {
        // By the routes RCPT decided: nothing is looked up again.
        let mut ours = Vec::new();
        let mut foreign = Vec::new();
        for rcpt in &envelope.to {
            match rcpt.route {
                Route::Local | Route::Remote => ours.push(rcpt.clone()),
                Route::Unknown => return Err(MailError::UnknownUser(rcpt.address.clone())),
                Route::Foreign => foreign.push(rcpt.address.clone()),
            }
        }
        // The queue first: it may refuse (full, no DKIM key) without
        // anything delivered here.
        if !foreign.is_empty() {
            self.enqueue(&envelope, foreign, &raw).await?;
        }
        if ours.is_empty() {
            return Ok(());
        }
        self.mail.deliver(envelope.submitter.as_ref(), &ours, &raw).await
    }

    async fn account(&self, user: &Address) -> Result<NodeAccount, MailError> {
        let mailbox = self.mail.mailbox(user)?;
        Ok(NodeAccount::new(mailbox, self.mail.clone()))
    }
}

/// One user's mailboxes on this node.
#[derive(Clone)]
pub struct NodeAccount {
    inner: Arc<AccountInner>,
}

struct AccountInner {
    mailbox: Mailbox,
    mail: MailService,
}

impl NodeAccount {
    fn new(mailbox: Mailbox, mail: MailService) -> Self {
        Self { inner: Arc::new(AccountInner { mailbox, mail }) }
    }

    async fn change(&self, change: impl Into<Change>) -> Result<mail::Changed, MailError> {
        self.inner.mailbox.change(change).await
    }

    /// Whether a folder has `name`, and whether the name is subscribed.
    async fn look(&self, name: &str) -> Result<(bool, bool), MailError> {
        let owned = name.to_owned();
        self.inner
            .mailbox
            .read(move |state| (state.folders.contains_key(&owned), state.subscribed(&owned)))
            .await
    }

    /// Applies `changes` together; the first failure is the answer (a
    /// later change of a failed first one fails with it).
    async fn all(&self, changes: Vec<Change>) -> Result<(), MailError> {
        for result in self.inner.mailbox.change_all(changes).await? {
            result?;
        }
        Ok(())
    }

    /// How a folder refers to one of its messages.
    async fn message(&self, folder: &str, uid: u32) -> Result<MessageRef, MailError> {
        let name = folder.to_owned();
        self.inner
            .mailbox
            .read(move |state| {
                state.folders.get(&name).map(|f| f.messages.get(&uid).map(|m| m.message.clone()))
            })
            .await?
            .ok_or_else(|| MailError::NoFolder(folder.to_owned()))?
            .ok_or(MailError::NoMessage(uid))
    }

    /// Applies a copy or move; says where each message went.
    async fn copied(&self, change: MailOp) -> Result<CopyReport, MailError> {
        let changed = self.change(change).await?;
        Ok(CopyReport {
            uid_validity: changed.uid_validity,
            mapping: changed.sources.into_iter().zip(changed.uids).collect(),
        })
    }
}

impl Account for NodeAccount {
    async fn folders(&self) -> Result<Vec<FolderInfo>, MailError> {
        self.inner
            .mailbox
            .read(|state| {
                let folders = state.folders.keys().map(|name| FolderInfo {
                    name: name.clone(),
                    special_use: special_use(name),
                    subscribed: state.subscribed(name),
                    exists: true,
                });
                let unmade = state.subscribed_names().map(|name| FolderInfo {
                    name: name.clone(),
                    special_use: None,
                    subscribed: true,
                    exists: false,
                });
                folders.chain(unmade).collect()
            })
            .await
    }

    async fn quota(&self) -> Result<Quota, MailError> {
        // The node keeps no limit per user: usage only.
        self.inner
            .mailbox
            .read(|state| {
                let messages = state.folders.values().flat_map(|f| f.messages.values());
                let (count, bytes) =
                    messages.fold((0u64, 0u64), |(n, b), m| (n + 1, b + m.message.size));
                Quota { storage_bytes: bytes, messages: count, ..Quota::default() }
            })
            .await
    }

    async fn create(&self, name: &str) -> Result<(), MailError> {
        // A folder made is subscribed in the log; the name keeps the
        // subscription it had, in the same entry.
        let (exists, was) = self.look(name).await?;
        let mut changes = vec![Change::create(name)];
        if !exists && !was {
            changes.push(MailOp::Subscription { name: name.to_owned(), subscribed: false }.into());
        }
        self.all(changes).await
    }

    async fn delete(&self, name: &str) -> Result<(), MailError> {
        // DELETE takes the folder's subscription in the log; a subscribed
        // name stays subscribed (RFC 3501 6.3.4), in the same entry.
        let (exists, was) = self.look(name).await?;
        let mut changes = vec![Change::from(MailOp::Delete { folder: name.to_owned() })];
        if exists && was && name != "INBOX" {
            changes.push(MailOp::Subscription { name: name.to_owned(), subscribed: true }.into());
        }
        self.all(changes).await
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), MailError> {
        self.change(Change::rename(from, to)).await.map(|_| ())
    }

    async fn subscribe(&self, name: &str, subscribed: bool) -> Result<(), MailError> {
        let op = MailOp::Subscription { name: name.to_owned(), subscribed };
        self.change(op).await.map(|_| ())
    }

    async fn snapshot(&self, name: &str) -> Result<FolderSnapshot, MailError> {
        // Built by the account's task from its state: copying only what a
        // session needs, not the whole folder (every NOOP asks for this).
        let owned = name.to_owned();
        self.inner
            .mailbox
            .read(move |state| {
                let folder = state.folders.get(&owned)?;
                Some(FolderSnapshot {
                    uid_validity: folder.uid_validity,
                    uid_next: folder.uid_next,
                    highest_modseq: folder.highest_modseq,
                    messages: folder
                        .messages
                        .iter()
                        .map(|(uid, stored)| MessageMeta {
                            uid: *uid,
                            flags: stored.flags.clone(),
                            internal_date: stored.message.internal_date,
                            size: stored.message.size,
                            modseq: stored.modseq,
                        })
                        .collect(),
                    name: owned,
                })
            })
            .await?
            .ok_or_else(|| MailError::NoFolder(name.to_owned()))
    }

    async fn append(
        &self,
        folder: &str,
        raw: Bytes,
        flags: Vec<String>,
        internal_date: Option<u64>,
    ) -> Result<(u32, u32), MailError> {
        // Refuse before storing anything if the folder is not there (a
        // look, not a copy of the folder).
        let name = folder.to_owned();
        if !self.inner.mailbox.read(move |state| state.folders.contains_key(&name)).await? {
            return Err(MailError::NoFolder(folder.to_owned()));
        }
        let (mut message, objects) =
            self.inner.mail.store_message(&raw, &self.inner.mailbox.address).await?;
        if let Some(date) = internal_date {
            message.internal_date = date;
        }
        let insert = Change::insert(folder, message, flags, None, Some(objects));
        let changed = self.change(insert).await?;
        let uid = changed.uids.first().copied().ok_or_else(|| MailError::Unavailable {
            what: "the append assigned no UID".into(),
            cause: None,
        })?;
        Ok((changed.uid_validity, uid))
    }

    async fn append_all(
        &self,
        folder: &str,
        messages: Vec<NewMessage>,
    ) -> Result<(u32, Vec<u32>), MailError> {
        let name = folder.to_owned();
        if !self.inner.mailbox.read(move |state| state.folders.contains_key(&name)).await? {
            return Err(MailError::NoFolder(folder.to_owned()));
        }
        // Every message's objects first: one that cannot be stored fails
        // the append before the log names any (what was stored is only
        // unreferenced, and lapses with its leases). Then all go into the
        // log as one entry.
        let mut inserts = Vec::with_capacity(messages.len());
        for new in messages {
            let (mut message, objects) =
                self.inner.mail.store_message(&new.raw, &self.inner.mailbox.address).await?;
            if let Some(date) = new.internal_date {
                message.internal_date = date;
            }
            inserts.push(Change::insert(folder, message, new.flags, None, Some(objects)));
        }
        let mut uid_validity = 0;
        let mut uids = Vec::with_capacity(inserts.len());
        for result in self.inner.mailbox.insert_together(inserts).await? {
            let changed = result?;
            uid_validity = changed.uid_validity;
            uids.extend(changed.uids);
        }
        Ok((uid_validity, uids))
    }

    async fn store(
        &self,
        folder: &str,
        uids: &[u32],
        op: FlagChange,
        flags: Vec<String>,
        unchanged_since: Option<u64>,
    ) -> Result<StoreReport, MailError> {
        let change = Change::flags(folder, uids.to_vec(), op, flags, unchanged_since);
        let changed = self.change(change).await?;
        Ok(StoreReport { stored: changed.flags, modified: changed.modified })
    }

    async fn vanished(&self, folder: &str, since: u64) -> Result<Vanished, MailError> {
        let name = folder.to_owned();
        self.inner
            .mailbox
            .read(move |state| state.folders.get(&name).map(|f| f.vanished_since(since)))
            .await?
            .ok_or_else(|| MailError::NoFolder(folder.to_owned()))
    }

    async fn copy(&self, from: &str, uids: &[u32], to: &str) -> Result<CopyReport, MailError> {
        let op = MailOp::Copy { from: from.to_owned(), uids: uids.to_vec(), to: to.to_owned() };
        self.copied(op).await
    }

    async fn move_to(&self, from: &str, uids: &[u32], to: &str) -> Result<CopyReport, MailError> {
        let op = MailOp::Move { from: from.to_owned(), uids: uids.to_vec(), to: to.to_owned() };
        self.copied(op).await
    }

    async fn expunge(&self, folder: &str, uids: &[u32]) -> Result<Vec<u32>, MailError> {
        let op = MailOp::Expunge { folder: folder.to_owned(), uids: uids.to_vec() };
        Ok(self.change(op).await?.uids)
    }

    async fn outline(&self, folder: &str, uid: u32) -> Result<MessageOutline, MailError> {
        let message = self.message(folder, uid).await?;
        self.inner.mail.outline(&message).await
    }

    async fn fetch(&self, folder: &str, uid: u32) -> Result<Bytes, MailError> {
        let message = self.message(folder, uid).await?;
        self.inner.mail.fetch(&message).await
    }

    fn changes(&self) -> broadcast::Receiver<FolderChanged> {
        // A receiver that lags misses events; the session then looks at
        // its folder afresh.
        self.inner.mailbox.changes()
    }
}
