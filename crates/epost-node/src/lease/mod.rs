//! Keeping what the users hosted here still need, for as long as they
//! need it, and only that long (spec/store.md section 8).
//!
//! Every stored object expires unless someone renews it. The node keeps a
//! **lease book** ([`book`]) of the *roots* its users reference: each
//! message in a folder (its manifest, with the part and chunk objects
//! below it), each entry of their logs, the newest mail-state checkpoint.
//! Each root is listed once however many users or folders refer to it,
//! with the set of owners that do; its book entry expires when the lease
//! the node last secured on the holders ends, so the roots due for
//! renewal are read in order from the store's expiry index, and a pass
//! never walks a log. The **renewal** ([`renew`]) runs at start and then
//! periodically: it extends every due root's objects on their holders in
//! batches per holder, rate-limited, and records the new lease end, one
//! page at a time, so a crash or restart resumes where it stopped. It also
//! republishes the signed heads of the logs written here.
//!
//! Deletion is non-renewal: when the last owner lets go of a root (an
//! expunge, a deleted folder, a removed user) its entry goes, nothing
//! renews its objects, and every holder collects them when their lease
//! ends. An attachment shared by two messages stays as long as either
//! message does.

pub mod book;
mod renew;

use std::time::Duration;

pub use book::{BookError, Change, HeadUpdate, LeaseBook, NewRoot, OwnedHead, OwnerId, RootKind};
pub use renew::{RenewProgress, RenewReport, Renewer};

/// When and how fast the node renews.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// The lease asked of holders (the storage lease).
    pub lease: Duration,
    /// A root is renewed once this long has passed since its lease was
    /// last secured: so at any moment at least `lease - renew_after -
    /// interval` remains on everything, the absence a node survives.
    pub renew_after: Duration,
    /// How often a pass runs (and one at start).
    pub interval: Duration,
    /// Objects renewed per second at most.
    pub rate: u32,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self {
            lease: epost_types::time::DEFAULT_LEASE,
            renew_after: Duration::from_secs(30 * 24 * 3600),
            interval: Duration::from_secs(24 * 3600),
            rate: 2000,
        }
    }
}
