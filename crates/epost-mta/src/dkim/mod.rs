//! DKIM signatures on what leaves a realm (RFC 6376), two per message:
//! Ed25519-SHA256 (RFC 8463) and RSA-SHA256 (2048 bits) under their own
//! selectors, so a verifier that knows only RSA still passes.
//!
//! [`keys`] keeps a domain's keys in the node's data directory; [`Signer`]
//! holds the keys of every domain this node has and implements
//! [`crate::outbound::Sign`]. It never signs for a domain it has no key
//! of, and never logs a key. The decisions are spec/internet.md section 5.

pub mod keys;
mod record;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mail_auth::common::crypto::{Algorithm, SigningKey};
use mail_auth::common::headers::{HeaderWriter, Writable};
use mail_auth::dkim::{Canonicalization, DkimSigner};

pub use keys::DomainKeys;
pub use record::DnsRecord;

use crate::outbound::{Sign, SignError};

/// The header fields signed when present, in this order. `From` is
/// listed once more than it occurs ("oversigned"), so a second `From`
/// added on the way breaks the signature instead of fooling a reader.
pub const SIGNED_FIELDS: [&str; 19] = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "List-Id",
    "List-Help",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Subscribe",
    "List-Post",
    "List-Owner",
    "List-Archive",
];

/// Why keys could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("cannot use {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a {label} PEM file")]
    BadPem { path: PathBuf, label: String },
    #[error("{path} does not hold a usable DKIM key")]
    BadKey {
        path: PathBuf,
        #[source]
        source: mail_auth::Error,
    },
    #[error("cannot make a DKIM key for {domain}")]
    Generate {
        domain: String,
        #[source]
        source: mail_auth::Error,
    },
    #[error("{domain:?} is not a domain name")]
    BadDomain { domain: String },
    #[error(
        "{dir} must hold both an Ed25519 and an RSA key of {domain}; copy the missing file from another node of the realm or remove the directory to make new keys"
    )]
    Incomplete { domain: String, dir: PathBuf },
}

/// The DKIM keys of the domains this node signs for.
#[derive(Debug, Default)]
pub struct Signer {
    domains: HashMap<String, DomainKeys>,
}

impl Signer {
    /// Every domain's keys under `<data_dir>/dkim/`; none at all is an
    /// empty signer (it answers [`SignError::NoKey`]).
    pub fn load(data_dir: &Path) -> Result<Signer, DkimError> {
        let dir = keys::dkim_dir(data_dir);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Signer::default()),
            Err(source) => return Err(DkimError::Io { path: dir, source }),
        };
        let mut signer = Signer::default();
        for entry in entries {
            let entry = entry.map_err(|source| DkimError::Io { path: dir.clone(), source })?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            if !entry.path().is_dir() {
                continue;
            }
            let domain = keys::checked_domain(&name)?;
            if let Some(keys) = keys::load_domain(&entry.path(), &domain)? {
                signer.domains.insert(domain, keys);
            }
        }
        Ok(signer)
    }

    /// A signer of these domains' keys.
    pub fn from_keys(keys: impl IntoIterator<Item = DomainKeys>) -> Signer {
        Signer { domains: keys.into_iter().map(|k| (k.domain.clone(), k)).collect() }
    }

    /// The domains this node can sign for, sorted.
    pub fn domains(&self) -> Vec<&str> {
        let mut domains: Vec<&str> = self.domains.keys().map(String::as_str).collect();
        domains.sort_unstable();
        domains
    }
}

impl Sign for Signer {
    fn sign(&self, domain: &str, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let name = domain.trim_end_matches('.').to_ascii_lowercase();
        let Some(keys) = self.domains.get(&name) else {
            return Err(SignError::NoKey { domain: domain.to_owned() });
        };
        let fields = signed_fields(message);
        let failed = |source: mail_auth::Error| SignError::Failed {
            domain: domain.to_owned(),
            source: Box::new(source),
        };
        let ed =
            sign_with(&keys.ed25519.1, &name, &keys.ed25519.0, &fields, message).map_err(failed)?;
        let rsa = sign_with(&keys.rsa.1, &name, &keys.rsa.0, &fields, message).map_err(failed)?;
        let mut out = ed.into_bytes();
        out.extend_from_slice(rsa.as_bytes());
        Ok(out)
    }
}

/// The `h=` list for `message`: [`SIGNED_FIELDS`] that occur in it, and
/// `From` once more. Fields absent are left out, so a mailing list may
/// still add its `List-*` fields without breaking the signature.
fn signed_fields(message: &[u8]) -> Vec<&'static str> {
    let present: Vec<&[u8]> = crate::header::fields(message).map(|f| f.name).collect();
    let mut fields: Vec<&'static str> = SIGNED_FIELDS
        .into_iter()
        .filter(|name| present.iter().any(|p| p.eq_ignore_ascii_case(name.as_bytes())))
        .collect();
    fields.push("From");
    fields
}

fn sign_with<K: SigningKey>(
    key: &K,
    domain: &str,
    selector: &str,
    fields: &[&str],
    message: &[u8],
) -> Result<String, mail_auth::Error> {
    let signature = DkimSigner::from_key(Borrowed(key))
        .domain(domain)
        .selector(selector)
        .headers(fields.iter().copied())
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
        .sign(message)?;
    Ok(signature.to_header())
}

/// A key lent to mail-auth's signer, which wants to own one (our keys
/// are not `Clone`: ring's key pairs never are).
struct Borrowed<'a, K>(&'a K);

impl<K: SigningKey> SigningKey for Borrowed<'_, K> {
    type Hasher = K::Hasher;

    fn sign(&self, input: impl Writable) -> mail_auth::Result<Vec<u8>> {
        self.0.sign(input)
    }

    fn algorithm(&self) -> Algorithm {
        self.0.algorithm()
    }
}

#[cfg(test)]
pub(crate) mod tests;
