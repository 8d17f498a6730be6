//! Sealing a message to a recipient's public key: HPKE (RFC 9180), base
//! mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305.
//!
//! HPKE rather than hand-rolled ECDH+AEAD because it is a reviewed
//! standard with test vectors; `ring` has no static X25519, hence the
//! `hpke` crate. Sealing gives confidentiality only: whoever sealed is not
//! authenticated (notifications are signed separately, see the envelope).
//!
//! `info` binds a message to its purpose; use one of the [`info`]
//! constants so a message sealed for one purpose never opens as another.

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::rand_core::{TryCryptoRng, TryRng};
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, Zeroizing};

use crate::sign::RngError;
use crate::text::{self, Base32Error};

type Suite = X25519HkdfSha256;
type PrivateKey = <Suite as Kem>::PrivateKey;
type PublicKey = <Suite as Kem>::PublicKey;

/// The `info` strings of every use of sealing in epost.
pub mod info {
    /// A notification ("you have mail: object X, key K") to its recipient.
    pub const NOTIFICATION: &[u8] = b"epost/v1/seal/notification";
    /// A user's secret keys wrapped to another of their devices or nodes.
    pub const KEY_TRANSFER: &[u8] = b"epost/v1/seal/key-transfer";
}

/// An X25519 HPKE private key, stored clamped (RFC 9180 section 7.1.2).
/// Zeroized on drop; `Debug` never shows it.
#[derive(Clone)]
pub struct HpkeSecretKey(Zeroizing<[u8; 32]>);

/// An X25519 HPKE public key: 32 bytes, text form 52 base32 characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HpkePublicKey([u8; 32]);

/// A sealed message: the encapsulated ephemeral key and the ciphertext
/// (plaintext length + 16). It is embedded in versioned containers and
/// carries no version of its own.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedMessage {
    #[serde(with = "crate::fixed")]
    pub enc: [u8; 32],
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
}

/// Why sealing failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error(transparent)]
    Rng(#[from] RngError),
    #[error("the recipient key is not usable (a low-order point)")]
    BadRecipientKey,
}

/// Why a sealed message did not open. Neither case yields data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UnsealError {
    #[error("the encapsulated key is not usable (a low-order point)")]
    BadEncapsulation,
    #[error("the message does not open with this key, info and aad (wrong recipient or tampered)")]
    Decrypt,
}

impl HpkeSecretKey {
    /// A fresh key pair's secret half (RFC 9180 GenerateKeyPair:
    /// DeriveKeyPair of 32 random bytes).
    pub fn generate() -> Result<Self, RngError> {
        let mut ikm = Zeroizing::new([0u8; 32]);
        SystemRandom::new().fill(ikm.as_mut()).map_err(|_| RngError)?;
        Ok(Self::derive(&ikm))
    }

    /// RFC 9180 DeriveKeyPair: the key for this input keying material.
    pub fn derive(ikm: &[u8; 32]) -> Self {
        let (secret, _) = Suite::derive_keypair(ikm);
        Self::from_hpke(&secret)
    }

    /// The key with these bytes (clamped on the way in).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let mut bytes = bytes;
        let secret = PrivateKey::from_bytes(&bytes);
        bytes.zeroize();
        match secret {
            Ok(secret) => Self::from_hpke(&secret),
            // hpke checks only the length, which the type fixes.
            Err(_) => unreachable!("X25519 accepts every 32-byte private key"),
        }
    }

    /// The (clamped) key bytes, for storing.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        self.0.clone()
    }

    pub fn public_key(&self) -> HpkePublicKey {
        let public = Suite::sk_to_pk(&self.to_hpke());
        let mut out = [0u8; 32];
        out.copy_from_slice(&public.to_bytes());
        HpkePublicKey(out)
    }

    fn from_hpke(secret: &PrivateKey) -> Self {
        let mut bytes = secret.to_bytes();
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&bytes);
        bytes.as_mut_slice().zeroize();
        HpkeSecretKey(out)
    }

    fn to_hpke(&self) -> PrivateKey {
        match PrivateKey::from_bytes(self.0.as_ref()) {
            Ok(secret) => secret,
            Err(_) => unreachable!("X25519 accepts every 32-byte private key"),
        }
    }
}

impl fmt::Debug for HpkeSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HpkeSecretKey(public {}, secret redacted)", self.public_key())
    }
}

impl HpkePublicKey {
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        HpkePublicKey(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn to_hpke(self) -> PublicKey {
        match PublicKey::from_bytes(&self.0) {
            Ok(public) => public,
            Err(_) => unreachable!("X25519 accepts every 32-byte public key"),
        }
    }
}

impl fmt::Display for HpkePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&text::encode(&self.0))
    }
}

impl fmt::Debug for HpkePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HpkePublicKey({self})")
    }
}

impl FromStr for HpkePublicKey {
    type Err = Base32Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        text::decode_fixed(s).map(HpkePublicKey)
    }
}

impl Serialize for HpkePublicKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::fixed::serialize(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for HpkePublicKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::fixed::deserialize(deserializer).map(HpkePublicKey)
    }
}

impl fmt::Debug for SealedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedMessage")
            .field("enc", &text::encode(&self.enc))
            .field("ciphertext_len", &self.ciphertext.len())
            .finish()
    }
}

/// Seals `plaintext` so that only the holder of `recipient`'s secret key
/// can open it, with the same `info` and `aad`.
pub fn seal_to(
    recipient: &HpkePublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<SealedMessage, SealError> {
    // Draw the ephemeral randomness from ring, which reports failure,
    // rather than let hpke's own source panic on it.
    let mut ikm_e = Zeroizing::new([0u8; 32]);
    SystemRandom::new().fill(ikm_e.as_mut()).map_err(|_| RngError)?;
    seal_with_ephemeral(recipient, info, aad, plaintext, &ikm_e)
}

/// [`seal_to`] with the ephemeral key derived from `ikm_e` (RFC 9180
/// DeriveKeyPair), as the RFC's test vectors do. Reusing an `ikm_e` for
/// two messages reuses the ephemeral key, so only tests call this.
pub(crate) fn seal_with_ephemeral(
    recipient: &HpkePublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    ikm_e: &[u8; 32],
) -> Result<SealedMessage, SealError> {
    let mut rng = ReplayRng { bytes: Zeroizing::new(*ikm_e), used: 0, overdrawn: false };
    let (enc, ciphertext) = hpke::single_shot_seal_with_rng::<ChaCha20Poly1305, HkdfSha256, Suite>(
        &OpModeS::Base,
        &recipient.to_hpke(),
        info,
        plaintext,
        aad,
        &mut rng,
    )
    .map_err(|_| SealError::BadRecipientKey)?;
    if rng.overdrawn {
        // hpke asked for more than one key's worth of randomness; the
        // zeros it got instead would make the message insecure.
        return Err(SealError::Rng(RngError));
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(&enc.to_bytes());
    Ok(SealedMessage { enc: out, ciphertext })
}

/// Opens a message sealed to `recipient`'s public key.
pub fn open_sealed(
    recipient: &HpkeSecretKey,
    info: &[u8],
    aad: &[u8],
    message: &SealedMessage,
) -> Result<Vec<u8>, UnsealError> {
    let enc = <Suite as Kem>::EncappedKey::from_bytes(&message.enc)
        .map_err(|_| UnsealError::BadEncapsulation)?;
    hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Suite>(
        &OpModeR::Base,
        &recipient.to_hpke(),
        &enc,
        info,
        &message.ciphertext,
        aad,
    )
    .map_err(|e| match e {
        hpke::HpkeError::DecapError => UnsealError::BadEncapsulation,
        _ => UnsealError::Decrypt,
    })
}

/// Serves 32 prepared random bytes to hpke, which draws exactly that for
/// an X25519 ephemeral key. Anything more is recorded and refused.
struct ReplayRng {
    bytes: Zeroizing<[u8; 32]>,
    used: usize,
    overdrawn: bool,
}

impl TryRng for ReplayRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut out = [0u8; 4];
        self.try_fill_bytes(&mut out)?;
        Ok(u32::from_le_bytes(out))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut out = [0u8; 8];
        self.try_fill_bytes(&mut out)?;
        Ok(u64::from_le_bytes(out))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        let available = self.bytes.get(self.used..).unwrap_or(&[]);
        if dst.len() > available.len() {
            self.overdrawn = true;
            dst.fill(0);
        } else {
            dst.copy_from_slice(&available[..dst.len()]);
            self.used += dst.len();
        }
        Ok(())
    }
}

impl TryCryptoRng for ReplayRng {}

#[cfg(test)]
mod tests {
    use super::*;
    use data_encoding::HEXLOWER;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        HEXLOWER.decode(s.as_bytes()).unwrap()
    }

    fn hex32(s: &str) -> [u8; 32] {
        hex(s).try_into().unwrap()
    }

    /// RFC 9180 appendix A.2.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
    /// ChaCha20Poly1305, base mode, first message.
    #[test]
    fn rfc_9180_a_2_1() {
        let info = hex("4f6465206f6e2061204772656369616e2055726e");
        let aad = hex("436f756e742d30");
        let pt = hex("4265617574792069732074727574682c20747275746820626561757479");
        let ikm_r = hex32("1ac01f181fdf9f352797655161c58b75c656a6cc2716dcb66372da835542e1df");
        let pk_r = hex32("4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a");
        let sk_r = hex32("8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb");
        let ikm_e = hex32("909a9b35d3dc4713a5e72a4da274b55d3d3821a37e5d099e74a647db583a904b");
        let enc = hex32("1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a");
        let ct = hex(
            "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28",
        );

        let recipient = HpkeSecretKey::from_bytes(sk_r);
        assert_eq!(recipient.public_key(), HpkePublicKey(pk_r));
        assert_eq!(HpkeSecretKey::derive(&ikm_r).public_key(), HpkePublicKey(pk_r));
        let sealed = seal_with_ephemeral(&HpkePublicKey(pk_r), &info, &aad, &pt, &ikm_e).unwrap();
        assert_eq!(sealed, SealedMessage { enc, ciphertext: ct });
        assert_eq!(open_sealed(&recipient, &info, &aad, &sealed), Ok(pt));
    }

    #[test]
    fn round_trip_and_binding() {
        let bob = HpkeSecretKey::generate().unwrap();
        let eve = HpkeSecretKey::generate().unwrap();
        let sealed =
            seal_to(&bob.public_key(), info::NOTIFICATION, b"aad", b"you have mail").unwrap();
        assert_eq!(sealed.ciphertext.len(), 13 + 16);
        assert_eq!(
            open_sealed(&bob, info::NOTIFICATION, b"aad", &sealed).as_deref(),
            Ok(&b"you have mail"[..])
        );
        assert_eq!(
            open_sealed(&eve, info::NOTIFICATION, b"aad", &sealed),
            Err(UnsealError::Decrypt)
        );
        assert_eq!(
            open_sealed(&bob, info::KEY_TRANSFER, b"aad", &sealed),
            Err(UnsealError::Decrypt)
        );
        assert_eq!(open_sealed(&bob, info::NOTIFICATION, b"", &sealed), Err(UnsealError::Decrypt));
        // Fresh ephemeral every time.
        let again =
            seal_to(&bob.public_key(), info::NOTIFICATION, b"aad", b"you have mail").unwrap();
        assert_ne!(sealed.enc, again.enc);
    }

    #[test]
    fn refuses_low_order_keys() {
        // The all-zero point: every shared secret with it is zero.
        let zero = HpkePublicKey([0; 32]);
        assert_eq!(seal_to(&zero, info::NOTIFICATION, b"", b"x"), Err(SealError::BadRecipientKey));
        let bob = HpkeSecretKey::generate().unwrap();
        let mut sealed = seal_to(&bob.public_key(), info::NOTIFICATION, b"", b"x").unwrap();
        sealed.enc = [0; 32];
        assert_eq!(
            open_sealed(&bob, info::NOTIFICATION, b"", &sealed),
            Err(UnsealError::BadEncapsulation)
        );
    }

    #[test]
    fn keys_round_trip_and_debug_redacts() {
        let key = HpkeSecretKey::generate().unwrap();
        let again = HpkeSecretKey::from_bytes(*key.to_bytes());
        assert_eq!(again.public_key(), key.public_key());
        assert_eq!(*again.to_bytes(), *key.to_bytes());
        let shown = format!("{key:?}");
        assert!(shown.contains("redacted"));
        assert!(!shown.contains(&text::encode(key.to_bytes().as_ref())));
        let public = key.public_key();
        assert_eq!(public.to_string().parse::<HpkePublicKey>(), Ok(public));
        let cbor = crate::cbor::encode(&public);
        assert_eq!(crate::cbor::decode_any::<HpkePublicKey>(&cbor, 64), Ok(public));
    }

    #[test]
    fn sealed_message_cbor_round_trips() {
        let bob = HpkeSecretKey::derive(&[3; 32]);
        let sealed = seal_with_ephemeral(&bob.public_key(), b"i", b"a", b"p", &[4; 32]).unwrap();
        let bytes = crate::cbor::encode(&sealed);
        assert_eq!(crate::cbor::decode_any::<SealedMessage>(&bytes, 1024), Ok(sealed));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn any_flipped_bit_is_refused(
            plaintext in prop::collection::vec(any::<u8>(), 0..100),
            ikm_e in any::<[u8; 32]>(),
            bit in any::<prop::sample::Index>(),
        ) {
            let bob = HpkeSecretKey::derive(&[5; 32]);
            let mut sealed = seal_with_ephemeral(&bob.public_key(), info::NOTIFICATION, b"", &plaintext, &ikm_e).unwrap();
            let at = bit.index((32 + sealed.ciphertext.len()) * 8);
            if at < 256 {
                sealed.enc[at / 8] ^= 1 << (at % 8);
            } else {
                let at = at - 256;
                sealed.ciphertext[at / 8] ^= 1 << (at % 8);
            }
            prop_assert!(open_sealed(&bob, info::NOTIFICATION, b"", &sealed).is_err());
        }
    }
}
