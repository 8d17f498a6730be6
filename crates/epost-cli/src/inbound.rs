//! The MX's checks of mail from outside: epost-mta's verifier (SPF, DKIM,
//! DMARC) behind the gateway's `Verify` seam. The verdict and the header
//! are decided there; this only translates and logs.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use anyhow::{Context, Result};
use epost_gateway::inbound::{Checked, Inbound, InboundChecks, Verify};
use epost_mta::inbound::{InboundPolicy, Mail, Verdict, Verifier, with_results};
use epost_mta::outbound::Reply;

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
                    match &checked.header {
                        Some(header) => {
                            Checked::Deliver(with_results(mail.message, self.0.hostname(), header))
                        }
                        None => Checked::AsReceived,
                    }
                }
                Verdict::Refuse(reply) | Verdict::Defer(reply) => {
                    tracing::info!(client = %mail.client_ip, from_domain, code = reply.code, "inbound mail refused by its DMARC checks");
                    Checked::Refuse { code: reply.code, status: status(&reply), text: reply.text }
                }
            }
        })
    }
}

/// A reply's enhanced status code as the gateway writes it; a code that
/// does not fit (none of ours) becomes the generic 5.7.1 or 4.7.1.
fn status(reply: &Reply) -> [u8; 3] {
    reply
        .status
        .and_then(|s| Some([s.class, u8::try_from(s.subject).ok()?, u8::try_from(s.detail).ok()?]))
        .unwrap_or(if reply.code >= 500 { [5, 7, 1] } else { [4, 7, 1] })
}

#[cfg(test)]
mod tests {
    use epost_mta::outbound::{DnsConfig, Status};

    use super::*;

    fn checks(check_loopback: bool) -> MtaChecks {
        // DNS nowhere: nothing here may need an answer.
        let dns = DnsConfig { nameservers: vec!["127.0.0.1:1".parse().unwrap()] };
        let policy = InboundPolicy { dmarc: Default::default(), check_loopback };
        MtaChecks(Verifier::new(&dns, "mx.example.org", policy).unwrap())
    }

    fn mail(message: &[u8]) -> Inbound<'_> {
        Inbound {
            client_ip: "127.0.0.1".parse().unwrap(),
            helo: "localhost",
            mail_from: None,
            message,
        }
    }

    #[tokio::test]
    async fn loopback_mail_is_delivered_as_received_unless_checked() {
        let message = b"Subject: x\r\n\r\nhi\r\n";
        assert_eq!(checks(false).verify(mail(message)).await, Checked::AsReceived);
        // Checked: no From, no signature, a HELO that is no domain name:
        // nothing to look up, and the forged results under our name go.
        let forged =
            b"Authentication-Results: mx.example.org; dmarc=pass\r\nSubject: x\r\n\r\nhi\r\n";
        let Checked::Deliver(out) = checks(true).verify(mail(forged)).await else { panic!() };
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("Authentication-Results: mx.example.org;"), "{text}");
        assert!(!text.contains("dmarc=pass"), "{text}");
        assert!(text.ends_with("Subject: x\r\n\r\nhi\r\n"), "{text}");
    }

    #[test]
    fn statuses_fit_or_fall_back() {
        let reply = |code, status| Reply { code, status, text: String::new() };
        let s = |class, subject, detail| Some(Status { class, subject, detail });
        assert_eq!(status(&reply(550, s(5, 7, 1))), [5, 7, 1]);
        assert_eq!(status(&reply(451, s(4, 7, 1))), [4, 7, 1]);
        assert_eq!(status(&reply(550, s(5, 7, 300))), [5, 7, 1]);
        assert_eq!(status(&reply(451, None)), [4, 7, 1]);
    }
}
