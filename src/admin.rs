//! The admin HTTP listener: `/metrics`, `/healthz`, `/readyz`, and the list
//! endpoints of the list administrators.
//!
//! | method, path | what |
//! | --- | --- |
//! | `GET /healthz` | 200 `ok` while the process runs |
//! | `GET /readyz` | 200 once the DNS sockets are bound and a list is in force; 503 with the reason otherwise |
//! | `GET /metrics` | Prometheus text format |
//! | `POST /v1/list/reload` | re-read list `main`'s file (or the only list's; fetch it for a list with `url`) (bearer token) |
//! | `PUT /v1/list` | upload list `main` (or the only list) and its signature (bearer token) |
//! | `POST /v1/lists/{id}/reload` | re-read list `id`'s file (or fetch it) (bearer token) |
//! | `PUT /v1/lists/{id}` | upload list `id` and its signature (bearer token) |
//!
//! An unknown list id is 404; `/v1/list` with several lists and none named
//! `main` is 404 too, saying to name the list.
//!
//! `PUT /v1/list` takes a JSON body `{"list": "<list text>", "signature":
//! "<.minisig text>"}`. Both list endpoints answer JSON: `{"outcome":
//! "applied", "serial": ..., ...}` (200), `{"outcome": "unchanged", ...}`
//! (200) or `{"outcome": "refused", "reason": "..."}` (422), each with
//! `"list": "<id>"`, the list judged; 401 without the
//! right `Authorization: Bearer <token>`; 403 when `admin.token_file` is not
//! set (the endpoints are then disabled).
//!
//! The listener is bounded (STYLE habit 13), each bound documented in
//! [`Limits`]: at most `max_connections` connections at once, one request
//! per connection, its headers within `header_timeout`, an upload's body
//! within `body_timeout`, the whole connection within `request_timeout`.
//! Each bound reached is a `warn` log line naming its key.
//!
//! The token is checked from the request's headers before a byte of its
//! body is read: a client without it cannot make the listener read, let
//! alone keep, an upload. The body is then read under [`MAX_BODY`], counted
//! as it streams in (413 past it, whatever `Content-Length` said), and
//! never held whole: it is written to the list's state directory as it
//! arrives, then decoded a piece at a time, the list's text going to a
//! file of its own, which is judged like a list file (the JSON of a
//! million-entry list is 70 MB; held and decoded in memory it took three
//! times that).

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tracing::{debug, warn};

use crate::admission::{Admission, Lists, Source, Verdict};
use crate::dns::Handler;
use crate::metrics::Metrics;

/// Largest accepted upload: a million-entry list is about 60 MB.
pub const MAX_BODY: usize = 256 << 20;

/// What the admin endpoints read.
#[derive(Debug, Clone)]
pub struct AdminState {
    /// Every list's admission path.
    pub lists: Arc<Lists>,
    /// The metric handles.
    pub metrics: Arc<Metrics>,
    /// The DNS handler (for the policy in force and the cache size).
    pub handler: Handler,
    /// `true` once the DNS sockets are bound and served.
    pub serving: tokio::sync::watch::Receiver<bool>,
    /// The bearer token of the list endpoints; `None` disables them.
    pub token: Option<Arc<str>>,
    /// The listener's bounds (the handlers apply `body_timeout`).
    pub limits: Limits,
}

pub use crate::config::AdminLimits as Limits;

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
    /// The group or others may read (or write) the file.
    #[error(
        "mode {mode:04o} lets the group or others at the token: make the file readable by its owner only (chmod 600)"
    )]
    Exposed {
        /// The file's permission bits.
        mode: u32,
    },
}

/// Read `admin.token_file`: its content, blanks around it trimmed, at
/// least [`MIN_TOKEN_LEN`] characters, from a file neither its group nor
/// others may read or write (`mode & 0o077 == 0`): anyone who can read the
/// token can replace the list in force.
pub fn read_token(file: &std::path::Path) -> Result<Arc<str>, TokenError> {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;

    // The mode is read from the file opened, not from the path, so that
    // the file checked is the file read.
    let mut opened = std::fs::File::open(file)?;
    let mode = opened.metadata()?.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(TokenError::Exposed { mode });
    }
    let mut text = String::new();
    opened.read_to_string(&mut text)?;
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
        .route("/v1/lists/{id}/reload", post(reload_list))
        .route("/v1/lists/{id}", put(upload_list))
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
    match in_force_status(&s.handler.policy().load()) {
        Ok(status) => (StatusCode::OK, format!("ready: {status} in force\n")).into_response(),
        Err(missing) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: no list in force{missing} (serving unfiltered)\n"),
        )
            .into_response(),
    }
}

/// What is in force: `list serial N` for one list, `lists a serial N, b
/// serial M` for several; or, when a list has nothing in force, nothing
/// for one list and ` for lists a, b` (those without) for several.
pub fn in_force_status(snapshot: &crate::policy::Snapshot) -> Result<String, String> {
    let lists = snapshot.lists();
    let missing: Vec<&str> = lists
        .iter()
        .filter(|p| p.info().is_none())
        .map(|p| p.list())
        .collect();
    if !missing.is_empty() {
        return Err(if lists.len() == 1 {
            String::new()
        } else {
            format!(" for lists {}", missing.join(", "))
        });
    }
    Ok(match lists {
        [one] => format!("list serial {}", one.info().map_or(0, |i| i.serial)),
        several => format!(
            "lists {}",
            several
                .iter()
                .map(|p| format!("{} serial {}", p.list(), p.info().map_or(0, |i| i.serial)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
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

/// Check the bearer token, from the headers alone (no body is read yet).
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
    if !presented.is_empty() && same_token(presented.as_bytes(), token.as_bytes()) {
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

/// Compare in time that depends on neither the tokens' content nor their
/// lengths: both are hashed to 32 bytes first (a length difference is not
/// seen by the comparison), then the digests are compared with `subtle`,
/// whose comparison the optimiser cannot turn into an early exit.
fn same_token(presented: &[u8], ours: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    let (a, b) = (Sha256::digest(presented), Sha256::digest(ours));
    a.as_slice().ct_eq(b.as_slice()).into()
}

/// The verdict on list `list` as the endpoints answer it: the
/// [`Verdict`]'s fields and `list`, the id.
fn verdict(list: &str, v: Verdict) -> Response {
    let status = match v {
        Verdict::Refused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        // The origin of a fetched list did not answer as it should.
        Verdict::Failed { .. } => StatusCode::BAD_GATEWAY,
        _ => StatusCode::OK,
    };
    let mut body = serde_json::to_value(&v).unwrap_or_default();
    if let Some(fields) = body.as_object_mut() {
        fields.insert("list".to_owned(), list.into());
    }
    (status, axum::Json(body)).into_response()
}

/// Why the admin listener's TLS cannot be set up (`serve` and `config
/// check` refuse the config with it, exit 1).
pub use crate::tls::TlsError;

/// The TLS side of the admin listener from PEM files: the certificate
/// chain (server certificate first) and its private key (read by
/// [`crate::tls::load`]). rustls with the ring provider, its safe default
/// versions (TLS 1.2 and 1.3) and cipher suites, no client certificate
/// (the bearer token authenticates), ALPN `http/1.1`.
pub fn tls_acceptor(certificate: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
    let pair = crate::tls::load("admin", certificate, key)?;
    let resolver = Arc::new(rustls::sign::SingleCertAndKey::from(pair));
    let config =
        crate::tls::server_config(resolver, &[b"http/1.1"]).map_err(|source| TlsError::Rustls {
            section: "admin",
            source,
        })?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// How long a connection may go on once the listener stops: a slow upload
/// must not hold the resolver's stop (systemd kills after
/// `TimeoutStopSec`). An admission under way is not cut by it.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// Serve the router on `listener` within `limits` until `shutdown`
/// completes; then stop accepting, let each connection finish its request
/// (within [`STOP_GRACE`]) and return.
///
/// One request per connection (no keep-alive): a connection's life is then
/// one request's, so `request_timeout` bounds how long any client holds one
/// of the `max_connections` slots, even one that never reads its answer.
/// Scrapers and `list push` open a connection per request anyway.
///
/// With `tls`, each connection is a TLS one: its handshake must end within
/// `header_timeout` (then its headers within `header_timeout` again), all
/// within `request_timeout`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (closing, closed) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, client) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little
                    // rather than spin on the same error.
                    warn!(error = %e, "admin: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            warn!(
                %client,
                limit = limits.max_connections,
                "admin: connection closed at accept: admin.max_connections reached"
            );
            continue;
        };
        let router = router.clone();
        let closed = closed.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let deadline = tokio::time::Instant::now() + limits.request_timeout;
            let Some(tls) = tls else {
                return connection(stream, client, router, limits, deadline, closed).await;
            };
            let handshake = deadline.min(tokio::time::Instant::now() + limits.header_timeout);
            match tokio::time::timeout_at(handshake, tls.accept(stream)).await {
                Ok(Ok(stream)) => {
                    connection(stream, client, router, limits, deadline, closed).await;
                }
                Ok(Err(e)) => debug!(%client, error = %e, "admin: TLS handshake failed"),
                Err(_) => warn!(
                    %client,
                    limit_ms = limits.header_timeout.as_millis() as u64,
                    "admin: connection closed: admin.header_timeout_ms reached (TLS handshake)"
                ),
            }
        });
    }
    let _ = closing.send(true);
    // Every connection holds a slot until it ends: all slots back means
    // all connections ended.
    let _ = slots.acquire_many(limits.max_connections as u32).await;
    Ok(())
}

/// Serve one connection's one request within `limits`, closing it at
/// `deadline` (`request_timeout` after accept).
async fn connection<S>(
    stream: S,
    client: SocketAddr,
    router: Router,
    limits: Limits,
    deadline: tokio::time::Instant,
    mut closed: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = hyper_util::rt::TokioIo::new(stream);
    let service = hyper_util::service::TowerToHyperService::new(router);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(false);
    let conn = http.serve_connection(io, service);
    tokio::pin!(conn);
    let served = tokio::select! {
        r = conn.as_mut() => r,
        _ = async { closed.wait_for(|c| *c).await.map(|_| ()) } => {
            // Stopping: finish the request under way, take no other.
            conn.as_mut().graceful_shutdown();
            let grace = deadline.min(tokio::time::Instant::now() + STOP_GRACE);
            match tokio::time::timeout_at(grace, conn.as_mut()).await {
                Ok(r) => r,
                Err(_) => return,
            }
        }
        () = tokio::time::sleep_until(deadline) => {
            warn!(
                %client,
                limit_ms = limits.request_timeout.as_millis() as u64,
                "admin: connection closed: admin.request_timeout_ms reached"
            );
            return;
        }
    };
    if let Err(e) = served {
        if e.is_timeout() {
            warn!(
                %client,
                limit_ms = limits.header_timeout.as_millis() as u64,
                "admin: connection closed: admin.header_timeout_ms reached"
            );
        } else {
            debug!(%client, error = %e, "admin: connection ended with an error");
        }
    }
}

/// Run an admission in its own task: the answer may be dropped (the client
/// left, `request_timeout`), the admission still runs to its end, so that
/// it never stops between keeping a list and putting it in force.
async fn admitted<F>(list: &str, admission: F) -> Response
where
    F: Future<Output = Verdict> + Send + 'static,
{
    match tokio::spawn(admission).await {
        Ok(v) => verdict(list, v),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("admission failed: {e}\n"),
        )
            .into_response(),
    }
}

/// The list `id` names (`None`: the one the single-list endpoints mean),
/// or the 404 that says why there is none.
fn list_named(s: &AdminState, id: Option<&str>) -> Result<Arc<Admission>, Box<Response>> {
    let found = match id {
        Some(id) => s.lists.get(id),
        None => s.lists.main(),
    };
    found.cloned().ok_or_else(|| {
        let known: Vec<&str> = s.lists.all().iter().map(|a| a.id()).collect();
        let what = match id {
            Some(id) => format!("no list {id:?}"),
            None => "several lists and none is \"main\": name one (/v1/lists/{id})".to_owned(),
        };
        Box::new(
            (
                StatusCode::NOT_FOUND,
                format!("{what}; lists: {}\n", known.join(", ")),
            )
                .into_response(),
        )
    })
}

async fn reload(State(s): State<AdminState>, headers: HeaderMap) -> Response {
    reload_named(s, headers, None).await
}

async fn reload_list(
    State(s): State<AdminState>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    reload_named(s, headers, Some(id)).await
}

async fn reload_named(s: AdminState, headers: HeaderMap, id: Option<String>) -> Response {
    if let Err(r) = authorised(&s, &headers) {
        return *r;
    }
    let admission = match list_named(&s, id.as_deref()) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let id = admission.id().to_owned();
    admitted(&id, async move { admission.reread().await }).await
}

/// Why a body was not received whole.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    /// Over [`MAX_BODY`] (declared or counted).
    #[error("body over {MAX_BODY} bytes")]
    TooLarge,
    /// The connection failed while reading.
    #[error("body: {0}")]
    Read(#[from] axum::Error),
    /// It could not be written to the state directory.
    #[error("cannot write the upload to the state directory: {0}")]
    Write(#[from] std::io::Error),
}

impl BodyError {
    fn response(&self) -> Response {
        let status = match self {
            BodyError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Read(_) => StatusCode::BAD_REQUEST,
            BodyError::Write(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, format!("{self}\n")).into_response()
    }
}

/// The temporary files of one upload in its list's state directory: the
/// body as received, and the list and signature decoded from it. Removed
/// when dropped, however the upload ends; named `.*.tmp` (and the
/// signature `.*.tmp.minisig`) so that a start removes any left by a
/// crash.
struct UploadFiles {
    body: std::path::PathBuf,
    list: std::path::PathBuf,
}

impl UploadFiles {
    fn new(dir: &Path) -> UploadFiles {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stem = format!(".pushed.{}.{n}", std::process::id());
        UploadFiles {
            body: dir.join(format!("{stem}.json.tmp")),
            list: dir.join(format!("{stem}.list.tmp")),
        }
    }
}

impl Drop for UploadFiles {
    fn drop(&mut self) {
        for path in [
            &self.body,
            &self.list,
            &crate::list::signature_path(&self.list),
        ] {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Bytes handed to the writing thread at a time: the connection's chunks
/// are copied into pieces this large, which the allocator maps on their own
/// ([`crate::alloc::BIG`]). Handing the chunks themselves over made them
/// freed by another thread than the one that allocated them, which
/// mimalloc keeps resident for a while: 50 MiB more for a 1M-entry list.
const PIECE: usize = crate::alloc::BIG;

/// Send the body to `to` (the thread writing it) a [`PIECE`] at a time, at
/// most `limit` bytes: a `Content-Length` over it is refused before
/// reading, and the bytes are counted as they arrive (a chunked body
/// declares nothing).
async fn send_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    to: tokio::sync::mpsc::Sender<Option<Vec<u8>>>,
) -> Result<(), BodyError> {
    use futures_util::StreamExt;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut received = 0;
    let mut piece = Vec::with_capacity(PIECE);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        received += chunk.len();
        if received > limit {
            return Err(BodyError::TooLarge);
        }
        if piece.len() + chunk.len() > PIECE && !piece.is_empty() {
            let full = std::mem::replace(&mut piece, Vec::with_capacity(PIECE));
            // The writer stopped: it says why.
            if to.send(Some(full)).await.is_err() {
                return Ok(());
            }
        }
        piece.extend_from_slice(&chunk);
    }
    // The whole body: the writer may decode it.
    if to.send(Some(piece)).await.is_ok() {
        let _ = to.send(None).await;
    }
    Ok(())
}

/// Write the pieces from `from` to `files.body` until the sender says the
/// body is whole (`None`), then [`unpack`] it; a body cut short (over the
/// bound, timed out, the client gone) is not decoded. Blocking: one
/// thread writes and decodes (a few pieces wait in the channel at most).
fn receive(
    mut from: tokio::sync::mpsc::Receiver<Option<Vec<u8>>>,
    files: &UploadFiles,
) -> Result<Result<(), String>, std::io::Error> {
    use std::io::Write;
    let mut out = std::fs::File::create(&files.body)?;
    loop {
        match from.blocking_recv() {
            Some(Some(chunk)) => out.write_all(&chunk)?,
            Some(None) => break,
            None => return Ok(Err("the body was cut short".to_owned())),
        }
    }
    out.flush()?;
    drop(out);
    Ok(unpack(&files.body, &files.list))
}

/// Decode the body of `PUT /v1/list`, `{"list": "<list text>",
/// "signature": "<.minisig text>"}`, from the file `body`: the list's text
/// is written to `list` as it is decoded, the signature's beside it. Any
/// other field, a field twice or a signature over
/// [`MAX_SIGNATURE_BYTES`](crate::list::pair::MAX_SIGNATURE_BYTES) is
/// refused. Blocking.
fn unpack(body: &Path, list: &Path) -> Result<(), String> {
    use std::io::{Read, Write};
    use struson::reader::{JsonReader, JsonStreamReader};
    let max_signature = crate::list::pair::MAX_SIGNATURE_BYTES;
    let file = std::fs::File::open(body).map_err(|e| e.to_string())?;
    let mut json = JsonStreamReader::new(std::io::BufReader::with_capacity(1 << 16, file));
    let (mut got_list, mut got_signature) = (false, false);
    json.begin_object().map_err(|e| e.to_string())?;
    while json.has_next().map_err(|e| e.to_string())? {
        let name = json.next_name_owned().map_err(|e| e.to_string())?;
        let (target, got) = match name.as_str() {
            "list" => (list.to_owned(), &mut got_list),
            "signature" => (crate::list::signature_path(list), &mut got_signature),
            other => {
                return Err(format!(
                    "unknown field `{other}`, expected `list` or `signature`"
                ));
            }
        };
        if std::mem::replace(got, true) {
            return Err(format!("duplicate field `{name}`"));
        }
        let mut out = std::io::BufWriter::with_capacity(
            1 << 16,
            std::fs::File::create(&target).map_err(|e| e.to_string())?,
        );
        let text = json.next_string_reader().map_err(|e| e.to_string())?;
        let copied = if name == "signature" {
            std::io::copy(&mut text.take(max_signature + 1), &mut out)
        } else {
            std::io::copy(&mut { text }, &mut out)
        }
        .map_err(|e| format!("field `{name}`: {e}"))?;
        if name == "signature" && copied > max_signature {
            return Err(format!("field `signature`: over {max_signature} bytes"));
        }
        out.flush().map_err(|e| e.to_string())?;
    }
    json.end_object().map_err(|e| e.to_string())?;
    json.consume_trailing_whitespace()
        .map_err(|e| e.to_string())?;
    for (got, name) in [(got_list, "list"), (got_signature, "signature")] {
        if !got {
            return Err(format!("missing field `{name}`"));
        }
    }
    Ok(())
}

async fn upload(State(s): State<AdminState>, headers: HeaderMap, body: Body) -> Response {
    upload_named(s, headers, body, None).await
}

async fn upload_list(
    State(s): State<AdminState>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    upload_named(s, headers, body, Some(id)).await
}

async fn upload_named(
    s: AdminState,
    headers: HeaderMap,
    body: Body,
    id: Option<String>,
) -> Response {
    // The token first, from the headers: a request without it is answered
    // before its body is read; then the list, before the body too.
    if let Err(r) = authorised(&s, &headers) {
        return *r;
    }
    let admission = match list_named(&s, id.as_deref()) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let files = UploadFiles::new(admission.state_dir());
    let (to_writer, from_body) = tokio::sync::mpsc::channel(2);
    let writer = tokio::task::spawn_blocking(move || {
        let received = receive(from_body, &files);
        (files, received)
    });
    let read = tokio::time::timeout(
        s.limits.body_timeout,
        send_body(&headers, body, MAX_BODY, to_writer),
    );
    // On every way out the sender is dropped: the writer ends, and its
    // files are removed with it unless kept below.
    match read.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return e.response(),
        Err(_) => {
            warn!(
                limit_ms = s.limits.body_timeout.as_millis() as u64,
                "admin: upload refused: admin.body_timeout_ms reached"
            );
            return (
                StatusCode::REQUEST_TIMEOUT,
                "body not received within admin.body_timeout_ms\n",
            )
                .into_response();
        }
    };
    let (files, unpacked) = match writer.await {
        Ok((files, Ok(unpacked))) => (files, unpacked),
        Ok((_, Err(e))) => return BodyError::Write(e).response(),
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("upload failed: {e}\n"),
            )
                .into_response();
        }
    };
    if let Err(e) = unpacked {
        return (
            StatusCode::BAD_REQUEST,
            format!("body: expected JSON {{\"list\": \"...\", \"signature\": \"...\"}}: {e}\n"),
        )
            .into_response();
    }
    let id = admission.id().to_owned();
    admitted(&id, async move {
        // The files live until the list is judged, even if the client
        // goes away meanwhile.
        let path = files.list.clone();
        let verdict = admission.admit(Source::Push(path)).await;
        drop(files);
        verdict
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::{same_token, unpack};

    /// `unpack` of `body`: the list and signature it wrote, or its error.
    fn unpacked(body: &str) -> Result<(String, String), String> {
        let dir = tempfile::tempdir().unwrap();
        let (json, list) = (dir.path().join("b.json"), dir.path().join("l.txt"));
        std::fs::write(&json, body).unwrap();
        unpack(&json, &list)?;
        let read = |p| std::fs::read_to_string(p).unwrap();
        Ok((read(&list), read(&crate::list::signature_path(&list))))
    }

    #[test]
    fn an_upload_decodes_as_serde_json_would() {
        let texts = [
            "#rempart-list v1\nissuer: T\n\nname\tmatch\nbad.test\tsubtree\n".to_owned(),
            "quotes \" and \\ backslashes, / slashes, \u{1} control".to_owned(),
            "accents: prefecture, emoji \u{1F600}, CJK \u{6F22}".to_owned(),
            String::new(),
            "x".repeat(200_000),
        ];
        for text in &texts {
            let body =
                serde_json::json!({"list": text, "signature": "untrusted comment: s\nRW..."});
            assert_eq!(
                unpacked(&body.to_string()).unwrap(),
                (text.clone(), "untrusted comment: s\nRW...".to_owned())
            );
        }
        // Escapes serde_json does not write, other order, white space.
        let body = "  {\"signature\" : \"s\\u00e9\\ud83d\\ude00\" ,\n \"list\":\"a\\/b\\tc\"}\n ";
        assert_eq!(
            unpacked(body).unwrap(),
            ("a/b\tc".to_owned(), "s\u{e9}\u{1F600}".to_owned())
        );
    }

    #[test]
    fn a_malformed_upload_is_refused_with_its_reason() {
        let big = "s".repeat(8 * 1024 + 1);
        for (body, reason) in [
            (r#"{"list": "l"}"#.to_owned(), "missing field `signature`"),
            (r#"{"signature": "s"}"#.to_owned(), "missing field `list`"),
            (
                r#"{"list": "l", "signature": "s", "x": 1}"#.to_owned(),
                "unknown field `x`",
            ),
            (
                r#"{"list": "l", "list": "m", "signature": "s"}"#.to_owned(),
                "duplicate field `list`",
            ),
            (
                format!(r#"{{"list": "l", "signature": "{big}"}}"#),
                "over 8192 bytes",
            ),
            (r#"{"list": 5, "signature": "s"}"#.to_owned(), "string"),
            (
                r#"{"list": "l", "signature": "s"} x"#.to_owned(),
                "trailing",
            ),
            (r#"{"list": "unterminated"#.to_owned(), ""),
            (
                r#"{"list": "bad \q escape", "signature": "s"}"#.to_owned(),
                "list",
            ),
            ("[]".to_owned(), ""),
            (String::new(), ""),
        ] {
            let e = unpacked(&body).expect_err(&body);
            assert!(e.to_lowercase().contains(reason), "{body:.60}: {e}");
        }
    }

    #[test]
    fn tokens_match_only_when_equal() {
        let ours = b"admin-token-0123456789abcdef";
        assert!(same_token(ours, ours));
        for other in [
            &b"admin-token-0123456789abcdeX"[..],
            b"admin-token-0123456789abcde",
            b"admin-token-0123456789abcdef0",
            b"",
        ] {
            assert!(!same_token(other, ours), "{other:?}");
        }
    }
}
