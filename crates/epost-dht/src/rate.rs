//! Per-peer token buckets for inbound requests, without I/O: the caller
//! passes the time, so the decisions are table-tested without a clock.
//!
//! Each peer may make `per_sec` requests a second sustained and `burst` at
//! once. A request past that is refused (the protocol's `Busy` or
//! `RateLimited` answer), and counted as *excess*, which drains at half
//! `per_sec`: a peer whose excess grows past a burst (it keeps asking at
//! more than one and a half times its rate, refusals notwithstanding, or
//! sends more than two bursts at once) is [`Verdict::Flood`], for the
//! caller to disconnect and briefly block. An honest peer told to slow
//! down asks another peer instead, so its excess never builds up.
//! Excess is capped at two bursts, so a peer back from its block is on
//! probation for at most `4 * burst / per_sec` seconds, and its requests
//! still in flight when it was blocked find its bucket empty.
//!
//! The table of peers is bounded: a peer whose bucket is full again and
//! whose excess has drained is forgotten first (starting afresh gives it
//! exactly that); if every tracked peer is still active, the one with the
//! most tokens left (the quietest) is forgotten, never a flooding one.

use std::collections::HashMap;
use std::time::Instant;

use libp2p::PeerId;

/// How fast one peer may ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests a second, sustained (at least 1).
    pub per_sec: u32,
    /// Requests at once after a quiet spell (at least 1).
    pub burst: u32,
}

impl Rate {
    pub const fn new(per_sec: u32, burst: u32) -> Self {
        Self { per_sec, burst }
    }

    fn per_sec(self) -> f64 {
        f64::from(self.per_sec.max(1))
    }

    fn burst(self) -> f64 {
        f64::from(self.burst.max(1))
    }
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Within the peer's rate: serve it.
    Allow,
    /// Over the rate: refuse it, clearly.
    Refuse,
    /// Far over the rate: refuse it, and stop talking to the peer for a while.
    Flood,
}

/// One peer's state.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    excess: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Self {
        Self { tokens: rate.burst(), excess: 0.0, at: now }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let gained = now.saturating_duration_since(self.at).as_secs_f64() * rate.per_sec();
        self.tokens = (self.tokens + gained).min(rate.burst());
        self.excess = (self.excess - gained / 2.0).max(0.0);
        self.at = self.at.max(now);
    }

    fn take(&mut self, rate: Rate, now: Instant) -> Verdict {
        self.refill(rate, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Allow;
        }
        // Capped, so a peer that flooded is on probation for a while after
        // its block, not for ever.
        self.excess = (self.excess + 1.0).min(2.0 * rate.burst());
        if self.excess > rate.burst() { Verdict::Flood } else { Verdict::Refuse }
    }

    /// Forgetting it changes nothing: a new bucket would be the same.
    fn idle(&mut self, rate: Rate, now: Instant) -> bool {
        self.refill(rate, now);
        self.tokens >= rate.burst() && self.excess <= 0.0
    }
}

/// The buckets of every peer that asked lately, at most `max_peers`.
#[derive(Debug)]
pub(crate) struct PeerRates {
    rate: Rate,
    max_peers: usize,
    buckets: HashMap<PeerId, Bucket>,
}

impl PeerRates {
    pub(crate) fn new(rate: Rate, max_peers: usize) -> Self {
        Self { rate, max_peers: max_peers.max(1), buckets: HashMap::new() }
    }

    /// Takes one token from `peer`'s bucket at `now`.
    pub(crate) fn check(&mut self, peer: PeerId, now: Instant) -> Verdict {
        if !self.buckets.contains_key(&peer) && self.buckets.len() >= self.max_peers {
            self.make_room(now);
        }
        let rate = self.rate;
        self.buckets.entry(peer).or_insert_with(|| Bucket::full(rate, now)).take(rate, now)
    }

    /// Peers tracked now.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.buckets.len()
    }

    fn make_room(&mut self, now: Instant) {
        let rate = self.rate;
        self.buckets.retain(|_, bucket| !bucket.idle(rate, now));
        if self.buckets.len() < self.max_peers {
            return;
        }
        // Every peer is active: forget the quietest, never one with excess.
        let quietest = self
            .buckets
            .iter()
            .filter(|(_, b)| b.excess <= 0.0)
            .max_by(|a, b| a.1.tokens.total_cmp(&b.1.tokens))
            .map(|(peer, _)| *peer);
        match quietest {
            Some(peer) => {
                self.buckets.remove(&peer);
            }
            // All of them are over their rate: the newcomer shares the
            // fate of the one with the least excess.
            None => {
                let least = self
                    .buckets
                    .iter()
                    .min_by(|a, b| a.1.excess.total_cmp(&b.1.excess))
                    .map(|(peer, _)| *peer);
                if let Some(peer) = least {
                    self.buckets.remove(&peer);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn peer(n: u8) -> PeerId {
        crate::peer_id_of([n; 32]).unwrap()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    use Verdict::{Allow, Flood, Refuse};

    /// (what happens, at what offset from the start, the verdicts expected)
    /// for one peer at 10 a second and a burst of 4.
    #[test]
    fn one_peer_over_time() {
        /// (ms from the start, requests then)
        type Steps = &'static [(u64, usize)];
        let cases: &[(&str, Steps, &[Verdict])] = &[
            ("a burst is served", &[(0, 4)], &[Allow, Allow, Allow, Allow]),
            ("past the burst is refused", &[(0, 6)], &[Allow, Allow, Allow, Allow, Refuse, Refuse]),
            (
                "more than two bursts at once is a flood",
                &[(0, 9)],
                &[Allow, Allow, Allow, Allow, Refuse, Refuse, Refuse, Refuse, Flood],
            ),
            (
                "a token comes back every 100 ms",
                &[(0, 5), (100, 1)],
                &[Allow, Allow, Allow, Allow, Refuse, Allow],
            ),
            (
                "at the rate, sustained, all is served",
                &[(0, 1), (100, 1), (200, 1), (300, 1)],
                &[Allow, Allow, Allow, Allow],
            ),
            (
                "a quiet second refills the whole burst",
                &[(0, 4), (1000, 4)],
                &[Allow, Allow, Allow, Allow, Allow, Allow, Allow, Allow],
            ),
            (
                // 4 refused (excess 4) drain to 2 over 400 ms: not a flood.
                "excess drains: refused then quiet is not a flood",
                &[(0, 8), (400, 4), (400, 1)],
                &[
                    Allow, Allow, Allow, Allow, Refuse, Refuse, Refuse, Refuse, Allow, Allow,
                    Allow, Allow, Refuse,
                ],
            ),
            (
                // At 30 a second against 10: 20 excess a second, 5 drained.
                "three times the rate for a third of a second floods",
                &[(0, 4), (100, 3), (200, 3), (300, 3), (400, 3), (500, 3)],
                &[
                    Allow, Allow, Allow, Allow, // burst
                    Allow, Refuse, Refuse, // excess 2
                    Allow, Refuse, Refuse, // 3.5 (half a token drained)
                    Allow, Refuse, Flood, // 5 > 4
                    Allow, Flood, Flood, Allow, Flood, Flood,
                ],
            ),
        ];
        for (what, steps, expected) in cases {
            let start = Instant::now();
            let mut rates = PeerRates::new(Rate::new(10, 4), 16);
            let mut got = Vec::new();
            for (at, count) in *steps {
                for _ in 0..*count {
                    got.push(rates.check(peer(1), start + ms(*at)));
                }
            }
            assert_eq!(&got[..], *expected, "{what}");
        }
    }

    #[test]
    fn peers_have_their_own_buckets() {
        let start = Instant::now();
        let mut rates = PeerRates::new(Rate::new(1, 2), 16);
        let verdicts: Vec<_> =
            [1, 1, 1, 2, 2, 2].iter().map(|n| rates.check(peer(*n), start)).collect();
        assert_eq!(verdicts, [Allow, Allow, Refuse, Allow, Allow, Refuse]);
    }

    #[test]
    fn a_flooder_is_on_probation_for_a_bounded_time() {
        let start = Instant::now();
        let mut rates = PeerRates::new(Rate::new(10, 2), 16);
        let mut verdicts = Vec::new();
        for _ in 0..1000 {
            verdicts.push(rates.check(peer(1), start));
        }
        assert_eq!(&verdicts[..6], &[Allow, Allow, Refuse, Refuse, Flood, Flood]);
        assert!(verdicts[6..].iter().all(|v| *v == Flood));
        // Excess was capped at 4: 800 ms later it is all drained, and the
        // bucket full.
        let later = start + ms(800);
        let back: Vec<_> = (0..3).map(|_| rates.check(peer(1), later)).collect();
        assert_eq!(back, [Allow, Allow, Refuse]);
    }

    #[test]
    fn the_table_is_bounded_and_keeps_the_flooders() {
        let start = Instant::now();
        let mut rates = PeerRates::new(Rate::new(1, 3), 3);
        // Three peers: 1 floods, 2 spent one token, 3 spent all three.
        for _ in 0..5 {
            rates.check(peer(1), start);
        }
        rates.check(peer(2), start);
        for _ in 0..3 {
            rates.check(peer(3), start);
        }
        assert_eq!(rates.len(), 3);
        // A newcomer pushes out the quietest (2), not the flooder.
        assert_eq!(rates.check(peer(4), start), Allow);
        assert_eq!(rates.len(), 3);
        assert_eq!(rates.check(peer(1), start), Refuse, "the flooder is still remembered");
        assert_eq!(rates.check(peer(2), start), Allow, "the quiet one starts afresh");
        // Once everyone is idle again, room is made without evicting anyone active.
        let later = start + Duration::from_secs(60);
        assert_eq!(rates.check(peer(9), later), Allow);
        assert_eq!(rates.len(), 1, "the idle buckets were all forgotten");
    }

    #[test]
    fn a_clock_that_steps_back_takes_nothing_away() {
        let start = Instant::now() + Duration::from_secs(10);
        let mut rates = PeerRates::new(Rate::new(10, 2), 4);
        assert_eq!(rates.check(peer(1), start), Allow);
        assert_eq!(rates.check(peer(1), start - Duration::from_secs(5)), Allow);
        assert_eq!(rates.check(peer(1), start), Refuse);
    }
}
