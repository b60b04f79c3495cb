//! The admin HTTP listener: `/metrics`, `/healthz`, `/readyz`, and the list
//! endpoints of the list administrators.
//!
//! | method, path | what |
//! | --- | --- |
//! | `GET /healthz` | 200 `ok` while the process runs |
//! | `GET /readyz` | 200 once the DNS sockets are bound and a list is in force; 503 with the reason otherwise |
//! | `GET /metrics` | Prometheus text format |
//! | `POST /v1/list/reload` | re-read `list.path` (bearer token) |
//! | `PUT /v1/list` | upload a list and its signature (bearer token) |
//!
//! `PUT /v1/list` takes a JSON body `{"list": "<list text>", "signature":
//! "<.minisig text>"}`. Both list endpoints answer JSON: `{"outcome":
//! "applied", "serial": ..., ...}` (200), `{"outcome": "unchanged", ...}`
//! (200) or `{"outcome": "refused", "reason": "..."}` (422); 401 without the
//! right `Authorization: Bearer <token>`; 403 when `admin.token_file` is not
//! set (the endpoints are then disabled).

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;

use crate::admission::{Admission, Source, Verdict};
use crate::dns::Handler;
use crate::list::Pair;
use crate::metrics::Metrics;

/// Largest accepted upload: a million-entry list is about 60 MB.
pub const MAX_BODY: usize = 256 << 20;

/// What the admin endpoints read.
#[derive(Debug, Clone)]
pub struct AdminState {
    /// The admission path.
    pub admission: Arc<Admission>,
    /// The metric handles.
    pub metrics: Arc<Metrics>,
    /// The DNS handler (for the policy in force and the cache size).
    pub handler: Handler,
    /// `true` once the DNS sockets are bound and served.
    pub serving: tokio::sync::watch::Receiver<bool>,
    /// The bearer token of the list endpoints; `None` disables them.
    pub token: Option<Arc<str>>,
}

/// Shortest bearer token accepted in `admin.token_file`.
pub const MIN_TOKEN_LEN: usize = 16;

/// Why `admin.token_file` cannot be used (both `serve` and `config check`
/// name the file with it).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file cannot be read.
    #[error("{0}")]
    Read(#[from] std::io::Error),
    /// The token is shorter than [`MIN_TOKEN_LEN`].
    #[error("the token must have at least {MIN_TOKEN_LEN} characters")]
    TooShort,
}

/// Read `admin.token_file`: its content, blanks around it trimmed, at
/// least [`MIN_TOKEN_LEN`] characters.
pub fn read_token(file: &std::path::Path) -> Result<Arc<str>, TokenError> {
    let text = std::fs::read_to_string(file)?;
    let token = text.trim();
    if token.len() < MIN_TOKEN_LEN {
        return Err(TokenError::TooShort);
    }
    Ok(Arc::from(token))
}

/// The router.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/list/reload", post(reload))
        .route("/v1/list", put(upload))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

async fn readyz(State(s): State<AdminState>) -> Response {
    if !*s.serving.borrow() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: DNS sockets not serving yet\n",
        )
            .into_response();
    }
    match s.handler.policy().load().info() {
        Some(info) => (
            StatusCode::OK,
            format!("ready: list serial {} in force\n", info.serial),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no list in force (serving unfiltered)\n",
        )
            .into_response(),
    }
}

async fn metrics(State(s): State<AdminState>) -> Response {
    let upstream = s.handler.upstream();
    s.metrics
        .upstream_state(s.handler.cache_bytes(), upstream.waiting());
    let body = s.metrics.render(upstream.cache_len());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Constant-time comparison of the presented token with ours.
fn authorised(s: &AdminState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let Some(token) = &s.token else {
        return Err(Box::new(
            (
                StatusCode::FORBIDDEN,
                "list endpoints disabled: set admin.token_file\n",
            )
                .into_response(),
        ));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let (a, b) = (presented.as_bytes(), token.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (x, y) in a.iter().zip(b.iter()) {
        diff |= usize::from(x ^ y);
    }
    if diff == 0 && !a.is_empty() {
        Ok(())
    } else {
        tracing::warn!("admin: request with a missing or wrong bearer token");
        Err(Box::new(
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "missing or wrong bearer token\n",
            )
                .into_response(),
        ))
    }
}

fn verdict(v: Verdict) -> Response {
    let status = match v {
        Verdict::Refused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    (status, axum::Json(v)).into_response()
}

async fn reload(State(s): State<AdminState>, headers: HeaderMap) -> Response {
    if let Err(r) = authorised(&s, &headers) {
        return *r;
    }
    verdict(s.admission.reread().await)
}

/// The body of `PUT /v1/list`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upload {
    /// The list text, as signed.
    pub list: String,
    /// The `.minisig` file's text.
    pub signature: String,
}

async fn upload(
    State(s): State<AdminState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) = authorised(&s, &headers) {
        return *r;
    }
    let upload: Upload = match serde_json::from_slice(&body) {
        Ok(u) => u,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("body: expected JSON {{\"list\": \"...\", \"signature\": \"...\"}}: {e}\n"),
            )
                .into_response();
        }
    };
    let pair = Pair {
        list: upload.list.into_bytes(),
        signature: upload.signature.into_bytes(),
    };
    verdict(s.admission.admit(Source::Push(pair)).await)
}
