//! MAIL, RCPT and RSET: the envelope, and who may send to whom.
//!
//! Inbound (MX) mail is accepted only for recipients the backend routes
//! to a user of a trusted realm: an unknown user is `550 5.1.1`, a
//! foreign domain is relaying and refused (`550 5.7.1`). The route is
//! decided here, once, and kept with the recipient for delivery. Submission needs AUTH first; its
//! sender must be the authenticated address (or the null sender), as
//! Postfix's `reject_sender_login_mismatch` does, so a user cannot send
//! as someone else; foreign recipients are taken only when the gateway
//! relays for submitters.

use std::borrow::Cow;

use epost_types::address::Address;
use epost_types::mailbox::{Recipient, Route};
use smtp_proto::{MailFrom, RcptTo};

use super::Mode;
use super::data::Body;
use super::session::{Session, Step, Transaction};
use crate::backend::MailBackend;

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
        if let Some(submitter) = &self.submitter
            && !sender.is_empty()
            && sender.parse::<Address>().ok().as_ref() != Some(submitter)
        {
            let text = format!("<{sender}>: Sender address not owned by user {submitter}");
            self.reply(553, [5, 7, 1], super::data::one_line(&text));
            return Step::Continue;
        }
        self.tx = Some(Transaction {
            from: (!sender.is_empty()).then(|| sender.to_owned()),
            to: Vec::new(),
            body: Body::new(limit),
        });
        self.reply(250, [2, 1, 0], "OK");
        Step::Continue
    }

    pub(super) async fn rcpt(&mut self, to: RcptTo<Cow<'_, str>>) -> Step {
        let Some(tx) = &self.tx else {
            return self.bad(503, [5, 5, 1], "Need MAIL command first");
        };
        if tx.to.len() >= self.shared.limits.max_recipients {
            self.reply(452, [4, 5, 3], "Too many recipients");
            return Step::Continue;
        }
        let Ok(rcpt) = to.address.parse::<Address>() else {
            return self.bad(501, [5, 1, 3], "Bad recipient address syntax");
        };
        if tx.to.iter().any(|r| r.address == rcpt) {
            self.reply(250, [2, 1, 5], "OK");
            return Step::Continue;
        }
        let route = match self.shared.backend.recipient(&rcpt).await {
            Ok(route) => route,
            Err(why) => {
                let why = why.with_causes();
                let text = format!("<{rcpt}>: Cannot check the recipient now: {why}");
                self.reply(451, [4, 4, 3], super::data::one_line(&text));
                return Step::Continue;
            }
        };
        let accept = match route {
            Route::Local | Route::Remote => true,
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
        if let Some(tx) = &mut self.tx {
            tx.to.push(Recipient::new(rcpt, route));
        }
        self.reply(250, [2, 1, 5], "OK");
        Step::Continue
    }

    pub(super) fn rset(&mut self) -> Step {
        self.tx = None;
        self.reply(250, [2, 0, 0], "OK");
        Step::Continue
    }
}
