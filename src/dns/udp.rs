//! The UDP receive loop.
//!
//! One loop per socket (one socket per core, see `server`). A query whose
//! answer is kept ready to send ([`super::wire`]) is answered inside the
//! loop, with no allocation and no task; any other query is parsed by
//! hickory and answered in a task of its own (it may wait for upstream), the
//! answer's bytes then kept for the next query alike.
//!
//! On stop, the loop stops receiving and waits for the tasks it started, so
//! that a query received is a query answered.

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::debug;

use super::wire::QueryView;
use super::{Engine, Handler, encode};
use crate::metrics::Outcome;

/// Largest datagram read (a longer one is cut, then refused as FORMERR).
const MAX_DATAGRAM: usize = 65_535;

/// Serve `socket` until `stop` turns true, then wait for the queries being
/// answered.
pub async fn serve(handler: Handler, socket: UdpSocket, mut stop: watch::Receiver<bool>) {
    let engine = Arc::clone(&handler.engine);
    let socket = Arc::new(socket);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut out = Vec::with_capacity(usize::from(super::answer::EDNS_PAYLOAD));
    let mut tasks = JoinSet::new();
    loop {
        let (len, src) = tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => break,
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(error) => {
                    // ICMP errors of earlier sends, interrupted calls: the
                    // socket itself stays usable.
                    debug!(%error, "UDP receive error");
                    continue;
                }
            },
        };
        // Nobody to answer (RFC 768: source port 0 means no reply wanted).
        if src.port() == 0 || src.ip().is_unspecified() {
            continue;
        }
        let msg = &buf[..len];
        if let Some(view) = QueryView::parse(msg)
            && engine.allowed(src.ip())
        {
            let generation = engine.policy.load().generation();
            if engine.wire.answer(msg, &view, generation, &mut out) {
                engine.metrics.ready_answer();
                send(&socket, &out, src).await;
                continue;
            }
        }
        let query = msg.to_vec();
        let engine = Arc::clone(&engine);
        let socket = Arc::clone(&socket);
        tasks.spawn(async move { full(&engine, &socket, query, src).await });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

async fn send(socket: &UdpSocket, bytes: &[u8], to: SocketAddr) {
    if let Err(error) = socket.send_to(bytes, to).await {
        debug!(%to, %error, "cannot send a UDP answer");
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
                send(socket, &answer, src).await;
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
    send(socket, &bytes, src).await;
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
