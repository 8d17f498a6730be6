//! When a queued message is tried again, when the sender hears that it is
//! late, and when it is given up on: pure functions of the clock and the
//! message's history, with Postfix's defaults.

use std::time::Duration;

use epost_types::time::Timestamp;
use serde::{Deserialize, Serialize};

/// The retry schedule (Postfix: `minimal_backoff_time`,
/// `maximal_backoff_time`, `maximal_queue_lifetime`, `delay_warning_time`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// The wait after the first failed attempt; it doubles after each.
    pub min_backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
    /// A recipient still pending this long after the enqueue fails.
    pub lifetime: Duration,
    /// A recipient still pending this long after the enqueue gets one
    /// "delayed" DSN (zero: never).
    pub delay_warning: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            min_backoff: Duration::from_secs(300),
            max_backoff: Duration::from_secs(4000),
            lifetime: Duration::from_secs(5 * 24 * 3600),
            delay_warning: Duration::from_secs(4 * 3600),
        }
    }
}

/// What to do with a message after a pass tried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Its pending recipients are past the lifetime: they fail now.
    pub expire: bool,
    /// Its sender is told of the delay now.
    pub warn_delay: bool,
    /// When the pending recipients are tried again (if not expired).
    pub next_attempt: Timestamp,
}

impl Schedule {
    /// The wait after `attempts` failed attempts (at least one):
    /// `min_backoff` doubled each time, never above `max_backoff`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        self.min_backoff.saturating_mul(1u32 << doublings).min(self.max_backoff)
    }

    /// The plan for a message queued at `queued_at` that still has pending
    /// recipients after its `attempts`th attempt, at `now`.
    pub fn plan(
        &self,
        queued_at: Timestamp,
        now: Timestamp,
        attempts: u32,
        delay_warned: bool,
    ) -> Plan {
        let age = Duration::from_millis(now.as_millis().saturating_sub(queued_at.as_millis()));
        let expire = age >= self.lifetime;
        let warn_delay =
            !expire && !delay_warned && !self.delay_warning.is_zero() && age >= self.delay_warning;
        let next_attempt = now.checked_add(self.backoff(attempts)).unwrap_or(now);
        Plan { expire, warn_delay, next_attempt }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;
    const HOUR: u64 = 60 * MIN;

    #[test]
    fn backoff_doubles_from_300_s_to_4000_s() {
        let s = Schedule::default();
        let table = [(0, 300), (1, 300), (2, 600), (3, 1200), (4, 2400), (5, 4000), (6, 4000)];
        for (attempts, secs) in table {
            assert_eq!(s.backoff(attempts), Duration::from_secs(secs), "after {attempts}");
        }
        assert_eq!(s.backoff(u32::MAX), Duration::from_secs(4000));
    }

    #[test]
    fn plans_by_age() {
        let s = Schedule::default();
        let t0 = Timestamp::from_millis(1_000_000);
        let at = |ms: u64| Timestamp::from_millis(t0.as_millis() + ms);
        // (age, attempts, warned) -> (expire, warn, next attempt after now)
        let table = [
            (0, 1, false, false, false, 300_000),
            (HOUR, 3, false, false, false, 1_200_000),
            (4 * HOUR - 1, 8, false, false, false, 4_000_000),
            (4 * HOUR, 8, false, false, true, 4_000_000),
            (4 * HOUR, 8, true, false, false, 4_000_000),
            (119 * HOUR, 20, true, false, false, 4_000_000),
            (120 * HOUR, 20, true, true, false, 4_000_000),
            (120 * HOUR, 20, false, true, false, 4_000_000),
        ];
        for (age, attempts, warned, expire, warn, wait) in table {
            let plan = s.plan(t0, at(age), attempts, warned);
            assert_eq!(
                plan,
                Plan { expire, warn_delay: warn, next_attempt: at(age + wait) },
                "age {age} ms, {attempts} attempts, warned {warned}"
            );
        }
    }

    #[test]
    fn no_delay_warning_when_switched_off_and_a_clock_gone_back_is_age_zero() {
        let s = Schedule { delay_warning: Duration::ZERO, ..Schedule::default() };
        let t0 = Timestamp::from_millis(10 * HOUR);
        assert!(!s.plan(t0, Timestamp::from_millis(20 * HOUR), 1, false).warn_delay);
        let back = s.plan(t0, Timestamp::from_millis(HOUR), 1, false);
        assert!(!back.expire && !back.warn_delay);
    }
}
