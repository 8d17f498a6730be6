//! The DNS TXT records that publish a realm's DKIM public keys (RFC 6376
//! section 3.6.1, RFC 8463 for Ed25519): their names and text, the text
//! split into strings of at most 255 bytes as a zone file needs. Pure.

use serde::Serialize;

/// Longest character-string in a TXT record (RFC 1035 section 3.3).
const MAX_STRING: usize = 255;

/// One record to publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DnsRecord {
    /// `<selector>._domainkey.<domain>`, without the final dot.
    pub name: String,
    /// The record's text, whole (`v=DKIM1; k=...; p=...`).
    pub value: String,
    /// The zone-file line: `<name>. IN TXT "..." "..."`.
    pub zone: String,
}

impl DnsRecord {
    /// The record of a public key: `k` is `ed25519` or `rsa`, `public`
    /// the key's bytes as DNS carries them (raw for Ed25519, a
    /// SubjectPublicKeyInfo for RSA).
    pub(crate) fn new(selector: &str, domain: &str, k: &str, public: &[u8]) -> Self {
        let name = format!("{selector}._domainkey.{domain}");
        let value = format!("v=DKIM1; k={k}; p={}", data_encoding::BASE64.encode(public));
        let zone = format!("{name}. IN TXT {}", quoted_strings(&value));
        Self { name, value, zone }
    }
}

/// `text` (ASCII) as quoted strings of at most 255 bytes each.
fn quoted_strings(text: &str) -> String {
    text.as_bytes()
        .chunks(MAX_STRING)
        .map(|chunk| format!("\"{}\"", String::from_utf8_lossy(chunk)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Wraps a DER `RSAPublicKey` (PKCS#1) in a `SubjectPublicKeyInfo`, the
/// form DKIM verifiers expect in `p=` (what `openssl rsa -pubout` prints).
pub(crate) fn rsa_spki(rsa_public_key: &[u8]) -> Vec<u8> {
    // AlgorithmIdentifier { rsaEncryption, NULL }
    const ALGORITHM: [u8; 15] =
        [0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00];
    let mut bit_string = vec![0x03];
    bit_string.extend(der_length(rsa_public_key.len() + 1));
    bit_string.push(0); // no unused bits
    bit_string.extend_from_slice(rsa_public_key);
    let mut spki = vec![0x30];
    spki.extend(der_length(ALGORITHM.len() + bit_string.len()));
    spki.extend_from_slice(&ALGORITHM);
    spki.extend(bit_string);
    spki
}

fn der_length(len: usize) -> Vec<u8> {
    match len {
        0..0x80 => vec![len as u8],
        0x80..0x100 => vec![0x81, len as u8],
        _ => vec![0x82, (len >> 8) as u8, len as u8],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_records_are_one_string() {
        let record = DnsRecord::new("epost-ed-202612", "example.org", "ed25519", &[1; 32]);
        assert_eq!(record.name, "epost-ed-202612._domainkey.example.org");
        assert_eq!(
            record.zone,
            "epost-ed-202612._domainkey.example.org. IN TXT \"v=DKIM1; k=ed25519; p=AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\""
        );
    }

    #[test]
    fn long_records_are_split_at_255_bytes() {
        let record = DnsRecord::new("s", "d.test", "rsa", &[7; 294]);
        let quoted = record.zone.split_once(" IN TXT ").unwrap().1;
        let strings: Vec<&str> = quoted.split("\" \"").collect();
        assert_eq!(strings.len(), 2);
        assert!(strings.iter().all(|s| s.trim_matches('"').len() <= 255));
        assert_eq!(strings.concat().replace('"', ""), record.value);
    }

    #[test]
    fn spki_lengths() {
        assert_eq!(der_length(5), [5]);
        assert_eq!(der_length(200), [0x81, 200]);
        assert_eq!(der_length(270), [0x82, 1, 14]);
        let spki = rsa_spki(&[0x30; 270]);
        // 30 82 01 22 | 30 0d ... | 03 82 01 0f 00 | key
        assert_eq!(&spki[..4], [0x30, 0x82, 0x01, 0x22]);
        assert_eq!(spki.len(), 4 + 0x122);
    }
}
