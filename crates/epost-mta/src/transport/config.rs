//! How the transport is set up: our EHLO name, the timeouts of each SMTP
//! stage, the port of MX delivery, the smart host and its TLS, the DNS
//! servers. Plain values with serde shapes the node's configuration file
//! maps onto; [`TransportConfig::validate`] says what is wrong with them,
//! naming the key.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::outbound::DnsConfig;

/// Everything [`super::SmtpTransport::new`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportConfig {
    /// Our name in `EHLO`: the node's public host name (a name whose A
    /// record points back at us is what receivers like to see).
    pub hostname: String,
    /// The port of MX delivery: 25 everywhere on the internet. Another
    /// port is for tests and labs (a real Postfix on an unprivileged port).
    pub mx_port: u16,
    /// How many addresses one attempt tries at most, over all MX hosts
    /// (Postfix's `smtp_mx_address_limit`): a domain with twenty MX hosts
    /// that all time out must not hold a worker for hours.
    pub max_addresses: usize,
    pub timeouts: Timeouts,
    /// When set, all mail to other domains goes there instead of to MX hosts.
    pub smart_host: Option<SmartHost>,
    pub dns: DnsConfig,
}

impl TransportConfig {
    /// Postfix's defaults, with `hostname` as our EHLO name.
    pub fn new(hostname: impl Into<String>) -> Self {
        Self {
            hostname: hostname.into(),
            mx_port: 25,
            max_addresses: 5,
            timeouts: Timeouts::default(),
            smart_host: None,
            dns: DnsConfig::default(),
        }
    }

    /// Checks the values a file could have got wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let h = &self.hostname;
        if h.is_empty() || h.len() > 255 || h.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(ConfigError::Hostname(h.clone()));
        }
        if self.mx_port == 0 {
            return Err(ConfigError::Zero("mx_port"));
        }
        if self.max_addresses == 0 {
            return Err(ConfigError::Zero("max_addresses"));
        }
        self.timeouts.validate()?;
        if let Some(smart) = &self.smart_host {
            smart.validate()?;
        }
        Ok(())
    }
}

/// How long each stage of an SMTP session may take. The defaults are
/// Postfix's (`smtp_*_timeout`), which are RFC 5321 4.5.3.2's minimums
/// where the RFC gives one. In a file: whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    /// TCP connect (and the TLS handshake of implicit TLS): 30 s.
    #[serde(with = "secs")]
    pub connect: Duration,
    /// The `220` greeting: 5 min.
    #[serde(with = "secs")]
    pub greeting: Duration,
    /// `EHLO`/`HELO`: 5 min.
    #[serde(with = "secs")]
    pub ehlo: Duration,
    /// `STARTTLS` and its handshake: 5 min.
    #[serde(with = "secs")]
    pub starttls: Duration,
    /// `AUTH`, each step: 5 min.
    #[serde(with = "secs")]
    pub auth: Duration,
    /// `MAIL FROM`: 5 min.
    #[serde(with = "secs")]
    pub mail: Duration,
    /// Each `RCPT TO`: 5 min.
    #[serde(with = "secs")]
    pub rcpt: Duration,
    /// `DATA` until `354`: 2 min.
    #[serde(with = "secs")]
    pub data_init: Duration,
    /// Each block of the message written: 3 min.
    #[serde(with = "secs")]
    pub data_block: Duration,
    /// The final `.` until the reply: 10 min (the receiver may scan the
    /// message before it answers; giving up early risks a duplicate).
    #[serde(with = "secs")]
    pub data_done: Duration,
    /// `QUIT`: 5 min in Postfix, but nothing hangs on its answer, so 30 s.
    #[serde(with = "secs")]
    pub quit: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        let min = |m: u64| Duration::from_secs(60 * m);
        Self {
            connect: Duration::from_secs(30),
            greeting: min(5),
            ehlo: min(5),
            starttls: min(5),
            auth: min(5),
            mail: min(5),
            rcpt: min(5),
            data_init: min(2),
            data_block: min(3),
            data_done: min(10),
            quit: Duration::from_secs(30),
        }
    }
}

impl Timeouts {
    /// Every stage `d` long (tests).
    pub fn all(d: Duration) -> Self {
        Self {
            connect: d,
            greeting: d,
            ehlo: d,
            starttls: d,
            auth: d,
            mail: d,
            rcpt: d,
            data_init: d,
            data_block: d,
            data_done: d,
            quit: d,
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let named = [
            ("timeouts.connect", self.connect),
            ("timeouts.greeting", self.greeting),
            ("timeouts.ehlo", self.ehlo),
            ("timeouts.starttls", self.starttls),
            ("timeouts.auth", self.auth),
            ("timeouts.mail", self.mail),
            ("timeouts.rcpt", self.rcpt),
            ("timeouts.data_init", self.data_init),
            ("timeouts.data_block", self.data_block),
            ("timeouts.data_done", self.data_done),
            ("timeouts.quit", self.quit),
        ];
        match named.into_iter().find(|(_, d)| d.is_zero()) {
            Some((key, _)) => Err(ConfigError::Zero(key)),
            None => Ok(()),
        }
    }
}

/// The relay all foreign mail goes to when one is configured.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmartHost {
    /// A host name or an IP address.
    pub host: String,
    pub port: u16,
    /// With `password`: `AUTH PLAIN` or `LOGIN`, over TLS only.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub tls: SmartHostTls,
    /// Check the certificate against the system's roots and the host
    /// name. `false` is insecure: for a lab relay with a self-signed
    /// certificate.
    #[serde(default = "yes")]
    pub tls_verify: bool,
}

fn yes() -> bool {
    true
}

impl std::fmt::Debug for SmartHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmartHost")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("tls", &self.tls)
            .field("tls_verify", &self.tls_verify)
            .finish()
    }
}

impl SmartHost {
    /// A smart host from `host:port` (`[v6]:port` for an IPv6 address),
    /// STARTTLS required and verified, no AUTH.
    pub fn parse(addr: &str) -> Result<Self, ConfigError> {
        let bad = || ConfigError::SmartHostAddr(addr.to_owned());
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        let host = match host.strip_prefix('[') {
            Some(v6) => v6.strip_suffix(']').ok_or_else(bad)?,
            None if host.contains(':') => return Err(bad()),
            None => host,
        };
        let port: u16 = port
            .parse()
            .map_err(|source| ConfigError::SmartHostPort { addr: addr.to_owned(), source })?;
        if host.is_empty() || port == 0 {
            return Err(bad());
        }
        Ok(Self {
            host: host.to_owned(),
            port,
            username: None,
            password: None,
            tls: SmartHostTls::default(),
            tls_verify: true,
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.host.is_empty() || self.host.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(ConfigError::SmartHostAddr(self.host.clone()));
        }
        if self.port == 0 {
            return Err(ConfigError::Zero("smart_host.port"));
        }
        match (&self.username, &self.password) {
            (Some(_), None) | (None, Some(_)) => return Err(ConfigError::HalfCredentials),
            (Some(_), Some(_)) if matches!(self.tls, SmartHostTls::None | SmartHostTls::May) => {
                return Err(ConfigError::CredentialsInClear);
            }
            _ => {}
        }
        Ok(())
    }
}

/// How the smart host's connection is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmartHostTls {
    /// Plain TCP, then `STARTTLS`, which the smart host must offer (port 587 or 25).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465, RFC 8314).
    Implicit,
    /// STARTTLS when offered, any certificate, plaintext when not or when
    /// the handshake fails (Postfix's `may`): what a relay given only as
    /// `host:port` gets, as before TLS was configurable; no AUTH.
    May,
    /// No TLS at all: a relay on the same host or a trusted network; no AUTH.
    None,
}

/// What is wrong with a [`TransportConfig`]: the key and why.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("hostname {0:?}: our EHLO name must be a host name (printable ASCII, no spaces)")]
    Hostname(String),
    #[error("{0} must not be 0")]
    Zero(&'static str),
    #[error("smart_host {0:?}: expected host:port (or [ipv6]:port)")]
    SmartHostAddr(String),
    #[error("smart_host {addr:?}: the port is not a number from 1 to 65535")]
    SmartHostPort {
        addr: String,
        #[source]
        source: std::num::ParseIntError,
    },
    #[error("smart_host: username and password go together")]
    HalfCredentials,
    #[error(
        "smart_host: a password is sent only over TLS; tls = \"none\" or \"may\" allows no AUTH"
    )]
    CredentialsInClear,
}

/// Durations as whole seconds in a file.
mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smart_host_addresses() {
        let ok = [
            ("relay.example:587", "relay.example", 587),
            ("10.0.0.1:25", "10.0.0.1", 25),
            ("[::1]:2525", "::1", 2525),
        ];
        for (addr, host, port) in ok {
            let s = SmartHost::parse(addr).unwrap();
            assert_eq!((s.host.as_str(), s.port), (host, port), "{addr}");
            assert_eq!(s.tls, SmartHostTls::Starttls);
            assert!(s.tls_verify);
        }
        for bad in ["relay", "relay:", ":25", "relay:0", "relay:70000", "::1:25", "[::1:25"] {
            assert!(SmartHost::parse(bad).is_err(), "{bad}");
        }
        // A port that is no number keeps the parser's word as its cause.
        let error = SmartHost::parse("relay:smtp").unwrap_err();
        assert!(matches!(&error, ConfigError::SmartHostPort { addr, .. } if addr == "relay:smtp"));
        assert!(std::error::Error::source(&error).is_some());
    }

    #[test]
    fn validation_names_the_key() {
        let base = TransportConfig::new("mx.example.org");
        assert_eq!(base.validate(), Ok(()));
        type Change = Box<dyn Fn(&mut TransportConfig)>;
        let cases: Vec<(Change, ConfigError)> = vec![
            (Box::new(|c| c.hostname = "a b".into()), ConfigError::Hostname("a b".into())),
            (Box::new(|c| c.mx_port = 0), ConfigError::Zero("mx_port")),
            (
                Box::new(|c| c.timeouts.data_done = Duration::ZERO),
                ConfigError::Zero("timeouts.data_done"),
            ),
            (
                Box::new(|c| {
                    let mut s = SmartHost::parse("relay:587").unwrap();
                    s.username = Some("u".into());
                    c.smart_host = Some(s);
                }),
                ConfigError::HalfCredentials,
            ),
            (
                Box::new(|c| {
                    let mut s = SmartHost::parse("relay:25").unwrap();
                    s.username = Some("u".into());
                    s.password = Some("p".into());
                    s.tls = SmartHostTls::None;
                    c.smart_host = Some(s);
                }),
                ConfigError::CredentialsInClear,
            ),
        ];
        for (change, want) in cases {
            let mut c = base.clone();
            change(&mut c);
            assert_eq!(c.validate(), Err(want));
        }
    }

    #[test]
    fn password_stays_out_of_debug() {
        let mut s = SmartHost::parse("relay:587").unwrap();
        s.password = Some("hunter2".into());
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn serde_shapes() {
        let s: SmartHost = serde_json::from_str(
            r#"{"host":"relay","port":465,"username":"u","password":"p","tls":"implicit"}"#,
        )
        .unwrap();
        assert_eq!(s.tls, SmartHostTls::Implicit);
        assert!(s.tls_verify);
        let t: Timeouts = serde_json::from_str(r#"{"connect": 5}"#).unwrap();
        assert_eq!(t.connect, Duration::from_secs(5));
        assert_eq!(t.data_done, Timeouts::default().data_done);
    }
}
