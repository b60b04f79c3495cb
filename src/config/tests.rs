//! Every shipped config parses, its values are the documented defaults,
//! typos are rejected with the key named, and every invalid value is named
//! by its key (after hickory's bin/src/config/tests.rs).

use std::path::{Path, PathBuf};

use super::validate::parse_upstream;
use super::*;

/// A file of the crate's `config/` directory.
fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .join(name)
}

/// Every `.toml` in `config/`, as the operator would use it: the example
/// with its required keys filled in.
fn every_shipped_config() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for f in std::fs::read_dir(shipped("")).unwrap() {
        let path = f.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = if name == "rempart.example.toml" {
                example_with_required_keys()
            } else {
                std::fs::read_to_string(&path).unwrap()
            };
            out.push((name, text));
        }
    }
    assert!(out.len() >= 2, "the example and the demo at least: {out:?}");
    out
}

const MINIMAL: &str = r#"
[upstream]
servers = ["127.0.0.1:5300"]
[list]
path = "l.txt"
trusted_keys = ["k.pub"]
[redirect]
ipv4 = ["192.0.2.80"]
"#;

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, Path::new("test.toml"))
}

#[test]
fn minimal_config_gets_documented_defaults() {
    let c = load(MINIMAL).unwrap();
    assert_eq!(c.server.listen, vec!["127.0.0.1:1053".parse().unwrap()]);
    assert_eq!(c.redirect.ttl, DEFAULT_REDIRECT_TTL);
    assert_eq!(c.upstream.cache_bytes, DEFAULT_CACHE_BYTES);
    assert_eq!(c.upstream.max_in_flight, DEFAULT_MAX_IN_FLIGHT);
    assert!(!c.upstream.trust_ad && !c.upstream.serve_stale);
    assert_eq!(c.list.on_missing, OnMissing::Refuse);
    assert!(c.list.protected.iter().any(|p| p == "google.fr"));
    assert_eq!(
        c.redirect.ede_text,
        format!("{DEFAULT_EDE_TEXT}; information page: http://192.0.2.80/")
    );
}

#[test]
fn default_ede_text_names_the_information_page() {
    let with_redirect = |redirect: &str| {
        load(&MINIMAL.replace(
            "[redirect]\nipv4 = [\"192.0.2.80\"]\n",
            &format!("[redirect]\n{redirect}"),
        ))
    };
    let c = with_redirect("cname = \"Info.Block.Test\"\nipv4 = [\"192.0.2.80\"]\n").unwrap();
    assert!(
        c.redirect
            .ede_text
            .ends_with("; information page: http://info.block.test/")
    );
    let c = with_redirect("ipv6 = [\"2001:db8::80\"]\n").unwrap();
    assert!(
        c.redirect
            .ede_text
            .ends_with("; information page: http://[2001:db8::80]/")
    );
    let c = with_redirect("ipv4 = [\"192.0.2.80\"]\nede_text = \"see the page\"\n").unwrap();
    assert_eq!(c.redirect.ede_text, "see the page");
}

#[test]
fn unknown_key_is_named() {
    let err = load(&format!("{MINIMAL}\n[server]\nlisten_on = [\"x\"]\n"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("listen_on"), "{err}");
}

/// Issue 15: `config check` stopped at the first unknown key. Every one is
/// named in one run, with its dotted path, its line and the closest known
/// key; so is every value of the wrong type, and the invalid values too.
#[test]
fn every_unknown_key_and_wrong_type_is_named_in_one_run() {
    let text = format!(
        "{MINIMAL}[server]\nlisten_on = [\"x\"]\nudp_sockets = \"four\"\ntimeout_ms = 5\n[log]\nlvl = \"debug\"\nformat = \"xml\"\n[srever]\nx = 1\n"
    );
    let err = load(&text).unwrap_err();
    let ConfigError::Invalid { errors, .. } = &err else {
        panic!("{err}")
    };
    let named = |key: &str| {
        errors
            .iter()
            .find(|e| e.key == key)
            .unwrap_or_else(|| panic!("{key} not named in {err}"))
    };
    let e = named("server.listen_on");
    assert_eq!(e.line, Some(10), "{err}");
    assert!(
        e.reason
            .contains("unknown key; did you mean server.listen?"),
        "{err}"
    );
    let e = named("server.udp_sockets");
    assert_eq!(e.line, Some(11), "{err}");
    assert!(e.reason.contains("invalid type"), "{err}");
    assert!(
        named("server.timeout_ms")
            .reason
            .contains("it belongs in [upstream]"),
        "{err}"
    );
    assert!(
        named("log.lvl").reason.contains("did you mean log.level?"),
        "{err}"
    );
    assert_eq!(named("log.format").line, Some(15), "{err}");
    assert!(
        named("srever").reason.contains("did you mean [server]?"),
        "{err}"
    );
    assert_eq!(errors.len(), 6, "{err}");
    // In the order of the file, each with its line.
    let lines: Vec<Option<usize>> = errors.iter().map(|e| e.line).collect();
    assert!(lines.is_sorted(), "{err}");
    assert!(
        err.to_string()
            .contains("\n  line 10: server.listen_on: unknown key; did you mean server.listen?\n"),
        "{err}"
    );
}

/// A section that is not a table, and a key replaced by its default after
/// a type error, are named once, not again by the validation.
#[test]
fn a_key_named_for_its_type_is_not_named_again() {
    let text = MINIMAL.replace("servers = [\"127.0.0.1:5300\"]", "servers = \"127.0.0.1\"");
    let err = load(&format!("log = 1\n{text}")).unwrap_err();
    let ConfigError::Invalid { errors, .. } = &err else {
        panic!("{err}")
    };
    let keys: Vec<(&str, Option<usize>)> =
        errors.iter().map(|e| (e.key.as_str(), e.line)).collect();
    assert_eq!(
        keys,
        [("log", Some(1)), ("upstream.servers", Some(4))],
        "{err}"
    );
}

/// Not TOML at all: the syntax error, with toml's line and column.
#[test]
fn a_syntax_error_names_its_line() {
    let err = load("[server\nlisten = []\n").unwrap_err();
    assert!(
        matches!(err, ConfigError::Syntax { .. }) && err.to_string().contains("line 1"),
        "{err}"
    );
}

/// Issue 15: `list.protected` silently replaced the 18 defaults. It adds
/// to them; `protected_defaults = false` is the one way to drop them.
#[test]
fn protected_names_add_to_the_defaults_unless_turned_off() {
    let with = |list: &str| {
        load(&MINIMAL.replace(
            "trusted_keys = [\"k.pub\"]\n",
            &format!("trusted_keys = [\"k.pub\"]\n{list}\n"),
        ))
        .unwrap()
        .list
    };
    let list = with("protected = [\"Example.FR.\", \"google.fr\"]");
    assert!(list.protected_defaults);
    assert_eq!(list.protected_added, ["example.fr", "google.fr"]);
    assert_eq!(list.protected.len(), DEFAULT_PROTECTED.len() + 1);
    assert!(
        DEFAULT_PROTECTED
            .iter()
            .all(|d| list.protected.iter().any(|p| p == d))
    );
    assert!(list.protected.iter().any(|p| p == "example.fr"));

    let list = with("protected = [\"example.fr\"]\nprotected_defaults = false");
    assert!(!list.protected_defaults);
    assert_eq!(list.protected, ["example.fr"]);

    let list = with("protected_defaults = false");
    assert!(list.protected.is_empty());
    assert_eq!(with("").protected, DEFAULT_PROTECTED);
}

#[test]
fn tcp_bounds_are_checked_against_each_other() {
    for (server, bad) in [
        ("tcp_max_connections = 0", "server.tcp_max_connections"),
        ("tcp_max_connections = 70000", "server.tcp_max_connections"),
        ("tcp_max_per_client = 0", "server.tcp_max_per_client"),
        (
            "tcp_max_connections = 10\ntcp_max_per_client = 11",
            "server.tcp_max_per_client",
        ),
    ] {
        let err = load(&format!("{MINIMAL}\n[server]\n{server}\n")).unwrap_err();
        let ConfigError::Invalid { errors, .. } = &err else {
            panic!("{err}")
        };
        assert!(errors.iter().any(|e| e.key == bad), "{server}: {err}");
    }
    let c = load(&format!(
        "{MINIMAL}\n[server]\ntcp_max_connections = 10\ntcp_max_per_client = 10\n"
    ))
    .unwrap();
    assert_eq!(
        (c.server.tcp_max_connections, c.server.tcp_max_per_client),
        (10, 10)
    );
}

#[test]
fn every_invalid_value_is_named_by_key() {
    let text = r#"
[server]
listen = ["127.0.0.1:53", "nonsense"]
allow = ["10.0.0.0/33"]
[upstream]
servers = ["not-an-ip"]
timeout_ms = 0
cache_bytes = 1000
max_in_flight = 0
serve_stale_max_age = 9999999
[list]
path = "l.txt"
trusted_keys = []
protected = ["bad..name"]
on_missing = "maybe"
max_bytes = 10
[redirect]
ipv4 = ["192.0.2.300"]
ttl = 7200
[audit]
client_ip = "everything"
dir = "/var/log/rempart/audit"
seal_key = "/var/log/rempart/audit/seal.key"
seal_interval_s = 0
[log]
format = "xml"
"#;
    let err = load(text).unwrap_err();
    let ConfigError::Invalid { errors, .. } = &err else {
        panic!("{err}")
    };
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    for key in [
        "server.listen[1]",
        "server.allow[0]",
        "upstream.servers[0]",
        "upstream.timeout_ms",
        "upstream.cache_bytes",
        "upstream.max_in_flight",
        "upstream.serve_stale_max_age",
        "list.trusted_keys",
        "list.protected[0]",
        "list.on_missing",
        "list.max_bytes",
        "redirect.ipv4[0]",
        "redirect.ttl",
        "audit.client_ip",
        "audit.seal_key",
        "audit.seal_interval_s",
        "log.format",
    ] {
        assert!(keys.contains(&key), "{key} not named in {err}");
    }
}

#[test]
fn redirect_needs_a_target() {
    let text = MINIMAL.replace("ipv4 = [\"192.0.2.80\"]", "ttl = 60");
    let err = load(&text).unwrap_err().to_string();
    assert!(err.contains("redirect:"), "{err}");
}

#[test]
fn cname_target_is_protected() {
    let text = MINIMAL.replace("ipv4 = [\"192.0.2.80\"]", "cname = \"Info.Block.Test.\"");
    let c = load(&text).unwrap();
    assert!(c.list.protected.iter().any(|p| p == "info.block.test"));
}

#[test]
fn bare_upstream_ip_means_port_53() {
    assert_eq!(
        parse_upstream("192.0.2.1").unwrap(),
        "192.0.2.1:53".parse().unwrap()
    );
    assert_eq!(
        parse_upstream("[::1]:5300").unwrap(),
        "[::1]:5300".parse().unwrap()
    );
}

fn example_with_required_keys() -> String {
    std::fs::read_to_string(shipped("rempart.example.toml"))
        .unwrap()
        .replace("# servers = [", "servers = [")
        .replace("# path = ", "path = ")
        .replace("# trusted_keys = ", "trusted_keys = ")
        .replace("ipv4 = []", "ipv4 = [\"192.0.2.80\"]")
}

#[test]
fn example_config_states_every_default() {
    let c = Config::from_toml(&example_with_required_keys(), Path::new("example")).unwrap();
    let listen: Vec<String> = c.server.listen.iter().map(ToString::to_string).collect();
    assert_eq!(listen, DEFAULT_LISTEN);
    let allow: Vec<String> = c.server.allow.iter().map(ToString::to_string).collect();
    assert_eq!(allow, DEFAULT_ALLOW);
    assert_eq!(c.server.udp_sockets, DEFAULT_UDP_SOCKETS);
    assert_eq!(
        c.server.tcp_idle_timeout.as_millis() as u64,
        DEFAULT_TCP_IDLE_TIMEOUT_MS
    );
    assert_eq!(c.server.tcp_max_connections, DEFAULT_TCP_MAX_CONNECTIONS);
    assert_eq!(c.server.tcp_max_per_client, DEFAULT_TCP_MAX_PER_CLIENT);
    assert_eq!(
        c.upstream.timeout.as_millis() as u64,
        DEFAULT_UPSTREAM_TIMEOUT_MS
    );
    assert_eq!(c.upstream.cache_bytes, DEFAULT_CACHE_BYTES);
    assert_eq!(c.upstream.max_in_flight, DEFAULT_MAX_IN_FLIGHT);
    assert!(!c.upstream.trust_ad);
    assert!(!c.upstream.serve_stale);
    assert_eq!(c.upstream.serve_stale_max_age, DEFAULT_SERVE_STALE_MAX_AGE);
    assert_eq!(c.upstream.cache_max_ttl, DEFAULT_CACHE_MAX_TTL);
    assert_eq!(
        c.upstream.cache_negative_max_ttl,
        DEFAULT_CACHE_NEGATIVE_MAX_TTL
    );
    assert_eq!(c.list.state_dir, Path::new(DEFAULT_STATE_DIR));
    assert_eq!(c.list.protected, DEFAULT_PROTECTED);
    assert_eq!(c.list.on_missing, OnMissing::Refuse);
    assert_eq!(c.list.max_bytes, DEFAULT_LIST_MAX_BYTES);
    assert_eq!(c.redirect.ttl, DEFAULT_REDIRECT_TTL);
    assert_eq!(
        c.redirect.ede_text,
        format!("{}; information page: http://192.0.2.80/", DEFAULT_EDE_TEXT)
    );
    assert_eq!(c.audit.dir, Path::new(DEFAULT_AUDIT_DIR));
    assert_eq!(c.audit.client_ip, ClientIpMode::None);
    assert!(c.audit.enabled);
    assert_eq!(c.audit.queue, DEFAULT_AUDIT_QUEUE);
    assert_eq!(c.audit.max_file_bytes, DEFAULT_AUDIT_MAX_FILE_MB << 20);
    assert_eq!(c.audit.retention_days, DEFAULT_AUDIT_RETENTION_DAYS);
    assert_eq!(c.audit.seal, SealMode::IfKey);
    assert_eq!(c.audit.seal_key, Path::new(DEFAULT_AUDIT_SEAL_KEY));
    assert_eq!(
        c.audit.seal_interval.as_secs(),
        DEFAULT_AUDIT_SEAL_INTERVAL_S
    );
    assert_eq!(c.admin.listen.to_string(), DEFAULT_ADMIN_LISTEN);
    let limits = c.admin.limits;
    assert_eq!(limits.max_connections, DEFAULT_ADMIN_MAX_CONNECTIONS);
    assert_eq!(
        limits.header_timeout.as_millis() as u64,
        DEFAULT_ADMIN_HEADER_TIMEOUT_MS
    );
    assert_eq!(
        limits.body_timeout.as_millis() as u64,
        DEFAULT_ADMIN_BODY_TIMEOUT_MS
    );
    assert_eq!(
        limits.request_timeout.as_millis() as u64,
        DEFAULT_ADMIN_REQUEST_TIMEOUT_MS
    );
    assert_eq!(c.log.level, DEFAULT_LOG_LEVEL);
    assert_eq!(c.log.format, LogFormat::Text);
    // The same defaults apply when the keys are left out.
    let minimal = Config::from_toml(
        "[upstream]\nservers = [\"127.0.0.1\"]\n[list]\npath = \"l\"\ntrusted_keys = [\"k\"]\n[redirect]\nipv4 = [\"192.0.2.80\"]\n",
        Path::new("minimal"),
    )
    .unwrap();
    assert_eq!(minimal.list.protected, c.list.protected);
    assert_eq!(minimal.list.max_bytes, c.list.max_bytes);
    assert_eq!(minimal.server.listen, c.server.listen);
}

/// The example names every default protected name in its comment.
#[test]
fn example_config_names_the_default_protected_names() {
    let text = std::fs::read_to_string(shipped("rempart.example.toml")).unwrap();
    let comment: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("#   "))
        .flat_map(str::split_whitespace)
        .collect();
    for name in DEFAULT_PROTECTED {
        assert!(
            comment.contains(name),
            "{name} not in the example's comment"
        );
    }
}

#[test]
fn demo_config_parses() {
    let c = Config::load(&shipped("demo.toml")).unwrap();
    assert_eq!(c.list.path, Path::new("config/demo/list.txt"));
}

#[test]
fn a_typo_in_any_section_is_named() {
    let base = example_with_required_keys();
    for (section, typo) in [
        ("[server]", "listen_addr = 1"),
        ("[upstream]", "timeout = 5"),
        ("[list]", "trusted_key = []"),
        ("[redirect]", "ipv44 = []"),
        ("[audit]", "client = \"full\""),
        ("[admin]", "address = \"x\""),
        ("[log]", "lvl = \"debug\""),
    ] {
        let text = base.replacen(section, &format!("{section}\n{typo}"), 1);
        let err = Config::from_toml(&text, Path::new("typo.toml")).unwrap_err();
        let key = typo.split(' ').next().unwrap();
        assert!(
            matches!(err, ConfigError::Invalid { .. }) && err.to_string().contains(key),
            "{section}: {err}"
        );
    }
    let err = Config::from_toml(&format!("{base}\n[extra]\nx = 1\n"), Path::new("t")).unwrap_err();
    assert!(err.to_string().contains("extra"), "{err}");
}

#[test]
fn every_shipped_config_parses() {
    for (name, text) in every_shipped_config() {
        if let Err(e) = Config::from_toml(&text, Path::new(&name)) {
            panic!("{name}: {e}");
        }
    }
}

/// An unknown key added to any table of any shipped config (the top level
/// and every section) is refused, and named.
#[test]
fn an_unknown_key_in_any_table_of_a_shipped_config_is_named() {
    const KEY: &str = "test_only_unknown_key";
    for (name, text) in every_shipped_config() {
        let table: toml::Table = toml::from_str(&text).unwrap();
        let mut variants = vec![("top level".to_owned(), {
            let mut t = table.clone();
            t.insert(KEY.into(), toml::Value::Integer(1));
            t
        })];
        for (section, value) in &table {
            if let toml::Value::Table(inner) = value {
                let mut inner = inner.clone();
                inner.insert(KEY.into(), toml::Value::Integer(1));
                let mut t = table.clone();
                t.insert(section.clone(), toml::Value::Table(inner));
                variants.push((format!("[{section}]"), t));
            }
        }
        assert!(variants.len() > 1, "{name} has sections");
        for (place, t) in variants {
            let err = Config::from_toml(&t.to_string(), Path::new(&name)).unwrap_err();
            assert!(
                matches!(err, ConfigError::Invalid { .. }) && err.to_string().contains(KEY),
                "{name} {place}: {err}"
            );
        }
    }
}

/// A config written before the cache was bounded in bytes keeps working:
/// `upstream.cache_size` is accepted, ignored, and said to be obsolete.
#[test]
fn the_obsolete_cache_size_is_accepted_and_named() {
    let text = MINIMAL.replace("[upstream]", "[upstream]\ncache_size = 400000");
    assert!(
        text.contains("cache_size"),
        "MINIMAL has an [upstream] table"
    );
    let c = load(&text).unwrap();
    assert_eq!(c.upstream.cache_bytes, DEFAULT_CACHE_BYTES);
    assert_eq!(c.upstream.obsolete.len(), 1);
    assert!(c.upstream.obsolete[0].contains("upstream.cache_bytes"));
    assert!(load(MINIMAL).unwrap().upstream.obsolete.is_empty());
}

#[test]
fn admin_limits_out_of_range_are_named() {
    let text = example_with_required_keys()
        .replace("max_connections = 16", "max_connections = 0")
        .replace("header_timeout_ms = 10000", "header_timeout_ms = 99")
        .replace("body_timeout_ms = 120000", "body_timeout_ms = 3600001")
        .replace("request_timeout_ms = 300000", "request_timeout_ms = 0");
    let err = Config::from_toml(&text, Path::new("t.toml")).unwrap_err();
    let ConfigError::Invalid { errors, .. } = &err else {
        panic!("{err}")
    };
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "admin.max_connections",
            "admin.header_timeout_ms",
            "admin.body_timeout_ms",
            "admin.request_timeout_ms"
        ],
        "{err}"
    );
}

#[test]
fn admin_tls_needs_both_files() {
    let base = example_with_required_keys();
    for (set, missing) in [
        ("tls_certificate = \"c.pem\"", "admin.tls_key"),
        ("tls_key = \"k.pem\"", "admin.tls_certificate"),
    ] {
        let text = base.replacen("[admin]", &format!("[admin]\n{set}"), 1);
        let err = Config::from_toml(&text, Path::new("t.toml")).unwrap_err();
        assert!(err.to_string().contains(missing), "{set}: {err}");
    }
    let both = base.replacen(
        "[admin]",
        "[admin]\ntls_certificate = \"c.pem\"\ntls_key = \"k.pem\"",
        1,
    );
    let c = Config::from_toml(&both, Path::new("t.toml")).unwrap();
    assert_eq!(
        c.admin.tls,
        Some(AdminTls {
            certificate: "c.pem".into(),
            key: "k.pem".into()
        })
    );
}

#[test]
fn rpz_is_off_unless_its_section_is_there_and_gets_the_documented_defaults() {
    assert!(load(MINIMAL).unwrap().rpz.is_none());
    let c = load(&format!("{MINIMAL}[rpz]\n")).unwrap();
    let rpz = c.rpz.unwrap();
    let listen: Vec<String> = rpz.listen.iter().map(ToString::to_string).collect();
    assert_eq!(listen, DEFAULT_RPZ_LISTEN);
    let allow: Vec<String> = rpz.allow_transfer.iter().map(ToString::to_string).collect();
    assert_eq!(allow, DEFAULT_RPZ_ALLOW_TRANSFER);
    assert!(rpz.notify.is_empty());
    assert_eq!(rpz.zone_suffix.to_ascii(), DEFAULT_RPZ_ZONE_SUFFIX);
    // The example's commented section states the same defaults.
    let example = example_with_required_keys()
        .replace("# [rpz]", "[rpz]")
        .replace(
            "# listen = [\"127.0.0.1:5353\"]",
            "listen = [\"127.0.0.1:5353\"]",
        )
        .replace("# allow_transfer = ", "allow_transfer = ")
        .replace("# notify = []", "notify = []")
        .replace("# zone_suffix = ", "zone_suffix = ");
    let e = Config::from_toml(&example, Path::new("example")).unwrap();
    let e = e.rpz.expect("the example's [rpz] uncommented");
    assert_eq!(e.listen, rpz.listen);
    assert_eq!(e.allow_transfer, rpz.allow_transfer);
    assert_eq!(e.zone_suffix, rpz.zone_suffix);
    let c = load(&format!(
        "{MINIMAL}[rpz]\nnotify = [\"192.0.2.53\", \"[2001:db8::53]:5354\"]\nzone_suffix = \"RPZ.Example\"\n"
    ))
    .unwrap()
    .rpz
    .unwrap();
    let notify: Vec<String> = c.notify.iter().map(ToString::to_string).collect();
    assert_eq!(notify, ["192.0.2.53:53", "[2001:db8::53]:5354"]);
    assert_eq!(c.zone_suffix.to_ascii(), "rpz.example.");
}

#[test]
fn every_invalid_rpz_value_is_named() {
    let text = format!(
        "{MINIMAL}[rpz]\nlisten = [\"nowhere\"]\nallow_transfer = [\"10.0.0.0/40\"]\nnotify = [\"x\"]\ntsig_key = 5\nzone_suffix = \"bad..suffix\"\n"
    );
    let err = load(&text).unwrap_err();
    let ConfigError::Invalid { errors, .. } = &err else {
        panic!("{err}")
    };
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    for key in [
        "rpz.listen[0]",
        "rpz.allow_transfer[0]",
        "rpz.notify[0]",
        "rpz.tsig_key",
        "rpz.zone_suffix",
    ] {
        assert!(keys.contains(&key), "{key} not named in {err}");
    }
    let c = load(&format!(
        "{MINIMAL}[rpz]\ntsig_key = \"/etc/rempart/xfr.key\"\n"
    ))
    .unwrap();
    assert_eq!(
        c.rpz.unwrap().tsig_key.as_deref(),
        Some(Path::new("/etc/rempart/xfr.key"))
    );
    let err = load(&format!("{MINIMAL}[rpz]\nlisten = []\n")).unwrap_err();
    assert!(err.to_string().contains("rpz.listen"), "{err}");
    let err = load(&format!("{MINIMAL}[rpz]\nallow = []\n")).unwrap_err();
    assert!(err.to_string().contains("rpz.allow"), "{err}");
}
