//! The seam through which the MX has mail from outside checked (SPF,
//! DKIM, DMARC) before it is delivered: a trait the binary implements
//! with epost-mta's verifier, so the gateway (its sessions, tests and
//! fuzzers) builds without a DNS resolver or crypto beyond rustls'.
//!
//! Only unauthenticated MX mail is checked; submission is our own users'
//! mail. Without checks configured, MX mail is delivered unchanged.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

/// One message from outside, complete, as the MX received it.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    pub client_ip: IpAddr,
    /// The HELO/EHLO name.
    pub helo: &'a str,
    /// `MAIL FROM`; `None` is the null reverse path.
    pub mail_from: Option<&'a str>,
    /// The bytes to be stored (our `Received:` first).
    pub message: &'a [u8],
}

/// What the checks say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// Deliver these bytes: the message with the results header on top
    /// (and forged results under our name removed).
    Deliver(Vec<u8>),
    /// Deliver the message as received (it was not checked).
    AsReceived,
    /// Answer the end of data with this reply instead (a 5xx refuses, a
    /// 4xx asks the sender to retry).
    Refuse { code: u16, status: [u8; 3], text: String },
}

/// Checks MX mail. Implemented by the binary; a test may fake it.
pub trait Verify: Send + Sync + 'static {
    fn verify<'a>(
        &'a self,
        mail: Inbound<'a>,
    ) -> Pin<Box<dyn Future<Output = Checked> + Send + 'a>>;
}

/// A shared [`Verify`], as the gateway's config holds it.
#[derive(Clone)]
pub struct InboundChecks(pub Arc<dyn Verify>);

impl std::fmt::Debug for InboundChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InboundChecks")
    }
}
