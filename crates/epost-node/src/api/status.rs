//! `/v1/status` (JSON) and `/metrics` (Prometheus text).

use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use tokio::sync::broadcast;

use super::{ApiError, AppState};
use crate::control::{Status, WorkerState};

/// Longest `wait_secs` a status request may ask for.
const MAX_WAIT: Duration = Duration::from_secs(300);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatusQuery {
    /// Answer once this many peers are connected...
    min_peers: Option<usize>,
    /// ...or after this many seconds, whichever comes first.
    wait_secs: Option<u64>,
}

pub(crate) async fn status(
    State(state): State<AppState>,
    Query(query): Query<StatusQuery>,
) -> Result<Json<Status>, ApiError> {
    let stopping = || {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "stopping", "the overlay is shutting down")
    };
    // Subscribed before the first look, so no connection goes unseen.
    let mut events = state.dht.subscribe();
    let mut net = state.dht.status().await.ok_or_else(stopping)?;
    if let Some(wanted) = query.min_peers {
        let wait = Duration::from_secs(query.wait_secs.unwrap_or(0)).min(MAX_WAIT);
        let deadline = tokio::time::Instant::now() + wait;
        while net.connected_peers.len() < wanted {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(_) => break,
                Ok(Err(broadcast::error::RecvError::Closed)) => return Err(stopping()),
                Ok(_) => net = state.dht.status().await.ok_or_else(stopping)?,
            }
        }
    }
    let (fragments, bytes) = state.storage.local_usage();
    let (k, m) = state.storage.layout();
    let mut warnings = Vec::new();
    let nodes = net.connected_peers.len() + 1;
    let wanted = usize::from(k) + usize::from(m).div_ceil(2);
    if nodes < wanted {
        warnings.push(format!(
            "redundancy is reduced: {nodes} node(s) reachable, fewer than the {wanted} that {k}+{m} coding needs to spread one fragment per node"
        ));
    }
    if let Some(alone) = alone_warning(&net.joining) {
        warnings.push(alone);
    }
    let workers = state.workers.list();
    for w in workers.iter().filter(|w| w.state == WorkerState::Panicked) {
        warnings.push(format!(
            "the {} worker has stopped on a bug; restart the node (its log says why)",
            w.name
        ));
    }
    Ok(Json(Status {
        peer_id: net.peer_id.to_string(),
        peers: net.connected_peers.len(),
        known_peers: net.known_peers,
        listen_addrs: net.listen_addrs.iter().map(ToString::to_string).collect(),
        records: net.records,
        fragments,
        bytes,
        data_fragments: k,
        parity_fragments: m,
        warnings,
        workers,
        joining: Some(net.joining),
        reachability: Some(net.reachability),
    }))
}

/// What status warns while the node is not part of an overlay.
fn alone_warning(joining: &epost_dht::Joining) -> Option<String> {
    use epost_dht::Joining;
    match joining {
        Joining::Joined => None,
        Joining::Alone => Some(
            "no peer is connected and none is known to dial: this node serves its own users \
             only, until a peer dials it (check network.bootstrap in config.toml)"
                .to_owned(),
        ),
        Joining::Retrying { attempts, next_in_secs, last_error } => Some(format!(
            "no peer is connected: retrying the known peers in {next_in_secs} s ({attempts} round(s) so far{})",
            last_error.as_deref().map(|e| format!("; last error: {e}")).unwrap_or_default()
        )),
    }
}

pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut out = String::new();
    state.storage.metrics().render(&mut out);
    state.notify_holder.metrics().render(&mut out);
    state.workers.render(&mut out);
    state.outbound.render(&mut out);
    let (fragments, bytes) = state.storage.local_usage();
    out.push_str(&format!(
        "# TYPE epost_local_fragments gauge\nepost_local_fragments {}\n# TYPE epost_local_bytes gauge\nepost_local_bytes {}\n",
        fragments, bytes
    ));
    out.push_str(&format!(
        "# TYPE epost_swept_total counter\nepost_swept_total {}\n",
        state.sweeper.removed()
    ));
    if let Some(report) = state.renewer.last().await {
        out.push_str(&format!(
            "# TYPE epost_renew_last_renewed gauge\nepost_renew_last_renewed {}\n\
             # TYPE epost_renew_last_failed gauge\nepost_renew_last_failed {}\n\
             # TYPE epost_renew_last_finished_ms gauge\nepost_renew_last_finished_ms {}\n",
            report.renewed, report.failed, report.finished_at
        ));
    }
    let quota = state.storage.quota();
    out.push_str(&format!(
        "# TYPE epost_storage_capacity_bytes gauge\nepost_storage_capacity_bytes {}\n\
         # TYPE epost_storage_peer_quota_bytes gauge\nepost_storage_peer_quota_bytes {}\n\
         # TYPE epost_storage_sponsors gauge\nepost_storage_sponsors {}\n\
         # TYPE epost_storage_largest_peer_bytes gauge\nepost_storage_largest_peer_bytes {}\n",
        quota.limits.capacity,
        quota.limits.per_peer(),
        quota.sponsors,
        quota.largest_peer
    ));
    defence(&state.dht.defence(), &mut out);
    if let Some(net) = state.dht.status().await {
        out.push_str(&format!(
            "# TYPE epost_peers gauge\nepost_peers {}\n# TYPE epost_known_peers gauge\nepost_known_peers {}\n",
            net.connected_peers.len(),
            net.known_peers
        ));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}

/// The overlay's defence counters as Prometheus text.
fn defence(stats: &epost_dht::DefenceStats, out: &mut String) {
    use std::fmt::Write;
    let _ = writeln!(out, "# TYPE epost_connections_refused_total counter");
    for why in epost_dht::ConnectionRefusal::ALL {
        let _ = writeln!(
            out,
            "epost_connections_refused_total{{reason=\"{}\"}} {}",
            why.label(),
            stats.connections_refused(why)
        );
    }
    let _ = writeln!(out, "# TYPE epost_requests_throttled_total counter");
    for kind in epost_dht::Limited::ALL {
        let _ = writeln!(
            out,
            "epost_requests_throttled_total{{protocol=\"{}\"}} {}",
            kind.label(),
            stats.throttled(kind)
        );
    }
    let _ = writeln!(
        out,
        "# TYPE epost_flood_blocks_total counter\nepost_flood_blocks_total {}\n\
         # TYPE epost_flood_blocked_peers gauge\nepost_flood_blocked_peers {}",
        stats.flood_blocks, stats.benched
    );
}
