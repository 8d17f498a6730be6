//! The identity files under `DIR/identity/` (see the module docs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use epost_types::address::Address;
use epost_types::convergent::ConvergenceSecret;
use epost_types::envelope::SignedEnvelope;
use epost_types::identity::TrustedRealms;
use epost_types::identity::bundle::{REALM_SECRET_LEN, UserBundle};
use epost_types::keyfile::NodeKeyFile;
use epost_types::sign::{RngError, SigningKey};
use ring::rand::{SecureRandom, SystemRandom};

use super::IdentityError;
use crate::fsutil::write_atomic;

const BUNDLE: &str = "bundle";
const CERT: &str = "cert";
const PASSWORD: &str = "password";
const MX: &str = "mx";

pub(super) struct Disk {
    root: PathBuf,
}

impl Disk {
    pub(super) fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn realms_dir(&self) -> PathBuf {
        self.root.join("realms")
    }

    fn users_dir(&self) -> PathBuf {
        self.root.join("users")
    }

    fn issued_dir(&self) -> PathBuf {
        self.root.join("issued")
    }

    /// Every certificate a realm held here issued (the newest of each
    /// address), so it can renew them wherever their users now live.
    pub(super) fn load_issued(&self) -> Result<Vec<SignedEnvelope>, IdentityError> {
        load_envelopes(&self.issued_dir(), CERT)
    }

    pub(super) fn save_issued(
        &self,
        address: &Address,
        envelope: &SignedEnvelope,
    ) -> Result<(), IdentityError> {
        let name = epost_types::text::encode(address.as_str().as_bytes());
        write(&self.issued_dir().join(format!("{name}.{CERT}")), &envelope.encode(), false)
    }

    fn mx_dir(&self) -> PathBuf {
        self.root.join("mx")
    }

    /// Every MX record a realm held here issued (the newest of each
    /// domain), to republish and renew.
    pub(super) fn load_mx(&self) -> Result<Vec<SignedEnvelope>, IdentityError> {
        load_envelopes(&self.mx_dir(), MX)
    }

    /// `mx/<domain>.mx` (a canonical domain is a file name).
    pub(super) fn save_mx(
        &self,
        domain: &str,
        envelope: &SignedEnvelope,
    ) -> Result<(), IdentityError> {
        write(&self.mx_dir().join(format!("{domain}.{MX}")), &envelope.encode(), false)
    }

    fn trust_path(&self) -> PathBuf {
        self.root.join("trusted.json")
    }

    /// `users/<base32 of the address>.<ext>`: addresses may hold `/`.
    fn user_path(&self, address: &Address, ext: &str) -> PathBuf {
        let name = epost_types::text::encode(address.as_str().as_bytes());
        self.users_dir().join(format!("{name}.{ext}"))
    }

    pub(super) fn load_realms(&self) -> Result<BTreeMap<String, SigningKey>, IdentityError> {
        let mut realms = BTreeMap::new();
        for path in list(&self.realms_dir(), "key")? {
            let bytes = read(&path)?;
            let key = NodeKeyFile::decode(&bytes).map_err(|e| damaged(&path, e))?.signing_key();
            let domain = stem(&path);
            let domain =
                epost_types::address::canonical_domain(&domain).map_err(|e| damaged(&path, e))?;
            realms.insert(domain, key);
        }
        Ok(realms)
    }

    pub(super) fn save_realm(&self, domain: &str, key: &SigningKey) -> Result<(), IdentityError> {
        let path = self.realms_dir().join(format!("{domain}.key"));
        write(&path, &NodeKeyFile::new(key).encode(), true)
    }

    /// The realm's convergence secret (`realms/<domain>.secret`, 32 raw
    /// bytes, 0600), made on first use: realms made before it existed get
    /// one at their next start.
    pub(super) fn realm_secret(&self, domain: &str) -> Result<ConvergenceSecret, IdentityError> {
        let path = self.realms_dir().join(format!("{domain}.secret"));
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() == REALM_SECRET_LEN => {
                return Ok(ConvergenceSecret::new(bytes));
            }
            Ok(bytes) => {
                return Err(damaged(
                    &path,
                    format!("{} bytes, not {REALM_SECRET_LEN}", bytes.len()),
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(io("read", &path, source)),
        }
        let mut bytes = vec![0u8; REALM_SECRET_LEN];
        SystemRandom::new().fill(&mut bytes).map_err(|_| IdentityError::Rng(RngError))?;
        write(&path, &bytes, true)?;
        Ok(ConvergenceSecret::new(bytes))
    }

    pub(super) fn load_trust(&self) -> Result<TrustedRealms, IdentityError> {
        let path = self.trust_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| damaged(&path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TrustedRealms::new()),
            Err(source) => Err(io("read", &path, source)),
        }
    }

    pub(super) fn save_trust(&self, trust: &TrustedRealms) -> Result<(), IdentityError> {
        let path = self.trust_path();
        let json = serde_json::to_vec_pretty(trust).map_err(|e| damaged(&path, e))?;
        write(&path, &json, false)
    }

    /// Every hosted user's bundle and password hash.
    pub(super) fn load_users(&self) -> Result<Vec<(UserBundle, Option<String>)>, IdentityError> {
        let mut users = Vec::new();
        for path in list(&self.users_dir(), BUNDLE)? {
            let bytes = read(&path)?;
            let bundle = UserBundle::decode(&bytes, None).map_err(|e| damaged(&path, e))?;
            let password_path = path.with_extension(PASSWORD);
            let password = match std::fs::read_to_string(&password_path) {
                Ok(text) => Some(text.trim().to_owned()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(source) => return Err(io("read", &password_path, source)),
            };
            users.push((bundle, password));
        }
        Ok(users)
    }

    /// Writes the bundle, then the password hash (or removes a stale one).
    pub(super) fn save_user(
        &self,
        bundle: &UserBundle,
        password_hash: Option<&str>,
    ) -> Result<(), IdentityError> {
        let address = &bundle.keys.address;
        // The password lives in its own file; the bundle file carries the rest.
        let stored = bundle.clone().with_extras(bundle.realm_secret.clone(), None);
        write(&self.user_path(address, BUNDLE), &stored.encode_plain(), true)?;
        let password_path = self.user_path(address, PASSWORD);
        match password_hash {
            Some(hash) => write(&password_path, hash.as_bytes(), true),
            None => match std::fs::remove_file(&password_path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(io("remove", &password_path, e))
                }
                _ => Ok(()),
            },
        }
    }
}

impl Disk {
    /// Deletes a user's bundle and password hash.
    pub(super) fn remove_user(&self, address: &Address) -> Result<(), IdentityError> {
        for ext in [PASSWORD, BUNDLE] {
            let path = self.user_path(address, ext);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io("remove", &path, e));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn list(dir: &Path, ext: &str) -> Result<Vec<PathBuf>, IdentityError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(io("list", dir, source)),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.map_err(|source| io("list", dir, source))?.path();
        if path.extension().is_some_and(|e| e == ext) {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// Every `*.ext` file in `dir` as a signed envelope (none if `dir` is missing).
fn load_envelopes(dir: &Path, ext: &str) -> Result<Vec<SignedEnvelope>, IdentityError> {
    let mut out = Vec::new();
    for path in list(dir, ext)? {
        let bytes = read(&path)?;
        out.push(SignedEnvelope::decode(&bytes).map_err(|e| damaged(&path, e))?);
    }
    Ok(out)
}

fn stem(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

fn read(path: &Path) -> Result<Vec<u8>, IdentityError> {
    std::fs::read(path).map_err(|source| io("read", path, source))
}

fn write(path: &Path, bytes: &[u8], private: bool) -> Result<(), IdentityError> {
    write_atomic(path, bytes, private).map_err(|source| io("write", path, source))
}

fn io(action: &'static str, path: &Path, source: std::io::Error) -> IdentityError {
    IdentityError::Io { action, path: path.display().to_string(), source }
}

fn damaged(path: &Path, detail: impl ToString) -> IdentityError {
    IdentityError::Damaged { path: path.display().to_string(), detail: detail.to_string() }
}
