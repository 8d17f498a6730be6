//! Why a mail operation failed, with its cause kept, and the
//! [`MailErrorKind`] a protocol answers by (IMAP's response codes, SMTP's
//! 4xx or 5xx, POP3's `[SYS/TEMP]` or `[SYS/PERM]`).

use std::error::Error;
use std::fmt::Write as _;
use std::sync::Arc;

use crate::address::Address;

/// The error below a mail error. Shared, because one failed group commit
/// answers every request in it.
pub type Cause = Arc<dyn Error + Send + Sync + 'static>;

/// Why a mail operation failed. Its text (with
/// [`MailError::with_causes`]) goes to the client.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MailError {
    #[error("no folder named {0:?}")]
    NoFolder(String),
    #[error("a folder named {0:?} already exists")]
    FolderExists(String),
    #[error("no message with UID {0}")]
    NoMessage(u32),
    /// A rule refuses the request; the text says which.
    #[error("{0}")]
    NotAllowed(String),
    #[error("the message is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("{0} is not hosted on this node")]
    NotHosted(Address),
    #[error("no such user: {0}")]
    UnknownUser(Address),
    /// The recipient cannot be reached for good (no valid certificate).
    #[error("cannot deliver to {address}")]
    Undeliverable {
        address: Address,
        #[source]
        cause: Cause,
    },
    /// The overlay could not store or fetch; retrying later may work.
    #[error("{what}")]
    Unavailable {
        what: String,
        #[source]
        cause: Option<Cause>,
    },
    #[error("the stored message is damaged: {what}")]
    Corrupt {
        what: String,
        #[source]
        cause: Option<Cause>,
    },
    #[error("the mail service is shutting down")]
    Stopped,
}

/// What a client is told a mail error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailErrorKind {
    NoFolder,
    FolderExists,
    NoMessage,
    TooLarge,
    /// Asking again will not help.
    Refused,
    /// Asking again later may work.
    Temporary,
}

impl MailError {
    /// The overlay failed at `what` because of `cause`.
    pub fn unavailable(what: impl Into<String>, cause: impl Error + Send + Sync + 'static) -> Self {
        Self::Unavailable { what: what.into(), cause: Some(Arc::new(cause)) }
    }

    /// What was read is damaged: `what`, found by `cause`.
    pub fn corrupt(what: impl Into<String>, cause: impl Error + Send + Sync + 'static) -> Self {
        Self::Corrupt { what: what.into(), cause: Some(Arc::new(cause)) }
    }

    pub fn kind(&self) -> MailErrorKind {
        match self {
            MailError::NoFolder(_) => MailErrorKind::NoFolder,
            MailError::FolderExists(_) => MailErrorKind::FolderExists,
            MailError::NoMessage(_) => MailErrorKind::NoMessage,
            MailError::TooLarge { .. } => MailErrorKind::TooLarge,
            MailError::NotAllowed(_)
            | MailError::NotHosted(_)
            | MailError::UnknownUser(_)
            | MailError::Undeliverable { .. } => MailErrorKind::Refused,
            MailError::Unavailable { .. } | MailError::Corrupt { .. } | MailError::Stopped => {
                MailErrorKind::Temporary
            }
        }
    }

    /// The error and every cause below it, `outer: inner: innermost`, for
    /// a reply line: the client sees why, not only what.
    pub fn with_causes(&self) -> String {
        let mut text = self.to_string();
        let mut cause = self.source();
        while let Some(e) = cause {
            let _ = write!(text, ": {e}");
            cause = e.source();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("not enough holders")]
    struct Below(#[source] std::io::Error);

    fn bob() -> Address {
        "bob@example.org".parse().unwrap()
    }

    #[test]
    fn kinds_decide_the_reply() {
        let io = || std::io::Error::other("x");
        let table: Vec<(MailError, MailErrorKind)> = vec![
            (MailError::NoFolder("A".into()), MailErrorKind::NoFolder),
            (MailError::FolderExists("A".into()), MailErrorKind::FolderExists),
            (MailError::NoMessage(3), MailErrorKind::NoMessage),
            (MailError::TooLarge { limit: 1 }, MailErrorKind::TooLarge),
            (MailError::NotAllowed("no".into()), MailErrorKind::Refused),
            (MailError::NotHosted(bob()), MailErrorKind::Refused),
            (MailError::UnknownUser(bob()), MailErrorKind::Refused),
            (
                MailError::Undeliverable { address: bob(), cause: Arc::new(io()) },
                MailErrorKind::Refused,
            ),
            (MailError::unavailable("cannot store", io()), MailErrorKind::Temporary),
            (MailError::corrupt("manifest", io()), MailErrorKind::Temporary),
            (MailError::Stopped, MailErrorKind::Temporary),
        ];
        for (error, kind) in table {
            assert_eq!(error.kind(), kind, "{error:?}");
        }
    }

    #[test]
    fn the_causes_are_kept_and_shown_once() {
        let e = MailError::unavailable(
            "cannot store the message",
            Below(std::io::Error::other("disk on fire")),
        );
        assert_eq!(e.to_string(), "cannot store the message");
        assert!(e.source().is_some());
        assert_eq!(e.with_causes(), "cannot store the message: not enough holders: disk on fire");
        let plain = MailError::Unavailable { what: "no storage quorum".into(), cause: None };
        assert_eq!(plain.with_causes(), "no storage quorum");
    }
}
