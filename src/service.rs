//! The resolver assembled from its config: the audit trail, the list in
//! force (through [`crate::admission`]), the DNS handler and sockets, the
//! admin listener, the file watcher; run until stopped.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::admission::{Admission, Settings};
use crate::audit::{AuditSettings, Auditor, Event, Process};
use crate::config::{Config, OnMissing};
use crate::dns::Handler;
use crate::list::signature::TrustedKeys;
use crate::metrics::Metrics;
use crate::server::{BindError, bind, run};
use crate::text::hex;

/// Why the resolver cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A trusted key file is unusable.
    #[error("list.trusted_keys: {0}")]
    Keys(#[from] crate::list::signature::KeyError),
    /// No valid list and `list.on_missing = "refuse"`.
    #[error(
        "no valid list: {0}; refusing to start unfiltered (set list.on_missing = \"serve-unfiltered\" to serve without a list)"
    )]
    NoList(crate::admission::Refusal),
    /// The upstream pool cannot be built.
    #[error("upstream: {0}")]
    Upstream(#[from] crate::upstream::UpstreamError),
    /// A DNS socket cannot be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The admin listener cannot be bound.
    #[error("admin.listen {addr}: {source}")]
    Admin {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: io::Error,
    },
    /// The admin token file cannot be used.
    #[error("admin.token_file {}: {source}", file.display())]
    Token {
        /// The file.
        file: std::path::PathBuf,
        /// What is wrong.
        source: crate::admin::TokenError,
    },
    /// The admin listener's certificate or key is unusable.
    #[error(transparent)]
    Tls(#[from] crate::admin::TlsError),
    /// The audit trail cannot be opened.
    #[error(transparent)]
    Audit(#[from] crate::audit::writer::AuditError),
    /// The list directory cannot be watched.
    #[error("list.watch: {0}")]
    Watch(#[from] notify::Error),
}

/// How often the list in force is checked for expiry.
pub const EXPIRY_CHECK: Duration = Duration::from_secs(1);

/// The `event` of a `process` audit record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessEvent {
    /// The resolver starts (before the list is read).
    Start,
    /// The resolver stops (after the sockets closed).
    Stop,
}

impl ProcessEvent {
    /// The name written in the record.
    pub fn as_str(self) -> &'static str {
        match self {
            ProcessEvent::Start => "start",
            ProcessEvent::Stop => "stop",
        }
    }

    /// The record.
    fn record(self) -> Event {
        Event::Process(Process {
            event: self.as_str().into(),
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
        })
    }
}

/// A running resolver: DNS on its sockets, the admin listener, the
/// admission path. Built by [`Service::start`], stopped by [`Service::stop`].
#[derive(Debug)]
pub struct Service {
    /// The DNS addresses bound (UDP and TCP share each).
    pub dns_addrs: Vec<SocketAddr>,
    /// The admin listener's address.
    pub admin_addr: SocketAddr,
    /// The request handler.
    pub handler: Handler,
    /// The admission path.
    pub admission: Arc<Admission>,
    /// The metric handles.
    pub metrics: Arc<Metrics>,
    stop: watch::Sender<bool>,
    serving: watch::Receiver<bool>,
    audit: Option<Arc<Auditor>>,
    dns: tokio::task::JoinHandle<io::Result<()>>,
    admin: tokio::task::JoinHandle<io::Result<()>>,
    expiry: tokio::task::JoinHandle<()>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl Service {
    /// Load the keys and the list in force (state directory, then the
    /// source file), bind the DNS sockets and the admin listener, and
    /// serve. Must run inside a tokio runtime.
    pub async fn start(config: &Config) -> Result<Service, StartError> {
        let metrics = Metrics::new();
        let settings = Settings {
            trusted_keys: TrustedKeys::load(&config.list.trusted_keys)?,
            protected: config.list.protected.clone(),
            state_dir: config.list.state_dir.clone(),
        };
        let token = match &config.admin.token_file {
            None => None,
            Some(file) => {
                Some(
                    crate::admin::read_token(file).map_err(|source| StartError::Token {
                        file: file.clone(),
                        source,
                    })?,
                )
            }
        };
        let tls = match &config.admin.tls {
            Some(t) => Some(crate::admin::tls_acceptor(&t.certificate, &t.key)?),
            None => None,
        };
        let audit = if config.audit.enabled {
            let settings = AuditSettings {
                dir: config.audit.dir.clone(),
                client_ip: config.audit.client_ip,
                queue: config.audit.queue,
                max_file_bytes: config.audit.max_file_bytes,
                retention_days: config.audit.retention_days,
            };
            let auditor = Auditor::start(settings, metrics.clone())?;
            auditor.record_waiting(ProcessEvent::Start.record());
            Some(auditor)
        } else {
            warn!("audit.enabled = false: redirects and list changes are NOT recorded");
            None
        };

        let admission = Admission::new(
            settings,
            config.list.path.clone(),
            metrics.clone(),
            audit.clone(),
        );
        match admission.start().await {
            Ok(in_force) => info!(
                serial = in_force.header.serial,
                entries = admission.policy().load().len(),
                key_id = %in_force.key_id,
                issuer = %in_force.header.issuer,
                digest = %hex(&in_force.digest),
                "list in force"
            ),
            Err(refusal) => {
                if config.list.on_missing == OnMissing::Refuse {
                    if let Some(a) = &audit {
                        a.stop();
                    }
                    return Err(StartError::NoList(refusal));
                }
                warn!(reason = %refusal, "no valid list: serving UNFILTERED (list.on_missing = serve-unfiltered)");
            }
        }

        let upstream = crate::upstream::Upstream::new(&config.upstream, metrics.clone())?;
        let handler = Handler::new(
            admission.policy().clone(),
            crate::dns::RedirectTemplate::new(&config.redirect),
            config.server.allow.clone(),
            upstream,
            metrics.clone(),
            audit.clone(),
        );
        let expiry = admission.watch_expiry(EXPIRY_CHECK);
        let watcher = if config.list.watch {
            Some(crate::sources::watch(&admission)?)
        } else {
            None
        };

        let listeners = bind(&config.server.listen, config.server.udp_sockets)?;
        let dns_addrs = listeners.local_addrs();
        let admin_listener = tokio::net::TcpListener::bind(config.admin.listen)
            .await
            .map_err(|source| StartError::Admin {
                addr: config.admin.listen,
                source,
            })?;
        let admin_addr = admin_listener
            .local_addr()
            .map_err(|source| StartError::Admin {
                addr: config.admin.listen,
                source,
            })?;
        let (serving_tx, serving) = watch::channel(false);
        let (stop, stopped) = watch::channel(false);

        let state = crate::admin::AdminState {
            admission: admission.clone(),
            metrics: metrics.clone(),
            handler: handler.clone(),
            serving: serving.clone(),
            token,
            limits: config.admin.limits,
        };
        let mut admin_stopped = stopped.clone();
        let admin = tokio::spawn(crate::admin::serve(
            admin_listener,
            crate::admin::router(state),
            config.admin.limits,
            tls,
            async move {
                let _ = admin_stopped.wait_for(|s| *s).await;
            },
        ));
        let scheme = if config.admin.tls.is_some() {
            "https"
        } else {
            "http"
        };
        info!(addr = %admin_addr, scheme, "admin listener");
        if config.admin.token_file.is_some()
            && config.admin.tls.is_none()
            && !admin_addr.ip().is_loopback()
        {
            warn!(
                addr = %admin_addr,
                "admin: list endpoints over plain HTTP on a network address: the token can be read in transit; set admin.tls_certificate and admin.tls_key"
            );
        }

        let mut dns_stopped = stopped;
        let dns = tokio::spawn(run(
            handler.clone(),
            listeners,
            config.server.tcp_idle_timeout,
            serving_tx,
            async move {
                let _ = dns_stopped.wait_for(|s| *s).await;
            },
        ));
        Ok(Service {
            dns_addrs,
            admin_addr,
            handler,
            admission,
            metrics,
            stop,
            serving,
            audit,
            dns,
            admin,
            expiry,
            _watcher: watcher,
        })
    }

    /// True once the DNS sockets serve.
    pub fn is_serving(&self) -> bool {
        *self.serving.borrow()
    }

    /// Wait until the DNS sockets serve. `false` if the serving task ended
    /// before they did.
    pub async fn until_serving(&self) -> bool {
        let mut serving = self.serving.clone();
        serving.wait_for(|s| *s).await.is_ok()
    }

    /// Let the requests in flight finish (at most `drain`), then stop
    /// accepting and end the serving tasks.
    ///
    /// hickory-server aborts the requests it is still answering when it
    /// stops, so the drain comes first, while the sockets still serve. The
    /// handler signals each time its last request in flight ends.
    pub async fn stop_within(self, drain: Duration) -> io::Result<()> {
        let handler = &self.handler;
        let idle = async {
            loop {
                let ended = handler.idle().notified();
                tokio::pin!(ended);
                // Registered before the count is read: an end between the
                // two still wakes this waiter.
                ended.as_mut().enable();
                if handler.in_flight() == 0 {
                    return;
                }
                ended.await;
            }
        };
        let _ = tokio::time::timeout(drain, idle).await;
        let left = self.handler.in_flight();
        if left > 0 {
            warn!(in_flight = left, "stopping with requests still in flight");
        }
        self.stop().await
    }

    /// Stop accepting, end the serving tasks (requests still in flight are
    /// dropped; see [`Service::stop_within`]).
    pub async fn stop(self) -> io::Result<()> {
        let _ = self.stop.send(true);
        self.expiry.abort();
        let dns = self.dns.await.map_err(io::Error::other)?;
        let admin = self.admin.await.map_err(io::Error::other)?;
        if let Some(audit) = self.audit {
            tokio::task::spawn_blocking(move || {
                audit.record_waiting(ProcessEvent::Stop.record());
                audit.stop();
            })
            .await
            .map_err(io::Error::other)?;
        }
        dns.and(admin)
    }

    /// The audit trail's writer, if enabled.
    pub fn auditor(&self) -> Option<&Arc<Auditor>> {
        self.audit.as_ref()
    }
}
