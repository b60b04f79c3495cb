//! The admin listener: /healthz, /readyz, /metrics with every documented
//! metric name; what a hostile client can make it spend.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use hickory_proto::rr::RecordType;

fn get(url: String) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut resp = agent.get(&url).call().unwrap();
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap())
}

async fn fetch(url: String) -> (u16, String) {
    tokio::task::spawn_blocking(move || get(url)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_expose_every_documented_name() {
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    let rempart = Rempart::start(&setup.config(upstream.addr, &Extra::default())).await;
    for name in ["bad.test.", "ok.test.", "ok.test.", "nonexist.test."] {
        query(
            rempart.addr,
            Transport::Udp,
            name,
            RecordType::A,
            Ask::default(),
        )
        .await;
    }
    query(
        rempart.addr,
        Transport::Tcp,
        "chain.test.",
        RecordType::A,
        Ask::default(),
    )
    .await;
    let (status, body) = fetch(format!("http://{}/metrics", rempart.admin)).await;
    assert_eq!(status, 200);
    for name in rempart::metrics::ALL {
        assert!(body.contains(name), "{name} missing from /metrics:\n{body}");
    }
    for line in [
        "rempart_queries_total{transport=\"udp\",outcome=\"redirected\"} 1",
        "rempart_queries_total{transport=\"udp\",outcome=\"cached\"} 1",
        "rempart_queries_total{transport=\"tcp\",outcome=\"redirected\"} 1",
        "rempart_redirects_total{list=\"main\",category=\"terrorism\"} 2",
        "rempart_list_serial{list=\"main\"} 1",
        "rempart_list_entries{list=\"main\"} 2",
    ] {
        assert!(body.contains(line), "{line} not in:\n{body}");
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for name in rempart::metrics::ALL {
        assert!(
            readme.contains(name),
            "{name} is not documented in the README"
        );
    }
    let (status, body) = fetch(format!("http://{}/healthz", rempart.admin)).await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, body) = fetch(format!("http://{}/readyz", rempart.admin)).await;
    assert_eq!(status, 200, "{body}");
    rempart.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_says_not_ready_until_a_list_is_in_force() {
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    // Break the list: no valid list at first start.
    std::fs::write(&setup.list_path, "#rempart-list v1\ntampered\n").unwrap();
    let extra = Extra {
        list: "on_missing = \"serve-unfiltered\"\nwatch = false",
        ..Extra::default()
    };
    let rempart = Rempart::start(&setup.config(upstream.addr, &extra)).await;
    let (status, body) = fetch(format!("http://{}/readyz", rempart.admin)).await;
    assert_eq!(status, 503);
    assert!(body.contains("no list in force"), "{body}");
    // The refusal at start is counted like a refused reload (what the
    // suggested alert watches).
    let (_, metrics) = fetch(format!("http://{}/metrics", rempart.admin)).await;
    assert!(
        metrics.contains("rempart_reloads_total{list=\"main\",outcome=\"refused\"} 1"),
        "{metrics}"
    );
    // Unfiltered meanwhile: the listed name resolves from upstream.
    let m = query(
        rempart.addr,
        Transport::Udp,
        "bad.test.",
        RecordType::A,
        Ask::default(),
    )
    .await;
    assert_eq!(answers(&m), ["bad.test. 300 A 203.0.113.66"]);

    setup
        .key
        .write_signed(&setup.list_path, &list_text(1, ENTRIES));
    let outcome = rempart.service().admission.reread().await;
    assert!(
        matches!(outcome, rempart::admission::Verdict::Applied { .. }),
        "{outcome:?}"
    );
    let (status, body) = fetch(format!("http://{}/readyz", rempart.admin)).await;
    assert_eq!(status, 200, "{body}");
    let m = query(
        rempart.addr,
        Transport::Udp,
        "bad.test.",
        RecordType::A,
        Ask::default(),
    )
    .await;
    assert_eq!(answers(&m), ["bad.test. 60 A 192.0.2.80"]);
    rempart.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_valid_list_refuses_to_start_by_default() {
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    std::fs::remove_file(sig_path(&setup.list_path)).unwrap();
    let config = rempart::config::Config::from_toml(
        &setup.config(upstream.addr, &Extra::default()),
        std::path::Path::new("t.toml"),
    )
    .unwrap();
    let err = rempart::service::Service::start(&config).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("no valid list"), "{text}");
    assert!(
        text.contains("minisig"),
        "the reason names the missing signature: {text}"
    );
}

const TOKEN: &str = "admin-token-0123456789abcdef";

/// Rempart with the list endpoints enabled by [`TOKEN`] (in a file only
/// its owner reads) and `admin` appended to its `[admin]` section.
async fn start_with_token(admin: &str) -> (TestUpstream, Setup, Rempart) {
    use std::os::unix::fs::PermissionsExt;
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    let token_file = setup.dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let admin: &'static str =
        Box::leak(format!("token_file = \"{}\"\n{admin}", token_file.display()).into_boxed_str());
    let extra = Extra {
        admin,
        list: "watch = false",
        ..Extra::default()
    };
    let rempart = Rempart::start(&setup.config(upstream.addr, &extra)).await;
    (upstream, setup, rempart)
}

/// This process's resident memory, KiB (`VmRSS` in /proc/self/status).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// What a streaming upload got: the status line, the body bytes the
/// server let through before it answered or closed.
struct Streamed {
    status: String,
    sent: u64,
}

/// `PUT /v1/list` with `token` and a body of `len` bytes declared and
/// streamed from one 64 KiB buffer (the client keeps nothing), while the
/// answer is read on another thread. Stops writing when the server
/// closes or stops reading for 5 s.
fn stream_put(admin: SocketAddr, token: &str, len: u64) -> Streamed {
    let mut conn = std::net::TcpStream::connect(admin).unwrap();
    conn.set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut answer = conn.try_clone().unwrap();
    answer
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.windows(2).any(|w| w == b"\r\n") {
            match answer.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&got)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned()
    });
    write!(
        conn,
        "PUT /v1/list HTTP/1.1\r\nHost: rempart\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
    )
    .unwrap();
    let chunk = vec![b' '; 64 << 10];
    let mut sent = 0u64;
    while sent < len {
        let n = chunk.len().min((len - sent) as usize);
        match conn.write(&chunk[..n]) {
            Ok(n) => sent += n as u64,
            Err(_) => break,
        }
    }
    Streamed {
        status: reader.join().unwrap(),
        sent,
    }
}

/// Issue 15: a 200 MiB body with a wrong token was read whole (memory
/// +419 MiB) before the token was checked. Now the answer is 401 from the
/// headers alone, the body is not read (what the client could push is
/// what the socket buffers hold), and memory stays flat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_body_with_a_wrong_token_is_refused_unread() {
    const LEN: u64 = 200 << 20;
    let (_upstream, _setup, rempart) = start_with_token("").await;
    let admin = rempart.admin;
    let before = rss_kib();
    let streamed =
        tokio::task::spawn_blocking(move || stream_put(admin, "wrong-token-0123456789abcdef", LEN))
            .await
            .unwrap();
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    assert!(
        streamed.status.starts_with("HTTP/1.1 401"),
        "{:?}",
        streamed.status
    );
    assert!(
        streamed.sent < 64 << 20,
        "the server read {} MiB of the body",
        streamed.sent >> 20
    );
    assert!(grown_mib < 32, "memory grew by {grown_mib} MiB");
    rempart.stop().await;
}

/// Read `conn` until the server closes it (or 5 s pass): what it said and
/// how long that took.
fn until_closed(mut conn: std::net::TcpStream) -> (String, Duration) {
    let start = std::time::Instant::now();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("not closed after {:?}: {e}", start.elapsed()),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), start.elapsed())
}

const SHORT_LIMITS: &str = "max_connections = 2\nheader_timeout_ms = 500\nbody_timeout_ms = 500\n";

/// Issue 15: the admin listener had no concurrency limit nor timeout, so
/// idle connections held it forever. Two idle connections fill
/// `max_connections = 2`: a third is closed at accept; the idle ones are
/// closed at `header_timeout_ms`, and a request is served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_bounded_in_number_and_time() {
    let (_upstream, _setup, rempart) = start_with_token(SHORT_LIMITS).await;
    let admin = rempart.admin;
    tokio::task::spawn_blocking(move || {
        let idle: Vec<_> = (0..2)
            .map(|_| std::net::TcpStream::connect(admin).unwrap())
            .collect();
        // A slow client: half a request line, then nothing.
        let mut slow = std::net::TcpStream::connect(admin).unwrap();
        let _ = slow.write_all(b"GET /heal");
        let (said, _) = until_closed(slow);
        assert_eq!(said, "", "a third connection is closed unserved");
        for conn in idle {
            let (said, after) = until_closed(conn);
            assert!(!said.contains("200"), "{said}");
            assert!(after < Duration::from_secs(3), "closed after {after:?}");
        }
        assert_eq!(get(format!("http://{admin}/healthz")).0, 200);
    })
    .await
    .unwrap();
    rempart.stop().await;
}

/// Headers sent a byte at a time (slowloris) do not hold a connection past
/// `admin.header_timeout_ms`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_trickled_in_are_cut_at_the_header_timeout() {
    let (_upstream, _setup, rempart) = start_with_token(SHORT_LIMITS).await;
    let admin = rempart.admin;
    tokio::task::spawn_blocking(move || {
        let mut conn = std::net::TcpStream::connect(admin).unwrap();
        let start = std::time::Instant::now();
        let request = b"GET /healthz HTTP/1.1\r\nHost: rempart\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        for b in request {
            if conn.write_all(&[*b]).is_err() || start.elapsed() > Duration::from_secs(5) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let (said, _) = until_closed(conn);
        assert!(!said.contains("200"), "{said}");
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "closed after {:?}",
            start.elapsed()
        );
    })
    .await
    .unwrap();
    rempart.stop().await;
}

/// An authorised upload whose body stops coming is answered 408 at
/// `admin.body_timeout_ms`; with a longer body timeout, the connection is
/// closed at `admin.request_timeout_ms`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_cut_at_the_body_then_request_timeout() {
    fn stalled(admin: SocketAddr) -> (String, Duration) {
        let mut conn = std::net::TcpStream::connect(admin).unwrap();
        write!(
            conn,
            "PUT /v1/list HTTP/1.1\r\nHost: rempart\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Length: 1000\r\n\r\n{{\"list\": "
        )
        .unwrap();
        until_closed(conn)
    }
    for (limits, expect) in [
        (SHORT_LIMITS, "HTTP/1.1 408"),
        ("body_timeout_ms = 60000\nrequest_timeout_ms = 500", ""),
    ] {
        let (_upstream, _setup, rempart) = start_with_token(limits).await;
        let admin = rempart.admin;
        let (said, after) = tokio::task::spawn_blocking(move || stalled(admin))
            .await
            .unwrap();
        assert!(said.starts_with(expect), "{limits}: {said}");
        assert!(after < Duration::from_secs(3), "{limits}: after {after:?}");
        rempart.stop().await;
    }
}

/// A test CA and a certificate it signed for 127.0.0.1 and localhost,
/// written as PEM files in `dir`: (CA, certificate, key).
fn test_ca(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let cert = params
        .signed_by(&key, &Issuer::from_params(&ca_params, &ca_key))
        .unwrap();
    let files = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    std::fs::write(&files.0, ca.pem()).unwrap();
    std::fs::write(&files.1, cert.pem()).unwrap();
    std::fs::write(&files.2, key.serialize_pem()).unwrap();
    files
}

/// `rempart list push` as the administrator runs it: (exit code, stdout,
/// stderr).
fn push(args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rempart"))
        .args(["list", "push"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Issue 15: `list push` sent the token in clear over HTTP. The admin
/// listener now serves TLS (admin.tls_certificate, admin.tls_key); `list
/// push` to its https URL with the private CA applies the list; without
/// the CA the certificate is refused, and plain HTTP gets no answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_push_over_tls_with_a_private_ca() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_ca(certs.path());
    let tls: &'static str = Box::leak(
        format!(
            "tls_certificate = {:?}\ntls_key = {:?}",
            cert.display().to_string(),
            key.display().to_string()
        )
        .into_boxed_str(),
    );
    let (_upstream, setup, rempart) = start_with_token(tls).await;
    let token_file = setup.dir.path().join("token");
    setup
        .key
        .write_signed(&setup.list_path, &list_text(2, ENTRIES));
    let https = format!("https://127.0.0.1:{}", rempart.admin.port());
    let http = format!("http://127.0.0.1:{}", rempart.admin.port());
    let (token, list, ca) = (
        token_file.display().to_string(),
        setup.list_path.display().to_string(),
        ca.display().to_string(),
    );
    let (https2, token2, list2) = (https.clone(), token.clone(), list.clone());
    let no_ca = tokio::task::spawn_blocking(move || {
        push(&["--url", &https2, "--token-file", &token2, &list2])
    })
    .await
    .unwrap();
    assert_eq!(no_ca.0, Some(3), "{no_ca:?}");
    assert!(no_ca.2.contains("UnknownIssuer"), "{no_ca:?}");
    let (token2, list2) = (token.clone(), list.clone());
    let plain = tokio::task::spawn_blocking(move || {
        push(&["--url", &http, "--token-file", &token2, &list2])
    })
    .await
    .unwrap();
    assert_eq!(plain.0, Some(3), "{plain:?}");
    let pushed = tokio::task::spawn_blocking(move || {
        push(&[
            "--url",
            &https,
            "--ca-file",
            &ca,
            "--token-file",
            &token,
            &list,
        ])
    })
    .await
    .unwrap();
    assert_eq!(pushed.0, Some(0), "{pushed:?}");
    assert_eq!(pushed.1.trim(), "applied serial 2", "{pushed:?}");
    assert_eq!(rempart.service().admission.serial().await, Some(2));
    rempart.stop().await;
}

/// `list push` refuses, before connecting, to send the token over plain
/// HTTP to anything but a loopback address (exit 2, saying why).
#[test]
fn list_push_refuses_plain_http_beyond_loopback() {
    let (code, _, err) = push(&[
        "--url",
        "http://resolver.invalid:9153",
        "--token-file",
        "no-such-token",
        "no-such-list",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("refusing to send the admin token in clear") && err.contains("https://"),
        "{err}"
    );
}

/// A stalled upload does not hold the resolver's stop past the listener's
/// stop grace (it held it until the body timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_upload_does_not_hold_the_stop() {
    let (_upstream, _setup, rempart) = start_with_token("body_timeout_ms = 60000").await;
    let mut conn = std::net::TcpStream::connect(rempart.admin).unwrap();
    write!(
        conn,
        "PUT /v1/list HTTP/1.1\r\nHost: rempart\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Length: 1000\r\n\r\n{{\"list\": "
    )
    .unwrap();
    // Let the request reach the handler before the stop.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = std::time::Instant::now();
    rempart.stop().await;
    let took = start.elapsed();
    assert!(
        took < rempart::admin::STOP_GRACE + Duration::from_secs(2),
        "stopped after {took:?}"
    );
    drop(conn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_alerts_and_dashboard_name_metrics_and_labels_that_exist() {
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    let rempart = Rempart::start(&setup.config(upstream.addr, &Extra::default())).await;
    // A redirect and a forwarded query: the per-category counter and the
    // upstream histogram have their series.
    for name in ["bad.test.", "ok.test."] {
        query(
            rempart.addr,
            Transport::Udp,
            name,
            RecordType::A,
            Ask::default(),
        )
        .await;
    }
    let (status, body) = fetch(format!("http://{}/metrics", rempart.admin)).await;
    assert_eq!(status, 200);
    // The fetch metrics exist only on a resolver with a list fetched from
    // a web origin: tests/pull.rs checks their references on one.
    let checked =
        shipped_references_exist(&body, |name| !rempart::metrics::FETCH_ALL.contains(&name));
    assert!(checked > 20, "only {checked} references checked");
}
