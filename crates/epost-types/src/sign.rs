//! Ed25519 signatures (RFC 8032) via `ring`: who wrote a log head, a
//! certificate, a presence record, a notification.

use std::fmt;

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use zeroize::Zeroizing;

/// The system random source failed; nothing secret was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system random source failed")]
pub struct RngError;

/// A signature did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature does not verify under this key")]
    Invalid,
}

/// An Ed25519 private key, kept as its 32-byte seed.
///
/// Only the seed is kept, zeroized on drop; `ring`'s expanded key pair
/// (which `ring` does not zeroize) exists only for the length of a
/// [`sign`](Self::sign) call.
#[derive(Clone)]
pub struct SigningKey {
    seed: Zeroizing<[u8; 32]>,
    public: VerifyingKey,
}

impl SigningKey {
    /// A fresh key from the system random source.
    pub fn generate() -> Result<Self, RngError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        SystemRandom::new().fill(seed.as_mut()).map_err(|_| RngError)?;
        Ok(Self::from_seed(*seed))
    }

    /// The key with this seed (RFC 8032's 32-byte private key). Every
    /// 32-byte string is a valid seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let seed = Zeroizing::new(seed);
        let public = VerifyingKey(public_key_bytes(&key_pair(&seed)));
        SigningKey { seed, public }
    }

    /// The seed, for writing a key file.
    pub fn seed_bytes(&self) -> Zeroizing<[u8; 32]> {
        self.seed.clone()
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.public
    }

    /// Signs `message` (deterministic, as Ed25519 is).
    pub fn sign(&self, message: &[u8]) -> Signature {
        let signature = key_pair(&self.seed).sign(message);
        let mut out = [0u8; 64];
        out.copy_from_slice(signature.as_ref());
        Signature(out)
    }
}

fn key_pair(seed: &[u8; 32]) -> Ed25519KeyPair {
    match Ed25519KeyPair::from_seed_unchecked(seed) {
        Ok(pair) => pair,
        // ring only checks the seed's length, which the type fixes.
        Err(_) => unreachable!("ring accepts every 32-byte Ed25519 seed"),
    }
}

fn public_key_bytes(pair: &Ed25519KeyPair) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(pair.public_key().as_ref());
    out
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(public {}, seed redacted)", self.public)
    }
}

/// An Ed25519 public key: 32 bytes, text form 52 base32 characters.
///
/// Any 32 bytes are accepted here; a string that is not a curve point
/// simply never verifies anything.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VerifyingKey([u8; 32]);

impl VerifyingKey {
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        VerifyingKey(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Checks that `signature` is this key's signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), SignatureError> {
        UnparsedPublicKey::new(&signature::ED25519, &self.0)
            .verify(message, &signature.0)
            .map_err(|_| SignatureError::Invalid)
    }
}

/// An Ed25519 signature: 64 bytes, text form 103 base32 characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature([u8; 64]);

impl Signature {
    pub const fn from_bytes(bytes: [u8; 64]) -> Self {
        Signature(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

crate::text::text_form!(VerifyingKey);
crate::text::text_form!(Signature);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text;
    use data_encoding::HEXLOWER;
    use proptest::prelude::*;

    fn hex<const N: usize>(s: &str) -> [u8; N] {
        HEXLOWER.decode(s.as_bytes()).unwrap().try_into().unwrap()
    }

    #[test]
    fn rfc_8032_test_1() {
        let key = SigningKey::from_seed(hex(
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        ));
        assert_eq!(
            key.verifying_key(),
            VerifyingKey(hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"))
        );
        let signature = key.sign(b"");
        assert_eq!(
            HEXLOWER.encode(signature.as_bytes()),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bac\
             c61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        assert_eq!(key.verifying_key().verify(b"", &signature), Ok(()));
    }

    #[test]
    fn debug_never_shows_the_seed() {
        let key = SigningKey::from_seed([0xab; 32]);
        let shown = format!("{key:?}");
        assert!(!shown.contains(&text::encode(&[0xab; 32])));
        assert!(!shown.to_lowercase().contains("abab"));
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn generated_keys_differ_and_work() {
        let a = SigningKey::generate().unwrap();
        let b = SigningKey::generate().unwrap();
        assert_ne!(a.verifying_key(), b.verifying_key());
        assert_eq!(SigningKey::from_seed(*a.seed_bytes()).verifying_key(), a.verifying_key());
        assert_eq!(a.verifying_key().verify(b"m", &a.sign(b"m")), Ok(()));
        assert!(b.verifying_key().verify(b"m", &a.sign(b"m")).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_flipped_bit_fails(seed in any::<[u8; 32]>(), message in prop::collection::vec(any::<u8>(), 0..64), bit in 0usize..(64 + 32) * 8) {
            let key = SigningKey::from_seed(seed);
            let signature = key.sign(&message);
            let mut sig = *signature.as_bytes();
            let mut public = *key.verifying_key().as_bytes();
            if bit < 512 {
                sig[bit / 8] ^= 1 << (bit % 8);
            } else {
                public[(bit - 512) / 8] ^= 1 << (bit % 8);
            }
            prop_assert!(VerifyingKey(public).verify(&message, &Signature(sig)).is_err());
        }

        #[test]
        fn flipped_message_fails(seed in any::<[u8; 32]>(), message in prop::collection::vec(any::<u8>(), 1..64), bit in any::<prop::sample::Index>()) {
            let key = SigningKey::from_seed(seed);
            let signature = key.sign(&message);
            let mut changed = message.clone();
            let at = bit.index(changed.len() * 8);
            changed[at / 8] ^= 1 << (at % 8);
            prop_assert!(key.verifying_key().verify(&changed, &signature).is_err());
        }

        #[test]
        fn text_and_cbor_round_trip(seed in any::<[u8; 32]>()) {
            let key = SigningKey::from_seed(seed);
            let public = key.verifying_key();
            prop_assert_eq!(public.to_string().parse::<VerifyingKey>(), Ok(public));
            let signature = key.sign(b"x");
            prop_assert_eq!(signature.to_string().len(), 103);
            prop_assert_eq!(signature.to_string().parse::<Signature>(), Ok(signature));
            let cbor = crate::cbor::encode(&signature);
            prop_assert_eq!(crate::cbor::decode_any::<Signature>(&cbor, 128), Ok(signature));
            prop_assert!(crate::cbor::decode_any::<VerifyingKey>(&cbor, 128).is_err());
        }
    }
}
