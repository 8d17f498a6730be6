//! Starting a node's mail gateway from the config.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use epost_gateway::context::Limits;
use epost_gateway::inbound::InboundChecks;
use epost_gateway::node::NodeBackend;
use epost_gateway::smarthost::SmartHost;
use epost_gateway::tls::TlsSource;
use epost_gateway::{Gateway, GatewayConfig as Listeners};
use epost_node::Node;

use crate::config::GatewayConfig;

/// Serves `node`'s mail per `config`; the TLS certificate, if self-signed,
/// is kept in `data_dir`.
/// `inbound` checks the MX's mail from outside.
pub(crate) async fn start(
    node: &Node,
    config: &GatewayConfig,
    data_dir: &Path,
    inbound: Option<InboundChecks>,
) -> Result<Gateway> {
    // Validated at load: both paths or neither.
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => TlsSource::Files { cert: cert.clone(), key: key.clone() },
        _ => TlsSource::SelfSigned {
            dir: data_dir.to_path_buf(),
            names: vec![config.hostname.clone()],
        },
    };
    let limits = Limits { max_message: config.max_message_bytes, ..Limits::default() };
    let listeners = Listeners {
        smtp: config.smtp_listen,
        submission: config.submission_listen,
        imap: config.imap_listen,
        pop3: config.pop3_listen,
        tls,
        hostname: config.hostname.clone(),
        limits,
        relay_for_submitters: !config.smart_host.is_empty(),
        inbound,
    };
    let mut backend = NodeBackend::new(node.mail.clone(), node.identity.clone());
    if !config.smart_host.is_empty() {
        backend = backend.with_smart_host(SmartHost {
            addr: config.smart_host.clone(),
            hostname: config.hostname.clone(),
            timeout: Duration::from_secs(60),
        });
    }
    Gateway::start(listeners, backend).await.context("cannot start the mail gateway")
}
