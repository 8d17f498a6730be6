//! What every session shares: the backend, TLS, limits and the login
//! throttle.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

/// Size and time limits for every protocol.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest message (SMTP SIZE, IMAP APPEND literal), bytes.
    pub max_message: usize,
    /// Longest command line, bytes (data lines are bounded by max_message).
    pub max_line: usize,
    /// Longest IMAP command line, literals excluded, bytes. Longer than
    /// SMTP's: a legal ID, SEARCH or UID set is easily tens of kilobytes
    /// (Dovecot allows 64 KiB).
    pub max_imap_line: usize,
    /// Most messages in one IMAP APPEND (MULTIAPPEND, RFC 3502). They are
    /// stored as one change, which must fit one mail log entry.
    pub max_append_messages: usize,
    /// Most parts of one IMAP CATENATE (RFC 4469); each URL part is a
    /// message read.
    pub max_catenate_parts: usize,
    /// Most recipients of one SMTP transaction.
    pub max_recipients: usize,
    /// Most bad commands in a session before it is closed.
    pub max_errors: usize,
    /// A session with no input for this long is closed (IMAP IDLE included,
    /// as RFC 9051 allows after 30 minutes).
    pub idle_timeout: Duration,
    /// Once a command line (or an AUTH response) has begun, it must be
    /// complete within this long, however the bytes trickle in: a client
    /// sending one byte just inside the idle timeout cannot hold a session.
    pub command_timeout: Duration,
    /// Once message content (SMTP DATA or BDAT, an IMAP literal) has
    /// begun, it must be complete within this long.
    pub data_timeout: Duration,
    /// Most open sessions in all; more are refused at once, with the
    /// protocol's "try later" (SMTP 421, IMAP BYE, POP3 -ERR).
    pub max_sessions: usize,
    /// The login throttle: failures are remembered this long ...
    pub login_window: Duration,
    /// ... this many per address (and per non-loopback client) cost
    /// nothing, each further one is answered more slowly ...
    pub login_free_failures: u32,
    /// ... and from this many on, logins are refused without checking
    /// the password until the window has passed.
    pub login_lockout: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message: 25 * 1024 * 1024,
            max_line: 8 * 1024,
            max_imap_line: 64 * 1024,
            max_append_messages: 100,
            max_catenate_parts: 100,
            max_recipients: 100,
            max_errors: 20,
            idle_timeout: Duration::from_secs(30 * 60),
            command_timeout: Duration::from_secs(5 * 60),
            data_timeout: Duration::from_secs(30 * 60),
            max_sessions: 1024,
            login_window: Duration::from_secs(15 * 60),
            login_free_failures: 3,
            login_lockout: 10,
        }
    }
}

impl Limits {
    /// The login throttle these limits describe.
    pub fn throttle(&self) -> Throttle {
        Throttle::new(self.login_window, self.login_free_failures, self.login_lockout)
    }
}

/// Everything the sessions of one gateway share.
pub struct Shared<B> {
    pub backend: B,
    /// For STARTTLS/STLS; `None` disables them.
    pub tls: Option<TlsAcceptor>,
    pub limits: Limits,
    pub throttle: Throttle,
    /// The name the gateway greets with.
    pub hostname: String,
    /// Whether SMTP accepts mail for foreign domains from authenticated
    /// submitters (the backend queues them for delivery to other domains).
    pub relay_for_submitters: bool,
    /// Where `RCPT TO:<postmaster>` goes, if configured.
    pub postmaster: Option<epost_types::address::Address>,
    /// Checks of unauthenticated MX mail before delivery.
    pub inbound: Option<crate::inbound::InboundChecks>,
    /// Becomes true when the gateway shuts down; sessions finish the
    /// command at hand and say goodbye.
    pub stopped: tokio::sync::watch::Receiver<bool>,
    /// Which IMAP session has taken which messages as `\Recent`.
    pub(crate) recent: crate::imap::RecentClaims,
}

/// Failed logins remembered per address and per client IP. After a few
/// failures each further one waits before its reply (200 ms more per
/// failure, at most 2 s); past the lockout count, logins are refused
/// without checking the password until the window passes. Time is
/// tokio's, so tests can pause it. Loopback clients are throttled per address only, so
/// one local script with a wrong password cannot lock out local users.
pub struct Throttle {
    window: Duration,
    free_failures: u32,
    lockout: u32,
    state: Mutex<HashMap<Key, Failures>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Ip(IpAddr),
    User(String),
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
    /// Refuse without checking: too many recent failures.
    Locked,
}

/// Most keys remembered; the oldest are dropped beyond this.
const MAX_KEYS: usize = 100_000;

impl Default for Throttle {
    fn default() -> Self {
        Limits::default().throttle()
    }
}

impl Throttle {
    pub fn new(window: Duration, free_failures: u32, lockout: u32) -> Self {
        Self { window, free_failures, lockout, state: Mutex::new(HashMap::new()) }
    }

    fn keys(ip: IpAddr, user: &str) -> Vec<Key> {
        let mut keys = vec![Key::User(user.to_ascii_lowercase())];
        if !ip.is_loopback() {
            keys.push(Key::Ip(ip));
        }
        keys
    }

    /// Whether to check this attempt's password at all.
    pub fn check(&self, ip: IpAddr, user: &str) -> Verdict {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let locked = Self::keys(ip, user).iter().any(|key| {
            state.get(key).is_some_and(|f| {
                now.duration_since(f.since) < self.window && f.count >= self.lockout
            })
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
        let mut worst = 0;
        for key in Self::keys(ip, user) {
            let entry = state.entry(key).or_insert(Failures { count: 0, since: now });
            if now.duration_since(entry.since) >= self.window {
                *entry = Failures { count: 0, since: now };
            }
            entry.count += 1;
            worst = worst.max(entry.count);
        }
        let over = worst.saturating_sub(self.free_failures);
        Duration::from_millis(u64::from(over.min(10)) * 200)
    }

    /// Forgets the address's failures after a good login.
    pub fn succeeded(&self, user: &str) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.remove(&Key::User(user.to_ascii_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_slow_down_then_lock_and_a_good_login_clears_the_address() {
        let throttle = Throttle::new(Duration::from_secs(60), 2, 4);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(throttle.failed(ip, "a@x.test"), Duration::ZERO);
        assert_eq!(throttle.failed(ip, "a@x.test"), Duration::ZERO);
        assert!(throttle.failed(ip, "a@x.test") > Duration::ZERO);
        assert_eq!(throttle.check(ip, "a@x.test"), Verdict::Allow);
        throttle.failed(ip, "a@x.test");
        assert_eq!(throttle.check(ip, "a@x.test"), Verdict::Locked);
        // The IP is locked for other users too, but not another IP.
        assert_eq!(throttle.check(ip, "b@x.test"), Verdict::Locked);
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert_eq!(throttle.check(other, "b@x.test"), Verdict::Allow);
        throttle.succeeded("a@x.test");
        assert_eq!(throttle.check(other, "a@x.test"), Verdict::Allow);
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
    }
}
