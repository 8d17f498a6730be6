//! Keeping every object at full redundancy, without storms or flapping.
//!
//! Each pass walks the objects this node holds fragments of, works out
//! their placement among the peers it believes alive, and asks those peers
//! (one `Probe` per peer per page) what they hold. Then, per object:
//! - the *leader* (the first peer in placement order that holds any
//!   fragment; every node computes the same one) rebuilds missing fragments
//!   from any k and stores them where they belong; if it does not (down,
//!   or hostile), the next holder takes over a pass later;
//! - a node holding a fragment that now belongs elsewhere hands it over and
//!   drops its copy once the new holder has it.
//!
//! A peer's `Stored` is never taken on its word: a probe checks it keeps
//! what it acknowledged before anything counts as repaired or a local copy
//! is dropped, and a peer that declines is passed over.
//!
//! A peer is only treated as gone after it has been unreachable for the
//! grace period, so a restart does not trigger a repair, and a returning
//! node makes the temporary copies excess rather than causing new work.
//! Repairs per pass are capped, which rate-limits repair traffic.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use epost_dht::{DhtEvent, PeerId};
use epost_types::id::ObjectId;
use epost_types::wire::frag::{FragRequest, FragResponse};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, info, warn};

use super::metrics::Metrics;
use super::placement::Placement;
use super::{Ctx, erasure, get, plan};
use crate::chain::Chain;
use crate::stop::Stop;
use crate::worker::{self, WorkerCtx};

/// Objects examined per page (one probe per peer per page).
const PAGE: usize = 128;

/// What one maintenance pass did.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct RepairReport {
    pub objects_checked: u64,
    pub fragments_repaired: u64,
    pub fragments_handed_over: u64,
    pub fragments_dropped: u64,
    pub unrecoverable: u64,
    /// Expired fragments collected.
    pub expired_removed: u64,
    /// Expired entries of the node's other keyspaces swept with the pass
    /// (records, received notifications, seen nonces).
    #[serde(default)]
    pub records_expired_removed: u64,
    pub errors: u64,
}

/// Which peers have been unreachable, and since when. Owned by the
/// maintenance task alone.
#[derive(Debug)]
pub(crate) struct Liveness {
    down_since: HashMap<PeerId, Instant>,
    grace: Duration,
    /// Objects seen short of fragments, and in how many passes in a row:
    /// if the leader does not repair (it is down, slow, or hostile), the
    /// next holder in placement order takes over one pass later, and so on.
    short: HashMap<ObjectId, u32>,
}

/// Objects whose shortfall is remembered at most (a hint; forgetting one
/// only delays a take-over).
const SHORT_MAX: usize = 65_536;

impl Liveness {
    pub(crate) fn new(grace: Duration) -> Self {
        Self { down_since: HashMap::new(), grace, short: HashMap::new() }
    }

    /// Records whether `id` is short of fragments in this pass; returns in
    /// how many earlier passes in a row it already was.
    fn passes_short(&mut self, id: ObjectId, short: bool) -> u32 {
        if !short {
            self.short.remove(&id);
            return 0;
        }
        if self.short.len() >= SHORT_MAX && !self.short.contains_key(&id) {
            self.short.clear();
        }
        let passes = self.short.entry(id).or_insert(0);
        *passes += 1;
        *passes - 1
    }

    pub(crate) fn on_event(&mut self, event: &DhtEvent) {
        match event {
            DhtEvent::PeerConnected(peer) => {
                self.down_since.remove(peer);
            }
            DhtEvent::PeerDisconnected(peer) => {
                self.down_since.entry(*peer).or_insert_with(Instant::now);
            }
            DhtEvent::RecordKept { .. } | DhtEvent::RecordRefused { .. } => {}
        }
    }

    fn failed(&mut self, peer: PeerId) {
        self.down_since.entry(peer).or_insert_with(Instant::now);
    }

    fn answered(&mut self, peer: PeerId) {
        self.down_since.remove(&peer);
    }

    /// Gone: unreachable for longer than the grace period.
    pub(crate) fn is_gone(&self, peer: &PeerId) -> bool {
        self.down_since.get(peer).is_some_and(|since| since.elapsed() > self.grace)
    }
}

/// Runs passes every `repair_interval`, or at once when asked through
/// `triggers`, until `stop` (which also cuts a pass short).
pub(crate) async fn run(
    ctx: Arc<Ctx>,
    mut triggers: mpsc::Receiver<oneshot::Sender<RepairReport>>,
    worker: WorkerCtx,
) {
    let stop = worker.stop.clone();
    let mut liveness = Liveness::new(ctx.config.grace);
    let mut events = ctx.dht.subscribe();
    // A full interval after start, not at once.
    let mut tick = worker::every(ctx.config.repair_interval, false);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let _busy = worker.busy();
                let report = pass(&ctx, &mut liveness, &stop).await;
                if report.fragments_repaired + report.fragments_handed_over + report.unrecoverable > 0 {
                    info!(?report, "maintenance pass");
                }
            }
            Some(reply) = triggers.recv() => {
                let _busy = worker.busy();
                let _ = reply.send(pass(&ctx, &mut liveness, &stop).await);
            }
            event = events.recv() => match event {
                Ok(event) => liveness.on_event(&event),
                Err(broadcast::error::RecvError::Lagged(n)) => debug!(n, "missed peer events"),
                Err(broadcast::error::RecvError::Closed) => break,
            },
            () = stop.stopped() => break,
        }
    }
}

/// One pass over every object held here, then garbage collection.
pub(crate) async fn pass(ctx: &Arc<Ctx>, liveness: &mut Liveness, stop: &Stop) -> RepairReport {
    Metrics::inc(&ctx.metrics.repair_passes);
    let mut report = RepairReport::default();
    let mut budget = ctx.config.repairs_per_pass;
    let mut cursor: Option<ObjectId> = None;
    while !stop.stopping() {
        let page = match ctx.local.objects_after(cursor, PAGE) {
            Ok(page) => page,
            Err(e) => {
                warn!(error = %Chain(&e), "cannot list local fragments");
                report.errors += 1;
                break;
            }
        };
        let Some(last) = page.last().copied() else { break };
        cursor = Some(last);
        let peers = match ctx.dht.known_closest(&[], usize::MAX).await {
            Ok(all) => all.into_iter().filter(|p| !liveness.is_gone(p)).collect::<Vec<_>>(),
            Err(_) => break,
        };
        examine_page(ctx, liveness, stop, &peers, &page, &mut budget, &mut report).await;
        if page.len() < PAGE {
            break;
        }
    }
    match ctx.local.collect_expired(epost_types::time::Timestamp::now().as_millis()).await {
        Ok(removed) => {
            report.expired_removed = removed;
            Metrics::add(&ctx.metrics.gc_removed, removed);
        }
        Err(e) => {
            warn!(error = %Chain(&e), "garbage collection failed");
            report.errors += 1;
        }
    }
    report
}

async fn examine_page(
    ctx: &Arc<Ctx>,
    liveness: &mut Liveness,
    stop: &Stop,
    live_peers: &[PeerId],
    objects: &[ObjectId],
    budget: &mut usize,
    report: &mut RepairReport,
) {
    let n = usize::from(ctx.config.k) + usize::from(ctx.config.m);
    let me = ctx.dht.local_peer_id();
    // Scrub first, so this node's own answer to the probes below is true.
    // A fragment whose lease ended is garbage: it leads no repair and is
    // handed to nobody (its owner stopped renewing it).
    let now = epost_types::time::Timestamp::now().as_millis();
    let mut mine_all = Vec::with_capacity(objects.len());
    for id in objects {
        match ctx.local.scrub(*id, now).await {
            Ok((good, bad)) => {
                if !bad.is_empty() {
                    warn!(%id, ?bad, "dropped corrupt fragments found by scrubbing");
                    Metrics::add(&ctx.metrics.fragments_corrupt, bad.len() as u64);
                }
                mine_all.push(Some(good));
            }
            Err(e) => {
                debug!(%id, error = %Chain(&e), "cannot scrub");
                report.errors += 1;
                mine_all.push(None);
            }
        }
    }
    // Placement plus as many spares: fragments may sit just outside it.
    let nearby: Vec<Vec<PeerId>> = objects
        .iter()
        .map(|id| epost_dht::closest_of(id.as_bytes(), live_peers.to_vec(), 2 * n))
        .collect();
    let placements: Vec<Placement> = nearby.iter().map(|near| Placement::new(near, n)).collect();
    // One probe per peer for all the page's objects near it.
    let mut asks: BTreeMap<PeerId, Vec<usize>> = BTreeMap::new();
    for (slot, near) in nearby.iter().enumerate() {
        for peer in near {
            asks.entry(*peer).or_default().push(slot);
        }
    }
    let mut held: Vec<BTreeMap<u8, BTreeSet<PeerId>>> = vec![BTreeMap::new(); objects.len()];
    let mut answered: BTreeSet<PeerId> = BTreeSet::new();
    for (peer, slots) in asks {
        if stop.stopping() {
            return;
        }
        let wire = slots.iter().map(|s| *objects[*s].as_bytes()).collect();
        match ctx.ask(peer, FragRequest::Probe { objects: wire }).await {
            Ok(FragResponse::Held(lists)) if lists.len() == slots.len() => {
                liveness.answered(peer);
                answered.insert(peer);
                for (slot, indices) in slots.iter().zip(lists) {
                    for index in indices {
                        held[*slot].entry(index).or_default().insert(peer);
                    }
                }
            }
            // Reachable, but no straight answer: what it should hold
            // counts as missing, and a rebuild stored on it must pass the
            // check a liar fails, so it ends on a peer that keeps it.
            Ok(_) => {
                Metrics::inc(&ctx.metrics.bad_peer_responses);
                answered.insert(peer);
            }
            Err(_) => liveness.failed(peer),
        }
    }
    let rows = objects.iter().zip(&nearby).zip(&placements).zip(&held).zip(mine_all);
    for ((((id, near), placement), held), mine) in rows {
        if stop.stopping() {
            return;
        }
        report.objects_checked += 1;
        let Some(mine) = mine.filter(|m| !m.is_empty()) else { continue };
        let seen = plan::Seen { placement, held, answered: &answered, mine: &mine };
        let waited = liveness.passes_short(*id, !plan::missing(&seen).is_empty());
        let plan = plan::plan_object(&seen, me, waited, budget);
        if !plan.rebuild.is_empty() {
            rebuild(ctx, *id, near, &seen, plan.rebuild, report).await;
        }
        for (index, to) in plan.hand_over {
            hand_over(ctx, *id, index, to, report).await;
        }
        for index in plan.drop {
            if ctx.local.delete(*id, index).await.is_ok() {
                report.fragments_dropped += 1;
            }
        }
    }
}

/// Rebuilds the object from the holders the probes just found and stores
/// the `missing` fragments on the peers they belong on. A rightful holder
/// that refuses, or acknowledges but does not keep what it was sent
/// (checked with a probe: an acknowledgement alone is not believed), is
/// passed over for a spare, else the least-loaded placement peer, as a put
/// does.
async fn rebuild(
    ctx: &Arc<Ctx>,
    id: ObjectId,
    near: &[PeerId],
    seen: &plan::Seen<'_>,
    missing: BTreeMap<PeerId, Vec<usize>>,
    report: &mut RepairReport,
) {
    let ciphertext = match get::get_from_holders(ctx, id, seen.held).await {
        Ok(ciphertext) => ciphertext,
        Err(e) => {
            warn!(%id, error = %Chain(&e), "object cannot be rebuilt");
            report.unrecoverable += 1;
            return;
        }
    };
    let fragments = match erasure::encode(id, &ciphertext, ctx.config.k, ctx.config.m) {
        Ok(fragments) => fragments,
        Err(e) => {
            warn!(%id, error = %Chain(&e), "cannot encode a rebuilt object");
            report.errors += 1;
            return;
        }
    };
    let expires = seen
        .mine
        .first()
        .and_then(|i| ctx.local.expiry(id, *i).ok().flatten())
        .unwrap_or_else(|| ctx.default_expiry());
    let mut repaired = 0;
    let mut declined: Vec<PeerId> = Vec::new();
    let mut orphans: Vec<usize> = Vec::new();
    for (peer, indices) in missing {
        match store_kept(ctx, id, peer, &indices, &fragments, expires).await {
            Stored::Kept(n) => repaired += n,
            Stored::Unreachable(why) => {
                debug!(%peer, %id, %why, "repair store failed");
                report.errors += 1;
            }
            Stored::Declined(why) => {
                debug!(%peer, %id, %why, "repair store declined; placing elsewhere");
                report.errors += 1;
                declined.push(peer);
                orphans.extend(indices);
            }
        }
    }
    let mut placed: BTreeMap<PeerId, usize> = BTreeMap::new();
    for index in orphans {
        for peer in plan::fallback_order(near, seen.placement, seen.held, &declined, &placed) {
            if let Stored::Kept(n) = store_kept(ctx, id, peer, &[index], &fragments, expires).await
            {
                repaired += n;
                *placed.entry(peer).or_default() += 1;
                break;
            }
        }
    }
    report.fragments_repaired += repaired as u64;
    Metrics::add(&ctx.metrics.fragments_repaired, repaired as u64);
}

/// Sends fragment `index` held here to `holder`, its rightful holder (this
/// node left the placement, the network grew, or a put wrapped fragments
/// round fewer peers during a partition), then drops the copy once a probe
/// shows the holder keeps it. So an object ends one fragment per peer
/// whenever the network has k+m peers, and losing one peer never costs
/// more than its share. Placement only counts peers past the grace period
/// as gone, so a restart moves nothing.
async fn hand_over(
    ctx: &Arc<Ctx>,
    id: ObjectId,
    index: u8,
    holder: PeerId,
    report: &mut RepairReport,
) {
    let Ok(Some(bytes)) = ctx.local.get(id, index).await else { return };
    let expires =
        ctx.local.expiry(id, index).ok().flatten().unwrap_or_else(|| ctx.default_expiry());
    let request =
        FragRequest::Store { fragments: vec![serde_bytes::ByteBuf::from(bytes)], expires };
    if !matches!(ctx.ask(holder, request).await, Ok(FragResponse::Stored))
        || !holds(ctx, holder, id, &[usize::from(index)]).await
    {
        // Refused, or acknowledged and not kept: ours stays the copy.
        report.errors += 1;
        return;
    }
    report.fragments_handed_over += 1;
    Metrics::inc(&ctx.metrics.fragments_handed_over);
    // The rightful holder has it durably: our copy is excess.
    if ctx.local.delete(id, index).await.is_ok() {
        report.fragments_dropped += 1;
    }
}

/// How a repair store went.
enum Stored {
    /// Acknowledged, and a probe confirms the peer keeps them.
    Kept(usize),
    /// The peer answered but will not keep them: it refused, or it
    /// acknowledged and a probe shows it did not. Place them elsewhere.
    Declined(String),
    /// No answer: the peer may be restarting; retry next pass (moving
    /// fragments off it now is what the grace period prevents).
    Unreachable(String),
}

/// Stores `indices` on `peer` and checks with a probe that it keeps them.
async fn store_kept(
    ctx: &Arc<Ctx>,
    id: ObjectId,
    peer: PeerId,
    indices: &[usize],
    fragments: &[epost_types::fragment::Fragment],
    expires: u64,
) -> Stored {
    let encoded = indices
        .iter()
        .filter_map(|i| fragments.get(*i))
        .map(|f| serde_bytes::ByteBuf::from(f.encode()))
        .collect();
    match ctx.ask(peer, FragRequest::Store { fragments: encoded, expires }).await {
        Ok(FragResponse::Stored) if holds(ctx, peer, id, indices).await => {
            Stored::Kept(indices.len())
        }
        Ok(FragResponse::Stored) => {
            Metrics::inc(&ctx.metrics.bad_peer_responses);
            warn!(%peer, %id, "peer acknowledged fragments it does not keep");
            Stored::Declined("acknowledged but not kept".to_owned())
        }
        Ok(FragResponse::Refused { reason, detail }) => {
            Stored::Declined(format!("refused ({reason:?}): {detail}"))
        }
        Ok(other) => {
            Metrics::inc(&ctx.metrics.bad_peer_responses);
            Stored::Declined(format!("unexpected answer {other:?}"))
        }
        Err(e) => Stored::Unreachable(e.to_string()),
    }
}

/// Whether `peer` says it holds every fragment `indices` of `id`.
async fn holds(ctx: &Arc<Ctx>, peer: PeerId, id: ObjectId, indices: &[usize]) -> bool {
    match ctx.ask(peer, FragRequest::Probe { objects: vec![*id.as_bytes()] }).await {
        Ok(FragResponse::Held(lists)) => {
            let held: BTreeSet<usize> = lists.into_iter().flatten().map(usize::from).collect();
            indices.iter().all(|i| held.contains(i))
        }
        _ => false,
    }
}
