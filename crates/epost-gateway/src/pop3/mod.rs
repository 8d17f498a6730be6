//! POP3 (RFC 1939) with CAPA, UIDL, TOP, PIPELINING and response codes
//! (RFC 2449), STLS (RFC 2595) and AUTH PLAIN (RFC 5034): a small view of
//! INBOX for clients that only download.
//!
//! [`session`] is the protocol as a state machine fed with bytes, with the
//! login in [`auth`] and the maildrop commands in [`maildrop`]; [`conn`]
//! is the tokio loop. Messages are numbered from the INBOX snapshot taken
//! at login; DELE only marks, and QUIT expunges what was marked. A
//! password never crosses the wire in plaintext except from loopback.

mod auth;
mod conn;
mod maildrop;
mod session;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;

use crate::backend::MailBackend;
use crate::context::Shared;

#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use session::Session;

/// Serves one POP3 connection to its end.
pub(crate) async fn serve<B: MailBackend>(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared<B>>,
) {
    conn::serve(stream, peer, shared).await
}

/// Serves one connection of the implicit-TLS port, its handshake done.
pub(crate) async fn serve_tls<B: MailBackend>(
    stream: tokio_rustls::server::TlsStream<TcpStream>,
    peer: SocketAddr,
    shared: Arc<Shared<B>>,
) {
    conn::serve_tls(stream, peer, shared).await
}
