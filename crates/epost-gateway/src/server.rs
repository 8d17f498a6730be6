//! Listeners: one accept loop per configured protocol, a session task per
//! connection (bounded in all: past the bound a client hears the
//! protocol's "try later" at once), and an orderly shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use crate::backend::MailBackend;
use crate::context::{Limits, Shared};
use crate::tls::{TlsError, TlsSource, acceptor};
use crate::{imap, pop3, smtp};

/// What to serve where. Every listener is optional; port 0 picks a port.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Inbound SMTP (MX): mail for our users from anyone, no relaying.
    pub smtp: Option<SocketAddr>,
    /// Submission: AUTH required (over TLS, or plaintext on loopback).
    pub submission: Option<SocketAddr>,
    pub imap: Option<SocketAddr>,
    pub pop3: Option<SocketAddr>,
    pub tls: TlsSource,
    pub hostname: String,
    pub limits: Limits,
    /// Authenticated submitters may send to foreign domains (the backend
    /// hands those to the smart host).
    pub relay_for_submitters: bool,
    /// SPF/DKIM/DMARC checks of MX mail; `None` delivers it unchecked.
    pub inbound: Option<crate::inbound::InboundChecks>,
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot set up TLS")]
    Tls(#[from] TlsError),
    #[error("cannot listen for {protocol} on {addr}")]
    Bind {
        protocol: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Where each protocol ended up listening.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BoundAddrs {
    pub smtp: Option<SocketAddr>,
    pub submission: Option<SocketAddr>,
    pub imap: Option<SocketAddr>,
    pub pop3: Option<SocketAddr>,
}

/// A running gateway.
pub struct Gateway {
    pub addrs: BoundAddrs,
    stop: watch::Sender<bool>,
    loops: JoinSet<()>,
}

#[derive(Clone, Copy)]
enum Protocol {
    Smtp(smtp::Mode),
    Imap,
    Pop3,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Smtp(smtp::Mode::Inbound) => "SMTP",
            Protocol::Smtp(smtp::Mode::Submission) => "submission",
            Protocol::Imap => "IMAP",
            Protocol::Pop3 => "POP3",
        }
    }

    /// What a client past the session limit hears before the close.
    fn refusal(self, hostname: &str) -> String {
        match self {
            Protocol::Smtp(_) => {
                format!("421 4.7.0 {hostname} Too many connections; try again later\r\n")
            }
            Protocol::Imap => {
                "* BYE [UNAVAILABLE] Too many connections; try again later\r\n".into()
            }
            Protocol::Pop3 => "-ERR [SYS/TEMP] Too many connections; try again later\r\n".into(),
        }
    }
}

impl Gateway {
    /// Binds every configured listener, then serves until [`Gateway::shutdown`].
    pub async fn start<B: MailBackend>(
        config: GatewayConfig,
        backend: B,
    ) -> Result<Self, GatewayError> {
        let tls = acceptor(&config.tls)?;
        let (stop, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            backend,
            tls: Some(tls),
            limits: config.limits.clone(),
            throttle: config.limits.throttle(),
            hostname: config.hostname.clone(),
            relay_for_submitters: config.relay_for_submitters,
            inbound: config.inbound.clone(),
            stopped,
            recent: Default::default(),
        });
        let sessions = Arc::new(Semaphore::new(config.limits.max_sessions));
        let mut addrs = BoundAddrs::default();
        let mut loops = JoinSet::new();
        let wanted = [
            (config.smtp, Protocol::Smtp(smtp::Mode::Inbound)),
            (config.submission, Protocol::Smtp(smtp::Mode::Submission)),
            (config.imap, Protocol::Imap),
            (config.pop3, Protocol::Pop3),
        ];
        for (addr, protocol) in wanted {
            let Some(addr) = addr else { continue };
            let listener = TcpListener::bind(addr).await.map_err(|source| GatewayError::Bind {
                protocol: protocol.name(),
                addr,
                source,
            })?;
            let bound = listener.local_addr().map_err(|source| GatewayError::Bind {
                protocol: protocol.name(),
                addr,
                source,
            })?;
            info!(protocol = protocol.name(), %bound, "gateway listening");
            match protocol {
                Protocol::Smtp(smtp::Mode::Inbound) => addrs.smtp = Some(bound),
                Protocol::Smtp(smtp::Mode::Submission) => addrs.submission = Some(bound),
                Protocol::Imap => addrs.imap = Some(bound),
                Protocol::Pop3 => addrs.pop3 = Some(bound),
            }
            loops.spawn(accept_loop(listener, protocol, shared.clone(), sessions.clone()));
        }
        Ok(Self { addrs, stop, loops })
    }

    /// Stops accepting, tells sessions to finish, and waits for the
    /// listeners (sessions end at their next command boundary).
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.loops.join_next().await.is_some() {}
    }
}

async fn accept_loop<B: MailBackend>(
    listener: TcpListener,
    protocol: Protocol,
    shared: Arc<Shared<B>>,
    sessions: Arc<Semaphore>,
) {
    let mut stopped = shared.stopped.clone();
    let mut running = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.changed() => break,
            Some(_) = running.join_next(), if !running.is_empty() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait a moment.
                warn!(protocol = protocol.name(), error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = sessions.clone().try_acquire_owned() else {
            debug!(%peer, "too many sessions; refusing");
            refuse(stream, &protocol.refusal(&shared.hostname));
            continue;
        };
        crate::socket::accepted(&stream);
        let shared = shared.clone();
        running.spawn(async move {
            match protocol {
                Protocol::Smtp(mode) => smtp::serve(stream, peer, shared, mode).await,
                Protocol::Imap => imap::serve(stream, peer, shared).await,
                Protocol::Pop3 => pop3::serve(stream, peer, shared).await,
            }
            drop(permit);
        });
    }
    // Sessions see `stopped` too; give them a bounded time to finish.
    let drain = async { while running.join_next().await.is_some() {} };
    if tokio::time::timeout(std::time::Duration::from_secs(10), drain).await.is_err() {
        running.abort_all();
    }
}

/// Tells a client past the session limit to come back later, without a
/// task or a wait: one non-blocking write into the fresh socket's empty
/// send buffer (a few dozen bytes always fit), then the close.
fn refuse(stream: tokio::net::TcpStream, refusal: &str) {
    use std::io::Write;
    let Ok(mut stream) = stream.into_std() else { return };
    let _ = stream.write(refusal.as_bytes());
    let _ = stream.shutdown(std::net::Shutdown::Write);
}
