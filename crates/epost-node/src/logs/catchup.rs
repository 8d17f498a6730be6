//! Entries the lease book does not list yet: those of logs written before
//! this node kept a book (an upgrade), found by adopting the heads of
//! hosted users that the node holds as their publisher, and any whose
//! registration a crash cut short. Each log is walked back from its head
//! to the last entry already registered, by reference only (a snapshot
//! lists 499 entries without their being fetched), and what it finds is
//! added to the book due for renewal at once.

use epost_types::envelope::SignedEnvelope;
use epost_types::log::{LogHead, LogKey};
use epost_types::record::RecordKey;
use tracing::{debug, info, warn};

use super::Inner;
use super::walk::{Visit, Walk, walk};
use crate::chain::Chain;
use crate::keyspaces::KAD_RECORDS;
use crate::lease::{Change, HeadUpdate, NewRoot, OwnedHead, OwnerId, RootKind};

/// Entries added to the book per commit.
const PAGE: usize = 512;

/// Adopts the heads this node published for its users but does not own
/// yet (read from its copy of the overlay's records).
pub(super) async fn adopt_heads(inner: &Inner) -> usize {
    let users = inner.identity.hosted_users();
    if users.is_empty() {
        return 0;
    }
    let mut adopted = 0;
    let mut after: Option<Vec<u8>> = None;
    loop {
        let page = match inner.store.scan_prefix(
            &KAD_RECORDS,
            &[RecordKey::LOG_HEAD_TAG],
            after.as_deref(),
            1024,
        ) {
            Ok(page) => page,
            Err(e) => {
                warn!(error = %Chain(&e), "cannot read the records held here");
                return adopted;
            }
        };
        let Some((last, _)) = page.last() else { break };
        after = Some(last.clone());
        let full = page.len() == 1024;
        for (_, entry) in page {
            let Ok(envelope) = SignedEnvelope::decode(&entry.value) else { continue };
            let Some(user) = users.iter().find(|u| u.keys.verifying_key() == envelope.signer)
            else {
                continue;
            };
            let Ok(head) = LogHead::verify(&envelope) else { continue };
            if matches!(inner.book.head(head.log), Ok(Some(_))) {
                continue;
            }
            let update = HeadUpdate::Adopted {
                log: head.log,
                owner: user.keys.address.clone(),
                name: head.name.clone(),
                envelope: entry.value.clone(),
                seq: head.seq,
            };
            match inner.book.change(Change { head: Some(update), ..Change::default() }).await {
                Ok(()) => adopted += 1,
                Err(e) => warn!(log = %head.log, error = %Chain(&e), "cannot adopt a head"),
            }
        }
        if !full {
            break;
        }
    }
    if adopted > 0 {
        info!(adopted, "log heads written before the lease book are now renewed");
    }
    adopted
}

/// Registers the entries of every owned head not yet registered; returns
/// how many it added.
pub(super) async fn register_unlisted(inner: &Inner) -> u64 {
    let heads = match inner.book.heads() {
        Ok(heads) => heads,
        Err(e) => {
            warn!(error = %Chain(&e), "cannot read the owned heads");
            return 0;
        }
    };
    let mut total = 0;
    for (log, head) in heads.into_iter().filter(|(_, h)| h.registered < h.seq) {
        match register_log(inner, log, &head).await {
            Ok(n) => total += n,
            Err(e) => {
                debug!(%log, error = %Chain(&e), "entries not registered yet; the next pass retries")
            }
        }
    }
    total
}

async fn register_log(
    inner: &Inner,
    log: epost_types::id::LogId,
    head: &OwnedHead,
) -> Result<u64, super::LogError> {
    let user = inner.identity.user(&head.owner)?;
    let log_key = LogKey::derive(&user.keys.signing, &log);
    let envelope = SignedEnvelope::decode(&head.envelope)
        .map_err(|e| super::LogError::Corrupt { seq: head.seq, detail: e.to_string() })?;
    let signed = LogHead::verify(&envelope)
        .map_err(|e| super::LogError::Corrupt { seq: head.seq, detail: e.to_string() })?;
    let newest = signed
        .newest_entry(&log_key)
        .map_err(|e| super::LogError::Corrupt { seq: signed.seq, detail: e.to_string() })?;
    let mut found = Vec::new();
    let from =
        Walk { log, newest: (signed.seq, newest), floor: head.registered, open_indexed: false };
    walk(inner, from, |_, entry_ref, _| {
        found.push(entry_ref.id);
        Visit::More
    })
    .await?;
    let owner = OwnerId::logs(&head.owner);
    for page in found.chunks(PAGE) {
        let add = page
            .iter()
            .map(|id| NewRoot {
                id: *id,
                kind: RootKind::LogEntry,
                capability: None,
                members: Some(Vec::new()),
                expires: 0,
            })
            .collect();
        inner.book.change(Change { owner: Some(owner), add, ..Change::default() }).await?;
    }
    let update = HeadUpdate::Registered { log, upto: signed.seq };
    inner.book.change(Change { head: Some(update), ..Change::default() }).await?;
    Ok(found.len() as u64)
}
