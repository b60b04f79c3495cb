//! Hostile clients (issue 15, bounded exposure): TCP connections capped in
//! total and per client address, `server.allow` checked at accept, no
//! answer to damaged datagrams from outside it, and SERVFAIL answers that
//! say why (RFC 8914).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

/// The value of the metric line starting with `prefix` (name and labels).
fn metric(rempart: &Rempart, prefix: &str) -> f64 {
    let text = rempart.service().metrics.render(0);
    text.lines()
        .find_map(|l| l.strip_prefix(prefix)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Wait (at most 10 s) until `check` holds.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < Duration::from_secs(10), "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn tcp_from(local: &str, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(local.parse().unwrap()).unwrap();
    socket.connect(server).await.unwrap()
}

/// A query for ok.test A, with EDNS, framed for TCP.
fn framed_query() -> Vec<u8> {
    let q = [
        0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 2, b'o', b'k', 4, b't', b'e', b's', b't',
        0, 0, 1, 0, 1,
    ];
    let mut framed = (q.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&q);
    framed
}

/// Whether the server closed `stream` (EOF or reset) within `wait`,
/// without sending a byte.
async fn closed_unanswered(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 1];
    match tokio::time::timeout(wait, stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) | Err(_) => false,
    }
}

/// 3,000 idle connections from one address hold at most
/// `server.tcp_max_per_client` slots (the others are closed at once,
/// unread, and counted); a new client is still answered over UDP and TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_thousand_idle_tcp_connections_leave_a_new_client_served() {
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    let extra = Extra {
        server: "tcp_max_per_client = 16\ntcp_max_connections = 100\ntcp_idle_timeout_ms = 60000",
        ..Extra::default()
    };
    let rempart = Rempart::start(&setup.config(upstream.addr, &extra)).await;
    let mut idle = Vec::with_capacity(3000);
    for _ in 0..3000 {
        match TcpStream::connect(rempart.addr).await {
            Ok(s) => idle.push(s),
            // The accept queue is full for a moment: the server drains it.
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    assert!(idle.len() > 2900, "{} connected", idle.len());
    let refused = r#"rempart_tcp_refused_total{reason="per_client"}"#;
    let expected = (idle.len() - 16) as f64;
    until("every connection over the bound refused", || {
        metric(&rempart, refused) >= expected
    })
    .await;
    assert_eq!(metric(&rempart, "rempart_tcp_connections"), 16.0);
    // The client side sees them closed, unanswered.
    let mut closed = 0;
    for s in idle.iter_mut() {
        if closed_unanswered(s, Duration::from_millis(1)).await {
            closed += 1;
        }
    }
    assert!(closed >= idle.len() - 16, "{closed} closed");
    // A new client, from another address, is answered on both transports.
    let m = query_from(
        rempart.addr,
        "127.0.0.2:0",
        Transport::Udp,
        "ok.test.",
        RecordType::A,
    )
    .await;
    assert_eq!(answers(&m), ["ok.test. 300 A 198.51.100.1"]);
    // (The harness's TCP client binds no local address: ask by hand.)
    let mut s = tcp_from("127.0.0.2:0", rempart.addr).await;
    s.write_all(&framed_query()).await.unwrap();
    let len = s.read_u16().await.unwrap();
    let mut buf = vec![0u8; usize::from(len)];
    s.read_exact(&mut buf).await.unwrap();
    let m = Message::from_vec(&buf).unwrap();
    assert_eq!(answers(&m), ["ok.test. 300 A 198.51.100.1"]);

    // The total bound: 100 connections from 100 addresses at most.
    drop(s);
    drop(idle);
    until("the idle connections closed", || {
        metric(&rempart, "rempart_tcp_connections") == 0.0
    })
    .await;
    let mut held = Vec::new();
    for i in 0..150 {
        let mut s = tcp_from(&format!("127.0.1.{}:0", i + 1), rempart.addr).await;
        if !closed_unanswered(&mut s, Duration::from_millis(20)).await {
            held.push(s);
        }
    }
    assert_eq!(held.len(), 100);
    assert_eq!(
        metric(&rempart, r#"rempart_tcp_refused_total{reason="total"}"#),
        50.0
    );
    // UDP does not depend on TCP slots.
    let m = query_from(
        rempart.addr,
        "127.0.0.2:0",
        Transport::Udp,
        "bad.test.",
        RecordType::A,
    )
    .await;
    assert_eq!(answers(&m), ["bad.test. 60 A 192.0.2.80"]);
    drop(held);
    rempart.stop().await;
}

/// Rempart serving 127.0.0.1 only: 127.0.0.2 is outside `server.allow`.
async fn start_allowing_127_0_0_1() -> (TestUpstream, Setup, Rempart) {
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    let extra = Extra {
        server: "allow = [\"127.0.0.1/32\"]",
        ..Extra::default()
    };
    let rempart = Rempart::start(&setup.config(upstream.addr, &extra)).await;
    (upstream, setup, rempart)
}

/// A client outside `server.allow` has its TCP connection closed at
/// accept: its query is never read nor answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disallowed_clients_tcp_connection_is_closed_unanswered() {
    let (upstream, _setup, rempart) = start_allowing_127_0_0_1().await;
    let mut outsider = tcp_from("127.0.0.2:0", rempart.addr).await;
    // The write may fail if the close came first: either way, no answer.
    let _ = outsider.write_all(&framed_query()).await;
    assert!(closed_unanswered(&mut outsider, Duration::from_secs(2)).await);
    assert_eq!(
        metric(
            &rempart,
            r#"rempart_tcp_refused_total{reason="not_allowed"}"#
        ),
        1.0
    );
    let m = query(
        rempart.addr,
        Transport::Tcp,
        "ok.test.",
        RecordType::A,
        Ask::default(),
    )
    .await;
    assert_eq!(answers(&m), ["ok.test. 300 A 198.51.100.1"]);
    assert_eq!(upstream.seen(), ["ok.test."]);
    rempart.stop().await;
}

/// No answer at all to a damaged datagram from outside `server.allow` (a
/// spoofed source could start a packet loop); a plain query from there
/// still gets REFUSED with EDE 18, and an allowed client's damaged
/// datagram FORMERR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_datagrams_from_outside_allow_get_no_answer() {
    let (upstream, _setup, rempart) = start_allowing_127_0_0_1().await;
    // One question announced, a name cut short.
    let damaged = [
        0xBE, 0xEF, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 5, b'a', b'b',
    ];
    let mut long = damaged.to_vec();
    long.resize(5000, 0);
    for local in ["127.0.0.2:0", "127.0.0.1:0"] {
        let s = UdpSocket::bind(local).await.unwrap();
        for datagram in [&damaged[..], &long[..]] {
            s.send_to(datagram, rempart.addr).await.unwrap();
            let mut buf = [0u8; 512];
            let answer = tokio::time::timeout(Duration::from_millis(500), s.recv(&mut buf)).await;
            if local.starts_with("127.0.0.2") {
                assert!(answer.is_err(), "an answer to an outsider");
            } else {
                let n = answer.expect("FORMERR expected").unwrap();
                assert_eq!(buf[3] & 0x0F, 1, "FORMERR");
                assert_eq!(n, 12);
            }
        }
    }
    assert_eq!(
        metric(
            &rempart,
            r#"rempart_udp_dropped_total{reason="not_allowed"}"#
        ),
        2.0
    );
    for edns in [true, false] {
        let ask = Ask {
            edns,
            ..Ask::default()
        };
        let m = query_inner_from(rempart.addr, "127.0.0.2:0", ask).await;
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
        assert_eq!(ede(&m).map(|e| e.0), edns.then_some(18), "EDNS {edns}");
        assert_eq!(m.edns.is_some(), edns);
        assert_eq!(
            m.queries[0].name().to_string(),
            "Ok.Test.",
            "question as sent"
        );
    }
    assert!(upstream.seen().is_empty());
    rempart.stop().await;
}

/// A plain query for Ok.Test A over UDP from `local`.
async fn query_inner_from(server: SocketAddr, local: &str, ask: Ask) -> Message {
    let mut q = vec![
        0x43, 0x21, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 2, b'O', b'k', 4, b'T', b'e', b's', b't',
        0, 0, 1, 0, 1,
    ];
    if ask.edns {
        q[11] = 1;
        q.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]);
    }
    let s = UdpSocket::bind(local).await.unwrap();
    s.send_to(&q, server).await.unwrap();
    let mut buf = vec![0u8; 2048];
    let n = tokio::time::timeout(Duration::from_secs(2), s.recv(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    let m = Message::from_vec(&buf[..n]).unwrap();
    assert_eq!(m.metadata.id, 0x4321);
    m
}

/// RFC 8914: a SERVFAIL because no upstream answered in time carries EDE
/// 22 (No Reachable Authority) for EDNS clients, over UDP and TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_timeout_servfail_carries_ede_22() {
    // An upstream that never answers.
    let (silent_udp, _silent_tcp) = bind_pair().await;
    let setup = Setup::new(ENTRIES);
    let extra = Extra {
        timeout_ms: 300,
        ..Extra::default()
    };
    let rempart = Rempart::start(&setup.config(silent_udp.local_addr().unwrap(), &extra)).await;
    for t in [Transport::Udp, Transport::Tcp] {
        let m = query(rempart.addr, t, "ok.test.", RecordType::A, Ask::default()).await;
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail, "{t:?}");
        assert_eq!(ede(&m).map(|e| e.0), Some(22), "{t:?}");
        let no_edns = Ask {
            edns: false,
            ..Ask::default()
        };
        let m = query(rempart.addr, t, "nx.test.", RecordType::A, no_edns).await;
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail, "{t:?}");
        assert!(m.edns.is_none(), "{t:?}: no OPT without EDNS");
    }
    rempart.stop().await;
}
