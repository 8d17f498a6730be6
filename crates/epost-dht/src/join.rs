//! Staying joined to the overlay, decided without I/O: when a node with no
//! connection dials its known peers again, and what it says about it.
//!
//! A node comes up whether or not any peer answers (only a misconfigured
//! address stops it). While it has no connection it redials every peer it
//! knows of (configured bootstrap peers, those remembered from its last
//! run, and its routing table) with exponential backoff from 1 s to 60 s,
//! jittered so that nodes which lost the same peer do not all come back at
//! once. The first connection, inbound or outbound, ends the retrying;
//! losing the last one starts it again.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// First wait after a round of dials found nobody.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
/// Longest wait between rounds.
pub const MAX_RETRY: Duration = Duration::from_secs(60);

/// Whether this node is part of an overlay, as status reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Joining {
    /// At least one peer is connected.
    Joined,
    /// Alone with no peer to dial: the first node of a network, waiting for
    /// others to dial it.
    Alone,
    /// No peer answers; the known ones are dialled again with backoff.
    Retrying {
        /// Rounds of dials that found nobody, since the last connection.
        attempts: u32,
        /// Until the next round.
        next_in_secs: u64,
        /// Why the last dial failed, if one did.
        last_error: Option<String>,
    },
}

/// The retry schedule of one node.
#[derive(Debug)]
pub(crate) struct Joiner {
    connected: bool,
    attempts: u32,
    due: Option<Instant>,
    last_error: Option<String>,
}

impl Joiner {
    /// After the first contact at start: joined, or retrying from now.
    pub(crate) fn new(connected: bool, now: Instant) -> Self {
        let mut joiner = Self { connected, attempts: 0, due: None, last_error: None };
        if !connected {
            joiner.due = Some(now + FIRST_RETRY);
        }
        joiner
    }

    /// A connection is up: nothing to retry. True if the node was alone
    /// until now (so its routing table wants refreshing).
    pub(crate) fn on_connected(&mut self) -> bool {
        let rejoined = !self.connected;
        self.connected = true;
        self.attempts = 0;
        self.due = None;
        self.last_error = None;
        rejoined
    }

    /// Rounds of dials that found nobody, since the last connection.
    pub(crate) fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The last connection closed: retry soon.
    pub(crate) fn on_alone(&mut self, now: Instant) {
        if self.connected {
            self.connected = false;
            self.attempts = 0;
            self.due = Some(now + FIRST_RETRY);
        }
    }

    /// A dial failed; kept to be shown while no peer is connected.
    pub(crate) fn on_dial_error(&mut self, detail: String) {
        if !self.connected {
            self.last_error = Some(detail);
        }
    }

    /// When the next round of dials is due, if one is.
    pub(crate) fn due(&self) -> Option<Instant> {
        self.due
    }

    /// A round is due now: returns whether to dial (not once a connection
    /// came up meanwhile) and schedules the next one. `jitter` in `[0, 1)`
    /// stretches the wait by up to a fifth.
    pub(crate) fn fire(&mut self, now: Instant, jitter: f64) -> bool {
        if self.connected {
            self.due = None;
            return false;
        }
        self.attempts = self.attempts.saturating_add(1);
        self.due = Some(now + retry_delay(self.attempts, jitter));
        true
    }

    /// What status shows; `dialable` is how many peers there are to try.
    pub(crate) fn status(&self, now: Instant, dialable: usize) -> Joining {
        if self.connected {
            return Joining::Joined;
        }
        if dialable == 0 {
            return Joining::Alone;
        }
        match self.due {
            Some(due) => Joining::Retrying {
                attempts: self.attempts,
                next_in_secs: due.saturating_duration_since(now).as_secs(),
                last_error: self.last_error.clone(),
            },
            None => Joining::Alone,
        }
    }
}

/// The wait after `attempts` rounds that found nobody: doubling from
/// [`FIRST_RETRY`] up to [`MAX_RETRY`], then stretched by `jitter / 5`.
pub(crate) fn retry_delay(attempts: u32, jitter: f64) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    let base = FIRST_RETRY.saturating_mul(1 << doublings).min(MAX_RETRY);
    base.mul_f64(1.0 + jitter.clamp(0.0, 1.0) / 5.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_up_to_a_minute() {
        let table = [
            (1, 0.0, 1_000),
            (2, 0.0, 2_000),
            (3, 0.0, 4_000),
            (6, 0.0, 32_000),
            (7, 0.0, 60_000),
            (40, 0.0, 60_000),
            (u32::MAX, 0.0, 60_000),
            (1, 0.5, 1_100),
            (7, 0.99, 71_880),
            (3, 7.0, 4_800),
        ];
        for (attempts, jitter, millis) in table {
            assert_eq!(
                retry_delay(attempts, jitter),
                Duration::from_millis(millis),
                "attempts {attempts}, jitter {jitter}"
            );
        }
    }

    #[test]
    fn a_node_alone_retries_until_a_peer_connects_and_again_once_it_is_gone() {
        let t0 = Instant::now();
        let mut joiner = Joiner::new(false, t0);
        assert_eq!(joiner.due(), Some(t0 + FIRST_RETRY));
        assert!(joiner.fire(t0 + FIRST_RETRY, 0.0));
        joiner.on_dial_error("connection refused".into());
        let t1 = t0 + FIRST_RETRY;
        assert_eq!(joiner.due(), Some(t1 + Duration::from_secs(1)));
        assert!(joiner.fire(t1 + Duration::from_secs(1), 0.0));
        assert_eq!(
            joiner.status(t1 + Duration::from_secs(1), 3),
            Joining::Retrying {
                attempts: 2,
                next_in_secs: 2,
                last_error: Some("connection refused".into())
            }
        );

        assert!(joiner.on_connected());
        assert!(!joiner.on_connected());
        assert_eq!(joiner.due(), None);
        assert_eq!(joiner.status(t1, 3), Joining::Joined);
        // A dial error while connected (another peer) is no news.
        joiner.on_dial_error("timeout".into());

        let t2 = t1 + Duration::from_secs(600);
        joiner.on_alone(t2);
        assert_eq!(joiner.due(), Some(t2 + FIRST_RETRY));
        assert_eq!(
            joiner.status(t2, 3),
            Joining::Retrying { attempts: 0, next_in_secs: 1, last_error: None }
        );
    }

    #[test]
    fn a_round_due_after_a_connection_came_up_dials_nobody() {
        let t0 = Instant::now();
        let mut joiner = Joiner::new(false, t0);
        assert!(joiner.on_connected());
        assert!(!joiner.fire(t0 + FIRST_RETRY, 0.0));
        assert_eq!(joiner.due(), None);
    }

    #[test]
    fn the_first_node_with_nobody_to_dial_is_alone() {
        let t0 = Instant::now();
        let mut joiner = Joiner::new(false, t0);
        assert!(joiner.fire(t0 + FIRST_RETRY, 0.0));
        assert_eq!(joiner.status(t0 + FIRST_RETRY, 0), Joining::Alone);
        assert_eq!(Joiner::new(true, t0).status(t0, 0), Joining::Joined);
    }
}
