//! `/v1/logs/{address}/{name}`: append to and read a hosted user's log;
//! `/v1/heads/{address}/{name}`: anyone's log head, verified.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::identity::{identity_error, parse_address};
use super::{ApiError, AppState};
use crate::control::LogEntry;
use crate::logs::{AppendReport, HeadReport, LogError};
use crate::storage::GetError;

pub(crate) async fn append(
    State(state): State<AppState>,
    Path((address, name)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<AppendReport>, ApiError> {
    let address = parse_address(&address)?;
    state.logs.append(&address, &name, body.to_vec()).await.map(Json).map_err(log_error)
}

pub(crate) async fn read(
    State(state): State<AppState>,
    Path((address, name)): Path<(String, String)>,
) -> Result<Json<Vec<LogEntry>>, ApiError> {
    let address = parse_address(&address)?;
    let entries = state.logs.read(&address, &name).await.map_err(log_error)?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| LogEntry {
                seq: e.seq,
                time: e.time,
                data: data_encoding::BASE64.encode(&e.body),
                text: String::from_utf8(e.body).ok(),
            })
            .collect(),
    ))
}

pub(crate) async fn head(
    State(state): State<AppState>,
    Path((address, name)): Path<(String, String)>,
) -> Result<Json<HeadReport>, ApiError> {
    let address = parse_address(&address)?;
    state.logs.head(&address, &name).await.map(Json).map_err(log_error)
}

fn log_error(e: LogError) -> ApiError {
    match e {
        LogError::Identity(e) => identity_error(e),
        LogError::BadName { .. } | LogError::EntryTooLarge { .. } => {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e)
        }
        LogError::Empty { .. } => ApiError::new(StatusCode::NOT_FOUND, "empty_log", e),
        LogError::Get { source: GetError::NotEnoughFragments { .. }, .. } => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e)
        }
        LogError::Put(_) | LogError::Get { .. } | LogError::Head(_) | LogError::Book(_) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_durable", e)
        }
        LogError::Corrupt { .. } => ApiError::new(StatusCode::BAD_GATEWAY, "corrupt", e),
        LogError::Stopped => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "stopping", e),
    }
}
