//! The config as the binary reads it: `config check` and `serve` refuse the
//! same files. The parsing itself (every shipped config parses, defaults,
//! typos, every invalid value named) is tested beside the code, in
//! src/config/tests.rs.

mod common;

/// A token file `serve` would refuse is refused by `config check` too
/// (what the unit's ExecStartPre runs), and both exit 1, naming the key.
#[test]
fn an_unusable_admin_token_is_a_config_error_for_check_and_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let token = tmp.path().join("token");
    std::fs::write(&token, "short\n").unwrap();
    set_mode(&token, 0o600);
    let demo = demo(tmp.path());
    let run = |toml: &str, args: &[&str]| run(tmp.path(), toml, args);
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

    // A good token in a file the group or others may read: refused by
    // both, naming the file and its mode.
    std::fs::write(&token, "0123456789abcdef0123\n").unwrap();
    for mode in [0o640, 0o604, 0o620] {
        set_mode(&token, mode);
        for args in [&["config", "check"][..], &["serve", "--config"][..]] {
            let (code, err) = run(&with_token, args);
            assert_eq!(code, Some(1), "{mode:o} {args:?}: {err}");
            let named = format!("admin.token_file {}: mode {mode:04o}", token.display());
            assert!(err.contains(&named), "{mode:o} {args:?}: {err}");
        }
    }
    set_mode(&token, 0o600);
    let (code, err) = run(&with_token, &["config", "check"]);
    assert_eq!(code, Some(0), "{err}");
    set_mode(&token, 0o400);
    let (code, err) = run(&with_token, &["config", "check"]);
    assert_eq!(code, Some(0), "{err}");
}

/// Issue 15: `config check` stopped at the first unknown key. One run names
/// every error (unknown keys with their line and the closest known key,
/// invalid values), exits 1; a good file's check prints where its
/// protected names come from, and every one of them.
#[test]
fn config_check_names_every_error_in_one_run_and_the_protected_names() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = std::fs::read_to_string("config/demo.toml").unwrap();
    let check = |toml: &str| {
        let file = tmp.path().join("rempart.toml");
        std::fs::write(&file, toml).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rempart"))
            .args(["config", "check"])
            .arg(&file)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let bad = demo
        .replace("[server]\n", "[server]\nlisten_on = []\n")
        .replace("[log]\n", "[log]\nlvl = \"debug\"\n")
        .replace("ttl = 60", "ttl = 0");
    let (code, _, err) = check(&bad);
    assert_eq!(code, Some(1), "{err}");
    let line_of = |needle: &str| bad.lines().position(|l| l.starts_with(needle)).unwrap() + 1;
    for expected in [
        format!(
            "line {}: server.listen_on: unknown key; did you mean server.listen?",
            line_of("listen_on")
        ),
        format!(
            "line {}: log.lvl: unknown key; did you mean log.level?",
            line_of("lvl")
        ),
        format!(
            "line {}: redirect.ttl: 0: must be between 1 and 3600 seconds",
            line_of("ttl = 0")
        ),
    ] {
        assert!(err.contains(&expected), "{expected:?} not in:\n{err}");
    }
    assert!(err.contains("3 error(s)"), "{err}");

    let (code, out, err) = check(&demo);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("19 protected name(s): the 18 defaults + 1 from list.protected:"),
        "{out}"
    );
    assert!(
        out.contains("google.fr") && out.contains("example.org"),
        "{out}"
    );
    let (code, out, err) = check(&demo.replace(
        "protected = [\"example.org\"]",
        "protected = [\"example.org\"]\nprotected_defaults = false",
    ));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains(
            "1 protected name(s): no defaults (list.protected_defaults = false) + 1 from list.protected:\n  example.org\n"
        ),
        "{out}"
    );
}

/// A config file that cannot be read, or is not TOML, exits 1 like an
/// invalid one, for `config check` and `serve` (as the README documents:
/// systemd does not restart on it).
#[test]
fn an_unreadable_or_broken_config_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("broken.toml");
    std::fs::write(&broken, "[server\n").unwrap();
    for file in [tmp.path().join("gone.toml"), broken] {
        for args in [&["config", "check"][..], &["serve", "--config"][..]] {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_rempart"))
                .args(args)
                .arg(&file)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?} {file:?}: {err}");
            assert!(err.contains(&*file.to_string_lossy()), "{err}");
        }
    }
}

/// The README's quick start says what the demo does: its SERVFAIL comes
/// after the demo's `upstream.timeout_ms`, and its commands make an admin
/// token that the resolver takes, readable by its owner only, and a config
/// that uses it (issue 15).
#[test]
fn the_quick_start_says_what_the_demo_does() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let start = readme.find("## Quick start").unwrap();
    let end = start + readme[start..].find("\n## ").unwrap();
    let quick = &readme[start..end];
    let demo = rempart::config::Config::load(std::path::Path::new("config/demo.toml")).unwrap();
    let ms = demo.upstream.timeout.as_millis();
    assert!(
        quick.contains("SERVFAIL: at once, with EDE 23")
            && quick.contains(&format!("once `upstream.timeout_ms` ({ms} ms in"))
            && quick.contains(&format!("so {} seconds", ms / 1000)),
        "{quick}"
    );
    assert!(quick.contains(&format!("on `{}`", demo.server.listen[0])));
    assert!(quick.contains(&format!("on `{}`", demo.admin.listen)));

    // The two commands that make the token and the config, run as written.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("config")).unwrap();
    std::fs::copy("config/demo.toml", tmp.path().join("config/demo.toml")).unwrap();
    let commands: Vec<&str> = quick
        .lines()
        .filter(|l| l.starts_with("(umask 077") || l.starts_with("{ cat config/demo.toml"))
        .collect();
    assert_eq!(commands.len(), 2, "{quick}");
    for command in commands {
        let status = std::process::Command::new("sh")
            .args(["-c", command])
            .current_dir(tmp.path())
            .status()
            .unwrap();
        assert!(status.success(), "{command}");
    }
    let token = tmp.path().join("admin.token");
    rempart::admin::read_token(&token).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "readable by its owner only");
    }
    let config = rempart::config::Config::load(&tmp.path().join("demo-admin.toml")).unwrap();
    assert_eq!(
        config.admin.token_file.as_deref(),
        Some(std::path::Path::new("admin.token"))
    );
}

/// The demo config, its state and audit directories in `dir`.
fn demo(dir: &std::path::Path) -> String {
    std::fs::read_to_string("config/demo.toml")
        .unwrap()
        .replace(
            "state_dir = \"state\"",
            &format!("state_dir = {:?}", dir.join("state")),
        )
        .replace("dir = \"audit\"", &format!("dir = {:?}", dir.join("audit")))
}

/// Run the binary with `args`, then a config file in `dir` holding `toml`:
/// (exit code, stderr).
fn run(dir: &std::path::Path, toml: &str, args: &[&str]) -> (Option<i32>, String) {
    let file = dir.join("rempart.toml");
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
}

/// A TLS certificate or key that cannot be used is a config error for
/// `config check` and `serve` alike, naming the key and the file.
#[test]
fn an_unusable_admin_tls_file_is_a_config_error_for_check_and_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    // PEM, not checked as a certificate before the key is read.
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(&key, "not a key\n").unwrap();
    let toml = format!(
        "{}\n[admin]\ntls_certificate = {cert:?}\ntls_key = {key:?}\n",
        demo(tmp.path())
    );
    for args in [&["config", "check"][..], &["serve", "--config"][..]] {
        let (code, err) = run(tmp.path(), &toml, args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        let named = format!("admin.tls_key {}", key.display());
        assert!(err.contains(&named), "{args:?}: {err}");
    }
    std::fs::write(&cert, "no certificate here\n").unwrap();
    let (code, err) = run(tmp.path(), &toml, &["config", "check"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("admin.tls_certificate"), "{err}");
}

/// The same for the DNS listeners' pair (DoT, DoH): `server.tls_key`.
#[test]
fn an_unusable_dot_certificate_is_a_config_error_for_check_and_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let (cert, key) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    std::fs::write(
        &cert,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(&key, "not a key\n").unwrap();
    let toml = demo(tmp.path()).replacen(
        "[server]\n",
        &format!(
            "[server]\ntls_listen = [\"127.0.0.1:0\"]\ntls_certificate = {cert:?}\ntls_key = {key:?}\n"
        ),
        1,
    );
    for args in [&["config", "check"][..], &["serve", "--config"][..]] {
        let (code, err) = run(tmp.path(), &toml, args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        let named = format!("server.tls_key {}", key.display());
        assert!(err.contains(&named), "{args:?}: {err}");
    }
}

fn set_mode(file: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// `audit.seal = true` without the sealing key: `config check` and `serve`
/// both refuse, exit 1, naming the key file and the command that makes it.
/// Left out, the missing key is a note, not an error.
#[test]
fn a_required_sealing_key_that_is_missing_is_a_config_error_for_check_and_serve() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("keys").join("seal.key");
    let demo = demo(tmp.path());
    let required = demo.replace(
        "[audit]\n",
        &format!("[audit]\nseal = true\nseal_key = {key:?}\n"),
    );
    for args in [&["config", "check"][..], &["serve", "--config"][..]] {
        let (code, err) = run(tmp.path(), &required, args);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        let named = format!("audit.seal_key {}", key.display());
        assert!(err.contains(&named), "{args:?}: {err}");
        assert!(err.contains("rempart audit setup-keys"), "{args:?}: {err}");
    }
    let left_out = demo.replace("[audit]\n", &format!("[audit]\nseal_key = {key:?}\n"));
    let file = tmp.path().join("rempart.toml");
    std::fs::write(&file, &left_out).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rempart"))
        .args(["config", "check"])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        stdout.contains("hash-chained but not sealed")
            && stdout.contains(&key.display().to_string()),
        "{stdout}"
    );
}

/// Issue 17: `config check` on several lists names every error of every
/// list (an unusable key of each list by its own key path), and on a good
/// file prints the lists in precedence order with their action and state.
#[test]
fn config_check_names_the_errors_of_every_list_and_prints_them_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let demo = std::fs::read_to_string("config/demo.toml").unwrap();
    let lists = demo.replace(
        "path = \"config/demo/list.txt\"\ntrusted_keys = [\"config/demo/demo.pub\"]\n",
        "",
    ) + "\n[[lists]]\nid = \"main\"\npath = \"config/demo/list.txt\"\ntrusted_keys = [\"config/demo/demo.pub\"]\n\
         \n[[lists]]\nid = \"anssi\"\npath = \"anssi.txt\"\ntrusted_keys = [\"config/demo/demo.pub\"]\naction = \"nxdomain\"\ndeadline_hours = 48\n";
    assert_ne!(lists, demo, "the demo's [list] was rewritten");
    let (code, out) = {
        let file = tmp.path().join("rempart.toml");
        std::fs::write(&file, &lists).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rempart"))
            .args(["config", "check"])
            .arg(&file)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("2 list(s)"), "{out}");
    assert!(
        out.contains("  1. list main: config/demo/list.txt (1 trusted key(s)), action redirect, deadline 24 h, state state\n"),
        "{out}"
    );
    assert!(
        out.contains("  2. list anssi: anssi.txt (1 trusted key(s)), action nxdomain, deadline 48 h, state state/anssi\n"),
        "{out}"
    );
    // A missing key in each list, and a list error: every one is named.
    let bad = lists
        .replace("[\"config/demo/demo.pub\"]\naction", "[\"missing-anssi.pub\"]\naction")
        .replace("id = \"main\"\npath = \"config/demo/list.txt\"\ntrusted_keys = [\"config/demo/demo.pub\"]", "id = \"main\"\npath = \"config/demo/list.txt\"\ntrusted_keys = [\"missing-main.pub\"]");
    let (code, err) = run(tmp.path(), &bad, &["config", "check"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("lists[0].trusted_keys[0]") && err.contains("missing-main.pub"),
        "{err}"
    );
    assert!(
        err.contains("lists[1].trusted_keys[0]") && err.contains("missing-anssi.pub"),
        "{err}"
    );
    let (code, err) = run(
        tmp.path(),
        &lists.replace("id = \"anssi\"", "id = \"main\""),
        &["config", "check"],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("lists[1].id: \"main\": already the id of lists[0]"),
        "{err}"
    );
}

/// The three deployment shapes of the README's "Fleet" section are configs
/// that `rempart config check` accepts, once the files they name exist
/// (made here: keys, certificates, the TSIG key, the admin token, the
/// origin's CA), with their paths moved into a temporary directory.
#[test]
fn the_fleet_examples_are_valid_configs() {
    let ca = common::Ca::new();
    let mut checked = 0;
    for entry in std::fs::read_dir("examples/fleet").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("/etc/rempart/", &format!("{}/etc/", root.display()))
            .replace("/var/lib/rempart", &format!("{}/state", root.display()))
            .replace("/var/log/rempart", &format!("{}/log", root.display()));
        // Every file the config names under /etc/rempart, made.
        let etc = format!("{}/etc/", root.display());
        let mut named: Vec<String> = text
            .split('"')
            .filter(|s| s.starts_with(&etc))
            .map(str::to_owned)
            .collect();
        named.sort();
        named.dedup();
        for file in &named {
            let file = std::path::Path::new(file);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            match name.as_str() {
                n if n.ends_with(".pub") => {
                    let key =
                        common::TestKey::new(file.parent().unwrap(), n.trim_end_matches(".pub"));
                    assert_eq!(key.public_path, file);
                }
                "xfr.key" => {
                    std::fs::write(
                        file,
                        "key \"xfr-key\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=\";\n};\n",
                    )
                    .unwrap();
                    set_mode(file, 0o600);
                }
                "admin.token" => {
                    std::fs::write(file, "a-long-random-token-for-the-admin-api\n").unwrap();
                    set_mode(file, 0o600);
                }
                "admin.crt" => {
                    ca.issue(file, &file.with_file_name("admin.key"));
                }
                "admin.key" => {}
                "origin-ca.pem" => std::fs::write(file, &ca.pem).unwrap(),
                // The lists themselves: not read by `config check`.
                "list.txt" => {}
                other => panic!(
                    "{}: names {other}, which this test does not make",
                    path.display()
                ),
            }
        }
        let (code, err) = run(root, &text, &["config", "check"]);
        assert_eq!(code, Some(0), "{}:\n{err}", path.display());
        checked += 1;
    }
    assert_eq!(checked, 3, "everywhere, rpz-primary, pull");
}
