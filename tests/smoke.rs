//! The real binary on the shipped demo config (with its port, upstream and
//! state directory pointed at this test's own): it serves the demo list's
//! redirect with EDE 16, forwards other names, and exits 0 on SIGTERM.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

fn demo_config(port: u16, upstream: std::net::SocketAddr, state: &Path) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let text = std::fs::read_to_string(Path::new(root).join("config/demo.toml")).unwrap();
    assert!(text.contains("127.0.0.1:1053") && text.contains("127.0.0.1:5300"));
    text.replace("127.0.0.1:1053", &format!("127.0.0.1:{port}"))
        .replace("127.0.0.1:5300", &upstream.to_string())
        .replace("\"config/demo/", &format!("\"{root}/config/demo/"))
        .replace(
            "state_dir = \"state\"",
            &format!("state_dir = \"{}\"", state.display()),
        )
        .replace(
            "dir = \"audit\"",
            &format!("dir = \"{}\"", state.join("audit").display()),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_config_serves_redirects_and_stops_on_sigterm() {
    let upstream = TestUpstream::start(ZONE).await;
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let (udp, _tcp) = bind_pair().await;
        udp.local_addr().unwrap().port()
    };
    let config = dir.path().join("demo.toml");
    std::fs::write(
        &config,
        demo_config(port, upstream.addr, &dir.path().join("state")),
    )
    .unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_rempart"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();

    // Wait until it answers (bounded).
    let deadline = Instant::now() + Duration::from_secs(20);
    let m = loop {
        assert!(child.try_wait().unwrap().is_none(), "rempart exited early");
        let probe = tokio::time::timeout(
            Duration::from_millis(500),
            query(
                addr,
                Transport::Tcp,
                "bad.test.",
                RecordType::A,
                Ask::default(),
            ),
        );
        match tokio::spawn(probe).await {
            Ok(Ok(m)) => break m,
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            _ => panic!("rempart did not answer within 20 s"),
        }
    };
    assert_eq!(answers(&m), ["bad.test. 60 A 192.0.2.80"]);
    assert_eq!(ede(&m).map(|e| e.0), Some(16));
    let m = query(
        addr,
        Transport::Udp,
        "www.bad.test.",
        RecordType::AAAA,
        Ask::default(),
    )
    .await;
    assert_eq!(answers(&m), ["www.bad.test. 60 AAAA 2001:db8::80"]);
    let m = query(
        addr,
        Transport::Udp,
        "ok.test.",
        RecordType::A,
        Ask::default(),
    )
    .await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answers(&m), ["ok.test. 300 A 198.51.100.1"]);
    assert!(!upstream.was_asked_under("bad.test"));

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit within 10 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code.code(), Some(0), "exit code after SIGTERM");

    // The trail holds the start, the list applied, the redirects and the
    // stop, and verifies with the real binary.
    let audit = dir.path().join("state").join("audit");
    let out = Command::new(env!("CARGO_BIN_EXE_rempart"))
        .args(["audit", "verify"])
        .arg(&audit)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_rempart"))
        .args(["audit", "report", "--format", "json"])
        .arg(&audit)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["redirects"], 2, "{report}");
    assert_eq!(report["versions"][0]["serial"], 2026112201u64);
}
