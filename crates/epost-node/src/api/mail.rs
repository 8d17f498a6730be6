//! `/v1/mail`: send as a hosted user, list, create, rename and delete
//! folders, list messages, read one message's exact bytes, and append
//! messages (import).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use epost_types::mail::MailOp;
use epost_types::mailbox::{Change, MailError, Recipient, Route};
use futures::StreamExt;
use serde::Deserialize;

use super::identity::parse_address;
use super::{ApiError, AppState};
use crate::chain::Chain;
use crate::control::{
    Appended, CreateFolder, FolderDeleted, FolderSummary, MessageSummary, RenameFolder, Sent,
};
use crate::mail::state::Folder;

/// Largest message the API takes, bytes.
pub(crate) const MAX_MESSAGE: usize = 64 * 1024 * 1024;
/// Messages read at once when listing a folder.
const PARALLEL: usize = 8;

pub(crate) fn mail_error(e: MailError) -> ApiError {
    let (status, kind) = match &e {
        MailError::NoFolder(_) | MailError::NoMessage(_) => (StatusCode::NOT_FOUND, "not_found"),
        MailError::NotHosted(_) | MailError::UnknownUser(_) => {
            (StatusCode::NOT_FOUND, "unknown_user")
        }
        MailError::FolderExists(_) => (StatusCode::CONFLICT, "exists"),
        MailError::NotAllowed(_) | MailError::Undeliverable { .. } => {
            (StatusCode::BAD_REQUEST, "not_allowed")
        }
        MailError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        MailError::Corrupt { .. } => (StatusCode::BAD_GATEWAY, "corrupt"),
        MailError::Unavailable { .. } | MailError::Stopped => {
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        }
    };
    ApiError::new(status, kind, Chain(&e))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SendQuery {
    /// Recipients, comma-separated.
    to: String,
}

/// Sends the raw message in the body from `address` (hosted here) to
/// every `to`; answers once it is durable for all of them.
pub(crate) async fn send(
    State(state): State<AppState>,
    Path(address): Path<String>,
    Query(query): Query<SendQuery>,
    raw: Bytes,
) -> Result<Json<Sent>, ApiError> {
    let from = parse_address(&address)?;
    state.mail.mailbox(&from).map_err(mail_error)?;
    let mut to = Vec::new();
    for rcpt in query.to.split(',').filter(|s| !s.trim().is_empty()) {
        let rcpt = parse_address(rcpt)?;
        match state.mail.route(&rcpt).await.map_err(mail_error)? {
            route @ (Route::Local | Route::Remote) => to.push(Recipient::new(rcpt, route)),
            Route::Unknown => {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "unknown_user",
                    format!("no such user: {rcpt}"),
                ));
            }
            Route::Foreign => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "foreign",
                    format!("{rcpt} is outside the realms trusted here"),
                ));
            }
        }
    }
    if to.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "no_recipient", "no recipient given"));
    }
    state.mail.deliver(Some(&from), &to, &raw).await.map_err(mail_error)?;
    Ok(Json(Sent {
        from: from.to_string(),
        to: to.iter().map(|r| r.address.to_string()).collect(),
        size: raw.len(),
    }))
}

/// A folder as the API lists it.
fn summary(name: &str, folder: &Folder, subscribed: bool) -> FolderSummary {
    FolderSummary {
        name: name.to_owned(),
        uid_validity: folder.uid_validity,
        uid_next: folder.uid_next,
        messages: folder.messages.len(),
        unseen: folder
            .messages
            .values()
            .filter(|m| !m.flags.iter().any(|f| f.eq_ignore_ascii_case("\\Seen")))
            .count(),
        subscribed,
    }
}

pub(crate) async fn folders(
    State(state): State<AppState>,
    Path(address): Path<String>,
) -> Result<Json<Vec<FolderSummary>>, ApiError> {
    let address = parse_address(&address)?;
    let mailbox = state.mail.mailbox(&address).map_err(mail_error)?;
    let list = mailbox
        .read(|s| s.folders.iter().map(|(name, f)| summary(name, f, s.subscribed(name))).collect())
        .await
        .map_err(mail_error)?;
    Ok(Json(list))
}

/// The folder `name` of `mailbox` as it is now.
async fn folder_summary(
    mailbox: &crate::mail::Mailbox,
    name: String,
) -> Result<FolderSummary, ApiError> {
    let owned = name.clone();
    let found = mailbox
        .read(move |s| s.folders.get(&owned).map(|f| summary(&owned, f, s.subscribed(&owned))))
        .await
        .map_err(mail_error)?;
    found.ok_or_else(|| mail_error(MailError::NoFolder(name)))
}

/// Makes a folder; `409 exists` if it is there already.
pub(crate) async fn create_folder(
    State(state): State<AppState>,
    Path(address): Path<String>,
    Json(request): Json<CreateFolder>,
) -> Result<(StatusCode, Json<FolderSummary>), ApiError> {
    let address = parse_address(&address)?;
    let mailbox = state.mail.mailbox(&address).map_err(mail_error)?;
    mailbox.change(Change::create(&request.name)).await.map_err(mail_error)?;
    Ok((StatusCode::CREATED, Json(folder_summary(&mailbox, request.name).await?)))
}

/// Renames a folder (INBOX: its messages move, INBOX stays, empty).
pub(crate) async fn rename_folder(
    State(state): State<AppState>,
    Path((address, folder)): Path<(String, String)>,
    Json(request): Json<RenameFolder>,
) -> Result<Json<FolderSummary>, ApiError> {
    let address = parse_address(&address)?;
    let mailbox = state.mail.mailbox(&address).map_err(mail_error)?;
    mailbox.change(Change::rename(&folder, &request.to)).await.map_err(mail_error)?;
    Ok(Json(folder_summary(&mailbox, request.to).await?))
}

/// Deletes a folder and what it holds (never INBOX).
pub(crate) async fn delete_folder(
    State(state): State<AppState>,
    Path((address, folder)): Path<(String, String)>,
) -> Result<Json<FolderDeleted>, ApiError> {
    let address = parse_address(&address)?;
    let mailbox = state.mail.mailbox(&address).map_err(mail_error)?;
    let messages = mailbox.folder(&folder).await.map_err(mail_error)?.messages.len();
    mailbox.change(MailOp::Delete { folder: folder.clone() }).await.map_err(mail_error)?;
    Ok(Json(FolderDeleted { name: folder, messages }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Answer once the folder holds this many messages...
    min_messages: Option<usize>,
    /// ...or after this many seconds (at most 300), whichever comes first.
    wait_secs: Option<u64>,
}

/// Every message of a folder with its main headers, in UID order.
pub(crate) async fn messages(
    State(state): State<AppState>,
    Path((address, folder)): Path<(String, String)>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<MessageSummary>>, ApiError> {
    let address = parse_address(&address)?;
    let mailbox = state.mail.mailbox(&address).map_err(mail_error)?;
    // Subscribed before the first look, so no arrival goes unseen.
    let mut changes = mailbox.changes();
    let mut found = mailbox.folder(&folder).await.map_err(mail_error)?;
    if let Some(wanted) = query.min_messages {
        let wait = std::time::Duration::from_secs(query.wait_secs.unwrap_or(0).min(300));
        let deadline = tokio::time::Instant::now() + wait;
        while found.messages.len() < wanted {
            if tokio::time::timeout_at(deadline, changes.recv()).await.is_err() {
                break;
            }
            found = mailbox.folder(&folder).await.map_err(mail_error)?;
        }
    }
    let folder = found;
    let mail = state.mail.clone();
    let list = futures::stream::iter(folder.messages.into_iter().map(|(uid, stored)| {
        let mail = mail.clone();
        async move {
            let mut summary = MessageSummary {
                uid,
                size: stored.message.size,
                internal_date: stored.message.internal_date,
                flags: stored.flags.clone(),
                envelope_from: stored.message.envelope_from.clone(),
                from: String::new(),
                to: String::new(),
                subject: String::new(),
                date: String::new(),
                error: None,
            };
            match mail.fetch(&stored.message).await {
                Ok(raw) => {
                    if let Some(parsed) = mail_parser::MessageParser::default().parse_headers(&raw)
                    {
                        let text = |name: &str| {
                            parsed.header_raw(name).map(|v| v.trim().to_owned()).unwrap_or_default()
                        };
                        summary.from = text("From");
                        summary.to = text("To");
                        summary.subject = parsed.subject().unwrap_or_default().to_owned();
                        summary.date = text("Date");
                    }
                }
                Err(e) => summary.error = Some(e.to_string()),
            }
            summary
        }
    }))
    .buffered(PARALLEL)
    .collect::<Vec<_>>()
    .await;
    Ok(Json(list))
}

/// One message's exact bytes.
pub(crate) async fn message(
    State(state): State<AppState>,
    Path((address, folder, uid)): Path<(String, String, u32)>,
) -> Result<Response, ApiError> {
    let address = parse_address(&address)?;
    let mailbox = state.mail.mailbox(&address).map_err(mail_error)?;
    let folder = mailbox.folder(&folder).await.map_err(mail_error)?;
    let stored = folder.messages.get(&uid).ok_or(MailError::NoMessage(uid)).map_err(mail_error)?;
    let raw = state.mail.fetch(&stored.message).await.map_err(mail_error)?;
    Ok(([(header::CONTENT_TYPE, "message/rfc822")], raw).into_response())
}

/// The redundancy of one message's objects: its manifest, its parts and
/// their chunks (what renewing it keeps).
pub(crate) async fn check_message(
    State(state): State<AppState>,
    Path((address, folder, uid)): Path<(String, String, u32)>,
) -> Result<Json<crate::storage::CheckReport>, ApiError> {
    let address = parse_address(&address)?;
    let mailbox = state.mail.mailbox(&address).map_err(mail_error)?;
    let folder = mailbox.folder(&folder).await.map_err(mail_error)?;
    let stored = folder.messages.get(&uid).ok_or(MailError::NoMessage(uid)).map_err(mail_error)?;
    let manifest = &stored.message.manifest;
    let members = crate::mail::message::member_ids(&state.storage, manifest)
        .await
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e))?;
    let ids: Vec<_> = std::iter::once(manifest.id).chain(members).collect();
    state
        .storage
        .check_ids(&ids)
        .await
        .map(Json)
        .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_peers", e))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppendQuery {
    /// INTERNALDATE, ms since the UNIX epoch (default: now).
    date: Option<u64>,
    /// Flags, comma-separated (`\Seen,\Flagged`).
    flags: Option<String>,
    /// The envelope sender (an mbox From_ line's).
    from: Option<String>,
}

/// Stores the body as a message in `folder`.
pub(crate) async fn append(
    State(state): State<AppState>,
    Path((address, folder)): Path<(String, String)>,
    Query(query): Query<AppendQuery>,
    raw: Bytes,
) -> Result<Json<Appended>, ApiError> {
    let address = parse_address(&address)?;
    let mailbox = state.mail.mailbox(&address).map_err(mail_error)?;
    mailbox.folder(&folder).await.map_err(mail_error)?;
    let (mut message, objects) =
        state.mail.store_message(&raw, &address).await.map_err(mail_error)?;
    if let Some(date) = query.date {
        message.internal_date = date;
    }
    message.envelope_from = query.from.filter(|f| !f.is_empty() && f.len() <= 256);
    let flags = query
        .flags
        .unwrap_or_default()
        .split(',')
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();
    let changed = mailbox
        .change(Change::insert(folder, message, flags, None, Some(objects)))
        .await
        .map_err(mail_error)?;
    let uid = changed.uids.first().copied().unwrap_or_default();
    Ok(Json(Appended { uid, uid_validity: changed.uid_validity }))
}
