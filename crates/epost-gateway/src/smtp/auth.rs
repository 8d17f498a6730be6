//! AUTH PLAIN and LOGIN (RFC 4954), through the login throttle.
//!
//! The throttle is asked before the password is checked: a locked
//! address or client gets `454 4.7.0` without the backend being asked.
//! A failed login waits the throttle's delay before `535 5.7.8`, which
//! makes guessing slow without holding other sessions back.

use data_encoding::{BASE64, BASE64_NOPAD};

use super::Mode;
use super::session::{Input, Session, Step};
use crate::backend::{AuthError, MailBackend};
use crate::context::Verdict;

/// Where an AUTH exchange waits for the client's next line.
#[derive(Debug)]
pub(super) enum AuthStage {
    /// PLAIN without an initial response: the credentials come next.
    Plain,
    /// LOGIN: the user name comes next.
    LoginUser,
    /// LOGIN: the password for `user` comes next.
    LoginPassword { user: String },
}

/// Base64 `Username:` and `Password:`, LOGIN's challenges.
const USERNAME: &str = "VXNlcm5hbWU6";
const PASSWORD: &str = "UGFzc3dvcmQ6";

/// Decodes one base64 client response; `None` if it is not base64.
pub(crate) fn decode(text: &[u8]) -> Option<Vec<u8>> {
    BASE64.decode(text).or_else(|_| BASE64_NOPAD.decode(text)).ok()
}

/// Splits SASL PLAIN's `authzid NUL authcid NUL passwd`; an authzid, if
/// given, must be the user itself (no logging in as someone else).
pub(crate) fn split_plain(decoded: &[u8]) -> Option<(String, String)> {
    let mut parts = decoded.split(|&b| b == 0);
    let (authz, user, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || user.is_empty() || (!authz.is_empty() && authz != user) {
        return None;
    }
    let user = String::from_utf8(user.to_vec()).ok()?;
    let password = String::from_utf8(password.to_vec()).ok()?;
    Some((user, password))
}

impl<B: MailBackend> Session<B> {
    /// The AUTH command.
    pub(super) async fn auth(&mut self, mechanism: u64, initial: &str) -> Step {
        if self.mode != Mode::Submission {
            return self.bad(503, [5, 5, 1], "AUTH is not offered here");
        }
        if !self.auth_allowed() {
            return self.bad(530, [5, 7, 0], "Must issue STARTTLS first");
        }
        if self.helo.as_ref().is_none_or(|h| !h.extended) {
            return self.bad(503, [5, 5, 1], "Send EHLO first");
        }
        if self.submitter.is_some() {
            return self.bad(503, [5, 5, 1], "Already authenticated");
        }
        if self.tx.is_some() {
            return self.bad(503, [5, 5, 1], "AUTH not permitted during a mail transaction");
        }
        match mechanism {
            smtp_proto::AUTH_PLAIN if initial.is_empty() => {
                self.reply_plain(334, "");
                self.input = Input::Auth(AuthStage::Plain);
                Step::Continue
            }
            smtp_proto::AUTH_PLAIN => self.plain(initial.as_bytes()).await,
            smtp_proto::AUTH_LOGIN if initial.is_empty() => {
                self.reply_plain(334, USERNAME);
                self.input = Input::Auth(AuthStage::LoginUser);
                Step::Continue
            }
            smtp_proto::AUTH_LOGIN => self.login_user(initial.as_bytes()),
            _ => self.bad(504, [5, 5, 4], "Unrecognized authentication type"),
        }
    }

    /// A line answering a challenge.
    pub(super) async fn auth_response(&mut self, stage: AuthStage, line: &[u8]) -> Step {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line == b"*" {
            return self.bad(501, [5, 0, 0], "Authentication cancelled");
        }
        match stage {
            AuthStage::Plain => self.plain(line).await,
            AuthStage::LoginUser => self.login_user(line),
            AuthStage::LoginPassword { user } => match decode(line) {
                Some(password) => match String::from_utf8(password) {
                    Ok(password) => self.verify(user, password).await,
                    Err(_) => self.bad(501, [5, 5, 2], "The password is not UTF-8"),
                },
                None => self.bad(501, [5, 5, 2], "Cannot decode the response"),
            },
        }
    }

    async fn plain(&mut self, response: &[u8]) -> Step {
        // "=" is an empty initial response (RFC 4954), which cannot hold
        // credentials.
        let decoded = if response == b"=" { Some(Vec::new()) } else { decode(response) };
        let Some(decoded) = decoded else {
            return self.bad(501, [5, 5, 2], "Cannot decode the response");
        };
        match split_plain(&decoded) {
            Some((user, password)) => self.verify(user, password).await,
            None => self.bad(501, [5, 5, 2], "Malformed PLAIN credentials"),
        }
    }

    fn login_user(&mut self, response: &[u8]) -> Step {
        let user = decode(response).and_then(|u| String::from_utf8(u).ok());
        match user {
            Some(user) if !user.is_empty() => {
                self.reply_plain(334, PASSWORD);
                self.input = Input::Auth(AuthStage::LoginPassword { user });
                Step::Continue
            }
            _ => self.bad(501, [5, 5, 2], "Cannot decode the user name"),
        }
    }

    /// Checks a password through the throttle.
    async fn verify(&mut self, user: String, password: String) -> Step {
        let shared = self.shared.clone();
        if shared.throttle.check(self.peer, &user) == Verdict::Locked {
            return self.bad(454, [4, 7, 0], "Too many failed logins; try again later");
        }
        match shared.backend.authenticate(&user, &password).await {
            Ok(address) => {
                shared.throttle.succeeded(self.peer, &user);
                self.submitter = Some(address);
                self.reply(235, [2, 7, 0], "Authentication successful");
                Step::Continue
            }
            Err(AuthError::Invalid) => {
                let delay = shared.throttle.failed(self.peer, &user);
                tokio::time::sleep(delay).await;
                self.bad(535, [5, 7, 8], "Authentication credentials invalid")
            }
            Err(AuthError::Temporary(why)) => {
                let why = why.with_causes();
                let text = format!("Temporary authentication failure: {why}");
                self.reply(454, [4, 7, 0], super::data::one_line(&text));
                Step::Continue
            }
        }
    }
}
