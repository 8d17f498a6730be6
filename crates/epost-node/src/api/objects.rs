//! `/v1/objects`: put a stream, get a capability back as a stream, check
//! an object's redundancy; `/v1/repair`: run a maintenance pass now.

use std::str::FromStr;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use epost_types::capability::Capability;
use futures::{StreamExt, TryStreamExt};
use tokio::sync::mpsc;
use tokio_stream_shim::ReceiverStream;

use super::body::{BodyItem, BodyWriter};
use super::{ApiError, AppState};
use crate::chain::Chain;
use crate::lease::{RenewProgress, RenewReport};
use crate::storage::{
    CheckError, CheckReport, GetError, PutError, PutReport, RefreshReport, RepairReport,
};

pub(crate) async fn put(
    State(state): State<AppState>,
    body: Body,
) -> Result<Json<PutReport>, ApiError> {
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let reader = tokio_util::io::StreamReader::new(stream);
    state.storage.put_reader(reader).await.map(Json).map_err(put_error)
}

pub(crate) async fn get(
    State(state): State<AppState>,
    Path(cap): Path<String>,
) -> Result<Response, ApiError> {
    let capability = parse_cap(&cap)?;
    let (tx, mut rx) = mpsc::channel::<BodyItem>(8);
    let storage = state.storage.clone();
    let errors = tx.clone();
    state.workers.spawn_tracked(async move {
        let mut writer = BodyWriter::new(tx);
        if let Err(e) = storage.get_to(&capability, &mut writer).await {
            let _ = errors.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    // Wait for the first piece: a failure before any data is a clean error
    // status; a failure after it aborts the body.
    let first = match rx.recv().await {
        Some(Err(e)) => return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", e)),
        other => other,
    };
    let stream = futures::stream::iter(first).chain(ReceiverStream::new(rx));
    Ok((StatusCode::OK, Body::from_stream(stream)).into_response())
}

pub(crate) async fn check(
    State(state): State<AppState>,
    Path(cap): Path<String>,
) -> Result<Json<CheckReport>, ApiError> {
    // A bare object id checks that one object (no key needed to count
    // fragments): what is left of a deleted message, say.
    if let Ok(id) = epost_types::id::ObjectId::from_str(&cap) {
        return state.storage.check_ids(&[id]).await.map(Json).map_err(check_error);
    }
    let capability = parse_cap(&cap)?;
    state.storage.check(&capability).await.map(Json).map_err(check_error)
}

pub(crate) async fn refresh(
    State(state): State<AppState>,
    Path(cap): Path<String>,
) -> Result<Json<RefreshReport>, ApiError> {
    let capability = parse_cap(&cap)?;
    state.storage.refresh(&capability).await.map(Json).map_err(check_error)
}

pub(crate) async fn repair(State(state): State<AppState>) -> Result<Json<RepairReport>, ApiError> {
    let mut report = state.storage.repair_now().await.ok_or_else(stopping)?;
    let swept = state
        .sweeper
        .sweep_now()
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store", e))?;
    // Fragments were collected by the pass itself.
    report.records_expired_removed = swept
        .iter()
        .filter(|s| s.keyspace != crate::keyspaces::BLOCKS.name())
        .map(|s| s.removed)
        .sum();
    Ok(Json(report))
}

pub(crate) async fn renew(State(state): State<AppState>) -> Result<Json<RenewReport>, ApiError> {
    state.renewer.renew_now().await.map(Json).ok_or_else(stopping)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProgressQuery {
    /// Answer once the pass under way has renewed this many objects...
    min_renewed: Option<u64>,
    /// ...or after this many seconds (at most 300), whichever comes first.
    wait_secs: Option<u64>,
}

/// How the renewal under way is going; with `min_renewed`, answers once
/// it got that far (a test kills the node mid-pass this way).
pub(crate) async fn renew_progress(
    State(state): State<AppState>,
    axum::extract::Query(query): axum::extract::Query<ProgressQuery>,
) -> Json<RenewProgress> {
    let mut progress = state.renewer.progress();
    if let Some(wanted) = query.min_renewed {
        let wait = std::time::Duration::from_secs(query.wait_secs.unwrap_or(0).min(300));
        let _ = tokio::time::timeout(wait, progress.wait_for(|p| p.renewed >= wanted)).await;
    }
    let now = progress.borrow().clone();
    Json(now)
}

fn stopping() -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "stopping", "the node is shutting down")
}

fn parse_cap(text: &str) -> Result<Capability, ApiError> {
    Capability::from_str(text)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_capability", e))
}

fn put_error(e: PutError) -> ApiError {
    let (status, kind) = match e {
        PutError::Input(_) => (StatusCode::BAD_REQUEST, "bad_input"),
        PutError::NotEnoughHolders { .. } | PutError::Placement(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, "not_durable")
        }
        PutError::Coding(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    ApiError::new(status, kind, Chain(&e))
}

fn check_error(e: CheckError) -> ApiError {
    match e {
        CheckError::Get(e) => get_error(e),
        CheckError::Placement(_) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_peers", Chain(&e))
        }
    }
}

fn get_error(e: GetError) -> ApiError {
    let (status, kind) = match e {
        GetError::NotEnoughFragments { .. } => (StatusCode::NOT_FOUND, "not_found"),
        GetError::Corrupt(_) | GetError::Tree(_) => (StatusCode::BAD_GATEWAY, "corrupt"),
        GetError::Placement(_) => (StatusCode::SERVICE_UNAVAILABLE, "no_peers"),
        GetError::Output(_) | GetError::ReadAhead(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        }
    };
    ApiError::new(status, kind, Chain(&e))
}

/// `mpsc::Receiver` as a `Stream`, without pulling in tokio-stream.
mod tokio_stream_shim {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::sync::mpsc;

    pub(crate) struct ReceiverStream<T>(mpsc::Receiver<T>);

    impl<T> ReceiverStream<T> {
        pub(crate) fn new(rx: mpsc::Receiver<T>) -> Self {
            Self(rx)
        }
    }

    impl<T> futures::Stream for ReceiverStream<T> {
        type Item = T;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
            self.0.poll_recv(cx)
        }
    }
}
