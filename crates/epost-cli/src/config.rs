//! The node's configuration: one TOML file, typed with serde, validated at
//! load. Every error names the key and the bad value, so a user can fix the
//! file without reading code.

use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::multiaddr;

/// Everything a node reads from `config.toml`. Every key is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Config {
    pub(crate) network: NetworkConfig,
    pub(crate) storage: StorageConfig,
    pub(crate) api: ApiConfig,
    pub(crate) identity: IdentityConfig,
    pub(crate) gateway: GatewayConfig,
    pub(crate) log: LogConfig,
}

/// The mail gateway: where mail clients connect. An empty address turns
/// that protocol off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct GatewayConfig {
    pub(crate) smtp_listen: String,
    pub(crate) submission_listen: String,
    pub(crate) imap_listen: String,
    pub(crate) pop3_listen: String,
    /// The name the gateway greets with and puts in its TLS certificate.
    pub(crate) hostname: String,
    /// PEM certificate chain and key; both empty: a self-signed certificate
    /// is made on first start and kept in the data directory.
    pub(crate) tls_cert: String,
    pub(crate) tls_key: String,
    /// Largest message accepted, in bytes.
    pub(crate) max_message_bytes: u64,
    /// "host:port" that takes authenticated users' mail for domains outside
    /// the trusted realms; empty: such mail is refused.
    pub(crate) smart_host: String,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            smtp_listen: "127.0.0.1:0".into(),
            submission_listen: "127.0.0.1:0".into(),
            imap_listen: "127.0.0.1:0".into(),
            pop3_listen: "127.0.0.1:0".into(),
            hostname: "localhost".into(),
            tls_cert: String::new(),
            tls_key: String::new(),
            max_message_bytes: 25 * 1024 * 1024,
            smart_host: String::new(),
        }
    }
}

impl GatewayConfig {
    /// Each protocol's listen address, `None` when turned off, or the
    /// first bad one as (key, value, reason).
    pub(crate) fn listeners(&self) -> Result<[Option<SocketAddr>; 4], BadValue> {
        let parse = |key: &'static str, text: &str| {
            if text.is_empty() {
                return Ok(None);
            }
            text.parse::<SocketAddr>().map(Some).map_err(|_| {
                BadValue::new(
                    key,
                    quoted(text),
                    "must be IP:PORT (port 0 picks one), or \"\" to turn it off",
                )
            })
        };
        Ok([
            parse("gateway.smtp_listen", &self.smtp_listen)?,
            parse("gateway.submission_listen", &self.submission_listen)?,
            parse("gateway.imap_listen", &self.imap_listen)?,
            parse("gateway.pop3_listen", &self.pop3_listen)?,
        ])
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct IdentityConfig {
    /// Realm keys trusted to certify users, per mail domain (`*`: any domain).
    pub(crate) trusted_realms: std::collections::BTreeMap<String, Vec<String>>,
    /// Seconds between republishing hosted users' certificates and presence.
    pub(crate) republish_interval_secs: u64,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self { trusted_realms: Default::default(), republish_interval_secs: 600 }
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
    /// libp2p multiaddrs to listen on.
    pub(crate) listen: Vec<String>,
    /// Peers to join through (multiaddrs ending in /p2p/<peer id>).
    pub(crate) bootstrap: Vec<String>,
    /// How long to wait for a first bootstrap peer before failing.
    pub(crate) bootstrap_timeout_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct StorageConfig {
    /// k: fragments any reader needs to rebuild an object.
    pub(crate) data_fragments: u8,
    /// m: extra fragments; an object survives the loss of any m.
    pub(crate) parity_fragments: u8,
    /// How long a stored object lives unless its owner renews it.
    pub(crate) lease_days: u32,
    /// An object is renewed once this many days have passed since its
    /// lease was last secured.
    pub(crate) renew_after_days: u32,
    /// Seconds between renewal passes (one also runs at start).
    pub(crate) renew_interval_secs: u64,
    /// Objects renewed per second at most.
    pub(crate) renew_rate: u32,
    /// Seconds between sweeps of expired records from the local store.
    pub(crate) sweep_interval_secs: u64,
    /// Plaintext chunk size for large objects, in bytes.
    pub(crate) chunk_size: u32,
    /// Local storage engine.
    pub(crate) backend: Backend,
    /// Seconds between maintenance (repair, hand-over, GC) passes.
    pub(crate) repair_interval_secs: u64,
    /// Seconds a peer must be unreachable before its fragments are rebuilt.
    pub(crate) grace_secs: u64,
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

pub(crate) const DEFAULT_LISTEN: &str = "/ip4/0.0.0.0/tcp/4100";
const MIN_CHUNK: u32 = 64 * 1024;
const MAX_CHUNK: u32 = 16 * 1024 * 1024;

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            listen: vec![DEFAULT_LISTEN.to_owned()],
            bootstrap: Vec::new(),
            bootstrap_timeout_secs: 10,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_fragments: 4,
            parity_fragments: 4,
            lease_days: 180,
            renew_after_days: 30,
            renew_interval_secs: 86_400,
            renew_rate: 2000,
            sweep_interval_secs: 600,
            chunk_size: 1024 * 1024,
            backend: Backend::Redb,
            repair_interval_secs: 60,
            grace_secs: 300,
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self { listen: SocketAddr::from(([127, 0, 0, 1], 0)) }
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
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Syntax { path: String, message: String },
    #[error("{path}: `{key}` = {value}: {reason}")]
    Invalid { path: String, key: &'static str, value: String, reason: String },
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
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: origin.to_owned(),
            // toml's message already names the key, line and column.
            message: e.to_string().trim_end().to_owned(),
        })?;
        config.validate_all(origin)?;
        Ok(config)
    }

    /// Validates a config assembled from the file and flags.
    pub(crate) fn validate_all(&self, origin: &str) -> Result<(), ConfigError> {
        self.validate().map_err(|bad| ConfigError::Invalid {
            path: origin.to_owned(),
            key: bad.key,
            value: bad.value,
            reason: bad.reason,
        })
    }

    fn validate(&self) -> Result<(), BadValue> {
        if self.network.listen.is_empty() {
            return Err(BadValue::new("network.listen", "[]", "at least one address is needed"));
        }
        for addr in &self.network.listen {
            multiaddr::validate_listen(addr)
                .map_err(|reason| BadValue::new("network.listen", quoted(addr), reason))?;
        }
        for addr in &self.network.bootstrap {
            multiaddr::validate_dial(addr)
                .map_err(|reason| BadValue::new("network.bootstrap", quoted(addr), reason))?;
        }
        if !(1..=600).contains(&self.network.bootstrap_timeout_secs) {
            return Err(BadValue::new(
                "network.bootstrap_timeout_secs",
                self.network.bootstrap_timeout_secs.to_string(),
                "must be between 1 and 600 seconds",
            ));
        }
        let s = &self.storage;
        if !(1..=86_400).contains(&s.repair_interval_secs) {
            return Err(BadValue::new(
                "storage.repair_interval_secs",
                s.repair_interval_secs.to_string(),
                "must be between 1 and 86400 seconds",
            ));
        }
        if !(1..=604_800).contains(&s.grace_secs) {
            return Err(BadValue::new(
                "storage.grace_secs",
                s.grace_secs.to_string(),
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
        if !(2..=3650).contains(&s.lease_days) {
            return Err(BadValue::new(
                "storage.lease_days",
                s.lease_days.to_string(),
                "must be between 2 and 3650 days",
            ));
        }
        if s.renew_after_days == 0 || s.renew_after_days >= s.lease_days {
            return Err(BadValue::new(
                "storage.renew_after_days",
                s.renew_after_days.to_string(),
                format!("must be at least 1 and below lease_days ({})", s.lease_days),
            ));
        }
        let window = u64::from(s.lease_days - s.renew_after_days) * 86_400;
        if !(60..=7 * 86_400).contains(&s.renew_interval_secs) || s.renew_interval_secs >= window {
            return Err(BadValue::new(
                "storage.renew_interval_secs",
                s.renew_interval_secs.to_string(),
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
        if !(10..=86_400).contains(&s.sweep_interval_secs) {
            return Err(BadValue::new(
                "storage.sweep_interval_secs",
                s.sweep_interval_secs.to_string(),
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
        if !(10..=86_400).contains(&self.identity.republish_interval_secs) {
            return Err(BadValue::new(
                "identity.republish_interval_secs",
                self.identity.republish_interval_secs.to_string(),
                "must be between 10 and 86400 seconds",
            ));
        }
        self.gateway.listeners()?;
        if self.gateway.hostname.is_empty()
            || epost_types::address::canonical_domain(&self.gateway.hostname).is_err()
        {
            return Err(BadValue::new(
                "gateway.hostname",
                quoted(&self.gateway.hostname),
                "must be a host name such as mail.example.org",
            ));
        }
        if self.gateway.tls_cert.is_empty() != self.gateway.tls_key.is_empty() {
            return Err(BadValue::new(
                "gateway.tls_cert",
                quoted(&self.gateway.tls_cert),
                "tls_cert and tls_key go together: give both, or neither for a self-signed certificate",
            ));
        }
        if !self.gateway.smart_host.is_empty() {
            let ok = self.gateway.smart_host.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
            });
            if !ok {
                return Err(BadValue::new(
                    "gateway.smart_host",
                    quoted(&self.gateway.smart_host),
                    "must be host:port, e.g. \"smtp.example.org:25\", or \"\" for none",
                ));
            }
        }
        if !(1024..=1024 * 1024 * 1024).contains(&self.gateway.max_message_bytes) {
            return Err(BadValue::new(
                "gateway.max_message_bytes",
                self.gateway.max_message_bytes.to_string(),
                "must be between 1 KiB and 1 GiB",
            ));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.filter) {
            return Err(BadValue::new("log.filter", quoted(&self.log.filter), e.to_string()));
        }
        Ok(())
    }
}

pub(crate) struct BadValue {
    key: &'static str,
    value: String,
    reason: String,
}

impl BadValue {
    fn new(key: &'static str, value: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { key, value: value.into(), reason: reason.into() }
    }
}

fn quoted(s: &str) -> String {
    format!("{s:?}")
}

/// The file `init` writes: every key with its default and what it means.
pub(crate) fn template(listen: &[String], bootstrap: &[String]) -> String {
    let list = |items: &[String]| {
        let quoted: Vec<String> = items.iter().map(|s| quoted(s)).collect();
        format!("[{}]", quoted.join(", "))
    };
    format!(
        r#"# epost node configuration. Every key is optional; the values shown
# are the defaults unless `epost init` was given others.

[network]
# libp2p multiaddrs to listen on for peers. /ip4/127.0.0.1/tcp/0 lets the OS
# pick a port (the chosen one is written to node.json when the node runs).
listen = {listen}
# Peers to join the overlay through: multiaddrs ending in /p2p/<peer id>.
bootstrap = {bootstrap}
# Seconds to wait for a first bootstrap peer before `node run` fails.
bootstrap_timeout_secs = 10

[storage]
# Each object is erasure-coded into data_fragments (k) + parity_fragments (m)
# fragments on the k+m nodes closest to its id; any k rebuild it, so it
# survives the loss of any m. 4+4 stores 2x the object size.
data_fragments = 4
parity_fragments = 4
# Objects expire unless their owner renews them; deletion is non-renewal.
# The node renews, for the users it hosts, everything their mail and logs
# still reference, once renew_after_days have passed since its lease was
# last secured, in passes every renew_interval_secs (and at start), at most
# renew_rate objects a second. So everything always has at least
# lease_days - renew_after_days - 1 day left: with the defaults a node
# switched off for 149 days still finds every message when it returns
# (see spec/store.md). Deleted mail stays readable on holders for up to
# lease_days after its last renewal.
lease_days = 180
renew_after_days = 30
renew_interval_secs = 86400
renew_rate = 2000
# Seconds between sweeps of expired records (Kademlia records, received
# notifications, seen nonces) from the local store.
sweep_interval_secs = 600
# Large plaintexts are split into chunks of this many bytes (64 KiB to 16 MiB).
chunk_size = 1048576
# Local storage engine: "redb" (default) or "sled" (needs the `sled` build feature).
backend = "redb"
# Seconds between maintenance passes (repair, hand-over, garbage collection).
repair_interval_secs = 60
# A peer must be unreachable this many seconds before its fragments are
# rebuilt elsewhere, so a restart does not cause a repair storm.
grace_secs = 300

[api]
# The control API used by the `epost` CLI (HTTP+JSON, token in the data dir).
# Loopback only; port 0 lets the OS pick one.
listen = "127.0.0.1:0"

[identity]
# Realm keys this node trusts to certify users (like a CA bundle): per mail
# domain, a list of keys as `epost realm init` prints them; "*" for keys
# trusted for any domain. `epost realm trust` adds to this at run time.
# Example: trusted_realms = {{ "example.org" = ["abcd..."] }}
trusted_realms = {{}}
# Seconds between republishing hosted users' certificates and presence.
republish_interval_secs = 600

[gateway]
# Where mail clients connect (host:port; port 0 lets the OS pick, and the
# bound addresses go into node.json; "" turns a protocol off). Loopback by
# default: several nodes on one machine must not fight over ports. For a
# real server use e.g. "0.0.0.0:25", "0.0.0.0:587", "0.0.0.0:143", "0.0.0.0:110".
smtp_listen = "127.0.0.1:0"
submission_listen = "127.0.0.1:0"
imap_listen = "127.0.0.1:0"
pop3_listen = "127.0.0.1:0"
# The name in greetings and in the self-signed certificate.
hostname = "localhost"
# PEM certificate chain and private key for STARTTLS; leave both empty for a
# self-signed certificate made on first start (kept in the data directory).
tls_cert = ""
tls_key = ""
# Largest message accepted (SMTP SIZE, IMAP APPEND), in bytes.
max_message_bytes = 26214400
# Where authenticated users' mail for domains outside the trusted realms
# goes ("host:port"); empty: such mail is refused with a clear reply.
smart_host = ""

[log]
# "text" or "json".
format = "text"
# tracing filter directive; the RUST_LOG environment variable overrides it.
filter = "info"
"#,
        listen = list(listen),
        bootstrap = list(bootstrap),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parses_to_defaults() {
        let text = template(&[DEFAULT_LISTEN.to_owned()], &[]);
        assert_eq!(Config::parse(&text, "t").unwrap(), Config::default());
    }

    #[test]
    fn empty_file_is_all_defaults() {
        assert_eq!(Config::parse("", "t").unwrap(), Config::default());
    }

    fn invalid(text: &str) -> String {
        Config::parse(text, "config.toml").unwrap_err().to_string()
    }

    #[test]
    fn errors_name_key_and_value() {
        let e = invalid("[storage]\ndata_fragments = 0\n");
        assert!(e.contains("storage.data_fragments") && e.contains("= 0"), "{e}");
        let e = invalid("[api]\nlisten = \"0.0.0.0:80\"\n");
        assert!(e.contains("api.listen") && e.contains("0.0.0.0:80"), "{e}");
        let e = invalid("[network]\nlisten = [\"/ip4/1.2.3/tcp/1\"]\n");
        assert!(e.contains("network.listen") && e.contains("/ip4/1.2.3/tcp/1"), "{e}");
        let e = invalid("[network]\nbootstrap = [\"/ip4/127.0.0.1/tcp/1\"]\n");
        assert!(e.contains("network.bootstrap") && e.contains("/p2p/"), "{e}");
        let e = invalid("[identity]\ntrusted_realms = { \"example.org\" = [\"nope\"] }\n");
        assert!(e.contains("identity.trusted_realms") && e.contains("nope"), "{e}");
        let e = invalid("[log]\nfilter = \"info,[\"\n");
        assert!(e.contains("log.filter"), "{e}");
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
