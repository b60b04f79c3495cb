//! `rempart serve --config FILE`: run the resolver.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use tracing::{error, info};

use super::{EXIT_FAILURE, EXIT_FLOOR, EXIT_OK, EXIT_REFUSED};
use crate::audit::AuditError;
use crate::audit::seal::SealError;
use crate::config::{Config, LogConfig, LogFormat};
use crate::service::{Service, StartError, StartOptions};

/// Arguments of `rempart serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The TOML config file.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Discard the serial floor kept in the state directory and rebuild it
    /// from the list in force: only when the state directory was knowingly
    /// lost or restored (the start refuses otherwise, exit code 4).
    #[arg(long)]
    pub reset_serial_floor: bool,
}

/// How long, after the serving tasks ended, the runtime waits for blocking
/// work still running (a reload reading or compiling a list) before the
/// process exits anyway: a stop never waits on a reload.
const BLOCKING_AT_EXIT: Duration = Duration::from_secs(1);

/// hickory logs every query at info; its per-query lines are debug detail
/// for us (STYLE habit 5), so its crates start at warn unless asked.
const QUIET_DEPENDENCIES: &str = "hickory_server=warn,hickory_net=warn,hickory_proto=warn";

fn init_tracing(log: &LogConfig) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.is_empty() => env,
        _ => format!("{QUIET_DEPENDENCIES},{}", log.level),
    };
    let filter = tracing_subscriber::EnvFilter::builder().parse_lossy(filter);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Run the resolver until SIGTERM or SIGINT.
pub fn run(args: ServeArgs) -> ExitCode {
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_REFUSED);
        }
    };
    init_tracing(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("rempart-worker")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            error!(error = %e, "cannot start the runtime");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let options = StartOptions {
        reset_serial_floor: args.reset_serial_floor,
    };
    let served = runtime.block_on(serve(config, options));
    runtime.shutdown_timeout(BLOCKING_AT_EXIT);
    match served {
        Ok(()) => {
            info!("stopped");
            ExitCode::from(EXIT_OK)
        }
        Err(e) => {
            error!(error = %e, "cannot serve");
            eprintln!("rempart: {e}");
            // A trusted key, token, certificate, TLS, TSIG key or origin CA
            // file that is not usable is part of the config (config check refuses it
            // too): exit 1, as for any invalid config; so is a sealing key
            // that `audit.seal = true` (or a sealed trail) asks for and
            // that is not there. The rest is a runtime failure.
            match e.downcast_ref::<StartError>() {
                Some(
                    StartError::Keys { .. }
                    | StartError::Token { .. }
                    | StartError::Tls(_)
                    | StartError::RpzKey(_)
                    | StartError::Origin { .. },
                ) => ExitCode::from(EXIT_REFUSED),
                Some(StartError::Audit(AuditError::Seal {
                    source: SealError::NoKey { .. } | SealError::KeyGone { .. },
                    ..
                })) => ExitCode::from(EXIT_REFUSED),
                Some(StartError::Floor { .. }) => ExitCode::from(EXIT_FLOOR),
                _ => ExitCode::from(EXIT_FAILURE),
            }
        }
    }
}

async fn serve(config: Config, options: StartOptions) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    info!(version = env!("CARGO_PKG_VERSION"), "starting");
    // Signal handlers first: a SIGHUP during start must not kill us.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let service = Service::start_with(&config, options).await?;
    systemd_ready(&service).await;
    loop {
        tokio::select! {
            _ = term.recv() => { info!(signal = "SIGTERM", "stop requested"); break; }
            _ = int.recv() => { info!(signal = "SIGINT", "stop requested"); break; }
            _ = hup.recv() => {
                info!(signal = "SIGHUP", "list reload requested");
                // Off this loop, so that a slow reload never delays
                // SIGTERM; each admission path judges one candidate at a
                // time, and logs, counts and audits the verdict.
                let lists = service.lists.clone();
                tokio::spawn(async move { lists.reread_all().await });
                // And the DoT certificate (a failure keeps the old one,
                // with a warning).
                if let Some(c) = &service.certificates {
                    let _ = c.reload();
                }
            }
        }
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    // In-flight queries finish first: at most one upstream timeout.
    service
        .stop_within(config.upstream.timeout + Duration::from_millis(500))
        .await?;
    Ok(())
}

/// systemd (`Type=notify`): READY=1 once `/readyz` would say ready (DNS
/// sockets serving and a list in force; in `serve-unfiltered` mode without
/// a list, at once, with a STATUS saying so), then watchdog pings from the
/// runtime that serves queries, so a wedged runtime stops the pings.
/// Without systemd (no NOTIFY_SOCKET) these are no-ops.
async fn systemd_ready(service: &Service) {
    use sd_notify::NotifyState;
    let status = crate::admin::in_force_status(&service.handler.policy().load())
        .map(|s| format!("serving, {s}"))
        .unwrap_or_else(|missing| format!("serving UNFILTERED: no list in force{missing}"));
    // Wait for the sockets' serving loop (milliseconds after start; should
    // it never come, systemd's start timeout fails the unit, which is right:
    // READY=1 must mean that queries are answered).
    if !service.until_serving().await {
        return;
    }
    let _ = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(&status)]);
    if let Some(interval) = sd_notify::watchdog_enabled() {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval / 2);
            loop {
                tick.tick().await;
                let _ = sd_notify::notify(&[NotifyState::Watchdog]);
            }
        });
    }
}
