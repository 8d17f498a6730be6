//! Per-peer token buckets: a peer may send `rate` notifications a second
//! sustained and `burst` at once. One flooding peer is refused while the
//! others' buckets are untouched. The table of peers is bounded: when it
//! is full, the peer that has been quiet longest (fullest bucket) is
//! forgotten, which costs it nothing but a fresh full bucket.
//!
//! And per-sender buckets on the receiving side ([`SenderLimits`]), spent
//! only by notifications whose sender checked out.

use std::collections::HashMap;

use std::time::Duration;

use epost_dht::PeerId;
use epost_types::address::Address;
use tokio::time::Instant;

pub(crate) struct RateLimiter {
    rate: f64,
    burst: f64,
    max_peers: usize,
    buckets: HashMap<PeerId, Bucket>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    pub(crate) fn new(rate_per_sec: u32, burst: u32, max_peers: usize) -> Self {
        Self {
            rate: f64::from(rate_per_sec),
            burst: f64::from(burst),
            max_peers: max_peers.max(1),
            buckets: HashMap::new(),
        }
    }

    /// Takes `cost` tokens from `peer`'s bucket if it has them; a refused
    /// request takes nothing.
    pub(crate) fn allow(&mut self, peer: PeerId, cost: u32, now: Instant) -> bool {
        if !self.buckets.contains_key(&peer) && self.buckets.len() >= self.max_peers {
            self.prune(now);
            if self.buckets.len() >= self.max_peers {
                self.forget_quietest(now);
            }
        }
        let (rate, burst) = (self.rate, self.burst);
        let bucket = self.buckets.entry(peer).or_insert(Bucket { tokens: burst, at: now });
        bucket.refill(rate, burst, now);
        let cost = f64::from(cost);
        if bucket.tokens >= cost {
            bucket.tokens -= cost;
            true
        } else {
            false
        }
    }

    /// Forgets peers whose bucket is full again (they would start afresh
    /// with exactly that).
    pub(crate) fn prune(&mut self, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        self.buckets.retain(|_, bucket| {
            bucket.refill(rate, burst, now);
            bucket.tokens < burst
        });
    }

    fn forget_quietest(&mut self, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        let quietest = self
            .buckets
            .iter_mut()
            .map(|(peer, bucket)| {
                bucket.refill(rate, burst, now);
                (*peer, bucket.tokens)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(peer, _)| peer);
        if let Some(peer) = quietest {
            self.buckets.remove(&peer);
        }
    }

    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

impl Bucket {
    fn refill(&mut self, rate: f64, burst: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.at = now;
    }
}

/// Notifications handled from one sender per second, sustained, per user.
const SENDER_RATE: f64 = 100.0;
/// ... and at once after a quiet spell.
const SENDER_BURST: f64 = 200.0;

/// Per-sender token buckets of one recipient.
pub(crate) struct SenderLimits {
    buckets: HashMap<Address, (f64, Instant)>,
}

impl SenderLimits {
    pub(crate) fn new() -> Self {
        Self { buckets: HashMap::new() }
    }

    /// Whether `sender` has budget left for one more notification. Only
    /// [`Self::spend`] uses it up, once the notification proved to come
    /// from that sender: forgeries that merely claim a sender must not eat
    /// the real sender's budget.
    pub(crate) fn has_room(&mut self, sender: &Address) -> bool {
        let now = Instant::now();
        if self.buckets.len() > 4096 {
            self.buckets.retain(|_, (_, at)| now.duration_since(*at) < Duration::from_secs(60));
        }
        let (tokens, at) = self.buckets.entry(sender.clone()).or_insert((SENDER_BURST, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * SENDER_RATE).min(SENDER_BURST);
        *at = now;
        *tokens >= 1.0
    }

    pub(crate) fn spend(&mut self, sender: &Address) {
        if let Some((tokens, _)) = self.buckets.get_mut(sender) {
            *tokens = (*tokens - 1.0).max(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8) -> PeerId {
        epost_dht::peer_id_of([n; 32]).unwrap()
    }

    #[test]
    fn a_flooding_peer_is_refused_and_others_are_not() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(200, 400, 16);
        let (flood, quiet) = (peer(1), peer(2));
        let mut allowed = 0;
        for _ in 0..100 {
            if limiter.allow(flood, 64, start) {
                allowed += 64;
            }
        }
        assert_eq!(allowed, 384, "the burst, in whole batches");
        assert!(!limiter.allow(flood, 64, start));
        assert!(limiter.allow(quiet, 64, start), "another peer has its own bucket");
        // A refused request took nothing: 16 tokens left, 64 more after 0.32 s.
        assert!(limiter.allow(flood, 16, start));
        assert!(!limiter.allow(flood, 64, start + Duration::from_millis(300)));
        assert!(limiter.allow(flood, 64, start + Duration::from_millis(330)));
    }

    #[test]
    fn the_table_of_peers_is_bounded() {
        let start = Instant::now();
        let mut limiter = RateLimiter::new(10, 100, 4);
        for n in 0..4 {
            assert!(limiter.allow(peer(n), 100, start));
        }
        // Full of active peers: the quietest is forgotten for the newcomer.
        assert!(limiter.allow(peer(9), 1, start + Duration::from_secs(1)));
        assert_eq!(limiter.tracked(), 4);
        // Everyone refilled: pruning forgets them all.
        limiter.prune(start + Duration::from_secs(60));
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn only_verified_notifications_use_up_a_senders_budget() {
        let carol: Address = "carol@example.test".parse().unwrap();
        let mut limits = SenderLimits { buckets: HashMap::new() };
        // Forgeries claiming carol are looked at but never spent.
        for _ in 0..10 * SENDER_BURST as usize {
            assert!(limits.has_room(&carol));
        }
        // Her own notifications spend it, down to the burst.
        let mut spent = 0;
        while limits.has_room(&carol) && spent < 10 * SENDER_BURST as usize {
            limits.spend(&carol);
            spent += 1;
        }
        assert!(spent >= SENDER_BURST as usize && spent < SENDER_BURST as usize + 50, "{spent}");
    }
}
