//! One delivery attempt of one message to one domain: the
//! [`Transport`] the queue calls. To the domain's MX hosts (RFC 5321 5.1:
//! by preference, the implicit MX, RFC 7505's null MX) with opportunistic
//! STARTTLS (RFC 7435), or, when one is configured, to the smart host
//! with STARTTLS (or implicit TLS) and AUTH. An outcome per recipient.
//!
//! - [`config`]: what it is set up with.
//! - [`route`]: which hosts, decided from DNS answers; [`dns`] asks.
//! - [`session`]: one SMTP session with one address; [`envelope`] the
//!   commands and what cannot be sent; [`data`] the message's bytes;
//!   [`reply`] what a reply means; [`tls`] the two TLS client sides.
//!
//! It never retries later and never bounces: the queue decides that from
//! the outcomes. It never waits without a timeout, and tries a bounded
//! number of addresses per attempt.
//!
//! Use: build one [`SmtpTransport`] per node from a [`TransportConfig`]
//! (`TransportConfig::new(ehlo_name)` with Postfix's defaults, then the
//! smart host, `dns`, timeouts as configured) and call
//! [`Transport::send`] from as many tasks as the queue likes; it holds no
//! state between attempts.

mod config;
mod data;
mod dns;
mod envelope;
mod reply;
mod route;
mod session;
mod tls;

#[cfg(test)]
mod tests;

use std::net::{IpAddr, SocketAddr};

use mail_send::Credentials;
use ring::rand::{SecureRandom, SystemRandom};
use rustls::pki_types::CertificateDer;

pub use config::{ConfigError, SmartHost, SmartHostTls, Timeouts, TransportConfig};
pub use dns::DnsSetupError;

use crate::outbound::{Message, Outcome, Transport};
use dns::Dns;
use route::{Answer, NoAddress, Route};
use session::{Peer, Security, SessionError, Setup};

/// Why no transport could be made.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("invalid transport configuration")]
    Config(#[from] ConfigError),
    #[error("no DNS resolver")]
    Dns(#[from] DnsSetupError),
    #[error("cannot set up TLS")]
    Tls(#[source] rustls::Error),
}

/// The SMTP [`Transport`]: MX delivery, or the smart host.
pub struct SmtpTransport {
    config: TransportConfig,
    dns: Dns,
    /// For MX hosts: STARTTLS when offered, any certificate.
    opportunistic: Security,
    smart: Option<Smart>,
}

/// The smart host, ready to use.
struct Smart {
    host: SmartHost,
    security: Security,
    credentials: Option<Credentials<String>>,
}

impl SmtpTransport {
    /// A transport with `config` (validated here). The smart host's
    /// certificate is checked against the system's roots, which must
    /// exist then.
    pub fn new(config: TransportConfig) -> Result<Self, TransportError> {
        Self::with_roots(config, Vec::new())
    }

    /// As [`SmtpTransport::new`], trusting `extra_roots` beside the
    /// system's roots for the smart host (a lab's own authority).
    pub fn with_roots(
        config: TransportConfig,
        extra_roots: Vec<CertificateDer<'static>>,
    ) -> Result<Self, TransportError> {
        config.validate()?;
        let dns = Dns::new(&config.dns)?;
        let opportunistic =
            Security::Opportunistic(tls::opportunistic().map_err(TransportError::Tls)?);
        let smart = match &config.smart_host {
            None => None,
            Some(s) => {
                let connector = || {
                    if s.tls_verify {
                        tls::verified(extra_roots.clone())
                    } else {
                        tls::opportunistic()
                    }
                    .map_err(TransportError::Tls)
                };
                let security = match s.tls {
                    SmartHostTls::Starttls => Security::RequireStartTls(connector()?),
                    SmartHostTls::Implicit => Security::Implicit(connector()?),
                    SmartHostTls::May => {
                        Security::Opportunistic(tls::opportunistic().map_err(TransportError::Tls)?)
                    }
                    SmartHostTls::None => Security::Plaintext,
                };
                let credentials = match (&s.username, &s.password) {
                    (Some(u), Some(p)) => Some(Credentials::new(u.clone(), p.clone())),
                    _ => None,
                };
                Some(Smart { host: s.clone(), security, credentials })
            }
        };
        Ok(Self { config, dns, opportunistic, smart })
    }

    fn setup<'a>(&'a self, credentials: Option<&'a Credentials<String>>) -> Setup<'a> {
        Setup { hostname: &self.config.hostname, timeouts: &self.config.timeouts, credentials }
    }

    /// To the domain's MX hosts.
    async fn via_mx(&self, domain: &str, message: &Message<'_>) -> Vec<Outcome> {
        let n = message.recipients.len();
        let (hosts, implicit) =
            match route::route(domain, self.dns.mx(domain).await, &mut random_below) {
                Route::Hosts { hosts, implicit } => (hosts, implicit),
                Route::Fail { status, reason } => {
                    return vec![Outcome::Failed { host: None, reply: None, status, reason }; n];
                }
                Route::Defer { reason } => {
                    return vec![Outcome::Deferred { host: None, reply: None, reason }; n];
                }
            };
        self.to_hosts(domain, hosts, implicit, message).await
    }

    /// To `hosts` in order, until one takes the transaction.
    async fn to_hosts(
        &self,
        domain: &str,
        hosts: Vec<String>,
        implicit: bool,
        message: &Message<'_>,
    ) -> Vec<Outcome> {
        let n = message.recipients.len();
        let setup = self.setup(None);
        let mut budget = self.config.max_addresses;
        let mut last: Option<(String, SessionError)> = None;
        let mut lookups = Vec::new();
        'hosts: for host in hosts {
            let addrs = match self.dns.addresses(&host).await {
                Answer::Found(addrs) => addrs,
                other => {
                    lookups.push((host, other));
                    continue;
                }
            };
            for ip in addrs {
                if budget == 0 {
                    break 'hosts;
                }
                budget -= 1;
                let peer = Peer { name: &host, addr: SocketAddr::new(ip, self.config.mx_port) };
                let result = match session::deliver(&setup, peer, &self.opportunistic, message)
                    .await
                {
                    Err(e) if e.is_handshake() => {
                        tracing::info!(host, %ip, error = %session::chain(&e), "TLS failed; again in plaintext");
                        session::deliver(&setup, peer, &Security::Plaintext, message).await
                    }
                    result => result,
                };
                match result {
                    Ok(outcomes) => return outcomes,
                    Err(e) => {
                        tracing::info!(host, %ip, error = %session::chain(&e), "next host");
                        last = Some((host.clone(), e));
                    }
                }
            }
        }
        if let Some((host, e)) = last {
            return vec![deferred(&host, &e); n];
        }
        match route::no_address(domain, implicit, &lookups) {
            NoAddress::Defer { host, reason } => {
                vec![Outcome::Deferred { host: Some(host), reply: None, reason }; n]
            }
            NoAddress::Fail { status, reason } => {
                vec![Outcome::Failed { host: None, reply: None, status, reason }; n]
            }
        }
    }

    /// To the smart host: any trouble before the transaction is ours (or
    /// the relay's), never the message's, so it defers.
    async fn via_smart_host(&self, smart: &Smart, message: &Message<'_>) -> Vec<Outcome> {
        let n = message.recipients.len();
        let host = smart.host.host.as_str();
        let addrs: Vec<IpAddr> = match self.dns.addresses(host).await {
            Answer::Found(addrs) => addrs,
            other => {
                let why = match other {
                    Answer::Temporary(why) => why,
                    _ => "no such host".to_owned(),
                };
                let reason = format!("the smart host {host}: {why}");
                return vec![
                    Outcome::Deferred { host: Some(host.to_owned()), reply: None, reason };
                    n
                ];
            }
        };
        let setup = self.setup(smart.credentials.as_ref());
        let mut last = None;
        for ip in addrs.into_iter().take(self.config.max_addresses) {
            let peer = Peer { name: host, addr: SocketAddr::new(ip, smart.host.port) };
            let result = match session::deliver(&setup, peer, &smart.security, message).await {
                // `may`: a failed handshake is tried again in plaintext.
                Err(e) if e.is_handshake() && smart.host.tls == SmartHostTls::May => {
                    session::deliver(&setup, peer, &Security::Plaintext, message).await
                }
                result => result,
            };
            match result {
                Ok(outcomes) => return outcomes,
                Err(e) => {
                    tracing::info!(host, %ip, error = %session::chain(&e), "smart host");
                    last = Some(e);
                }
            }
        }
        match last {
            Some(e) => vec![deferred(host, &e); n],
            None => vec![
                Outcome::Deferred {
                    host: Some(host.to_owned()),
                    reply: None,
                    reason: format!("the smart host {host} has no address"),
                };
                n
            ],
        }
    }
}

impl Transport for SmtpTransport {
    async fn send(&self, domain: &str, message: Message<'_>) -> Vec<Outcome> {
        if message.recipients.is_empty() {
            return Vec::new();
        }
        match &self.smart {
            Some(smart) => self.via_smart_host(smart, &message).await,
            None => self.via_mx(domain, &message).await,
        }
    }
}

/// The outcome of a recipient whose session with `host` went wrong
/// before the transaction.
fn deferred(host: &str, e: &SessionError) -> Outcome {
    Outcome::Deferred {
        host: Some(host.to_owned()),
        reply: e.reply().cloned(),
        reason: format!("{host}: {}", session::chain(e)),
    }
}

/// A random index below `n`, to shuffle MX hosts of equal preference.
fn random_below(n: usize) -> usize {
    let mut bytes = [0u8; 8];
    // A failing system RNG leaves the order as DNS gave it: harmless.
    if SystemRandom::new().fill(&mut bytes).is_err() {
        return 0;
    }
    (u64::from_le_bytes(bytes) % n.max(1) as u64) as usize
}
