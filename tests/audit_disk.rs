//! The audit trail when the disk fails (issue 5, point 3): the records that
//! cannot be written are counted in `rempart_audit_lost_total`, logged, and
//! written into the chain as a `loss` record once writing works again; the
//! service keeps answering and the chain still verifies.
//!
//! Running as root, permissions cannot make a write fail; a file size limit
//! can (RLIMIT_FSIZE applies to root): the real binary runs under
//! `prlimit --fsize`, with SIGXFSZ ignored, so a write past the limit fails
//! with EFBIG, as on a full disk. Each failure drops the file; the next
//! batch starts a new one, which the limit lets grow again.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::rr::RecordType;
use serde_json::Value;

/// Bytes an audit file may reach before writes to it fail.
const FILE_LIMIT: u64 = 64 * 1024;

/// The address after `what` in the first log line that has it, e.g.
/// `serving DNS addrs=[127.0.0.1:4321]`.
fn addr_in(lines: &[String], what: &str, key: &str) -> Option<SocketAddr> {
    let line = lines.iter().find(|l| l.contains(what))?;
    let rest = &line[line.find(key)? + key.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

fn get_metrics(admin: SocketAddr) -> String {
    ureq::get(&format!("http://{admin}/metrics"))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_disk_loses_records_visibly_and_the_service_continues() {
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    let config = setup.dir.path().join("rempart.toml");
    std::fs::write(&config, setup.config(upstream.addr, &Extra::default())).unwrap();

    // Ignore SIGXFSZ (inherited through exec) so that writes past the limit
    // fail with EFBIG instead of killing the process.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"trap '' XFSZ; exec prlimit --fsize="$1" "$2" serve --config "$3""#)
        .arg("sh")
        .arg(FILE_LIMIT.to_string())
        .arg(env!("CARGO_BIN_EXE_rempart"))
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let log = Arc::clone(&log);
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log.lock().unwrap().push(line);
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let (dns, admin) = loop {
        let lines = log.lock().unwrap().clone();
        if let (Some(d), Some(a)) = (
            addr_in(&lines, "serving DNS", "addrs=["),
            addr_in(&lines, "admin listener", "addr="),
        ) {
            break (d, a);
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "rempart exited: {lines:#?}"
        );
        assert!(
            Instant::now() < deadline,
            "not serving within 20 s: {lines:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    // Redirect records are ~400 bytes: 2,000 of them are ~12 times the
    // file limit, in bursts so that several batches fail and several files
    // start again.
    let sent = 2_000u64;
    for burst in 0..20 {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..100 {
            let name = format!("q{burst}-{i}.bad.test.");
            set.spawn(async move {
                query(dns, Transport::Udp, &name, RecordType::A, Ask::default()).await
            });
        }
        while let Some(m) = set.join_next().await {
            // The service continues: every query gets its redirect.
            assert_eq!(answers(&m.unwrap()).len(), 1);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = tokio::task::spawn_blocking(move || get_metrics(admin))
        .await
        .unwrap();
    let lost_metric = counter(&metrics, "rempart_audit_lost_total");
    assert!(
        lost_metric > 0,
        "some records must have been lost:\n{metrics}"
    );
    assert!(lost_metric < sent, "most batches fit in a fresh file");

    // Stop by our own PID (the shell exec'd prlimit, which exec'd rempart).
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "exit code after SIGTERM");
    reader.join().unwrap();
    let lines = log.lock().unwrap().clone();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("audit: cannot write") && l.contains("File too large")),
        "the failure is logged: {lines:#?}"
    );

    // The trail: redirects written + losses recorded = queries sent, and
    // the chain verifies across the files started after each failure.
    let mut redirects = 0u64;
    let mut lost_recorded = 0u64;
    let files = rempart::audit::trail::files(&setup.audit_dir()).unwrap();
    assert!(files.len() > 1, "a new file after a failure: {files:?}");
    for f in &files {
        assert!(std::fs::metadata(f).unwrap().len() <= FILE_LIMIT, "{f:?}");
        for line in std::fs::read_to_string(f).unwrap().lines() {
            let v: Value = serde_json::from_str(line).expect("no torn line");
            match v["kind"].as_str() {
                Some("redirect") => redirects += 1,
                Some("loss") => lost_recorded += v["lost"].as_u64().unwrap(),
                _ => {}
            }
        }
    }
    assert_eq!(
        redirects + lost_recorded,
        sent,
        "every query is a record or a counted loss"
    );
    assert!(
        lost_recorded >= lost_metric,
        "the losses seen by the metric are in the trail"
    );
    let verify = Command::new(env!("CARGO_BIN_EXE_rempart"))
        .args(["audit", "verify"])
        .arg(setup.audit_dir())
        .output()
        .unwrap();
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}
