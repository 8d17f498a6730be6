//! MAIL, RCPT and RSET: the envelope, and who may send to whom.
//!
//! Inbound (MX) mail is accepted only for recipients the backend routes
//! to a user of a trusted realm: an unknown user is `550 5.1.1`, a
//! foreign domain is relaying and refused (`550 5.7.1`). The route is
//! decided here, once, and kept with the recipient for delivery. Submission needs AUTH first; its
//! sender must be the authenticated address (or the null sender), as
//! Postfix's `reject_sender_login_mismatch` does, so a user cannot send
//! as someone else; foreign recipients are taken only when the gateway
//! relays for submitters (the node's outbound queue delivers them).
//!
//! On submission the DSN parameters (RFC 3461) are kept with the
//! transaction: `RET` and `ENVID` of MAIL, `NOTIFY` and `ORCPT` of RCPT;
//! on the MX port, which does not offer DSN, they are ignored.
//!
//! A bare `<postmaster>` is taken on every port ([`super::postmaster`]).
//! An address with UTF-8 in it is taken only in a transaction whose MAIL
//! said SMTPUTF8 (RFC 6531), else `553 5.6.7`. A recipient the backend
//! cannot look up now (the overlay unreachable) is `451 4.4.3`, never
//! `550`: `550 5.1.1` is for a realm that certainly has no such user.

use std::borrow::Cow;

use epost_mta::outbound::{Notify, Ret};
use epost_types::address::Address;
use epost_types::mailbox::{MailError, Recipient, Route};
use smtp_proto::{
    MAIL_RET_FULL, MAIL_RET_HDRS, MAIL_SMTPUTF8, MailFrom, RCPT_NOTIFY_DELAY, RCPT_NOTIFY_FAILURE,
    RCPT_NOTIFY_NEVER, RCPT_NOTIFY_SUCCESS, RcptTo,
};

use super::Mode;
use super::data::Body;
use super::session::{Session, Step, Transaction};
use crate::backend::{DsnRequest, MailBackend, RcptDsn};

/// `RET` from MAIL's flags.
fn ret(flags: u64) -> Option<Ret> {
    if flags & MAIL_RET_FULL != 0 {
        Some(Ret::Full)
    } else if flags & MAIL_RET_HDRS != 0 {
        Some(Ret::Headers)
    } else {
        None
    }
}

/// `NOTIFY` from RCPT's flags; `None` when not given.
fn notify(flags: u64) -> Option<Notify> {
    let asked = RCPT_NOTIFY_NEVER | RCPT_NOTIFY_SUCCESS | RCPT_NOTIFY_FAILURE | RCPT_NOTIFY_DELAY;
    if flags & asked == 0 {
        return None;
    }
    if flags & RCPT_NOTIFY_NEVER != 0 {
        return Some(Notify { success: false, failure: false, delay: false });
    }
    Some(Notify {
        success: flags & RCPT_NOTIFY_SUCCESS != 0,
        failure: flags & RCPT_NOTIFY_FAILURE != 0,
        delay: flags & RCPT_NOTIFY_DELAY != 0,
    })
}

impl<B: MailBackend> Session<B> {
    pub(super) async fn mail(&mut self, from: MailFrom<Cow<'_, str>>) -> Step {
        if self.helo.is_none() {
            return self.bad(503, [5, 5, 1], "Send HELO or EHLO first");
        }
        if self.mode == Mode::Submission && self.submitter.is_none() {
            return self.bad(530, [5, 7, 0], "Authentication required");
        }
        if self.tx.is_some() {
            return self.bad(503, [5, 5, 1], "Nested MAIL command");
        }
        let limit = self.shared.limits.max_message;
        if from.size > limit {
            self.reply(552, [5, 3, 4], format!("Message size exceeds the limit of {limit} bytes"));
            return Step::Continue;
        }
        let sender = from.address.as_ref();
        let utf8 = from.flags & MAIL_SMTPUTF8 != 0;
        if !utf8 && !sender.is_ascii() {
            let text = format!("<{sender}>: Non-ASCII sender address needs SMTPUTF8");
            self.reply(553, [5, 6, 7], super::data::one_line(&text));
            return Step::Continue;
        }
        if let Some(submitter) = &self.submitter
            && !sender.is_empty()
            && sender.parse::<Address>().ok().as_ref() != Some(submitter)
        {
            let text = format!("<{sender}>: Sender address not owned by user {submitter}");
            self.reply(553, [5, 7, 1], super::data::one_line(&text));
            return Step::Continue;
        }
        let dsn = match self.mode {
            Mode::Submission => DsnRequest {
                ret: ret(from.flags),
                envid: from.env_id.as_deref().map(str::to_owned),
                recipients: Vec::new(),
            },
            Mode::Inbound => DsnRequest::default(),
        };
        self.tx = Some(Transaction {
            from: (!sender.is_empty()).then(|| sender.to_owned()),
            utf8,
            to: Vec::new(),
            dsn,
            body: Body::new(limit),
        });
        self.reply(250, [2, 1, 0], "OK");
        Step::Continue
    }

    /// RCPT; `line` is the command as sent (the parser reads `<>` and
    /// `<postmaster>` alike).
    pub(super) async fn rcpt(&mut self, to: RcptTo<Cow<'_, str>>, line: &[u8]) -> Step {
        let Some(tx) = &self.tx else {
            return self.bad(503, [5, 5, 1], "Need MAIL command first");
        };
        if tx.to.len() >= self.shared.limits.max_recipients {
            self.reply(452, [4, 5, 3], "Too many recipients");
            return Step::Continue;
        }
        if to.address.is_empty() {
            if !super::postmaster::named(line) {
                return self.bad(501, [5, 1, 3], "Bad recipient address syntax");
            }
            return self.rcpt_postmaster().await;
        }
        if !tx.utf8 && !to.address.is_ascii() {
            let text = format!("<{}>: Non-ASCII recipient address needs SMTPUTF8", to.address);
            self.reply(553, [5, 6, 7], super::data::one_line(&text));
            return Step::Continue;
        }
        let Ok(rcpt) = to.address.parse::<Address>() else {
            return self.bad(501, [5, 1, 3], "Bad recipient address syntax");
        };
        if tx.to.iter().any(|r| r.address == rcpt) {
            // Named twice: the first RCPT's parameters stand.
            self.reply(250, [2, 1, 5], "OK");
            return Step::Continue;
        }
        let route = match self.shared.backend.recipient(&rcpt).await {
            Ok(route) => route,
            Err(why) => return self.cannot_check(&rcpt.to_string(), why),
        };
        let accept = match route {
            Route::Local => true,
            Route::Remote => {
                let submitter = self.submitter.clone();
                match self.shared.backend.can_announce(submitter.as_ref(), &rcpt).await {
                    Ok(()) => true,
                    Err(MailError::NotAllowed(why)) => {
                        let text = format!("<{rcpt}>: Cannot relay to this user from here: {why}");
                        self.reply(451, [4, 3, 5], super::data::one_line(&text));
                        return Step::Continue;
                    }
                    Err(why) => return self.cannot_check(&rcpt.to_string(), why),
                }
            }
            Route::Foreign => {
                self.submitter.is_some()
                    && self.mode == Mode::Submission
                    && self.shared.relay_for_submitters
            }
            Route::Unknown => {
                self.reply(
                    550,
                    [5, 1, 1],
                    format!("<{rcpt}>: Recipient address rejected: User unknown"),
                );
                return Step::Continue;
            }
        };
        if !accept {
            self.reply(550, [5, 7, 1], format!("<{rcpt}>: Relay access denied"));
            return Step::Continue;
        }
        let submission = self.mode == Mode::Submission;
        if let Some(tx) = &mut self.tx {
            let asked = notify(to.flags);
            if submission && (asked.is_some() || to.orcpt.is_some()) {
                tx.dsn.recipients.push(RcptDsn {
                    address: rcpt.clone(),
                    notify: asked.unwrap_or_default(),
                    orcpt: to.orcpt.as_deref().map(|a| format!("rfc822;{a}")),
                });
            }
            tx.to.push(Recipient::new(rcpt, route));
        }
        self.reply(250, [2, 1, 5], "OK");
        Step::Continue
    }

    /// A bare `<postmaster>`: the first of the candidates that is a user
    /// of ours, on any port, from anyone.
    async fn rcpt_postmaster(&mut self) -> Step {
        let domains = self.shared.backend.domains();
        let candidates = super::postmaster::candidates(self.shared.postmaster.as_ref(), &domains);
        for address in candidates {
            let route = match self.shared.backend.recipient(&address).await {
                Ok(route) => route,
                Err(why) => return self.cannot_check("postmaster", why),
            };
            if !matches!(route, Route::Local | Route::Remote) {
                continue;
            }
            if let Some(tx) = &mut self.tx
                && !tx.to.iter().any(|r| r.address == address)
            {
                tx.to.push(Recipient::new(address, route));
            }
            self.reply(250, [2, 1, 5], "OK");
            return Step::Continue;
        }
        self.reply(
            550,
            [5, 1, 1],
            "<postmaster>: Recipient address rejected: no postmaster here (set gateway.postmaster)",
        );
        Step::Continue
    }

    /// The recipient could not be looked up now: try again later.
    fn cannot_check(&mut self, rcpt: &str, why: epost_types::mailbox::MailError) -> Step {
        let why = why.with_causes();
        let text = format!("<{rcpt}>: Cannot check the recipient now: {why}");
        self.reply(451, [4, 4, 3], super::data::one_line(&text));
        Step::Continue
    }

    pub(super) fn rset(&mut self) -> Step {
        self.tx = None;
        self.reply(250, [2, 0, 0], "OK");
        Step::Continue
    }
}
