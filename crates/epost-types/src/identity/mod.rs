//! Who is who: realms vouch for users' keys, users say where they are.
//!
//! A realm (a mail domain) has an authority key. Nodes trust the realm
//! keys their operator lists ([`TrustedRealms`], like a CA bundle); a realm
//! is federated by trusting another realm's key for its domain. The realm
//! signs each user's [`Certificate`] (address, signing key, HPKE key,
//! serial, validity), published in the DHT at
//! [`cert_key`](crate::record::cert_key). Where the user is hosted is not
//! in the certificate: the user's own key signs a [`Presence`] record
//! (peer ids, listen addresses, time), so a user moves between nodes
//! without asking the realm.
//!
//! [`bundle`] is the `epost user export` file; [`password`] hashes gateway
//! login passwords; [`mx`] is the realm's list of the nodes that relay
//! internet mail into it. Normative text: `spec/identity.md`.

pub mod bundle;
pub mod mx;
pub mod password;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::address::{self, Address, AddressError};
use crate::cbor::{self, DecodeError, Versioned};
use crate::envelope::{EnvelopeError, EnvelopeKind, SignedEnvelope};
use crate::limits::{
    MAX_ENVELOPE_PAYLOAD, MAX_MULTIADDR, MAX_PEER_ID, MAX_PRESENCE_ADDRS, MAX_PRESENCE_PEERS,
};
use crate::seal::{HpkePublicKey, HpkeSecretKey};
use crate::sign::{RngError, SigningKey, VerifyingKey};
use crate::time::Timestamp;

/// The domain entry of [`TrustedRealms`] whose keys may certify any domain.
pub const ANY_DOMAIN: &str = "*";

/// The certificate format this code writes and reads.
pub const CERTIFICATE_VERSION: u8 = 1;

/// The presence format this code writes and reads.
pub const PRESENCE_VERSION: u8 = 1;

/// The realm keys a node trusts, per domain (lowercase). Serialized as a
/// map from domain to a list of keys (base32 text in TOML and JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct TrustedRealms {
    realms: BTreeMap<String, BTreeSet<VerifyingKey>>,
}

impl TrustedRealms {
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts `key` to certify addresses in `domain` (case-insensitive),
    /// or in every domain when `domain` is [`ANY_DOMAIN`] (a CA-bundle entry
    /// without a name constraint). Refuses a text that is not a domain, so
    /// a typo in the config is an error at load instead of a realm that
    /// silently never matches.
    pub fn trust(&mut self, domain: &str, key: VerifyingKey) -> Result<(), AddressError> {
        let domain = if domain == ANY_DOMAIN {
            domain.to_owned()
        } else {
            address::canonical_domain(domain)?
        };
        self.realms.entry(domain).or_default().insert(key);
        Ok(())
    }

    /// Whether `key` may certify addresses in `domain`.
    pub fn is_trusted(&self, domain: &str, key: &VerifyingKey) -> bool {
        [domain.to_ascii_lowercase().as_str(), ANY_DOMAIN]
            .iter()
            .any(|d| self.realms.get(*d).is_some_and(|keys| keys.contains(key)))
    }

    /// The keys trusted for `domain`.
    pub fn keys(&self, domain: &str) -> impl Iterator<Item = &VerifyingKey> {
        self.realms.get(&domain.to_ascii_lowercase()).into_iter().flatten()
    }

    /// Every domain with at least one trusted key.
    pub fn domains(&self) -> impl Iterator<Item = &str> {
        self.realms.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.realms.is_empty()
    }
}

impl<'de> Deserialize<'de> for TrustedRealms {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let listed = BTreeMap::<String, Vec<VerifyingKey>>::deserialize(deserializer)?;
        let mut realms = TrustedRealms::new();
        for (domain, keys) in listed {
            for key in keys {
                realms.trust(&domain, key).map_err(|e| {
                    serde::de::Error::custom(format_args!("trusted realm {domain:?}: {e}"))
                })?;
            }
        }
        Ok(realms)
    }
}

/// A realm's statement that `address` owns these keys, from `issued`
/// until `expires`. Trust it only through [`Certificate::verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    // Fields are in CBOR key order (RFC 8949 deterministic: shorter keys
    // first, then bytewise), which is the order they are encoded in.
    pub v: u8,
    pub issued: Timestamp,
    /// Higher serials replace lower ones for the same address.
    pub serial: u64,
    pub address: Address,
    /// The first instant at which the certificate is no longer valid.
    pub expires: Timestamp,
    pub hpke_key: HpkePublicKey,
    pub signing_key: VerifyingKey,
}

/// Why a certificate was not issued or not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("certificate envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    #[error("certificate does not decode: {0}")]
    Payload(#[from] DecodeError),
    #[error("certificate expires at {expires}, not after it is issued at {issued}")]
    BadValidity { issued: Timestamp, expires: Timestamp },
    #[error(
        "the certificate for {address} is signed by {signer}, which is not a trusted key for {domain}"
    )]
    Untrusted { address: Address, domain: String, signer: VerifyingKey },
    #[error(
        "the certificate for {address} expired at {expires} (now {now}); the realm must issue a new one"
    )]
    Expired { address: Address, expires: Timestamp, now: Timestamp },
}

impl Versioned for Certificate {
    const VERSION: u8 = CERTIFICATE_VERSION;

    fn version(&self) -> u8 {
        self.v
    }
}

impl Certificate {
    pub fn new(
        address: Address,
        signing_key: VerifyingKey,
        hpke_key: HpkePublicKey,
        serial: u64,
        issued: Timestamp,
        expires: Timestamp,
    ) -> Self {
        Certificate {
            v: CERTIFICATE_VERSION,
            issued,
            serial,
            address,
            expires,
            hpke_key,
            signing_key,
        }
    }

    /// Signs `cert` with the realm's authority key (a `Certificate`
    /// envelope).
    pub fn issue(realm_key: &SigningKey, cert: &Certificate) -> Result<SignedEnvelope, CertError> {
        cert.validate()?;
        Ok(SignedEnvelope::sign(realm_key, EnvelopeKind::Certificate, cbor::encode(cert))?)
    }

    /// The certificate in `envelope`, if it is a certificate envelope with
    /// a valid signature, signed by a key `trust` lists for the address's
    /// domain, and not expired at `now`.
    pub fn verify(
        envelope: &SignedEnvelope,
        trust: &TrustedRealms,
        now: Timestamp,
    ) -> Result<Certificate, CertError> {
        let cert = Self::verify_signature(envelope)?;
        let domain = cert.address.domain();
        if !trust.is_trusted(domain, &envelope.signer) {
            return Err(CertError::Untrusted {
                domain: domain.to_owned(),
                address: cert.address,
                signer: envelope.signer,
            });
        }
        if now >= cert.expires {
            return Err(CertError::Expired { address: cert.address, expires: cert.expires, now });
        }
        Ok(cert)
    }

    /// The certificate in `envelope`, checking only the kind, the
    /// signature and the form: not who signed it nor whether it is
    /// current. For showing a certificate, never for trusting one.
    pub fn verify_signature(envelope: &SignedEnvelope) -> Result<Certificate, CertError> {
        let payload = envelope.verify_kind(EnvelopeKind::Certificate)?;
        let cert: Certificate = cbor::decode(payload, MAX_ENVELOPE_PAYLOAD)?;
        cert.validate()?;
        Ok(cert)
    }

    fn validate(&self) -> Result<(), CertError> {
        if self.v != CERTIFICATE_VERSION {
            return Err(CertError::Payload(DecodeError::UnsupportedVersion {
                found: self.v,
                supported: CERTIFICATE_VERSION,
            }));
        }
        if self.expires <= self.issued {
            return Err(CertError::BadValidity { issued: self.issued, expires: self.expires });
        }
        Ok(())
    }
}

/// Where a user can be reached now: the peers hosting them and their
/// listen addresses, signed by the user's own key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Presence {
    // Fields are in CBOR key order, which is the order they are encoded in.
    pub v: u8,
    /// When this was signed; newer presence replaces older.
    pub time: Timestamp,
    /// Multiaddrs, as text.
    pub addrs: Vec<String>,
    /// libp2p peer ids, as their multihash bytes.
    #[serde(with = "crate::fixed::byte_list")]
    pub peers: Vec<Vec<u8>>,
    pub address: Address,
}

/// Why a presence record was not signed or not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PresenceError {
    #[error("presence envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    #[error("presence does not decode: {0}")]
    Payload(#[from] DecodeError),
    #[error("presence names no peer")]
    NoPeers,
    #[error("presence names {count} peers; at most {MAX_PRESENCE_PEERS} are allowed")]
    TooManyPeers { count: usize },
    #[error("peer id {index} is {len} bytes; a peer id is 1 to {MAX_PEER_ID} bytes")]
    BadPeerId { index: usize, len: usize },
    #[error("presence lists {count} addresses; at most {MAX_PRESENCE_ADDRS} are allowed")]
    TooManyAddrs { count: usize },
    #[error("address {index} is {len} bytes; an address is 1 to {MAX_MULTIADDR} bytes")]
    BadAddr { index: usize, len: usize },
    #[error("presence for {address} is signed by {found}, not by the user's key {expected}")]
    WrongSigner { address: Address, expected: VerifyingKey, found: VerifyingKey },
}

impl Versioned for Presence {
    const VERSION: u8 = PRESENCE_VERSION;

    fn version(&self) -> u8 {
        self.v
    }
}

impl Presence {
    pub fn new(address: Address, peers: Vec<Vec<u8>>, addrs: Vec<String>, time: Timestamp) -> Self {
        Presence { v: PRESENCE_VERSION, time, addrs, peers, address }
    }

    /// Signs `presence` with the user's signing key (a `Presence` envelope).
    pub fn sign(
        user_key: &SigningKey,
        presence: &Presence,
    ) -> Result<SignedEnvelope, PresenceError> {
        presence.validate()?;
        Ok(SignedEnvelope::sign(user_key, EnvelopeKind::Presence, cbor::encode(presence))?)
    }

    /// The presence in `envelope`, if it is well formed and signed by
    /// `expected_user_key`, the signing key of the address's valid
    /// certificate (the caller looks it up and verifies it).
    pub fn verify(
        envelope: &SignedEnvelope,
        expected_user_key: &VerifyingKey,
    ) -> Result<Presence, PresenceError> {
        let presence = Self::verify_signature(envelope)?;
        if envelope.signer != *expected_user_key {
            return Err(PresenceError::WrongSigner {
                address: presence.address,
                expected: *expected_user_key,
                found: envelope.signer,
            });
        }
        Ok(presence)
    }

    /// The presence in `envelope` if it is well formed and its signature
    /// verifies under the envelope's own signer, whoever that is. Record
    /// holders can check no more (they have no certificate at hand).
    pub fn verify_signature(envelope: &SignedEnvelope) -> Result<Presence, PresenceError> {
        let payload = envelope.verify_kind(EnvelopeKind::Presence)?;
        let presence: Presence = cbor::decode(payload, MAX_ENVELOPE_PAYLOAD)?;
        presence.validate()?;
        Ok(presence)
    }

    /// Of the encoded presence envelopes `candidates` (the copies the
    /// closest holders returned), the newest one that verifies under the
    /// user's certificate. Ties in time go to the smaller encoding, so
    /// every reader picks the same one.
    pub fn newest<'a>(
        candidates: impl IntoIterator<Item = &'a [u8]>,
        user_cert: &Certificate,
    ) -> Option<Presence> {
        candidates
            .into_iter()
            .filter_map(|bytes| {
                let envelope = SignedEnvelope::decode(bytes).ok()?;
                let presence = Presence::verify(&envelope, &user_cert.signing_key).ok()?;
                (presence.address == user_cert.address).then_some((presence, bytes))
            })
            .max_by(|(a, a_bytes), (b, b_bytes)| a.time.cmp(&b.time).then(b_bytes.cmp(a_bytes)))
            .map(|(presence, _)| presence)
    }

    fn validate(&self) -> Result<(), PresenceError> {
        if self.v != PRESENCE_VERSION {
            return Err(PresenceError::Payload(DecodeError::UnsupportedVersion {
                found: self.v,
                supported: PRESENCE_VERSION,
            }));
        }
        let count = self.peers.len();
        if count == 0 {
            return Err(PresenceError::NoPeers);
        }
        if count > MAX_PRESENCE_PEERS {
            return Err(PresenceError::TooManyPeers { count });
        }
        if let Some((index, peer)) =
            self.peers.iter().enumerate().find(|(_, p)| p.is_empty() || p.len() > MAX_PEER_ID)
        {
            return Err(PresenceError::BadPeerId { index, len: peer.len() });
        }
        let count = self.addrs.len();
        if count > MAX_PRESENCE_ADDRS {
            return Err(PresenceError::TooManyAddrs { count });
        }
        if let Some((index, addr)) =
            self.addrs.iter().enumerate().find(|(_, a)| a.is_empty() || a.len() > MAX_MULTIADDR)
        {
            return Err(PresenceError::BadAddr { index, len: addr.len() });
        }
        Ok(())
    }
}

/// A user's secret keys: the Ed25519 key that signs presence,
/// notifications and receipts (and owns the user's logs), and the HPKE
/// key notifications are sealed to. Both zeroize on drop; `Debug` shows
/// the public halves only.
#[derive(Clone)]
pub struct UserKeys {
    pub address: Address,
    pub signing: SigningKey,
    pub hpke: HpkeSecretKey,
}

impl UserKeys {
    /// Fresh keys for `address`.
    pub fn generate(address: Address) -> Result<Self, RngError> {
        Ok(UserKeys { address, signing: SigningKey::generate()?, hpke: HpkeSecretKey::generate()? })
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    pub fn hpke_public(&self) -> HpkePublicKey {
        self.hpke.public_key()
    }

    /// The (unsigned) certificate naming these keys, for the realm to issue.
    pub fn certificate(&self, serial: u64, issued: Timestamp, expires: Timestamp) -> Certificate {
        Certificate::new(
            self.address.clone(),
            self.verifying_key(),
            self.hpke_public(),
            serial,
            issued,
            expires,
        )
    }
}

impl fmt::Debug for UserKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "UserKeys({}, signing {}, hpke {}, secrets redacted)",
            self.address,
            self.verifying_key(),
            self.hpke_public()
        )
    }
}

#[cfg(test)]
mod tests;
