//! The UDP receive loop.
//!
//! One thread per socket (one socket per core, see `server`), blocked in
//! `recvmmsg` until a datagram comes; it then takes every datagram waiting,
//! up to `mmsg::BATCH`, in that one call, and sends the answers it could make
//! itself in one `sendmmsg` (two system calls per batch instead of two per
//! query: under load most of the cost of a query is the kernel's). The
//! system calls are in `mmsg`, the one module allowed `unsafe`.
//!
//! A plain query whose answer is kept ready to send ([`super::wire`]), or
//! for a listed name (the redirect is written straight to the wire), is
//! answered inside the loop (`Engine::answer_in_loop`), with no task and
//! no hickory message; any other query is parsed by hickory and answered in
//! a task on the tokio runtime (`answer_in_task`: it may wait for
//! upstream), the answer's bytes then kept for the next query alike.
//!
//! A client outside `server.allow` costs no task: a plain query gets
//! REFUSED (EDE 18 with EDNS) written by the loop (`Engine::refuse_in_loop`),
//! and anything else, damaged datagrams included, gets no answer at all (its
//! source may be spoofed, and an answer to a spoofed source can start a
//! packet loop), counted in `rempart_udp_dropped_total`.
//!
//! On stop, the loop stops receiving and waits for the tasks it started, so
//! that a query received is a query answered.

mod mmsg;

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use tokio::task::JoinSet;
use tracing::debug;

use super::edns::response_payload;
use super::engine::Engine;
use super::mandatory::formerr;
use super::query::QueryView;
use super::response::Response;
use crate::metrics::QueryOutcome;
use mmsg::{Batch, Datagram, send_one};

/// How often a receive waiting for a datagram looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// Serve `socket` on a thread of its own until `stop` is set, then wait for
/// the queries being answered. Queries that need upstream or hickory run as
/// tasks on `runtime`.
pub fn spawn(
    engine: &Arc<Engine>,
    socket: UdpSocket,
    stop: Arc<AtomicBool>,
    runtime: tokio::runtime::Handle,
) -> io::Result<std::thread::JoinHandle<()>> {
    // A thread blocked in recvfrom wakes on the datagram itself: no event
    // loop, no hand-over between threads (what keeps p99 low at low load).
    socket.set_nonblocking(false)?;
    socket.set_read_timeout(Some(STOP_CHECK))?;
    let engine = Arc::clone(engine);
    std::thread::Builder::new()
        .name("rempart-udp".into())
        .spawn(move || serve(&engine, Arc::new(socket), &stop, &runtime))
}

fn serve(
    engine: &Arc<Engine>,
    socket: Arc<UdpSocket>,
    stop: &AtomicBool,
    runtime: &tokio::runtime::Handle,
) {
    let mut batch = Batch::new();
    let mut tasks = JoinSet::new();
    while !stop.load(Ordering::Acquire) {
        let received = match batch.recv(&socket) {
            Ok(n) => n,
            Err(error) => {
                // Timeouts (to look at the stop flag), ICMP errors of
                // earlier sends, interrupted calls: the socket stays usable.
                if !matches!(
                    error.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) {
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
            let src = meta.source;
            // Nobody to answer (RFC 768: source port 0 means no reply wanted).
            if src.port() == 0 || src.ip().is_unspecified() {
                continue;
            }
            if meta.truncated {
                // Longer than any query: damaged. Nothing to a client
                // outside server.allow (the source may be spoofed: an
                // answer could start a packet loop).
                if !engine.allowed(src.ip()) {
                    engine.metrics.udp_dropped();
                } else if let Some(formerr) = formerr(payload) {
                    engine.metrics.query(false, QueryOutcome::Error);
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
            let socket = Arc::clone(&socket);
            tasks.spawn_on(
                async move { answer_in_task(&engine, &socket, query, src).await },
                runtime,
            );
        }
        batch.send_replies(&socket);
        while tasks.try_join_next().is_some() {}
    }
    runtime.block_on(async { while tasks.join_next().await.is_some() {} });
}

/// The full path, in a task: parse, answer (maybe asking upstream),
/// encode, send, and keep the bytes when they can answer the next query
/// alike.
async fn answer_in_task(engine: &Engine, socket: &UdpSocket, query: Vec<u8>, src: SocketAddr) {
    let view = QueryView::parse(&query);
    let damaged = formerr(&query);
    let request = match Request::from_bytes(query, src, Protocol::Udp) {
        Ok(r) => r,
        Err(error) => {
            // RFC 1035 section 4.1.1: FORMERR, when the header can be read
            // and says "query" (as the TCP door does).
            debug!(client = %src, %error, "malformed query");
            if let Some(answer) = damaged {
                engine.metrics.query(false, QueryOutcome::Error);
                send_one(socket, &answer, src);
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
    send_one(socket, &bytes, src);
}
