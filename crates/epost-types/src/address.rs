//! User addresses, `local@domain`, as certificates and mail routing use
//! them.
//!
//! Deliberately a strict subset of RFC 5321: the local part is a dot-atom
//! (no quoted strings, no comments) whose atoms may hold UTF-8 beyond
//! ASCII as RFC 6531 allows (letters, marks, symbols; never controls or
//! spaces; taken byte for byte, not normalised), the domain is LDH labels
//! (no address literals; internationalised domains in their `xn--` form). The
//! domain is lowercased, because DNS is case-insensitive and an address is
//! hashed into DHT keys where "Example.org" and "example.org" must meet.
//! The local part keeps its case, as RFC 5321 section 2.4 requires.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest address (RFC 5321 path limit of 256 minus the angle brackets).
pub const MAX_ADDRESS_LEN: usize = 254;
/// Longest local part (RFC 5321 section 4.5.3.1.1).
pub const MAX_LOCAL_LEN: usize = 64;
/// Longest domain label (RFC 1035).
pub const MAX_LABEL_LEN: usize = 63;

/// A validated address. The text is stored in canonical form (domain
/// lowercased), so equality and hashing are by canonical text.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address {
    text: String,
    at: usize,
}

/// Why a text is not an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("an address is local@domain; there is no '@'")]
    MissingAt,
    #[error("the address is {len} octets; at most {MAX_ADDRESS_LEN} are allowed")]
    TooLong { len: usize },
    #[error("the part before '@' is empty")]
    EmptyLocal,
    #[error("the part before '@' is {len} octets; at most {MAX_LOCAL_LEN} are allowed")]
    LocalTooLong { len: usize },
    #[error("character {position} of the part before '@' ({found:?}) is not allowed")]
    BadLocalChar { position: usize, found: char },
    #[error("the part before '@' starts or ends with '.', or has '..'")]
    BadLocalDot,
    #[error("the domain is empty")]
    EmptyDomain,
    #[error("the domain has an empty label (leading, trailing or doubled '.')")]
    EmptyLabel,
    #[error("domain label {label:?} is longer than {MAX_LABEL_LEN} characters")]
    LabelTooLong { label: String },
    #[error("domain label {label:?} has a character other than a-z, 0-9 and '-'")]
    BadLabelChar { label: String },
    #[error("domain label {label:?} starts or ends with '-'")]
    BadLabelHyphen { label: String },
}

impl Address {
    /// The part before the '@', as given.
    pub fn local(&self) -> &str {
        &self.text[..self.at]
    }

    /// The domain, lowercase.
    pub fn domain(&self) -> &str {
        &self.text[self.at + 1..]
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the address is all ASCII; one that is not may travel only
    /// where SMTPUTF8 (RFC 6531) was agreed.
    pub fn is_ascii(&self) -> bool {
        self.text.is_ascii()
    }
}

/// A mail domain as addresses use it: checked by the same rules and
/// returned lowercased (realm trust is configured per domain).
pub fn canonical_domain(domain: &str) -> Result<String, AddressError> {
    let len = domain.chars().count();
    if len > MAX_ADDRESS_LEN {
        return Err(AddressError::TooLong { len });
    }
    let domain = domain.to_ascii_lowercase();
    check_domain(&domain)?;
    Ok(domain)
}

/// RFC 5322 `atext`, the characters of a dot-atom other than '.', with
/// RFC 6532's `UTF8-non-ascii` less what no one types as part of a name:
/// controls (C1 included), white space, and format characters such as
/// bidirectional overrides and zero-width joiners, which would let two
/// addresses that look alike differ.
fn is_atext(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    }
    !c.is_control() && !c.is_whitespace() && !is_format(c)
}

/// Unicode's invisible format characters (general category Cf) that
/// matter in text: soft hyphen, zero-width and bidirectional marks,
/// overrides and isolates, word joiners, the byte-order mark.
fn is_format(c: char) -> bool {
    matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{feff}')
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let len = s.len();
        if len > MAX_ADDRESS_LEN {
            return Err(AddressError::TooLong { len });
        }
        // The local part cannot contain '@' (not atext), so the last '@'
        // is the separator and any earlier one is a bad local character.
        let (local, domain) = s.rsplit_once('@').ok_or(AddressError::MissingAt)?;
        check_local(local)?;
        let domain = domain.to_ascii_lowercase();
        check_domain(&domain)?;
        Ok(Address { text: format!("{local}@{domain}"), at: local.len() })
    }
}

fn check_local(local: &str) -> Result<(), AddressError> {
    if local.is_empty() {
        return Err(AddressError::EmptyLocal);
    }
    // Octets, as RFC 6531 section 3.3 counts a UTF-8 local part.
    let len = local.len();
    if len > MAX_LOCAL_LEN {
        return Err(AddressError::LocalTooLong { len });
    }
    if let Some((position, found)) =
        local.chars().enumerate().find(|(_, c)| !(is_atext(*c) || *c == '.'))
    {
        return Err(AddressError::BadLocalChar { position, found });
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err(AddressError::BadLocalDot);
    }
    Ok(())
}

fn check_domain(domain: &str) -> Result<(), AddressError> {
    if domain.is_empty() {
        return Err(AddressError::EmptyDomain);
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err(AddressError::EmptyLabel);
        }
        if !label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
            return Err(AddressError::BadLabelChar { label: label.to_owned() });
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(AddressError::LabelTooLong { label: label.to_owned() });
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(AddressError::BadLabelHyphen { label: label.to_owned() });
        }
    }
    Ok(())
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({})", self.text)
    }
}

/// A string in every format.
impl Serialize for Address {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let address: Address = text.parse().map_err(serde::de::Error::custom)?;
        // A stored or signed address is already canonical; accepting
        // "Example.ORG" here would give one address two encodings.
        if address.text != text {
            return Err(serde::de::Error::custom("address is not in canonical form"));
        }
        Ok(address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> Result<Address, AddressError> {
        s.parse()
    }

    #[test]
    fn accepts_ordinary_addresses() {
        let a = parse("Alice.Smith+tag@Mail.Example.ORG").unwrap();
        assert_eq!(a.local(), "Alice.Smith+tag");
        assert_eq!(a.domain(), "mail.example.org");
        assert_eq!(a.to_string(), "Alice.Smith+tag@mail.example.org");
        assert!(parse("bob@localhost").is_ok());
        assert!(parse("x@xn--bcher-kva.example").is_ok());
        assert!(parse("o'neil_{1}@a-b.c0").is_ok());
    }

    #[test]
    fn accepts_utf8_local_parts_as_rfc_6531_does() {
        for (text, local) in [
            ("josé@example.org", "josé"),
            ("Δοκιμή@Example.ORG", "Δοκιμή"),
            ("用户.名@example.org", "用户.名"),
            ("θ+tag@example.org", "θ+tag"),
        ] {
            let a = parse(text).unwrap();
            assert_eq!(a.local(), local, "{text}");
            assert!(!a.is_ascii(), "{text}");
            assert_eq!(parse(a.as_str()), Ok(a.clone()), "{text} parses back");
        }
        assert!(parse("jose@example.org").unwrap().is_ascii());
        // Dots keep their rules between UTF-8 atoms too.
        assert_eq!(parse("é..é@example.org"), Err(AddressError::BadLocalDot));
        // No normalisation: composed and decomposed é are two addresses.
        assert_ne!(parse("jos\u{e9}@example.org"), parse("jose\u{301}@example.org"));
    }

    #[test]
    fn refuses_with_a_reason() {
        assert_eq!(parse("alice"), Err(AddressError::MissingAt));
        assert_eq!(parse("@example.org"), Err(AddressError::EmptyLocal));
        assert_eq!(parse("alice@"), Err(AddressError::EmptyDomain));
        assert_eq!(parse(".alice@example.org"), Err(AddressError::BadLocalDot));
        assert_eq!(parse("al..ice@example.org"), Err(AddressError::BadLocalDot));
        assert_eq!(
            parse("a@b@example.org"),
            Err(AddressError::BadLocalChar { position: 1, found: '@' })
        );
        assert_eq!(
            parse("al ice@example.org"),
            Err(AddressError::BadLocalChar { position: 2, found: ' ' })
        );
        assert_eq!(
            parse("jo\u{202e}se@example.org"),
            Err(AddressError::BadLocalChar { position: 2, found: '\u{202e}' })
        );
        assert_eq!(
            parse("jo\u{a0}se@example.org"),
            Err(AddressError::BadLocalChar { position: 2, found: '\u{a0}' })
        );
        assert_eq!(
            parse("jo\u{85}se@example.org"),
            Err(AddressError::BadLocalChar { position: 2, found: '\u{85}' })
        );
        assert_eq!(
            parse("a\u{200b}b@example.org"),
            Err(AddressError::BadLocalChar { position: 1, found: '\u{200b}' })
        );
        // UTF-8 in the domain stays refused: its A-label (xn--) is the name.
        assert!(matches!(parse("josé@bücher.example"), Err(AddressError::BadLabelChar { .. })));
        // 32 two-octet characters are 64 octets; 33 are 66: too long.
        assert!(parse(&format!("{}@example.org", "é".repeat(32))).is_ok());
        assert_eq!(
            parse(&format!("{}@example.org", "é".repeat(33))),
            Err(AddressError::LocalTooLong { len: 66 })
        );
        assert_eq!(parse("a@example..org"), Err(AddressError::EmptyLabel));
        assert_eq!(parse("a@example.org."), Err(AddressError::EmptyLabel));
        assert!(matches!(parse("a@-x.org"), Err(AddressError::BadLabelHyphen { .. })));
        assert!(matches!(parse("a@ex_ample.org"), Err(AddressError::BadLabelChar { .. })));
        assert!(matches!(parse("a@[127.0.0.1]"), Err(AddressError::BadLabelChar { .. })));
        assert!(matches!(
            parse(&format!("a@{}.org", "x".repeat(64))),
            Err(AddressError::LabelTooLong { .. })
        ));
        assert_eq!(
            parse(&format!("{}@example.org", "x".repeat(65))),
            Err(AddressError::LocalTooLong { len: 65 })
        );
        let long = format!("a@{}.org", vec!["x".repeat(60); 5].join("."));
        assert!(matches!(parse(&long), Err(AddressError::TooLong { .. })));
    }

    #[test]
    fn domains_alone() {
        assert_eq!(canonical_domain("Mail.Example.ORG").as_deref(), Ok("mail.example.org"));
        assert_eq!(canonical_domain(""), Err(AddressError::EmptyDomain));
        assert!(matches!(canonical_domain("a b.org"), Err(AddressError::BadLabelChar { .. })));
    }

    #[test]
    fn serde_is_the_canonical_string() {
        let a = parse("Bob@Example.org").unwrap();
        let cbor = crate::cbor::encode(&a);
        assert_eq!(crate::cbor::decode_any::<Address>(&cbor, 300), Ok(a.clone()));
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"Bob@example.org\"");
        assert!(serde_json::from_str::<Address>("\"Bob@Example.org\"").is_err());
        assert!(serde_json::from_str::<Address>("\"nope\"").is_err());
    }

    proptest! {
        #[test]
        fn display_parses_back(local in "[a-zA-Z0-9+_-]{1,20}(\\.[a-z0-9]{1,5}){0,2}", domain in "[a-zA-Z0-9]{1,10}(\\.[a-z0-9]{1,10}){0,3}") {
            let address = parse(&format!("{local}@{domain}")).unwrap();
            prop_assert_eq!(address.local(), local.as_str());
            prop_assert_eq!(address.domain(), domain.to_ascii_lowercase());
            prop_assert_eq!(parse(&address.to_string()), Ok(address));
        }

        #[test]
        fn never_panics(text in "\\PC{0,300}") {
            let _ = parse(&text);
        }
    }
}
