//! Wall-clock instants as they appear in signed records (log heads,
//! presence, notifications) and leases.
//!
//! Milliseconds since the UNIX epoch in a `u64`: a plain integer on the
//! wire, no time zones, no leap-second questions, room until year 584 million.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The lease everything is given by default: stored objects, records
/// (heads, certificates, presence) and buffered notifications. Long enough
/// to cover a node switched off for months (its owner's node renews at
/// least every `renew_after`, well inside it). Each service's setting
/// starts from this one value.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(180 * 24 * 3600);

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// The epoch itself.
    pub const EPOCH: Timestamp = Timestamp(0);

    pub const fn from_millis(millis: u64) -> Self {
        Timestamp(millis)
    }

    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// The system clock now. A clock set before 1970 reads as the epoch
    /// rather than failing: callers compare timestamps, and "very old" is
    /// the safe reading of a broken clock.
    ///
    /// `EPOST_CLOCK_SKEW_SECS` (signed seconds, read once) shifts it: fault
    /// tests run one node with a wrong clock that way, with no privileges
    /// and no LD_PRELOAD shim. Unset or unparsable: no shift.
    pub fn now() -> Self {
        let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        let millis = u64::try_from(since.as_millis()).unwrap_or(u64::MAX);
        let skew = clock_skew_millis();
        Timestamp(if skew >= 0 {
            millis.saturating_add(skew.unsigned_abs())
        } else {
            millis.saturating_sub(skew.unsigned_abs())
        })
    }

    /// `self + duration`, or `None` past `u64::MAX` milliseconds.
    pub fn checked_add(self, duration: Duration) -> Option<Self> {
        let millis = u64::try_from(duration.as_millis()).ok()?;
        self.0.checked_add(millis).map(Timestamp)
    }

    /// `self + duration`, stopping at the largest timestamp.
    pub fn saturating_add(self, duration: Duration) -> Self {
        self.checked_add(duration).unwrap_or(Timestamp(u64::MAX))
    }

    /// How long after `earlier` this is, or `None` if it is before it.
    pub fn duration_since(self, earlier: Timestamp) -> Option<Duration> {
        self.0.checked_sub(earlier.0).map(Duration::from_millis)
    }
}

/// The process-wide clock shift from `EPOST_CLOCK_SKEW_SECS`, in ms.
fn clock_skew_millis() -> i64 {
    static SKEW: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *SKEW.get_or_init(|| {
        std::env::var("EPOST_CLOCK_SKEW_SECS")
            .ok()
            .and_then(|text| text.trim().parse::<i64>().ok())
            .map_or(0, |secs| secs.saturating_mul(1000))
    })
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic() {
        let t = Timestamp::from_millis(1_000);
        assert_eq!(t.as_millis(), 1_000);
        assert_eq!(t.checked_add(Duration::from_secs(2)), Some(Timestamp(3_000)));
        assert_eq!(Timestamp(u64::MAX).checked_add(Duration::from_millis(1)), None);
        assert_eq!(Timestamp(u64::MAX - 1).saturating_add(Duration::MAX), Timestamp(u64::MAX));
        assert_eq!(Timestamp(3_000).duration_since(t), Some(Duration::from_secs(2)));
        assert_eq!(t.duration_since(Timestamp(3_000)), None);
        assert!(Timestamp::now() > Timestamp::from_millis(1_600_000_000_000));
    }

    #[test]
    fn serializes_as_a_bare_integer() {
        assert_eq!(serde_json::to_string(&Timestamp(42)).ok().as_deref(), Some("42"));
        let cbor = crate::cbor::encode(&Timestamp(42));
        assert_eq!(cbor, [0x18, 42]);
    }
}
