//! HELO and EHLO: who the client says it is, and what we offer it.
//!
//! AUTH is offered only on the submission port, and only where a password
//! may cross the wire: under TLS or from loopback. STARTTLS is offered
//! until TLS is up. DSN (RFC 3461) is offered on submission, where mail
//! for other domains enters the outbound queue that sends the reports.

use smtp_proto::{
    AUTH_LOGIN, AUTH_PLAIN, EXT_8BIT_MIME, EXT_AUTH, EXT_CHUNKING, EXT_DSN,
    EXT_ENHANCED_STATUS_CODES, EXT_HELP, EXT_PIPELINING, EXT_SIZE, EXT_SMTP_UTF8, EXT_START_TLS,
    EhloResponse,
};

use super::session::{Helo, Session, Step};
use crate::backend::MailBackend;

impl<B: MailBackend> Session<B> {
    /// HELO or EHLO (`extended`): like RSET, and a fresh greeting.
    pub(super) fn ehlo(&mut self, host: &str, extended: bool) -> Step {
        self.tx = None;
        self.helo = Some(Helo { name: host.to_owned(), extended });
        if !extended {
            let text = format!("{} Hello {}", self.shared.hostname, super::data::one_line(host));
            self.reply_plain(250, &text);
            return Step::Continue;
        }
        let mut response = EhloResponse::new(self.shared.hostname.as_str());
        response.capabilities = EXT_8BIT_MIME
            | EXT_PIPELINING
            | EXT_ENHANCED_STATUS_CODES
            | EXT_SMTP_UTF8
            | EXT_SIZE
            | EXT_CHUNKING
            | EXT_HELP;
        response.size = self.shared.limits.max_message;
        if !self.tls && self.shared.tls.is_some() {
            response.capabilities |= EXT_START_TLS;
        }
        if self.mode == super::Mode::Submission {
            response.capabilities |= EXT_DSN;
        }
        if self.auth_allowed() {
            response.capabilities |= EXT_AUTH;
            response.auth_mechanisms = AUTH_PLAIN | AUTH_LOGIN;
        }
        let mut text = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = response.write(&mut text);
        self.write_raw(&text);
        Step::Continue
    }
}
