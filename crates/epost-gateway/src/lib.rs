//! epost's mail gateway: SMTP (inbound and submission), IMAP4rev1 and POP3
//! for ordinary mail clients, in front of any [`backend::MailBackend`].
//!
//! Each protocol is a sans-IO session (bytes in, replies out) with one file
//! per command family, driven by a small tokio connection loop that adds
//! TLS (rustls), limits and the login throttle. The node's mail service is
//! the real backend (`node`, behind the cargo feature of that name, so
//! the sessions build without the overlay); [`memory::MemoryBackend`]
//! serves the sessions' tests.

pub mod backend;
pub mod context;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod imap;
pub mod inbound;
mod line;
pub mod memory;
#[cfg(feature = "node")]
pub mod node;
mod pop3;
#[cfg(test)]
mod proptests;
pub mod server;
pub mod smtp;
mod socket;
#[cfg(any(test, feature = "fuzzing"))]
mod testing;
mod throttle;
pub mod tls;

pub use server::{BoundAddrs, Gateway, GatewayConfig, GatewayError};
