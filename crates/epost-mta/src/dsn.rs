//! Delivery status notifications (RFC 3464): a pure builder of the
//! `multipart/report` a sender gets when mail failed, is late, or (on
//! request) was handed on. Three parts: a few lines for a human, the
//! `message/delivery-status` fields for a program, then the original
//! message or only its header, as the sender's `RET` asked.
//!
//! A DSN goes out with the null reverse path and is never itself
//! reported on; the queue decides when one is due ([`crate::queue::notices`]).

use std::fmt::Write as _;

use epost_types::time::Timestamp;
use serde::{Deserialize, Serialize};

use crate::outbound::{Reply, Ret, Status};

/// What happened to a recipient (RFC 3464 section 2.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    Failed,
    Delayed,
    Delivered,
    Relayed,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
        }
    }
}

/// One recipient's part of a DSN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcptReport {
    /// The address delivery was tried to.
    pub final_recipient: String,
    /// `ORCPT` as the client gave it (`rfc822;addr`).
    pub original_recipient: Option<String>,
    pub action: Action,
    pub status: Status,
    /// The remote host that answered, if one did.
    pub remote_mta: Option<String>,
    /// Its reply, given as `Diagnostic-Code: smtp; ...`.
    pub diagnostic: Option<Reply>,
    /// Our words for what happened when no server said it.
    pub reason: Option<String>,
    /// For a delay: when the queue gives up.
    pub will_retry_until: Option<Timestamp>,
}

/// A whole DSN.
#[derive(Debug, Clone)]
pub struct Report<'a> {
    /// This node's host name (`Reporting-MTA: dns; ...`).
    pub reporting_mta: &'a str,
    /// The sender: the DSN's `To`.
    pub to: &'a str,
    /// The sender's domain: the DSN is from `MAILER-DAEMON@<domain>`.
    pub domain: &'a str,
    /// The queue id, for `Message-ID` and the MIME boundary.
    pub id: &'a str,
    pub envid: Option<&'a str>,
    /// When the message was queued.
    pub arrival: Timestamp,
    /// Now.
    pub date: Timestamp,
    pub recipients: &'a [RcptReport],
    pub ret: Ret,
    /// The message as queued.
    pub original: &'a [u8],
}

/// The status a failure or delay without any better one gets.
pub fn default_status(action: Action) -> Status {
    match action {
        Action::Failed => Status { class: 5, subject: 0, detail: 0 },
        Action::Delayed => Status { class: 4, subject: 0, detail: 0 },
        Action::Delivered | Action::Relayed => Status { class: 2, subject: 0, detail: 0 },
    }
}

/// The header of a message: up to and including the blank line.
fn header_of(message: &[u8]) -> &[u8] {
    match message.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(p) => &message[..p + 4],
        None => message,
    }
}

/// Text that goes on one header or field line.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

fn secs(t: Timestamp) -> u64 {
    t.as_millis() / 1000
}

/// Builds the DSN, CRLF line ends throughout.
pub fn build(report: &Report<'_>) -> Vec<u8> {
    let boundary = format!("=_{}.{}", report.id, secs(report.date));
    let worst = report
        .recipients
        .iter()
        .map(|r| r.action)
        .min_by_key(|a| match a {
            Action::Failed => 0,
            Action::Delayed => 1,
            Action::Delivered | Action::Relayed => 2,
        })
        .unwrap_or(Action::Failed);
    let subject = match worst {
        Action::Failed => "Undelivered Mail Returned to Sender",
        Action::Delayed => "Delayed Mail (still being retried)",
        Action::Delivered | Action::Relayed => "Successful Mail Delivery Report",
    };
    let mut out = String::new();
    let mut line = |s: &str| {
        out.push_str(s);
        out.push_str("\r\n");
    };
    line(&format!("From: Mail Delivery System <MAILER-DAEMON@{}>", report.domain));
    line(&format!("To: <{}>", one_line(report.to)));
    line(&format!("Subject: {subject}"));
    line(&format!("Date: {}", epost_types::maildate::rfc5322(secs(report.date))));
    line(&format!("Message-ID: <{}.{}@{}>", report.id, secs(report.date), report.reporting_mta));
    line("Auto-Submitted: auto-replied");
    line("MIME-Version: 1.0");
    line(&format!(
        "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\""
    ));
    line("");
    line("This is a MIME-encapsulated message.");
    line("");
    // 1: for a human.
    line(&format!("--{boundary}"));
    line("Content-Type: text/plain; charset=utf-8");
    line("Content-Transfer-Encoding: 8bit");
    line("");
    line(&format!("This is the mail system at host {}.", report.reporting_mta));
    line("");
    for r in report.recipients {
        let what = match r.action {
            Action::Failed => "could not be delivered and was given up on",
            Action::Delayed => "has not been delivered yet; delivery is still being tried",
            Action::Delivered => "was delivered",
            Action::Relayed => "was handed on to the recipient's mail server",
        };
        line(&format!("Your message to <{}> {what}.", one_line(&r.final_recipient)));
        if let Some(reply) = &r.diagnostic {
            let host = r.remote_mta.as_deref().unwrap_or("the remote server");
            line(&format!("  {host} said: {} {}", reply.code, one_line(&reply.text)));
        } else if let Some(reason) = &r.reason {
            line(&format!("  {}", one_line(reason)));
        }
        if let Some(until) = r.will_retry_until {
            line(&format!(
                "  Delivery is tried until {}.",
                epost_types::maildate::rfc5322(secs(until))
            ));
        }
    }
    line("");
    // 2: for a program (RFC 3464 section 2.2, 2.3).
    line(&format!("--{boundary}"));
    line("Content-Type: message/delivery-status");
    line("");
    line(&format!("Reporting-MTA: dns; {}", report.reporting_mta));
    if let Some(envid) = report.envid {
        line(&format!("Original-Envelope-Id: {}", one_line(envid)));
    }
    line(&format!("Arrival-Date: {}", epost_types::maildate::rfc5322(secs(report.arrival))));
    for r in report.recipients {
        line("");
        if let Some(orcpt) = &r.original_recipient {
            let orcpt = one_line(orcpt);
            let (kind, addr) = orcpt.split_once(';').unwrap_or(("rfc822", &orcpt));
            line(&format!("Original-Recipient: {}; {}", kind.trim(), addr.trim()));
        }
        line(&format!("Final-Recipient: rfc822; {}", one_line(&r.final_recipient)));
        line(&format!("Action: {}", r.action.as_str()));
        line(&format!("Status: {}", r.status));
        if let Some(host) = &r.remote_mta {
            line(&format!("Remote-MTA: dns; {}", one_line(host)));
        }
        if let Some(reply) = &r.diagnostic {
            let code = match reply.status {
                Some(s) => format!("{} {s}", reply.code),
                None => reply.code.to_string(),
            };
            line(&format!("Diagnostic-Code: smtp; {code} {}", one_line(&reply.text)));
        } else if let Some(reason) = &r.reason {
            line(&format!("Diagnostic-Code: x-epost; {}", one_line(reason)));
        }
        if r.action == Action::Delayed || r.action == Action::Failed {
            line(&format!(
                "Last-Attempt-Date: {}",
                epost_types::maildate::rfc5322(secs(report.date))
            ));
        }
        if let Some(until) = r.will_retry_until {
            line(&format!("Will-Retry-Until: {}", epost_types::maildate::rfc5322(secs(until))));
        }
    }
    line("");
    // 3: the message, or its header.
    line(&format!("--{boundary}"));
    let original = match report.ret {
        Ret::Full => {
            line("Content-Type: message/rfc822");
            report.original
        }
        Ret::Headers => {
            line("Content-Type: text/rfc822-headers");
            header_of(report.original)
        }
    };
    line("Content-Transfer-Encoding: 8bit");
    line("");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(original);
    if !original.ends_with(b"\r\n") {
        bytes.extend_from_slice(b"\r\n");
    }
    let mut tail = String::new();
    let _ = write!(tail, "\r\n--{boundary}--\r\n");
    bytes.extend_from_slice(tail.as_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &[u8] = b"From: a@here.test\r\nSubject: hi\r\n\r\nthe body\r\n";

    fn rcpt(action: Action) -> RcptReport {
        RcptReport {
            final_recipient: "bob@far.test".into(),
            original_recipient: Some("rfc822;Bob@far.test".into()),
            action,
            status: match action {
                Action::Failed => Status { class: 5, subject: 1, detail: 1 },
                other => default_status(other),
            },
            remote_mta: Some("mx.far.test".into()),
            diagnostic: Some(Reply {
                code: 550,
                status: Some(Status { class: 5, subject: 1, detail: 1 }),
                text: "no such user".into(),
            }),
            reason: None,
            will_retry_until: (action == Action::Delayed)
                .then_some(Timestamp::from_millis(432_000_000)),
        }
    }

    fn build_one(action: Action, ret: Ret, envid: Option<&str>) -> String {
        let recipients = [rcpt(action)];
        let report = Report {
            reporting_mta: "node.here.test",
            to: "a@here.test",
            domain: "here.test",
            id: "00ab",
            envid,
            arrival: Timestamp::EPOCH,
            date: Timestamp::from_millis(60_000),
            recipients: &recipients,
            ret,
            original: MESSAGE,
        };
        String::from_utf8(build(&report)).unwrap()
    }

    #[test]
    fn the_three_parts_and_their_fields() {
        // (action, ret, envid) -> lines that must be there / must not
        type Row<'a> = (Action, Ret, Option<&'a str>, &'a [&'a str], &'a [&'a str]);
        let table: [Row<'_>; 4] = [
            (
                Action::Failed,
                Ret::Headers,
                Some("env-1"),
                &[
                    "From: Mail Delivery System <MAILER-DAEMON@here.test>\r\n",
                    "To: <a@here.test>\r\n",
                    "Subject: Undelivered Mail Returned to Sender\r\n",
                    "Content-Type: multipart/report; report-type=delivery-status;",
                    "Reporting-MTA: dns; node.here.test\r\n",
                    "Original-Envelope-Id: env-1\r\n",
                    "Arrival-Date: Thu, 1 Jan 1970 00:00:00 +0000\r\n",
                    "Original-Recipient: rfc822; Bob@far.test\r\n",
                    "Final-Recipient: rfc822; bob@far.test\r\n",
                    "Action: failed\r\n",
                    "Status: 5.1.1\r\n",
                    "Remote-MTA: dns; mx.far.test\r\n",
                    "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n",
                    "Content-Type: text/rfc822-headers\r\n",
                    "Subject: hi\r\n",
                ],
                &["the body", "Will-Retry-Until"],
            ),
            (
                Action::Delayed,
                Ret::Full,
                None,
                &[
                    "Subject: Delayed Mail (still being retried)\r\n",
                    "Action: delayed\r\n",
                    "Status: 4.0.0\r\n",
                    "Will-Retry-Until: Tue, 6 Jan 1970 00:00:00 +0000\r\n",
                    "Content-Type: message/rfc822\r\n",
                    "the body\r\n",
                ],
                &["Original-Envelope-Id"],
            ),
            (
                Action::Relayed,
                Ret::Headers,
                None,
                &[
                    "Subject: Successful Mail Delivery Report\r\n",
                    "Action: relayed\r\n",
                    "Status: 2.0.0\r\n",
                ],
                &["Last-Attempt-Date"],
            ),
            (Action::Delivered, Ret::Headers, None, &["Action: delivered\r\n"], &["the body"]),
        ];
        for (action, ret, envid, present, absent) in table {
            let text = build_one(action, ret, envid);
            for want in present {
                assert!(text.contains(want), "{action:?}: {want:?} missing in\n{text}");
            }
            for not in absent {
                assert!(!text.contains(not), "{action:?}: {not:?} present in\n{text}");
            }
            assert!(text.ends_with("\r\n--=_00ab.60--\r\n"), "{text}");
            assert_eq!(text.matches("\r\n--=_00ab.60\r\n").count(), 3, "{text}");
            assert!(!text.replace("\r\n", "").contains('\n'), "bare LF in\n{text}");
        }
    }

    #[test]
    fn a_reason_stands_in_for_a_reply_and_control_characters_are_removed() {
        let mut r = rcpt(Action::Failed);
        r.diagnostic = None;
        r.remote_mta = None;
        r.reason = Some("no MX\r\nInjected: yes".into());
        let report = Report {
            reporting_mta: "n",
            to: "a@h",
            domain: "h",
            id: "1",
            envid: None,
            arrival: Timestamp::EPOCH,
            date: Timestamp::EPOCH,
            recipients: &[r],
            ret: Ret::Headers,
            original: b"no header end",
        };
        let text = String::from_utf8(build(&report)).unwrap();
        assert!(text.contains("Diagnostic-Code: x-epost; no MX  Injected: yes\r\n"), "{text}");
        assert!(!text.contains("\r\nInjected"), "{text}");
        assert!(text.contains("no header end\r\n"), "{text}");
    }
}
