//! SMTP (RFC 5321): inbound mail for our users (MX) and authenticated
//! submission (RFC 6409), with STARTTLS (or TLS from the first byte on
//! the submissions port), SIZE, 8BITMIME, PIPELINING, CHUNKING, SMTPUTF8
//! and AUTH PLAIN/LOGIN.
//!
//! [`session`] is the protocol as a state machine fed with bytes (commands
//! parsed by `smtp-proto`); one file per command family beside it; [`conn`]
//! is the thin tokio loop that reads, writes, upgrades to TLS and applies
//! the timeouts. The server must never be an open relay: mail for foreign
//! domains is accepted only from authenticated submitters, and only when
//! the gateway is configured to relay for them.

mod auth;
mod conn;
mod data;
mod ehlo;
mod envelope;
mod postmaster;
mod session;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;

use crate::backend::MailBackend;
use crate::context::Shared;

#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use session::Session;

/// SASL PLAIN decoding, shared with POP3's AUTH.
pub(crate) use auth::{decode as decode_base64, split_plain};

/// Which SMTP service a listener offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// MX: mail for our users from anyone; no AUTH needed, no relaying.
    Inbound,
    /// Submission: AUTH required; may send anywhere the backend allows.
    Submission,
}

/// Serves one SMTP connection to its end.
pub(crate) async fn serve<B: MailBackend>(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared<B>>,
    mode: Mode,
) {
    conn::serve(stream, peer, shared, mode).await
}

/// Serves one connection of the implicit-TLS port, its handshake done.
pub(crate) async fn serve_tls<B: MailBackend>(
    stream: tokio_rustls::server::TlsStream<TcpStream>,
    peer: SocketAddr,
    shared: Arc<Shared<B>>,
    mode: Mode,
) {
    conn::serve_tls(stream, peer, shared, mode).await
}
