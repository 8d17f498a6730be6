//! From the validated config file to each crate's typed settings, and the
//! logging set-up. Conversions only: validation happened at load.

use std::ffi::OsStr;
use std::io::IsTerminal;
use std::time::Duration;

use epost_dht::{ConnectionLimits, DhtConfig, Rate, RequestLimits};
use epost_node::storage::{QuotaLimits, StorageConfig};
use tracing_subscriber::EnvFilter;

use crate::config::{self, Config, LogFormat};

pub(crate) fn backend(backend: config::Backend) -> epost_store::Backend {
    match backend {
        config::Backend::Redb => epost_store::Backend::Redb,
        config::Backend::Sled => epost_store::Backend::Sled,
    }
}

/// The outbound queue's settings; DSNs name the gateway's host name.
pub(crate) fn outbound_queue(config: &Config) -> epost_node::outbound::QueueConfig {
    let o = &config.outbound;
    epost_node::outbound::QueueConfig {
        max_messages: o.max_messages,
        max_bytes: o.max_bytes,
        schedule: epost_mta::queue::Schedule {
            min_backoff: o.min_backoff,
            max_backoff: o.max_backoff,
            lifetime: o.lifetime,
            delay_warning: o.delay_warning,
        },
        per_domain: o.per_domain,
        total: o.total,
        hostname: config.gateway.hostname.clone(),
    }
}

pub(crate) fn dht(config: &Config) -> DhtConfig {
    let n = &config.network;
    let defaults = DhtConfig::default();
    // A burst of twice the rate: a second's worth of slack either way.
    let rate = |per_sec: u32| Rate::new(per_sec, per_sec.saturating_mul(2));
    DhtConfig {
        listen: n.listen.clone(),
        bootstrap: n.bootstrap.clone(),
        bootstrap_timeout: n.bootstrap_timeout,
        // Records outlive an owner's absence as long as its objects do.
        record_ttl: config.storage.lease,
        reach: epost_dht::ReachConfig {
            serve_relay: n.relay,
            reservations: n.relays,
            probe_private: n.nat_probe_private,
            ..defaults.reach.clone()
        },
        connections: ConnectionLimits {
            max_incoming: n.max_incoming_connections,
            max_pending_incoming: n.max_pending_incoming,
            max_per_peer: n.max_connections_per_peer,
            max_memory_percent: n.max_memory_percent,
        },
        requests: RequestLimits {
            frag: rate(n.frag_requests_per_sec),
            notify: rate(n.notify_requests_per_sec),
            kad_put: rate(n.kad_puts_per_sec),
            flood_block: n.flood_block,
            ..defaults.requests
        },
        banned: n.ban.clone(),
        ..defaults
    }
}

pub(crate) fn storage(config: &Config) -> StorageConfig {
    let s = &config.storage;
    StorageConfig {
        k: s.data_fragments,
        m: s.parity_fragments,
        lease: s.lease,
        chunk_size: s.chunk_size,
        repair_interval: s.repair_interval,
        grace: s.grace,
        quota: QuotaLimits {
            capacity: s.capacity,
            peer_percent: s.peer_quota_percent,
            peer_floor: s.peer_quota_floor,
        },
        ..StorageConfig::default()
    }
}

/// When and how fast the node renews what its users reference.
pub(crate) fn lease(config: &Config) -> epost_node::lease::LeaseConfig {
    let s = &config.storage;
    epost_node::lease::LeaseConfig {
        lease: s.lease,
        renew_after: s.renew_after,
        interval: s.renew_interval,
        rate: s.renew_rate,
    }
}

/// The inbox holders' settings: notifications are kept for a lease, so
/// mail for a user whose node is away waits for it as long as its objects.
pub(crate) fn notify(config: &Config) -> epost_node::notify::NotifyConfig {
    epost_node::notify::NotifyConfig { max_lease: config.storage.lease, ..Default::default() }
}

/// How often expired entries are swept from the store.
pub(crate) fn sweep_interval(config: &Config) -> Duration {
    config.storage.sweep_interval
}

/// Logs to stderr; RUST_LOG overrides the config's filter. Colours only
/// for a person at a terminal: a log file or the journal gets plain text.
pub(crate) fn init_logging(log: &config::LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let colour =
        use_colour(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR").as_deref());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour);
    // A second init (tests) keeps the first subscriber; that is fine.
    let _ = match log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Whether log lines carry ANSI colour codes: only on a terminal, and not
/// when `NO_COLOR` is set to anything but the empty string (no-color.org).
fn use_colour(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// The identity settings (the config was validated, so the trust list parses).
pub(crate) fn identity(config: &Config) -> epost_node::identity::IdentityConfig {
    epost_node::identity::IdentityConfig {
        trusted: config.identity.trusted().unwrap_or_default(),
        republish_interval: config.identity.republish_interval,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        let cases: [(bool, Option<&str>, bool); 8] = [
            (true, None, true),
            (true, Some(""), true),
            (true, Some("1"), false),
            (true, Some("0"), false),
            (false, None, false),
            (false, Some(""), false),
            (false, Some("1"), false),
            (false, Some("0"), false),
        ];
        for (terminal, no_color, want) in cases {
            assert_eq!(
                use_colour(terminal, no_color.map(OsStr::new)),
                want,
                "terminal={terminal} NO_COLOR={no_color:?}"
            );
        }
    }
}
