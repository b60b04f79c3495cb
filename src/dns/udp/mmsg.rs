//! Batched receive and send: `recvmmsg` and `sendmmsg` on Linux, one
//! datagram per call elsewhere.
//!
//! The one place in the crate with `unsafe` (the lint denies it everywhere
//! else): two system calls that neither std nor socket2 wraps, with their
//! headers built and read here and nowhere else. What leaves this module is
//! safe: a [`Batch`] of buffers and, for each datagram received, a
//! [`RecvMeta`] saying what the kernel said of it (quinn-udp's model), read
//! through [`Datagram`].
#![allow(unsafe_code)]

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use tokio::net::UdpSocket;

use crate::dns::edns::EDNS_PAYLOAD;

/// Largest query read. DNS queries are a few hundred bytes (EDNS padding
/// takes them to 468); a longer datagram is cut and refused as FORMERR.
pub const MAX_QUERY: usize = 4096;

/// Datagrams taken from the socket in one receive (and answers sent in one
/// send). Only datagrams already waiting are taken: at low load a batch is
/// one query, and a query never waits for others to arrive.
pub const BATCH: usize = 32;

/// What the kernel said of one datagram received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecvMeta {
    /// The sender: where the answer goes back to.
    pub source: SocketAddr,
    /// Octets of the datagram kept, at most [`MAX_QUERY`].
    pub len: usize,
    /// True when the datagram was longer than [`MAX_QUERY`] and was cut.
    pub truncated: bool,
}

/// No sender (an address the kernel did not give, or an unknown family):
/// port 0, so never answered.
const NOBODY: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));

impl RecvMeta {
    const EMPTY: RecvMeta = RecvMeta {
        source: NOBODY,
        len: 0,
        truncated: false,
    };
}

/// One datagram of the last receive, and the buffer for its answer
/// (answered if [`Batch::reply`] is called for it).
#[derive(Debug)]
pub struct Datagram<'a> {
    /// What the kernel said of it.
    pub meta: RecvMeta,
    /// Its octets ([`RecvMeta::len`] of them).
    pub payload: &'a [u8],
    /// Where to write the answer.
    pub answer: &'a mut Vec<u8>,
}

/// The datagrams of one receive, and the answers to send for them.
pub struct Batch {
    /// `BATCH` slots of `MAX_QUERY` bytes.
    bufs: Vec<u8>,
    metas: [RecvMeta; BATCH],
    /// One answer buffer per slot.
    answers: Vec<Vec<u8>>,
    /// Slots whose `answers` entry is an answer to send.
    replies: Vec<usize>,
    /// The senders' addresses as the kernel gave them: where the
    /// answers go back to.
    #[cfg(target_os = "linux")]
    names: [libc::sockaddr_storage; BATCH],
    #[cfg(target_os = "linux")]
    name_lens: [libc::socklen_t; BATCH],
}

impl Batch {
    /// Empty buffers for [`BATCH`] datagrams and their answers.
    pub fn new() -> Batch {
        Batch {
            bufs: vec![0; BATCH * MAX_QUERY],
            metas: [RecvMeta::EMPTY; BATCH],
            answers: (0..BATCH)
                .map(|_| Vec::with_capacity(usize::from(EDNS_PAYLOAD)))
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

    /// Datagram `i` of the last receive.
    #[inline]
    pub fn datagram(&mut self, i: usize) -> Datagram<'_> {
        let meta = self.metas[i];
        let start = i * MAX_QUERY;
        Datagram {
            meta,
            payload: &self.bufs[start..start + meta.len],
            answer: &mut self.answers[i],
        }
    }

    /// Send the answer written for datagram `i` with the next
    /// [`Batch::send_replies`].
    #[inline]
    pub fn reply(&mut self, i: usize) {
        self.replies.push(i);
    }

    /// Take the datagrams waiting on the (non-blocking) socket, up to
    /// `BATCH`. Returns how many; `WouldBlock` when none is waiting. Call
    /// it inside `UdpSocket::try_io`, so that tokio learns the socket is
    /// drained.
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
        // MSG_WAITFORONE: the socket is non-blocking, so this takes what
        // is waiting and never blocks.
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
            self.metas[i] = RecvMeta {
                source: socket_addr(&self.names[i]).unwrap_or(NOBODY),
                len: (h.msg_len as usize).min(MAX_QUERY),
                truncated: h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
            };
            self.name_lens[i] = h.msg_hdr.msg_namelen;
        }
        Ok(n)
    }

    /// Send the answers of this batch, in one call if the kernel takes
    /// them all. A send that fails (a destination unreachable) is
    /// logged and skipped; the others still go. `WouldBlock` when the
    /// socket's send buffer is full: the answers not sent stay, to be sent
    /// by a later call once the socket is writable.
    #[cfg(target_os = "linux")]
    pub fn send_replies(&mut self, socket: &UdpSocket) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let total = self.replies.len();
        if total == 0 {
            return Ok(());
        }
        // SAFETY: plain data, filled below.
        let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (k, &i) in self.replies.iter().enumerate() {
            iov[k].iov_base = self.answers[i].as_mut_ptr().cast();
            iov[k].iov_len = self.answers[i].len();
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
            if sent < 0 && error.kind() == io::ErrorKind::WouldBlock {
                self.replies.drain(..start);
                return Err(error);
            }
            let to = self.metas[self.replies[start]].source;
            tracing::debug!(%to, %error, "cannot send a UDP answer");
            start += 1;
        }
        self.replies.clear();
        Ok(())
    }

    /// Take one datagram, if one is waiting. Returns 1.
    #[cfg(not(target_os = "linux"))]
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.replies.clear();
        let (len, source) = socket.try_recv_from(&mut self.bufs[..MAX_QUERY])?;
        // recv_from cannot tell a datagram of exactly MAX_QUERY bytes
        // from a longer one cut: both are refused.
        self.metas[0] = RecvMeta {
            source,
            len,
            truncated: len == MAX_QUERY,
        };
        Ok(1)
    }

    /// Send the answers of this batch, one call each; `WouldBlock` as on
    /// Linux.
    #[cfg(not(target_os = "linux"))]
    pub fn send_replies(&mut self, socket: &UdpSocket) -> io::Result<()> {
        while let Some(&i) = self.replies.first() {
            match socket.try_send_to(&self.answers[i], self.metas[i].source) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Err(e),
                Err(error) => {
                    let to = self.metas[i].source;
                    tracing::debug!(%to, %error, "cannot send a UDP answer");
                }
                Ok(_) => {}
            }
            self.replies.remove(0);
        }
        Ok(())
    }
}

/// The address the kernel wrote for a sender (IPv4 or IPv6).
#[cfg(target_os = "linux")]
fn socket_addr(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    use std::net::{Ipv6Addr, SocketAddrV6};
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
