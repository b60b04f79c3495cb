//! `rempart list ...` (placeholder; being written).

/// The `list` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ListCommand {}

/// Run a `list` subcommand.
pub fn run(cmd: ListCommand) -> std::process::ExitCode {
    match cmd {}
}
