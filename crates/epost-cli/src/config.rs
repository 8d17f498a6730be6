//! The node's configuration: one TOML file, typed with serde, validated at
//! load. Addresses, durations and paths are typed as the file is read
//! ([`value`]); the rest is checked by [`Config::validate_all`]. Every
//! error names the key and the bad value, so a user can fix the file
//! without reading code.
//!
//! Defaults come from the settings types of the crates that use them
//! (the node's storage, lease and identity settings, the overlay's, the
//! gateway's limits); only what no crate below decides (where to listen,
//! the engine, logging) is chosen here. [`template`] writes them out.

mod template;
mod value;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use epost_dht::addr::AddrError;
use epost_dht::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

pub(crate) use template::template;
use value::days_of;

/// Everything a node reads from `config.toml`. Every key is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    pub(crate) network: NetworkConfig,
    pub(crate) storage: StorageConfig,
    pub(crate) api: ApiConfig,
    pub(crate) identity: IdentityConfig,
    pub(crate) gateway: GatewayConfig,
    pub(crate) inbound: InboundConfig,
    pub(crate) dns: DnsConfig,
    pub(crate) outbound: OutboundConfig,
    pub(crate) log: LogConfig,
}

/// Where the node asks DNS questions (MX lookups of outbound mail, the
/// checks of inbound mail): these servers over UDP and TCP, or, empty,
/// the system's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct DnsConfig {
    #[serde(deserialize_with = "value::dns_nameservers")]
    pub(crate) nameservers: Vec<SocketAddr>,
}

/// Name servers a node may list: more are never asked in time.
const MAX_NAMESERVERS: usize = 8;

/// Checks of mail from outside at the MX (spec/internet.md section 6).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct InboundConfig {
    /// How far a sender domain's DMARC policy is honoured: `reject`
    /// (refuse what its `p=reject` covers), `quarantine` (deliver marked),
    /// `none` (only the Authentication-Results header).
    pub(crate) dmarc: epost_mta::inbound::DmarcMode,
    /// Check clients on loopback too (tests); off, they are this machine.
    pub(crate) check_loopback: bool,
}

/// The outbound queue: mail for other domains, kept in
/// `<data-dir>/outbound` until delivered or given up on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct OutboundConfig {
    /// Most messages queued; a submission beyond is refused with 451.
    pub(crate) max_messages: usize,
    /// Most bytes queued.
    #[serde(rename = "max_mib", with = "value::mib")]
    pub(crate) max_bytes: u64,
    /// The wait after the first failed attempt; doubled after each.
    #[serde(rename = "min_backoff_secs", with = "value::secs")]
    pub(crate) min_backoff: Duration,
    #[serde(rename = "max_backoff_secs", with = "value::secs")]
    pub(crate) max_backoff: Duration,
    /// A recipient not delivered this long after queueing fails (bounced).
    #[serde(rename = "lifetime_secs", with = "value::secs")]
    pub(crate) lifetime: Duration,
    /// ... and its sender is told of the delay once after this long (0: never).
    #[serde(rename = "delay_warning_secs", with = "value::secs")]
    pub(crate) delay_warning: Duration,
    /// Deliveries at once to one domain, and in all.
    pub(crate) per_domain: usize,
    pub(crate) total: usize,
    /// The port of other domains' MX hosts: 25 on the internet; another
    /// only in a lab or a test, whose "internet" listens elsewhere.
    pub(crate) mx_port: u16,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        let q = epost_node::outbound::QueueConfig::default();
        Self {
            max_messages: q.max_messages,
            max_bytes: q.max_bytes,
            min_backoff: q.schedule.min_backoff,
            max_backoff: q.schedule.max_backoff,
            lifetime: q.schedule.lifetime,
            delay_warning: q.schedule.delay_warning,
            per_domain: q.per_domain,
            total: q.total,
            mx_port: 25,
        }
    }
}

impl DnsConfig {
    /// The form epost-mta takes.
    pub(crate) fn to_mta(&self) -> epost_mta::outbound::DnsConfig {
        epost_mta::outbound::DnsConfig { nameservers: self.nameservers.clone() }
    }
}

/// The mail gateway: where mail clients connect. An empty address (`None`)
/// turns that protocol off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct GatewayConfig {
    #[serde(deserialize_with = "value::smtp_listen", serialize_with = "value::serialize_off")]
    pub(crate) smtp_listen: Option<SocketAddr>,
    #[serde(
        deserialize_with = "value::submission_listen",
        serialize_with = "value::serialize_off"
    )]
    pub(crate) submission_listen: Option<SocketAddr>,
    #[serde(deserialize_with = "value::imap_listen", serialize_with = "value::serialize_off")]
    pub(crate) imap_listen: Option<SocketAddr>,
    #[serde(deserialize_with = "value::pop3_listen", serialize_with = "value::serialize_off")]
    pub(crate) pop3_listen: Option<SocketAddr>,
    /// The implicit-TLS ports (RFC 8314): submission, IMAP and POP3 with
    /// TLS from the first byte.
    #[serde(
        deserialize_with = "value::submissions_listen",
        serialize_with = "value::serialize_off"
    )]
    pub(crate) submissions_listen: Option<SocketAddr>,
    #[serde(deserialize_with = "value::imaps_listen", serialize_with = "value::serialize_off")]
    pub(crate) imaps_listen: Option<SocketAddr>,
    #[serde(deserialize_with = "value::pop3s_listen", serialize_with = "value::serialize_off")]
    pub(crate) pop3s_listen: Option<SocketAddr>,
    /// Where `RCPT TO:<postmaster>` (no domain) goes; `None` (`""`):
    /// `postmaster@` a realm this node serves (spec/mail.md).
    #[serde(deserialize_with = "value::postmaster", serialize_with = "value::serialize_address")]
    pub(crate) postmaster: Option<epost_types::address::Address>,
    /// The name the gateway greets with and puts in its TLS certificate.
    pub(crate) hostname: String,
    /// PEM certificate chain and key; both `None` (`""`): a self-signed
    /// certificate is made on first start and kept in the data directory.
    #[serde(with = "value::path_or_none")]
    pub(crate) tls_cert: Option<PathBuf>,
    #[serde(with = "value::path_or_none")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Largest message accepted, in bytes.
    pub(crate) max_message_bytes: usize,
    /// "host:port" the outbound queue hands all mail for domains outside
    /// the trusted realms to; empty: the queue delivers to each domain's
    /// MX hosts itself.
    pub(crate) smart_host: String,
    /// How the smart host's connection is protected: "may" (STARTTLS when
    /// offered, else plaintext: a relay given as host:port before this key
    /// existed keeps working), "starttls", "implicit" or "none".
    pub(crate) smart_host_tls: epost_mta::transport::SmartHostTls,
    /// With "starttls" and "implicit": check the smart host's certificate
    /// against the system's roots and its name.
    pub(crate) smart_host_verify: bool,
    /// AUTH to the smart host (over TLS only): the user name, and a file
    /// whose first line is the password; both or neither.
    pub(crate) smart_host_user: String,
    #[serde(with = "value::path_or_none")]
    pub(crate) smart_host_password_file: Option<PathBuf>,
}

impl GatewayConfig {
    /// Every protocol's listen address, by its key; `None` where it is off.
    pub(crate) fn listeners(&self) -> [(&'static str, Option<SocketAddr>); 7] {
        [
            ("gateway.smtp_listen", self.smtp_listen),
            ("gateway.submission_listen", self.submission_listen),
            ("gateway.imap_listen", self.imap_listen),
            ("gateway.pop3_listen", self.pop3_listen),
            ("gateway.submissions_listen", self.submissions_listen),
            ("gateway.imaps_listen", self.imaps_listen),
            ("gateway.pop3s_listen", self.pop3s_listen),
        ]
    }

    /// The first listener on the same fixed address as an earlier one
    /// (port 0 never clashes: each gets its own port).
    fn clashing_listener(&self) -> Option<(&'static str, SocketAddr)> {
        let listeners = self.listeners();
        listeners.iter().enumerate().find_map(|(i, (key, addr))| {
            let addr = (*addr).filter(|a| a.port() != 0)?;
            listeners[..i].iter().any(|(_, other)| *other == Some(addr)).then_some((*key, addr))
        })
    }
}

/// Loopback, port 0: several nodes on one machine must not fight over ports.
const LOOPBACK_ANY_PORT: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            smtp_listen: Some(LOOPBACK_ANY_PORT),
            submission_listen: Some(LOOPBACK_ANY_PORT),
            imap_listen: Some(LOOPBACK_ANY_PORT),
            pop3_listen: Some(LOOPBACK_ANY_PORT),
            submissions_listen: Some(LOOPBACK_ANY_PORT),
            imaps_listen: Some(LOOPBACK_ANY_PORT),
            pop3s_listen: Some(LOOPBACK_ANY_PORT),
            postmaster: None,
            hostname: "localhost".into(),
            tls_cert: None,
            tls_key: None,
            max_message_bytes: epost_gateway::context::Limits::default().max_message,
            smart_host: String::new(),
            smart_host_tls: epost_mta::transport::SmartHostTls::May,
            smart_host_verify: true,
            smart_host_user: String::new(),
            smart_host_password_file: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct IdentityConfig {
    /// Realm keys trusted to certify users, per mail domain (`*`: any domain).
    pub(crate) trusted_realms: std::collections::BTreeMap<String, Vec<String>>,
    /// How often hosted users' certificates and presence are republished.
    #[serde(rename = "republish_interval_secs", with = "value::secs")]
    pub(crate) republish_interval: Duration,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        let node = epost_node::identity::IdentityConfig::default();
        Self { trusted_realms: Default::default(), republish_interval: node.republish_interval }
    }
}

impl IdentityConfig {
    /// The trust list, or the first bad entry.
    pub(crate) fn trusted(&self) -> Result<epost_types::identity::TrustedRealms, (String, String)> {
        use std::str::FromStr;
        let mut trust = epost_types::identity::TrustedRealms::new();
        for (domain, keys) in &self.trusted_realms {
            for key in keys {
                let parsed = epost_types::sign::VerifyingKey::from_str(key).map_err(|e| {
                    (format!("{domain} = {key:?}"), format!("not a realm key: {e}"))
                })?;
                trust
                    .trust(domain, parsed)
                    .map_err(|e| (quoted(domain), format!("not a mail domain: {e}")))?;
            }
        }
        Ok(trust)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct NetworkConfig {
    /// Addresses to listen on for peers.
    #[serde(deserialize_with = "value::network_listen")]
    pub(crate) listen: Vec<Multiaddr>,
    /// Peers to join through (each ends in /p2p/<peer id>).
    #[serde(deserialize_with = "value::network_bootstrap")]
    pub(crate) bootstrap: Vec<Multiaddr>,
    /// How long to wait at start for a first peer before running on alone.
    #[serde(rename = "bootstrap_timeout_secs", with = "value::secs")]
    pub(crate) bootstrap_timeout: Duration,
    /// Relay for peers behind NAT (circuit relay v2, within limits).
    pub(crate) relay: bool,
    /// Relays to hold reservations on while this node is behind NAT.
    pub(crate) relays: usize,
    /// AutoNAT also at private and loopback addresses (a LAN-only network).
    pub(crate) nat_probe_private: bool,
    /// Peers refused in either direction from the start.
    #[serde(deserialize_with = "value::network_ban", serialize_with = "value::serialize_peer_ids")]
    pub(crate) ban: Vec<PeerId>,
    /// Established connections peers may open to this node.
    pub(crate) max_incoming_connections: u32,
    /// Incoming connections still in their handshake.
    pub(crate) max_pending_incoming: u32,
    /// Connections with any one peer.
    pub(crate) max_connections_per_peer: u32,
    /// No new connection while the process uses more than this share of
    /// the machine's memory.
    pub(crate) max_memory_percent: u8,
    /// Fragment requests one peer may send a second (twice that at once).
    pub(crate) frag_requests_per_sec: u32,
    /// Notify requests one peer may send a second (twice that at once).
    pub(crate) notify_requests_per_sec: u32,
    /// Kademlia record puts one peer may send a second (twice that at once).
    pub(crate) kad_puts_per_sec: u32,
    /// How long a peer far over one of those rates is cut off.
    #[serde(rename = "flood_block_secs", with = "value::secs")]
    pub(crate) flood_block: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct StorageConfig {
    /// k: fragments any reader needs to rebuild an object.
    pub(crate) data_fragments: u8,
    /// m: extra fragments; an object survives the loss of any m.
    pub(crate) parity_fragments: u8,
    /// How long a stored object lives unless its owner renews it.
    #[serde(rename = "lease_days", with = "value::days")]
    pub(crate) lease: Duration,
    /// An object is renewed once this long has passed since its lease was
    /// last secured.
    #[serde(rename = "renew_after_days", with = "value::days")]
    pub(crate) renew_after: Duration,
    /// Time between renewal passes (one also runs at start).
    #[serde(rename = "renew_interval_secs", with = "value::secs")]
    pub(crate) renew_interval: Duration,
    /// Objects renewed per second at most.
    pub(crate) renew_rate: u32,
    /// Time between sweeps of expired records from the local store.
    #[serde(rename = "sweep_interval_secs", with = "value::secs")]
    pub(crate) sweep_interval: Duration,
    /// Plaintext chunk size for large objects, in bytes.
    pub(crate) chunk_size: usize,
    /// Local storage engine.
    pub(crate) backend: Backend,
    /// Time between maintenance (repair, hand-over, GC) passes.
    #[serde(rename = "repair_interval_secs", with = "value::secs")]
    pub(crate) repair_interval: Duration,
    /// How long a peer must be unreachable before its fragments are rebuilt.
    #[serde(rename = "grace_secs", with = "value::secs")]
    pub(crate) grace: Duration,
    /// Bytes of fragments this node keeps, for itself and others.
    #[serde(rename = "capacity_mib", with = "value::mib")]
    pub(crate) capacity: u64,
    /// Share of the capacity one peer may fill (percent).
    pub(crate) peer_quota_percent: u8,
    /// ...or at least this much.
    #[serde(rename = "peer_quota_floor_mib", with = "value::mib")]
    pub(crate) peer_quota_floor: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Backend {
    Redb,
    Sled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ApiConfig {
    /// Control API (HTTP+JSON); must be a loopback address.
    #[serde(deserialize_with = "value::api_listen")]
    pub(crate) listen: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct LogConfig {
    /// `text` or `json`.
    pub(crate) format: LogFormat,
    /// tracing env-filter directive, e.g. `info,epost=debug`. RUST_LOG overrides it.
    pub(crate) filter: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    Text,
    Json,
}

const MIN_CHUNK: usize = 64 * 1024;
/// Reservations a node behind NAT may hold (each costs a relay a slot).
const MAX_RELAYS: usize = 8;
const MAX_CHUNK: usize = 16 * 1024 * 1024;

impl Default for NetworkConfig {
    fn default() -> Self {
        // All interfaces of both IP versions, TCP and QUIC, a fixed port:
        // what a node others bootstrap through needs.
        let v4 = SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, 4100));
        let v6 = SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 4100));
        let dht = epost_dht::DhtConfig::default();
        let (connections, requests, reach) = (dht.connections, dht.requests, dht.reach);
        Self {
            listen: vec![
                epost_dht::addr::tcp_listen(v4),
                epost_dht::addr::quic_listen(v4),
                epost_dht::addr::tcp_listen(v6),
                epost_dht::addr::quic_listen(v6),
            ],
            bootstrap: Vec::new(),
            bootstrap_timeout: dht.bootstrap_timeout,
            relay: reach.serve_relay,
            relays: reach.reservations,
            nat_probe_private: reach.probe_private,
            ban: Vec::new(),
            max_incoming_connections: connections.max_incoming,
            max_pending_incoming: connections.max_pending_incoming,
            max_connections_per_peer: connections.max_per_peer,
            max_memory_percent: connections.max_memory_percent,
            frag_requests_per_sec: requests.frag.per_sec,
            notify_requests_per_sec: requests.notify.per_sec,
            kad_puts_per_sec: requests.kad_put.per_sec,
            flood_block: requests.flood_block,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        let node = epost_node::storage::StorageConfig::default();
        let lease = epost_node::lease::LeaseConfig::default();
        Self {
            data_fragments: node.k,
            parity_fragments: node.m,
            lease: node.lease,
            renew_after: lease.renew_after,
            renew_interval: lease.interval,
            renew_rate: lease.rate,
            sweep_interval: Duration::from_secs(600),
            chunk_size: node.chunk_size,
            backend: Backend::Redb,
            repair_interval: node.repair_interval,
            grace: node.grace,
            capacity: node.quota.capacity,
            peer_quota_percent: node.quota.peer_percent,
            peer_quota_floor: node.quota.peer_floor,
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self { listen: LOOPBACK_ANY_PORT }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self { format: LogFormat::Text, filter: "info".to_owned() }
    }
}

/// Why a config could not be used. Every variant names where to look.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    // Causes are sources, not repeated here: the binary prints the chain.
    #[error("cannot read {path}")]
    Read { path: String, source: std::io::Error },
    /// toml's message names the line and column; ours (in [`value`]) the
    /// key and the value. It has no cause of its own, so it is shown here.
    #[error("{path}: {}", error.to_string().trim_end())]
    Syntax { path: String, error: toml::de::Error },
    #[error("{path}: `{key}` = {value}: {reason}")]
    Invalid { path: String, key: &'static str, value: String, reason: String },
    #[error("{path}: `{key}` = {value:?}")]
    Address { path: String, key: &'static str, value: String, source: AddrError },
}

/// `--listen` flags, read as `network.listen` is.
pub(crate) fn listen_flags(values: &[String]) -> Result<Vec<Multiaddr>, ConfigError> {
    flags(values, "the --listen flag", "network.listen", epost_dht::addr::parse_listen)
}

/// `--bootstrap` flags, read as `network.bootstrap` is.
pub(crate) fn bootstrap_flags(values: &[String]) -> Result<Vec<Multiaddr>, ConfigError> {
    flags(values, "the --bootstrap flag", "network.bootstrap", epost_dht::addr::parse_dial)
}

fn flags(
    values: &[String],
    origin: &str,
    key: &'static str,
    parse: fn(&str) -> Result<Multiaddr, AddrError>,
) -> Result<Vec<Multiaddr>, ConfigError> {
    values
        .iter()
        .map(|value| {
            parse(value).map_err(|source| ConfigError::Address {
                path: origin.to_owned(),
                key,
                value: value.clone(),
                source,
            })
        })
        .collect()
}

impl Config {
    /// Reads and validates a config file.
    pub(crate) fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: shown.clone(), source })?;
        Self::parse(&text, &shown)
    }

    /// Parses and validates config text; `origin` names it in errors.
    pub(crate) fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text)
            .map_err(|error| ConfigError::Syntax { path: origin.to_owned(), error })?;
        config.validate_all(origin)?;
        Ok(config)
    }

    /// Validates a config assembled from the file, flags and code.
    pub(crate) fn validate_all(&self, origin: &str) -> Result<(), ConfigError> {
        self.validate().map_err(|bad| match bad.reason {
            Reason::Text(reason) => ConfigError::Invalid {
                path: origin.to_owned(),
                key: bad.key,
                value: bad.value,
                reason,
            },
            Reason::Address(source) => ConfigError::Address {
                path: origin.to_owned(),
                key: bad.key,
                value: bad.value,
                source,
            },
        })
    }

    /// The first value this config cannot run with. Addresses read from a
    /// file were checked as they were read; these checks also cover values
    /// set by flags or code, and the rules that span keys.
    fn validate(&self) -> Result<(), BadValue> {
        if self.network.listen.is_empty() {
            return Err(BadValue::new("network.listen", "[]", "at least one address is needed"));
        }
        for addr in &self.network.listen {
            epost_dht::addr::check_listen(addr)
                .map_err(|e| BadValue::address("network.listen", addr, e))?;
        }
        for addr in &self.network.bootstrap {
            epost_dht::addr::check_dial(addr)
                .map_err(|e| BadValue::address("network.bootstrap", addr, e))?;
        }
        if self.network.relays > MAX_RELAYS {
            return Err(BadValue::new(
                "network.relays",
                self.network.relays.to_string(),
                format!("at most {MAX_RELAYS} relay reservations"),
            ));
        }
        if !(1..=600).contains(&self.network.bootstrap_timeout.as_secs()) {
            return Err(BadValue::new(
                "network.bootstrap_timeout_secs",
                self.network.bootstrap_timeout.as_secs().to_string(),
                "must be between 1 and 600 seconds",
            ));
        }
        self.validate_defences()?;
        let s = &self.storage;
        if !(1..=86_400).contains(&s.repair_interval.as_secs()) {
            return Err(BadValue::new(
                "storage.repair_interval_secs",
                s.repair_interval.as_secs().to_string(),
                "must be between 1 and 86400 seconds",
            ));
        }
        if !(1..=604_800).contains(&s.grace.as_secs()) {
            return Err(BadValue::new(
                "storage.grace_secs",
                s.grace.as_secs().to_string(),
                "must be between 1 and 604800 seconds (a week)",
            ));
        }
        if !(1..=64).contains(&s.data_fragments) {
            return Err(BadValue::new(
                "storage.data_fragments",
                s.data_fragments.to_string(),
                "must be between 1 and 64",
            ));
        }
        if s.parity_fragments > 64 {
            return Err(BadValue::new(
                "storage.parity_fragments",
                s.parity_fragments.to_string(),
                "must be between 0 and 64",
            ));
        }
        let (lease_days, renew_after_days) = (days_of(s.lease), days_of(s.renew_after));
        if !(2..=3650).contains(&lease_days) {
            return Err(BadValue::new(
                "storage.lease_days",
                lease_days.to_string(),
                "must be between 2 and 3650 days",
            ));
        }
        if renew_after_days == 0 || renew_after_days >= lease_days {
            return Err(BadValue::new(
                "storage.renew_after_days",
                renew_after_days.to_string(),
                format!("must be at least 1 and below lease_days ({lease_days})"),
            ));
        }
        let window = (s.lease - s.renew_after).as_secs();
        let interval = s.renew_interval.as_secs();
        if !(60..=7 * 86_400).contains(&interval) || interval >= window {
            return Err(BadValue::new(
                "storage.renew_interval_secs",
                interval.to_string(),
                format!(
                    "must be between 60 and 604800 seconds and shorter than lease_days - renew_after_days ({window} s), or leases lapse between passes"
                ),
            ));
        }
        if !(1..=1_000_000).contains(&s.renew_rate) {
            return Err(BadValue::new(
                "storage.renew_rate",
                s.renew_rate.to_string(),
                "must be between 1 and 1000000 objects a second",
            ));
        }
        if !(10..=86_400).contains(&s.sweep_interval.as_secs()) {
            return Err(BadValue::new(
                "storage.sweep_interval_secs",
                s.sweep_interval.as_secs().to_string(),
                "must be between 10 and 86400 seconds",
            ));
        }
        if !(MIN_CHUNK..=MAX_CHUNK).contains(&s.chunk_size) {
            return Err(BadValue::new(
                "storage.chunk_size",
                s.chunk_size.to_string(),
                format!("must be between {MIN_CHUNK} and {MAX_CHUNK} bytes"),
            ));
        }
        if !self.api.listen.ip().is_loopback() {
            return Err(BadValue::new(
                "api.listen",
                quoted(&self.api.listen.to_string()),
                "the control API must listen on a loopback address (127.0.0.1 or ::1)",
            ));
        }
        if let Err((value, reason)) = self.identity.trusted() {
            return Err(BadValue::new("identity.trusted_realms", value, reason));
        }
        if !(10..=86_400).contains(&self.identity.republish_interval.as_secs()) {
            return Err(BadValue::new(
                "identity.republish_interval_secs",
                self.identity.republish_interval.as_secs().to_string(),
                "must be between 10 and 86400 seconds",
            ));
        }
        let g = &self.gateway;
        if g.hostname.is_empty() || epost_types::address::canonical_domain(&g.hostname).is_err() {
            return Err(BadValue::new(
                "gateway.hostname",
                quoted(&g.hostname),
                "must be a host name such as mail.example.org",
            ));
        }
        if let Some((key, addr)) = g.clashing_listener() {
            return Err(BadValue::new(
                key,
                quoted(&addr.to_string()),
                "another gateway protocol listens there already; give each its own port",
            ));
        }
        if g.tls_cert.is_some() != g.tls_key.is_some() {
            let shown = g.tls_cert.as_deref().map(|p| p.display().to_string()).unwrap_or_default();
            return Err(BadValue::new(
                "gateway.tls_cert",
                quoted(&shown),
                "tls_cert and tls_key go together: give both, or neither for a self-signed certificate",
            ));
        }
        if !g.smart_host.is_empty() {
            let ok = g.smart_host.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
            });
            if !ok {
                return Err(BadValue::new(
                    "gateway.smart_host",
                    quoted(&g.smart_host),
                    "must be host:port, e.g. \"smtp.example.org:25\", or \"\" for none",
                ));
            }
        }
        if g.smart_host_user.is_empty() != g.smart_host_password_file.is_none() {
            return Err(BadValue::new(
                "gateway.smart_host_user",
                quoted(&g.smart_host_user),
                "smart_host_user and smart_host_password_file go together: give both, or neither for no AUTH",
            ));
        }
        if !g.smart_host_user.is_empty()
            && matches!(
                g.smart_host_tls,
                epost_mta::transport::SmartHostTls::May | epost_mta::transport::SmartHostTls::None
            )
        {
            return Err(BadValue::new(
                "gateway.smart_host_tls",
                toml::Value::try_from(g.smart_host_tls).map(|v| v.to_string()).unwrap_or_default(),
                "a password is sent only over TLS: with smart_host_user set, use \"starttls\" or \"implicit\"",
            ));
        }
        if !(1024..=1024 * 1024 * 1024).contains(&g.max_message_bytes) {
            return Err(BadValue::new(
                "gateway.max_message_bytes",
                g.max_message_bytes.to_string(),
                "must be between 1 KiB and 1 GiB",
            ));
        }
        let servers = &self.dns.nameservers;
        if servers.len() > MAX_NAMESERVERS {
            return Err(BadValue::new(
                "dns.nameservers",
                servers.len().to_string(),
                format!("at most {MAX_NAMESERVERS} name servers"),
            ));
        }
        if let Some(bad) = servers.iter().find(|a| a.port() == 0 || a.ip().is_unspecified()) {
            return Err(BadValue::new(
                "dns.nameservers",
                quoted(&bad.to_string()),
                "a name server is an address and a port that can be asked, e.g. \"127.0.0.1:53\"",
            ));
        }
        self.validate_outbound()?;
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.filter) {
            return Err(BadValue::new("log.filter", quoted(&self.log.filter), e.to_string()));
        }
        Ok(())
    }
}

impl Config {
    fn validate_outbound(&self) -> Result<(), BadValue> {
        let o = &self.outbound;
        if o.mx_port == 0 {
            return Err(BadValue::new("outbound.mx_port", "0", "must be a port, 1 to 65535"));
        }
        if !(1..=1_000_000).contains(&o.max_messages) {
            return Err(BadValue::new(
                "outbound.max_messages",
                o.max_messages.to_string(),
                "must be between 1 and 1000000",
            ));
        }
        if o.max_bytes < self.gateway.max_message_bytes as u64 {
            return Err(BadValue::new(
                "outbound.max_mib",
                (o.max_bytes / (1024 * 1024)).to_string(),
                format!(
                    "must hold at least one message of gateway.max_message_bytes ({} bytes)",
                    self.gateway.max_message_bytes
                ),
            ));
        }
        let secs = |d: Duration| d.as_secs();
        if !(1..=86_400).contains(&secs(o.min_backoff)) {
            return Err(BadValue::new(
                "outbound.min_backoff_secs",
                secs(o.min_backoff).to_string(),
                "must be between 1 and 86400 seconds",
            ));
        }
        if o.max_backoff < o.min_backoff || secs(o.max_backoff) > 7 * 86_400 {
            return Err(BadValue::new(
                "outbound.max_backoff_secs",
                secs(o.max_backoff).to_string(),
                "must be at least min_backoff_secs and at most 604800 seconds (a week)",
            ));
        }
        if o.lifetime < o.min_backoff || secs(o.lifetime) > 30 * 86_400 {
            return Err(BadValue::new(
                "outbound.lifetime_secs",
                secs(o.lifetime).to_string(),
                "must be at least min_backoff_secs and at most 2592000 seconds (30 days)",
            ));
        }
        if o.delay_warning >= o.lifetime && !o.delay_warning.is_zero() {
            return Err(BadValue::new(
                "outbound.delay_warning_secs",
                secs(o.delay_warning).to_string(),
                "must be below lifetime_secs, or 0 for no delay warning",
            ));
        }
        if !(1..=1024).contains(&o.total) {
            return Err(BadValue::new(
                "outbound.total",
                o.total.to_string(),
                "must be between 1 and 1024",
            ));
        }
        if o.per_domain == 0 || o.per_domain > o.total {
            return Err(BadValue::new(
                "outbound.per_domain",
                o.per_domain.to_string(),
                format!("must be between 1 and total ({})", o.total),
            ));
        }
        Ok(())
    }

    /// The limits that keep a node facing the internet standing
    /// (`spec/security.md` section 3.6).
    fn validate_defences(&self) -> Result<(), BadValue> {
        let n = &self.network;
        if n.ban.len() > MAX_BANS {
            return Err(BadValue::new(
                "network.ban",
                format!("[{} peers]", n.ban.len()),
                format!("at most {MAX_BANS} peers"),
            ));
        }
        let counts: [(&'static str, u32, u32); 6] = [
            ("network.max_incoming_connections", n.max_incoming_connections, 100_000),
            ("network.max_pending_incoming", n.max_pending_incoming, 100_000),
            ("network.max_connections_per_peer", n.max_connections_per_peer, 64),
            ("network.frag_requests_per_sec", n.frag_requests_per_sec, 1_000_000),
            ("network.notify_requests_per_sec", n.notify_requests_per_sec, 1_000_000),
            ("network.kad_puts_per_sec", n.kad_puts_per_sec, 1_000_000),
        ];
        for (key, value, most) in counts {
            if !(1..=most).contains(&value) {
                return Err(BadValue::new(
                    key,
                    value.to_string(),
                    format!("must be between 1 and {most}"),
                ));
            }
        }
        if !(10..=100).contains(&n.max_memory_percent) {
            return Err(BadValue::new(
                "network.max_memory_percent",
                n.max_memory_percent.to_string(),
                "must be between 10 and 100 (percent of the machine's memory)",
            ));
        }
        if !(1..=86_400).contains(&n.flood_block.as_secs()) {
            return Err(BadValue::new(
                "network.flood_block_secs",
                n.flood_block.as_secs().to_string(),
                "must be between 1 and 86400 seconds",
            ));
        }
        let s = &self.storage;
        const MIB: u64 = 1024 * 1024;
        if s.capacity < 64 * MIB {
            return Err(BadValue::new(
                "storage.capacity_mib",
                (s.capacity / MIB).to_string(),
                "must be at least 64 MiB",
            ));
        }
        if !(1..=100).contains(&s.peer_quota_percent) {
            return Err(BadValue::new(
                "storage.peer_quota_percent",
                s.peer_quota_percent.to_string(),
                "must be between 1 and 100",
            ));
        }
        if s.peer_quota_floor > s.capacity {
            return Err(BadValue::new(
                "storage.peer_quota_floor_mib",
                (s.peer_quota_floor / MIB).to_string(),
                format!("must not exceed capacity_mib ({})", s.capacity / MIB),
            ));
        }
        Ok(())
    }
}

/// Peers a config may ban.
const MAX_BANS: usize = 10_000;

/// The first bad value [`Config::validate`] found.
struct BadValue {
    key: &'static str,
    value: String,
    reason: Reason,
}

enum Reason {
    Text(String),
    Address(AddrError),
}

impl BadValue {
    fn new(key: &'static str, value: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { key, value: value.into(), reason: Reason::Text(reason.into()) }
    }

    fn address(key: &'static str, addr: &Multiaddr, reason: AddrError) -> Self {
        Self { key, value: addr.to_string(), reason: Reason::Address(reason) }
    }
}

fn quoted(s: &str) -> String {
    format!("{s:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: &str = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";

    #[test]
    fn template_parses_to_defaults() {
        let text = template(&Config::default()).unwrap();
        assert_eq!(Config::parse(&text, "t").unwrap(), Config::default());
    }

    /// Fails when a key is added to the config but not to the template,
    /// or the template names a key the config lost.
    #[test]
    fn template_has_every_key_with_its_default() {
        let text = template(&Config::default()).unwrap();
        let written: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(written, toml::Table::try_from(Config::default()).unwrap());
    }

    #[test]
    fn template_writes_what_init_was_given() {
        let mut config = Config::default();
        config.network.listen =
            listen_flags(&["/ip4/127.0.0.1/tcp/0".into(), "/ip6/::1/tcp/5".into()]).unwrap();
        config.network.bootstrap =
            bootstrap_flags(&[format!("/ip4/127.0.0.1/tcp/4100/p2p/{PEER}")]).unwrap();
        let text = template(&config).unwrap();
        assert!(
            text.contains("listen = [\"/ip4/127.0.0.1/tcp/0\", \"/ip6/::1/tcp/5\"]\n"),
            "{text}"
        );
        assert_eq!(Config::parse(&text, "t").unwrap(), config);
    }

    #[test]
    fn defaults_are_the_settings_types_defaults() {
        let c = Config::default();
        let node = epost_node::storage::StorageConfig::default();
        let lease = epost_node::lease::LeaseConfig::default();
        assert_eq!((c.storage.data_fragments, c.storage.parity_fragments), (node.k, node.m));
        assert_eq!(c.storage.lease, node.lease);
        assert_eq!(c.storage.lease, lease.lease, "the storage and the lease book agree");
        assert_eq!(c.storage.renew_after, lease.renew_after);
        assert_eq!(c.storage.grace, node.grace);
        assert_eq!(c.network.bootstrap_timeout, epost_dht::DhtConfig::default().bootstrap_timeout);
        assert_eq!(c.network.listen[0].to_string(), "/ip4/0.0.0.0/tcp/4100");
        let dht = epost_dht::DhtConfig::default();
        assert_eq!(c.network.max_connections_per_peer, dht.connections.max_per_peer);
        assert_eq!(c.network.frag_requests_per_sec, dht.requests.frag.per_sec);
        assert_eq!(c.network.flood_block, dht.requests.flood_block);
        assert_eq!(c.storage.capacity, node.quota.capacity);
        let queue = epost_node::outbound::QueueConfig::default();
        assert_eq!(crate::settings::outbound_queue(&c).schedule, queue.schedule);
        assert_eq!((c.outbound.per_domain, c.outbound.total), (4, 16));
        c.validate_all("defaults").unwrap();
    }

    #[test]
    fn a_ban_list_reads_into_peer_ids() {
        let c = Config::parse(&format!("[network]\nban = [\"{PEER}\"]\n"), "t").unwrap();
        assert_eq!(c.network.ban, vec![PEER.parse::<PeerId>().unwrap()]);
        let shown = toml::to_string(&c).unwrap();
        assert!(shown.contains(&format!("ban = [\"{PEER}\"]")), "{shown}");
        assert_eq!(Config::parse(&shown, "t").unwrap(), c);
    }

    #[test]
    fn empty_file_is_all_defaults() {
        assert_eq!(Config::parse("", "t").unwrap(), Config::default());
    }

    #[test]
    fn empty_gateway_address_turns_it_off() {
        let c = Config::parse("[gateway]\nimap_listen = \"\"\npop3_listen = \"[::1]:0\"\n", "t")
            .unwrap();
        assert_eq!(c.gateway.imap_listen, None);
        assert_eq!(c.gateway.pop3_listen, Some("[::1]:0".parse().unwrap()));
        let shown = toml::to_string(&c).unwrap();
        assert!(shown.contains("imap_listen = \"\"\n"), "{shown}");
        assert_eq!(Config::parse(&shown, "t").unwrap(), c);
    }

    #[test]
    fn dns_name_servers_read_as_addresses() {
        let c = Config::parse("[dns]\nnameservers = [\"127.0.0.1:5353\", \"[::1]:53\"]\n", "t")
            .unwrap();
        let want: Vec<SocketAddr> =
            vec!["127.0.0.1:5353".parse().unwrap(), "[::1]:53".parse().unwrap()];
        assert_eq!(c.dns.nameservers, want);
        assert!(Config::default().dns.nameservers.is_empty());
    }

    #[test]
    fn implicit_tls_ports_and_the_postmaster_read_as_written() {
        let defaults = Config::default().gateway;
        assert_eq!(defaults.imaps_listen, Some(LOOPBACK_ANY_PORT));
        assert_eq!(defaults.postmaster, None);
        let c = Config::parse(
            "[gateway]\nsubmissions_listen = \"0.0.0.0:465\"\nimaps_listen = \"off\"\npop3s_listen = \"\"\npostmaster = \"Admin@Example.org\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.gateway.submissions_listen, Some("0.0.0.0:465".parse().unwrap()));
        assert_eq!((c.gateway.imaps_listen, c.gateway.pop3s_listen), (None, None));
        assert_eq!(c.gateway.postmaster.as_ref().map(|a| a.as_str()), Some("Admin@example.org"));
        let shown = toml::to_string(&c).unwrap();
        assert!(shown.contains("imaps_listen = \"\"\n"), "{shown}");
        assert_eq!(Config::parse(&shown, "t").unwrap(), c);
        // Two protocols on port 0 of one address each get a port.
        assert!(Config::parse("[gateway]\nimaps_listen = \"127.0.0.1:0\"\n", "t").is_ok());
    }

    #[test]
    fn typed_values_read_as_the_file_says() {
        let c = Config::parse(
            "[storage]\nlease_days = 90\ngrace_secs = 7\n[gateway]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.storage.lease, Duration::from_secs(90 * 86_400));
        assert_eq!(c.storage.grace, Duration::from_secs(7));
        assert_eq!(c.gateway.tls_cert.as_deref(), Some(Path::new("c.pem")));
        assert_eq!(Config::default().gateway.tls_cert, None);
    }

    fn invalid(text: &str) -> String {
        Config::parse(text, "config.toml").unwrap_err().to_string()
    }

    #[test]
    fn errors_name_key_and_value() {
        // (file, what the message must hold)
        let cases: &[(&str, &[&str])] = &[
            ("[storage]\ndata_fragments = 0\n", &["storage.data_fragments", "= 0"]),
            ("[inbound]\ndmarc = \"drop\"\n", &["dmarc", "drop", "reject"]),
            ("[dns]\nnameservers = [\"127.0.0.1:0\"]\n", &["dns.nameservers", "127.0.0.1:0"]),
            ("[dns]\nnameservers = [\"ns.example\"]\n", &["nameservers", "line 2"]),
            ("[storage]\nlease_days = 1\n", &["storage.lease_days", "= 1"]),
            ("[storage]\nrenew_after_days = 180\n", &["storage.renew_after_days", "180"]),
            ("[storage]\ngrace_secs = 0\n", &["storage.grace_secs", "= 0"]),
            ("[api]\nlisten = \"0.0.0.0:80\"\n", &["api.listen", "0.0.0.0:80", "loopback"]),
            ("[api]\nlisten = \"localhost\"\n", &["api.listen", "\"localhost\"", "IP:PORT"]),
            ("[network]\nlisten = []\n", &["network.listen", "at least one"]),
            (
                "[network]\nlisten = [\"/ip4/1.2.3/tcp/1\"]\n",
                &["network.listen", "/ip4/1.2.3/tcp/1", "\"/ip4/1.2.3\" is not valid", "line 2"],
            ),
            ("[network]\nlisten = [\"/ip4/127.0.0.1/tcp/99999\"]\n", &["network.listen", "99999"]),
            ("[network]\nlisten = [\"ip4/127.0.0.1/tcp/0\"]\n", &["network.listen", "'/'"]),
            ("[network]\nlisten = [\"/ip4/127.0.0.1\"]\n", &["network.listen", "/tcp/<port>"]),
            (
                "[network]\nlisten = [\"/ip4/127.0.0.1/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN\"]\n",
                &["network.listen", "must not name a peer"],
            ),
            (
                "[network]\nbootstrap = [\"/ip4/127.0.0.1/tcp/1\"]\n",
                &["network.bootstrap", "/p2p/"],
            ),
            (
                "[network]\nbootstrap = [\"/ip4/127.0.0.1/tcp/1/p2p/short\"]\n",
                &["network.bootstrap", "/p2p/short"],
            ),
            (
                "[gateway]\nsmtp_listen = \"127.0.0.1\"\n",
                &["gateway.smtp_listen", "\"127.0.0.1\"", "\"\" or \"off\" to turn it off"],
            ),
            ("[gateway]\npop3_listen = \"*:110\"\n", &["gateway.pop3_listen", "*:110"]),
            ("[gateway]\nimaps_listen = \"993\"\n", &["gateway.imaps_listen", "\"993\""]),
            (
                "[gateway]\nimap_listen = \"127.0.0.1:993\"\nimaps_listen = \"127.0.0.1:993\"\n",
                &["gateway.imaps_listen", "127.0.0.1:993", "own port"],
            ),
            ("[gateway]\npostmaster = \"root\"\n", &["gateway.postmaster", "\"root\"", "'@'"]),
            ("[gateway]\ntls_cert = \"c.pem\"\n", &["gateway.tls_cert", "c.pem", "go together"]),
            ("[gateway]\nsmart_host = \"mx\"\n", &["gateway.smart_host", "\"mx\""]),
            ("[gateway]\nsmart_host_user = \"u\"\n", &["gateway.smart_host_user", "go together"]),
            (
                "[gateway]\nsmart_host_user = \"u\"\nsmart_host_password_file = \"p\"\n",
                &["gateway.smart_host_tls", "\"may\"", "only over TLS"],
            ),
            ("[gateway]\nsmart_host_tls = \"sometimes\"\n", &["smart_host_tls", "sometimes"]),
            ("[outbound]\nmx_port = 0\n", &["outbound.mx_port", "1 to 65535"]),
            (
                "[identity]\ntrusted_realms = { \"example.org\" = [\"nope\"] }\n",
                &["identity.trusted_realms", "nope"],
            ),
            ("[log]\nfilter = \"info,[\"\n", &["log.filter"]),
            (
                "[dns]\nnameservers = [\"10.0.0.1\"]\n",
                &["dns.nameservers", "\"10.0.0.1\"", "IP:PORT"],
            ),
            ("[dns]\nnameservers = [\"10.0.0.1:0\"]\n", &["dns.nameservers", "10.0.0.1:0"]),
            ("[dns]\nnameservers = [\"0.0.0.0:53\"]\n", &["dns.nameservers", "0.0.0.0:53"]),
            (
                "[network]\nban = [\"12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN\", \"not-a-peer\"]\n",
                &["network.ban", "\"not-a-peer\"", "not a peer id"],
            ),
            (
                "[network]\nmax_connections_per_peer = 0\n",
                &["network.max_connections_per_peer", "= 0"],
            ),
            ("[network]\nfrag_requests_per_sec = 0\n", &["network.frag_requests_per_sec", "= 0"]),
            ("[network]\nmax_memory_percent = 5\n", &["network.max_memory_percent", "= 5"]),
            ("[network]\nflood_block_secs = 0\n", &["network.flood_block_secs", "= 0"]),
            ("[storage]\ncapacity_mib = 1\n", &["storage.capacity_mib", "= 1", "64 MiB"]),
            ("[storage]\npeer_quota_percent = 0\n", &["storage.peer_quota_percent", "= 0"]),
            (
                "[storage]\ncapacity_mib = 100\npeer_quota_floor_mib = 200\n",
                &["storage.peer_quota_floor_mib", "= 200", "capacity_mib (100)"],
            ),
            ("[outbound]\nmax_messages = 0\n", &["outbound.max_messages", "= 0"]),
            ("[outbound]\nmax_mib = 1\n", &["outbound.max_mib", "= 1", "max_message_bytes"]),
            ("[outbound]\nmin_backoff_secs = 0\n", &["outbound.min_backoff_secs", "= 0"]),
            (
                "[outbound]\nmax_backoff_secs = 10\n",
                &["outbound.max_backoff_secs", "= 10", "min_backoff_secs"],
            ),
            ("[outbound]\nlifetime_secs = 100\n", &["outbound.lifetime_secs", "= 100"]),
            (
                "[outbound]\nlifetime_secs = 3600\ndelay_warning_secs = 3600\n",
                &["outbound.delay_warning_secs", "= 3600", "below lifetime_secs"],
            ),
            ("[outbound]\ntotal = 0\n", &["outbound.total", "= 0"]),
            ("[outbound]\nper_domain = 17\n", &["outbound.per_domain", "= 17", "total (16)"]),
        ];
        for (text, needles) in cases {
            let e = invalid(text);
            for needle in *needles {
                assert!(e.contains(needle), "{text:?}: {e:?} lacks {needle:?}");
            }
        }
    }

    #[test]
    fn flags_name_the_key_they_stand_for() {
        // As the binary prints it: the error, then its causes.
        let shown = |e: ConfigError| format!("{:#}", anyhow::Error::from(e));
        let e = shown(listen_flags(&["/ip4/127.0.0.1/tcp/99999".into()]).unwrap_err());
        assert_eq!(
            e,
            "the --listen flag: `network.listen` = \"/ip4/127.0.0.1/tcp/99999\": \"/tcp/99999\" is not valid: number too large to fit in target type"
        );
        let e = shown(bootstrap_flags(&["/ip4/127.0.0.1/tcp/1".into()]).unwrap_err());
        assert!(e.contains("network.bootstrap") && e.contains("/p2p/<peer id>"), "{e}");
    }

    #[test]
    fn addresses_set_in_code_are_checked_too() {
        let mut config = Config::default();
        config.network.bootstrap = config.network.listen.clone();
        let e = format!("{:#}", anyhow::Error::from(config.validate_all("t").unwrap_err()));
        assert!(e.contains("network.bootstrap") && e.contains("/p2p/<peer id>"), "{e}");
    }

    #[test]
    fn unknown_and_mistyped_keys_are_named() {
        let e = invalid("[storage]\nparity = 3\n");
        assert!(e.contains("parity"), "{e}");
        let e = invalid("[storage]\nlease_days = \"forever\"\n");
        assert!(e.contains("lease_days"), "{e}");
        let e = invalid("[storage]\nbackend = \"rocksdb\"\n");
        assert!(e.contains("rocksdb"), "{e}");
    }
}
