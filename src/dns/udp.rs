//! The UDP receive loop.
//!
//! One thread per socket (one socket per core, see `server`), blocked in
//! `recvfrom` until a datagram comes. A plain query
//! whose answer is kept ready to send ([`super::wire`]), or for a listed
//! name (the redirect is written straight to the wire), is answered inside
//! the loop, with no task and no hickory message; any other query is parsed by
//! hickory and answered in a task on the tokio runtime (it may wait for
//! upstream), the
//! answer's bytes then kept for the next query alike.
//!
//! On stop, the loop stops receiving and waits for the tasks it started, so
//! that a query received is a query answered.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hickory_proto::rr::{DNSClass, Name, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use tokio::task::JoinSet;
use tracing::debug;

use super::wire::QueryView;
use super::{Engine, Handler, encode};
use crate::audit::RedirectRef;
use crate::metrics::Outcome;

/// Largest datagram read (a longer one is cut, then refused as FORMERR).
const MAX_DATAGRAM: usize = 65_535;

/// How often a receive waiting for a datagram looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// Serve `socket` on a thread of its own until `stop` is set, then wait for
/// the queries being answered. Queries that need upstream or hickory run as
/// tasks on `runtime`.
pub fn spawn(
    handler: &Handler,
    socket: UdpSocket,
    stop: Arc<AtomicBool>,
    runtime: tokio::runtime::Handle,
) -> io::Result<std::thread::JoinHandle<()>> {
    // A thread blocked in recvfrom wakes on the datagram itself: no event
    // loop, no hand-over between threads (what keeps p99 low at low load).
    socket.set_nonblocking(false)?;
    socket.set_read_timeout(Some(STOP_CHECK))?;
    let engine = Arc::clone(&handler.engine);
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
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut out = Vec::with_capacity(usize::from(super::answer::EDNS_PAYLOAD));
    let mut tasks = JoinSet::new();
    while !stop.load(Ordering::Acquire) {
        let (len, src) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
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
        // Nobody to answer (RFC 768: source port 0 means no reply wanted).
        if src.port() == 0 || src.ip().is_unspecified() {
            continue;
        }
        let msg = &buf[..len];
        if let Some(view) = QueryView::parse(msg)
            && engine.allowed(src.ip())
            && engine.answer_now(msg, &view, src, &mut out)
        {
            send(&socket, &out, src);
            continue;
        }
        let query = msg.to_vec();
        let engine = Arc::clone(engine);
        let socket = Arc::clone(&socket);
        tasks.spawn_on(
            async move { full(&engine, &socket, query, src).await },
            runtime,
        );
        while tasks.try_join_next().is_some() {}
    }
    runtime.block_on(async { while tasks.join_next().await.is_some() {} });
}

/// Send an answer. A UDP send waits only if the socket's send buffer
/// (4 MiB) is full.
fn send(socket: &UdpSocket, bytes: &[u8], to: SocketAddr) {
    if let Err(error) = socket.send_to(bytes, to) {
        debug!(%to, %error, "cannot send a UDP answer");
    }
}

impl Engine {
    /// Answer a plain query from an allowed client without leaving the
    /// receive loop, when that needs neither upstream nor hickory: a kept
    /// answer ([`super::wire`]), or the redirect for a listed name (outside
    /// CNAME mode, class IN). Writes the answer into `out` and returns true;
    /// false leaves the query to the full path.
    fn answer_now(&self, msg: &[u8], view: &QueryView, src: SocketAddr, out: &mut Vec<u8>) -> bool {
        let policy = self.policy.load();
        if self.wire.answer(msg, view, policy.generation(), out) {
            self.metrics.ready_answer();
            return true;
        }
        if view.qclass != u16::from(DNSClass::IN) || self.redirect.cname().is_some() {
            return false;
        }
        let name = &msg[12..12 + view.name_len];
        let Some(rule) = policy.verdict_wire(name) else {
            return false;
        };
        let serial = policy.info().map_or(0, |i| i.serial);
        let Some(kind) = self.redirect.write_wire(msg, view, &rule, serial, out) else {
            return false;
        };
        self.metrics.redirect(rule.category);
        self.metrics.query(false, Outcome::Redirected);
        if let Some(audit) = &self.audit {
            let qname = Name::read(&mut BinDecoder::new(name)).unwrap_or_else(|_| Name::root());
            audit.record_redirect(
                RedirectRef {
                    qname,
                    qtype: RecordType::from(view.qtype),
                    policy: Arc::clone(&policy),
                    index: rule.index,
                    answer: kind,
                    tcp: false,
                },
                src.ip(),
            );
        }
        true
    }
}

/// The full path: parse, answer (maybe asking upstream), encode, send, and
/// keep the bytes when they can answer the next query alike.
async fn full(engine: &Engine, socket: &UdpSocket, query: Vec<u8>, src: SocketAddr) {
    let view = QueryView::parse(&query);
    let damaged = formerr(&query);
    let request = match Request::from_bytes(query, src, Protocol::Udp) {
        Ok(r) => r,
        Err(error) => {
            // RFC 1035 section 4.1.1: FORMERR, when the header can be read
            // and says "query" (as hickory-server does on TCP).
            debug!(client = %src, %error, "malformed query");
            if let Some(answer) = damaged {
                engine.metrics.query(false, Outcome::Error);
                send(socket, &answer, src);
            }
            return;
        }
    };
    if request.metadata.message_type == hickory_proto::op::MessageType::Response {
        // Never answer an answer (reflection loops).
        return;
    }
    let (reply, outcome) = engine.handle(&request).await;
    let max = request.edns.as_ref().map_or(512, |e| {
        e.max_payload().clamp(512, super::answer::EDNS_PAYLOAD)
    });
    let bytes = encode(&request, &reply, max);
    send(socket, &bytes, src);
    if let (Some(view), Some(stamp), Outcome::Cached | Outcome::Forwarded) =
        (view, reply.stamp, outcome)
    {
        engine.wire.keep(request.as_slice(), &view, &bytes, stamp);
    }
}

/// The answer to a query too damaged to parse: the header with FORMERR,
/// if the header itself can be read and is a query's.
pub fn formerr(query: &[u8]) -> Option<[u8; 12]> {
    let header = query.get(..12)?;
    if header[2] & 0x80 != 0 {
        return None;
    }
    let mut out = [0u8; 12];
    out[..2].copy_from_slice(&header[..2]);
    // QR=1, the opcode and RD of the query; RCODE=1 (FORMERR).
    out[2] = 0x80 | (header[2] & 0x79);
    out[3] = 0x80 | 1;
    Some(out)
}
