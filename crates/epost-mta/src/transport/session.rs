//! One SMTP session with one address, over mail-send's low-level
//! `SmtpClient`: connect, greeting, EHLO (HELO when EHLO is refused),
//! STARTTLS as the [`Security`] says, AUTH, then one transaction (MAIL
//! FROM, a RCPT TO per recipient, DATA) and QUIT. Every wait has its
//! stage's timeout.
//!
//! The seam to the caller: an `Err` means this host never took part in
//! the transaction (no connection, a refused greeting, a failed TLS
//! handshake...) and the next host may be tried; `Ok` holds an outcome
//! per recipient once the host answered `MAIL FROM` (or was found unable
//! to take the message at all).

use std::net::SocketAddr;
use std::time::Duration;

use mail_send::{Credentials, SmtpClient};
use smtp_proto::{AUTH_LOGIN, AUTH_PLAIN, EhloResponse};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::config::Timeouts;
use super::data;
use super::envelope::{self, Extensions};
use super::reply::{self, Verdict, describe, from_response};
use crate::outbound::{Message, Outcome, Reply};

/// How the session protects itself.
#[derive(Clone)]
pub(crate) enum Security {
    /// STARTTLS when offered (any certificate), plaintext when not.
    Opportunistic(TlsConnector),
    /// Plaintext, STARTTLS offered or not: the retry after a failed
    /// handshake, and a smart host with `tls = "none"`.
    Plaintext,
    /// STARTTLS, which the server must offer.
    RequireStartTls(TlsConnector),
    /// TLS from the first byte.
    Implicit(TlsConnector),
}

/// What every session of a transport shares.
pub(crate) struct Setup<'a> {
    /// Our EHLO name.
    pub(crate) hostname: &'a str,
    pub(crate) timeouts: &'a Timeouts,
    /// AUTH PLAIN or LOGIN with these, after TLS.
    pub(crate) credentials: Option<&'a Credentials<String>>,
}

/// The other side: its name (for TLS and for the outcomes) and address.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer<'a> {
    pub(crate) name: &'a str,
    pub(crate) addr: SocketAddr,
}

/// Where in a session something went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Connect,
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    Auth,
    Mail,
    Rcpt,
    Data,
    Message,
    EndOfData,
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stage::Connect => "connect",
            Stage::Greeting => "greeting",
            Stage::Ehlo => "EHLO",
            Stage::Helo => "HELO",
            Stage::StartTls => "STARTTLS",
            Stage::Auth => "AUTH",
            Stage::Mail => "MAIL FROM",
            Stage::Rcpt => "RCPT TO",
            Stage::Data => "DATA",
            Stage::Message => "sending the message",
            Stage::EndOfData => "end of data",
        })
    }
}

/// Why a session ended before (or outside) an answered transaction.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    #[error("cannot connect to {addr}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{stage}: no answer within {timeout:?}")]
    Timeout { stage: Stage, timeout: Duration },
    #[error("{stage}: the connection failed")]
    Io {
        stage: Stage,
        #[source]
        source: std::io::Error,
    },
    #[error("{stage}: the connection closed, or what came was no SMTP reply")]
    Garbled { stage: Stage },
    #[error("{stage}: {}", describe(.reply))]
    Refused { stage: Stage, reply: Reply },
    #[error("the TLS handshake failed")]
    Handshake(#[source] mail_send::Error),
    #[error("STARTTLS is not offered")]
    NoStartTls,
    #[error("neither AUTH PLAIN nor AUTH LOGIN is offered")]
    NoAuthMechanism,
    #[error("a password goes only over TLS")]
    AuthInClear,
    #[error("{stage} failed")]
    Other {
        stage: Stage,
        #[source]
        source: mail_send::Error,
    },
}

impl SessionError {
    /// The remote server's reply this error is about, if any.
    pub(crate) fn reply(&self) -> Option<&Reply> {
        match self {
            SessionError::Refused { reply, .. } => Some(reply),
            _ => None,
        }
    }

    /// Whether the TLS handshake failed (opportunistic TLS then tries the
    /// same host in plaintext).
    pub(crate) fn is_handshake(&self) -> bool {
        matches!(self, SessionError::Handshake(_))
    }

    /// Whether the server is still there to be told QUIT.
    fn polite(&self) -> bool {
        matches!(
            self,
            SessionError::Refused { .. }
                | SessionError::NoStartTls
                | SessionError::NoAuthMechanism
                | SessionError::AuthInClear
        )
    }
}

/// Maps mail-send's error at `stage` (whose timeout was `timeout`).
fn at(stage: Stage, timeout: Duration) -> impl FnOnce(mail_send::Error) -> SessionError {
    move |e| match e {
        mail_send::Error::Io(source) => SessionError::Io { stage, source },
        mail_send::Error::Timeout => SessionError::Timeout { stage, timeout },
        mail_send::Error::UnparseableReply => SessionError::Garbled { stage },
        mail_send::Error::UnexpectedReply(r) | mail_send::Error::AuthenticationFailed(r) => {
            SessionError::Refused { stage, reply: from_response(&r) }
        }
        source => SessionError::Other { stage, source },
    }
}

/// The whole error chain in one line, for an outcome's reason.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// One session with `peer`, delivering `message`.
pub(crate) async fn deliver(
    setup: &Setup<'_>,
    peer: Peer<'_>,
    security: &Security,
    message: &Message<'_>,
) -> Result<Vec<Outcome>, SessionError> {
    let t = setup.timeouts;
    let tcp = SmtpClient::connect(peer.addr, t.connect).await.map_err(|e| match e {
        mail_send::Error::Io(source) => SessionError::Connect { addr: peer.addr, source },
        other => at(Stage::Connect, t.connect)(other),
    })?;
    if let Security::Implicit(tls) = security {
        let mut c = handshake(tcp, tls, peer.name, t.connect).await?;
        let ext = match open(&mut c, setup).await {
            Ok(ext) => ext,
            Err(e) => return bail(&mut c, t, e).await,
        };
        return finish(&mut c, setup, peer, &ext, true, message).await;
    }
    let mut c = tcp;
    let ext = match open(&mut c, setup).await {
        Ok(ext) => ext,
        Err(e) => return bail(&mut c, t, e).await,
    };
    let (tls, required) = match security {
        Security::Opportunistic(tls) if ext.starttls => (Some(tls), false),
        Security::RequireStartTls(_) if !ext.starttls => {
            return bail(&mut c, t, SessionError::NoStartTls).await;
        }
        Security::RequireStartTls(tls) => (Some(tls), true),
        _ => (None, false),
    };
    if let Some(tls) = tls {
        c.timeout = t.starttls;
        let r = c.cmd(b"STARTTLS\r\n").await.map_err(at(Stage::StartTls, t.starttls))?;
        if r.code == 220 {
            let mut c = handshake(c, tls, peer.name, t.starttls).await?;
            let ext = match hello(&mut c, setup).await {
                Ok(ext) => ext,
                Err(e) => return bail(&mut c, t, e).await,
            };
            return finish(&mut c, setup, peer, &ext, true, message).await;
        }
        let refused = SessionError::Refused { stage: Stage::StartTls, reply: from_response(&r) };
        if required {
            return bail(&mut c, t, refused).await;
        }
        // Opportunistic: a refused STARTTLS leaves the session as it was.
        tracing::debug!(host = peer.name, error = %refused, "going on without TLS");
    }
    finish(&mut c, setup, peer, &ext, false, message).await
}

/// Ends a session that went wrong before the transaction: QUIT when the
/// server is still listening, then the error.
async fn bail<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut SmtpClient<S>,
    t: &Timeouts,
    e: SessionError,
) -> Result<Vec<Outcome>, SessionError> {
    if e.polite() {
        quit(c, t).await;
    }
    Err(e)
}

async fn handshake(
    c: SmtpClient<TcpStream>,
    tls: &TlsConnector,
    name: &str,
    timeout: Duration,
) -> Result<SmtpClient<tokio_rustls::client::TlsStream<TcpStream>>, SessionError> {
    let mut c = c;
    c.timeout = timeout;
    c.into_tls(tls, name).await.map_err(SessionError::Handshake)
}

/// The greeting, then EHLO.
async fn open<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut SmtpClient<S>,
    setup: &Setup<'_>,
) -> Result<Extensions, SessionError> {
    let t = setup.timeouts.greeting;
    let r = tokio::time::timeout(t, c.read())
        .await
        .map_err(|_| SessionError::Timeout { stage: Stage::Greeting, timeout: t })?
        .map_err(at(Stage::Greeting, t))?;
    let greeting = from_response(&r);
    if greeting.verdict() != Verdict::Accepted {
        return Err(SessionError::Refused { stage: Stage::Greeting, reply: greeting });
    }
    hello(c, setup).await
}

/// EHLO; HELO when EHLO is refused for good (an old server: no extensions).
async fn hello<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut SmtpClient<S>,
    setup: &Setup<'_>,
) -> Result<Extensions, SessionError> {
    let t = setup.timeouts.ehlo;
    c.timeout = t;
    match c.ehlo(setup.hostname).await {
        Ok(ehlo) => Ok(Extensions::from_ehlo(&ehlo)),
        Err(mail_send::Error::UnexpectedReply(r)) if (500..600).contains(&r.code) => {
            let r =
                c.cmd(format!("HELO {}\r\n", setup.hostname)).await.map_err(at(Stage::Helo, t))?;
            let reply = from_response(&r);
            match reply.verdict() {
                Verdict::Accepted => Ok(Extensions::default()),
                _ => Err(SessionError::Refused { stage: Stage::Helo, reply }),
            }
        }
        Err(e) => Err(at(Stage::Ehlo, t)(e)),
    }
}

/// AUTH when there are credentials, the transaction, QUIT.
async fn finish<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut SmtpClient<S>,
    setup: &Setup<'_>,
    peer: Peer<'_>,
    ext: &Extensions,
    tls: bool,
    message: &Message<'_>,
) -> Result<Vec<Outcome>, SessionError> {
    let t = setup.timeouts;
    if let Some(credentials) = setup.credentials {
        let mechanisms = ext.auth & (AUTH_PLAIN | AUTH_LOGIN);
        let refusal = if !tls {
            Some(SessionError::AuthInClear)
        } else if mechanisms == 0 {
            Some(SessionError::NoAuthMechanism)
        } else {
            None
        };
        if let Some(e) = refusal {
            return bail(c, t, e).await;
        }
        let offered = EhloResponse { auth_mechanisms: mechanisms, ..EhloResponse::default() };
        c.timeout = t.auth;
        if let Err(e) = c.authenticate(credentials, &offered).await {
            let e = at(Stage::Auth, t.auth)(e);
            return bail(c, t, e).await;
        }
    }
    let (outcomes, alive) = transaction(c, peer.name, ext, t, message).await?;
    if alive {
        quit(c, t).await;
    }
    Ok(outcomes)
}

/// MAIL, RCPT, DATA. `Err` only when the host did not answer MAIL FROM;
/// after that every trouble is an outcome. The flag says whether the
/// session is still in step (worth a QUIT).
async fn transaction<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut SmtpClient<S>,
    host: &str,
    ext: &Extensions,
    t: &Timeouts,
    message: &Message<'_>,
) -> Result<(Vec<Outcome>, bool), SessionError> {
    let n = message.recipients.len();
    if let Err(u) = envelope::check(host, message, ext) {
        let failed = Outcome::Failed {
            host: Some(host.to_owned()),
            reply: None,
            status: u.status,
            reason: u.reason,
        };
        return Ok((vec![failed; n], true));
    }
    c.timeout = t.mail;
    let r = c.cmd(envelope::mail_from(message, ext)).await.map_err(at(Stage::Mail, t.mail))?;
    let mail = from_response(&r);
    if mail.verdict() != Verdict::Accepted {
        return Ok((vec![reply::refused(host, "MAIL FROM", &mail); n], true));
    }

    let mut outcomes: Vec<Option<Outcome>> = vec![None; n];
    let lost = |e: SessionError, outcomes: Vec<Option<Outcome>>| {
        let deferred = Outcome::Deferred {
            host: Some(host.to_owned()),
            reply: e.reply().cloned(),
            reason: format!("{host}: {}", chain(&e)),
        };
        let all = outcomes.into_iter().map(|o| o.unwrap_or_else(|| deferred.clone())).collect();
        Ok((all, false))
    };
    let mut accepted = Vec::with_capacity(n);
    for (i, rcpt) in message.recipients.iter().enumerate() {
        if !envelope::sendable(&rcpt.address) {
            outcomes[i] = Some(Outcome::Failed {
                host: None,
                reply: None,
                status: envelope::BAD_RECIPIENT,
                reason: format!("the recipient {:?} cannot be written into RCPT TO", rcpt.address),
            });
            continue;
        }
        c.timeout = t.rcpt;
        match c.cmd(envelope::rcpt_to(rcpt, ext)).await {
            Ok(r) => {
                let reply = from_response(&r);
                match reply.verdict() {
                    Verdict::Accepted => accepted.push(i),
                    _ => outcomes[i] = Some(reply::refused(host, "RCPT TO", &reply)),
                }
            }
            Err(e) => return lost(at(Stage::Rcpt, t.rcpt)(e), outcomes),
        }
    }
    let done = |outcomes: Vec<Option<Outcome>>| -> Vec<Outcome> {
        outcomes.into_iter().flatten().collect()
    };
    if accepted.is_empty() {
        // Every recipient refused: no DATA.
        return Ok((done(outcomes), true));
    }

    c.timeout = t.data_init;
    let r = match c.cmd(b"DATA\r\n").await {
        Ok(r) => r,
        Err(e) => return lost(at(Stage::Data, t.data_init)(e), outcomes),
    };
    if r.code != 354 {
        let reply = from_response(&r);
        for &i in &accepted {
            outcomes[i] = Some(reply::refused(host, "DATA", &reply));
        }
        return Ok((done(outcomes), true));
    }
    if let Err(e) = data::write(&mut c.stream, &data::stuffed(message.body), t.data_block).await {
        let e = match e {
            data::WriteError::Timeout(timeout) => {
                SessionError::Timeout { stage: Stage::Message, timeout }
            }
            data::WriteError::Io(source) => SessionError::Io { stage: Stage::Message, source },
        };
        return lost(e, outcomes);
    }
    let end = match tokio::time::timeout(t.data_done, c.read()).await {
        Ok(Ok(r)) => from_response(&r),
        Ok(Err(e)) => return lost(at(Stage::EndOfData, t.data_done)(e), outcomes),
        Err(_) => {
            let e = SessionError::Timeout { stage: Stage::EndOfData, timeout: t.data_done };
            return lost(e, outcomes);
        }
    };
    for &i in &accepted {
        outcomes[i] = Some(reply::after_data(host, &end));
    }
    Ok((done(outcomes), true))
}

/// QUIT, its answer awaited but of no consequence.
async fn quit<S: AsyncRead + AsyncWrite + Unpin>(c: &mut SmtpClient<S>, t: &Timeouts) {
    c.timeout = t.quit;
    if let Err(e) = c.cmd(b"QUIT\r\n").await {
        tracing::debug!(error = %e, "QUIT");
    }
}
