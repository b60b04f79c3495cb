//! The matcher agrees with a naive reference on random names and lists.
//!
//! Names are drawn from a small pool of labels so that lists and queries
//! overlap a lot: parents, children, siblings, exact and subtree entries at
//! every depth, and letter case changed at random.

use std::path::Path;
use std::str::FromStr;

use hickory_proto::rr::Name;
use hickory_proto::serialize::binary::BinEncodable;
use proptest::prelude::*;
use rempart::list::List;
use rempart::policy::{Policy, Snapshot};

const LABELS: &[&str] = &[
    "a",
    "b",
    "bad",
    "test",
    "ex-1",
    "xn--bcher-kva",
    "b_c",
    "a0",
];

fn name(max_labels: usize) -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(prop::sample::select(LABELS), 1..=max_labels)
}

/// The reference: the entry for the name itself (either kind), else the
/// closest subtree entry among its ancestors, comparing whole labels
/// without regard to case.
fn naive<'a>(entries: &'a [(String, bool)], query: &[String]) -> Option<&'a str> {
    let query: Vec<String> = query.iter().map(|l| l.to_ascii_lowercase()).collect();
    for start in 0..query.len() {
        let suffix = query[start..].join(".");
        for (entry, exact) in entries {
            if *entry == suffix && (start == 0 || !*exact) {
                return Some(entry);
            }
        }
    }
    None
}

fn random_case(label: &str, mask: u64) -> String {
    label
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn compile(entries: &[(String, bool)]) -> Policy {
    let mut text = String::from(
        "#rempart-list v1\nissuer: P\nserial: 1\nissued: 2026-01-01T00:00:00Z\nexpires: 2099-01-01T00:00:00Z\n\nname\tmatch\tcategory\treference\tadded\n",
    );
    for (i, (name, exact)) in entries.iter().enumerate() {
        let kind = if *exact { "exact" } else { "subtree" };
        text.push_str(&format!("{name}\t{kind}\tterrorism\tR-{i}\t2026-01-01\n"));
    }
    let list = List::parse(text.as_bytes(), Path::new("prop.txt")).unwrap();
    Policy::compile(&list, [0; 32])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn matcher_agrees_with_the_naive_reference(
        raw_entries in prop::collection::vec((name(4), any::<bool>()), 0..24),
        queries in prop::collection::vec((name(6), any::<u64>()), 1..32),
        trailing_dot in any::<bool>(),
    ) {
        // Names are unique in a list.
        let mut entries: Vec<(String, bool)> = Vec::new();
        for (labels, exact) in raw_entries {
            let n = labels.join(".");
            if !entries.iter().any(|(e, _)| *e == n) {
                entries.push((n, exact));
            }
        }
        let policy = compile(&entries);
        prop_assert_eq!(policy.len(), entries.len());
        for (labels, mask) in queries {
            let labels: Vec<String> = labels
                .iter()
                .enumerate()
                .map(|(i, l)| random_case(l, mask.rotate_left(i as u32 * 7)))
                .collect();
            let mut text = labels.join(".");
            if trailing_dot {
                text.push('.');
            }
            let query = Name::from_str(&text).unwrap();
            let got = policy.verdict(&query).map(|r| r.name.to_owned());
            let want = naive(&entries, &labels).map(str::to_owned);
            prop_assert_eq!(&got, &want, "query {}", text);
            // The same name as a query carries it on the wire.
            let wire = query.to_bytes().unwrap();
            let got_wire = policy.verdict_wire(&wire).map(|r| r.name.to_owned());
            prop_assert_eq!(got_wire, want, "wire query {}", text);
        }
    }

    /// Several lists together (issue 17): the snapshot's verdict is the
    /// naive reference's over each list in turn, the first list with a
    /// match deciding; by name and by wire form alike.
    #[test]
    fn several_lists_agree_with_the_naive_reference_in_order(
        raw_lists in prop::collection::vec(
            prop::collection::vec((name(3), any::<bool>()), 0..12),
            1..5,
        ),
        queries in prop::collection::vec((name(5), any::<u64>()), 1..24),
    ) {
        let lists: Vec<Vec<(String, bool)>> = raw_lists
            .into_iter()
            .map(|raw| {
                let mut entries: Vec<(String, bool)> = Vec::new();
                for (labels, exact) in raw {
                    let n = labels.join(".");
                    if !entries.iter().any(|(e, _)| *e == n) {
                        entries.push((n, exact));
                    }
                }
                entries
            })
            .collect();
        let snapshot = Snapshot::of(
            lists.iter().map(|l| std::sync::Arc::new(compile(l))).collect(),
        );
        for (labels, mask) in queries {
            let labels: Vec<String> = labels
                .iter()
                .enumerate()
                .map(|(i, l)| random_case(l, mask.rotate_left(i as u32 * 5)))
                .collect();
            let text = format!("{}.", labels.join("."));
            let query = Name::from_str(&text).unwrap();
            let want = lists
                .iter()
                .enumerate()
                .find_map(|(i, l)| naive(l, &labels).map(|n| (i, n.to_owned())));
            let got = snapshot.verdict(&query).map(|h| (h.list, h.rule.name.to_owned()));
            prop_assert_eq!(&got, &want, "query {}", text);
            let wire = query.to_bytes().unwrap();
            let got_wire = snapshot
                .verdict_wire(&wire)
                .map(|h| (h.list, h.rule.name.to_owned()));
            prop_assert_eq!(got_wire, want, "wire query {}", text);
        }
    }

    /// A label that contains an escaped dot is one label, never two: the
    /// policy must not take `a\.bad.test` for a name under `a.bad.test`.
    #[test]
    fn escaped_dots_are_not_label_boundaries(prefix in prop::sample::select(LABELS)) {
        let entries = vec![(format!("{prefix}.bad.test"), false)];
        let policy = compile(&entries);
        let escaped = Name::from_str(&format!("{prefix}\\.bad.test.")).unwrap();
        prop_assert!(policy.verdict(&escaped).is_none());
        prop_assert!(policy.verdict_wire(&escaped.to_bytes().unwrap()).is_none());
        let real = Name::from_str(&format!("www.{prefix}.bad.test.")).unwrap();
        prop_assert!(policy.verdict(&real).is_some());
    }
}

#[test]
fn the_root_and_unrelated_names_match_nothing() {
    let policy = compile(&[("bad.test".into(), false)]);
    for q in [".", "test.", "notbad.test.", "bad.test.org.", "bad.tes."] {
        assert!(policy.verdict(&Name::from_str(q).unwrap()).is_none(), "{q}");
    }
    assert!(
        policy
            .verdict(&Name::from_str("BAD.Test.").unwrap())
            .is_some()
    );
}
