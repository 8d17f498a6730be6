//! IMAP4rev1 (RFC 3501) with IDLE, UIDPLUS, MOVE, LITERAL+, NAMESPACE, ID,
//! SPECIAL-USE and STARTTLS. (Being written.)

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;

use crate::backend::MailBackend;
use crate::context::Shared;

/// Serves one IMAP connection to its end.
pub(crate) async fn serve<B: MailBackend>(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared<B>>,
) {
    let _ = (stream, peer, shared);
}
