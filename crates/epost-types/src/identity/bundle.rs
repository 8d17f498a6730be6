//! The user bundle: what `epost user export` writes and `epost user
//! import` reads, so a user can move to another node or device. It holds
//! the user's secret keys and certificate, either plain or wrapped under
//! a passphrase (Argon2id, then AES-256-GCM).
//!
//! Both forms are versioned CBOR maps with a `kind` text naming the form,
//! so a reader tells them apart, and from any other file, before it
//! decrypts anything, and can say "this bundle is passphrase-protected"
//! instead of "garbage". Normative text: `spec/identity.md`.

use std::fmt;

use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use super::password::{Argon2idParams, SALT_LEN};
use super::{CertError, Certificate, UserKeys};
use crate::address::Address;
use crate::cbor::{self, DecodeError, Versioned};
use crate::convergent::ConvergenceSecret;
use crate::envelope::SignedEnvelope;
use crate::limits::{MAX_CBOR_DEPTH, MAX_USER_BUNDLE};
use crate::seal::HpkeSecretKey;
use crate::sign::{RngError, SigningKey};
use crate::symmetric;

/// The bundle format (both forms) this code writes and reads.
pub const BUNDLE_VERSION: u8 = 1;

/// `kind` of a plain bundle.
pub const PLAIN_KIND: &str = "epost-user-bundle";

/// `kind` of a passphrase-wrapped bundle.
pub const WRAPPED_KIND: &str = "epost-user-bundle-passphrase";

/// AES-GCM associated data of a wrapped bundle.
pub const BUNDLE_AAD: &[u8] = b"epost/v1/user-bundle";

/// A user's keys and the certificate that names them, and what a node
/// needs to host them as their old node did: their realm's convergence
/// secret and their gateway password hash.
#[derive(Clone)]
pub struct UserBundle {
    pub keys: UserKeys,
    /// The encoded realm-signed certificate envelope.
    pub certificate: SignedEnvelope,
    /// The realm's convergence secret, so what this user sends dedups
    /// with the rest of the realm (spec/formats.md section 5).
    pub realm_secret: Option<ConvergenceSecret>,
    /// The gateway password as a PHC string (identity.md section 1.7).
    pub password_hash: Option<String>,
}

/// Length of a realm convergence secret.
pub const REALM_SECRET_LEN: usize = 32;

/// Why a bundle was not made or not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("not a user bundle: {0}")]
    Decode(#[from] DecodeError),
    #[error("this is a {kind:?} file, not a user bundle")]
    NotABundle { kind: String },
    #[error("this bundle is passphrase-protected: give its passphrase")]
    PassphraseRequired,
    #[error("an empty passphrase protects nothing; choose one or export without a passphrase")]
    EmptyPassphrase,
    #[error("the passphrase is wrong (or the bundle is damaged)")]
    WrongPassphrase,
    #[error("the bundle's passphrase parameters {0:?} are not acceptable (at most {max:?})", max = Argon2idParams::MAX)]
    BadKdfParams(Argon2idParams),
    #[error("the bundle's certificate is not valid: {0}")]
    Certificate(#[from] CertError),
    #[error("the bundle's keys do not match its certificate (the bundle is damaged)")]
    KeysDoNotMatchCertificate,
    #[error("the bundle's HPKE secret is not in its stored (clamped) form (the bundle is damaged)")]
    UnclampedHpkeSecret,
    #[error(
        "the bundle's realm secret is {len} bytes, not {REALM_SECRET_LEN} (the bundle is damaged)"
    )]
    BadRealmSecret { len: usize },
    #[error("the bundle's password hash is not an Argon2id PHC string (the bundle is damaged)")]
    BadPasswordHash,
    #[error(transparent)]
    Rng(#[from] RngError),
}

/// A passphrase-wrapped bundle, as stored. Nothing in it is secret
/// without the passphrase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrappedBundle {
    // Fields are in CBOR key order, which is the order they are encoded in.
    pub v: u8,
    pub kdf: KdfParams,
    /// Always [`WRAPPED_KIND`].
    pub kind: String,
    #[serde(with = "crate::fixed")]
    pub nonce: [u8; 12],
    /// AES-256-GCM of the plain bundle's encoding, with its 16-byte tag.
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
}

/// The Argon2id salt and costs of a [`WrappedBundle`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdfParams {
    #[serde(with = "crate::fixed")]
    pub salt: [u8; SALT_LEN],
    pub m_cost: u32,
    pub p_cost: u32,
    pub t_cost: u32,
}

impl KdfParams {
    pub fn costs(&self) -> Argon2idParams {
        Argon2idParams { m_cost: self.m_cost, t_cost: self.t_cost, p_cost: self.p_cost }
    }
}

impl Versioned for WrappedBundle {
    const VERSION: u8 = BUNDLE_VERSION;

    fn version(&self) -> u8 {
        self.v
    }
}

/// The plain bundle as stored. Zeroized on drop.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Plain {
    // Fields are in CBOR key order, which is the order they are encoded in.
    v: u8,
    kind: String,
    address: Address,
    password: Option<String>,
    #[serde(with = "serde_bytes")]
    certificate: Vec<u8>,
    #[serde(with = "crate::fixed")]
    hpke_secret: [u8; 32],
    #[serde(with = "serde_bytes")]
    realm_secret: Option<Vec<u8>>,
    #[serde(with = "crate::fixed")]
    signing_seed: [u8; 32],
}

/// The plain bundle of the first release, before `password` and
/// `realm_secret`: still read (users' files on disk, old exports).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FirstPlain {
    v: u8,
    kind: String,
    address: Address,
    #[serde(with = "serde_bytes")]
    certificate: Vec<u8>,
    #[serde(with = "crate::fixed")]
    hpke_secret: [u8; 32],
    #[serde(with = "crate::fixed")]
    signing_seed: [u8; 32],
}

impl Versioned for FirstPlain {
    const VERSION: u8 = BUNDLE_VERSION;

    fn version(&self) -> u8 {
        self.v
    }
}

impl From<FirstPlain> for Plain {
    fn from(first: FirstPlain) -> Self {
        let mut first = first;
        let plain = Plain {
            v: first.v,
            kind: std::mem::take(&mut first.kind),
            address: first.address.clone(),
            password: None,
            certificate: std::mem::take(&mut first.certificate),
            hpke_secret: first.hpke_secret,
            realm_secret: None,
            signing_seed: first.signing_seed,
        };
        first.hpke_secret.zeroize();
        first.signing_seed.zeroize();
        plain
    }
}

/// Either plain form.
fn decode_plain(bytes: &[u8]) -> Result<Plain, BundleError> {
    match cbor::decode::<Plain>(bytes, MAX_USER_BUNDLE) {
        Ok(plain) => Ok(plain),
        Err(current) => match cbor::decode::<FirstPlain>(bytes, MAX_USER_BUNDLE) {
            Ok(first) => Ok(first.into()),
            Err(_) => Err(current.into()),
        },
    }
}

impl Drop for Plain {
    fn drop(&mut self) {
        self.hpke_secret.zeroize();
        self.signing_seed.zeroize();
        if let Some(secret) = self.realm_secret.as_mut() {
            secret.zeroize();
        }
    }
}

impl Versioned for Plain {
    const VERSION: u8 = BUNDLE_VERSION;

    fn version(&self) -> u8 {
        self.v
    }
}

/// Just enough of either form to tell which it is.
#[derive(Deserialize)]
struct Probe {
    kind: String,
}

impl UserBundle {
    /// A bundle of `keys` and their certificate. The certificate must be
    /// a correctly signed certificate envelope naming exactly these keys;
    /// whether its signer is trusted is for the importing node to check.
    pub fn new(keys: UserKeys, certificate: SignedEnvelope) -> Result<Self, BundleError> {
        let cert = Certificate::verify_signature(&certificate)?;
        if cert.address != keys.address
            || cert.signing_key != keys.verifying_key()
            || cert.hpke_key != keys.hpke_public()
        {
            return Err(BundleError::KeysDoNotMatchCertificate);
        }
        Ok(UserBundle { keys, certificate, realm_secret: None, password_hash: None })
    }

    /// The same bundle carrying the realm's secret and the password hash.
    pub fn with_extras(
        mut self,
        realm_secret: Option<ConvergenceSecret>,
        password_hash: Option<String>,
    ) -> Self {
        self.realm_secret = realm_secret;
        self.password_hash = password_hash;
        self
    }

    /// The unwrapped encoding. Zeroized on drop: it holds the secrets.
    pub fn encode_plain(&self) -> Zeroizing<Vec<u8>> {
        let plain = Plain {
            v: BUNDLE_VERSION,
            kind: PLAIN_KIND.to_owned(),
            address: self.keys.address.clone(),
            password: self.password_hash.clone(),
            certificate: self.certificate.encode(),
            hpke_secret: *self.keys.hpke.to_bytes(),
            realm_secret: self.realm_secret.as_ref().map(|s| s.as_bytes().to_vec()),
            signing_seed: *self.keys.signing.seed_bytes(),
        };
        // Sized up front so the buffer never reallocates and leaves a copy behind.
        let mut out = Zeroizing::new(Vec::with_capacity(MAX_USER_BUNDLE));
        cbor::encode_into(&plain, &mut out);
        out
    }

    /// The passphrase-wrapped encoding, with the default Argon2id costs.
    pub fn wrap(&self, passphrase: &str) -> Result<Vec<u8>, BundleError> {
        self.wrap_with(passphrase, Argon2idParams::DEFAULT)
    }

    /// [`wrap`](Self::wrap) with explicit costs (tests use tiny ones).
    pub fn wrap_with(
        &self,
        passphrase: &str,
        costs: Argon2idParams,
    ) -> Result<Vec<u8>, BundleError> {
        let rng = SystemRandom::new();
        let mut salt = [0u8; SALT_LEN];
        let mut nonce = [0u8; 12];
        rng.fill(&mut salt).map_err(|_| RngError)?;
        rng.fill(&mut nonce).map_err(|_| RngError)?;
        self.wrap_with_salt_and_nonce(passphrase, costs, salt, nonce)
    }

    /// The nonce is unique because the key is: a fresh salt gives a fresh
    /// key. Fixed salts and nonces are for the vectors only.
    pub(crate) fn wrap_with_salt_and_nonce(
        &self,
        passphrase: &str,
        costs: Argon2idParams,
        salt: [u8; SALT_LEN],
        nonce: [u8; 12],
    ) -> Result<Vec<u8>, BundleError> {
        if passphrase.is_empty() {
            return Err(BundleError::EmptyPassphrase);
        }
        let key = costs
            .derive_key(passphrase.as_bytes(), &salt)
            .ok_or(BundleError::BadKdfParams(costs))?;
        let mut ciphertext = self.encode_plain().to_vec();
        symmetric::seal_in_place(&key, nonce, BUNDLE_AAD, &mut ciphertext);
        let wrapped = WrappedBundle {
            v: BUNDLE_VERSION,
            kdf: KdfParams {
                salt,
                m_cost: costs.m_cost,
                p_cost: costs.p_cost,
                t_cost: costs.t_cost,
            },
            kind: WRAPPED_KIND.to_owned(),
            nonce,
            ciphertext,
        };
        Ok(cbor::encode(&wrapped))
    }

    /// Whether `bytes` is a passphrase-protected bundle (so the caller
    /// knows to ask for the passphrase).
    pub fn is_passphrase_protected(bytes: &[u8]) -> Result<bool, BundleError> {
        match kind_of(bytes)?.as_str() {
            PLAIN_KIND => Ok(false),
            WRAPPED_KIND => Ok(true),
            other => Err(BundleError::NotABundle { kind: other.to_owned() }),
        }
    }

    /// Reads either form. A passphrase given for a plain bundle is ignored.
    pub fn decode(bytes: &[u8], passphrase: Option<&str>) -> Result<Self, BundleError> {
        if !Self::is_passphrase_protected(bytes)? {
            return Self::from_plain(&decode_plain(bytes)?);
        }
        let wrapped: WrappedBundle = cbor::decode(bytes, MAX_USER_BUNDLE)?;
        let passphrase = passphrase.ok_or(BundleError::PassphraseRequired)?;
        let costs = wrapped.kdf.costs();
        if !costs.is_acceptable() {
            return Err(BundleError::BadKdfParams(costs));
        }
        let key = costs
            .derive_key(passphrase.as_bytes(), &wrapped.kdf.salt)
            .ok_or(BundleError::BadKdfParams(costs))?;
        let mut plaintext = Zeroizing::new(wrapped.ciphertext);
        symmetric::open_in_place(&key, wrapped.nonce, BUNDLE_AAD, &mut plaintext)
            .map_err(|()| BundleError::WrongPassphrase)?;
        let plain = decode_plain(&plaintext)?;
        if plain.kind != PLAIN_KIND {
            return Err(BundleError::NotABundle { kind: plain.kind.clone() });
        }
        Self::from_plain(&plain)
    }

    fn from_plain(plain: &Plain) -> Result<Self, BundleError> {
        let hpke = HpkeSecretKey::from_bytes(plain.hpke_secret);
        if *hpke.to_bytes() != plain.hpke_secret {
            return Err(BundleError::UnclampedHpkeSecret);
        }
        let keys = UserKeys {
            address: plain.address.clone(),
            signing: SigningKey::from_seed(plain.signing_seed),
            hpke,
        };
        let certificate = SignedEnvelope::decode(&plain.certificate)
            .map_err(|e| BundleError::Certificate(CertError::Payload(e)))?;
        let realm_secret = match &plain.realm_secret {
            Some(bytes) if bytes.len() != REALM_SECRET_LEN => {
                return Err(BundleError::BadRealmSecret { len: bytes.len() });
            }
            Some(bytes) => Some(ConvergenceSecret::new(bytes.clone())),
            None => None,
        };
        if plain.password.as_deref().is_some_and(|h| !h.starts_with("$argon2id$")) {
            return Err(BundleError::BadPasswordHash);
        }
        Ok(Self::new(keys, certificate)?.with_extras(realm_secret, plain.password.clone()))
    }
}

/// The `kind` of a bundle-like map, after the size check; the full
/// decode that follows applies every other rule.
fn kind_of(bytes: &[u8]) -> Result<String, BundleError> {
    if bytes.len() > MAX_USER_BUNDLE {
        return Err(DecodeError::TooLarge { len: bytes.len(), max: MAX_USER_BUNDLE }.into());
    }
    let mut rest = bytes;
    match ciborium::de::from_reader_with_recursion_limit::<Probe, _>(&mut rest, MAX_CBOR_DEPTH) {
        Ok(probe) => Ok(probe.kind),
        // Not even a map with a kind: let the strict decoder say why.
        Err(_) => Err(cbor::decode::<WrappedBundle>(bytes, MAX_USER_BUNDLE)
            .err()
            .unwrap_or(DecodeError::Invalid { offset: None, reason: "no kind".to_owned() })
            .into()),
    }
}

impl fmt::Debug for UserBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserBundle")
            .field("keys", &self.keys)
            .field("certificate", &self.certificate)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::TrustedRealms;
    use crate::time::Timestamp;
    use proptest::prelude::*;

    const TINY: Argon2idParams = Argon2idParams { m_cost: 64, t_cost: 1, p_cost: 1 };

    fn bundle() -> UserBundle {
        let address: Address = "alice@example.org".parse().unwrap();
        let keys = UserKeys {
            address,
            signing: SigningKey::from_seed([3; 32]),
            hpke: HpkeSecretKey::derive(&[4; 32]),
        };
        let realm = SigningKey::from_seed([9; 32]);
        let cert = keys.certificate(1, Timestamp(1_000), Timestamp(2_000));
        UserBundle::new(keys, Certificate::issue(&realm, &cert).unwrap()).unwrap()
    }

    fn same(a: &UserBundle, b: &UserBundle) -> bool {
        a.keys.address == b.keys.address
            && *a.keys.signing.seed_bytes() == *b.keys.signing.seed_bytes()
            && *a.keys.hpke.to_bytes() == *b.keys.hpke.to_bytes()
            && a.certificate == b.certificate
    }

    #[test]
    fn plain_round_trip() {
        let bundle = bundle();
        let bytes = bundle.encode_plain();
        assert_eq!(UserBundle::is_passphrase_protected(&bytes), Ok(false));
        let back = UserBundle::decode(&bytes, None).unwrap();
        assert!(same(&back, &bundle));
        // A passphrase for a plain bundle is ignored.
        assert!(same(&UserBundle::decode(&bytes, Some("x")).unwrap(), &bundle));
        // The certificate inside still verifies for the importer.
        let mut trust = TrustedRealms::new();
        trust.trust("example.org", SigningKey::from_seed([9; 32]).verifying_key()).unwrap();
        assert!(Certificate::verify(&back.certificate, &trust, Timestamp(1_500)).is_ok());
    }

    #[test]
    fn the_realm_secret_and_password_travel_with_the_user() {
        let hash = crate::identity::password::hash_password("correct horse").unwrap();
        let bundle =
            bundle().with_extras(Some(ConvergenceSecret::new(vec![7; 32])), Some(hash.clone()));
        for bytes in [bundle.encode_plain().to_vec(), bundle.wrap_with("pw", TINY).unwrap()] {
            let back = UserBundle::decode(&bytes, Some("pw")).unwrap();
            assert!(same(&back, &bundle));
            assert_eq!(
                back.realm_secret.as_ref().map(|s| s.as_bytes().to_vec()),
                Some(vec![7; 32])
            );
            assert_eq!(back.password_hash.as_deref(), Some(hash.as_str()));
        }
        // A bundle written before these fields existed still reads.
        let old = FirstPlain::from(&bundle);
        let back = UserBundle::decode(&cbor::encode(&old), None).unwrap();
        assert!(
            same(&back, &bundle) && back.realm_secret.is_none() && back.password_hash.is_none()
        );
        // A secret of the wrong length is damage, not a secret.
        let mut short = bundle.clone();
        short.realm_secret = Some(ConvergenceSecret::new(vec![7; 5]));
        assert_eq!(
            UserBundle::decode(&short.encode_plain(), None).unwrap_err(),
            BundleError::BadRealmSecret { len: 5 }
        );
    }

    impl From<&UserBundle> for FirstPlain {
        fn from(b: &UserBundle) -> Self {
            Self {
                v: 1,
                kind: PLAIN_KIND.to_owned(),
                address: b.keys.address.clone(),
                certificate: b.certificate.encode(),
                hpke_secret: *b.keys.hpke.to_bytes(),
                signing_seed: *b.keys.signing.seed_bytes(),
            }
        }
    }

    #[test]
    fn wrapped_round_trip_and_clear_errors() {
        let bundle = bundle();
        let wrapped = bundle.wrap_with("hunter2", TINY).unwrap();
        assert_eq!(UserBundle::is_passphrase_protected(&wrapped), Ok(true));
        assert!(same(&UserBundle::decode(&wrapped, Some("hunter2")).unwrap(), &bundle));
        assert_eq!(
            UserBundle::decode(&wrapped, None).unwrap_err(),
            BundleError::PassphraseRequired
        );
        assert_eq!(
            UserBundle::decode(&wrapped, Some("hunter3")).unwrap_err(),
            BundleError::WrongPassphrase
        );
        assert_eq!(bundle.wrap_with("", TINY).unwrap_err(), BundleError::EmptyPassphrase);
        // Fresh salt and nonce every time.
        assert_ne!(wrapped, bundle.wrap_with("hunter2", TINY).unwrap());
        // The secrets are not visible in the wrapped form.
        let seed = bundle.keys.signing.seed_bytes();
        assert!(!wrapped.windows(32).any(|w| w == seed.as_ref()));
    }

    #[test]
    fn default_costs_round_trip() {
        let bundle = bundle();
        let wrapped = bundle.wrap("a long passphrase").unwrap();
        let stored: WrappedBundle = cbor::decode(&wrapped, MAX_USER_BUNDLE).unwrap();
        assert_eq!(stored.kdf.costs(), Argon2idParams::DEFAULT);
        assert!(same(&UserBundle::decode(&wrapped, Some("a long passphrase")).unwrap(), &bundle));
    }

    #[test]
    fn refuses_hostile_costs_before_working() {
        let wrapped = bundle().wrap_with("pw", TINY).unwrap();
        let mut stored: WrappedBundle = cbor::decode(&wrapped, MAX_USER_BUNDLE).unwrap();
        stored.kdf.m_cost = u32::MAX;
        let hostile = cbor::encode(&stored);
        assert!(matches!(
            UserBundle::decode(&hostile, Some("pw")),
            Err(BundleError::BadKdfParams(_))
        ));
    }

    #[test]
    fn refuses_other_files_and_mismatched_keys() {
        let other = cbor::encode(&Probe { kind: "epost-node-key".to_owned() });
        assert_eq!(
            UserBundle::decode(&other, None).unwrap_err(),
            BundleError::NotABundle { kind: "epost-node-key".to_owned() }
        );
        assert!(matches!(UserBundle::decode(b"\x00", None), Err(BundleError::Decode(_))));
        assert!(matches!(
            UserBundle::decode(&vec![0; MAX_USER_BUNDLE + 1], None),
            Err(BundleError::Decode(DecodeError::TooLarge { .. }))
        ));
        let good = bundle();
        let mut keys = good.keys.clone();
        keys.hpke = HpkeSecretKey::derive(&[5; 32]);
        assert_eq!(
            UserBundle::new(keys, good.certificate.clone()).unwrap_err(),
            BundleError::KeysDoNotMatchCertificate
        );
    }

    #[test]
    fn debug_hides_the_secrets() {
        let bundle = bundle();
        let shown = format!("{bundle:?}");
        assert!(shown.contains("redacted"));
        assert!(!shown.contains(&crate::text::encode(bundle.keys.signing.seed_bytes().as_ref())));
    }

    impl Serialize for Probe {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = serializer.serialize_map(Some(2))?;
            map.serialize_entry("v", &1u8)?;
            map.serialize_entry("kind", &self.kind)?;
            map.end()
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// A damaged bundle, plain or wrapped, never loads as other keys.
        #[test]
        fn any_flipped_bit_is_refused(wrap in any::<bool>(), bit in any::<prop::sample::Index>()) {
            let bundle = bundle();
            let mut bytes =
                if wrap { bundle.wrap_with("pw", TINY).unwrap() } else { bundle.encode_plain().to_vec() };
            let at = bit.index(bytes.len() * 8);
            bytes[at / 8] ^= 1 << (at % 8);
            let decoded = UserBundle::decode(&bytes, Some("pw"));
            prop_assert!(decoded.is_err(), "accepted {:?}", decoded);
        }
    }
}
