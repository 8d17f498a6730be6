//! Opening a mailbox: the state from the newest checkpoint and the mail
//! log entries after it (or from the whole log when it has none, or when
//! the checkpoint cannot be read), the lease book brought up to date, and
//! the standard folders made for a new log.

use epost_types::address::Address;
use epost_types::mail::{MailEntry, MailOp};
use epost_types::mailbox::MailError;
use tracing::{debug, info, warn};

use super::account::{MAIL_LOG, validity};
use super::checkpoint::{self, Tracker};
use super::leases::{self, Leases};
use super::state::{self, MailState, STANDARD};
use crate::chain::Chain;
use crate::lease::{self, LeaseBook, NewRoot, OwnerId, RootKind};
use crate::logs::{LogService, ReadEntry};
use crate::storage::StorageService;

/// A mailbox as opened.
pub(super) struct Opened {
    pub(super) state: MailState,
    pub(super) tracker: Tracker,
    /// The newest mail log entry read (0: none).
    pub(super) last_seq: u64,
}

fn is_checkpoint(body: &[u8]) -> bool {
    MailEntry::decode(body).is_ok_and(|e| checkpoint::named(&e.ops).is_some())
}

pub(super) async fn open(
    address: &Address,
    logs: &LogService,
    book: &LeaseBook,
    storage: &StorageService,
) -> Result<Opened, MailError> {
    let temporary =
        |e: crate::logs::LogError| MailError::unavailable("cannot read the mail log", e);
    let mut entries = logs.read_back(address, MAIL_LOG, is_checkpoint).await.map_err(temporary)?;
    let mut state = MailState::default();
    let mut tracker = Tracker::default();
    let mut covers = 0;
    let named = entries
        .first()
        .and_then(|e| MailEntry::decode(&e.body).ok())
        .and_then(|e| checkpoint::named(&e.ops).map(|(cap, covers)| (cap.clone(), covers)));
    if let Some((capability, _)) = named {
        match checkpoint::load(storage, &capability).await {
            Ok((loaded, loaded_tracker, loaded_covers)) => {
                state = loaded;
                tracker = loaded_tracker;
                covers = loaded_covers;
                keep_checkpoint_root(book, address, &capability, &tracker).await;
            }
            Err(e) => {
                warn!(%address, error = %Chain(&e), "the newest checkpoint cannot be read; replaying the whole mail log");
                entries = logs.read(address, MAIL_LOG).await.map_err(temporary)?;
            }
        }
    }
    let mark = leases::registered_mark(book, address);
    // A checkpoint past the mark hides what changed in between: compare all.
    let compare_all = mark < covers;
    let mut leases = Leases::default();
    let mut last_seq = 0;
    for entry in entries.iter().filter(|e| e.seq > covers) {
        replay_entry(
            address,
            &mut state,
            &mut tracker,
            &mut leases,
            entry,
            (!compare_all).then_some(mark),
        );
        tracker.since += 1;
        last_seq = entry.seq;
    }
    last_seq = last_seq.max(entries.last().map_or(0, |e| e.seq));
    if compare_all {
        if let Err(e) = leases::reconcile_all(book, address, &state, last_seq).await {
            warn!(%address, error = %Chain(&e), "cannot bring the lease book up to date; the next open retries");
        }
    } else if last_seq > mark {
        leases.register(book, address, &state, last_seq).await;
    }
    if entries.is_empty() {
        last_seq = create_standard(address, logs, &mut state, &mut tracker).await?;
    }
    if tracker.since > 0 {
        debug!(%address, replayed = tracker.since, "mail log replayed since the last checkpoint");
    }
    Ok(Opened { state, tracker, last_seq })
}

/// Applies one entry's operations; when `track_after` is below its seq,
/// notes what they change for the lease book.
fn replay_entry(
    address: &Address,
    state: &mut MailState,
    tracker: &mut Tracker,
    leases: &mut Leases,
    entry: &ReadEntry,
    track_after: Option<u64>,
) {
    match MailEntry::decode(&entry.body) {
        Ok(decoded) => {
            for (index, op) in decoded.ops.iter().enumerate() {
                if track_after.is_some_and(|mark| entry.seq > mark) {
                    leases.before(state, op);
                }
                // Its position in the log is its MODSEQ.
                let at = state::modseq(state.entries + 1, index);
                match state.apply(op, at) {
                    Ok(assigned) => tracker.note(op, &assigned),
                    Err(e) => {
                        debug!(%address, seq = entry.seq, error = %Chain(&e), "skipping an operation")
                    }
                }
            }
        }
        Err(e) => {
            warn!(%address, seq = entry.seq, error = %Chain(&e), "skipping an unreadable mail log entry")
        }
    }
    state.entries += 1;
}

/// A new log: the standard folders, in one entry.
async fn create_standard(
    address: &Address,
    logs: &LogService,
    state: &mut MailState,
    tracker: &mut Tracker,
) -> Result<u64, MailError> {
    let ops: Vec<MailOp> = STANDARD
        .iter()
        .enumerate()
        .filter(|(_, name)| !state.folders.contains_key(**name))
        .map(|(i, name)| MailOp::Create {
            folder: (*name).to_owned(),
            uid_validity: validity(i as u32),
        })
        .collect();
    let appended = logs
        .append(address, MAIL_LOG, MailEntry::new(ops.clone()).encode())
        .await
        .map_err(|e| MailError::unavailable("cannot make the standard folders", e))?;
    for (index, op) in ops.iter().enumerate() {
        let _ = state.apply(op, state::modseq(state.entries + 1, index));
        tracker.note(op, &[]);
    }
    state.entries += 1;
    tracker.since += 1;
    info!(%address, "mail log started with the standard folders");
    Ok(appended.seq)
}

/// The loaded checkpoint stays renewed even if a crash kept it out of the
/// book when it was written.
async fn keep_checkpoint_root(
    book: &LeaseBook,
    address: &Address,
    capability: &epost_types::capability::Capability,
    tracker: &Tracker,
) {
    if matches!(book.expiry(capability.id), Ok(Some(_))) {
        return;
    }
    let root = NewRoot {
        id: capability.id,
        kind: RootKind::MailState,
        capability: Some(capability.clone()),
        members: Some(tracker.objects()),
        expires: 0,
    };
    let change = lease::Change {
        owner: Some(OwnerId::logs(address)),
        add: vec![root],
        ..Default::default()
    };
    if let Err(e) = book.change(change).await {
        warn!(%address, error = %Chain(&e), "cannot record the checkpoint in the lease book");
    }
}
