//! The login throttle: failed logins slow down, then stop, the source
//! that made them, never the account. A source is a client IP and the
//! address it tried; past a few failures each further one waits before
//! its reply (200 ms more per failure, at most 2 s), and past the lockout
//! count that source's logins to that address are refused without a
//! password check until the window passes. An IP that fails for many
//! addresses (a spray) is stopped for all of them at five times the
//! lockout count. A stranger who knows alice's address locks out only
//! himself: alice, from an IP that has not failed for her, always gets
//! her password checked (as Dovecot's per-IP auth penalty does). On
//! loopback the IP says nothing (every local client shares it), so there
//! the address alone is the source and no spray count is kept: one local
//! script with a wrong password cannot lock out other local users.
//!
//! Time is tokio's, so tests can pause it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::context::Limits;

/// An IP that failed for many addresses is stopped at this many times
/// the per-address lockout.
const SPRAY_FACTOR: u32 = 5;

/// Most keys remembered; the oldest are dropped beyond this.
const MAX_KEYS: usize = 100_000;

/// Failed logins remembered per source (see the module docs).
pub struct Throttle {
    window: Duration,
    free_failures: u32,
    lockout: u32,
    state: Mutex<HashMap<Key, Failures>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// Failures for one address from one IP (`None`: loopback).
    Source(Option<IpAddr>, String),
    /// Failures from one IP, whatever the address.
    Ip(IpAddr),
}

struct Failures {
    count: u32,
    since: Instant,
}

/// What the throttle says about a login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Check the password.
    Allow,
    /// Refuse without checking: too many recent failures from this source.
    Locked,
}

impl Default for Throttle {
    fn default() -> Self {
        Limits::default().throttle()
    }
}

impl Throttle {
    pub fn new(window: Duration, free_failures: u32, lockout: u32) -> Self {
        Self { window, free_failures, lockout, state: Mutex::new(HashMap::new()) }
    }

    /// The keys an attempt counts under, each with its lockout count.
    fn keys(&self, ip: IpAddr, user: &str) -> Vec<(Key, u32)> {
        let user = user.to_ascii_lowercase();
        if ip.is_loopback() {
            return vec![(Key::Source(None, user), self.lockout)];
        }
        vec![
            (Key::Source(Some(ip), user), self.lockout),
            (Key::Ip(ip), self.lockout.saturating_mul(SPRAY_FACTOR)),
        ]
    }

    /// Whether to check this attempt's password at all.
    pub fn check(&self, ip: IpAddr, user: &str) -> Verdict {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let locked = self.keys(ip, user).iter().any(|(key, lockout)| {
            state
                .get(key)
                .is_some_and(|f| now.duration_since(f.since) < self.window && f.count >= *lockout)
        });
        state.retain(|_, f| now.duration_since(f.since) < self.window);
        if locked { Verdict::Locked } else { Verdict::Allow }
    }

    /// Records a failure; returns how long to wait before replying.
    pub fn failed(&self, ip: IpAddr, user: &str) -> Duration {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if state.len() >= MAX_KEYS {
            state.retain(|_, f| now.duration_since(f.since) < self.window);
        }
        let mut source = 0;
        for (key, _) in self.keys(ip, user) {
            let entry = state.entry(key.clone()).or_insert(Failures { count: 0, since: now });
            if now.duration_since(entry.since) >= self.window {
                *entry = Failures { count: 0, since: now };
            }
            entry.count += 1;
            if matches!(key, Key::Source(..)) {
                source = entry.count;
            }
        }
        let over = source.saturating_sub(self.free_failures);
        Duration::from_millis(u64::from(over.min(10)) * 200)
    }

    /// Forgets this source's failures for the address after a good login
    /// (what the IP failed for other addresses still counts).
    pub fn succeeded(&self, ip: IpAddr, user: &str) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for (key, _) in self.keys(ip, user) {
            if matches!(key, Key::Source(..)) {
                state.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_slow_then_lock_the_source_never_the_account() {
        let throttle = Throttle::new(Duration::from_secs(60), 2, 4);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(throttle.failed(ip, "a@x.test"), Duration::ZERO);
        assert_eq!(throttle.failed(ip, "a@x.test"), Duration::ZERO);
        assert!(throttle.failed(ip, "a@x.test") > Duration::ZERO);
        assert_eq!(throttle.check(ip, "a@x.test"), Verdict::Allow);
        throttle.failed(ip, "a@x.test");
        assert_eq!(throttle.check(ip, "a@x.test"), Verdict::Locked);
        // The account itself is not locked: from another IP, or from the
        // same IP for another address, the password is checked.
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert_eq!(throttle.check(other, "A@x.test"), Verdict::Allow);
        assert_eq!(throttle.check(ip, "b@x.test"), Verdict::Allow);
        // A good login from the other IP does not lift the guesser's lock.
        throttle.succeeded(other, "a@x.test");
        assert_eq!(throttle.check(ip, "a@x.test"), Verdict::Locked);
    }

    #[test]
    fn an_ip_spraying_many_addresses_is_stopped_for_all_of_them() {
        let throttle = Throttle::new(Duration::from_secs(60), 2, 4);
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        // 19 failures over 19 addresses: none reaches its own lockout.
        for i in 0..19 {
            throttle.failed(ip, &format!("u{i}@x.test"));
        }
        assert_eq!(throttle.check(ip, "fresh@x.test"), Verdict::Allow);
        throttle.failed(ip, "u19@x.test");
        assert_eq!(throttle.check(ip, "fresh@x.test"), Verdict::Locked);
        // A good login of its own does not reset the spray count.
        throttle.succeeded(ip, "mine@x.test");
        assert_eq!(throttle.check(ip, "mine@x.test"), Verdict::Locked);
        let other: IpAddr = "192.0.2.10".parse().unwrap();
        assert_eq!(throttle.check(other, "u1@x.test"), Verdict::Allow);
    }

    #[tokio::test(start_paused = true)]
    async fn delays_grow_then_a_lockout_lasts_one_window() {
        let limits = Limits {
            login_window: Duration::from_secs(60),
            login_free_failures: 1,
            login_lockout: 4,
            ..Limits::default()
        };
        let throttle = limits.throttle();
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let delays: Vec<Duration> = (0..4).map(|_| throttle.failed(ip, "a@x.test")).collect();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(delays, [ms(0), ms(200), ms(400), ms(600)]);
        assert_eq!(throttle.check(ip, "a@x.test"), Verdict::Locked);
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(throttle.check(ip, "a@x.test"), Verdict::Locked);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(throttle.check(ip, "a@x.test"), Verdict::Allow);
        // The count starts again from nothing.
        assert_eq!(throttle.failed(ip, "a@x.test"), Duration::ZERO);
    }

    #[test]
    fn loopback_is_throttled_per_address_only() {
        let throttle = Throttle::new(Duration::from_secs(60), 0, 2);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        throttle.failed(ip, "a@x.test");
        throttle.failed(ip, "a@x.test");
        assert_eq!(throttle.check(ip, "a@x.test"), Verdict::Locked);
        assert_eq!(throttle.check(ip, "b@x.test"), Verdict::Allow);
        throttle.succeeded(ip, "a@x.test");
        assert_eq!(throttle.check(ip, "a@x.test"), Verdict::Allow);
    }
}
