//! APPEND with APPENDUID (RFC 4315), MULTIAPPEND (RFC 3502) and CATENATE
//! (RFC 4469): one or more messages from the client into a folder, all
//! or none. Every message is made whole first (its literal, or its
//! CATENATE parts put together, [`super::catenate`]) and checked against
//! the size limit; only then are they stored, in one backend call that
//! stores all or none ([`crate::backend::Account::append_all`]), so a bad
//! URL or an oversized message appends nothing and no other session ever
//! sees part of the command.

use bytes::Bytes;
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::datetime::DateTime;
use imap_codec::imap_types::extensions::binary::LiteralOrLiteral8;
use imap_codec::imap_types::flag::Flag;
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Code, CodeOther};

use epost_types::mailbox::MailError;

use crate::backend::{Account, MailBackend, NewMessage};
use crate::imap::catenate::Refusal;
use crate::imap::multiappend::{self, Append, Data, Part};
use crate::imap::session::{Done, Gone, Session, Sink, flag_string, mail_error, no, nonzero, ok};

impl<B: MailBackend> Session<B> {
    /// What APPEND may hold at most, from the limits.
    pub(crate) fn append_bounds(&self) -> multiappend::Bounds {
        let limits = &self.shared.limits;
        multiappend::Bounds {
            messages: limits.max_append_messages,
            parts: limits.max_catenate_parts,
        }
    }

    pub(crate) async fn append<O: Sink>(
        &mut self,
        command: Append<'static>,
        out: &mut O,
    ) -> Result<Done, Gone> {
        let Append { tag, mailbox, messages } = command;
        let (Some(account), Some(name)) = (self.account(), self.folder_name(&mailbox)) else {
            return Ok(trycreate(&tag));
        };
        let urls = messages.iter().any(|m| {
            matches!(&m.data, Data::Catenate(parts) if parts.iter().any(|p| matches!(p, Part::Url(_))))
        });
        // A missing mailbox is TRYCREATE whatever the URLs say (RFC 4469
        // section 5), and no URL is read for it.
        if urls {
            match account.folders().await {
                Ok(folders) if folders.iter().any(|f| f.name == name) => {}
                Ok(_) => return Ok(trycreate(&tag)),
                Err(error) => return Ok(Done::now(mail_error(&tag, &error))),
            }
        }
        let limit = self.shared.limits.max_message;
        let mut stored = Vec::with_capacity(messages.len());
        let mut found = crate::imap::catenate::Found::default();
        for message in messages {
            let raw = match message.data {
                Data::Literal(bytes) => bytes.into_owned(),
                Data::Catenate(parts) => {
                    match self.catenate(&account, parts, &mut found, limit).await {
                        Ok(raw) => raw,
                        Err(refusal) => return Ok(Done::now(refusal.status(&tag))),
                    }
                }
            };
            if raw.len() > limit {
                return Ok(Done::now(Refusal::TooBig.status(&tag)));
            }
            stored.push(NewMessage {
                raw: Bytes::from(raw),
                flags: message.flags.iter().map(flag_string).collect(),
                internal_date: message
                    .date
                    .and_then(|d| u64::try_from(d.as_ref().timestamp_millis()).ok()),
            });
        }
        match account.append_all(&name, stored).await {
            Ok((validity, uids)) => {
                if let Some(&first) = uids.first() {
                    self.shared.recent.added(&self.user_name(), &name, validity, first);
                }
                if self.selected.as_ref().is_some_and(|s| s.name == name) {
                    self.refresh(false, out).await?;
                }
                Ok(Done::now(ok(&tag, appenduid(validity, &uids), "APPEND completed")))
            }
            Err(MailError::NoFolder(_)) => Ok(trycreate(&tag)),
            Err(error) => Ok(Done::now(mail_error(&tag, &error))),
        }
    }
}

fn trycreate(tag: &Tag<'static>) -> Done {
    Done::now(no(tag, Some(Code::TryCreate), "no such mailbox"))
}

/// `[APPENDUID uidvalidity uid-set]`: for several messages a set of
/// ranges (`4:6`), which imap-types' code cannot carry.
fn appenduid(validity: u32, uids: &[u32]) -> Option<Code<'static>> {
    match uids {
        [] => None,
        [uid] => Some(Code::AppendUid { uid_validity: nonzero(validity), uid: nonzero(*uid) }),
        _ => {
            let text = format!("APPENDUID {} {}", nonzero(validity), uid_ranges(uids));
            Some(Code::Other(CodeOther::unvalidated(text.into_bytes())))
        }
    }
}

/// UIDs (ascending) as an IMAP set of runs: `4:6,9`.
fn uid_ranges(uids: &[u32]) -> String {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &uid in uids {
        match runs.last_mut() {
            Some(run) if run.1.checked_add(1) == Some(uid) => run.1 = uid,
            _ => runs.push((uid, uid)),
        }
    }
    let runs: Vec<String> = runs
        .into_iter()
        .map(|(a, b)| if a == b { a.to_string() } else { format!("{a}:{b}") })
        .collect();
    runs.join(",")
}

/// An APPEND of one literal as imap-codec reads it, as this file runs it.
pub(crate) fn single(
    tag: Tag<'static>,
    mailbox: Mailbox<'static>,
    flags: Vec<Flag<'static>>,
    date: Option<DateTime>,
    message: LiteralOrLiteral8<'static>,
) -> Append<'static> {
    let raw = match message {
        LiteralOrLiteral8::Literal(literal) => literal.into_inner(),
        LiteralOrLiteral8::Literal8(literal) => literal.data,
    };
    Append {
        tag,
        mailbox,
        messages: vec![multiappend::NewMessage { flags, date, data: Data::Literal(raw) }],
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::imap::session::tests::{logged_in, run};

    #[test]
    fn uid_sets_are_runs() {
        assert_eq!(uid_ranges(&[4, 5, 6]), "4:6");
        assert_eq!(uid_ranges(&[1, 3, 4, 9]), "1,3:4,9");
        assert_eq!(uid_ranges(&[7]), "7");
    }

    #[tokio::test]
    async fn a_plain_append_still_says_its_uid() {
        let (mut s, _) = logged_in().await;
        let reply = run(&mut s, "a APPEND INBOX (\\Seen) {12}\r\nSubject: x\r\n").await;
        assert!(reply.starts_with("a OK [APPENDUID 1 1]"), "{reply}");
        let reply = run(&mut s, "b APPEND Nowhere {12}\r\nSubject: x\r\n").await;
        assert!(reply.starts_with("b NO [TRYCREATE]"), "{reply}");
    }

    #[tokio::test]
    async fn multiappend_stores_all_and_says_every_uid() {
        let (mut s, _) = logged_in().await;
        run(&mut s, "a APPEND INBOX {12}\r\nSubject: 0\r\n").await;
        let reply = run(
            &mut s,
            "b APPEND INBOX (\\Seen) {12}\r\nSubject: 1\r\n {12}\r\nSubject: 2\r\n \
             (\\Flagged) \"24-Mar-2007 23:00:00 +0200\" {12}\r\nSubject: 3\r\n",
        )
        .await;
        assert!(reply.starts_with("b OK [APPENDUID 1 2:4] APPEND completed"), "{reply}");
        run(&mut s, "c SELECT INBOX").await;
        let fetch = run(&mut s, "d FETCH 2:4 (FLAGS INTERNALDATE BODY.PEEK[HEADER])").await;
        assert!(fetch.contains("* 2 FETCH (FLAGS (\\Seen \\Recent)"), "{fetch}");
        assert!(fetch.contains("* 3 FETCH (FLAGS (\\Recent)"), "{fetch}");
        assert!(
            fetch.contains(
                "* 4 FETCH (FLAGS (\\Flagged \\Recent) INTERNALDATE \"24-Mar-2007 21:00:00 +0000\""
            ),
            "{fetch}"
        );
        assert!(fetch.contains("Subject: 3"), "{fetch}");
    }

    #[tokio::test]
    async fn multiappend_into_the_selected_folder_is_told_at_once() {
        let (mut s, _) = logged_in().await;
        run(&mut s, "a SELECT INBOX").await;
        let reply =
            run(&mut s, "b APPEND INBOX {12}\r\nSubject: 1\r\n {12}\r\nSubject: 2\r\n").await;
        assert!(reply.starts_with("* 2 EXISTS\r\n"), "{reply}");
        assert!(reply.contains("b OK [APPENDUID"), "{reply}");
    }

    /// Alice logged in on a gateway that takes messages of 100 bytes.
    pub(crate) async fn small() -> Session<crate::memory::MemoryBackend> {
        let limits = crate::context::Limits { max_message: 100, ..Default::default() };
        let gateway = crate::testing::Setup { limits, ..Default::default() }.start();
        let mut s = Session::new(gateway.shared, "127.0.0.1".parse().unwrap(), false);
        assert!(run(&mut s, "a LOGIN alice@example.test alice-pw").await.starts_with("a OK"));
        s
    }

    #[tokio::test]
    async fn a_message_too_large_appends_none_of_them() {
        let mut s = small().await;
        // The second message is put together past the limit.
        let text = "x".repeat(51);
        let big = format!(
            "a APPEND INBOX {{12}}\r\nSubject: 1\r\n CATENATE (TEXT {{51}}\r\n{text} TEXT {{51}}\r\n{text})"
        );
        let reply = run(&mut s, &big).await;
        assert!(reply.starts_with("a NO [TOOBIG]"), "{reply}");
        let status = run(&mut s, "b STATUS INBOX (MESSAGES UIDNEXT)").await;
        assert!(status.contains("(MESSAGES 0 UIDNEXT 1)"), "{status}");
    }

    #[tokio::test]
    async fn multiappend_and_catenate_are_advertised() {
        let (mut s, _) = logged_in().await;
        let caps = run(&mut s, "a CAPABILITY").await;
        assert!(caps.contains(" MULTIAPPEND") && caps.contains(" CATENATE"), "{caps}");
    }
}
