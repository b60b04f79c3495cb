//! The gates every candidate list passes (BEHAVIOUR section 4), the state
//! directory across restarts, and the format's properties.

mod common;

use std::path::Path;

use common::{TestKey, list_text, sig_path};
use proptest::prelude::*;
use rempart::admission::{
    Accepted, Admission, Decision, FloorError, InForce, Refusal, Settings, Source, StartFailure,
    Verdict, consider,
};
use rempart::list::floor::Floor;
use rempart::list::signature::TrustedKeys;
use rempart::list::{List, Pair};
use rempart::metrics::Metrics;
use time::OffsetDateTime;

const GOOD: &[(&str, &str, &str, &str)] = &[
    ("bad.test", "subtree", "terrorism", "REF-1"),
    ("someblog.wordpress.com", "subtree", "terrorism", "REF-2"),
    ("host.example.net", "exact", "child-abuse", "REF-3"),
];

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// Judge `path` and its signature as the admission path judges a list
/// file: read a piece at a time, twice (its digest and signature, then its
/// entries).
fn consider_file(
    settings: &Settings,
    in_force: Option<&InForce>,
    path: &Path,
    now: OffsetDateTime,
) -> Result<Decision, Refusal> {
    rempart::admission::consider_file(settings, in_force, &Floor::default(), path, now)
        .map(|(decision, _)| decision)
}

struct Fixture {
    dir: tempfile::TempDir,
    key: TestKey,
    settings: Settings,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let key = TestKey::new(dir.path(), "authority");
        let settings = Settings {
            trusted_keys: TrustedKeys::load(std::slice::from_ref(&key.public_path)).unwrap(),
            protected: vec!["wordpress.com".into(), "google.fr".into()],
            state_dir: dir.path().join("state"),
            max_bytes: 1 << 20,
            deadline_hours: 24,
        };
        Fixture { dir, key, settings }
    }

    /// Sign `text` as `name` and judge it against `in_force`.
    fn judge(
        &self,
        name: &str,
        text: &str,
        in_force: Option<&InForce>,
    ) -> Result<Decision, String> {
        let path = self.dir.path().join(name);
        self.key.write_signed(&path, text);
        consider_file(&self.settings, in_force, &path, now()).map_err(|r| r.to_string())
    }

    fn accept(&self, name: &str, text: &str) -> Accepted {
        match self.judge(name, text, None) {
            Ok(Decision::Apply(a)) => *a,
            other => panic!("{name} should be applied: {other:?}"),
        }
    }
}

fn refused(result: Result<Decision, String>) -> String {
    match result {
        Err(reason) => reason,
        Ok(d) => panic!("should be refused, got {d:?}"),
    }
}

fn with_header(issued: &str, expires: &str) -> String {
    list_text(7, GOOD)
        .replace("2026-01-01T00:00:00Z", issued)
        .replace("2099-01-01T00:00:00Z", expires)
}

#[test]
fn a_good_list_is_applied_and_names_its_signing_key() {
    let f = Fixture::new();
    let a = f.accept("list.txt", &list_text(7, GOOD));
    assert_eq!(a.header.serial, 7);
    assert_eq!(a.entries, 3);
    let ids = f.settings.trusted_keys.ids();
    assert_eq!(ids.len(), 1);
    assert_eq!(ids[0], a.key_id, "the key id is the signer's");
}

#[test]
fn serial_must_grow_and_equivocation_is_refused() {
    let f = Fixture::new();
    let current = f.accept("v7.txt", &list_text(7, GOOD));

    let older = refused(f.judge("v6.txt", &list_text(6, GOOD), Some(&current.in_force())));
    assert!(
        older.contains("v6.txt") && older.contains("rollback"),
        "{older}"
    );

    let mut other = GOOD.to_vec();
    other.push(("more.test", "subtree", "terrorism", "REF-4"));
    let same_serial = refused(f.judge("v7b.txt", &list_text(7, &other), Some(&current.in_force())));
    assert!(same_serial.contains("equivocation"), "{same_serial}");

    match f.judge(
        "v7again.txt",
        &list_text(7, GOOD),
        Some(&current.in_force()),
    ) {
        Ok(Decision::Unchanged) => {}
        other => panic!("the same serial and content change nothing: {other:?}"),
    }
    match f.judge("v8.txt", &list_text(8, &other), Some(&current.in_force())) {
        Ok(Decision::Apply(a)) => assert_eq!(a.header.serial, 8),
        other => panic!("a greater serial applies: {other:?}"),
    }
}

#[test]
fn expired_and_future_lists_are_refused() {
    let f = Fixture::new();
    let expired = refused(f.judge(
        "old.txt",
        &with_header("2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z"),
        None,
    ));
    assert!(expired.contains("expired"), "{expired}");

    let future = refused(f.judge(
        "future.txt",
        &with_header("2098-01-01T00:00:00Z", "2099-01-01T00:00:00Z"),
        None,
    ));
    assert!(future.contains("in the future"), "{future}");

    // A few seconds ahead is clock skew, not a fault.
    let soon = (now() + time::Duration::seconds(30))
        .replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert!(matches!(
        f.judge(
            "skew.txt",
            &with_header(&soon, "2099-01-01T00:00:00Z"),
            None
        ),
        Ok(Decision::Apply(_))
    ));
}

#[test]
fn protected_names_and_their_ancestors_are_refused_not_their_subdomains() {
    let f = Fixture::new();
    for (entry, kind) in [
        ("google.fr", "exact"),
        ("google.fr", "subtree"),
        ("wordpress.com", "subtree"),
    ] {
        let text = list_text(3, &[(entry, kind, "terrorism", "REF-X")]);
        let reason = refused(f.judge("p.txt", &text, None));
        assert!(
            reason.contains("protected") && reason.contains("line 8"),
            "{entry} {kind}: {reason}"
        );
    }
    // An ancestor of a protected name (`fr` is also a TLD, so use a
    // protected name two labels down).
    let mut f2 = Fixture::new();
    f2.settings.protected = vec!["www.service.example".into()];
    let reason = refused(f2.judge(
        "anc.txt",
        &list_text(3, &[("service.example", "subtree", "terrorism", "R")]),
        None,
    ));
    assert!(reason.contains("protected"), "{reason}");
    // An exact entry above a protected name does not cover it.
    assert!(matches!(
        f2.judge(
            "exact.txt",
            &list_text(3, &[("service.example", "exact", "terrorism", "R")]),
            None
        ),
        Ok(Decision::Apply(_))
    ));
    // someblog.wordpress.com under a protected wordpress.com: allowed (GOOD).
    f.accept("sub.txt", &list_text(3, GOOD));
}

#[test]
fn top_level_domains_and_public_suffixes_are_refused() {
    let f = Fixture::new();
    for name in ["com", "fr", "co.uk", "blogspot.com", "github.io"] {
        let text = list_text(3, &[(name, "subtree", "terrorism", "REF-X")]);
        let reason = refused(f.judge("ps.txt", &text, None));
        assert!(
            reason.contains("line 8")
                && (reason.contains("public suffix") || reason.contains("top-level")),
            "{name}: {reason}"
        );
    }
    // A name registered under a public suffix is an ordinary entry.
    f.accept(
        "ok.txt",
        &list_text(3, &[("bad.co.uk", "subtree", "terrorism", "R")]),
    );
}

#[test]
fn signatures_several_trusted_keys_for_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let old = TestKey::new(dir.path(), "old");
    let new = TestKey::new(dir.path(), "new");
    let stranger = TestKey::new(dir.path(), "stranger");
    let settings = Settings {
        trusted_keys: TrustedKeys::load(&[old.public_path.clone(), new.public_path.clone()])
            .unwrap(),
        protected: vec![],
        state_dir: dir.path().join("state"),
        max_bytes: 1 << 20,
        deadline_hours: 24,
    };
    let path = dir.path().join("list.txt");
    let mut ids = Vec::new();
    for key in [&old, &new] {
        key.write_signed(&path, &list_text(1, GOOD));
        match consider_file(&settings, None, &path, now()) {
            Ok(Decision::Apply(a)) => ids.push(a.key_id),
            other => panic!("a trusted key's list applies: {other:?}"),
        }
    }
    assert_ne!(ids[0], ids[1], "each list names the key that signed it");

    stranger.write_signed(&path, &list_text(1, GOOD));
    let reason = consider_file(&settings, None, &path, now())
        .unwrap_err()
        .to_string();
    assert!(
        reason.contains("signature") && reason.contains("list.txt"),
        "{reason}"
    );
    // No signature at all.
    std::fs::remove_file(sig_path(&path)).unwrap();
    let reason = consider_file(&settings, None, &path, now())
        .unwrap_err()
        .to_string();
    assert!(reason.contains("minisig"), "{reason}");
}

#[test]
fn parse_errors_name_the_file_the_line_and_the_reason() {
    let f = Fixture::new();
    let good = list_text(3, GOOD);
    let cases: &[(&str, &str)] = &[
        (
            &good.replace("#rempart-list v1", "#rempart-list v2"),
            "line 1",
        ),
        (&good.replace("serial: 3", "serial: three"), "line 3"),
        (&good.replace("issuer: TEST\n", ""), "issuer"),
        (
            &good.replace("expires:", "x-note: fine\nbogus: no\nexpires:"),
            "bogus",
        ),
        (
            &good.replace("\tsubtree\tterrorism\tREF-1", "\twide\tterrorism\tREF-1"),
            "line 8",
        ),
        (&good.replace("bad.test\t", "bad..test\t"), "line 8"),
        (&good.replace("2026-01-01\n", "2026-13-01\n"), "line 8"),
        (
            &format!("{good}bad.test\texact\tterrorism\tREF-9\t2026-01-01\n"),
            "line 11",
        ),
        (&good.replace('\n', "\r\n"), "carriage return"),
        (&good.replace("name\tmatch", "name\tkind"), "match"),
    ];
    for (text, expected) in cases {
        let reason = refused(f.judge("bad-format.txt", text, None));
        assert!(
            reason.contains("bad-format.txt") && reason.contains(expected),
            "expected {expected:?} in {reason:?}"
        );
    }
}

/// A restart as `Admission::start` does it: the kept list put in force
/// (returned: what a list applied now replaces), then the source file
/// admitted against it.
async fn restart(f: &Fixture, source: &Path) -> (Option<InForce>, Verdict, Option<u64>) {
    let admission = Admission::new(f.settings.clone(), source.to_owned(), Metrics::new(), None);
    let kept = admission.restore_kept().await;
    let verdict = admission.admit(Source::Start(source.to_owned())).await;
    (kept, verdict, admission.serial().await)
}

fn reason(verdict: &Verdict) -> &str {
    match verdict {
        Verdict::Refused { reason } => reason,
        other => panic!("should be refused, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_enforces_the_kept_list_when_the_source_is_gone_or_bad() {
    let f = Fixture::new();
    let source = f.dir.path().join("list.txt");
    f.key.write_signed(&source, &list_text(9, GOOD));
    let (kept, first, in_force) = restart(&f, &source).await;
    assert!(kept.is_none());
    assert!(
        matches!(first, Verdict::Applied { serial: 9, .. }),
        "{first:?}"
    );
    assert_eq!(in_force, Some(9));
    // A list applied now is kept in the state directory.
    assert!(f.settings.state_dir.join("in-force.state").exists());

    // The source file is gone: the kept list is enforced.
    std::fs::remove_file(&source).unwrap();
    let (kept, second, in_force) = restart(&f, &source).await;
    assert_eq!(kept.map(|k| k.header.serial), Some(9));
    assert!(matches!(second, Verdict::Refused { .. }), "{second:?}");
    assert_eq!(in_force, Some(9));

    // The source now fails a gate (older serial; a public suffix): kept.
    f.key.write_signed(&source, &list_text(8, GOOD));
    let (_, third, in_force) = restart(&f, &source).await;
    assert_eq!(in_force, Some(9));
    assert!(
        reason(&third).contains("rollback"),
        "the refusal is reported: {third:?}"
    );
    f.key.write_signed(
        &source,
        &list_text(10, &[("com", "subtree", "terrorism", "R")]),
    );
    assert_eq!(restart(&f, &source).await.2, Some(9));

    // A newer good source replaces the kept list.
    f.key.write_signed(&source, &list_text(11, GOOD));
    let (kept, fourth, in_force) = restart(&f, &source).await;
    assert!(
        matches!(fourth, Verdict::Applied { serial: 11, .. }),
        "{fourth:?}"
    );
    assert_eq!(kept.unwrap().header.serial, 9);
    assert_eq!(in_force, Some(11));

    // No kept list and no source: no list at all.
    let empty = Fixture::new();
    let none = empty.dir.path().join("none.txt");
    let admission = Admission::new(empty.settings.clone(), none, Metrics::new(), None);
    assert!(admission.start(false).await.is_err());
}

/// A start as the service does it: the serial floor checked, the kept list
/// restored, the source admitted; the serial in force once settled.
async fn start(f: &Fixture, source: &Path, reset: bool) -> Result<u64, StartFailure> {
    let admission = Admission::new(f.settings.clone(), source.to_owned(), Metrics::new(), None);
    admission.start(reset).await?;
    // Waits for the start's settling (state file, floor) to end.
    Ok(admission.serial().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_state_file_does_not_reopen_the_door_to_an_older_list() {
    let f = Fixture::new();
    let source = f.dir.path().join("list.txt");
    let state = f.settings.state_dir.join("in-force.state");
    let floor = f.settings.state_dir.join("serial.floor");
    f.key.write_signed(&source, &list_text(9, GOOD));
    assert_eq!(start(&f, &source, false).await.unwrap(), 9);
    assert!(state.exists() && floor.exists());

    // The state file is lost and an older, validly signed list is in its
    // place: the start stops, naming the floor and what became of the
    // state file (before the floor, this applied serial 8).
    std::fs::remove_file(&state).unwrap();
    f.key.write_signed(&source, &list_text(8, GOOD));
    match start(&f, &source, false).await {
        Err(StartFailure::Floor(e @ FloorError::StateLost { serial: 9, .. })) => {
            let text = e.to_string();
            assert!(
                text.contains("serial.floor") && text.contains("missing"),
                "{text}"
            );
        }
        other => panic!("a floor without its kept list must stop the start: {other:?}"),
    }
    // The operator's explicit reset starts from the list file.
    assert_eq!(start(&f, &source, true).await.unwrap(), 8);
    assert_eq!(start(&f, &source, false).await.unwrap(), 8);

    // The floor lost while a list is kept: not started either.
    std::fs::remove_file(&floor).unwrap();
    assert!(matches!(
        start(&f, &source, false).await,
        Err(StartFailure::Floor(FloorError::Missing { .. }))
    ));
    assert_eq!(start(&f, &source, true).await.unwrap(), 8);

    // A state directory of a version before the floor (its state file's
    // first line says so) is an upgrade: the floor is built from it.
    std::fs::remove_file(&floor).unwrap();
    let kept = std::fs::read(&state).unwrap();
    let mut old = b"rempart-state v2".to_vec();
    old.extend_from_slice(&kept[b"rempart-state v3".len()..]);
    std::fs::write(&state, old).unwrap();
    assert_eq!(start(&f, &source, false).await.unwrap(), 8);
    assert!(floor.exists());

    // A damaged floor, or a damaged state file, is not "no floor".
    let text = std::fs::read_to_string(&floor).unwrap();
    std::fs::write(&floor, text.replacen("8 ", "1 ", 1)).unwrap();
    assert!(matches!(
        start(&f, &source, false).await,
        Err(StartFailure::Floor(FloorError::Unusable(_)))
    ));
    std::fs::write(&floor, text).unwrap();
    std::fs::write(&state, b"rempart-state v3\n{").unwrap();
    assert!(matches!(
        start(&f, &source, false).await,
        Err(StartFailure::Floor(FloorError::StateLost { serial: 8, .. }))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_list_applied_before_is_stale_a_never_seen_one_a_rollback() {
    let f = Fixture::new();
    let source = f.dir.path().join("list.txt");
    f.key.write_signed(&source, &list_text(3, GOOD));
    let metrics = Metrics::new();
    let admission = Admission::new(f.settings.clone(), source.clone(), metrics.clone(), None);
    admission.start(false).await.unwrap();
    let newer = f.dir.path().join("newer.txt");
    f.key.write_signed(&newer, &list_text(4, GOOD));
    assert!(matches!(
        admission.admit(Source::Push(newer.clone())).await,
        Verdict::Applied { serial: 4, .. }
    ));
    // The list file (serial 3) is the one this resolver applied before.
    assert_eq!(
        admission.reread().await,
        Verdict::Stale {
            serial: 3,
            in_force: 4
        }
    );
    // A serial-3 list never applied here is a rollback.
    let mut other = GOOD.to_vec();
    other.push(("more.test", "exact", "terrorism", "REF-9"));
    f.key.write_signed(&source, &list_text(3, &other));
    let verdict = admission.reread().await;
    assert!(reason(&verdict).contains("rollback"), "{verdict:?}");
    let text = metrics.render(0);
    assert!(
        text.contains("rempart_reloads_total{list=\"main\",outcome=\"refused\"} 1"),
        "only the rollback is a refusal: {text}"
    );
}

#[test]
fn the_list_file_must_be_a_regular_file_under_the_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let key = TestKey::new(dir.path(), "k");
    let list = dir.path().join("list.txt");
    key.write_signed(&list, &list_text(1, GOOD));
    let size = std::fs::metadata(&list).unwrap().len();
    assert!(Pair::read(&list, size).is_ok());
    let e = Pair::read(&list, size - 1).unwrap_err();
    assert!(
        e.to_string()
            .contains(&format!("larger than {} bytes", size - 1)),
        "{e}"
    );
    // A symbolic link to a regular file is fine; to a device, refused.
    let link = dir.path().join("link.txt");
    std::os::unix::fs::symlink(&list, &link).unwrap();
    std::os::unix::fs::symlink(sig_path(&list), sig_path(&link)).unwrap();
    assert_eq!(
        Pair::read(&link, size).unwrap(),
        Pair::read(&list, size).unwrap()
    );
    let zero = dir.path().join("zero.txt");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let e = Pair::read(&zero, 1 << 20).unwrap_err();
    assert!(e.to_string().contains("character device"), "{e}");
    let e = Pair::read(dir.path(), 1 << 20).unwrap_err();
    assert!(e.to_string().contains("directory"), "{e}");
}

// --- properties ---------------------------------------------------------

/// A plain label (never `xn--`: random punycode is not a valid IDN).
fn label() -> impl Strategy<Value = String> {
    "[a-wyz][a-z0-9-]{0,10}[a-z0-9]".prop_map(|s| s)
}

fn entry() -> impl Strategy<Value = (String, bool, String, String, u8)> {
    (
        prop::collection::vec(label(), 1..3),
        any::<bool>(),
        prop::sample::select(vec!["terrorism", "child-abuse", "other"]),
        "[A-Z]{2,6}-[0-9]{1,6}",
        1u8..28,
    )
        .prop_map(|(labels, exact, cat, reference, day)| {
            // Always under a test TLD so no entry is a public suffix.
            (
                format!("{}.test", labels.join(".")),
                exact,
                cat.to_owned(),
                reference,
                day,
            )
        })
}

fn list_from(serial: u64, entries: &[(String, bool, String, String, u8)]) -> String {
    let mut text = format!(
        "#rempart-list v1\nissuer: PROP\nserial: {serial}\nissued: 2026-01-01T00:00:00Z\nexpires: 2099-01-01T00:00:00Z\nx-note: generated\n\nname\tmatch\tcategory\treference\tadded\n"
    );
    let mut seen = std::collections::HashSet::new();
    for (name, exact, cat, reference, day) in entries {
        if !seen.insert(name.clone()) {
            continue;
        }
        let kind = if *exact { "exact" } else { "subtree" };
        text.push_str(&format!(
            "{name}\t{kind}\t{cat}\t{reference}\t2026-11-{day:02}\n"
        ));
    }
    text
}

fn without_lines(mut l: List) -> List {
    for e in &mut l.entries {
        e.line = 0;
    }
    l
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn parse_serialise_roundtrip(serial in 1u64..u64::MAX, entries in prop::collection::vec(entry(), 0..40)) {
        let text = list_from(serial, &entries);
        let parsed = List::parse(text.as_bytes(), Path::new("p.txt")).unwrap();
        let again = List::parse(parsed.serialise().as_bytes(), Path::new("p.txt")).unwrap();
        prop_assert_eq!(without_lines(again), without_lines(parsed.clone()));
        // Canonical input serialises to itself, byte for byte.
        prop_assert_eq!(parsed.serialise(), text);
    }

    #[test]
    fn any_single_changed_byte_of_a_signed_list_is_refused(
        entries in prop::collection::vec(entry(), 1..10),
        position in any::<prop::sample::Index>(),
        xor in 1u8..=255,
        in_signature in any::<bool>(),
    ) {
        let f = Fixture::new();
        let text = list_from(5, &entries);
        let path = f.dir.path().join("list.txt");
        f.key.write_signed(&path, &text);
        let mut bytes = std::fs::read(&path).unwrap();
        let mut sig = std::fs::read(sig_path(&path)).unwrap();
        // Either the list or the signature's signed parts (its first line is
        // an untrusted comment, free text by design).
        if in_signature {
            let start = sig.iter().position(|&b| b == b'\n').unwrap() + 1;
            let i = start + position.index(sig.len() - start);
            sig[i] ^= xor;
        } else {
            let i = position.index(bytes.len());
            bytes[i] ^= xor;
        }
        let result = consider(&f.settings, None, &path, &bytes, &sig, now());
        prop_assert!(result.is_err(), "a changed byte was accepted");
    }
}
