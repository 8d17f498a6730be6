//! Per-peer token buckets: a peer may send `rate` notifications a second
//! sustained and `burst` at once. One flooding peer is refused while the
//! others' buckets are untouched. The table of peers is bounded: when it
//! is full, the peer that has been quiet longest (fullest bucket) is
//! forgotten, which costs it nothing but a fresh full bucket.

use std::collections::HashMap;

use epost_dht::PeerId;
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
}
