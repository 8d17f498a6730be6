//! Capabilities: the id of an object and the key that decrypts it, in one
//! string, `epost:<id>#<key>`. Holding one is what it means to be allowed
//! to read an object; there is no other access control.
//!
//! The key sits after `#` on purpose: in URL terms it is the fragment,
//! which clients do not send to servers, so a capability pasted into a web
//! tool or logged as a URL path leaks the id at worst, not the key.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::id::ObjectId;
use crate::text::{self, Base32Error};

/// The text before the id.
pub const SCHEME: &str = "epost:";

/// An AES-256 object key. Zeroized on drop; `Debug` never shows it; there
/// is no `Display` (the only text form is inside a capability).
#[derive(Clone)]
pub struct ObjectKey(Zeroizing<[u8; 32]>);

impl ObjectKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        ObjectKey(Zeroizing::new(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for ObjectKey {
    /// Constant time, as comparisons of secrets should be.
    fn eq(&self, other: &Self) -> bool {
        self.0.iter().zip(other.0.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

impl Eq for ObjectKey {}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ObjectKey(redacted)")
    }
}

impl Serialize for ObjectKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        crate::fixed::serialize(&self.0, serializer)
    }
}

impl<'de> Deserialize<'de> for ObjectKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::fixed::deserialize(deserializer).map(ObjectKey::from_bytes)
    }
}

/// The right to read one object: its id and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capability {
    pub id: ObjectId,
    pub key: ObjectKey,
}

/// Why a text is not a capability.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityParseError {
    #[error("a capability starts with \"epost:\"")]
    MissingScheme,
    #[error("a capability has a '#' between the object id and the key")]
    MissingKey,
    #[error("the object id is {len} characters; it should be 52")]
    BadIdLength { len: usize },
    #[error("the object id is not valid: {0}")]
    BadId(Base32Error),
    #[error("the key is {len} characters; it should be 52")]
    BadKeyLength { len: usize },
    #[error("the key is not valid: {0}")]
    BadKey(Base32Error),
}

impl Capability {
    pub fn new(id: ObjectId, key: ObjectKey) -> Self {
        Capability { id, key }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = Zeroizing::new(text::encode(self.key.as_bytes()));
        write!(f, "{SCHEME}{}#{}", self.id, key.as_str())
    }
}

impl FromStr for Capability {
    type Err = CapabilityParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.strip_prefix(SCHEME).ok_or(CapabilityParseError::MissingScheme)?;
        let (id, key) = rest.split_once('#').ok_or(CapabilityParseError::MissingKey)?;
        let id = text::decode_fixed::<32>(id).map_err(|e| match e {
            Base32Error::WrongLength { found, .. } => {
                CapabilityParseError::BadIdLength { len: found }
            }
            other => CapabilityParseError::BadId(other),
        })?;
        let key = text::decode_fixed::<32>(key).map(Zeroizing::new).map_err(|e| match e {
            Base32Error::WrongLength { found, .. } => {
                CapabilityParseError::BadKeyLength { len: found }
            }
            other => CapabilityParseError::BadKey(other),
        })?;
        Ok(Capability { id: ObjectId::from_bytes(id), key: ObjectKey(key) })
    }
}

/// Text in human-readable formats; a two-element array `[id, key]` of
/// byte strings in CBOR (it is embedded in manifests and notifications).
impl Serialize for Capability {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            as_text::serialize(self, serializer)
        } else {
            let mut tuple = serializer.serialize_tuple(2)?;
            tuple.serialize_element(&self.id)?;
            tuple.serialize_element(&self.key)?;
            tuple.end()
        }
    }
}

impl<'de> Deserialize<'de> for Capability {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            as_text::deserialize(deserializer)
        } else {
            deserializer.deserialize_tuple(2, CapabilityVisitor)
        }
    }
}

/// A capability always as its text `epost:<id>#<key>`, in CBOR too: for
/// formats that stored it as text before it was typed (mail manifests and
/// mail-log entries), with `#[serde(with = "capability::as_text")]`.
pub mod as_text {
    use serde::{Deserializer, Serializer};
    use zeroize::Zeroizing;

    use super::{Capability, CapabilityVisitor};

    pub fn serialize<S: Serializer>(
        capability: &Capability,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let text = Zeroizing::new(capability.to_string());
        serializer.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Capability, D::Error> {
        deserializer.deserialize_str(CapabilityVisitor)
    }
}

struct CapabilityVisitor;

impl<'de> Visitor<'de> for CapabilityVisitor {
    type Value = Capability;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a capability")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Capability, E> {
        text.parse().map_err(E::custom)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Capability, A::Error> {
        let id = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let key = seq.next_element()?.ok_or_else(|| de::Error::invalid_length(1, &self))?;
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(3, &self));
        }
        Ok(Capability { id, key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Capability {
        Capability::new(ObjectId::of(b"ciphertext"), ObjectKey::from_bytes([9; 32]))
    }

    #[test]
    fn text_form() {
        let cap = sample();
        let text = cap.to_string();
        assert_eq!(text.len(), 6 + 52 + 1 + 52);
        assert!(text.starts_with("epost:"));
        assert_eq!(text.parse::<Capability>(), Ok(cap));
    }

    #[test]
    fn parse_errors_name_the_problem() {
        let cap = sample();
        let (id, key) = (cap.id.to_string(), text::encode(cap.key.as_bytes()));
        let parse = |s: &str| s.parse::<Capability>();
        assert_eq!(parse(&format!("{id}#{key}")), Err(CapabilityParseError::MissingScheme));
        assert_eq!(parse(&format!("http:{id}#{key}")), Err(CapabilityParseError::MissingScheme));
        assert_eq!(parse(&format!("EPOST:{id}#{key}")), Err(CapabilityParseError::MissingScheme));
        assert_eq!(parse(&format!("epost:{id}")), Err(CapabilityParseError::MissingKey));
        assert_eq!(parse(""), Err(CapabilityParseError::MissingScheme));
        assert_eq!(
            parse(&format!("epost:{}#{key}", &id[..50])),
            Err(CapabilityParseError::BadIdLength { len: 50 })
        );
        assert_eq!(
            parse(&format!("epost:{id}#{key}aa")),
            Err(CapabilityParseError::BadKeyLength { len: 54 })
        );
        assert_eq!(
            parse(&format!("epost:{id}#")),
            Err(CapabilityParseError::BadKeyLength { len: 0 })
        );
        assert_eq!(
            parse(&format!("epost:{id}#{}", key.to_uppercase())),
            Err(CapabilityParseError::BadKey(Base32Error::InvalidCharacter { position: 0 }))
        );
        assert!(matches!(
            parse(&format!("epost:0{}#{key}", &id[1..])),
            Err(CapabilityParseError::BadId(Base32Error::InvalidCharacter { position: 0 }))
        ));
        // A second '#' lands in the key and makes it the wrong length.
        assert_eq!(
            parse(&format!("epost:{id}#{key}#x")),
            Err(CapabilityParseError::BadKeyLength { len: 54 })
        );
        // Messages are for people.
        assert!(CapabilityParseError::BadKeyLength { len: 3 }.to_string().contains("52"));
    }

    #[test]
    fn debug_redacts_the_key() {
        let cap = sample();
        let shown = format!("{cap:?}");
        assert!(shown.contains(&cap.id.to_string()));
        assert!(!shown.contains(&text::encode(cap.key.as_bytes())));
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn cbor_is_a_pair_of_byte_strings() {
        let cap = sample();
        let bytes = crate::cbor::encode(&cap);
        assert_eq!(bytes.len(), 1 + 34 + 34);
        assert_eq!(bytes[0], 0x82);
        assert_eq!(crate::cbor::decode_any::<Capability>(&bytes, 128), Ok(cap.clone()));
        let json = serde_json::to_string(&cap).unwrap();
        assert_eq!(json, format!("\"{cap}\""));
        assert_eq!(serde_json::from_str::<Capability>(&json).unwrap(), cap);
    }

    proptest! {
        #[test]
        fn round_trips(id in any::<[u8; 32]>(), key in any::<[u8; 32]>()) {
            let cap = Capability::new(ObjectId::from_bytes(id), ObjectKey::from_bytes(key));
            prop_assert_eq!(cap.to_string().parse::<Capability>(), Ok(cap));
        }

        #[test]
        fn never_panics(text in "epost:\\PC{0,120}") {
            let _ = text.parse::<Capability>();
        }
    }
}
