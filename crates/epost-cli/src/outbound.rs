//! What the node's outbound queue delivers with and signs with, chosen
//! from the config: SMTP to each domain's MX hosts, or to the smart host
//! when one is configured ([`epost_mta::transport::SmtpTransport`]).
//! Mail leaves unsigned ([`Unsigned`]) until the realm's DKIM keys are
//! read here.

use anyhow::{Context, Result};
use epost_mta::outbound::DnsConfig;
use epost_mta::queue::placeholder::Unsigned;
use epost_mta::transport::{SmartHost, SmtpTransport, TransportConfig};
use epost_node::outbound::{OutboundOptions, SharedSigner, SharedTransport};

use crate::config::Config;

/// The node's outbound options from the config (the smart host's
/// password is read from its file here, at start).
pub(crate) fn options(config: &Config) -> Result<OutboundOptions> {
    let transport = SmtpTransport::new(transport(config)?)
        .context("cannot set up delivery to other domains")?;
    let name = if config.gateway.smart_host.is_empty() { "mx" } else { "smart host" };
    Ok(OutboundOptions {
        queue: crate::settings::outbound_queue(config),
        transport: SharedTransport::new(name, transport),
        signer: SharedSigner::new("unsigned", Unsigned),
    })
}

fn transport(config: &Config) -> Result<TransportConfig> {
    let g = &config.gateway;
    let mut t = TransportConfig::new(g.hostname.clone());
    t.mx_port = config.outbound.mx_port;
    t.dns = DnsConfig { nameservers: config.dns.nameservers.clone() };
    if !g.smart_host.is_empty() {
        let mut smart = SmartHost::parse(&g.smart_host).context("gateway.smart_host")?;
        smart.tls = g.smart_host_tls;
        smart.tls_verify = g.smart_host_verify;
        if let Some(file) = &g.smart_host_password_file {
            let text = std::fs::read_to_string(file).with_context(|| {
                format!("cannot read gateway.smart_host_password_file {}", file.display())
            })?;
            let password = text.lines().next().unwrap_or_default().to_owned();
            smart.username = Some(g.smart_host_user.clone());
            smart.password = Some(password);
        }
        t.smart_host = Some(smart);
    }
    Ok(t)
}
