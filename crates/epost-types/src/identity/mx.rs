//! A realm's MX record: the nodes it lets relay internet mail into it.
//!
//! The overlay's counterpart of a DNS MX record, signed by the realm key
//! and published at [`mx_key`](crate::record::mx_key). A node named in
//! it accepts internet mail for any user of the realm and announces it
//! as `postmaster@<domain>`, signing with its own node key
//! ([`Notification::seal_relayed`](crate::notify::Notification::seal_relayed)); a
//! recipient believes such a notification, and the
//! `Authentication-Results` its MX added, only while a current record
//! names that key. Normative text: `spec/internet.md` section 8.

use serde::{Deserialize, Serialize};

use crate::cbor::{self, DecodeError, Versioned};
use crate::envelope::{EnvelopeError, EnvelopeKind, SignedEnvelope};
use crate::identity::TrustedRealms;
use crate::limits::MAX_ENVELOPE_PAYLOAD;
use crate::sign::{SigningKey, VerifyingKey};
use crate::time::Timestamp;

/// The MX record format this code writes and reads.
pub const MX_RECORD_VERSION: u8 = 1;

/// At most this many nodes in one realm's MX record (a record must fit a
/// DHT value; DNS MX sets are smaller still).
pub const MAX_MX_NODES: usize = 32;

/// The realm's statement that the nodes whose keys are `nodes` may relay
/// internet mail for `domain`, from `issued` until `expires` (none: the
/// realm names no MX). Trust it
/// only through [`MxRecord::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MxRecord {
    // Fields are in CBOR key order (shorter keys first, then bytewise),
    // which is the order they are encoded in.
    pub v: u8,
    /// The named nodes' Ed25519 keys (their libp2p identity keys).
    pub nodes: Vec<VerifyingKey>,
    /// Lowercase.
    pub domain: String,
    pub issued: Timestamp,
    /// Higher serials replace lower ones for the same domain.
    pub serial: u64,
    /// The first instant at which the record no longer holds.
    pub expires: Timestamp,
}

/// Why an MX record was not made or not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MxError {
    #[error("MX record envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    #[error("MX record does not decode: {0}")]
    Payload(#[from] DecodeError),
    #[error("the MX record expires at {expires}, not after it is issued at {issued}")]
    BadValidity { issued: Timestamp, expires: Timestamp },
    #[error("an MX record names at most {MAX_MX_NODES} nodes, not {count}")]
    BadNodeCount { count: usize },
    #[error("an MX record's domain must be lowercase and non-empty, not {domain:?}")]
    BadDomain { domain: String },
    #[error("the MX record for {domain} is signed by {signer}, which is not a trusted key for it")]
    Untrusted { domain: String, signer: VerifyingKey },
    #[error("the MX record for {domain} expired at {expires} (now {now})")]
    Expired { domain: String, expires: Timestamp, now: Timestamp },
}

impl Versioned for MxRecord {
    const VERSION: u8 = MX_RECORD_VERSION;

    fn version(&self) -> u8 {
        self.v
    }
}

impl MxRecord {
    /// A record for `domain` (lowercased) naming `nodes` (duplicates
    /// dropped, sorted, so equal sets encode alike).
    pub fn new(
        domain: &str,
        mut nodes: Vec<VerifyingKey>,
        serial: u64,
        issued: Timestamp,
        expires: Timestamp,
    ) -> Self {
        nodes.sort();
        nodes.dedup();
        MxRecord {
            v: MX_RECORD_VERSION,
            nodes,
            domain: domain.to_ascii_lowercase(),
            issued,
            serial,
            expires,
        }
    }

    /// Signs `record` with the realm key (an `MxRecord` envelope).
    pub fn issue(realm_key: &SigningKey, record: &MxRecord) -> Result<SignedEnvelope, MxError> {
        record.validate()?;
        Ok(SignedEnvelope::sign(realm_key, EnvelopeKind::MxRecord, cbor::encode(record))?)
    }

    /// The record in `envelope`, if its signature verifies, the signer is
    /// trusted for its domain, and it has not expired at `now`.
    pub fn verify(
        envelope: &SignedEnvelope,
        trust: &TrustedRealms,
        now: Timestamp,
    ) -> Result<MxRecord, MxError> {
        let record = Self::verify_signature(envelope)?;
        if !trust.is_trusted(&record.domain, &envelope.signer) {
            return Err(MxError::Untrusted { domain: record.domain, signer: envelope.signer });
        }
        if now >= record.expires {
            return Err(MxError::Expired { domain: record.domain, expires: record.expires, now });
        }
        Ok(record)
    }

    /// The record in `envelope` if it is well formed and its signature
    /// verifies; who signed it is the caller's to judge.
    pub fn verify_signature(envelope: &SignedEnvelope) -> Result<MxRecord, MxError> {
        let payload = envelope.verify_kind(EnvelopeKind::MxRecord)?;
        let record: MxRecord = cbor::decode(payload, MAX_ENVELOPE_PAYLOAD)?;
        record.validate()?;
        Ok(record)
    }

    /// Whether `node` is one of the named nodes.
    pub fn names(&self, node: &VerifyingKey) -> bool {
        self.nodes.contains(node)
    }

    fn validate(&self) -> Result<(), MxError> {
        if self.v != MX_RECORD_VERSION {
            return Err(MxError::Payload(DecodeError::UnsupportedVersion {
                found: self.v,
                supported: MX_RECORD_VERSION,
            }));
        }
        if self.expires <= self.issued {
            return Err(MxError::BadValidity { issued: self.issued, expires: self.expires });
        }
        if self.nodes.len() > MAX_MX_NODES {
            return Err(MxError::BadNodeCount { count: self.nodes.len() });
        }
        if self.domain.is_empty() || self.domain != self.domain.to_ascii_lowercase() {
            return Err(MxError::BadDomain { domain: self.domain.clone() });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_000_000);

    fn realm() -> SigningKey {
        SigningKey::from_seed([0x51; 32])
    }

    fn node(seed: u8) -> VerifyingKey {
        SigningKey::from_seed([seed; 32]).verifying_key()
    }

    fn trust() -> TrustedRealms {
        let mut trust = TrustedRealms::new();
        trust.trust("example.org", realm().verifying_key()).unwrap();
        trust
    }

    fn record(nodes: Vec<VerifyingKey>) -> MxRecord {
        MxRecord::new("Example.ORG", nodes, 1, NOW, Timestamp(NOW.0 + 1000))
    }

    #[test]
    fn an_issued_record_verifies_and_names_its_nodes_only() {
        let issued = MxRecord::issue(&realm(), &record(vec![node(2), node(1), node(2)])).unwrap();
        let record = MxRecord::verify(&issued, &trust(), NOW).unwrap();
        assert_eq!(record.domain, "example.org");
        assert_eq!(record.nodes.len(), 2, "duplicates dropped");
        assert!(record.names(&node(1)) && record.names(&node(2)));
        assert!(!record.names(&node(3)));
        let decoded = SignedEnvelope::decode(&issued.encode()).unwrap();
        assert_eq!(MxRecord::verify(&decoded, &trust(), NOW).unwrap(), record);
    }

    #[test]
    fn untrusted_expired_and_malformed_records_are_refused() {
        let stranger = SigningKey::from_seed([0x52; 32]);
        let forged = MxRecord::issue(&stranger, &record(vec![node(1)])).unwrap();
        assert!(matches!(MxRecord::verify(&forged, &trust(), NOW), Err(MxError::Untrusted { .. })));
        let issued = MxRecord::issue(&realm(), &record(vec![node(1)])).unwrap();
        let later = Timestamp(NOW.0 + 1000);
        assert!(matches!(MxRecord::verify(&issued, &trust(), later), Err(MxError::Expired { .. })));
        // Naming no node is how a realm takes its last MX back.
        let none = MxRecord::issue(&realm(), &record(Vec::new())).unwrap();
        assert!(!MxRecord::verify(&none, &trust(), NOW).unwrap().names(&node(1)));
        let crowd = (0..=MAX_MX_NODES as u8).map(node).collect();
        assert!(matches!(
            MxRecord::issue(&realm(), &record(crowd)),
            Err(MxError::BadNodeCount { count }) if count == MAX_MX_NODES + 1
        ));
        let backwards = MxRecord::new("example.org", vec![node(1)], 1, NOW, NOW);
        assert!(matches!(MxRecord::issue(&realm(), &backwards), Err(MxError::BadValidity { .. })));
        // Another kind of envelope, signed by the realm, is not a record.
        let other = SignedEnvelope::sign(&realm(), EnvelopeKind::Certificate, Vec::new()).unwrap();
        assert!(matches!(MxRecord::verify(&other, &trust(), NOW), Err(MxError::Envelope(_))));
    }
}
