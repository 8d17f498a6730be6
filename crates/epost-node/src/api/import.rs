//! `POST /v1/mail/{address}/folders/{folder}/import`: many messages in one
//! streamed request (framed as `crate::mail::import` says), stored several
//! at a time and inserted in the order they came, a group of them per
//! mail log entry (`epost import`). A frame over the limits, or a body
//! that ends inside one, is refused; what came before it is kept. With
//! `?create=true` a missing folder is made first.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use epost_types::address::Address;
use epost_types::mailbox::{Change, MailError};
use futures::{Stream, StreamExt};

use super::identity::parse_address;
use super::mail::{MAX_MESSAGE, mail_error};
use super::{ApiError, AppState};
use crate::chain::Chain;
use crate::control::{ImportQuery, Imported};
use crate::mail::MailService;
use crate::mail::import::{self, ImportMeta};

/// Messages stored at once.
const PARALLEL: usize = 8;
/// Messages inserted per group (one or a few log entries).
const GROUP: usize = 64;

fn bad(detail: impl ToString) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_import", detail)
}

/// Splits the body into (metadata, message) frames.
fn frames(body: Body) -> impl Stream<Item = Result<(ImportMeta, Bytes), ApiError>> {
    let chunks = Box::pin(body.into_data_stream());
    futures::stream::try_unfold((chunks, Vec::<u8>::new()), |(mut chunks, mut buf)| async move {
        loop {
            if let Some((frame, used)) =
                import::decode(&buf, MAX_MESSAGE).map_err(|e| bad(Chain(&e)))?
            {
                buf.drain(..used);
                return Ok(Some((frame, (chunks, buf))));
            }
            match chunks.next().await {
                Some(chunk) => buf.extend_from_slice(
                    &chunk.map_err(|e| bad(format!("the upload broke off: {e}")))?,
                ),
                None if buf.is_empty() => return Ok(None),
                None => return Err(bad("the upload ends inside a message")),
            }
        }
    })
}

pub(crate) async fn import(
    State(state): State<AppState>,
    Path((address, folder)): Path<(String, String)>,
    Query(query): Query<ImportQuery>,
    body: Body,
) -> Result<Json<Imported>, ApiError> {
    let address = parse_address(&address)?;
    let mailbox = state.mail.mailbox(&address).map_err(mail_error)?;
    match mailbox.folder(&folder).await {
        Ok(_) => {}
        Err(MailError::NoFolder(_)) if query.create => {
            match mailbox.change(Change::create(&folder)).await {
                // Made meanwhile by someone else: import into it all the same.
                Ok(_) | Err(MailError::FolderExists(_)) => {}
                Err(e) => return Err(mail_error(e)),
            }
        }
        Err(e) => return Err(mail_error(e)),
    }
    let mail = state.mail.clone();
    let target = folder.clone();
    let mut stored = frames(body)
        .map(|frame| {
            let mail = mail.clone();
            let address = address.clone();
            let folder = target.clone();
            async move { insert_for(&mail, &address, &folder, frame?).await }
        })
        .buffered(PARALLEL)
        .chunks(GROUP)
        .boxed();
    let mut imported = 0u64;
    while let Some(group) = stored.next().await {
        // The messages before a bad frame are filed; then the error says
        // how many were.
        let mut changes = Vec::with_capacity(group.len());
        let mut failed = None;
        for result in group {
            match result {
                Ok(change) => changes.push(change),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let count = changes.len() as u64;
        if count > 0 {
            for result in mailbox.change_all(changes).await.map_err(mail_error)? {
                result.map_err(mail_error)?;
            }
        }
        imported += count;
        if let Some(e) = failed {
            return Err(e.with_detail_prefix(&format!("{imported} messages imported before: ")));
        }
    }
    Ok(Json(Imported { imported, folder }))
}

/// Stores one message; the insert that files it.
async fn insert_for(
    mail: &MailService,
    address: &Address,
    folder: &str,
    (meta, raw): (ImportMeta, Bytes),
) -> Result<Change, ApiError> {
    let (mut message, objects) = mail.store_message(&raw, address).await.map_err(mail_error)?;
    if let Some(date) = meta.date {
        message.internal_date = date;
    }
    message.envelope_from = meta.from.filter(|f| !f.is_empty() && f.len() <= 256);
    let flags = meta.flags.into_iter().filter(|f| !f.is_empty()).collect();
    Ok(Change::insert(folder, message, flags, None, Some(objects)))
}
