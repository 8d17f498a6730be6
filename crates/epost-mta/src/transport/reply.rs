//! A remote server's reply as a [`Reply`], and what it means for the
//! recipients it answers for: `2xx` goes on, `5xx` is for good, anything
//! else (`4xx`, or a code the command does not allow) is worth another
//! try. Pure.

use smtp_proto::Response;

use crate::outbound::{Outcome, Reply, Status};

/// What a reply says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Accepted,
    Temporary,
    Permanent,
}

impl Reply {
    /// What this reply says: `2xx` (and `354` after `DATA`, which the
    /// caller checks itself) accepted, `5xx` permanent, the rest temporary.
    pub(crate) fn verdict(&self) -> Verdict {
        match self.code {
            200..=299 => Verdict::Accepted,
            500..=599 => Verdict::Permanent,
            _ => Verdict::Temporary,
        }
    }
}

/// A parsed reply as our [`Reply`]: lines joined by spaces; the enhanced
/// status from the parser, or read from the text's start when the parser
/// missed it (it reads one digit per part, so not `5.7.26`).
pub(crate) fn from_response(r: &Response<String>) -> Reply {
    let joined: String = r
        .message
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if r.esc != [0, 0, 0] {
        let [class, subject, detail] = r.esc;
        let status = Status { class, subject: subject.into(), detail: detail.into() };
        return Reply { code: r.code, status: Some(status), text: joined };
    }
    match split_status(&joined) {
        Some((status, rest)) if u16::from(status.class) == r.code / 100 => {
            Reply { code: r.code, status: Some(status), text: rest.to_owned() }
        }
        _ => Reply { code: r.code, status: None, text: joined },
    }
}

/// `class.subject.detail` at the start of `text` (RFC 3463: class 2, 4
/// or 5, up to three digits each after), and the text after it.
fn split_status(text: &str) -> Option<(Status, &str)> {
    let (head, rest) = text.split_once(' ').unwrap_or((text, ""));
    let mut parts = head.split('.');
    let (c, s, d) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |p: &str, max: usize| {
        !p.is_empty() && p.len() <= max && p.bytes().all(|b| b.is_ascii_digit())
    };
    if parts.next().is_some() || !digits(c, 1) || !digits(s, 3) || !digits(d, 3) {
        return None;
    }
    let class: u8 = c.parse().ok()?;
    if !matches!(class, 2 | 4 | 5) {
        return None;
    }
    Some((Status { class, subject: s.parse().ok()?, detail: d.parse().ok()? }, rest))
}

/// The outcome for a recipient answered by `reply` to `command` at
/// `host`: a refusal for good or one worth another try. (An accepted
/// reply is no outcome yet, except after the data: see [`delivered`].)
pub(crate) fn refused(host: &str, command: &str, reply: &Reply) -> Outcome {
    let reason = format!("{host} said to {command}: {}", describe(reply));
    match reply.verdict() {
        Verdict::Permanent => Outcome::Failed {
            host: Some(host.to_owned()),
            status: reply.status.filter(|s| s.class == 5).unwrap_or(Status {
                class: 5,
                subject: 0,
                detail: 0,
            }),
            reply: Some(reply.clone()),
            reason,
        },
        Verdict::Temporary | Verdict::Accepted => {
            Outcome::Deferred { host: Some(host.to_owned()), reply: Some(reply.clone()), reason }
        }
    }
}

/// The outcome of a recipient whose data the reply answered.
pub(crate) fn after_data(host: &str, reply: &Reply) -> Outcome {
    match reply.verdict() {
        Verdict::Accepted => Outcome::Delivered { host: host.to_owned(), reply: reply.clone() },
        _ => refused(host, "the message", reply),
    }
}

/// `550 5.1.1 no such user`, for a reason text.
pub(crate) fn describe(reply: &Reply) -> String {
    match reply.status {
        Some(s) => format!("{} {s} {}", reply.code, reply.text),
        None => format!("{} {}", reply.code, reply.text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(code: u16, esc: [u8; 3], message: &str) -> Response<String> {
        Response { code, esc, message: message.into() }
    }

    fn st(class: u8, subject: u16, detail: u16) -> Option<Status> {
        Some(Status { class, subject, detail })
    }

    #[test]
    fn replies() {
        let cases = [
            (
                resp(250, [2, 0, 0], "ok"),
                Reply { code: 250, status: st(2, 0, 0), text: "ok".into() },
            ),
            (
                resp(550, [0, 0, 0], "5.7.26 unauthenticated\nsee the docs"),
                Reply {
                    code: 550,
                    status: st(5, 7, 26),
                    text: "unauthenticated see the docs".into(),
                },
            ),
            (
                resp(451, [0, 0, 0], "4.3.0"),
                Reply { code: 451, status: st(4, 3, 0), text: "".into() },
            ),
            // A status of another class than the code is text, not a status.
            (
                resp(550, [0, 0, 0], "2.0.0 odd"),
                Reply { code: 550, status: None, text: "2.0.0 odd".into() },
            ),
            (
                resp(554, [0, 0, 0], "1.2.3.4 is listed"),
                Reply { code: 554, status: None, text: "1.2.3.4 is listed".into() },
            ),
            (
                resp(220, [0, 0, 0], "mx.example ESMTP\r\nhello"),
                Reply { code: 220, status: None, text: "mx.example ESMTP hello".into() },
            ),
        ];
        for (r, want) in cases {
            assert_eq!(from_response(&r), want, "{r:?}");
        }
    }

    #[test]
    fn verdicts_and_outcomes() {
        let reply = |code, status| Reply { code, status, text: "x".into() };
        let cases = [
            (reply(550, st(5, 1, 1)), "Failed", st(5, 1, 1)),
            (reply(550, None), "Failed", st(5, 0, 0)),
            (reply(552, st(4, 2, 2)), "Failed", st(5, 0, 0)),
            (reply(451, st(4, 7, 1)), "Deferred", None),
            (reply(354, None), "Deferred", None),
            (reply(250, st(2, 0, 0)), "Delivered", None),
        ];
        for (r, kind, status) in cases {
            let got = after_data("mx.example", &r);
            match (&got, kind) {
                (Outcome::Failed { status: s, host, .. }, "Failed") => {
                    assert_eq!(Some(*s), status);
                    assert_eq!(host.as_deref(), Some("mx.example"));
                }
                (Outcome::Deferred { host, reply, .. }, "Deferred") => {
                    assert_eq!(host.as_deref(), Some("mx.example"));
                    assert_eq!(reply.as_ref(), Some(&r));
                }
                (Outcome::Delivered { host, .. }, "Delivered") => assert_eq!(host, "mx.example"),
                _ => panic!("{r:?} gave {got:?}, wanted {kind}"),
            }
        }
    }
}
