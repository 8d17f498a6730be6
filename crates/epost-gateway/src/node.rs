//! The real backend: an epost node's mail service and identity behind the
//! gateway's [`MailBackend`] trait.

use std::sync::{Arc, Weak};

use bytes::Bytes;
use epost_node::identity::Identity;
use epost_node::mail::{self, Change as MailChange, MailService, Mailbox, Route};
use epost_types::address::Address;
use epost_types::mail::FlagChange;
use tokio::sync::broadcast;

use crate::backend::{
    Account, AuthError, Change, CopyReport, Envelope, FlagOp, FolderInfo, FolderSnapshot,
    MailBackend, MailError, MessageMeta, Recipient, special_use,
};
use crate::smarthost::{RelayError, SmartHost};

/// A node's mail, for the gateway.
#[derive(Clone)]
pub struct NodeBackend {
    mail: MailService,
    identity: Identity,
    smart_host: Option<SmartHost>,
}

impl NodeBackend {
    pub fn new(mail: MailService, identity: Identity) -> Self {
        Self { mail, identity, smart_host: None }
    }

    /// Mail for domains outside the trusted realms goes to `smart_host`.
    pub fn with_smart_host(mut self, smart_host: SmartHost) -> Self {
        self.smart_host = Some(smart_host);
        self
    }
}

fn mail_error(error: mail::MailError) -> MailError {
    match error {
        mail::MailError::NoFolder(name) => MailError::NoFolder(name),
        mail::MailError::FolderExists(name) => MailError::FolderExists(name),
        mail::MailError::NotAllowed(text) => MailError::NotAllowed(text),
        mail::MailError::NoMessage(uid) => MailError::NoMessage(uid),
        mail::MailError::NotHosted(address) => {
            MailError::NotAllowed(format!("{address} is not hosted here"))
        }
        other @ (mail::MailError::Temporary(_)
        | mail::MailError::Corrupt(_)
        | mail::MailError::Stopped) => MailError::Temporary(other.to_string()),
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
                .map_err(|e| AuthError::Temporary(e.to_string()))?;
        if good { Ok(address) } else { Err(AuthError::Invalid) }
    }

    async fn recipient(&self, rcpt: &Address) -> Recipient {
        match self.mail.route(rcpt).await {
            Route::Local | Route::Remote => Recipient::Deliverable,
            Route::Unknown => Recipient::UnknownUser,
            Route::Foreign => Recipient::Foreign,
        }
    }

    async fn deliver(&self, envelope: Envelope, raw: Bytes) -> Result<(), MailError> {
        let mut ours = Vec::new();
        let mut foreign = Vec::new();
        for rcpt in &envelope.to {
            match self.mail.route(rcpt).await {
                Route::Local | Route::Remote => ours.push(rcpt.clone()),
                Route::Unknown => {
                    return Err(MailError::NotAllowed(format!("no such user: {rcpt}")));
                }
                Route::Foreign => foreign.push(rcpt.to_string()),
            }
        }
        // The relay first: it may fail without anything delivered here.
        if !foreign.is_empty() {
            let Some(smart_host) = &self.smart_host else {
                return Err(MailError::NotAllowed(format!(
                    "{} is outside the realms trusted here and no smart host is configured",
                    foreign.join(", ")
                )));
            };
            smart_host.relay(envelope.from.as_deref(), &foreign, &raw).await.map_err(
                |e| match e {
                    RelayError::Refused(text) => MailError::NotAllowed(text),
                    RelayError::Unavailable(text) => MailError::Temporary(text),
                },
            )?;
        }
        if ours.is_empty() {
            return Ok(());
        }
        self.mail.deliver(envelope.submitter.as_ref(), &ours, &raw).await.map_err(mail_error)
    }

    async fn account(&self, user: &Address) -> Result<NodeAccount, MailError> {
        let mailbox = self.mail.mailbox(user).map_err(mail_error)?;
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
    changes: broadcast::Sender<Change>,
}

impl NodeAccount {
    fn new(mailbox: Mailbox, mail: MailService) -> Self {
        let (changes, _) = broadcast::channel(256);
        let inner = Arc::new(AccountInner { mailbox, mail, changes });
        tokio::spawn(forward(inner.mailbox.changes(), Arc::downgrade(&inner)));
        Self { inner }
    }

    async fn change(&self, change: MailChange) -> Result<mail::Changed, MailError> {
        self.inner.mailbox.change(change).await.map_err(mail_error)
    }

    /// Applies a copy or move; says where each message went.
    async fn copied(&self, change: MailChange) -> Result<CopyReport, MailError> {
        let changed = self.change(change).await?;
        Ok(CopyReport {
            uid_validity: changed.uid_validity,
            mapping: changed.sources.into_iter().zip(changed.uids).collect(),
        })
    }
}

/// Passes the mailbox's folder changes on while the account is in use.
async fn forward(mut from: broadcast::Receiver<String>, to: Weak<AccountInner>) {
    loop {
        let folder = match from.recv().await {
            Ok(folder) => folder,
            // Lagged: every folder may have changed; INBOX is what clients
            // idle on, and a re-select of the others catches up.
            Err(broadcast::error::RecvError::Lagged(_)) => "INBOX".to_owned(),
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(inner) = to.upgrade() else { return };
        let _ = inner.changes.send(Change { folder });
    }
}

fn flag_change(op: FlagOp) -> FlagChange {
    match op {
        FlagOp::Add => FlagChange::Add,
        FlagOp::Remove => FlagChange::Remove,
        FlagOp::Replace => FlagChange::Replace,
    }
}

impl Account for NodeAccount {
    async fn folders(&self) -> Result<Vec<FolderInfo>, MailError> {
        self.inner
            .mailbox
            .read(|state| {
                state
                    .folders
                    .iter()
                    .map(|(name, folder)| FolderInfo {
                        name: name.clone(),
                        special_use: special_use(name),
                        subscribed: folder.subscribed,
                    })
                    .collect()
            })
            .await
            .map_err(mail_error)
    }

    async fn create(&self, name: &str) -> Result<(), MailError> {
        self.change(MailChange::Create(name.to_owned())).await.map(|_| ())
    }

    async fn delete(&self, name: &str) -> Result<(), MailError> {
        self.change(MailChange::Delete(name.to_owned())).await.map(|_| ())
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), MailError> {
        self.change(MailChange::Rename(from.to_owned(), to.to_owned())).await.map(|_| ())
    }

    async fn subscribe(&self, name: &str, subscribed: bool) -> Result<(), MailError> {
        self.change(MailChange::Subscribe(name.to_owned(), subscribed)).await.map(|_| ())
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
                    messages: folder
                        .messages
                        .iter()
                        .map(|(uid, stored)| MessageMeta {
                            uid: *uid,
                            flags: stored.flags.clone(),
                            internal_date: stored.message.internal_date,
                            size: stored.message.size,
                        })
                        .collect(),
                    name: owned,
                })
            })
            .await
            .map_err(mail_error)?
            .ok_or_else(|| mail_error(mail::MailError::NoFolder(name.to_owned())))
    }

    async fn append(
        &self,
        folder: &str,
        raw: Bytes,
        flags: Vec<String>,
        internal_date: Option<u64>,
    ) -> Result<(u32, u32), MailError> {
        // Refuse before storing anything if the folder is not there.
        self.inner.mailbox.folder(folder).await.map_err(mail_error)?;
        let (mut message, objects) = self
            .inner
            .mail
            .store_message(&raw, &self.inner.mailbox.address)
            .await
            .map_err(mail_error)?;
        if let Some(date) = internal_date {
            message.internal_date = date;
        }
        let insert = MailChange::Insert {
            folder: folder.to_owned(),
            message,
            flags,
            notification: None,
            objects: Some(objects),
        };
        let changed = self.change(insert).await?;
        let uid = changed
            .uids
            .first()
            .copied()
            .ok_or_else(|| MailError::Temporary("the append assigned no UID".into()))?;
        Ok((changed.uid_validity, uid))
    }

    async fn store(
        &self,
        folder: &str,
        uids: &[u32],
        op: FlagOp,
        flags: Vec<String>,
    ) -> Result<Vec<(u32, Vec<String>)>, MailError> {
        let change = MailChange::Flags {
            folder: folder.to_owned(),
            uids: uids.to_vec(),
            change: flag_change(op),
            flags,
        };
        Ok(self.change(change).await?.flags)
    }

    async fn copy(&self, from: &str, uids: &[u32], to: &str) -> Result<CopyReport, MailError> {
        let change =
            MailChange::Copy { from: from.to_owned(), uids: uids.to_vec(), to: to.to_owned() };
        self.copied(change).await
    }

    async fn move_to(&self, from: &str, uids: &[u32], to: &str) -> Result<CopyReport, MailError> {
        let change =
            MailChange::Move { from: from.to_owned(), uids: uids.to_vec(), to: to.to_owned() };
        self.copied(change).await
    }

    async fn expunge(&self, folder: &str, uids: &[u32]) -> Result<Vec<u32>, MailError> {
        let change = MailChange::Expunge { folder: folder.to_owned(), uids: uids.to_vec() };
        Ok(self.change(change).await?.uids)
    }

    async fn fetch(&self, folder: &str, uid: u32) -> Result<Bytes, MailError> {
        let name = folder.to_owned();
        let message = self
            .inner
            .mailbox
            .read(move |state| {
                state.folders.get(&name).map(|f| f.messages.get(&uid).map(|m| m.message.clone()))
            })
            .await
            .map_err(mail_error)?
            .ok_or_else(|| MailError::NoFolder(folder.to_owned()))?
            .ok_or(MailError::NoMessage(uid))?;
        self.inner.mail.fetch(&message).await.map_err(mail_error)
    }

    fn changes(&self) -> broadcast::Receiver<Change> {
        self.inner.changes.subscribe()
    }
}
