//! The UDP receive loop.
//!
//! One thread per socket (one socket per core, see `server`), blocked in
//! `recvmmsg` until a datagram comes; it then takes every datagram waiting,
//! up to [`BATCH`], in that one call, and sends the answers it could make
//! itself in one `sendmmsg` (two system calls per batch instead of two per
//! query: under load most of the cost of a query is the kernel's). A plain
//! query
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
use crate::metrics::QueryOutcome;

/// Largest query read. DNS queries are a few hundred bytes (EDNS padding
/// takes them to 468); a longer datagram is cut and refused as FORMERR.
const MAX_QUERY: usize = 4096;

/// Datagrams taken from the socket in one receive (and answers sent in one
/// send). Only datagrams already waiting are taken: at low load a batch is
/// one query, and a query never waits for others to arrive.
pub const BATCH: usize = 32;

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
    let mut batch = mmsg::Batch::new();
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
            let (msg, src, cut, out) = batch.query(i);
            // Nobody to answer (RFC 768: source port 0 means no reply wanted).
            if src.port() == 0 || src.ip().is_unspecified() {
                continue;
            }
            if cut {
                if let Some(answer) = formerr(msg) {
                    engine.metrics.query(false, QueryOutcome::Error);
                    out.clear();
                    out.extend_from_slice(&answer);
                    batch.reply(i);
                }
                continue;
            }
            if let Some(view) = QueryView::parse(msg)
                && engine.allowed(src.ip())
                && engine.answer_now(msg, &view, src, out)
            {
                batch.reply(i);
                continue;
            }
            let query = msg.to_vec();
            let engine = Arc::clone(engine);
            let socket = Arc::clone(&socket);
            tasks.spawn_on(
                async move { full(&engine, &socket, query, src).await },
                runtime,
            );
        }
        batch.send(&socket);
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
        self.metrics.query(false, QueryOutcome::Redirected);
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
                engine.metrics.query(false, QueryOutcome::Error);
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
    if let (Some(view), Some(stamp), QueryOutcome::Cached | QueryOutcome::Forwarded) =
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

/// Batched receive and send: `recvmmsg` and `sendmmsg` on Linux, one
/// datagram per call elsewhere.
///
/// The one place in the crate with `unsafe` (the lint denies it everywhere
/// else): two system calls that neither std nor socket2 wraps, with their
/// headers built and read here and nowhere else.
#[allow(unsafe_code)]
mod mmsg {
    use std::io;
    use std::net::{SocketAddr, UdpSocket};

    use super::{BATCH, MAX_QUERY};

    /// The datagrams of one receive, and the answers to send for them.
    pub struct Batch {
        /// `BATCH` slots of `MAX_QUERY` bytes.
        bufs: Vec<u8>,
        lens: [usize; BATCH],
        cut: [bool; BATCH],
        srcs: [SocketAddr; BATCH],
        /// One answer buffer per slot.
        outs: Vec<Vec<u8>>,
        /// Slots whose `outs` entry is an answer to send.
        replies: Vec<usize>,
        /// The senders' addresses as the kernel gave them: where the
        /// answers go back to.
        #[cfg(target_os = "linux")]
        names: [libc::sockaddr_storage; BATCH],
        #[cfg(target_os = "linux")]
        name_lens: [libc::socklen_t; BATCH],
    }

    const NOBODY: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
        std::net::Ipv4Addr::UNSPECIFIED,
        0,
    ));

    impl Batch {
        pub fn new() -> Batch {
            Batch {
                bufs: vec![0; BATCH * MAX_QUERY],
                lens: [0; BATCH],
                cut: [false; BATCH],
                srcs: [NOBODY; BATCH],
                outs: (0..BATCH)
                    .map(|_| Vec::with_capacity(usize::from(super::super::answer::EDNS_PAYLOAD)))
                    .collect(),
                replies: Vec::with_capacity(BATCH),
                // SAFETY: sockaddr_storage is plain data; all zeroes is a
                // valid (AF_UNSPEC) value.
                #[cfg(target_os = "linux")]
                names: unsafe { std::mem::zeroed() },
                #[cfg(target_os = "linux")]
                name_lens: [0; BATCH],
            }
        }

        /// Query `i` of the last receive: its bytes, its sender, whether it
        /// was cut (longer than `MAX_QUERY`), and the buffer for its answer
        /// (answered if [`Batch::reply`] is called).
        pub fn query(&mut self, i: usize) -> (&[u8], SocketAddr, bool, &mut Vec<u8>) {
            let start = i * MAX_QUERY;
            (
                &self.bufs[start..start + self.lens[i]],
                self.srcs[i],
                self.cut[i],
                &mut self.outs[i],
            )
        }

        /// Send the answer written for query `i` with the next [`Batch::send`].
        pub fn reply(&mut self, i: usize) {
            self.replies.push(i);
        }

        /// Wait for at least one datagram (or the socket's read timeout),
        /// then take those already waiting, up to `BATCH`. Returns how many.
        #[cfg(target_os = "linux")]
        pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
            use std::os::fd::AsRawFd;
            self.replies.clear();
            // SAFETY: plain data, filled below.
            let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
            let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
            for (i, (v, h)) in iov.iter_mut().zip(hdrs.iter_mut()).enumerate() {
                v.iov_base = self.bufs[i * MAX_QUERY..].as_mut_ptr().cast();
                v.iov_len = MAX_QUERY;
                h.msg_hdr.msg_name = std::ptr::from_mut(&mut self.names[i]).cast();
                h.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                h.msg_hdr.msg_iov = v;
                h.msg_hdr.msg_iovlen = 1;
            }
            // SAFETY: every header points at a buffer, an iovec and an
            // address slot of `self` or this frame, alive for the call.
            // MSG_WAITFORONE: block for the first datagram only.
            let n = unsafe {
                libc::recvmmsg(
                    socket.as_raw_fd(),
                    hdrs.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    libc::MSG_WAITFORONE,
                    std::ptr::null_mut(),
                )
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let n = n as usize;
            for (i, h) in hdrs.iter().enumerate().take(n) {
                self.lens[i] = (h.msg_len as usize).min(MAX_QUERY);
                self.cut[i] = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
                self.name_lens[i] = h.msg_hdr.msg_namelen;
                self.srcs[i] = socket_addr(&self.names[i]).unwrap_or(NOBODY);
            }
            Ok(n)
        }

        /// Send the answers of this batch, in one call if the kernel takes
        /// them all. A send that fails (a destination unreachable) is
        /// logged and skipped; the others still go.
        #[cfg(target_os = "linux")]
        pub fn send(&mut self, socket: &UdpSocket) {
            use std::os::fd::AsRawFd;
            let total = self.replies.len();
            if total == 0 {
                return;
            }
            // SAFETY: plain data, filled below.
            let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
            let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
            for (k, &i) in self.replies.iter().enumerate() {
                iov[k].iov_base = self.outs[i].as_mut_ptr().cast();
                iov[k].iov_len = self.outs[i].len();
                hdrs[k].msg_hdr.msg_name = std::ptr::from_mut(&mut self.names[i]).cast();
                hdrs[k].msg_hdr.msg_namelen = self.name_lens[i];
                hdrs[k].msg_hdr.msg_iov = &mut iov[k];
                hdrs[k].msg_hdr.msg_iovlen = 1;
            }
            let mut start = 0;
            while start < total {
                // SAFETY: headers `start..total` point at answers, iovecs
                // and addresses alive for the call.
                let sent = unsafe {
                    libc::sendmmsg(
                        socket.as_raw_fd(),
                        hdrs[start..].as_mut_ptr(),
                        (total - start) as libc::c_uint,
                        0,
                    )
                };
                if sent > 0 {
                    start += sent as usize;
                    continue;
                }
                let error = io::Error::last_os_error();
                if sent < 0 && error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                let to = self.srcs[self.replies[start]];
                tracing::debug!(%to, %error, "cannot send a UDP answer");
                start += 1;
            }
            self.replies.clear();
        }

        #[cfg(not(target_os = "linux"))]
        pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
            self.replies.clear();
            let (len, src) = socket.recv_from(&mut self.bufs[..MAX_QUERY])?;
            self.lens[0] = len;
            // recv_from cannot tell a datagram of exactly MAX_QUERY bytes
            // from a longer one cut: both are refused.
            self.cut[0] = len == MAX_QUERY;
            self.srcs[0] = src;
            Ok(1)
        }

        #[cfg(not(target_os = "linux"))]
        pub fn send(&mut self, socket: &UdpSocket) {
            for &i in &self.replies {
                super::send(socket, &self.outs[i], self.srcs[i]);
            }
            self.replies.clear();
        }
    }

    /// The address the kernel wrote for a sender (IPv4 or IPv6).
    #[cfg(target_os = "linux")]
    fn socket_addr(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
        use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
        match libc::c_int::from(s.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in.
                let a = unsafe { &*std::ptr::from_ref(s).cast::<libc::sockaddr_in>() };
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                    u16::from_be(a.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the storage holds a sockaddr_in6.
                let a = unsafe { &*std::ptr::from_ref(s).cast::<libc::sockaddr_in6>() };
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(a.sin6_addr.s6_addr),
                    u16::from_be(a.sin6_port),
                    a.sin6_flowinfo,
                    a.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}
