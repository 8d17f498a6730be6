//! What the node's outbound queue delivers with and signs with, chosen
//! from the config: SMTP to each domain's MX hosts, or to the smart host
//! when one is configured ([`epost_mta::transport::SmtpTransport`]), and
//! the DKIM keys in the data directory ([`epost_mta::dkim::Signer`]).
//!
//! Mail of a domain this node has no DKIM key for is refused at
//! submission (`451 4.3.5`) when the queue delivers to MX hosts itself:
//! it would leave the realm unsigned. Through a smart host it goes
//! unsigned, as the smart host is then the border (relays that sign for
//! their customers are the common case); spec/internet.md section 5.

use std::path::Path;

use anyhow::{Context, Result};
use epost_mta::dkim::Signer;
use epost_mta::outbound::{DnsConfig, Sign, SignError};
use epost_mta::transport::{SmartHost, SmtpTransport, TransportConfig};
use epost_node::outbound::{OutboundOptions, SharedSigner, SharedTransport};

use crate::config::Config;

/// The node's outbound options from the config and the DKIM keys in
/// `data_dir` (the smart host's password is read from its file here, at
/// start).
pub(crate) fn options(config: &Config, data_dir: &Path) -> Result<OutboundOptions> {
    let transport = SmtpTransport::new(transport(config)?)
        .context("cannot set up delivery to other domains")?;
    let via_smart_host = !config.gateway.smart_host.is_empty();
    let name = if via_smart_host { "smart host" } else { "mx" };
    let keys = Signer::load(data_dir).context("cannot read the DKIM keys")?;
    let domains = keys.domains().join(", ");
    tracing::info!(domains, "DKIM keys");
    Ok(OutboundOptions {
        queue: crate::settings::outbound_queue(config),
        transport: SharedTransport::new(name, transport),
        signer: SharedSigner::new("dkim", Dkim { keys, unsigned_ok: via_smart_host }),
    })
}

/// The realm's DKIM keys, and whether mail of a domain without one may
/// leave unsigned.
struct Dkim {
    keys: Signer,
    unsigned_ok: bool,
}

impl Sign for Dkim {
    fn sign(&self, domain: &str, message: &[u8]) -> Result<Vec<u8>, SignError> {
        match self.keys.sign(domain, message) {
            Err(SignError::NoKey { .. }) if self.unsigned_ok => Ok(Vec::new()),
            other => other,
        }
    }
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
