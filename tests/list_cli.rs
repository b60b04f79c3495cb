//! `rempart list ...` as an administrator runs it, exit codes included, and
//! interoperability with Debian's `minisign` both ways.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{ENTRIES, Extra, Setup, TestUpstream, ZONE, list_text};

fn rempart(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rempart"))
        .args(args)
        .output()
        .unwrap()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Debian's minisign; CI installs it (.ci/run). Missing here is a failure,
/// not a skip: interoperability is part of the contract.
fn minisign(args: &[&str]) -> Output {
    Command::new("minisign")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the minisign tool is needed (apt-get install minisign)")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
    fn keygen(&self, name: &str) -> (PathBuf, PathBuf) {
        let (sk, pk) = (
            self.path(&format!("{name}.key")),
            self.path(&format!("{name}.pub")),
        );
        let o = rempart(&[
            "list",
            "keygen",
            "--secret-key",
            s(&sk),
            "--public-key",
            s(&pk),
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        (sk, pk)
    }
}

#[test]
fn keygen_sign_verify_and_exit_codes() {
    let d = Dir::new();
    let (sk, pk) = d.keygen("authority");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&sk).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the secret key is private");
    }
    // A second keygen does not overwrite keys by accident.
    let o = rempart(&[
        "list",
        "keygen",
        "--secret-key",
        s(&sk),
        "--public-key",
        s(&pk),
    ]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));

    let list = d.write("list.txt", &list_text(4, ENTRIES));
    let o = rempart(&["list", "sign", "--secret-key", s(&sk), s(&list)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(d.path("list.txt.minisig").exists());

    let o = rempart(&["list", "verify", "--public-key", s(&pk), s(&list)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("good") && stdout(&o).contains("serial 4"));

    // One changed byte: refused with the reason, exit 1.
    let mut bytes = std::fs::read(&list).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 1;
    std::fs::write(&list, &bytes).unwrap();
    let o = rempart(&["list", "verify", "--public-key", s(&pk), s(&list)]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("signature"), "{}", stderr(&o));

    // Another key: refused, naming the key id that signed it.
    let (_, other_pk) = d.keygen("other");
    let list = d.write("list.txt", &list_text(4, ENTRIES));
    let o = rempart(&["list", "verify", "--public-key", s(&other_pk), s(&list)]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("refused"), "{}", stderr(&o));
    // Both trusted (rotation): good.
    let o = rempart(&[
        "list",
        "verify",
        "--public-key",
        s(&other_pk),
        "--public-key",
        s(&pk),
        s(&list),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    // No signature: 1. Usage errors: 2. No list file: 3.
    std::fs::remove_file(d.path("list.txt.minisig")).unwrap();
    let o = rempart(&["list", "verify", "--public-key", s(&pk), s(&list)]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("no signature"), "{}", stderr(&o));
    assert_eq!(code(&rempart(&["list", "verify", s(&list)])), 2);
    assert_eq!(code(&rempart(&["list", "sign", s(&list)])), 2);
    assert_eq!(code(&rempart(&["list", "frobnicate"])), 2);
    let o = rempart(&[
        "list",
        "verify",
        "--public-key",
        s(&pk),
        s(&d.path("gone.txt")),
    ]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
}

#[test]
fn sign_refuses_a_list_that_would_be_refused() {
    let d = Dir::new();
    let (sk, pk) = d.keygen("authority");
    let broken = list_text(4, ENTRIES).replace("\tsubtree\t", "\tsubtre\t");
    let list = d.write("broken.txt", &broken);
    let o = rempart(&["list", "sign", "--secret-key", s(&sk), s(&list)]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("broken.txt:8:") && stderr(&o).contains("subtre"),
        "names the file, the line and the reason: {}",
        stderr(&o)
    );
    assert!(!d.path("broken.txt.minisig").exists(), "nothing signed");

    // A protected name (the resolver's defaults include google.fr).
    let list = d.write(
        "google.txt",
        &list_text(4, &[("google.fr", "subtree", "terrorism", "R-1")]),
    );
    let o = rempart(&["list", "sign", "--secret-key", s(&sk), s(&list)]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("protected"), "{}", stderr(&o));
    // --protected adds to the defaults, as list.protected does (issue 15);
    // with --no-protected-defaults, the operator's own names instead. verify
    // applies the same gates as sign.
    let google = list;
    let example = d.write(
        "example.txt",
        &list_text(4, &[("example.org", "subtree", "terrorism", "R-1")]),
    );
    let own = ["--protected", "example.org", "--no-protected-defaults"];
    let cases: [(&str, &[&str], &PathBuf, i32); 6] = [
        ("sign", &own[..2], &google, 1),
        ("sign", &own, &google, 0),
        ("verify", &[], &google, 1),
        ("verify", &own, &google, 0),
        ("sign", &[], &example, 0),
        ("verify", &own[..2], &example, 1),
    ];
    for (command, protected, list, expected) in cases {
        let key = if command == "sign" {
            ["--secret-key", s(&sk)]
        } else {
            ["--public-key", s(&pk)]
        };
        let mut args = vec!["list", command, key[0], key[1]];
        args.extend_from_slice(protected);
        args.push(s(list));
        let o = rempart(&args);
        assert_eq!(code(&o), expected, "{args:?}: {}", stderr(&o));
        if expected == 1 {
            assert!(stderr(&o).contains("protected"), "{}", stderr(&o));
        }
    }

    // A public suffix.
    let list = d.write(
        "suffix.txt",
        &list_text(4, &[("blogspot.com", "subtree", "terrorism", "R-1")]),
    );
    let o = rempart(&["list", "sign", "--secret-key", s(&sk), s(&list)]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("public suffix"), "{}", stderr(&o));
}

#[test]
fn inspect_and_diff() {
    let d = Dir::new();
    let old = d.write("old.txt", &list_text(4, ENTRIES));
    let mut entries = ENTRIES.to_vec();
    entries.retain(|e| e.0 != "host.test");
    entries.push(("new.test", "subtree", "child-abuse", "REF-NEW"));
    let new = d.write("new.txt", &list_text(5, &entries));

    let o = rempart(&["list", "inspect", s(&old)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("serial:   4"), "{out}");
    assert!(out.contains("entries:  2"), "{out}");
    assert!(out.contains("terrorism\t1\t0\t1"), "{out}");
    assert!(out.contains("child-abuse\t0\t1\t1"), "{out}");
    assert!(
        out.contains("host.test\texact\tchild-abuse\tREF-0002"),
        "{out}"
    );
    let o = rempart(&["list", "inspect", "--summary", s(&old)]);
    assert!(!stdout(&o).contains("REF-0002"));

    let o = rempart(&["list", "diff", s(&old), s(&new)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("+\tnew.test\tsubtree\tchild-abuse\tREF-NEW"),
        "{out}"
    );
    assert!(
        out.contains("-\thost.test\texact\tchild-abuse\tREF-0002"),
        "{out}"
    );
    assert!(
        !out.contains("bad.test"),
        "unchanged entries are not listed: {out}"
    );
    assert!(out.contains("1 added, 1 removed, 0 changed"), "{out}");

    let bad = d.write("bad.txt", "not a list\n");
    let o = rempart(&["list", "diff", s(&old), s(&bad)]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("bad.txt:1:"), "{}", stderr(&o));
}

#[test]
fn minisign_interoperability_both_ways() {
    let d = Dir::new();
    // A key made by minisign (-W: no password), a list signed by minisign.
    let (msk, mpk) = (d.path("m.key"), d.path("m.pub"));
    let o = minisign(&["-G", "-W", "-s", s(&msk), "-p", s(&mpk)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let list = d.write("list.txt", &list_text(4, ENTRIES));
    let o = minisign(&["-S", "-s", s(&msk), "-m", s(&list)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = rempart(&["list", "verify", "--public-key", s(&mpk), s(&list)]);
    assert_eq!(code(&o), 0, "minisign -S is accepted: {}", stderr(&o));
    // The legacy (non-prehashed) signature too.
    let o = minisign(&["-S", "-l", "-s", s(&msk), "-m", s(&list)]);
    if o.status.success() {
        let o = rempart(&["list", "verify", "--public-key", s(&mpk), s(&list)]);
        assert_eq!(code(&o), 0, "minisign -S -l: {}", stderr(&o));
    }

    // rempart signs with minisign's key; minisign verifies it.
    let o = rempart(&["list", "sign", "--secret-key", s(&msk), s(&list)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = minisign(&["-V", "-p", s(&mpk), "-m", s(&list)]);
    assert!(o.status.success(), "minisign -V: {}", stderr(&o));

    // A key made by rempart works with minisign both ways.
    let (rsk, rpk) = d.keygen("r");
    let o = rempart(&["list", "sign", "--secret-key", s(&rsk), s(&list)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = minisign(&["-V", "-p", s(&rpk), "-m", s(&list)]);
    assert!(
        o.status.success(),
        "minisign -V on rempart's signature: {}",
        stderr(&o)
    );
    assert!(
        stdout(&o).contains("serial:4"),
        "the trusted comment: {}",
        stdout(&o)
    );
    let o = minisign(&["-S", "-s", s(&rsk), "-m", s(&list)]);
    assert!(
        o.status.success(),
        "minisign -S with rempart's key: {}",
        stderr(&o)
    );
    let o = rempart(&["list", "verify", "--public-key", s(&rpk), s(&list)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // A tampered list fails minisign's check as well as ours.
    std::fs::write(&list, list_text(4, ENTRIES).replace("REF-0001", "REF-0009")).unwrap();
    let o = minisign(&["-V", "-p", s(&rpk), "-m", s(&list)]);
    assert!(!o.status.success());
    let o = rempart(&["list", "verify", "--public-key", s(&rpk), s(&list)]);
    assert_eq!(code(&o), 1);

    // An encrypted minisign key is refused with a clear reason, no prompt.
    let (esk, epk) = (d.path("e.key"), d.path("e.pub"));
    let mut child = Command::new("minisign")
        .args(["-G", "-s", s(&esk), "-p", s(&epk)])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(b"a-password\na-password\n");
    }
    if child.wait().unwrap().success() {
        let o = rempart(&["list", "sign", "--secret-key", s(&esk), s(&list)]);
        assert_eq!(code(&o), 3);
        assert!(stderr(&o).contains("encrypted"), "{}", stderr(&o));
    }
}

/// Issue 15: dates in messages printed as `2026-11-30 0:00:00.0 +00:00:00`.
/// Every time a refusal names is RFC 3339, like the list itself.
#[test]
fn refusals_print_times_in_rfc3339() {
    let d = Dir::new();
    let (sk, _) = d.keygen("k");
    for (file, from, to, expected) in [
        (
            "expired.txt",
            "expires: 2099-01-01T00:00:00Z",
            "expires: 2026-01-02T00:00:00Z",
            "expired: expires 2026-01-02T00:00:00Z is not after now (20",
        ),
        (
            "future.txt",
            "issued: 2026-01-01T00:00:00Z",
            "issued: 2098-01-01T00:00:00Z",
            "issued 2098-01-01T00:00:00Z is in the future",
        ),
    ] {
        let list = d.write(file, &list_text(4, ENTRIES).replace(from, to));
        let o = rempart(&["list", "sign", "--secret-key", s(&sk), s(&list)]);
        assert_eq!(code(&o), 1, "{}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(expected), "{err}");
        assert!(
            !err.contains("+00:00:00") && !err.contains(":00.0"),
            "{err}"
        );
    }
}

/// Issue 15: a pushed list's header refusal named the empty line after the
/// header, not the line at fault. `list push` prints the resolver's reason
/// with the right line and exits 1; a good push exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_list_refusal_names_the_line_at_fault() {
    const TOKEN: &str = "test-token-0123456789abcdef";
    let upstream = TestUpstream::start(ZONE).await;
    let setup = Setup::new(ENTRIES);
    let token_file = setup.dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        // The resolver refuses a token its group or others may read.
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let admin: &'static str = Box::leak(format!("token_file = {:?}", token_file).into_boxed_str());
    let extra = Extra {
        admin,
        list: "watch = false",
        ..Extra::default()
    };
    let server = common::Rempart::start(&setup.config(upstream.addr, &extra)).await;
    let url = format!("http://{}", server.admin);
    let good = list_text(5, ENTRIES);
    // Lines: 1 format, 2 issuer, 3 serial, 4 issued, 5 expires, 6 empty,
    // 7 columns, 8 and 9 entries.
    let cases = [
        (
            list_text(0, ENTRIES),
            1,
            "line 3: serial 0 is older than the serial in force, 1 (rollback)",
        ),
        (
            good.replace(
                "expires: 2099-01-01T00:00:00Z",
                "expires: 2026-01-02T00:00:00Z",
            ),
            1,
            "line 5: expired: expires 2026-01-02T00:00:00Z",
        ),
        (
            good.replace("host.test\texact", "host.test\twide"),
            1,
            "line 9: match \"wide\"",
        ),
        (
            format!("\u{feff}{good}"),
            1,
            "line 1: the file starts with a UTF-8 byte order mark",
        ),
        (good.clone(), 0, "applied serial 5"),
    ];
    // `rempart list push`, off the runtime the server runs on.
    let push = |token: &Path, list: &Path| {
        let args: Vec<String> = [
            "list",
            "push",
            "--url",
            &url,
            "--token-file",
            s(token),
            s(list),
        ]
        .map(str::to_owned)
        .into();
        tokio::task::spawn_blocking(move || {
            rempart(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
    };
    for (i, (text, expected_code, expected)) in cases.into_iter().enumerate() {
        let list = setup.dir.path().join(format!("push-{i}.txt"));
        setup.key.write_signed(&list, &text);
        let o = push(&token_file, &list).await.unwrap();
        assert_eq!(code(&o), expected_code, "{}{}", stdout(&o), stderr(&o));
        assert!(
            stdout(&o).contains(expected),
            "{expected:?} not in {}",
            stdout(&o)
        );
    }
    // A wrong token is no refusal of the list: 3, as documented.
    let wrong = setup.dir.path().join("wrong-token");
    std::fs::write(&wrong, "not-the-token-0123456789\n").unwrap();
    let o = push(&wrong, &setup.dir.path().join("push-4.txt"))
        .await
        .unwrap();
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("HTTP 401"), "{}", stderr(&o));
    server.stop().await;
}

/// Every exit code the README and `rempart list`'s table document for the
/// cases the other tests do not reach (issue 15: exit codes as documented).
#[test]
fn list_tools_exit_with_the_documented_codes() {
    let d = Dir::new();
    let (sk, pk) = d.keygen("k");
    let list = d.write("list.txt", &list_text(4, ENTRIES));
    let not_a_key = d.write("not-a-key", "hello\n");
    let not_a_list = d.write("not-a-list.txt", "hello\n");
    let gone = d.path("gone.txt");
    let gone_pub = d.path("gone.pub");
    let cases: &[(&[&str], i32)] = &[
        (&["list", "inspect", s(&list)], 0),
        (&["list", "inspect", s(&not_a_list)], 1),
        (&["list", "inspect", s(&gone)], 3),
        (&["list", "diff", s(&list), s(&not_a_list)], 1),
        (&["list", "diff", s(&list), s(&gone)], 3),
        (
            &["list", "sign", "--secret-key", s(&not_a_key), s(&list)],
            3,
        ),
        (&["list", "sign", "--secret-key", s(&sk), s(&gone)], 3),
        (
            &[
                "list",
                "sign",
                "--secret-key",
                s(&sk),
                "--protected",
                "a..b",
                s(&list),
            ],
            2,
        ),
        (&["list", "sign", "--secret-key", s(&sk), s(&list)], 0),
        (
            &["list", "verify", "--public-key", s(&not_a_key), s(&list)],
            3,
        ),
        (
            &["list", "verify", "--public-key", s(&gone_pub), s(&list)],
            3,
        ),
        (&["list", "verify", "--public-key", s(&pk), s(&list)], 0),
        // Nothing listens on port 1 of the loopback.
        (
            &[
                "list",
                "push",
                "--url",
                "http://127.0.0.1:1",
                "--token-file",
                s(&not_a_key),
                s(&list),
            ],
            3,
        ),
        (
            &[
                "list",
                "push",
                "--url",
                "http://127.0.0.1:1",
                "--token-file",
                s(&gone),
                s(&list),
            ],
            3,
        ),
    ];
    for (args, expected) in cases {
        let o = rempart(args);
        assert_eq!(code(&o), *expected, "{args:?}: {}", stderr(&o));
    }
}
