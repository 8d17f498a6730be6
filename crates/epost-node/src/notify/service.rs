//! The sender and recipient sides of notification, on top of the holders.
//!
//! Sending: seal to the recipient's certified HPKE key, deliver to the
//! [`INBOX_HOLDERS`](super::INBOX_HOLDERS) peers closest to the inbox key
//! (durable there) and straight to the recipient's home node from its
//! presence record. The send succeeds once at least one holder keeps it.
//!
//! Receiving (one task, for every user hosted here): pull what this node
//! holds for its users whenever something arrives, and from every inbox
//! holder at start and every resync interval; open each, check the
//! sender's certificate, drop replays (same nonce) and rate-limit per
//! sender; keep what passes (listed by `notify list`), publish it to
//! subscribers, and receipt everything handled so holders release it.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use epost_dht::{DhtClient, PeerId};
use epost_store::Store;
use epost_types::address::Address;
use epost_types::capability::Capability;
use epost_types::notify::{
    Notification, Receipt, SealNotificationError, SealedNotification, relay_address,
};
use epost_types::record::inbox_key;
use epost_types::time::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, info, warn};

use super::rate::SenderLimits;
use super::{
    DeliverError, INBOX_HOLDERS, NotifyHolder, deliver_to, pull_auth, pull_from, send_receipt,
};
use crate::chain::Chain;
use crate::failures::Failures;
use crate::identity::{HostedUser, Identity, IdentityError};
use crate::keyspaces::{NOTIFY_RECEIVED, NOTIFY_SEEN};
use crate::worker::{self, Worker, WorkerCtx, Workers};
/// Subscribers may lag this many notifications before they miss some.
const SUBSCRIBERS: usize = 1024;
/// How long a recipient's home peers are reused without a new lookup.
const HOME_TTL: Duration = Duration::from_secs(30);
/// Ids per receipt (the format's limit).
const RECEIPT_IDS: usize = 256;

/// Why a notification was not sent.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("cannot make the notification")]
    Seal(#[source] SealNotificationError),
    #[error("no inbox holder kept the notification ({0})")]
    NotHeld(Failures<Miss>),
    #[error("cannot read what was received")]
    Store(#[source] epost_store::StoreError),
    #[error("the notification service is shutting down")]
    Stopped,
}

/// Why one peer did not keep a notification sent to it.
#[derive(Debug, thiserror::Error)]
pub enum Miss {
    #[error("{peer}: not kept")]
    NotKept { peer: PeerId },
    /// (The error is shown in the text, not as a source: a list of
    /// misses is shown on one line.)
    #[error("{peer}: {error}")]
    Failed { peer: PeerId, error: DeliverError },
}

/// What a send reached.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendReport {
    /// The sealed notification's id (hex).
    pub id: String,
    /// Inbox holders that keep it (this node included if it is one).
    pub holders: usize,
    /// Whether the recipient's home node took it directly.
    pub direct: bool,
}

/// A notification as its recipient sees it, after every check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    pub to: Address,
    pub from: Address,
    pub summary: String,
    pub capability: Option<Capability>,
    /// When the sender made it (ms since the UNIX epoch).
    pub time: u64,
    /// When this node accepted it.
    pub received: u64,
    /// The sealed notification's id (hex).
    pub id: String,
}

/// The notification service. Clone freely.
#[derive(Clone)]
pub struct NotifyService {
    inner: Arc<Inner>,
}

struct Inner {
    /// Where recipients were last seen hosted, briefly cached.
    homes: std::sync::Mutex<HashMap<Address, (Vec<PeerId>, Instant)>>,
    dht: DhtClient,
    identity: Identity,
    holder: NotifyHolder,
    store: Store,
    events: broadcast::Sender<Received>,
    kick: mpsc::Sender<Kick>,
    /// Asked of holders for what this node sends, and how long what it
    /// received is listed (and its nonce remembered).
    lease: Duration,
}

/// A request for a resync pass; the sender, if any, hears when it is done.
type Kick = Option<oneshot::Sender<()>>;

impl NotifyService {
    /// Starts the recipient task: a pull from every holder now, then on
    /// every arrival here and every `resync`.
    pub(crate) fn start(
        dht: DhtClient,
        identity: Identity,
        holder: NotifyHolder,
        store: Store,
        config: &super::NotifyConfig,
        workers: &Workers,
    ) -> (Self, Worker) {
        let resync = config.resync_interval;
        let (events, _) = broadcast::channel(SUBSCRIBERS);
        let (kick, kicks) = mpsc::channel(1);
        let arrivals = holder.arrivals();
        let service = Self {
            inner: Arc::new(Inner {
                homes: std::sync::Mutex::new(HashMap::new()),
                dht,
                identity,
                holder,
                store,
                events,
                kick,
                lease: config.max_lease,
            }),
        };
        let inner = service.inner.clone();
        let task =
            workers.start("notify-recipient", move |ctx| run(inner, kicks, arrivals, resync, ctx));
        (service, task)
    }

    /// Received notifications as they pass every check (bounded: a slow
    /// subscriber is told how many it missed).
    pub fn subscribe(&self) -> broadcast::Receiver<Received> {
        self.inner.events.subscribe()
    }

    /// Asks the recipient task to pull now (tests, and after an import).
    pub fn resync(&self) {
        let _ = self.inner.kick.try_send(None);
    }

    /// Runs a full resync pass and returns once it is done (a pass already
    /// queued counts only if it started after this call).
    pub async fn resync_now(&self) {
        let (done, finished) = oneshot::channel();
        if self.inner.kick.send(Some(done)).await.is_ok() {
            let _ = finished.await;
        }
    }

    /// Sends a notification from `from` (hosted here) to `to`.
    pub async fn send(
        &self,
        from: &Address,
        to: &Address,
        capability: Option<Capability>,
        summary: String,
    ) -> Result<SendReport, NotifyError> {
        let inner = &self.inner;
        let sender = inner.identity.user(from)?;
        let recipient = inner.identity.lookup_certificate(to).await?;
        let notification =
            Notification::new(from.clone(), to.clone(), capability, summary, Timestamp::now())
                .map_err(NotifyError::Seal)?;
        let expires = Timestamp::now().saturating_add(inner.lease);
        let sealed = Notification::seal(&sender.keys, &recipient, &notification, expires)
            .map_err(NotifyError::Seal)?;
        self.spread(to, sealed).await
    }

    /// Sends a notification to `to` as its realm's MX: from
    /// `postmaster@<to's domain>`, signed with this node's key (which the
    /// realm's MX record must name for the recipient to take it).
    pub async fn send_relayed(
        &self,
        to: &Address,
        capability: Option<Capability>,
        summary: String,
    ) -> Result<SendReport, NotifyError> {
        let inner = &self.inner;
        let from = relay_address(to.domain()).map_err(IdentityError::BadAddress)?;
        let recipient = inner.identity.lookup_certificate(to).await?;
        let notification =
            Notification::new(from, to.clone(), capability, summary, Timestamp::now())
                .map_err(NotifyError::Seal)?;
        let expires = Timestamp::now().saturating_add(inner.lease);
        let node_key = inner.identity.node_key();
        let sealed = Notification::seal_relayed(node_key, &recipient, &notification, expires)
            .map_err(NotifyError::Seal)?;
        self.spread(to, sealed).await
    }

    /// Leaves `sealed` with `to`'s inbox holders and, if it is online, at
    /// its home node: done once one of them kept it.
    async fn spread(
        &self,
        to: &Address,
        sealed: SealedNotification,
    ) -> Result<SendReport, NotifyError> {
        let inner = &self.inner;
        let id = sealed.id;

        let me = inner.dht.local_peer_id();
        let holders =
            inner.dht.closest_peers(&sealed.inbox, INBOX_HOLDERS).await.unwrap_or_default();
        let home = inner.home_of(to).await;
        let mut targets: Vec<PeerId> = home.clone();
        targets.extend(holders.iter().filter(|p| !home.contains(p)));
        let deliveries = targets.iter().map(|peer| {
            let inner = inner.clone();
            let sealed = sealed.clone();
            let peer = *peer;
            async move {
                let result = if peer == me {
                    inner.holder.deliver_local(vec![sealed]).await
                } else {
                    deliver_to(&inner.dht, peer, vec![sealed]).await
                };
                (peer, result)
            }
        });
        let mut kept = 0;
        let mut direct = false;
        let mut failures = Failures::default();
        for (peer, result) in futures::future::join_all(deliveries).await {
            match result {
                Ok(ids) if ids.contains(&id) => {
                    if home.contains(&peer) {
                        direct = true;
                    }
                    if holders.contains(&peer) {
                        kept += 1;
                    }
                }
                Ok(_) => failures.push(Miss::NotKept { peer }),
                Err(error) => failures.push(Miss::Failed { peer, error }),
            }
        }
        if kept == 0 && !direct {
            return Err(NotifyError::NotHeld(failures));
        }
        Ok(SendReport { id: hex(&id), holders: kept, direct })
    }

    /// What `address` (hosted here) has received, oldest first (for as
    /// long as a notification's lease: then it is swept).
    pub fn list(&self, address: &Address) -> Result<Vec<Received>, NotifyError> {
        self.list_after(address, None, usize::MAX)
            .map(|page| page.into_iter().map(|(_, r)| r).collect())
    }

    /// Up to `limit` of what `address` received after the entry `after`
    /// (a cursor from an earlier page), oldest first, each with its cursor.
    pub fn list_after(
        &self,
        address: &Address,
        after: Option<&ReceivedCursor>,
        limit: usize,
    ) -> Result<Vec<(ReceivedCursor, Received)>, NotifyError> {
        self.inner.identity.user(address)?;
        let inbox = inbox_key(address);
        let now = Timestamp::now().as_millis();
        let mut out = Vec::new();
        let mut cursor = after.map(|c| c.0.clone());
        while out.len() < limit {
            let page = self
                .inner
                .store
                .scan_prefix(
                    &NOTIFY_RECEIVED,
                    &inbox,
                    cursor.as_deref(),
                    256.min(limit - out.len()),
                )
                .map_err(NotifyError::Store)?;
            let Some((last, _)) = page.last() else { break };
            cursor = Some(last.clone());
            let full = page.len() == 256.min(limit - out.len());
            for (key, record) in page {
                if record.expires <= now {
                    continue;
                }
                if let Ok(received) = serde_json::from_slice::<Received>(&record.value) {
                    out.push((ReceivedCursor(key), received));
                }
            }
            if !full {
                break;
            }
        }
        Ok(out)
    }
}

/// Where an entry of [`NotifyService::list_after`] sits, to resume after it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReceivedCursor(pub Vec<u8>);

impl Inner {
    /// The peers `to`'s presence names (cached for [`HOME_TTL`]); none if
    /// it has no valid presence.
    async fn home_of(&self, to: &Address) -> Vec<PeerId> {
        {
            let homes = self.homes.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((peers, _)) = homes.get(to).filter(|(_, at)| at.elapsed() < HOME_TTL) {
                return peers.clone();
            }
        }
        let peers: Vec<PeerId> = match self.identity.lookup_presence(to).await {
            Ok(presence) => {
                presence.peers.iter().filter_map(|p| PeerId::from_bytes(p).ok()).collect()
            }
            Err(_) => Vec::new(),
        };
        let mut homes = self.homes.lock().unwrap_or_else(|p| p.into_inner());
        if homes.len() >= 4096 {
            homes.clear();
        }
        homes.insert(to.clone(), (peers.clone(), Instant::now()));
        peers
    }
}

async fn run(
    inner: Arc<Inner>,
    mut kicks: mpsc::Receiver<Kick>,
    mut arrivals: broadcast::Receiver<[u8; 32]>,
    resync: Duration,
    ctx: WorkerCtx,
) {
    let mut limits = SenderLimits::new();
    let mut tick = worker::every(resync, true);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let _busy = ctx.busy();
                resync_all(&inner, &mut limits).await;
            }
            Some(kick) = kicks.recv() => {
                let _busy = ctx.busy();
                resync_all(&inner, &mut limits).await;
                if let Some(done) = kick {
                    let _ = done.send(());
                }
            }
            arrival = arrivals.recv() => match arrival {
                Ok(inbox) => {
                    let _busy = ctx.busy();
                    pull_here(&inner, &mut limits, inbox).await;
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    for user in hosted(&inner) {
                        pull_here(&inner, &mut limits, inbox_key(&user.keys.address)).await;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            () = ctx.stop.stopped() => break,
        }
    }
}

fn hosted(inner: &Inner) -> Vec<Arc<HostedUser>> {
    inner.identity.hosted_users()
}

/// Handles what this node itself holds for `inbox`, if a user here owns it.
async fn pull_here(inner: &Arc<Inner>, limits: &mut SenderLimits, inbox: [u8; 32]) {
    let Some(user) = hosted(inner).into_iter().find(|u| inbox_key(&u.keys.address) == inbox) else {
        return;
    };
    let me = inner.dht.local_peer_id();
    drain(inner, limits, &user, me).await;
}

/// Pulls from every inbox holder of every hosted user.
async fn resync_all(inner: &Arc<Inner>, limits: &mut SenderLimits) {
    for user in hosted(inner) {
        let inbox = inbox_key(&user.keys.address);
        let mut holders = inner.dht.closest_peers(&inbox, INBOX_HOLDERS).await.unwrap_or_default();
        let me = inner.dht.local_peer_id();
        if !holders.contains(&me) {
            holders.push(me);
        }
        for holder in holders {
            drain(inner, limits, &user, holder).await;
        }
    }
}

/// Pulls pages from `holder` until it has nothing more this user may take
/// now, handling and receipting each page.
async fn drain(inner: &Arc<Inner>, limits: &mut SenderLimits, user: &HostedUser, holder: PeerId) {
    let address = &user.keys.address;
    let inbox = inbox_key(address);
    let me = inner.dht.local_peer_id();
    for _page in 0..64 {
        let Ok(auth) = pull_auth(&user.keys.signing, inbox, Timestamp::now()) else { return };
        let pulled = if holder == me {
            inner.holder.pull_local(inbox, &auth).await
        } else {
            pull_from(&inner.dht, holder, inbox, &auth).await
        };
        let pending = match pulled {
            Ok(pending) => pending,
            Err(e) => {
                debug!(%holder, %address, error = %Chain(&e), "pull failed");
                return;
            }
        };
        if pending.is_empty() {
            return;
        }
        let full = pending.len() >= epost_types::limits::MAX_PENDING;
        let mut handled = Vec::new();
        let mut deferred = false;
        let mut keep = Vec::new();
        let mut nonces = HashSet::new();
        for (sealed, opened) in fair_order(user, pending) {
            match check(inner, limits, user, &sealed, opened, &mut nonces).await {
                Checked::Done => handled.push(sealed.id),
                Checked::Later => deferred = true,
                Checked::Keep(kept) => keep.push((sealed.id, kept)),
            }
        }
        // The page's keeps go to the store together (one group commit),
        // then its nonces.
        let kept = futures::future::join_all(keep.into_iter().map(|(id, kept)| async move {
            let stored =
                inner.store.put(&NOTIFY_RECEIVED, kept.key, kept.value, kept.listed_until).await;
            (id, kept.seen_key, kept.expires, kept.received, stored)
        }))
        .await;
        let mut seen = Vec::new();
        for (id, seen_key, expires, received, stored) in kept {
            match stored {
                Ok(()) => {
                    handled.push(id);
                    seen.push((seen_key, expires, received));
                }
                Err(e) => {
                    warn!(%address, error = %Chain(&e), "cannot keep a notification; it stays with the holders");
                    deferred = true;
                }
            }
        }
        let marked = futures::future::join_all(seen.iter().map(|(seen_key, expires, _)| {
            inner.store.put(&NOTIFY_SEEN, seen_key.clone(), Vec::new(), *expires)
        }))
        .await;
        for ((_, _, received), marked) in seen.into_iter().zip(marked) {
            if let Err(e) = marked {
                warn!(%address, error = %Chain(&e), "cannot record a nonce as seen");
            }
            info!(%address, from = %received.from, "notification received");
            let _ = inner.events.send(received);
        }
        if !handled.is_empty() {
            receipt_everywhere(inner, user, &handled).await;
        }
        if !full || deferred || handled.is_empty() {
            return;
        }
    }
}

/// Opened notifications interleaved round-robin by sender, so one sender's
/// backlog does not sit in front of everyone else's.
fn fair_order(
    user: &HostedUser,
    pending: Vec<SealedNotification>,
) -> Vec<(SealedNotification, Opened)> {
    let mut by_sender: BTreeMap<String, VecDeque<(SealedNotification, Opened)>> = BTreeMap::new();
    for sealed in pending {
        let opened = sealed.open(&user.keys);
        let sender = match &opened {
            Ok((n, _)) => n.from.to_string(),
            Err(_) => String::new(),
        };
        by_sender.entry(sender).or_default().push_back((sealed, opened));
    }
    let mut out = Vec::new();
    while !by_sender.is_empty() {
        by_sender.retain(|_, queue| {
            if let Some(next) = queue.pop_front() {
                out.push(next);
            }
            !queue.is_empty()
        });
    }
    out
}

/// A pulled notification, opened once.
type Opened = Result<
    (Notification, epost_types::sign::VerifyingKey),
    epost_types::notify::OpenNotificationError,
>;

enum Checked {
    /// Dropped for good: receipt it.
    Done,
    /// Over the sender's rate, or the sender cannot be checked now:
    /// leave it with the holders for later.
    Later,
    /// Passed every check: keep it durably, then receipt it.
    Keep(Box<Kept>),
}

/// What keeping a notification writes.
struct Kept {
    key: Vec<u8>,
    value: Vec<u8>,
    /// Marked only after the keep is durable: a failed keep must never
    /// turn into a "replay" drop.
    seen_key: Vec<u8>,
    /// Until when the nonce is remembered: as long as a holder may still
    /// hand out a copy.
    expires: u64,
    /// Until when `notify list` shows it (the mail service files it long
    /// before).
    listed_until: u64,
    received: Received,
}

async fn check(
    inner: &Arc<Inner>,
    limits: &mut SenderLimits,
    user: &HostedUser,
    sealed: &SealedNotification,
    opened: Opened,
    page_nonces: &mut HashSet<Vec<u8>>,
) -> Checked {
    let address = &user.keys.address;
    let (notification, signer) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            warn!(%address, error = %Chain(&e), "dropped a notification that does not open");
            return Checked::Done;
        }
    };
    let inbox = inbox_key(address);
    let mut seen_key = inbox.to_vec();
    seen_key.extend_from_slice(&notification.nonce);
    if page_nonces.contains(&seen_key)
        || matches!(inner.store.get(&NOTIFY_SEEN, &seen_key), Ok(Some(_)))
    {
        debug!(%address, "dropped a replayed notification");
        return Checked::Done;
    }
    if !limits.has_room(&notification.from) {
        return Checked::Later;
    }
    match super::sender::check(&inner.identity, &notification, &signer).await {
        Ok(()) => {}
        Err(e) if e.is_temporary() => {
            debug!(%address, from = %notification.from, error = %Chain(&e), "the sender cannot be checked now; left with the holders");
            return Checked::Later;
        }
        Err(e) => {
            warn!(%address, from = %notification.from, error = %Chain(&e), "dropped a notification whose sender does not check");
            return Checked::Done;
        }
    }
    limits.spend(&notification.from);
    page_nonces.insert(seen_key.clone());
    let received = Received {
        to: notification.to.clone(),
        from: notification.from.clone(),
        summary: notification.summary.clone(),
        capability: notification.capability.clone(),
        time: notification.time.as_millis(),
        received: Timestamp::now().as_millis(),
        id: hex(&sealed.id),
    };
    let mut key = inbox.to_vec();
    key.extend_from_slice(&received.received.to_be_bytes());
    key.extend_from_slice(&sealed.id);
    let value = serde_json::to_vec(&received).unwrap_or_default();
    let lease = u64::try_from(inner.lease.as_millis()).unwrap_or(u64::MAX);
    // A sender's far-off `expires` must not pin the marker for ever; no
    // holder keeps a copy longer than a lease (twice ours, for holders
    // configured longer).
    let expires = sealed.expires.as_millis().min(received.received.saturating_add(2 * lease));
    let listed_until = received.received.saturating_add(lease);
    Checked::Keep(Box::new(Kept { key, value, seen_key, expires, listed_until, received }))
}

/// Tells every inbox holder (and this node) to release `ids`.
async fn receipt_everywhere(inner: &Arc<Inner>, user: &HostedUser, ids: &[[u8; 32]]) {
    let inbox = inbox_key(&user.keys.address);
    let me = inner.dht.local_peer_id();
    let mut holders = inner.dht.closest_peers(&inbox, INBOX_HOLDERS).await.unwrap_or_default();
    if !holders.contains(&me) {
        holders.push(me);
    }
    for chunk in ids.chunks(RECEIPT_IDS) {
        let receipt = Receipt::new(inbox, chunk.to_vec(), Timestamp::now());
        let Ok(envelope) = Receipt::sign(&user.keys.signing, &receipt) else { continue };
        let sends = holders.iter().map(|holder| {
            let envelope = envelope.clone();
            let inner = inner.clone();
            let holder = *holder;
            async move {
                let result = if holder == me {
                    inner.holder.receipt_local(&envelope).await
                } else {
                    send_receipt(&inner.dht, holder, &envelope).await
                };
                if let Err(e) = result {
                    debug!(%holder, error = %Chain(&e), "receipt not taken; the next resync repeats it");
                }
            }
        });
        futures::future::join_all(sends).await;
    }
}

fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}
