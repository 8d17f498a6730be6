//! What a folder remembers of its expunges, so an IMAP client that comes
//! back with the MODSEQ it last saw (QRESYNC) hears which of its messages
//! went: the UID ranges each change removed, with that change's MODSEQ,
//! the newest [`KEPT`] ranges only. Older ones are forgotten, and a
//! question reaching back past them is answered with a superset (every
//! UID the folder does not hold now), as RFC 7162 allows.

use epost_types::mailbox::Vanished;

/// Ranges of expunged UIDs a folder remembers at most. A range costs 16
/// bytes in memory and about 20 in a checkpoint; a client offline for
/// more expunges than this gets the larger set.
pub const KEPT: usize = 512;

/// A folder's remembered expunges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expunged {
    /// `(modseq, first, last)`: the UIDs `first ..= last` went at
    /// `modseq`; in the order they went (ascending MODSEQ).
    ranges: Vec<(u64, u32, u32)>,
    /// Expunges at or below this MODSEQ may be forgotten (0: none is).
    forgotten: u64,
}

impl Expunged {
    /// As a checkpoint stored it.
    pub fn restore(ranges: Vec<(u64, u32, u32)>, forgotten: u64) -> Self {
        let mut restored = Self { ranges, forgotten };
        restored.trim();
        restored
    }

    /// Knows nothing at or below `modseq` (a folder whose history before
    /// it is lost).
    pub fn forgetting(modseq: u64) -> Self {
        Self { ranges: Vec::new(), forgotten: modseq }
    }

    /// The ranges, oldest first, for a checkpoint.
    pub fn ranges(&self) -> &[(u64, u32, u32)] {
        &self.ranges
    }

    /// The MODSEQ at or below which expunges may be forgotten.
    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }

    /// Notes that the change at `modseq` removed `uids` (any order).
    pub fn record(&mut self, modseq: u64, uids: &[u32]) {
        let mut sorted = uids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        for (first, last) in ranges_of(&sorted) {
            self.ranges.push((modseq, first, last));
        }
        self.trim();
    }

    fn trim(&mut self) {
        if self.ranges.len() > KEPT {
            let drop = self.ranges.len() - KEPT;
            let newest_dropped = self.ranges[..drop].iter().map(|r| r.0).max().unwrap_or(0);
            self.forgotten = self.forgotten.max(newest_dropped);
            self.ranges.drain(..drop);
        }
    }

    /// The UIDs expunged after `since`. When that reaches back past what
    /// is remembered, every UID below `uid_next` not among `held` (the
    /// UIDs the folder holds, ascending).
    pub fn since(
        &self,
        since: u64,
        uid_next: u32,
        held: impl IntoIterator<Item = u32>,
    ) -> Vanished {
        if since < self.forgotten {
            let mut gone = Vec::new();
            let mut next = 1u32;
            for uid in held.into_iter().take_while(|uid| *uid < uid_next) {
                if uid > next {
                    gone.push((next, uid - 1));
                }
                next = next.max(uid.saturating_add(1));
            }
            if next < uid_next {
                gone.push((next, uid_next - 1));
            }
            return Vanished { ranges: gone, exact: false };
        }
        let mut picked: Vec<(u32, u32)> = self
            .ranges
            .iter()
            .filter(|(modseq, _, _)| *modseq > since)
            .map(|&(_, first, last)| (first, last))
            .collect();
        picked.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::with_capacity(picked.len());
        for (first, last) in picked {
            match merged.last_mut() {
                Some(previous) if first <= previous.1.saturating_add(1) => {
                    previous.1 = previous.1.max(last)
                }
                _ => merged.push((first, last)),
            }
        }
        Vanished { ranges: merged, exact: true }
    }
}

/// Ascending, deduplicated UIDs as inclusive ranges of consecutive ones.
fn ranges_of(sorted: &[u32]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &uid in sorted {
        match out.last_mut() {
            Some(range) if range.1.checked_add(1) == Some(uid) => range.1 = uid,
            _ => out.push((uid, uid)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expunges_after_a_modseq_merge_into_ranges() {
        let mut expunged = Expunged::default();
        expunged.record(10, &[3, 1, 2, 7]);
        expunged.record(20, &[4, 9]);
        expunged.record(30, &[8]);
        // (since, expected ranges)
        let cases: [(u64, &[(u32, u32)]); 4] =
            [(0, &[(1, 4), (7, 9)]), (10, &[(4, 4), (8, 9)]), (25, &[(8, 8)]), (30, &[])];
        for (since, expected) in cases {
            let vanished = expunged.since(since, 100, []);
            assert!(vanished.exact, "{since}");
            assert_eq!(vanished.ranges, expected, "since {since}");
        }
    }

    #[test]
    fn beyond_what_is_kept_the_answer_is_every_uid_not_held() {
        let mut expunged = Expunged::default();
        for n in 0..(KEPT as u32 + 10) {
            // Each expunge one UID apart from the last: one range each.
            expunged.record(u64::from(n) + 1, &[2 * n + 1]);
        }
        assert_eq!(expunged.ranges().len(), KEPT);
        assert_eq!(expunged.forgotten(), 10);
        // Still exact from the forgotten MODSEQ on.
        let recent = expunged.since(10, 10_000, []);
        assert!(recent.exact);
        assert_eq!(recent.ranges.len(), KEPT);
        // Further back: every UID below UIDNEXT the folder lacks.
        let old = expunged.since(9, 9, [2, 4, 6, 7, 8]);
        assert!(!old.exact);
        assert_eq!(old.ranges, vec![(1, 1), (3, 3), (5, 5)]);
        assert_eq!(expunged.since(0, 4, []).ranges, vec![(1, 3)]);
        assert_eq!(expunged.since(0, 12, [1, 11]).ranges, vec![(2, 10)]);
        assert_eq!(expunged.since(0, 1, []).ranges, vec![]);
    }
}
