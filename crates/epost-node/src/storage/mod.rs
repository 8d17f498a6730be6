//! POST's first service: secure single-copy storage.
//!
//! Objects are convergent-encrypted and chunked (`epost-types`), each
//! chunk's ciphertext erasure-coded into k + m fragments placed on the
//! peers closest to its id ([`put`]), read back from any k and verified
//! ([`get`]), kept at full redundancy under churn ([`maintenance`]), and
//! served to peers from the local store ([`holder`]), each peer within its
//! quota of this node's capacity ([`quota`]).

mod batch;
pub mod erasure;
mod get;
mod holder;
mod local;
mod maintenance;
pub mod metrics;
pub mod placement;
mod plan;
mod put;
mod quota;
mod read;
mod renew;
mod service;
mod spread;

use std::sync::Arc;
use std::time::Duration;

use epost_dht::DhtClient;
use epost_types::convergent::ConvergenceSecret;

pub use get::GetError;
pub use local::{LocalError, LocalFragments};
pub use maintenance::RepairReport;
pub use put::{PutError, StoreFailure};
pub use quota::{MAX_SPONSORS, QuotaLimits, QuotaStats};
pub(crate) use service::StorageTasks;
pub use service::{CheckError, CheckReport, ObjectCheck, PutReport, RefreshReport, StorageService};

/// Settings of the storage service.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// k: fragments needed to rebuild an object.
    pub k: u8,
    /// m: extra fragments; any m may be lost.
    pub m: u8,
    /// Lease given to new objects.
    pub lease: Duration,
    /// Plaintext chunk size.
    pub chunk_size: usize,
    /// How often maintenance runs.
    pub repair_interval: Duration,
    /// How long a peer must be unreachable before its fragments are rebuilt.
    pub grace: Duration,
    /// Fragments rebuilt per pass at most (rate limit on repair traffic).
    pub repairs_per_pass: usize,
    /// Chunks of one object stored or fetched at once.
    pub parallel_chunks: usize,
    /// How much this node keeps for others, and for each peer.
    pub quota: QuotaLimits,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            k: 4,
            m: 4,
            lease: epost_types::time::DEFAULT_LEASE,
            chunk_size: 1024 * 1024,
            repair_interval: Duration::from_secs(60),
            grace: Duration::from_secs(300),
            repairs_per_pass: 4096,
            parallel_chunks: 4,
            quota: QuotaLimits::default(),
        }
    }
}

/// What every part of the service shares: immutable settings, the overlay
/// handle, the local store, the counters.
pub(crate) struct Ctx {
    pub(crate) config: StorageConfig,
    pub(crate) secret: ConvergenceSecret,
    pub(crate) dht: DhtClient,
    pub(crate) local: local::LocalFragments,
    pub(crate) metrics: Arc<metrics::Metrics>,
    /// Fragment stores to remote peers, coalesced per peer.
    pub(crate) batcher: batch::StoreBatcher,
    /// Where short tasks are spawned, so shutdown waits for them.
    pub(crate) tasks: crate::worker::Workers,
}

impl Ctx {
    /// The lease end for something stored now.
    pub(crate) fn default_expiry(&self) -> u64 {
        let now = epost_types::time::Timestamp::now().as_millis();
        now.saturating_add(u64::try_from(self.config.lease.as_millis()).unwrap_or(u64::MAX))
    }

    /// The latest lease end this node grants a peer's fragments: twice its
    /// own lease from now.
    pub(crate) fn lease_cap(&self) -> u64 {
        let now = epost_types::time::Timestamp::now().as_millis();
        let lease = u64::try_from(self.config.lease.as_millis()).unwrap_or(u64::MAX);
        now.saturating_add(lease.saturating_mul(2))
    }
}

/// `n` random peer ids, sorted (so tests can name them by position), for
/// the unit tests of the storage decisions.
#[cfg(test)]
pub(crate) fn test_peers(n: usize) -> Vec<epost_dht::PeerId> {
    let mut peers: Vec<epost_dht::PeerId> = (0..n).map(|_| epost_dht::PeerId::random()).collect();
    peers.sort();
    peers
}
