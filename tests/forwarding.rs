//! Forwarding (issue 14) against the real peers: zones signed at test time
//! with ldns-signzone, served by NSD on loopback, and a validating Unbound
//! holding their keys as trust anchors; Rempart forwards to that Unbound.
//! `tests/forwarding/lab.sh` builds the lab; `.ci/run` installs nsd,
//! unbound and ldnsutils.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
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
    async fn start(extra_unbound: &str) -> Lab {
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
        let unbound_port = free_port().await;
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
        if !extra_unbound.is_empty() {
            let conf = dir.path().join("unbound.conf");
            let text = std::fs::read_to_string(&conf).unwrap();
            let text = format!("{text}{extra_unbound}");
            std::fs::write(&conf, text).unwrap();
        }
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
        let setup = Setup::new(LISTED);
        let extra = Extra {
            timeout_ms: 3000,
            ..Extra::default()
        };
        let config = setup.config(self.unbound, &extra).replace(
            "timeout_ms = 3000",
            &format!("timeout_ms = 3000\n{upstream}"),
        );
        let rempart = Rempart::start(&config).await;
        (setup, rempart)
    }
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

/// One query with EDNS and `flags`; `None` if nothing came back in time.
async fn ask_raw(
    server: SocketAddr,
    transport: Transport,
    name: &str,
    qtype: RecordType,
    flags: Flags,
) -> Option<Message> {
    let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    m.metadata.recursion_desired = true;
    m.metadata.checking_disabled = flags.cd;
    m.metadata.authentic_data = flags.ad;
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    edns.set_dnssec_ok(flags.do_bit);
    m.set_edns(edns);
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
    let lab = Lab::start("").await;
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
    let lab = Lab::start("").await;
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
    let lab = Lab::start("").await;
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
    let lab = Lab::start("").await;
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
