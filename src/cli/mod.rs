//! The command line: one file per subcommand group.
//!
//! Exit codes, the same for every command:
//!
//! | code | meaning |
//! | --- | --- |
//! | 0 | success (for checks: the input is good) |
//! | 1 | the input was refused: invalid or unreadable config, list refused, audit trail broken |
//! | 2 | usage error (unknown flag, missing argument, invalid flag value) |
//! | 3 | runtime failure: cannot bind, I/O error, no valid list at start |
//! | 4 | `serve`: the serial floor does not match the state directory (a kept list without its floor, a floor without its kept list, a damaged floor); start once with `--reset-serial-floor` if that is expected |

pub mod audit;
pub mod config;
pub mod decide;
pub mod list;
pub mod push;
pub mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Success.
pub const EXIT_OK: u8 = 0;
/// The input was refused.
pub const EXIT_REFUSED: u8 = 1;
/// Usage error (clap exits with 2 itself).
pub const EXIT_USAGE: u8 = 2;
/// Runtime failure.
pub const EXIT_FAILURE: u8 = 3;
/// The serial floor does not match the state directory: not started, since
/// an older list could then be applied.
pub const EXIT_FLOOR: u8 = 4;

/// Rempart: a DNS resolver that enforces a signed administrative blocklist.
#[derive(Debug, Parser)]
#[command(name = "rempart", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the resolver.
    Serve(serve::ServeArgs),
    /// Work with the configuration file.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Make keys, sign, verify, inspect and compare lists.
    #[command(subcommand)]
    List(list::ListCommand),
    /// Check and report on the audit trail.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Config(cmd) => config::run(cmd),
        Command::List(cmd) => list::run(cmd),
        Command::Audit(cmd) => audit::run(cmd),
    }
}
