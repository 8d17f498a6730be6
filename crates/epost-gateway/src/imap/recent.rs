//! `\Recent` (RFC 3501 section 2.3.2): a message is recent in exactly one
//! session, the first to see it in its folder read-write. The gateway's
//! sessions share one claim per (user, folder): the highest UID some
//! session has taken as recent. A session that selects a folder, or
//! learns of new messages in it, takes everything above the claim.
//!
//! The claims live in the gateway's memory, not in the mail log: writing
//! to the log whenever a folder is opened would cost every SELECT a
//! durable write. So after a restart, and on another node's gateway, a
//! folder first seen starts from its messages' dates: those that arrived
//! before this gateway started are not recent, later ones are. A folder
//! this gateway's sessions add to (APPEND, COPY, MOVE) before any session
//! looked at it starts at the first message added (spec/mail.md).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::backend::MessageMeta;

/// Most (user, folder) claims kept; past it the oldest half are forgotten
/// (a forgotten folder starts again from the gateway's start time).
const MAX_CLAIMS: usize = 100_000;

/// Who has taken which messages as recent, for every session of one
/// gateway.
pub(crate) struct RecentClaims {
    /// When this gateway started, ms since the UNIX epoch.
    started: u64,
    claims: Mutex<Claims>,
}

#[derive(Default)]
struct Claims {
    by_folder: HashMap<(String, String), Claim>,
    /// Bumped on every use, to forget the least recently used.
    clock: u64,
}

#[derive(Debug, Clone, Copy)]
struct Claim {
    uid_validity: u32,
    /// Every UID up to this one has been taken (or was never recent).
    taken: u32,
    used: u64,
    /// Made by this use: no session has looked at the folder yet.
    fresh: bool,
}

impl Default for RecentClaims {
    fn default() -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Self::starting_at(now)
    }
}

impl RecentClaims {
    /// Claims for a gateway that started at `started` (ms since the epoch).
    pub(crate) fn starting_at(started: u64) -> Self {
        Self { started, claims: Mutex::new(Claims::default()) }
    }

    /// Takes every message of `messages` (ascending UIDs) above the claim
    /// as this session's recent ones; returns their UIDs.
    pub(crate) fn take(
        &self,
        user: &str,
        folder: &str,
        uid_validity: u32,
        messages: &[MessageMeta],
    ) -> Vec<u32> {
        self.above_claim(user, folder, uid_validity, messages, true)
    }

    /// A session added messages from `first` on to a folder: if no
    /// session has looked at it since this gateway started, they and
    /// whatever comes later are recent, and nothing before them.
    pub(crate) fn added(&self, user: &str, folder: &str, uid_validity: u32, first: u32) {
        let mut claims = self.lock();
        let taken = first.saturating_sub(1);
        let claim = claims.claim(user, folder, uid_validity, taken);
        if claim.fresh {
            claim.taken = taken;
        }
    }

    /// The messages of `messages` no session has taken yet (STATUS,
    /// EXAMINE).
    pub(crate) fn untaken(
        &self,
        user: &str,
        folder: &str,
        uid_validity: u32,
        messages: &[MessageMeta],
    ) -> Vec<u32> {
        self.above_claim(user, folder, uid_validity, messages, false)
    }

    /// The UIDs of `messages` above the folder's claim, which moves past
    /// them all if `take`.
    fn above_claim(
        &self,
        user: &str,
        folder: &str,
        uid_validity: u32,
        messages: &[MessageMeta],
        take: bool,
    ) -> Vec<u32> {
        let mut claims = self.lock();
        let claim = claims.claim(user, folder, uid_validity, self.baseline(messages));
        let taken = claim.taken;
        if take {
            claim.taken = claim.taken.max(messages.last().map_or(0, |m| m.uid));
        }
        messages.iter().map(|m| m.uid).filter(|&uid| uid > taken).collect()
    }

    /// The highest UID of a message that arrived before this gateway
    /// started: where a folder first seen now starts.
    fn baseline(&self, messages: &[MessageMeta]) -> u32 {
        messages.iter().filter(|m| m.internal_date < self.started).map(|m| m.uid).max().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Claims> {
        self.claims.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Claims {
    fn claim(&mut self, user: &str, folder: &str, uid_validity: u32, baseline: u32) -> &mut Claim {
        self.clock += 1;
        let used = self.clock;
        if self.by_folder.len() >= MAX_CLAIMS {
            let mut ages: Vec<u64> = self.by_folder.values().map(|c| c.used).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            self.by_folder.retain(|_, c| c.used > cut);
        }
        let key = (user.to_ascii_lowercase(), folder.to_owned());
        let fresh = Claim { uid_validity, taken: baseline, used, fresh: true };
        let claim = self.by_folder.entry(key).or_insert(fresh);
        if claim.uid_validity != uid_validity {
            // A new folder under the old name: all of it is new.
            *claim = Claim { uid_validity, taken: 0, used, fresh: true };
        } else if claim.used != used {
            claim.fresh = false;
        }
        claim.used = used;
        claim
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(uids: &[(u32, u64)]) -> Vec<MessageMeta> {
        uids.iter()
            .map(|&(uid, internal_date)| MessageMeta {
                uid,
                flags: vec![],
                internal_date,
                size: 1,
                modseq: 1,
            })
            .collect()
    }

    #[test]
    fn each_message_is_recent_in_one_session_only() {
        let claims = RecentClaims::starting_at(1_000);
        // UID 1 came before the gateway started; 2 and 3 after.
        let now = messages(&[(1, 500), (2, 1_500), (3, 1_600)]);
        assert_eq!(claims.untaken("a@x", "INBOX", 7, &now), vec![2, 3]);
        assert_eq!(claims.untaken("a@x", "INBOX", 7, &now), vec![2, 3], "peeking takes nothing");
        assert_eq!(claims.take("a@x", "INBOX", 7, &now), vec![2, 3]);
        assert_eq!(claims.take("A@x", "INBOX", 7, &now), Vec::<u32>::new(), "a second session");
        let later = messages(&[(1, 500), (2, 1_500), (3, 1_600), (4, 1_700)]);
        assert_eq!(claims.take("a@x", "INBOX", 7, &later), vec![4]);
        assert!(claims.untaken("a@x", "INBOX", 7, &later).is_empty());
        // Other users and other folders are apart.
        assert_eq!(claims.take("b@x", "INBOX", 7, &later), vec![2, 3, 4]);
        assert_eq!(claims.take("a@x", "Sent", 9, &later), vec![2, 3, 4]);
    }

    #[test]
    fn what_a_session_adds_first_is_recent_whatever_its_date() {
        let claims = RecentClaims::starting_at(1_000);
        // An APPEND of old mail (dated before the start) to a folder no
        // session has opened: UIDs 3 and 4 are recent, 1 and 2 not.
        claims.added("a@x", "Lists", 7, 3);
        claims.added("a@x", "Lists", 7, 4);
        let now = messages(&[(1, 500), (2, 1_500), (3, 100), (4, 100)]);
        assert_eq!(claims.untaken("a@x", "Lists", 7, &now), vec![3, 4]);
        assert_eq!(claims.take("a@x", "Lists", 7, &now), vec![3, 4]);
        // Once looked at, additions change nothing.
        claims.added("a@x", "Lists", 7, 1);
        assert!(claims.untaken("a@x", "Lists", 7, &now).is_empty());
    }

    #[test]
    fn a_folder_made_again_is_all_recent() {
        let claims = RecentClaims::starting_at(1_000);
        let old = messages(&[(1, 1_500), (2, 1_600)]);
        assert_eq!(claims.take("a@x", "Lists", 7, &old), vec![1, 2]);
        assert!(claims.take("a@x", "Lists", 7, &old).is_empty());
        let new = messages(&[(1, 500)]);
        assert_eq!(claims.take("a@x", "Lists", 8, &new), vec![1], "new UIDVALIDITY");
    }

    #[test]
    fn forgetting_keeps_the_most_recently_used() {
        let claims = RecentClaims::starting_at(0);
        let none = messages(&[]);
        for n in 0..MAX_CLAIMS {
            claims.take("a@x", &format!("f{n}"), 1, &none);
        }
        claims.take("a@x", "f0", 1, &none);
        claims.take("a@x", "new", 1, &none);
        let kept = claims.lock().by_folder.len();
        assert!(kept <= MAX_CLAIMS / 2 + 2, "{kept}");
        assert!(claims.lock().by_folder.contains_key(&("a@x".into(), "f0".into())));
    }
}
