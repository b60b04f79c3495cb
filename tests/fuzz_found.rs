//! Faults the fuzz targets (tests/fuzz) found, each a test named after
//! what it found, with the input that found it.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use rempart::audit::chain::ChainHash;
use rempart::audit::verify::verify;
use rempart::audit::{AuditSettings, Auditor};
use rempart::config::ClientIpMode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Send `query` as is over UDP and TCP; the two answers' RCODEs (the TCP
/// door has no fast path: hickory reads every message there).
async fn rcodes(server: SocketAddr, query: &[u8]) -> (ResponseCode, ResponseCode) {
    let wait = Duration::from_secs(2);
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp.send_to(query, server).await.unwrap();
    let mut buf = vec![0u8; 65_535];
    let n = tokio::time::timeout(wait, udp.recv(&mut buf))
        .await
        .expect("a UDP answer")
        .unwrap();
    let over_udp = Message::from_vec(&buf[..n]).expect("a UDP answer hickory reads");

    let mut tcp = tokio::net::TcpStream::connect(server).await.unwrap();
    let mut framed = u16::try_from(query.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    tcp.write_all(&framed).await.unwrap();
    let len = tokio::time::timeout(wait, tcp.read_u16())
        .await
        .expect("a TCP answer")
        .unwrap();
    let mut buf = vec![0u8; usize::from(len)];
    tcp.read_exact(&mut buf).await.unwrap();
    let over_tcp = Message::from_vec(&buf).expect("a TCP answer hickory reads");
    (
        over_udp.metadata.response_code,
        over_tcp.metadata.response_code,
    )
}

/// Found by the `wire` target: the UDP fast path read the OPT record's
/// RDLENGTH but not the options in it, so a query for a listed name whose
/// option runs past the RDATA, or whose Client Subnet option hickory
/// refuses, got the redirect from the receive loop while the full path
/// (hickory, the TCP door) answers FORMERR. Both doors must agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edns_options_past_the_opt_rdata_get_the_full_paths_answer_over_udp() {
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    let rempart = Rempart::start(&setup.config(upstream.addr, &Extra::default())).await;
    // bad.test A, one OPT record (payload 1232, DO=0) whose RDATA is...
    let head: &[u8] = &[
        0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, // header
        0x03, b'b', b'a', b'd', 0x04, b't', b'e', b's', b't', 0x00, 0x00, 0x01, 0x00, 0x01, 0x00,
        0x00, 0x29, 0x04, 0xd0, 0x00, 0x00, 0x00, 0x00, // OPT up to RDLENGTH
    ];
    let cases: [(&str, &[u8], ResponseCode); 4] = [
        (
            "a cookie option of 8 octets in an RDATA of 4",
            &[0x00, 0x04, 0x00, 0x0a, 0x00, 0x08],
            ResponseCode::FormErr,
        ),
        (
            "a Client Subnet prefix of 33 bits for IPv4",
            &[
                0x00, 0x0c, 0x00, 0x08, 0x00, 0x08, 0x00, 0x01, 0x21, 0x00, 192, 0, 2, 1,
            ],
            ResponseCode::FormErr,
        ),
        (
            "a Client Subnet of family 3",
            &[
                0x00, 0x0b, 0x00, 0x08, 0x00, 0x07, 0x00, 0x03, 0x18, 0x00, 192, 0, 2,
            ],
            ResponseCode::FormErr,
        ),
        (
            "a well-formed cookie and Client Subnet (the control)",
            &[
                0x00, 0x17, 0x00, 0x0a, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x00, 0x08, 0x00, 0x07,
                0x00, 0x01, 0x18, 0x00, 192, 0, 2,
            ],
            ResponseCode::NoError,
        ),
    ];
    for (what, rdata, expected) in cases {
        let mut query = head.to_vec();
        query.extend_from_slice(rdata);
        let (udp, tcp) = rcodes(rempart.addr, &query).await;
        assert_eq!(tcp, expected, "{what}: over TCP");
        assert_eq!(udp, tcp, "{what}: UDP and TCP disagree");
    }
    rempart.stop().await;
}

/// A record line of the trail, as the writer writes it: a `process` start.
fn record(seq: u64, prev: &str) -> String {
    format!(
        r#"{{"v":2,"seq":{seq},"time":"2026-12-01T00:00:00.000Z","prev":"{prev}","kind":"process","event":"start","version":"0.1.0","pid":1,"host":"h"}}"#
    )
}

/// Found by the `audit` target: a record whose `seq` is u64::MAX followed
/// by another made `audit verify` overflow (a panic in a debug build, a
/// wrap to 0 that could pass as "follows" in release). It must name the
/// file and the line.
#[test]
fn a_record_after_seq_u64_max_is_a_named_break_in_audit_verify() {
    let dir = tempfile::tempdir().unwrap();
    let first = record(u64::MAX, ChainHash::GENESIS.as_str());
    let second = record(0, ChainHash::of(first.as_bytes()).as_str());
    let file = dir.path().join("rempart-audit-20261201-000.jsonl");
    std::fs::write(&file, format!("{first}\n{second}\n")).unwrap();
    let brk = verify(dir.path()).expect_err("a break");
    assert_eq!((brk.file.as_path(), brk.line), (file.as_path(), 2));
    assert!(brk.reason.contains("18446744073709551615"), "{brk}");
    assert!(!brk.unreadable);
}

/// Found by the `audit` target: a writer started on a trail whose last
/// record's `seq` is u64::MAX overflowed computing the next one. It must
/// refuse the trail with a message naming the file and the seq.
#[test]
fn a_writer_refuses_to_resume_a_trail_at_seq_u64_max() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rempart-audit-20261201-000.jsonl");
    let last = record(u64::MAX, ChainHash::GENESIS.as_str());
    std::fs::write(&file, format!("{last}\n")).unwrap();
    let started = Auditor::start(
        AuditSettings {
            dir: dir.path().to_owned(),
            client_ip: ClientIpMode::None,
            queue: 16,
            max_file_bytes: 1 << 20,
            retention_days: 0,
            seal: None,
        },
        rempart::metrics::Metrics::new(),
    );
    let error = started.expect_err("the trail is refused").to_string();
    assert!(
        error.contains(&file.display().to_string()) && error.contains("18446744073709551615"),
        "{error}"
    );
    // Nothing written to the trail it refused.
    assert_eq!(std::fs::read_to_string(&file).unwrap(), format!("{last}\n"));
    assert!(!Path::new(&dir.path().join("writer.running")).exists());
}
