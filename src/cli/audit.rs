//! `rempart audit verify DIR` and `rempart audit report DIR`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};

use super::{EXIT_FAILURE, EXIT_OK, EXIT_REFUSED};
use crate::audit::{report, verify};

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
    /// Check the trail's integrity: exit 0 if intact, 1 with the first
    /// broken record (file, line, reason).
    Verify {
        /// The audit directory.
        dir: PathBuf,
    },
    /// Redirects per entry, per category and per day; list versions and
    /// the delay from `issued` to applied for every addition and removal.
    Report {
        /// The audit directory.
        dir: PathBuf,
        /// Start of the period (RFC 3339 time or YYYY-MM-DD), inclusive.
        #[arg(long)]
        from: Option<String>,
        /// End of the period (RFC 3339 time or YYYY-MM-DD), exclusive.
        #[arg(long)]
        to: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
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
        AuditCommand::Verify { dir } => match verify::verify(&dir) {
            Ok(s) => {
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
        },
        AuditCommand::Report {
            dir,
            from,
            to,
            format,
        } => {
            let bound = |b: Option<String>| b.as_deref().map(parse_bound).transpose();
            let (from, to) = match (bound(from), bound(to)) {
                (Ok(f), Ok(t)) => (f, t),
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("rempart audit report: {e}");
                    return ExitCode::from(super::EXIT_USAGE);
                }
            };
            match report::build(&dir, from, to) {
                Ok(r) => {
                    match format {
                        Format::Text => print!("{}", report::text(&r)),
                        Format::Csv => print!("{}", report::csv(&r)),
                        Format::Json => {
                            println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default())
                        }
                    }
                    ExitCode::from(EXIT_OK)
                }
                Err(e) => {
                    eprintln!("rempart audit report: {e}");
                    ExitCode::from(EXIT_FAILURE)
                }
            }
        }
    }
}
