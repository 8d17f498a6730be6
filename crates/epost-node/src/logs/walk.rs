//! Walking a log back from its newest entry (spec/logs.md section 1.6):
//! one by one along `prev` to the newest snapshot, then behind each
//! snapshot its index, fetched in parallel, and its previous snapshot.
//! The walk visits entries newest first and stops where its visitor says,
//! or at a floor, so reading what changed since a point costs what
//! changed, not the whole log.

use epost_types::id::LogId;
use epost_types::log::{EntryRef, LogEntry};
use futures::StreamExt;

use super::{Inner, LogError};

/// Entries fetched at once when reading behind a snapshot.
const PARALLEL_FETCHES: usize = 16;

/// What the visitor wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Visit {
    More,
    Enough,
}

/// Where a walk starts and how far it goes.
pub(super) struct Walk {
    pub(super) log: LogId,
    /// The newest entry: its sequence number and reference.
    pub(super) newest: (u64, EntryRef),
    /// Entries at or below this are not visited.
    pub(super) floor: u64,
    /// Whether entries listed in a snapshot's index are fetched and
    /// opened (else they are visited by reference only, at no cost).
    pub(super) open_indexed: bool,
}

/// Visits the entries of `walk`, newest first, each with its sequence
/// number, reference and (when fetched) the entry.
pub(super) async fn walk(
    inner: &Inner,
    walk: Walk,
    mut visit: impl FnMut(u64, &EntryRef, Option<&LogEntry>) -> Visit,
) -> Result<(), LogError> {
    let Walk { log, newest, floor, open_indexed } = walk;
    let mut next = Some(newest);
    let mut snapshot = None;
    while let Some((seq, entry_ref)) = next.take() {
        if seq <= floor {
            return Ok(());
        }
        let entry = inner.fetch_entry(&log, seq, &entry_ref).await?;
        if visit(seq, &entry_ref, Some(&entry)) == Visit::Enough {
            return Ok(());
        }
        if LogEntry::is_snapshot_seq(seq) {
            snapshot = Some(entry);
            break;
        }
        next = entry.prev.clone().map(|prev| (seq - 1, prev));
    }
    while let Some(snap) = snapshot.take() {
        let mut previous = None;
        let mut indexed = Vec::new();
        for (seq, link) in snap.links() {
            if LogEntry::is_snapshot_seq(seq) {
                previous = Some((seq, link.clone()));
            } else if seq > floor {
                indexed.push((seq, link.clone()));
            }
        }
        indexed.reverse();
        if open_indexed {
            let mut fetches =
                futures::stream::iter(indexed.into_iter().map(|(seq, link)| async move {
                    inner.fetch_entry(&log, seq, &link).await.map(|e| (seq, link, e))
                }))
                .buffered(PARALLEL_FETCHES);
            while let Some(fetched) = fetches.next().await {
                let (seq, link, entry) = fetched?;
                if visit(seq, &link, Some(&entry)) == Visit::Enough {
                    return Ok(());
                }
            }
        } else {
            for (seq, link) in &indexed {
                if visit(*seq, link, None) == Visit::Enough {
                    return Ok(());
                }
            }
        }
        if let Some((seq, link)) = previous.filter(|(seq, _)| *seq > floor) {
            let entry = inner.fetch_entry(&log, seq, &link).await?;
            if visit(seq, &link, Some(&entry)) == Visit::Enough {
                return Ok(());
            }
            snapshot = Some(entry);
        }
    }
    Ok(())
}
