//! Forwarding (issue 14) against the real peers: zones signed at test time
//! with ldns-signzone, served by NSD on loopback, and a validating Unbound
//! holding their keys as trust anchors; Rempart forwards to that Unbound.
//! `tests/forwarding/lab.sh` builds the lab; `.ci/run` installs nsd,
//! unbound and ldnsutils.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BOTH: [Transport; 2] = [Transport::Udp, Transport::Tcp];

/// Listed in these tests: the target of `into.nsec.example`'s CNAME.
const LISTED: &[(&str, &str, &str, &str)] =
    &[("bad.nsec.example", "exact", "terrorism", "REF-0014")];

/// NSD and Unbound, stopped when dropped.
struct Lab {
    _dir: tempfile::TempDir,
    daemons: Vec<Child>,
    /// The validating Unbound.
    unbound: SocketAddr,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.daemons {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A free loopback port for UDP and TCP.
async fn free_port() -> u16 {
    let (udp, _tcp) = bind_pair().await;
    udp.local_addr().unwrap().port()
}

impl Lab {
    /// Sign the zones, start NSD and Unbound, wait until Unbound validates.
    async fn start() -> Lab {
        for tool in ["nsd", "unbound", "ldns-signzone", "ldns-keygen"] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(
                found,
                "{tool} is missing: install nsd, unbound and ldnsutils (.ci/run does)"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let nsd_port = free_port().await;
        let mut unbound_port = free_port().await;
        while unbound_port == nsd_port {
            unbound_port = free_port().await;
        }
        let lab_sh = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/forwarding/lab.sh");
        let out = Command::new("bash")
            .arg(&lab_sh)
            .arg(dir.path())
            .arg(nsd_port.to_string())
            .arg(unbound_port.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "lab.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let spawn = |program: &str, conf: &str| {
            Command::new(program)
                .args(["-d", "-c"])
                .arg(dir.path().join(conf))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        };
        let daemons = vec![spawn("nsd", "nsd.conf"), spawn("unbound", "unbound.conf")];
        let lab = Lab {
            unbound: SocketAddr::from(([127, 0, 0, 1], unbound_port)),
            daemons,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let probe = tokio::time::timeout(
                Duration::from_millis(500),
                ask_raw(
                    lab.unbound,
                    Transport::Udp,
                    "www.nsec.example.",
                    RecordType::A,
                    Flags::dnssec(),
                ),
            )
            .await;
            if let Ok(Some(m)) = probe
                && m.metadata.authentic_data
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "Unbound did not validate in time"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        lab
    }

    /// Rempart forwarding to this Unbound; `upstream` lines added to
    /// `[upstream]`.
    async fn rempart(&self, upstream: &str) -> (Setup, Rempart) {
        forwarding_to(self.unbound, 3000, upstream).await
    }
}

/// Rempart listing [`LISTED`], forwarding to `server` with `timeout_ms`
/// and the `upstream` lines added to `[upstream]`.
async fn forwarding_to(server: SocketAddr, timeout_ms: u64, upstream: &str) -> (Setup, Rempart) {
    let setup = Setup::new(LISTED);
    let extra = Extra {
        timeout_ms,
        ..Extra::default()
    };
    let timeout = format!("timeout_ms = {timeout_ms}");
    let config = setup
        .config(server, &extra)
        .replace(&timeout, &format!("{timeout}\n{upstream}"));
    let rempart = Rempart::start(&config).await;
    (setup, rempart)
}

/// DNSSEC flags of a query.
#[derive(Debug, Clone, Copy, Default)]
struct Flags {
    do_bit: bool,
    cd: bool,
    ad: bool,
}

impl Flags {
    fn dnssec() -> Flags {
        Flags {
            do_bit: true,
            ..Flags::default()
        }
    }
}

/// A query for `name`/`qtype` with RD, EDNS and `flags`.
fn question(name: &str, qtype: RecordType, flags: Flags) -> Message {
    let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    m.metadata.recursion_desired = true;
    m.metadata.checking_disabled = flags.cd;
    m.metadata.authentic_data = flags.ad;
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    edns.set_dnssec_ok(flags.do_bit);
    m.set_edns(edns);
    m
}

/// One query with EDNS and `flags`; `None` if nothing came back in time.
async fn ask_raw(
    server: SocketAddr,
    transport: Transport,
    name: &str,
    qtype: RecordType,
    flags: Flags,
) -> Option<Message> {
    let m = question(name, qtype, flags);
    let bytes = m.to_vec().unwrap();
    let response = match transport {
        Transport::Udp => {
            let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.ok()?;
            s.send_to(&bytes, server).await.ok()?;
            let mut buf = vec![0u8; 65_535];
            let (n, _) = s.recv_from(&mut buf).await.ok()?;
            buf.truncate(n);
            buf
        }
        Transport::Tcp => {
            let mut s = tokio::net::TcpStream::connect(server).await.ok()?;
            let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&bytes);
            s.write_all(&framed).await.ok()?;
            let len = s.read_u16().await.ok()? as usize;
            let mut buf = vec![0u8; len];
            s.read_exact(&mut buf).await.ok()?;
            buf
        }
    };
    let response = Message::from_vec(&response).ok()?;
    assert_eq!(response.metadata.id, m.metadata.id);
    Some(response)
}

/// [`ask_raw`] that must be answered within 10 s.
async fn ask(
    server: SocketAddr,
    transport: Transport,
    name: &str,
    qtype: RecordType,
    flags: Flags,
) -> Message {
    tokio::time::timeout(
        Duration::from_secs(10),
        ask_raw(server, transport, name, qtype, flags),
    )
    .await
    .ok()
    .flatten()
    .unwrap_or_else(|| panic!("no answer to {name} {qtype} {flags:?}"))
}

fn rand_id() -> u16 {
    let mut b = [0u8; 2];
    getrandom::fill(&mut b).unwrap();
    u16::from_be_bytes(b)
}

/// The types of a section, in order.
fn types(records: &[hickory_proto::rr::Record]) -> Vec<RecordType> {
    records.iter().map(|r| r.record_type()).collect()
}

fn count(records: &[hickory_proto::rr::Record], t: RecordType) -> usize {
    records.iter().filter(|r| r.record_type() == t).count()
}

fn no_dnssec(m: &Message) -> bool {
    m.answers.iter().chain(&m.authorities).all(|r| {
        !matches!(
            r.record_type(),
            RecordType::RRSIG | RecordType::NSEC | RecordType::NSEC3
        )
    })
}

/// RFC 4035 section 3.2.1 and RFC 6840 section 5.8, fresh and cached:
/// a DO=1 client gets the RRSIGs, NSEC and NSEC3 proofs, whatever a DO=0
/// client asked before; a DO=0 client gets none of them, whatever a DO=1
/// client asked before; AD (from a trusted upstream) only to clients that
/// set AD or DO.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnssec_records_and_ad_follow_each_client_fresh_and_cached() {
    let lab = Lab::start().await;
    let (_setup, rempart) = lab.rempart("trust_ad = true").await;
    let r = rempart.addr;
    let plain = Flags::default();
    let dnssec = Flags::dnssec();
    let ad_only = Flags { ad: true, ..plain };
    for t in BOTH {
        // DO=1 first, then DO=1 from the cache, then DO=0.
        for round in 0..2 {
            let m = ask(r, t, "www.nsec.example.", RecordType::A, dnssec).await;
            assert_eq!(
                types(&m.answers),
                [RecordType::A, RecordType::RRSIG],
                "{t:?} round {round}"
            );
            assert!(m.metadata.authentic_data, "{t:?} round {round}: AD");
            assert!(m.edns.as_ref().unwrap().flags().dnssec_ok, "DO echoed");
        }
        let m = ask(r, t, "www.nsec.example.", RecordType::A, plain).await;
        assert_eq!(types(&m.answers), [RecordType::A], "{t:?}: DO=0 after DO=1");
        assert!(!m.metadata.authentic_data, "{t:?}: no AD unless AD or DO");
        let m = ask(r, t, "www.nsec.example.", RecordType::A, ad_only).await;
        assert_eq!(types(&m.answers), [RecordType::A]);
        assert!(m.metadata.authentic_data, "{t:?}: AD=1 asked, AD given");
    }
    for t in BOTH {
        // The reverse: DO=0 first (fresh, then cached), then DO=1.
        let name = match t {
            Transport::Udp => "www.nsec3.example.",
            Transport::Tcp => "alias.nsec.example.",
        };
        for _ in 0..2 {
            let m = ask(r, t, name, RecordType::A, plain).await;
            assert!(no_dnssec(&m), "{t:?} {name}: {:?}", types(&m.answers));
            assert!(!m.answers.is_empty());
        }
        let m = ask(r, t, name, RecordType::A, dnssec).await;
        assert!(
            count(&m.answers, RecordType::RRSIG) >= 1,
            "{t:?} {name}: DO=1 after DO=0"
        );
        assert!(m.metadata.authentic_data);
    }
    for t in BOTH {
        // Denial of existence: NSEC, NSEC3, with their signatures.
        for (name, proof) in [
            ("nope.nsec.example.", RecordType::NSEC),
            ("nope.nsec3.example.", RecordType::NSEC3),
        ] {
            for round in 0..2 {
                let m = ask(r, t, name, RecordType::A, dnssec).await;
                assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
                assert_eq!(count(&m.authorities, RecordType::SOA), 1);
                assert!(count(&m.authorities, proof) >= 1, "{t:?} {name} {round}");
                assert!(
                    count(&m.authorities, RecordType::RRSIG) >= 2,
                    "{t:?} {name} {round}: SOA and proof signed"
                );
                assert!(m.metadata.authentic_data);
            }
            let m = ask(r, t, name, RecordType::A, plain).await;
            assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
            assert_eq!(types(&m.authorities), [RecordType::SOA], "{t:?} {name}");
        }
        // NODATA: the NSEC of the name.
        let m = ask(r, t, "www.nsec.example.", RecordType::TXT, dnssec).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
        assert_eq!(count(&m.authorities, RecordType::NSEC), 1, "{t:?}");
        // A wildcard expansion: the signed answer and the NSEC proving no
        // closer match (RFC 4035 section 3.1.3.3).
        let m = ask(r, t, "a.wild.nsec.example.", RecordType::A, dnssec).await;
        assert_eq!(types(&m.answers), [RecordType::A, RecordType::RRSIG]);
        assert_eq!(
            count(&m.authorities, RecordType::NSEC),
            1,
            "{t:?}: wildcard proof"
        );
        assert!(m.metadata.authentic_data);
        // DS and DNSKEY, signed for DO=1, bare for DO=0.
        for (name, qtype) in [
            ("child.nsec.example.", RecordType::DS),
            ("nsec.example.", RecordType::DNSKEY),
            ("nsec3.example.", RecordType::DNSKEY),
        ] {
            let m = ask(r, t, name, qtype, dnssec).await;
            assert!(count(&m.answers, qtype) >= 1, "{t:?} {name} {qtype}");
            assert!(
                count(&m.answers, RecordType::RRSIG) >= 1,
                "{t:?} {name} {qtype}"
            );
            assert!(m.metadata.authentic_data, "{t:?} {name} {qtype}");
            let m = ask(r, t, name, qtype, plain).await;
            assert!(count(&m.answers, qtype) >= 1);
            assert_eq!(
                count(&m.answers, RecordType::RRSIG),
                0,
                "{t:?} {name} {qtype}"
            );
        }
        // A DO=0 client asking for NSEC gets it: it asked for that type.
        let m = ask(r, t, "nsec.example.", RecordType::NSEC, plain).await;
        assert_eq!(types(&m.answers), [RecordType::NSEC], "{t:?}");
    }
    rempart.stop().await;
}

/// A name made bogus after signing: SERVFAIL with the upstream's EDE 6
/// "DNSSEC Bogus" without CD; the data with CD=1 (passed upstream); the
/// CD=1 answer, kept, never reaches a CD=0 client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bogus_names_servfail_with_ede_unless_cd() {
    let lab = Lab::start().await;
    let (_setup, rempart) = lab.rempart("trust_ad = true").await;
    let r = rempart.addr;
    let name = "bogus.nsec.example.";
    let cd = Flags {
        cd: true,
        do_bit: true,
        ad: false,
    };
    for t in BOTH {
        for flags in [Flags::default(), Flags::dnssec()] {
            let m = ask(r, t, name, RecordType::A, flags).await;
            assert_eq!(m.metadata.response_code, ResponseCode::ServFail, "{t:?}");
            let (code, text) = ede(&m).expect("the upstream's EDE relayed");
            assert_eq!(code, 6, "{t:?}: DNSSEC Bogus ({text})");
            assert!(m.answers.is_empty());
        }
        for round in 0..2 {
            let m = ask(r, t, name, RecordType::A, cd).await;
            assert_eq!(
                m.metadata.response_code,
                ResponseCode::NoError,
                "{t:?} {round}"
            );
            assert!(m.metadata.checking_disabled);
            assert!(
                !m.metadata.authentic_data,
                "{t:?}: bogus data is not authentic"
            );
            assert_eq!(types(&m.answers), [RecordType::A, RecordType::RRSIG]);
            assert_eq!(m.answers[0].data.to_string(), "198.51.100.99");
        }
        // After the CD=1 answers (cached, and kept ready-made over UDP).
        let m = ask(r, t, name, RecordType::A, Flags::dnssec()).await;
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::ServFail,
            "{t:?}: CD=0 after CD=1"
        );
        assert_eq!(ede(&m).map(|e| e.0), Some(6));
    }
    // A good name asked with CD=0 first serves CD=1 clients too.
    let m = ask(
        r,
        Transport::Udp,
        "www.nsec.example.",
        RecordType::A,
        Flags::dnssec(),
    )
    .await;
    assert!(m.metadata.authentic_data);
    let m = ask(r, Transport::Udp, "www.nsec.example.", RecordType::A, cd).await;
    assert_eq!(types(&m.answers), [RecordType::A, RecordType::RRSIG]);
    assert!(m.metadata.checking_disabled);
    rempart.stop().await;
}

/// `upstream.trust_ad` off (the default): AD is cleared for every client,
/// the DNSSEC records still relayed for validating clients to check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ad_is_cleared_unless_the_upstream_is_trusted() {
    let lab = Lab::start().await;
    let (_setup, rempart) = lab.rempart("").await;
    for t in BOTH {
        for flags in [
            Flags::dnssec(),
            Flags {
                ad: true,
                ..Flags::default()
            },
        ] {
            for _ in 0..2 {
                let m = ask(rempart.addr, t, "www.nsec.example.", RecordType::A, flags).await;
                assert!(!m.metadata.authentic_data, "{t:?} {flags:?}");
                let sigs = count(&m.answers, RecordType::RRSIG);
                assert_eq!(sigs, usize::from(flags.do_bit), "{t:?} {flags:?}");
            }
        }
    }
    rempart.stop().await;
}

/// Listed names keep their contract with DO=1 and a trusted upstream: no
/// RRSIG, no NSEC, AD=0, EDE 16; a chain cut at a listed name loses the
/// signatures of what was cut (and of the CNAMEs kept: the answer is ours).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listed_names_and_cut_chains_carry_no_signatures() {
    let lab = Lab::start().await;
    let (_setup, rempart) = lab.rempart("trust_ad = true").await;
    let dnssec = Flags {
        do_bit: true,
        ad: true,
        cd: false,
    };
    for t in BOTH {
        for _ in 0..2 {
            let m = ask(rempart.addr, t, "bad.nsec.example.", RecordType::A, dnssec).await;
            assert_eq!(answers(&m), ["bad.nsec.example. 60 A 192.0.2.80"], "{t:?}");
            assert!(no_dnssec(&m) && !m.metadata.authentic_data, "{t:?}");
            assert_eq!(ede(&m).map(|e| e.0), Some(16));

            let m = ask(rempart.addr, t, "into.nsec.example.", RecordType::A, dnssec).await;
            assert_eq!(
                types(&m.answers),
                [RecordType::CNAME, RecordType::A],
                "{t:?}: {:?}",
                answers(&m)
            );
            assert_eq!(m.answers[1].data.to_string(), "192.0.2.80");
            assert!(no_dnssec(&m) && !m.metadata.authentic_data, "{t:?}");
            assert_eq!(ede(&m).map(|e| e.0), Some(16));
        }
    }
    rempart.stop().await;
}

/// A UDP relay in front of an upstream: what Rempart is pointed at when a
/// test needs an upstream that stops answering. It drops every question
/// under `hole` (a black-holed zone), and every question at all once
/// [`Relay::black_hole`] is set.
struct Relay {
    addr: SocketAddr,
    all: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Relay {
    async fn start(target: SocketAddr, hole: &'static str) -> Relay {
        let socket = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = socket.local_addr().unwrap();
        let all = Arc::new(AtomicBool::new(false));
        let dropping = Arc::clone(&all);
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65_535];
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                    continue;
                };
                let query = buf[..n].to_vec();
                let in_hole = Message::from_vec(&query).is_ok_and(|m| {
                    m.queries
                        .first()
                        .is_some_and(|q| q.name().to_ascii().to_ascii_lowercase().ends_with(hole))
                });
                if in_hole || dropping.load(Ordering::Relaxed) {
                    continue;
                }
                let socket = Arc::clone(&socket);
                tokio::spawn(async move {
                    let up = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
                    let _ = up.send_to(&query, target).await;
                    let mut buf = vec![0u8; 65_535];
                    let answer = tokio::time::timeout(Duration::from_secs(5), up.recv(&mut buf));
                    if let Ok(Ok(n)) = answer.await {
                        let _ = socket.send_to(&buf[..n], from).await;
                    }
                });
            }
        });
        Relay { addr, all, task }
    }

    /// Drop every question from now on (or not).
    fn black_hole(&self, on: bool) {
        self.all.store(on, Ordering::Relaxed);
    }
}

/// Descriptors open in this process (Rempart runs in it).
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Issue 14 point 4: a flood of unique names under a black-holed zone,
/// mixed with unique names that are answered (filling the cache). Every
/// query is answered (SERVFAIL within the timeout for the hole, at once
/// with EDE 0 beyond `upstream.max_in_flight`); the queries waiting, the
/// tasks, the descriptors and the cache's bytes stay under their bounds;
/// cached and listed names are answered quickly all along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_into_a_black_hole_stays_bounded() {
    const MAX_IN_FLIGHT: usize = 64;
    const CACHE_BYTES: u64 = 1 << 20;
    const HOLE: usize = 2_000;
    const WILD: usize = 1_500;
    let lab = Lab::start().await;
    let relay = Relay::start(lab.unbound, ".hole.example.").await;
    let bounds = format!("max_in_flight = {MAX_IN_FLIGHT}\ncache_bytes = {CACHE_BYTES}");
    let (_setup, rempart) = forwarding_to(relay.addr, 1000, &bounds).await;
    let r = rempart.addr;
    let udp = Transport::Udp;
    let m = ask(r, udp, "www.nsec.example.", RecordType::A, Flags::default()).await;
    assert_eq!(types(&m.answers), [RecordType::A]);
    let handler = rempart.service().handler.clone();
    let runtime = tokio::runtime::Handle::current();
    let fds_before = open_fds();
    let tasks_before = runtime.metrics().num_alive_tasks();

    // Watch the bounds while the flood runs.
    let done = Arc::new(AtomicBool::new(false));
    let watch = {
        let (handler, done, runtime) = (handler.clone(), Arc::clone(&done), runtime.clone());
        tokio::spawn(async move {
            let (mut waiting, mut fds, mut tasks, mut bytes) = (0, 0, 0, 0);
            while !done.load(Ordering::Relaxed) {
                waiting = waiting.max(handler.upstream().waiting());
                fds = fds.max(open_fds());
                tasks = tasks.max(runtime.metrics().num_alive_tasks());
                bytes = bytes.max(handler.cache_bytes());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (waiting, fds, tasks, bytes)
        })
    };
    // Cached and listed names, asked all along the flood.
    let probe = {
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            let mut asked = 0;
            while !done.load(Ordering::Relaxed) {
                for name in ["www.nsec.example.", "bad.nsec.example."] {
                    let started = Instant::now();
                    let m = ask(r, udp, name, RecordType::A, Flags::default()).await;
                    slowest = slowest.max(started.elapsed());
                    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{name}");
                    assert_eq!(m.answers.len(), 1, "{name}");
                    asked += 1;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (slowest, asked)
        })
    };

    let flood = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let started = Instant::now();
    let reader = {
        let flood = Arc::clone(&flood);
        tokio::spawn(async move {
            let (mut servfail, mut busy, mut answered) = (0, 0, 0);
            let mut buf = vec![0u8; 65_535];
            // Until every query is answered, or nothing came for 3 s (a
            // datagram lost in a socket buffer under the burst).
            while servfail + answered < HOLE + WILD {
                let wait = Duration::from_secs(3);
                let Ok(Ok(n)) = tokio::time::timeout(wait, flood.recv(&mut buf)).await else {
                    break;
                };
                let m = Message::from_vec(&buf[..n]).unwrap();
                if m.metadata.response_code == ResponseCode::ServFail {
                    servfail += 1;
                    if ede(&m).is_some_and(|e| e.0 == 0) {
                        busy += 1;
                    }
                } else {
                    answered += 1;
                }
            }
            (servfail, busy, answered)
        })
    };
    flood.connect(r).await.unwrap();
    // First names that are answered (filling the cache), then the hole.
    for (n, zone) in [(WILD, "wild.nsec.example"), (HOLE, "hole.example")] {
        for i in 0..n {
            let m = question(&format!("q{i}.{zone}."), RecordType::A, Flags::dnssec());
            flood.send(&m.to_vec().unwrap()).await.unwrap();
            if i % 10 == 9 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    let (servfail, busy, answered) = reader.await.unwrap();
    let took = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let (waiting, fds, tasks, bytes) = watch.await.unwrap();
    let (slowest, asked) = probe.await.unwrap();

    eprintln!(
        "flood: {servfail} SERVFAIL ({busy} busy), {answered} answered in {took:?}; \
         at most {waiting} waiting, {fds} descriptors ({fds_before} before), \
         {tasks} tasks ({tasks_before} before), {bytes} bytes cached; \
         cached/listed names: {asked} answers, slowest {slowest:?}"
    );
    // UDP under a burst: a few datagrams may be lost in a socket buffer.
    let sent = HOLE + WILD;
    assert!(
        servfail + answered >= sent * 97 / 100,
        "answered: {servfail} + {answered}"
    );
    assert!(servfail >= HOLE * 97 / 100, "{servfail} SERVFAIL");
    assert!(
        busy > 0,
        "beyond max_in_flight: SERVFAIL with EDE 0 at once"
    );
    let counted = rempart.service().metrics.render(0);
    assert!(
        counted.contains(&format!("rempart_upstream_busy_total {busy}")),
        "busy counted"
    );
    assert!(took < Duration::from_secs(12), "flood answered in {took:?}");
    assert!(
        waiting <= MAX_IN_FLIGHT,
        "{waiting} queries waited on upstream"
    );
    // Rempart's sockets towards upstream and the relay's own, one per
    // exchange each, plus slack for the test's sockets.
    let fd_bound = fds_before + 2 * MAX_IN_FLIGHT + 32;
    assert!(fds <= fd_bound, "{fds} descriptors (before: {fds_before})");
    let task_bound = tasks_before + 2 * MAX_IN_FLIGHT + 128;
    assert!(
        tasks <= task_bound,
        "{tasks} tasks (before: {tasks_before})"
    );
    assert!(bytes <= CACHE_BYTES, "{bytes} bytes cached");
    // Filled: the unique names answered outnumber what 1 MiB holds.
    assert!(
        handler.upstream().cache_len() >= 500,
        "the cache was used: {} answers",
        handler.upstream().cache_len()
    );
    assert!(asked >= 4, "probes ran during the flood");
    // Well under the upstream timeout the hole's queries wait for.
    assert!(
        slowest < Duration::from_millis(800),
        "cached/listed took {slowest:?}"
    );
    assert_eq!(handler.upstream().waiting(), 0);
    rempart.stop().await;
}

/// A zone whose answers expire after a second, for serve-stale.
const SHORT_ZONE: &str = r#"
$ORIGIN test.
$TTL 1
@      IN SOA ns.test. hostmaster.test. 1 3600 600 86400 1
@      IN NS  ns.test.
ns     IN A   127.0.0.1
short  IN A   198.51.100.77
"#;

/// Issue 14 point 5, RFC 8767: with `upstream.serve_stale`, an expired
/// answer is served with TTL 30 and EDE 3 while upstream does not answer,
/// counted; not past `upstream.serve_stale_max_age`; never without the
/// option; fresh answers again once upstream is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_stale_answers_expired_names_while_upstream_is_silent() {
    let upstream = TestUpstream::start(SHORT_ZONE).await;
    let relay = Relay::start(upstream.addr, ".hole.test.").await;
    let serving_stale = "serve_stale = true\nserve_stale_max_age = 2";
    let (_s1, stale) = forwarding_to(relay.addr, 300, serving_stale).await;
    let (_s2, strict) = forwarding_to(relay.addr, 300, "").await;
    let name = "short.test.";
    let short = |r: SocketAddr, t| ask(r, t, name, RecordType::A, Flags::default());
    for r in [&stale, &strict] {
        let m = short(r.addr, Transport::Udp).await;
        assert_eq!(answers(&m), ["short.test. 1 A 198.51.100.77"]);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    relay.black_hole(true);
    let stale_total = |r: &Rempart| {
        let text = r.service().metrics.render(0);
        text.lines()
            .find_map(|l| l.strip_prefix("rempart_stale_answers_total ")?.parse().ok())
            .unwrap_or(0u64)
    };
    for (i, t) in BOTH.into_iter().enumerate() {
        let started = Instant::now();
        let m = short(stale.addr, t).await;
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "upstream asked first"
        );
        assert_eq!(answers(&m), ["short.test. 30 A 198.51.100.77"], "{t:?}");
        assert_eq!(ede(&m).map(|e| e.0), Some(3), "{t:?}: Stale Answer");
        assert_eq!(stale_total(&stale), i as u64 + 1);
        let m = short(strict.addr, t).await;
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::ServFail,
            "{t:?}: option off"
        );
    }
    // Stored with TTL 1 and a stale age of at most 2 s: gone after 3 s.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let m = short(stale.addr, Transport::Udp).await;
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::ServFail,
        "past the max age"
    );
    assert_eq!(stale_total(&stale), 2);
    // Upstream back: fresh again.
    relay.black_hole(false);
    let m = short(stale.addr, Transport::Udp).await;
    assert_eq!(answers(&m), ["short.test. 1 A 198.51.100.77"]);
    assert_eq!(ede(&m), None);
    stale.stop().await;
    strict.stop().await;
}

/// An upstream that answers each question after `delay`, first with two
/// forgeries (a wrong ID, then the right ID for another question), then
/// truly; it counts the questions it gets.
struct Forger {
    addr: SocketAddr,
    asked: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Forger {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Forger {
    async fn start(delay: Duration) -> Forger {
        use hickory_proto::rr::{RData, Record, rdata::A};
        let socket = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = socket.local_addr().unwrap();
        let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = Arc::clone(&asked);
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65_535];
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                    continue;
                };
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                count.fetch_add(1, Ordering::Relaxed);
                let socket = Arc::clone(&socket);
                tokio::spawn(async move {
                    let answer = |id: u16, name: &Name, last: u8| {
                        let mut m = Message::response(id, OpCode::Query);
                        m.metadata.recursion_available = true;
                        m.add_query(Query::query(name.clone(), RecordType::A));
                        let rdata = RData::A(A::new(198, 51, 100, last));
                        m.add_answer(Record::from_rdata(name.clone(), 60, rdata));
                        m.to_vec().unwrap()
                    };
                    let id = query.metadata.id;
                    let name = query.queries[0].name().clone();
                    let other = Name::from_ascii("other.test.").unwrap();
                    tokio::time::sleep(delay).await;
                    let _ = socket
                        .send_to(&answer(id.wrapping_add(1), &name, 66), from)
                        .await;
                    let _ = socket.send_to(&answer(id, &other, 67), from).await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let _ = socket.send_to(&answer(id, &name, 1), from).await;
                });
            }
        });
        Forger { addr, asked, task }
    }
}

/// The protections of the exchange (issue 14 point 3): an answer is taken
/// only if its ID and question match ours (forgeries sent first are
/// ignored), and identical questions in flight share one exchange.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_answers_are_ignored_and_identical_questions_share_one_exchange() {
    let forger = Forger::start(Duration::from_millis(200)).await;
    let setup = Setup::new(LISTED);
    let rempart = Rempart::start(&setup.config(forger.addr, &Extra::default())).await;
    let mut clients = Vec::new();
    for i in 0..20 {
        let t = if i % 2 == 0 {
            Transport::Udp
        } else {
            Transport::Tcp
        };
        let r = rempart.addr;
        clients.push(tokio::spawn(async move {
            ask(r, t, "same.test.", RecordType::A, Flags::default()).await
        }));
    }
    for client in clients {
        let m = client.await.unwrap();
        assert_eq!(answers(&m), ["same.test. 60 A 198.51.100.1"]);
    }
    assert_eq!(
        forger.asked.load(Ordering::Relaxed),
        1,
        "one exchange for 20 queries"
    );
    rempart.stop().await;
}
