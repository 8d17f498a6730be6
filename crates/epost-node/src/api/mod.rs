//! The control API: HTTP+JSON on a loopback address, for the `epost` CLI
//! and scripts. Every route but `/metrics` needs the bearer token the node
//! writes to its data directory (mode 0600), so only the node's user can
//! drive it.

mod body;
mod identity;
mod import;
mod logs;
mod mail;
mod notify;
mod objects;
mod queue;
mod status;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use epost_dht::DhtClient;
use serde::Serialize;
use tokio::net::TcpListener;

use crate::chain::Chain;
use crate::storage::StorageService;
use crate::worker::{DRAIN, Worker, Workers};

/// Bodies of the routes that take small values (log entries, JSON): a log
/// entry's limit plus room; anything larger is refused before it is read.
const SMALL_BODY: usize = epost_types::limits::MAX_LOG_ENTRY + 64 * 1024;

/// What the handlers share (all of it cheap to clone).
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) storage: StorageService,
    pub(crate) identity: crate::identity::Identity,
    pub(crate) logs: crate::logs::LogService,
    pub(crate) mail: crate::mail::MailService,
    pub(crate) outbound: crate::outbound::OutboundService,
    pub(crate) notifications: crate::notify::NotifyService,
    pub(crate) notify_holder: crate::notify::NotifyHolder,
    pub(crate) dht: DhtClient,
    pub(crate) renewer: crate::lease::Renewer,
    pub(crate) sweeper: crate::sweep::Sweeper,
    pub(crate) book: crate::lease::LeaseBook,
    /// The node's workers: reported by status, and where a request's
    /// own tasks are spawned.
    pub(crate) workers: Workers,
    pub(crate) token: Arc<str>,
}

/// A JSON error body with a status code: `{"error": "...", "kind": "..."}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, kind: &'static str, message: impl ToString) -> Self {
        Self { status, kind, message: message.to_string() }
    }

    /// The same error, its message preceded by what had been done.
    pub(crate) fn with_detail_prefix(mut self, prefix: &str) -> Self {
        self.message.insert_str(0, prefix);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body<'a> {
            error: &'a str,
            kind: &'a str,
        }
        (self.status, axum::Json(Body { error: &self.message, kind: self.kind })).into_response()
    }
}

/// A running API server.
pub(crate) struct ApiServer {
    pub(crate) addr: SocketAddr,
    worker: Worker,
}

impl ApiServer {
    pub(crate) async fn start(listen: SocketAddr, state: AppState) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let authed = Router::new()
            .route("/v1/status", get(status::status))
            // Streaming uploads are bounded by the storage pipeline.
            .route("/v1/objects", post(objects::put).layer(DefaultBodyLimit::disable()))
            .route("/v1/objects/{cap}", get(objects::get))
            .route("/v1/objects/{cap}/check", get(objects::check))
            .route("/v1/objects/{cap}/refresh", post(objects::refresh))
            .route("/v1/repair", post(objects::repair))
            .route("/v1/renew", post(objects::renew).get(objects::renew_progress))
            .route("/v1/realms", get(identity::realms).post(identity::realm_init))
            .route("/v1/realms/{domain}/mx", get(identity::mx).post(identity::mx_change))
            .route("/v1/trust", post(identity::trust))
            .route("/v1/users", get(identity::users).post(identity::add_user))
            .route("/v1/users/import", post(identity::import_user))
            .route("/v1/users/{address}", axum::routing::delete(identity::remove_user))
            .route("/v1/users/{address}/export", post(identity::export_user))
            .route("/v1/users/{address}/password", post(identity::set_password))
            .route("/v1/users/{address}/certificate", get(identity::certificate))
            .route("/v1/logs/{address}/{name}", get(logs::read).post(logs::append))
            .route("/v1/heads/{address}/{name}", get(logs::head))
            .route(
                "/v1/mail/{address}/send",
                post(mail::send).layer(DefaultBodyLimit::max(mail::MAX_MESSAGE)),
            )
            .route("/v1/mail/{address}/folders", get(mail::folders).post(mail::create_folder))
            .route(
                "/v1/mail/{address}/folders/{folder}",
                get(mail::messages)
                    .post(mail::append)
                    .delete(mail::delete_folder)
                    .layer(DefaultBodyLimit::max(mail::MAX_MESSAGE)),
            )
            .route("/v1/mail/{address}/folders/{folder}/rename", post(mail::rename_folder))
            .route(
                "/v1/mail/{address}/folders/{folder}/import",
                post(import::import).layer(DefaultBodyLimit::disable()),
            )
            .route("/v1/mail/{address}/folders/{folder}/{uid}", get(mail::message))
            .route("/v1/mail/{address}/folders/{folder}/{uid}/check", get(mail::check_message))
            .route("/v1/queue", get(queue::list))
            .route("/v1/queue/retry", post(queue::retry))
            .route("/v1/queue/{id}", axum::routing::delete(queue::delete))
            .route("/v1/notify", post(notify::send))
            .route("/v1/notify/{address}", get(notify::list))
            .route("/v1/notify/{address}/watch", get(notify::watch))
            .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
        let app = Router::new()
            .route("/metrics", get(status::metrics))
            .merge(authed)
            .layer(DefaultBodyLimit::max(SMALL_BODY));
        let workers = state.workers.clone();
        let app = app.with_state(state);
        let worker = workers.start("api", |ctx| async move {
            let stop = ctx.stop.clone();
            let serve = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.stopped().await });
            if let Err(e) = serve.await {
                ctx.failed(&e);
                tracing::error!(error = %Chain(&e), "control API stopped");
            }
        });
        Ok(Self { addr, worker })
    }

    /// Stops taking requests and waits for those in flight.
    pub(crate) async fn shutdown(self) {
        self.worker.shutdown(DRAIN).await;
    }
}

async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if presented.is_some_and(|t| constant_time_eq(t.as_bytes(), state.token.as_bytes())) {
        next.run(request).await
    } else {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong API token (see api.token in the data directory)",
        )
        .into_response()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
