//! The tokio side of a POP3 connection (the loop shared with SMTP): close
//! when the gateway stops (with `-ERR [SYS/TEMP]`) or the client idles past
//! `limits.idle_timeout` (RFC 1939 asks for at least ten minutes), or
//! takes longer than `limits.command_timeout` over one command line. A
//! session that ends without QUIT expunges nothing.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::session::Session;
use crate::backend::MailBackend;
use crate::context::Shared;
use crate::line::{self, Busy, LineSession, Step, Timeouts};

pub(super) async fn serve<B: MailBackend>(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared<B>>,
) {
    let session = Session::new(shared.clone(), peer.ip());
    let timeouts = Timeouts::new(&shared.limits, shared.limits.idle_timeout);
    let (tls, stopped) = (shared.tls.clone(), shared.stopped.clone());
    line::serve(stream, peer, "POP3", session, timeouts, tls, stopped).await;
}

/// Serves a POP3S (implicit TLS) connection whose handshake is done: the
/// session starts secure, so it takes passwords at once and offers no
/// STLS.
pub(super) async fn serve_tls<B: MailBackend>(
    stream: TlsStream<TcpStream>,
    peer: SocketAddr,
    shared: Arc<Shared<B>>,
) {
    let mut session = Session::new(shared.clone(), peer.ip());
    session.tls_started();
    let timeouts = Timeouts::new(&shared.limits, shared.limits.idle_timeout);
    let stopped = shared.stopped.clone();
    line::serve_secure(stream, peer, "POP3", session, timeouts, stopped).await;
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
        self.shutting_down();
    }

    fn timed_out(&mut self) {}

    fn busy(&self) -> Busy {
        Session::busy(self)
    }
}
