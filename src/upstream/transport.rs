//! One question to the upstream resolvers, over UDP with TCP on
//! truncation: the exchange under the cache.
//!
//! Purpose-built rather than hickory-resolver's `NameServerPool`, which
//! turns every response code but NOERROR into an error value (a SERVFAIL's
//! Extended DNS Error is lost) and cannot set CD; hickory-proto still reads
//! and writes the messages. The protections the pool gave are kept:
//!
//! - a fresh socket per exchange, connected to the server (the kernel
//!   binds it to a random ephemeral port), so the kernel
//!   drops datagrams from any other address; a random ID per question
//!   (hickory's `Message::query`, a CSPRNG); an answer is taken only if
//!   its ID, QR bit and question match ours (RFC 5452 section 3);
//! - TCP when the answer is truncated (RFC 7766 section 5);
//! - the servers in turn, each with its share of `upstream.timeout_ms`,
//!   the last one to answer tried first; UDP questions sent again every
//!   [`RETRANSMIT`] while the share lasts (RFC 1035 section 4.2.1: UDP is
//!   not reliable);
//! - coalescing of identical questions in flight is done one level up
//!   (`Upstream::fetch`), where the count of waiting queries is bounded.
//!
//! The question always carries DO=1 (RFC 3225: the answer brings its
//! DNSSEC records, which the cache keeps for the clients that want them)
//! and the client's CD (RFC 4035 section 3.2.2, RFC 6840 section 5.9).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, Query};
use hickory_proto::rr::{DNSClass, Name, Record, RecordType};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{Instant, timeout_at};

use super::UpstreamError;
use crate::proto::EDNS_PAYLOAD;

/// Time between two sends of the same UDP question to one server (Unbound
/// starts at 376 ms).
pub const RETRANSMIT: Duration = Duration::from_millis(400);

/// The largest UDP answer read: what we advertise, with room to spare for
/// servers that ignore it (a larger datagram is cut and then not parsed).
const RECV_BUFFER: usize = 4096;

/// What is asked: the question and the CD bit.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    /// QNAME.
    pub name: &'a Name,
    /// QTYPE.
    pub qtype: RecordType,
    /// QCLASS.
    pub qclass: DNSClass,
    /// CD, as the client set it.
    pub checking_disabled: bool,
}

/// An upstream answer and its size on the wire.
#[derive(Debug)]
pub struct Fetched {
    /// The answer, whatever its response code.
    pub message: Message,
    /// Its length in octets.
    pub len: usize,
}

/// The upstream servers and which one answered last.
#[derive(Debug)]
pub struct Transport {
    servers: Box<[SocketAddr]>,
    timeout: Duration,
    preferred: AtomicUsize,
}

impl Transport {
    /// Ask `servers`, giving up after `timeout` in all.
    pub fn new(servers: &[SocketAddr], timeout: Duration) -> Transport {
        Transport {
            servers: servers.into(),
            timeout,
            preferred: AtomicUsize::new(0),
        }
    }

    /// The upstream's answer to `q`, whatever its response code.
    pub async fn exchange(&self, q: Question<'_>) -> Result<Fetched, UpstreamError> {
        let mut query = Message::query();
        query.metadata.recursion_desired = true;
        query.metadata.checking_disabled = q.checking_disabled;
        let mut question = Query::query(q.name.clone(), q.qtype);
        question.set_query_class(q.qclass);
        query.add_query(question);
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        edns.set_version(0);
        edns.set_dnssec_ok(true);
        query.set_edns(edns);
        let bytes = query
            .to_vec()
            .map_err(|e| UpstreamError::Encode(e.to_string().into()))?;
        let expected = Expected {
            id: query.metadata.id,
            question: q,
        };

        let n = self.servers.len();
        let deadline = Instant::now() + self.timeout;
        let share = self.timeout / u32::try_from(n).unwrap_or(u32::MAX).max(1);
        let first = self.preferred.load(Ordering::Relaxed) % n.max(1);
        let mut error = UpstreamError::Timeout(self.timeout);
        for k in 0..n {
            let index = (first + k) % n;
            let until = if k + 1 == n {
                deadline
            } else {
                (Instant::now() + share).min(deadline)
            };
            match ask(self.servers[index], &bytes, &expected, until).await {
                Ok(answer) => {
                    if k > 0 {
                        self.preferred.store(index, Ordering::Relaxed);
                    }
                    return Ok(answer);
                }
                Err(e) => error = e,
            }
        }
        if matches!(error, UpstreamError::Timeout(_)) {
            error = UpstreamError::Timeout(self.timeout);
        }
        Err(error)
    }
}

/// What an answer must match.
struct Expected<'a> {
    id: u16,
    question: Question<'a>,
}

/// Why a datagram is not taken as the answer.
enum Rejected {
    /// Not an answer to our question (another ID, name, type or class, or
    /// not a DNS response): ignored, the real answer may still come.
    NotOurs,
    /// The answer to our question, but with records of another class.
    ForeignClass,
}

impl Expected<'_> {
    /// `bytes` as a message if it answers our question.
    fn accept(&self, bytes: &[u8]) -> Result<Fetched, Rejected> {
        // The ID first: most stray datagrams stop here, unparsed.
        if bytes.len() < 12 || u16::from_be_bytes([bytes[0], bytes[1]]) != self.id {
            return Err(Rejected::NotOurs);
        }
        let message = Message::from_vec(bytes).map_err(|_| Rejected::NotOurs)?;
        let q = &self.question;
        let ours = message.metadata.message_type == MessageType::Response
            && message.queries.len() == 1
            && message.queries[0].name() == q.name
            && message.queries[0].query_type() == q.qtype
            && message.queries[0].query_class() == q.qclass;
        if !ours {
            return Err(Rejected::NotOurs);
        }
        // Records of another class than asked are refused, as the pool
        // did (RFC 1034 section 4.3.2: a class is a separate namespace);
        // the answer is ours all the same, so the exchange fails now
        // rather than waiting for a better one until the timeout.
        let same_class = |r: &Record| q.qclass == DNSClass::ANY || r.dns_class == q.qclass;
        if !(message.answers.iter().all(same_class) && message.authorities.iter().all(same_class)) {
            return Err(Rejected::ForeignClass);
        }
        Ok(Fetched {
            message,
            len: bytes.len(),
        })
    }
}

/// One server until `until`: UDP, then TCP if the answer is truncated.
async fn ask(
    server: SocketAddr,
    query: &[u8],
    expected: &Expected<'_>,
    until: Instant,
) -> Result<Fetched, UpstreamError> {
    let socket = connected(server)?;
    socket.send(query).await.map_err(UpstreamError::io)?;
    // Read into spare capacity: no zeroing of a fresh buffer per question.
    let mut buf = Vec::with_capacity(RECV_BUFFER);
    let mut resend = Instant::now() + RETRANSMIT;
    loop {
        buf.clear();
        match timeout_at(resend.min(until), socket.recv_buf(&mut buf)).await {
            Ok(Ok(len)) => match expected.accept(&buf[..len]) {
                Ok(answer) if answer.message.metadata.truncation => {
                    drop(socket);
                    return ask_tcp(server, query, expected, until).await;
                }
                Ok(answer) => return Ok(answer),
                Err(Rejected::ForeignClass) => return Err(UpstreamError::Mismatch(server)),
                Err(Rejected::NotOurs) => {}
            },
            // ICMP port unreachable and the like: this server is not there.
            Ok(Err(error)) => return Err(UpstreamError::io(error)),
            Err(_) => {
                if Instant::now() >= until {
                    return Err(UpstreamError::Timeout(RETRANSMIT));
                }
                socket.send(query).await.map_err(UpstreamError::io)?;
                resend = Instant::now() + RETRANSMIT;
            }
        }
    }
}

/// A new UDP socket connected to `server`. `connect` binds it to an
/// ephemeral port the kernel picks at random (the same choice as binding to
/// port 0, one system call less), and from then on the kernel drops
/// datagrams from any other address.
fn connected(server: SocketAddr) -> Result<UdpSocket, UpstreamError> {
    let socket = Socket::new(
        Domain::for_address(server),
        Type::DGRAM.nonblocking().cloexec(),
        Some(Protocol::UDP),
    )
    .map_err(UpstreamError::io)?;
    socket.connect(&server.into()).map_err(UpstreamError::io)?;
    UdpSocket::from_std(socket.into()).map_err(UpstreamError::io)
}

/// The question over TCP (RFC 1035 section 4.2.2: two octets of length
/// before the message), one question per connection.
async fn ask_tcp(
    server: SocketAddr,
    query: &[u8],
    expected: &Expected<'_>,
    until: Instant,
) -> Result<Fetched, UpstreamError> {
    let exchange = async {
        let mut stream = TcpStream::connect(server).await?;
        let len = u16::try_from(query.len()).map_err(|_| io::ErrorKind::InvalidInput)?;
        let mut framed = Vec::with_capacity(2 + query.len());
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(query);
        stream.write_all(&framed).await?;
        let len = usize::from(stream.read_u16().await?);
        let mut answer = vec![0u8; len];
        stream.read_exact(&mut answer).await?;
        Ok::<_, io::Error>(answer)
    };
    match timeout_at(until, exchange).await {
        Err(_) => Err(UpstreamError::Timeout(RETRANSMIT)),
        Ok(Err(error)) => Err(UpstreamError::io(error)),
        Ok(Ok(bytes)) => expected
            .accept(&bytes)
            .map_err(|_| UpstreamError::Mismatch(server)),
    }
}
