//! `rempart serve --config FILE`: run the resolver.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use tracing::{error, info, warn};

use super::{EXIT_FAILURE, EXIT_OK, EXIT_REFUSED};
use crate::config::{Config, LogConfig, LogFormat};
use crate::server;

/// Arguments of `rempart serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The TOML config file.
    #[arg(long, short)]
    pub config: PathBuf,
}

/// hickory logs every query at info; its per-query lines are debug detail
/// for us (STYLE habit 5), so its crates start at warn unless asked.
const QUIET_DEPENDENCIES: &str =
    "hickory_server=warn,hickory_resolver=warn,hickory_net=warn,hickory_proto=warn";

fn init_tracing(log: &LogConfig) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.is_empty() => env,
        _ => format!("{QUIET_DEPENDENCIES},{}", log.level),
    };
    let filter = tracing_subscriber::EnvFilter::builder().parse_lossy(filter);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
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
    match runtime.block_on(serve(config)) {
        Ok(()) => {
            info!("stopped");
            ExitCode::from(EXIT_OK)
        }
        Err(e) => {
            error!(error = %e, "cannot serve");
            eprintln!("rempart: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    info!(version = env!("CARGO_PKG_VERSION"), "starting");
    let prepared = server::prepare(&config)?;
    let listeners = server::bind(&config.server.listen, config.server.udp_sockets)?;
    warn!(
        audit_dir = %config.audit.dir.display(),
        admin = %config.admin.listen,
        "the audit trail and the admin listener are not implemented in this version"
    );
    server::run(
        prepared.handler,
        listeners,
        config.server.tcp_idle_timeout,
        shutdown_signal(),
    )
    .await?;
    Ok(())
}

/// SIGTERM (systemd, kill) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers, fall back to Ctrl-C only.
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => info!(signal = "SIGTERM", "stop requested"),
        _ = int.recv() => info!(signal = "SIGINT", "stop requested"),
    }
}
