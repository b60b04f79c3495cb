//! Shared test harness: a real upstream (an in-process hickory authoritative
//! server on 127.0.0.1:0 serving a test zone, recording every question it
//! gets), signed lists, Rempart started in process, and a raw DNS client.

#![allow(dead_code, missing_docs)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::txt::Parser;
use hickory_server::Server;
use hickory_server::net::runtime::{Time, TokioRuntimeProvider};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The test zone. `bad.test` is listed by the test lists: its real address
/// 203.0.113.66 must never reach a client.
pub const ZONE: &str = r#"
$ORIGIN test.
$TTL 300
@           IN SOA ns.test. hostmaster.test. 1 3600 600 86400 300
@           IN NS ns.test.
ns          IN A 127.0.0.1
ok          IN A 198.51.100.1
ok          IN AAAA 2001:db8::1
ok          IN MX 10 mail.test.
info.block  IN A 192.0.2.80
info.block  IN AAAA 2001:db8::80
bad         IN A 203.0.113.66
bad         IN AAAA 2001:db8::66
bad         IN MX 10 mail.bad.test.
www.bad     IN A 203.0.113.66
host        IN A 203.0.113.67
sub.host    IN A 198.51.100.7
chain       IN CNAME alias.test.
alias       IN CNAME www.bad.test.
clean       IN CNAME ok.test.
notbad      IN A 198.51.100.9
big         IN TXT "record 00 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big         IN TXT "record 01 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big         IN TXT "record 02 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big         IN TXT "record 03 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big         IN TXT "record 04 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big         IN TXT "record 05 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big         IN TXT "record 06 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big         IN TXT "record 07 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big         IN TXT "record 08 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big         IN TXT "record 09 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big         IN TXT "record 10 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big         IN TXT "record 11 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big         IN TXT "record 12 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big         IN TXT "record 13 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big         IN TXT "record 14 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big         IN TXT "record 15 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big         IN TXT "record 16 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big         IN TXT "record 17 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big         IN TXT "record 18 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
big         IN TXT "record 19 xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
"#;

/// A recording wrapper around hickory's catalog.
#[derive(Clone)]
struct Recorder {
    catalog: Arc<Catalog>,
    seen: Arc<Mutex<Vec<String>>>,
}

#[async_trait::async_trait]
impl RequestHandler for Recorder {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        if let Ok(info) = request.request_info() {
            self.seen
                .lock()
                .unwrap()
                .push(info.query.name().to_string().to_ascii_lowercase());
        }
        self.catalog
            .handle_request::<R, T>(request, response_handle)
            .await
    }
}

/// A running test upstream.
pub struct TestUpstream {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
    _server: Server<Recorder>,
}

impl TestUpstream {
    /// Start serving `zone` (origin `test.`) on 127.0.0.1, UDP and TCP, one port.
    pub async fn start(zone: &str) -> TestUpstream {
        let origin = Name::from_ascii("test.").unwrap();
        let (origin, records) = Parser::new(zone, None, Some(origin)).parse().unwrap();
        let handler = InMemoryZoneHandler::<TokioRuntimeProvider>::new(
            origin.clone(),
            records,
            ZoneType::Primary,
            AxfrPolicy::Deny,
        )
        .unwrap();
        let mut catalog = Catalog::new();
        catalog.upsert(origin.into(), vec![Arc::new(handler)]);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorder = Recorder {
            catalog: Arc::new(catalog),
            seen: seen.clone(),
        };
        let mut server = Server::new(recorder);
        let (udp, tcp) = bind_pair().await;
        let addr = udp.local_addr().unwrap();
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 65_535);
        TestUpstream {
            addr,
            seen,
            _server: server,
        }
    }

    /// Every question name received so far (lowercase, with trailing dot).
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// True if any question was about `name` or a name below it.
    pub fn was_asked_under(&self, name: &str) -> bool {
        let name = format!("{}.", name.trim_end_matches('.'));
        self.seen()
            .iter()
            .any(|q| q == &name || q.ends_with(&format!(".{name}")))
    }
}

/// A UDP socket and a TCP listener on the same free loopback port.
pub async fn bind_pair() -> (tokio::net::UdpSocket, tokio::net::TcpListener) {
    for _ in 0..50 {
        let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = udp.local_addr().unwrap();
        if let Ok(tcp) = tokio::net::TcpListener::bind(addr).await {
            return (udp, tcp);
        }
    }
    panic!("no free port pair");
}

/// A minisign key pair for tests, written as files.
pub struct TestKey {
    pub public_path: PathBuf,
    sk: minisign::SecretKey,
    pk: minisign::PublicKey,
}

impl TestKey {
    pub fn new(dir: &Path, name: &str) -> TestKey {
        let minisign::KeyPair { pk, sk } =
            minisign::KeyPair::generate_unencrypted_keypair().unwrap();
        let public_path = dir.join(format!("{name}.pub"));
        std::fs::write(&public_path, pk.to_box().unwrap().to_string()).unwrap();
        TestKey {
            public_path,
            sk,
            pk,
        }
    }

    /// Write `text` to `path` and its signature to `path.minisig`.
    pub fn write_signed(&self, path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
        let sig = minisign::sign(
            Some(&self.pk),
            &self.sk,
            std::io::Cursor::new(text.as_bytes()),
            Some("test list"),
            None,
        )
        .unwrap();
        std::fs::write(sig_path(path), sig.to_string()).unwrap();
    }
}

pub fn sig_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".minisig");
    PathBuf::from(p)
}

/// A v1 list text with `serial` and `(name, match, category, reference)` entries.
pub fn list_text(serial: u64, entries: &[(&str, &str, &str, &str)]) -> String {
    let mut t = format!(
        "#rempart-list v1\nissuer: TEST\nserial: {serial}\nissued: 2026-01-01T00:00:00Z\nexpires: 2099-01-01T00:00:00Z\n\nname\tmatch\tcategory\treference\tadded\n"
    );
    for (name, kind, category, reference) in entries {
        t.push_str(&format!(
            "{name}\t{kind}\t{category}\t{reference}\t2026-01-01\n"
        ));
    }
    t
}

/// The list of the BEHAVIOUR section 7 examples.
pub const ENTRIES: &[(&str, &str, &str, &str)] = &[
    ("bad.test", "subtree", "terrorism", "REF-0001"),
    ("host.test", "exact", "child-abuse", "REF-0002"),
];

/// A temp dir with a key, a signed list and a config for Rempart.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub key: TestKey,
    pub list_path: PathBuf,
}

impl Setup {
    pub fn new(entries: &[(&str, &str, &str, &str)]) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let key = TestKey::new(dir.path(), "test");
        let list_path = dir.path().join("list.txt");
        key.write_signed(&list_path, &list_text(1, entries));
        Setup {
            dir,
            key,
            list_path,
        }
    }

    /// The audit trail's directory.
    pub fn audit_dir(&self) -> PathBuf {
        self.dir.path().join("audit")
    }

    /// A config with the given upstream and extra TOML appended to sections
    /// (`server_extra` goes in [server], `redirect_extra` in [redirect]...).
    pub fn config(&self, upstream: SocketAddr, extra: &Extra) -> String {
        format!(
            r#"
[server]
listen = ["127.0.0.1:0"]
udp_sockets = 2
{server}
[admin]
listen = "127.0.0.1:0"
{admin}
[upstream]
servers = ["{upstream}"]
timeout_ms = {timeout}
[list]
path = "{list}"
trusted_keys = ["{key}"]
state_dir = "{state}"
{list_extra}
[audit]
dir = "{audit_dir}"
{seal_key}{audit}
[redirect]
{redirect}
ttl = 60
ede_text = "Blocked: see http://info.block.test/"
"#,
            server = extra.server,
            admin = extra.admin,
            audit = extra.audit,
            // Never the installed default (/var/lib/rempart): a machine
            // with Rempart set up must not lend its key to the tests.
            seal_key = if extra.audit.contains("seal_key") {
                String::new()
            } else {
                format!(
                    "seal_key = \"{}\"\n",
                    self.dir.path().join("audit-seal.key").display()
                )
            },
            audit_dir = self.audit_dir().display(),
            timeout = extra.timeout_ms,
            list = self.list_path.display(),
            key = self.key.public_path.display(),
            state = self.dir.path().join("state").display(),
            list_extra = extra.list,
            redirect = if extra.redirect.is_empty() {
                "ipv4 = [\"192.0.2.80\"]\nipv6 = [\"2001:db8::80\"]"
            } else {
                extra.redirect
            },
        )
    }
}

/// Extra config lines per section.
pub struct Extra {
    pub server: &'static str,
    pub admin: &'static str,
    pub audit: &'static str,
    pub list: &'static str,
    pub redirect: &'static str,
    pub timeout_ms: u64,
}

impl Default for Extra {
    fn default() -> Self {
        Extra {
            server: "",
            admin: "",
            audit: "",
            list: "",
            redirect: "",
            timeout_ms: 2000,
        }
    }
}

/// Rempart running in process.
pub struct Rempart {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub service: Option<rempart::service::Service>,
}

impl Rempart {
    pub async fn start(config_text: &str) -> Rempart {
        let config =
            rempart::config::Config::from_toml(config_text, Path::new("test.toml")).unwrap();
        let service = rempart::service::Service::start(&config).await.unwrap();
        // Ready as systemd is told: the sockets serve (no test races the
        // serving loop's start).
        assert!(
            service.until_serving().await,
            "the DNS sockets never served"
        );
        Rempart {
            addr: service.dns_addrs[0],
            admin: service.admin_addr,
            service: Some(service),
        }
    }

    pub fn service(&self) -> &rempart::service::Service {
        self.service.as_ref().unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.service.take() {
            s.stop().await.unwrap();
        }
    }
}

/// How to ask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// Query options.
#[derive(Clone, Copy, Debug)]
pub struct Ask {
    pub edns: bool,
    pub rd: bool,
    pub do_bit: bool,
    pub cd: bool,
}

impl Default for Ask {
    fn default() -> Self {
        Ask {
            edns: true,
            rd: true,
            do_bit: false,
            cd: false,
        }
    }
}

/// Query from a given local address (e.g. "[::1]:0").
pub async fn query_from(
    server: SocketAddr,
    local: &str,
    transport: Transport,
    name: &str,
    qtype: RecordType,
) -> Message {
    query_inner(server, local, transport, name, qtype, Ask::default()).await
}

/// Send one query and return the parsed response.
pub async fn query(
    server: SocketAddr,
    transport: Transport,
    name: &str,
    qtype: RecordType,
    ask: Ask,
) -> Message {
    query_inner(server, "127.0.0.1:0", transport, name, qtype, ask).await
}

async fn query_inner(
    server: SocketAddr,
    local: &str,
    transport: Transport,
    name: &str,
    qtype: RecordType,
    ask: Ask,
) -> Message {
    let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    m.metadata.recursion_desired = ask.rd;
    m.metadata.checking_disabled = ask.cd;
    if ask.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        edns.set_dnssec_ok(ask.do_bit);
        m.set_edns(edns);
    }
    let bytes = m.to_vec().unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), async {
        match transport {
            Transport::Udp => {
                let s = tokio::net::UdpSocket::bind(local).await.unwrap();
                s.send_to(&bytes, server).await.unwrap();
                let mut buf = vec![0u8; 65_535];
                let (n, _) = s.recv_from(&mut buf).await.unwrap();
                buf.truncate(n);
                buf
            }
            Transport::Tcp => {
                let mut s = tokio::net::TcpStream::connect(server).await.unwrap();
                let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&bytes);
                s.write_all(&framed).await.unwrap();
                let len = s.read_u16().await.unwrap() as usize;
                let mut buf = vec![0u8; len];
                s.read_exact(&mut buf).await.unwrap();
                buf
            }
        }
    })
    .await
    .expect("no answer within 10 s");
    let response = Message::from_vec(&response).unwrap();
    assert_eq!(response.metadata.id, m.metadata.id, "answer id");
    assert_eq!(response.metadata.message_type, MessageType::Response);
    response
}

fn rand_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(4242);
    NEXT.fetch_add(7919, Ordering::Relaxed)
}

/// The EDE (info code, text) of a response, if any (RFC 8914: option 15).
pub fn ede(m: &Message) -> Option<(u16, String)> {
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    let edns = m.edns.as_ref()?;
    match edns.option(EdnsCode::Unknown(15))? {
        EdnsOption::Unknown(15, data) if data.len() >= 2 => Some((
            u16::from_be_bytes([data[0], data[1]]),
            String::from_utf8_lossy(&data[2..]).into_owned(),
        )),
        _ => None,
    }
}

/// "name ttl TYPE rdata" lines of the answer section.
pub fn answers(m: &Message) -> Vec<String> {
    m.answers
        .iter()
        .map(|r| format!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data))
        .collect()
}

/// A test CA that signs server certificates for `dns.test`.
pub struct Ca {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    pub pem: String,
}

impl Ca {
    pub fn new() -> Ca {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        // Not rcgen's default name, which the server certificate has too:
        // OpenSSL (curl) would take that one for self-signed.
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Rempart test CA");
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { params, key, pem }
    }

    /// A new certificate and key for `dns.test` and 127.0.0.1, written to
    /// `cert` and `key` (each replaced whole by a rename, as a renewal
    /// tool does); returns the certificate's DER.
    pub fn issue(&self, cert: &Path, key: &Path) -> Vec<u8> {
        let server_key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["dns.test".to_owned(), "127.0.0.1".to_owned()])
                .unwrap();
        let c = params
            .signed_by(
                &server_key,
                &rcgen::Issuer::from_params(&self.params, &self.key),
            )
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

/// Metric names in `text`: every `rempart_...` identifier, with the label
/// pairs of its selector when it has one (`name{k="v",...}`).
fn metric_references(text: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("rempart_") {
        let tail = &rest[at..];
        let len = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        let name = tail[..len].to_string();
        let mut labels = Vec::new();
        if let Some(selector) = tail[len..].strip_prefix('{') {
            let end = selector.find('}').unwrap_or(0);
            for pair in selector[..end].split(',').filter(|p| !p.trim().is_empty()) {
                let (k, v) = pair.split_once('=').expect("label pair");
                let v = v
                    .trim()
                    .trim_matches('\\')
                    .trim_matches('"')
                    .trim_matches('\\');
                labels.push((k.trim().to_string(), v.to_string()));
            }
        }
        found.push((name, labels));
        rest = &tail[len..];
    }
    found
}

/// Every metric (and label pair) that the shipped alerting rules and
/// dashboard (examples/monitoring) name, for which `wanted(name)`, is in
/// the `/metrics` text `body`; returns how many references were checked.
pub fn shipped_references_exist(body: &str, wanted: impl Fn(&str) -> bool) -> usize {
    let series: Vec<&str> = body.lines().filter(|l| !l.starts_with('#')).collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/monitoring");
    let mut checked = 0;
    for file in ["rempart-alerts.yml", "rempart-dashboard.json"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let refs = metric_references(&text);
        assert!(refs.len() > 5, "{file}: no metric found");
        for (name, labels) in refs {
            if !wanted(&name) {
                continue;
            }
            // A histogram is named by its base name or by its series'.
            let lines: Vec<&&str> = series
                .iter()
                .filter(|l| {
                    ["{", " ", "_bucket{", "_sum ", "_count "]
                        .iter()
                        .any(|end| l.starts_with(&format!("{name}{end}")))
                })
                .collect();
            assert!(
                !lines.is_empty(),
                "{file} names {name}, which /metrics does not have:\n{body}"
            );
            for (k, v) in labels {
                let pair = format!("{k}=\"{v}\"");
                assert!(
                    lines.iter().any(|l| l.contains(&pair)),
                    "{file} selects {name}{{{pair}}}, a label /metrics does not give:\n{body}"
                );
            }
            checked += 1;
        }
    }
    checked
}
