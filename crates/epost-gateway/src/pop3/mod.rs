//! POP3 (RFC 1939) with CAPA, UIDL, TOP and STLS: a small view of INBOX.
//! (Being written.)

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;

use crate::backend::MailBackend;
use crate::context::Shared;

/// Serves one POP3 connection to its end.
pub(crate) async fn serve<B: MailBackend>(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared<B>>,
) {
    let _ = (stream, peer, shared);
}
