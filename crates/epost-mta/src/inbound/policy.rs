//! What to do with a message from outside, given its DMARC evaluation
//! and our configured policy: a pure function with table tests. SPF and
//! DKIM alone never refuse; DMARC, which ties them to the `From` the
//! reader sees, decides.

use serde::{Deserialize, Serialize};

use crate::outbound::{Reply, Status};

/// How far this node honours a sender domain's DMARC policy (`[inbound]
/// dmarc` in the config).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DmarcMode {
    /// Fully: `p=reject` refuses, `p=quarantine` delivers marked.
    #[default]
    Reject,
    /// Never refuse: `p=reject` and `p=quarantine` deliver marked.
    Quarantine,
    /// Only record the results in the header.
    None,
}

/// The configured inbound policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InboundPolicy {
    pub dmarc: DmarcMode,
    /// Check clients on loopback too. Off by default: a loopback client
    /// is this machine (a local script, a filter in front of us), and
    /// tests and `epost dev` send from there without DNS of their own.
    pub check_loopback: bool,
}

/// The DMARC result of one message (RFC 7489 section 11.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmarcOutcome {
    Pass,
    Fail,
    /// A DNS answer was missing for now: the result may differ later.
    TempError,
    PermError,
    /// No DMARC record applies (or no usable `From`).
    None,
}

/// The sender domain's published policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderPolicy {
    None,
    Quarantine,
    Reject,
    /// Its record could not be read (a temporary DNS error).
    Unknown,
}

/// A message's DMARC evaluation, as the decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub outcome: DmarcOutcome,
    pub policy: SenderPolicy,
    /// The `From` domain evaluated (empty when there was none).
    pub domain: String,
}

/// What becomes of the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver it, with the `Authentication-Results` header; `quarantine`
    /// when the sender asked for it (the header's `policy.dmarc` says so
    /// to filters and clients).
    Deliver { quarantine: bool },
    /// Refuse it for good (`550 5.7.1`).
    Refuse(Reply),
    /// Refuse it for now (`451 4.7.1`): the sender retries.
    Defer(Reply),
}

/// The decision. A DMARC failure under `p=reject` is refused when we
/// honour rejects; a temporary error is deferred when a reject might be
/// at stake (the policy says reject, or could not be read).
pub fn decide(evaluation: &Evaluation, policy: InboundPolicy) -> Verdict {
    use DmarcMode as Mode;
    use SenderPolicy as Sender;
    let domain = &evaluation.domain;
    match (evaluation.outcome, evaluation.policy, policy.dmarc) {
        (DmarcOutcome::Fail, Sender::Reject, Mode::Reject) => Verdict::Refuse(Reply {
            code: 550,
            status: Some(Status { class: 5, subject: 7, detail: 1 }),
            text: format!(
                "Rejected by the DMARC policy of {domain}: the message is not authenticated as from {domain} (SPF and DKIM fail or do not align)"
            ),
        }),
        (
            DmarcOutcome::Fail,
            Sender::Reject | Sender::Quarantine,
            Mode::Reject | Mode::Quarantine,
        ) => Verdict::Deliver { quarantine: true },
        (DmarcOutcome::TempError, Sender::Reject | Sender::Unknown, Mode::Reject) => {
            Verdict::Defer(Reply {
                code: 451,
                status: Some(Status { class: 4, subject: 7, detail: 1 }),
                text: format!(
                    "Cannot check the DMARC policy of {} now (DNS error); try again later",
                    if domain.is_empty() { "the sender" } else { domain }
                ),
            })
        }
        _ => Verdict::Deliver { quarantine: false },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decision_table() {
        use DmarcMode as M;
        use DmarcOutcome as O;
        use SenderPolicy as S;
        // (outcome, sender policy, our mode) -> refuse, defer, quarantine
        #[rustfmt::skip]
        let table = [
            (O::Fail, S::Reject, M::Reject, "550"),
            (O::Fail, S::Reject, M::Quarantine, "quarantine"),
            (O::Fail, S::Reject, M::None, "deliver"),
            (O::Fail, S::Quarantine, M::Reject, "quarantine"),
            (O::Fail, S::Quarantine, M::Quarantine, "quarantine"),
            (O::Fail, S::Quarantine, M::None, "deliver"),
            (O::Fail, S::None, M::Reject, "deliver"),
            (O::Fail, S::Unknown, M::Reject, "deliver"),
            (O::Pass, S::Reject, M::Reject, "deliver"),
            (O::None, S::Reject, M::Reject, "deliver"),
            (O::PermError, S::Reject, M::Reject, "deliver"),
            (O::TempError, S::Reject, M::Reject, "451"),
            (O::TempError, S::Unknown, M::Reject, "451"),
            (O::TempError, S::Quarantine, M::Reject, "deliver"),
            (O::TempError, S::None, M::Reject, "deliver"),
            (O::TempError, S::Reject, M::Quarantine, "deliver"),
            (O::TempError, S::Unknown, M::None, "deliver"),
        ];
        for (outcome, sender, mode, want) in table {
            let evaluation = Evaluation { outcome, policy: sender, domain: "example.org".into() };
            let policy = InboundPolicy { dmarc: mode, check_loopback: false };
            let got = match decide(&evaluation, policy) {
                Verdict::Refuse(reply) => {
                    assert_eq!(reply.status.unwrap().to_string(), "5.7.1");
                    assert!(reply.text.contains("example.org"));
                    reply.code.to_string()
                }
                Verdict::Defer(reply) => {
                    assert_eq!(reply.status.unwrap().to_string(), "4.7.1");
                    reply.code.to_string()
                }
                Verdict::Deliver { quarantine: true } => "quarantine".into(),
                Verdict::Deliver { quarantine: false } => "deliver".into(),
            };
            assert_eq!(got, want, "{outcome:?} {sender:?} {mode:?}");
        }
    }

    #[test]
    fn the_mode_reads_from_config_words() {
        #[derive(Deserialize)]
        struct C {
            dmarc: DmarcMode,
        }
        for (text, mode) in [
            ("reject", DmarcMode::Reject),
            ("quarantine", DmarcMode::Quarantine),
            ("none", DmarcMode::None),
        ] {
            let c: C = serde_json::from_str(&format!("{{\"dmarc\":\"{text}\"}}")).unwrap();
            assert_eq!(c.dmarc, mode);
        }
        assert!(serde_json::from_str::<C>("{\"dmarc\":\"drop\"}").is_err());
    }
}
