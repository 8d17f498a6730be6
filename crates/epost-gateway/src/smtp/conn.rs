//! The tokio side of an SMTP connection (the loop shared with POP3): say
//! `421` and close when the gateway stops or the client idles.
//!
//! The idle timeout is `limits.idle_timeout`, capped at the five minutes
//! RFC 5321 section 4.5.3.2.7 asks a server to wait for a command; the
//! TLS handshake gets the same time. A begun command line must be whole
//! within `limits.command_timeout`, message content within
//! `limits.data_timeout`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::Mode;
use super::session::Session;
use crate::backend::MailBackend;
use crate::context::Shared;
use crate::line::{self, Busy, LineSession, Step, Timeouts};

/// The longest an SMTP client may stay silent.
const SMTP_IDLE: Duration = Duration::from_secs(5 * 60);

pub(super) async fn serve<B: MailBackend>(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared<B>>,
    mode: Mode,
) {
    let session = Session::new(shared.clone(), mode, peer.ip());
    let timeouts = Timeouts::new(&shared.limits, SMTP_IDLE);
    let (tls, stopped) = (shared.tls.clone(), shared.stopped.clone());
    line::serve(stream, peer, "SMTP", session, timeouts, tls, stopped).await;
}

/// Serves a submissions (implicit TLS, RFC 8314) connection whose
/// handshake is done: the session starts secure, so it offers AUTH at
/// once and no STARTTLS.
pub(super) async fn serve_tls<B: MailBackend>(
    stream: TlsStream<TcpStream>,
    peer: SocketAddr,
    shared: Arc<Shared<B>>,
    mode: Mode,
) {
    let session = Session::under_tls(shared.clone(), mode, peer.ip());
    let timeouts = Timeouts::new(&shared.limits, SMTP_IDLE);
    let stopped = shared.stopped.clone();
    line::serve_secure(stream, peer, "SMTP", session, timeouts, stopped).await;
}

impl<B: MailBackend> LineSession for Session<B> {
    fn feed(&mut self, bytes: &[u8]) -> impl Future<Output = Step> + Send {
        Session::feed(self, bytes)
    }

    fn take_output(&mut self) -> Vec<u8> {
        Session::take_output(self)
    }

    fn tls_started(&mut self) {
        Session::tls_started(self);
    }

    fn stopping(&mut self) {
        self.shutting_down("Service shutting down");
    }

    fn timed_out(&mut self) {
        self.shutting_down("Timeout; closing");
    }

    fn busy(&self) -> Busy {
        Session::busy(self)
    }
}
