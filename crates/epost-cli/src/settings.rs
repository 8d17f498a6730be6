//! From the validated config file to each crate's typed settings, and the
//! logging set-up. Conversions only: validation happened at load.

use std::time::Duration;

use anyhow::{Context, Result};
use epost_dht::{DhtConfig, Multiaddr};
use epost_node::storage::StorageConfig;
use tracing_subscriber::EnvFilter;

use crate::config::{self, Config, LogFormat};

pub(crate) fn backend(backend: config::Backend) -> epost_store::Backend {
    match backend {
        config::Backend::Redb => epost_store::Backend::Redb,
        config::Backend::Sled => epost_store::Backend::Sled,
    }
}

pub(crate) fn dht(config: &Config) -> Result<DhtConfig> {
    let parse = |addrs: &[String], key: &str| -> Result<Vec<Multiaddr>> {
        addrs
            .iter()
            .map(|a| {
                a.parse::<Multiaddr>().with_context(|| format!("{key}: {a:?} is not a multiaddr"))
            })
            .collect()
    };
    Ok(DhtConfig {
        listen: parse(&config.network.listen, "network.listen")?,
        bootstrap: parse(&config.network.bootstrap, "network.bootstrap")?,
        bootstrap_timeout: Duration::from_secs(config.network.bootstrap_timeout_secs),
        ..DhtConfig::default()
    })
}

pub(crate) fn storage(config: &Config) -> StorageConfig {
    let s = &config.storage;
    StorageConfig {
        k: s.data_fragments,
        m: s.parity_fragments,
        lease: Duration::from_secs(u64::from(s.lease_days) * 24 * 3600),
        chunk_size: s.chunk_size as usize,
        repair_interval: Duration::from_secs(s.repair_interval_secs),
        grace: Duration::from_secs(s.grace_secs),
        ..StorageConfig::default()
    }
}

/// Logs to stderr; RUST_LOG overrides the config's filter.
pub(crate) fn init_logging(log: &config::LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second init (tests) keeps the first subscriber; that is fine.
    let _ = match log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The identity settings (the config was validated, so the trust list parses).
pub(crate) fn identity(config: &Config) -> epost_node::identity::IdentityConfig {
    epost_node::identity::IdentityConfig {
        trusted: config.identity.trusted().unwrap_or_default(),
        republish_interval: Duration::from_secs(config.identity.republish_interval_secs),
    }
}
