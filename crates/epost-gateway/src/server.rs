//! Listeners: one accept loop per configured protocol, a session task per
//! connection (bounded in all: past the bound a client hears the
//! protocol's "try later" at once), and an orderly shutdown.
//!
//! The implicit-TLS ports (RFC 8314: submissions, IMAPS, POP3S) run the
//! same sessions as their STARTTLS siblings, begun already secure: the
//! handshake comes first, within [`HANDSHAKE`], while holding the
//! connection's session permit, so the session bound is also the bound
//! on handshakes in progress. A client past that bound is closed without
//! a word (a plaintext "try later" means nothing to a TLS client).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use epost_types::address::Address;

use crate::backend::MailBackend;
use crate::context::{Limits, Shared};
use crate::tls::{TlsError, TlsSource, acceptor};
use crate::{imap, pop3, smtp};
use tokio_rustls::server::TlsStream;

/// What to serve where. Every listener is optional; port 0 picks a port.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Inbound SMTP (MX): mail for our users from anyone, no relaying.
    pub smtp: Option<SocketAddr>,
    /// Submission: AUTH required (over TLS, or plaintext on loopback).
    pub submission: Option<SocketAddr>,
    pub imap: Option<SocketAddr>,
    pub pop3: Option<SocketAddr>,
    /// Submission over implicit TLS (RFC 8314, port 465).
    pub submissions: Option<SocketAddr>,
    /// IMAP over implicit TLS (port 993).
    pub imaps: Option<SocketAddr>,
    /// POP3 over implicit TLS (port 995).
    pub pop3s: Option<SocketAddr>,
    /// Where `RCPT TO:<postmaster>` goes when set; else `postmaster@` a
    /// realm the backend serves (spec/mail.md).
    pub postmaster: Option<Address>,
    pub tls: TlsSource,
    pub hostname: String,
    pub limits: Limits,
    /// Authenticated submitters may send to foreign domains (the node's
    /// backend queues those for delivery; `epost node run` always sets it).
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
    pub submissions: Option<SocketAddr>,
    pub imaps: Option<SocketAddr>,
    pub pop3s: Option<SocketAddr>,
}

/// A running gateway.
pub struct Gateway {
    pub addrs: BoundAddrs,
    stop: watch::Sender<bool>,
    loops: JoinSet<()>,
}

/// The longest a TLS handshake on an implicit-TLS port may take (less
/// if the idle timeout is shorter), as for IMAP's STARTTLS.
const HANDSHAKE: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Smtp(smtp::Mode),
    Imap,
    Pop3,
}

/// One listener's service: the protocol, and whether TLS comes first.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Service {
    protocol: Protocol,
    implicit_tls: bool,
}

impl Service {
    const fn plain(protocol: Protocol) -> Self {
        Self { protocol, implicit_tls: false }
    }

    const fn secure(protocol: Protocol) -> Self {
        Self { protocol, implicit_tls: true }
    }

    fn name(self) -> &'static str {
        match (self.protocol, self.implicit_tls) {
            (Protocol::Smtp(smtp::Mode::Inbound), _) => "SMTP",
            (Protocol::Smtp(smtp::Mode::Submission), false) => "submission",
            (Protocol::Smtp(smtp::Mode::Submission), true) => "submissions",
            (Protocol::Imap, false) => "IMAP",
            (Protocol::Imap, true) => "IMAPS",
            (Protocol::Pop3, false) => "POP3",
            (Protocol::Pop3, true) => "POP3S",
        }
    }
}

impl Protocol {
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
            postmaster: config.postmaster.clone(),
            inbound: config.inbound.clone(),
            stopped,
            recent: Default::default(),
        });
        let sessions = Arc::new(Semaphore::new(config.limits.max_sessions));
        let mut addrs = BoundAddrs::default();
        let mut loops = JoinSet::new();
        let submission = Protocol::Smtp(smtp::Mode::Submission);
        let wanted = [
            (config.smtp, Service::plain(Protocol::Smtp(smtp::Mode::Inbound)), &mut addrs.smtp),
            (config.submission, Service::plain(submission), &mut addrs.submission),
            (config.imap, Service::plain(Protocol::Imap), &mut addrs.imap),
            (config.pop3, Service::plain(Protocol::Pop3), &mut addrs.pop3),
            (config.submissions, Service::secure(submission), &mut addrs.submissions),
            (config.imaps, Service::secure(Protocol::Imap), &mut addrs.imaps),
            (config.pop3s, Service::secure(Protocol::Pop3), &mut addrs.pop3s),
        ];
        for (addr, service, slot) in wanted {
            let Some(addr) = addr else { continue };
            let protocol = service.name();
            let listener = TcpListener::bind(addr).await.map_err(|source| GatewayError::Bind {
                protocol,
                addr,
                source,
            })?;
            let bound = listener.local_addr().map_err(|source| GatewayError::Bind {
                protocol,
                addr,
                source,
            })?;
            info!(protocol, %bound, "gateway listening");
            *slot = Some(bound);
            loops.spawn(accept_loop(listener, service, shared.clone(), sessions.clone()));
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
    service: Service,
    shared: Arc<Shared<B>>,
    sessions: Arc<Semaphore>,
) {
    let protocol = service.protocol;
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
                warn!(protocol = service.name(), error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = sessions.clone().try_acquire_owned() else {
            debug!(%peer, "too many sessions; refusing");
            if !service.implicit_tls {
                refuse(stream, &protocol.refusal(&shared.hostname));
            }
            continue;
        };
        crate::socket::accepted(&stream);
        let shared = shared.clone();
        running.spawn(async move {
            if !service.implicit_tls {
                match protocol {
                    Protocol::Smtp(mode) => smtp::serve(stream, peer, shared, mode).await,
                    Protocol::Imap => imap::serve(stream, peer, shared).await,
                    Protocol::Pop3 => pop3::serve(stream, peer, shared).await,
                }
            } else if let Some(tls) = handshake(stream, peer, service, &shared).await {
                match protocol {
                    Protocol::Smtp(mode) => smtp::serve_tls(tls, peer, shared, mode).await,
                    Protocol::Imap => imap::serve_tls(tls, peer, shared).await,
                    Protocol::Pop3 => pop3::serve_tls(tls, peer, shared).await,
                }
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

/// The TLS handshake of an implicit-TLS port, bounded in time; `None`
/// when it failed, timed out or the gateway stopped meanwhile.
async fn handshake<B: MailBackend>(
    stream: TcpStream,
    peer: SocketAddr,
    service: Service,
    shared: &Shared<B>,
) -> Option<TlsStream<TcpStream>> {
    let acceptor = shared.tls.clone()?;
    let limit = HANDSHAKE.min(shared.limits.idle_timeout);
    let mut stopped = shared.stopped.clone();
    let protocol = service.name();
    tokio::select! {
        done = tokio::time::timeout(limit, acceptor.accept(stream)) => match done {
            Ok(Ok(tls)) => Some(tls),
            Ok(Err(error)) => {
                debug!(%peer, protocol, %error, "TLS handshake failed");
                None
            }
            Err(_) => {
                debug!(%peer, protocol, "TLS handshake timed out");
                None
            }
        },
        _ = stopped.wait_for(|&s| s) => None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryBackend;
    use crate::testing::addr;
    use rustls::pki_types::ServerName;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio_rustls::client::TlsStream as ClientTls;

    /// A gateway with only the implicit-TLS ports, on loopback.
    async fn start(dir: &std::path::Path) -> Gateway {
        let backend = MemoryBackend::new(&["example.test"]);
        backend.add_user(&addr("alice@example.test"), "alice-pw");
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let config = GatewayConfig {
            smtp: None,
            submission: None,
            imap: None,
            pop3: None,
            submissions: Some(any),
            imaps: Some(any),
            pop3s: Some(any),
            postmaster: None,
            inbound: None,
            tls: TlsSource::SelfSigned {
                dir: dir.into(),
                names: crate::tls::self_signed_names("gw.example.test", [any.ip()]),
            },
            hostname: "gw.example.test".into(),
            limits: Limits::default(),
            relay_for_submitters: false,
        };
        Gateway::start(config, backend).await.unwrap()
    }

    /// A client that trusts only the gateway's certificate and checks it
    /// names the address dialled (127.0.0.1).
    async fn connect(
        at: Option<SocketAddr>,
        dir: &std::path::Path,
    ) -> BufReader<ClientTls<TcpStream>> {
        let config = crate::tls::client_trusting(dir);
        let at = at.expect("listening");
        let tcp = TcpStream::connect(at).await.unwrap();
        let name = ServerName::IpAddress(at.ip().into());
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await;
        BufReader::new(tls.unwrap())
    }

    /// Sends `say` (unless empty), then reads lines up to and including
    /// the one starting with `last`.
    async fn exchange<S: tokio::io::AsyncRead + AsyncWriteExt + Unpin>(
        client: &mut BufReader<S>,
        say: &str,
        last: &str,
    ) -> String {
        if !say.is_empty() {
            client.get_mut().write_all(say.as_bytes()).await.unwrap();
            client.get_mut().flush().await.unwrap();
        }
        let mut heard = String::new();
        loop {
            let mut line = String::new();
            assert!(client.read_line(&mut line).await.unwrap() > 0, "closed; heard {heard:?}");
            heard.push_str(&line);
            if line.starts_with(last) {
                return heard;
            }
        }
    }

    #[tokio::test]
    async fn implicit_tls_ports_greet_under_tls_and_offer_no_starttls() {
        let dir = tempfile::tempdir().unwrap();
        let gateway = start(dir.path()).await;
        let addrs = gateway.addrs;
        assert!(addrs.smtp.is_none() && addrs.imap.is_none(), "only what was asked for");

        let mut smtp = connect(addrs.submissions, dir.path()).await;
        assert!(exchange(&mut smtp, "", "220 ").await.starts_with("220 gw.example.test "));
        let ehlo = exchange(&mut smtp, "EHLO client.test\r\n", "250 ").await;
        assert!(ehlo.contains("AUTH PLAIN LOGIN") && !ehlo.contains("STARTTLS"), "{ehlo}");
        let plain = data_encoding::BASE64.encode(b"\0alice@example.test\0alice-pw");
        let auth = exchange(&mut smtp, &format!("AUTH PLAIN {plain}\r\n"), "235 ").await;
        assert!(auth.starts_with("235 "), "{auth}");
        assert!(exchange(&mut smtp, "STARTTLS\r\n", "503 ").await.starts_with("503 "));

        let mut imap = connect(addrs.imaps, dir.path()).await;
        let greeting = exchange(&mut imap, "", "* OK").await;
        assert!(greeting.contains("AUTH=PLAIN") && !greeting.contains("STARTTLS"), "{greeting}");
        let login = exchange(&mut imap, "a LOGIN alice@example.test alice-pw\r\n", "a ").await;
        assert!(login.starts_with("a OK"), "{login}");

        let mut pop3 = connect(addrs.pop3s, dir.path()).await;
        assert!(exchange(&mut pop3, "", "+OK").await.starts_with("+OK"));
        let capa = exchange(&mut pop3, "CAPA\r\n", ".").await;
        assert!(capa.contains("USER") && !capa.contains("STLS"), "{capa}");
        exchange(&mut pop3, "USER alice@example.test\r\n", "+OK").await;
        assert!(exchange(&mut pop3, "PASS alice-pw\r\n", "").await.starts_with("+OK"));

        gateway.shutdown().await;
    }

    #[tokio::test]
    async fn a_plaintext_client_on_an_implicit_tls_port_is_closed_unanswered() {
        let dir = tempfile::tempdir().unwrap();
        let gateway = start(dir.path()).await;
        let mut tcp = TcpStream::connect(gateway.addrs.imaps.unwrap()).await.unwrap();
        tcp.write_all(b"a CAPABILITY\r\n").await.unwrap();
        let mut heard = Vec::new();
        // The handshake fails on the first bytes: at most a TLS alert, never IMAP.
        let _ = tcp.read_to_end(&mut heard).await;
        assert!(!heard.starts_with(b"*") && !heard.starts_with(b"a "), "{heard:?}");
        gateway.shutdown().await;
    }
}
