//! QUOTA (RFC 9208), read-only: GETQUOTAROOT and GETQUOTA report what the
//! user stores against their limits, SETQUOTA is refused. Every folder of
//! an account shares one quota root, `""`; a resource is reported only
//! when the backend has a limit for it (RFC 9208 has no way to say
//! "unlimited"), so an account without limits has no quota root.

use imap_codec::imap_types::core::{AString, Tag, Vec1};
use imap_codec::imap_types::extensions::quota::{QuotaGet, Resource};
use imap_codec::imap_types::mailbox::Mailbox;
use imap_codec::imap_types::response::{Capability, Data, Response};

use crate::backend::{Account, MailBackend, Quota};
use crate::imap::session::{Done, Gone, Session, Sink, bad, code, mail_error, no, ok};

/// The one quota root of an account.
const ROOT: &str = "";

/// The capabilities: QUOTA with the STORAGE and MESSAGE resources (no
/// QUOTASET: limits are not set over IMAP).
pub(crate) fn capabilities() -> [Capability<'static>; 3] {
    [
        Capability::Quota,
        Capability::QuotaRes(Resource::Storage),
        Capability::QuotaRes(Resource::Message),
    ]
}

/// The resources of a quota root: STORAGE in KiB (usage rounded up, the
/// limit down, so a full account never looks to have room), MESSAGE in
/// messages; each only when it has a limit.
pub(crate) fn resources(quota: &Quota) -> Vec<QuotaGet<'static>> {
    let mut out = Vec::new();
    if let Some(limit) = quota.storage_limit {
        out.push(QuotaGet::new(
            Resource::Storage,
            quota.storage_bytes.div_ceil(1024),
            limit / 1024,
        ));
    }
    if let Some(limit) = quota.message_limit {
        out.push(QuotaGet::new(Resource::Message, quota.messages, limit));
    }
    out
}

fn root() -> AString<'static> {
    AString::try_from(ROOT).unwrap_or_else(|_| unreachable!("an empty string is an astring"))
}

impl<B: MailBackend> Session<B> {
    /// GETQUOTAROOT: the account's root for any name (the folder need not
    /// exist, RFC 9208 section 4.3), and its QUOTA.
    pub(crate) async fn get_quota_root<O: Sink>(
        &mut self,
        tag: Tag<'static>,
        mailbox: &Mailbox<'static>,
        out: &mut O,
    ) -> Result<Done, Gone> {
        let quota = match self.quota(&tag).await {
            Ok(quota) => quota,
            Err(refused) => return Ok(refused),
        };
        let quotas = Vec1::try_from(resources(&quota)).ok();
        let roots = if quotas.is_some() { vec![root()] } else { Vec::new() };
        out.send(Response::Data(Data::QuotaRoot { mailbox: mailbox.clone(), roots })).await?;
        if let Some(quotas) = quotas {
            out.send(Response::Data(Data::Quota { root: root(), quotas })).await?;
        }
        Ok(Done::now(ok(&tag, None, "GETQUOTAROOT completed")))
    }

    /// GETQUOTA: the account's root only.
    pub(crate) async fn get_quota<O: Sink>(
        &mut self,
        tag: Tag<'static>,
        asked: &AString<'static>,
        out: &mut O,
    ) -> Result<Done, Gone> {
        let quota = match self.quota(&tag).await {
            Ok(quota) => quota,
            Err(refused) => return Ok(refused),
        };
        match Vec1::try_from(resources(&quota)) {
            Ok(quotas) if asked.as_ref() == ROOT.as_bytes() => {
                out.send(Response::Data(Data::Quota { root: root(), quotas })).await?;
                Ok(Done::now(ok(&tag, None, "GETQUOTA completed")))
            }
            _ => Ok(Done::now(no(&tag, Some(code("NONEXISTENT")), "no such quota root"))),
        }
    }

    /// The logged-in account's quota, or the answer refusing the command.
    async fn quota(&self, tag: &Tag<'static>) -> Result<Quota, Done> {
        let Some(account) = self.account() else {
            return Err(Done::now(bad(tag, "log in first")));
        };
        account.quota().await.map_err(|error| Done::now(mail_error(tag, &error)))
    }

    /// SETQUOTA: limits are the operator's, not set over IMAP.
    pub(crate) fn set_quota(&self, tag: Tag<'static>) -> Done {
        Done::now(no(&tag, Some(code("NOPERM")), "quota limits cannot be set over IMAP"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imap::session::tests::{run, session};

    #[test]
    fn resources_in_kib_and_messages_only_with_a_limit() {
        let quota = |storage_bytes, messages, storage_limit, message_limit| Quota {
            storage_bytes,
            messages,
            storage_limit,
            message_limit,
        };
        // (quota, expected (resource, usage, limit))
        type Row = (Resource<'static>, u64, u64);
        let cases: Vec<(Quota, Vec<Row>)> = vec![
            (quota(5000, 3, None, None), vec![]),
            (quota(0, 0, Some(1 << 20), None), vec![(Resource::Storage, 0, 1024)]),
            (quota(1, 1, Some(2047), None), vec![(Resource::Storage, 1, 1)]),
            (quota(1025, 1, Some(4096), None), vec![(Resource::Storage, 2, 4)]),
            (
                quota(2048, 7, Some(10240), Some(100)),
                vec![(Resource::Storage, 2, 10), (Resource::Message, 7, 100)],
            ),
            (quota(2048, 7, None, Some(5)), vec![(Resource::Message, 7, 5)]),
        ];
        for (quota, want) in cases {
            let got: Vec<_> =
                resources(&quota).into_iter().map(|q| (q.resource, q.usage, q.limit)).collect();
            assert_eq!(got, want, "{quota:?}");
        }
    }

    #[tokio::test]
    async fn quota_commands() {
        let (mut s, backend) = session();
        assert!(run(&mut s, "a LOGIN alice@example.test alice-pw").await.starts_with("a OK"));
        // Without limits there is no quota root.
        assert_eq!(
            run(&mut s, "b GETQUOTAROOT INBOX").await,
            "* QUOTAROOT INBOX\r\nb OK GETQUOTAROOT completed\r\n"
        );
        assert!(run(&mut s, "c GETQUOTA \"\"").await.starts_with("c NO [NONEXISTENT]"));
        // A user with limits: usage against them.
        let backend = backend.with_quota(Some(10 * 1024 * 1024), Some(1000));
        let bob: epost_types::address::Address = "bob@example.test".parse().unwrap();
        backend.add_user(&bob, "bob-pw");
        let (mut s, _) = crate::imap::session::tests::session_for(&s, &backend);
        assert!(run(&mut s, "a LOGIN bob@example.test bob-pw").await.starts_with("a OK"));
        let raw = format!("Subject: q\r\n\r\n{}\r\n", "x".repeat(3000));
        let append = format!("b APPEND Sent {{{}+}}\r\n{raw}", raw.len());
        assert!(run(&mut s, &append).await.starts_with("b OK"));
        assert_eq!(
            run(&mut s, "c GETQUOTAROOT Nowhere").await,
            "* QUOTAROOT Nowhere \"\"\r\n* QUOTA \"\" (STORAGE 3 10240 MESSAGE 1 1000)\r\n\
             c OK GETQUOTAROOT completed\r\n"
        );
        assert_eq!(
            run(&mut s, "d GETQUOTA \"\"").await,
            "* QUOTA \"\" (STORAGE 3 10240 MESSAGE 1 1000)\r\nd OK GETQUOTA completed\r\n"
        );
        assert!(run(&mut s, "e GETQUOTA other").await.starts_with("e NO [NONEXISTENT]"));
        assert!(run(&mut s, "f SETQUOTA \"\" (STORAGE 1)").await.starts_with("f NO [NOPERM]"));
        let status = run(&mut s, "g STATUS Sent (SIZE MESSAGES)").await;
        assert!(status.starts_with(&format!("* STATUS Sent (SIZE {} MESSAGES 1)", raw.len())));
    }
}
