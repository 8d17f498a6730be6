//! Checks of mail from outside the realm at its MX: SPF of the HELO name
//! and of `MAIL FROM` (RFC 7208), DKIM (RFC 6376, RFC 8463), DMARC with
//! the `From` domain (RFC 7489), by Stalwart's mail-auth; then the
//! `Authentication-Results` header (RFC 8601, [`results`]) and the
//! verdict of our policy ([`policy`], a pure function).
//!
//! Never checks mail from our own authenticated users (submission), and
//! never lets a DNS wait hold a session: the whole check is bounded by
//! [`CHECK_TIMEOUT`]. The decisions are spec/internet.md section 6.

mod cache;
pub mod policy;
pub mod results;

use std::net::IpAddr;
use std::time::Duration;

use mail_auth::hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts,
};
use mail_auth::hickory_resolver::net::NetError;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DmarcOutput, DmarcResult, MessageAuthenticator,
    Parameters, dmarc::Policy, dmarc::verify::DmarcParameters, spf::verify::SpfParameters,
};

pub use cache::TxtCache;
pub use policy::{DmarcMode, DmarcOutcome, Evaluation, InboundPolicy, SenderPolicy, Verdict};
pub use results::with_results;

use crate::outbound::DnsConfig;

/// The longest the checks of one message may take (SPF alone may make
/// ten DNS queries, each retried).
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the verifier could not be made.
#[derive(Debug, thiserror::Error)]
pub enum VerifierError {
    #[error("cannot set up the DNS resolver for the inbound checks")]
    Resolver(#[source] NetError),
}

/// One message from outside, as the MX received it.
#[derive(Debug, Clone, Copy)]
pub struct Mail<'a> {
    /// The client's address.
    pub client_ip: IpAddr,
    /// The name it gave in HELO/EHLO.
    pub helo: &'a str,
    /// `MAIL FROM`; `None` is the null reverse path `<>`.
    pub mail_from: Option<&'a str>,
    /// The message as received (our `Received:` on top is fine).
    pub message: &'a [u8],
}

/// What the checks found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub verdict: Verdict,
    /// The `Authentication-Results:` field, CRLF ended, to put on top
    /// (with [`with_results`]); `None` when the mail was not checked (a
    /// loopback client): deliver it as received.
    pub header: Option<String>,
    pub evaluation: Evaluation,
}

/// Checks inbound mail; one per node, shared by its MX sessions.
pub struct Verifier {
    authenticator: MessageAuthenticator,
    cache: TxtCache,
    hostname: String,
    policy: InboundPolicy,
}

impl Verifier {
    /// A verifier asking `dns`'s servers, naming itself `hostname` in the
    /// header, deciding by `policy`.
    pub fn new(
        dns: &DnsConfig,
        hostname: impl Into<String>,
        policy: InboundPolicy,
    ) -> Result<Verifier, VerifierError> {
        let authenticator = if dns.nameservers.is_empty() {
            MessageAuthenticator::new_system_conf()
        } else {
            let servers = dns
                .nameservers
                .iter()
                .map(|addr| {
                    let connection = |mut c: ConnectionConfig| {
                        c.port = addr.port();
                        c
                    };
                    NameServerConfig::new(
                        addr.ip(),
                        true,
                        vec![
                            connection(ConnectionConfig::udp()),
                            connection(ConnectionConfig::tcp()),
                        ],
                    )
                })
                .collect();
            MessageAuthenticator::new(
                ResolverConfig::from_name_servers(servers),
                ResolverOpts::default(),
            )
        }
        .map_err(VerifierError::Resolver)?;
        Ok(Verifier {
            authenticator,
            cache: TxtCache::default(),
            hostname: hostname.into(),
            policy,
        })
    }

    /// The TXT answers cache (tests and static records prime it).
    pub fn cache(&self) -> &TxtCache {
        &self.cache
    }

    #[cfg(test)]
    pub(crate) fn authenticator(&self) -> &MessageAuthenticator {
        &self.authenticator
    }

    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// Runs the checks on `mail` and decides.
    pub async fn check(&self, mail: Mail<'_>) -> Checked {
        if mail.client_ip.is_loopback() && !self.policy.check_loopback {
            return Checked {
                verdict: Verdict::Deliver { quarantine: false },
                header: None,
                evaluation: Evaluation {
                    outcome: DmarcOutcome::None,
                    policy: SenderPolicy::None,
                    domain: String::new(),
                },
            };
        }
        match tokio::time::timeout(CHECK_TIMEOUT, self.run(mail)).await {
            Ok(checked) => checked,
            Err(_) => {
                let evaluation = Evaluation {
                    outcome: DmarcOutcome::TempError,
                    policy: SenderPolicy::Unknown,
                    domain: String::new(),
                };
                Checked {
                    verdict: policy::decide(&evaluation, self.policy),
                    header: Some(format!(
                        "Authentication-Results: {}; dmarc=temperror (the checks timed out)\r\n",
                        self.hostname
                    )),
                    evaluation,
                }
            }
        }
    }

    async fn run(&self, mail: Mail<'_>) -> Checked {
        let Some(message) = AuthenticatedMessage::parse(mail.message) else {
            // Not a message mail-auth can read (no header at all): nothing
            // to authenticate, nothing a DMARC policy covers.
            let evaluation = Evaluation {
                outcome: DmarcOutcome::None,
                policy: SenderPolicy::None,
                domain: String::new(),
            };
            return Checked {
                verdict: policy::decide(&evaluation, self.policy),
                header: Some(format!("Authentication-Results: {}; none\r\n", self.hostname)),
                evaluation,
            };
        };
        let auth = &self.authenticator;
        let host = self.hostname.as_str();
        let ip = mail.client_ip;
        let helo = mail.helo.trim_start_matches('[').trim_end_matches(']');
        let helo_is_name = helo.contains('.') && helo.parse::<IpAddr>().is_err();
        let mail_from = mail.mail_from.unwrap_or_default();

        let spf_helo = if helo_is_name {
            Some(
                auth.verify_spf(
                    Parameters::new(SpfParameters::verify_ehlo(ip, helo, host))
                        .with_txt_cache(&self.cache),
                )
                .await,
            )
        } else {
            None
        };
        let spf_mail_from = if mail_from.contains('@') {
            Some(
                auth.verify_spf(
                    Parameters::new(SpfParameters::verify_mail_from(ip, helo, host, mail_from))
                        .with_txt_cache(&self.cache),
                )
                .await,
            )
        } else {
            None
        };
        let dkim = auth.verify_dkim(Parameters::new(&message).with_txt_cache(&self.cache)).await;

        // DMARC's SPF identity is MAIL FROM's domain, or the HELO name
        // for a null reverse path (RFC 7489 section 3.1.2).
        let (spf_for_dmarc, spf_domain) = match (&spf_mail_from, &spf_helo) {
            (Some(spf), _) => (spf.clone(), mail_from.rsplit_once('@').map_or("", |(_, d)| d)),
            (None, Some(spf)) => (spf.clone(), helo),
            (None, None) => (mail_auth::SpfOutput::new(String::new()), ""),
        };
        let dmarc = auth
            .verify_dmarc(
                Parameters::new(DmarcParameters::new(&message, &dkim, spf_domain, &spf_for_dmarc))
                    .with_txt_cache(&self.cache),
            )
            .await;

        let from = message.from.first().map(String::as_str).unwrap_or_default();
        // Each builder's text is `host;\r\n\tmethod=...`; the parts are
        // put together so that a method with nothing to say still says
        // `none` (RFC 8601 section 2.7.1).
        let part =
            |results: AuthenticationResults<'_>| results.to_string()[host.len()..].to_owned();
        let mut spf = AuthenticationResults::new(host);
        if let Some(output) = &spf_mail_from {
            spf = spf.with_spf_mailfrom_result(output, ip, mail_from, helo);
        }
        if let Some(output) = &spf_helo {
            spf = spf.with_spf_ehlo_result(output, ip, helo);
        }
        let mut header = format!("Authentication-Results: {host}{}", part(spf));
        if spf_mail_from.is_none() && spf_helo.is_none() {
            header.push_str(";\r\n\tspf=none");
        }
        if dkim.is_empty() {
            header.push_str(";\r\n\tdkim=none");
        } else {
            header.push_str(&part(AuthenticationResults::new(host).with_dkim_results(&dkim, from)));
        }
        if dmarc.domain().is_empty() {
            header.push_str(";\r\n\tdmarc=none");
        } else {
            header.push_str(&part(AuthenticationResults::new(host).with_dmarc_result(&dmarc)));
        }
        header.push_str("\r\n");
        let evaluation = evaluation(&dmarc);
        Checked {
            verdict: policy::decide(&evaluation, self.policy),
            header: Some(header),
            evaluation,
        }
    }
}

/// mail-auth's DMARC output as the policy reads it.
pub fn evaluation(dmarc: &DmarcOutput) -> Evaluation {
    let outcome = match dmarc.result() {
        DmarcResult::Pass => DmarcOutcome::Pass,
        DmarcResult::Fail(_) => DmarcOutcome::Fail,
        DmarcResult::TempError(_) => DmarcOutcome::TempError,
        DmarcResult::PermError(_) => DmarcOutcome::PermError,
        DmarcResult::None => DmarcOutcome::None,
    };
    let policy = match (dmarc.dmarc_record(), dmarc.policy()) {
        (None, _) if outcome == DmarcOutcome::TempError => SenderPolicy::Unknown,
        (None, _) => SenderPolicy::None,
        (Some(_), Policy::Reject) => SenderPolicy::Reject,
        (Some(_), Policy::Quarantine) => SenderPolicy::Quarantine,
        (Some(_), Policy::None | Policy::Unspecified) => SenderPolicy::None,
    };
    Evaluation { outcome, policy, domain: dmarc.domain().to_owned() }
}

#[cfg(test)]
mod tests;
