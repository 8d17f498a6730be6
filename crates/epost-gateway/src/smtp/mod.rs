//! SMTP (RFC 5321) inbound and submission. (Being written.)

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;

use crate::backend::MailBackend;
use crate::context::Shared;

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
    let _ = (stream, peer, shared, mode);
}
