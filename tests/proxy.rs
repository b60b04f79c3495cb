//! Behind dnsdist (issue 19): the real dnsdist from Debian, started by the
//! test on loopback in front of Rempart with `useProxyProtocol=true`
//! (PROXY protocol v2), so that the subscriber's address, not the
//! balancer's, meets the ACL and the audit trail. Loopback has a whole
//! /8: clients ask from 127.0.0.2, .3 and .4, dnsdist speaks from
//! 127.0.0.1. `.ci/run` installs dnsdist.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// dnsdist at 127.0.0.1 may speak for others; it may ask for itself, as
/// may the clients .3 and .4; .2 may not.
const SERVER: &str = r#"
allow = ["127.0.0.1/32", "127.0.0.3/32", "127.0.0.4/32"]
proxy_from = ["127.0.0.1/32"]
"#;

/// dnsdist, stopped when dropped.
struct Dnsdist {
    _dir: tempfile::TempDir,
    child: Child,
    addr: SocketAddr,
}

impl Drop for Dnsdist {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dnsdist {
    /// dnsdist on a free loopback port, forwarding to `backend` with a
    /// PROXY v2 header; ready once an allowed client's query comes back.
    async fn start(backend: SocketAddr) -> Dnsdist {
        let found = Command::new("sh")
            .args(["-c", "command -v dnsdist"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(found, "dnsdist is missing: install it (.ci/run does)");
        let dir = tempfile::tempdir().unwrap();
        let (udp, _tcp) = bind_pair().await;
        let addr = udp.local_addr().unwrap();
        drop((udp, _tcp));
        let conf = dir.path().join("dnsdist.conf");
        // No security polling (it would ask the Internet); the backend
        // forced up, so that the test does not wait for health checks.
        std::fs::write(
            &conf,
            format!(
                "setSecurityPollSuffix('')\n\
                 setLocal('{addr}')\n\
                 newServer({{address='{backend}', useProxyProtocol=true}}):setUp()\n"
            ),
        )
        .unwrap();
        let child = Command::new("dnsdist")
            .args(["--supervised", "--disable-syslog", "-C"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let d = Dnsdist {
            _dir: dir,
            child,
            addr,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let probe = tokio::time::timeout(
                Duration::from_millis(500),
                ask(d.addr, "127.0.0.3:0", false, "ok.test.", &[]),
            )
            .await;
            if let Ok(Some(m)) = probe
                && m.metadata.response_code == ResponseCode::NoError
            {
                return d;
            }
            assert!(Instant::now() < deadline, "dnsdist did not answer in time");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One query from `local` to `server`, preceded by `prefix` (a PROXY
/// header, or nothing), over UDP or TCP: the answer, or `None` when none
/// comes within a second (UDP) or the connection is closed (TCP).
async fn ask(
    server: SocketAddr,
    local: &str,
    tcp: bool,
    name: &str,
    prefix: &[u8],
) -> Option<Message> {
    let mut m = Message::new(4242, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    m.metadata.recursion_desired = true;
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    m.set_edns(edns);
    let query = m.to_vec().unwrap();
    let bytes = if tcp {
        let local: SocketAddr = local.parse().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(local).unwrap();
        let mut s = socket.connect(server).await.ok()?;
        let mut framed = prefix.to_vec();
        framed.extend_from_slice(&(query.len() as u16).to_be_bytes());
        framed.extend_from_slice(&query);
        s.write_all(&framed).await.ok()?;
        let read = async {
            let len = s.read_u16().await.ok()?;
            let mut buf = vec![0u8; usize::from(len)];
            s.read_exact(&mut buf).await.ok()?;
            Some(buf)
        };
        tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .ok()??
    } else {
        let s = tokio::net::UdpSocket::bind(local).await.unwrap();
        let mut datagram = prefix.to_vec();
        datagram.extend_from_slice(&query);
        s.send_to(&datagram, server).await.unwrap();
        let mut buf = vec![0u8; 65_535];
        let (n, _) = tokio::time::timeout(Duration::from_secs(1), s.recv_from(&mut buf))
            .await
            .ok()?
            .unwrap();
        buf.truncate(n);
        buf
    };
    let answer = Message::from_vec(&bytes).unwrap();
    assert_eq!(answer.metadata.id, 4242);
    Some(answer)
}

/// A PROXY v2 header (command PROXY, IPv4) naming `client`.
fn proxy_header(client: [u8; 4], tcp: bool) -> Vec<u8> {
    let mut h = rempart::dns::proxy::SIGNATURE.to_vec();
    h.push(0x21);
    h.push(if tcp { 0x11 } else { 0x12 });
    h.extend_from_slice(&12u16.to_be_bytes());
    h.extend_from_slice(&client);
    h.extend_from_slice(&[127, 0, 0, 1]);
    h.extend_from_slice(&[0x30, 0x39, 0, 53]);
    h
}

fn redirects(dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    for f in rempart::audit::trail::files(dir).unwrap() {
        for l in std::fs::read_to_string(&f).unwrap().lines() {
            let v: Value = serde_json::from_str(l).unwrap();
            if v["kind"] == "redirect" {
                out.push(v);
            }
        }
    }
    out
}

async fn start() -> (TestUpstream, Setup, Rempart) {
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    let config = setup.config(
        upstream.addr,
        &Extra {
            server: SERVER,
            audit: "client_ip = \"full\"",
            ..Extra::default()
        },
    );
    let rempart = Rempart::start(&config).await;
    (upstream, setup, rempart)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_dnsdist_the_subscribers_address_meets_the_acl_and_the_audit_trail() {
    let (_upstream, setup, rempart) = start().await;
    let dnsdist = Dnsdist::start(rempart.addr).await;
    for tcp in [false, true] {
        // Outside server.allow, although dnsdist (127.0.0.1) is inside.
        let m = ask(dnsdist.addr, "127.0.0.2:0", tcp, "ok.test.", &[])
            .await
            .expect("an answer through dnsdist");
        assert_eq!(m.metadata.response_code, ResponseCode::Refused, "tcp {tcp}");
        assert_eq!(ede(&m).map(|e| e.0), Some(18), "tcp {tcp}");
        // Inside: the redirect, EDE 16.
        let m = ask(dnsdist.addr, "127.0.0.3:0", tcp, "bad.test.", &[])
            .await
            .expect("an answer through dnsdist");
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(answers(&m), ["bad.test. 60 A 192.0.2.80"], "tcp {tcp}");
        assert_eq!(ede(&m).map(|e| e.0), Some(16));
    }
    rempart.service().auditor().expect("audit on").flush();
    let records = redirects(&setup.audit_dir());
    let clients: Vec<(&str, &str)> = records
        .iter()
        .map(|r| {
            (
                r["transport"].as_str().unwrap(),
                r["client"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        clients,
        [("udp", "127.0.0.3"), ("tcp", "127.0.0.3")],
        "the subscriber's address, not dnsdist's"
    );
    drop(dnsdist);
    rempart.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_header_from_outside_proxy_from_is_dropped_and_a_proxy_must_send_one() {
    let (_upstream, _setup, rempart) = start().await;
    let a = rempart.addr;
    for tcp in [false, true] {
        // 127.0.0.4 may ask for itself...
        let m = ask(a, "127.0.0.4:0", tcp, "ok.test.", &[]).await;
        assert_eq!(
            m.map(|m| m.metadata.response_code),
            Some(ResponseCode::NoError),
            "tcp {tcp}"
        );
        // ...but may not speak for anyone: no answer at all.
        let header = proxy_header([127, 0, 0, 3], tcp);
        let m = ask(a, "127.0.0.4:0", tcp, "ok.test.", &header).await;
        assert!(m.is_none(), "tcp {tcp}: {m:?}");
        // The proxy itself speaks for 127.0.0.3...
        let m = ask(a, "127.0.0.1:0", tcp, "ok.test.", &header).await;
        assert_eq!(
            m.map(|m| m.metadata.response_code),
            Some(ResponseCode::NoError),
            "tcp {tcp}"
        );
        // ...and for 127.0.0.2, outside server.allow.
        let header = proxy_header([127, 0, 0, 2], tcp);
        let m = ask(a, "127.0.0.1:0", tcp, "ok.test.", &header).await;
        assert_eq!(
            m.map(|m| m.metadata.response_code),
            Some(ResponseCode::Refused),
            "tcp {tcp}"
        );
        // A proxy without a header (server.proxy_required): REFUSED.
        let m = ask(a, "127.0.0.1:0", tcp, "ok.test.", &[]).await;
        assert_eq!(
            m.map(|m| m.metadata.response_code),
            Some(ResponseCode::Refused),
            "tcp {tcp}"
        );
    }
    let metrics = scrape_metrics(rempart.admin).await;
    for (reason, n) in [("untrusted", 2), ("missing", 2)] {
        let line = format!("rempart_proxy_rejected_total{{reason=\"{reason}\"}} {n}");
        assert!(metrics.contains(&line), "{line} in\n{metrics}");
    }
    rempart.stop().await;
}

/// The admin listener's /metrics, over a plain HTTP/1.1 exchange.
async fn scrape_metrics(admin: SocketAddr) -> String {
    let mut s = tokio::net::TcpStream::connect(admin).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// A free loopback port (UDP and TCP).
async fn free_port() -> u16 {
    let (udp, _tcp) = bind_pair().await;
    udp.local_addr().unwrap().port()
}

/// `kdig` from `source` to `server` over `how` (`+tls`, `+https`, or
/// `+notcp` for UDP), trusting `ca`: the answer's rcode and A addresses.
fn kdig(
    server: SocketAddr,
    source: &str,
    how: &str,
    ca: &Path,
    name: &str,
) -> (String, Vec<String>) {
    let out = Command::new("kdig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "-b", source, how])
        // (+tls-ca alone would turn TLS on.)
        .args(match how {
            "+notcp" => Vec::new(),
            _ => vec![
                format!("+tls-ca={}", ca.display()),
                "+tls-hostname=dns.test".to_owned(),
            ],
        })
        .args(["+json", "+timeout=3", "+retry=0"])
        .args([name, "A"])
        .output()
        .expect("kdig is missing: install knot-dnsutils (.ci/run does)");
    let text = String::from_utf8_lossy(&out.stdout);
    let Ok(v) = serde_json::from_str::<Value>(&text) else {
        return (format!("no answer: {text}"), Vec::new());
    };
    let addresses = v["answerRRs"]
        .as_array()
        .map(|rrs| {
            rrs.iter()
                .filter_map(|r| r["rdataA"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    (v["RCODE"].to_string(), addresses)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_dnsdist_example_terminates_dot_and_doh_and_balances_two_instances() {
    let (_upstream_a, setup_a, rempart_a) = start().await;
    let (_upstream_b, setup_b, rempart_b) = start().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    ca.issue(&cert, &key);
    let plain = SocketAddr::from(([127, 0, 0, 1], free_port().await));
    let dot = SocketAddr::from(([127, 0, 0, 1], free_port().await));
    let doh = SocketAddr::from(([127, 0, 0, 1], free_port().await));
    // The shipped file, its addresses and files made the test's; the
    // health check asks a name the test upstream serves.
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/dnsdist/dnsdist.conf"),
    )
    .unwrap();
    let conf = [
        ("'0.0.0.0:53'", format!("'{plain}'")),
        ("'0.0.0.0:853'", format!("'{dot}'")),
        ("'0.0.0.0:443'", format!("'{doh}'")),
        (
            "'/etc/dnsdist/fullchain.pem'",
            format!("'{}'", cert.display()),
        ),
        ("'/etc/dnsdist/key.pem'", format!("'{}'", key.display())),
        ("'127.0.0.1:5301'", format!("'{}'", rempart_a.addr)),
        ("'127.0.0.1:5302'", format!("'{}'", rempart_b.addr)),
        ("'a.root-servers.net.'", "'ok.test.'".to_owned()),
    ]
    .iter()
    .fold(shipped, |text, (from, to)| {
        assert!(text.contains(from), "{from} in the example");
        text.replace(from, to)
    });
    let conf_file = dir.path().join("dnsdist.conf");
    std::fs::write(&conf_file, conf).unwrap();
    let check = Command::new("dnsdist")
        .args(["--check-config", "-C"])
        .arg(&conf_file)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "dnsdist --check-config: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let child = Command::new("dnsdist")
        .args(["--supervised", "--disable-syslog", "-C"])
        .arg(&conf_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _dnsdist = Dnsdist {
        _dir: dir,
        child,
        addr: plain,
    };
    let ca_file = _dnsdist._dir.path().join("ca.pem");
    let ask = |server, source: &'static str, how: &'static str, name: &'static str| {
        let ca_file = ca_file.clone();
        tokio::task::spawn_blocking(move || kdig(server, source, how, &ca_file, name))
    };
    // Up once the health checks have passed: plain queries answered.
    let deadline = Instant::now() + Duration::from_secs(20);
    while ask(plain, "127.0.0.3", "+notcp", "ok.test.")
        .await
        .unwrap()
        .0
        != "0"
    {
        assert!(Instant::now() < deadline, "dnsdist did not answer in time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (server, how) in [(dot, "+tls"), (doh, "+https")] {
        let (rcode, addresses) = ask(server, "127.0.0.3", how, "bad.test.").await.unwrap();
        assert_eq!(
            (rcode.as_str(), addresses),
            ("0", vec!["192.0.2.80".to_owned()]),
            "{how}"
        );
        let (rcode, _) = ask(server, "127.0.0.2", how, "bad.test.").await.unwrap();
        assert_eq!(rcode, "5", "{how}: REFUSED outside server.allow");
    }
    // Round robin: both instances answer, and audit the subscriber.
    for _ in 0..6 {
        let (rcode, _) = ask(plain, "127.0.0.3", "+notcp", "www.bad.test.")
            .await
            .unwrap();
        assert_eq!(rcode, "0");
    }
    for (rempart, setup) in [(&rempart_a, &setup_a), (&rempart_b, &setup_b)] {
        rempart.service().auditor().expect("audit on").flush();
        let records = redirects(&setup.audit_dir());
        assert!(!records.is_empty(), "each instance got queries");
        assert!(
            records.iter().all(|r| r["client"] == "127.0.0.3"),
            "{records:#?}"
        );
    }
    // The health checks came with a PROXY header (none was refused as
    // header-less): they test the path the queries take.
    let metrics = rempart_a.service().metrics.render(0);
    assert!(
        metrics.contains("rempart_proxy_rejected_total{reason=\"missing\"} 0"),
        "{metrics}"
    );
    // One instance stops: the health checks take it out, the other
    // answers everything.
    rempart_b.stop().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    for _ in 0..4 {
        let (rcode, addresses) = ask(plain, "127.0.0.3", "+notcp", "bad.test.")
            .await
            .unwrap();
        assert_eq!(
            (rcode.as_str(), addresses),
            ("0", vec!["192.0.2.80".to_owned()])
        );
    }
    rempart_a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxys_connection_without_a_header_counts_against_the_tcp_bounds() {
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    let config = setup.config(
        upstream.addr,
        &Extra {
            server: "proxy_from = [\"127.0.0.1/32\"]\ntcp_max_connections = 4\ntcp_max_per_client = 1\n",
            ..Extra::default()
        },
    );
    let rempart = Rempart::start(&config).await;
    // The first header-less connection from the proxy is answered REFUSED
    // and stays open...
    let mut m = Message::new(99, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(
        Name::from_ascii("ok.test.").unwrap(),
        RecordType::A,
    ));
    let query = m.to_vec().unwrap();
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&query);
    let mut held = tokio::net::TcpStream::connect(rempart.addr).await.unwrap();
    held.write_all(&framed).await.unwrap();
    let len = held.read_u16().await.unwrap();
    let mut buf = vec![0u8; usize::from(len)];
    held.read_exact(&mut buf).await.unwrap();
    assert_eq!(
        Message::from_vec(&buf).unwrap().metadata.response_code,
        ResponseCode::Refused
    );
    // ...so a second one is over tcp_max_per_client: closed unanswered.
    let m = ask(rempart.addr, "127.0.0.1:0", true, "ok.test.", &[]).await;
    assert!(m.is_none(), "{m:?}");
    drop(held);
    rempart.stop().await;
}
