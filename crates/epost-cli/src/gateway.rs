//! Starting a node's mail gateway from the config.

use std::path::Path;

use anyhow::{Context, Result};
use epost_gateway::context::Limits;
use epost_gateway::inbound::InboundChecks;
use epost_gateway::node::NodeBackend;
use epost_gateway::tls::{TlsSource, self_signed_names};
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
            names: self_signed_names(
                &config.hostname,
                config.listeners().into_iter().filter_map(|(_, addr)| addr).map(|a| a.ip()),
            ),
        },
    };
    let limits = Limits { max_message: config.max_message_bytes, ..Limits::default() };
    let listeners = Listeners {
        smtp: config.smtp_listen,
        submission: config.submission_listen,
        imap: config.imap_listen,
        pop3: config.pop3_listen,
        submissions: config.submissions_listen,
        imaps: config.imaps_listen,
        pop3s: config.pop3s_listen,
        postmaster: config.postmaster.clone(),
        tls,
        hostname: config.hostname.clone(),
        limits,
        // Authenticated submitters' mail for other domains always goes
        // into the node's outbound queue (MX mail never relays).
        relay_for_submitters: true,
        inbound,
    };
    let backend = NodeBackend::new(node.mail.clone(), node.identity.clone())
        .with_outbound(node.outbound.clone());
    Gateway::start(listeners, backend).await.context("cannot start the mail gateway")
}
