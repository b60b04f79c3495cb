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
        // The [list] section's, not the commented [[lists]] example's.
        .replacen("# path = ", "path = ", 1)
        .replacen("# trusted_keys = ", "trusted_keys = ", 1)
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

/// The example's commented `[[lists]]`, uncommented in place of the lone
/// list, parses: three lists with their own answers.
#[test]
fn the_example_several_lists_parse() {
    let text = std::fs::read_to_string(shipped("rempart.example.toml")).unwrap();
    let (head, tail) = text.split_at(text.find("# [[lists]]").unwrap());
    let lists: String = tail
        .lines()
        .map(|l| l.strip_prefix("# ").unwrap_or(l))
        .map(|l| format!("{l}\n"))
        .collect();
    let text = format!("{head}{lists}")
        .replacen("# servers = [", "servers = [", 1)
        .replace("ipv4 = []", "ipv4 = [\"192.0.2.80\"]");
    let c = Config::from_toml(&text, Path::new("example")).unwrap();
    let ids: Vec<&str> = c.lists.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(ids, ["lcen", "anj", "anssi"]);
    assert_eq!(c.lists[2].action, Action::Nxdomain);
    let ListOrigin::Web(anssi) = &c.lists[2].origin else {
        panic!("anssi is fetched: {:?}", c.lists[2].origin);
    };
    assert_eq!(anssi.poll_interval, Duration::from_secs(300));
}

#[test]
fn demo_config_parses() {
    let c = Config::load(&shipped("demo.toml")).unwrap();
    assert_eq!(
        c.lists[0].origin.path(),
        Some(Path::new("config/demo/list.txt"))
    );
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
fn dot_needs_its_certificate_and_key() {
    let base = example_with_required_keys()
        .replacen("\ntls_listen = []\n", "\n", 1)
        .replacen("\nhttps_listen = []\n", "\n", 1);
    for (set, missing) in [
        ("tls_listen = [\"127.0.0.1:853\"]", "server.tls_certificate"),
        (
            "https_listen = [\"127.0.0.1:443\"]",
            "server.tls_certificate",
        ),
        ("tls_certificate = \"c.pem\"", "server.tls_key"),
        ("tls_key = \"k.pem\"", "server.tls_certificate"),
        (
            "tls_listen = [\"127.0.0.1\"]\ntls_certificate = \"c.pem\"\ntls_key = \"k.pem\"",
            "server.tls_listen[0]",
        ),
    ] {
        let text = base.replacen("[server]", &format!("[server]\n{set}"), 1);
        let err = Config::from_toml(&text, Path::new("t.toml")).unwrap_err();
        assert!(err.to_string().contains(missing), "{set}: {err}");
    }
    let dot = "[server]\ntls_listen = [\"127.0.0.1:853\"]\ntls_certificate = \"c.pem\"\ntls_key = \"k.pem\"";
    let c = Config::from_toml(&base.replacen("[server]", dot, 1), Path::new("t.toml")).unwrap();
    assert_eq!(c.server.tls_listen, ["127.0.0.1:853".parse().unwrap()]);
    assert_eq!(
        c.server.tls,
        Some(AdminTls {
            certificate: "c.pem".into(),
            key: "k.pem".into()
        })
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

/// Three lists, as BEHAVIOUR section 8 writes them: the shared `[list]`,
/// then `[[lists]]` in precedence order.
const THREE_LISTS: &str = r#"
[upstream]
servers = ["127.0.0.1:5300"]
[list]
state_dir = "/var/lib/rempart"
protected = ["example.org"]
[redirect]
ipv4 = ["192.0.2.80"]
[[lists]]
id = "lcen"
path = "lcen/list.txt"
trusted_keys = ["lcen/oclctic.pub"]
[[lists]]
id = "anj"
path = "anj/list.txt"
trusted_keys = ["anj/anj.pub", "anj/anj-next.pub"]
deadline_hours = 120
redirect = { ipv4 = ["198.51.100.10"], ttl = 300, ede_json = { c = ["mailto:recours@anj.example"], j = "illegal gambling", o = "ANJ" } }
[[lists]]
id = "anssi"
path = "anssi/list.txt"
trusted_keys = ["anssi/anssi.pub"]
action = "nxdomain"
"#;

#[test]
fn several_lists_are_read_in_order_with_their_own_keys_and_answers() {
    let c = load(THREE_LISTS).unwrap();
    let ids: Vec<&str> = c.lists.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(ids, ["lcen", "anj", "anssi"]);
    let (lcen, anj, anssi) = (&c.lists[0], &c.lists[1], &c.lists[2]);
    // The first list without its own redirect uses [redirect].
    assert_eq!(lcen.redirect.ipv4, c.redirect.ipv4);
    assert!(lcen.redirect.uses_section);
    assert_eq!(lcen.deadline_hours, DEFAULT_DEADLINE_HOURS);
    assert_eq!(lcen.action, Action::Redirect);
    assert_eq!(lcen.state_dir, Path::new("/var/lib/rempart/lcen"));
    // Its own answer, whole: nothing borrowed from [redirect].
    assert_eq!(anj.trusted_keys.len(), 2);
    assert_eq!(anj.deadline_hours, 120);
    assert_eq!(
        anj.redirect.ipv4,
        ["198.51.100.10".parse::<Ipv4Addr>().unwrap()]
    );
    assert!(anj.redirect.ipv6.is_empty());
    assert_eq!(anj.redirect.ttl, 300);
    assert_eq!(
        anj.redirect.ede_text,
        r#"{"c":["mailto:recours@anj.example"],"j":"illegal gambling","o":"ANJ"}"#
    );
    assert_eq!(anssi.action, Action::Nxdomain);
    // The shared settings hold for every list.
    assert!(c.list.protected.iter().any(|p| p == "example.org"));
}

#[test]
fn a_lone_list_section_is_the_list_main() {
    let c = load(MINIMAL).unwrap();
    assert_eq!(c.lists.len(), 1);
    let main = &c.lists[0];
    assert_eq!(main.id, MAIN_LIST);
    assert_eq!(main.key, "list");
    assert_eq!(main.origin.path(), Some(Path::new("l.txt")));
    // Today's state directory itself, so that an upgrade keeps the state.
    assert_eq!(main.state_dir, c.list.state_dir);
    assert_eq!(main.redirect.ede_text, c.redirect.ede_text);
    // A [[lists]] entry with id "main" keeps that directory too.
    let text = THREE_LISTS.replace("id = \"anj\"", "id = \"main\"");
    let c = load(&text).unwrap();
    assert_eq!(c.list_by_id("main").unwrap().state_dir, c.list.state_dir);
}

#[test]
fn every_error_of_every_list_is_named_by_its_key() {
    let text = format!(
        "{THREE_LISTS}[[lists]]\nid = \"LCEN!\"\npath = \"lcen/list.txt\"\ntrusted_keys = []\ndeadline_hours = 0\naction = \"drop\"\n[[lists]]\nid = \"anj\"\npath = \"other.txt\"\ntrusted_keys = [\"k\"]\nredirect = {{ ttl = 30 }}\n[[lists]]\npath = \"third.txt\"\ntrusted_keys = [\"k\"]\naction = \"nxdomain\"\nredirect = {{ ipv4 = [\"192.0.2.1\"], ede_text = \"x\", ede_json = {{ j = \"y\" }} }}\n"
    );
    let err = load(&text).unwrap_err();
    let ConfigError::Invalid { errors, .. } = &err else {
        panic!("{err}")
    };
    let named = |key: &str, what: &str| {
        assert!(
            errors
                .iter()
                .any(|e| e.key == key && e.reason.contains(what)),
            "{key} ({what}) not named in {err}"
        );
    };
    named("lists[3].id", "a-z, 0-9");
    named("lists[3].path", "already the path of lists[0]");
    named("lists[3].trusted_keys", "at least one");
    named("lists[3].deadline_hours", "between 1");
    named("lists[3].action", "\"drop\"");
    named("lists[4].id", "already the id of lists[1]");
    named("lists[4].redirect", "one of ipv4, ipv6 or cname");
    named("lists[5].id", "required");
    named(
        "lists[5].redirect",
        "mean nothing with action = \"nxdomain\"",
    );
    named("lists[5].redirect.ede_json", "cannot be set with");
    // Each with the line where the file has it.
    let line = |key: &str| errors.iter().find(|e| e.key == key).unwrap().line;
    let text_line = |needle: &str| text.lines().position(|l| l.contains(needle)).map(|i| i + 1);
    assert_eq!(line("lists[3].id"), text_line("id = \"LCEN!\""), "{err}");
    assert_eq!(
        line("lists[3].action"),
        text_line("action = \"drop\""),
        "{err}"
    );
}

#[test]
fn a_list_section_with_path_and_several_lists_is_refused_naming_both() {
    let text = THREE_LISTS.replace(
        "state_dir = \"/var/lib/rempart\"",
        "state_dir = \"/var/lib/rempart\"\npath = \"l.txt\"\ntrusted_keys = [\"k.pub\"]",
    );
    let err = load(&text).unwrap_err().to_string();
    assert!(
        err.contains("list.path: cannot be set with [[lists]]"),
        "{err}"
    );
    assert!(
        err.contains("list.trusted_keys: cannot be set with [[lists]]"),
        "{err}"
    );
    // Neither at all: the list is required.
    let err = load("[upstream]\nservers = [\"127.0.0.1\"]\n[redirect]\nipv4 = [\"192.0.2.80\"]\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("[[lists]]"), "{err}");
}

#[test]
fn unknown_keys_inside_lists_are_named_with_their_path() {
    let text = THREE_LISTS
        .replace(
            "deadline_hours = 120",
            "deadline_hours = 120\ntrusted_key = 1",
        )
        .replace("ttl = 300,", "ttl = 300, ipv44 = [],")
        .replace("o = \"ANJ\"", "o = \"ANJ\", x = 1");
    let err = load(&text).unwrap_err();
    let ConfigError::Invalid { errors, .. } = &err else {
        panic!("{err}")
    };
    let e = errors
        .iter()
        .find(|e| e.key == "lists[1].trusted_key")
        .unwrap();
    assert!(
        e.reason.contains("did you mean lists[1].trusted_keys?"),
        "{err}"
    );
    assert!(e.line.is_some(), "{err}");
    let e = errors
        .iter()
        .find(|e| e.key == "lists[1].redirect.ipv44")
        .unwrap();
    assert!(
        e.reason.contains("did you mean lists[1].redirect.ipv4?"),
        "{err}"
    );
    // Deeper, serde names the field and its list.
    assert!(
        errors
            .iter()
            .any(|e| e.key.starts_with("lists[1].redirect") && e.reason.contains('x')),
        "{err}"
    );
    // A table where an array of tables is meant.
    let err = load(&format!("{MINIMAL}[lists]\nid = \"x\"\n"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("lists: must be an array of tables ([[lists]])"),
        "{err}"
    );
    // A list key in [list] says where it belongs.
    let err = load(&MINIMAL.replace("[list]", "[list]\ndeadline_hours = 24")).unwrap_err();
    assert!(err.to_string().contains("it belongs in [[lists]]"), "{err}");
}

#[test]
fn structured_ede_text_follows_the_draft() {
    let with = |json: &str| {
        load(&MINIMAL.replace("[redirect]\n", &format!("[redirect]\nede_json = {json}\n")))
    };
    let c = with(r#"{ c = ["mailto:a@b.example", "tel:+33100000000"], j = "LCEN 6-1", o = "OFAC", l = "fr" }"#).unwrap();
    let v: serde_json::Value = serde_json::from_str(&c.redirect.ede_text).unwrap();
    assert_eq!(v["c"][1], "tel:+33100000000");
    assert_eq!(v["j"], "LCEN 6-1");
    assert_eq!(v["o"], "OFAC");
    assert_eq!(v["l"], "fr");
    let err = with(r#"{ c = ["not a uri"] }"#).unwrap_err().to_string();
    assert!(err.contains("redirect.ede_json.c[0]"), "{err}");
    let err = with("{ l = \"fr\" }").unwrap_err().to_string();
    assert!(
        err.contains("redirect.ede_json: needs at least one"),
        "{err}"
    );
}

#[test]
fn a_list_with_its_own_redirect_has_its_own_default_text_and_cname_is_protected() {
    let text = THREE_LISTS.replace(
        "action = \"nxdomain\"",
        "redirect = { cname = \"sinkhole.anssi.example\" }",
    );
    let c = load(&text).unwrap();
    let anssi = c.list_by_id("anssi").unwrap();
    assert_eq!(
        anssi.redirect.ede_text,
        "Blocked by administrative order (list anssi); information page: http://sinkhole.anssi.example/"
    );
    assert!(
        c.list
            .protected
            .iter()
            .any(|p| p == "sinkhole.anssi.example")
    );
    // [redirect] without a target is fine when no list uses it.
    let text = THREE_LISTS
        .replace("[redirect]\nipv4 = [\"192.0.2.80\"]\n", "")
        .replace(
            "trusted_keys = [\"lcen/oclctic.pub\"]",
            "trusted_keys = [\"lcen/oclctic.pub\"]\nredirect = { ipv4 = [\"192.0.2.80\"] }",
        );
    load(&text).unwrap();
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

#[test]
fn a_list_fetched_from_a_web_origin() {
    let url = MINIMAL.replace(
        "path = \"l.txt\"",
        "url = \"https://lists.example.net/lcen/list.txt\"\npoll_interval_s = 30",
    );
    let c = load(&url).unwrap();
    let ListOrigin::Web(w) = &c.lists[0].origin else {
        panic!("not a web origin: {:?}", c.lists[0].origin);
    };
    assert_eq!(w.url, "https://lists.example.net/lcen/list.txt");
    assert_eq!(w.poll_interval, Duration::from_secs(30));
    assert_eq!(w.ca_file, None);
    let c = load(&MINIMAL.replace("path = \"l.txt\"", "url = \"http://o.test/l.txt\"")).unwrap();
    let ListOrigin::Web(w) = &c.lists[0].origin else {
        panic!()
    };
    assert_eq!(
        w.poll_interval,
        Duration::from_secs(DEFAULT_POLL_INTERVAL_S)
    );

    let err = |text: &str| load(text).unwrap_err().to_string();
    // path and url together: the list and both keys named.
    let e = err(&MINIMAL.replace("[list]", "[list]\nurl = \"https://o.test/l.txt\""));
    assert!(
        e.contains("list.url: list.path and list.url are both set"),
        "{e}"
    );
    let e = err(&format!(
        "{}[[lists]]\nid = \"a\"\npath = \"a.txt\"\nurl = \"https://o.test/a.txt\"\ntrusted_keys = [\"k\"]\n",
        MINIMAL.replace("path = \"l.txt\"\ntrusted_keys = [\"k.pub\"]\n", "")
    ));
    assert!(
        e.contains("lists[0].url: lists[0].path and lists[0].url are both set"),
        "{e}"
    );
    // Schemes other than http and https, and URLs the signature's cannot
    // be derived from.
    for (url, why) in [
        ("ftp://o.test/l.txt", "only http:// and https://"),
        ("file:///etc/l.txt", "only http:// and https://"),
        ("o.test/l.txt", "not a URL"),
        ("https://o.test/l.txt?x=1", "query or fragment"),
        ("https://o.test/", "path of the list file"),
        ("https://user:pw@o.test/l.txt", "no user name"),
    ] {
        let e = err(&MINIMAL.replace("path = \"l.txt\"", &format!("url = \"{url}\"")));
        assert!(e.contains("list.url") && e.contains(why), "{url}: {e}");
    }
    // The poll interval's bounds; the keys that only a url list has.
    for poll in [0, MAX_POLL_INTERVAL_S + 1] {
        let e = err(&url.replace("poll_interval_s = 30", &format!("poll_interval_s = {poll}")));
        assert!(
            e.contains("list.poll_interval_s") && e.contains("between"),
            "{e}"
        );
    }
    let e = err(&MINIMAL.replace(
        "[list]",
        "[list]\npoll_interval_s = 30\nca_file = \"ca.pem\"",
    ));
    assert!(
        e.contains("list.poll_interval_s: only for a list fetched from list.url"),
        "{e}"
    );
    assert!(
        e.contains("list.ca_file: only for a list fetched from list.url"),
        "{e}"
    );
    let e = err(&MINIMAL.replace(
        "path = \"l.txt\"",
        "url = \"http://o.test/l.txt\"\nca_file = \"ca.pem\"",
    ));
    assert!(e.contains("list.ca_file: only for an https://"), "{e}");
}
