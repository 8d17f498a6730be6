//! The DNS questions delivery asks (MX, A, AAAA), over hickory-resolver:
//! the configured name servers over UDP and TCP, or the system's
//! configuration. Thin: answers become [`Answer`]s and [`route`] decides.
//!
//! [`route`]: super::route

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{Name, RData};

use super::route::{Answer, Mx, addresses, classify};
use crate::outbound::DnsConfig;

/// The resolver of one transport.
#[derive(Clone)]
pub(crate) struct Dns {
    resolver: TokioResolver,
}

/// Why no resolver could be made.
#[derive(Debug, thiserror::Error)]
pub enum DnsSetupError {
    /// The system's configuration (`/etc/resolv.conf`) could not be read.
    #[error("cannot read the system's DNS configuration")]
    System(#[source] NetError),
    #[error("cannot build the DNS resolver")]
    Build(#[source] NetError),
}

impl Dns {
    pub(crate) fn new(config: &DnsConfig) -> Result<Self, DnsSetupError> {
        let builder = if config.nameservers.is_empty() {
            TokioResolver::builder_tokio().map_err(DnsSetupError::System)?
        } else {
            let servers = config
                .nameservers
                .iter()
                .map(|addr| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = addr.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = addr.port();
                    NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
                })
                .collect();
            TokioResolver::builder_with_config(
                ResolverConfig::from_name_servers(servers),
                TokioRuntimeProvider::default(),
            )
        };
        let resolver = builder.build().map_err(DnsSetupError::Build)?;
        Ok(Self { resolver })
    }

    /// `domain`'s MX records. A name that is no DNS name does not exist.
    pub(crate) async fn mx(&self, domain: &str) -> Answer<Mx> {
        let Some(name) = fqdn(domain) else { return Answer::NoDomain };
        let result = self.resolver.mx_lookup(name).await.map(|lookup| {
            lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::MX(mx) => Some(Mx {
                        preference: mx.preference,
                        exchange: mx.exchange.to_ascii().trim_end_matches('.').to_owned(),
                    }),
                    _ => None,
                })
                .collect()
        });
        classify(result)
    }

    /// `host`'s addresses, IPv4 then IPv6 (both asked at once). An IP
    /// address is its own answer.
    pub(crate) async fn addresses(&self, host: &str) -> Answer<IpAddr> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Answer::Found(vec![ip]);
        }
        let Some(name) = fqdn(host) else { return Answer::NoDomain };
        let (a, aaaa) =
            tokio::join!(self.resolver.ipv4_lookup(name.clone()), self.resolver.ipv6_lookup(name));
        let v4 = a.map(|l| {
            l.answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::A(a) => Some(Ipv4Addr::from(*a)),
                    _ => None,
                })
                .collect()
        });
        let v6 = aaaa.map(|l| {
            l.answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::AAAA(a) => Some(Ipv6Addr::from(*a)),
                    _ => None,
                })
                .collect()
        });
        addresses(classify(v4), classify(v6))
    }
}

/// `domain` as a fully qualified name (no search domains appended);
/// U-labels become A-labels.
fn fqdn(domain: &str) -> Option<Name> {
    let mut name = Name::from_utf8(domain.trim_end_matches('.')).ok()?;
    name.set_fqdn(true);
    Some(name)
}
