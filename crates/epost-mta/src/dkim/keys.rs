//! A domain's DKIM keys on disk: made, written and read back.
//!
//! ```text
//! <data-dir>/dkim/<domain>/
//!   <selector>.ed25519.pem   PKCS#8 "PRIVATE KEY", mode 0600
//!   <selector>.rsa.pem       PKCS#1 "RSA PRIVATE KEY" (2048 bits), 0600
//! ```
//!
//! The selector is in the file name (`epost-ed-YYYYMM`, `epost-rsa-YYYYMM`,
//! the month the key was made); of several keys of one algorithm the
//! greatest selector is the one in use, so a new key can be put beside
//! the old one. Files are written whole or not at all (temporary file,
//! fsync, rename). Never prints or logs a private key.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use epost_types::time::Timestamp;
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256};
use mail_auth::dkim::generate::DkimKeyPair;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs1KeyDer};

use super::DkimError;
use super::record::{DnsRecord, rsa_spki};

/// The RSA key size: 2048 bits, what every verifier accepts and a TXT
/// record still carries.
const RSA_BITS: usize = 2048;

/// The directory of all DKIM keys in a data directory.
pub fn dkim_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("dkim")
}

/// One domain's two keys.
pub struct DomainKeys {
    pub(crate) domain: String,
    pub(crate) ed25519: (String, Ed25519Key),
    pub(crate) rsa: (String, RsaKey<Sha256>),
}

impl std::fmt::Debug for DomainKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DomainKeys")
            .field("domain", &self.domain)
            .field("ed25519", &self.ed25519.0)
            .field("rsa", &self.rsa.0)
            .finish_non_exhaustive()
    }
}

impl DomainKeys {
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The selectors in use: Ed25519's, then RSA's.
    pub fn selectors(&self) -> [&str; 2] {
        [&self.ed25519.0, &self.rsa.0]
    }

    /// The TXT records to publish, Ed25519's first.
    pub fn records(&self) -> Vec<DnsRecord> {
        vec![
            DnsRecord::new(&self.ed25519.0, &self.domain, "ed25519", &self.ed25519.1.public_key()),
            DnsRecord::new(&self.rsa.0, &self.domain, "rsa", &rsa_spki(&self.rsa.1.public_key())),
        ]
    }
}

/// The domain's keys in `data_dir`, made first if it has none (of either
/// algorithm). `true` with them when this call made one.
pub fn ensure(
    data_dir: &Path,
    domain: &str,
    now: Timestamp,
) -> Result<(DomainKeys, bool), DkimError> {
    let domain = checked_domain(domain)?;
    let dir = dkim_dir(data_dir).join(&domain);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|source| DkimError::Io { path: dir.clone(), source })?;
    let (ed, rsa) = newest(&dir)?;
    let month = month(now);
    let mut made = false;
    if ed.is_none() {
        let pair = DkimKeyPair::generate_ed25519()
            .map_err(|source| DkimError::Generate { domain: domain.clone(), source })?;
        let path = dir.join(format!("epost-ed-{month}.ed25519.pem"));
        write_private(&path, pem("PRIVATE KEY", pair.private_key()).as_bytes())?;
        made = true;
    }
    if rsa.is_none() {
        let pair = DkimKeyPair::generate_rsa(RSA_BITS)
            .map_err(|source| DkimError::Generate { domain: domain.clone(), source })?;
        let path = dir.join(format!("epost-rsa-{month}.rsa.pem"));
        write_private(&path, pem("RSA PRIVATE KEY", pair.private_key()).as_bytes())?;
        made = true;
    }
    let keys = load_domain(&dir, &domain)?.ok_or(DkimError::Incomplete { domain, dir })?;
    Ok((keys, made))
}

/// The keys in one domain directory; `None` when it holds none at all.
pub(crate) fn load_domain(dir: &Path, domain: &str) -> Result<Option<DomainKeys>, DkimError> {
    let (ed, rsa) = newest(dir)?;
    let (ed, rsa) = match (ed, rsa) {
        (None, None) => return Ok(None),
        (Some(ed), Some(rsa)) => (ed, rsa),
        _ => {
            return Err(DkimError::Incomplete { domain: domain.to_owned(), dir: dir.to_owned() });
        }
    };
    let ed_der = read_pem(&ed.1, "PRIVATE KEY")?;
    let ed_key = Ed25519Key::from_pkcs8_der(&ed_der)
        .map_err(|source| DkimError::BadKey { path: ed.1.clone(), source })?;
    let rsa_der = read_pem(&rsa.1, "RSA PRIVATE KEY")?;
    let rsa_key = RsaKey::<Sha256>::from_key_der(PrivateKeyDer::Pkcs1(PrivatePkcs1KeyDer::from(
        rsa_der.as_slice(),
    )))
    .map_err(|source| DkimError::BadKey { path: rsa.1.clone(), source })?;
    Ok(Some(DomainKeys {
        domain: domain.to_owned(),
        ed25519: (ed.0, ed_key),
        rsa: (rsa.0, rsa_key),
    }))
}

/// Copies a domain's key files from one data directory to another (how
/// `epost dev` gives every node its realm's keys; an operator does the
/// same with any copy that keeps the files private).
pub fn copy_domain(from: &Path, to: &Path, domain: &str) -> Result<(), DkimError> {
    let domain = checked_domain(domain)?;
    let source = dkim_dir(from).join(&domain);
    let target = dkim_dir(to).join(&domain);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&target)
        .map_err(|e| DkimError::Io { path: target.clone(), source: e })?;
    for (_, path) in key_files(&source)? {
        let bytes = fs::read(&path).map_err(|e| DkimError::Io { path: path.clone(), source: e })?;
        let name = path.file_name().unwrap_or_default();
        write_private(&target.join(name), &bytes)?;
    }
    Ok(())
}

/// The greatest selector of each algorithm in `dir`, with its file.
type Newest = (Option<(String, PathBuf)>, Option<(String, PathBuf)>);

fn newest(dir: &Path) -> Result<Newest, DkimError> {
    let mut ed: Option<(String, PathBuf)> = None;
    let mut rsa: Option<(String, PathBuf)> = None;
    for (name, path) in key_files(dir)? {
        let (slot, selector) = if let Some(s) = name.strip_suffix(".ed25519.pem") {
            (&mut ed, s)
        } else if let Some(s) = name.strip_suffix(".rsa.pem") {
            (&mut rsa, s)
        } else {
            continue;
        };
        if slot.as_ref().is_none_or(|(old, _)| old.as_str() < selector) {
            *slot = Some((selector.to_owned(), path));
        }
    }
    Ok((ed, rsa))
}

/// The `*.pem` files of a domain directory (none if it does not exist).
fn key_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, DkimError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(DkimError::Io { path: dir.to_owned(), source }),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| DkimError::Io { path: dir.to_owned(), source })?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        if name.ends_with(".pem") && valid_selector(name.split('.').next().unwrap_or_default()) {
            files.push((name, entry.path()));
        }
    }
    files.sort();
    Ok(files)
}

fn valid_selector(selector: &str) -> bool {
    !selector.is_empty()
        && selector.len() <= 63
        && selector.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A domain name fit to be a directory name and a DKIM `d=`: lower-case
/// letters, digits, hyphens and dots, no empty label.
pub(crate) fn checked_domain(domain: &str) -> Result<String, DkimError> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let fine = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if fine { Ok(domain) } else { Err(DkimError::BadDomain { domain }) }
}

/// `YYYYMM` of `now`, in UTC.
fn month(now: Timestamp) -> String {
    let days = (now.as_millis() / 1000 / 86_400) as i64;
    let (year, month, _) = epost_types::maildate::civil_from_days(days);
    format!("{year:04}{month:02}")
}

fn pem(label: &str, der: &[u8]) -> String {
    let text = data_encoding::BASE64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn read_pem(path: &Path, label: &str) -> Result<Vec<u8>, DkimError> {
    let text =
        fs::read_to_string(path).map_err(|source| DkimError::Io { path: path.into(), source })?;
    let bad = || DkimError::BadPem { path: path.to_owned(), label: label.to_owned() };
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin).ok_or_else(bad)? + begin.len();
    let stop = text[start..].find(&end).ok_or_else(bad)? + start;
    let base64: String = text[start..stop].chars().filter(|c| !c.is_whitespace()).collect();
    data_encoding::BASE64.decode(base64.as_bytes()).map_err(|_| bad())
}

/// Writes a secret file atomically, mode 0600 from its first byte.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), DkimError> {
    let io = |source| DkimError::Io { path: path.to_owned(), source };
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut file =
        fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(io)?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(io)?;
    fs::rename(&tmp, path).map_err(io)?;
    let parent = path.parent().unwrap_or(Path::new("."));
    fs::File::open(parent).and_then(|dir| dir.sync_all()).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_checked_before_they_become_paths() {
        assert_eq!(checked_domain("Example.ORG.").unwrap(), "example.org");
        for bad in ["", "..", "a/b", "../etc", "a..b", "-a.b", "a b"] {
            assert!(checked_domain(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn months_and_pem() {
        // 2026-12-03
        assert_eq!(month(Timestamp::from_millis(1_796_256_000_000)), "202612");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        write_private(&path, pem("X", &[1, 2, 3]).as_bytes()).unwrap();
        assert_eq!(read_pem(&path, "X").unwrap(), [1, 2, 3]);
        assert!(read_pem(&path, "Y").is_err());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
