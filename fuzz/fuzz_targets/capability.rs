//! The text forms: capabilities, addresses, keys, signatures, ids and
//! mbox dates. No panic; whatever parses prints as text that parses back
//! to the same value.
#![no_main]

use std::fmt::{Debug, Display};
use std::str::FromStr;

use epost_types::address::Address;
use epost_types::capability::Capability;
use epost_types::id::{LogId, ObjectId};
use epost_types::maildate;
use epost_types::seal::HpkePublicKey;
use epost_types::sign::{Signature, VerifyingKey};
use libfuzzer_sys::fuzz_target;

fn back<T: FromStr + Display + PartialEq + Debug>(text: &str) {
    if let Ok(value) = text.parse::<T>() {
        assert_eq!(value.to_string().parse::<T>().ok(), Some(value));
    }
}

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    back::<Capability>(&text);
    back::<Address>(&text);
    back::<VerifyingKey>(&text);
    back::<Signature>(&text);
    back::<HpkePublicKey>(&text);
    back::<ObjectId>(&text);
    back::<LogId>(&text);
    if let Some(secs) = maildate::parse_asctime(&text) {
        assert_eq!(maildate::parse_asctime(&maildate::asctime(secs)), Some(secs));
    }
});
