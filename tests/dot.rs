//! DNS over TLS (RFC 7858, issue 19): Knot's `kdig +tls` against Rempart's
//! DoT listener, with a test CA made by rcgen; the certificate rotated on
//! disk is served to new connections while an established one goes on.
//! `.ci/run` installs knot-dnsutils.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls_pki_types::CertificateDer;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A test CA that signs server certificates for `dns.test`.
struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

impl Ca {
    fn new() -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { params, key, pem }
    }

    /// A new certificate and key for `dns.test` and 127.0.0.1, written to
    /// `cert` and `key` (each replaced whole by a rename, as a renewal
    /// tool does); returns the certificate's DER.
    fn issue(&self, cert: &Path, key: &Path) -> Vec<u8> {
        let server_key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["dns.test".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let c = params
            .signed_by(&server_key, &Issuer::from_params(&self.params, &self.key))
            .unwrap();
        let replace = |path: &Path, text: String| {
            let tmp = path.with_extension("new");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, path).unwrap();
        };
        replace(key, server_key.serialize_pem());
        replace(cert, c.pem());
        c.der().to_vec()
    }
}

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
}

async fn start() -> Dot {
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    let ca = Ca::new();
    let ca_file = setup.dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    let cert = setup.dir.path().join("cert.pem");
    let key = setup.dir.path().join("key.pem");
    let first_der = ca.issue(&cert, &key);
    let server = format!(
        "tls_listen = [\"127.0.0.1:0\"]\ntls_certificate = \"{}\"\ntls_key = \"{}\"\n",
        cert.display(),
        key.display()
    );
    // Extra takes &'static str: one leak per test.
    let server: &'static str = Box::leak(server.into_boxed_str());
    let config = setup.config(
        upstream.addr,
        &Extra {
            server,
            ..Extra::default()
        },
    );
    let rempart = Rempart::start(&config).await;
    let addr = rempart.service().tls_addrs[0];
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
    }
}

/// `kdig +tls` with the test CA, authenticating `dns.test`: its JSON
/// answer (RFC 8427).
fn kdig(dot: &Dot, name: &str) -> Value {
    let out = Command::new("kdig")
        .arg(format!("@{}", dot.addr.ip()))
        .args(["-p", &dot.addr.port().to_string()])
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
    let listed = tokio::task::block_in_place(|| kdig(&dot, "bad.test."));
    assert_eq!(listed["RCODE"], 0, "{listed:#}");
    assert_eq!(addresses(&listed), ["192.0.2.80"], "{listed:#}");
    assert_eq!(
        kdig_ede(&listed),
        Some((16, "Blocked: see http://info.block.test/".to_owned())),
        "{listed:#}"
    );
    let allowed = tokio::task::block_in_place(|| kdig(&dot, "ok.test."));
    assert_eq!(addresses(&allowed), ["198.51.100.1"], "{allowed:#}");

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
        ["bad.test. 60 A 192.0.2.80"]
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
