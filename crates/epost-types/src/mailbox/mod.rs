//! The words the node's mail service and the gateway share for changing a
//! user's mailboxes: the [`Change`] a client asks for, the [`FolderChanged`]
//! event its sessions watch, why a change failed ([`MailError`]), and where
//! a recipient's mail goes ([`Route`]). One vocabulary, so no layer
//! translates another's.
//!
//! What is stored is not defined here: a change becomes a
//! [`MailOp`](crate::mail::MailOp) in the user's mail log, whose format
//! `spec/mail.md` fixes; a flag change is the log's own
//! [`FlagChange`](crate::mail::FlagChange) from the request to the entry.

mod error;
mod route;

pub use error::{Cause, MailError, MailErrorKind};
pub use route::{Recipient, Route};

use crate::id::ObjectId;
use crate::mail::{FlagChange, MessageRef};

/// A change a client asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
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
