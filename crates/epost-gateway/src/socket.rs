//! What the gateway asks of its client sockets beyond reading and
//! writing: replies leave at once (no Nagle delay, set at accept), and
//! input that stops in the middle of a command is acknowledged at once.
//!
//! Why the second: many clients (Python's imaplib, for one) write an
//! APPEND literal and its closing CRLF as two writes with Nagle's
//! algorithm on, so the CRLF waits until the literal is acknowledged.
//! The server has nothing to answer before that CRLF, so its ACK waited
//! for the delayed-ACK timer: 40 ms on Linux, added to every such
//! APPEND (and to an SMTP client's final dot written on its own). Asking
//! for a quick ACK whenever a begun command waits for its rest removes
//! that wait; where the option does not exist this does nothing.

use tokio::io::{AsyncWrite, BufWriter};
use tokio::net::TcpStream;

/// A client connection the loops can ask for an immediate ACK.
pub(crate) trait Transport {
    /// Acknowledge what has arrived now, not when the delayed-ACK timer
    /// fires. Best effort: a failure only means the usual delay.
    fn ack_now(&self) {}
}

/// Sets what every accepted client socket gets before its session runs.
pub(crate) fn accepted(stream: &TcpStream) {
    // Replies are written whole, one flush per command: send at once.
    let _ = stream.set_nodelay(true);
}

impl Transport for TcpStream {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn ack_now(&self) {
        // Not sticky: the kernel may return to delayed ACKs later, which
        // is why the loops ask again each time they wait mid-command.
        let _ = socket2::SockRef::from(self).set_tcp_quickack(true);
    }
}

impl<S: Transport + AsyncWrite> Transport for BufWriter<S> {
    fn ack_now(&self) {
        self.get_ref().ack_now();
    }
}

impl<S: Transport> Transport for tokio_rustls::server::TlsStream<S> {
    fn ack_now(&self) {
        self.get_ref().0.ack_now();
    }
}

impl<S: Transport> Transport for &mut S {
    fn ack_now(&self) {
        (**self).ack_now();
    }
}

/// In-process streams (tests, fuzzing) have no ACKs.
impl Transport for tokio::io::DuplexStream {}
