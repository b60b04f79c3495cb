//! The RPZ listener (`rpz.listen`): UDP and TCP on each address.
//!
//! What it answers, to clients inside `rpz.allow_transfer` (every other
//! client gets REFUSED, whatever it asks):
//!
//! - SOA and NS at a zone's apex (a secondary's refresh check); any other
//!   type at the apex is NODATA; names below an apex or outside every zone
//!   are REFUSED (the zone's content is for transfers only), names
//!   under `rpz.zone_suffix` of no zone yet SERVFAIL (a zone not loaded);
//! - AXFR over TCP (RFC 5936 section 2.2: the SOA first and last, the
//!   records over as many messages as needed, each with the question);
//!   over UDP, FORMERR (RFC 5936 section 4.2: AXFR over UDP is not
//!   defined);
//! - IXFR (RFC 1995 section 4): the SOA alone to a secondary at or past
//!   the current serial, the differences since its serial when the history
//!   reaches back, the whole zone (AXFR format) otherwise; over UDP the
//!   SOA alone, which tells the client to come over TCP (section 2).
//!
//! With `rpz.tsig_key`, an AXFR or IXFR without TSIG is REFUSED, a TSIG
//! that does not verify gets NOTAUTH with its TSIG error, and every
//! answer to a signed request is signed ([`super::tsig`]).
//!
//! Bounds: [`MAX_TCP_CONNECTIONS`] connections at once (others are closed
//! at accept), [`TCP_IDLE`] without a query closes a connection,
//! [`TCP_WRITE`] for each message of a transfer to be taken.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use super::tsig::{self, Checked, ResponseSigner, TsigError};
use super::zone::{Diff, serial_greater};
use super::{Event, Published, Rpz};

/// TCP connections served at once.
pub const MAX_TCP_CONNECTIONS: usize = 64;
/// A TCP connection without a query for this long is closed.
pub const TCP_IDLE: Duration = Duration::from_secs(10);
/// Each message of a transfer must be taken within this.
pub const TCP_WRITE: Duration = Duration::from_secs(30);
/// Records per transfer message: at most 64 x (255 + 255 + 10) octets,
/// below the 65535 of a TCP message whatever the names.
pub const RECORDS_PER_MESSAGE: usize = 64;

/// The sockets of `rpz.listen`, bound.
#[derive(Debug)]
pub struct Sockets {
    udp: Vec<UdpSocket>,
    tcp: Vec<TcpListener>,
}

impl Sockets {
    /// Bind UDP and TCP on each address (port 0: the same free port for
    /// both).
    pub async fn bind(listen: &[SocketAddr]) -> io::Result<Sockets> {
        let mut udp = Vec::new();
        let mut tcp = Vec::new();
        for addr in listen {
            let mut tries = 0;
            loop {
                let t = TcpListener::bind(addr).await?;
                let port = t.local_addr()?.port();
                match UdpSocket::bind(SocketAddr::new(addr.ip(), port)).await {
                    Ok(u) => {
                        udp.push(u);
                        tcp.push(t);
                        break;
                    }
                    Err(e) if addr.port() == 0 && tries < 16 => {
                        tries += 1;
                        debug!(error = %e, "rpz: UDP port taken, another try");
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(Sockets { udp, tcp })
    }

    /// The addresses bound (UDP and TCP share each).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.tcp
            .iter()
            .filter_map(|t| t.local_addr().ok())
            .collect()
    }
}

/// Serve the zones of `rpz` on `sockets`, and send its NOTIFYs, until
/// `shutdown` completes.
pub async fn run(rpz: Arc<Rpz>, sockets: Sockets, shutdown: impl Future<Output = ()>) {
    let mut tasks = tokio::task::JoinSet::new();
    for socket in sockets.udp {
        tasks.spawn(udp_loop(Arc::clone(&rpz), socket));
    }
    let slots = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
    for listener in sockets.tcp {
        tasks.spawn(tcp_loop(Arc::clone(&rpz), listener, Arc::clone(&slots)));
    }
    tasks.spawn(super::notify::run(Arc::clone(&rpz)));
    shutdown.await;
    tasks.shutdown().await;
}

async fn udp_loop(rpz: Arc<Rpz>, socket: UdpSocket) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                debug!(error = %e, "rpz: UDP receive");
                continue;
            }
        };
        let Some((request, mut auth)) = read(&rpz, &buf[..n]) else {
            continue;
        };
        if request.metadata.message_type != MessageType::Query {
            continue;
        }
        let answer = match respond(&rpz, &request, from.ip(), false, &auth) {
            Reply::One(m) => m,
            // Not over UDP: the SOA alone, or FORMERR, was chosen above.
            Reply::Transfer(_) => continue,
        };
        if let Ok(bytes) = answer.to_vec() {
            let _ = socket.send_to(&auth.seal(&rpz, bytes), from).await;
        }
    }
}

async fn tcp_loop(rpz: Arc<Rpz>, listener: TcpListener, slots: Arc<Semaphore>) {
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                debug!(error = %e, "rpz: TCP accept");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            rpz.count(Event::TcpFull);
            warn!(client = %from, limit = MAX_TCP_CONNECTIONS, "rpz: TCP connection closed at accept: too many open");
            continue;
        };
        let rpz = Arc::clone(&rpz);
        tokio::spawn(async move {
            if let Err(e) = connection(&rpz, stream, from.ip()).await {
                debug!(client = %from, error = %e, "rpz: TCP connection ended");
            }
            drop(slot);
        });
    }
}

/// One TCP connection: queries one after the other (RFC 7766 section 6.2.1
/// allows pipelining; secondaries send one transfer at a time).
async fn connection(rpz: &Rpz, mut stream: TcpStream, client: IpAddr) -> io::Result<()> {
    loop {
        let len = match tokio::time::timeout(TCP_IDLE, stream.read_u16()).await {
            Ok(Ok(len)) => usize::from(len),
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        };
        let mut buf = vec![0u8; len];
        tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut buf))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "query not read in time"))??;
        let Some((request, mut auth)) = read(rpz, &buf) else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a DNS message",
            ));
        };
        if request.metadata.message_type != MessageType::Query {
            return Ok(());
        }
        match respond(rpz, &request, client, true, &auth) {
            Reply::One(m) => send(&mut stream, &m, rpz, &mut auth).await?,
            Reply::Transfer(t) => transfer(&mut stream, &request, t, rpz, &mut auth).await?,
        }
    }
}

/// What the TSIG of a request said, and so how its answers are signed.
enum Auth {
    /// No TSIG (or no key configured).
    Unsigned,
    /// Verified: every answer is signed in a chain.
    Signed(ResponseSigner),
    /// Did not verify: the answer is NOTAUTH with this TSIG error.
    Rejected(TsigError),
}

impl Auth {
    /// The answer's bytes as sent: signed, or with the TSIG error.
    fn seal(&mut self, rpz: &Rpz, bytes: Vec<u8>) -> Vec<u8> {
        let Some(key) = rpz.tsig_key() else {
            return bytes;
        };
        match self {
            Auth::Unsigned => bytes,
            Auth::Signed(signer) => signer.sign(&bytes, unix_now()),
            Auth::Rejected(e) => {
                tsig::append_error(tsig::key_name_wire(key), &bytes, unix_now(), *e)
            }
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The request, its TSIG checked when a key is configured (RFC 8945
/// section 5.2); `None` when it is no DNS message.
fn read(rpz: &Rpz, bytes: &[u8]) -> Option<(Message, Auth)> {
    let Some(key) = rpz.tsig_key() else {
        return Some((Message::from_vec(bytes).ok()?, Auth::Unsigned));
    };
    match tsig::check(key, bytes, unix_now())? {
        Checked::Unsigned => Some((Message::from_vec(bytes).ok()?, Auth::Unsigned)),
        Checked::Signed { message, signature } => Some((
            Message::from_vec(&message).ok()?,
            Auth::Signed(ResponseSigner::new(key, signature)),
        )),
        Checked::Rejected { message, error } => {
            Some((Message::from_vec(&message).ok()?, Auth::Rejected(error)))
        }
    }
}

async fn send(stream: &mut TcpStream, m: &Message, rpz: &Rpz, auth: &mut Auth) -> io::Result<()> {
    let bytes = auth.seal(rpz, m.to_vec().map_err(io::Error::other)?);
    let len = u16::try_from(bytes.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "message over 65535 octets"))?;
    let mut framed = Vec::with_capacity(bytes.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(&bytes);
    tokio::time::timeout(TCP_WRITE, stream.write_all(&framed))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "transfer not taken in time"))?
}

/// What to send.
enum Reply {
    /// One message.
    One(Message),
    /// A transfer, over as many messages as needed.
    Transfer(Transfer),
}

/// A transfer: what it holds, from the version it started on.
enum Transfer {
    /// The whole zone (AXFR, or IXFR answered in full).
    Full(Published),
    /// The differences since the client's serial (RFC 1995 section 4).
    Incremental(Published, Vec<Arc<Diff>>),
}

/// The answer to `request` from `client`.
fn respond(rpz: &Rpz, request: &Message, client: IpAddr, tcp: bool, auth: &Auth) -> Reply {
    let id = request.metadata.id;
    let mut answer = Message::response(id, request.metadata.op_code);
    answer.metadata.recursion_desired = request.metadata.recursion_desired;
    answer.queries = request.queries.clone();
    let error = |mut m: Message, code: ResponseCode| {
        m.metadata.response_code = code;
        Reply::One(m)
    };
    if !rpz
        .config()
        .allow_transfer
        .iter()
        .any(|n| n.contains(&client))
    {
        rpz.count(Event::NotAllowed);
        debug!(client = %client, "rpz: client outside rpz.allow_transfer: REFUSED");
        return error(answer, ResponseCode::Refused);
    }
    if let Auth::Rejected(e) = auth {
        debug!(client = %client, error = ?e, "rpz: TSIG does not verify: NOTAUTH");
        rpz.count(Event::BadTsig);
        return error(answer, ResponseCode::NotAuth);
    }
    if request.metadata.op_code != OpCode::Query {
        return error(answer, ResponseCode::NotImp);
    }
    let [query] = request.queries.as_slice() else {
        return error(answer, ResponseCode::FormErr);
    };
    if query.query_class() != DNSClass::IN {
        return error(answer, ResponseCode::Refused);
    }
    let Some(published) = rpz.zone(query.name()) else {
        // A zone of ours not published yet (its list still being read at
        // start): SERVFAIL, as a primary answers for a zone not loaded, so
        // that secondaries try again.
        let code = if rpz.config().zone_suffix.zone_of(query.name()) {
            ResponseCode::ServFail
        } else {
            ResponseCode::Refused
        };
        return error(answer, code);
    };
    let zone = &published.zone;
    let transfer = matches!(query.query_type(), RecordType::AXFR | RecordType::IXFR);
    if transfer && rpz.tsig_key().is_some() && !matches!(auth, Auth::Signed(_)) {
        rpz.count(Event::Unsigned);
        debug!(client = %client, "rpz: transfer without TSIG while rpz.tsig_key is set: REFUSED");
        return error(answer, ResponseCode::Refused);
    }
    answer.metadata.authoritative = true;
    match query.query_type() {
        RecordType::SOA => {
            answer.answers.push(zone.soa());
            Reply::One(answer)
        }
        RecordType::NS => {
            answer.answers.push(zone.ns());
            Reply::One(answer)
        }
        RecordType::AXFR if !tcp => error(answer, ResponseCode::FormErr),
        RecordType::AXFR => {
            rpz.count(Event::Axfr);
            debug!(client = %client, zone = %zone.apex, serial = zone.serial, "rpz: AXFR");
            Reply::Transfer(Transfer::Full(published))
        }
        RecordType::IXFR => {
            // RFC 1995 section 3: the client's version is the SOA in the
            // authority section.
            let Some(theirs) = request.authorities.iter().find_map(|r| match &r.data {
                RData::SOA(soa) => Some(soa.serial),
                _ => None,
            }) else {
                return error(answer, ResponseCode::FormErr);
            };
            if !tcp || !serial_greater(zone.serial, theirs) {
                if serial_greater(zone.serial, theirs) {
                    debug!(client = %client, zone = %zone.apex, "rpz: IXFR over UDP: the SOA alone, to come over TCP");
                } else {
                    rpz.count(Event::IxfrCurrent);
                }
                answer.answers.push(zone.soa());
                return Reply::One(answer);
            }
            match published.history.since(theirs) {
                Some(diffs) => {
                    rpz.count(Event::Ixfr);
                    debug!(client = %client, zone = %zone.apex, from = theirs, to = zone.serial, versions = diffs.len(), "rpz: IXFR, incremental");
                    Reply::Transfer(Transfer::Incremental(published, diffs))
                }
                None => {
                    rpz.count(Event::IxfrFull);
                    debug!(client = %client, zone = %zone.apex, from = theirs, to = zone.serial, "rpz: IXFR from a serial the history does not reach: the whole zone");
                    Reply::Transfer(Transfer::Full(published))
                }
            }
        }
        _ => {
            answer.authorities.push(zone.soa());
            Reply::One(answer)
        }
    }
}

/// Records gathered into messages of [`RECORDS_PER_MESSAGE`], each sent
/// when full.
struct Messages<'a> {
    stream: &'a mut TcpStream,
    rpz: &'a Rpz,
    auth: &'a mut Auth,
    id: u16,
    query: Query,
    records: Vec<Record>,
}

impl Messages<'_> {
    async fn push(&mut self, record: Record) -> io::Result<()> {
        self.records.push(record);
        if self.records.len() >= RECORDS_PER_MESSAGE {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> io::Result<()> {
        if self.records.is_empty() {
            return Ok(());
        }
        let mut m = Message::response(self.id, OpCode::Query);
        m.metadata.authoritative = true;
        m.queries.push(self.query.clone());
        m.answers = std::mem::take(&mut self.records);
        send(self.stream, &m, self.rpz, self.auth).await
    }
}

/// Send a transfer: RFC 5936 section 2.2 (AXFR) or RFC 1995 section 4
/// (IXFR), both starting and ending with the zone's current SOA.
async fn transfer(
    stream: &mut TcpStream,
    request: &Message,
    t: Transfer,
    rpz: &Rpz,
    auth: &mut Auth,
) -> io::Result<()> {
    let mut out = Messages {
        stream,
        rpz,
        auth,
        id: request.metadata.id,
        query: request.queries[0].clone(),
        records: Vec::with_capacity(RECORDS_PER_MESSAGE),
    };
    let sent = send_records(&mut out, &t).await;
    // The transfer may hold the last reference to a replaced list (a
    // million entries): freed off the async workers.
    tokio::task::spawn_blocking(move || drop(t));
    sent
}

async fn send_records(out: &mut Messages<'_>, t: &Transfer) -> io::Result<()> {
    match t {
        Transfer::Full(p) => {
            let zone = &p.zone;
            out.push(zone.soa()).await?;
            out.push(zone.ns()).await?;
            for i in 0..zone.entries() {
                // A name too long for the zone was reported at publish.
                for r in zone.records_at(i).unwrap_or_default() {
                    out.push(r).await?;
                }
            }
            out.push(zone.soa()).await?;
        }
        Transfer::Incremental(p, diffs) => {
            let zone = &p.zone;
            out.push(zone.soa()).await?;
            for d in diffs {
                // RFC 1995 section 4: the old SOA, the records deleted, the
                // new SOA, the records added.
                out.push(zone.soa_at(d.from)).await?;
                for (name, kind) in &d.removed {
                    for r in zone.records_of(name, *kind).unwrap_or_default() {
                        out.push(r).await?;
                    }
                }
                out.push(zone.soa_at(d.to)).await?;
                for (name, kind) in &d.added {
                    for r in zone.records_of(name, *kind).unwrap_or_default() {
                        out.push(r).await?;
                    }
                }
            }
            out.push(zone.soa()).await?;
        }
    }
    out.flush().await
}
