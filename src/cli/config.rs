//! `rempart config check FILE`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::{EXIT_OK, EXIT_REFUSED};
use crate::config::Config;
use crate::list::signature::TrustedKeys;

/// The `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file: every error is named with its key.
    Check {
        /// The TOML file.
        file: PathBuf,
    },
}

/// Run a `config` subcommand.
pub fn run(cmd: ConfigCommand) -> ExitCode {
    match cmd {
        ConfigCommand::Check { file } => check(&file),
    }
}

fn check(file: &std::path::Path) -> ExitCode {
    let config = match Config::load(file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_REFUSED);
        }
    };
    // The keys are part of the config's meaning: an unreadable key file is a
    // config error, named by its key.
    for (i, key) in config.list.trusted_keys.iter().enumerate() {
        if let Err(e) = TrustedKeys::load(std::slice::from_ref(key)) {
            eprintln!("{}: list.trusted_keys[{i}]: {e}", file.display());
            return ExitCode::from(EXIT_REFUSED);
        }
    }
    // So is the admin token: `serve` refuses a file it cannot read or a
    // token too short, so the check does too.
    if let Some(token_file) = &config.admin.token_file
        && let Err(reason) = crate::admin::read_token(token_file)
    {
        eprintln!(
            "{}: admin.token_file {}: {reason}",
            file.display(),
            token_file.display()
        );
        return ExitCode::from(EXIT_REFUSED);
    }
    // And the admin listener's certificate and key, as `serve` loads them.
    if let Some(tls) = &config.admin.tls
        && let Err(reason) = crate::admin::tls_acceptor(&tls.certificate, &tls.key)
    {
        eprintln!("{}: {reason}", file.display());
        return ExitCode::from(EXIT_REFUSED);
    }
    println!(
        "{}: ok (listen {:?}, {} upstream(s), list {}, {} trusted key(s), {} protected name(s))",
        file.display(),
        config.server.listen,
        config.upstream.servers.len(),
        config.list.path.display(),
        config.list.trusted_keys.len(),
        config.list.protected.len()
    );
    ExitCode::from(EXIT_OK)
}
