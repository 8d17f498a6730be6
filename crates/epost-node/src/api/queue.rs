//! `/v1/queue`: the outbound queue, listed and steered (`epost queue`).
//! Retry makes messages due now; delete takes one out without a bounce.

use axum::Json;
use axum::extract::{Path, State};
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

pub(crate) async fn list(State(state): State<AppState>) -> Json<Vec<QueueEntry>> {
    Json(state.outbound.queue().list().await)
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
