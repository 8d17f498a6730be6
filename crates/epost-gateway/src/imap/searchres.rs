//! SEARCHRES (RFC 5182): the result SEARCH ... RETURN (SAVE) keeps, and
//! what `$` stands for in later commands. The result is kept as UIDs in
//! the selected folder's view, so a message expunged since simply drops
//! out, and a new SELECT (a new view) starts with nothing saved.

use crate::backend::MailBackend;
use crate::imap::esearch::sequence_set;
use crate::imap::lift::SetKind;
use crate::imap::session::Session;

/// What `$` becomes when nothing is saved: a number no message has (the
/// largest UID and sequence number IMAP can name; a view never holds
/// 4,294,967,295 messages, and UIDs are handed out from 1), so commands
/// over it find nothing and still succeed (RFC 5182 section 2.1).
pub(crate) const NOTHING_SAVED: &str = "4294967295";

impl<B: MailBackend> Session<B> {
    /// Keeps `uids` as the saved result of the selected folder.
    pub(crate) fn save_result(&mut self, uids: Vec<u32>) {
        if let Some(selected) = self.selected.as_mut() {
            selected.saved = uids;
        }
    }

    /// The saved result as a sequence set of UIDs or sequence numbers.
    pub(crate) fn saved_set(&self, kind: SetKind) -> String {
        let Some(selected) = self.selected.as_ref() else { return NOTHING_SAVED.to_owned() };
        let numbers: Vec<u32> = selected
            .saved
            .iter()
            .filter_map(|uid| {
                let position = selected.messages.binary_search_by_key(uid, |m| m.uid).ok()?;
                Some(match kind {
                    SetKind::Uid => *uid,
                    SetKind::Sequence => position as u32 + 1,
                })
            })
            .collect();
        if numbers.is_empty() { NOTHING_SAVED.to_owned() } else { sequence_set(&numbers) }
    }
}

#[cfg(test)]
mod tests {
    use crate::imap::session::tests::{logged_in, run};

    #[tokio::test]
    async fn saved_results_feed_later_commands() {
        let (mut s, _) = logged_in().await;
        let account = s.account().unwrap();
        use crate::backend::Account;
        for i in 0..5 {
            let raw = bytes::Bytes::from(format!("Subject: m{i}\r\n\r\nbody {i}\r\n"));
            let flags = if i % 2 == 0 { vec!["\\Seen".to_string()] } else { vec![] };
            account.append("INBOX", raw, flags, None).await.unwrap();
        }
        run(&mut s, "a SELECT INBOX").await;
        // Nothing saved yet: `$` finds nothing, and that is no error.
        assert_eq!(run(&mut s, "b FETCH $ FLAGS").await, "b OK FETCH completed\r\n");
        assert!(run(&mut s, "b SEARCH $").await.starts_with("* SEARCH\r\n"));
        // SAVE alone answers nothing but the tagged OK.
        assert_eq!(run(&mut s, "c SEARCH RETURN (SAVE) SEEN").await, "c OK SEARCH completed\r\n");
        assert!(run(&mut s, "d SEARCH $").await.starts_with("* SEARCH 1 3 5\r\n"));
        assert!(run(&mut s, "d UID SEARCH UID $ NOT 5").await.starts_with("* SEARCH 1 3\r\n"));
        let fetched = run(&mut s, "e UID FETCH $ UID").await;
        assert!(
            fetched.starts_with("* 1 FETCH (UID 1)\r\n* 3 FETCH (UID 3)\r\n* 5 FETCH"),
            "{fetched}"
        );
        // Expunged messages drop out of the saved result.
        run(&mut s, "f STORE 1 +FLAGS (\\Deleted)").await;
        run(&mut s, "g EXPUNGE").await;
        assert!(run(&mut s, "h SEARCH $").await.starts_with("* SEARCH 2 4\r\n"));
        // SAVE with MIN keeps the minimum only, and ESEARCH still answers.
        let min = run(&mut s, "i UID SEARCH RETURN (SAVE MIN) ALL").await;
        assert!(min.starts_with("* ESEARCH (TAG \"i\") UID MIN 2\r\n"), "{min}");
        assert!(run(&mut s, "j UID SEARCH $").await.starts_with("* SEARCH 2\r\n"));
        // A failed saving search empties the result.
        let refused = run(&mut s, "k SEARCH RETURN (SAVE) CHARSET KOI8-R ALL").await;
        assert!(refused.starts_with("k NO [BADCHARSET"), "{refused}");
        assert!(run(&mut s, "l SEARCH $").await.starts_with("* SEARCH\r\n"));
        // A new SELECT starts afresh.
        run(&mut s, "m SEARCH RETURN (SAVE) ALL").await;
        run(&mut s, "n SELECT INBOX").await;
        assert!(run(&mut s, "o SEARCH $").await.starts_with("* SEARCH\r\n"));
        // `$` stays a string where the grammar wants one.
        run(&mut s, "p SEARCH RETURN (SAVE) ALL").await;
        assert!(run(&mut s, "q SEARCH SUBJECT $").await.starts_with("* SEARCH\r\n"));
        let copied = run(&mut s, "r COPY $ Archive").await;
        assert!(copied.contains("r OK"), "{copied}");
    }
}
