//! `/v1/queue`: the outbound queue, listed and steered (`epost queue`).
//! Retry makes messages due now; delete takes one out without a bounce.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;

use super::{ApiError, AppState};
use crate::outbound::{ManageError, QueueChanged, QueueEntry, QueueId, RetryRequest};

fn manage_error(e: ManageError) -> ApiError {
    match e {
        ManageError::NoSuchMessage(_) => ApiError::new(StatusCode::NOT_FOUND, "no_such_message", e),
        other => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "queue", crate::chain::Chain(&other))
        }
    }
}

fn parse_id(text: &str) -> Result<QueueId, ApiError> {
    if QueueId::is_valid(text) {
        Ok(QueueId(text.to_owned()))
    } else {
        Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_id", format!("not a queue id: {text:?}")))
    }
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct ListQuery {
    /// Answer once the queue is empty, or after this many seconds (at
    /// most 300), whichever comes first.
    wait_empty_secs: Option<u64>,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Json<Vec<QueueEntry>> {
    let queue = state.outbound.queue();
    if let Some(secs) = query.wait_empty_secs {
        let wait = std::time::Duration::from_secs(secs.min(300));
        // Past the wait, the answer is what is still queued.
        let _ = tokio::time::timeout(wait, queue.drained()).await;
    }
    Json(queue.list().await)
}

pub(crate) async fn retry(
    State(state): State<AppState>,
    Json(body): Json<RetryRequest>,
) -> Result<Json<QueueChanged>, ApiError> {
    let id = body.id.map(|id| parse_id(&id.0)).transpose()?;
    state.outbound.queue().retry(id.as_ref()).await.map(Json).map_err(manage_error)
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<QueueChanged>, ApiError> {
    let id = parse_id(&id)?;
    state.outbound.queue().delete(&id).await.map(Json).map_err(manage_error)
}
