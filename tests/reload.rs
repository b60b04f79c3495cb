//! Hot reload (issue 4): every trigger, cache coherence, refusals that
//! change nothing, and a bounded load test across 20 list versions.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use rempart::admission::Source;

const TOKEN: &str = "test-token-0123456789abcdef";

fn http(method: &str, url: &str, token: Option<&str>, body: Option<String>) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut req = match method {
        "POST" => agent.post(url),
        _ => agent.put(url),
    };
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    let mut resp = req.send(body.unwrap_or_default().as_bytes()).unwrap();
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap())
}

fn get(url: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent.get(url).call().unwrap();
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_to_string().unwrap())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

async fn start_with_token(watch: bool) -> (TestUpstream, Setup, Rempart) {
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    let token_file = setup.dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let owner_only = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600);
    std::fs::set_permissions(&token_file, owner_only).unwrap();
    let admin: &'static str =
        Box::leak(format!("token_file = \"{}\"", token_file.display()).into_boxed_str());
    let list: &'static str = if watch {
        "watch = true"
    } else {
        "watch = false"
    };
    let extra = Extra {
        admin,
        list,
        ..Extra::default()
    };
    let rempart = Rempart::start(&setup.config(upstream.addr, &extra)).await;
    (upstream, setup, rempart)
}

fn a_of(m: &hickory_proto::op::Message) -> Vec<String> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_endpoint_applies_additions_over_the_cache_and_removals_at_once() {
    let (upstream, setup, rempart) = start_with_token(false).await;
    let reload_url = format!("http://{}/v1/list/reload", rempart.admin);

    // ok.test is cached from upstream before it is listed.
    let m = query(
        rempart.addr,
        Transport::Udp,
        "ok.test.",
        RecordType::A,
        Ask::default(),
    )
    .await;
    assert_eq!(a_of(&m), ["198.51.100.1"]);

    // Version 2 lists ok.test and drops bad.test.
    setup.key.write_signed(
        &setup.list_path,
        &list_text(
            2,
            &[("ok.test", "subtree", "terrorism", "REF-0003"), ENTRIES[1]],
        ),
    );
    let (status, body) = blocking(move || http("POST", &reload_url, Some(TOKEN), None)).await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["outcome"], "applied");
    assert_eq!(v["serial"], 2);
    assert_eq!(
        (v["added"].as_u64(), v["removed"].as_u64()),
        (Some(1), Some(1))
    );

    for t in [Transport::Udp, Transport::Tcp] {
        // Added: redirected on the first query, the cached answer ignored.
        let m = query(rempart.addr, t, "ok.test.", RecordType::A, Ask::default()).await;
        assert_eq!(a_of(&m), ["192.0.2.80"], "{t:?}");
        assert_eq!(ede(&m).map(|e| e.0), Some(16));
        // Removed: the name and its subnames resolve from upstream at once.
        let m = query(rempart.addr, t, "bad.test.", RecordType::A, Ask::default()).await;
        assert_eq!(a_of(&m), ["203.0.113.66"], "{t:?}");
        let m = query(
            rempart.addr,
            t,
            "www.bad.test.",
            RecordType::A,
            Ask::default(),
        )
        .await;
        assert_eq!(a_of(&m), ["203.0.113.66"], "{t:?}");
        assert_eq!(ede(&m), None);
    }
    assert!(
        upstream.was_asked_under("bad.test"),
        "delisted names are forwarded"
    );

    // The same list again: unchanged.
    let url = format!("http://{}/v1/list/reload", rempart.admin);
    let (status, body) = blocking(move || http("POST", &url, Some(TOKEN), None)).await;
    assert_eq!(status, 200);
    assert!(body.contains("\"unchanged\""), "{body}");
    rempart.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_candidates_change_nothing_and_tokens_are_checked() {
    let (_upstream, setup, rempart) = start_with_token(false).await;
    let admin = rempart.admin;
    let reload_url = format!("http://{admin}/v1/list/reload");

    // No token, a wrong token: 401, nothing reloaded.
    for token in [None, Some("wrong-token-0123456789")] {
        let url = reload_url.clone();
        let (status, _) = blocking(move || http("POST", &url, token, None)).await;
        assert_eq!(status, 401);
    }

    // A truncated list (its signature no longer matches).
    let good = list_text(5, &[("ok.test", "subtree", "terrorism", "REF-9")]);
    setup.key.write_signed(&setup.list_path, &good);
    std::fs::write(&setup.list_path, &good[..good.len() - 20]).unwrap();
    let url = reload_url.clone();
    let (status, body) = blocking(move || http("POST", &url, Some(TOKEN), None)).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("\"refused\""), "{body}");

    // An unsigned list (signature file removed).
    std::fs::write(&setup.list_path, &good).unwrap();
    std::fs::remove_file(sig_path(&setup.list_path)).unwrap();
    let url = reload_url.clone();
    let (status, body) = blocking(move || http("POST", &url, Some(TOKEN), None)).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("minisig"),
        "the reason names the signature file: {body}"
    );

    // A list signed by a key that is not trusted, pushed.
    let stranger = TestKey::new(setup.dir.path(), "stranger");
    let other = setup.dir.path().join("other.txt");
    stranger.write_signed(&other, &good);
    let body = serde_json::json!({
        "list": good,
        "signature": std::fs::read_to_string(sig_path(&other)).unwrap(),
    })
    .to_string();
    let url = format!("http://{admin}/v1/list");
    let (status, resp) = blocking(move || http("PUT", &url, Some(TOKEN), Some(body))).await;
    assert_eq!(status, 422, "{resp}");

    // Nothing changed: the first list still serves.
    let m = query(
        rempart.addr,
        Transport::Udp,
        "bad.test.",
        RecordType::A,
        Ask::default(),
    )
    .await;
    assert_eq!(a_of(&m), ["192.0.2.80"]);
    let m = query(
        rempart.addr,
        Transport::Udp,
        "ok.test.",
        RecordType::A,
        Ask::default(),
    )
    .await;
    assert_eq!(a_of(&m), ["198.51.100.1"]);
    let (_, metrics) = blocking(move || get(&format!("http://{admin}/metrics"))).await;
    assert!(
        metrics.contains("rempart_reloads_total{list=\"main\",outcome=\"refused\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rempart_list_serial{list=\"main\"} 1"),
        "{metrics}"
    );

    // A good push is applied and answered with its serial.
    let signed = setup.dir.path().join("signed.txt");
    setup.key.write_signed(&signed, &good);
    let body = serde_json::json!({
        "list": good,
        "signature": std::fs::read_to_string(sig_path(&signed)).unwrap(),
    })
    .to_string();
    let url = format!("http://{admin}/v1/list");
    let (status, resp) = blocking(move || http("PUT", &url, Some(TOKEN), Some(body))).await;
    assert_eq!(status, 200, "{resp}");
    assert!(resp.contains("\"serial\":5"), "{resp}");
    // A body that is not the JSON asked for: 400, with the reason.
    let url = format!("http://{admin}/v1/list");
    let body = r#"{"list": "x", "signature": "s", "extra": 1}"#.to_owned();
    let (status, resp) = blocking(move || http("PUT", &url, Some(TOKEN), Some(body))).await;
    assert_eq!(status, 400, "{resp}");
    assert!(resp.contains("unknown field `extra`"), "{resp}");
    // The uploads were written to the state directory as they arrived,
    // and nothing of them is left there.
    let left: Vec<String> = std::fs::read_dir(setup.dir.path().join("state"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".pushed"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let m = query(
        rempart.addr,
        Transport::Udp,
        "ok.test.",
        RecordType::A,
        Ask::default(),
    )
    .await;
    assert_eq!(a_of(&m), ["192.0.2.80"]);
    rempart.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_endpoints_are_disabled_without_a_token_file() {
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    let rempart = Rempart::start(&setup.config(upstream.addr, &Extra::default())).await;
    let url = format!("http://{}/v1/list/reload", rempart.admin);
    let (status, _) = blocking(move || http("POST", &url, Some(TOKEN), None)).await;
    assert_eq!(status, 403);
    rempart.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_applies_a_new_list_written_to_disk() {
    let (_upstream, setup, rempart) = start_with_token(true).await;
    // Written the way an administrator would: the list, then its signature,
    // each replaced by a rename.
    let tmp = setup.dir.path().join("incoming.txt");
    setup.key.write_signed(
        &tmp,
        &list_text(
            3,
            &[ENTRIES[0], ("notbad.test", "exact", "terrorism", "REF-4")],
        ),
    );
    std::fs::rename(&tmp, &setup.list_path).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    std::fs::rename(sig_path(&tmp), sig_path(&setup.list_path)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = query(
            rempart.addr,
            Transport::Udp,
            "notbad.test.",
            RecordType::A,
            Ask::default(),
        )
        .await;
        if a_of(&m) == ["192.0.2.80"] {
            break;
        }
        assert!(Instant::now() < deadline, "not applied within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rempart.service().admission.serial().await, Some(3));
    rempart.stop().await;
}

/// Clients query listed, unlisted and toggled names without pause while 20
/// list versions are applied: no timeout, no SERVFAIL, and every answer is
/// the one of some version. Bounded by the number of versions and 60 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_versions_under_load_lose_nothing() {
    let (_upstream, setup, rempart) = start_with_token(false).await;
    let addr = rempart.addr;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for c in 0..4 {
        let stop = stop.clone();
        let answered = answered.clone();
        clients.push(tokio::spawn(async move {
            let t = if c % 2 == 0 {
                Transport::Udp
            } else {
                Transport::Tcp
            };
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) {
                for (name, allowed) in [
                    ("www.bad.test.", &[&["192.0.2.80"][..]][..]),
                    ("ok.test.", &[&["198.51.100.1"][..]][..]),
                    (
                        "notbad.test.",
                        &[&["192.0.2.80"][..], &["198.51.100.9"][..]][..],
                    ),
                ] {
                    let m = tokio::time::timeout(
                        Duration::from_secs(2),
                        query(addr, t, name, RecordType::A, Ask::default()),
                    )
                    .await
                    .unwrap_or_else(|_| panic!("{name} over {t:?}: timed out"));
                    assert_eq!(m.metadata.response_code, ResponseCode::NoError, "{name}");
                    let got = a_of(&m);
                    assert!(
                        allowed.iter().any(|a| *a == got.as_slice()),
                        "{name}: {got:?} matches no version"
                    );
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for serial in 2..22u64 {
        let mut entries = vec![ENTRIES[0]];
        if serial % 2 == 0 {
            entries.push(("notbad.test", "exact", "terrorism", "REF-T"));
        }
        let text = list_text(serial, &entries);
        let path = setup.dir.path().join(format!("v{serial}.txt"));
        setup.key.write_signed(&path, &text);
        let outcome = rempart.service().admission.admit(Source::Push(path)).await;
        assert!(
            matches!(outcome, rempart::admission::Verdict::Applied { serial: s, .. } if s == serial),
            "{outcome:?}"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }
    assert!(
        answered.load(Ordering::Relaxed) > 60,
        "the clients kept querying"
    );
    assert_eq!(rempart.service().admission.serial().await, Some(21));
    rempart.stop().await;
}

/// SIGHUP to the real binary reloads the list (the watcher is off, so only
/// the signal can have done it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_list() {
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    let port = {
        let (udp, _tcp) = bind_pair().await;
        udp.local_addr().unwrap().port()
    };
    let config = setup
        .config(
            upstream.addr,
            &Extra {
                list: "watch = false",
                ..Extra::default()
            },
        )
        .replace("127.0.0.1:0\"]", &format!("127.0.0.1:{port}\"]"));
    let config_path = setup.dir.path().join("rempart.toml");
    std::fs::write(&config_path, config).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rempart"))
        .args(["serve", "--config"])
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_until_serving(addr, &mut child).await;

    setup.key.write_signed(
        &setup.list_path,
        &list_text(2, &[ENTRIES[0], ("ok.test", "exact", "terrorism", "REF-5")]),
    );
    let m = query(
        addr,
        Transport::Udp,
        "ok.test.",
        RecordType::A,
        Ask::default(),
    )
    .await;
    assert_eq!(a_of(&m), ["198.51.100.1"], "not applied before the signal");
    signal(&child, "-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = query(
            addr,
            Transport::Udp,
            "ok.test.",
            RecordType::A,
            Ask::default(),
        )
        .await;
        if a_of(&m) == ["192.0.2.80"] {
            break;
        }
        assert!(Instant::now() < deadline, "SIGHUP did not apply the list");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    signal(&child, "-TERM");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

fn signal(child: &std::process::Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

async fn wait_until_serving(addr: std::net::SocketAddr, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(child.try_wait().unwrap().is_none(), "rempart exited early");
        let probe = tokio::spawn(tokio::time::timeout(
            Duration::from_millis(500),
            query(
                addr,
                Transport::Tcp,
                "bad.test.",
                RecordType::A,
                Ask::default(),
            ),
        ));
        if let Ok(Ok(_)) = probe.await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "rempart did not answer within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// --- the real binary: bad list files, lost state, kills ------------------

/// `rempart serve` as systemd runs it, on fixed ports, with an admin token;
/// its log is kept (and echoed). Killed when dropped.
struct Binary {
    child: std::process::Child,
    dns: std::net::SocketAddr,
    admin: std::net::SocketAddr,
    log: Arc<std::sync::Mutex<String>>,
}

impl Binary {
    async fn spawn(
        setup: &Setup,
        upstream: std::net::SocketAddr,
        list: &'static str,
        args: &[&str],
    ) -> Binary {
        use std::io::BufRead;
        let dns_port = {
            let (udp, _tcp) = bind_pair().await;
            udp.local_addr().unwrap().port()
        };
        let admin_port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let token_file = setup.dir.path().join("token");
        std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
        std::fs::set_permissions(
            &token_file,
            <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600),
        )
        .unwrap();
        let admin: &'static str =
            Box::leak(format!("token_file = \"{}\"", token_file.display()).into_boxed_str());
        let extra = Extra {
            admin,
            list,
            ..Extra::default()
        };
        let config = setup
            .config(upstream, &extra)
            .replace("127.0.0.1:0\"]", &format!("127.0.0.1:{dns_port}\"]"))
            .replace(
                "listen = \"127.0.0.1:0\"",
                &format!("listen = \"127.0.0.1:{admin_port}\""),
            );
        let config_path = setup.dir.path().join("rempart.toml");
        std::fs::write(&config_path, config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_rempart"))
            .args(["serve", "--config"])
            .arg(&config_path)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(std::sync::Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                eprintln!("{line}");
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Binary {
            child,
            dns: format!("127.0.0.1:{dns_port}").parse().unwrap(),
            admin: format!("127.0.0.1:{admin_port}").parse().unwrap(),
            log,
        }
    }

    async fn until_serving(&mut self) {
        wait_until_serving(self.dns, &mut self.child).await;
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Wait until the log holds `text`.
    async fn until_logged(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.log().contains(text) {
            assert!(Instant::now() < deadline, "no {text:?} logged within 10 s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The exit code, if the process ends within `within`.
    async fn exit_within(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status.code().unwrap_or(-1));
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn metrics(&self) -> String {
        let url = format!("http://{}/metrics", self.admin);
        blocking(move || get(&url)).await.1
    }

    async fn serial(&self) -> u64 {
        let metrics = self.metrics().await;
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("rempart_list_serial{list=\"main\"} "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map(|v| v as u64)
            .unwrap_or_else(|| panic!("no list serial: {metrics}"))
    }

    async fn stop(mut self) {
        signal(&self.child, "-TERM");
        assert_eq!(
            self.exit_within(Duration::from_secs(10)).await,
            Some(0),
            "SIGTERM did not stop rempart with exit code 0 within 10 s"
        );
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The JSON body of `PUT /v1/list` for `text`, signed by `setup`'s key.
fn push_body(setup: &Setup, text: &str) -> String {
    let signed = setup.dir.path().join("pushed.txt");
    setup.key.write_signed(&signed, text);
    serde_json::json!({
        "list": text,
        "signature": std::fs::read_to_string(sig_path(&signed)).unwrap(),
    })
    .to_string()
}

fn mkfifo(path: &std::path::Path) {
    let _ = std::fs::remove_file(path);
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

/// Issue 15: a FIFO as the list file hung the reload, and SIGTERM with it;
/// a symbolic link to /dev/zero grew memory past 2 GiB. Each is refused
/// with its reason while the list in force serves, a link to a regular file
/// still works, and SIGTERM stops the process at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_or_dev_zero_as_the_list_file_is_refused_and_sigterm_still_stops() {
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    let mut rempart = Binary::spawn(&setup, upstream.addr, "watch = false", &[]).await;
    rempart.until_serving().await;
    let redirected = |name: &'static str| {
        let addr = rempart.dns;
        async move {
            let m = query(addr, Transport::Udp, name, RecordType::A, Ask::default()).await;
            a_of(&m) == ["192.0.2.80"]
        }
    };

    mkfifo(&setup.list_path);
    signal(&rempart.child, "-HUP");
    rempart.until_logged("not a regular file (a FIFO)").await;
    assert!(redirected("bad.test.").await, "the list in force serves");

    std::fs::remove_file(&setup.list_path).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &setup.list_path).unwrap();
    signal(&rempart.child, "-HUP");
    rempart
        .until_logged("not a regular file (a character device)")
        .await;
    assert!(redirected("bad.test.").await, "the list in force serves");

    // A symbolic link to a regular file (and to its signature) is fine.
    let real = setup.dir.path().join("real.txt");
    setup.key.write_signed(
        &real,
        &list_text(2, &[ENTRIES[0], ("ok.test", "exact", "terrorism", "REF-5")]),
    );
    std::fs::remove_file(&setup.list_path).unwrap();
    std::fs::remove_file(sig_path(&setup.list_path)).unwrap();
    std::os::unix::fs::symlink(&real, &setup.list_path).unwrap();
    std::os::unix::fs::symlink(sig_path(&real), sig_path(&setup.list_path)).unwrap();
    signal(&rempart.child, "-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !redirected("ok.test.").await {
        assert!(Instant::now() < deadline, "the linked list was not applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A reload on a FIFO, then at once SIGTERM: stopped promptly.
    std::fs::remove_file(&setup.list_path).unwrap();
    mkfifo(&setup.list_path);
    signal(&rempart.child, "-HUP");
    signal(&rempart.child, "-TERM");
    assert_eq!(
        rempart.exit_within(Duration::from_secs(5)).await,
        Some(0),
        "SIGTERM must stop rempart promptly whatever the reload does"
    );
}

/// Issue 15: after a push, the list file is an older list; SIGHUP and a
/// restart said "refused rollback" for it, with a `refused` audit record
/// and the alert's metric. Then: the state file lost, an older list was
/// accepted at the next start; now the start stops with exit code 4 until
/// the operator resets the serial floor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_list_file_is_no_refusal_and_a_lost_state_stops_the_start() {
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    let mut rempart = Binary::spawn(&setup, upstream.addr, "watch = false", &[]).await;
    rempart.until_serving().await;
    let url = format!("http://{}/v1/list", rempart.admin);
    let body = push_body(&setup, &list_text(2, ENTRIES));
    let (status, resp) = blocking(move || http("PUT", &url, Some(TOKEN), Some(body))).await;
    assert_eq!(status, 200, "{resp}");

    signal(&rempart.child, "-HUP");
    rempart.until_logged("(stale)").await;
    let no_refusal = "rempart_reloads_total{list=\"main\",outcome=\"refused\"} 0";
    let metrics = rempart.metrics().await;
    assert!(metrics.contains(no_refusal), "{metrics}");
    rempart.stop().await;

    let mut rempart = Binary::spawn(&setup, upstream.addr, "watch = false", &[]).await;
    rempart.until_serving().await;
    assert_eq!(rempart.serial().await, 2);
    rempart.until_logged("(stale)").await;
    let metrics = rempart.metrics().await;
    assert!(metrics.contains(no_refusal), "{metrics}");
    assert!(!rempart.log().contains("list refused"), "{}", rempart.log());
    rempart.stop().await;
    let mut records = String::new();
    for file in std::fs::read_dir(setup.audit_dir()).unwrap() {
        records.push_str(&std::fs::read_to_string(file.unwrap().path()).unwrap_or_default());
    }
    assert!(records.contains("\"applied\""), "{records}");
    assert!(!records.contains("\"refused\""), "{records}");

    // The state file is lost: the list file (serial 1) would be a rollback.
    std::fs::remove_file(setup.dir.path().join("state/in-force.state")).unwrap();
    let mut rempart = Binary::spawn(&setup, upstream.addr, "watch = false", &[]).await;
    assert_eq!(
        rempart.exit_within(Duration::from_secs(20)).await,
        Some(4),
        "a floor without its kept list must stop the start"
    );
    let log = rempart.log();
    assert!(
        log.contains("serial.floor") && log.contains("--reset-serial-floor"),
        "{log}"
    );
    let mut rempart = Binary::spawn(
        &setup,
        upstream.addr,
        "watch = false",
        &["--reset-serial-floor"],
    )
    .await;
    rempart.until_serving().await;
    assert_eq!(rempart.serial().await, 1, "the operator's reset");
    rempart.stop().await;
}

/// Issue 15: SIGKILL at random moments of a reload (a push, or the list
/// file and SIGHUP), 20 times; each start serves the list of before the
/// kill or the new one: never nothing (a refused start), never older.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_reloads_then_a_start_serves_the_old_or_the_new_list() {
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    let names: Vec<String> = (0..3000).map(|i| format!("n{i}.kill.test")).collect();
    let entries: Vec<(&str, &str, &str, &str)> = names
        .iter()
        .map(|n| (n.as_str(), "exact", "terrorism", "REF-K"))
        .collect();
    let mut seed = SystemTime::UNIX_EPOCH.elapsed().unwrap().as_nanos() as u64 | 1;
    eprintln!("kill moments seed: {seed}");
    let mut random_ms = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % 400
    };
    let (mut before, mut attempted) = (1, 1);
    for round in 0..21 {
        let mut rempart = Binary::spawn(&setup, upstream.addr, "watch = false", &[]).await;
        rempart.until_serving().await;
        let serial = rempart.serial().await;
        assert!(
            serial == before || serial == attempted,
            "round {round}: serial {serial} in force; {before} before the kill, {attempted} attempted"
        );
        let metrics = rempart.metrics().await;
        assert!(
            metrics.contains("rempart_reloads_total{list=\"main\",outcome=\"refused\"} 0"),
            "round {round}: {metrics}"
        );
        if round == 20 {
            rempart.stop().await;
            break;
        }
        (before, attempted) = (serial, serial + 1);
        let text = list_text(attempted, &entries);
        let reload = if round % 2 == 0 {
            let url = format!("http://{}/v1/list", rempart.admin);
            let body = push_body(&setup, &text);
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                // The kill may cut the answer off.
                let _ = agent
                    .put(&url)
                    .header("Authorization", &format!("Bearer {TOKEN}"))
                    .send(body.as_bytes());
            })
        } else {
            setup.key.write_signed(&setup.list_path, &text);
            signal(&rempart.child, "-HUP");
            std::thread::spawn(|| {})
        };
        tokio::time::sleep(Duration::from_millis(random_ms())).await;
        signal(&rempart.child, "-KILL");
        assert!(rempart.exit_within(Duration::from_secs(5)).await.is_some());
        let _ = reload.join();
    }
}
