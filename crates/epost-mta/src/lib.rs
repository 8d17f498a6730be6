//! Internet mail for an epost realm: what crosses the realm's border.
//!
//! - [`queue`]: the durable outbound queue on the sending node. A
//!   submission's `250` means the message is in it; a worker delivers it
//!   with retries and backoff, and bounces what fails for good.
//! - [`transport`]: one delivery attempt to a domain, to its MX hosts (or
//!   a smart host), over SMTP with opportunistic STARTTLS.
//! - [`dkim`]: the realm's DKIM keys and the signature on everything that
//!   leaves.
//! - [`inbound`]: SPF, DKIM and DMARC checks of mail from outside, and the
//!   `Authentication-Results` header they give.
//! - [`dsn`]: delivery status notifications (RFC 3464).
//!
//! The decisions are written in spec/internet.md. The types every part
//! shares are in [`outbound`].

pub mod dkim;
pub mod dsn;
mod header;
pub mod inbound;
pub mod outbound;
pub mod queue;
pub mod transport;
