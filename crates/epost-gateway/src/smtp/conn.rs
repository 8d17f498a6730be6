//! The tokio side of an SMTP connection: read, feed the session, write
//! its replies; upgrade to TLS on STARTTLS; say `421` and close when the
//! gateway stops or the client idles.
//!
//! The idle timeout is `limits.idle_timeout`, capped at the five minutes
//! RFC 5321 section 4.5.3.2.7 asks a server to wait for a command; the
//! TLS handshake gets the same time.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::debug;

use super::Mode;
use super::session::{Session, Step};
use crate::backend::MailBackend;
use crate::context::Shared;

/// The longest an SMTP client may stay silent.
const SMTP_IDLE: Duration = Duration::from_secs(5 * 60);

/// Bytes read at a time.
const READ_CHUNK: usize = 16 * 1024;

pub(super) async fn serve<B: MailBackend>(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared<B>>,
    mode: Mode,
) {
    let idle = shared.limits.idle_timeout.min(SMTP_IDLE);
    let mut session = Session::new(shared.clone(), mode, peer.ip());
    let step = match drive(&mut stream, &mut session, &shared, idle).await {
        Ok(step) => step,
        Err(e) => {
            debug!(%peer, error = %e, "SMTP connection ended");
            return;
        }
    };
    if step != Step::StartTls {
        let _ = stream.shutdown().await;
        return;
    }
    let Some(acceptor) = shared.tls.clone() else { return };
    let mut tls = match tokio::time::timeout(idle, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            debug!(%peer, error = %e, "SMTP TLS handshake failed");
            return;
        }
        Err(_) => {
            debug!(%peer, "SMTP TLS handshake timed out");
            return;
        }
    };
    session.tls_started();
    match drive(&mut tls, &mut session, &shared, idle).await {
        Ok(_) => {
            let _ = tls.shutdown().await;
        }
        Err(e) => debug!(%peer, error = %e, "SMTP connection ended"),
    }
}

/// Runs the session over `io` until it closes or asks for TLS.
async fn drive<B, S>(
    io: &mut S,
    session: &mut Session<B>,
    shared: &Shared<B>,
    idle: Duration,
) -> io::Result<Step>
where
    B: MailBackend,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut stopped = shared.stopped.clone();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        if *stopped.borrow_and_update() {
            session.shutting_down("Service shutting down");
            flush(io, session).await?;
            return Ok(Step::Close);
        }
        flush(io, session).await?;
        let read = tokio::select! {
            read = tokio::time::timeout(idle, io.read(&mut buf)) => read,
            changed = stopped.changed() => {
                if changed.is_err() {
                    // The gateway is gone without a shutdown: end too.
                    session.shutting_down("Service shutting down");
                    flush(io, session).await?;
                    return Ok(Step::Close);
                }
                continue;
            }
        };
        let n = match read {
            Ok(read) => read?,
            Err(_) => {
                session.shutting_down("Timeout; closing");
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

async fn flush<B: MailBackend, S: AsyncWrite + Unpin>(
    io: &mut S,
    session: &mut Session<B>,
) -> io::Result<()> {
    let out = session.take_output();
    if !out.is_empty() {
        io.write_all(&out).await?;
        io.flush().await?;
    }
    Ok(())
}
