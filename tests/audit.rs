//! The audit trail as an auditor checks it: one record per redirect and none
//! for forwarded names, each client address mode, `rempart audit verify`
//! against tampering (and `audit verify --key` against the forger who
//! re-hashes the chain), report figures equal to the queries sent, loss
//! written into the chain, and the sealed trail through the real binary
//! (`audit setup-keys`, `serve` sealing and logging each seal's head).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use common::*;
use hickory_proto::rr::RecordType;
use rempart::admission::Source;
use rempart::audit::seal::{Seal, SealSettings, SealingKey};
use rempart::audit::{AuditSettings, Auditor, Event, Line, RedirectRecord, trail};
use rempart::config::ClientIpMode;
use serde_json::Value;

fn lines(dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    for f in trail::files(dir).unwrap() {
        for l in std::fs::read_to_string(&f).unwrap().lines() {
            out.push(serde_json::from_str(l).unwrap());
        }
    }
    out
}

fn kind<'a>(records: &'a [Value], kind: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["kind"] == kind).collect()
}

fn rempart_cli(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rempart"))
        .args(args)
        .output()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

async fn start(audit: &'static str) -> (TestUpstream, Setup, Rempart) {
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    let config = setup.config(
        upstream.addr,
        &Extra {
            audit,
            ..Extra::default()
        },
    );
    let rempart = Rempart::start(&config).await;
    (upstream, setup, rempart)
}

fn flush(rempart: &Rempart) {
    rempart.service().auditor().expect("audit on").flush();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_record_per_redirect_none_for_forwarded_names_and_the_report_agrees() {
    let (_upstream, setup, rempart) = start("").await;
    let a = rempart.addr;
    let sent: &[(&str, RecordType, Transport)] = &[
        ("bad.test.", RecordType::A, Transport::Udp),
        ("bad.test.", RecordType::A, Transport::Udp),
        ("WWW.Bad.Test.", RecordType::AAAA, Transport::Tcp),
        ("bad.test.", RecordType::MX, Transport::Udp),
        ("host.test.", RecordType::A, Transport::Tcp),
    ];
    for (name, qtype, transport) in sent {
        query(a, *transport, name, *qtype, Ask::default()).await;
    }
    // Forwarded names: no record.
    for name in [
        "clean.test.",
        "www.clean.test.",
        "nothing.test.",
        "notbad.test.",
    ] {
        query(a, Transport::Udp, name, RecordType::A, Ask::default()).await;
    }
    // The entries of the list applied at start are written once serving,
    // in the background: wait for them (bounded).
    let dir = setup.audit_dir();
    let deadline = SystemTime::now() + Duration::from_secs(10);
    let records = loop {
        flush(&rempart);
        let records = lines(&dir);
        if kind(&records, "entry").len() >= 2 || SystemTime::now() > deadline {
            break records;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let redirects = kind(&records, "redirect");
    assert_eq!(redirects.len(), sent.len(), "{records:#?}");
    for (r, (name, qtype, transport)) in redirects.iter().zip(sent) {
        assert_eq!(r["qname"], *name, "the name as asked");
        assert_eq!(r["qtype"], qtype.to_string());
        assert_eq!(
            r["transport"],
            if *transport == Transport::Udp {
                "udp"
            } else {
                "tcp"
            }
        );
        assert_eq!(r["serial"], 1);
        assert_eq!(r["digest"].as_str().unwrap().len(), 64);
        assert!(r.get("client").is_none(), "client_ip = none: {r}");
    }
    assert_eq!(redirects[0]["rule"], "bad.test");
    assert_eq!(redirects[0]["reference"], "REF-0001");
    assert_eq!(redirects[0]["category"], "terrorism");
    assert_eq!(redirects[0]["answer"], "redirect");
    assert_eq!(redirects[3]["answer"], "nodata");
    assert_eq!(redirects[4]["rule"], "host.test");
    assert_eq!(redirects[4]["category"], "child-abuse");
    for r in &records {
        let text = r.to_string();
        assert!(
            !text.contains("clean.test") && !text.contains("nothing.test"),
            "a forwarded name was recorded: {text}"
        );
    }
    // The start, and the list applied with its entries, are in the chain.
    assert_eq!(kind(&records, "process")[0]["event"], "start");
    let applied = kind(&records, "list");
    assert_eq!(applied[0]["event"], "applied");
    assert_eq!(applied[0]["serial"], 1);
    assert_eq!(applied[0]["added"], 2);
    assert_eq!(kind(&records, "entry").len(), 2);

    // A new version: one added, one removed, with references.
    let v2 = list_text(
        2,
        &[
            ("bad.test", "subtree", "terrorism", "REF-0001"),
            ("new.test", "exact", "terrorism", "REF-0003"),
        ],
    );
    setup.key.write_signed(&setup.list_path, &v2);
    let outcome = rempart.service().admission.reread().await;
    assert!(format!("{outcome:?}").contains("Applied"), "{outcome:?}");
    query(
        a,
        Transport::Udp,
        "new.test.",
        RecordType::A,
        Ask::default(),
    )
    .await;
    // Refused candidates: a pushed list (not the bytes in force, which
    // would be `unchanged`) with a signature that is not one, then the file
    // edited after signing. Each is a `list refused` record naming where it
    // came from and why.
    let pushed = setup.dir.path().join("pushed.txt");
    std::fs::write(&pushed, v2.replace("REF-0003", "REF-0005")).unwrap();
    std::fs::write(sig_path(&pushed), "not a signature\n").unwrap();
    let outcome = rempart
        .service()
        .admission
        .admit(Source::Push(pushed))
        .await;
    assert!(format!("{outcome:?}").contains("Refused"), "{outcome:?}");
    std::fs::write(&setup.list_path, v2.replace("REF-0003", "REF-0004")).unwrap();
    let outcome = rempart.service().admission.reread().await;
    assert!(format!("{outcome:?}").contains("Refused"), "{outcome:?}");
    rempart.stop().await;

    let records = lines(&dir);
    let entries = kind(&records, "entry");
    let changes: Vec<(String, String, String, u64)> = entries
        .iter()
        .map(|e| {
            (
                e["change"].as_str().unwrap().to_owned(),
                e["name"].as_str().unwrap().to_owned(),
                e["reference"].as_str().unwrap().to_owned(),
                e["serial"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(changes.contains(&("added".into(), "new.test".into(), "REF-0003".into(), 2)));
    assert!(changes.contains(&("removed".into(), "host.test".into(), "REF-0002".into(), 2)));
    assert_eq!(kind(&records, "process").last().unwrap()["event"], "stop");
    let refused: Vec<&Value> = kind(&records, "list")
        .into_iter()
        .filter(|l| l["event"] == "refused")
        .collect();
    assert_eq!(refused.len(), 2, "{refused:#?}");
    assert_eq!(refused[0]["source"], "<pushed list>");
    assert!(
        refused[0]["reason"].as_str().unwrap().contains("signature"),
        "{}",
        refused[0]
    );
    assert_eq!(refused[1]["source"], s(&setup.list_path));
    assert!(
        refused[1]["reason"].as_str().unwrap().contains("signature"),
        "{}",
        refused[1]
    );

    // verify: intact. report: the figures are the queries sent.
    let o = rempart_cli(&["audit", "verify", s(&dir)]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = rempart_cli(&["audit", "report", s(&dir), "--format", "json"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["redirects"], 6);
    assert_eq!(report["per_category"]["terrorism"], 5);
    assert_eq!(report["per_category"]["child-abuse"], 1);
    // Per UTC day: the redirects counted on the day their records carry.
    let mut days = serde_json::Map::new();
    for r in kind(&records, "redirect") {
        let day = &r["time"].as_str().unwrap()[..10];
        let n = days.get(day).and_then(Value::as_u64).unwrap_or(0);
        days.insert(day.to_owned(), Value::from(n + 1));
    }
    assert_eq!(report["per_day"], Value::Object(days), "{report}");
    let per_entry: Vec<(String, u64)> = report["per_entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["redirects"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        per_entry,
        [
            ("bad.test".to_owned(), 4),
            ("host.test".to_owned(), 1),
            ("new.test".to_owned(), 1)
        ]
    );
    let serials: Vec<u64> = report["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["serial"].as_u64().unwrap())
        .collect();
    assert_eq!(serials, [1, 2]);
    let added = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "new.test")
        .expect("the addition is reported");
    // issued 2026-01-01: the delay is long, and flagged as beyond 24 hours.
    assert!(added["delay_seconds"].as_i64().unwrap() > 24 * 3600);
    assert_eq!(added["within_24h"], false);
    // Text and CSV carry the same figures.
    let o = rempart_cli(&["audit", "report", s(&dir), "--format", "csv"]);
    let csv = String::from_utf8_lossy(&o.stdout);
    assert!(
        csv.contains("bad.test") && csv.contains("REF-0001"),
        "{csv}"
    );
    let o = rempart_cli(&["audit", "report", s(&dir)]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("REF-0003"));
    // A period that ends before anything happened has no redirects.
    let o = rempart_cli(&[
        "audit",
        "report",
        s(&dir),
        "--format",
        "json",
        "--to",
        "2020-01-01",
    ]);
    let empty: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(empty["redirects"], 0);
    // And one that starts after everything, likewise; one that holds it
    // all counts all six.
    for (from, redirects) in [("2100-01-01", 0), ("2020-01-01", 6)] {
        let o = rempart_cli(&[
            "audit",
            "report",
            s(&dir),
            "--format",
            "json",
            "--from",
            from,
        ]);
        let r: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(r["redirects"], redirects, "--from {from}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_ip_mode_writes_what_it_says_and_nothing_more() {
    for (mode, audit) in [
        ("none", "client_ip = \"none\""),
        ("truncate", "client_ip = \"truncate\""),
        ("hmac", "client_ip = \"hmac\""),
        ("full", "client_ip = \"full\""),
    ] {
        let (_upstream, setup, rempart) = start(audit).await;
        for local in ["127.0.0.1:0", "127.0.0.1:0", "127.0.0.2:0"] {
            query_from(
                rempart.addr,
                local,
                Transport::Udp,
                "bad.test.",
                RecordType::A,
            )
            .await;
        }
        flush(&rempart);
        let records = lines(&setup.audit_dir());
        let clients: Vec<Option<String>> = kind(&records, "redirect")
            .iter()
            .map(|r| r.get("client").and_then(|c| c.as_str()).map(str::to_owned))
            .collect();
        assert_eq!(clients.len(), 3, "{mode}");
        let text: String = std::fs::read_dir(setup.audit_dir())
            .unwrap()
            .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
            .collect();
        match mode {
            "none" => assert_eq!(clients, [None, None, None]),
            "truncate" => {
                assert_eq!(
                    clients,
                    [
                        Some("127.0.0.0/24".into()),
                        Some("127.0.0.0/24".into()),
                        Some("127.0.0.0/24".into())
                    ]
                );
            }
            "hmac" => {
                let c: Vec<String> = clients.into_iter().map(Option::unwrap).collect();
                assert!(
                    c.iter()
                        .all(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                );
                assert_eq!(c[0], c[1], "one day's records link a client");
                assert_ne!(c[0], c[2], "different clients differ");
            }
            "full" => {
                assert_eq!(
                    clients,
                    [
                        Some("127.0.0.1".into()),
                        Some("127.0.0.1".into()),
                        Some("127.0.0.2".into())
                    ]
                );
            }
            _ => unreachable!(),
        }
        if mode != "full" {
            assert!(
                !text.contains("127.0.0.1") && !text.contains("127.0.0.2"),
                "{mode}: an address leaked into the trail"
            );
        }
        rempart.stop().await;
    }
}

/// A trail of `n` records over several small files.
fn write_trail(dir: &Path, n: usize, queue: usize) -> (Vec<PathBuf>, u64) {
    write_trail_sealed(dir, n, queue, None)
}

/// [`write_trail`], sealed with the key in `key` if given: a seal at each
/// rotation and one at stop.
fn write_trail_sealed(
    dir: &Path,
    n: usize,
    queue: usize,
    key: Option<&Path>,
) -> (Vec<PathBuf>, u64) {
    let metrics = rempart::metrics::Metrics::new();
    let auditor = Auditor::start(
        AuditSettings {
            dir: dir.to_owned(),
            client_ip: ClientIpMode::None,
            queue,
            max_file_bytes: 2000,
            retention_days: 0,
            seal: key.map(|key| SealSettings {
                key: key.to_owned(),
                interval: Duration::from_secs(3600),
                required: true,
            }),
        },
        metrics.clone(),
    )
    .unwrap();
    for i in 0..n {
        auditor.record(
            Event::Redirect(RedirectRecord {
                qname: format!("q{i}.bad.test."),
                qtype: "A".into(),
                rule: "bad.test".into(),
                reference: "REF-0001".into(),
                category: "terrorism".into(),
                list: None,
                serial: 1,
                digest: "00".repeat(32),
                answer: "redirect".into(),
                transport: "udp".into(),
                client: None,
            }),
            None,
        );
        // Small batches (each one is written whole to one file), so that
        // the trail spans files, unless the test wants a burst.
        if queue > 16 && i % 5 == 4 {
            auditor.flush();
        }
    }
    auditor.flush();
    auditor.stop();
    let rendered = metrics.render(0);
    let lost = rendered
        .lines()
        .find(|l| l.starts_with("rempart_audit_lost_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0) as u64;
    (trail::files(dir).unwrap(), lost)
}

fn verify(dir: &Path) -> (i32, String) {
    let o = rempart_cli(&["audit", "verify", s(dir)]);
    (
        o.status.code().unwrap(),
        String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout),
    )
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in std::fs::read_dir(from).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
    }
}

fn edit_lines(file: &Path, f: impl FnOnce(&mut Vec<String>)) {
    let text = std::fs::read_to_string(file).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    f(&mut lines);
    let mut out = lines.join("\n");
    out.push('\n');
    std::fs::write(file, out).unwrap();
}

#[test]
fn verify_accepts_an_intact_trail_and_names_the_first_break() {
    let tmp = tempfile::tempdir().unwrap();
    let good = tmp.path().join("good");
    let (files, lost) = write_trail(&good, 60, 100_000);
    assert_eq!(lost, 0);
    assert!(files.len() >= 4, "rotation by size: {files:?}");
    let (code, out) = verify(&good);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("60 record(s)"), "{out}");
    // A trail that cannot be read is not a broken one: exit 3, not 1.
    let (code, out) = verify(&tmp.path().join("nowhere"));
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("cannot list the trail"), "{out}");

    let name = |i: usize| files[i].file_name().unwrap().to_str().unwrap().to_owned();
    type Tamper = Box<dyn Fn(&Path)>;
    let middle = name(1);
    let cases: Vec<(&str, Tamper, String)> = vec![
        (
            "an edited byte",
            Box::new({
                let m = middle.clone();
                move |d: &Path| {
                    let f = d.join(&m);
                    let mut bytes = std::fs::read(&f).unwrap();
                    let i = bytes
                        .windows(3)
                        .position(|w| w == b"q1")
                        .map_or(40, |p| p + 1);
                    let i = bytes
                        .iter()
                        .enumerate()
                        .skip(i)
                        .find(|(_, b)| b.is_ascii_digit())
                        .map(|(i, _)| i)
                        .unwrap();
                    bytes[i] = if bytes[i] == b'9' { b'8' } else { bytes[i] + 1 };
                    std::fs::write(&f, bytes).unwrap();
                }
            }),
            middle.clone(),
        ),
        (
            "a deleted line",
            Box::new({
                let m = middle.clone();
                move |d: &Path| {
                    edit_lines(&d.join(&m), |l| {
                        l.remove(1);
                    })
                }
            }),
            middle.clone(),
        ),
        (
            "an inserted line",
            Box::new({
                let m = middle.clone();
                move |d: &Path| {
                    edit_lines(&d.join(&m), |l| {
                        let copy = l[0].clone();
                        l.insert(1, copy);
                    })
                }
            }),
            middle.clone(),
        ),
        (
            "a reordering",
            Box::new({
                let m = middle.clone();
                move |d: &Path| edit_lines(&d.join(&m), |l| l.swap(0, 1))
            }),
            middle.clone(),
        ),
        (
            "a removed file in the middle",
            Box::new({
                let m = middle.clone();
                move |d: &Path| std::fs::remove_file(d.join(&m)).unwrap()
            }),
            name(2),
        ),
        (
            "a record rewritten with a recomputed own hash but a stale successor",
            Box::new({
                let m = middle.clone();
                move |d: &Path| {
                    edit_lines(&d.join(&m), |l| {
                        let mut line: Line = serde_json::from_str(&l[0]).unwrap();
                        if let Event::Redirect(r) = &mut line.event {
                            r.qname = "innocent.example.".into();
                        }
                        l[0] = serde_json::to_string(&line).unwrap();
                    })
                }
            }),
            middle.clone(),
        ),
    ];
    for (i, (what, tamper, file)) in cases.iter().enumerate() {
        let d = tmp.path().join(format!("case{i}"));
        copy_dir(&good, &d);
        tamper(&d);
        let (code, out) = verify(&d);
        assert_eq!(code, 1, "{what}: {out}");
        assert!(
            out.contains(file.as_str()),
            "{what}: names the file {file}: {out}"
        );
        assert!(
            out.contains(&format!("{file}:")),
            "{what}: names the line: {out}"
        );
    }
}

#[test]
fn overflow_is_counted_and_written_into_the_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let n = 50_000;
    let (_files, lost) = write_trail(tmp.path(), n, 16);
    assert!(
        lost > 0,
        "a 16-record queue under a burst of {n} loses records"
    );
    let records = lines(tmp.path());
    let written = kind(&records, "redirect").len() as u64;
    let declared: u64 = kind(&records, "loss")
        .iter()
        .map(|r| r["lost"].as_u64().unwrap())
        .sum();
    assert_eq!(declared, lost, "every lost record is declared in the chain");
    assert_eq!(written + lost, n as u64, "nothing is lost silently");
    assert_eq!(verify(tmp.path()).0, 0, "the chain stays intact");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_list_is_recorded_and_stays_in_force() {
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    let fmt = |t: time::OffsetDateTime| {
        t.replace_nanosecond(0)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let now = time::OffsetDateTime::now_utc();
    let text = list_text(3, ENTRIES)
        .replace("2026-01-01T00:00:00Z", &fmt(now - time::Duration::hours(1)))
        .replace(
            "2099-01-01T00:00:00Z",
            &fmt(now + time::Duration::seconds(2)),
        );
    setup.key.write_signed(&setup.list_path, &text);
    let rempart = Rempart::start(&setup.config(upstream.addr, &Extra::default())).await;
    let deadline = SystemTime::now() + Duration::from_secs(15);
    let expired = loop {
        flush(&rempart);
        let records = lines(&setup.audit_dir());
        if let Some(r) = kind(&records, "list")
            .into_iter()
            .find(|r| r["event"] == "expired")
        {
            break r.clone();
        }
        assert!(
            SystemTime::now() < deadline,
            "no expired record: {records:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(expired["serial"], 3);
    let m = query(
        rempart.addr,
        Transport::Udp,
        "bad.test.",
        RecordType::A,
        Ask::default(),
    )
    .await;
    assert_eq!(
        ede(&m).map(|e| e.0),
        Some(16),
        "an expired list stays in force until a newer one"
    );
    // Once, not every second.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    flush(&rempart);
    let records = lines(&setup.audit_dir());
    assert_eq!(
        kind(&records, "list")
            .iter()
            .filter(|r| r["event"] == "expired")
            .count(),
        1
    );
    rempart.stop().await;
}

/// `audit verify [--key KEY] DIR`: exit code, stdout and stderr.
fn verify_key(dir: &Path, key: Option<&Path>) -> (i32, String) {
    let mut args = vec!["audit", "verify"];
    if let Some(k) = key {
        args.extend(["--key", s(k)]);
    }
    args.push(s(dir));
    let o = rempart_cli(&args);
    (
        o.status.code().unwrap(),
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    )
}

/// A sealing key made for `dir`'s trail (as `setup-keys` does), and the
/// auditor's verification key saved to a file.
fn keys(tmp: &Path) -> (PathBuf, PathBuf) {
    let key = SealingKey::generate().unwrap();
    let key_file = tmp.join("seal.key");
    key.write(&key_file).unwrap();
    let pk_file = tmp.join("auditor.pub");
    std::fs::write(&pk_file, format!("{}\n", key.verifying_key())).unwrap();
    (key_file, pk_file)
}

/// A sealed trail of `n` redirects in `tmp/name`, and the auditor's key
/// file.
fn sealed_trail(tmp: &Path, name: &str, n: usize) -> (PathBuf, PathBuf) {
    let (key_file, pk_file) = keys(tmp);
    let dir = tmp.join(name);
    write_trail_sealed(&dir, n, 100_000, Some(&key_file));
    (dir, pk_file)
}

/// The trail's lines, file by file.
fn read_lines(dir: &Path) -> Vec<(PathBuf, Vec<String>)> {
    trail::files(dir)
        .unwrap()
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            (f, text.lines().map(str::to_owned).collect())
        })
        .collect()
}

fn sha256_hex(line: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(line.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The forger's script: edit the lines (flattened across files, keeping
/// each file's count where it can), then renumber `seq` and recompute
/// every `prev` from the first record, byte for byte as the writer would.
fn forge(dir: &Path, edit: impl FnOnce(&mut Vec<String>)) {
    let files = read_lines(dir);
    let sizes: Vec<usize> = files.iter().map(|(_, l)| l.len()).collect();
    let mut all: Vec<String> = files.iter().flat_map(|(_, l)| l.clone()).collect();
    let first_seq = field_u64(&all[0], "seq");
    let mut prev = field_str(&all[0], "prev");
    edit(&mut all);
    for (i, line) in all.iter_mut().enumerate() {
        let seq = first_seq + i as u64;
        *line = set_field(line, "seq", &seq.to_string(), false);
        *line = set_field(line, "prev", &prev, true);
        prev = sha256_hex(line);
    }
    let mut at = 0;
    for (k, ((path, _), size)) in files.iter().zip(&sizes).enumerate() {
        let end = if k + 1 == files.len() {
            all.len()
        } else {
            (at + size).min(all.len())
        };
        if end == at {
            std::fs::remove_file(path).unwrap();
            continue;
        }
        let mut text = all[at..end].join("\n");
        text.push('\n');
        std::fs::write(path, text).unwrap();
        at = end;
    }
}

fn field_u64(line: &str, name: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v[name].as_u64().unwrap()
}

fn field_str(line: &str, name: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v[name].as_str().unwrap().to_owned()
}

/// Replace the value of the top-level field `name` in place, keeping every
/// other byte.
fn set_field(line: &str, name: &str, value: &str, quoted: bool) -> String {
    let key = format!("\"{name}\":");
    let start = line.find(&key).unwrap() + key.len();
    let end = if quoted {
        start + 1 + line[start + 1..].find('"').unwrap() + 1
    } else {
        start + line[start..].find([',', '}']).unwrap()
    };
    let value = if quoted {
        format!("\"{value}\"")
    } else {
        value.to_owned()
    };
    format!("{}{}{}", &line[..start], value, &line[end..])
}

fn is_seal(line: &str) -> bool {
    line.contains("\"kind\":\"seal\"")
}

#[test]
fn verify_with_the_key_detects_every_forgery_and_says_when_sealed() {
    let tmp = tempfile::tempdir().unwrap();
    let (key_file, pk_file) = keys(tmp.path());
    let good = tmp.path().join("good");
    let files = write_trail_sealed(&good, 60, 100_000, Some(&key_file)).0;
    assert!(files.len() >= 4, "rotation by size: {files:?}");
    let seals = std::fs::read_to_string(good.join("seals.jsonl")).unwrap();
    assert!(
        seals.lines().count() >= 4,
        "a seal per rotation and at stop"
    );
    assert!(
        !std::fs::read_to_string(&key_file)
            .unwrap()
            .contains("epoch 0\n"),
        "the key evolved"
    );

    let (code, out) = verify_key(&good, Some(&pk_file));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("sealed up to 20"), "{out}");
    assert!(!out.contains("not sealed"), "sealed at stop: {out}");
    let (code, out) = verify_key(&good, None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("proves nothing"), "{out}");

    type Forgery = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Forgery, &str)> = vec![
        (
            "records removed, the chain re-hashed",
            Box::new(|d: &Path| {
                forge(d, |l| {
                    l.remove(3);
                    l.remove(3);
                })
            }),
            "broken: ",
        ),
        (
            "a record rewritten, the chain re-hashed",
            Box::new(|d: &Path| {
                forge(d, |l| {
                    l[2] = l[2].replace("q2.bad.test.", "innocent.example.");
                })
            }),
            "broken: ",
        ),
        (
            "a record inserted, the chain re-hashed",
            Box::new(|d: &Path| {
                forge(d, |l| {
                    let copy = l[1].clone();
                    l.insert(2, copy);
                })
            }),
            "broken: ",
        ),
        (
            "records reordered, the chain re-hashed",
            Box::new(|d: &Path| forge(d, |l| l.swap(1, 2))),
            "broken: ",
        ),
        (
            "the tail cut, seals included",
            Box::new(|d: &Path| {
                forge(d, |l| {
                    // Back to before the last seal's head.
                    let last_seal = l.iter().rposition(|x| is_seal(x)).unwrap();
                    l.truncate(last_seal - 1);
                })
            }),
            "cut off the end",
        ),
        (
            "the newest file deleted",
            Box::new(|d: &Path| {
                std::fs::remove_file(trail::files(d).unwrap().pop().unwrap()).unwrap()
            }),
            "cut off the end",
        ),
        (
            "the oldest file deleted",
            Box::new(|d: &Path| std::fs::remove_file(&trail::files(d).unwrap()[0]).unwrap()),
            "TAMPERING",
        ),
        (
            "the last seal removed from both the log and the trail, the chain re-hashed",
            Box::new(|d: &Path| {
                let log = d.join("seals.jsonl");
                let text = std::fs::read_to_string(&log).unwrap();
                let mut lines: Vec<&str> = text.lines().collect();
                lines.pop();
                std::fs::write(&log, lines.join("\n") + "\n").unwrap();
                forge(d, |l| {
                    let last_seal = l.iter().rposition(|x| is_seal(x)).unwrap();
                    l.remove(last_seal);
                    l[0] = l[0].replace("q0.bad.test.", "innocent.example.");
                })
            }),
            "broken: ",
        ),
    ];
    for (i, (what, forgery, says)) in cases.iter().enumerate() {
        let d = tmp.path().join(format!("case{i}"));
        copy_dir(&good, &d);
        forgery(&d);
        let (code, out) = verify_key(&d, Some(&pk_file));
        assert_eq!(code, 1, "{what}: {out}");
        assert!(out.contains(says), "{what}: says {says:?}: {out}");
    }
    // The re-hashed forgery verifies without the key: that is why the
    // output says so.
    let d = tmp.path().join("unkeyed");
    copy_dir(&good, &d);
    forge(&d, |l| {
        l.remove(3);
    });
    let (code, out) = verify_key(&d, None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("proves nothing"), "{out}");

    // Another trail's key: refused.
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let (_, other_pk) = keys(&other);
    let (code, out) = verify_key(&good, Some(&other_pk));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("wrong verification key"), "{out}");
}

/// A regression: a tampered record whose `prev` holds multibyte characters
/// made `audit verify` panic (exit 101) while naming it.
#[test]
fn a_multibyte_prev_is_a_break_not_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _) = sealed_trail(tmp.path(), "t", 8);
    let f = &trail::files(&dir).unwrap()[0];
    let text = std::fs::read_to_string(f).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[1] = set_field(&lines[1], "prev", &"é".repeat(32), true);
    std::fs::write(f, lines.join("\n") + "\n").unwrap();
    let (code, out) = verify_key(&dir, None);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("prev éééééééééééééééé does not follow"),
        "{out}"
    );
}

/// `serve` with `audit.seal = true`, through the real binary.
struct Served {
    _tmp: tempfile::TempDir,
    config: PathBuf,
    audit: PathBuf,
    key: PathBuf,
    stderr: PathBuf,
}

fn sealed_setup() -> (Setup, Served) {
    served_with("seal = true\nseal_key = \"{key}\"\nseal_interval_s = 1\n")
}

/// A config for the binary, `audit` lines added to `[audit]` (`{key}`
/// stands for the sealing key's path).
fn served_with(audit: &str) -> (Setup, Served) {
    let setup = Setup::new(&[("bad.test", "subtree", "terrorism", "REF-1")]);
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("keys").join("seal.key");
    let audit_extra: &'static str = Box::leak(
        audit
            .replace("{key}", &key.display().to_string())
            .into_boxed_str(),
    );
    let text = setup.config(
        "127.0.0.1:9".parse().unwrap(),
        &Extra {
            audit: audit_extra,
            ..Extra::default()
        },
    );
    let config = tmp.path().join("rempart.toml");
    std::fs::write(&config, text).unwrap();
    let served = Served {
        audit: setup.audit_dir(),
        stderr: tmp.path().join("stderr"),
        _tmp: tmp,
        config,
        key,
    };
    (setup, served)
}

fn spawn_serve(served: &Served) -> std::process::Child {
    spawn_serve_at(served, None)
}

/// `serve`, its clock moved by `offset` if given (libfaketime, from
/// Debian's faketime, preloaded into the binary itself: the `faketime`
/// wrapper would take the SIGTERM meant for it).
fn spawn_serve_at(served: &Served, offset: Option<&str>) -> std::process::Child {
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&served.stderr)
        .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rempart"));
    if let Some(o) = offset {
        let lib = std::fs::read_dir("/usr/lib")
            .unwrap()
            .map(|d| d.unwrap().path().join("faketime/libfaketimeMT.so.1"))
            .find(|p| p.exists())
            .expect("libfaketime (Debian package faketime)");
        cmd.env("LD_PRELOAD", lib).env("FAKETIME", o);
    }
    cmd.args(["serve", "--config", s(&served.config)])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::from(stderr))
        .spawn()
        .unwrap()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGTERM, then the exit code, which must be 0 (a clean stop).
fn stop(mut child: std::process::Child) {
    let sent = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(sent.success());
    assert_eq!(child.wait().unwrap().code(), Some(0), "exit after SIGTERM");
}

fn seals(audit: &Path) -> Vec<Seal> {
    std::fs::read_to_string(audit.join("seals.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| Seal::from_log_line(l.as_bytes()).unwrap())
        .collect()
}

#[test]
fn setup_keys_then_serve_seals_and_every_seal_is_in_the_log() {
    let (_setup, served) = sealed_setup();
    // audit.seal = true and no key yet: a config error (exit 1) naming
    // the key and the command that makes it, not an unsealed trail.
    let o = rempart_cli(&["serve", "--config", s(&served.config)]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("rempart audit setup-keys"), "{err}");
    assert!(err.contains(s(&served.key)), "{err}");

    let o = rempart_cli(&["audit", "setup-keys", "--config", s(&served.config)]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let out = String::from_utf8(o.stdout).unwrap();
    let pk_line = out.lines().last().unwrap();
    assert!(pk_line.starts_with("rempart-seal-v1:"), "{out}");
    let pk_file = served.key.with_file_name("auditor.pub");
    std::fs::write(&pk_file, format!("{pk_line}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&served.key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // A second set-up would orphan the auditor's key: refused.
    let o = rempart_cli(&["audit", "setup-keys", "--config", s(&served.config)]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");

    let child = spawn_serve(&served);
    // The list applied at start is written, then sealed within a second.
    wait_until("a periodic seal", || !seals(&served.audit).is_empty());
    stop(child);

    let all = seals(&served.audit);
    assert!(all.len() >= 2, "a periodic seal and one at stop: {all:?}");
    let log = std::fs::read_to_string(&served.stderr).unwrap();
    for seal in &all {
        assert!(
            log.contains(&seal.journal_line()),
            "the journal has the seal of epoch {}: {log}",
            seal.epoch
        );
    }
    let (code, out) = verify_key(&served.audit, Some(&pk_file));
    assert_eq!(code, 0, "{out}");
    let last = all.last().unwrap();
    assert!(
        out.contains(&format!(
            "sealed up to {} (seq {}, epoch {}, head {})",
            last.time_text(),
            last.head.seq,
            last.epoch,
            last.head.hash
        )),
        "{out}"
    );

    // A restart goes on with the evolved key, and the chain of seals too.
    let child = spawn_serve(&served);
    wait_until("a seal after restart", || {
        seals(&served.audit).len() > all.len()
    });
    stop(child);
    let (code, out) = verify_key(&served.audit, Some(&pk_file));
    assert_eq!(code, 0, "{out}");
}

/// The start-up warning of a trail without a sealing key.
const NOT_SEALED: &str = "hash-chained but NOT sealed";

#[test]
fn sealing_is_on_once_a_key_is_set_up_unless_turned_off_as_journald_does() {
    // audit.seal left out, no key: serves, hash-chained only, one warning
    // saying how to seal.
    let (_setup, served) = served_with("seal_key = \"{key}\"\nseal_interval_s = 1\n");
    let child = spawn_serve(&served);
    wait_until("the start record", || starts(&served.audit) == 1);
    stop(child);
    let log = std::fs::read_to_string(&served.stderr).unwrap();
    assert_eq!(log.matches(NOT_SEALED).count(), 1, "{log}");
    assert!(log.contains("rempart audit setup-keys"), "{log}");
    assert!(seals(&served.audit).is_empty());

    // The same config once the key exists: sealed, no warning.
    let o = rempart_cli(&["audit", "setup-keys", "--config", s(&served.config)]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    std::fs::write(&served.stderr, "").unwrap();
    let child = spawn_serve(&served);
    wait_until("a seal", || !seals(&served.audit).is_empty());
    stop(child);
    let log = std::fs::read_to_string(&served.stderr).unwrap();
    assert!(!log.contains(NOT_SEALED), "{log}");

    // The key gone from under a sealed trail: not a silent downgrade.
    let key = std::fs::read(&served.key).unwrap();
    std::fs::remove_file(&served.key).unwrap();
    let o = rempart_cli(&["serve", "--config", s(&served.config)]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("this trail was sealed"), "{err}");
    assert!(err.contains(s(&served.key)), "{err}");
    std::fs::write(&served.key, key).unwrap();

    // audit.seal = false with the key there: never sealed.
    let text = std::fs::read_to_string(&served.config).unwrap();
    std::fs::write(
        &served.config,
        text.replace("[audit]\n", "[audit]\nseal = false\n"),
    )
    .unwrap();
    let before = seals(&served.audit).len();
    std::fs::write(&served.stderr, "").unwrap();
    let child = spawn_serve(&served);
    wait_until("the start record", || starts(&served.audit) == 3);
    std::thread::sleep(Duration::from_millis(1500));
    stop(child);
    assert_eq!(
        seals(&served.audit).len(),
        before,
        "no seal with seal = false"
    );
    let log = std::fs::read_to_string(&served.stderr).unwrap();
    assert!(log.contains("audit.seal = false"), "{log}");
}

/// `audit report DIR [args]`: exit code, stdout and stderr.
fn report(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["audit", "report"];
    all.extend(args);
    all.push(s(dir));
    let o = rempart_cli(&all);
    (
        o.status.code().unwrap(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn report_checks_the_chain_first_and_refuses_a_broken_one() {
    let tmp = tempfile::tempdir().unwrap();
    let (good, pk_file) = sealed_trail(tmp.path(), "good", 30);

    let (code, out, err) = report(&good, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Chain checked first: intact (3"), "{out}");
    assert!(out.contains("proves nothing"), "{out}");
    let (code, out, err) = report(&good, &["--key", s(&pk_file)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("; sealed up to 20"), "{out}");
    let (code, out, _) = report(&good, &["--format", "json"]);
    assert_eq!(code, 0);
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["chain"]["intact"], true, "{out}");
    // The CSV's first row after the header is the chain's.
    let csv_chain = |dir: &Path, args: &[&str]| {
        let mut args = args.to_vec();
        args.extend(["--format", "csv"]);
        let (code, out, err) = report(dir, &args);
        assert_eq!(code, 0, "{err}");
        out.lines().nth(1).unwrap().to_owned()
    };
    assert!(csv_chain(&good, &[]).starts_with("chain,intact,"));

    // The 20-line forgery: intact without the key, broken with it.
    let forged = tmp.path().join("forged");
    copy_dir(&good, &forged);
    forge(&forged, |l| {
        l.remove(3);
    });
    let (code, _, err) = report(&forged, &["--key", s(&pk_file)]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("BROKEN at "), "{err}");
    let (code, out, err) = report(&forged, &["--key", s(&pk_file), "--allow-broken"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Chain checked first: BROKEN at "), "{out}");
    assert!(
        csv_chain(&forged, &["--allow-broken", "--key", s(&pk_file)]).starts_with("chain,broken,")
    );

    // A careless edit: broken without a key too.
    let edited = tmp.path().join("edited");
    copy_dir(&good, &edited);
    let first = trail::files(&edited).unwrap()[0].clone();
    let text = std::fs::read_to_string(&first).unwrap();
    std::fs::write(&first, text.replacen("q1.bad.test.", "q9.bad.test.", 1)).unwrap();
    let (code, _, err) = report(&edited, &[]);
    assert_eq!(code, 1, "{err}");
}

/// A regression: a batch being written when the report runs left an
/// unterminated last line, and the report failed on it.
#[test]
fn report_leaves_out_a_torn_last_line_of_the_newest_file_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t");
    let (files, _) = write_trail(&dir, 12, 100_000);
    let newest = files.last().unwrap();
    let mut text = std::fs::read(newest).unwrap();
    text.extend_from_slice(br#"{"v":2,"seq":99,"time":"2026-"#);
    std::fs::write(newest, text).unwrap();
    let (code, out, err) = report(&dir, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Redirects: 12"), "{out}");
    assert!(out.contains("unterminated line"), "{out}");
    let (code, out) = verify_key(&dir, None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("unterminated line"), "{out}");
}

/// The `process` records with `event` = `start`.
fn starts(audit: &Path) -> usize {
    if !audit.exists() {
        return 0;
    }
    kind(&lines(audit), "process")
        .iter()
        .filter(|r| r["event"] == "start")
        .count()
}

#[test]
fn sigkill_then_start_leaves_a_loss_record_and_process_records_name_the_host() {
    let (_setup, served) = served_with("");
    let mut child = spawn_serve(&served);
    wait_until("the first start record", || starts(&served.audit) == 1);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(served.audit.join("writer.running").exists());
    let child = spawn_serve(&served);
    wait_until("the second start record", || starts(&served.audit) == 2);
    stop(child);
    assert!(
        !served.audit.join("writer.running").exists(),
        "a clean stop"
    );

    let records = lines(&served.audit);
    let loss = kind(&records, "loss");
    assert_eq!(loss.len(), 1, "{records:?}");
    assert!(
        loss[0]["reason"]
            .as_str()
            .unwrap()
            .contains("did not stop cleanly"),
        "{loss:?}"
    );
    let at = |r: &Value| r["seq"].as_u64().unwrap();
    let process = kind(&records, "process");
    assert!(
        at(loss[0]) < at(process[1]),
        "the loss comes before the second start"
    );
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for p in &process {
        assert_eq!(p["host"], host.trim(), "{p}");
    }
    // One clean stop after the SIGKILL: no second loss record.
    let child = spawn_serve(&served);
    wait_until("the third start record", || starts(&served.audit) == 3);
    stop(child);
    assert_eq!(kind(&lines(&served.audit), "loss").len(), 1);
    let (code, out) = verify_key(&served.audit, None);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_clock_500_days_ahead_deletes_nothing_and_jumps_are_recorded() {
    let (_setup, served) = served_with("retention_days = 400\n");
    let child = spawn_serve(&served);
    wait_until("the first start record", || starts(&served.audit) == 1);
    stop(child);
    let before = trail::files(&served.audit).unwrap();
    assert_eq!(before.len(), 1);

    // 500 days ahead: the old file is 500 days old by the clock, and
    // 400 days of retention would delete it.
    let child = spawn_serve_at(&served, Some("+500d"));
    wait_until("a start 500 days ahead", || starts(&served.audit) == 2);
    stop(child);
    let after = trail::files(&served.audit).unwrap();
    assert!(after.contains(&before[0]), "nothing deleted: {after:?}");
    assert_eq!(after.len(), 2, "{after:?}");
    let clock = kind(&lines(&served.audit), "clock")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(clock.len(), 1, "{clock:?}");
    assert_eq!(clock[0]["jump"], "forward");
    assert!(clock[0]["seconds"].as_i64().unwrap() >= 500 * 86_400 - 60);

    // Back to the real clock: a jump backwards is recorded, and the new
    // file is not named for a day before the last one (the chain would
    // read out of order).
    let child = spawn_serve(&served);
    wait_until("a start back in time", || starts(&served.audit) == 3);
    stop(child);
    let records = lines(&served.audit);
    let clock = kind(&records, "clock");
    assert_eq!(clock.len(), 2, "{clock:?}");
    assert_eq!(clock[1]["jump"], "backwards");
    let files = trail::files(&served.audit).unwrap();
    assert!(files.contains(&before[0]));
    let (code, out) = verify_key(&served.audit, None);
    assert_eq!(code, 0, "{out}");
}

/// A trail written before schema version 2 (as version 1 wrote it, byte
/// for byte) still verifies, and the current writer goes on in the same
/// chain, sealed.
#[test]
fn a_version_1_trail_still_verifies_and_is_continued_sealed() {
    let tmp = tempfile::tempdir().unwrap();
    let (key_file, pk_file) = keys(tmp.path());
    let dir = tmp.path().join("t");
    std::fs::create_dir(&dir).unwrap();
    let bodies = [
        r#""kind":"process","event":"start","version":"0.1.0","pid":42"#,
        r#""kind":"redirect","qname":"bad.test.","qtype":"A","rule":"bad.test","reference":"DEMO-2026-0001","category":"terrorism","serial":2026112201,"digest":"edbc","answer":"redirect","transport":"udp","client":"127.0.0.0/24""#,
        r#""kind":"process","event":"stop","version":"0.1.0","pid":42"#,
    ];
    let mut prev = "0".repeat(64);
    let mut text = String::new();
    for (i, body) in bodies.iter().enumerate() {
        let line = format!(
            r#"{{"v":1,"seq":{},"time":"2026-11-23T02:25:0{i}.114Z","prev":"{prev}",{body}}}"#,
            i + 1
        );
        prev = sha256_hex(&line);
        text.push_str(&line);
        text.push('\n');
    }
    std::fs::write(dir.join("rempart-audit-20261123-000.jsonl"), text).unwrap();
    let (code, out) = verify_key(&dir, None);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("3 record(s)"), "{out}");

    write_trail_sealed(&dir, 5, 100_000, Some(&key_file));
    let (code, out) = verify_key(&dir, Some(&pk_file));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("sealed up to"), "{out}");
    let records = lines(&dir);
    assert_eq!(records[3]["v"], 2);
    assert_eq!(records[3]["prev"], prev.as_str(), "the same chain");
}

/// The report an auditor can read: the first list owes no delay, an
/// `issued` in the future is no negative delay, durations in days and
/// hours with a legend, the signing key per version, the stops, and every
/// section in every format.
#[test]
fn the_report_counts_delays_fairly_and_every_format_has_every_section() {
    use rempart::audit::{EntryChange, ListEvent, Loss, Process};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("t");
    let at = |s: &str| SystemTime::from(rempart::text::parse_rfc3339(s).unwrap());
    let applied = |serial: u64, issued: &str| {
        Event::List(ListEvent {
            event: "applied".into(),
            serial: Some(serial),
            digest: Some("ab".repeat(32)),
            issuer: Some("T".into()),
            issued: Some(issued.into()),
            expires: Some("2099-01-01T00:00:00Z".into()),
            key_id: Some(format!("KEY{serial}")),
            ..ListEvent::default()
        })
    };
    let entry = |serial: u64, name: &str, issued: &str| {
        Event::Entry(EntryChange {
            change: "added".into(),
            // Written as before several lists: the report reads it as `main`.
            list: None,
            name: name.into(),
            match_kind: Some("subtree".into()),
            reference: format!("REF-{name}"),
            category: "terrorism".into(),
            serial,
            issued: issued.into(),
            was: None,
        })
    };
    let auditor = Auditor::start(
        AuditSettings {
            dir: dir.clone(),
            client_ip: ClientIpMode::None,
            queue: 1000,
            max_file_bytes: 1 << 20,
            retention_days: 0,
            seal: None,
        },
        rempart::metrics::Metrics::new(),
    )
    .unwrap();
    let events = [
        (
            "2026-11-01T00:00:00Z",
            Event::Process(Process::now("start")),
        ),
        // Installed ten days after the first list was issued: not late.
        ("2026-11-01T00:00:01Z", applied(1, "2026-10-22T00:00:00Z")),
        (
            "2026-11-01T00:00:01Z",
            entry(1, "first.test", "2026-10-22T00:00:00Z"),
        ),
        // Issued "in the future" by a wrong clock: no negative delay.
        ("2026-11-02T00:00:00Z", applied(2, "2026-11-02T00:10:00Z")),
        (
            "2026-11-02T00:00:00Z",
            entry(2, "future.test", "2026-11-02T00:10:00Z"),
        ),
        // Two days and three hours: late.
        ("2026-11-05T03:00:00Z", applied(3, "2026-11-03T00:00:00Z")),
        (
            "2026-11-05T03:00:00Z",
            entry(3, "late.test", "2026-11-03T00:00:00Z"),
        ),
        ("2026-11-06T00:00:00Z", Event::Process(Process::now("stop"))),
        (
            "2026-11-06T02:00:00Z",
            Event::Process(Process::now("start")),
        ),
        (
            "2026-11-06T02:00:01Z",
            Event::List(ListEvent {
                event: "refused".into(),
                source: Some("list.txt".into()),
                reason: Some("bad signature".into()),
                ..ListEvent::default()
            }),
        ),
        // Started with no valid list: unfiltered to the end of the trail.
        (
            "2026-11-06T02:00:01Z",
            Event::List(ListEvent {
                event: "unfiltered".into(),
                reason: Some("list.txt: no such file".into()),
                ..ListEvent::default()
            }),
        ),
        (
            "2026-11-06T02:00:02Z",
            Event::Loss(Loss {
                lost: 7,
                reason: "test".into(),
            }),
        ),
    ];
    for (time, event) in events {
        auditor.record_waiting_at(event, at(time));
    }
    auditor.flush();
    auditor.stop();

    let (code, out, err) = report(&dir, &["--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let json: Value = serde_json::from_str(&out).unwrap();
    let obligations = |section: &str| -> Vec<String> {
        json[section]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["obligation"].as_str().unwrap().to_owned())
            .collect()
    };
    for section in ["versions", "changes"] {
        assert_eq!(
            obligations(section),
            ["first_list", "issued_later", "late"],
            "{section}"
        );
        assert_eq!(json[section][1]["delay_seconds"], 0, "not negative");
    }
    assert_eq!(json["versions"][2]["key_id"], "KEY3");
    assert_eq!(json["stopped"].as_array().unwrap().len(), 1);
    assert_eq!(json["stopped"][0]["clean"], true);
    assert_eq!(json["lost"], 7);
    assert_eq!(json["refused"].as_array().unwrap().len(), 1);
    assert_eq!(json["unfiltered"].as_array().unwrap().len(), 1);
    assert_eq!(json["unfiltered"][0]["until"], "end_of_trail");
    assert_eq!(json["unfiltered"][0]["to"], Value::Null);

    let (_, text, _) = report(&dir, &[]);
    for needle in [
        "2 d 03 h 00 min",
        "NO (late)",
        "n/a: first list",
        "n/a: issued later",
        "d = days, h = hours",
        "KEY3",
        "Lists refused: 1",
        "bad signature",
        "Records lost: 7",
        "from 2026-11-06T00:00:00.000Z to 2026-11-06T02:00:00.000Z  stopped",
        "from 2026-11-06T02:00:01.000Z to -  still unfiltered at the end of the trail; no list because: list.txt: no such file",
    ] {
        assert!(text.contains(needle), "{needle:?} in {text}");
    }
    let (_, csv, _) = report(&dir, &["--format", "csv"]);
    // (No redirects here: no entry, category or day rows.)
    for section in [
        "chain",
        "version",
        "change",
        "refused",
        "lost",
        "stopped",
        "unfiltered",
    ] {
        assert!(
            csv.lines().any(|l| l.starts_with(&format!("{section},"))),
            "{section} in {csv}"
        );
    }
    assert!(csv.contains(",first_list"), "{csv}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_entry_is_recorded_and_every_report_format_shows_it() {
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(&[
        ("moved.test", "subtree", "terrorism", "REF-1"),
        ("kept.test", "exact", "child-abuse", "REF-K"),
    ]);
    let rempart = Rempart::start(&setup.config(upstream.addr, &Extra::default())).await;
    // Version 2 keeps both names; one of them now matches the name only,
    // under another decision.
    let v2 = list_text(
        2,
        &[
            ("moved.test", "exact", "terrorism", "REF-2"),
            ("kept.test", "exact", "child-abuse", "REF-K"),
        ],
    );
    setup.key.write_signed(&setup.list_path, &v2);
    let outcome = rempart.service().admission.reread().await;
    assert!(format!("{outcome:?}").contains("Applied"), "{outcome:?}");
    rempart.stop().await;

    let dir = setup.audit_dir();
    let records = lines(&dir);
    let v2_entries: Vec<&Value> = kind(&records, "entry")
        .into_iter()
        .filter(|e| e["serial"] == 2)
        .collect();
    assert_eq!(
        v2_entries.len(),
        1,
        "only the changed name: {v2_entries:#?}"
    );
    let e = v2_entries[0];
    assert_eq!(e["change"], "changed");
    assert_eq!(e["name"], "moved.test");
    assert_eq!(e["match"], "exact");
    assert_eq!(e["reference"], "REF-2");
    assert_eq!(e["was"]["match"], "subtree");
    assert_eq!(e["was"]["reference"], "REF-1");
    assert_eq!(e["was"]["category"], "terrorism");
    let applied = kind(&records, "list");
    assert_eq!(applied.last().unwrap()["changed"], 1);

    let (code, out, err) = report(&dir, &["--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let json: Value = serde_json::from_str(&out).unwrap();
    let changed: Vec<&Value> = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["change"] == "changed")
        .collect();
    assert_eq!(changed.len(), 1, "{json:#}");
    assert_eq!(changed[0]["name"], "moved.test");
    assert_eq!(changed[0]["match"], "exact");
    assert_eq!(changed[0]["was"]["match"], "subtree");
    assert_eq!(changed[0]["was"]["reference"], "REF-1");
    let names = &json["versions"][1]["names"];
    assert_eq!(
        (&names["added"], &names["removed"], &names["changed"]),
        (&Value::from(0), &Value::from(0), &Value::from(1)),
        "{json:#}"
    );
    assert_eq!(json["versions"][0]["names"]["added"], 2);

    let (_, text, _) = report(&dir, &[]);
    let row = text
        .lines()
        .find(|l| {
            l.trim_start().starts_with("main ")
                && l.contains(" changed ")
                && l.contains("moved.test")
        })
        .unwrap_or_else(|| panic!("a changed row in {text}"));
    assert!(row.contains("exact") && row.contains("REF-2"), "{row}");
    assert!(
        text.contains(
            "was: match subtree, reference REF-1, category terrorism; now: match exact, reference REF-2, category terrorism"
        ),
        "{text}"
    );

    let (_, csv, _) = report(&dir, &["--format", "csv"]);
    // (No field here holds a comma or a quote: a plain split reads it.)
    let mut rows = csv.lines().map(|l| l.split(',').collect::<Vec<&str>>());
    let header = rows.next().unwrap();
    let col = |r: &[&str], name: &str| -> String {
        let i = header.iter().position(|h| *h == name).unwrap();
        r[i].to_owned()
    };
    let all: Vec<Vec<&str>> = rows.collect();
    let change = all
        .iter()
        .find(|r| col(r, "section") == "change" && col(r, "change") == "changed")
        .unwrap_or_else(|| panic!("a changed row in {csv}"));
    assert_eq!(col(change, "name"), "moved.test");
    assert_eq!(col(change, "match"), "exact");
    assert_eq!(col(change, "reference"), "REF-2");
    assert_eq!(col(change, "was_match"), "subtree");
    assert_eq!(col(change, "was_reference"), "REF-1");
    assert_eq!(col(change, "was_category"), "terrorism");
    let v2 = all
        .iter()
        .find(|r| col(r, "section") == "version" && col(r, "serial") == "2")
        .unwrap();
    assert_eq!(
        (col(v2, "added"), col(v2, "removed"), col(v2, "changed")),
        ("0".into(), "0".into(), "1".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periods_without_a_list_are_recorded_and_every_report_format_shows_them() {
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    std::fs::remove_file(&setup.list_path).unwrap();
    let config = setup.config(
        upstream.addr,
        &Extra {
            list: "on_missing = \"serve-unfiltered\"\nwatch = false",
            ..Extra::default()
        },
    );
    // A first run with no list at all, stopped cleanly.
    let rempart = Rempart::start(&config).await;
    rempart.stop().await;
    // A second one, with no list until one is written and read.
    let rempart = Rempart::start(&config).await;
    setup
        .key
        .write_signed(&setup.list_path, &list_text(1, ENTRIES));
    let outcome = rempart.service().admission.reread().await;
    assert!(format!("{outcome:?}").contains("Applied"), "{outcome:?}");
    rempart.stop().await;
    // A third one enforces the kept list from the start: no new period.
    let rempart = Rempart::start(&config).await;
    rempart.stop().await;

    let dir = setup.audit_dir();
    let records = lines(&dir);
    let lists = kind(&records, "list");
    let unfiltered: Vec<&&Value> = lists
        .iter()
        .filter(|l| l["event"] == "unfiltered")
        .collect();
    assert_eq!(unfiltered.len(), 2, "{lists:#?}");
    assert!(
        unfiltered[0]["reason"]
            .as_str()
            .unwrap()
            .contains(s(&setup.list_path)),
        "{unfiltered:#?}"
    );
    let applied = lists.iter().find(|l| l["event"] == "applied").unwrap();
    let stop = kind(&records, "process")
        .into_iter()
        .find(|p| p["event"] == "stop")
        .unwrap();

    let (code, out, err) = report(&dir, &["--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let json: Value = serde_json::from_str(&out).unwrap();
    let periods = json["unfiltered"].as_array().unwrap();
    assert_eq!(periods.len(), 2, "{json:#}");
    assert_eq!(periods[0]["from"], unfiltered[0]["time"]);
    assert_eq!(periods[0]["to"], stop["time"]);
    assert_eq!(periods[0]["until"], "stopped");
    assert_eq!(periods[1]["from"], unfiltered[1]["time"]);
    assert_eq!(periods[1]["to"], applied["time"]);
    assert_eq!(periods[1]["until"], "list_applied");

    let (_, text, _) = report(&dir, &[]);
    assert!(
        text.contains("Periods the resolver answered without a list"),
        "{text}"
    );
    for until in ["until the resolver stopped", "until a list was applied"] {
        assert!(text.contains(until), "{until:?} in {text}");
    }
    let (_, csv, _) = report(&dir, &["--format", "csv"]);
    let rows: Vec<&str> = csv
        .lines()
        .filter(|l| l.starts_with("unfiltered,"))
        .collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(rows[0].starts_with("unfiltered,stopped,"), "{csv}");
    assert!(rows[1].starts_with("unfiltered,list_applied,"), "{csv}");
    let applied_time = applied["time"].as_str().unwrap();
    assert!(rows[1].contains(applied_time), "{csv}");
}

/// `audit verify --key KEY --seals COPY DIR`: exit code, stdout and stderr.
fn verify_with_copy(dir: &Path, key: &Path, copy: &Path) -> (i32, String) {
    let o = rempart_cli(&[
        "audit",
        "verify",
        "--key",
        s(key),
        "--seals",
        s(copy),
        s(dir),
    ]);
    (
        o.status.code().unwrap(),
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
    )
}

#[test]
fn a_tail_cut_with_its_last_seal_is_detected_against_the_journal_copy() {
    let (_setup, served) = sealed_setup();
    let o = rempart_cli(&["audit", "setup-keys", "--config", s(&served.config)]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let pk_line = String::from_utf8(o.stdout).unwrap();
    let pk_file = served.key.with_file_name("auditor.pub");
    std::fs::write(&pk_file, pk_line.lines().last().unwrap()).unwrap();
    let child = spawn_serve(&served);
    wait_until("a periodic seal", || !seals(&served.audit).is_empty());
    stop(child);
    let all = seals(&served.audit);
    assert!(all.len() >= 2, "a periodic seal and one at stop: {all:?}");
    // The resolver's log as the journal keeps it (`journalctl -o cat`).
    let journal = served.stderr.clone();
    let (code, out) = verify_with_copy(&served.audit, &pk_file, &journal);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("{} seal(s) of this trail", all.len())),
        "{out}"
    );

    // The cut: the last seal and every record after the seal before it,
    // off the trail and off the seal log. What is left is consistent.
    let cut = all.last().unwrap();
    let kept = &all[all.len() - 2];
    let (last_file, lines) = read_lines(&served.audit).pop().unwrap();
    let keep_to = lines
        .iter()
        .position(|l| is_seal(l) && field_u64(l, "epoch") == kept.epoch)
        .expect("the seal before the last in the newest file");
    let mut text = lines[..=keep_to].join("\n");
    text.push('\n');
    std::fs::write(&last_file, text).unwrap();
    let log_file = served.audit.join("seals.jsonl");
    let log = std::fs::read_to_string(&log_file).unwrap();
    let log: Vec<&str> = log.lines().collect();
    std::fs::write(&log_file, log[..log.len() - 1].join("\n") + "\n").unwrap();

    // The directory alone cannot tell.
    let (code, out) = verify_key(&served.audit, Some(&pk_file));
    assert_eq!(code, 0, "undetectable from the directory: {out}");
    // The journal's copy can, and names the seal that was cut.
    let (code, out) = verify_with_copy(&served.audit, &pk_file, &journal);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("truncation detected"), "{out}");
    assert!(out.contains(&cut.time_text()), "{out}");
    assert!(!out.contains("intact"), "{out}");

    // The same copy as `journalctl -o json` exports it.
    let json_copy = served.key.with_file_name("journal.json");
    let exported: String = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::json!({"MESSAGE": l, "_SYSTEMD_UNIT": "rempart.service"}).to_string() + "\n"
        })
        .collect();
    std::fs::write(&json_copy, exported).unwrap();
    let (code, out) = verify_with_copy(&served.audit, &pk_file, &json_copy);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&cut.time_text()), "{out}");

    // --seals needs the key.
    let o = rempart_cli(&["audit", "verify", "--seals", s(&journal), s(&served.audit)]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
}

/// `rempart audit report DIR1 DIR2`: the trails of two resolvers, one of
/// which never got version 2: per version, when each applied it, who did
/// not, and the slowest delay; in text, JSON and CSV.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_report_says_per_version_when_each_resolver_applied_it() {
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    let config = setup.config(upstream.addr, &Extra::default());
    // The second resolver: its own list file (a copy of version 1), state
    // and trail.
    let second = setup.dir.path().join("second");
    std::fs::create_dir_all(&second).unwrap();
    let list2 = second.join("list.txt");
    std::fs::copy(&setup.list_path, &list2).unwrap();
    std::fs::copy(
        setup.list_path.with_extension("txt.minisig"),
        second.join("list.txt.minisig"),
    )
    .unwrap();
    let config2 = config
        .replace(s(&setup.list_path), s(&list2))
        .replace(s(&setup.audit_dir()), s(&second.join("audit")))
        .replace(s(&setup.dir.path().join("state")), s(&second.join("state")));
    let one = Rempart::start(&config).await;
    let two = Rempart::start(&config2).await;
    setup
        .key
        .write_signed(&setup.list_path, &list_text(2, ENTRIES));
    let outcome = one.service().admission.reread().await;
    assert!(format!("{outcome:?}").contains("Applied"), "{outcome:?}");
    one.stop().await;
    two.stop().await;

    let (d1, d2) = (setup.audit_dir(), second.join("audit"));
    let o = rempart_cli(&["audit", "report", "--format", "json", s(&d1), s(&d2)]);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(0), "{err}");
    let json: Value = serde_json::from_str(&out).unwrap();
    let fleet = &json["fleet"];
    assert_eq!(fleet["resolvers"].as_array().unwrap().len(), 2, "{fleet:#}");
    assert_eq!(json["resolvers"].as_array().unwrap().len(), 2);
    let versions = fleet["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{fleet:#}");
    assert_eq!(versions[0]["serial"], 1);
    assert_eq!(versions[0]["applied"].as_array().unwrap().len(), 2);
    assert_eq!(versions[0]["obligation"], "first_list");
    assert_eq!(versions[1]["serial"], 2);
    let applied = versions[1]["applied"].as_array().unwrap();
    assert_eq!(applied.len(), 1, "{fleet:#}");
    let second_host = fleet["resolvers"][1]["host"].as_str().unwrap();
    assert!(
        second_host.contains(s(&d2)),
        "same machine: told apart by directory: {second_host}"
    );
    assert_eq!(versions[1]["not_applied"], serde_json::json!([second_host]));
    assert_eq!(versions[1]["slowest"], fleet["resolvers"][0]["host"]);

    let o = rempart_cli(&["audit", "report", s(&d1), s(&d2)]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0));
    assert!(text.contains("for 2 resolvers"), "{text}");
    assert!(
        text.contains(&format!("{second_host:<24} NOT APPLIED")),
        "{text}"
    );
    assert!(text.contains("serial 2"), "{text}");

    let o = rempart_cli(&["audit", "report", "--format", "csv", s(&d1), s(&d2)]);
    let csv = String::from_utf8_lossy(&o.stdout);
    assert!(
        csv.starts_with("serial,digest,issued,host,trail,applied,"),
        "{csv}"
    );
    // Two versions x two resolvers.
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(
        csv.lines()
            .any(|l| l.starts_with("2,") && l.contains(",not_applied,")),
        "{csv}"
    );

    // A broken chain among them: no fleet report.
    let newest = trail::files(&d2).unwrap().pop().unwrap();
    let text = std::fs::read_to_string(&newest).unwrap();
    std::fs::write(&newest, text.replacen("\"seq\":1,", "\"seq\":7,", 1)).unwrap();
    let o = rempart_cli(&["audit", "report", s(&d1), s(&d2)]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains(s(&d2)));
}
