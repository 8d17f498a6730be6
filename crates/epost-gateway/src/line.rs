//! The tokio side shared by the line protocols (SMTP, POP3): read, feed
//! the sans-IO session, write what it says; upgrade to TLS when it asks;
//! let it say goodbye when the gateway stops or the client idles.
//!
//! Two clocks bound a session: the idle timeout between commands, and,
//! once a command line or message content has begun, a fixed deadline for
//! all of it ([`Timeouts`]). The second is what stops a slow-loris client
//! that sends one byte at a time, each just inside the idle timeout.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tracing::debug;

use crate::context::Limits;
use crate::socket::Transport;

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

/// What the session is in the middle of, which decides how long the
/// client may take to send the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Busy {
    /// Between commands: only the idle timeout applies.
    Idle,
    /// Part of a command line (or AUTH response) has arrived.
    Command,
    /// Message content (DATA, BDAT) is arriving.
    Data,
}

/// The clocks of one connection.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// Longest silence, also the TLS handshake's limit.
    pub(crate) idle: Duration,
    /// Longest a begun command line may take in all.
    pub(crate) command: Duration,
    /// Longest begun message content may take in all.
    pub(crate) data: Duration,
}

impl Timeouts {
    /// The limits' clocks, the idle one capped at `max_idle`.
    pub(crate) fn new(limits: &Limits, max_idle: Duration) -> Self {
        Self {
            idle: limits.idle_timeout.min(max_idle),
            command: limits.command_timeout,
            data: limits.data_timeout,
        }
    }
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
    /// The client was silent, or too slow, too long: queue the goodbye,
    /// if any.
    fn timed_out(&mut self);
    /// What the session is in the middle of.
    fn busy(&self) -> Busy;
}

/// Serves one connection to its end (plaintext, then TLS after STARTTLS).
pub(crate) async fn serve<L: LineSession>(
    mut stream: TcpStream,
    peer: SocketAddr,
    protocol: &'static str,
    mut session: L,
    timeouts: Timeouts,
    tls: Option<TlsAcceptor>,
    stopped: watch::Receiver<bool>,
) {
    let step = match drive(&mut stream, &mut session, stopped.clone(), timeouts).await {
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
    let mut tls = match tokio::time::timeout(timeouts.idle, acceptor.accept(stream)).await {
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
    match drive(&mut tls, &mut session, stopped, timeouts).await {
        Ok(_) => {
            let _ = tls.shutdown().await;
        }
        Err(e) => debug!(%peer, protocol, error = %e, "connection ended"),
    }
}

/// Serves a connection that is under TLS from its first byte (the
/// implicit-TLS ports): the session was told so before its first read,
/// so it refuses STARTTLS itself; should it ask anyway, the connection
/// ends.
pub(crate) async fn serve_secure<L: LineSession>(
    mut stream: tokio_rustls::server::TlsStream<TcpStream>,
    peer: SocketAddr,
    protocol: &'static str,
    mut session: L,
    timeouts: Timeouts,
    stopped: watch::Receiver<bool>,
) {
    match drive(&mut stream, &mut session, stopped, timeouts).await {
        Ok(_) => {
            let _ = stream.shutdown().await;
        }
        Err(e) => debug!(%peer, protocol, error = %e, "connection ended"),
    }
}

/// Runs the session over `io` until it closes or asks for TLS.
async fn drive<L, S>(
    io: &mut S,
    session: &mut L,
    mut stopped: watch::Receiver<bool>,
    timeouts: Timeouts,
) -> io::Result<Step>
where
    L: LineSession,
    S: AsyncRead + AsyncWrite + Transport + Unpin,
{
    let mut buf = vec![0u8; READ_CHUNK];
    // What the session was busy with, and since when.
    let mut busy: Option<(Busy, Instant)> = None;
    loop {
        if *stopped.borrow_and_update() {
            session.stopping();
            flush(io, session).await?;
            return Ok(Step::Close);
        }
        // A reply means a command (or a BDAT chunk) was finished: what
        // is pending now began with this read, not an earlier one.
        let answered = flush(io, session).await?;
        let now = Instant::now();
        busy = match (session.busy(), busy) {
            (Busy::Idle, _) => None,
            (kind, Some((was, since))) if was == kind && !answered => Some((was, since)),
            (kind, _) => Some((kind, now)),
        };
        if busy.is_some() {
            // A command has begun: let a client holding back its rest
            // for our ACK (Nagle) send it now.
            io.ack_now();
        }
        let deadline = match busy {
            None => now + timeouts.idle,
            Some((kind, since)) => {
                let total = if kind == Busy::Data { timeouts.data } else { timeouts.command };
                (now + timeouts.idle).min(since + total)
            }
        };
        let read = tokio::select! {
            read = tokio::time::timeout_at(deadline, io.read(&mut buf)) => read,
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

/// Writes what the session said; returns whether it said anything.
async fn flush<L: LineSession, S: AsyncWrite + Unpin>(
    io: &mut S,
    session: &mut L,
) -> io::Result<bool> {
    let out = session.take_output();
    if !out.is_empty() {
        io.write_all(&out).await?;
        io.flush().await?;
    }
    Ok(!out.is_empty())
}
