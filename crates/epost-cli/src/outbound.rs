//! What the node's outbound queue delivers with and signs with, chosen
//! from the config. Until the MX transport and DKIM land, the queue hands
//! mail to the configured smart host ([`SmartHostTransport`], the
//! gateway's small SMTP client) or, without one, holds it deferred
//! ([`NoTransport`]); mail leaves unsigned ([`Unsigned`]).

use std::time::Duration;

use epost_gateway::smarthost::{RelayError, SmartHost};
use epost_mta::outbound::{Message, Outcome, Reply, Status, Transport};
use epost_mta::queue::placeholder::{NoTransport, Unsigned};
use epost_node::outbound::{OutboundOptions, SharedSigner, SharedTransport};

use crate::config::Config;

/// Every message to the smart host, whatever its domain: one SMTP
/// transaction per attempt, the same outcome for all its recipients.
struct SmartHostTransport {
    smart_host: SmartHost,
}

impl Transport for SmartHostTransport {
    async fn send(&self, _domain: &str, message: Message<'_>) -> Vec<Outcome> {
        let to: Vec<String> = message.recipients.iter().map(|r| r.address.clone()).collect();
        let host = self.smart_host.addr.clone();
        let outcome = match self.smart_host.relay(message.reverse_path, &to, message.body).await {
            Ok(()) => Outcome::Delivered {
                host,
                reply: Reply { code: 250, status: None, text: "accepted".into() },
            },
            Err(e) if e.is_permanent() => {
                let reply = match &e {
                    RelayError::Refused(r) => {
                        Some(Reply { code: r.code, status: None, text: r.text.clone() })
                    }
                    _ => None,
                };
                Outcome::Failed {
                    host: Some(host),
                    reply,
                    status: Status { class: 5, subject: 0, detail: 0 },
                    reason: e.to_string(),
                }
            }
            Err(e) => Outcome::Deferred { host: Some(host), reply: None, reason: e.to_string() },
        };
        vec![outcome; message.recipients.len()]
    }
}

/// The node's outbound options from the config.
pub(crate) fn options(config: &Config) -> OutboundOptions {
    let transport = if config.gateway.smart_host.is_empty() {
        SharedTransport::new("none", NoTransport)
    } else {
        SharedTransport::new(
            "smart host",
            SmartHostTransport {
                smart_host: SmartHost {
                    addr: config.gateway.smart_host.clone(),
                    hostname: config.gateway.hostname.clone(),
                    timeout: Duration::from_secs(60),
                },
            },
        )
    };
    OutboundOptions {
        queue: crate::settings::outbound_queue(config),
        transport,
        signer: SharedSigner::new("unsigned", Unsigned),
    }
}
