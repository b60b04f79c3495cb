//! Rempart as the RPZ primary of a fleet (issue 18, point 1), against
//! the real peers from Debian started by the tests: Unbound takes
//! Rempart's zone by AXFR, then each applied list by NOTIFY and IXFR, and
//! redirects the listed names; a refused list never reaches it; a client
//! outside `rpz.allow_transfer` is refused. BIND 9 and PowerDNS Recursor
//! do the same over TSIG, and `dig -y` checks every message's signature.
//! `.ci/run` installs unbound, bind9, pdns-recursor and dnsutils.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rempart::admission::Verdict;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ZONE: &str = "main.rpz.rempart.";

/// A free loopback port for UDP and TCP.
async fn free_port() -> u16 {
    let (udp, _tcp) = bind_pair().await;
    udp.local_addr().unwrap().port()
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Unbound with Rempart's zone as its RPZ, stopped when dropped.
struct Unbound {
    child: Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Unbound {
    fn start(dir: &std::path::Path, port: u16, primary: SocketAddr) -> Unbound {
        assert!(have("unbound"), "unbound is missing (.ci/run installs it)");
        let log = dir.join("unbound.log");
        // Names outside the RPZ go to a forwarder that is not there
        // (SERVFAIL): the test never reaches for the Internet. Unbound's
        // built-in static zone for `test.` (RFC 6761) is turned off: it
        // answers before the RPZ.
        let conf = format!(
            r#"server:
  interface: 127.0.0.1
  port: {port}
  username: ""
  chroot: ""
  directory: "{dir}"
  pidfile: ""
  use-syslog: no
  logfile: "{log}"
  verbosity: 4
  do-daemonize: no
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  module-config: "respip iterator"
  outgoing-interface: 127.0.0.1
  local-zone: "test." nodefault
rpz:
  name: "{ZONE}"
  primary: {ip}@{rpz_port}
  allow-notify: 127.0.0.1
  rpz-log: yes
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@9
"#,
            dir = dir.display(),
            log = log.display(),
            ip = primary.ip(),
            rpz_port = primary.port(),
        );
        let conf_path = dir.join("unbound.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new("unbound")
            .args(["-d", "-c"])
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("unbound starts");
        Unbound {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Whether `name` A is answered with the redirect address by `server`
/// (no answer within a second: not).
async fn redirected(server: SocketAddr, name: &str) -> bool {
    let mut m = Message::new(0x7272, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    m.metadata.recursion_desired = true;
    let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    s.send_to(&m.to_vec().unwrap(), server).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let Ok(Ok((n, _))) = tokio::time::timeout(Duration::from_secs(1), s.recv_from(&mut buf)).await
    else {
        return false;
    };
    let m = Message::from_vec(&buf[..n]).unwrap();
    answers(&m).iter().any(|a| a.ends_with("A 192.0.2.80"))
}

/// Wait until Rempart serves zone serial `serial` (the zone is published
/// behind the list's start).
async fn until_published(rpz: &rempart::rpz::Rpz, serial: u32) {
    let start = Instant::now();
    while rpz.zone_of("main").map(|p| p.zone.serial) != Some(serial) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "zone serial {serial} never published"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wait until `name` is redirected by `server`, at most `within`.
async fn until_redirected(server: SocketAddr, name: &str, within: Duration) -> Duration {
    let start = Instant::now();
    while !redirected(server, name).await {
        assert!(
            start.elapsed() < within,
            "{name} not redirected within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    start.elapsed()
}

/// A transfer of `qtype` (AXFR, or IXFR from `serial`) over TCP: the
/// records of every message until the closing SOA, or the error code.
async fn transfer(
    server: SocketAddr,
    qtype: RecordType,
    serial: Option<u32>,
) -> Result<Vec<Record>, ResponseCode> {
    let apex = Name::from_ascii(ZONE).unwrap();
    let mut m = Message::new(0x5151, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(apex.clone(), qtype));
    if let Some(s) = serial {
        let soa = SOA::new(Name::root(), Name::root(), s, 0, 0, 0, 0);
        m.add_authority(Record::from_rdata(apex, 0, RData::SOA(soa)));
    }
    let bytes = m.to_vec().unwrap();
    let mut s = tokio::net::TcpStream::connect(server).await.unwrap();
    s.write_all(&(bytes.len() as u16).to_be_bytes())
        .await
        .unwrap();
    s.write_all(&bytes).await.unwrap();
    let mut records = Vec::new();
    let mut soas = 0;
    loop {
        let len = s.read_u16().await.unwrap() as usize;
        let mut buf = vec![0u8; len];
        s.read_exact(&mut buf).await.unwrap();
        let r = Message::from_vec(&buf).unwrap();
        assert_eq!(r.metadata.id, 0x5151);
        if r.metadata.response_code != ResponseCode::NoError {
            return Err(r.metadata.response_code);
        }
        for rec in r.answers {
            let is_soa = rec.record_type() == RecordType::SOA;
            records.push(rec);
            if is_soa {
                soas += 1;
            }
        }
        let first_serial = match &records[0].data {
            RData::SOA(soa) => soa.serial,
            _ => panic!("a transfer starts with the SOA"),
        };
        // The SOA alone (up to date), or the closing SOA at the current
        // serial after the first one.
        let last_is_current =
            matches!(&records.last().unwrap().data, RData::SOA(soa) if soa.serial == first_serial);
        if (records.len() == 1 && serial.is_some_and(|s| s == first_serial))
            || (soas >= 2 && records.len() > 1 && last_is_current)
        {
            return Ok(records);
        }
    }
}

fn lines(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .map(|r| format!("{} {}", r.name, r.data))
        .collect()
}

fn rpz_config(setup: &Setup, allow: &str, notify: &str) -> String {
    format!(
        "{}\n[rpz]\nlisten = [\"127.0.0.1:0\"]\nallow_transfer = [\"{allow}\"]\nnotify = [{notify}]\n",
        setup.config("127.0.0.1:9".parse().unwrap(), &Extra::default())
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbound_enforces_each_applied_list_by_notify_and_ixfr_and_never_a_refused_one() {
    let setup = Setup::new(ENTRIES);
    let unbound_port = free_port().await;
    let r = Rempart::start(&rpz_config(
        &setup,
        "127.0.0.0/8",
        &format!("\"127.0.0.1:{unbound_port}\""),
    ))
    .await;
    let rpz = r.service().rpz.clone().expect("[rpz] configured");
    let primary = r.service().rpz_addrs[0];
    until_published(&rpz, 1).await;
    let unbound = Unbound::start(setup.dir.path(), unbound_port, primary);

    // The first list, by AXFR: the subtree entry and its subdomains, the
    // exact entry but not below it.
    let start = Instant::now();
    while !redirected(unbound.addr, "bad.test.").await {
        let log: String = unbound
            .log()
            .lines()
            .filter(|l| !l.contains("using localzone"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "bad.test not redirected by Unbound within 15 s; its log:\n{}",
            &log[log.len().saturating_sub(6000)..]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(redirected(unbound.addr, "www.bad.test.").await);
    assert!(redirected(unbound.addr, "host.test.").await);
    assert!(!redirected(unbound.addr, "sub.host.test.").await);
    assert!(!redirected(unbound.addr, "new.test.").await);
    let before = rpz.stats();
    assert!(before.axfr + before.ixfr_full >= 1, "{before:?}");

    // A new list: in force at Unbound within 5 s, by IXFR.
    let mut entries = ENTRIES.to_vec();
    entries.push(("new.test", "subtree", "terrorism", "REF-0003"));
    setup
        .key
        .write_signed(&setup.list_path, &list_text(2, &entries));
    let v = r.service().admission.reread().await;
    assert!(matches!(v, Verdict::Applied { serial: 2, .. }), "{v:?}");
    let took = until_redirected(unbound.addr, "www.new.test.", Duration::from_secs(5)).await;
    let after = rpz.stats();
    assert!(
        after.ixfr > before.ixfr,
        "IXFR served: before {before:?}, after {after:?}"
    );
    assert_eq!(after.axfr, before.axfr, "no AXFR for the new list");
    assert!(after.notify_answered >= 2, "{after:?}");
    eprintln!("new list enforced by Unbound after {took:?}");

    // A refused list (older serial: a rollback) is never served.
    let mut refused = entries.clone();
    refused.push(("rollback.test", "subtree", "terrorism", "REF-0004"));
    setup
        .key
        .write_signed(&setup.list_path, &list_text(1, &refused));
    let v = r.service().admission.reread().await;
    assert!(matches!(v, Verdict::Refused { .. }), "{v:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!redirected(unbound.addr, "rollback.test.").await);
    assert_eq!(rpz.zone_of("main").unwrap().zone.serial, 2);
    let records = transfer(primary, RecordType::AXFR, None).await.unwrap();
    assert!(
        !lines(&records).iter().any(|l| l.contains("rollback")),
        "{records:?}"
    );
    assert!(
        unbound.log().contains("main.rpz.rempart"),
        "Unbound's log names the zone"
    );
    drop(unbound);
    r.stop().await;
}

#[tokio::test]
async fn axfr_and_ixfr_give_the_zone_and_the_differences() {
    let setup = Setup::new(ENTRIES);
    let r = Rempart::start(&rpz_config(&setup, "127.0.0.0/8", "")).await;
    let primary = r.service().rpz_addrs[0];
    until_published(r.service().rpz.as_ref().unwrap(), 1).await;

    let axfr = transfer(primary, RecordType::AXFR, None).await.unwrap();
    assert_eq!(
        lines(&axfr),
        [
            "main.rpz.rempart. localhost. hostmaster.main.rpz.rempart. 1 300 60 2592000 60",
            "main.rpz.rempart. localhost.",
            "bad.test.main.rpz.rempart. 192.0.2.80",
            "bad.test.main.rpz.rempart. 2001:db8::80",
            "*.bad.test.main.rpz.rempart. 192.0.2.80",
            "*.bad.test.main.rpz.rempart. 2001:db8::80",
            "host.test.main.rpz.rempart. 192.0.2.80",
            "host.test.main.rpz.rempart. 2001:db8::80",
            "main.rpz.rempart. localhost. hostmaster.main.rpz.rempart. 1 300 60 2592000 60",
        ]
    );

    // Serial 2 drops host.test and adds new.test as exact.
    let entries = [ENTRIES[0], ("new.test", "exact", "terrorism", "REF-0003")];
    setup
        .key
        .write_signed(&setup.list_path, &list_text(2, &entries));
    let v = r.service().admission.reread().await;
    assert!(matches!(v, Verdict::Applied { serial: 2, .. }), "{v:?}");
    let ixfr = transfer(primary, RecordType::IXFR, Some(1)).await.unwrap();
    let soa = |s| {
        format!("main.rpz.rempart. localhost. hostmaster.main.rpz.rempart. {s} 300 60 2592000 60")
    };
    assert_eq!(
        lines(&ixfr),
        [
            soa(2),
            soa(1),
            "host.test.main.rpz.rempart. 192.0.2.80".into(),
            "host.test.main.rpz.rempart. 2001:db8::80".into(),
            soa(2),
            "new.test.main.rpz.rempart. 192.0.2.80".into(),
            "new.test.main.rpz.rempart. 2001:db8::80".into(),
            soa(2),
        ]
    );
    // Up to date: the SOA alone. From a serial the history does not
    // reach: the whole zone.
    let current = transfer(primary, RecordType::IXFR, Some(2)).await.unwrap();
    assert_eq!(lines(&current), [soa(2)]);
    let full = transfer(primary, RecordType::IXFR, Some(0)).await.unwrap();
    assert_eq!(full.len(), 2 + 4 + 2 + 1, "{:?}", lines(&full));
    let stats = r.service().rpz.as_ref().unwrap().stats();
    assert_eq!(
        (stats.axfr, stats.ixfr, stats.ixfr_full, stats.ixfr_current),
        (1, 1, 1, 1)
    );
    let metrics = r.service().metrics.render(0);
    for kind in ["axfr", "ixfr", "ixfr_full", "ixfr_current"] {
        let line = format!("rempart_rpz_transfers_total{{kind=\"{kind}\"}} 1");
        assert!(metrics.contains(&line), "{line} not in:\n{metrics}");
    }
    r.stop().await;
}

#[tokio::test]
async fn a_transfer_from_outside_allow_transfer_is_refused() {
    let setup = Setup::new(ENTRIES);
    // 127.0.0.1 is not in 192.0.2.0/24.
    let r = Rempart::start(&rpz_config(&setup, "192.0.2.0/24", "")).await;
    let primary = r.service().rpz_addrs[0];
    until_published(r.service().rpz.as_ref().unwrap(), 1).await;
    assert_eq!(
        transfer(primary, RecordType::AXFR, None).await.unwrap_err(),
        ResponseCode::Refused
    );
    assert_eq!(
        transfer(primary, RecordType::IXFR, Some(0))
            .await
            .unwrap_err(),
        ResponseCode::Refused
    );
    let soa = query(
        primary,
        Transport::Udp,
        ZONE,
        RecordType::SOA,
        Ask::default(),
    )
    .await;
    assert_eq!(soa.metadata.response_code, ResponseCode::Refused);
    assert!(have("dig"), "dig is missing (.ci/run installs dnsutils)");
    {
        // Off the test's one runtime thread, which serves Rempart.
        let port = primary.port().to_string();
        let out = tokio::task::spawn_blocking(move || {
            Command::new("dig")
                .args(["+tcp", "-p", &port, "@127.0.0.1", ZONE, "AXFR"])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let out = String::from_utf8_lossy(&out.stdout);
        assert!(out.contains("Transfer failed"), "{out}");
    }
    // Three here, and dig's.
    assert_eq!(r.service().rpz.as_ref().unwrap().stats().refused, 4);
    let metrics = r.service().metrics.render(0);
    assert!(
        metrics.contains("rempart_rpz_refused_total{reason=\"not_allowed\"} 4"),
        "{metrics}"
    );
    r.stop().await;
}

/// A TSIG key file as `tsig-keygen` writes it, and its dig `-y` argument.
fn tsig_key(dir: &std::path::Path, secret: &str) -> (std::path::PathBuf, String) {
    let path = dir.join("xfr.key");
    std::fs::write(
        &path,
        format!("key \"xfr-key\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{secret}\";\n}};\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (path, format!("hmac-sha256:xfr-key:{secret}"))
}

const SECRET: &str = "ZLHhpSDJzvYg6bQfb5C8Yx6Y1qfdxhzd1pO8Q6QXcbk=";
const WRONG: &str = "AAAApSDJzvYg6bQfb5C8Yx6Y1qfdxhzd1pO8Q6QXcbk=";

/// `dig AXFR` of the zone from `server`, with `-y key` if given: its output.
async fn dig_axfr(server: SocketAddr, key: Option<String>) -> String {
    let port = server.port().to_string();
    tokio::task::spawn_blocking(move || {
        let mut c = Command::new("dig");
        c.args(["+tcp", "-p", &port, "@127.0.0.1", ZONE, "AXFR"]);
        if let Some(k) = key {
            c.args(["-y", &k]);
        }
        String::from_utf8_lossy(&c.output().unwrap().stdout).into_owned()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn with_a_tsig_key_transfers_must_be_signed_and_every_message_is() {
    assert!(have("dig"), "dig is missing (.ci/run installs dnsutils)");
    // Enough entries for a transfer of many messages (4 records each).
    let names: Vec<String> = (0..200).map(|i| format!("n{i}.test")).collect();
    let entries: Vec<(&str, &str, &str, &str)> = names
        .iter()
        .map(|n| (n.as_str(), "subtree", "terrorism", "REF"))
        .collect();
    let setup = Setup::new(&entries);
    let (key, with_key) = tsig_key(setup.dir.path(), SECRET);
    let config = format!(
        "{}tsig_key = \"{}\"\n",
        rpz_config(&setup, "127.0.0.0/8", ""),
        key.display()
    );
    let r = Rempart::start(&config).await;
    let primary = r.service().rpz_addrs[0];
    until_published(r.service().rpz.as_ref().unwrap(), 1).await;

    let out = dig_axfr(primary, Some(with_key)).await;
    // dig checks the TSIG of every message ("Couldn't verify signature"
    // otherwise).
    assert!(!out.contains("fail") && !out.contains("verify"), "{out}");
    assert!(out.contains("*.n199.test.main.rpz.rempart."), "{out}");
    assert_eq!(out.matches("\tSOA\t").count(), 2, "{out}");
    // More than one message here.
    // ";; XFR size: 802 records (messages 13, bytes 31457)"
    let messages = out
        .lines()
        .find_map(|l| l.split("(messages ").nth(1))
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    let n: usize = messages.split(',').next().unwrap().parse().unwrap();
    assert!(n > 5, "{messages}");

    let unsigned = dig_axfr(primary, None).await;
    assert!(unsigned.contains("Transfer failed"), "{unsigned}");
    let (_, wrong) = tsig_key(&setup.dir.path().join(".."), WRONG);
    let wrong = dig_axfr(primary, Some(wrong)).await;
    assert!(
        wrong.contains("Transfer failed") || wrong.contains("Couldn't verify"),
        "{wrong}"
    );
    assert!(!wrong.contains("*.n199.test"), "{wrong}");
    // The IXFR of an unsigned client is refused too; its SOA query is not.
    assert_eq!(
        transfer(primary, RecordType::IXFR, Some(0))
            .await
            .unwrap_err(),
        ResponseCode::Refused
    );
    let soa = query(
        primary,
        Transport::Udp,
        ZONE,
        RecordType::SOA,
        Ask::default(),
    )
    .await;
    assert_eq!(soa.metadata.response_code, ResponseCode::NoError);
    r.stop().await;
}

/// BIND 9 (`named`) as a secondary of Rempart's zone over TSIG, with the
/// zone as its response policy; stopped when dropped.
struct Bind {
    child: Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
}

impl Drop for Bind {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Bind {
    fn start(dir: &std::path::Path, port: u16, primary: SocketAddr, secret: &str) -> Bind {
        assert!(have("named"), "named is missing (.ci/run installs bind9)");
        let dir = dir.join("bind");
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("named.log");
        // Names outside the policy zone go to a forwarder that is not
        // there: never the Internet. min-update-interval 0: BIND otherwise
        // holds policy zone updates for 60 s.
        let conf = format!(
            r#"options {{
  directory "{dir}";
  pid-file none;
  listen-on port {port} {{ 127.0.0.1; }};
  listen-on-v6 {{ none; }};
  recursion yes;
  allow-query {{ 127.0.0.1; }};
  forwarders {{ 127.0.0.1 port 9; }};
  forward only;
  dnssec-validation no;
  notify no;
  response-policy {{ zone "{ZONE}" min-update-interval 0; }} qname-wait-recurse no;
}};
controls {{ }};
key "xfr-key" {{ algorithm hmac-sha256; secret "{secret}"; }};
zone "{ZONE}" {{
  type secondary;
  primaries {{ {ip} port {rpz_port} key "xfr-key"; }};
  allow-notify {{ {ip}; }};
}};
"#,
            dir = dir.display(),
            ip = primary.ip(),
            rpz_port = primary.port(),
        );
        let conf_path = dir.join("named.conf");
        std::fs::write(&conf_path, conf).unwrap();
        // -g: in the foreground, its log on stderr.
        let child = Command::new("named")
            .args(["-g", "-4", "-c"])
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("named starts");
        Bind {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_takes_the_zone_over_tsig_and_each_new_list_by_notify_and_ixfr() {
    let setup = Setup::new(ENTRIES);
    let (key, _) = tsig_key(setup.dir.path(), SECRET);
    let bind_port = free_port().await;
    let config = format!(
        "{}tsig_key = \"{}\"\n",
        rpz_config(&setup, "127.0.0.0/8", &format!("\"127.0.0.1:{bind_port}\"")),
        key.display()
    );
    let r = Rempart::start(&config).await;
    let rpz = r.service().rpz.clone().unwrap();
    let primary = r.service().rpz_addrs[0];
    until_published(&rpz, 1).await;
    let bind = Bind::start(setup.dir.path(), bind_port, primary, SECRET);

    let start = Instant::now();
    while !redirected(bind.addr, "www.bad.test.").await {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "www.bad.test not redirected by BIND within 20 s; its log:\n{}",
            bind.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(redirected(bind.addr, "host.test.").await);
    let before = rpz.stats();

    let mut entries = ENTRIES.to_vec();
    entries.push(("new.test", "subtree", "terrorism", "REF-0003"));
    setup
        .key
        .write_signed(&setup.list_path, &list_text(2, &entries));
    let v = r.service().admission.reread().await;
    assert!(matches!(v, Verdict::Applied { serial: 2, .. }), "{v:?}");
    let start = Instant::now();
    while !redirected(bind.addr, "new.test.").await {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "new.test not redirected by BIND within 5 s; its log:\n{}",
            bind.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = rpz.stats();
    assert!(after.ixfr > before.ixfr, "IXFR: {before:?} -> {after:?}");
    assert_eq!(after.axfr, before.axfr, "{after:?}");
    // BIND's own word: both transfers verified with the key.
    let log = bind.log();
    let signed = log
        .lines()
        .filter(|l| l.contains("transferred serial") && l.contains("TSIG 'xfr-key'"))
        .count();
    assert!(signed >= 2, "{log}");
    drop(bind);
    r.stop().await;
}

#[tokio::test]
async fn a_tsig_key_others_may_read_or_a_bad_one_stops_the_start() {
    let setup = Setup::new(ENTRIES);
    let (key, _) = tsig_key(setup.dir.path(), SECRET);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = format!(
        "{}tsig_key = \"{}\"\n",
        rpz_config(&setup, "127.0.0.0/8", ""),
        key.display()
    );
    let config = rempart::config::Config::from_toml(&config, std::path::Path::new("t")).unwrap();
    let err = rempart::service::Service::start(&config).await.unwrap_err();
    assert!(
        err.to_string().contains("rpz.tsig_key") && err.to_string().contains("chmod 600"),
        "{err}"
    );
    std::fs::write(
        &key,
        "key \"k\" { algorithm hmac-md5; secret \"c2VjcmV0LXNlY3JldC1zZWNyZXQ=\"; };",
    )
    .unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let err = rempart::service::Service::start(&config).await.unwrap_err();
    assert!(err.to_string().contains("only hmac-sha256"), "{err}");
}

/// PowerDNS Recursor with Rempart's zone as an RPZ over TSIG; stopped
/// when dropped. Recursor 4.8 ignores NOTIFY for RPZ: it polls at
/// `refresh`, set to 1 s here (the SOA's 300 s otherwise).
struct Recursor {
    child: Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
}

impl Drop for Recursor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Recursor {
    fn start(dir: &std::path::Path, port: u16, primary: SocketAddr, secret: &str) -> Recursor {
        assert!(
            have("pdns_recursor"),
            "pdns_recursor is missing (.ci/run installs pdns-recursor)"
        );
        let dir = dir.join("pdns");
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("recursor.log");
        std::fs::write(
            dir.join("rpz.lua"),
            format!(
                "rpzPrimary(\"{primary}\", \"{ZONE}\", {{refresh=1, tsigname=\"xfr-key\", tsigalgo=\"hmac-sha256\", tsigsecret=\"{secret}\"}})\n"
            ),
        )
        .unwrap();
        // Names outside the policy go to a forwarder that is not there;
        // its SERVFAILs are not kept in the packet cache, which would
        // answer a name the next list lists until they expire.
        std::fs::write(
            dir.join("recursor.conf"),
            format!(
                "local-address=127.0.0.1\nlocal-port={port}\nsocket-dir={d}\nlua-config-file={d}/rpz.lua\nforward-zones-recurse=.=127.0.0.1:9\npacketcache-servfail-ttl=0\ndaemon=no\nwrite-pid=no\ndisable-syslog=yes\nloglevel=6\nquiet=no\ndnssec=off\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let child = Command::new("pdns_recursor")
            .arg(format!("--config-dir={}", dir.display()))
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::options().append(true).open(&log).unwrap())
            .spawn()
            .expect("pdns_recursor starts");
        Recursor {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn powerdns_recursor_takes_the_zone_over_tsig_and_each_new_list_by_ixfr() {
    let setup = Setup::new(ENTRIES);
    let (key, _) = tsig_key(setup.dir.path(), SECRET);
    let config = format!(
        "{}tsig_key = \"{}\"\n",
        rpz_config(&setup, "127.0.0.0/8", ""),
        key.display()
    );
    let r = Rempart::start(&config).await;
    let rpz = r.service().rpz.clone().unwrap();
    let primary = r.service().rpz_addrs[0];
    until_published(&rpz, 1).await;
    let port = free_port().await;
    let recursor = Recursor::start(setup.dir.path(), port, primary, SECRET);

    let start = Instant::now();
    while !redirected(recursor.addr, "www.bad.test.").await {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "www.bad.test not redirected by the Recursor within 20 s; its log:\n{}",
            recursor.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(redirected(recursor.addr, "host.test.").await);
    let before = rpz.stats();

    let mut entries = ENTRIES.to_vec();
    entries.push(("new.test", "subtree", "terrorism", "REF-0003"));
    setup
        .key
        .write_signed(&setup.list_path, &list_text(2, &entries));
    let v = r.service().admission.reread().await;
    assert!(matches!(v, Verdict::Applied { serial: 2, .. }), "{v:?}");
    let start = Instant::now();
    while !redirected(recursor.addr, "new.test.").await {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "new.test not redirected by the Recursor within 5 s; its log:\n{}",
            recursor.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = rpz.stats();
    assert!(after.ixfr > before.ixfr, "IXFR: {before:?} -> {after:?}");
    assert_eq!(after.axfr, before.axfr, "{after:?}");
    drop(recursor);
    r.stop().await;
}
