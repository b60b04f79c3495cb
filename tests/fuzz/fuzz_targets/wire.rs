//! The UDP receive loop's fast path against the full path.
//!
//! The input is a datagram as a client sends it. What must hold:
//!
//! - reading it as a plain query (`QueryView::parse`) never panics;
//! - when the fast path takes it, the full path (hickory-server's
//!   `Request::from_bytes`, what the loop hands anything else to) reads it
//!   too, with the same question and the same EDNS settings: the fast path
//!   never answers a query the full path would answer FORMERR;
//! - the redirect the loop writes for a listed name (the demo list and
//!   the demo config's redirect) and the ready answer it copies from the
//!   wire cache are messages hickory reads whole, answering the question
//!   asked, with the query's ID.
#![no_main]

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::LazyLock;
use std::time::Instant;

use hickory_proto::op::{Message, MessageType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use libfuzzer_sys::fuzz_target;
use rempart::config::Config;
use rempart::dns::RedirectTemplate;
use rempart::dns::query::QueryView;
use rempart::dns::wire::{Stamp, WireCache};
use rempart::list::List;
use rempart::policy::Policy;
use rempart::upstream::Stored;

/// The demo list, compiled, and the demo config's redirect.
static DEMO: LazyLock<(Policy, RedirectTemplate)> = LazyLock::new(|| {
    let list = List::parse(
        include_bytes!("../../../config/demo/list.txt"),
        Path::new("config/demo/list.txt"),
    )
    .expect("the demo list parses");
    let config = Config::from_toml(
        include_str!("../../../config/demo.toml"),
        Path::new("config/demo.toml"),
    )
    .expect("the demo config is valid");
    (
        Policy::compile(&list, [0; 32]),
        RedirectTemplate::new(&config.redirect),
    )
});

/// `bytes` read strictly by hickory: every counted record whole and
/// nothing after the last one.
fn strict(bytes: &[u8], what: &str) -> Message {
    let mut decoder = BinDecoder::new(bytes);
    let message = Message::read(&mut decoder)
        .unwrap_or_else(|e| panic!("{what} does not parse: {e}\n{bytes:02x?}"));
    assert_eq!(decoder.len(), 0, "{what}: octets after the last record");
    message
}

/// Check an answer the loop would send to `query` (read as `view`).
fn check_answer(query: &[u8], view: &QueryView, answer: &[u8], what: &str) {
    let message = strict(answer, what);
    assert_eq!(
        message.metadata.message_type,
        MessageType::Response,
        "{what}"
    );
    assert_eq!(
        message.metadata.id,
        u16::from_be_bytes([query[0], query[1]]),
        "{what}: ID"
    );
    assert_eq!(message.queries.len(), 1, "{what}: one question");
    assert_eq!(
        &answer[12..12 + view.name_len + 4],
        view.question(query),
        "{what}: the question as asked"
    );
    assert_eq!(
        message.edns.is_some(),
        view.edns.is_some(),
        "{what}: OPT in the answer iff in the query"
    );
    assert!(
        answer.len() <= view.max_udp(),
        "{what}: larger than the client takes"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some(view) = QueryView::parse(data) else {
        return;
    };
    // The fast path took it: the full path must read it too.
    let src = SocketAddr::from((Ipv4Addr::LOCALHOST, 5353));
    let request = Request::from_bytes(data.to_vec(), src, Protocol::Udp).unwrap_or_else(|e| {
        panic!("the fast path reads a query the full path refuses ({e}): {data:02x?}")
    });
    let query = request
        .queries
        .queries()
        .first()
        .expect("the full path sees the question");
    assert_eq!(u16::from(query.query_type()), view.qtype, "QTYPE");
    assert_eq!(u16::from(query.query_class()), view.qclass, "QCLASS");
    let name = query.name();
    let wire = name.to_bytes().expect("a name hickory read encodes");
    assert_eq!(
        wire,
        view.name(data).to_ascii_lowercase(),
        "the question name: {name} vs {view:?}"
    );
    match (&request.edns, view.edns) {
        (None, None) => {}
        (Some(edns), Some((payload, dnssec_ok))) => {
            assert_eq!(
                rempart::dns::edns::response_payload(edns.max_payload()),
                payload,
                "payload"
            );
            assert_eq!(edns.flags().dnssec_ok, dnssec_ok, "DO");
            assert_eq!(edns.version(), 0, "EDNS version");
        }
        (full, fast) => panic!("EDNS: full path {full:?}, fast path {fast:?}"),
    }

    // The redirect written straight to the wire, for a listed name.
    let (policy, redirect) = &*DEMO;
    let mut out = Vec::new();
    if let Some(rule) = policy.verdict_wire(view.name(data))
        && redirect
            .write_wire(data, &view, &rule, 2026112201, &mut out)
            .is_some()
    {
        check_answer(data, &view, &out, "the redirect");
        // The same bytes kept as a ready answer, then copied for this
        // query: the copy must still be a whole message.
        let cache = WireCache::new(1 << 20);
        let stamp = Stamp {
            stored: Stored {
                at: Instant::now(),
                ttl: 60,
                age: 0,
                authentic: false,
            },
            generation: policy.generation(),
        };
        cache.insert(data, &view, &out, stamp);
        let mut ready = Vec::new();
        if cache.answer(data, &view, policy.generation(), &mut ready) {
            check_answer(data, &view, &ready, "the ready answer");
        }
    }
});
