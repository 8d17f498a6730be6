//! The layout of a node's data directory, in one place.
//!
//! ```text
//! DIR/
//!   config.toml   typed node configuration (see config.rs)
//!   node.key      the node's Ed25519 identity, CBOR key file, mode 0600
//!   convergence.key  the secret convergent encryption is keyed with, 0600
//!   store/        the local block and record store (epost-store)
//!   api.token     bearer token of the running node's control API, 0600
//!   node.json     written once the node listens: peer id, addresses, API URL
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// Paths inside one data directory.
#[derive(Debug, Clone)]
pub(crate) struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The directory given on the command line, or the platform default.
    pub(crate) fn resolve(given: Option<PathBuf>) -> Result<Self> {
        let root = match given {
            Some(dir) => dir,
            None => directories::ProjectDirs::from("org", "epost", "epost")
                .map(|dirs| dirs.data_dir().to_path_buf())
                .context("no home directory to put the default data directory in; pass --data-dir or set EPOST_DATA_DIR")?,
        };
        Ok(Self { root })
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn config_path(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    pub(crate) fn node_key_path(&self) -> PathBuf {
        self.root.join("node.key")
    }

    pub(crate) fn convergence_path(&self) -> PathBuf {
        self.root.join("convergence.key")
    }

    pub(crate) fn api_token_path(&self) -> PathBuf {
        self.root.join("api.token")
    }

    pub(crate) fn node_info_path(&self) -> PathBuf {
        self.root.join("node.json")
    }

    /// Fails unless `init` has been run here, with a message saying so.
    pub(crate) fn require_initialised(&self) -> Result<()> {
        if !self.config_path().exists() {
            bail!(
                "{} is not an epost data directory (no config.toml); run `epost --data-dir {} init` first",
                self.root.display(),
                self.root.display()
            );
        }
        Ok(())
    }

    /// Creates the directory (mode 0700) if it does not exist yet.
    pub(crate) fn create_root(&self) -> Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .with_context(|| format!("cannot create data directory {}", self.root.display()))
    }
}

/// Writes a new file durably and never over an existing one: create_new,
/// fsync the file, then fsync the directory so the entry itself survives a crash.
pub(crate) fn write_new_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    sync_parent(path)
}

fn sync_parent(path: &Path) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("."));
    File::open(parent)
        .and_then(|dir| dir.sync_all())
        .with_context(|| format!("cannot sync directory {}", parent.display()))
}

/// Replaces a file atomically: a reader sees the old or the new content,
/// never a torn one (temp file, fsync, rename, fsync the directory).
pub(crate) fn replace_file(path: &Path, bytes: &[u8]) -> Result<()> {
    replace_with_mode(path, bytes, 0o644)
}

/// Like [`replace_file`], for a secret (mode 0600 from the first byte).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    replace_with_mode(path, bytes, 0o600)
}

fn replace_with_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    write_new_file(&tmp, bytes, mode)?;
    fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    sync_parent(path)
}
