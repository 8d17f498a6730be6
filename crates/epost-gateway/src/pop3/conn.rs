//! The tokio side of a POP3 connection: read, feed the session, write
//! its responses; upgrade to TLS on STLS; close when the gateway stops
//! (with `-ERR [SYS/TEMP]`) or the client idles past
//! `limits.idle_timeout` (RFC 1939 asks for at least ten minutes). A
//! session that ends without QUIT expunges nothing.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::debug;

use super::session::{Session, Step};
use crate::backend::MailBackend;
use crate::context::Shared;

/// Bytes read at a time.
const READ_CHUNK: usize = 16 * 1024;

pub(super) async fn serve<B: MailBackend>(
    mut stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared<B>>,
) {
    let idle = shared.limits.idle_timeout;
    let mut session = Session::new(shared.clone(), peer.ip());
    let step = match drive(&mut stream, &mut session, &shared, idle).await {
        Ok(step) => step,
        Err(e) => {
            debug!(%peer, error = %e, "POP3 connection ended");
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
            debug!(%peer, error = %e, "POP3 TLS handshake failed");
            return;
        }
        Err(_) => {
            debug!(%peer, "POP3 TLS handshake timed out");
            return;
        }
    };
    session.tls_started();
    match drive(&mut tls, &mut session, &shared, idle).await {
        Ok(_) => {
            let _ = tls.shutdown().await;
        }
        Err(e) => debug!(%peer, error = %e, "POP3 connection ended"),
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
            session.shutting_down();
            flush(io, session).await?;
            return Ok(Step::Close);
        }
        flush(io, session).await?;
        let read = tokio::select! {
            read = tokio::time::timeout(idle, io.read(&mut buf)) => read,
            changed = stopped.changed() => {
                if changed.is_err() {
                    // The gateway is gone without a shutdown: end too.
                    session.shutting_down();
                    flush(io, session).await?;
                    return Ok(Step::Close);
                }
                continue;
            }
        };
        let n = match read {
            Ok(read) => read?,
            Err(_) => return Ok(Step::Close),
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
