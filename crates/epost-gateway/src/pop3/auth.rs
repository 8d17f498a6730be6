//! USER/PASS and AUTH PLAIN, through the login throttle.
//!
//! Both are refused away from loopback until STLS has run. A locked
//! address or client hears `-ERR [SYS/TEMP]` without the backend being
//! asked; a wrong password waits the throttle's delay, then hears
//! `-ERR [AUTH]`. A good login opens the maildrop: INBOX as it is now.

use super::maildrop::Maildrop;
use super::session::{Input, Session, State, Step};
use crate::backend::{Account, AuthError, MailBackend};
use crate::context::Verdict;
use crate::smtp::{decode_base64, split_plain};

/// Longest user name taken (an address is at most 254 characters).
const MAX_USER: usize = 320;

impl<B: MailBackend> Session<B> {
    pub(super) fn user(&mut self, args: &[&str]) -> Step {
        if !self.login_allowed() {
            return self.bad("Plaintext login needs STLS first");
        }
        match args {
            [user] if user.len() <= MAX_USER => {
                self.state = State::Authorization { user: Some((*user).to_owned()) };
                self.ok("Send your password");
                Step::Continue
            }
            _ => self.bad("Usage: USER name"),
        }
    }

    pub(super) async fn pass(&mut self, password: &str) -> Step {
        if !self.login_allowed() {
            return self.bad("Plaintext login needs STLS first");
        }
        let user = match &mut self.state {
            State::Authorization { user } => user.take(),
            State::Transaction(_) => None,
        };
        match user {
            Some(user) => self.login(user, password.to_owned()).await,
            None => self.bad("USER first"),
        }
    }

    pub(super) async fn auth(&mut self, args: &[&str]) -> Step {
        match args {
            [] => {
                self.ok("Mechanisms follow");
                self.write_raw(b"PLAIN\r\n.\r\n");
                Step::Continue
            }
            _ if !self.login_allowed() => self.bad("Plaintext login needs STLS first"),
            [mechanism] if mechanism.eq_ignore_ascii_case("PLAIN") => {
                self.write_raw(b"+ \r\n");
                self.input = Input::AuthPlain;
                Step::Continue
            }
            [mechanism, initial] if mechanism.eq_ignore_ascii_case("PLAIN") => {
                let initial = if *initial == "=" { "" } else { initial };
                self.auth_plain_response(initial.as_bytes()).await
            }
            _ => self.bad("Unsupported mechanism; use PLAIN"),
        }
    }

    /// The client's SASL PLAIN response (base64).
    pub(super) async fn auth_plain_response(&mut self, response: &[u8]) -> Step {
        if response == b"*" {
            return self.bad("Authentication cancelled");
        }
        let credentials = if response.is_empty() {
            None
        } else {
            decode_base64(response).and_then(|decoded| split_plain(&decoded))
        };
        match credentials {
            Some((user, password)) if user.len() <= MAX_USER => self.login(user, password).await,
            _ => self.bad("[AUTH] Malformed credentials"),
        }
    }

    /// Checks a password through the throttle and opens the maildrop.
    async fn login(&mut self, user: String, password: String) -> Step {
        let shared = self.shared.clone();
        if shared.throttle.check(self.peer, &user) == Verdict::Locked {
            return self.bad("[SYS/TEMP] Too many failed logins; try again later");
        }
        let address = match shared.backend.authenticate(&user, &password).await {
            Ok(address) => address,
            Err(AuthError::Invalid) => {
                let delay = shared.throttle.failed(self.peer, &user);
                tokio::time::sleep(delay).await;
                return self.bad("[AUTH] Invalid credentials");
            }
            Err(AuthError::Temporary(why)) => {
                let why = why.with_causes();
                self.err(&format!("[SYS/TEMP] Cannot check the login now: {why}"));
                return Step::Continue;
            }
        };
        shared.throttle.succeeded(self.peer, &user);
        let account = match shared.backend.account(&address).await {
            Ok(account) => account,
            Err(e) => {
                self.err(&format!("[SYS/TEMP] Cannot open the mailbox: {e}"));
                return Step::Continue;
            }
        };
        let snapshot = match account.snapshot("INBOX").await {
            Ok(snapshot) => snapshot,
            Err(e) => {
                self.err(&format!("[SYS/TEMP] Cannot open INBOX: {e}"));
                return Step::Continue;
            }
        };
        let maildrop = Maildrop::new(account, snapshot);
        let (count, size) = maildrop.stat();
        self.state = State::Transaction(maildrop);
        self.ok(&format!("{address} has {count} messages ({size} octets)"));
        Step::Continue
    }
}
