//! `/epost/frag/1` messages: storing, fetching, probing and leasing
//! erasure-coded fragments on their holders (`spec/dht.md` section 3).

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// A 32-byte object id as it travels (the storage layer gives it meaning).
pub type WireId = [u8; 32];

/// What one peer asks another about fragments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FragRequest {
    /// Store these fragments (each an encoded `Fragment`) until `expires`
    /// (ms since the UNIX epoch). Answered only once they are durable.
    Store { fragments: Vec<ByteBuf>, expires: u64 },
    /// Send the fragment `index` of `object`, if held.
    Fetch { object: WireId, index: u8 },
    /// Which fragment indices of each object are held here?
    Probe { objects: Vec<WireId> },
    /// Extend the lease of every held fragment of these objects to `expires`.
    Extend { objects: Vec<WireId>, expires: u64 },
    /// The same, answered per object, for an owner's renewal: at most
    /// [`MAX_RENEW`](crate::limits::MAX_RENEW) objects, all extended in
    /// one commit.
    Renew { objects: Vec<WireId>, expires: u64 },
}

/// The answer to a [`FragRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FragResponse {
    /// All fragments of a `Store` are durable here.
    Stored,
    /// The requested fragment, encoded.
    Fragment(ByteBuf),
    /// Not held here.
    NotFound,
    /// For `Probe`: per object (same order), the indices held.
    Held(Vec<Vec<u8>>),
    /// For `Extend`: how many fragments had their lease extended.
    Extended(u32),
    /// For `Renew`: per object (same order), the indices of its fragments
    /// held here whose lease now ends no earlier than asked.
    Renewed(Vec<Vec<u8>>),
    /// The request was refused; `reason` says why (bad fragment, full disk...).
    Refused { reason: RefusalReason, detail: String },
}

/// Why a holder refused a request, in a form the sender can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefusalReason {
    /// The fragment failed its own integrity check.
    BadFragment,
    /// The holder has no space left.
    NoSpace,
    /// The holder is overloaded; try another or later.
    Busy,
    /// Anything else (I/O error, shutting down).
    Internal,
    /// The asking peer has used its share of this holder's capacity
    /// (`spec/security.md` section 3.6.1): placed like `NoSpace`, on another
    /// peer. Added after the first four; a node that predates it cannot
    /// decode the answer, and its failed request moves the fragments to
    /// another peer just the same.
    OverQuota,
}
