//! Which delivery status notifications a message's state asks for: pure,
//! from each recipient's state and `NOTIFY`, with table tests.
//!
//! A recipient that failed gets a "failed" DSN if its NOTIFY has FAILURE
//! (the default); a pending one past the delay warning gets "delayed"
//! once if it has DELAY (the default); one delivered gets "relayed" if it
//! asked for SUCCESS (we hand the message on and cannot know what the
//! next hop does with NOTIFY). Mail from `<>` is a bounce itself: it is
//! never reported on.

use crate::dsn::Action;

use super::record::{RcptState, Record};

/// What to report now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Due {
    /// Recipients (by index) to put into a DSN, with their action.
    pub report: Vec<(usize, Action)>,
    /// Final recipients that need no DSN: marked reported at once.
    pub quiet: Vec<usize>,
}

/// The notices due for `record`; `warn_delay`: the schedule says the
/// sender hears of the delay now.
pub fn due(record: &Record, warn_delay: bool) -> Due {
    let mut due = Due::default();
    let bounceable = record.reverse_path.is_some();
    for (i, rcpt) in record.recipients.iter().enumerate() {
        let notify = rcpt.recipient.notify;
        let action = match &rcpt.state {
            _ if rcpt.reported => continue,
            RcptState::Pending => {
                if warn_delay && bounceable && notify.delay {
                    due.report.push((i, Action::Delayed));
                }
                continue;
            }
            RcptState::Delivered { .. } => {
                (bounceable && notify.success).then_some(Action::Relayed)
            }
            RcptState::Failed { .. } => (bounceable && notify.failure).then_some(Action::Failed),
        };
        match action {
            Some(action) => due.report.push((i, action)),
            None => due.quiet.push(i),
        }
    }
    due
}

#[cfg(test)]
mod tests {
    use epost_types::time::Timestamp;

    use super::*;
    use crate::outbound::{Notify, Recipient, Reply, Status};
    use crate::queue::record::{QueueId, RcptRecord, VERSION};

    fn record(from: Option<&str>, rcpts: Vec<(RcptState, Notify, bool)>) -> Record {
        Record {
            version: VERSION,
            id: QueueId("01".into()),
            reverse_path: from.map(str::to_owned),
            recipients: rcpts
                .into_iter()
                .enumerate()
                .map(|(i, (state, notify, reported))| RcptRecord {
                    recipient: Recipient { address: format!("r{i}@x.test"), notify, orcpt: None },
                    state,
                    attempts: 1,
                    last_error: None,
                    reported,
                })
                .collect(),
            envid: None,
            ret: None,
            smtputf8: false,
            eight_bit: false,
            size: 0,
            sha256: String::new(),
            queued_at: Timestamp::EPOCH,
            next_attempt: Timestamp::EPOCH,
            attempts: 1,
            delay_warned: false,
        }
    }

    fn delivered() -> RcptState {
        RcptState::Delivered {
            host: "mx".into(),
            reply: Reply { code: 250, status: None, text: "ok".into() },
        }
    }

    fn failed() -> RcptState {
        RcptState::Failed {
            host: None,
            reply: None,
            status: Status { class: 5, subject: 1, detail: 1 },
            reason: "no".into(),
        }
    }

    const DEFAULT: Notify = Notify { success: false, failure: true, delay: true };
    const NEVER: Notify = Notify { success: false, failure: false, delay: false };
    const ALL: Notify = Notify { success: true, failure: true, delay: true };

    #[test]
    fn which_recipients_are_reported() {
        use RcptState::Pending;
        let from = Some("a@here.test");
        // (from, recipients, warn_delay) -> (report, quiet)
        type Row<'a> = (Option<&'a str>, Vec<(RcptState, Notify, bool)>, bool, Due);
        let table: Vec<Row<'_>> = vec![
            (
                from,
                vec![(failed(), DEFAULT, false)],
                false,
                Due { report: vec![(0, Action::Failed)], quiet: vec![] },
            ),
            (from, vec![(failed(), NEVER, false)], false, Due { report: vec![], quiet: vec![0] }),
            (from, vec![(failed(), DEFAULT, true)], false, Due::default()),
            (
                from,
                vec![(delivered(), DEFAULT, false)],
                false,
                Due { report: vec![], quiet: vec![0] },
            ),
            (
                from,
                vec![(delivered(), ALL, false)],
                false,
                Due { report: vec![(0, Action::Relayed)], quiet: vec![] },
            ),
            (from, vec![(Pending, DEFAULT, false)], false, Due::default()),
            (
                from,
                vec![(Pending, DEFAULT, false)],
                true,
                Due { report: vec![(0, Action::Delayed)], quiet: vec![] },
            ),
            (from, vec![(Pending, NEVER, false)], true, Due::default()),
            (
                from,
                vec![
                    (Pending, DEFAULT, false),
                    (failed(), DEFAULT, false),
                    (delivered(), DEFAULT, false),
                ],
                true,
                Due { report: vec![(0, Action::Delayed), (1, Action::Failed)], quiet: vec![2] },
            ),
            // A bounce is never bounced.
            (
                None,
                vec![(failed(), ALL, false), (Pending, ALL, false)],
                true,
                Due { report: vec![], quiet: vec![0] },
            ),
        ];
        for (n, (from, rcpts, warn, expected)) in table.into_iter().enumerate() {
            assert_eq!(due(&record(from, rcpts), warn), expected, "row {n}");
        }
    }
}
