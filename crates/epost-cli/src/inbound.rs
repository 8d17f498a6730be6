//! The MX's checks of mail from outside: epost-mta's verifier (SPF, DKIM,
//! DMARC) behind the gateway's `Verify` seam. The verdict and the header
//! are decided there; this only translates and logs.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::{Context, Result};
use epost_gateway::inbound::{Checked, Inbound, InboundChecks, Verify};
use epost_mta::inbound::{InboundPolicy, Mail, Verdict, Verifier, with_results};

use crate::config::Config;

/// The checks for a node's MX, or `None` when it has no MX listener.
pub(crate) fn checks(config: &Config) -> Result<Option<InboundChecks>> {
    if config.gateway.smtp_listen.is_none() {
        return Ok(None);
    }
    let verifier = Verifier::new(
        &config.dns.to_mta(),
        config.gateway.hostname.clone(),
        InboundPolicy {
            dmarc: config.inbound.dmarc,
            check_loopback: config.inbound.check_loopback,
        },
    )
    .context("cannot set up the inbound mail checks")?;
    Ok(Some(InboundChecks(Arc::new(MtaChecks(verifier)))))
}

struct MtaChecks(Verifier);

impl Verify for MtaChecks {
    fn verify<'a>(
        &'a self,
        mail: Inbound<'a>,
    ) -> Pin<Box<dyn Future<Output = Checked> + Send + 'a>> {
        Box::pin(async move {
            let checked = self
                .0
                .check(Mail {
                    client_ip: mail.client_ip,
                    helo: mail.helo,
                    mail_from: mail.mail_from,
                    message: mail.message,
                })
                .await;
            let from_domain = &checked.evaluation.domain;
            match checked.verdict {
                Verdict::Deliver { quarantine } => {
                    if quarantine {
                        tracing::info!(client = %mail.client_ip, from_domain, "DMARC asks to quarantine: delivered marked");
                    }
                    Checked::Deliver(with_results(mail.message, self.0.hostname(), &checked.header))
                }
                Verdict::Refuse(reply) | Verdict::Defer(reply) => {
                    tracing::info!(client = %mail.client_ip, from_domain, code = reply.code, "inbound mail refused by its DMARC checks");
                    let status = reply
                        .status
                        .and_then(|s| {
                            Some([
                                s.class,
                                u8::try_from(s.subject).ok()?,
                                u8::try_from(s.detail).ok()?,
                            ])
                        })
                        .unwrap_or(if reply.code >= 500 { [5, 7, 1] } else { [4, 7, 1] });
                    Checked::Refuse { code: reply.code, status, text: reply.text }
                }
            }
        })
    }
}
