//! Every keyspace of the node's local store, declared in one place: each
//! owner of stored data has its own (spec/store.md section 1). A keyspace
//! is swept of expired entries on a schedule ([`crate::sweep`]) unless its
//! owner does that itself or its expiry means something else (a lease end
//! the renewal acts on).

use epost_store::{Keyspace, Kind, keyspace};
use epost_types::limits::MAX_SUMMARY;

/// Erasure-coded fragments this node holds: object id (32) || index (1).
/// The names predate the naming rule, so existing stores keep their data.
pub const BLOCKS: Keyspace =
    Keyspace::with_index("blocks", "block_expiry", Kind::Immutable, 64, 17 * 1024 * 1024);

/// Who each fragment held here is charged to (`storage::quota`): the same
/// key as [`BLOCKS`], the fragment's length (u32 BE) and the sponsoring
/// peer's id, with the fragment's lease, so both are swept together.
pub const FRAG_CHARGES: Keyspace = keyspace!("frag_charges", Mutable, key: 33, value: 4 + 124);

/// Kademlia records held for the overlay (log heads, certificates,
/// presence), written behind: the 33-byte record key.
pub const KAD_RECORDS: Keyspace =
    keyspace!("kad_records", Mutable, key: 33, value: epost_dht::MAX_RECORD_VALUE);

/// Notifications this node holds as an inbox holder: inbox (32) || id
/// (32). The holder task keeps their index in memory and sweeps them.
pub const NOTIFY_PENDING: Keyspace =
    keyspace!("notify_pending", Mutable, key: 64, value: 8 * 1024).unswept();

/// Ids receipted at an inbox this node holds: inbox (32) || id (32).
pub const NOTIFY_RECEIPTED: Keyspace =
    keyspace!("notify_receipted", Mutable, key: 64, value: 128).unswept();

/// Notifications received by the users hosted here, after every check:
/// inbox (32) || received time (u64 BE) || id (32).
pub const NOTIFY_RECEIVED: Keyspace =
    keyspace!("notify_received", Mutable, key: 72, value: 4 * 1024 + MAX_SUMMARY);

/// Nonces seen per inbox, to drop replays: inbox (32) || nonce (16).
pub const NOTIFY_SEEN: Keyspace = keyspace!("notify_seen", Mutable, key: 48, value: 0);

/// The lease book (spec/store.md section 8): what this node renews.
/// Roots by object id (32); each entry's expiry is the lease end secured
/// on the holders, which the renewal reads in order.
pub const LEASE_ROOTS: Keyspace =
    keyspace!("lease_roots", Mutable, key: 32, value: 4 * 1024).unswept();

/// The objects under a root that are renewed with it: root (32) || object (32).
pub const LEASE_MEMBERS: Keyspace =
    keyspace!("lease_members", Mutable, key: 64, value: 0).unswept();

/// Which roots each owner holds: owner (32) || root (32).
pub const LEASE_OWNERS: Keyspace = keyspace!("lease_owners", Mutable, key: 64, value: 0).unswept();

/// The newest signed head of each log this node writes, by log id (32),
/// republished by the renewal; kept until its owner leaves this node.
pub const OWNED_HEADS: Keyspace =
    keyspace!("owned_heads", Mutable, key: 32, value: epost_dht::MAX_RECORD_VALUE + 512).unswept();

/// Per hosted user (owner id, 32): how far the mail service has got in
/// filing received notifications and in registering the mail log's roots.
pub const MAIL_MARKS: Keyspace = keyspace!("mail_marks", Mutable, key: 33, value: 128).unswept();

/// The one table of every record before keyspaces were named (tag bytes
/// told its owners apart); read once, by [`crate::migrate`], and emptied.
pub const LEGACY_RECORDS: Keyspace =
    Keyspace::with_index("records", "record_expiry", Kind::Mutable, 256, 64 * 1024).unswept();

/// Everything the node opens its store with.
pub const ALL: &[Keyspace] = &[
    BLOCKS,
    FRAG_CHARGES,
    KAD_RECORDS,
    NOTIFY_PENDING,
    NOTIFY_RECEIPTED,
    NOTIFY_RECEIVED,
    NOTIFY_SEEN,
    LEASE_ROOTS,
    LEASE_MEMBERS,
    LEASE_OWNERS,
    OWNED_HEADS,
    MAIL_MARKS,
    LEGACY_RECORDS,
];
