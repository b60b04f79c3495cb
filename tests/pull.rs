//! Pulling lists from a web origin (BEHAVIOUR section 10), against Debian's
//! nginx started by each test on loopback, serving the list and its
//! signature as static files (with ETag and Last-Modified, as nginx does by
//! default).

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use common::*;
use hickory_proto::rr::RecordType;
use serde_json::Value;

const NGINX: &str = "/usr/sbin/nginx";
const TOKEN: &str = "admin-token-0123456789abcdef";

/// nginx on 127.0.0.1:`port`, its prefix, logs and pid file in `dir`,
/// serving `dir/www`; one process (`master_process off`), so killing its
/// PID stops it whole.
struct Nginx {
    dir: PathBuf,
    port: u16,
    tls: Option<(PathBuf, PathBuf)>,
    /// Whether it answers conditional requests (ETag, If-Modified-Since).
    validators: bool,
    child: Option<Child>,
}

impl Nginx {
    fn start(dir: &Path, tls: Option<(PathBuf, PathBuf)>) -> Nginx {
        Nginx::start_with(dir, tls, true)
    }

    /// With `validators` false, no ETag and every request answered whole.
    fn start_with(dir: &Path, tls: Option<(PathBuf, PathBuf)>, validators: bool) -> Nginx {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::create_dir_all(dir.join("www")).unwrap();
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let mut n = Nginx {
            dir: dir.to_owned(),
            port,
            tls,
            validators,
            child: None,
        };
        n.run();
        n
    }

    /// Start (again) on the same port.
    fn run(&mut self) {
        let d = self.dir.display();
        let (ssl, certs) = match &self.tls {
            Some((cert, key)) => (
                " ssl",
                format!(
                    "ssl_certificate {};\n    ssl_certificate_key {};",
                    cert.display(),
                    key.display()
                ),
            ),
            None => ("", String::new()),
        };
        let validators = if self.validators {
            ""
        } else {
            "etag off;\n    if_modified_since off;"
        };
        let conf = format!(
            r#"
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
  log_format st '$status $request_method $uri';
  access_log {d}/access.log st;
  client_body_temp_path {d}/tmp/body;
  proxy_temp_path {d}/tmp/proxy;
  fastcgi_temp_path {d}/tmp/fastcgi;
  uwsgi_temp_path {d}/tmp/uwsgi;
  scgi_temp_path {d}/tmp/scgi;
  default_type text/plain;
  server {{
    listen 127.0.0.1:{port}{ssl};
    {certs}
    {validators}
    root {d}/www;
    # An object store's redirect, and a redirect loop.
    location /moved/ {{ rewrite ^/moved/(.*)$ /$1 redirect; }}
    location /loop/ {{ return 302 $uri; }}
  }}
}}
"#,
            port = self.port,
        );
        let conf_path = self.dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(&self.dir)
            .arg("-c")
            .arg(&conf_path)
            .arg("-e")
            .arg(self.dir.join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not listen: {}",
                std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kill it (by its PID) and wait for it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/list.txt", self.port)
    }

    /// Publish `text` signed by `key` as the list, with the modification
    /// time `age` seconds ago (nginx's ETag and Last-Modified are made of
    /// it: each version gets its own, and not within the last second).
    fn publish(&self, key: &TestKey, text: &str, age: u64) {
        let list = self.dir.join("www/list.txt");
        key.write_signed(&list, text);
        self.touch(age);
    }

    /// Set both files' modification time to `age` seconds ago.
    fn touch(&self, age: u64) {
        let when = SystemTime::now() - Duration::from_secs(age);
        let list = self.dir.join("www/list.txt");
        for f in [sig_path(&list), list] {
            std::fs::File::options()
                .write(true)
                .open(&f)
                .unwrap()
                .set_modified(when)
                .unwrap();
        }
    }

    /// `(status, path)` of every request served, in order.
    fn requests(&self) -> Vec<(u16, String)> {
        std::fs::read_to_string(self.dir.join("access.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut f = l.split(' ');
                let status = f.next()?.parse().ok()?;
                let _method = f.next()?;
                Some((status, f.next()?.to_owned()))
            })
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Everything the tests' resolvers log, kept for the tests that count
/// lines (one subscriber for the whole test binary: each test finds its
/// own lines by its origin's URL).
fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        struct Sink;
        impl Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                logs().lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let _ = tracing_subscriber::fmt()
            .with_writer(|| Sink)
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .try_init();
        Mutex::new(Vec::new())
    })
}

/// Log lines that contain every one of `words`.
fn log_lines(words: &[&str]) -> Vec<String> {
    String::from_utf8_lossy(&logs().lock().unwrap())
        .lines()
        .filter(|l| words.iter().all(|w| l.contains(w)))
        .map(str::to_owned)
        .collect()
}

/// A temp dir with a key, an origin and a resolver's state.
struct Site {
    dir: tempfile::TempDir,
    key: TestKey,
}

impl Site {
    fn new() -> Site {
        logs();
        let dir = tempfile::tempdir().unwrap();
        let key = TestKey::new(dir.path(), "origin");
        Site { dir, key }
    }

    fn origin(&self) -> PathBuf {
        self.dir.path().join("origin")
    }

    fn audit_dir(&self) -> PathBuf {
        self.dir.path().join("audit")
    }

    /// A resolver's config fetching `url` every second; `list` is added to
    /// `[list]`.
    fn config(&self, upstream: SocketAddr, url: &str, list: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let d = self.dir.path();
        let token_file = d.join("token");
        std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        format!(
            r#"
[server]
listen = ["127.0.0.1:0"]
udp_sockets = 1
[admin]
listen = "127.0.0.1:0"
token_file = "{token}"
[upstream]
servers = ["{upstream}"]
[list]
url = "{url}"
poll_interval_s = 1
trusted_keys = ["{key}"]
state_dir = "{state}"
{list}
[audit]
dir = "{audit}"
seal_key = "{seal}"
[redirect]
ipv4 = ["192.0.2.80"]
ttl = 60
"#,
            token = token_file.display(),
            key = self.key.public_path.display(),
            state = d.join("state").display(),
            audit = self.audit_dir().display(),
            seal = d.join("seal.key").display(),
        )
    }
}

fn v1() -> String {
    list_text(1, ENTRIES)
}

fn v2() -> String {
    list_text(
        2,
        &[
            ("bad.test", "subtree", "terrorism", "REF-0001"),
            ("new.test", "exact", "terrorism", "REF-0003"),
        ],
    )
}

/// GET `url` from a blocking thread: status and body.
async fn http(method: &'static str, url: String) -> (u16, String) {
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();
        let mut resp = match method {
            "POST" => agent
                .post(&url)
                .header("Authorization", &format!("Bearer {TOKEN}"))
                .send_empty()
                .unwrap(),
            _ => agent.get(&url).call().unwrap(),
        };
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().unwrap())
    })
    .await
    .unwrap()
}

/// `PUT /v1/list` with `list` and its signature by `key`.
async fn push(admin: SocketAddr, key: &TestKey, dir: &Path, list: &str) -> (u16, String) {
    let file = dir.join("pushed.txt");
    key.write_signed(&file, list);
    let body = serde_json::json!({
        "list": list,
        "signature": std::fs::read_to_string(sig_path(&file)).unwrap(),
    })
    .to_string();
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut resp = agent
            .put(&format!("http://{admin}/v1/list"))
            .header("Authorization", &format!("Bearer {TOKEN}"))
            .header("Content-Type", "application/json")
            .send(body.as_bytes())
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().unwrap())
    })
    .await
    .unwrap()
}

/// The value of the series `series` (name and labels, as /metrics writes
/// them) on `admin`'s /metrics, or `None`.
async fn metric(admin: SocketAddr, series: &str) -> Option<f64> {
    let (_, body) = http("GET", format!("http://{admin}/metrics")).await;
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// `rempart_list_fetches_total{list="main",result=...}`.
async fn fetches(admin: SocketAddr, result: &str) -> f64 {
    metric(
        admin,
        &format!("rempart_list_fetches_total{{list=\"main\",result=\"{result}\"}}"),
    )
    .await
    .unwrap_or(-1.0)
}

/// Wait (up to `within`) until `ok` holds; how long it took.
async fn until<F: std::future::Future<Output = bool>>(
    within: Duration,
    what: &str,
    mut ok: impl FnMut() -> F,
) -> Duration {
    let start = Instant::now();
    while !ok().await {
        assert!(start.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    start.elapsed()
}

/// The first answer's address for `name` A.
async fn address(rempart: &Rempart, name: &str) -> Vec<String> {
    let m = query(
        rempart.addr,
        Transport::Udp,
        name,
        RecordType::A,
        Ask::default(),
    )
    .await;
    answers(&m)
}

fn redirected(answers: &[String]) -> bool {
    answers.iter().any(|a| a.contains("192.0.2.80"))
}

/// The audit records of kind `list` and event `event`.
fn list_records(dir: &Path, event: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for f in rempart::audit::trail::files(dir).unwrap() {
        for l in std::fs::read_to_string(&f).unwrap().lines() {
            let v: Value = serde_json::from_str(l).unwrap();
            if v["kind"] == "list" && v["event"] == event {
                out.push(v);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_is_applied_within_one_poll_and_an_unchanged_origin_costs_304s() {
    let upstream = TestUpstream::start(ZONE).await;
    let site = Site::new();
    let nginx = Nginx::start(&site.origin(), None);
    nginx.publish(&site.key, &v1(), 100);
    let rempart = Rempart::start(&site.config(upstream.addr, &nginx.url(), "")).await;
    // The first fetch happens at start: the list is in force once started.
    assert_eq!(rempart.service().admission.serial().await, Some(1));
    assert!(redirected(&address(&rempart, "bad.test.").await));
    assert!(!redirected(&address(&rempart, "new.test.").await));

    // Unchanged: the next polls cost a 304 for each file, and count as
    // unchanged.
    until(Duration::from_secs(5), "two unchanged polls", || async {
        fetches(rempart.admin, "unchanged").await >= 2.0
    })
    .await;
    let requests = nginx.requests();
    for path in ["/list.txt", "/list.txt.minisig"] {
        assert_eq!(
            requests.iter().find(|(_, p)| p == path).map(|r| r.0),
            Some(200),
            "{requests:?}"
        );
        assert!(
            requests
                .iter()
                .filter(|(s, p)| *s == 304 && p == path)
                .count()
                >= 2,
            "no 304 for {path}: {requests:?}"
        );
    }
    // Only the first fetch transferred the files.
    assert_eq!(
        requests.iter().filter(|(s, _)| *s == 200).count(),
        2,
        "{requests:?}"
    );
    // The first fetch, at start, applied the list.
    assert_eq!(fetches(rempart.admin, "applied").await, 1.0);

    // A new version on the origin is in force within one poll interval
    // (1 s, +10% jitter, and the fetch).
    nginx.publish(&site.key, &v2(), 50);
    let took = until(Duration::from_secs(4), "serial 2 in force", || async {
        rempart.service().admission.serial().await == Some(2)
    })
    .await;
    assert!(took < Duration::from_millis(2500), "{took:?}");
    assert!(redirected(&address(&rempart, "new.test.").await));
    assert!(!redirected(&address(&rempart, "host.test.").await));
    assert_eq!(fetches(rempart.admin, "applied").await, 2.0);
    // The list was written to the state directory as it arrived, judged
    // from there and removed; what stays is the kept copy of version 2.
    let state = site.dir.path().join("state");
    let files: Vec<String> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!files.iter().any(|f| f.contains("fetched")), "{files:?}");
    let kept = rempart::list::state::load(&state).unwrap().unwrap();
    assert_eq!(kept.meta.serial, 2);
    assert_eq!(
        kept.list,
        std::fs::read(site.origin().join("www/list.txt")).unwrap()
    );
    assert_eq!(fetches(rempart.admin, "failed").await, 0.0);
    assert_eq!(
        metric(rempart.admin, "rempart_list_fetch_failing{list=\"main\"}").await,
        Some(0.0)
    );
    let last = metric(
        rempart.admin,
        "rempart_list_fetch_last_success_timestamp_seconds{list=\"main\"}",
    )
    .await
    .unwrap();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - last).abs() < 5.0, "{last} vs {now}");
    // Every fetch metric is on /metrics and documented.
    let (_, body) = http("GET", format!("http://{}/metrics", rempart.admin)).await;
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for name in rempart::metrics::FETCH_ALL {
        assert!(body.contains(name), "{name} missing from /metrics:\n{body}");
        assert!(readme.contains(name), "{name} not in the README");
    }
    // And the shipped alerts' references to them hold on this resolver.
    let checked =
        shipped_references_exist(&body, |name| rempart::metrics::FETCH_ALL.contains(&name));
    assert!(checked >= 1, "no alert on the fetch metrics");
    rempart.stop().await;
    // Each version applied once in the audit trail.
    let applied = list_records(&site.audit_dir(), "applied");
    assert_eq!(applied.len(), 2, "{applied:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_signature_or_an_older_serial_on_the_origin_is_refused_and_the_list_in_force_stays()
 {
    let upstream = TestUpstream::start(ZONE).await;
    let site = Site::new();
    let nginx = Nginx::start(&site.origin(), None);
    nginx.publish(&site.key, &v2(), 100);
    let rempart = Rempart::start(&site.config(upstream.addr, &nginx.url(), "")).await;
    assert_eq!(rempart.service().admission.serial().await, Some(2));
    let url = nginx.url();

    // A list changed after signing: the signature no longer verifies.
    let www = site.origin().join("www/list.txt");
    std::fs::write(&www, list_text(3, ENTRIES)).unwrap();
    nginx.touch(90);
    until(Duration::from_secs(6), "a refused fetch", || async {
        fetches(rempart.admin, "refused").await >= 1.0
    })
    .await;
    assert_eq!(rempart.service().admission.serial().await, Some(2));
    assert!(redirected(&address(&rempart, "new.test.").await));
    // Asked again by the operator: the same refusal, with its reason.
    let (status, body) = http(
        "POST",
        format!("http://{}/v1/lists/main/reload", rempart.admin),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("signature") && body.contains(&url), "{body}");

    // An older serial, properly signed: a rollback, refused.
    nginx.publish(&site.key, &v1(), 80);
    until(Duration::from_secs(6), "a second refused fetch", || async {
        fetches(rempart.admin, "refused").await >= 2.0
    })
    .await;
    assert_eq!(rempart.service().admission.serial().await, Some(2));
    assert!(redirected(&address(&rempart, "new.test.").await));
    // The same refused pair is neither admitted nor recorded again at
    // every poll.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(fetches(rempart.admin, "refused").await, 2.0);
    assert!(fetches(rempart.admin, "unchanged").await >= 2.0);
    rempart.stop().await;

    let refused = list_records(&site.audit_dir(), "refused");
    assert_eq!(refused.len(), 2, "{refused:#?}");
    for r in &refused {
        assert_eq!(r["source"], url.as_str(), "{r}");
    }
    assert!(
        refused[0]["reason"].as_str().unwrap().contains("signature"),
        "{}",
        refused[0]
    );
    assert!(
        refused[1]["reason"].as_str().unwrap().contains("serial"),
        "{}",
        refused[1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_without_validators_costs_transfers_but_no_second_admission() {
    let upstream = TestUpstream::start(ZONE).await;
    let site = Site::new();
    let nginx = Nginx::start_with(&site.origin(), None, false);
    nginx.publish(&site.key, &v1(), 100);
    let rempart = Rempart::start(&site.config(upstream.addr, &nginx.url(), "")).await;
    assert_eq!(rempart.service().admission.serial().await, Some(1));
    let reloads = |outcome: &'static str| async move {
        metric(
            rempart.admin,
            &format!("rempart_reloads_total{{list=\"main\",outcome=\"{outcome}\"}}"),
        )
        .await
        .unwrap_or(-1.0)
    };
    // Every poll transfers both files; the same pair is not admitted
    // again (no reload counted, nothing logged).
    until(Duration::from_secs(6), "three unchanged polls", || async {
        fetches(rempart.admin, "unchanged").await >= 3.0
    })
    .await;
    assert_eq!(reloads("unchanged").await, 0.0);
    let requests = nginx.requests();
    assert!(requests.iter().all(|(s, _)| *s == 200), "{requests:?}");
    assert!(requests.len() >= 8, "{requests:?}");

    // A broken pair: refused and recorded once, however many polls see it.
    std::fs::write(site.origin().join("www/list.txt"), v2()).unwrap();
    until(Duration::from_secs(6), "a refused fetch", || async {
        fetches(rempart.admin, "refused").await >= 1.0
    })
    .await;
    let unchanged = fetches(rempart.admin, "unchanged").await;
    until(Duration::from_secs(6), "three more polls", || async {
        fetches(rempart.admin, "unchanged").await >= unchanged + 3.0
    })
    .await;
    assert_eq!(fetches(rempart.admin, "refused").await, 1.0);
    assert_eq!(reloads("refused").await, 1.0);
    assert_eq!(rempart.service().admission.serial().await, Some(1));
    rempart.stop().await;
    assert_eq!(list_records(&site.audit_dir(), "refused").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_fetches_at_once_whatever_the_poll_interval() {
    let upstream = TestUpstream::start(ZONE).await;
    let site = Site::new();
    let nginx = Nginx::start(&site.origin(), None);
    nginx.publish(&site.key, &v1(), 100);
    let config = site
        .config(upstream.addr, &nginx.url(), "")
        .replace("poll_interval_s = 1\n", "poll_interval_s = 3600\n");
    let rempart = Rempart::start(&config).await;
    assert_eq!(rempart.service().admission.serial().await, Some(1));
    nginx.publish(&site.key, &v2(), 50);
    // What SIGHUP runs (`rempart serve`): every list reread, here fetched.
    let verdicts = rempart.service().lists.reread_all().await;
    assert!(
        matches!(verdicts.as_slice(), [(id, rempart::admission::Verdict::Applied { serial: 2, .. })] if id == "main"),
        "{verdicts:?}"
    );
    assert!(redirected(&address(&rempart, "new.test.").await));
    // Nothing new: two 304s, and the answer says unchanged.
    let verdicts = rempart.service().lists.reread_all().await;
    assert!(
        matches!(
            verdicts.as_slice(),
            [(_, rempart::admission::Verdict::Unchanged { serial: 2 })]
        ),
        "{verdicts:?}"
    );
    let requests = nginx.requests();
    assert_eq!(
        requests.iter().filter(|(s, _)| *s == 304).count(),
        2,
        "{requests:?}"
    );
    rempart.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_list_stands_until_the_origin_serves_a_newer_serial() {
    let upstream = TestUpstream::start(ZONE).await;
    let site = Site::new();
    let nginx = Nginx::start(&site.origin(), None);
    nginx.publish(&site.key, &v1(), 100);
    let rempart = Rempart::start(&site.config(upstream.addr, &nginx.url(), "")).await;
    assert_eq!(rempart.service().admission.serial().await, Some(1));
    let (status, body) = push(rempart.admin, &site.key, site.dir.path(), &v2()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(rempart.service().admission.serial().await, Some(2));
    // The origin still serves serial 1: unchanged polls, the push stands.
    let unchanged = fetches(rempart.admin, "unchanged").await;
    until(Duration::from_secs(6), "three more polls", || async {
        fetches(rempart.admin, "unchanged").await >= unchanged + 3.0
    })
    .await;
    assert_eq!(rempart.service().admission.serial().await, Some(2));
    assert!(redirected(&address(&rempart, "new.test.").await));
    assert_eq!(fetches(rempart.admin, "refused").await, 0.0);
    // A newer serial on the origin replaces it.
    nginx.publish(&site.key, &list_text(3, ENTRIES), 50);
    until(
        Duration::from_secs(4),
        "serial 3 from the origin",
        || async { rempart.service().admission.serial().await == Some(3) },
    )
    .await;
    assert!(!redirected(&address(&rempart, "new.test.").await));
    rempart.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_down_keeps_the_list_serving_is_said_once_and_recovers() {
    let upstream = TestUpstream::start(ZONE).await;
    let site = Site::new();
    let mut nginx = Nginx::start(&site.origin(), None);
    nginx.publish(&site.key, &v1(), 100);
    let url = nginx.url();
    let rempart = Rempart::start(&site.config(upstream.addr, &url, "")).await;
    assert_eq!(rempart.service().admission.serial().await, Some(1));

    nginx.kill();
    until(Duration::from_secs(5), "failing", || async {
        metric(rempart.admin, "rempart_list_fetch_failing{list=\"main\"}").await == Some(1.0)
    })
    .await;
    // Polls go on failing (with backoff: 1, 2, 4 s...): counted each time,
    // said once.
    until(Duration::from_secs(8), "three failed polls", || async {
        fetches(rempart.admin, "failed").await >= 3.0
    })
    .await;
    assert!(redirected(&address(&rempart, "bad.test.").await));
    assert_eq!(rempart.service().admission.serial().await, Some(1));
    let said = log_lines(&["cannot fetch the list", &url]);
    assert_eq!(said.len(), 1, "{said:#?}");

    // The origin back, with a new version: the poller recovers (within
    // the backoff, at most 8 intervals) and applies it.
    nginx.publish(&site.key, &v2(), 50);
    nginx.run();
    until(
        Duration::from_secs(12),
        "serial 2 after recovery",
        || async { rempart.service().admission.serial().await == Some(2) },
    )
    .await;
    assert_eq!(
        metric(rempart.admin, "rempart_list_fetch_failing{list=\"main\"}").await,
        Some(0.0)
    );
    assert_eq!(
        log_lines(&["the list's origin answers again", &url]).len(),
        1
    );
    assert_eq!(log_lines(&["cannot fetch the list", &url]).len(), 1);
    rempart.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_with_a_private_ca_in_ca_file_and_refused_without_it() {
    let upstream = TestUpstream::start(ZONE).await;
    let site = Site::new();
    let ca = Ca::new();
    let (cert, key) = (
        site.dir.path().join("cert.pem"),
        site.dir.path().join("key.pem"),
    );
    ca.issue(&cert, &key);
    let ca_file = site.dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let nginx = Nginx::start(&site.origin(), Some((cert, key)));
    nginx.publish(&site.key, &v1(), 100);
    let url = nginx.url();
    assert!(url.starts_with("https://"));

    // Without the CA, nothing kept: no list, so no start (list.on_missing
    // = "refuse", as for a missing list file), naming the URL and why.
    let config = site.config(upstream.addr, &url, "");
    let c = rempart::config::Config::from_toml(&config, Path::new("t.toml")).unwrap();
    let e = rempart::service::Service::start(&c).await.unwrap_err();
    let e = e.to_string();
    assert!(e.contains(&url) && e.contains("no valid list"), "{e}");
    assert!(e.to_lowercase().contains("certificate"), "{e}");

    // serve-unfiltered: serving, the TLS failure counted.
    let rempart =
        Rempart::start(&site.config(upstream.addr, &url, "on_missing = \"serve-unfiltered\""))
            .await;
    assert_eq!(rempart.service().admission.serial().await, None);
    assert!(!redirected(&address(&rempart, "bad.test.").await));
    assert!(fetches(rempart.admin, "failed").await >= 1.0);
    assert_eq!(
        metric(rempart.admin, "rempart_list_fetch_failing{list=\"main\"}").await,
        Some(1.0)
    );
    rempart.stop().await;

    // With ca_file: fetched over TLS and in force.
    let rempart = Rempart::start(&site.config(
        upstream.addr,
        &url,
        &format!("ca_file = \"{}\"", ca_file.display()),
    ))
    .await;
    assert_eq!(rempart.service().admission.serial().await, Some(1));
    assert!(redirected(&address(&rempart, "bad.test.").await));
    assert_eq!(fetches(rempart.admin, "applied").await, 1.0);
    rempart.stop().await;
    assert!(
        nginx.requests().iter().any(|(s, _)| *s == 200),
        "{:?}",
        nginx.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_followed_a_body_over_max_bytes_and_a_redirect_loop_fail() {
    let upstream = TestUpstream::start(ZONE).await;
    let site = Site::new();
    let nginx = Nginx::start(&site.origin(), None);
    nginx.publish(&site.key, &v1(), 100);
    let moved = nginx.url().replace("/list.txt", "/moved/list.txt");
    let rempart = Rempart::start(&site.config(upstream.addr, &moved, "max_bytes = 1024")).await;
    // Both files fetched through the redirect.
    assert_eq!(rempart.service().admission.serial().await, Some(1));
    let requests = nginx.requests();
    assert!(
        requests.contains(&(302, "/moved/list.txt.minisig".to_owned())),
        "{requests:?}"
    );

    // A list over list.max_bytes is cut as it arrives: a failed fetch (the
    // operator's reload says why, 502), the list in force kept.
    let entries: Vec<(String, &str, &str, &str)> = (0..40)
        .map(|i| {
            (
                format!("name{i}.bad.test"),
                "exact",
                "terrorism",
                "REF-0009",
            )
        })
        .collect();
    let entries: Vec<(&str, &str, &str, &str)> = entries
        .iter()
        .map(|(n, m, c, r)| (n.as_str(), *m, *c, *r))
        .collect();
    let big = list_text(2, &entries);
    assert!(big.len() > 1024);
    nginx.publish(&site.key, &big, 50);
    let reload = format!("http://{}/v1/lists/main/reload", rempart.admin);
    let (status, body) = http("POST", reload).await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body.contains("\"failed\"") && body.contains("larger than 1024 bytes"),
        "{body}"
    );
    assert_eq!(rempart.service().admission.serial().await, Some(1));
    assert_eq!(
        metric(rempart.admin, "rempart_list_fetch_failing{list=\"main\"}").await,
        Some(1.0)
    );
    rempart.stop().await;

    // A redirect loop is given up after 3 redirects.
    let looping = nginx.url().replace("/list.txt", "/loop/list.txt");
    let rempart = Rempart::start(&site.config(upstream.addr, &looping, "")).await;
    let reload = format!("http://{}/v1/lists/main/reload", rempart.admin);
    let (status, body) = http("POST", reload).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("more than 3 redirects"), "{body}");
    rempart.stop().await;
    let loops = nginx
        .requests()
        .iter()
        .filter(|(s, p)| *s == 302 && p == "/loop/list.txt")
        .count();
    // The first fetch at start and the reload (and a timer's poll on a
    // slow machine): 4 requests each, the first and 3 redirects.
    assert!(loops >= 8 && loops % 4 == 0, "{:?}", nginx.requests());
}

#[test]
fn config_check_names_a_ca_file_that_is_not_pem_a_bad_scheme_and_path_with_url() {
    let site = Site::new();
    let bad_ca = site.dir.path().join("ca.pem");
    std::fs::write(&bad_ca, "not a certificate\n").unwrap();
    let upstream: SocketAddr = "127.0.0.1:5300".parse().unwrap();
    let check = |text: String| {
        let file = site.dir.path().join("rempart.toml");
        std::fs::write(&file, text).unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_rempart"))
            .args(["config", "check"])
            .arg(&file)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, err) = check(site.config(
        upstream,
        "https://127.0.0.1:1/list.txt",
        &format!("ca_file = \"{}\"", bad_ca.display()),
    ));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("list.ca_file") && err.contains("ca.pem"),
        "{err}"
    );
    let (code, err) = check(site.config(upstream, "ftp://127.0.0.1/list.txt", ""));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("list.url") && err.contains("ftp://"), "{err}");
    assert!(err.contains("only http:// and https://"), "{err}");
    let (code, err) = check(site.config(upstream, "http://127.0.0.1/list.txt", "path = \"l.txt\""));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("list.url: list.path and list.url are both set"),
        "{err}"
    );
}
