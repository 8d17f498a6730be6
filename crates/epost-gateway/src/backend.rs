//! What the gateway needs from the mail system, as a trait: the node's
//! mail service implements it for real, [`crate::memory::MemoryBackend`]
//! in memory for the sessions' own tests.
//!
//! Every method that changes mail returns only once the change is durable
//! (an SMTP `250`, an IMAP `OK` after APPEND/STORE/MOVE are promises).
//!
//! Its words are the mail service's own ([`epost_types::mailbox`]): a
//! [`MailError`] whose kind the sessions answer by, the log's
//! [`FlagChange`], the [`FolderChanged`] events IDLE watches, and the
//! [`Route`] decided for each recipient at RCPT, which the [`Envelope`]
//! carries to delivery, and the [`MessageOutline`] (a message's stored
//! MIME structure and header bytes) FETCH answers most items from without
//! reading the message's parts. A message's MODSEQ and a folder's
//! highest (RFC 7162) are the mail service's, as are what a STORE left
//! alone under `UNCHANGEDSINCE` and the [`Vanished`] UIDs QRESYNC asks
//! for. Subscriptions are names, with or without a folder
//! ([`FolderInfo::exists`]); a [`Quota`] says what a user stores against
//! their limits.

use std::future::Future;

use bytes::Bytes;
use epost_mta::outbound::{Notify, Ret};
use epost_types::address::Address;
use epost_types::mail::FlagChange;
pub use epost_types::mailbox::{Flagged, Vanished};
use epost_types::mailbox::{FolderChanged, MailError, Recipient, Route};
use epost_types::mime::MessageOutline;
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

/// The SMTP envelope of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// `MAIL FROM`; `None` for the null reverse path `<>`.
    pub from: Option<String>,
    /// `RCPT TO`s that were accepted, in order, each with the route
    /// decided for it then: delivery goes by it.
    pub to: Vec<Recipient>,
    /// The authenticated submitter, if any.
    pub submitter: Option<Address>,
    /// What the client asked of delivery status notifications.
    pub dsn: DsnRequest,
}

/// The DSN parameters of one transaction (RFC 3461): `RET` and `ENVID`
/// of MAIL, `NOTIFY` and `ORCPT` of each RCPT that gave them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DsnRequest {
    pub ret: Option<Ret>,
    /// `ENVID`, xtext decoded.
    pub envid: Option<String>,
    /// The recipients that gave NOTIFY or ORCPT (the others take the
    /// defaults), by address: a transaction names each recipient once.
    pub recipients: Vec<RcptDsn>,
}

/// One recipient's DSN parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcptDsn {
    pub address: Address,
    pub notify: Notify,
    /// `ORCPT`, as `rfc822;<address>` (decoded).
    pub orcpt: Option<String>,
}

impl DsnRequest {
    /// NOTIFY and ORCPT of `address` (the defaults if it gave none).
    pub fn of(&self, address: &Address) -> (Notify, Option<String>) {
        self.recipients
            .iter()
            .find(|r| &r.address == address)
            .map_or((Notify::default(), None), |r| (r.notify, r.orcpt.clone()))
    }
}

/// Why a login failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error("invalid credentials")]
    Invalid,
    /// The check could not be made now; the cause says why.
    #[error(transparent)]
    Temporary(MailError),
}

/// One name in a listing: a folder, or a subscribed name no folder has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderInfo {
    pub name: String,
    pub special_use: Option<SpecialUse>,
    pub subscribed: bool,
    /// False for a subscribed name that is no folder (subscriptions are
    /// names, kept when the folder is deleted or never made).
    pub exists: bool,
}

/// What a user stores, and how much they may (RFC 9208's STORAGE and
/// MESSAGE resources).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quota {
    /// Bytes of every message in every folder (a message in two folders
    /// counts twice, as a client adding up its folders would).
    pub storage_bytes: u64,
    /// Messages in every folder.
    pub messages: u64,
    /// The most bytes the user may store, if there is a limit.
    pub storage_limit: Option<u64>,
    /// The most messages the user may store, if there is a limit.
    pub message_limit: Option<u64>,
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
    /// Its mod-sequence (RFC 7162): at least 1, and greater after every
    /// change to its flags.
    pub modseq: u64,
}

/// A folder's state at one moment. Messages are in ascending UID order,
/// which is IMAP's sequence-number order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderSnapshot {
    pub name: String,
    pub uid_validity: u32,
    pub uid_next: u32,
    /// HIGHESTMODSEQ: at least every message's MODSEQ, and greater after
    /// any message is taken out.
    pub highest_modseq: u64,
    pub messages: Vec<MessageMeta>,
}

/// A message to store with [`Account::append_all`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub raw: Bytes,
    /// Keywords and system flags as IMAP writes them.
    pub flags: Vec<String>,
    /// When it arrived (milliseconds since the UNIX epoch); `None`: now.
    pub internal_date: Option<u64>,
}

/// What a flag change did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreReport {
    /// Every message asked of that the folder holds and that passed the
    /// `unchanged_since` test, with its flags and MODSEQ now.
    pub stored: Vec<Flagged>,
    /// The UIDs left alone because they changed after `unchanged_since`.
    pub modified: Vec<u32>,
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

    /// Where mail to `rcpt` would go (an error: it cannot be told now).
    /// The session decides from it whether to accept the recipient.
    fn recipient(&self, rcpt: &Address) -> impl Future<Output = Result<Route, MailError>> + Send;

    /// Whether mail to `rcpt`, a user hosted elsewhere (`Route::Remote`),
    /// can be announced from here for `submitter` (none: mail from the
    /// internet, which this node relays only as a named MX of the realm).
    /// `NotAllowed` says it cannot; another error, that it cannot tell now.
    fn can_announce(
        &self,
        submitter: Option<&Address>,
        rcpt: &Address,
    ) -> impl Future<Output = Result<(), MailError>> + Send {
        let _ = (submitter, rcpt);
        std::future::ready(Ok(()))
    }

    /// The mail domains served here, the realms this node holds first:
    /// where a bare `RCPT TO:<postmaster>` is tried as `postmaster@`.
    fn domains(&self) -> Vec<String> {
        Vec::new()
    }

    /// Stores `raw` durably for every recipient in `envelope.to`, by the
    /// route decided at RCPT; returns only once it is durable. A message
    /// for a foreign recipient goes into the node's outbound queue (with
    /// the envelope's DSN parameters), or fails with `NotAllowed`.
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
    /// Every folder, and every subscribed name no folder has, at one
    /// moment.
    fn folders(&self) -> impl Future<Output = Result<Vec<FolderInfo>, MailError>> + Send;
    /// Makes a folder; the name's subscription stays as it was (CREATE
    /// does not subscribe, and a subscribed name stays subscribed).
    fn create(&self, name: &str) -> impl Future<Output = Result<(), MailError>> + Send;
    /// Deletes a folder; its name's subscription stays (RFC 3501 6.3.4).
    fn delete(&self, name: &str) -> impl Future<Output = Result<(), MailError>> + Send;
    /// Renames a folder; its subscription goes with it.
    fn rename(&self, from: &str, to: &str) -> impl Future<Output = Result<(), MailError>> + Send;
    /// Subscribes or unsubscribes a name, whether or not a folder has it.
    fn subscribe(
        &self,
        name: &str,
        subscribed: bool,
    ) -> impl Future<Output = Result<(), MailError>> + Send;

    /// What the user stores now, and their limits.
    fn quota(&self) -> impl Future<Output = Result<Quota, MailError>> + Send;

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

    /// Stores several messages in a folder, all or none (IMAP
    /// MULTIAPPEND, RFC 3502): once it returns `Ok` every one is stored,
    /// after an error none is, and no reader ever sees some without the
    /// others. Returns the folder's UIDVALIDITY and the UIDs, in order.
    fn append_all(
        &self,
        folder: &str,
        messages: Vec<NewMessage>,
    ) -> impl Future<Output = Result<(u32, Vec<u32>), MailError>> + Send;

    /// Changes flags, except on messages whose MODSEQ is above
    /// `unchanged_since` (checked in the same step as the change).
    fn store(
        &self,
        folder: &str,
        uids: &[u32],
        op: FlagChange,
        flags: Vec<String>,
        unchanged_since: Option<u64>,
    ) -> impl Future<Output = Result<StoreReport, MailError>> + Send;

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

    /// The UIDs taken out of a folder after MODSEQ `since` (QRESYNC).
    fn vanished(
        &self,
        folder: &str,
        since: u64,
    ) -> impl Future<Output = Result<Vanished, MailError>> + Send;

    /// Removes the given messages (the session decides which: those with
    /// `\Deleted`, limited to a UID set for UID EXPUNGE).
    fn expunge(
        &self,
        folder: &str,
        uids: &[u32],
    ) -> impl Future<Output = Result<Vec<u32>, MailError>> + Send;

    /// A message's MIME structure and its first bytes through the end of
    /// its header, without reading its part bodies: the structure stored
    /// when it was received, or for mail stored before structures were
    /// kept, the one found from its bytes (which are read for it).
    fn outline(
        &self,
        folder: &str,
        uid: u32,
    ) -> impl Future<Output = Result<MessageOutline, MailError>> + Send;

    /// The exact bytes of a message, as received.
    fn fetch(
        &self,
        folder: &str,
        uid: u32,
    ) -> impl Future<Output = Result<Bytes, MailError>> + Send;

    /// Changes to this account as they happen (bounded; a lagging receiver
    /// should take a fresh snapshot).
    fn changes(&self) -> broadcast::Receiver<FolderChanged>;
}
