//! The TCP door: an accept loop of our own, bounded.
//!
//! hickory-server's TCP listener (`Server::register_listener`) takes a bound
//! listener and accepts every connection that comes, with no bound on their
//! number, and checks who may ask per message, after reading it; it cannot
//! be handed one accepted stream. So the accept is here, and every
//! connection is bounded before a byte of it is read (STYLE habit 13):
//!
//! - a client outside `server.allow` has its connection closed at accept,
//!   never read;
//! - at most `server.tcp_max_connections` connections are open at once,
//!   and at most `server.tcp_max_per_client` from one address (an attacker
//!   with one address cannot take the slots of the others); beyond either,
//!   the new connection is closed at once;
//! - a connection that does not bring a whole query, or does not take its
//!   answer, within `server.tcp_idle_timeout_ms` is closed (RFC 7766
//!   section 6.2.3).
//!
//! Each refusal is counted (`rempart_tcp_refused_total{reason}`), as the
//! connections open (`rempart_tcp_connections`). The queries of a
//! connection are answered one after the other, by the same [`Engine`] and
//! the same response builder as UDP, so TCP answers are encoded once.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::debug;

use super::engine::Engine;
use super::header::HEADER_LEN;
use super::mandatory::formerr;
use super::response::Response;
use crate::metrics::{QueryOutcome, TcpRefusal};

/// The bounds of the TCP door.
#[derive(Debug, Clone, Copy)]
pub struct TcpLimits {
    /// Connections open at once, all clients together.
    pub max_connections: usize,
    /// Connections open at once from one client address.
    pub max_per_client: usize,
    /// A connection idle this long (no whole query read, or an answer not
    /// taken) is closed.
    pub idle_timeout: Duration,
}

/// The connections open, counted per client address; shared by the
/// listeners of every address. A lock, not atomics: it is taken twice per
/// connection (open and close), never per query.
#[derive(Debug)]
pub struct Connections {
    limits: TcpLimits,
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// A slot taken by an open connection, given back when dropped.
struct Slot {
    connections: Arc<Connections>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.connections.lock();
        open.0 -= 1;
        if let Some(n) = open.1.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.ip);
            }
        }
    }
}

impl Connections {
    /// No connection open yet, under `limits`.
    pub fn new(limits: TcpLimits) -> Arc<Connections> {
        Arc::new(Connections {
            limits,
            open: Mutex::new((0, HashMap::new())),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, HashMap<IpAddr, usize>)> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a connection from `ip`, or why there is none.
    fn take(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, TcpRefusal> {
        let mut open = self.lock();
        if open.0 >= self.limits.max_connections {
            return Err(TcpRefusal::Total);
        }
        let from_ip = open.1.entry(ip).or_insert(0);
        if *from_ip >= self.limits.max_per_client {
            return Err(TcpRefusal::PerClient);
        }
        *from_ip += 1;
        open.0 += 1;
        Ok(Slot {
            connections: Arc::clone(self),
            ip,
        })
    }
}

/// Accept on `listener` until `stop` says true, then wait for the
/// connections: each ends once its query in progress is answered.
pub async fn serve(
    engine: Arc<Engine>,
    listener: TcpListener,
    connections: Arc<Connections>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tasks = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => break,
        };
        while tasks.try_join_next().is_some() {}
        let (stream, src) = match accepted {
            Ok(a) => a,
            Err(error) => {
                // Out of descriptors, a connection reset before accept:
                // the listener stays usable; a pause lets descriptors free.
                debug!(%error, "TCP accept error");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // Dropping the stream closes it, unread.
        if !engine.allowed(src.ip()) {
            engine.metrics.tcp_refused(TcpRefusal::NotAllowed);
            continue;
        }
        let slot = match connections.take(src.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                debug!(client = %src.ip(), ?why, "TCP connection over the bound, closed");
                engine.metrics.tcp_refused(why);
                continue;
            }
        };
        let engine = Arc::clone(&engine);
        let idle = connections.limits.idle_timeout;
        let stop = stop.clone();
        tasks.spawn(async move {
            // The slot lives as long as the connection.
            let _slot = slot;
            engine.metrics.tcp_connection(true);
            if let Err(error) = connection(&engine, stream, src, idle, stop).await {
                debug!(client = %src, %error, "TCP connection ended");
            }
            engine.metrics.tcp_connection(false);
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// Answer the queries of one connection, one after the other (RFC 1035
/// section 4.2.2: each message preceded by its length in two octets),
/// until the client closes it, stays idle, or the server stops.
async fn connection(
    engine: &Engine,
    mut stream: TcpStream,
    src: SocketAddr,
    idle: Duration,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut query = Vec::new();
    loop {
        let read = async {
            let len = stream.read_u16().await?;
            query.resize(usize::from(len), 0);
            stream.read_exact(&mut query).await
        };
        tokio::select! {
            read = tokio::time::timeout(idle, read) => match read {
                Ok(Ok(_)) => {}
                // The client closed the connection, or it broke.
                Ok(Err(error)) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
                Ok(Err(error)) => return Err(error),
                Err(_) => return Ok(()),
            },
            _ = stop.wait_for(|s| *s) => return Ok(()),
        }
        let Some(answer) = answer(engine, &query, src).await else {
            if query.len() < HEADER_LEN {
                // Not DNS: nothing more to read from this client.
                return Ok(());
            }
            continue;
        };
        let mut framed = Vec::with_capacity(2 + answer.len());
        // Encoded within u16::MAX octets by the response builder.
        framed.extend_from_slice(&(answer.len() as u16).to_be_bytes());
        framed.extend_from_slice(&answer);
        match tokio::time::timeout(idle, stream.write_all(&framed)).await {
            Ok(result) => result?,
            Err(_) => return Ok(()),
        }
    }
}

/// The answer to one query of a TCP client, or `None` (a message that is
/// not a query, or too short to have a header).
async fn answer(engine: &Engine, query: &[u8], src: SocketAddr) -> Option<Vec<u8>> {
    let request = match Request::from_bytes(query.to_vec(), src, Protocol::Tcp) {
        Ok(r) => r,
        Err(error) => {
            // RFC 1035 section 4.1.1: FORMERR when the header says "query".
            debug!(client = %src, %error, "malformed query");
            let answer = formerr(query)?;
            engine.metrics.query(true, QueryOutcome::Error);
            return Some(answer.to_vec());
        }
    };
    if request.metadata.message_type == hickory_proto::op::MessageType::Response {
        // Never answer an answer.
        return None;
    }
    let (reply, _) = engine.handle(&request).await;
    Some(Response::new(&request, &reply).encode(u16::MAX))
}
