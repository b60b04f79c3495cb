//! Every answer well-formed, as a strict parser reads it: truncation to the
//! client's size in whole RRsets (RFC 2181 section 9), BADVERS (RFC 6891
//! section 6.1.3), and the error codes for other opcodes, question counts
//! and classes, as Unbound answers them, over UDP and TCP.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BOTH: [Transport; 2] = [Transport::Udp, Transport::Tcp];

/// The test zone with a CNAME to the large TXT RRset: an answer of two
/// RRsets of which only the first fits in 512 octets.
fn zone() -> String {
    format!("{ZONE}\nto-big IN CNAME big.test.\n")
}

/// Send `query` as is and return the answer's bytes, or `None` if none
/// comes within half a second.
async fn exchange(server: SocketAddr, transport: Transport, query: &[u8]) -> Option<Vec<u8>> {
    let wait = Duration::from_millis(500);
    match transport {
        Transport::Udp => {
            let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            s.send_to(query, server).await.unwrap();
            let mut buf = vec![0u8; 65_535];
            let n = tokio::time::timeout(wait, s.recv(&mut buf))
                .await
                .ok()?
                .ok()?;
            buf.truncate(n);
            Some(buf)
        }
        Transport::Tcp => {
            let mut s = tokio::net::TcpStream::connect(server).await.unwrap();
            let mut framed = (query.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(query);
            s.write_all(&framed).await.unwrap();
            let len = tokio::time::timeout(wait, s.read_u16()).await.ok()?.ok()?;
            let mut buf = vec![0u8; usize::from(len)];
            s.read_exact(&mut buf).await.ok()?;
            Some(buf)
        }
    }
}

/// Parse `bytes` strictly: every counted record whole, nothing after the
/// last one (what dnspython calls trailing junk).
fn strict(bytes: &[u8]) -> Message {
    let mut decoder = BinDecoder::new(bytes);
    let m = Message::read(&mut decoder).expect("a parsable message");
    assert_eq!(decoder.len(), 0, "octets after the last record counted");
    m
}

/// A query for `name`, type `qtype`, class `qclass`, opcode `opcode`, with
/// `questions` copies of the question and an OPT record of `edns`
/// (version, payload) if given.
fn raw_query(
    name: &str,
    qtype: u16,
    qclass: u16,
    opcode: u8,
    questions: u16,
    edns: Option<(u8, u16)>,
) -> Vec<u8> {
    let mut m = vec![0xBE, 0xEF, (opcode << 3) | 0x01, 0];
    m.extend_from_slice(&questions.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0, 0, u8::from(edns.is_some())]);
    for _ in 0..questions {
        for label in name.split('.').filter(|l| !l.is_empty()) {
            m.push(label.len() as u8);
            m.extend_from_slice(label.as_bytes());
        }
        m.push(0);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&qclass.to_be_bytes());
    }
    if let Some((version, payload)) = edns {
        m.extend_from_slice(&[0, 0, 41]);
        m.extend_from_slice(&payload.to_be_bytes());
        m.extend_from_slice(&[0, version, 0, 0, 0, 0]);
    }
    m
}

async fn start() -> (TestUpstream, Setup, Rempart) {
    let upstream = TestUpstream::start(&zone()).await;
    let setup = Setup::new(ENTRIES);
    let rempart = Rempart::start(&setup.config(upstream.addr, &Extra::default())).await;
    (upstream, setup, rempart)
}

const TXT: u16 = 16;
const CNAME: u16 = 5;

/// A UDP answer too large for the client keeps whole RRsets, counted
/// exactly, within the client's size (512 without EDNS; the advertised
/// size with EDNS, at least 512 and at most 1232), with TC set and OPT
/// kept; over TCP the whole answer comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_answers_keep_whole_rrsets_within_the_clients_size() {
    let (_upstream, _setup, rempart) = start().await;
    for (edns, limit) in [
        (None, 512),
        (Some((0, 100)), 512),
        (Some((0, 600)), 600),
        (Some((0, 1232)), 1232),
        (Some((0, 4096)), 1232),
    ] {
        for name in ["big.test", "to-big.test"] {
            // Twice: the second answer may come from the receive loop.
            for round in 0..2 {
                let q = raw_query(name, TXT, 1, 0, 1, edns);
                let bytes = exchange(rempart.addr, Transport::Udp, &q)
                    .await
                    .expect("an answer");
                let what = format!("{name} {edns:?} round {round}");
                assert!(bytes.len() <= limit, "{what}: {} octets", bytes.len());
                let m = strict(&bytes);
                assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{what}");
                assert!(m.metadata.truncation, "{what}: TC");
                assert_eq!(m.edns.is_some(), edns.is_some(), "{what}: OPT as asked");
                let types: Vec<_> = m.answers.iter().map(|r| r.record_type()).collect();
                let expected: &[RecordType] = if name == "to-big.test" {
                    &[RecordType::CNAME]
                } else {
                    &[]
                };
                assert_eq!(types, expected, "{what}: whole RRsets only");
            }
        }
    }
    for name in ["big.test", "to-big.test"] {
        let q = raw_query(name, TXT, 1, 0, 1, None);
        let m = strict(&exchange(rempart.addr, Transport::Tcp, &q).await.unwrap());
        assert!(!m.metadata.truncation, "{name} over TCP");
        let txt = m
            .answers
            .iter()
            .filter(|r| r.record_type() == RecordType::TXT);
        assert_eq!(txt.count(), 20, "{name}: the whole RRset over TCP");
    }
    // Answers that fit are not touched.
    let q = raw_query("to-big.test", CNAME, 1, 0, 1, None);
    let m = strict(&exchange(rempart.addr, Transport::Udp, &q).await.unwrap());
    assert!(!m.metadata.truncation);
    assert_eq!(answers(&m), ["to-big.test. 300 CNAME big.test."]);
    rempart.stop().await;
}

/// RFC 6891 section 6.1.3: an EDNS version above 0 gets BADVERS (extended
/// RCODE 16) in an OPT record of version 0, and no data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edns_versions_above_0_get_badvers() {
    let (upstream, _setup, rempart) = start().await;
    for t in BOTH {
        for (name, version) in [("ok.test", 1), ("bad.test", 1), ("ok.test", 255)] {
            let q = raw_query(name, 1, 1, 0, 1, Some((version, 1232)));
            let m = strict(&exchange(rempart.addr, t, &q).await.expect("an answer"));
            let what = format!("{t:?} {name} version {version}");
            // 16 is BADVERS in a response's OPT (hickory reads it as BADSIG,
            // the same number in TSIG).
            assert_eq!(u16::from(m.metadata.response_code), 16, "{what}");
            let edns = m.edns.as_ref().expect("OPT");
            assert_eq!(edns.version(), 0, "{what}");
            assert_eq!(edns.rcode_high(), 1, "{what}");
            assert!(m.answers.is_empty(), "{what}");
            assert_eq!(m.queries.len(), 1, "{what}: the question echoed");
        }
    }
    assert!(!upstream.was_asked_under("ok.test"));
    rempart.stop().await;
}

/// What Unbound 1.17 answers, over UDP and TCP: NOTIMP to opcodes other
/// than QUERY, FORMERR to zero or two questions, REFUSED to classes other
/// than IN, CH and ANY; none of them is forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opcodes_counts_and_classes_get_the_codes_unbound_gives() {
    let (upstream, _setup, rempart) = start().await;
    use ResponseCode::{FormErr, NotImp, Refused};
    // (what, class, opcode, questions, EDNS, expected)
    let cases = [
        ("opcode STATUS", 1, 2, 1, None, NotImp),
        ("opcode NOTIFY", 1, 4, 1, None, NotImp),
        ("opcode UPDATE", 1, 5, 1, None, NotImp),
        ("no question", 1, 0, 0, None, FormErr),
        ("two questions", 1, 0, 2, Some((0, 1232)), FormErr),
        ("class HS", 4, 0, 1, None, Refused),
        ("class NONE", 254, 0, 1, Some((0, 1232)), Refused),
        ("class 42", 42, 0, 1, None, Refused),
        ("class 0", 0, 0, 1, None, Refused),
    ]
    .map(|(what, class, opcode, questions, edns, rcode)| {
        (
            what,
            raw_query("ok.test", 1, class, opcode, questions, edns),
            rcode,
        )
    });
    for t in BOTH {
        for (what, q, rcode) in &cases {
            let m = strict(&exchange(rempart.addr, t, q).await.expect("an answer"));
            assert_eq!(m.metadata.response_code, *rcode, "{t:?} {what}");
            assert!(m.answers.is_empty(), "{t:?} {what}");
            assert_eq!(m.metadata.id, 0xBEEF, "{t:?} {what}");
            assert_eq!(m.edns.is_some(), q[11] == 1, "{t:?} {what}: OPT as asked");
        }
        // IN, CH and ANY keep being answered.
        for class in [1, 3, 255] {
            let q = raw_query("ok.test", 1, class, 0, 1, None);
            let m = strict(
                &exchange(rempart.addr, t, &q)
                    .await
                    .unwrap_or_else(|| panic!("{t:?} class {class}: no answer")),
            );
            assert_ne!(
                m.metadata.response_code,
                ResponseCode::Refused,
                "{t:?} class {class}"
            );
            assert_ne!(
                m.metadata.response_code,
                ResponseCode::FormErr,
                "{t:?} class {class}"
            );
        }
    }
    assert!(
        upstream.seen().iter().all(|q| q == "ok.test."),
        "{:?}",
        upstream.seen()
    );
    rempart.stop().await;
}
