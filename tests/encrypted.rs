//! DNS over TLS (RFC 7858) and over HTTPS (RFC 8484), issue 19: Knot's
//! `kdig +tls` and `kdig +https`, and curl resolving through `--doh-url`,
//! against Rempart's listeners, with a test CA made by rcgen; the
//! certificate rotated on disk is served to new connections while an
//! established one goes on. `.ci/run` installs knot-dnsutils and curl.
//!
//! The redirect points at 127.0.0.5, where the test serves an
//! "information page", so that curl lands on it as a browser would.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use rcgen::KeyPair;
use rustls_pki_types::CertificateDer;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Dot {
    _upstream: TestUpstream,
    setup: Setup,
    rempart: Rempart,
    ca: Ca,
    ca_file: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    first_der: Vec<u8>,
    addr: SocketAddr,
    https: SocketAddr,
}

async fn start() -> Dot {
    start_with("").await
}

/// [`start`], with `more` in `[server]`.
async fn start_with(more: &str) -> Dot {
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    let ca = Ca::new();
    let ca_file = setup.dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let cert = setup.dir.path().join("cert.pem");
    let key = setup.dir.path().join("key.pem");
    let first_der = ca.issue(&cert, &key);
    let server = format!(
        "tls_listen = [\"127.0.0.1:0\"]\nhttps_listen = [\"127.0.0.1:0\"]\n\
         tls_certificate = \"{}\"\ntls_key = \"{}\"\n{more}\n",
        cert.display(),
        key.display()
    );
    // Extra takes &'static str: one leak per test.
    let server: &'static str = Box::leak(server.into_boxed_str());
    let config = setup.config(
        upstream.addr,
        &Extra {
            server,
            redirect: "ipv4 = [\"127.0.0.5\"]\nipv6 = [\"2001:db8::80\"]",
            ..Extra::default()
        },
    );
    let rempart = Rempart::start(&config).await;
    let addr = rempart.service().tls_addrs[0];
    let https = rempart.service().https_addrs[0];
    Dot {
        _upstream: upstream,
        setup,
        rempart,
        ca,
        ca_file,
        cert,
        key,
        first_der,
        addr,
        https,
    }
}

/// `kdig` with the test CA, authenticating `dns.test`, over `how` (`+tls`
/// for DoT, `+https` or `+https-get` for DoH): its JSON answer (RFC 8427).
fn kdig(dot: &Dot, how: &str, name: &str) -> Value {
    let addr = if how == "+tls" { dot.addr } else { dot.https };
    let out = Command::new("kdig")
        .arg(format!("@{}", addr.ip()))
        .args(["-p", &addr.port().to_string(), how])
        .arg(format!("+tls-ca={}", dot.ca_file.display()))
        .args(["+tls-hostname=dns.test", "+json", "+timeout=5", "+retry=0"])
        .args([name, "A"])
        .output()
        .expect("kdig is missing: install knot-dnsutils (.ci/run does)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kdig: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("kdig JSON {e}: {text}"))
}

/// The Extended DNS Error of a kdig JSON answer (RFC 8914: option 15 of
/// the OPT record, which kdig 3.2 shows as hex).
fn kdig_ede(v: &Value) -> Option<(u16, String)> {
    let opt = v["additionalRRs"]
        .as_array()?
        .iter()
        .find(|r| r["TYPEname"] == "OPT")?;
    let hex = opt["RDATAHEX"].as_str()?;
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let mut rest = &bytes[..];
    while rest.len() >= 4 {
        let code = u16::from_be_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
        let data = rest.get(4..4 + len)?;
        if code == 15 && len >= 2 {
            let info = u16::from_be_bytes([data[0], data[1]]);
            return Some((info, String::from_utf8_lossy(&data[2..]).into_owned()));
        }
        rest = &rest[4 + len..];
    }
    None
}

/// The redirect records of the audit trail.
fn redirects(dot: &Dot) -> Vec<Value> {
    dot.rempart.service().auditor().expect("audit on").flush();
    let mut redirects = Vec::new();
    for f in rempart::audit::trail::files(&dot.setup.audit_dir()).unwrap() {
        for l in std::fs::read_to_string(&f).unwrap().lines() {
            let v: Value = serde_json::from_str(l).unwrap();
            if v["kind"] == "redirect" {
                redirects.push(v);
            }
        }
    }
    redirects
}

/// The A addresses of a kdig JSON answer.
fn addresses(v: &Value) -> Vec<String> {
    v["answerRRs"]
        .as_array()
        .map(|rrs| {
            rrs.iter()
                .filter(|r| r["TYPEname"] == "A")
                .map(|r| r["rdataA"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_redirects_a_listed_name_with_ede_16_forwards_the_others_and_audits_dot() {
    let dot = start().await;
    let listed = tokio::task::block_in_place(|| kdig(&dot, "+tls", "bad.test."));
    assert_eq!(listed["RCODE"], 0, "{listed:#}");
    assert_eq!(addresses(&listed), ["127.0.0.5"], "{listed:#}");
    assert_eq!(
        kdig_ede(&listed),
        Some((16, "Blocked: see http://info.block.test/".to_owned())),
        "{listed:#}"
    );
    let allowed = tokio::task::block_in_place(|| kdig(&dot, "+tls", "ok.test."));
    assert_eq!(addresses(&allowed), ["198.51.100.1"], "{allowed:#}");

    dot.rempart.service().auditor().expect("audit on").flush();
    let redirects = redirects(&dot);
    assert_eq!(redirects.len(), 1, "{redirects:#?}");
    assert_eq!(redirects[0]["qname"], "bad.test.");
    assert_eq!(redirects[0]["transport"], "dot");

    let metrics = dot.rempart.service().metrics.render(0);
    for line in [
        "rempart_queries_total{transport=\"dot\",outcome=\"redirected\"} 1",
        "rempart_queries_total{transport=\"dot\",outcome=\"forwarded\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    dot.rempart.stop().await;
}

/// A TLS client trusting the test CA only.
fn connector(ca_pem: &str) -> tokio_rustls::TlsConnector {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

type TlsStream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A new DoT connection, and the certificate the server presented.
async fn connect(dot: &Dot) -> (TlsStream, Vec<u8>) {
    let tcp = tokio::net::TcpStream::connect(dot.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("dns.test").unwrap();
    let tls = connector(&dot.ca.pem).connect(name, tcp).await.unwrap();
    let der = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    (tls, der)
}

/// One query on an open DoT connection: the A addresses answered.
async fn ask(tls: &mut TlsStream, name: &str) -> Vec<String> {
    let mut m = Message::new(7, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    m.metadata.recursion_desired = true;
    let bytes = m.to_vec().unwrap();
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    tls.write_all(&framed).await.unwrap();
    let len = tls.read_u16().await.unwrap();
    let mut buf = vec![0u8; usize::from(len)];
    tls.read_exact(&mut buf).await.unwrap();
    answers(&Message::from_vec(&buf).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_rotated_on_disk_serves_new_connections_and_keeps_established_ones() {
    let dot = start().await;
    let (mut established, der) = connect(&dot).await;
    assert_eq!(der, dot.first_der);
    assert_eq!(
        ask(&mut established, "bad.test.").await,
        ["bad.test. 60 A 127.0.0.5"]
    );

    let second = dot.ca.issue(&dot.cert, &dot.key);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, der) = connect(&dot).await;
        if der == second {
            break;
        }
        assert_eq!(
            der, dot.first_der,
            "neither the old nor the new certificate"
        );
        assert!(
            Instant::now() < deadline,
            "the new certificate was not served in time"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The connection made before the rotation goes on.
    assert_eq!(
        ask(&mut established, "ok.test.").await,
        ["ok.test. 300 A 198.51.100.1"]
    );

    // A broken pair (a key that is not the certificate's) is refused:
    // the pair in force keeps serving.
    std::fs::write(&dot.key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    assert!(
        dot.rempart
            .service()
            .certificates
            .as_ref()
            .unwrap()
            .reload()
            .is_err()
    );
    let (_, der) = connect(&dot).await;
    assert_eq!(der, second);
    dot.rempart.stop().await;
}

/// An HTTP server on `ip:port` answering every request with `page`, for as
/// long as the test runs.
async fn web_page(ip: &str, port: u16, page: &'static str) -> Option<u16> {
    let listener = tokio::net::TcpListener::bind((ip, port)).await.ok()?;
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                    page.len()
                );
                let _ = s.write_all(reply.as_bytes()).await;
            });
        }
    });
    Some(port)
}

/// curl with the test CA trusted (for DoH too): (status, stdout, stderr).
fn curl(dot: &Dot, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(&dot.ca_file)
        .args(args)
        .output()
        .expect("curl is missing (.ci/run installs it)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doh_with_kdig_and_curl_redirects_a_listed_name_forwards_the_others_and_audits_doh() {
    let dot = start().await;
    // kdig: POST over HTTP/2, then GET.
    let listed = tokio::task::block_in_place(|| kdig(&dot, "+https", "bad.test."));
    assert_eq!(addresses(&listed), ["127.0.0.5"], "{listed:#}");
    assert_eq!(
        kdig_ede(&listed),
        Some((16, "Blocked: see http://info.block.test/".to_owned())),
        "{listed:#}"
    );
    let allowed = tokio::task::block_in_place(|| kdig(&dot, "+https-get", "ok.test."));
    assert_eq!(addresses(&allowed), ["198.51.100.1"], "{allowed:#}");

    // curl resolving through DoH (its GET-less POSTs, Accept: */*) lands
    // on the information page for the listed name, on the real site
    // (ns.test is 127.0.0.1) for an allowed one.
    let port = loop {
        let port = web_page("127.0.0.5", 0, "information page").await.unwrap();
        if web_page("127.0.0.1", port, "the real site").await.is_some() {
            break port;
        }
    };
    let doh_url = format!("https://127.0.0.1:{}/dns-query", dot.https.port());
    for (name, page) in [
        ("bad.test", "information page"),
        ("ns.test", "the real site"),
    ] {
        let url = format!("http://{name}:{port}/");
        let (ok, body, err) =
            tokio::task::block_in_place(|| curl(&dot, &["--doh-url", &doh_url, &url]));
        assert!(ok, "curl {url}: {err}");
        assert_eq!(body, page, "{url}");
    }

    let records = redirects(&dot);
    assert!(!records.is_empty());
    assert!(
        records
            .iter()
            .all(|r| r["transport"] == "doh" && r["qname"] == "bad.test."),
        "{records:#?}"
    );
    let metrics = dot.rempart.service().metrics.render(0);
    assert!(
        metrics.contains("rempart_queries_total{transport=\"doh\",outcome=\"redirected\"}"),
        "{metrics}"
    );
    dot.rempart.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doh_serves_http_1_1_get_without_content_type_and_bounds_what_it_reads() {
    use base64::Engine as _;
    let dot = start().await;
    let base = format!("https://127.0.0.1:{}", dot.https.port());
    let mut m = Message::new(0, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(
        Name::from_ascii("bad.test.").unwrap(),
        RecordType::A,
    ));
    m.metadata.recursion_desired = true;
    let q = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(m.to_vec().unwrap());
    let answer = dot.setup.dir.path().join("answer.bin");
    let url = format!("{base}/dns-query?dns={q}");
    let out = answer.to_str().unwrap();
    let (ok, written, err) = tokio::task::block_in_place(|| {
        curl(
            &dot,
            &[
                "--http1.1",
                "-H",
                "Accept: */*",
                "-o",
                out,
                "-w",
                "%{http_code} %{content_type} %{http_version}",
                &url,
            ],
        )
    });
    assert!(ok, "{err}");
    assert_eq!(written, "200 application/dns-message 1.1");
    let reply = Message::from_vec(&std::fs::read(&answer).unwrap()).unwrap();
    assert_eq!(answers(&reply), ["bad.test. 60 A 127.0.0.5"]);

    // 65536 octets of body: 413, unread. (Over HTTP/1.1: over HTTP/2 the
    // early answer ends the stream before the upload does, which curl
    // 7.88 reports as an error instead of the status. The client asks
    // before sending, as RFC 9110 section 10.1.1 has it for a large body:
    // without that, the connection closed on an unread body could cut
    // curl's upload before it read the status, a broken pipe under load.)
    let big = dot.setup.dir.path().join("big.bin");
    std::fs::write(&big, vec![0u8; 65_536]).unwrap();
    let data = format!("@{}", big.display());
    let status = |args: &[&str]| {
        let mut all = vec!["-o", "/dev/null", "-w", "%{http_code}"];
        all.extend_from_slice(args);
        let (_, code, err) = tokio::task::block_in_place(|| curl(&dot, &all));
        format!("{code}{err}")
    };
    let dns_query = format!("{base}/dns-query");
    let typed = "Content-Type: application/dns-message";
    assert_eq!(
        status(&[
            "--http1.1",
            "-H",
            typed,
            "-H",
            "Expect: 100-continue",
            "--expect100-timeout",
            "10",
            "--data-binary",
            &data,
            &dns_query
        ]),
        "413"
    );
    assert_eq!(
        status(&[
            "-H",
            "Content-Type: text/plain",
            "--data-binary",
            "x",
            &dns_query
        ]),
        "415"
    );
    assert_eq!(status(&["-X", "PUT", &dns_query]), "405");
    assert_eq!(status(&[&format!("{base}/other?dns={q}")]), "404");
    assert_eq!(status(&[&format!("{base}/dns-query?dns=***")]), "400");
    dot.rempart.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doh_closes_an_http2_connection_idle_for_tcp_idle_timeout_ms() {
    let dot = start_with("tcp_idle_timeout_ms = 500").await;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    {
        use rustls_pki_types::pem::PemObject;
        roots
            .add(CertificateDer::from_pem_slice(dot.ca.pem.as_bytes()).unwrap())
            .unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(dot.https).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("dns.test").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    // The client preface, then nothing: the server's SETTINGS come, then,
    // once the connection has been quiet for the idle timeout, its GOAWAY
    // and the end of the connection.
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let opened = Instant::now();
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match tls.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the idle connection was not closed");
    assert!(
        opened.elapsed() >= Duration::from_millis(400),
        "closed before the idle timeout: {:?}",
        opened.elapsed()
    );
    dot.rempart.stop().await;
}
