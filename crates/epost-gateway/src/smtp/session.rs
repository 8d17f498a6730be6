//! The SMTP session as a state machine: fed the bytes the client sent, it
//! appends replies to an output buffer and says what the connection must
//! do next (go on, start TLS, close). No sockets here, so every rule is
//! tested with plain byte strings against the in-memory backend.
//!
//! Pipelining falls out of the design: a read with several commands is
//! processed command by command, replies queue in order and are written
//! together. Bytes after STARTTLS in the same read are dropped, so nothing
//! sent in plaintext is taken as said under TLS (CVE-2011-0411).

use std::net::IpAddr;
use std::sync::Arc;

use epost_types::address::Address;
use epost_types::mailbox::Recipient;
use smtp_proto::{Error as ParseError, Request};

use super::Mode;
use super::auth::AuthStage;
use super::data::{Body, DotReader, one_line};
use crate::backend::MailBackend;
use crate::context::Shared;

use crate::line::Busy;
pub(crate) use crate::line::Step;

/// What the next input bytes are.
#[derive(Debug)]
pub(super) enum Input {
    /// Command lines.
    Command,
    /// The rest of a line that was too long, to be discarded.
    SkipLine,
    /// Message content after DATA, up to the end marker.
    Data(DotReader),
    /// `remaining` octets of a BDAT chunk; `accepted` is false when the
    /// chunk is read only to be refused.
    Bdat { remaining: usize, last: bool, accepted: bool },
    /// A line answering an AUTH challenge.
    Auth(AuthStage),
}

/// The client's HELO/EHLO.
#[derive(Debug, Clone)]
pub(super) struct Helo {
    pub(super) name: String,
    /// EHLO rather than HELO.
    pub(super) extended: bool,
}

/// One mail transaction, from MAIL to the end of the content.
#[derive(Debug)]
pub(super) struct Transaction {
    pub(super) from: Option<String>,
    /// MAIL said SMTPUTF8 (RFC 6531): addresses may be UTF-8.
    pub(super) utf8: bool,
    /// The accepted recipients, each with the route RCPT decided.
    pub(super) to: Vec<Recipient>,
    /// RET, ENVID, NOTIFY and ORCPT (submission only: DSN is offered there).
    pub(super) dsn: crate::backend::DsnRequest,
    pub(super) body: Body,
}

/// One SMTP session.
pub(crate) struct Session<B> {
    pub(super) shared: Arc<Shared<B>>,
    pub(super) mode: Mode,
    pub(super) peer: IpAddr,
    /// The connection is under TLS now.
    pub(super) tls: bool,
    pub(super) helo: Option<Helo>,
    /// The authenticated user (submission).
    pub(super) submitter: Option<Address>,
    pub(super) tx: Option<Transaction>,
    pub(super) input: Input,
    /// A command line being assembled (bounded by `limits.max_line`).
    line: Vec<u8>,
    errors: usize,
    out: Vec<u8>,
}

impl<B: MailBackend> Session<B> {
    /// A session for a client at `peer`, greeted at once.
    pub(crate) fn new(shared: Arc<Shared<B>>, mode: Mode, peer: IpAddr) -> Self {
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(peer),
            v4 => v4,
        };
        let mut session = Self {
            shared,
            mode,
            peer,
            tls: false,
            helo: None,
            submitter: None,
            tx: None,
            input: Input::Command,
            line: Vec::new(),
            errors: 0,
            out: Vec::new(),
        };
        let greeting = format!("{} ESMTP epost", session.shared.hostname);
        session.reply_plain(220, &greeting);
        session
    }

    /// A session on an implicit-TLS port (submissions), secure from its
    /// first byte: AUTH is offered at once, STARTTLS never.
    pub(crate) fn under_tls(shared: Arc<Shared<B>>, mode: Mode, peer: IpAddr) -> Self {
        let mut session = Self::new(shared, mode, peer);
        session.tls = true;
        session
    }

    /// The replies produced so far, to be written.
    pub(crate) fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// TLS is up: RFC 3207 says forget everything said before it.
    pub(crate) fn tls_started(&mut self) {
        self.tls = true;
        self.helo = None;
        self.submitter = None;
        self.tx = None;
        self.input = Input::Command;
        self.line.clear();
    }

    /// The goodbye for a gateway shutting down (or an idle client).
    pub(crate) fn shutting_down(&mut self, why: &str) {
        self.reply(421, [4, 3, 2], format!("{} {why}", self.shared.hostname));
    }

    /// What the session is in the middle of (for the connection's clocks).
    pub(crate) fn busy(&self) -> Busy {
        match self.input {
            Input::Data(_) | Input::Bdat { .. } => Busy::Data,
            Input::SkipLine => Busy::Command,
            Input::Command | Input::Auth(_) if !self.line.is_empty() => Busy::Command,
            Input::Command | Input::Auth(_) => Busy::Idle,
        }
    }

    /// Whether the client may authenticate here and now (RFC 4954 says
    /// not in plaintext; loopback clients are trusted with it).
    pub(super) fn auth_allowed(&self) -> bool {
        self.mode == Mode::Submission && (self.tls || self.peer.is_loopback())
    }

    /// Processes everything in `bytes`.
    pub(crate) async fn feed(&mut self, mut bytes: &[u8]) -> Step {
        while !bytes.is_empty() {
            match &mut self.input {
                Input::Data(reader) => {
                    let Some(tx) = self.tx.as_mut() else {
                        self.input = Input::Command;
                        continue;
                    };
                    let (used, done) = reader.push(bytes, &mut tx.body);
                    bytes = &bytes[used..];
                    if done {
                        let step = self.deliver().await;
                        if step != Step::Continue {
                            return step;
                        }
                    }
                }
                Input::Bdat { remaining, last, accepted } => {
                    let take = bytes.len().min(*remaining);
                    if *accepted && let Some(tx) = self.tx.as_mut() {
                        tx.body.push(&bytes[..take]);
                    }
                    bytes = &bytes[take..];
                    *remaining -= take;
                    if *remaining == 0 {
                        let (last, accepted) = (*last, *accepted);
                        let step = self.chunk_done(last, accepted).await;
                        if step != Step::Continue {
                            return step;
                        }
                    }
                }
                Input::Command | Input::SkipLine | Input::Auth(_) => {
                    let max = self.shared.limits.max_line;
                    let Some(pos) = bytes.iter().position(|&b| b == b'\n') else {
                        self.take_partial(bytes, max);
                        return Step::Continue;
                    };
                    let (head, rest) = bytes.split_at(pos + 1);
                    bytes = rest;
                    if matches!(self.input, Input::SkipLine) {
                        self.input = Input::Command;
                        continue;
                    }
                    if self.line.len() + head.len() > max {
                        self.line.clear();
                        let step = self.bad(500, [5, 5, 2], "Line too long");
                        if step != Step::Continue {
                            return step;
                        }
                        continue;
                    }
                    self.line.extend_from_slice(head);
                    let line = std::mem::take(&mut self.line);
                    let step = self.line(&line).await;
                    if step != Step::Continue {
                        return step;
                    }
                }
            }
        }
        Step::Continue
    }

    /// Keeps the start of a line that has no end yet, or starts skipping.
    fn take_partial(&mut self, bytes: &[u8], max: usize) {
        if matches!(self.input, Input::SkipLine) {
            return;
        }
        if self.line.len() + bytes.len() > max {
            self.line.clear();
            // The line is answered now; the rest of it is discarded.
            let _ = self.bad(500, [5, 5, 2], "Line too long");
            self.input = Input::SkipLine;
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    /// One complete line (with its LF).
    async fn line(&mut self, line: &[u8]) -> Step {
        if matches!(self.input, Input::Auth(_)) {
            let Input::Auth(stage) = std::mem::replace(&mut self.input, Input::Command) else {
                return Step::Continue;
            };
            return self.auth_response(stage, line).await;
        }
        let request = match Request::parse(&mut line.iter()) {
            Ok(request) => request,
            Err(e) => return self.parse_error(e),
        };
        match request {
            Request::Ehlo { host } => self.ehlo(&host, true),
            Request::Helo { host } => self.ehlo(&host, false),
            Request::Mail { from } => self.mail(from).await,
            Request::Rcpt { to } => self.rcpt(to, line).await,
            Request::Data => self.data(),
            Request::Bdat { chunk_size, is_last } => self.bdat(chunk_size, is_last).await,
            Request::Auth { mechanism, initial_response } => {
                self.auth(mechanism, &initial_response).await
            }
            Request::Rset => self.rset(),
            Request::Noop { .. } => {
                self.reply(250, [2, 0, 0], "OK");
                Step::Continue
            }
            Request::Vrfy { .. } => {
                self.reply(252, [2, 5, 0], "Cannot VRFY user, but will accept message");
                Step::Continue
            }
            Request::Help { .. } => {
                self.reply(214, [2, 0, 0], "See RFC 5321; commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP STARTTLS AUTH");
                Step::Continue
            }
            Request::StartTls => self.starttls(),
            Request::Quit => {
                self.reply(221, [2, 0, 0], "Bye");
                Step::Close
            }
            Request::Lhlo { .. }
            | Request::Expn { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => self.bad(502, [5, 5, 1], "Command not implemented"),
        }
    }

    fn parse_error(&mut self, e: ParseError) -> Step {
        match e {
            ParseError::UnknownCommand => self.bad(500, [5, 5, 1], "Command unrecognized"),
            ParseError::SyntaxError { syntax } => {
                self.bad(501, [5, 5, 4], format!("Syntax: {syntax}"))
            }
            ParseError::InvalidSenderAddress => {
                self.bad(501, [5, 1, 7], "Bad sender address syntax")
            }
            ParseError::InvalidRecipientAddress => {
                self.bad(501, [5, 1, 3], "Bad recipient address syntax")
            }
            ParseError::InvalidParameter { param } => {
                self.bad(501, [5, 5, 4], format!("Invalid parameter {param}"))
            }
            ParseError::UnsupportedParameter { param } => {
                self.bad(555, [5, 5, 4], format!("Unsupported parameter {}", one_line(&param)))
            }
            _ => self.bad(500, [5, 5, 2], "Syntax error"),
        }
    }

    fn starttls(&mut self) -> Step {
        if self.tls {
            return self.bad(503, [5, 5, 1], "Already under TLS");
        }
        if self.shared.tls.is_none() {
            return self.bad(454, [4, 7, 0], "TLS not available");
        }
        self.reply(220, [2, 0, 0], "Ready to start TLS");
        Step::StartTls
    }

    /// Appends one reply line with an enhanced status code.
    pub(super) fn reply(&mut self, code: u16, esc: [u8; 3], text: impl std::fmt::Display) {
        let response = smtp_proto::Response::new(code, esc[0], esc[1], esc[2], text);
        // Writing to a Vec cannot fail.
        let _ = response.write(&mut self.out);
    }

    /// Appends a reply without a status code (greeting, AUTH challenges).
    pub(super) fn reply_plain(&mut self, code: u16, text: &str) {
        self.out.extend_from_slice(format!("{code} {text}\r\n").as_bytes());
    }

    pub(super) fn write_raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// A refused command: counted; past the limit the session ends.
    pub(super) fn bad(&mut self, code: u16, esc: [u8; 3], text: impl std::fmt::Display) -> Step {
        self.reply(code, esc, text);
        self.errors += 1;
        if self.errors >= self.shared.limits.max_errors {
            self.reply(421, [4, 7, 0], "Too many errors; closing");
            return Step::Close;
        }
        Step::Continue
    }
}

#[cfg(test)]
mod tests;
