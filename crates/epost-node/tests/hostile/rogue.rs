//! A malicious peer: a real overlay node (the same `epost-dht` the honest
//! nodes run, so it joins their routing tables and is chosen as a holder)
//! whose fragment, notify and record handling is written by the test to
//! lie. Nothing here is product code; the honest nodes must cope with it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use epost_dht::{
    Dht, DhtClient, DhtConfig, InboundFrag, InboundNotify, Multiaddr, PeerId, RecordRejection,
    RecordValidator, StartOptions,
};
use epost_types::fragment::Fragment;
use epost_types::wire::frag::{FragRequest, FragResponse, RefusalReason, WireId};
use epost_types::wire::notify::{NotifyRefusal, NotifyResponse};
use serde_bytes::ByteBuf;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How the rogue answers `/epost/frag/1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fragments {
    /// Stores and serves faithfully (a rogue that only lies elsewhere).
    Honest,
    /// Serves its fragment with one data bit flipped (fails its own hash).
    FlipBit,
    /// Serves a self-consistent forgery: other data, its hash written into
    /// a made-up hash list, so the fragment verifies on its own.
    Forge,
    /// Serves a genuine fragment of another object.
    Misdirect,
    /// Answers `Stored` and keeps nothing (and says so when probed).
    AckAndDrop,
    /// Refuses every store (`NoSpace`).
    Refuse,
    /// Refuses every store as over the asking peer's quota (`OverQuota`).
    OverQuota,
}

/// Which Kademlia records the rogue keeps (it serves whatever it keeps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Records {
    /// Keeps the first value of each key and refuses every later one: a
    /// holder stuck at an old, validly signed log head.
    Freeze,
}

impl RecordValidator for Records {
    fn validate(
        &self,
        _key: &[u8],
        _value: &[u8],
        current: Option<&[u8]>,
    ) -> Result<(), RecordRejection> {
        match (self, current) {
            (Records::Freeze, Some(_)) => Err(RecordRejection::Other("frozen".into())),
            (Records::Freeze, None) => Ok(()),
        }
    }
}

/// A running malicious peer.
pub(crate) struct Rogue {
    pub(crate) dht: DhtClient,
    overlay: Dht,
    /// Fetches it answered with something other than the stored fragment.
    pub(crate) lies: Arc<AtomicU64>,
    /// Fragments it was asked to store (and, unless dropping, keeps).
    pub(crate) offered: Arc<AtomicU64>,
    tasks: Vec<JoinHandle<()>>,
}

/// Fragments the rogue keeps, by object and index.
type Held = BTreeMap<(WireId, u8), Vec<u8>>;

impl Rogue {
    /// Starts a rogue that joins through `bootstrap`, once a peer is in its
    /// routing table (what it puts reaches someone). `lies` land in its
    /// routing table unchecked (made-up peers make it lie in every routing
    /// answer).
    pub(crate) async fn start(
        seed: u8,
        bootstrap: &[Multiaddr],
        fragments: Fragments,
        lies: Vec<(PeerId, Multiaddr)>,
    ) -> Self {
        let rogue = Self::start_with(seed, bootstrap, fragments, lies, DhtConfig::default()).await;
        routable(&rogue.dht).await;
        rogue
    }

    /// [`Self::start`] with the rogue's own overlay settings (a rogue that
    /// means to open many connections lifts its own limits).
    pub(crate) async fn start_with(
        seed: u8,
        bootstrap: &[Multiaddr],
        fragments: Fragments,
        lies: Vec<(PeerId, Multiaddr)>,
        config: DhtConfig,
    ) -> Self {
        let config = DhtConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr")],
            bootstrap: bootstrap.to_vec(),
            ..config
        };
        let (overlay, inbound) = Dht::start(StartOptions {
            config,
            identity_seed: [seed; 32],
            validator: Arc::new(Records::Freeze),
            stored_records: Vec::new(),
            record_writes: None,
            remembered_peers: Vec::new(),
        })
        .await
        .expect("the rogue joins");
        let dht = overlay.client.clone();
        for (peer, addr) in lies {
            dht.add_routing_entry(peer, addr).await;
        }
        let lies = Arc::new(AtomicU64::new(0));
        let offered = Arc::new(AtomicU64::new(0));
        let tasks = vec![
            tokio::spawn(serve_fragments(
                dht.clone(),
                inbound.frag,
                fragments,
                lies.clone(),
                offered.clone(),
            )),
            tokio::spawn(swallow_notifications(dht.clone(), inbound.notify)),
        ];
        Self { dht, overlay, lies, offered, tasks }
    }

    pub(crate) fn lies(&self) -> u64 {
        self.lies.load(Ordering::Relaxed)
    }

    pub(crate) async fn shutdown(self) {
        for task in &self.tasks {
            task.abort();
        }
        self.overlay.shutdown().await;
    }
}

/// Waits, at most 30 s and on peer events, until `dht`'s routing table
/// holds a peer: connected is not yet routable, and a put before that
/// reaches no one.
async fn routable(dht: &DhtClient) {
    let mut events = dht.subscribe();
    let wait = async {
        while dht.status().await.is_some_and(|s| s.known_peers == 0) {
            let _ = tokio::time::timeout(Duration::from_millis(200), events.recv()).await;
        }
    };
    let joined = tokio::time::timeout(Duration::from_secs(30), wait).await.is_ok();
    assert!(joined, "the rogue never had a peer in its routing table");
}

async fn serve_fragments(
    dht: DhtClient,
    mut inbound: mpsc::Receiver<InboundFrag>,
    mode: Fragments,
    lies: Arc<AtomicU64>,
    offered: Arc<AtomicU64>,
) {
    let mut held = Held::new();
    while let Some(InboundFrag { request, reply, .. }) = inbound.recv().await {
        let response = match request {
            FragRequest::Store { fragments, .. } => {
                offered.fetch_add(fragments.len() as u64, Ordering::Relaxed);
                match mode {
                    Fragments::Refuse => FragResponse::Refused {
                        reason: RefusalReason::NoSpace,
                        detail: "disk full (it is not)".into(),
                    },
                    Fragments::OverQuota => FragResponse::Refused {
                        reason: RefusalReason::OverQuota,
                        detail: "your quota here is used".into(),
                    },
                    Fragments::AckAndDrop => FragResponse::Stored,
                    _ => {
                        for bytes in fragments {
                            if let Ok(f) = Fragment::decode(&bytes) {
                                held.insert((*f.object_id.as_bytes(), f.index), bytes.into_vec());
                            }
                        }
                        FragResponse::Stored
                    }
                }
            }
            FragRequest::Fetch { object, index } => match held.get(&(object, index)) {
                None => FragResponse::NotFound,
                Some(bytes) => {
                    if mode != Fragments::Honest {
                        lies.fetch_add(1, Ordering::Relaxed);
                    }
                    FragResponse::Fragment(ByteBuf::from(lie(mode, bytes, &held, object)))
                }
            },
            FragRequest::Probe { objects } => FragResponse::Held(
                objects
                    .iter()
                    .map(|o| held.range((*o, 0)..=(*o, u8::MAX)).map(|((_, i), _)| *i).collect())
                    .collect(),
            ),
            FragRequest::Extend { objects, .. } => FragResponse::Extended(
                objects.iter().map(|o| held.range((*o, 0)..=(*o, u8::MAX)).count() as u32).sum(),
            ),
            FragRequest::Renew { objects, .. } => FragResponse::Renewed(
                objects
                    .iter()
                    .map(|o| held.range((*o, 0)..=(*o, u8::MAX)).map(|((_, i), _)| *i).collect())
                    .collect(),
            ),
        };
        dht.respond(reply, response).await;
    }
}

/// What the rogue sends instead of the fragment `bytes` it holds.
fn lie(mode: Fragments, bytes: &[u8], held: &Held, object: WireId) -> Vec<u8> {
    let Ok(mut fragment) = Fragment::decode(bytes) else { return bytes.to_vec() };
    match mode {
        Fragments::Honest | Fragments::AckAndDrop | Fragments::Refuse | Fragments::OverQuota => {
            bytes.to_vec()
        }
        Fragments::FlipBit => {
            if let Some(b) = fragment.data.first_mut() {
                *b ^= 1;
            }
            fragment.encode()
        }
        Fragments::Forge => {
            fragment.data.iter_mut().for_each(|b| *b = b.wrapping_add(0x5a));
            let hash = ring::digest::digest(&ring::digest::SHA256, &fragment.data);
            let mut own = [0u8; 32];
            own.copy_from_slice(hash.as_ref());
            fragment.hashes[usize::from(fragment.index)] = own;
            assert!(fragment.verify().is_ok(), "a forgery that passes the fragment's own check");
            fragment.encode()
        }
        Fragments::Misdirect => held
            .iter()
            .find(|((o, _), _)| *o != object)
            .map_or_else(|| b"no other object yet".to_vec(), |(_, other)| other.clone()),
    }
}

/// Takes every notification and keeps none: a holder that acknowledges
/// and drops.
async fn swallow_notifications(dht: DhtClient, mut inbound: mpsc::Receiver<InboundNotify>) {
    while let Some(InboundNotify { request, reply, .. }) = inbound.recv().await {
        let response = match request {
            epost_types::wire::notify::NotifyRequest::Deliver { notifications } => {
                let ids = notifications
                    .iter()
                    .filter_map(|n| epost_types::notify::SealedNotification::decode(n).ok())
                    .map(|n| n.id)
                    .collect();
                NotifyResponse::Accepted { ids }
            }
            _ => NotifyResponse::Refused {
                reason: NotifyRefusal::Internal,
                detail: "not today".into(),
            },
        };
        dht.respond_notify(reply, response).await;
    }
}
