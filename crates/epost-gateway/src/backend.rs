//! What the gateway needs from the mail system, as a trait: the node's
//! mail service implements it for real, [`crate::memory::MemoryBackend`]
//! in memory for the sessions' own tests.
//!
//! Every method that changes mail returns only once the change is durable
//! (an SMTP `250`, an IMAP `OK` after APPEND/STORE/MOVE are promises).

use std::future::Future;

use bytes::Bytes;
use epost_types::address::Address;
use tokio::sync::broadcast;

/// IMAP special-use attributes (RFC 6154) of the standard folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpecialUse {
    Sent,
    Drafts,
    Trash,
    Junk,
    Archive,
}

/// The folders every account has, with their special use.
pub const STANDARD_FOLDERS: [(&str, Option<SpecialUse>); 6] = [
    ("INBOX", None),
    ("Sent", Some(SpecialUse::Sent)),
    ("Drafts", Some(SpecialUse::Drafts)),
    ("Trash", Some(SpecialUse::Trash)),
    ("Junk", Some(SpecialUse::Junk)),
    ("Archive", Some(SpecialUse::Archive)),
];

/// The special use of a folder, by its name.
pub fn special_use(name: &str) -> Option<SpecialUse> {
    STANDARD_FOLDERS.iter().find(|(n, _)| *n == name).and_then(|(_, s)| *s)
}

/// What an SMTP server may do with a recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// The address has a certificate in a trusted realm: deliverable.
    Deliverable,
    /// The domain is a trusted realm but the address has no certificate.
    UnknownUser,
    /// Not one of our realms: relay through the smart host, if allowed.
    Foreign,
    /// The lookup failed for now (overlay unreachable): try later (4xx).
    TryLater(String),
}

/// The SMTP envelope of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// `MAIL FROM`; `None` for the null reverse path `<>`.
    pub from: Option<String>,
    /// `RCPT TO`s that were accepted, in order.
    pub to: Vec<Address>,
    /// The authenticated submitter, if any.
    pub submitter: Option<Address>,
}

/// Why a login failed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("invalid credentials")]
    Invalid,
    #[error("temporary failure: {0}")]
    Temporary(String),
}

/// Why a mail operation failed; the text goes to the client.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum MailError {
    #[error("no folder named {0:?}")]
    NoFolder(String),
    #[error("a folder named {0:?} already exists")]
    FolderExists(String),
    #[error("{0}")]
    NotAllowed(String),
    #[error("the message is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("no message with UID {0}")]
    NoMessage(u32),
    /// The overlay could not store or fetch: the client should retry.
    #[error("temporary failure: {0}")]
    Temporary(String),
}

/// One folder in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderInfo {
    pub name: String,
    pub special_use: Option<SpecialUse>,
    pub subscribed: bool,
}

/// One message's metadata in a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageMeta {
    pub uid: u32,
    /// Keywords and system flags as IMAP writes them (`\Seen`, `$Forwarded`).
    pub flags: Vec<String>,
    /// When it arrived, milliseconds since the UNIX epoch.
    pub internal_date: u64,
    /// Exact size of the raw message in bytes.
    pub size: u64,
}

/// A folder's state at one moment. Messages are in ascending UID order,
/// which is IMAP's sequence-number order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderSnapshot {
    pub name: String,
    pub uid_validity: u32,
    pub uid_next: u32,
    pub messages: Vec<MessageMeta>,
}

/// How STORE changes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagOp {
    Add,
    Remove,
    Replace,
}

/// What changed in an account (for IDLE and NOOP): the folder to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub folder: String,
}

/// Where copied or moved messages went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// The destination's UIDVALIDITY.
    pub uid_validity: u32,
    /// (source UID, destination UID) pairs, in source order.
    pub mapping: Vec<(u32, u32)>,
}

/// The mail system as the gateway sees it.
pub trait MailBackend: Clone + Send + Sync + 'static {
    type Account: Account;

    /// Checks a login (address and gateway password).
    fn authenticate(
        &self,
        user: &str,
        password: &str,
    ) -> impl Future<Output = Result<Address, AuthError>> + Send;

    /// Whether mail to `rcpt` can be accepted.
    fn recipient(&self, rcpt: &Address) -> impl Future<Output = Recipient> + Send;

    /// Stores `raw` durably for every recipient in `envelope.to`; returns
    /// only once it is durable. A message for a foreign recipient goes to
    /// the smart host, or fails with `NotAllowed`.
    fn deliver(
        &self,
        envelope: Envelope,
        raw: Bytes,
    ) -> impl Future<Output = Result<(), MailError>> + Send;

    /// The mailboxes of a user hosted here (after a login).
    fn account(
        &self,
        user: &Address,
    ) -> impl Future<Output = Result<Self::Account, MailError>> + Send;
}

/// One user's mailboxes. Cheap to clone; every clone sees the same state.
pub trait Account: Clone + Send + Sync + 'static {
    fn folders(&self) -> impl Future<Output = Result<Vec<FolderInfo>, MailError>> + Send;
    fn create(&self, name: &str) -> impl Future<Output = Result<(), MailError>> + Send;
    fn delete(&self, name: &str) -> impl Future<Output = Result<(), MailError>> + Send;
    fn rename(&self, from: &str, to: &str) -> impl Future<Output = Result<(), MailError>> + Send;
    fn subscribe(
        &self,
        name: &str,
        subscribed: bool,
    ) -> impl Future<Output = Result<(), MailError>> + Send;

    /// The folder's current state.
    fn snapshot(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<FolderSnapshot, MailError>> + Send;

    /// Stores a message in a folder; returns (UIDVALIDITY, UID).
    fn append(
        &self,
        folder: &str,
        raw: Bytes,
        flags: Vec<String>,
        internal_date: Option<u64>,
    ) -> impl Future<Output = Result<(u32, u32), MailError>> + Send;

    /// Changes flags; returns the new flags of every message changed.
    fn store(
        &self,
        folder: &str,
        uids: &[u32],
        op: FlagOp,
        flags: Vec<String>,
    ) -> impl Future<Output = Result<Vec<(u32, Vec<String>)>, MailError>> + Send;

    fn copy(
        &self,
        from: &str,
        uids: &[u32],
        to: &str,
    ) -> impl Future<Output = Result<CopyReport, MailError>> + Send;

    /// Copy, then remove from the source, as one change.
    fn move_to(
        &self,
        from: &str,
        uids: &[u32],
        to: &str,
    ) -> impl Future<Output = Result<CopyReport, MailError>> + Send;

    /// Removes the given messages (the session decides which: those with
    /// `\Deleted`, limited to a UID set for UID EXPUNGE).
    fn expunge(
        &self,
        folder: &str,
        uids: &[u32],
    ) -> impl Future<Output = Result<Vec<u32>, MailError>> + Send;

    /// The exact bytes of a message, as received.
    fn fetch(
        &self,
        folder: &str,
        uid: u32,
    ) -> impl Future<Output = Result<Bytes, MailError>> + Send;

    /// Changes to this account as they happen (bounded; a lagging receiver
    /// should take a fresh snapshot).
    fn changes(&self) -> broadcast::Receiver<Change>;
}
