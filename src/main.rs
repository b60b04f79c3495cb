//! The `rempart` binary: parse the command line and run it. Exit codes are
//! documented in [`rempart::cli`] and in the README.

use clap::Parser;

/// mimalloc: glibc's malloc cost 15-18 % of a worker's time under load
/// (arena locking, consolidation) against the many short-lived buffers of
/// the query path; mimalloc's per-thread free lists do not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    rempart::cli::run(rempart::cli::Cli::parse())
}
