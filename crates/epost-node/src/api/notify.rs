//! `/v1/notify`: send a notification from a hosted user; list what a
//! hosted user received; watch arrivals as JSON lines.

use std::str::FromStr;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use epost_types::capability::Capability;
use tokio::sync::broadcast;

use super::identity::{identity_error, parse_address};
use super::{ApiError, AppState};
use crate::control::SendNotification;
use crate::notify::{NotifyError, Received, SendReport};

pub(crate) async fn send(
    State(state): State<AppState>,
    Json(body): Json<SendNotification>,
) -> Result<Json<SendReport>, ApiError> {
    let from = parse_address(&body.from)?;
    let to = parse_address(&body.to)?;
    let capability = body
        .capability
        .map(|c| Capability::from_str(&c))
        .transpose()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_capability", e))?;
    state
        .notifications
        .send(&from, &to, capability, body.text)
        .await
        .map(Json)
        .map_err(notify_error)
}

pub(crate) async fn list(
    State(state): State<AppState>,
    Path(address): Path<String>,
) -> Result<Json<Vec<Received>>, ApiError> {
    let address = parse_address(&address)?;
    state.notifications.list(&address).map(Json).map_err(notify_error)
}

/// One JSON object per line for each notification `address` receives from
/// now on, until the client goes away.
pub(crate) async fn watch(
    State(state): State<AppState>,
    Path(address): Path<String>,
) -> Result<Response, ApiError> {
    let address = parse_address(&address)?;
    state.identity.user(&address).map_err(identity_error)?;
    let events = state.notifications.subscribe();
    let stream = futures::stream::unfold((events, address), |(mut events, address)| async move {
        loop {
            match events.recv().await {
                Ok(received) if received.to == address => {
                    let mut line = serde_json::to_vec(&received).unwrap_or_default();
                    line.push(b'\n');
                    return Some((Ok::<_, std::io::Error>(line), (events, address)));
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    let line = format!("{{\"lagged\":{n}}}\n").into_bytes();
                    return Some((Ok(line), (events, address)));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], Body::from_stream(stream))
        .into_response())
}

fn notify_error(e: NotifyError) -> ApiError {
    match e {
        NotifyError::Identity(e) => identity_error(e),
        NotifyError::Seal(_) => {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_notification", crate::chain::Chain(&e))
        }
        NotifyError::NotHeld(_) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_held", e),
        NotifyError::Stopped => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "stopping", e),
        NotifyError::Store(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store", e),
    }
}
