//! The HTTPS door: DNS over HTTPS (RFC 8484) on `server.https_listen`,
//! served by hyper over rustls, HTTP/2 or HTTP/1.1 as the client's ALPN
//! says.
//!
//! hickory-server 0.26's DoH listener answers POST only, wants a
//! Content-Type on every request and rejects `Accept: */*` (curl's), so the
//! HTTP side is ours, as lenient as RFC 8484 lets it be:
//!
//! - `GET /dns-query?dns=` with the query in base64url, padding or not
//!   (section 4.1), with or without a Content-Type;
//! - `POST /dns-query` with the query as the body, Content-Type
//!   `application/dns-message` or none (another type gets 415);
//! - whatever `Accept` says (the answer is always `application/dns-message`);
//! - another path gets 404, another method 405.
//!
//! The answer is the one the other doors give (the same [`Engine`]: ACL,
//! policy, redirect, EDE 16, audit record with transport `doh`), encoded
//! up to 65535 octets, with `cache-control: max-age` set to its smallest
//! TTL (section 5.1).
//!
//! Bounded like the TCP door, whose slots it shares: a client outside
//! `server.allow` is closed at accept; `server.tcp_max_connections` and
//! `server.tcp_max_per_client` count these connections with TCP and DoT;
//! the TLS handshake must end, and the connection carry a byte, within
//! `server.tcp_idle_timeout_ms` (then it is closed, gracefully); a body
//! over 65535 octets gets 413 unread; an HTTP/2 connection carries at most
//! [`MAX_STREAMS`] requests at once.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::debug;

use super::engine::Engine;
use super::mandatory::formerr;
use super::response::Response;
use super::tcp::Connections;
use crate::metrics::{QueryOutcome, TcpRefusal};
use crate::proto::Transport;

/// RFC 8484 section 6: the media type of a DNS message.
pub const DNS_MESSAGE: &str = "application/dns-message";
/// The path served (BEHAVIOUR section 11).
pub const PATH: &str = "/dns-query";
/// Largest query accepted: a DNS message's largest size.
pub const MAX_QUERY: usize = u16::MAX as usize;
/// HTTP/2 requests in flight at once on one connection.
pub const MAX_STREAMS: u32 = 100;

/// Accept on `listener` until `stop` says true, then let each connection
/// finish the requests it has begun.
pub async fn serve(
    engine: Arc<Engine>,
    listener: TcpListener,
    connections: Arc<Connections>,
    tls: tokio_rustls::TlsAcceptor,
    mut stop: watch::Receiver<bool>,
) {
    let mut tasks = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => break,
        };
        while tasks.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(error) => {
                debug!(%error, "HTTPS accept error");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if !engine.allowed(peer.ip()) {
            engine.metrics.tcp_refused(TcpRefusal::NotAllowed);
            continue;
        }
        let slot = match connections.take(peer.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                debug!(client = %peer.ip(), ?why, "HTTPS connection over the bound, closed");
                engine.metrics.tcp_refused(why);
                continue;
            }
        };
        let engine = Arc::clone(&engine);
        let idle = connections.limits().idle_timeout;
        let tls = tls.clone();
        let stop = stop.clone();
        tasks.spawn(async move {
            let _slot = slot;
            engine.metrics.tcp_connection(true);
            match tokio::time::timeout(idle, tls.accept(stream)).await {
                Ok(Ok(stream)) => connection(engine.clone(), stream, peer, idle, stop).await,
                Ok(Err(error)) => debug!(client = %peer, %error, "TLS handshake failed"),
                Err(_) => debug!(client = %peer, "TLS handshake not done in time"),
            }
            engine.metrics.tcp_connection(false);
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// Serve the HTTP requests of one connection until the client closes it,
/// it stays idle for `idle`, or the server stops.
async fn connection<S>(
    engine: Arc<Engine>,
    stream: S,
    peer: SocketAddr,
    idle: Duration,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new(stream);
    let last = Arc::clone(&activity.last);
    let start = activity.start;
    let service = hyper::service::service_fn(move |request| {
        let engine = Arc::clone(&engine);
        async move { Ok::<_, Infallible>(doh(&engine, peer, request).await) }
    });
    let mut http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(idle)
        .max_buf_size(64 << 10);
    http.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .max_header_list_size(16 << 10);
    let conn = http.serve_connection(TokioIo::new(activity), service);
    tokio::pin!(conn);
    let check = idle.min(Duration::from_secs(1));
    loop {
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(error) = served {
                    debug!(client = %peer, %error, "HTTPS connection ended");
                }
                return;
            }
            _ = stop.wait_for(|s| *s) => break,
            () = tokio::time::sleep(check) => {
                let quiet = start.elapsed().as_millis() as u64 - last.load(Ordering::Relaxed);
                if quiet >= idle.as_millis() as u64 {
                    break;
                }
            }
        }
    }
    // Idle or stopping: finish what was asked, take nothing new.
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(idle, conn.as_mut()).await;
}

/// A stream that notes when it last carried a byte (an HTTP/2
/// connection can stay open with no request for ever; hyper has no idle
/// timeout of its own).
struct Activity<S> {
    inner: S,
    start: Instant,
    /// Milliseconds from `start` to the last byte read or written.
    last: Arc<AtomicU64>,
}

impl<S> Activity<S> {
    fn new(inner: S) -> Activity<S> {
        Activity {
            inner,
            start: Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        self.last
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Activity<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Activity<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &polled
            && *n > 0
        {
            self.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

type HttpResponse = hyper::Response<Full<Bytes>>;

/// An HTTP error with a short text body.
fn status(code: StatusCode, text: &'static str) -> HttpResponse {
    let mut r = hyper::Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = code;
    r.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    r
}

/// The `dns` parameter of a GET's query string, decoded (RFC 8484
/// section 4.1: base64url, padding removed; padded accepted too).
fn dns_param(query: Option<&str>) -> Option<Vec<u8>> {
    let value = query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("dns="))?;
    let value = value.trim_end_matches('=');
    if value.len() > MAX_QUERY / 3 * 4 + 4 {
        return None;
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value)
        .ok()
}

/// One DoH request: the DNS query it carries, answered, or why not.
async fn doh(engine: &Engine, peer: SocketAddr, request: hyper::Request<Incoming>) -> HttpResponse {
    if request.uri().path() != PATH {
        return status(StatusCode::NOT_FOUND, "DNS over HTTPS is at /dns-query\n");
    }
    let query = match *request.method() {
        Method::GET => match dns_param(request.uri().query()) {
            Some(q) => q,
            None => {
                return status(
                    StatusCode::BAD_REQUEST,
                    "a GET needs ?dns= with the query in base64url\n",
                );
            }
        },
        Method::POST => {
            let declared = request
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            if declared.is_some_and(|n| n > MAX_QUERY as u64) {
                return status(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "a DNS query is at most 65535 octets\n",
                );
            }
            let typed = request.headers().get(CONTENT_TYPE).cloned();
            // The body is read (bounded) before any other refusal: an
            // HTTP/2 answer sent while the client still uploads ends the
            // stream early, which clients report as a framing error
            // instead of the status.
            let body = match Limited::new(request.into_body(), MAX_QUERY).collect().await {
                Ok(body) => body.to_bytes().to_vec(),
                Err(_) => {
                    return status(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "a DNS query is at most 65535 octets\n",
                    );
                }
            };
            if typed.is_some_and(|t| {
                !t.to_str()
                    .is_ok_and(|t| t.trim().eq_ignore_ascii_case(DNS_MESSAGE))
            }) {
                return status(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "the body must be application/dns-message\n",
                );
            }
            body
        }
        _ => {
            let mut r = status(StatusCode::METHOD_NOT_ALLOWED, "GET or POST\n");
            r.headers_mut()
                .insert(ALLOW, hyper::header::HeaderValue::from_static("GET, POST"));
            return r;
        }
    };
    match answer(engine, query, peer).await {
        Some((bytes, ttl)) => {
            let mut r = hyper::Response::new(Full::new(Bytes::from(bytes)));
            r.headers_mut().insert(
                CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(DNS_MESSAGE),
            );
            if let Some(ttl) = ttl
                && let Ok(v) = hyper::header::HeaderValue::from_str(&format!("max-age={ttl}"))
            {
                r.headers_mut().insert(CACHE_CONTROL, v);
            }
            r
        }
        None => status(StatusCode::BAD_REQUEST, "not a DNS query\n"),
    }
}

/// The answer to one query and its smallest TTL, or `None` for a message
/// that is not a query.
async fn answer(
    engine: &Engine,
    query: Vec<u8>,
    peer: SocketAddr,
) -> Option<(Vec<u8>, Option<u32>)> {
    let damaged = formerr(&query);
    let request = match hickory_server::server::Request::from_bytes(
        query,
        peer,
        hickory_server::net::xfer::Protocol::Tcp,
    ) {
        Ok(r) => r,
        Err(error) => {
            debug!(client = %peer, %error, "malformed query");
            let answer = damaged?;
            engine.metrics.query(Transport::Doh, QueryOutcome::Error);
            return Some((answer.to_vec(), None));
        }
    };
    if request.metadata.message_type == hickory_proto::op::MessageType::Response {
        return None;
    }
    let (reply, _) = engine.handle_as(&request, Transport::Doh).await;
    let ttl = reply
        .answers
        .iter()
        .chain(&reply.authorities)
        .map(|r| r.ttl)
        .min();
    Some((Response::new(&request, &reply).encode(u16::MAX), ttl))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dns_parameter_is_base64url_with_or_without_padding() {
        // RFC 8484 section 4.1.1's example query (www.example.com A).
        let q = "AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB";
        let bytes = dns_param(Some(&format!("ct&dns={q}"))).unwrap();
        assert_eq!(bytes.len(), 33);
        assert_eq!(dns_param(Some(&format!("dns={q}=="))), Some(bytes));
        assert_eq!(dns_param(Some("dns=not*base64")), None);
        assert_eq!(dns_param(Some("other=1")), None);
        assert_eq!(dns_param(None), None);
    }
}
