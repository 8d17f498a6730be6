//! ENABLE (RFC 5161): what the client has switched on for the rest of the
//! connection. We know CONDSTORE and QRESYNC (RFC 7162; QRESYNC implies
//! CONDSTORE) and IMAP4rev2 (RFC 9051 section 6.3.1: no `\Recent`,
//! SEARCH answered as ESEARCH, a LIST response on SELECT; see
//! `spec/mail.md`, "IMAP4rev2"); anything else is left off, and not named
//! in ENABLED.

use imap_codec::imap_types::core::{Tag, Vec1};
use imap_codec::imap_types::extensions::enable::CapabilityEnable;
use imap_codec::imap_types::response::{Data, Response};

use crate::backend::MailBackend;
use crate::imap::session::{Done, Gone, Session, Sink, ok};

/// The extensions a client has enabled, explicitly (ENABLE) or by using
/// them (a CONDSTORE enabling command, RFC 7162 section 3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Enabled {
    /// MODSEQ in every FETCH that reports a change, HIGHESTMODSEQ.
    pub(crate) condstore: bool,
    /// VANISHED instead of EXPUNGE, SELECT (QRESYNC ...).
    pub(crate) qresync: bool,
    /// IMAP4rev2's answers (RFC 9051) instead of IMAP4rev1's.
    pub(crate) imap4rev2: bool,
}

/// What ENABLE with these names switches on: the names we know, each
/// once, in the order given.
pub(crate) fn recognised(
    names: &[CapabilityEnable<'_>],
) -> (Enabled, Vec<CapabilityEnable<'static>>) {
    let mut enabled = Enabled::default();
    let mut named = Vec::new();
    for name in names {
        let known = match name {
            CapabilityEnable::CondStore => {
                enabled.condstore = true;
                Some(CapabilityEnable::CondStore)
            }
            other if other.to_string().eq_ignore_ascii_case("QRESYNC") => {
                enabled.condstore = true;
                enabled.qresync = true;
                CapabilityEnable::try_from("QRESYNC").ok()
            }
            other if other.to_string().eq_ignore_ascii_case("IMAP4rev2") => {
                enabled.imap4rev2 = true;
                CapabilityEnable::try_from("IMAP4rev2").ok()
            }
            _ => None,
        };
        if let Some(known) = known
            && !named.contains(&known)
        {
            named.push(known);
        }
    }
    (enabled, named)
}

impl<B: MailBackend> Session<B> {
    pub(crate) async fn enable<O: Sink>(
        &mut self,
        tag: Tag<'static>,
        names: &Vec1<CapabilityEnable<'static>>,
        out: &mut O,
    ) -> Result<Done, Gone> {
        let (asked, named) = recognised(names.as_ref());
        self.enabled.condstore |= asked.condstore;
        self.enabled.qresync |= asked.qresync;
        if asked.imap4rev2 && !self.enabled.imap4rev2 {
            self.enabled.imap4rev2 = true;
            // Nothing is `\Recent` in an IMAP4rev2 session (RFC 9051
            // appendix E); a view selected before ENABLE stops showing it.
            if let Some(selected) = self.selected.as_mut() {
                selected.recent.clear();
            }
        }
        out.send(Response::Data(Data::Enabled { capabilities: named })).await?;
        Ok(Done::now(ok(&tag, None, "ENABLE completed")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::session::tests::{logged_in, run, session};

    #[test]
    fn only_what_we_know_is_enabled() {
        let names = |list: &[&str]| -> Vec<CapabilityEnable<'static>> {
            list.iter().map(|n| CapabilityEnable::try_from(*n).unwrap().into_static()).collect()
        };
        use imap_codec::imap_types::IntoStatic;
        // (asked, enabled, named back)
        let on = |condstore, qresync, imap4rev2| Enabled { condstore, qresync, imap4rev2 };
        let cases: [(&[&str], Enabled, &[&str]); 5] = [
            (&["condstore"], on(true, false, false), &["CONDSTORE"]),
            (&["QRESYNC"], on(true, true, false), &["QRESYNC"]),
            (&["UTF8=ACCEPT", "X-FOO"], Enabled::default(), &[]),
            (&["imap4REV2", "X-FOO", "IMAP4rev2"], on(false, false, true), &["IMAP4rev2"]),
            (
                &["qresync", "CONDSTORE", "QResync"],
                on(true, true, false),
                &["QRESYNC", "CONDSTORE"],
            ),
        ];
        for (asked, enabled, named) in cases {
            let (got, back) = recognised(&names(asked));
            assert_eq!(got, enabled, "{asked:?}");
            let back: Vec<String> = back.iter().map(ToString::to_string).collect();
            assert_eq!(back, named, "{asked:?}");
        }
    }

    #[tokio::test]
    async fn enable_answers_enabled_and_needs_a_login() {
        let (mut s, _) = session();
        assert!(run(&mut s, "a ENABLE CONDSTORE").await.starts_with("a BAD"));
        let (mut s, _) = logged_in().await;
        let reply = run(&mut s, "b ENABLE QRESYNC X-NONE").await;
        assert_eq!(reply, "* ENABLED QRESYNC\r\nb OK ENABLE completed\r\n");
        assert!(s.enabled.qresync && s.enabled.condstore);
        assert!(!s.enabled.imap4rev2);
        let reply = run(&mut s, "c ENABLE IMAP4rev2").await;
        assert_eq!(reply, "* ENABLED IMAP4rev2\r\nc OK ENABLE completed\r\n");
        assert!(s.enabled.imap4rev2);
    }
}
