//! The admin listener: /healthz, /readyz, /metrics with every documented
//! metric name.

mod common;

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
        "rempart_redirects_total{category=\"terrorism\"} 2",
        "rempart_list_serial 1",
        "rempart_list_entries 2",
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
        metrics.contains("rempart_reloads_total{outcome=\"refused\"} 1"),
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
