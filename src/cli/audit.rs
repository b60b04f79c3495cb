//! `rempart audit setup-keys`, `rempart audit verify` and `rempart audit
//! report`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use super::{EXIT_FAILURE, EXIT_OK, EXIT_REFUSED};
use crate::audit::report::{self, Report};
use crate::audit::seal::{self, SealingKey, VerifyingKey, journal};
use crate::audit::{fleet, verify};
use crate::config::Config;

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Tables for people.
    Text,
    /// One JSON object.
    Json,
    /// One CSV table with a `section` column.
    Csv,
}

/// The `audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Make the trail's first sealing key where `serve` finds it
    /// (`audit.seal_key`, mode 0600) and print the auditor's verification
    /// key on the last line of stdout.
    SetupKeys {
        /// The configuration file (`audit.seal_key`, `audit.dir`).
        #[arg(long)]
        config: PathBuf,
    },
    /// Check the trail's integrity: exit 0 if intact, 1 with the first
    /// broken record (file, line, reason). With `--key`, also check the
    /// seals: records rewritten, deleted, inserted or cut off are
    /// detected, and the output says up to when the trail is sealed.
    Verify {
        /// The auditor's verification key (the last line printed by
        /// `rempart audit setup-keys`, saved to a file).
        #[arg(long)]
        key: Option<PathBuf>,
        /// A copy of the seals kept outside the directory: the journal's
        /// `audit: trail sealed` lines (`journalctl -u rempart -o cat`,
        /// or `-o json`). Every seal of this trail in it must be in the
        /// trail and verify; one missing is a cut tail (exit 1).
        #[arg(long, requires = "key")]
        seals: Option<PathBuf>,
        /// The audit directory.
        dir: PathBuf,
    },
    /// Check the chain first (exit 1 if broken, unless `--allow-broken`),
    /// then: redirects per entry, per category and per day; list versions
    /// and the delay from `issued` to applied for every addition and
    /// removal. With several directories (the trails of a fleet's
    /// resolvers): each chain checked, then per list version when each
    /// resolver applied it and the slowest delay, then each trail's report.
    Report {
        /// The audit directory, or several (one per resolver).
        #[arg(required = true, num_args = 1..)]
        dirs: Vec<PathBuf>,
        /// Start of the period (RFC 3339 time or YYYY-MM-DD), inclusive.
        #[arg(long)]
        from: Option<String>,
        /// End of the period (RFC 3339 time or YYYY-MM-DD), exclusive.
        #[arg(long)]
        to: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// The auditor's verification key: the chain check that comes
        /// first also checks the seals.
        #[arg(long)]
        key: Option<PathBuf>,
        /// Report from a broken chain (the output says it is broken)
        /// instead of refusing with exit 1.
        #[arg(long)]
        allow_broken: bool,
    },
}

/// A `--from` or `--to` that is not a time.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is neither an RFC 3339 time nor a date YYYY-MM-DD")]
struct BoundError(String);

/// `--from` and `--to`: an RFC 3339 time, or a date meaning its midnight UTC.
fn parse_bound(s: &str) -> Result<time::OffsetDateTime, BoundError> {
    if let Ok(t) = crate::text::parse_rfc3339(s) {
        return Ok(t);
    }
    time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
        .map(|d| d.midnight().assume_utc())
        .map_err(|_| BoundError(s.to_owned()))
}

/// Run an `audit` subcommand.
pub fn run(cmd: AuditCommand) -> ExitCode {
    match cmd {
        AuditCommand::SetupKeys { config } => setup_keys(&config),
        AuditCommand::Verify { dir, key, seals } => {
            run_verify(&dir, key.as_deref(), seals.as_deref())
        }
        AuditCommand::Report {
            dirs,
            from,
            to,
            format,
            key,
            allow_broken,
        } => {
            let bound = |b: Option<String>| b.as_deref().map(parse_bound).transpose();
            let (from, to) = match (bound(from), bound(to)) {
                (Ok(f), Ok(t)) => (f, t),
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("rempart audit report: {e}");
                    return ExitCode::from(super::EXIT_USAGE);
                }
            };
            let key = match key.as_deref().map(read_verifying_key).transpose() {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("rempart audit report: {e}");
                    return ExitCode::from(EXIT_FAILURE);
                }
            };
            let mut reports = Vec::with_capacity(dirs.len());
            for dir in &dirs {
                match checked_report(dir, key, allow_broken, from, to) {
                    Ok(r) => reports.push((dir.display().to_string(), r)),
                    Err(code) => return code,
                }
            }
            if let [(_, r)] = reports.as_slice() {
                match format {
                    Format::Text => print!("{}", report::text(r)),
                    Format::Csv => print!("{}", report::csv(r)),
                    Format::Json => {
                        println!("{}", serde_json::to_string_pretty(r).unwrap_or_default())
                    }
                }
                return ExitCode::from(EXIT_OK);
            }
            let fleet = fleet::fleet(&reports);
            match format {
                Format::Text => {
                    print!("{}", fleet::text(&fleet));
                    for (dir, r) in &reports {
                        println!("\n==== {} ({dir}) ====\n", r.host.as_deref().unwrap_or(dir));
                        print!("{}", report::text(r));
                    }
                }
                Format::Csv => print!("{}", fleet::csv(&fleet)),
                Format::Json => {
                    let resolvers: Vec<&Report> = reports.iter().map(|(_, r)| r).collect();
                    let both = serde_json::json!({ "fleet": fleet, "resolvers": resolvers });
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&both).unwrap_or_default()
                    );
                }
            }
            ExitCode::from(EXIT_OK)
        }
    }
}

/// The report of one trail, its chain checked first: the exit code to
/// leave with when the chain is broken (and not allowed) or unreadable.
fn checked_report(
    dir: &Path,
    key: Option<VerifyingKey>,
    allow_broken: bool,
    from: Option<time::OffsetDateTime>,
    to: Option<time::OffsetDateTime>,
) -> Result<Report, ExitCode> {
    let chain = report::check_chain(dir, key).map_err(|b| {
        eprintln!("rempart audit report: {}: {b}", dir.display());
        ExitCode::from(EXIT_FAILURE)
    })?;
    if !chain.intact && !allow_broken {
        eprintln!(
            "rempart audit report: {}: the chain is {}; no report (--allow-broken reports from it anyway)",
            dir.display(),
            chain.summary()
        );
        return Err(ExitCode::from(EXIT_REFUSED));
    }
    let mut r = report::build(dir, from, to).map_err(|e| {
        eprintln!("rempart audit report: {e}");
        ExitCode::from(EXIT_FAILURE)
    })?;
    r.chain = chain;
    Ok(r)
}

/// The warning printed by `audit verify` without `--key`.
const UNSEALED_CHECK: &str = "note: without --key this check proves nothing against someone who can write the directory (the chain can be recomputed); check the seals with `rempart audit verify --key FILE DIR`";

/// `audit verify [--key FILE [--seals COPY]] DIR`.
fn run_verify(dir: &Path, key: Option<&Path>, seals: Option<&Path>) -> ExitCode {
    let key = match key.map(read_verifying_key).transpose() {
        Ok(k) => k,
        Err(e) => {
            eprintln!("rempart audit verify: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let copy = match seals.map(journal::read).transpose() {
        Ok(c) => c,
        Err(e @ journal::CopyError::Read { .. }) => {
            eprintln!("rempart audit verify: --seals {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
        Err(e) => {
            eprintln!("rempart audit verify: --seals {e}");
            return ExitCode::from(EXIT_REFUSED);
        }
    };
    match verify::verify_with(dir, key) {
        Ok(s) => {
            // The copy first: a trail cut after its last seal is not
            // intact, whatever the directory alone says.
            let copied = match (&copy, &s.sealed, seals) {
                (Some(copy), Some(report), Some(file)) => match journal::check(copy, report) {
                    Ok(c) => Some((file, c)),
                    Err(b) => {
                        eprintln!("broken: {}: {b}", file.display());
                        return ExitCode::from(EXIT_REFUSED);
                    }
                },
                _ => None,
            };
            println!(
                "intact: {} record(s) in {} file(s), seq {} to {}, head {}{}",
                s.records,
                s.files,
                s.first_seq,
                s.last_seq,
                if s.head.is_empty() { "-" } else { &s.head },
                if s.from_genesis || s.records == 0 {
                    ""
                } else {
                    " (the trail starts after earlier files were removed)"
                }
            );
            if s.torn_tail {
                println!(
                    "the newest file ends with an unterminated line (a record being written, or a crash the next start repairs): not read"
                );
            }
            match &s.sealed {
                Some(report) => print!("{report}"),
                None => eprintln!("{UNSEALED_CHECK}"),
            }
            if let Some((file, c)) = copied {
                println!(
                    "journal copy {}: {} seal(s) of this trail, every one in the trail and verified; the newest: epoch {} at {}{}",
                    file.display(),
                    c.matched,
                    c.newest.0,
                    c.newest.1,
                    if c.other_trails > 0 {
                        format!(" ({} seal line(s) of other trails skipped)", c.other_trails)
                    } else {
                        String::new()
                    }
                );
            }
            ExitCode::from(EXIT_OK)
        }
        Err(b) if b.unreadable => {
            eprintln!("rempart audit verify: {b}");
            ExitCode::from(EXIT_FAILURE)
        }
        Err(b) => {
            eprintln!("broken: {b}");
            ExitCode::from(EXIT_REFUSED)
        }
    }
}

/// A verification key file that cannot be used.
#[derive(Debug, thiserror::Error)]
enum KeyFileError {
    /// Cannot read it.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not a verification key.
    #[error("{}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: seal::ParseError,
    },
}

fn read_verifying_key(path: &Path) -> Result<VerifyingKey, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Read {
        path: path.to_owned(),
        source,
    })?;
    VerifyingKey::from_text(&text).map_err(|source| KeyFileError::Parse {
        path: path.to_owned(),
        source,
    })
}

/// `audit setup-keys --config FILE`: refuses to replace a key, or to
/// start a new key chain over a trail already sealed (either would make
/// the auditor's key useless for what was sealed before).
fn setup_keys(config: &Path) -> ExitCode {
    let config = match Config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_REFUSED);
        }
    };
    let path = &config.audit.seal_key;
    let log = seal::log::path(&config.audit.dir);
    if path.exists() {
        eprintln!(
            "rempart audit setup-keys: {} already exists: the trail has a sealing key (remove it only to start a new trail, with a new verification key for the auditor)",
            path.display()
        );
        return ExitCode::from(EXIT_REFUSED);
    }
    if log.exists() {
        eprintln!(
            "rempart audit setup-keys: {} exists: this trail was sealed under another key; move the trail aside to start a new one",
            log.display()
        );
        return ExitCode::from(EXIT_REFUSED);
    }
    let made = SealingKey::generate().and_then(|key| {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| seal::KeyError::Io {
                path: parent.to_owned(),
                op: "create the directory",
                source,
            })?;
        }
        key.write(path).map(|()| key)
    });
    match made {
        Ok(key) => {
            let pk = key.verifying_key();
            println!("sealing key written to {} (mode 0600)", path.display());
            println!(
                "`rempart serve` seals {} with it every audit.seal_interval_s from its next start (unless audit.seal = false), replacing the key at each seal",
                config.audit.dir.display()
            );
            println!(
                "give the auditor the verification key below (key id {}); they check the trail with `rempart audit verify --key FILE DIR`",
                pk.id()
            );
            println!("{pk}");
            ExitCode::from(EXIT_OK)
        }
        Err(e) => {
            eprintln!("rempart audit setup-keys: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
