//! Hot reload (issue 4): every trigger, cache coherence, refusals that
//! change nothing, and a bounded load test across 20 list versions.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use rempart::admission::Source;
use rempart::list::Pair;

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
        metrics.contains("rempart_reloads_total{outcome=\"refused\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("rempart_list_serial 1"), "{metrics}");

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
        let signature = std::fs::read(sig_path(&path)).unwrap();
        let outcome = rempart
            .service()
            .admission
            .admit(Source::Push(Pair {
                list: text.into_bytes(),
                signature,
            }))
            .await;
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
