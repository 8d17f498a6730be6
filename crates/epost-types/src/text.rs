//! The text form of fixed-size binary values (ids, keys, signatures):
//! RFC 4648 base32, lowercase, no padding.
//!
//! Base32 because it survives every medium a capability passes through
//! (URLs, mail bodies, file names, shells) without escaping, and has no
//! look-alike digits (no 0, 1, 8, 9). Exactly one text per value: uppercase
//! and non-zero trailing bits are refused, so text forms compare as strings.

use data_encoding::{BASE32_NOPAD, DecodeKind};

/// Why a base32 text is not the value it should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Base32Error {
    #[error("expected {expected} base32 characters, found {found}")]
    WrongLength { found: usize, expected: usize },
    #[error("character {position} is not lowercase base32 (a-z, 2-7)")]
    InvalidCharacter { position: usize },
    #[error("the last character has non-zero unused bits; this is not the canonical text")]
    NonCanonical,
}

/// Characters in the text form of `bytes` bytes.
pub const fn text_len(bytes: usize) -> usize {
    (bytes * 8).div_ceil(5)
}

/// The text form of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let mut text = BASE32_NOPAD.encode(bytes);
    text.make_ascii_lowercase();
    text
}

/// Parses the text form of exactly `N` bytes.
pub fn decode_fixed<const N: usize>(text: &str) -> Result<[u8; N], Base32Error> {
    let expected = text_len(N);
    if text.len() != expected {
        return Err(Base32Error::WrongLength { found: text.chars().count(), expected });
    }
    // The alphabet is lowercase only; `data-encoding` knows the uppercase
    // one, so check the case here and let it do the rest.
    let mut upper = text.as_bytes().to_vec();
    for (position, byte) in upper.iter_mut().enumerate() {
        if !matches!(byte, b'a'..=b'z' | b'2'..=b'7') {
            return Err(Base32Error::InvalidCharacter { position });
        }
        byte.make_ascii_uppercase();
    }
    let mut out = [0u8; N];
    match BASE32_NOPAD.decode_mut(&upper, &mut out) {
        Ok(len) if len == N => Ok(out),
        Ok(_) => Err(Base32Error::WrongLength { found: expected, expected }),
        Err(e) => Err(match e.error.kind {
            DecodeKind::Trailing => Base32Error::NonCanonical,
            DecodeKind::Symbol => Base32Error::InvalidCharacter { position: e.error.position },
            DecodeKind::Length | DecodeKind::Padding => {
                Base32Error::WrongLength { found: expected, expected }
            }
        }),
    }
}

/// Display, Debug, FromStr and serde for a newtype over a byte array, all
/// in the one base32 text form (ids, keys, signatures).
macro_rules! text_form {
    ($name:ident) => {
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&$crate::text::encode(&self.0))
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::text::Base32Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $crate::text::decode_fixed(s).map($name)
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                $crate::fixed::serialize(&self.0, serializer)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Self, D::Error> {
                $crate::fixed::deserialize(deserializer).map($name)
            }
        }
    };
}
pub(crate) use text_form;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lengths() {
        assert_eq!(text_len(32), 52);
        assert_eq!(text_len(64), 103);
    }

    #[test]
    fn rfc_4648_example_lowercased() {
        // RFC 4648 section 10: BASE32("foobar") = "MZXW6YTBOI======".
        assert_eq!(encode(b"foobar"), "mzxw6ytboi");
        assert_eq!(decode_fixed::<6>("mzxw6ytboi"), Ok(*b"foobar"));
    }

    #[test]
    fn refuses_uppercase_padding_and_foreign_symbols() {
        let text = encode(&[7u8; 32]);
        assert!(matches!(
            decode_fixed::<32>(&text.to_uppercase()),
            Err(Base32Error::InvalidCharacter { position: 0 })
        ));
        let mut bad = text.clone();
        bad.replace_range(10..11, "1");
        assert_eq!(decode_fixed::<32>(&bad), Err(Base32Error::InvalidCharacter { position: 10 }));
        assert!(matches!(
            decode_fixed::<32>(&format!("{text}=")),
            Err(Base32Error::WrongLength { found: 53, expected: 52 })
        ));
        assert!(matches!(
            decode_fixed::<32>(&text[..51]),
            Err(Base32Error::WrongLength { found: 51, .. })
        ));
        // Multi-byte characters never reach the decoder.
        let accented = format!("é{}", &text[2..]);
        assert!(decode_fixed::<32>(&accented).is_err());
    }

    #[test]
    fn refuses_non_zero_trailing_bits() {
        // 32 bytes = 256 bits in 52 symbols = 260 bits: the last symbol's
        // low 4 bits must be zero. "a" is 0, "b" is 1.
        let mut text = encode(&[0u8; 32]);
        text.replace_range(51..52, "b");
        assert_eq!(decode_fixed::<32>(&text), Err(Base32Error::NonCanonical));
    }

    proptest! {
        #[test]
        fn round_trips(bytes in any::<[u8; 32]>()) {
            let text = encode(&bytes);
            prop_assert_eq!(text.len(), 52);
            prop_assert_eq!(decode_fixed::<32>(&text), Ok(bytes));
        }

        #[test]
        fn never_panics_on_garbage(text in "\\PC{0,60}") {
            let _ = decode_fixed::<32>(&text);
        }
    }
}
