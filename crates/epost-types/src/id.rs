//! Names of things in the network: objects and logs.
//!
//! Both are 32-byte SHA-256 values written as 52 characters of lowercase
//! base32 ([`crate::text`]). `Display` is the bare text (it is what goes in
//! a capability); `Debug` adds the type, `ObjectId(…)` or `LogId(…)`, so
//! the two stay distinguishable in logs.

use crate::hash::{sha256, sha256_parts};
use crate::sign::VerifyingKey;

/// The name of a stored object: SHA-256 of its ciphertext, so anyone
/// holding the bytes can check they are the ones asked for.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId([u8; 32]);

impl ObjectId {
    /// The id of `ciphertext`.
    pub fn of(ciphertext: &[u8]) -> Self {
        ObjectId(sha256(ciphertext))
    }

    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        ObjectId(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// The name of a single-writer log: SHA-256(owner's Ed25519 key || name).
/// The owner's key is fixed-length, so the concatenation is unambiguous.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogId([u8; 32]);

impl LogId {
    /// The id of the log `name` owned by `owner`.
    pub fn derive(owner: &VerifyingKey, name: &str) -> Self {
        LogId(sha256_parts(&[owner.as_bytes(), name.as_bytes()]))
    }

    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        LogId(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

crate::text::text_form!(ObjectId);
crate::text::text_form!(LogId);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sign::SigningKey;
    use crate::text::Base32Error;
    use proptest::prelude::*;

    #[test]
    fn object_id_is_sha256_of_the_ciphertext() {
        let id = ObjectId::of(b"abc");
        assert_eq!(
            data_encoding::HEXLOWER.encode(id.as_bytes()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(id.to_string().len(), 52);
        assert!(format!("{id:?}").starts_with("ObjectId("));
    }

    #[test]
    fn log_id_binds_owner_and_name() {
        let alice = SigningKey::from_seed([1; 32]).verifying_key();
        let bob = SigningKey::from_seed([2; 32]).verifying_key();
        let inbox = LogId::derive(&alice, "INBOX");
        assert_eq!(inbox, LogId::derive(&alice, "INBOX"));
        assert_ne!(inbox, LogId::derive(&alice, "Sent"));
        assert_ne!(inbox, LogId::derive(&bob, "INBOX"));
        assert_eq!(inbox.as_bytes(), &sha256_parts(&[alice.as_bytes(), b"INBOX"]));
        assert!(format!("{inbox:?}").starts_with("LogId("));
    }

    #[test]
    fn parse_errors_say_what_is_wrong() {
        assert!(matches!(
            "abc".parse::<ObjectId>(),
            Err(Base32Error::WrongLength { found: 3, expected: 52 })
        ));
        let upper = ObjectId::of(b"x").to_string().to_uppercase();
        assert!(matches!(upper.parse::<LogId>(), Err(Base32Error::InvalidCharacter { .. })));
    }

    proptest! {
        #[test]
        fn text_and_cbor_round_trip(bytes in any::<[u8; 32]>()) {
            let id = ObjectId::from_bytes(bytes);
            prop_assert_eq!(id.to_string().parse::<ObjectId>(), Ok(id));
            let cbor = crate::cbor::encode(&id);
            prop_assert_eq!(cbor.len(), 34);
            prop_assert_eq!(crate::cbor::decode_any::<ObjectId>(&cbor, 64).ok(), Some(id));
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(json, format!("\"{id}\""));
            let log = LogId::from_bytes(bytes);
            prop_assert_eq!(log.to_string().parse::<LogId>(), Ok(log));
        }
    }
}
