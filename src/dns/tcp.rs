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
//! Behind a proxy (`server.proxy_from`, see [`super::proxy`]), the
//! connection opens with a PROXY v2 header naming the client: it is read
//! (within the idle timeout, at most `proxy::MAX_TCP_HEADER` octets) before
//! anything else, then the slot is taken for the client it names, and each
//! query from a client outside `server.allow` gets REFUSED (the proxy, not
//! the client, holds the connection: closing it would tell the client
//! nothing). A header from anyone else closes the connection unanswered;
//! a proxy's connection without one gets REFUSED to each query while
//! `server.proxy_required` holds.
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
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::debug;

use super::engine::Engine;
use super::header::HEADER_LEN;
use super::mandatory::formerr;
use super::proxy::{self, Proxies};
use super::response::Response;
use crate::metrics::{ProxyRejection, QueryOutcome, TcpRefusal};
use crate::proto::Transport;

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
pub(super) struct Slot {
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

    /// The bounds.
    pub(super) fn limits(&self) -> TcpLimits {
        self.limits
    }

    /// A slot for a connection from `ip`, or why there is none.
    pub(super) fn take(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, TcpRefusal> {
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
/// connections: each ends once its query in progress is answered. With
/// `tls`, each connection is DNS over TLS (RFC 7858): the handshake must
/// end within the idle timeout, then the queries come as over TCP.
pub async fn serve(
    engine: Arc<Engine>,
    listener: TcpListener,
    connections: Arc<Connections>,
    proxies: Arc<Proxies>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    let transport = if tls.is_some() {
        Transport::Dot
    } else {
        Transport::Tcp
    };
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
        // A proxy's connection is judged by the client its header names,
        // once read; anyone else's at accept. Dropping the stream closes
        // it, unread.
        let slot = if proxies.is_proxy(src.ip()) {
            None
        } else if !engine.allowed(src.ip()) {
            engine.metrics.tcp_refused(TcpRefusal::NotAllowed);
            continue;
        } else {
            match connections.take(src.ip()) {
                Ok(slot) => Some(slot),
                Err(why) => {
                    debug!(client = %src.ip(), ?why, "TCP connection over the bound, closed");
                    engine.metrics.tcp_refused(why);
                    continue;
                }
            }
        };
        let engine = Arc::clone(&engine);
        let connections = Arc::clone(&connections);
        let proxies = Arc::clone(&proxies);
        let stop = stop.clone();
        let tls = tls.clone();
        tasks.spawn(async move {
            // The slot lives as long as the connection.
            let mut slot = slot;
            let door = Door {
                engine: &engine,
                connections: &connections,
                proxies: &proxies,
                peer: src,
                transport,
            };
            engine.metrics.tcp_connection(true);
            let served = match tls {
                None => door.connection(stream, &mut slot, stop).await,
                Some(tls) => {
                    let idle = connections.limits.idle_timeout;
                    match tokio::time::timeout(idle, tls.accept(stream)).await {
                        Ok(Ok(stream)) => door.connection(stream, &mut slot, stop).await,
                        Ok(Err(error)) => Err(error),
                        Err(_) => Ok(()),
                    }
                }
            };
            if let Err(error) = served {
                debug!(client = %src, %error, "connection ended");
            }
            engine.metrics.tcp_connection(false);
        });
    }
    while tasks.join_next().await.is_some() {}
}

/// One connection's view of the TCP door.
struct Door<'a> {
    engine: &'a Engine,
    connections: &'a Arc<Connections>,
    proxies: &'a Proxies,
    /// The connection's other end (the client, or its proxy).
    peer: SocketAddr,
    /// TCP or DoT.
    transport: Transport,
}

/// Who the queries of a connection are answered for.
#[derive(Debug, Clone, Copy)]
enum Asker {
    /// This client (the peer, or the one a proxy's header names).
    Client(SocketAddr),
    /// Nobody: a proxy sent no header (`server.proxy_required`); every
    /// query gets REFUSED.
    Refused,
}

/// Run `read` within `idle`, unless the server stops first: `None` when
/// the connection should end quietly (timeout, stop, the client closed it).
async fn within<T>(
    idle: Duration,
    stop: &mut watch::Receiver<bool>,
    read: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<Option<T>> {
    tokio::select! {
        read = tokio::time::timeout(idle, read) => match read {
            Ok(Ok(t)) => Ok(Some(t)),
            Ok(Err(error)) if error.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
            Ok(Err(error)) => Err(error),
            Err(_) => Ok(None),
        },
        _ = stop.wait_for(|s| *s) => Ok(None),
    }
}

impl Door<'_> {
    /// Serve one connection: the PROXY header if any, then the queries.
    /// `slot` is the connection's (taken at accept), or none yet for a
    /// proxy's connection, taken here for the client its header names.
    async fn connection<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
        slot: &mut Option<Slot>,
        mut stop: watch::Receiver<bool>,
    ) -> io::Result<()> {
        let idle = self.connections.limits.idle_timeout;
        let (mut rd, wr) = tokio::io::split(stream);
        // Twelve octets: the PROXY signature's length, and fewer than any
        // DNS query takes with its length prefix (2 + 12 for the header).
        let mut first = [0u8; proxy::SIGNATURE.len()];
        if within(idle, &mut stop, rd.read_exact(&mut first))
            .await?
            .is_none()
        {
            return Ok(());
        }
        let mut prefix: &[u8] = &first;
        let asker = if proxy::has_signature(&first) {
            let client = match self.proxy_header(&first, &mut rd, idle, &mut stop).await? {
                Ok(Some(client)) => client,
                Ok(None) => return Ok(()),
                Err(why) => {
                    debug!(peer = %self.peer, ?why, "PROXY header not accepted, connection closed");
                    self.engine.metrics.proxy_rejected(why);
                    return Ok(());
                }
            };
            prefix = &[];
            match self.connections.take(client.ip()) {
                Ok(s) => *slot = Some(s),
                Err(why) => {
                    debug!(client = %client.ip(), ?why, "TCP connection over the bound, closed");
                    self.engine.metrics.tcp_refused(why);
                    return Ok(());
                }
            }
            Asker::Client(client)
        } else if slot.is_none() {
            // A proxy's connection without a header: counted against the
            // proxy's own address, refused or served for it.
            match self.connections.take(self.peer.ip()) {
                Ok(s) => *slot = Some(s),
                Err(why) => {
                    self.engine.metrics.tcp_refused(why);
                    return Ok(());
                }
            }
            if self.proxies.admit(self.peer, &first) == proxy::Admission::Refuse {
                self.engine.metrics.proxy_rejected(ProxyRejection::Missing);
                Asker::Refused
            } else {
                Asker::Client(self.peer)
            }
        } else {
            Asker::Client(self.peer)
        };
        let rd = AsyncReadExt::chain(prefix, rd);
        self.queries(rd, wr, asker, stop).await
    }

    /// Read the rest of a PROXY header whose signature is `first`: the
    /// client it names (`Ok(Ok(Some))`), the connection ending
    /// (`Ok(Ok(None))`), or why it is not accepted.
    async fn proxy_header<R: AsyncRead + Unpin>(
        &self,
        first: &[u8],
        rd: &mut R,
        idle: Duration,
        stop: &mut watch::Receiver<bool>,
    ) -> io::Result<Result<Option<SocketAddr>, ProxyRejection>> {
        if !self.proxies.is_proxy(self.peer.ip()) {
            return Ok(Err(ProxyRejection::Untrusted));
        }
        let mut fixed = [0u8; proxy::FIXED_LEN];
        fixed[..first.len()].copy_from_slice(first);
        if within(idle, stop, rd.read_exact(&mut fixed[first.len()..]))
            .await?
            .is_none()
        {
            return Ok(Ok(None));
        }
        let len = proxy::declared_len(&fixed);
        if len > proxy::MAX_TCP_HEADER {
            return Ok(Err(ProxyRejection::Malformed));
        }
        let mut header = vec![0u8; len];
        header[..proxy::FIXED_LEN].copy_from_slice(&fixed);
        if within(idle, stop, rd.read_exact(&mut header[proxy::FIXED_LEN..]))
            .await?
            .is_none()
        {
            return Ok(Ok(None));
        }
        Ok(match proxy::parse(&header) {
            Ok(Some(h)) => Ok(Some(h.source.unwrap_or(self.peer))),
            _ => Err(ProxyRejection::Malformed),
        })
    }

    /// Answer the queries of one connection, one after the other (RFC 1035
    /// section 4.2.2: each message preceded by its length in two octets),
    /// until the client closes it, stays idle, or the server stops.
    async fn queries<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
        &self,
        mut rd: R,
        mut wr: W,
        asker: Asker,
        mut stop: watch::Receiver<bool>,
    ) -> io::Result<()> {
        let idle = self.connections.limits.idle_timeout;
        let mut query = Vec::new();
        loop {
            let read = async {
                let len = rd.read_u16().await?;
                query.resize(usize::from(len), 0);
                rd.read_exact(&mut query).await
            };
            if within(idle, &mut stop, read).await?.is_none() {
                return Ok(());
            }
            let Some(answer) = answer(self.engine, &query, self.peer, asker, self.transport).await
            else {
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
            match tokio::time::timeout(idle, wr.write_all(&framed)).await {
                Ok(result) => result?,
                Err(_) => return Ok(()),
            }
        }
    }
}

/// The answer to one query of a TCP client, or `None` (a message that is
/// not a query, or too short to have a header).
async fn answer(
    engine: &Engine,
    query: &[u8],
    peer: SocketAddr,
    asker: Asker,
    transport: Transport,
) -> Option<Vec<u8>> {
    let src = match asker {
        Asker::Client(client) => client,
        Asker::Refused => peer,
    };
    let request = match Request::from_bytes(query.to_vec(), src, Protocol::Tcp) {
        Ok(r) => r,
        Err(error) => {
            // RFC 1035 section 4.1.1: FORMERR when the header says "query".
            debug!(client = %src, %error, "malformed query");
            let answer = formerr(query)?;
            engine.metrics.query(transport, QueryOutcome::Error);
            return Some(answer.to_vec());
        }
    };
    if request.metadata.message_type == hickory_proto::op::MessageType::Response {
        // Never answer an answer.
        return None;
    }
    let reply = match asker {
        Asker::Client(_) => engine.handle_as(&request, transport).await.0,
        Asker::Refused => engine.refuse(transport),
    };
    Some(Response::new(&request, &reply).encode(u16::MAX))
}
