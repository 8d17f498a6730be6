//! The tokio side of an IMAP connection: reads bytes into the [`Framer`],
//! decodes commands with `imap-codec`, agrees to (or refuses) literals,
//! runs the [`Session`] and writes its responses; upgrades to TLS on
//! STARTTLS; idles; and says BYE on shutdown, on an idle client, on one
//! too slow to finish a command (`limits.command_timeout`, and
//! `limits.data_timeout` once a literal has begun) and after too many bad
//! commands. Generic over the stream, so TLS and plain share it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use epost_types::mailbox::FolderChanged;
use imap_codec::decode::Decoder;
use imap_codec::encode::Encoder;
use imap_codec::imap_types::auth::AuthenticateData;
use imap_codec::imap_types::core::{LiteralMode, Tag};
use imap_codec::imap_types::response::{
    Code, CommandContinuationRequest, Greeting, GreetingKind, Response, Status, StatusKind,
};
use imap_codec::{AuthenticateDataCodec, GreetingCodec, IdleDoneCodec, ResponseCodec};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio::time::{Instant, timeout, timeout_at};
use tracing::debug;

use crate::backend::MailBackend;
use crate::context::Shared;
use crate::imap::deflate::Deflate;
use crate::imap::frame::{Frame, Framer, lexical_command, lexical_tag};
use crate::imap::lift::{DecodeError, Decoded, Refused};
use crate::imap::session::{Done, Gone, Session, Sink, bad, code, no, text, untagged};
use crate::line::Busy;
use crate::socket::Transport;

/// How long a TLS handshake may take at most.
const HANDSHAKE: Duration = Duration::from_secs(60);
/// Bytes read at a time.
const READ_CHUNK: usize = 16 * 1024;

/// Serves one connection: plaintext, then (after STARTTLS) TLS, and
/// deflated (after COMPRESS) from then on.
pub(crate) async fn run<B: MailBackend>(tcp: TcpStream, peer: SocketAddr, shared: Arc<Shared<B>>) {
    let mut session = Session::new(shared.clone(), peer.ip(), false);
    let mut plain = BufWriter::new(tcp);
    match Conn::new(&mut plain, &shared).serve(&mut session, true).await {
        End::StartTls => {}
        End::Compress => return compressed(plain.into_inner(), &mut session, &shared).await,
        End::Closed => {
            let _ = plain.shutdown().await;
            return;
        }
    }
    let Some(acceptor) = shared.tls.clone() else { return };
    let limit = HANDSHAKE.min(shared.limits.idle_timeout);
    let tls = match timeout(limit, acceptor.accept(plain.into_inner())).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            debug!(%peer, %error, "IMAP STARTTLS handshake failed");
            return;
        }
        Err(_) => return,
    };
    session.tls = true;
    let mut tls = BufWriter::new(tls);
    if Conn::new(&mut tls, &shared).serve(&mut session, false).await == End::Compress {
        return compressed(tls.into_inner(), &mut session, &shared).await;
    }
    let _ = tls.shutdown().await;
}

/// Serves an IMAPS (implicit TLS) connection whose handshake is done:
/// the session starts secure, so the greeting offers AUTH=PLAIN and no
/// STARTTLS.
pub(crate) async fn run_tls<B: MailBackend>(
    tls: tokio_rustls::server::TlsStream<TcpStream>,
    peer: SocketAddr,
    shared: Arc<Shared<B>>,
) {
    let mut session = Session::new(shared.clone(), peer.ip(), true);
    let mut tls = BufWriter::new(tls);
    if Conn::new(&mut tls, &shared).serve(&mut session, true).await == End::Compress {
        return compressed(tls.into_inner(), &mut session, &shared).await;
    }
    let _ = tls.shutdown().await;
}

/// The rest of a connection after COMPRESS DEFLATE.
async fn compressed<S, B>(stream: S, session: &mut Session<B>, shared: &Shared<B>)
where
    S: AsyncRead + AsyncWrite + Transport + Unpin + Send,
    B: MailBackend,
{
    let mut deflated = BufWriter::new(Deflate::new(stream));
    Conn::new(&mut deflated, shared).serve(session, false).await;
    let _ = deflated.shutdown().await;
}

/// Serves a plaintext connection over any stream, with no TLS upgrade
/// (STARTTLS ends it): for fuzzing and property tests.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) async fn serve_stream<S, B>(
    stream: &mut S,
    peer: std::net::IpAddr,
    shared: Arc<Shared<B>>,
) where
    S: AsyncRead + AsyncWrite + Transport + Unpin + Send,
    B: MailBackend,
{
    let mut session = Session::new(shared.clone(), peer, false);
    let mut buffered = BufWriter::new(stream);
    Conn::new(&mut buffered, &shared).serve(&mut session, true).await;
    let _ = buffered.shutdown().await;
}

/// Why a connection loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Closed,
    StartTls,
    Compress,
}

/// What waiting for input produced.
enum Input {
    Bytes,
    Closed,
    TimedOut,
    Stopped,
}

struct Conn<'a, S, B: MailBackend> {
    stream: &'a mut S,
    shared: &'a Shared<B>,
    framer: Framer,
    stopped: tokio::sync::watch::Receiver<bool>,
    /// The idle deadline: the last input plus the idle timeout.
    deadline: Instant,
    /// What the framer was busy with, and since when.
    busy: Option<(Busy, Instant)>,
    errors: usize,
}

/// Writes responses straight to the connection (the session's sink).
struct Writer<'w, S> {
    stream: &'w mut S,
    limit: Duration,
}

impl<S: AsyncWrite + Unpin + Send> Sink for Writer<'_, S> {
    async fn send(&mut self, response: Response<'static>) -> Result<(), Gone> {
        self.send_encoded(ResponseCodec::default().encode(&response).dump()).await
    }

    async fn send_encoded(&mut self, bytes: Vec<u8>) -> Result<(), Gone> {
        match timeout(self.limit, self.stream.write_all(&bytes)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Gone),
        }
    }
}

impl<'a, S, B> Conn<'a, S, B>
where
    S: AsyncRead + AsyncWrite + Transport + Unpin + Send,
    B: MailBackend,
{
    fn new(stream: &'a mut S, shared: &'a Shared<B>) -> Self {
        let limits = &shared.limits;
        Self {
            stream,
            shared,
            framer: Framer::new(
                limits.max_imap_line,
                limits.max_message.saturating_add(limits.max_imap_line),
            ),
            stopped: shared.stopped.clone(),
            deadline: Instant::now() + limits.idle_timeout,
            busy: None,
            errors: 0,
        }
    }

    /// When the next read must have returned: the idle deadline, or
    /// earlier if a command has begun and its own time is running out.
    fn read_deadline(&mut self) -> Instant {
        let kind = self.framer.busy();
        self.busy = match (kind, self.busy) {
            (Busy::Idle, _) => None,
            (kind, Some((was, since))) if was == kind => Some((was, since)),
            (kind, _) => Some((kind, Instant::now())),
        };
        let limits = &self.shared.limits;
        match self.busy {
            None => self.deadline,
            Some((Busy::Data, since)) => self.deadline.min(since + limits.data_timeout),
            Some((_, since)) => self.deadline.min(since + limits.command_timeout),
        }
    }

    /// The goodbye for a client whose time ran out.
    fn timeout_message(&self) -> &'static str {
        if self.busy.is_some() { "command not completed in time" } else { "idle for too long" }
    }

    fn writer(&mut self) -> Writer<'_, S> {
        Writer { stream: self.stream, limit: self.shared.limits.idle_timeout }
    }

    async fn send(&mut self, response: Response<'static>) -> Result<(), End> {
        self.writer().send(response).await.map_err(|_| End::Closed)
    }

    async fn flush(&mut self) -> Result<(), End> {
        match timeout(self.shared.limits.idle_timeout, self.stream.flush()).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(End::Closed),
        }
    }

    async fn bye(&mut self, message: &str) -> End {
        let Ok(bye) = Status::bye(None, text(message));
        let _ = self.send(Response::Status(bye)).await;
        let _ = self.flush().await;
        End::Closed
    }

    /// Sends a tagged or untagged BAD and counts it.
    async fn reject(&mut self, tag: Option<Tag<'static>>, message: &str) -> Result<(), End> {
        let response = match tag {
            Some(tag) => Response::Status(bad(&tag, message)),
            None => untagged(StatusKind::Bad, None, message),
        };
        self.send(response).await?;
        self.flush().await?;
        self.count_error().await
    }

    async fn count_error(&mut self) -> Result<(), End> {
        self.errors += 1;
        if self.errors >= self.shared.limits.max_errors {
            return Err(self.bye("too many bad commands").await);
        }
        Ok(())
    }

    async fn read(&mut self) -> Input {
        let mut chunk = [0u8; READ_CHUNK];
        let stopped = self.stopped.clone();
        let deadline = self.read_deadline();
        let result = tokio::select! {
            read = timeout_at(deadline, self.stream.read(&mut chunk)) => match read {
                Ok(Ok(0)) | Ok(Err(_)) => Input::Closed,
                Ok(Ok(n)) => {
                    self.framer.push(&chunk[..n]);
                    Input::Bytes
                }
                Err(_) => Input::TimedOut,
            },
            _ = wait_stopped(stopped) => Input::Stopped,
        };
        if let Input::Bytes = result {
            self.deadline = Instant::now() + self.shared.limits.idle_timeout;
        }
        result
    }

    /// Waits for more input; `Err` ends the connection.
    async fn more(&mut self) -> Result<(), End> {
        self.flush().await?;
        if self.framer.busy() != Busy::Idle {
            // A command has begun (a literal's closing CRLF, say): let a
            // client holding back its rest for our ACK (Nagle) send it.
            self.stream.ack_now();
        }
        match self.read().await {
            Input::Bytes => Ok(()),
            Input::Closed => Err(End::Closed),
            Input::TimedOut => Err(self.bye(self.timeout_message()).await),
            Input::Stopped => Err(self.bye("server shutting down").await),
        }
    }

    async fn serve(mut self, session: &mut Session<B>, greet: bool) -> End {
        if greet {
            let greeting = Greeting {
                kind: GreetingKind::Ok,
                code: Some(Code::Capability(session.capabilities())),
                text: text(&format!("{} IMAP4rev1 ready", self.shared.hostname)),
            };
            let bytes = GreetingCodec::default().encode(&greeting).dump();
            if self.stream.write_all(&bytes).await.is_err() {
                return End::Closed;
            }
        }
        match self.commands(session).await {
            Ok(never) => match never {},
            Err(end) => end,
        }
    }

    async fn commands(
        &mut self,
        session: &mut Session<B>,
    ) -> Result<std::convert::Infallible, End> {
        loop {
            if *self.stopped.borrow() {
                return Err(self.bye("server shutting down").await);
            }
            match self.framer.next() {
                Frame::NeedMore => self.more().await?,
                Frame::LineTooLong { tag } => self.reject(tag, "line too long").await?,
                Frame::Literal { length, mode } => self.literal(length, mode, session).await?,
                Frame::Complete { poisoned } => {
                    let decoded = if poisoned {
                        Err(DecodeError::Syntax)
                    } else {
                        session.decode(self.framer.message())
                    };
                    let tag = lexical_tag(self.framer.message());
                    self.framer.reset();
                    // A whole command arrived: the next one's clock starts anew.
                    self.busy = None;
                    match decoded {
                        Ok(decoded) => self.command(session, decoded).await?,
                        Err(error) => self.reject(tag, &error.to_string()).await?,
                    }
                }
            }
        }
    }

    /// A line ended with `{n}` or `{n+}`: take the literal or refuse it.
    /// Only a logged-in APPEND may send a message-sized literal.
    async fn literal(
        &mut self,
        length: u32,
        mode: LiteralMode,
        session: &Session<B>,
    ) -> Result<(), End> {
        let limits = &self.shared.limits;
        let authenticated = session.user.is_some();
        let limit = if authenticated && lexical_command(self.framer.message()) == "APPEND" {
            limits.max_message
        } else {
            limits.max_imap_line
        };
        let fits = length as usize <= limit;
        // The command so far must be good up to the literal, once what the
        // codec does not know is lifted out (or as APPEND reads it).
        match session.good_so_far(self.framer.message()) {
            Ok(tag) => {
                if fits && self.framer.accept_literal(length).is_ok() {
                    if mode == LiteralMode::Sync {
                        let go = CommandContinuationRequest::basic(None, "ready for literal data")
                            .map_err(|_| End::Closed)?;
                        self.send(Response::CommandContinuationRequest(go)).await?;
                        self.flush().await?;
                    }
                    return Ok(());
                }
                self.framer.reset();
                if mode == LiteralMode::NonSync {
                    // The bytes are already on their way (RFC 7888 section 4).
                    return Err(self.bye("literal too large").await);
                }
                // Too large itself, or too much with the command's other literals.
                let message = if fits {
                    format!("command too large (at most {limit} bytes of literals)")
                } else {
                    format!("literal too large (at most {limit} bytes)")
                };
                self.send(Response::Status(no(&tag, Some(Code::TooBig), &message))).await?;
                self.flush().await
            }
            Err(Refused::Limit { tag, text }) => {
                self.framer.reset();
                if mode == LiteralMode::NonSync {
                    return Err(self.bye(&text).await);
                }
                self.send(Response::Status(no(&tag, Some(code("LIMIT")), &text))).await?;
                self.flush().await
            }
            Err(Refused::Syntax) => {
                let tag = lexical_tag(self.framer.message());
                if mode == LiteralMode::Sync {
                    self.framer.reset();
                    return self.reject(tag, "syntax error").await;
                }
                if !fits {
                    self.framer.reset();
                    return Err(self.bye("literal too large").await);
                }
                self.framer.discard_literal(length);
                Ok(())
            }
        }
    }

    /// Runs one decoded command to its end; `Err` ends this loop (closed,
    /// or TLS starts).
    async fn command(&mut self, session: &mut Session<B>, decoded: Decoded) -> Result<(), End> {
        let mut writer = self.writer();
        let done = session.handle_decoded(decoded, &mut writer).await;
        let mut done = done.map_err(|_| End::Closed)?;
        loop {
            done = match done {
                Done::Status { status, delay } => {
                    if !delay.is_zero() {
                        self.flush().await?;
                        tokio::time::sleep(delay).await;
                    }
                    let is_bad =
                        matches!(&status, Status::Tagged(t) if t.body.kind == StatusKind::Bad);
                    self.send(Response::Status(status)).await?;
                    self.flush().await?;
                    if is_bad {
                        self.count_error().await?;
                    }
                    return Ok(());
                }
                Done::StartTls(status) => {
                    self.send(Response::Status(status)).await?;
                    self.flush().await?;
                    return Err(End::StartTls);
                }
                Done::Close(status) => {
                    self.send(Response::Status(status)).await?;
                    self.flush().await?;
                    return Err(End::Closed);
                }
                Done::Compress(status) => {
                    self.send(Response::Status(status)).await?;
                    self.flush().await?;
                    return Err(End::Compress);
                }
                Done::AuthPlain(tag) => {
                    let answer = self.sasl_response().await?;
                    match answer {
                        Ok(response) => session.auth_plain(tag, response).await,
                        Err(message) => Done::now(bad(&tag, message)),
                    }
                }
                Done::Idle(tag) => self.idle(session, tag).await?,
            };
        }
    }

    /// Reads one client line in full (outside the command grammar).
    async fn line(&mut self) -> Result<Option<Vec<u8>>, End> {
        loop {
            match self.framer.next() {
                Frame::NeedMore => self.more().await?,
                Frame::Complete { .. } => {
                    let line = self.framer.message().to_vec();
                    self.framer.reset();
                    return Ok(Some(line));
                }
                Frame::LineTooLong { .. } => return Ok(None),
                Frame::Literal { .. } => {
                    self.framer.reset();
                    return Ok(None);
                }
            }
        }
    }

    /// The client's answer to AUTHENTICATE's continuation: the decoded
    /// response, `None` if it cancelled, or why it was unreadable.
    async fn sasl_response(&mut self) -> Result<Result<Option<Vec<u8>>, &'static str>, End> {
        self.send(Response::CommandContinuationRequest(CommandContinuationRequest::base64(
            &b""[..],
        )))
        .await?;
        let Some(line) = self.line().await? else { return Ok(Err("response too long")) };
        Ok(match AuthenticateDataCodec::default().decode(&line) {
            Ok(([], AuthenticateData::Continue(data))) => Ok(Some(data.declassify().to_vec())),
            Ok(([], AuthenticateData::Cancel)) => Ok(None),
            _ => Err("malformed SASL response"),
        })
    }

    /// IDLE until DONE, telling the client of changes as they happen.
    async fn idle(&mut self, session: &mut Session<B>, tag: Tag<'static>) -> Result<Done, End> {
        let mut changes = session.changes();
        let go = CommandContinuationRequest::basic(None, "idling").map_err(|_| End::Closed)?;
        self.send(Response::CommandContinuationRequest(go)).await?;
        let mut writer = self.writer();
        session.refresh(true, &mut writer).await.map_err(|_| End::Closed)?;
        self.flush().await?;
        loop {
            match self.framer.next() {
                Frame::NeedMore => {}
                Frame::Complete { .. } => {
                    let done = matches!(
                        IdleDoneCodec::default().decode(self.framer.message()),
                        Ok((rest, _)) if rest.is_empty()
                    );
                    self.framer.reset();
                    return Ok(if done {
                        session.idle_done(&tag)
                    } else {
                        Done::now(bad(&tag, "expected DONE"))
                    });
                }
                Frame::LineTooLong { .. } | Frame::Literal { .. } => {
                    self.framer.reset();
                    return Ok(Done::now(bad(&tag, "expected DONE")));
                }
            }
            let stopped = self.stopped.clone();
            let mut chunk = [0u8; READ_CHUNK];
            let deadline = self.read_deadline();
            let event = tokio::select! {
                read = timeout_at(deadline, self.stream.read(&mut chunk)) => match read {
                    Ok(Ok(0)) | Ok(Err(_)) => return Err(End::Closed),
                    Ok(Ok(n)) => {
                        self.framer.push(&chunk[..n]);
                        self.deadline = Instant::now() + self.shared.limits.idle_timeout;
                        None
                    }
                    Err(_) => return Err(self.bye(self.timeout_message()).await),
                },
                change = next_change(&mut changes) => Some(change),
                _ = wait_stopped(stopped) => return Err(self.bye("server shutting down").await),
            };
            if let Some(change) = event
                && session.concerns(change.as_ref())
            {
                let mut writer = self.writer();
                session.refresh(true, &mut writer).await.map_err(|_| End::Closed)?;
                self.flush().await?;
            }
        }
    }
}

/// The next change (`None`: some were missed); pending forever without
/// a receiver.
async fn next_change(
    changes: &mut Option<broadcast::Receiver<FolderChanged>>,
) -> Option<FolderChanged> {
    loop {
        let Some(receiver) = changes.as_mut() else {
            return std::future::pending().await;
        };
        match receiver.recv().await {
            Ok(change) => return Some(change),
            Err(broadcast::error::RecvError::Lagged(_)) => return None,
            Err(broadcast::error::RecvError::Closed) => *changes = None,
        }
    }
}

/// Resolves once the gateway is stopping.
async fn wait_stopped(mut stopped: tokio::sync::watch::Receiver<bool>) {
    if stopped.wait_for(|&s| s).await.is_err() {
        // The gateway is gone without saying stop: treat it as stopping.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Limits;
    use crate::testing::Setup;
    use tokio::io::{AsyncBufReadExt, BufReader, DuplexStream};

    struct Harness {
        client: BufReader<DuplexStream>,
        stop: tokio::sync::watch::Sender<bool>,
        server: tokio::task::JoinHandle<End>,
    }

    fn start(limits: Limits) -> Harness {
        let gateway = Setup { limits, ..Setup::default() }.start();
        let (client, server) = connect(&gateway.shared);
        Harness { client, stop: gateway.stop, server }
    }

    /// A client connection to the gateway that `shared` belongs to.
    fn connect(
        shared: &Arc<Shared<crate::memory::MemoryBackend>>,
    ) -> (BufReader<DuplexStream>, tokio::task::JoinHandle<End>) {
        let shared = shared.clone();
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move {
            let mut session = Session::new(shared.clone(), "127.0.0.1".parse().unwrap(), false);
            Conn::new(&mut server, &shared).serve(&mut session, true).await
        });
        (BufReader::new(client), server)
    }

    impl Harness {
        async fn line(&mut self) -> String {
            let mut line = Vec::new();
            self.client.read_until(b'\n', &mut line).await.unwrap();
            String::from_utf8_lossy(&line).into_owned()
        }

        async fn say(&mut self, bytes: &[u8]) {
            self.client.get_mut().write_all(bytes).await.unwrap();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_client_is_told_goodbye() {
        let limits = Limits { idle_timeout: Duration::from_secs(60), ..Limits::default() };
        let mut h = start(limits);
        assert!(h.line().await.starts_with("* OK [CAPABILITY IMAP4REV1"));
        h.say(b"a NOOP\r\nb LOGIN alice@example.test alice-pw\r\n").await;
        assert!(h.line().await.starts_with("a OK"));
        assert!(h.line().await.starts_with("b OK"));
        h.say(b"c SELECT INBOX\r\nd IDLE\r\n").await;
        loop {
            if h.line().await.starts_with("+ idling") {
                break;
            }
        }
        // Time passes (paused clock): idling counts as idle too.
        assert_eq!(h.line().await, "* BYE idle for too long\r\n");
        assert_eq!(h.server.await.unwrap(), End::Closed);
    }

    /// Reads lines until one starts with `prefix`; returns the ones before it.
    async fn until(client: &mut BufReader<DuplexStream>, prefix: &str) -> Vec<String> {
        let mut before = Vec::new();
        loop {
            let mut line = Vec::new();
            client.read_until(b'\n', &mut line).await.unwrap();
            assert!(!line.is_empty(), "closed before {prefix:?}; had {before:?}");
            let line = String::from_utf8_lossy(&line).into_owned();
            if line.starts_with(prefix) {
                return before;
            }
            before.push(line);
        }
    }

    #[tokio::test]
    async fn idle_hears_what_another_session_changes_as_it_happens() {
        let gateway = Setup::default().start();
        for _ in 0..3 {
            gateway.deliver("alice@example.test", b"Subject: x\r\n\r\nbody\r\n").await;
        }
        let (mut idler, _idling) = connect(&gateway.shared);
        let (mut other, _) = connect(&gateway.shared);
        for client in [&mut idler, &mut other] {
            client.get_mut().write_all(b"a LOGIN alice@example.test alice-pw\r\n").await.unwrap();
            until(client, "a OK").await;
            client.get_mut().write_all(b"b SELECT INBOX\r\n").await.unwrap();
            until(client, "b OK").await;
        }
        idler.get_mut().write_all(b"c IDLE\r\n").await.unwrap();
        until(&mut idler, "+ idling").await;
        // (what the other session does, the line the idler hears next):
        // each waited for before the next change, so nothing coalesces.
        // The idler selected first, so the messages are \Recent in its
        // session; the other unselects before its APPEND, so the new one
        // is recent for the idler too.
        let steps = [
            // A new keyword: FLAGS and PERMANENTFLAGS again before the FETCH.
            (
                "d STORE 1 +FLAGS (\\Seen $Label1)",
                "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1)\r\n",
            ),
            (
                "",
                "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1 \\*)] flags that stay\r\n",
            ),
            ("", "* 1 FETCH (FLAGS (\\Seen $Label1 \\Recent) UID 1)\r\n"),
            (
                "e STORE 2 +FLAGS.SILENT (\\Deleted)",
                "* 2 FETCH (FLAGS (\\Deleted \\Recent) UID 2)\r\n",
            ),
            ("f EXPUNGE", "* 2 EXPUNGE\r\n"),
            ("g MOVE 1 Trash", "* 1 EXPUNGE\r\n"),
            ("h UNSELECT", ""),
            ("i APPEND INBOX {10+}\r\nSubject:\r\n", "* 2 EXISTS\r\n"),
            ("", "* 2 RECENT\r\n"),
        ];
        for (command, heard) in steps {
            // An empty command: the idler hears more of the last change.
            if !command.is_empty() {
                let tag = &command[..1];
                other.get_mut().write_all(format!("{command}\r\n").as_bytes()).await.unwrap();
                until(&mut other, &format!("{tag} OK")).await;
            }
            if heard.is_empty() {
                continue;
            }
            let mut line = String::new();
            idler.read_line(&mut line).await.unwrap();
            assert_eq!(line, heard, "after {command:?}");
        }
        idler.get_mut().write_all(b"DONE\r\n").await.unwrap();
        assert_eq!(until(&mut idler, "c OK").await, Vec::<String>::new());
    }

    #[tokio::test]
    async fn after_compress_everything_is_deflated_both_ways() {
        let gateway = Setup::default().start();
        let shared = gateway.shared;
        let (client, mut server) = tokio::io::duplex(4 * 1024);
        let task = tokio::spawn(async move {
            let mut session = Session::new(shared.clone(), "127.0.0.1".parse().unwrap(), false);
            let end = Conn::new(&mut server, &shared).serve(&mut session, true).await;
            assert_eq!(end, End::Compress);
            compressed(server, &mut session, &shared).await;
        });
        let mut client = BufReader::new(client);
        let mut line = Vec::new();
        async fn read_line<R: AsyncRead + Unpin>(
            c: &mut BufReader<R>,
            line: &mut Vec<u8>,
        ) -> String {
            line.clear();
            c.read_until(b'\n', line).await.unwrap();
            String::from_utf8_lossy(line).into_owned()
        }
        assert!(read_line(&mut client, &mut line).await.starts_with("* OK"));
        client.get_mut().write_all(b"a LOGIN alice@example.test alice-pw\r\n").await.unwrap();
        assert!(read_line(&mut client, &mut line).await.starts_with("a OK"));
        client.get_mut().write_all(b"b COMPRESS DEFLATE\r\n").await.unwrap();
        assert_eq!(read_line(&mut client, &mut line).await, "b OK DEFLATE active\r\n");
        let mut client = BufReader::new(Deflate::new(client.into_inner()));
        let body = b"Subject: z\r\n\r\n".repeat(3000);
        let mut append = format!("c APPEND INBOX {{{}+}}\r\n", body.len()).into_bytes();
        append.extend_from_slice(&body);
        append.extend_from_slice(b"\r\nd NOOP\r\n");
        client.get_mut().write_all(&append).await.unwrap();
        client.get_mut().flush().await.unwrap();
        let mut seen = String::new();
        while !seen.contains("d OK") {
            seen.push_str(&read_line(&mut client, &mut line).await);
        }
        assert!(seen.contains("c OK [APPENDUID"), "{seen}");
        client.get_mut().write_all(b"e LOGOUT\r\n").await.unwrap();
        client.get_mut().flush().await.unwrap();
        drop(client);
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_legal_command_line_of_tens_of_kilobytes_is_answered() {
        // imaptest's ID script sends a 31.8 KB ID; Dovecot takes 64 KiB.
        let mut h = start(Limits::default());
        h.line().await;
        let pairs: Vec<String> =
            (0..30).map(|i| format!("\"k{i}\" \"{}\"", "v".repeat(1_000))).collect();
        let id = format!("a ID ({})\r\n", pairs.join(" "));
        assert!(id.len() > 30_000);
        h.say(id.as_bytes()).await;
        let mut reply = h.line().await;
        while !reply.starts_with("a ") {
            reply = h.line().await;
        }
        assert!(reply.starts_with("a OK"), "{reply}");
        let too_long = format!("b ID (\"k\" \"{}\")\r\nc NOOP\r\n", "v".repeat(70_000));
        h.say(too_long.as_bytes()).await;
        assert!(h.line().await.starts_with("b BAD"));
        assert!(h.line().await.starts_with("c OK"), "the session goes on");
    }

    #[tokio::test]
    async fn shutdown_says_bye_and_ends_the_session() {
        let mut h = start(Limits::default());
        h.line().await;
        h.say(b"a NOOP\r\n").await;
        assert!(h.line().await.starts_with("a OK"));
        h.stop.send(true).unwrap();
        assert_eq!(h.line().await, "* BYE server shutting down\r\n");
        assert_eq!(h.server.await.unwrap(), End::Closed);
    }

    #[tokio::test]
    async fn lifted_syntax_reaches_the_session_and_literals_still_work() {
        let mut h = start(Limits::default());
        h.line().await;
        h.say(b"a LOGIN alice@example.test alice-pw\r\nb SELECT INBOX\r\n").await;
        while !h.line().await.starts_with("b OK") {}
        // RETURN options before a synchronizing literal: the command so far
        // is good once they are lifted, so the literal is asked for.
        h.say(b"c SEARCH RETURN (COUNT) SUBJECT {3}\r\n").await;
        assert!(h.line().await.starts_with("+ "));
        h.say(b"foo\r\n").await;
        assert_eq!(h.line().await, "* ESEARCH (TAG \"c\") COUNT 0\r\n");
        assert!(h.line().await.starts_with("c OK"));
        h.say(b"d SEARCH RETURN (BOGUS) ALL\r\ne FETCH $ FLAGS\r\n").await;
        assert_eq!(h.line().await, "d BAD unknown RETURN option BOGUS\r\n");
        assert!(h.line().await.starts_with("e OK"));
    }

    #[tokio::test]
    async fn multiappend_literals_are_asked_for_one_by_one_and_bounded() {
        let mut h = start(Limits { max_append_messages: 2, ..Limits::default() });
        h.line().await;
        h.say(b"a LOGIN alice@example.test alice-pw\r\n").await;
        assert!(h.line().await.starts_with("a OK"));
        // Each synchronizing literal gets its continuation; LITERAL+ none.
        h.say(b"b APPEND INBOX {12}\r\n").await;
        assert!(h.line().await.starts_with("+ "));
        h.say(b"Subject: 1\r\n CATENATE (TEXT {3+}\r\nSub TEXT {9}\r\n").await;
        assert!(h.line().await.starts_with("+ "));
        h.say(b"ject: 2\r\n)\r\n").await;
        assert_eq!(h.line().await, "b OK [APPENDUID 1 1:2] APPEND completed\r\n");
        // A third message is refused before its bytes are sent.
        h.say(b"c APPEND INBOX {1}\r\n").await;
        assert!(h.line().await.starts_with("+ "));
        h.say(b"x {1}\r\n").await;
        assert!(h.line().await.starts_with("+ "));
        h.say(b"y {1}\r\n").await;
        assert_eq!(h.line().await, "c NO [LIMIT] more than 2 messages in one APPEND\r\n");
        // A bad second message is BAD before its literal; the session goes on.
        h.say(b"d APPEND INBOX {1}\r\n").await;
        assert!(h.line().await.starts_with("+ "));
        h.say(b"x BOGUS {1}\r\n").await;
        assert!(h.line().await.starts_with("d BAD"));
        // With LITERAL+ the bytes are read and thrown away, then BAD.
        h.say(b"e APPEND INBOX {1+}\r\nx BOGUS {1+}\r\ny\r\n").await;
        assert_eq!(h.line().await, "e BAD syntax error\r\n");
        h.say(b"f STATUS INBOX (MESSAGES)\r\n").await;
        assert_eq!(h.line().await, "* STATUS INBOX (MESSAGES 2)\r\n");
        assert!(h.line().await.starts_with("f OK"));
    }

    #[tokio::test]
    async fn auth_plain_continuation_and_literals_before_login() {
        let mut h = start(Limits::default());
        h.line().await;
        // A message-sized literal is not accepted before login.
        h.say(b"a APPEND INBOX {100000}\r\n").await;
        assert!(h.line().await.starts_with("a NO [TOOBIG]"));
        h.say(b"b AUTHENTICATE PLAIN\r\n").await;
        assert_eq!(h.line().await, "+ \r\n");
        h.say(b"AGFsaWNlQGV4YW1wbGUudGVzdABhbGljZS1wdw==\r\n").await;
        assert!(h.line().await.starts_with("b OK [CAPABILITY"));
        h.say(b"c LOGOUT\r\n").await;
        assert!(h.line().await.starts_with("* BYE"));
        assert!(h.line().await.starts_with("c OK"));
        assert_eq!(h.server.await.unwrap(), End::Closed);
    }
}
