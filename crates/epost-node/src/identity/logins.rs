//! Checking gateway logins against the stored Argon2id hashes, at a
//! bounded cost. One check takes tens of milliseconds and 19 MiB, and
//! mail clients log in often (several connections each, again after
//! every drop), so:
//!
//! - at most [`CHECKERS`] checks run at once, each in working memory
//!   kept for the next one. A fresh 19 MiB per login is what the
//!   allocator kept, per thread, after the checks had ended: ten clients
//!   logging in over and over took the process from 100 MiB to 2 GiB.
//! - a login that succeeded is remembered for [`REMEMBER`] as a keyed
//!   hash of (address, stored hash, password) under a key made at start
//!   and held only in memory, so the same login again skips Argon2id (as
//!   Dovecot's auth cache does). Failures are never remembered. A new
//!   password is a new stored hash, so nothing remembered matches it; a
//!   removed user has no stored hash to check against at all.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use epost_types::address::Address;
use epost_types::identity::password::{self, HashMemory};
use ring::hmac;
use ring::rand::SystemRandom;

/// Checks that may run at once (each holds 19 MiB while it runs).
pub(crate) const CHECKERS: usize = 2;
/// How long a successful login is remembered.
pub(crate) const REMEMBER: Duration = Duration::from_secs(15 * 60);
/// Successful logins remembered at most (about 80 bytes each).
const REMEMBERED: usize = 10_000;

/// A remembered login: HMAC-SHA256 of what was checked.
type Tag = [u8; 32];

/// The logins checker of one node.
pub(crate) struct Logins {
    key: hmac::Key,
    remembered: Mutex<Remembered>,
    /// Working memory not in use, and how many checkers exist.
    memory: Mutex<(Vec<HashMemory>, usize)>,
    freed: Condvar,
}

impl Logins {
    pub(crate) fn new() -> Self {
        // Without a random key nothing could be remembered safely: a key
        // of zeros would still hide passwords from a casual reader, but a
        // failing system RNG means worse trouble; the next start retries.
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new())
            .unwrap_or_else(|_| hmac::Key::new(hmac::HMAC_SHA256, &[0; 32]));
        Self {
            key,
            remembered: Mutex::new(Remembered::new(REMEMBERED, REMEMBER)),
            memory: Mutex::new((Vec::new(), 0)),
            freed: Condvar::new(),
        }
    }

    /// Whether `password` is `address`'s, whose stored hash is `phc`.
    /// Blocks (waiting for a free checker, then hashing): call it off the
    /// async workers.
    pub(crate) fn check(&self, address: &Address, phc: &str, password: &str) -> bool {
        let tag = self.tag(address, phc, password);
        if lock(&self.remembered).knows(&tag, Instant::now()) {
            return true;
        }
        let mut memory = self.take_memory();
        let good = password::verify_password_in(phc, password, &mut memory);
        self.give_back(memory);
        if good {
            lock(&self.remembered).remember(tag, Instant::now());
        }
        good
    }

    fn tag(&self, address: &Address, phc: &str, password: &str) -> Tag {
        let mut context = hmac::Context::with_key(&self.key);
        // Length-prefixed, so no two different triples read the same.
        for part in [address.to_string().as_bytes(), phc.as_bytes(), password.as_bytes()] {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        let mut tag = [0u8; 32];
        tag.copy_from_slice(context.sign().as_ref());
        tag
    }

    fn take_memory(&self) -> HashMemory {
        let mut pool = lock(&self.memory);
        loop {
            if let Some(memory) = pool.0.pop() {
                return memory;
            }
            if pool.1 < CHECKERS {
                pool.1 += 1;
                return HashMemory::new();
            }
            pool = self.freed.wait(pool).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn give_back(&self, memory: HashMemory) {
        lock(&self.memory).0.push(memory);
        self.freed.notify_one();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update is a single insert or pop: a panic cannot leave a
    // half-made value, so a poisoned lock is still usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Remembered logins: each for `ttl` from when it was checked, at most
/// `max` of them (the oldest go first). Time is passed in: the decisions
/// are pure.
struct Remembered {
    max: usize,
    ttl: Duration,
    at: HashMap<Tag, Instant>,
    order: VecDeque<(Tag, Instant)>,
}

impl Remembered {
    fn new(max: usize, ttl: Duration) -> Self {
        Self { max, ttl, at: HashMap::new(), order: VecDeque::new() }
    }

    fn knows(&mut self, tag: &Tag, now: Instant) -> bool {
        self.expire(now);
        self.at.contains_key(tag)
    }

    fn remember(&mut self, tag: Tag, now: Instant) {
        self.expire(now);
        if !self.at.contains_key(&tag) {
            while self.at.len() >= self.max {
                let Some((oldest, when)) = self.order.pop_front() else { break };
                if self.at.get(&oldest) == Some(&when) {
                    self.at.remove(&oldest);
                }
            }
        }
        // A tag checked again starts its time anew; its older place in
        // the queue is skipped when it comes up.
        self.at.insert(tag, now);
        self.order.push_back((tag, now));
    }

    fn expire(&mut self, now: Instant) {
        while let Some((tag, when)) = self.order.front().copied() {
            if now.duration_since(when) < self.ttl && self.order.len() <= 2 * self.max {
                break;
            }
            self.order.pop_front();
            if self.at.get(&tag) == Some(&when) {
                self.at.remove(&tag);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use epost_types::identity::password::{Argon2idParams, hash_password_with};

    #[test]
    fn remembered_logins_expire_and_the_oldest_go_first() {
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);
        let mut r = Remembered::new(2, Duration::from_secs(10));
        r.remember([1; 32], at(0));
        assert!(r.knows(&[1; 32], at(9)), "within its time");
        assert!(!r.knows(&[1; 32], at(10)), "its time is up");
        r.remember([1; 32], at(10));
        r.remember([2; 32], at(11));
        r.remember([3; 32], at(12)); // over the bound: 1 goes
        assert!(!r.knows(&[1; 32], at(12)));
        assert!(r.knows(&[2; 32], at(12)) && r.knows(&[3; 32], at(12)));
        r.remember([2; 32], at(15)); // checked again: its time starts anew
        assert!(r.knows(&[2; 32], at(24)), "renewed at 15");
        assert!(!r.knows(&[3; 32], at(24)), "expired at 22");
        assert!(r.at.len() <= 2 && r.order.len() <= 4);
    }

    #[test]
    fn only_right_passwords_are_remembered_and_a_new_hash_matches_nothing() {
        let tiny = Argon2idParams { m_cost: 64, t_cost: 1, p_cost: 1 };
        let logins = Logins::new();
        let alice: Address = "alice@example.test".parse().unwrap();
        let old = hash_password_with("old-pw", tiny).unwrap();
        let new = hash_password_with("new-pw", tiny).unwrap();
        let remembered = |l: &Logins, phc: &str, pw: &str| {
            lock(&l.remembered).knows(&l.tag(&alice, phc, pw), Instant::now())
        };
        assert!(!logins.check(&alice, &old, "wrong"));
        assert!(!remembered(&logins, &old, "wrong"), "a failure is never remembered");
        assert!(logins.check(&alice, &old, "old-pw"));
        assert!(remembered(&logins, &old, "old-pw"));
        // After a password change the stored hash is another.
        assert!(!logins.check(&alice, &new, "old-pw"));
        assert!(logins.check(&alice, &new, "new-pw"));
        let bob: Address = "bob@example.test".parse().unwrap();
        assert_ne!(logins.tag(&alice, &old, "old-pw"), logins.tag(&bob, &old, "old-pw"));
        // The working memory came back to the pool each time.
        let pool = lock(&logins.memory);
        assert_eq!((pool.0.len(), pool.1), (1, 1));
    }
}
