//! CATENATE (RFC 4469): a new message put together from TEXT literals and
//! the bytes IMAP URLs ([`super::imapurl`]) name in this user's own
//! mailboxes. A URL's bytes are read and cut exactly as FETCH's
//! `BODY.PEEK[section]<partial>` ([`super::fetch::body_section`]); one
//! that names nothing here (a bad form, another server or user, a
//! mailbox or UIDVALIDITY or UID that is not there, a part there is not)
//! refuses the whole APPEND with `NO [BADURL url]`, and a message that
//! grows past the size limit with `NO [TOOBIG]`, before anything is
//! stored.

use std::collections::HashMap;

use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::response::{Code, CodeOther, Status};

use epost_types::mailbox::{MailError, MailErrorKind};

use crate::backend::{Account, MailBackend, MessageMeta};
use crate::imap::fetch::body_section;
use crate::imap::imapurl::{self, MessageUrl};
use crate::imap::multiappend::Part;
use crate::imap::session::{Session, mail_error, no};

/// Why a CATENATE made no message.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The URL (as a response code may carry it) names nothing here.
    BadUrl(String),
    /// The message would be larger than allowed.
    TooBig,
    /// The backend failed.
    Mail(MailError),
}

impl Refusal {
    /// The tagged NO this refusal is answered with.
    pub(crate) fn status(&self, tag: &Tag<'static>) -> Status<'static> {
        match self {
            Refusal::BadUrl(url) => {
                let code =
                    Code::Other(CodeOther::unvalidated(format!("BADURL {url}").into_bytes()));
                no(tag, Some(code), "the URL names no message part here")
            }
            Refusal::TooBig => no(tag, Some(Code::TooBig), "message too large"),
            Refusal::Mail(error) => mail_error(tag, error),
        }
    }
}

/// The folders other than the selected one that URLs of this APPEND
/// named, as they were when first named (each is looked at once).
#[derive(Default)]
pub(crate) struct Found {
    folders: HashMap<String, (u32, Vec<MessageMeta>)>,
}

impl<B: MailBackend> Session<B> {
    /// The bytes `parts` make, at most `limit` of them.
    pub(crate) async fn catenate(
        &self,
        account: &B::Account,
        parts: Vec<Part<'static>>,
        found: &mut Found,
        limit: usize,
    ) -> Result<Vec<u8>, Refusal> {
        let mut message = Vec::new();
        for part in parts {
            let bytes = match part {
                Part::Text(text) => text.into_owned(),
                Part::Url(url) => {
                    let refused = || Refusal::BadUrl(imapurl::for_response(&url));
                    let parsed = imapurl::parse(&url).map_err(|_| refused())?;
                    match self.url_bytes(account, &parsed, found).await {
                        Ok(Some(bytes)) => bytes,
                        Ok(None) => return Err(refused()),
                        Err(error) => match error.kind() {
                            MailErrorKind::NoFolder | MailErrorKind::NoMessage => {
                                return Err(refused());
                            }
                            _ => return Err(Refusal::Mail(error)),
                        },
                    }
                }
            };
            if message.len().saturating_add(bytes.len()) > limit {
                return Err(Refusal::TooBig);
            }
            message.extend_from_slice(&bytes);
        }
        Ok(message)
    }

    /// What one URL names; `None` if it names nothing here.
    async fn url_bytes(
        &self,
        account: &B::Account,
        url: &MessageUrl,
        found: &mut Found,
    ) -> Result<Option<Vec<u8>>, MailError> {
        if let Some(server) = &url.server {
            let user_ok =
                server.user.as_ref().is_none_or(|u| u.eq_ignore_ascii_case(&self.user_name()));
            if !user_ok || !server.host.eq_ignore_ascii_case(&self.shared.hostname) {
                return Ok(None);
            }
        }
        let selected = self.selected.as_ref();
        let Some(folder) = url.folder.as_ref().or(selected.map(|s| &s.name)) else {
            return Ok(None);
        };
        // The selected folder as this session shows it; any other as it
        // is now, looked at once per APPEND.
        let (validity, meta) = match selected.filter(|s| &s.name == folder) {
            Some(view) => (view.uid_validity, find(&view.messages, url.uid)),
            None => {
                if !found.folders.contains_key(folder) {
                    let snapshot = account.snapshot(folder).await?;
                    found
                        .folders
                        .insert(folder.clone(), (snapshot.uid_validity, snapshot.messages));
                }
                let (validity, messages) = &found.folders[folder];
                (*validity, find(messages, url.uid))
            }
        };
        let Some(meta) = meta.filter(|_| url.uid_validity.is_none_or(|v| v == validity)) else {
            return Ok(None);
        };
        body_section(account, folder, &meta, url.section.clone(), url.partial).await
    }
}

/// The message with `uid` among `messages` (ascending UIDs).
fn find(messages: &[MessageMeta], uid: u32) -> Option<MessageMeta> {
    messages.binary_search_by_key(&uid, |m| m.uid).ok().map(|at| messages[at].clone())
}

#[cfg(test)]
mod tests {
    use crate::imap::append::tests::small;
    use crate::imap::session::tests::{logged_in, run};

    const FIRST: &str = "From: foo@example.com\r\n\r\nHello world body\r\n";
    const SECOND: &str = "From: foo2@example.com\r\n\r\nLookslike: header\r\n\r\nAnother body\r\n";

    fn text(bytes: &str) -> String {
        format!("TEXT {{{}}}\r\n{bytes}", bytes.len())
    }

    /// Alice with FIRST and SECOND in `Src` (UIDVALIDITY 7, UIDs 1 and
    /// 2) and an empty `Dst`.
    async fn prepared() -> crate::imap::session::Session<crate::memory::MemoryBackend> {
        let (mut s, _) = logged_in().await;
        assert!(run(&mut s, "a CREATE Src").await.starts_with("a OK"));
        assert!(run(&mut s, "b CREATE Dst").await.starts_with("b OK"));
        let reply = run(&mut s, &format!("c APPEND Src CATENATE ({})", text(FIRST))).await;
        assert!(reply.starts_with("c OK [APPENDUID 7 1]"), "{reply}");
        let reply = run(&mut s, &format!("d APPEND Src {{{}}}\r\n{SECOND}", SECOND.len())).await;
        assert!(reply.starts_with("d OK [APPENDUID 7 2]"), "{reply}");
        s
    }

    async fn body(
        s: &mut crate::imap::session::Session<crate::memory::MemoryBackend>,
        folder: &str,
        seq: u32,
    ) -> String {
        run(s, &format!("x EXAMINE {folder}")).await;
        let reply = run(s, &format!("y FETCH {seq} BODY.PEEK[]")).await;
        let start = reply.find("}\r\n").map_or(0, |at| at + 3);
        let end = reply.rfind(")\r\ny OK").unwrap_or(reply.len());
        reply[start..end].to_owned()
    }

    #[tokio::test]
    async fn text_and_url_parts_make_one_message() {
        let mut s = prepared().await;
        let table = [
            (
                format!("URL \"/Src/;uid=1/;section=header\" {}", text("body1\r\n")),
                "From: foo@example.com\r\n\r\nbody1\r\n".to_owned(),
            ),
            (
                format!("URL \"/Src;UIDVALIDITY=7/;UID=1/;SECTION=HEADER\" {}", text("body2\r\n")),
                "From: foo@example.com\r\n\r\nbody2\r\n".to_owned(),
            ),
            (
                format!("URL \"/Src/;uid=2/;section=text\" {}", text("body3\r\n")),
                "Lookslike: header\r\n\r\nAnother body\r\nbody3\r\n".to_owned(),
            ),
            (
                format!("URL \"/Src/;uid=2/;section=1\" {}", text("body4\r\n")),
                "Lookslike: header\r\n\r\nAnother body\r\nbody4\r\n".to_owned(),
            ),
            (
                format!(
                    "{} URL \"/Src/;uid=1/;section=1\" {}",
                    text("From: new@example.com\r\n\r\n"),
                    text("\r\nsuffix\r\n")
                ),
                "From: new@example.com\r\n\r\nHello world body\r\n\r\nsuffix\r\n".to_owned(),
            ),
            (
                format!(
                    "URL \"/Src/;uid=2/;partial=100000.1\" {}",
                    text("Hdr: foo\r\n\r\nbody7\r\n")
                ),
                "Hdr: foo\r\n\r\nbody7\r\n".to_owned(),
            ),
            (
                format!("URL \"/Src/;uid=1/;partial=6.3\" {}", text("\r\n\r\nx\r\n")),
                "foo\r\n\r\nx\r\n".to_owned(),
            ),
            (
                "url \"imap://alice%40example.test@GW.example.test/Src/;UID=2\"".to_owned(),
                SECOND.to_owned(),
            ),
        ];
        for (seq, (parts, want)) in table.iter().enumerate() {
            let reply = run(&mut s, &format!("e APPEND Dst (\\Seen) CATENATE ({parts})")).await;
            assert!(reply.contains("e OK [APPENDUID 8 "), "{parts}: {reply}");
            assert_eq!(&body(&mut s, "Dst", seq as u32 + 1).await, want, "{parts}");
        }
    }

    #[tokio::test]
    async fn a_relative_url_names_a_message_of_the_selected_mailbox() {
        let mut s = prepared().await;
        run(&mut s, "e SELECT Src").await;
        let reply = run(&mut s, "f APPEND Dst CATENATE (URL \";UID=2/;SECTION=HEADER\")").await;
        assert!(reply.starts_with("f OK [APPENDUID"), "{reply}");
        assert_eq!(body(&mut s, "Dst", 1).await, "From: foo2@example.com\r\n\r\n");
        // Appending into the selected mailbox from itself.
        run(&mut s, "g SELECT Src").await;
        let reply = run(&mut s, "h APPEND Src CATENATE (URL \";UID=1\")").await;
        assert!(reply.starts_with("* 3 EXISTS\r\n"), "{reply}");
        assert_eq!(body(&mut s, "Src", 3).await, FIRST);
    }

    #[tokio::test]
    async fn a_bad_url_appends_nothing() {
        let mut s = prepared().await;
        let bad = [
            "/Src;UIDVALIDITY=12345/;UID=1/;SECTION=HEADER",
            "/Src/;UID=9",
            "/Nowhere/;UID=1",
            "/Src/;UID=1/;SECTION=4",
            "/Src/;UID=1/;SECTION=1.2",
            ";UID=1",
            "imap://bob%40example.test@gw.example.test/Src/;UID=1",
            "imap://elsewhere.test/Src/;UID=1",
            "/Src/;UID=1;URLAUTH=anonymous:internal:0",
            "not a url]",
        ];
        for url in bad {
            let command = format!(
                "e APPEND Dst CATENATE ({} URL {{{}}}\r\n{url} {})",
                text("hdr: 1\r\n\r\n"),
                url.len(),
                text("hdr: 2\r\n"),
            );
            let reply = run(&mut s, &command).await;
            let shown = crate::imap::imapurl::for_response(url.as_bytes());
            assert!(reply.starts_with(&format!("e NO [BADURL {shown}]")), "{url}: {reply}");
        }
        // Also when a good message comes first in a MULTIAPPEND.
        let reply = run(
            &mut s,
            "f APPEND Dst CATENATE (URL \"/Src/;UID=1\") \
             CATENATE (URL \"/Src;UIDVALIDITY=1/;UID=1\") {3}\r\nabc",
        )
        .await;
        assert!(reply.starts_with("f NO [BADURL /Src;UIDVALIDITY=1/;UID=1]"), "{reply}");
        let status = run(&mut s, "g STATUS Dst (MESSAGES UIDNEXT)").await;
        assert!(status.contains("(MESSAGES 0 UIDNEXT 1)"), "{status}");
    }

    #[tokio::test]
    async fn a_missing_mailbox_is_trycreate_whatever_the_urls() {
        let mut s = prepared().await;
        for parts in [
            "URL \"/Src/;uid=1/;section=1\"".to_owned(),
            format!("{} URL \"/Src;uidvalidity=12345/;uid=1\"", text("hello\r\n")),
        ] {
            let reply = run(&mut s, &format!("e APPEND Nowhere CATENATE ({parts})")).await;
            assert!(reply.starts_with("e NO [TRYCREATE]"), "{parts}: {reply}");
        }
    }

    #[tokio::test]
    async fn catenate_and_multiappend_together() {
        let mut s = prepared().await;
        run(&mut s, "e SELECT Dst").await;
        let reply = run(
            &mut s,
            &format!(
                "f APPEND Dst CATENATE (URL \"/Src/;uid=1/;section=header\" {}) \
                 CATENATE (URL \"/Src/;uid=1\") (\\Answered) {{14}}\r\nNew: Message\r\n \
                 catenate (url \"/Src/;uid=2/;section=header\" {})",
                text("body1\r\n"),
                text("body3\r\n"),
            ),
        )
        .await;
        assert!(reply.starts_with("* 4 EXISTS\r\n"), "{reply}");
        assert!(reply.contains("f OK [APPENDUID 8 1:4] APPEND completed"), "{reply}");
        let wants = [
            "From: foo@example.com\r\n\r\nbody1\r\n".to_owned(),
            FIRST.to_owned(),
            "New: Message\r\n".to_owned(),
            "From: foo2@example.com\r\n\r\nbody3\r\n".to_owned(),
        ];
        for (seq, want) in wants.iter().enumerate() {
            assert_eq!(&body(&mut s, "Dst", seq as u32 + 1).await, want);
        }
        let flags = run(&mut s, "g FETCH 3 FLAGS").await;
        assert!(flags.contains("(\\Answered"), "{flags}");
    }

    #[tokio::test]
    async fn a_url_past_the_size_limit_is_toobig() {
        let mut s = small().await;
        let raw = "x".repeat(60);
        let reply = run(&mut s, &format!("a APPEND INBOX {{60}}\r\n{raw}")).await;
        assert!(reply.starts_with("a OK"), "{reply}");
        let reply =
            run(&mut s, "b APPEND INBOX CATENATE (URL \"/INBOX/;UID=1\" URL \"/INBOX/;UID=1\")")
                .await;
        assert!(reply.starts_with("b NO [TOOBIG]"), "{reply}");
        let status = run(&mut s, "c STATUS INBOX (MESSAGES)").await;
        assert!(status.contains("(MESSAGES 1)"), "{status}");
    }
}
