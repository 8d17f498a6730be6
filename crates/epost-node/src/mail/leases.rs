//! What a user's folders name, kept in the lease book: a message's
//! manifest is a root of the user's mail owner for as long as at least one
//! folder entry names it (an attachment shared by two messages stays as
//! long as either). The account task registers the changes of each batch
//! with a mark (the log entry they bring the book to); an open replays
//! the entries after the mark with their changes tracked, or, when a
//! checkpoint skipped past it, compares everything once.

use std::collections::{HashMap, HashSet};

use epost_types::address::Address;
use epost_types::id::ObjectId;
use epost_types::mail::{MailOp, MessageRef};
use tracing::warn;

use super::state::MailState;
use crate::chain::Chain;
use crate::lease::{self, LeaseBook, NewRoot, OwnerId, RootKind};
use epost_types::mailbox::StoredObjects;

/// Roots changed per commit when comparing everything.
const PAGE: usize = 512;

/// The key of the mark saying up to which mail log entry the lease book
/// holds what `address`'s folders name.
pub(super) fn mark_key(address: &Address) -> Vec<u8> {
    let mut key = OwnerId::mail(address).as_bytes().to_vec();
    key.push(b'r');
    key
}

pub(super) fn mark(seq: u64, address: &Address) -> (Vec<u8>, Vec<u8>) {
    (mark_key(address), seq.to_be_bytes().to_vec())
}

/// The mail log entry up to which the book is known to hold what the
/// folders name (0: nothing known).
pub(super) fn registered_mark(book: &LeaseBook, address: &Address) -> u64 {
    book.mark(&mark_key(address))
        .ok()
        .flatten()
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map_or(0, u64::from_be_bytes)
}

/// The changes a batch makes to which messages this user holds: the count
/// of folder entries of each manifest it touched, before the batch, and
/// the objects of messages it stores.
#[derive(Debug, Default)]
pub(super) struct Leases {
    before: HashMap<ObjectId, (MessageRef, u32)>,
    pub(super) objects: HashMap<ObjectId, StoredObjects>,
}

impl Leases {
    /// Notes what `op` may change, before it is applied to `state`.
    pub(super) fn before(&mut self, state: &MailState, op: &MailOp) {
        for message in state.touched(op) {
            let id = message.manifest.id;
            let count = state.refs(&id);
            self.before.entry(id).or_insert((message, count));
        }
    }

    /// The manifests now held that were not, and those no longer held.
    fn transitions(&mut self, state: &MailState) -> (Vec<NewRoot>, Vec<ObjectId>) {
        let mut add = Vec::new();
        let mut drop = Vec::new();
        for (id, (message, before)) in self.before.drain() {
            let after = state.refs(&id);
            if before == 0 && after > 0 {
                let objects = self.objects.remove(&id);
                add.push(message_root(id, &message, objects));
            } else if before > 0 && after == 0 {
                drop.push(id);
            }
        }
        (add, drop)
    }

    /// Commits the batch's changes to the lease book, with the mark of the
    /// log entry `seq` they bring it to. Returns false if the book could
    /// not take them (the next open finds them again from the mark).
    pub(super) async fn register(
        mut self,
        book: &LeaseBook,
        address: &Address,
        state: &MailState,
        seq: u64,
    ) -> bool {
        let (add, drop) = self.transitions(state);
        if add.is_empty() && drop.is_empty() {
            return true;
        }
        let change = lease::Change {
            owner: Some(OwnerId::mail(address)),
            add,
            drop,
            marks: vec![mark(seq, address)],
            head: None,
        };
        match book.change(change).await {
            Ok(()) => true,
            Err(e) => {
                warn!(%address, error = %Chain(&e), "cannot record in the lease book what the folders hold; the next open does");
                false
            }
        }
    }
}

fn message_root(id: ObjectId, message: &MessageRef, objects: Option<StoredObjects>) -> NewRoot {
    NewRoot {
        id,
        kind: RootKind::Message,
        capability: Some(message.manifest.clone()),
        members: objects.as_ref().map(|o| o.members.clone()),
        expires: objects.map_or(0, |o| o.expires),
    }
}

/// Brings the book to exactly what the folders name (after a checkpoint
/// skipped past the book's mark): adds what it lacks, drops what no folder
/// names, and marks it current as of `seq`.
pub(super) async fn reconcile_all(
    book: &LeaseBook,
    address: &Address,
    state: &MailState,
    seq: u64,
) -> Result<(), lease::BookError> {
    let owner = OwnerId::mail(address);
    let live = state.live_manifests();
    let held: HashSet<ObjectId> = book.roots_of(owner)?.into_iter().collect();
    let add: Vec<NewRoot> = live
        .iter()
        .filter(|(id, _)| !held.contains(id))
        .map(|(id, message)| message_root(*id, message, None))
        .collect();
    let drop: Vec<ObjectId> = held.iter().filter(|id| !live.contains_key(id)).copied().collect();
    for page in add.chunks(PAGE) {
        book.change(lease::Change { owner: Some(owner), add: page.to_vec(), ..Default::default() })
            .await?;
    }
    for page in drop.chunks(PAGE) {
        book.change(lease::Change {
            owner: Some(owner),
            drop: page.to_vec(),
            ..Default::default()
        })
        .await?;
    }
    book.change(lease::Change { marks: vec![mark(seq, address)], ..Default::default() }).await
}
