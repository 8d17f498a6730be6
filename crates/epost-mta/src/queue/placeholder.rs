//! Stand-ins until a node is given a real transport and signer: a
//! transport that delivers nothing (every recipient deferred, "no
//! transport configured", so the mail waits in the queue and fails at the
//! end of its lifetime like any undeliverable mail), and a signer that
//! adds no signature.

use crate::outbound::{Message, Outcome, Sign, SignError, Transport};

/// Delivers nothing: every recipient is deferred.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTransport;

/// The reason every recipient is deferred with.
pub const NO_TRANSPORT: &str = "no transport configured";

impl Transport for NoTransport {
    async fn send(&self, _domain: &str, message: Message<'_>) -> Vec<Outcome> {
        message
            .recipients
            .iter()
            .map(|_| Outcome::Deferred { host: None, reply: None, reason: NO_TRANSPORT.into() })
            .collect()
    }
}

/// Adds no header: mail leaves unsigned.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unsigned;

impl Sign for Unsigned {
    fn sign(&self, _domain: &str, _message: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(Vec::new())
    }
}
