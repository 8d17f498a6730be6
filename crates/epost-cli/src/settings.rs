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
        // Records outlive an owner's absence as long as its objects do.
        record_ttl: lease_of(config),
        ..DhtConfig::default()
    })
}

pub(crate) fn storage(config: &Config) -> StorageConfig {
    let s = &config.storage;
    StorageConfig {
        k: s.data_fragments,
        m: s.parity_fragments,
        lease: lease_of(config),
        chunk_size: s.chunk_size as usize,
        repair_interval: Duration::from_secs(s.repair_interval_secs),
        grace: Duration::from_secs(s.grace_secs),
        ..StorageConfig::default()
    }
}

fn lease_of(config: &Config) -> Duration {
    Duration::from_secs(u64::from(config.storage.lease_days) * 24 * 3600)
}

/// When and how fast the node renews what its users reference.
pub(crate) fn lease(config: &Config) -> epost_node::lease::LeaseConfig {
    let s = &config.storage;
    epost_node::lease::LeaseConfig {
        lease: lease_of(config),
        renew_after: Duration::from_secs(u64::from(s.renew_after_days) * 24 * 3600),
        interval: Duration::from_secs(s.renew_interval_secs),
        rate: s.renew_rate,
    }
}

/// The inbox holders' settings: notifications are kept for a lease, so
/// mail for a user whose node is away waits for it as long as its objects.
pub(crate) fn notify(config: &Config) -> epost_node::notify::NotifyConfig {
    epost_node::notify::NotifyConfig { max_lease: lease_of(config), ..Default::default() }
}

/// How often expired entries are swept from the store.
pub(crate) fn sweep_interval(config: &Config) -> Duration {
    Duration::from_secs(config.storage.sweep_interval_secs)
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
