//! Micro-benchmarks of the two things every redirected query does: the
//! policy lookup and the answer building. Regressions show here first.
//!
//! `cargo bench --bench policy` (set `REMPART_BENCH_ENTRIES`, default
//! 1,000,000). Before the timings it prints, once, the time to parse and
//! compile the list and the snapshot's bytes per entry.

#![allow(
    missing_docs,
    reason = "criterion_group! defines an undocumented public function"
)]

use std::hint::black_box;
use std::path::Path;
use std::str::FromStr;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::binary::BinEncodable;
use rempart::config::RedirectConfig;
use rempart::dns::RedirectTemplate;
use rempart::list::List;
use rempart::policy::{Policy, Snapshot};

const TLDS: &[&str] = &["fr", "com", "net", "org", "info", "eu"];
const WORDS: &[&str] = &[
    "propaganda",
    "media",
    "news",
    "cdn",
    "files",
    "forum",
    "video",
    "blog",
];

/// The i-th generated name: 2 to 4 labels, several TLDs, deterministic.
fn entry_name(i: u64) -> String {
    let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let tld = TLDS[(x % 6) as usize];
    let word = WORDS[((x >> 8) % 8) as usize];
    match (x >> 16) % 3 {
        0 => format!("w{i:x}.{tld}"),
        1 => format!("w{i:x}.{word}.{tld}"),
        _ => format!("s{}.w{i:x}.{word}.{tld}", (x >> 24) % 10),
    }
}

fn list_text(n: u64) -> String {
    list_text_prefixed(n, "")
}

/// [`list_text`] with `prefix` before every name (`""` or `"l0-"`...).
fn list_text_prefixed(n: u64, prefix: &str) -> String {
    let mut text = String::with_capacity(n as usize * 64);
    text.push_str("#rempart-list v1\nissuer: BENCH\nserial: 1\nissued: 2026-01-01T00:00:00Z\nexpires: 2099-01-01T00:00:00Z\n\nname\tmatch\tcategory\treference\tadded\n");
    for i in 0..n {
        let kind = if i % 10 == 0 { "exact" } else { "subtree" };
        let category = if i % 3 == 0 {
            "child-abuse"
        } else {
            "terrorism"
        };
        text.push_str(&format!(
            "{prefix}{}\t{kind}\t{category}\tBENCH-{i:07}\t2026-11-20\n",
            entry_name(i)
        ));
    }
    text
}

fn bench(c: &mut Criterion) {
    let n: u64 = std::env::var("REMPART_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let text = list_text(n);
    let t = Instant::now();
    let list = List::parse(text.as_bytes(), Path::new("bench.txt")).expect("generated list parses");
    let parsed = t.elapsed();
    let t = Instant::now();
    let policy = Policy::compile(&list, [0; 32]);
    let compiled = t.elapsed();
    drop(list);
    println!(
        "policy: {n} entries: parse {:.0} ms, compile {:.0} ms, snapshot {:.1} MiB = {:.1} bytes/entry",
        parsed.as_secs_f64() * 1e3,
        compiled.as_secs_f64() * 1e3,
        policy.heap_bytes() as f64 / (1 << 20) as f64,
        policy.heap_bytes() as f64 / n as f64
    );

    let name = |s: &str| Name::from_str(s).unwrap();
    let exact_hit = name(&format!("{}.", entry_name(10)));
    let subtree_hit = name(&format!("www.{}.", entry_name(11)));
    let deep_hit = name(&format!("a.b.c.d.{}.", entry_name(12)));
    let miss = name("www.example-not-listed.com.");
    let deep_miss = name("a.b.c.d.e.www.example-not-listed.com.");
    let mut g = c.benchmark_group("policy.verdict");
    for (label, q) in [
        ("exact hit", &exact_hit),
        ("subtree hit", &subtree_hit),
        ("deep subtree hit", &deep_hit),
        ("miss", &miss),
        ("deep miss", &deep_miss),
    ] {
        assert_eq!(
            policy.verdict(q).is_some(),
            label.contains("hit"),
            "{label}: {q}"
        );
        g.bench_function(label, |b| {
            b.iter(|| black_box(policy.verdict(black_box(q))))
        });
    }
    g.finish();

    // Five lists (issue 17): four of 10,000 entries before the big one, the
    // worst order for a name of the big list (four tables probed first).
    // The name is hashed once whatever the number of lists.
    let policy = std::sync::Arc::new(policy);
    let mut lists: Vec<std::sync::Arc<Policy>> = (0..4u64)
        .map(|k| {
            let small = list_text_prefixed(10_000, &format!("l{k}-"));
            let list = List::parse(small.as_bytes(), Path::new("small.txt")).expect("parses");
            std::sync::Arc::new(Policy::compile(&list, [1; 32]))
        })
        .collect();
    lists.push(std::sync::Arc::clone(&policy));
    let snapshot = Snapshot::of(lists);
    let mut g = c.benchmark_group("snapshot.verdict (4 x 10k, then the big list)");
    for (label, q, last) in [
        ("subtree hit in the last list", &subtree_hit, true),
        ("miss", &miss, false),
        ("deep miss", &deep_miss, false),
    ] {
        assert_eq!(
            snapshot.verdict(q).map(|h| h.list == 4),
            last.then_some(true),
            "{label}: {q}"
        );
        g.bench_function(label, |b| {
            b.iter(|| black_box(snapshot.verdict(black_box(q))))
        });
    }
    g.finish();

    // The answer to a redirected A query, built and encoded as sent.
    let redirect = RedirectTemplate::new(&RedirectConfig {
        ipv4: vec!["192.0.2.80".parse().unwrap()],
        ipv6: vec!["2001:db8::80".parse().unwrap()],
        ttl: 60,
        cname: None,
        ede_text: "Blocked by order of the French administrative authority".into(),
        uses_section: true,
    });
    c.bench_function("answer.redirect_a_encoded", |b| {
        b.iter(|| {
            let mut m = Message::new(4242, MessageType::Response, OpCode::Query);
            m.metadata.recursion_available = true;
            m.metadata.response_code = ResponseCode::NoError;
            let records = redirect
                .records(black_box(&subtree_hit), RecordType::A)
                .unwrap();
            m.answers.extend(records);
            black_box(m.to_bytes().unwrap())
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(50)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
