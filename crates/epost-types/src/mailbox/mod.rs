//! The words the node's mail service and the gateway share for changing a
//! user's mailboxes: the [`Change`] a client asks for, the [`FolderChanged`]
//! event its sessions watch, why a change failed ([`MailError`]), and where
//! a recipient's mail goes ([`Route`]). One vocabulary, so no layer
//! translates another's.
//!
//! What is stored is not defined here: a change carries the
//! [`MailOp`](crate::mail::MailOp) it becomes in the user's mail log,
//! whose format `spec/mail.md` fixes, so a request and the entry it makes
//! are written in one vocabulary.

mod error;
mod route;

pub use error::{Cause, MailError, MailErrorKind};
pub use route::{Recipient, Route};

use crate::id::ObjectId;
use crate::mail::{FlagChange, MailOp, MessageRef};

/// A change a client asks for: the mail-log operation it becomes, and
/// what the writer cannot read from the operation itself. The writer
/// checks it against the state before it is logged: it gives a new
/// folder its UIDVALIDITY (whatever `uid_validity` the caller wrote),
/// keeps only the UIDs the folder holds, drops a redelivered
/// notification, and refuses a [`MailOp::Checkpoint`], which only it
/// writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub op: MailOp,
    /// The message's objects, when the caller just stored them (else the
    /// renewal finds them by opening the message). Read for an insert only.
    pub objects: Option<StoredObjects>,
    /// Read for a flag change only (IMAP's `UNCHANGEDSINCE`, RFC 7162):
    /// a message whose MODSEQ is above it is left alone and reported as
    /// modified. Checked by the writer, so nothing can change the message
    /// between the check and the store.
    pub unchanged_since: Option<u64>,
}

impl Change {
    /// A new folder.
    pub fn create(folder: impl Into<String>) -> Self {
        MailOp::Create { folder: folder.into(), uid_validity: 0 }.into()
    }

    /// A folder under a new name (and a new UIDVALIDITY).
    pub fn rename(from: impl Into<String>, to: impl Into<String>) -> Self {
        MailOp::Rename { from: from.into(), to: to.into(), uid_validity: 0 }.into()
    }

    /// A message into a folder; `objects` when the caller just stored it.
    pub fn insert(
        folder: impl Into<String>,
        message: MessageRef,
        flags: Vec<String>,
        notification: Option<Vec<u8>>,
        objects: Option<StoredObjects>,
    ) -> Self {
        let op = MailOp::Insert { folder: folder.into(), message, flags, notification };
        Self { op, objects, unchanged_since: None }
    }

    /// A flag change that leaves alone every message changed after the
    /// MODSEQ `unchanged_since` (none when `None`).
    pub fn flags(
        folder: impl Into<String>,
        uids: Vec<u32>,
        change: FlagChange,
        flags: Vec<String>,
        unchanged_since: Option<u64>,
    ) -> Self {
        let op = MailOp::Flags { folder: folder.into(), uids, change, flags };
        Self { op, objects: None, unchanged_since }
    }
}

impl From<MailOp> for Change {
    fn from(op: MailOp) -> Self {
        Self { op, objects: None, unchanged_since: None }
    }
}

/// A message's flags after a change, and the MODSEQ it has now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flagged {
    pub uid: u32,
    pub flags: Vec<String>,
    /// The position in the mail log of the last change to the message
    /// (`spec/mail.md`, "MODSEQ"): what IMAP CONDSTORE calls its
    /// mod-sequence.
    pub modseq: u64,
}

/// The UIDs expunged from a folder after some MODSEQ, for IMAP QRESYNC's
/// `VANISHED (EARLIER)`: ascending, disjoint, inclusive ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vanished {
    pub ranges: Vec<(u32, u32)>,
    /// False when the folder no longer remembers its expunges that far
    /// back: then `ranges` holds every UID below UIDNEXT that the folder
    /// does not hold now (the larger set RFC 7162 allows), a superset of
    /// what went.
    pub exact: bool,
}

/// The objects a message was just stored as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObjects {
    /// Every object besides the manifest's root.
    pub members: Vec<ObjectId>,
    /// The lease they were stored with.
    pub expires: u64,
}

/// Something changed in a folder (IMAP IDLE and NOOP look at it again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderChanged {
    pub folder: String,
}
