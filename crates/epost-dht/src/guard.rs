//! The overlay's defences against a hostile peer, owned by the event loop
//! (`spec/security.md` section 3.6): the connection limits the behaviour
//! enforces, and why each refused connection was refused; the per-peer
//! rate of inbound Kademlia puts; the short blocks that flooding peers
//! earn, kept apart from the operator's own bans so that a block's end
//! never lifts a ban; and the counters the node shows in `/metrics`.
//!
//! Request rates of `/epost/frag/1` and `/epost/notify/1` are checked where
//! their requests arrive (`rpc`); this module keeps what they count.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use libp2p::swarm::ConnectionDenied;
use libp2p::{PeerId, allow_block_list, connection_limits, memory_connection_limits};

use crate::config::{ConnectionLimits, DhtConfig, RequestLimits};
use crate::rate::{PeerRates, Verdict};

/// Flooding peers blocked at once at most; past that the oldest block
/// ends early (each costs a table entry; a flood from more peers than
/// this is a job for the connection limits).
const MAX_BENCHED: usize = 1024;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionRefusal {
    /// Too many incoming connections in their handshake.
    PendingIncoming,
    /// Too many established incoming connections.
    Incoming,
    /// Too many connections with one peer.
    PerPeer,
    /// The process uses more memory than allowed.
    Memory,
    /// The peer is blocked (banned, or benched for flooding).
    Blocked,
    /// Another connection limit.
    OtherLimit,
}

impl ConnectionRefusal {
    pub const ALL: [Self; 6] = [
        Self::PendingIncoming,
        Self::Incoming,
        Self::PerPeer,
        Self::Memory,
        Self::Blocked,
        Self::OtherLimit,
    ];

    /// The name in metrics.
    pub const fn label(self) -> &'static str {
        match self {
            Self::PendingIncoming => "pending_incoming",
            Self::Incoming => "incoming",
            Self::PerPeer => "per_peer",
            Self::Memory => "memory",
            Self::Blocked => "blocked",
            Self::OtherLimit => "other_limit",
        }
    }

    /// What the behaviour's refusal says. libp2p's limit error keeps which
    /// limit it was to itself but for its text, so the text decides (a test
    /// in `tests` pins it against the real behaviour).
    pub(crate) fn of(cause: &ConnectionDenied) -> Self {
        if cause.downcast_ref::<allow_block_list::Blocked>().is_some() {
            return Self::Blocked;
        }
        if cause.downcast_ref::<memory_connection_limits::MemoryUsageLimitExceeded>().is_some() {
            return Self::Memory;
        }
        match cause.downcast_ref::<connection_limits::Exceeded>() {
            Some(exceeded) => Self::of_limit_text(&exceeded.to_string()),
            None => Self::OtherLimit,
        }
    }

    fn of_limit_text(text: &str) -> Self {
        if text.contains("pending incoming") {
            Self::PendingIncoming
        } else if text.contains("established incoming") {
            Self::Incoming
        } else if text.contains("per peer") {
            Self::PerPeer
        } else {
            Self::OtherLimit
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|r| *r == self).unwrap_or(Self::ALL.len() - 1)
    }
}

/// Inbound requests whose rate is limited per peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limited {
    /// `/epost/frag/1`.
    Frag,
    /// `/epost/notify/1`.
    Notify,
    /// Kademlia `PUT_VALUE`.
    KadPut,
}

impl Limited {
    pub const ALL: [Self; 3] = [Self::Frag, Self::Notify, Self::KadPut];

    /// The name in metrics.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Frag => "frag",
            Self::Notify => "notify",
            Self::KadPut => "kad_put",
        }
    }

    fn index(self) -> usize {
        match self {
            Self::Frag => 0,
            Self::Notify => 1,
            Self::KadPut => 2,
        }
    }
}

/// The overlay's defence counters, as the node's `/metrics` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefenceStats {
    refused: [u64; ConnectionRefusal::ALL.len()],
    throttled: [u64; Limited::ALL.len()],
    /// Peers blocked for flooding, since start.
    pub flood_blocks: u64,
    /// Peers blocked for flooding now.
    pub benched: u64,
}

impl DefenceStats {
    /// Connections refused for `why`, since start.
    pub fn connections_refused(&self, why: ConnectionRefusal) -> u64 {
        self.refused[why.index()]
    }

    /// Requests of `kind` refused (or dropped) over their peer's rate.
    pub fn throttled(&self, kind: Limited) -> u64 {
        self.throttled[kind.index()]
    }
}

/// Counted by the event loop, read by any [`DhtClient`](crate::DhtClient).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    refused: [AtomicU64; ConnectionRefusal::ALL.len()],
    throttled: [AtomicU64; Limited::ALL.len()],
    flood_blocks: AtomicU64,
    benched: AtomicU64,
    /// Woken at every change, for whoever waits on one.
    changed: tokio::sync::Notify,
}

impl Counters {
    pub(crate) fn refused(&self, why: ConnectionRefusal) {
        self.refused[why.index()].fetch_add(1, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    pub(crate) fn throttled(&self, kind: Limited) {
        self.throttled[kind.index()].fetch_add(1, Ordering::Relaxed);
        self.changed.notify_waiters();
    }

    /// Returns once `done` holds for the counters (at once if it does now).
    pub(crate) async fn until(&self, done: impl Fn(&DefenceStats) -> bool) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before the look, so no change is missed.
            changed.as_mut().enable();
            if done(&self.snapshot()) {
                return;
            }
            changed.await;
        }
    }

    pub(crate) fn snapshot(&self) -> DefenceStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DefenceStats {
            refused: self.refused.each_ref().map(load),
            throttled: self.throttled.each_ref().map(load),
            flood_blocks: load(&self.flood_blocks),
            benched: load(&self.benched),
        }
    }
}

/// libp2p's connection limits, from ours.
pub(crate) fn connection_limits(limits: &ConnectionLimits) -> connection_limits::Behaviour {
    connection_limits::Behaviour::new(
        connection_limits::ConnectionLimits::default()
            .with_max_established_incoming(Some(limits.max_incoming))
            .with_max_pending_incoming(Some(limits.max_pending_incoming))
            .with_max_established_per_peer(Some(limits.max_per_peer)),
    )
}

/// libp2p's memory limit, from ours.
pub(crate) fn memory_limit(limits: &ConnectionLimits) -> memory_connection_limits::Behaviour {
    let share = f64::from(limits.max_memory_percent.clamp(1, 100)) / 100.0;
    memory_connection_limits::Behaviour::with_max_percentage(share)
}

/// What the event loop does after [`Guard::bench`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Bench {
    /// Already blocked: nothing to do.
    Already,
    /// Block the peer now; unblock `released` (a bench cut short to make room).
    Block { released: Option<PeerId> },
}

/// The event loop's defence state.
pub(crate) struct Guard {
    pub(crate) counters: Arc<Counters>,
    kad_puts: PeerRates,
    /// Blocked by the operator (config, `DhtClient::block`): no timer lifts these.
    operator: HashSet<PeerId>,
    /// Blocked for flooding, until when; `order` has them by end.
    benched: HashMap<PeerId, Instant>,
    order: VecDeque<(Instant, PeerId)>,
    bench_for: Duration,
}

impl Guard {
    pub(crate) fn new(config: &DhtConfig, counters: Arc<Counters>) -> Self {
        let RequestLimits { kad_put, max_peers, flood_block, .. } = config.requests;
        Self {
            counters,
            kad_puts: PeerRates::new(kad_put, max_peers),
            operator: config.banned.iter().copied().collect(),
            benched: HashMap::new(),
            order: VecDeque::new(),
            bench_for: flood_block,
        }
    }

    /// The operator blocked or unblocked `peer`. Unblocking also ends a bench.
    pub(crate) fn on_operator(&mut self, peer: PeerId, blocked: bool) {
        if blocked {
            self.operator.insert(peer);
        } else {
            self.operator.remove(&peer);
            self.benched.remove(&peer);
            self.order.retain(|(_, p)| *p != peer);
            self.gauge();
        }
    }

    /// Whether an inbound Kademlia put from `peer` may be read.
    pub(crate) fn kad_put(&mut self, peer: PeerId, now: Instant) -> Verdict {
        let verdict = self.kad_puts.check(peer, now);
        if verdict != Verdict::Allow {
            self.counters.throttled(Limited::KadPut);
        }
        verdict
    }

    /// `peer` flooded at `now`: it is blocked until `now + flood_block`.
    pub(crate) fn bench(&mut self, peer: PeerId, now: Instant) -> Bench {
        if self.operator.contains(&peer) || self.benched.contains_key(&peer) {
            return Bench::Already;
        }
        let mut released = None;
        if self.benched.len() >= MAX_BENCHED
            && let Some((_, oldest)) = self.order.pop_front()
        {
            self.benched.remove(&oldest);
            released = Some(oldest);
        }
        let until = now + self.bench_for;
        self.benched.insert(peer, until);
        self.order.push_back((until, peer));
        self.counters.flood_blocks.fetch_add(1, Ordering::Relaxed);
        self.gauge();
        self.counters.changed.notify_waiters();
        Bench::Block { released }
    }

    /// When the next bench ends.
    pub(crate) fn next_release(&self) -> Option<Instant> {
        self.order.front().map(|(until, _)| *until)
    }

    /// Peers whose bench ended by `now`, to unblock (an operator's ban
    /// made meanwhile stays).
    pub(crate) fn release(&mut self, now: Instant) -> Vec<PeerId> {
        let mut free = Vec::new();
        while let Some((until, peer)) = self.order.front().copied() {
            if until > now {
                break;
            }
            self.order.pop_front();
            self.benched.remove(&peer);
            if !self.operator.contains(&peer) {
                free.push(peer);
            }
        }
        self.gauge();
        free
    }

    /// Counts a refused connection.
    pub(crate) fn on_denied(&self, cause: &ConnectionDenied) -> ConnectionRefusal {
        let why = ConnectionRefusal::of(cause);
        self.counters.refused(why);
        why
    }

    fn gauge(&self) {
        self.counters.benched.store(self.benched.len() as u64, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(n: u8) -> PeerId {
        crate::peer_id_of([n; 32]).unwrap()
    }

    fn guard(banned: &[PeerId]) -> Guard {
        let config = DhtConfig { banned: banned.to_vec(), ..DhtConfig::default() };
        Guard::new(&config, Arc::default())
    }

    #[test]
    fn limit_texts_name_their_limit() {
        let cases = [
            (
                "connection limit exceeded: at most 4 pending incoming connections are allowed",
                ConnectionRefusal::PendingIncoming,
            ),
            (
                "connection limit exceeded: at most 9 established incoming connections are allowed",
                ConnectionRefusal::Incoming,
            ),
            (
                "connection limit exceeded: at most 2 established connections per peer are allowed",
                ConnectionRefusal::PerPeer,
            ),
            (
                "connection limit exceeded: at most 5 established connections are allowed",
                ConnectionRefusal::OtherLimit,
            ),
            (
                "connection limit exceeded: at most 5 pending outgoing connections are allowed",
                ConnectionRefusal::OtherLimit,
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(ConnectionRefusal::of_limit_text(text), expected, "{text}");
        }
        let other = ConnectionDenied::new(std::io::Error::other("not a limit"));
        assert_eq!(ConnectionRefusal::of(&other), ConnectionRefusal::OtherLimit);
    }

    #[test]
    fn a_flooder_is_benched_once_and_released_in_time() {
        let start = Instant::now();
        let mut g = guard(&[]);
        assert_eq!(g.bench(peer(1), start), Bench::Block { released: None });
        assert_eq!(g.bench(peer(1), start), Bench::Already);
        assert_eq!(g.next_release(), Some(start + Duration::from_secs(60)));
        assert_eq!(g.counters.snapshot().benched, 1);
        assert!(g.release(start + Duration::from_secs(59)).is_empty());
        assert_eq!(g.release(start + Duration::from_secs(60)), vec![peer(1)]);
        assert_eq!(g.next_release(), None);
        let stats = g.counters.snapshot();
        assert_eq!((stats.flood_blocks, stats.benched), (1, 0));
    }

    #[test]
    fn the_end_of_a_bench_never_lifts_an_operators_ban() {
        let start = Instant::now();
        let mut g = guard(&[peer(1)]);
        // Banned in config: a flood changes nothing.
        assert_eq!(g.bench(peer(1), start), Bench::Already);
        // Benched, then banned by hand: the bench's end keeps the ban.
        assert_eq!(g.bench(peer(2), start), Bench::Block { released: None });
        g.on_operator(peer(2), true);
        assert!(g.release(start + Duration::from_secs(61)).is_empty());
        // Unblocked by hand ends a bench at once.
        assert_eq!(g.bench(peer(3), start), Bench::Block { released: None });
        g.on_operator(peer(3), false);
        assert_eq!(g.next_release(), None);
    }

    #[test]
    fn benches_are_bounded() {
        let start = Instant::now();
        let mut g = guard(&[]);
        let first = PeerId::random();
        assert_eq!(g.bench(first, start), Bench::Block { released: None });
        for _ in 1..MAX_BENCHED {
            assert_eq!(g.bench(PeerId::random(), start), Bench::Block { released: None });
        }
        assert_eq!(g.bench(PeerId::random(), start), Bench::Block { released: Some(first) });
        assert_eq!(g.counters.snapshot().benched, MAX_BENCHED as u64);
    }

    #[test]
    fn kad_puts_over_the_rate_are_counted() {
        let start = Instant::now();
        let mut g = guard(&[]);
        let burst = RequestLimits::default().kad_put.burst;
        for _ in 0..burst {
            assert_eq!(g.kad_put(peer(1), start), Verdict::Allow);
        }
        assert_eq!(g.kad_put(peer(1), start), Verdict::Refuse);
        assert_eq!(g.counters.snapshot().throttled(Limited::KadPut), 1);
    }
}
