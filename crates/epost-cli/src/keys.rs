//! The node's secrets on disk: its identity key, its convergence secret and
//! the control API token. Each file is created mode 0600 and never logged.

use std::path::Path;

use anyhow::{Context, Result, bail};
use epost_types::keyfile::NodeKeyFile;
use ring::rand::{SecureRandom, SystemRandom};

use crate::datadir::write_new_file;

/// The Ed25519 seed in `node.key`.
pub(crate) fn load_node_seed(path: &Path) -> Result<[u8; 32]> {
    check_private(path)?;
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the node key {}", path.display()))?;
    let file = NodeKeyFile::decode(&bytes)
        .with_context(|| format!("{} is not a valid node key file", path.display()))?;
    Ok(*file.seed())
}

/// The secret that keys convergent encryption on this node (32 random
/// bytes, made on first use). Objects sealed under the same secret dedup.
pub(crate) fn load_or_create_convergence_secret(path: &Path) -> Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() == 32 => Ok(bytes),
        Ok(bytes) => {
            bail!("{} holds {} bytes; a convergence secret is 32", path.display(), bytes.len())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = random_bytes::<32>()?;
            write_new_file(path, &secret, 0o600)?;
            Ok(secret.to_vec())
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// A fresh bearer token for the control API (hex of 32 random bytes).
pub(crate) fn new_api_token() -> Result<String> {
    Ok(data_encoding::HEXLOWER.encode(&random_bytes::<32>()?))
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| anyhow::anyhow!("the system random source failed"))?;
    Ok(out)
}

/// Refuses a key file others can read: someone may have copied it.
fn check_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read the node key {}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{} has mode {mode:o}; a key must be private (chmod 600 {})",
            path.display(),
            path.display()
        );
    }
    Ok(())
}
