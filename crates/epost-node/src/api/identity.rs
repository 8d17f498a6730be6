//! `/v1/realms`, `/v1/trust`, `/v1/users`: realm keys, trust, the
//! realm's MX record, and the users this node hosts (add, import,
//! export, password).

use std::str::FromStr;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use epost_types::address::Address;
use epost_types::sign::VerifyingKey;

use super::{ApiError, AppState};
use crate::control::{
    AddUser, ExportUser, ImportUser, MxChange, MxInfo, RealmInit, Realms, SetPassword, Trust,
    Trusted,
};
use crate::identity::{IdentityError, RealmInfo, UserInfo};

pub(crate) async fn realm_init(
    State(state): State<AppState>,
    Json(body): Json<RealmInit>,
) -> Result<Json<RealmInfo>, ApiError> {
    state.identity.realm_init(&body.domain).map(Json).map_err(identity_error)
}

pub(crate) async fn realms(State(state): State<AppState>) -> Json<Realms> {
    Json(Realms { held: state.identity.realms(), trusted: (*state.identity.trusted()).clone() })
}

pub(crate) async fn mx(
    State(state): State<AppState>,
    Path(domain): Path<String>,
) -> Result<Json<MxInfo>, ApiError> {
    let record = state.identity.lookup_mx(&domain).await.map_err(identity_error)?;
    Ok(Json(mx_info(&state, &record)))
}

pub(crate) async fn mx_change(
    State(state): State<AppState>,
    Path(domain): Path<String>,
    Json(body): Json<MxChange>,
) -> Result<Json<MxInfo>, ApiError> {
    let node = match body.peer.as_deref().map(str::trim) {
        None | Some("") => state.identity.node_key().verifying_key(),
        Some(text) => epost_dht::PeerId::from_str(text)
            .ok()
            .as_ref()
            .and_then(epost_dht::ed25519_key_of)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_peer",
                    format!("{text:?} is not an epost node's peer id (`epost status` prints it)"),
                )
            })?,
    };
    let record = state.identity.mx_set(&domain, node, body.named).await.map_err(identity_error)?;
    Ok(Json(mx_info(&state, &record)))
}

fn mx_info(state: &AppState, record: &epost_types::identity::mx::MxRecord) -> MxInfo {
    let me = state.identity.node_key().verifying_key();
    MxInfo {
        domain: record.domain.clone(),
        nodes: record
            .nodes
            .iter()
            .map(|key| {
                epost_dht::peer_id_of_key(key).map_or_else(|| key.to_string(), |p| p.to_string())
            })
            .collect(),
        serial: record.serial,
        expires: record.expires.as_millis(),
        this_node: record.names(&me),
    }
}

pub(crate) async fn trust(
    State(state): State<AppState>,
    Json(body): Json<Trust>,
) -> Result<Json<Trusted>, ApiError> {
    let key = VerifyingKey::from_str(body.key.trim()).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_key", format!("realm key: {e}"))
    })?;
    state.identity.trust(key, body.domain.as_deref()).map_err(identity_error)?;
    Ok(Json(Trusted {
        key: key.to_string(),
        domain: body.domain.unwrap_or_else(|| "*".to_owned()),
    }))
}

pub(crate) async fn add_user(
    State(state): State<AppState>,
    Json(body): Json<AddUser>,
) -> Result<Json<UserInfo>, ApiError> {
    let address = parse_address(&body.address)?;
    state
        .identity
        .add_user(address, body.password.as_deref())
        .await
        .map(Json)
        .map_err(identity_error)
}

pub(crate) async fn users(State(state): State<AppState>) -> Json<Vec<UserInfo>> {
    Json(state.identity.users())
}

pub(crate) async fn export_user(
    State(state): State<AppState>,
    Path(address): Path<String>,
    Json(body): Json<ExportUser>,
) -> Result<Response, ApiError> {
    let address = parse_address(&address)?;
    let bytes =
        state.identity.export_user(&address, body.passphrase.as_deref()).map_err(identity_error)?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

pub(crate) async fn import_user(
    State(state): State<AppState>,
    Json(body): Json<ImportUser>,
) -> Result<Json<UserInfo>, ApiError> {
    let bytes = data_encoding::BASE64.decode(body.bundle.trim().as_bytes()).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_bundle", format!("bundle is not base64: {e}"))
    })?;
    state
        .identity
        .import_user(&bytes, body.passphrase.as_deref(), body.password.as_deref())
        .await
        .map(Json)
        .map_err(identity_error)
}

pub(crate) async fn set_password(
    State(state): State<AppState>,
    Path(address): Path<String>,
    Json(body): Json<SetPassword>,
) -> Result<StatusCode, ApiError> {
    let address = parse_address(&address)?;
    state.identity.set_password(&address, &body.password).map_err(identity_error)?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn remove_user(
    State(state): State<AppState>,
    Path(address): Path<String>,
) -> Result<StatusCode, ApiError> {
    let address = parse_address(&address)?;
    state.identity.remove_user(&address).map_err(identity_error)?;
    // Nothing of theirs is renewed from here any more (after a move, their
    // new node renews it).
    state
        .book
        .forget(&address)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "lease_book", e))?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn certificate(
    State(state): State<AppState>,
    Path(address): Path<String>,
) -> Result<Json<epost_types::identity::Certificate>, ApiError> {
    let address = parse_address(&address)?;
    state.identity.lookup_certificate(&address).await.map(Json).map_err(identity_error)
}

pub(crate) fn parse_address(text: &str) -> Result<Address, ApiError> {
    Address::from_str(text.trim()).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_address", format!("{text:?}: {e}"))
    })
}

pub(crate) fn identity_error(e: IdentityError) -> ApiError {
    use IdentityError as E;
    let (status, kind) = match &e {
        E::BadAddress(_) => (StatusCode::BAD_REQUEST, "bad_address"),
        E::NoRealmKey { .. } => (StatusCode::CONFLICT, "no_realm_key"),
        E::UserExists { .. } => (StatusCode::CONFLICT, "user_exists"),
        E::UnknownUser { .. } => (StatusCode::NOT_FOUND, "unknown_user"),
        E::NoCertificate { .. } => (StatusCode::NOT_FOUND, "no_certificate"),
        E::NoMxRecord { .. } => (StatusCode::NOT_FOUND, "no_mx_record"),
        E::Mx(_) => (StatusCode::BAD_REQUEST, "bad_mx_record"),
        E::Bundle(_) => (StatusCode::BAD_REQUEST, "bad_bundle"),
        E::Certificate(_) | E::Presence(_) => (StatusCode::BAD_REQUEST, "untrusted"),
        E::Password(_) => (StatusCode::BAD_REQUEST, "bad_password"),
        E::Publish(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_published"),
        E::Unreachable { .. } | E::MxUnreachable { .. } => {
            (StatusCode::SERVICE_UNAVAILABLE, "unreachable")
        }
        E::Io { .. } | E::Damaged { .. } | E::Rng(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        }
    };
    ApiError::new(status, kind, e)
}
