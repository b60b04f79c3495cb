//! The `rempart` binary: parse the command line and run it. Exit codes are
//! documented in [`rempart::cli`] and in the README.

use clap::Parser;

/// mimalloc: glibc's malloc cost 15-18 % of a worker's time under load
/// (arena locking, consolidation) against the many short-lived buffers of
/// the query path; mimalloc's per-thread free lists do not. Blocks of a
/// MiB or more are mapped on their own ([`rempart::alloc`]).
#[global_allocator]
static GLOBAL: rempart::alloc::Allocator = rempart::alloc::Allocator;

fn main() -> std::process::ExitCode {
    rempart::alloc::no_huge_pages();
    rempart::cli::run(rempart::cli::Cli::parse())
}
