//! CBOR (RFC 8949) for every wire and stored value, via `ciborium`.
//!
//! Rules (normative text in `spec/formats.md`):
//!
//! - A decoder checks the input length against the caller's limit
//!   *before* parsing, and follows at most [`MAX_CBOR_DEPTH`] levels of
//!   nesting, so hostile input costs bounded memory and stack.
//! - Each value has exactly one accepted encoding: the one [`encode`]
//!   writes (definite lengths, shortest integers, map keys in declaration
//!   order, no tags). Decoders re-encode and refuse anything else, so a
//!   signed or hashed value cannot be re-serialised into a second form.
//! - Every top-level value is a map carrying `v`, its format version
//!   ([`Versioned`]). An unknown version is reported as such, not as a
//!   parse error, so an old node says "upgrade me" instead of "garbage".

use std::io;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::limits::MAX_CBOR_DEPTH;

/// A wire or stored value with a format version in its `v` field.
pub trait Versioned {
    /// The version this code writes and reads. A later version that must
    /// still read this one decodes both and converts (see the spec).
    const VERSION: u8;

    /// The oldest version this code still reads (into the same type).
    const OLDEST: u8 = Self::VERSION;

    /// The version this value claims.
    fn version(&self) -> u8;
}

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("input is {len} bytes, more than the {max} allowed here")]
    TooLarge { len: usize, max: usize },
    #[error("input ends in the middle of a value")]
    Truncated,
    #[error("input is not CBOR (syntax error at byte {offset})")]
    Syntax { offset: usize },
    #[error("input is CBOR but not the expected value: {reason}")]
    Invalid { offset: Option<usize>, reason: String },
    #[error("input nests deeper than {max} levels")]
    TooDeep { max: usize },
    #[error("{extra} bytes follow the value")]
    TrailingBytes { extra: usize },
    #[error("input is not in canonical form (it would encode differently)")]
    NonCanonical,
    #[error("format version {found} is not supported (this build reads version {supported})")]
    UnsupportedVersion { found: u8, supported: u8 },
}

/// Encodes `value` as CBOR.
///
/// # Panics
///
/// Only if `T`'s `Serialize` impl itself reports an error, which the
/// derived impls of this crate's types never do (writing to a `Vec`
/// cannot fail).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(value, &mut out);
    out
}

/// Encodes `value` onto the end of `out` (lets callers preallocate, and
/// lets secret-holding callers avoid reallocations that leave copies).
pub(crate) fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    if let Err(e) = ciborium::ser::into_writer(value, out) {
        // Not reachable for our types; see `encode`.
        panic!("a value of this crate failed to serialize: {e}");
    }
}

/// Decodes a versioned value of at most `max_len` bytes, refusing a
/// version outside `T::OLDEST ..= T::VERSION`, a non-canonical encoding
/// and trailing bytes.
pub fn decode<T: DeserializeOwned + Serialize + Versioned>(
    bytes: &[u8],
    max_len: usize,
) -> Result<T, DecodeError> {
    let known = T::OLDEST..=T::VERSION;
    match decode_any::<T>(bytes, max_len) {
        Ok(value) if known.contains(&value.version()) => Ok(value),
        Ok(value) => {
            Err(DecodeError::UnsupportedVersion { found: value.version(), supported: T::VERSION })
        }
        Err(error) => Err(match probe_version(bytes) {
            // A later version may have a different shape: say so rather
            // than report its shape as an error.
            Some(found) if !known.contains(&found) => {
                DecodeError::UnsupportedVersion { found, supported: T::VERSION }
            }
            _ => error,
        }),
    }
}

/// Decodes a value that carries no version of its own (a component of a
/// versioned container, or a bare id), with the same size, depth and
/// canonical-form rules as [`decode`].
pub fn decode_any<T: DeserializeOwned + Serialize>(
    bytes: &[u8],
    max_len: usize,
) -> Result<T, DecodeError> {
    let value: T = parse(bytes, max_len)?;
    if encode(&value) != bytes {
        return Err(DecodeError::NonCanonical);
    }
    Ok(value)
}

fn parse<T: DeserializeOwned>(bytes: &[u8], max_len: usize) -> Result<T, DecodeError> {
    if bytes.len() > max_len {
        return Err(DecodeError::TooLarge { len: bytes.len(), max: max_len });
    }
    let mut rest = bytes;
    let value = ciborium::de::from_reader_with_recursion_limit(&mut rest, MAX_CBOR_DEPTH)
        .map_err(from_ciborium)?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes { extra: rest.len() });
    }
    Ok(value)
}

/// The `v` of a map that does not otherwise parse, if it has one.
fn probe_version(bytes: &[u8]) -> Option<u8> {
    #[derive(serde::Deserialize)]
    struct Probe {
        v: u8,
    }
    let mut rest = bytes;
    ciborium::de::from_reader_with_recursion_limit::<Probe, _>(&mut rest, MAX_CBOR_DEPTH)
        .ok()
        .map(|p| p.v)
}

fn from_ciborium(error: ciborium::de::Error<io::Error>) -> DecodeError {
    use ciborium::de::Error;
    match error {
        Error::Io(_) => DecodeError::Truncated,
        Error::Syntax(offset) => DecodeError::Syntax { offset },
        Error::Semantic(offset, reason) => DecodeError::Invalid { offset, reason },
        Error::RecursionLimitExceeded => DecodeError::TooDeep { max: MAX_CBOR_DEPTH },
    }
}

/// Whether `bytes` is one CBOR item in RFC 8949 section 4.2.1 core
/// deterministic form as far as map key order goes (shorter encoded keys
/// first, then bytewise). Shortest-form arguments and definite lengths
/// are what `ciborium` always writes.
#[cfg(test)]
pub(crate) fn keys_are_deterministic(bytes: &[u8]) -> bool {
    fn check(value: &ciborium::Value) -> bool {
        use ciborium::Value;
        match value {
            Value::Map(entries) => {
                let keys: Vec<Vec<u8>> = entries.iter().map(|(k, _)| encode(k)).collect();
                let sorted = keys.windows(2).all(|w| (w[0].len(), &w[0]) < (w[1].len(), &w[1]));
                sorted && entries.iter().all(|(k, v)| check(k) && check(v))
            }
            Value::Array(items) => items.iter().all(check),
            Value::Tag(..) | Value::Float(_) => false,
            _ => true,
        }
    }
    decode_any::<ciborium::Value>(bytes, bytes.len()).is_ok_and(|value| check(&value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Thing {
        v: u8,
        n: u64,
    }

    impl Versioned for Thing {
        const VERSION: u8 = 1;
        fn version(&self) -> u8 {
            self.v
        }
    }

    #[derive(Serialize)]
    struct FutureThing {
        v: u8,
        renamed: String,
    }

    #[test]
    fn round_trips() {
        let thing = Thing { v: 1, n: 500 };
        let bytes = encode(&thing);
        assert_eq!(decode::<Thing>(&bytes, 64), Ok(thing));
    }

    #[test]
    fn refuses_oversized_input_before_parsing() {
        // Not CBOR at all: had it been parsed, the error would differ.
        let garbage = vec![0xffu8; 65];
        assert_eq!(decode::<Thing>(&garbage, 64), Err(DecodeError::TooLarge { len: 65, max: 64 }));
    }

    #[test]
    fn unknown_versions_are_named_even_when_the_shape_changed() {
        let same_shape = encode(&Thing { v: 2, n: 1 });
        assert_eq!(
            decode::<Thing>(&same_shape, 64),
            Err(DecodeError::UnsupportedVersion { found: 2, supported: 1 })
        );
        let new_shape = encode(&FutureThing { v: 7, renamed: "x".into() });
        assert_eq!(
            decode::<Thing>(&new_shape, 64),
            Err(DecodeError::UnsupportedVersion { found: 7, supported: 1 })
        );
    }

    #[test]
    fn refuses_trailing_bytes_and_truncation() {
        let mut bytes = encode(&Thing { v: 1, n: 1 });
        bytes.push(0);
        assert_eq!(decode::<Thing>(&bytes, 64), Err(DecodeError::TrailingBytes { extra: 1 }));
        bytes.truncate(bytes.len() - 2);
        assert_eq!(decode::<Thing>(&bytes, 64), Err(DecodeError::Truncated));
    }

    #[test]
    fn refuses_non_canonical_forms() {
        // {"v": 1, "n": 1} with n written in two bytes (0x18 0x01).
        let long_int = [0xa2, 0x61, b'v', 0x01, 0x61, b'n', 0x18, 0x01];
        assert_eq!(decode::<Thing>(&long_int, 64), Err(DecodeError::NonCanonical));
        // Keys in the other order.
        let reordered = [0xa2, 0x61, b'n', 0x01, 0x61, b'v', 0x01];
        assert_eq!(decode::<Thing>(&reordered, 64), Err(DecodeError::NonCanonical));
        // A tag in front.
        let tagged = [0xc1, 0xa2, 0x61, b'v', 0x01, 0x61, b'n', 0x01];
        assert_eq!(decode::<Thing>(&tagged, 64), Err(DecodeError::NonCanonical));
        // Indefinite-length map.
        let indefinite = [0xbf, 0x61, b'v', 0x01, 0x61, b'n', 0x01, 0xff];
        assert_eq!(decode::<Thing>(&indefinite, 64), Err(DecodeError::NonCanonical));
    }

    #[test]
    fn refuses_unknown_fields() {
        let extra = [0xa3, 0x61, b'v', 0x01, 0x61, b'n', 0x01, 0x61, b'x', 0x01];
        assert!(matches!(decode::<Thing>(&extra, 64), Err(DecodeError::Invalid { .. })));
    }

    #[test]
    fn bounds_nesting() {
        // 10 000 nested one-element arrays: a stack overflow without the bound.
        let mut deep = vec![0x81u8; 10_000];
        deep.push(0x00);
        let result = decode_any::<ciborium::Value>(&deep, deep.len());
        assert_eq!(result, Err(DecodeError::TooDeep { max: MAX_CBOR_DEPTH }));
    }

    #[test]
    fn huge_declared_lengths_do_not_allocate() {
        // A byte string claiming 2^63 bytes, in 10 bytes of input.
        let claim = [0x5b, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert!(decode_any::<serde_bytes::ByteBuf>(&claim, 64).is_err());
        // An array claiming 2^32 elements.
        let claim = [0x9a, 0xff, 0xff, 0xff, 0xff];
        assert!(decode_any::<Vec<u64>>(&claim, 64).is_err());
    }
}
