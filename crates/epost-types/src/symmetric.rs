//! The two symmetric primitives every format shares, HKDF-SHA256 to 32
//! bytes and AES-256-GCM, wrapped once so that callers cannot get the
//! `ring` plumbing subtly different from one format to the next.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;
use zeroize::Zeroizing;

/// Length of an AES-GCM tag.
pub(crate) const TAG_LEN: usize = 16;

/// HKDF-SHA256 (RFC 5869) with one `info` string, 32 bytes of output.
pub(crate) fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    let filled = prk.expand(&[info], Len32).and_then(|okm| okm.fill(key.as_mut()));
    if filled.is_err() {
        // ring refuses only outputs over 255 hash lengths; 32 bytes is one.
        unreachable!("HKDF-SHA256 always yields 32 bytes");
    }
    key
}

struct Len32;

impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

/// An AES-256-GCM key.
pub(crate) fn aes_key(key: &[u8; 32]) -> LessSafeKey {
    match UnboundKey::new(&AES_256_GCM, key) {
        Ok(key) => LessSafeKey::new(key),
        // ring checks only the length, which the type fixes.
        Err(_) => unreachable!("AES-256 accepts every 32-byte key"),
    }
}

/// Encrypts `buffer` in place and appends the tag. The caller answers for
/// the nonce being unique under `key` (each use documents why it is).
///
/// # Panics
///
/// Over AES-GCM's limit of about 64 GiB, which no epost value approaches.
pub(crate) fn seal_in_place(key: &[u8; 32], nonce: [u8; 12], aad: &[u8], buffer: &mut Vec<u8>) {
    let nonce = Nonce::assume_unique_for_key(nonce);
    if aes_key(key).seal_in_place_append_tag(nonce, Aad::from(aad), buffer).is_err() {
        panic!("plaintext over AES-GCM's 64 GiB limit");
    }
}

/// Decrypts `buffer` (ciphertext with its tag) in place; on success the
/// buffer holds exactly the plaintext. `Err(())` means wrong key, nonce or
/// aad, or tampered bytes: callers name it in their own error.
pub(crate) fn open_in_place(
    key: &[u8; 32],
    nonce: [u8; 12],
    aad: &[u8],
    buffer: &mut Vec<u8>,
) -> Result<(), ()> {
    let nonce = Nonce::assume_unique_for_key(nonce);
    let len = aes_key(key).open_in_place(nonce, Aad::from(aad), buffer).map_err(|_| ())?.len();
    buffer.truncate(len);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use data_encoding::HEXLOWER;

    /// RFC 5869 test case 3 (empty salt and info), first 32 bytes of OKM.
    #[test]
    fn hkdf_matches_rfc_5869() {
        let ikm = [0x0b; 22];
        let okm = hkdf_sha256(&[], &ikm, &[]);
        assert_eq!(
            HEXLOWER.encode(okm.as_ref()),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
        );
    }

    #[test]
    fn aead_round_trip_and_refusal() {
        let mut buffer = b"secret".to_vec();
        seal_in_place(&[1; 32], [2; 12], b"aad", &mut buffer);
        assert_eq!(buffer.len(), 6 + TAG_LEN);
        let sealed = buffer.clone();
        assert_eq!(open_in_place(&[1; 32], [2; 12], b"aad", &mut buffer), Ok(()));
        assert_eq!(buffer, b"secret");
        let mut wrong = sealed.clone();
        assert_eq!(open_in_place(&[1; 32], [2; 12], b"other", &mut wrong), Err(()));
        let mut wrong = sealed;
        assert_eq!(open_in_place(&[1; 32], [3; 12], b"aad", &mut wrong), Err(()));
    }
}
