//! The tokio side shared by the line protocols (SMTP, POP3): read, feed
//! the sans-IO session, write what it says; upgrade to TLS when it asks;
//! let it say goodbye when the gateway stops or the client idles.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::debug;

/// Bytes read at a time.
const READ_CHUNK: usize = 16 * 1024;

/// What the connection does after a batch of input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Write the output and read on.
    Continue,
    /// Write the output, run the TLS handshake, then call
    /// [`LineSession::tls_started`]; unread input is discarded.
    StartTls,
    /// Write the output and close.
    Close,
}

/// A sans-IO line protocol session as the connection loop drives it.
pub(crate) trait LineSession: Send {
    /// Takes bytes from the client; says what to do next.
    fn feed(&mut self, bytes: &[u8]) -> impl Future<Output = Step> + Send;
    /// What to write to the client so far.
    fn take_output(&mut self) -> Vec<u8>;
    /// The TLS handshake finished.
    fn tls_started(&mut self);
    /// The gateway is stopping: queue the goodbye.
    fn stopping(&mut self);
    /// The client was silent too long: queue the goodbye, if any.
    fn timed_out(&mut self);
}

/// Serves one connection to its end (plaintext, then TLS after STARTTLS).
pub(crate) async fn serve<L: LineSession>(
    mut stream: TcpStream,
    peer: SocketAddr,
    protocol: &'static str,
    mut session: L,
    idle: Duration,
    tls: Option<TlsAcceptor>,
    stopped: watch::Receiver<bool>,
) {
    let step = match drive(&mut stream, &mut session, stopped.clone(), idle).await {
        Ok(step) => step,
        Err(e) => {
            debug!(%peer, protocol, error = %e, "connection ended");
            return;
        }
    };
    if step != Step::StartTls {
        let _ = stream.shutdown().await;
        return;
    }
    let Some(acceptor) = tls else { return };
    let mut tls = match tokio::time::timeout(idle, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            debug!(%peer, protocol, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            debug!(%peer, protocol, "TLS handshake timed out");
            return;
        }
    };
    session.tls_started();
    match drive(&mut tls, &mut session, stopped, idle).await {
        Ok(_) => {
            let _ = tls.shutdown().await;
        }
        Err(e) => debug!(%peer, protocol, error = %e, "connection ended"),
    }
}

/// Runs the session over `io` until it closes or asks for TLS.
async fn drive<L, S>(
    io: &mut S,
    session: &mut L,
    mut stopped: watch::Receiver<bool>,
    idle: Duration,
) -> io::Result<Step>
where
    L: LineSession,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        if *stopped.borrow_and_update() {
            session.stopping();
            flush(io, session).await?;
            return Ok(Step::Close);
        }
        flush(io, session).await?;
        let read = tokio::select! {
            read = tokio::time::timeout(idle, io.read(&mut buf)) => read,
            changed = stopped.changed() => {
                if changed.is_err() {
                    // The gateway is gone without a shutdown: end too.
                    session.stopping();
                    flush(io, session).await?;
                    return Ok(Step::Close);
                }
                continue;
            }
        };
        let n = match read {
            Ok(read) => read?,
            Err(_) => {
                session.timed_out();
                flush(io, session).await?;
                return Ok(Step::Close);
            }
        };
        if n == 0 {
            return Ok(Step::Close);
        }
        let step = session.feed(&buf[..n]).await;
        if step != Step::Continue {
            flush(io, session).await?;
            return Ok(step);
        }
    }
}

async fn flush<L: LineSession, S: AsyncWrite + Unpin>(
    io: &mut S,
    session: &mut L,
) -> io::Result<()> {
    let out = session.take_output();
    if !out.is_empty() {
        io.write_all(&out).await?;
        io.flush().await?;
    }
    Ok(())
}
