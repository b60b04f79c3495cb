//! `rempart list ...`: the list administrator's tools.
//!
//! | command | exit 0 | exit 1 | exit 3 |
//! | --- | --- | --- | --- |
//! | `keygen` | keys written | a key file exists (no `--force`) | cannot write |
//! | `sign` | `LIST.minisig` written | the list fails a check | cannot read or write, the secret key is not a key |
//! | `verify` | signature and content good | refused, with the reason (a missing or unreadable `.minisig` too) | cannot read the list, a public key is unreadable or not a key |
//! | `inspect` | printed | the list does not parse | cannot read |
//! | `inspect --config FILE NAME` | printed | the config is invalid | cannot read a list |
//! | `diff` | printed | a list does not parse | cannot read |
//! | `push` | applied or unchanged | refused by the resolver (or not UTF-8) | resolver unreachable, or an HTTP error other than a refusal (wrong token 401, endpoints disabled 403) |
//!
//! A `--protected` value that is not a domain name is a usage error (2).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use time::OffsetDateTime;

use super::{EXIT_FAILURE, EXIT_OK, EXIT_REFUSED};
use crate::config::DEFAULT_PROTECTED;
use crate::list::format::canonical_name;
use crate::list::signature::{self, TrustedKeys};
use crate::list::{List, MatchKind, digest, gate, signature_path};

/// The `list` subcommands.
#[derive(Debug, Subcommand)]
pub enum ListCommand {
    /// Make an Ed25519 key pair in minisign's format (the secret key is not
    /// encrypted, like `minisign -G -W`: protect the file; it is written
    /// with mode 0600). Works with the `minisign` tool both ways.
    Keygen {
        /// Where to write the secret key.
        #[arg(long)]
        secret_key: PathBuf,
        /// Where to write the public key (give this one to the resolvers).
        #[arg(long)]
        public_key: PathBuf,
        /// Overwrite existing key files.
        #[arg(long)]
        force: bool,
    },
    /// Check that LIST parses and passes the content checks, then write
    /// LIST.minisig.
    Sign {
        /// The secret key (from `rempart list keygen` or `minisign -G -W`).
        #[arg(long)]
        secret_key: PathBuf,
        /// A protected name to check against, added to the resolver's 18
        /// defaults like `list.protected` (repeatable).
        #[arg(long = "protected", value_name = "NAME")]
        protected: Vec<String>,
        /// Check against the `--protected` names only, without the
        /// defaults, like `list.protected_defaults = false`.
        #[arg(long)]
        no_protected_defaults: bool,
        /// The list.
        list: PathBuf,
    },
    /// Check LIST.minisig against the public key(s), then the content: the
    /// format, dates, public suffixes and protected names.
    Verify {
        /// A trusted public key (repeatable: a signature by any of them is
        /// accepted).
        #[arg(long, required = true)]
        public_key: Vec<PathBuf>,
        /// A protected name to check against, added to the resolver's 18
        /// defaults like `list.protected` (repeatable).
        #[arg(long = "protected", value_name = "NAME")]
        protected: Vec<String>,
        /// Check against the `--protected` names only, without the
        /// defaults, like `list.protected_defaults = false`.
        #[arg(long)]
        no_protected_defaults: bool,
        /// The list.
        list: PathBuf,
    },
    /// Print the header, the entry counts per category and match kind, and
    /// the entries. With `--config FILE NAME`: which list and entry of that
    /// resolver's lists decide NAME, and why.
    Inspect {
        /// Print the header and counts only.
        #[arg(long)]
        summary: bool,
        /// A resolver's config: LIST is then a domain name, judged against
        /// every list in force there (the kept list of each, else its
        /// file), in precedence order, and against the protected names.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The list (or, with `--config`, the name).
        list: PathBuf,
    },
    /// Print the names added, removed and changed from OLD to NEW, with
    /// their references.
    Diff {
        /// The older list.
        old: PathBuf,
        /// The newer list.
        new: PathBuf,
    },
    /// Upload LIST and LIST.minisig to a running resolver (`PUT /v1/list`
    /// on its admin listener); prints applied (serial) or refused (reason).
    Push {
        /// The admin listener: `https://HOST:PORT`, or `http://` to a
        /// loopback address only (the token is never sent in clear).
        #[arg(long)]
        url: String,
        /// The file holding the admin bearer token.
        #[arg(long)]
        token_file: PathBuf,
        /// PEM file of the CA that signed the listener's certificate (a
        /// private CA); without it, the Mozilla root CAs.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// The id of the resolver's list to replace (`PUT /v1/lists/ID`);
        /// without it, the list `main` or the resolver's only list.
        #[arg(long = "list", value_name = "ID")]
        list_id: Option<String>,
        /// The list (its signature is LIST.minisig).
        list: PathBuf,
    },
}

/// Run a `list` subcommand.
pub fn run(cmd: ListCommand) -> ExitCode {
    match cmd {
        ListCommand::Keygen {
            secret_key,
            public_key,
            force,
        } => keygen(&secret_key, &public_key, force),
        ListCommand::Sign {
            secret_key,
            protected,
            no_protected_defaults,
            list,
        } => sign(&secret_key, &protected, !no_protected_defaults, &list),
        ListCommand::Verify {
            public_key,
            protected,
            no_protected_defaults,
            list,
        } => verify(&public_key, &protected, !no_protected_defaults, &list),
        ListCommand::Inspect {
            config: Some(config),
            list,
            ..
        } => super::decide::decide(&config, &list.to_string_lossy()),
        ListCommand::Inspect { summary, list, .. } => inspect(&list, summary),
        ListCommand::Diff { old, new } => diff(&old, &new),
        ListCommand::Push {
            url,
            token_file,
            ca_file,
            list_id,
            list,
        } => super::push::push(
            &url,
            &token_file,
            ca_file.as_deref(),
            list_id.as_deref(),
            &list,
        ),
    }
}

fn failure(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("rempart list: {msg}");
    ExitCode::from(EXIT_FAILURE)
}

fn refused(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("refused: {msg}");
    ExitCode::from(EXIT_REFUSED)
}

fn read(path: &Path) -> Result<Vec<u8>, ExitCode> {
    std::fs::read(path).map_err(|e| failure(format!("{}: cannot read: {e}", path.display())))
}

/// Write `data` to `path` through a temporary file and a rename, so that a
/// watching resolver never sees half a file.
fn write_atomic(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        let mut f = options.open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn keygen(secret: &Path, public: &Path, force: bool) -> ExitCode {
    if !force {
        for p in [secret, public] {
            if p.exists() {
                return refused(format!(
                    "{}: exists; pass --force to overwrite it",
                    p.display()
                ));
            }
        }
    }
    let keys = match signature::keygen() {
        Ok(k) => k,
        Err(e) => return failure(format!("key generation failed: {e}")),
    };
    if let Err(e) = write_atomic(secret, keys.secret.as_bytes(), 0o600) {
        return failure(format!("{}: {e}", secret.display()));
    }
    if let Err(e) = write_atomic(public, keys.public.as_bytes(), 0o644) {
        return failure(format!("{}: {e}", public.display()));
    }
    println!(
        "key {}: secret key {} (keep it offline, mode 0600), public key {}",
        keys.id,
        secret.display(),
        public.display()
    );
    ExitCode::from(EXIT_OK)
}

/// The protected names to check against, as the resolver's config makes
/// them: the defaults (unless `defaults` is false), then the given ones.
fn protected_names(given: &[String], defaults: bool) -> Result<Vec<String>, ExitCode> {
    let mut names: Vec<String> = if defaults {
        DEFAULT_PROTECTED.iter().map(|s| (*s).to_owned()).collect()
    } else {
        Vec::new()
    };
    for n in given {
        let name = canonical_name(n).map_err(|e| {
            eprintln!("rempart list: --protected {n:?}: {e}");
            ExitCode::from(super::EXIT_USAGE)
        })?;
        if !names.iter().any(|p| *p == name) {
            names.push(name.into_owned());
        }
    }
    Ok(names)
}

fn parse(path: &Path, bytes: &[u8]) -> Result<List, ExitCode> {
    List::parse(bytes, path).map_err(refused)
}

fn check_content(path: &Path, list: &List, protected: &[String]) -> Result<(), ExitCode> {
    gate::check_content(list, protected, OffsetDateTime::now_utc())
        .map_err(|reason| refused(format!("{}: {reason}", path.display())))
}

fn sign(secret: &Path, protected: &[String], defaults: bool, path: &Path) -> ExitCode {
    let protected = match protected_names(protected, defaults) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let bytes = match read(path) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let list = match parse(path, &bytes) {
        Ok(l) => l,
        Err(code) => return code,
    };
    if let Err(code) = check_content(path, &list, &protected) {
        return code;
    }
    let secret_text = match std::fs::read_to_string(secret) {
        Ok(s) => s,
        Err(e) => return failure(format!("{}: cannot read: {e}", secret.display())),
    };
    let comment = format!(
        "rempart-list issuer:{} serial:{} sha256:{}",
        list.header.issuer,
        list.header.serial,
        hex(&digest(&bytes))
    );
    let sig = match signature::sign(&secret_text, &bytes, &comment) {
        Ok(s) => s,
        Err(e) => {
            return failure(format!(
                "{}: not a usable secret key: {e}",
                secret.display()
            ));
        }
    };
    let sig_path = signature_path(path);
    if let Err(e) = write_atomic(&sig_path, sig.as_bytes(), 0o644) {
        return failure(format!("{}: {e}", sig_path.display()));
    }
    println!(
        "{}: signed serial {} ({} entries) -> {}",
        path.display(),
        list.header.serial,
        list.entries.len(),
        sig_path.display()
    );
    ExitCode::from(EXIT_OK)
}

fn verify(keys: &[PathBuf], protected: &[String], defaults: bool, path: &Path) -> ExitCode {
    let protected = match protected_names(protected, defaults) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let trusted = match TrustedKeys::load(keys) {
        Ok(k) => k,
        Err(e) => return failure(e),
    };
    let bytes = match read(path) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let sig_path = signature_path(path);
    let sig = match std::fs::read(&sig_path) {
        Ok(s) => s,
        Err(e) => {
            return refused(format!(
                "{}: no signature: {}: {e}",
                path.display(),
                sig_path.display()
            ));
        }
    };
    let key_id = match trusted.verify(&bytes, &sig) {
        Ok(id) => id,
        Err(e) => return refused(format!("{}: signature: {e}", path.display())),
    };
    let list = match parse(path, &bytes) {
        Ok(l) => l,
        Err(code) => return code,
    };
    if let Err(code) = check_content(path, &list, &protected) {
        return code;
    }
    println!(
        "{}: good: issuer {}, serial {}, {} entries, signed by key {key_id}, expires {}, sha256 {}",
        path.display(),
        list.header.issuer,
        list.header.serial,
        list.entries.len(),
        rfc3339(list.header.expires),
        hex(&digest(&bytes))
    );
    ExitCode::from(EXIT_OK)
}

use crate::text::{hex, rfc3339};

fn load(path: &Path) -> Result<(List, Vec<u8>), ExitCode> {
    let bytes = read(path)?;
    let list = parse(path, &bytes)?;
    Ok((list, bytes))
}

fn inspect(path: &Path, summary: bool) -> ExitCode {
    let (list, bytes) = match load(path) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let h = &list.header;
    let mut out = String::new();
    out.push_str(&format!("file:     {}\n", path.display()));
    out.push_str(&format!("sha256:   {}\n", hex(&digest(&bytes))));
    out.push_str(&format!("issuer:   {}\n", h.issuer));
    out.push_str(&format!("serial:   {}\n", h.serial));
    out.push_str(&format!("issued:   {}\n", rfc3339(h.issued)));
    out.push_str(&format!("expires:  {}\n", rfc3339(h.expires)));
    for (k, v) in &h.extensions {
        out.push_str(&format!("{k}: {v}\n"));
    }
    out.push_str(&format!("entries:  {}\n", list.entries.len()));
    let mut per_category: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for e in &list.entries {
        let c = per_category.entry(e.category.as_str()).or_default();
        match e.kind {
            MatchKind::Subtree => c.0 += 1,
            MatchKind::Exact => c.1 += 1,
        }
    }
    out.push_str("\ncategory\tsubtree\texact\ttotal\n");
    for (cat, (s, x)) in &per_category {
        out.push_str(&format!("{cat}\t{s}\t{x}\t{}\n", s + x));
    }
    let (s, x) = per_category
        .values()
        .fold((0, 0), |(a, b), (s, x)| (a + s, b + x));
    out.push_str(&format!("all\t{s}\t{x}\t{}\n", s + x));
    if !summary {
        out.push_str("\nname\tmatch\tcategory\treference\tadded\n");
        for e in &list.entries {
            out.push_str(&entry_line(e));
            out.push('\n');
        }
    }
    print_all(&out)
}

fn entry_line(e: &crate::list::Entry) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}",
        e.name,
        e.kind.as_str(),
        e.category,
        e.reference,
        e.added
            .format(time::macros::format_description!("[year]-[month]-[day]"))
            .unwrap_or_default()
    )
}

/// Print, ignoring a closed pipe (`| head`).
fn print_all(text: &str) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(EXIT_OK),
        Err(e) => failure(format!("stdout: {e}")),
    }
}

fn diff(old_path: &Path, new_path: &Path) -> ExitCode {
    let (old, _) = match load(old_path) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let (new, _) = match load(new_path) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let old_by_name: HashMap<&str, &crate::list::Entry> =
        old.entries.iter().map(|e| (e.name.as_str(), e)).collect();
    let new_by_name: HashMap<&str, &crate::list::Entry> =
        new.entries.iter().map(|e| (e.name.as_str(), e)).collect();
    let mut out = format!(
        "--- {} serial {}\n+++ {} serial {}\n",
        old_path.display(),
        old.header.serial,
        new_path.display(),
        new.header.serial
    );
    let (mut added, mut removed, mut changed) = (0, 0, 0);
    for e in &old.entries {
        if !new_by_name.contains_key(e.name.as_str()) {
            out.push_str(&format!("-\t{}\n", entry_line(e)));
            removed += 1;
        }
    }
    for e in &new.entries {
        match old_by_name.get(e.name.as_str()) {
            None => {
                out.push_str(&format!("+\t{}\n", entry_line(e)));
                added += 1;
            }
            Some(o) => {
                if o.kind != e.kind || o.category != e.category || o.reference != e.reference {
                    out.push_str(&format!("~\t{}\t(was {})\n", entry_line(e), entry_line(o)));
                    changed += 1;
                }
            }
        }
    }
    out.push_str(&format!(
        "{added} added, {removed} removed, {changed} changed\n"
    ));
    print_all(&out)
}
