//! The rule every inbound Kademlia record passes before this node keeps
//! it: `epost_types::record::validate_record` (signature, owner, key,
//! trusted realm, expiry, and never older than what is held), with the
//! node's current trust list.

use std::sync::Arc;

use epost_dht::{RecordRejection, RecordValidator};
use epost_types::identity::TrustedRealms;
use epost_types::record::{self, RecordRefusal};
use epost_types::time::Timestamp;
use tokio::sync::watch;

/// The node's record validator. Reads the trust list without locking.
pub struct RecordRules {
    trust: watch::Receiver<Arc<TrustedRealms>>,
}

impl RecordRules {
    pub(super) fn new(trust: watch::Receiver<Arc<TrustedRealms>>) -> Self {
        Self { trust }
    }
}

impl RecordValidator for RecordRules {
    fn validate(
        &self,
        key: &[u8],
        value: &[u8],
        current: Option<&[u8]>,
    ) -> Result<(), RecordRejection> {
        let trust = self.trust.borrow().clone();
        record::validate_record(key, value, current, &trust, Timestamp::now()).map_err(|refusal| {
            match refusal {
                RecordRefusal::BadSignature => RecordRejection::BadSignature,
                RecordRefusal::WrongKey => RecordRejection::WrongKey,
                RecordRefusal::Stale { offered, held } => RecordRejection::Stale { offered, held },
                RecordRefusal::Malformed(why) => RecordRejection::Malformed(why.to_string()),
                other => RecordRejection::Other(other.to_string()),
            }
        })
    }
}
