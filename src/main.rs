//! The `rempart` binary: parse the command line and run it. Exit codes are
//! documented in [`rempart::cli`] and in the README.

use clap::Parser;

fn main() -> std::process::ExitCode {
    rempart::cli::run(rempart::cli::Cli::parse())
}
