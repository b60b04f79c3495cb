//! Every shipped config parses, its values are the documented defaults, and
//! typos are rejected with the key named (after hickory's
//! bin/src/config/tests.rs).

use std::path::Path;

use rempart::config::{self, Config, ConfigError};

fn example_with_required_keys() -> String {
    std::fs::read_to_string("config/rempart.example.toml")
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
    assert_eq!(listen, config::DEFAULT_LISTEN);
    let allow: Vec<String> = c.server.allow.iter().map(ToString::to_string).collect();
    assert_eq!(allow, config::DEFAULT_ALLOW);
    assert_eq!(c.server.udp_sockets, config::DEFAULT_UDP_SOCKETS);
    assert_eq!(
        c.server.tcp_idle_timeout.as_millis() as u64,
        config::DEFAULT_TCP_IDLE_TIMEOUT_MS
    );
    assert_eq!(
        c.upstream.timeout.as_millis() as u64,
        config::DEFAULT_UPSTREAM_TIMEOUT_MS
    );
    assert_eq!(c.upstream.cache_size, config::DEFAULT_CACHE_SIZE);
    assert_eq!(c.upstream.cache_max_ttl, config::DEFAULT_CACHE_MAX_TTL);
    assert_eq!(
        c.upstream.cache_negative_max_ttl,
        config::DEFAULT_CACHE_NEGATIVE_MAX_TTL
    );
    assert_eq!(c.list.state_dir, Path::new(config::DEFAULT_STATE_DIR));
    assert_eq!(c.list.protected, config::DEFAULT_PROTECTED);
    assert_eq!(c.list.on_missing, config::OnMissing::Refuse);
    assert_eq!(c.redirect.ttl, config::DEFAULT_REDIRECT_TTL);
    assert_eq!(
        c.redirect.ede_text,
        format!(
            "{}; information page: http://192.0.2.80/",
            config::DEFAULT_EDE_TEXT
        )
    );
    assert_eq!(c.audit.dir, Path::new(config::DEFAULT_AUDIT_DIR));
    assert_eq!(c.audit.client_ip, config::ClientIpMode::None);
    assert!(c.audit.enabled);
    assert_eq!(c.audit.queue, config::DEFAULT_AUDIT_QUEUE);
    assert_eq!(
        c.audit.max_file_bytes,
        config::DEFAULT_AUDIT_MAX_FILE_MB << 20
    );
    assert_eq!(c.audit.retention_days, config::DEFAULT_AUDIT_RETENTION_DAYS);
    assert_eq!(c.admin.listen.to_string(), config::DEFAULT_ADMIN_LISTEN);
    assert_eq!(c.log.level, config::DEFAULT_LOG_LEVEL);
    assert_eq!(c.log.format, config::LogFormat::Text);
    // The same defaults apply when the keys are left out.
    let minimal = Config::from_toml(
        "[upstream]\nservers = [\"127.0.0.1\"]\n[list]\npath = \"l\"\ntrusted_keys = [\"k\"]\n[redirect]\nipv4 = [\"192.0.2.80\"]\n",
        Path::new("minimal"),
    )
    .unwrap();
    assert_eq!(minimal.list.protected, c.list.protected);
    assert_eq!(minimal.server.listen, c.server.listen);
}

#[test]
fn demo_config_parses() {
    let c = Config::load(Path::new("config/demo.toml")).unwrap();
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
            matches!(err, ConfigError::Syntax { .. }) && err.to_string().contains(key),
            "{section}: {err}"
        );
    }
    let err = Config::from_toml(&format!("{base}\n[extra]\nx = 1\n"), Path::new("t")).unwrap_err();
    assert!(err.to_string().contains("extra"), "{err}");
}

/// A token file `serve` would refuse is refused by `config check` too
/// (what the unit's ExecStartPre runs), and both exit 1, naming the key.
#[test]
fn an_unusable_admin_token_is_a_config_error_for_check_and_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let token = tmp.path().join("token");
    std::fs::write(&token, "short\n").unwrap();
    let demo = std::fs::read_to_string("config/demo.toml")
        .unwrap()
        .replace(
            "state_dir = \"state\"",
            &format!("state_dir = {:?}", tmp.path().join("state")),
        )
        .replace(
            "dir = \"audit\"",
            &format!("dir = {:?}", tmp.path().join("audit")),
        );
    let run = |toml: &str, args: &[&str]| {
        let file = tmp.path().join("rempart.toml");
        std::fs::write(&file, toml).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rempart"))
            .args(args)
            .arg(&file)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let with_token = format!("{demo}\n[admin]\ntoken_file = {token:?}\n");
    for args in [&["config", "check"][..], &["serve", "--config"][..]] {
        let (code, err) = run(&with_token, args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(
            err.contains("admin.token_file") && err.contains("at least 16 characters"),
            "{args:?}: {err}"
        );
    }
    let missing = with_token.replace("token\"", "no-such-token\"");
    let (code, err) = run(&missing, &["config", "check"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no-such-token"), "{err}");

    std::fs::write(&token, "0123456789abcdef0123\n").unwrap();
    let (code, err) = run(&with_token, &["config", "check"]);
    assert_eq!(code, Some(0), "{err}");
}
