//! `StorageService`: the handle the control API and the mail layer use to
//! put, get and check objects, and the owner of the service's tasks.

use std::collections::HashMap;
use std::sync::Arc;

use epost_dht::{DhtClient, InboundFrag};
use epost_types::capability::Capability;
use epost_types::chunk::{ObjectReader, ObjectWriter};
use epost_types::convergent::{self, ConvergenceSecret, SealedObject};
use epost_types::id::ObjectId;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::get::{GetError, get_object};
use super::local::LocalFragments;
use super::maintenance::{self, RepairReport};
use super::metrics::Metrics;
use super::put::{PutError, put_object};
use super::{Ctx, StorageConfig, holder};
use crate::worker::{DRAIN, Worker, Workers};
use epost_types::wire::frag::{FragRequest, FragResponse};

/// What a put stored.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct PutReport {
    /// All a reader needs (`epost:<id>#<key>` as text).
    pub capability: Capability,
    /// Plaintext bytes.
    pub size: u64,
    /// Objects stored (chunks and manifests).
    pub objects: u64,
    /// Their ids, root last: what an owner renews to keep the capability.
    #[serde(skip)]
    pub ids: Vec<ObjectId>,
    /// The lease they were stored with, ms since the UNIX epoch.
    #[serde(skip)]
    pub expires: u64,
}

/// Redundancy of one object as seen now.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ObjectCheck {
    pub id: String,
    pub fragments_alive: usize,
    /// Distinct peers holding them.
    pub holders: usize,
}

/// Redundancy of a whole capability (its manifest and every chunk).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct CheckReport {
    pub objects: usize,
    /// k + m for each object, summed.
    pub fragments_total: usize,
    /// Distinct fragments found on reachable peers, summed.
    pub fragments_alive: usize,
    /// k: fragments each object needs to be readable.
    pub needed: usize,
    /// The fewest fragments alive of any one object.
    pub min_alive: usize,
    /// Every object has at least k fragments alive.
    pub readable: bool,
    pub details: Vec<ObjectCheck>,
}

/// What a lease refresh reached.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RefreshReport {
    pub objects: usize,
    /// Fragments whose holders extended their lease.
    pub fragments_extended: u64,
    /// The new lease end, ms since the UNIX epoch.
    pub expires: u64,
}

/// Why a check could not complete.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Get(#[from] GetError),
    #[error("cannot find the object's holders")]
    Placement(#[source] epost_dht::QueryError),
}

/// The running storage service. Clone freely.
#[derive(Clone)]
pub struct StorageService {
    ctx: Arc<Ctx>,
    repair: mpsc::Sender<oneshot::Sender<RepairReport>>,
}

/// The service's workers, for an orderly shutdown.
pub(crate) struct StorageTasks {
    holder: Worker,
    repair: Option<Worker>,
}

impl StorageTasks {
    /// Stops repair, cutting a pass short: first thing on shutdown, so
    /// repair does not work on while this node's peers and its own
    /// services leave.
    pub(crate) async fn stop_repair(&mut self) {
        if let Some(repair) = self.repair.take() {
            repair.shutdown(DRAIN).await;
        }
    }

    /// Stops repair, then serving peers (after answering what was
    /// accepted), and returns.
    pub(crate) async fn shutdown(mut self) {
        self.stop_repair().await;
        self.holder.shutdown(DRAIN).await;
    }
}

impl StorageService {
    /// Starts the holder and repair workers.
    pub(crate) fn start(
        config: StorageConfig,
        secret: ConvergenceSecret,
        dht: DhtClient,
        inbound: mpsc::Receiver<InboundFrag>,
        local: LocalFragments,
        metrics: Arc<Metrics>,
        workers: &Workers,
    ) -> (Self, StorageTasks) {
        let batcher = super::batch::StoreBatcher::new(dht.clone(), workers.clone());
        let tasks = workers.clone();
        let ctx = Arc::new(Ctx { config, secret, dht, local, metrics, batcher, tasks });
        let (repair, repair_rx) = mpsc::channel(4);
        let serving = ctx.clone();
        let holder = workers.start("storage-holder", |w| holder::serve(serving, inbound, w));
        let repairing = ctx.clone();
        let repair_task = workers.start("repair", |w| maintenance::run(repairing, repair_rx, w));
        let tasks = StorageTasks { holder, repair: Some(repair_task) };
        (Self { ctx, repair }, tasks)
    }

    /// The service's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.ctx.metrics
    }

    /// The lease layout in use: (k, m).
    pub fn layout(&self) -> (u8, u8) {
        (self.ctx.config.k, self.ctx.config.m)
    }

    /// Stores everything `input` yields, chunk by chunk (memory stays bounded
    /// by a few chunks whatever the size), and returns the capability.
    pub async fn put_reader<R: AsyncRead + Unpin>(&self, input: R) -> Result<PutReport, PutError> {
        self.put_reader_with(&self.ctx.secret, input).await
    }

    /// [`Self::put_reader`], sealed under `secret` instead of this node's
    /// convergence secret (a realm's, or one only a log's owner knows).
    pub async fn put_reader_with<R: AsyncRead + Unpin>(
        &self,
        secret: &ConvergenceSecret,
        mut input: R,
    ) -> Result<PutReport, PutError> {
        let chunk_size = self.ctx.config.chunk_size;
        let expires = self.ctx.default_expiry();
        let mut writer = ObjectWriter::new(secret.clone(), chunk_size);
        let mut buf = vec![0u8; chunk_size.min(256 * 1024)];
        let mut in_flight = FuturesUnordered::new();
        let mut size = 0u64;
        let mut ids = Vec::new();
        loop {
            let read = input.read(&mut buf).await.map_err(PutError::Input)?;
            if read == 0 {
                break;
            }
            size += read as u64;
            for sealed in writer.push(&buf[..read]) {
                ids.push(sealed.id);
                in_flight.push(self.put_sealed(sealed, expires));
                // Bounded: wait for a slot before reading more input.
                while in_flight.len() >= self.ctx.config.parallel_chunks {
                    if let Some(result) = in_flight.next().await {
                        result?;
                    }
                }
            }
        }
        let finished = writer.finish();
        for sealed in finished.objects {
            ids.push(sealed.id);
            in_flight.push(self.put_sealed(sealed, expires));
        }
        while let Some(result) = in_flight.next().await {
            result?;
        }
        Ok(PutReport {
            capability: finished.capability,
            size,
            objects: ids.len() as u64,
            ids,
            expires,
        })
    }

    async fn put_sealed(&self, sealed: SealedObject, expires: u64) -> Result<(), PutError> {
        put_object(&self.ctx, sealed.id, &sealed.ciphertext, expires).await
    }

    /// Stores one object its caller sealed (a log entry, a mail part
    /// manifest), with the default lease; returns once it is durable, with
    /// the lease end it was stored until.
    pub async fn put_sealed_object(&self, sealed: &SealedObject) -> Result<u64, PutError> {
        let expires = self.ctx.default_expiry();
        put_object(&self.ctx, sealed.id, &sealed.ciphertext, expires).await?;
        Ok(expires)
    }

    /// One object's ciphertext, decoded from its fragments and checked
    /// against its id (the caller opens it).
    pub async fn fetch_object(&self, id: ObjectId) -> Result<Vec<u8>, GetError> {
        get_object(&self.ctx, id).await
    }

    /// Writes the plaintext of `capability` to `output`, verifying every
    /// object on the way; returns the bytes written. The next few objects
    /// are fetched ahead in parallel, and written strictly in order.
    pub async fn get_to<W: AsyncWrite + Unpin>(
        &self,
        capability: &Capability,
        output: &mut W,
    ) -> Result<u64, GetError> {
        let mut walker = ObjectReader::new(capability.clone());
        let mut ahead: HashMap<ObjectId, JoinHandle<Result<Vec<u8>, GetError>>> = HashMap::new();
        let result = async {
            let mut written = 0u64;
            while let Some(next) = walker.next_needed() {
                for upcoming in walker.upcoming(self.ctx.config.parallel_chunks) {
                    if let std::collections::hash_map::Entry::Vacant(slot) =
                        ahead.entry(upcoming.id)
                    {
                        let ctx = self.ctx.clone();
                        slot.insert(tokio::spawn(
                            async move { get_object(&ctx, upcoming.id).await },
                        ));
                    }
                }
                let ciphertext = match ahead.remove(&next.id) {
                    Some(task) => task.await??,
                    None => get_object(&self.ctx, next.id).await?,
                };
                let data = walker.feed(&next, &ciphertext)?;
                if let Some(data) = data {
                    output.write_all(&data).await?;
                    written += data.len() as u64;
                }
            }
            walker.finish()?;
            output.flush().await?;
            Ok(written)
        }
        .await;
        for task in ahead.into_values() {
            task.abort();
        }
        result
    }

    /// Counts the live fragments of every object under `capability`.
    pub async fn check(&self, capability: &Capability) -> Result<CheckReport, CheckError> {
        let ids = self.object_ids(capability).await?;
        self.check_ids(&ids).await
    }

    /// Counts the live fragments of each object of `ids`.
    pub async fn check_ids(&self, ids: &[ObjectId]) -> Result<CheckReport, CheckError> {
        let k = usize::from(self.ctx.config.k);
        let n = k + usize::from(self.ctx.config.m);
        let mut details = Vec::with_capacity(ids.len());
        for id in ids {
            details.push(self.check_object(*id, n).await?);
        }
        let fragments_alive = details.iter().map(|d| d.fragments_alive).sum();
        let min_alive = details.iter().map(|d| d.fragments_alive).min().unwrap_or(0);
        Ok(CheckReport {
            objects: ids.len(),
            fragments_total: n * ids.len(),
            fragments_alive,
            needed: k,
            min_alive,
            readable: min_alive >= k,
            details,
        })
    }

    /// Every object id under a capability: the root, and for a manifest
    /// tree every manifest and chunk (manifests are fetched to list them;
    /// the root is fetched to learn whether it is one).
    pub async fn object_ids(&self, capability: &Capability) -> Result<Vec<ObjectId>, GetError> {
        let mut ids = Vec::new();
        let mut walker = ObjectReader::new(capability.clone());
        while let Some(next) = walker.next_needed() {
            ids.push(next.id);
            if next.is_manifest() {
                let ciphertext = get_object(&self.ctx, next.id).await?;
                walker.feed(&next, &ciphertext)?;
            } else {
                walker.skip(&next)?;
            }
        }
        Ok(ids)
    }

    async fn check_object(&self, id: ObjectId, n: usize) -> Result<ObjectCheck, CheckError> {
        let closest = self
            .ctx
            .dht
            .closest_peers(id.as_bytes(), 2 * n)
            .await
            .map_err(CheckError::Placement)?;
        let mut indices = std::collections::BTreeSet::new();
        let mut holders = 0;
        // Spares too: after churn a fragment may sit just outside the placement.
        for peer in &closest {
            let probe = FragRequest::Probe { objects: vec![*id.as_bytes()] };
            if let Ok(FragResponse::Held(held)) = self.ctx.ask(*peer, probe).await {
                let held: Vec<u8> = held.into_iter().flatten().collect();
                if !held.is_empty() {
                    holders += 1;
                }
                indices.extend(held);
            }
        }
        Ok(ObjectCheck { id: id.to_string(), fragments_alive: indices.len().min(n), holders })
    }

    /// Extends the lease of every object under `capability` (manifests and
    /// chunks) to a full lease from now, on every close peer holding them.
    /// Owners call this for what they still reference; deletion is simply
    /// not refreshing.
    pub async fn refresh(&self, capability: &Capability) -> Result<RefreshReport, CheckError> {
        let ids = self.object_ids(capability).await?;
        let expires = self.ctx.default_expiry();
        let counts = self.renew(&ids, expires).await;
        let extended = counts.iter().map(|c| *c as u64).sum();
        Ok(RefreshReport { objects: ids.len(), fragments_extended: extended, expires })
    }

    /// Extends every fragment of `ids`, wherever near its placement it is
    /// held, to at least `expires` (capped by each holder); returns per
    /// object how many fragments holders say are leased that long.
    pub async fn renew(&self, ids: &[ObjectId], expires: u64) -> Vec<usize> {
        super::renew::renew(&self.ctx, ids, expires).await
    }

    /// The lease given to what is stored now.
    pub fn lease(&self) -> std::time::Duration {
        self.ctx.config.lease
    }

    /// Runs a maintenance pass now and reports what it did.
    pub async fn repair_now(&self) -> Option<RepairReport> {
        let (reply, rx) = oneshot::channel();
        self.repair.send(reply).await.ok()?;
        rx.await.ok()
    }

    /// Local store figures: (fragments, bytes).
    pub fn local_usage(&self) -> (u64, u64) {
        self.ctx.local.usage()
    }

    /// The quota's limits and totals now.
    pub fn quota(&self) -> super::QuotaStats {
        self.ctx.local.quota()
    }

    /// Bytes of fragments held here charged to `peer`.
    pub fn charged_to(&self, peer: &epost_dht::PeerId) -> u64 {
        self.ctx.local.charged_to(peer)
    }

    /// Fault injection for tests: flips one bit of a fragment of `id` held
    /// on this node's disk, as a failing disk would. Returns whether one was.
    #[doc(hidden)]
    pub async fn inject_corruption(&self, id: ObjectId) -> bool {
        self.ctx.local.flip_bit(id).await.unwrap_or(false)
    }

    /// Seals `data` as one object without storing it (for tests and tools).
    pub fn seal(&self, data: &[u8]) -> SealedObject {
        convergent::seal(&self.ctx.secret, convergent::Kind::Data, data)
    }
}
