//! The POP3 session as a state machine: fed the client's bytes, it
//! appends responses to an output buffer and says what the connection
//! must do next. No sockets, so it is tested with byte strings.
//!
//! Commands are split into a keyword and space-separated arguments (the
//! grammar of RFC 1939 and 2449 is no more than that); every line is
//! bounded by `limits.max_line`. Bytes after STLS in the same read are
//! dropped, as with SMTP's STARTTLS.

use std::net::IpAddr;
use std::sync::Arc;

use super::maildrop::Maildrop;
use crate::backend::MailBackend;
use crate::context::Shared;

use crate::line::Busy;
pub(crate) use crate::line::Step;

/// What the next line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Input {
    Command,
    /// The rest of a too-long line, to be discarded.
    SkipLine,
    /// The answer to AUTH PLAIN's empty challenge.
    AuthPlain,
}

/// RFC 1939's states (UPDATE is the QUIT of the transaction state).
pub(super) enum State<A> {
    /// Before login; `user` is what USER said.
    Authorization {
        user: Option<String>,
    },
    Transaction(Maildrop<A>),
}

/// One POP3 session.
pub(crate) struct Session<B: MailBackend> {
    pub(super) shared: Arc<Shared<B>>,
    pub(super) peer: IpAddr,
    pub(super) tls: bool,
    pub(super) state: State<B::Account>,
    pub(super) input: Input,
    line: Vec<u8>,
    errors: usize,
    out: Vec<u8>,
}

impl<B: MailBackend> Session<B> {
    /// A session for a client at `peer`, greeted at once.
    pub(crate) fn new(shared: Arc<Shared<B>>, peer: IpAddr) -> Self {
        let peer = match peer {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(peer),
            v4 => v4,
        };
        let mut session = Self {
            shared,
            peer,
            tls: false,
            state: State::Authorization { user: None },
            input: Input::Command,
            line: Vec::new(),
            errors: 0,
            out: Vec::new(),
        };
        let greeting = format!("{} POP3 ready", session.shared.hostname);
        session.ok(&greeting);
        session
    }

    pub(crate) fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// TLS is up: forget anything said before it.
    pub(crate) fn tls_started(&mut self) {
        self.tls = true;
        self.state = State::Authorization { user: None };
        self.input = Input::Command;
        self.line.clear();
    }

    /// The goodbye for a gateway shutting down (nothing is expunged).
    pub(crate) fn shutting_down(&mut self) {
        self.err("[SYS/TEMP] Server shutting down");
    }

    /// What the session is in the middle of (for the connection's clocks).
    pub(crate) fn busy(&self) -> Busy {
        if self.input == Input::SkipLine || !self.line.is_empty() {
            Busy::Command
        } else {
            Busy::Idle
        }
    }

    /// Whether a password may be sent here (under TLS or from loopback).
    pub(super) fn login_allowed(&self) -> bool {
        self.tls || self.peer.is_loopback()
    }

    /// Processes everything in `bytes`.
    pub(crate) async fn feed(&mut self, mut bytes: &[u8]) -> Step {
        let max = self.shared.limits.max_line;
        while !bytes.is_empty() {
            let Some(pos) = bytes.iter().position(|&b| b == b'\n') else {
                if self.input == Input::SkipLine {
                    return Step::Continue;
                }
                if self.line.len() + bytes.len() > max {
                    self.line.clear();
                    self.input = Input::SkipLine;
                    return self.bad("Line too long");
                }
                self.line.extend_from_slice(bytes);
                return Step::Continue;
            };
            let (head, rest) = bytes.split_at(pos + 1);
            bytes = rest;
            if self.input == Input::SkipLine {
                self.input = Input::Command;
                continue;
            }
            if self.line.len() + head.len() > max {
                self.line.clear();
                match self.bad("Line too long") {
                    Step::Continue => continue,
                    step => return step,
                }
            }
            self.line.extend_from_slice(head);
            let line = std::mem::take(&mut self.line);
            let step = self.line(&line).await;
            if step != Step::Continue {
                return step;
            }
        }
        Step::Continue
    }

    async fn line(&mut self, line: &[u8]) -> Step {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if self.input == Input::AuthPlain {
            self.input = Input::Command;
            return self.auth_plain_response(line).await;
        }
        let Ok(text) = std::str::from_utf8(line) else {
            return self.bad("Command unrecognized");
        };
        let (keyword, rest) = text.split_once(' ').unwrap_or((text, ""));
        let keyword = keyword.to_ascii_uppercase();
        if keyword == "PASS" && !self.in_transaction() {
            // The password is the rest of the line, spaces and all.
            return self.pass(rest).await;
        }
        let args: Vec<&str> = rest.split(' ').filter(|w| !w.is_empty()).collect();
        if args.len() > 2 {
            return self.bad("Too many arguments");
        }
        match (keyword.as_str(), self.in_transaction()) {
            ("CAPA", _) => self.capa(),
            ("QUIT", _) => self.quit().await,
            ("NOOP", true) => {
                self.ok("");
                Step::Continue
            }
            ("USER", false) => self.user(&args),
            ("AUTH", false) => self.auth(&args).await,
            ("STLS", false) => self.stls(),
            ("STAT", true) => self.stat(),
            ("LIST", true) => self.list(&args, false),
            ("UIDL", true) => self.list(&args, true),
            ("RETR", true) => self.retr(&args).await,
            ("TOP", true) => self.top(&args).await,
            ("DELE", true) => self.dele(&args),
            ("RSET", true) => self.rset(),
            (
                "USER" | "PASS" | "AUTH" | "STLS" | "APOP" | "NOOP" | "STAT" | "LIST" | "UIDL"
                | "RETR" | "TOP" | "DELE" | "RSET",
                _,
            ) => self.bad("Command not valid in this state"),
            _ => self.bad("Command unrecognized"),
        }
    }

    fn in_transaction(&self) -> bool {
        matches!(self.state, State::Transaction(_))
    }

    fn capa(&mut self) -> Step {
        let mut lines = vec!["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"];
        if !self.in_transaction() {
            if self.login_allowed() {
                lines.push("USER");
                lines.push("SASL PLAIN");
            }
            if !self.tls && self.shared.tls.is_some() {
                lines.push("STLS");
            }
        }
        lines.push("IMPLEMENTATION epost");
        self.ok("Capability list follows");
        for line in lines {
            self.out.extend_from_slice(line.as_bytes());
            self.out.extend_from_slice(b"\r\n");
        }
        self.out.extend_from_slice(b".\r\n");
        Step::Continue
    }

    fn stls(&mut self) -> Step {
        if self.tls {
            return self.bad("Already under TLS");
        }
        if self.shared.tls.is_none() {
            return self.bad("[SYS/PERM] TLS not available");
        }
        self.ok("Begin TLS negotiation");
        Step::StartTls
    }

    /// `+OK text`.
    pub(super) fn ok(&mut self, text: &str) {
        self.out.extend_from_slice(b"+OK");
        if !text.is_empty() {
            self.out.push(b' ');
            self.out.extend_from_slice(text.as_bytes());
        }
        self.out.extend_from_slice(b"\r\n");
    }

    /// `-ERR text`, not counted as a client error.
    pub(super) fn err(&mut self, text: &str) {
        let text: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        self.out.extend_from_slice(format!("-ERR {text}\r\n").as_bytes());
    }

    /// Raw bytes (multi-line bodies).
    pub(super) fn write_raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// A refused command: counted; past the limit the session ends.
    pub(super) fn bad(&mut self, text: &str) -> Step {
        self.err(text);
        self.errors += 1;
        if self.errors >= self.shared.limits.max_errors {
            self.err("Too many errors; closing");
            return Step::Close;
        }
        Step::Continue
    }
}

#[cfg(test)]
mod tests;
