//! The config as the binary reads it: `config check` and `serve` refuse the
//! same files. The parsing itself (every shipped config parses, defaults,
//! typos, every invalid value named) is tested beside the code, in
//! src/config/tests.rs.

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

fn set_mode(file: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(mode)).unwrap();
}
