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
