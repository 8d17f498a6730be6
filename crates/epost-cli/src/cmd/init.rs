//! `epost init`: a new data directory with a fresh node key and a config file.

use anyhow::{Context, Result, bail};
use epost_types::keyfile::NodeKeyFile;
use epost_types::sign::SigningKey;
use serde::Serialize;

use crate::cli::InitArgs;
use crate::config::{self, Config};
use crate::datadir::{DataDir, write_new_file};
use crate::output::emit;

#[derive(Serialize)]
struct Initialised {
    data_dir: String,
    config: String,
    node_key: String,
    /// The node's Ed25519 public key (its overlay identity).
    public_key: String,
}

pub(crate) fn run(dir: &DataDir, args: &InitArgs, json: bool) -> Result<()> {
    let config_path = dir.config_path();
    let key_path = dir.node_key_path();
    for existing in [&config_path, &key_path] {
        if existing.exists() {
            bail!(
                "{} already exists: {} is already initialised (keys are never overwritten)",
                existing.display(),
                dir.root().display()
            );
        }
    }
    // Validate before touching the disk, so a typo in a flag leaves nothing behind.
    let mut config = Config::default();
    if !args.listen.is_empty() {
        config.network.listen = config::listen_flags(&args.listen)?;
    }
    config.network.bootstrap = config::bootstrap_flags(&args.bootstrap)?;
    let text = config::template(&config)?;
    Config::parse(&text, "the --listen/--bootstrap flags")?;

    dir.create_root()?;
    let key = SigningKey::generate().context("cannot generate the node key")?;
    let key_file = NodeKeyFile::new(&key).encode();
    write_new_file(&key_path, &key_file, 0o600)?;
    write_new_file(&config_path, text.as_bytes(), 0o644)?;

    let done = Initialised {
        data_dir: dir.root().display().to_string(),
        config: config_path.display().to_string(),
        node_key: key_path.display().to_string(),
        public_key: key.verifying_key().to_string(),
    };
    emit(json, &done, |d| {
        format!(
            "initialised {}\n  config:     {}\n  node key:   {} (public key {})",
            d.data_dir, d.config, d.node_key, d.public_key
        )
    })?;
    Ok(())
}
