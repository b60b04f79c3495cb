//! Sockets and the serving loop.
//!
//! The server is a function of its sockets and a shutdown future
//! ([`run`]), so tests bind `127.0.0.1:0` in process and the binary binds
//! the configured addresses.
//!
//! UDP: one socket per core on each address, all bound to the same port with
//! `SO_REUSEPORT`, so the kernel spreads datagrams over the sockets and each
//! receive loop (`dns::udp`) keeps one core busy (one socket serves one
//! core). TCP: one listener per address (RFC 7766: every resolver must serve
//! TCP), idle connections closed after `server.tcp_idle_timeout_ms`.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hickory_server::Server;
use socket2::{Domain, Protocol, Socket, Type};
use tracing::info;

use crate::dns::Handler;

/// Bound sockets, ready to serve.
#[derive(Debug)]
pub struct Listeners {
    /// UDP sockets (several per address with SO_REUSEPORT).
    pub udp: Vec<UdpSocket>,
    /// TCP listeners, one per address.
    pub tcp: Vec<TcpListener>,
}

/// A socket that cannot be bound: names the address.
#[derive(Debug, thiserror::Error)]
#[error("cannot bind {proto} {addr}: {source}")]
pub struct BindError {
    /// `udp` or `tcp`.
    pub proto: &'static str,
    /// The address.
    pub addr: SocketAddr,
    /// The cause.
    pub source: io::Error,
}

impl Listeners {
    /// The addresses actually bound (one per configured address; with port
    /// 0, the port chosen by the system, the same for UDP and TCP).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.tcp
            .iter()
            .filter_map(|t| t.local_addr().ok())
            .collect()
    }
}

fn socket(addr: SocketAddr, ty: Type, proto: Protocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
    if addr.is_ipv6() {
        // Each configured address is served as written: [::] is IPv6 only,
        // list 0.0.0.0 as well for IPv4.
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

fn bind_udp(addr: SocketAddr, reuse_port: bool) -> io::Result<UdpSocket> {
    let s = socket(addr, Type::DGRAM, Protocol::UDP)?;
    #[cfg(unix)]
    s.set_reuse_port(reuse_port)?;
    // Room for bursts: the kernel default (~200 KiB) drops under load.
    let _ = s.set_recv_buffer_size(4 << 20);
    let _ = s.set_send_buffer_size(4 << 20);
    s.bind(&addr.into())?;
    Ok(s.into())
}

fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = socket(addr, Type::STREAM, Protocol::TCP)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    Ok(s.into())
}

/// Bind UDP and TCP on every address; `udp_sockets` per address (0 = one per
/// core). With port 0 the system picks one port, used for UDP and TCP alike.
pub fn bind(addrs: &[SocketAddr], udp_sockets: usize) -> Result<Listeners, BindError> {
    let per_addr = if udp_sockets == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        udp_sockets
    };
    let reuse_port = per_addr > 1;
    let mut udp = Vec::new();
    let mut tcp = Vec::new();
    for &addr in addrs {
        let mut attempts = 0;
        let (first_udp, listener) = loop {
            let first = bind_udp(addr, reuse_port).map_err(|source| BindError {
                proto: "udp",
                addr,
                source,
            })?;
            let actual = first.local_addr().map_err(|source| BindError {
                proto: "udp",
                addr,
                source,
            })?;
            match bind_tcp(actual) {
                Ok(l) => break (first, l),
                // Port 0: the port free for UDP may be taken for TCP; try another.
                Err(_) if addr.port() == 0 && attempts < 20 => attempts += 1,
                Err(source) => {
                    return Err(BindError {
                        proto: "tcp",
                        addr: actual,
                        source,
                    });
                }
            }
        };
        let actual = first_udp.local_addr().map_err(|source| BindError {
            proto: "udp",
            addr,
            source,
        })?;
        udp.push(first_udp);
        for _ in 1..per_addr {
            udp.push(bind_udp(actual, true).map_err(|source| BindError {
                proto: "udp",
                addr: actual,
                source,
            })?);
        }
        tcp.push(listener);
    }
    Ok(Listeners { udp, tcp })
}

/// Serve on `listeners` until `shutdown` completes, then stop accepting and
/// wait for the serving tasks to end.
pub async fn run(
    handler: Handler,
    listeners: Listeners,
    tcp_idle_timeout: Duration,
    serving: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let addrs = listeners.local_addrs();
    // UDP: our own receive threads (the fast path for redirects and
    // ready-to-send answers, see dns::udp); TCP: hickory-server's listener.
    let stop_udp = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Handle::current();
    let mut udp = Vec::new();
    for s in listeners.udp {
        udp.push(crate::dns::udp::spawn(
            handler.engine(),
            s,
            Arc::clone(&stop_udp),
            runtime.clone(),
        )?);
    }
    let mut server = Server::new(handler);
    for l in listeners.tcp {
        // 64 KiB: the largest DNS message over TCP.
        server.register_listener(
            tokio::net::TcpListener::from_std(l)?,
            tcp_idle_timeout,
            65_535,
        );
    }
    info!(addrs = ?addrs, "serving DNS");
    serving.store(true, Ordering::Release);
    shutdown.await;
    serving.store(false, Ordering::Release);
    info!("shutting down");
    stop_udp.store(true, Ordering::Release);
    let drain_udp = async {
        let _ = tokio::task::spawn_blocking(move || {
            for t in udp {
                let _ = t.join();
            }
        })
        .await;
    };
    let ((), tcp) = tokio::join!(drain_udp, server.shutdown_gracefully());
    tcp.map_err(|e| io::Error::other(e.to_string()))
}

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
    NoList(String),
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
    /// The admin token file cannot be read.
    #[error("admin.token_file {}: {reason}", file.display())]
    Token {
        /// The file.
        file: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The audit trail cannot be opened.
    #[error(transparent)]
    Audit(#[from] crate::audit::writer::AuditError),
    /// The list directory cannot be watched.
    #[error("list.watch: {0}")]
    Watch(#[from] notify::Error),
}

/// How often the list in force is checked for expiry.
pub const EXPIRY_CHECK: Duration = Duration::from_secs(1);

/// A running resolver: DNS on its sockets, the admin listener, the reload
/// path. Built by [`Service::start`], stopped by [`Service::stop`].
#[derive(Debug)]
pub struct Service {
    /// The DNS addresses bound (UDP and TCP share each).
    pub dns_addrs: Vec<SocketAddr>,
    /// The admin listener's address.
    pub admin_addr: SocketAddr,
    /// The request handler.
    pub handler: Handler,
    /// The reload path.
    pub reloader: Arc<crate::reload::Reloader>,
    /// The metric handles.
    pub metrics: Arc<crate::metrics::Metrics>,
    stop: tokio::sync::watch::Sender<bool>,
    serving: Arc<AtomicBool>,
    audit: Option<Arc<crate::audit::Auditor>>,
    dns: tokio::task::JoinHandle<io::Result<()>>,
    admin: tokio::task::JoinHandle<io::Result<()>>,
    expiry: tokio::task::JoinHandle<()>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl Service {
    /// Load the keys and the list in force (state directory, then the
    /// source file), compile the policy, bind the DNS sockets and the admin
    /// listener, and serve. Must run inside a tokio runtime.
    pub async fn start(config: &crate::config::Config) -> Result<Service, StartError> {
        use crate::list::{LoadSettings, load, signature::TrustedKeys};
        use crate::policy::Policy;

        let metrics = crate::metrics::Metrics::new();
        let settings = LoadSettings {
            trusted_keys: TrustedKeys::load(&config.list.trusted_keys)?,
            protected: config.list.protected.clone(),
            state_dir: config.list.state_dir.clone(),
        };
        let token = match &config.admin.token_file {
            None => None,
            Some(file) => {
                Some(
                    crate::admin::read_token(file).map_err(|reason| StartError::Token {
                        file: file.clone(),
                        reason,
                    })?,
                )
            }
        };
        let audit = if config.audit.enabled {
            let settings = crate::audit::AuditSettings::from_config(&config.audit);
            let auditor = crate::audit::Auditor::start(settings, metrics.clone())?;
            auditor.record_waiting(crate::audit::Event::Process(crate::audit::Process::now(
                "start",
            )));
            Some(auditor)
        } else {
            tracing::warn!("audit.enabled = false: redirects and list changes are NOT recorded");
            None
        };
        let startup = {
            let settings = settings.clone();
            let path = config.list.path.clone();
            let audit = audit.clone();
            let metrics = metrics.clone();
            tokio::task::spawn_blocking(move || {
                use crate::metrics::ReloadOutcome;
                let now = time::OffsetDateTime::now_utc();
                let result = load::startup(&settings, &path, now);
                // The list read at start counts as a load like any reload:
                // a refusal here raises the same alert.
                match &result {
                    Ok(s) if s.refused.is_some() => metrics.reload(ReloadOutcome::Refused),
                    Ok(s) if s.applied_now => metrics.reload(ReloadOutcome::Applied),
                    Ok(_) => metrics.reload(ReloadOutcome::Unchanged),
                    Err(_) => metrics.reload(ReloadOutcome::Refused),
                }
                match result {
                    Ok(s) => {
                        // What a list applied now changed is written to the
                        // audit trail once serving (a first list of a
                        // million entries is a million records).
                        let mut previous = None;
                        if let Some(audit) = &audit {
                            if let Some(refusal) = &s.refused {
                                crate::reload::audit_refused(audit, refusal);
                            }
                            if s.applied_now {
                                previous = Some(s.previous.map(|p| p.policy).unwrap_or_default());
                            }
                        }
                        let in_force = s.in_force.in_force();
                        Ok((in_force, s.in_force.policy, previous, s.to_keep))
                    }
                    Err(refusal) => {
                        if let Some(audit) = &audit {
                            crate::reload::audit_refused(audit, &refusal);
                        }
                        Err(refusal.to_string())
                    }
                }
            })
            .await
            .map_err(|e| StartError::NoList(format!("list loader failed: {e}")))?
        };
        let (in_force, policy, audit_changes) = match startup {
            Ok((accepted, policy, previous, to_keep)) => {
                // The list applied now is kept in the state directory once
                // serving (the source file holds it meanwhile).
                if let Some((bytes, sig)) = to_keep {
                    let (settings, info) = (settings.clone(), accepted.clone());
                    tokio::task::spawn_blocking(move || {
                        if let Err(e) = load::persist(&settings, &info, bytes, &sig) {
                            tracing::error!(error = %e, "cannot keep the list in the state directory");
                        }
                    });
                }
                info!(
                    serial = accepted.header.serial,
                    entries = policy.len(),
                    key_id = %accepted.key_id,
                    issuer = %accepted.header.issuer,
                    digest = %crate::reload::hex(&accepted.digest),
                    "list in force"
                );
                let audit_changes = previous.map(|p| (accepted.clone(), p));
                (Some(accepted), policy, audit_changes)
            }
            Err(why) => {
                if config.list.on_missing == crate::config::OnMissing::Refuse {
                    if let Some(a) = &audit {
                        a.stop();
                    }
                    return Err(StartError::NoList(why));
                }
                tracing::warn!(reason = %why, "no valid list: serving UNFILTERED (list.on_missing = serve-unfiltered)");
                (None, Policy::empty(), None)
            }
        };
        let policy = Arc::new(policy);
        if let (Some(audit), Some((info, previous))) = (&audit, audit_changes) {
            let (audit, new) = (Arc::clone(audit), Arc::clone(&policy));
            // In force from here: the snapshot the DNS handler starts with.
            let applied = std::time::SystemTime::now();
            tokio::task::spawn_blocking(move || {
                let (added, removed) = new.changes_from(&previous);
                crate::reload::audit_applied(&audit, &info, applied, &added, &removed);
            });
        }
        let policy = Arc::new(arc_swap::ArcSwap::new(policy));
        let upstream = crate::upstream::Upstream::new(&config.upstream, metrics.clone())?;
        let handler = Handler::new(
            policy.clone(),
            crate::dns::RedirectTemplate::new(&config.redirect),
            config.server.allow.clone(),
            upstream,
            metrics.clone(),
            audit.clone(),
        );
        let reloader = crate::reload::Reloader::new(
            settings,
            config.list.path.clone(),
            policy,
            in_force,
            metrics.clone(),
            audit.clone(),
        );
        let expiry = reloader.watch_expiry(EXPIRY_CHECK);
        let watcher = if config.list.watch {
            Some(reloader.watch()?)
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
        let serving = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (stop, stopped) = tokio::sync::watch::channel(false);

        let state = crate::admin::AdminState {
            reloader: reloader.clone(),
            metrics: metrics.clone(),
            handler: handler.clone(),
            serving: serving.clone(),
            token,
        };
        let mut admin_stopped = stopped.clone();
        let admin = tokio::spawn(async move {
            axum::serve(admin_listener, crate::admin::router(state))
                .with_graceful_shutdown(async move {
                    let _ = admin_stopped.wait_for(|s| *s).await;
                })
                .await
        });
        info!(addr = %admin_addr, "admin listener");

        let mut dns_stopped = stopped;
        let dns = tokio::spawn(run(
            handler.clone(),
            listeners,
            config.server.tcp_idle_timeout,
            serving.clone(),
            async move {
                let _ = dns_stopped.wait_for(|s| *s).await;
            },
        ));
        Ok(Service {
            dns_addrs,
            admin_addr,
            handler,
            reloader,
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
        self.serving.load(Ordering::Acquire)
    }

    /// Let the requests in flight finish (at most `drain`), then stop
    /// accepting and end the serving tasks.
    ///
    /// hickory-server aborts the requests it is still answering when it
    /// stops, so the drain comes first, while the sockets still serve.
    pub async fn stop_within(self, drain: Duration) -> io::Result<()> {
        let deadline = tokio::time::Instant::now() + drain;
        while self.handler.in_flight() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let left = self.handler.in_flight();
        if left > 0 {
            tracing::warn!(in_flight = left, "stopping with requests still in flight");
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
                audit.record_waiting(crate::audit::Event::Process(crate::audit::Process::now(
                    "stop",
                )));
                audit.stop();
            })
            .await
            .map_err(io::Error::other)?;
        }
        dns.and(admin)
    }

    /// The audit trail's writer, if enabled.
    pub fn auditor(&self) -> Option<&Arc<crate::audit::Auditor>> {
        self.audit.as_ref()
    }
}
