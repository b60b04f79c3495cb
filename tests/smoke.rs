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
        // Tests run side by side: no fixed admin port.
        + "\n[admin]\nlisten = \"127.0.0.1:0\"\n"
}

/// The process exits within 10 s, with code 0.
fn assert_exits_0(child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit within 10 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code.code(), Some(0), "exit code after SIGTERM");
}

/// Start the binary on the demo config, on a free port, and wait until it
/// answers a redirect over TCP. A port found free can be taken by another
/// process before rempart binds it: then rempart exits (code 3) and another
/// port is tried.
async fn start_demo(
    upstream: std::net::SocketAddr,
    dir: &Path,
) -> (std::process::Child, std::net::SocketAddr) {
    start_edited(upstream, dir, |config| config).await
}

/// [`start_demo`] with the demo config changed by `edit` first.
async fn start_edited(
    upstream: std::net::SocketAddr,
    dir: &Path,
    edit: impl Fn(String) -> String,
) -> (std::process::Child, std::net::SocketAddr) {
    for _attempt in 0..5 {
        let port = {
            let (udp, _tcp) = bind_pair().await;
            udp.local_addr().unwrap().port()
        };
        let config = dir.join("demo.toml");
        std::fs::write(
            &config,
            edit(demo_config(port, upstream, &dir.join("state"))),
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
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert_eq!(status.code(), Some(3), "rempart exited early: {status}");
                break; // could not bind: another port
            }
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
                Ok(Ok(_)) => return (child, addr),
                _ if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                _ => panic!("rempart did not answer within 20 s"),
            }
        }
    }
    panic!("no free port in 5 attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_config_serves_redirects_and_stops_on_sigterm() {
    let upstream = TestUpstream::start(ZONE).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = start_demo(upstream.addr, dir.path()).await;
    let m = query(
        addr,
        Transport::Tcp,
        "bad.test.",
        RecordType::A,
        Ask::default(),
    )
    .await;
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
    assert_exits_0(&mut child);

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
    // The readiness probe, then the two queries above.
    assert_eq!(report["redirects"], 3, "{report}");
    assert_eq!(report["versions"][0]["serial"], 2026112201u64);
}

/// An upstream that answers every A query with 198.51.100.7, after `delay`.
async fn slow_upstream(delay: Duration) -> std::net::SocketAddr {
    use hickory_proto::op::{Message, MessageType};
    use hickory_proto::rr::{RData, Record, rdata::A};
    let socket = std::sync::Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let socket = socket.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let mut m = Message::new(
                    query.metadata.id,
                    MessageType::Response,
                    query.metadata.op_code,
                );
                m.metadata.recursion_desired = query.metadata.recursion_desired;
                m.metadata.recursion_available = true;
                m.metadata.authoritative = true;
                if let Some(q) = query.queries.first() {
                    m.add_query(q.clone());
                    m.answers.push(Record::from_rdata(
                        q.name().clone(),
                        300,
                        RData::A(A::new(198, 51, 100, 7)),
                    ));
                }
                if let Some(edns) = query.edns.clone() {
                    m.set_edns(edns);
                }
                let _ = socket.send_to(&m.to_vec().unwrap(), peer).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_the_queries_in_flight_then_exits_0() {
    let upstream = slow_upstream(Duration::from_millis(700)).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, addr) = start_demo(upstream, dir.path()).await;

    // Three TCP queries and one UDP query to the slow upstream, in flight
    // when SIGTERM arrives.
    let mut in_flight = Vec::new();
    for (i, transport) in [
        Transport::Tcp,
        Transport::Tcp,
        Transport::Tcp,
        Transport::Udp,
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("slow{i}.test.");
        in_flight.push(tokio::spawn(async move {
            query(addr, transport, &name, RecordType::A, Ask::default()).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for q in in_flight {
        let m = q.await.expect("the query in flight was answered");
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(
            answers(&m)[0].ends_with("A 198.51.100.7"),
            "{:?}",
            answers(&m)
        );
    }
    assert_exits_0(&mut child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_stable_fields() {
    use std::io::BufRead;
    let upstream = TestUpstream::start(ZONE).await;
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let (udp, _tcp) = bind_pair().await;
        udp.local_addr().unwrap().port()
    };
    let config = dir.path().join("json.toml");
    let text = demo_config(port, upstream.addr, &dir.path().join("state"))
        .replace("level = \"info\"", "level = \"info\"\nformat = \"json\"");
    std::fs::write(&config, text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rempart"))
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let pid = child.id().to_string();
    // Read until the server says it serves, then stop it and read the rest.
    let lines = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if line.contains("serving DNS") {
                let _ = Command::new("kill").args(["-TERM", &pid]).status();
            }
            lines.push(line);
        }
        lines
    })
    .join()
    .unwrap();
    assert_exits_0(&mut child);
    let records: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let find = |message: &str| {
        records
            .iter()
            .find(|r| r["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} in {lines:#?}"))
    };
    let in_force = find("list in force");
    assert_eq!(in_force["level"], "INFO");
    assert_eq!(in_force["serial"], 2026112201u64);
    assert!(in_force["timestamp"].is_string());
    find("serving DNS");
    assert_eq!(find("stop requested")["signal"], "SIGTERM");
}

/// Issue 17: SIGHUP rereads every list of a several-list config, each
/// with its own keys and answer, in the real binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_rereads_every_list() {
    let upstream = TestUpstream::start(ZONE).await;
    let dir = tempfile::tempdir().unwrap();
    let (main_key, second_key) = (
        TestKey::new(dir.path(), "main"),
        TestKey::new(dir.path(), "second"),
    );
    let (main_list, second_list) = (dir.path().join("main.txt"), dir.path().join("second.txt"));
    let bad = ("bad.test", "subtree", "terrorism", "M-1");
    let host = ("host.test", "exact", "gambling", "S-1");
    main_key.write_signed(&main_list, &list_text(1, &[bad]));
    second_key.write_signed(&second_list, &list_text(1, &[host]));
    let root = env!("CARGO_MANIFEST_DIR");
    let lone = format!(
        "path = \"{root}/config/demo/list.txt\"\ntrusted_keys = [\"{root}/config/demo/demo.pub\"]\n"
    );
    let lists = format!(
        "\n[[lists]]\nid = \"main\"\npath = \"{}\"\ntrusted_keys = [\"{}\"]\n\
         \n[[lists]]\nid = \"second\"\npath = \"{}\"\ntrusted_keys = [\"{}\"]\n\
         redirect = {{ ipv4 = [\"198.51.100.20\"] }}\n",
        main_list.display(),
        main_key.public_path.display(),
        second_list.display(),
        second_key.public_path.display()
    );
    let edit = |config: String| {
        assert!(config.contains(&lone), "{config}");
        // No watcher: only the signal may reload.
        config.replace(&lone, "watch = false\n") + &lists
    };
    let (child, addr) = start_edited(upstream.addr, dir.path(), edit).await;
    // Killed if an assertion fails first: no resolver left running.
    let mut child = KillOnDrop(child);
    let a = |name: &'static str| async move {
        answers(&query(addr, Transport::Udp, name, RecordType::A, Ask::default()).await)
    };
    assert_eq!(a("host.test.").await, ["host.test. 60 A 198.51.100.20"]);
    assert_eq!(a("notbad.test.").await, ["notbad.test. 300 A 198.51.100.9"]);
    assert_eq!(
        a("sub.host.test.").await,
        ["sub.host.test. 300 A 198.51.100.7"]
    );

    main_key.write_signed(
        &main_list,
        &list_text(2, &[bad, ("notbad.test", "exact", "terrorism", "M-2")]),
    );
    second_key.write_signed(
        &second_list,
        &list_text(2, &[("host.test", "subtree", "gambling", "S-1")]),
    );
    let status = Command::new("kill")
        .args(["-HUP", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (main, second) = (a("notbad.test.").await, a("sub.host.test.").await);
        if main == ["notbad.test. 60 A 192.0.2.80"]
            && second == ["sub.host.test. 60 A 198.51.100.20"]
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not both reloaded 10 s after SIGHUP: {main:?} {second:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert_exits_0(&mut child.0);
}

/// A child process killed (SIGKILL) when dropped, unless it has exited.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
