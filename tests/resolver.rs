//! The contract on the wire (BEHAVIOUR sections 2, 3 and 7), against the real
//! server on 127.0.0.1:0 and a real upstream started by the test, over UDP
//! and TCP.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

const BOTH: [Transport; 2] = [Transport::Udp, Transport::Tcp];

async fn start() -> (TestUpstream, Setup, Rempart) {
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    let rempart = Rempart::start(&setup.config(upstream.addr, &Extra::default())).await;
    (upstream, setup, rempart)
}

fn soa_ttl_and_minimum(m: &hickory_proto::op::Message) -> Option<(String, u32, u32)> {
    m.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some((r.name.to_string(), r.ttl, soa.minimum)),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behaviour_section_7_examples_over_udp_and_tcp() {
    let (upstream, _setup, rempart) = start().await;
    let ask = Ask::default();
    for t in BOTH {
        let m = query(rempart.addr, t, "bad.test.", RecordType::A, ask).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{t:?}");
        assert_eq!(answers(&m), ["bad.test. 60 A 192.0.2.80"], "{t:?}");

        let m = query(rempart.addr, t, "bad.test.", RecordType::AAAA, ask).await;
        assert_eq!(answers(&m), ["bad.test. 60 AAAA 2001:db8::80"], "{t:?}");

        let m = query(rempart.addr, t, "www.bad.test.", RecordType::A, ask).await;
        assert_eq!(answers(&m), ["www.bad.test. 60 A 192.0.2.80"], "{t:?}");

        // NODATA for other types: empty answer, a SOA whose TTL and MINIMUM
        // are the redirect TTL (RFC 2308).
        let m = query(rempart.addr, t, "bad.test.", RecordType::MX, ask).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty(), "{t:?}: {:?}", answers(&m));
        assert_eq!(
            soa_ttl_and_minimum(&m),
            Some(("bad.test.".to_owned(), 60, 60)),
            "{t:?}"
        );
        for qtype in [
            RecordType::TXT,
            RecordType::HTTPS,
            RecordType::NS,
            RecordType::SOA,
        ] {
            let m = query(rempart.addr, t, "www.bad.test.", qtype, ask).await;
            assert!(m.answers.is_empty(), "{t:?} {qtype}");
            assert!(soa_ttl_and_minimum(&m).is_some(), "{t:?} {qtype}");
            assert_eq!(ede(&m).map(|e| e.0), Some(16), "{t:?} {qtype}");
        }

        // A listed name that does not exist upstream is still redirected.
        let m = query(rempart.addr, t, "nowhere.bad.test.", RecordType::A, ask).await;
        assert_eq!(answers(&m), ["nowhere.bad.test. 60 A 192.0.2.80"]);

        // Not listed: relayed from upstream, NXDOMAIN with its SOA.
        let m = query(rempart.addr, t, "nonexist.test.", RecordType::A, ask).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain, "{t:?}");
        assert_eq!(
            soa_ttl_and_minimum(&m).map(|s| s.0),
            Some("test.".to_owned())
        );
        assert_eq!(ede(&m), None);

        // NODATA from upstream keeps its SOA too.
        let m = query(rempart.addr, t, "ok.test.", RecordType::TXT, ask).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
        assert!(soa_ttl_and_minimum(&m).is_some(), "{t:?}");

        // Matching is by whole labels: notbad.test is not bad.test.
        let m = query(rempart.addr, t, "notbad.test.", RecordType::A, ask).await;
        assert_eq!(answers(&m), ["notbad.test. 300 A 198.51.100.9"]);
    }
    assert!(
        !upstream.was_asked_under("bad.test"),
        "a listed name reached the upstream: {:?}",
        upstream.seen()
    );
    rempart.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_answer_ttl_counts_down() {
    let (upstream, _setup, rempart) = start().await;
    let first = query(
        rempart.addr,
        Transport::Udp,
        "ok.test.",
        RecordType::A,
        Ask::default(),
    )
    .await;
    assert_eq!(answers(&first), ["ok.test. 300 A 198.51.100.1"]);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for t in BOTH {
        let again = query(rempart.addr, t, "ok.test.", RecordType::A, Ask::default()).await;
        assert_eq!(again.answers.len(), 1);
        assert!(matches!(again.answers[0].data, RData::A(a) if a.0.to_string() == "198.51.100.1"));
        assert!(
            again.answers[0].ttl <= 298,
            "{t:?}: TTL {} did not count down",
            again.answers[0].ttl
        );
    }
    let asked = upstream.seen().iter().filter(|q| *q == "ok.test.").count();
    assert_eq!(asked, 1, "the second and third answers come from the cache");
    rempart.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ede_16_only_with_edns_and_opt_only_if_asked() {
    let (_upstream, _setup, rempart) = start().await;
    for t in BOTH {
        let m = query(rempart.addr, t, "bad.test.", RecordType::A, Ask::default()).await;
        assert!(m.edns.is_some(), "{t:?}: OPT expected");
        assert_eq!(
            ede(&m),
            Some((16, "Blocked: see http://info.block.test/".to_owned())),
            "{t:?}"
        );
        let no_edns = Ask {
            edns: false,
            ..Ask::default()
        };
        let m = query(rempart.addr, t, "bad.test.", RecordType::A, no_edns).await;
        assert!(m.edns.is_none(), "{t:?}: no OPT without EDNS");
        assert_eq!(answers(&m), ["bad.test. 60 A 192.0.2.80"]);
        // A forwarded answer to an EDNS query carries OPT, without EDE.
        let m = query(rempart.addr, t, "ok.test.", RecordType::A, Ask::default()).await;
        assert!(m.edns.is_some());
        assert_eq!(ede(&m), None);
    }
    rempart.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_case_rd0_do_cd_and_any() {
    let (upstream, _setup, rempart) = start().await;
    for t in BOTH {
        // The question is echoed as sent, letter case included.
        let m = query(
            rempart.addr,
            t,
            "wWw.BaD.tEsT.",
            RecordType::A,
            Ask::default(),
        )
        .await;
        assert_eq!(m.queries[0].name().to_string(), "wWw.BaD.tEsT.");
        assert_eq!(m.answers.len(), 1);
        assert!(matches!(m.answers[0].data, RData::A(a) if a.0.to_string() == "192.0.2.80"));

        for ask in [
            Ask {
                rd: false,
                ..Ask::default()
            },
            Ask {
                do_bit: true,
                ..Ask::default()
            },
            Ask {
                cd: true,
                do_bit: true,
                ..Ask::default()
            },
        ] {
            let m = query(rempart.addr, t, "bad.test.", RecordType::A, ask).await;
            assert!(m.metadata.recursion_available, "{t:?} {ask:?}: RA=1");
            assert!(!m.metadata.authentic_data, "{t:?} {ask:?}: AD=0");
            assert_eq!(m.metadata.recursion_desired, ask.rd, "RD echoed");
            assert_eq!(answers(&m), ["bad.test. 60 A 192.0.2.80"], "{t:?} {ask:?}");
            assert!(
                m.all_sections()
                    .all(|r| r.record_type() != RecordType::RRSIG),
                "no RRSIG"
            );
        }

        // ANY: the A and AAAA redirect records (RFC 8482 allows a subset).
        let m = query(
            rempart.addr,
            t,
            "bad.test.",
            RecordType::ANY,
            Ask::default(),
        )
        .await;
        let mut got = answers(&m);
        got.sort();
        assert_eq!(
            got,
            [
                "bad.test. 60 A 192.0.2.80",
                "bad.test. 60 AAAA 2001:db8::80"
            ]
        );
    }
    assert!(!upstream.was_asked_under("bad.test"));
    rempart.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_entries_match_only_the_name() {
    let (upstream, _setup, rempart) = start().await;
    for t in BOTH {
        let m = query(rempart.addr, t, "host.test.", RecordType::A, Ask::default()).await;
        assert_eq!(answers(&m), ["host.test. 60 A 192.0.2.80"]);
        let m = query(
            rempart.addr,
            t,
            "sub.host.test.",
            RecordType::A,
            Ask::default(),
        )
        .await;
        assert_eq!(answers(&m), ["sub.host.test. 300 A 198.51.100.7"]);
    }
    assert!(!upstream.seen().contains(&"host.test.".to_owned()));
    assert!(upstream.seen().contains(&"sub.host.test.".to_owned()));
    rempart.stop().await;
}

/// BEHAVIOUR section 2, CNAME chains: chain.test -> alias.test -> www.bad.test
/// (listed). The chain is kept up to the listed name, which gets the
/// redirect; the upstream's address for it never reaches the client, fresh
/// or from the cache (Unbound 1.17 leaks it from its cache).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cname_chain_into_a_listed_name_fresh_and_cached() {
    let (upstream, _setup, rempart) = start().await;
    let expected = [
        "chain.test. 300 CNAME alias.test.",
        "alias.test. 300 CNAME www.bad.test.",
        "www.bad.test. 60 A 192.0.2.80",
    ];
    for (i, t) in [Transport::Udp, Transport::Tcp, Transport::Udp]
        .into_iter()
        .enumerate()
    {
        let m = query(
            rempart.addr,
            t,
            "chain.test.",
            RecordType::A,
            Ask::default(),
        )
        .await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        let got: Vec<String> = answers(&m)
            .into_iter()
            .map(|a| {
                // Cached TTLs count down; compare the CNAME records by shape.
                let mut parts: Vec<&str> = a.split(' ').collect();
                if parts[2] == "CNAME" {
                    parts[1] = "300";
                }
                parts.join(" ")
            })
            .collect();
        assert_eq!(got, expected, "query {i} over {t:?}");
        assert_eq!(ede(&m).map(|e| e.0), Some(16));
        assert!(
            !format!("{m:?}").contains("203.0.113.66"),
            "the listed name's real address leaked"
        );
        // Another name of the chain, also from the cache.
        let m = query(
            rempart.addr,
            t,
            "alias.test.",
            RecordType::A,
            Ask::default(),
        )
        .await;
        assert_eq!(answers(&m).last().unwrap(), "www.bad.test. 60 A 192.0.2.80");
    }
    assert_eq!(
        upstream
            .seen()
            .iter()
            .filter(|q| *q == "chain.test.")
            .count(),
        1,
        "the chain answer was served from the cache afterwards"
    );
    assert_eq!(
        upstream
            .seen()
            .iter()
            .filter(|q| *q == "chain.test.")
            .count(),
        1,
        "the chain answer was served from the cache afterwards"
    );
    // NODATA type through the chain: chain kept, SOA of the entry.
    let m = query(
        rempart.addr,
        Transport::Udp,
        "chain.test.",
        RecordType::MX,
        Ask::default(),
    )
    .await;
    assert!(
        m.answers
            .iter()
            .all(|r| r.record_type() == RecordType::CNAME)
    );
    assert_eq!(
        soa_ttl_and_minimum(&m).map(|s| s.0),
        Some("bad.test.".to_owned())
    );
    // A chain that stays clean is relayed untouched.
    let m = query(
        rempart.addr,
        Transport::Udp,
        "clean.test.",
        RecordType::A,
        Ask::default(),
    )
    .await;
    assert_eq!(
        answers(&m),
        [
            "clean.test. 300 CNAME ok.test.",
            "ok.test. 300 A 198.51.100.1"
        ]
    );
    assert_eq!(ede(&m), None);
    rempart.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cname_mode_answers_the_information_host() {
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    let extra = Extra {
        redirect: "cname = \"info.block.test\"",
        ..Extra::default()
    };
    let rempart = Rempart::start(&setup.config(upstream.addr, &extra)).await;
    for t in BOTH {
        let m = query(
            rempart.addr,
            t,
            "www.bad.test.",
            RecordType::A,
            Ask::default(),
        )
        .await;
        let got = answers(&m);
        assert_eq!(got.len(), 2, "{t:?}: {got:?}");
        assert_eq!(got[0], "www.bad.test. 60 CNAME info.block.test.");
        // The information host is resolved normally (cached TTL may count down).
        assert!(got[1].starts_with("info.block.test. "), "{got:?}");
        assert!(got[1].ends_with(" A 192.0.2.80"), "{got:?}");
        assert_eq!(ede(&m).map(|e| e.0), Some(16));
        let m = query(
            rempart.addr,
            t,
            "bad.test.",
            RecordType::AAAA,
            Ask::default(),
        )
        .await;
        assert_eq!(m.answers.len(), 2);
        assert!(matches!(&m.answers[1].data, RData::AAAA(a) if a.0.to_string() == "2001:db8::80"));
    }
    assert!(!upstream.was_asked_under("bad.test"));
    rempart.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_outside_allow_are_refused_with_ede_18() {
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    let extra = Extra {
        server: "allow = [\"10.0.0.0/8\", \"2001:db8::/32\"]",
        ..Extra::default()
    };
    let rempart = Rempart::start(&setup.config(upstream.addr, &extra)).await;
    // Over TCP their connection is closed at accept, unread (tests/hostile.rs).
    for t in [Transport::Udp] {
        for name in ["ok.test.", "bad.test."] {
            let m = query(rempart.addr, t, name, RecordType::A, Ask::default()).await;
            assert_eq!(
                m.metadata.response_code,
                ResponseCode::Refused,
                "{t:?} {name}"
            );
            assert!(m.answers.is_empty());
            assert_eq!(ede(&m).map(|e| e.0), Some(18), "{t:?} {name}");
            let no_edns = Ask {
                edns: false,
                ..Ask::default()
            };
            let m = query(rempart.addr, t, name, RecordType::A, no_edns).await;
            assert_eq!(m.metadata.response_code, ResponseCode::Refused);
            assert!(m.edns.is_none());
        }
    }
    assert!(
        upstream.seen().is_empty(),
        "refused queries are not forwarded"
    );
    rempart.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_upstream_gives_servfail_within_the_timeout() {
    // An upstream that never answers: a bound UDP socket nobody reads, and
    // a TCP listener that never accepts.
    let (silent_udp, _silent_tcp) = bind_pair().await;
    let setup = Setup::new(ENTRIES);
    let extra = Extra {
        timeout_ms: 400,
        ..Extra::default()
    };
    let rempart = Rempart::start(&setup.config(silent_udp.local_addr().unwrap(), &extra)).await;
    for t in BOTH {
        let started = Instant::now();
        let m = query(rempart.addr, t, "ok.test.", RecordType::A, Ask::default()).await;
        let took = started.elapsed();
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail, "{t:?}");
        // The bound is the timeout plus scheduling slack, never a hung client.
        assert!(took < Duration::from_millis(400 + 1500), "{t:?}: {took:?}");
        // Listed names do not need the upstream at all.
        let m = query(rempart.addr, t, "bad.test.", RecordType::A, Ask::default()).await;
        assert_eq!(answers(&m), ["bad.test. 60 A 192.0.2.80"]);
    }
    rempart.stop().await;
}

/// RFC 7766: an upstream answer too large for UDP is fetched over TCP; the
/// client gets TC=1 over UDP (within its EDNS size) and the whole answer
/// over TCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_answers_use_tcp_upstream_and_truncate_to_udp_clients() {
    let (_upstream, _setup, rempart) = start().await;
    let m = query(
        rempart.addr,
        Transport::Tcp,
        "big.test.",
        RecordType::TXT,
        Ask::default(),
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.answers.len(), 20, "the whole RRset over TCP");
    assert!(!m.metadata.truncation);
    let m = query(
        rempart.addr,
        Transport::Udp,
        "big.test.",
        RecordType::TXT,
        Ask::default(),
    )
    .await;
    assert!(m.metadata.truncation, "TC=1 over UDP");
    rempart.stop().await;
}

/// Every `server.listen` address is served, IPv6 included (skipped where the
/// machine has no ::1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_listen_address_is_served() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: no IPv6 loopback on this machine");
        return;
    }
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    let config = setup.config(upstream.addr, &Extra::default()).replace(
        "listen = [\"127.0.0.1:0\"]",
        "listen = [\"127.0.0.1:0\", \"[::1]:0\"]",
    );
    let rempart = Rempart::start(&config).await;
    let v6 = rempart.service().dns_addrs[1];
    assert!(v6.is_ipv6());
    for t in BOTH {
        let m = query_from(v6, "[::1]:0", t, "bad.test.", RecordType::A).await;
        assert_eq!(answers(&m), ["bad.test. 60 A 192.0.2.80"], "{t:?}");
    }
    rempart.stop().await;
}

/// The value of an unlabelled counter in the metrics of `rempart`.
fn counter(rempart: &Rempart, name: &str) -> u64 {
    let text = rempart.service().metrics.render(0);
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// The UDP fast path: a second query for a question is answered from the
/// bytes kept from the first, and says exactly what the full path says
/// (ID, flags, letter case, OPT and DO as asked, TTLs counted down, negative
/// answers with their SOA); a list change makes the kept bytes unusable at
/// once, CNAME chains included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_made_answers_say_what_the_full_path_says_and_follow_list_changes() {
    let (upstream, setup, rempart) = start().await;
    let udp = Transport::Udp;
    let ready = || counter(&rempart, "rempart_ready_answers_total");
    let no_edns = Ask {
        edns: false,
        ..Ask::default()
    };
    let dnssec_ok = Ask {
        do_bit: true,
        ..Ask::default()
    };
    let mut expected_ready = 0;
    for (i, ask) in [Ask::default(), no_edns, dnssec_ok].into_iter().enumerate() {
        let full = query(rempart.addr, udp, "ok.test.", RecordType::A, ask).await;
        assert_eq!(
            ready(),
            expected_ready,
            "{ask:?}: first answer by the full path"
        );
        tokio::time::sleep(Duration::from_millis(1100)).await;
        // Other letter case, RD=0, CD=1: echoed from the query.
        let again_ask = Ask {
            rd: false,
            cd: true,
            ..ask
        };
        let again = query(rempart.addr, udp, "oK.TeSt.", RecordType::A, again_ask).await;
        expected_ready += 1;
        assert_eq!(ready(), expected_ready, "{ask:?}: answered ready-made");
        assert_eq!(again.queries[0].name().to_string(), "oK.TeSt.");
        assert!(!again.metadata.recursion_desired && again.metadata.checking_disabled);
        assert!(again.metadata.recursion_available && !again.metadata.authentic_data);
        assert_eq!(again.metadata.response_code, full.metadata.response_code);
        assert_eq!(again.answers.len(), 1);
        assert_eq!(again.answers[0].data, full.answers[0].data);
        assert!(
            again.answers[0].ttl < full.answers[0].ttl,
            "{ask:?}: TTL {} then {}",
            full.answers[0].ttl,
            again.answers[0].ttl
        );
        assert_eq!(again.edns.is_some(), ask.edns, "{ask:?}: OPT only if asked");
        if let Some(edns) = &again.edns {
            assert_eq!(edns.flags().dnssec_ok, ask.do_bit, "{ask:?}: DO echoed");
        }
        assert_eq!(ede(&again), None);
        let asked = upstream.seen().iter().filter(|q| *q == "ok.test.").count();
        assert_eq!(asked, 1, "round {i}: upstream asked once in all");
    }

    // A negative answer keeps its SOA.
    let nx = query(rempart.addr, udp, "nx.test.", RecordType::A, Ask::default()).await;
    let again = query(rempart.addr, udp, "nx.test.", RecordType::A, Ask::default()).await;
    expected_ready += 1;
    assert_eq!(ready(), expected_ready);
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(again.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(
        soa_ttl_and_minimum(&again).map(|s| s.0),
        soa_ttl_and_minimum(&nx).map(|s| s.0)
    );

    // clean.test is a CNAME to ok.test: kept ready-made...
    for _ in 0..2 {
        let m = query(
            rempart.addr,
            udp,
            "clean.test.",
            RecordType::A,
            Ask::default(),
        )
        .await;
        assert_eq!(answers(&m).len(), 2);
        assert_eq!(ede(&m), None);
    }
    expected_ready += 1;
    assert_eq!(ready(), expected_ready);
    // ...until a list names ok.test: the chain now ends in the redirect.
    setup.key.write_signed(
        &setup.list_path,
        &list_text(
            2,
            &[ENTRIES[0], ("ok.test", "exact", "terrorism", "REF-0009")],
        ),
    );
    let outcome = rempart.service().admission.reread().await;
    assert!(format!("{outcome:?}").contains("Applied"), "{outcome:?}");
    for name in ["clean.test.", "ok.test.", "OK.test."] {
        let m = query(rempart.addr, udp, name, RecordType::A, Ask::default()).await;
        assert!(
            answers(&m).iter().any(|a| a.ends_with("A 192.0.2.80")),
            "{name}: {:?}",
            answers(&m)
        );
        assert_eq!(ede(&m).map(|e| e.0), Some(16), "{name}");
    }
    assert_eq!(
        ready(),
        expected_ready,
        "nothing kept was used after the change"
    );
    rempart.stop().await;
}

/// A datagram that cannot be parsed: FORMERR when its header says "query"
/// (RFC 1035 section 4.1.1), silence for a runt or a response; the server
/// answers the next query as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_datagrams_get_formerr_or_nothing() {
    let (_upstream, _setup, rempart) = start().await;
    let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    // One question announced, a name cut short.
    let damaged = [
        0xBE, 0xEF, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 5, b'a', b'b',
    ];
    s.send_to(&damaged, rempart.addr).await.unwrap();
    let answer = recv(&s).await.expect("FORMERR expected");
    assert_eq!(&answer[..2], &[0xBE, 0xEF], "ID echoed");
    assert_eq!(answer[2] & 0x80, 0x80, "QR=1");
    assert_eq!(answer[2] & 0x01, 0x01, "RD echoed");
    assert_eq!(answer[3] & 0x0f, 1, "RCODE=FORMERR");
    // A query longer than any DNS query (5000 bytes: it is cut on receive)
    // gets FORMERR too, with its ID.
    let mut long = damaged.to_vec();
    long[..2].copy_from_slice(&[0xCA, 0xFE]);
    long.resize(5000, 0);
    s.send_to(&long, rempart.addr).await.unwrap();
    let answer = recv(&s)
        .await
        .expect("FORMERR expected for a long datagram");
    assert_eq!(&answer[..2], &[0xCA, 0xFE], "ID echoed");
    assert_eq!(answer[3] & 0x0f, 1, "RCODE=FORMERR");
    // A runt (no header) and a damaged response get no answer.
    s.send_to(&[1, 2, 3, 4, 5], rempart.addr).await.unwrap();
    assert_eq!(recv(&s).await, None);
    let mut response = damaged;
    response[2] |= 0x80;
    s.send_to(&response, rempart.addr).await.unwrap();
    assert_eq!(recv(&s).await, None);
    let m = query(
        rempart.addr,
        Transport::Udp,
        "ok.test.",
        RecordType::A,
        Ask::default(),
    )
    .await;
    assert_eq!(answers(&m), ["ok.test. 300 A 198.51.100.1"]);
    rempart.stop().await;
}

async fn recv(s: &tokio::net::UdpSocket) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 512];
    match tokio::time::timeout(Duration::from_millis(500), s.recv(&mut buf)).await {
        Ok(Ok(n)) => Some(buf[..n].to_vec()),
        _ => None,
    }
}

/// Redirects over UDP are written straight to the wire by the receive loop;
/// over TCP they are built by the full path. For every kind of question the
/// two say the same thing: flags, answer, authority (the SOA of NODATA),
/// OPT with DO and EDE 16.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_written_by_the_receive_loop_equal_the_full_path() {
    let (upstream, _setup, rempart) = start().await;
    let asks = [
        Ask::default(),
        Ask {
            edns: false,
            ..Ask::default()
        },
        Ask {
            do_bit: true,
            cd: true,
            rd: false,
            ..Ask::default()
        },
    ];
    let qtypes = [
        RecordType::A,
        RecordType::AAAA,
        RecordType::MX,
        RecordType::TXT,
        RecordType::ANY,
        RecordType::HTTPS,
    ];
    let before = rempart.service().metrics.render(0);
    let redirected = |text: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(r#"rempart_queries_total{transport="udp",outcome="redirected"} "#)?
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0)
    };
    let mut sent = 0;
    for name in ["bad.test.", "wWw.Bad.TEST.", "host.test."] {
        for qtype in qtypes {
            for ask in asks {
                let udp = query(rempart.addr, Transport::Udp, name, qtype, ask).await;
                let tcp = query(rempart.addr, Transport::Tcp, name, qtype, ask).await;
                sent += 1;
                let what = format!("{name} {qtype} {ask:?}");
                assert_eq!(
                    udp.metadata.response_code, tcp.metadata.response_code,
                    "{what}"
                );
                assert_eq!(
                    udp.metadata.flags().to_string(),
                    tcp.metadata.flags().to_string(),
                    "{what}"
                );
                assert_eq!(udp.queries, tcp.queries, "{what}");
                assert_eq!(answers(&udp), answers(&tcp), "{what}");
                assert_eq!(udp.authorities, tcp.authorities, "{what}");
                assert_eq!(udp.edns, tcp.edns, "{what}: OPT, DO and EDE");
                assert_eq!(udp.queries[0].name().to_string(), name, "{what}: case kept");
                if qtype == RecordType::MX {
                    assert!(
                        udp.answers.is_empty() && udp.authorities.len() == 1,
                        "{what}"
                    );
                }
            }
        }
    }
    let after = rempart.service().metrics.render(0);
    assert_eq!(
        redirected(&after) - redirected(&before),
        sent,
        "UDP redirects counted"
    );
    assert!(!upstream.was_asked_under("bad.test"));
    rempart.stop().await;
}

/// Queries that arrive together are taken from the socket in batches and
/// their answers sent in batches: every sender gets the answer to its own
/// question, with its own ID and letter case, whatever the mix in the batch
/// (redirects and ready-made answers written in the loop, forwarded names
/// answered by the full path).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_from_many_senders_gets_each_its_own_answer() {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::Name;
    let (_upstream, _setup, rempart) = start().await;
    // ok.test's answer is then kept ready-made.
    query(
        rempart.addr,
        Transport::Udp,
        "ok.test.",
        RecordType::A,
        Ask::default(),
    )
    .await;
    let expected = |i: u16| -> (String, Vec<String>, ResponseCode) {
        match i % 4 {
            0 => {
                let n = format!("n{i}.Bad.test.");
                (
                    n.clone(),
                    vec![format!("{n} A 192.0.2.80")],
                    ResponseCode::NoError,
                )
            }
            // The question echoes the case asked; the records keep the
            // cached answer's.
            1 => (
                "Ok.Test.".into(),
                vec!["ok.test. A 198.51.100.1".into()],
                ResponseCode::NoError,
            ),
            2 => (format!("nx{i}.test."), vec![], ResponseCode::NXDomain),
            _ => (
                "ok.test.".into(),
                vec!["ok.test. A 198.51.100.1".into()],
                ResponseCode::NoError,
            ),
        }
    };
    const SENDERS: u16 = 128;
    let mut sockets = Vec::new();
    for i in 0..SENDERS {
        let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut m = Message::new(1000 + i * 7, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(
            Name::from_ascii(expected(i).0).unwrap(),
            RecordType::A,
        ));
        m.metadata.recursion_desired = true;
        sockets.push((s, m.to_vec().unwrap()));
    }
    // All sent before any answer is read.
    for (s, bytes) in &sockets {
        s.send_to(bytes, rempart.addr).await.unwrap();
    }
    for (i, (s, _)) in sockets.iter().enumerate() {
        let i = i as u16;
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), s.recv(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("sender {i}: no answer within 5 s"))
            .unwrap();
        let m = Message::from_vec(&buf[..n]).unwrap();
        let (name, records, rcode) = expected(i);
        assert_eq!(m.metadata.id, 1000 + i * 7, "sender {i}: ID");
        assert_eq!(
            m.queries[0].name().to_string(),
            name,
            "sender {i}: question"
        );
        assert_eq!(m.metadata.response_code, rcode, "sender {i}");
        // TTLs of cached answers count down: the records without them.
        let got: Vec<String> = answers(&m)
            .iter()
            .map(|a| {
                let w: Vec<&str> = a.split(' ').collect();
                [w[0], w[2], w[3]].join(" ")
            })
            .collect();
        assert_eq!(got, records, "sender {i}: answer");
    }
    rempart.stop().await;
}
