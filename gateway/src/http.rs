//! The HTTP surface of the player port: lobby API, WebSocket upgrade, health, readiness
//! and the browser client's files (`/metrics` is on the ops port, see `run_with_ops`).
//! Every error answer is JSON, `{"error": "..."}`, including the extractors' rejections
//! (bad JSON, wrong fields, a body over the limit), unknown paths and wrong methods.

use std::sync::Arc;

use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use events::{Bus, MatchId};
use serde_json::json;

use crate::limits::MAX_FRAME_BYTES;
use crate::lobby::LobbyError;
use crate::wire::{CreateMatch, JoinMatch};
use crate::Gateway;

/// Largest lobby API request body.
pub const MAX_API_BODY_BYTES: usize = 16 * 1024;

/// Initial read buffer of one WebSocket connection. Client frames are small (commands,
/// pings; at most `MAX_FRAME_BYTES`, for which the buffer grows), and the library default
/// of 128 KiB per connection made an idle session cost ~140 KiB of gateway memory.
pub const WS_READ_BUFFER_BYTES: usize = 4 * 1024;

/// Bytes the WebSocket writer gathers before writing to the socket; every queued frame
/// is flushed anyway, so a small value only saves memory per connection.
pub const WS_WRITE_BUFFER_BYTES: usize = 4 * 1024;

/// The gateway's routes.
pub fn router<B: Bus>(gw: Arc<Gateway<B>>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/{file}", get(asset))
        .route("/health", get(health))
        .route("/ready", get(ready::<B>))
        .route("/api/matches", get(list::<B>).post(create::<B>))
        .route("/api/matches/{id}", get(show::<B>))
        .route("/api/matches/{id}/join", post(join::<B>))
        .route("/ws", get(ws::<B>))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_API_BODY_BYTES))
        .with_state(gw)
}

/// An error answer: `status` with `{"error": message}`. Extractor rejections, which axum
/// answers in plain text, are turned into these.
pub fn api_error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": message.to_string() }))).into_response()
}

async fn not_found() -> Response {
    api_error(StatusCode::NOT_FOUND, "not found")
}

async fn method_not_allowed() -> Response {
    api_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this path",
    )
}

impl IntoResponse for LobbyError {
    fn into_response(self) -> Response {
        let status = match &self {
            LobbyError::BadRequest(_) => StatusCode::BAD_REQUEST,
            LobbyError::NotFound(_) => StatusCode::NOT_FOUND,
            LobbyError::Conflict(_) => StatusCode::CONFLICT,
            LobbyError::Bus(_) => StatusCode::SERVICE_UNAVAILABLE,
            LobbyError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        api_error(status, self)
    }
}

fn file(name: &str) -> Response {
    match crate::assets::get(name) {
        Some((ctype, body)) => (
            [
                (header::CONTENT_TYPE, ctype),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response(),
        None => api_error(StatusCode::NOT_FOUND, "not found"),
    }
}

async fn index() -> Response {
    file("index.html")
}

async fn asset(name: Result<Path<String>, PathRejection>) -> Response {
    match name {
        Ok(Path(name)) => file(&name),
        Err(r) => api_error(r.status(), r.body_text()),
    }
}

async fn health() -> &'static str {
    "ok"
}

/// Ready when the bus answers (the gateway has no other dependency); a failure is tried
/// once more, on the fresh connection that replaces one a Redis restart broke.
async fn ready<B: Bus>(State(gw): State<Arc<Gateway<B>>>) -> Response {
    let matches = gw.keys.matches();
    match service::ops::retry_transient_once(|| gw.bus.len(&matches)).await {
        Ok(_) => Json(json!({
            "ready": true,
            "embedded": gw.embedded,
            "hubs": gw.hubs.len(),
        }))
        .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "ready": false, "error": e.to_string() })),
        )
            .into_response(),
    }
}

fn match_id(id: &str) -> Result<MatchId, LobbyError> {
    MatchId::new(id).map_err(|_| LobbyError::NotFound(id.to_string()))
}

async fn list<B: Bus>(State(gw): State<Arc<Gateway<B>>>) -> Response {
    match gw.lobby.list().await {
        Ok(l) => Json(l).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn show<B: Bus>(
    State(gw): State<Arc<Gateway<B>>>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let Path(id) = match id {
        Ok(id) => id,
        Err(r) => return api_error(r.status(), r.body_text()),
    };
    let res = async { gw.lobby.get(&match_id(&id)?).await }.await;
    match res {
        Ok(s) => Json(s).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn create<B: Bus>(
    State(gw): State<Arc<Gateway<B>>>,
    req: Result<Json<CreateMatch>, JsonRejection>,
) -> Response {
    let Json(req) = match req {
        Ok(r) => r,
        Err(r) => return api_error(r.status(), r.body_text()),
    };
    match gw.lobby.create(&req).await {
        Ok(c) => (StatusCode::CREATED, Json(c)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn join<B: Bus>(
    State(gw): State<Arc<Gateway<B>>>,
    id: Result<Path<String>, PathRejection>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Response {
    let (Path(id), body) = match (id, body) {
        (Ok(id), Ok(body)) => (id, body),
        (Err(r), _) => return api_error(r.status(), r.body_text()),
        (_, Err(r)) => return api_error(r.status(), r.body_text()),
    };
    let res = async {
        let req: JoinMatch = if body.iter().all(u8::is_ascii_whitespace) {
            JoinMatch::default()
        } else {
            serde_json::from_slice(&body).map_err(|e| LobbyError::BadRequest(e.to_string()))?
        };
        gw.lobby.join(&match_id(&id)?, &req).await
    }
    .await;
    match res {
        Ok(g) => Json(g).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn ws<B: Bus>(
    State(gw): State<Arc<Gateway<B>>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match upgrade {
        Ok(u) => u,
        Err(r) => return api_error(r.status(), r.body_text()),
    };
    let Ok(permit) = gw.sessions.clone().try_acquire_owned() else {
        metrics::counter!(crate::metrics::SESSIONS_REFUSED).increment(1);
        return api_error(StatusCode::SERVICE_UNAVAILABLE, "too many sessions");
    };
    upgrade
        .max_frame_size(MAX_FRAME_BYTES)
        .max_message_size(MAX_FRAME_BYTES)
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        .write_buffer_size(WS_WRITE_BUFFER_BYTES)
        .on_upgrade(move |socket| crate::session::handle(gw, socket, permit))
}
