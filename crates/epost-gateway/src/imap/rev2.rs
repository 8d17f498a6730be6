//! IMAP4rev2 (RFC 9051) beside IMAP4rev1: what a session answers
//! differently once the client sent `ENABLE IMAP4rev2` (recognised in
//! [`crate::imap::enable`]). The changes live with the commands they
//! change, each behind `Enabled::imap4rev2`; this file holds the tests
//! that show them together, and the decisions are in `spec/mail.md`,
//! "IMAP4rev2":
//!
//! - no `* n RECENT`, no `\Recent` in FLAGS, no `[UNSEEN n]` on SELECT
//!   (the session takes no recent claim; SEARCH RECENT, NEW and OLD still
//!   parse, and find nothing recent);
//! - SEARCH and UID SEARCH without RETURN answer as RETURN (ALL), in an
//!   `* ESEARCH` response;
//! - SELECT and EXAMINE send the folder's `* LIST` response;
//! - mailbox names are UTF-8 both ways, not modified UTF-7 (quoted
//!   strings may carry UTF-8 in IMAP4rev2).
//!
//! STATUS DELETED and SIZE, and `[CLOSED]` when a SELECT replaces a
//! selected folder, are answered in both modes.

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::backend::Account;
    use crate::imap::session::Session;
    use crate::imap::session::tests::{logged_in, run, session_for};
    use crate::memory::MemoryBackend;

    /// A logged-in session that enabled IMAP4rev2, with `count` messages
    /// in INBOX (the first flagged `\Deleted`).
    async fn rev2(count: usize) -> (Session<MemoryBackend>, MemoryBackend) {
        let (mut s, backend) = logged_in().await;
        let account = s.account().unwrap();
        for n in 0..count {
            let raw = format!("Subject: {n}\r\n\r\nbody {n}\r\n");
            let flags = if n == 0 { vec!["\\Deleted".to_string()] } else { vec![] };
            account.append("INBOX", Bytes::from(raw), flags, None).await.unwrap();
        }
        let enabled = run(&mut s, "r ENABLE IMAP4rev2").await;
        assert_eq!(enabled, "* ENABLED IMAP4rev2\r\nr OK ENABLE completed\r\n");
        (s, backend)
    }

    #[tokio::test]
    async fn capability_names_both_revisions() {
        let (mut s, _) = logged_in().await;
        let caps = run(&mut s, "a CAPABILITY").await;
        // imap-codec writes IMAP4REV1 so; capability names are case-insensitive.
        assert!(caps.starts_with("* CAPABILITY IMAP4REV1 IMAP4rev2 "), "{caps}");
        assert!(caps.contains(" STATUS=SIZE "), "{caps}");
    }

    #[tokio::test]
    async fn nothing_is_recent_and_rev1_sessions_still_see_it() {
        let (mut s, backend) = rev2(2).await;
        let select = run(&mut s, "a SELECT INBOX").await;
        assert!(select.contains("* 2 EXISTS\r\n"), "{select}");
        assert!(!select.contains("RECENT") && !select.contains("[UNSEEN"), "{select}");
        let fetch = run(&mut s, "b FETCH 1:2 FLAGS").await;
        assert_eq!(
            fetch,
            "* 1 FETCH (FLAGS (\\Deleted))\r\n* 2 FETCH (FLAGS ())\r\nb OK FETCH completed\r\n"
        );
        // Still parsed (RFC 9051 dropped them): nothing is recent.
        let recent = run(&mut s, "c SEARCH RECENT").await;
        assert_eq!(recent, "* ESEARCH (TAG \"c\")\r\nc OK SEARCH completed\r\n");
        let new = run(&mut s, "d SEARCH NEW").await;
        assert_eq!(new, "* ESEARCH (TAG \"d\")\r\nd OK SEARCH completed\r\n");
        let old = run(&mut s, "e SEARCH OLD").await;
        assert_eq!(old, "* ESEARCH (TAG \"e\") ALL 1:2\r\ne OK SEARCH completed\r\n");
        // A new message: EXISTS, no RECENT.
        let account = s.account().unwrap();
        account
            .append("INBOX", Bytes::from_static(b"Subject: 3\r\n\r\n3\r\n"), vec![], None)
            .await
            .unwrap();
        let noop = run(&mut s, "f NOOP").await;
        assert_eq!(noop, "* 3 EXISTS\r\nf OK NOOP completed\r\n");
        // The rev2 session took no claim: a rev1 session gets them all.
        let (mut other, _) = session_for(&s, &backend);
        run(&mut other, "a LOGIN alice@example.test alice-pw").await;
        let select = run(&mut other, "b SELECT INBOX").await;
        assert!(select.contains("* 3 EXISTS\r\n* 3 RECENT\r\n"), "{select}");
        assert!(select.contains("* OK [UNSEEN 1]"), "{select}");
        assert!(!select.contains("* LIST"), "{select}");
        let fetch = run(&mut other, "c FETCH 2 FLAGS").await;
        assert!(fetch.starts_with("* 2 FETCH (FLAGS (\\Recent))"), "{fetch}");
    }

    #[tokio::test]
    async fn enabling_while_selected_stops_showing_recent() {
        let (mut s, _) = logged_in().await;
        let account = s.account().unwrap();
        account
            .append("INBOX", Bytes::from_static(b"Subject: x\r\n\r\nx\r\n"), vec![], None)
            .await
            .unwrap();
        assert!(run(&mut s, "a SELECT INBOX").await.contains("* 1 RECENT\r\n"));
        run(&mut s, "b ENABLE IMAP4rev2").await;
        let fetch = run(&mut s, "c FETCH 1 FLAGS").await;
        assert_eq!(fetch, "* 1 FETCH (FLAGS ())\r\nc OK FETCH completed\r\n");
    }

    #[tokio::test]
    async fn search_without_return_answers_esearch_all() {
        let (mut s, _) = rev2(3).await;
        run(&mut s, "a SELECT INBOX").await;
        let all = run(&mut s, "b SEARCH ALL").await;
        assert_eq!(all, "* ESEARCH (TAG \"b\") ALL 1:3\r\nb OK SEARCH completed\r\n");
        let uid = run(&mut s, "c UID SEARCH UNDELETED").await;
        assert_eq!(uid, "* ESEARCH (TAG \"c\") UID ALL 2:3\r\nc OK SEARCH completed\r\n");
        let none = run(&mut s, "d UID SEARCH SUBJECT nothing-like-it").await;
        assert_eq!(none, "* ESEARCH (TAG \"d\") UID\r\nd OK SEARCH completed\r\n");
        // RETURN still says what is returned.
        let count = run(&mut s, "e SEARCH RETURN (COUNT) ALL").await;
        assert_eq!(count, "* ESEARCH (TAG \"e\") COUNT 3\r\ne OK SEARCH completed\r\n");
        // SAVE alone still answers nothing, and `$` works on.
        let save = run(&mut s, "f SEARCH RETURN (SAVE) 2:3").await;
        assert_eq!(save, "f OK SEARCH completed\r\n");
        let saved = run(&mut s, "g UID SEARCH $").await;
        assert_eq!(saved, "* ESEARCH (TAG \"g\") UID ALL 2:3\r\ng OK SEARCH completed\r\n");
    }

    #[tokio::test]
    async fn rev1_search_is_unchanged() {
        let (mut s, _) = logged_in().await;
        let account = s.account().unwrap();
        account
            .append("INBOX", Bytes::from_static(b"Subject: x\r\n\r\nx\r\n"), vec![], None)
            .await
            .unwrap();
        run(&mut s, "a SELECT INBOX").await;
        assert_eq!(run(&mut s, "b SEARCH ALL").await, "* SEARCH 1\r\nb OK SEARCH completed\r\n");
    }

    #[tokio::test]
    async fn select_and_examine_send_the_folders_list_response() {
        let (mut s, _) = rev2(1).await;
        let select = run(&mut s, "a SELECT INBOX").await;
        assert!(select.contains("* LIST (\\HasNoChildren) \"/\" INBOX\r\n"), "{select}");
        assert!(!select.contains("[CLOSED]"), "{select}");
        let examine = run(&mut s, "b EXAMINE Sent").await;
        assert!(examine.starts_with("* OK [CLOSED]"), "{examine}");
        assert!(examine.contains("* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n"), "{examine}");
        assert!(examine.ends_with("b OK [READ-ONLY] EXAMINE completed\r\n"), "{examine}");
        run(&mut s, "c CREATE Projekte/Entw&APw-rfe").await;
        let parent = run(&mut s, "d SELECT Projekte").await;
        assert!(parent.contains("d NO"), "{parent}");
        let nested = run(&mut s, "e SELECT Projekte/Entw&APw-rfe").await;
        assert!(nested.contains("* LIST (\\HasNoChildren) \"/\" Projekte/Entw&APw-rfe\r\n"));
    }

    #[tokio::test]
    async fn mailbox_names_are_utf8() {
        let (mut s, backend) = rev2(0).await;
        assert!(run(&mut s, "a CREATE \"Entwürfe/Q&A\"").await.starts_with("a OK"));
        let list = run(&mut s, "b LIST \"\" \"Entw*\"").await;
        assert_eq!(
            list,
            "* LIST (\\Noselect \\HasChildren) \"/\" \"Entwürfe\"\r\n\
             * LIST (\\HasNoChildren) \"/\" \"Entwürfe/Q&A\"\r\nb OK LIST completed\r\n"
        );
        let select = run(&mut s, "c SELECT \"Entwürfe/Q&A\"").await;
        assert!(select.contains("* LIST (\\HasNoChildren) \"/\" \"Entwürfe/Q&A\"\r\n"), "{select}");
        assert!(select.contains("c OK [READ-WRITE]"), "{select}");
        let status = run(&mut s, "d STATUS \"Entwürfe/Q&A\" (MESSAGES)").await;
        assert!(status.starts_with("* STATUS \"Entwürfe/Q&A\" (MESSAGES 0)"), "{status}");
        // Modified UTF-7 is not decoded: `&APw-` is five characters.
        let utf7 = run(&mut s, "e SELECT Entw&APw-rfe").await;
        assert!(utf7.contains("e NO"), "{utf7}");
        // An IMAP4rev1 session sees the same folders in modified UTF-7.
        let (mut rev1, _) = session_for(&s, &backend);
        run(&mut rev1, "a LOGIN alice@example.test alice-pw").await;
        let list = run(&mut rev1, "b LIST \"\" \"Entw*\"").await;
        assert_eq!(
            list,
            "* LIST (\\Noselect \\HasChildren) \"/\" Entw&APw-rfe\r\n\
             * LIST (\\HasNoChildren) \"/\" Entw&APw-rfe/Q&-A\r\nb OK LIST completed\r\n"
        );
        assert!(run(&mut rev1, "c SELECT Entw&APw-rfe/Q&-A").await.contains("c OK [READ-WRITE]"));
    }

    #[tokio::test]
    async fn status_deleted_and_size() {
        let (mut s, backend) = rev2(3).await;
        let sizes: u64 = {
            let account = s.account().unwrap();
            account.snapshot("INBOX").await.unwrap().messages.iter().map(|m| m.size).sum()
        };
        let status = run(&mut s, "a STATUS INBOX (MESSAGES DELETED SIZE)").await;
        assert_eq!(
            status,
            format!(
                "* STATUS INBOX (MESSAGES 3 DELETED 1 SIZE {sizes})\r\na OK STATUS completed\r\n"
            )
        );
        // The same for an IMAP4rev1 session.
        let (mut rev1, _) = session_for(&s, &backend);
        run(&mut rev1, "a LOGIN alice@example.test alice-pw").await;
        let status = run(&mut rev1, "b STATUS INBOX (DELETED SIZE)").await;
        assert_eq!(
            status,
            format!("* STATUS INBOX (DELETED 1 SIZE {sizes})\r\nb OK STATUS completed\r\n")
        );
    }
}
