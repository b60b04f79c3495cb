//! The UDP receive loop.
//!
//! One thread per socket (one socket per core, see `server`), each with
//! its own single-threaded tokio runtime: the thread that receives a query
//! also asks upstream for it and sends the answer, as each of Unbound's
//! threads does. No query crosses threads: a cache miss costs two wake-ups
//! (the query, the upstream's answer), not four (under load, with every
//! core busy, each hand-over between threads was a context switch).
//!
//! When the socket is readable, the loop takes every datagram waiting, up
//! to `mmsg::BATCH`, in one call, and sends the answers it could make
//! itself in one `sendmmsg` (two system calls per batch instead of two per
//! query: under load most of the cost of a query is the kernel's). The
//! system calls are in `mmsg`, the one module allowed `unsafe`.
//!
//! A plain query whose answer is kept ready to send ([`super::wire`]), or
//! for a listed name (the redirect is written straight to the wire), is
//! answered inside the loop (`Engine::answer_in_loop`), with no task and
//! no hickory message; any other query is parsed by hickory and answered in
//! a task on this thread's runtime (`answer_in_task`: it may wait for
//! upstream), the answer's bytes then kept for the next query alike.
//!
//! A client outside `server.allow` costs no task: a plain query gets
//! REFUSED (EDE 18 with EDNS) written by the loop (`Engine::refuse_in_loop`),
//! and anything else, damaged datagrams included, gets no answer at all (its
//! source may be spoofed, and an answer to a spoofed source can start a
//! packet loop), counted in `rempart_udp_dropped_total`.
//!
//! A datagram from a proxy (`server.proxy_from`) opens with a PROXY v2
//! header ([`super::proxy`]): the client it names takes the place of the
//! source for everything above (ACL, audit, metrics), and the answer goes
//! back to the proxy. A header from anyone else is dropped.
//!
//! On stop, the loop stops receiving and waits for the tasks it started, so
//! that a query received is a query answered.

mod mmsg;

use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tracing::debug;

use super::edns::response_payload;
use super::engine::Engine;
use super::mandatory::formerr;
use super::proxy::{Admission, Proxies};
use super::query::QueryView;
use super::response::Response;
use crate::metrics::{ProxyRejection, QueryOutcome};
use crate::proto::Transport;
use mmsg::{Batch, Datagram};

/// How often a loop waiting for a datagram looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// Serve `socket` on a thread of its own, with a runtime of its own, until
/// `stop` is set, then wait for the queries being answered. `proxies` say
/// whose PROXY v2 headers are believed.
pub fn spawn(
    engine: &Arc<Engine>,
    socket: std::net::UdpSocket,
    proxies: Arc<Proxies>,
    stop: Arc<AtomicBool>,
) -> io::Result<std::thread::JoinHandle<()>> {
    socket.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("rempart-udp")
        .build()?;
    let engine = Arc::clone(engine);
    std::thread::Builder::new()
        .name("rempart-udp".into())
        .spawn(move || {
            let tasks = tokio::task::LocalSet::new();
            tasks.block_on(&runtime, async move {
                match UdpSocket::from_std(socket) {
                    Ok(socket) => serve(&engine, Rc::new(socket), &proxies, &stop).await,
                    Err(error) => tracing::error!(%error, "cannot serve a UDP socket"),
                }
            });
        })
}

/// Whether an error from a receive or send says only "not now".
fn would_block(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::WouldBlock
}

async fn serve(engine: &Arc<Engine>, socket: Rc<UdpSocket>, proxies: &Proxies, stop: &AtomicBool) {
    let mut batch = Batch::new();
    let mut tasks = JoinSet::new();
    while !stop.load(Ordering::Acquire) {
        let received = match socket.try_io(Interest::READABLE, || batch.recv(&socket)) {
            Ok(n) => n,
            Err(error) => {
                if would_block(&error) {
                    // Nothing waiting: let the tasks run until a datagram
                    // comes (or it is time to look at the stop flag).
                    let _ = tokio::time::timeout(STOP_CHECK, socket.readable()).await;
                } else if error.kind() != io::ErrorKind::Interrupted {
                    // ICMP errors of earlier sends and the like: the
                    // socket stays usable.
                    debug!(%error, "UDP receive error");
                }
                while tasks.try_join_next().is_some() {}
                continue;
            }
        };
        for i in 0..received {
            let Datagram {
                meta,
                payload,
                answer,
            } = batch.datagram(i);
            let peer = meta.source;
            // Nobody to answer (RFC 768: source port 0 means no reply wanted).
            if peer.port() == 0 || peer.ip().is_unspecified() {
                continue;
            }
            // Behind a proxy, the client is the one its header names; the
            // answer still goes to the proxy (`peer`), which relays it.
            let (src, payload) = match proxies.admit(peer, payload) {
                Admission::Serve { client, offset } => (client, &payload[offset..]),
                Admission::Refuse => {
                    // A proxy that sends no header: REFUSED, so that its
                    // operator sees the mistake (the proxy is a configured
                    // peer, not a spoofable stranger).
                    match QueryView::parse(payload) {
                        Some(view) if !meta.truncated => {
                            engine.refuse_in_loop(payload, &view, answer);
                            batch.reply(i);
                        }
                        _ => engine.metrics.udp_dropped(),
                    }
                    engine.metrics.proxy_rejected(ProxyRejection::Missing);
                    continue;
                }
                Admission::Drop(why) => {
                    engine.metrics.proxy_rejected(why);
                    continue;
                }
            };
            if meta.truncated {
                // Longer than any query: damaged. Nothing to a client
                // outside server.allow (the source may be spoofed: an
                // answer could start a packet loop).
                if !engine.allowed(src.ip()) {
                    engine.metrics.udp_dropped();
                } else if let Some(formerr) = formerr(payload) {
                    engine.metrics.query(Transport::Udp, QueryOutcome::Error);
                    answer.clear();
                    answer.extend_from_slice(&formerr);
                    batch.reply(i);
                }
                continue;
            }
            let view = QueryView::parse(payload);
            // One branch on the fast path: the allow check was already
            // there; outsiders cost no task.
            if !engine.allowed(src.ip()) {
                match view {
                    Some(view) => {
                        engine.refuse_in_loop(payload, &view, answer);
                        batch.reply(i);
                    }
                    None => engine.metrics.udp_dropped(),
                }
                continue;
            }
            if let Some(view) = view
                && engine.answer_in_loop(payload, &view, src, answer)
            {
                batch.reply(i);
                continue;
            }
            let query = payload.to_vec();
            let engine = Arc::clone(engine);
            let socket = Rc::clone(&socket);
            tasks.spawn_local(
                async move { answer_in_task(&engine, &socket, query, src, peer).await },
            );
        }
        send_replies(&mut batch, &socket).await;
        while tasks.try_join_next().is_some() {}
        if !tasks.is_empty() {
            // The socket may stay readable under load: give the tasks
            // (upstream answers waiting to be relayed) their turn.
            tokio::task::yield_now().await;
        }
    }
    while tasks.join_next().await.is_some() {}
}

/// Send the batch's answers; if the socket's send buffer is full, wait
/// until it has room (what a blocking send did).
async fn send_replies(batch: &mut Batch, socket: &UdpSocket) {
    match batch.send_replies(socket) {
        Err(error) if would_block(&error) => {}
        _ => return,
    }
    loop {
        if socket.writable().await.is_err() {
            return;
        }
        match socket.try_io(Interest::WRITABLE, || batch.send_replies(socket)) {
            Err(error) if would_block(&error) => {}
            _ => return,
        }
    }
}

/// Send one answer outside a batch (waiting if the socket's send buffer is
/// full); a failure is logged and the answer dropped.
async fn send_one(socket: &UdpSocket, bytes: &[u8], to: SocketAddr) {
    if let Err(error) = socket.send_to(bytes, to).await {
        debug!(%to, %error, "cannot send a UDP answer");
    }
}

/// The full path, in a task: parse, answer (maybe asking upstream),
/// encode, send to `peer` (`src` itself, or the proxy that spoke for it),
/// and keep the bytes when they can answer the next query alike.
async fn answer_in_task(
    engine: &Engine,
    socket: &UdpSocket,
    query: Vec<u8>,
    src: SocketAddr,
    peer: SocketAddr,
) {
    let view = QueryView::parse(&query);
    let damaged = formerr(&query);
    let request = match Request::from_bytes(query, src, Protocol::Udp) {
        Ok(r) => r,
        Err(error) => {
            // RFC 1035 section 4.1.1: FORMERR, when the header can be read
            // and says "query" (as the TCP door does).
            debug!(client = %src, %error, "malformed query");
            if let Some(answer) = damaged {
                engine.metrics.query(Transport::Udp, QueryOutcome::Error);
                send_one(socket, &answer, peer).await;
            }
            return;
        }
    };
    if request.metadata.message_type == hickory_proto::op::MessageType::Response {
        // Never answer an answer (reflection loops).
        return;
    }
    let (reply, outcome) = engine.handle(&request).await;
    let max = request
        .edns
        .as_ref()
        .map_or(512, |e| response_payload(e.max_payload()));
    let bytes = Response::new(&request, &reply).encode(max);
    // Kept before it is sent: a client that repeats the question as soon
    // as it has the answer gets it from the receive loop, never a second
    // trip through this task (a few microseconds after an upstream round
    // trip; and tests can rely on it).
    if let (Some(view), Some(stamp), QueryOutcome::Cached | QueryOutcome::Forwarded) =
        (view, reply.stamp, outcome)
    {
        engine.wire.insert(request.as_slice(), &view, &bytes, stamp);
    }
    send_one(socket, &bytes, peer).await;
}
