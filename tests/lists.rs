//! Issue 17: several authorities, each with its own signed list, keys and
//! answer, enforced by one resolver. Three lists from three key pairs
//! (made here, as tests/list_gates.rs does), in this precedence order:
//!
//! | list | keys | entries | answer |
//! | --- | --- | --- | --- |
//! | `lcen` | OFAC's | `bad.test`, `shared.test` | `[redirect]`: 192.0.2.80, 2001:db8::80 |
//! | `anj` | ANJ's | `casino.test`, `www.shared.test`, `c2.test` | its own: 198.51.100.10, structured EDE text |
//! | `anssi` | ANSSI's | `c2.test`, `botnet.test`, `casino.test` | NXDOMAIN |

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use rempart::admission::Verdict;

const LCEN: &[(&str, &str, &str, &str)] = &[
    ("bad.test", "subtree", "terrorism", "LCEN-0001"),
    ("shared.test", "subtree", "terrorism", "LCEN-0002"),
];
const ANJ: &[(&str, &str, &str, &str)] = &[
    ("casino.test", "subtree", "gambling", "ANJ-0001"),
    ("www.shared.test", "subtree", "gambling", "ANJ-0002"),
    ("c2.test", "exact", "gambling", "ANJ-0003"),
];
const ANSSI: &[(&str, &str, &str, &str)] = &[
    ("c2.test", "subtree", "cyber-attack", "ANSSI-0001"),
    ("botnet.test", "subtree", "cyber-attack", "ANSSI-0002"),
    ("casino.test", "subtree", "cyber-attack", "ANSSI-0003"),
];

const LCEN_TEXT: &str = "Blocked by order of OFAC (LCEN 6-1): http://info.block.test/";
const ANJ_JSON: &str = r#"{"c":["mailto:recours@anj.example"],"j":"illegal gambling","o":"ANJ"}"#;
const ANSSI_TEXT: &str = "Blocked by ANSSI (LPM 2024): cyber-attack domain";
const TOKEN: &str = "admin-token-0123456789abcdef";

/// One authority: its key pair and its list file.
struct Authority {
    key: TestKey,
    path: PathBuf,
}

/// Three authorities in one directory, each list signed by its own key.
struct Three {
    dir: tempfile::TempDir,
    lcen: Authority,
    anj: Authority,
    anssi: Authority,
}

impl Three {
    fn new() -> Three {
        let dir = tempfile::tempdir().unwrap();
        let authority = |name: &str, entries| {
            let sub = dir.path().join(name);
            std::fs::create_dir(&sub).unwrap();
            let key = TestKey::new(&sub, name);
            let path = sub.join("list.txt");
            key.write_signed(&path, &list_text(1, entries));
            Authority { key, path }
        };
        let (lcen, anj, anssi) = (
            authority("lcen", LCEN),
            authority("anj", ANJ),
            authority("anssi", ANSSI),
        );
        Three {
            dir,
            lcen,
            anj,
            anssi,
        }
    }

    fn config(&self, upstream: std::net::SocketAddr) -> String {
        let token_file = self.dir.path().join("token");
        std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        format!(
            r#"
[server]
listen = ["127.0.0.1:0"]
udp_sockets = 2
[admin]
listen = "127.0.0.1:0"
token_file = "{token}"
[upstream]
servers = ["{upstream}"]
[list]
state_dir = "{state}"
watch = false
[audit]
dir = "{audit}"
[redirect]
ipv4 = ["192.0.2.80"]
ipv6 = ["2001:db8::80"]
ede_text = "{LCEN_TEXT}"

[[lists]]
id = "lcen"
path = "{lcen}"
trusted_keys = ["{lcen_key}"]

[[lists]]
id = "anj"
path = "{anj}"
trusted_keys = ["{anj_key}"]
deadline_hours = 120
redirect = {{ ipv4 = ["198.51.100.10"], ttl = 120, ede_json = {{ c = ["mailto:recours@anj.example"], j = "illegal gambling", o = "ANJ" }} }}

[[lists]]
id = "anssi"
path = "{anssi}"
trusted_keys = ["{anssi_key}"]
action = "nxdomain"
redirect = {{ ttl = 300, ede_text = "{ANSSI_TEXT}" }}
"#,
            token = token_file.display(),
            state = self.dir.path().join("state").display(),
            audit = self.dir.path().join("audit").display(),
            lcen = self.lcen.path.display(),
            lcen_key = self.lcen.key.public_path.display(),
            anj = self.anj.path.display(),
            anj_key = self.anj.key.public_path.display(),
            anssi = self.anssi.path.display(),
            anssi_key = self.anssi.key.public_path.display(),
        )
    }
}

async fn ask(rempart: &Rempart, transport: Transport, name: &str, qtype: RecordType) -> Message {
    query(rempart.addr, transport, name, qtype, Ask::default()).await
}

/// The owner and TTL of the SOA in authority, if any.
fn soa(m: &Message) -> Option<(String, u32)> {
    m.authorities
        .iter()
        .find(|r| matches!(r.data, RData::SOA(_)))
        .map(|r| (r.name.to_string(), r.ttl))
}

fn serial(rempart: &Rempart, id: &str) -> Option<u64> {
    let lists = &rempart.service().lists;
    let a = lists.get(id).unwrap();
    a.policy().load().info().map(|i| i.serial)
}

/// Each list answers with its own redirect and EDE text, over UDP (the
/// receive loop's fast path, twice: its templates per list) and TCP (the
/// full path); NXDOMAIN for the list whose action it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_list_answers_with_its_own_redirect_and_ede_text() {
    let upstream = TestUpstream::start(ZONE).await;
    let three = Three::new();
    let rempart = Rempart::start(&three.config(upstream.addr)).await;
    for transport in [Transport::Udp, Transport::Udp, Transport::Tcp] {
        // lcen: the [redirect] section.
        let m = ask(&rempart, transport, "www.bad.test.", RecordType::A).await;
        assert_eq!(
            answers(&m),
            ["www.bad.test. 60 A 192.0.2.80"],
            "{transport:?}"
        );
        assert_eq!(ede(&m), Some((16, LCEN_TEXT.to_owned())));
        let m = ask(&rempart, transport, "bad.test.", RecordType::AAAA).await;
        assert_eq!(answers(&m), ["bad.test. 60 AAAA 2001:db8::80"]);
        // anj: its own address and TTL, no IPv6 (NODATA, never the
        // ministry's page), its structured EDE text.
        let m = ask(&rempart, transport, "play.casino.test.", RecordType::A).await;
        assert_eq!(
            answers(&m),
            ["play.casino.test. 120 A 198.51.100.10"],
            "{transport:?}"
        );
        assert_eq!(ede(&m), Some((16, ANJ_JSON.to_owned())));
        let m = ask(&rempart, transport, "casino.test.", RecordType::AAAA).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(answers(&m).is_empty(), "{:?}", answers(&m));
        assert_eq!(soa(&m), Some(("casino.test.".to_owned(), 120)));
        // anssi: NXDOMAIN with the SOA (RFC 2308 section 3) and EDE 16.
        for qtype in [RecordType::A, RecordType::AAAA, RecordType::MX] {
            let m = ask(&rempart, transport, "x.botnet.test.", qtype).await;
            assert_eq!(
                m.metadata.response_code,
                ResponseCode::NXDomain,
                "{transport:?} {qtype}"
            );
            assert!(m.answers.is_empty());
            assert_eq!(soa(&m), Some(("botnet.test.".to_owned(), 300)));
            assert_eq!(ede(&m), Some((16, ANSSI_TEXT.to_owned())));
        }
    }
    // Nothing listed went upstream; the rest did.
    let m = ask(&rempart, Transport::Udp, "ok.test.", RecordType::A).await;
    assert_eq!(answers(&m), ["ok.test. 300 A 198.51.100.1"]);
    for listed in ["bad.test", "casino.test", "botnet.test"] {
        assert!(
            !upstream.was_asked_under(listed),
            "{listed} leaked upstream"
        );
    }
    rempart.stop().await;
}

/// The first list with a matching entry decides, even when a later list
/// has a more specific one; within a list, the most specific entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_list_in_the_config_decides() {
    let upstream = TestUpstream::start(ZONE).await;
    let three = Three::new();
    let rempart = Rempart::start(&three.config(upstream.addr)).await;
    for transport in [Transport::Udp, Transport::Tcp] {
        // lcen (shared.test) before anj (www.shared.test).
        let m = ask(&rempart, transport, "a.www.shared.test.", RecordType::A).await;
        assert_eq!(answers(&m), ["a.www.shared.test. 60 A 192.0.2.80"]);
        // anj (casino.test) before anssi (casino.test).
        let m = ask(&rempart, transport, "casino.test.", RecordType::A).await;
        assert_eq!(answers(&m), ["casino.test. 120 A 198.51.100.10"]);
        // anj lists c2.test exact: its subdomains fall to anssi's subtree.
        let m = ask(&rempart, transport, "c2.test.", RecordType::A).await;
        assert_eq!(answers(&m), ["c2.test. 120 A 198.51.100.10"]);
        let m = ask(&rempart, transport, "cnc.c2.test.", RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    }
    // The audit trail and the metrics name the list that decided.
    let (_, metrics) = get(format!("http://{}/metrics", rempart.admin)).await;
    for line in [
        "rempart_redirects_total{list=\"lcen\",category=\"terrorism\"} 2",
        "rempart_redirects_total{list=\"anj\",category=\"gambling\"} 4",
        "rempart_redirects_total{list=\"anssi\",category=\"cyber-attack\"} 2",
        "rempart_list_serial{list=\"anssi\"} 1",
        "rempart_list_entries{list=\"anj\"} 3",
    ] {
        assert!(metrics.contains(line), "{line} not in:\n{metrics}");
    }
    let audit = three.dir.path().join("audit");
    rempart.stop().await;
    let records = audit_records(&audit);
    let decided = |qname: &str| {
        records
            .iter()
            .filter(|r| r["kind"] == "redirect" && r["qname"] == qname)
            .map(|r| {
                (
                    r["list"].as_str().unwrap().to_owned(),
                    r["rule"].as_str().unwrap().to_owned(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        decided("a.www.shared.test.")[0],
        ("lcen".into(), "shared.test".into())
    );
    assert_eq!(
        decided("casino.test.")[0],
        ("anj".into(), "casino.test".into())
    );
    assert_eq!(
        decided("cnc.c2.test.")[0],
        ("anssi".into(), "c2.test".into())
    );
    let nx = records
        .iter()
        .find(|r| r["kind"] == "redirect" && r["qname"] == "cnc.c2.test.")
        .unwrap();
    assert_eq!(nx["answer"], "nxdomain");
    // Each list applied at start is recorded with its id, its entries too.
    for id in ["lcen", "anj", "anssi"] {
        assert!(
            records
                .iter()
                .any(|r| r["kind"] == "list" && r["event"] == "applied" && r["list"] == id),
            "no applied record for {id}"
        );
    }
    assert!(
        records
            .iter()
            .any(|r| r["kind"] == "entry" && r["list"] == "anssi" && r["name"] == "botnet.test")
    );
    let verified = std::process::Command::new(env!("CARGO_BIN_EXE_rempart"))
        .args(["audit", "verify"])
        .arg(&audit)
        .output()
        .unwrap();
    assert!(verified.status.success(), "{verified:?}");
}

/// A refused list of one authority (a signature by another authority's
/// key, a rollback, a protected name) leaves every list in force as it was:
/// its own and the others'.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_list_of_one_authority_leaves_every_list_applied() {
    let upstream = TestUpstream::start(ZONE).await;
    let three = Three::new();
    let rempart = Rempart::start(&three.config(upstream.addr)).await;
    let lists = &rempart.service().lists;

    // A key of one authority does not sign for another: ANJ's list signed
    // by OFAC's key (trusted, but for lcen only).
    three.lcen.key.write_signed(
        &three.anj.path,
        &list_text(2, &[("ok.test", "subtree", "gambling", "X")]),
    );
    let v = lists.get("anj").unwrap().reread().await;
    let Verdict::Refused { reason } = v else {
        panic!("{v:?}")
    };
    assert!(
        reason.contains("signature") || reason.contains("key"),
        "{reason}"
    );
    // A rollback of ANSSI's list (serial 0 < 1), signed by ANSSI.
    three
        .anssi
        .key
        .write_signed(&three.anssi.path, &list_text(0, ANSSI));
    let v = lists.get("anssi").unwrap().reread().await;
    assert!(
        matches!(v, Verdict::Refused { ref reason } if reason.contains("serial")),
        "{v:?}"
    );
    // A protected name in OFAC's list.
    three.lcen.key.write_signed(
        &three.lcen.path,
        &list_text(2, &[("google.fr", "subtree", "terrorism", "X")]),
    );
    let v = lists.get("lcen").unwrap().reread().await;
    assert!(
        matches!(v, Verdict::Refused { ref reason } if reason.contains("protected")),
        "{v:?}"
    );

    // Every list in force is the one applied at start.
    for id in ["lcen", "anj", "anssi"] {
        assert_eq!(serial(&rempart, id), Some(1), "{id}");
    }
    for transport in [Transport::Udp, Transport::Tcp] {
        let m = ask(&rempart, transport, "bad.test.", RecordType::A).await;
        assert_eq!(answers(&m), ["bad.test. 60 A 192.0.2.80"]);
        let m = ask(&rempart, transport, "casino.test.", RecordType::A).await;
        assert_eq!(answers(&m), ["casino.test. 120 A 198.51.100.10"]);
        let m = ask(&rempart, transport, "botnet.test.", RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        // ok.test was in the refused ANJ list: still forwarded.
        let m = ask(&rempart, transport, "ok.test.", RecordType::A).await;
        assert_eq!(answers(&m), ["ok.test. 300 A 198.51.100.1"]);
    }
    // Each refusal is counted for its own list only.
    let (_, metrics) = get(format!("http://{}/metrics", rempart.admin)).await;
    for id in ["lcen", "anj", "anssi"] {
        let line = format!("rempart_reloads_total{{list=\"{id}\",outcome=\"refused\"}} 1");
        assert!(metrics.contains(&line), "{line} not in:\n{metrics}");
    }
    let audit = three.dir.path().join("audit");
    rempart.stop().await;
    let refused: Vec<String> = audit_records(&audit)
        .iter()
        .filter(|r| r["kind"] == "list" && r["event"] == "refused")
        .map(|r| r["list"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(refused, ["anj", "anssi", "lcen"]);
}

/// One list reloaded (by its own endpoint, or pushed) changes that list
/// only; an unknown id is 404; /v1/list means no list when there are
/// several and none is `main`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_and_reload_one_list() {
    let upstream = TestUpstream::start(ZONE).await;
    let three = Three::new();
    let rempart = Rempart::start(&three.config(upstream.addr)).await;
    let admin = rempart.admin;

    // ANSSI adds a name: reload that list alone.
    let mut anssi = ANSSI.to_vec();
    anssi.push(("phish.test", "subtree", "cyber-attack", "ANSSI-0004"));
    three
        .anssi
        .key
        .write_signed(&three.anssi.path, &list_text(2, &anssi));
    let (status, body) = post(format!("http://{admin}/v1/lists/anssi/reload")).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"outcome\":\"applied\"") && body.contains("\"serial\":2"),
        "{body}"
    );
    // The answer names the list it judged.
    assert!(body.contains("\"list\":\"anssi\""), "{body}");
    assert_eq!(serial(&rempart, "anssi"), Some(2));
    assert_eq!(serial(&rempart, "lcen"), Some(1));
    let m = ask(&rempart, Transport::Udp, "phish.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);

    // ANJ pushes a list with ANJ's key: applied to anj, kept in its own
    // state directory.
    let anj_text = list_text(3, &[("poker.test", "subtree", "gambling", "ANJ-0009")]);
    let signed = three.dir.path().join("anj-push.txt");
    three.anj.key.write_signed(&signed, &anj_text);
    let signature = std::fs::read_to_string(sig_path(&signed)).unwrap();
    let (status, body) = put(
        format!("http://{admin}/v1/lists/anj"),
        &anj_text,
        &signature,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(serial(&rempart, "anj"), Some(3));
    let m = ask(&rempart, Transport::Tcp, "poker.test.", RecordType::A).await;
    assert_eq!(answers(&m), ["poker.test. 120 A 198.51.100.10"]);
    // casino.test left ANJ's list: ANSSI's entry decides it now.
    let m = ask(&rempart, Transport::Udp, "casino.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(three.dir.path().join("state/anj").is_dir());

    // The same list pushed to another list's endpoint: not ANSSI's key.
    let (status, body) = put(
        format!("http://{admin}/v1/lists/anssi"),
        &anj_text,
        &signature,
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(serial(&rempart, "anssi"), Some(2));

    let (status, body) = post(format!("http://{admin}/v1/lists/arcom/reload")).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("lcen, anj, anssi"), "{body}");
    let (status, body) = post(format!("http://{admin}/v1/list/reload")).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = get(format!("http://{admin}/readyz")).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("lcen serial 1, anj serial 3, anssi serial 2"),
        "{body}"
    );
    rempart.stop().await;
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

async fn get(url: String) -> (u16, String) {
    tokio::task::spawn_blocking(move || {
        let mut resp = agent().get(&url).call().unwrap();
        let status = resp.status().as_u16();
        let mut body = String::new();
        resp.body_mut()
            .as_reader()
            .read_to_string(&mut body)
            .unwrap();
        (status, body)
    })
    .await
    .unwrap()
}

async fn post(url: String) -> (u16, String) {
    tokio::task::spawn_blocking(move || {
        let mut resp = agent()
            .post(&url)
            .header("Authorization", &format!("Bearer {TOKEN}"))
            .send_empty()
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().unwrap())
    })
    .await
    .unwrap()
}

async fn put(url: String, list: &str, signature: &str) -> (u16, String) {
    let body = serde_json::json!({ "list": list, "signature": signature }).to_string();
    tokio::task::spawn_blocking(move || {
        let mut resp = agent()
            .put(&url)
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

/// Every record of the trail in `dir`, in file order.
fn audit_records(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn rempart_cli(args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rempart"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `rempart list push --list ID` replaces that list only; `rempart list
/// inspect --config FILE NAME` says which list and entry decide a name and
/// why, from the lists the resolver keeps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_pushes_one_list_and_explains_a_decision() {
    let upstream = TestUpstream::start(ZONE).await;
    let three = Three::new();
    let config_text = three.config(upstream.addr);
    let rempart = Rempart::start(&config_text).await;
    let url = format!("http://{}", rempart.admin);
    let token = three.dir.path().join("token");
    let token = token.to_str().unwrap();

    let pushed = three.dir.path().join("anssi-2.txt");
    three.anssi.key.write_signed(
        &pushed,
        &list_text(
            2,
            &[("botnet.test", "subtree", "cyber-attack", "ANSSI-0002")],
        ),
    );
    let pushed = pushed.to_str().unwrap();
    let args = |list: &'static str| {
        vec![
            "list",
            "push",
            "--url",
            &url,
            "--token-file",
            token,
            "--list",
            list,
            pushed,
        ]
    };
    let (code, stdout, stderr) = tokio::task::block_in_place(|| rempart_cli(&args("anssi")));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(stdout.trim(), "applied serial 2");
    assert_eq!(serial(&rempart, "anssi"), Some(2));
    // ANSSI's list pushed as ANJ's: refused (ANJ's key only), exit 1.
    let (code, stdout, _) = tokio::task::block_in_place(|| rempart_cli(&args("anj")));
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.starts_with("refused:"), "{stdout}");
    let (code, _, stderr) = tokio::task::block_in_place(|| rempart_cli(&args("Not An Id")));
    assert_eq!(code, Some(2), "{stderr}");
    rempart.stop().await;

    let config = three.dir.path().join("rempart.toml");
    std::fs::write(&config, &config_text).unwrap();
    let config = config.to_str().unwrap();
    let inspect = |name: &str| rempart_cli(&["list", "inspect", "--config", config, name]);
    let (code, stdout, stderr) = inspect("A.WWW.Shared.Test");
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(
            "1. list lcen (serial 1 in force): shared.test subtree terrorism LCEN-0002  <- decides"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("2. list anj (serial 1 in force): www.shared.test subtree gambling ANJ-0002  (an earlier list decides)"), "{stdout}");
    assert!(
        stdout.contains("3. list anssi (serial 2 in force): no entry"),
        "{stdout}"
    );
    assert!(stdout.contains("decided by list lcen (the first list in the config with a matching entry), entry shared.test"), "{stdout}");
    assert!(
        stdout.contains("redirect to A 192.0.2.80, AAAA 2001:db8::80 (TTL 60)"),
        "{stdout}"
    );
    let (_, stdout, _) = inspect("x.botnet.test");
    assert!(stdout.contains("decided by list anssi"), "{stdout}");
    assert!(stdout.contains("NXDOMAIN"), "{stdout}");
    let (_, stdout, _) = inspect("ok.test");
    assert!(
        stdout.contains("not listed: forwarded upstream"),
        "{stdout}"
    );
    let (_, stdout, _) = inspect("wikipedia.org");
    assert!(stdout.contains("protected: wikipedia.org"), "{stdout}");
    let (_, stdout, _) = inspect("fr.wikipedia.org");
    assert!(
        stdout.contains("under the protected name wikipedia.org"),
        "{stdout}"
    );
}

/// Upgrade: the state directory and audit trail of a single-list resolver
/// (the trail begun by records without a `list` field, as written before
/// several lists), then the same config again, then a two-list config
/// (`main` + `anj`): main's list stays in force from its kept state, its
/// serial floor still refuses a rollback, and the trail verifies across.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_to_several_lists_keeps_main_state_and_trail() {
    use rempart::audit::{AuditSettings, Auditor, Event, ListEvent, Process};
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    let audit = setup.audit_dir();
    // The trail's first records, without `list`, as an earlier version
    // wrote them.
    let old = Auditor::start(
        AuditSettings {
            dir: audit.clone(),
            client_ip: rempart::config::ClientIpMode::None,
            queue: 1000,
            max_file_bytes: 1 << 20,
            retention_days: 0,
            seal: None,
        },
        rempart::metrics::Metrics::new(),
    )
    .unwrap();
    old.record_waiting(Event::Process(Process::now("start")));
    old.record_waiting(Event::List(ListEvent {
        event: "refused".into(),
        source: Some("list.txt".into()),
        reason: Some("an older version's refusal".into()),
        ..ListEvent::default()
    }));
    old.record_waiting(Event::Process(Process::now("stop")));
    old.stop();

    // 1. The single-list config: serial 1, then 2.
    let single = setup.config(upstream.addr, &Extra::default());
    let rempart = Rempart::start(&single).await;
    setup
        .key
        .write_signed(&setup.list_path, &list_text(2, ENTRIES));
    let v = rempart.service().admission.reread().await;
    assert!(matches!(v, Verdict::Applied { serial: 2, .. }), "{v:?}");
    rempart.stop().await;
    let state = setup.dir.path().join("state");
    let kept: Vec<String> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();

    // 2. The same config again, with the list file gone: the kept list.
    std::fs::remove_file(&setup.list_path).unwrap();
    let rempart = Rempart::start(&single).await;
    assert_eq!(serial(&rempart, "main"), Some(2));
    rempart.stop().await;

    // 3. Two lists: `main` where the lone [list] was, and ANJ's.
    let anj_dir = setup.dir.path().join("anj");
    std::fs::create_dir(&anj_dir).unwrap();
    let anj_key = TestKey::new(&anj_dir, "anj");
    let anj_path = anj_dir.join("list.txt");
    anj_key.write_signed(&anj_path, &list_text(1, ANJ));
    let lone = format!(
        "[list]\npath = \"{}\"\ntrusted_keys = [\"{}\"]\n",
        setup.list_path.display(),
        setup.key.public_path.display()
    );
    assert!(single.contains(&lone), "{single}");
    let two = single.replace(&lone, "[list]\n").replace(
        "[audit]",
        &format!(
            "[[lists]]\nid = \"main\"\npath = \"{}\"\ntrusted_keys = [\"{}\"]\n\n\
             [[lists]]\nid = \"anj\"\npath = \"{}\"\ntrusted_keys = [\"{}\"]\n\
             redirect = {{ ipv4 = [\"198.51.100.10\"] }}\n\n[audit]",
            setup.list_path.display(),
            setup.key.public_path.display(),
            anj_path.display(),
            anj_key.public_path.display()
        ),
    );
    let rempart = Rempart::start(&two).await;
    assert_eq!(
        serial(&rempart, "main"),
        Some(2),
        "main's kept list in force"
    );
    assert_eq!(serial(&rempart, "anj"), Some(1));
    let m = ask(&rempart, Transport::Udp, "bad.test.", RecordType::A).await;
    assert_eq!(answers(&m), ["bad.test. 60 A 192.0.2.80"]);
    let m = ask(&rempart, Transport::Udp, "casino.test.", RecordType::A).await;
    assert_eq!(answers(&m), ["casino.test. 60 A 198.51.100.10"]);
    // main's serial floor still holds: serial 1 is a rollback now.
    setup
        .key
        .write_signed(&setup.list_path, &list_text(1, ENTRIES));
    let v = rempart.service().lists.get("main").unwrap().reread().await;
    assert!(
        matches!(v, Verdict::Stale { .. } | Verdict::Refused { .. }),
        "{v:?}"
    );
    assert_eq!(serial(&rempart, "main"), Some(2));
    rempart.stop().await;
    // main's state files stayed where they were; anj's are beside them.
    for name in &kept {
        assert!(state.join(name).exists(), "{name} moved");
    }
    assert!(state.join("anj").is_dir());

    // The trail verifies across the three runs, and reads its older
    // records as list main's.
    let verified = std::process::Command::new(env!("CARGO_BIN_EXE_rempart"))
        .args(["audit", "verify"])
        .arg(&audit)
        .output()
        .unwrap();
    assert!(verified.status.success(), "{verified:?}");
    let records = audit_records(&audit);
    let lists: Vec<&str> = records
        .iter()
        .filter(|r| r["kind"] == "list")
        .map(|r| r["list"].as_str().unwrap_or("(none)"))
        .collect();
    assert_eq!(lists[0], "(none)");
    assert!(
        lists.contains(&"main") && lists.contains(&"anj"),
        "{lists:?}"
    );
    let first: rempart::audit::Line = serde_json::from_value(
        records
            .iter()
            .find(|r| r["kind"] == "list")
            .unwrap()
            .clone(),
    )
    .unwrap();
    let Event::List(event) = first.event else {
        panic!("{first:?}")
    };
    assert_eq!(event.list_id(), "main");
}

/// Each list's file is watched: a new file of one authority is applied to
/// its list alone, without a signal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_list_file_is_watched() {
    let upstream = TestUpstream::start(ZONE).await;
    let three = Three::new();
    let config = three
        .config(upstream.addr)
        .replace("watch = false", "watch = true");
    let rempart = Rempart::start(&config).await;
    let mut anj = ANJ.to_vec();
    anj.push(("poker.test", "subtree", "gambling", "ANJ-0004"));
    three
        .anj
        .key
        .write_signed(&three.anj.path, &list_text(2, &anj));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while serial(&rempart, "anj") != Some(2) {
        assert!(
            std::time::Instant::now() < deadline,
            "anj's new file not applied within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(serial(&rempart, "lcen"), Some(1));
    assert_eq!(serial(&rempart, "anssi"), Some(1));
    let m = ask(&rempart, Transport::Udp, "poker.test.", RecordType::A).await;
    assert_eq!(answers(&m), ["poker.test. 120 A 198.51.100.10"]);
    rempart.stop().await;
}

/// The receive loop writes each list's answer (redirect, NODATA, NXDOMAIN)
/// as the full path does: rcode, flags, sections, OPT and EDE alike, with
/// and without EDNS, DO and CD.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_list_answer_from_the_receive_loop_equals_the_full_path() {
    let upstream = TestUpstream::start(ZONE).await;
    let three = Three::new();
    let rempart = Rempart::start(&three.config(upstream.addr)).await;
    let asks = [
        Ask::default(),
        Ask {
            edns: false,
            ..Ask::default()
        },
        Ask {
            do_bit: true,
            cd: true,
            rd: false,
            ..Ask::default()
        },
    ];
    for name in [
        "Www.Bad.Test.",
        "casino.TEST.",
        "x.botnet.test.",
        "cnc.c2.test.",
    ] {
        for qtype in [
            RecordType::A,
            RecordType::AAAA,
            RecordType::MX,
            RecordType::ANY,
        ] {
            for ask in asks {
                let udp = query(rempart.addr, Transport::Udp, name, qtype, ask).await;
                let tcp = query(rempart.addr, Transport::Tcp, name, qtype, ask).await;
                let what = format!("{name} {qtype} {ask:?}");
                assert_eq!(
                    udp.metadata.response_code, tcp.metadata.response_code,
                    "{what}"
                );
                assert_eq!(
                    udp.metadata.flags().to_string(),
                    tcp.metadata.flags().to_string(),
                    "{what}"
                );
                assert_eq!(udp.queries, tcp.queries, "{what}");
                assert_eq!(answers(&udp), answers(&tcp), "{what}");
                assert_eq!(udp.authorities, tcp.authorities, "{what}");
                assert_eq!(udp.edns, tcp.edns, "{what}: OPT, DO and EDE");
            }
        }
    }
    rempart.stop().await;
}

/// A list whose answer is a CNAME to its information host gets it (and the
/// host's records, resolved normally), while the other lists keep their
/// addresses; the host is protected for every list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_list_in_cname_mode_beside_lists_with_addresses() {
    let upstream = TestUpstream::start(ZONE).await;
    let three = Three::new();
    let config = three.config(upstream.addr).replace(
        "redirect = { ipv4 = [\"198.51.100.10\"], ttl = 120,",
        "redirect = { cname = \"info.block.test\", ttl = 120,",
    );
    assert!(config.contains("cname = \"info.block.test\""));
    let rempart = Rempart::start(&config).await;
    for transport in [Transport::Udp, Transport::Tcp] {
        let m = ask(&rempart, transport, "casino.test.", RecordType::A).await;
        assert_eq!(
            answers(&m),
            [
                "casino.test. 120 CNAME info.block.test.",
                "info.block.test. 300 A 192.0.2.80"
            ],
            "{transport:?}"
        );
        assert_eq!(ede(&m), Some((16, ANJ_JSON.to_owned())));
        let m = ask(&rempart, transport, "bad.test.", RecordType::A).await;
        assert_eq!(answers(&m), ["bad.test. 60 A 192.0.2.80"]);
    }
    // A list that lists the information host is refused (protected).
    three.lcen.key.write_signed(
        &three.lcen.path,
        &list_text(2, &[("info.block.test", "exact", "terrorism", "X")]),
    );
    let v = rempart.service().lists.get("lcen").unwrap().reread().await;
    assert!(
        matches!(v, Verdict::Refused { ref reason } if reason.contains("protected")),
        "{v:?}"
    );
    rempart.stop().await;
}

/// The auditor's report per list and per authority: each list's
/// redirects, versions, refusals, and the delay evidence counted against
/// that list's own deadline (ANJ's 120 hours, LCEN's 24), in every format.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_report_counts_each_list_against_its_own_deadline() {
    let upstream = TestUpstream::start(ZONE).await;
    let three = Three::new();
    let rempart = Rempart::start(&three.config(upstream.addr)).await;
    let lists = &rempart.service().lists;
    for name in ["bad.test.", "www.bad.test.", "casino.test.", "botnet.test."] {
        ask(&rempart, Transport::Udp, name, RecordType::A).await;
    }
    // Version 2 of LCEN's and ANJ's lists, both issued 30 hours ago:
    // late for LCEN (24 h), in time for ANJ (120 h).
    let issued = crate_time_minus_hours(30);
    let v2 = |entries| {
        list_text(2, entries).replace("issued: 2026-01-01T00:00:00Z", &format!("issued: {issued}"))
    };
    three.lcen.key.write_signed(&three.lcen.path, &v2(LCEN));
    three.anj.key.write_signed(&three.anj.path, &v2(ANJ));
    for id in ["lcen", "anj"] {
        let v = lists.get(id).unwrap().reread().await;
        assert!(matches!(v, Verdict::Applied { .. }), "{id}: {v:?}");
    }
    // A refused version of ANSSI's list (a rollback).
    three
        .anssi
        .key
        .write_signed(&three.anssi.path, &list_text(0, ANSSI));
    let v = lists.get("anssi").unwrap().reread().await;
    assert!(matches!(v, Verdict::Refused { .. }), "{v:?}");
    let audit = three.dir.path().join("audit");
    rempart.stop().await;

    let report = |format: &str| {
        let (code, out, err) = rempart_cli(&[
            "audit",
            "report",
            "--format",
            format,
            audit.to_str().unwrap(),
        ]);
        assert_eq!(code, Some(0), "{err}");
        out
    };
    let json: serde_json::Value = serde_json::from_str(&report("json")).unwrap();
    let per_list = json["per_list"].as_array().unwrap();
    let of = |id: &str| {
        per_list
            .iter()
            .find(|l| l["list"] == id)
            .unwrap_or_else(|| panic!("{id} in {json:#}"))
    };
    assert_eq!(of("lcen")["redirects"], 2);
    assert_eq!(of("lcen")["deadline_hours"], 24);
    assert_eq!(of("lcen")["versions"], 2);
    assert_eq!(of("lcen")["late"], 1, "{json:#}");
    assert_eq!(of("lcen")["issuers"], serde_json::json!(["TEST"]));
    assert_eq!(of("anj")["redirects"], 1);
    assert_eq!(of("anj")["deadline_hours"], 120);
    assert_eq!(of("anj")["late"], 0, "{json:#}");
    assert_eq!(of("anssi")["redirects"], 1);
    assert_eq!(of("anssi")["refused"], 1);
    let version = |id: &str, serial: u64| {
        json["versions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["list"] == id && v["serial"] == serial)
            .unwrap_or_else(|| panic!("{id} {serial} in {json:#}"))
            .clone()
    };
    assert_eq!(version("lcen", 1)["obligation"], "first_list");
    assert_eq!(version("lcen", 2)["obligation"], "late");
    assert_eq!(version("anj", 2)["obligation"], "met");
    assert_eq!(version("anj", 2)["deadline_hours"], 120);
    let entries = json["per_entry"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["list"] == "anssi" && e["name"] == "botnet.test"),
        "{json:#}"
    );

    let csv = report("csv");
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let list_rows: Vec<&Vec<&str>> = rows.iter().filter(|r| r[0] == "list").collect();
    assert_eq!(list_rows.len(), 3, "{csv}");
    assert!(
        rows.iter().any(|r| r[0] == "version"
            && r[col("list")] == "anj"
            && r[col("deadline_hours")] == "120"
            && r[col("within_24h")] == "met"),
        "{csv}"
    );
    assert!(
        // (a reason may hold quoted commas: read the row's end)
        csv.lines()
            .any(|l| l.starts_with("refused,") && l.ends_with(",anssi,")),
        "{csv}"
    );

    let text = report("text");
    assert!(text.contains("Per list"), "{text}");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("anj ") && l.contains("120 h"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("TEST"), "{line}");
}

/// `hours` ago, as a list header writes times.
fn crate_time_minus_hours(hours: i64) -> String {
    let t = time::OffsetDateTime::now_utc() - time::Duration::hours(hours);
    rempart::text::rfc3339(t.replace_nanosecond(0).unwrap())
}
