//! The holder side of `/epost/frag/1`: answers peers' fragment requests
//! from the local store. Nothing a peer sends is stored unless it passes
//! its own integrity check, and nothing read from disk is served unless it
//! passes again (a flipped bit on disk becomes "not found" plus a repair,
//! never bad data). What a peer stores or extends is charged to it, within
//! its quota and the node's capacity (`quota`); over either it is refused
//! (`OverQuota`, `NoSpace`), and the placing peer tries another.

use std::sync::Arc;

use epost_dht::{InboundFrag, PeerId};
use epost_types::fragment::Fragment;
use epost_types::id::ObjectId;
use epost_types::limits::MAX_RENEW;
use epost_types::wire::frag::{FragRequest, FragResponse, RefusalReason, WireId};
use tokio::sync::{Semaphore, mpsc};
use tracing::{debug, warn};

use super::Ctx;
use super::local::LocalError;
use super::metrics::Metrics;
use crate::worker::WorkerCtx;

/// Requests handled at once; more wait in the overlay's bounded queue.
const CONCURRENT_REQUESTS: usize = 64;

/// Serves inbound fragment requests until shutdown, then finishes the ones
/// already accepted (a `Stored` is only ever sent for durable data).
pub(crate) async fn serve(
    ctx: Arc<Ctx>,
    mut inbound: mpsc::Receiver<InboundFrag>,
    worker: WorkerCtx,
) {
    let limit = Arc::new(Semaphore::new(CONCURRENT_REQUESTS));
    loop {
        let request = tokio::select! {
            request = inbound.recv() => request,
            () = worker.stop.stopped() => None,
        };
        let Some(InboundFrag { peer, request, reply }) = request else { break };
        let Ok(permit) = limit.clone().acquire_owned().await else { break };
        let busy = worker.busy();
        let ctx = ctx.clone();
        let tasks = ctx.tasks.clone();
        tasks.spawn_tracked(async move {
            let _busy = busy;
            let response = answer(&ctx, peer, request).await;
            ctx.dht.respond(reply, response).await;
            drop(permit);
        });
    }
    // Wait for in-flight requests: acquiring every permit means all are done.
    let _ = limit.acquire_many(CONCURRENT_REQUESTS as u32).await;
}

/// Answers one request; also used directly when this node is its own holder.
pub(crate) async fn answer(ctx: &Ctx, peer: PeerId, request: FragRequest) -> FragResponse {
    match request {
        FragRequest::Store { fragments, expires } => store(ctx, peer, fragments, expires).await,
        FragRequest::Fetch { object, index } => {
            fetch(ctx, ObjectId::from_bytes(object), index).await
        }
        FragRequest::Probe { objects } => probe(ctx, &objects),
        FragRequest::Extend { objects, expires } => {
            let ids: Vec<ObjectId> = objects.iter().map(|o| ObjectId::from_bytes(*o)).collect();
            match ctx.local.extend(peer, &ids, expires.min(ctx.lease_cap())).await {
                Ok(held) => {
                    let count: usize = held.iter().map(Vec::len).sum();
                    FragResponse::Extended(u32::try_from(count).unwrap_or(u32::MAX))
                }
                Err(e) => refusal(ctx, &e),
            }
        }
        FragRequest::Renew { objects, expires } => renew(ctx, peer, &objects, expires).await,
    }
}

/// Extends what is held here of `objects`, the lease capped at twice this
/// node's own lease from now (owners renew long before that; nobody pins
/// fragments here for ever).
async fn renew(ctx: &Ctx, peer: PeerId, objects: &[WireId], expires: u64) -> FragResponse {
    if objects.len() > MAX_RENEW {
        return FragResponse::Refused {
            reason: RefusalReason::BadFragment,
            detail: format!("at most {} objects per renewal", MAX_RENEW),
        };
    }
    let cap = ctx.lease_cap();
    let ids: Vec<ObjectId> = objects.iter().map(|o| ObjectId::from_bytes(*o)).collect();
    match ctx.local.extend(peer, &ids, expires.min(cap)).await {
        Ok(held) => {
            let count = held.iter().map(|h| h.len() as u64).sum();
            Metrics::add(&ctx.metrics.fragments_renewed, count);
            FragResponse::Renewed(held)
        }
        Err(e) => refusal(ctx, &e),
    }
}

async fn store(
    ctx: &Ctx,
    peer: PeerId,
    encoded: Vec<serde_bytes::ByteBuf>,
    expires: u64,
) -> FragResponse {
    let mut fragments = Vec::with_capacity(encoded.len());
    for bytes in encoded {
        match Fragment::decode_verified(&bytes) {
            Ok(fragment) => fragments.push((fragment, bytes.into_vec())),
            Err(why) => {
                Metrics::inc(&ctx.metrics.fragments_rejected);
                warn!(%peer, %why, "refused a bad fragment");
                let detail = crate::chain::Chain(&why).to_string();
                return FragResponse::Refused { reason: RefusalReason::BadFragment, detail };
            }
        }
    }
    let count = fragments.len() as u64;
    // Capped as renewals are: nobody pins fragments here for ever.
    match ctx.local.put(peer, fragments, expires.min(ctx.lease_cap())).await {
        Ok(()) => {
            Metrics::add(&ctx.metrics.fragments_stored, count);
            FragResponse::Stored
        }
        Err(e) => {
            if matches!(e, LocalError::OverQuota { .. } | LocalError::TooManyPeers { .. }) {
                debug!(%peer, error = %e, "refused a store over the peer's quota");
            }
            refusal(ctx, &e)
        }
    }
}

async fn fetch(ctx: &Ctx, object: ObjectId, index: u8) -> FragResponse {
    match ctx.local.get(object, index).await {
        Ok(Some(bytes)) => {
            Metrics::inc(&ctx.metrics.fragments_served);
            FragResponse::Fragment(serde_bytes::ByteBuf::from(bytes))
        }
        Ok(None) => FragResponse::NotFound,
        Err(LocalError::Corrupt { .. }) => {
            // The bad copy is gone now; maintenance will rebuild it.
            Metrics::inc(&ctx.metrics.fragments_corrupt);
            debug!(%object, index, "dropped a corrupt fragment");
            FragResponse::NotFound
        }
        Err(e) => refusal(ctx, &e),
    }
}

fn probe(ctx: &Ctx, objects: &[WireId]) -> FragResponse {
    let now = epost_types::time::Timestamp::now().as_millis();
    let mut held = Vec::with_capacity(objects.len());
    for object in objects {
        match ctx.local.indices_leased_after(ObjectId::from_bytes(*object), now) {
            Ok(indices) => held.push(indices),
            Err(e) => return refusal(ctx, &e),
        }
    }
    FragResponse::Held(held)
}

/// The refusal for `error`, counted.
fn refusal(ctx: &Ctx, error: &LocalError) -> FragResponse {
    let reason = match error {
        LocalError::NoSpace | LocalError::Full { .. } => {
            Metrics::inc(&ctx.metrics.refused_no_space);
            RefusalReason::NoSpace
        }
        LocalError::OverQuota { .. } | LocalError::TooManyPeers { .. } => {
            Metrics::inc(&ctx.metrics.refused_over_quota);
            RefusalReason::OverQuota
        }
        LocalError::Corrupt { .. } | LocalError::Store(_) => RefusalReason::Internal,
    };
    FragResponse::Refused { reason, detail: error.to_string() }
}
