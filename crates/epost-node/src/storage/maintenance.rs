//! Keeping every object at full redundancy, without storms or flapping.
//!
//! Each pass walks the objects this node holds fragments of, works out
//! their placement among the peers it believes alive, and asks those peers
//! (one `Probe` per peer per page) what they hold. Then, per object:
//! - the *leader* (the first peer in placement order that holds any
//!   fragment; every node computes the same one) rebuilds missing fragments
//!   from any k and stores them where they belong;
//! - a node holding a fragment that now belongs elsewhere hands it over and
//!   drops its copy once the new holder has it.
//!
//! A peer is only treated as gone after it has been unreachable for the
//! grace period, so a restart does not trigger a repair, and a returning
//! node makes the temporary copies excess rather than causing new work.
//! Repairs per pass are capped, which rate-limits repair traffic.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use epost_dht::frag::{FragRequest, FragResponse};
use epost_dht::{DhtEvent, PeerId};
use epost_types::id::ObjectId;
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use super::metrics::Metrics;
use super::placement::Placement;
use super::{Ctx, erasure, get, put};

/// Objects examined per page (one probe per peer per page).
const PAGE: usize = 128;

/// What one maintenance pass did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct RepairReport {
    pub objects_checked: u64,
    pub fragments_repaired: u64,
    pub fragments_handed_over: u64,
    pub fragments_dropped: u64,
    pub unrecoverable: u64,
    pub expired_removed: u64,
    pub errors: u64,
}

/// Which peers have been unreachable, and since when. Owned by the
/// maintenance task alone.
#[derive(Debug)]
pub(crate) struct Liveness {
    down_since: HashMap<PeerId, Instant>,
    grace: Duration,
}

impl Liveness {
    pub(crate) fn new(grace: Duration) -> Self {
        Self { down_since: HashMap::new(), grace }
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
/// `triggers`, until shutdown.
pub(crate) async fn run(
    ctx: Arc<Ctx>,
    mut triggers: mpsc::Receiver<oneshot::Sender<RepairReport>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut liveness = Liveness::new(ctx.config.grace);
    let mut events = ctx.dht.subscribe();
    let mut tick = tokio::time::interval(ctx.config.repair_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; start a full interval later
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let report = pass(&ctx, &mut liveness).await;
                if report.fragments_repaired + report.fragments_handed_over + report.unrecoverable > 0 {
                    info!(?report, "maintenance pass");
                }
            }
            Some(reply) = triggers.recv() => {
                let _ = reply.send(pass(&ctx, &mut liveness).await);
            }
            event = events.recv() => match event {
                Ok(event) => liveness.on_event(&event),
                Err(broadcast::error::RecvError::Lagged(n)) => debug!(n, "missed peer events"),
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = shutdown.changed() => break,
        }
    }
}

/// One pass over every object held here, then garbage collection.
pub(crate) async fn pass(ctx: &Arc<Ctx>, liveness: &mut Liveness) -> RepairReport {
    Metrics::inc(&ctx.metrics.repair_passes);
    let mut report = RepairReport::default();
    let mut budget = ctx.config.repairs_per_pass;
    let mut cursor: Option<ObjectId> = None;
    loop {
        let page = match ctx.local.objects_after(cursor, PAGE) {
            Ok(page) => page,
            Err(e) => {
                warn!(error = %e, "cannot list local fragments");
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
        examine_page(ctx, liveness, &peers, &page, &mut budget, &mut report).await;
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
            warn!(error = %e, "garbage collection failed");
            report.errors += 1;
        }
    }
    report
}

async fn examine_page(
    ctx: &Arc<Ctx>,
    liveness: &mut Liveness,
    live_peers: &[PeerId],
    objects: &[ObjectId],
    budget: &mut usize,
    report: &mut RepairReport,
) {
    let n = usize::from(ctx.config.k) + usize::from(ctx.config.m);
    let me = ctx.dht.local_peer_id();
    // Scrub first, so this node's own answer to the probes below is true.
    let mut mine_all = Vec::with_capacity(objects.len());
    for id in objects {
        match ctx.local.scrub(*id).await {
            Ok((good, bad)) => {
                if !bad.is_empty() {
                    warn!(%id, ?bad, "dropped corrupt fragments found by scrubbing");
                    Metrics::add(&ctx.metrics.fragments_corrupt, bad.len() as u64);
                }
                mine_all.push(Some(good));
            }
            Err(e) => {
                debug!(%id, error = %e, "cannot scrub");
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
    for (peer, slots) in asks {
        let wire = slots.iter().map(|s| *objects[*s].as_bytes()).collect();
        match ctx.ask(peer, FragRequest::Probe { objects: wire }).await {
            Ok(FragResponse::Held(lists)) if lists.len() == slots.len() => {
                liveness.answered(peer);
                for (slot, indices) in slots.iter().zip(lists) {
                    for index in indices {
                        held[*slot].entry(index).or_default().insert(peer);
                    }
                }
            }
            Ok(_) => Metrics::inc(&ctx.metrics.bad_peer_responses),
            Err(_) => liveness.failed(peer),
        }
    }
    for (((id, placement), held), mine) in objects.iter().zip(&placements).zip(held).zip(mine_all) {
        report.objects_checked += 1;
        let Some(mine) = mine else { continue };
        let leader =
            placement.peers.iter().find(|p| held.values().any(|holders| holders.contains(p)));
        let leading = leader == Some(&me) || (leader.is_none() && !mine.is_empty());
        if leading && *budget > 0 {
            let repaired = rebuild_missing(ctx, *id, placement, &held, &mine, report).await;
            *budget = budget.saturating_sub(repaired);
        }
        hand_over(ctx, *id, placement, &held, &mine, report).await;
    }
}

/// Rebuilds the fragments no reachable peer holds, on their rightful
/// holders; returns how many. (A fragment held by the wrong peer is moved
/// by that peer's hand-over, not rebuilt.)
async fn rebuild_missing(
    ctx: &Arc<Ctx>,
    id: ObjectId,
    placement: &Placement,
    held: &BTreeMap<u8, BTreeSet<PeerId>>,
    mine: &[u8],
    report: &mut RepairReport,
) -> usize {
    let missing: Vec<usize> = (0..placement.n)
        .filter(|i| {
            u8::try_from(*i)
                .ok()
                .is_none_or(|index| held.get(&index).is_none_or(BTreeSet::is_empty))
        })
        .collect();
    if missing.is_empty() {
        return 0;
    }
    let ciphertext = match get::get_object(ctx, id).await {
        Ok(ciphertext) => ciphertext,
        Err(e) => {
            warn!(%id, error = %e, "object cannot be rebuilt");
            report.unrecoverable += 1;
            return 0;
        }
    };
    let fragments = match erasure::encode(id, &ciphertext, ctx.config.k, ctx.config.m) {
        Ok(fragments) => Arc::new(fragments),
        Err(_) => return 0,
    };
    let expires = mine
        .first()
        .and_then(|i| ctx.local.expiry(id, *i).ok().flatten())
        .unwrap_or_else(|| ctx.default_expiry());
    let mut by_peer: BTreeMap<PeerId, Vec<usize>> = BTreeMap::new();
    for index in &missing {
        if let Some(peer) = placement.holder(*index) {
            by_peer.entry(peer).or_default().push(*index);
        }
    }
    let mut repaired = 0;
    for (peer, indices) in by_peer {
        let (_, indices, result) =
            put::store_on(ctx.clone(), peer, indices, fragments.clone(), expires).await;
        match result {
            Ok(()) => repaired += indices.len(),
            Err(why) => {
                debug!(%peer, %id, %why, "repair store failed");
                report.errors += 1;
            }
        }
    }
    report.fragments_repaired += repaired as u64;
    Metrics::add(&ctx.metrics.fragments_repaired, repaired as u64);
    repaired
}

/// Sends each fragment held here that belongs to another peer (this node
/// left the placement, the network grew, or a put wrapped fragments round
/// fewer peers during a partition) to its rightful holder, then drops the
/// copy; a copy the rightful holder already has is dropped at once. So an
/// object ends one fragment per peer whenever the network has k+m peers,
/// and losing one peer never costs more than its share. Placement only
/// counts peers past the grace period as gone, so a restart moves nothing.
async fn hand_over(
    ctx: &Arc<Ctx>,
    id: ObjectId,
    placement: &Placement,
    held: &BTreeMap<u8, BTreeSet<PeerId>>,
    mine: &[u8],
    report: &mut RepairReport,
) {
    let me = ctx.dht.local_peer_id();
    for index in mine {
        let Some(holder) = placement.holder(usize::from(*index)) else { continue };
        if holder == me {
            continue;
        }
        let has_it = held.get(index).is_some_and(|holders| holders.contains(&holder));
        if !has_it {
            let Ok(Some(bytes)) = ctx.local.get(id, *index).await else { continue };
            let expires =
                ctx.local.expiry(id, *index).ok().flatten().unwrap_or_else(|| ctx.default_expiry());
            let request =
                FragRequest::Store { fragments: vec![serde_bytes::ByteBuf::from(bytes)], expires };
            if !matches!(ctx.ask(holder, request).await, Ok(FragResponse::Stored)) {
                continue;
            }
            report.fragments_handed_over += 1;
            Metrics::inc(&ctx.metrics.fragments_handed_over);
        }
        // The rightful holder has it durably: our copy is excess.
        if ctx.local.delete(id, *index).await.is_ok() {
            report.fragments_dropped += 1;
        }
    }
}
