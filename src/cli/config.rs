//! `rempart config check FILE`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use super::{EXIT_OK, EXIT_REFUSED};
use crate::audit::seal::SealError;
use crate::config::{Config, DEFAULT_PROTECTED, SealMode};
use crate::list::signature::TrustedKeys;

/// The `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file: every error (unknown keys included) is
    /// named with its key and line; a good file's protected names are
    /// printed with where they come from.
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
    // Every unusable key is named, in every list.
    let mut bad_keys = false;
    for list in &config.lists {
        for (i, key) in list.trusted_keys.iter().enumerate() {
            if let Err(e) = TrustedKeys::load(std::slice::from_ref(key)) {
                eprintln!("{}: {}.trusted_keys[{i}]: {e}", file.display(), list.key);
                bad_keys = true;
            }
        }
    }
    // A web origin's CA file, as `serve` reads it.
    for list in &config.lists {
        if let crate::config::ListOrigin::Web(w) = &list.origin
            && let Some(ca) = &w.ca_file
            && let Err(e) = crate::sources::pull::roots(Some(ca))
        {
            eprintln!("{}: {}.ca_file {e}", file.display(), list.key);
            bad_keys = true;
        }
    }
    if bad_keys {
        return ExitCode::from(EXIT_REFUSED);
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
    // And the DNS listeners' (DoT, DoH).
    if let Some(tls) = &config.server.tls
        && let Err(reason) = crate::tls::load("server", &tls.certificate, &tls.key)
    {
        eprintln!("{}: {reason}", file.display());
        return ExitCode::from(EXIT_REFUSED);
    }
    // And the RPZ listener's TSIG key, as `serve` reads it.
    if let Some(key) = config.rpz.as_ref().and_then(|r| r.tsig_key.as_deref())
        && let Err(e) = crate::rpz::tsig::TsigKey::load(key)
    {
        eprintln!("{}: rpz.tsig_key {e}", file.display());
        return ExitCode::from(EXIT_REFUSED);
    }
    // And the sealing key `audit.seal = true` asks for: `serve` does not
    // start without it. Left out, a missing key only leaves the trail
    // unsealed, which is said.
    let sealing = config.audit.enabled && config.audit.seal != SealMode::Off;
    let seal_key = &config.audit.seal_key;
    if sealing && !seal_key.exists() {
        if config.audit.seal == SealMode::Required {
            let e = SealError::NoKey {
                path: seal_key.clone(),
            };
            eprintln!("{}: audit.seal = true: {e}", file.display());
            return ExitCode::from(EXIT_REFUSED);
        }
        println!(
            "note: no sealing key at audit.seal_key {}: the trail will be hash-chained but not sealed; `rempart audit setup-keys --config {}` makes the key",
            seal_key.display(),
            file.display()
        );
    }
    println!(
        "{}: ok (listen {:?}, {} upstream(s), {} list(s))",
        file.display(),
        config.server.listen,
        config.upstream.servers.len(),
        config.lists.len(),
    );
    // In precedence order: the first list whose entry matches a name
    // decides it.
    for (rank, list) in config.lists.iter().enumerate() {
        println!(
            "  {}. list {}: {} ({} trusted key(s)), action {}, deadline {} h, state {}",
            rank + 1,
            list.id,
            match &list.origin {
                crate::config::ListOrigin::File(p) => p.display().to_string(),
                crate::config::ListOrigin::Web(w) =>
                    format!("{} (polled every {} s)", w.url, w.poll_interval.as_secs()),
            },
            list.trusted_keys.len(),
            list.action.as_str(),
            list.deadline_hours,
            list.state_dir.display(),
        );
    }
    println!("{}", protected_summary(&config));
    for note in &config.upstream.obsolete {
        println!("note: {note}");
    }
    ExitCode::from(EXIT_OK)
}

/// Where the protected names come from, then every one of them: whether
/// the defaults are kept is the operator's choice, and this says which.
fn protected_summary(config: &Config) -> String {
    let list = &config.list;
    let mut parts = vec![if list.protected_defaults {
        format!("the {} defaults", DEFAULT_PROTECTED.len())
    } else {
        "no defaults (list.protected_defaults = false)".to_owned()
    }];
    if !list.protected_added.is_empty() {
        parts.push(format!(
            "{} from list.protected",
            list.protected_added.len()
        ));
    }
    for l in &config.lists {
        if let Some(cname) = &l.redirect.cname {
            let key = if l.redirect.uses_section {
                "redirect".to_owned()
            } else {
                format!("{}.redirect", l.key)
            };
            let part = format!(
                "the {key}.cname target {}",
                cname.to_ascii().trim_end_matches('.')
            );
            if !parts.contains(&part) {
                parts.push(part);
            }
        }
    }
    format!(
        "{} protected name(s): {}:\n  {}",
        list.protected.len(),
        parts.join(" + "),
        list.protected.join(" ")
    )
}
