//! The resolver assembled from its config: the audit trail, the list in
//! force (through [`crate::admission`]), the DNS handler and sockets, the
//! admin listener, the file watcher; run until stopped.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use crate::admission::{Admission, Lists, Settings, StartFailure, Verdict};
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
    #[error("{key}.trusted_keys: {source}")]
    Keys {
        /// Where the list is written: `list` or `lists[i]`.
        key: String,
        /// What is wrong.
        source: crate::list::signature::KeyError,
    },
    /// The serial floor does not match the state directory: an older list
    /// than one already applied could be applied.
    #[error(
        "list.state_dir{}: {error}; not starting, since an older list could then be applied (if this is expected, start once with `rempart serve --reset-serial-floor`)",
        list_note(list)
    )]
    Floor {
        /// The list's id.
        list: String,
        /// What is wrong.
        error: crate::admission::FloorError,
    },
    /// No valid list and `list.on_missing = "refuse"`.
    #[error(
        "no valid list{}: {refusal}; refusing to start unfiltered (set list.on_missing = \"serve-unfiltered\" to serve without a list)",
        list_note(list)
    )]
    NoList {
        /// The list's id.
        list: String,
        /// Why its file was refused.
        refusal: crate::admission::Refusal,
    },
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
    /// The admin listener's or the DoT listeners' certificate or key is
    /// unusable.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The audit trail cannot be opened.
    #[error(transparent)]
    Audit(#[from] crate::audit::writer::AuditError),
    /// The RPZ listener cannot be bound.
    #[error("rpz.listen: {0}")]
    Rpz(io::Error),
    /// `rpz.tsig_key` cannot be read.
    #[error("rpz.tsig_key {0}")]
    RpzKey(crate::rpz::tsig::KeyFileError),
    /// The list directory cannot be watched.
    #[error("list.watch: {0}")]
    Watch(#[from] notify::Error),
    /// The roots of a list's https origin cannot be set up.
    #[error("{key}.ca_file {source}")]
    Origin {
        /// Where the list is written: `list` or `lists[i]`.
        key: String,
        /// What is wrong.
        source: crate::sources::pull::CaError,
    },
}

/// ` (list ID)` for a list other than `main`: a single-list resolver's
/// messages stay as they were.
fn list_note(list: &str) -> String {
    if list == crate::config::MAIN_LIST {
        String::new()
    } else {
        format!(" (list {list})")
    }
}

/// How long a stop waits for the admin requests still running.
pub const ADMIN_STOP: Duration = Duration::from_secs(2);

/// How often the DoT certificate and key files are checked for a change.
pub const TLS_CHECK: Duration = Duration::from_secs(2);

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
        Event::Process(Process::now(self.as_str()))
    }
}

/// A running resolver: DNS on its sockets, the admin listener, the
/// admission path. Built by [`Service::start`], stopped by [`Service::stop`].
#[derive(Debug)]
pub struct Service {
    /// The DNS addresses bound (UDP and TCP share each).
    pub dns_addrs: Vec<SocketAddr>,
    /// The DNS over TLS addresses bound.
    pub tls_addrs: Vec<SocketAddr>,
    /// The DNS over HTTPS addresses bound.
    pub https_addrs: Vec<SocketAddr>,
    /// The DoT listeners' certificate, re-read on change and on SIGHUP.
    pub certificates: Option<Arc<crate::tls::Certificates>>,
    /// The admin listener's address.
    pub admin_addr: SocketAddr,
    /// The request handler.
    pub handler: Handler,
    /// The admission path of list `main`, or of the first list.
    pub admission: Arc<Admission>,
    /// Every list's admission path, in precedence order.
    pub lists: Arc<Lists>,
    /// The metric handles.
    pub metrics: Arc<Metrics>,
    /// The RPZ primary, when `[rpz]` is configured.
    pub rpz: Option<Arc<crate::rpz::Rpz>>,
    /// The RPZ listener's addresses (UDP and TCP share each).
    pub rpz_addrs: Vec<SocketAddr>,
    rpz_task: Option<tokio::task::JoinHandle<()>>,
    stop: watch::Sender<bool>,
    serving: watch::Receiver<bool>,
    audit: Option<Arc<Auditor>>,
    dns: tokio::task::JoinHandle<io::Result<()>>,
    admin: tokio::task::JoinHandle<io::Result<()>>,
    expiry: Vec<tokio::task::JoinHandle<()>>,
    /// Watches the DoT certificate files for a change.
    tls_watch: Option<tokio::task::JoinHandle<()>>,
    _watchers: Vec<notify::RecommendedWatcher>,
    /// The pollers of the lists fetched from a web origin.
    pollers: Vec<tokio::task::JoinHandle<()>>,
}

/// What the operator asks of a start, beside the config.
#[derive(Debug, Clone, Copy, Default)]
pub struct StartOptions {
    /// Discard the serial floor and rebuild it from the list in force
    /// (`rempart serve --reset-serial-floor`).
    pub reset_serial_floor: bool,
}

impl Service {
    /// Load the keys and the list in force (state directory, then the
    /// source file), bind the DNS sockets and the admin listener, and
    /// serve. Must run inside a tokio runtime.
    pub async fn start(config: &Config) -> Result<Service, StartError> {
        Service::start_with(config, StartOptions::default()).await
    }

    /// [`Service::start`], with the operator's [`StartOptions`].
    pub async fn start_with(config: &Config, options: StartOptions) -> Result<Service, StartError> {
        let metrics = Metrics::new();
        let mut settings = Vec::with_capacity(config.lists.len());
        for spec in &config.lists {
            settings.push(Settings {
                trusted_keys: TrustedKeys::load(&spec.trusted_keys).map_err(|source| {
                    StartError::Keys {
                        key: spec.key.clone(),
                        source,
                    }
                })?,
                protected: config.list.protected.clone(),
                state_dir: spec.state_dir.clone(),
                max_bytes: config.list.max_bytes,
                deadline_hours: spec.deadline_hours,
            });
        }
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
        let rpz = config
            .rpz
            .clone()
            .map(|c| crate::rpz::Rpz::new(c, metrics.clone()))
            .transpose()
            .map_err(StartError::RpzKey)?;
        let tls = match &config.admin.tls {
            Some(t) => Some(crate::admin::tls_acceptor(&t.certificate, &t.key)?),
            None => None,
        };
        let audit = if config.audit.enabled {
            let settings = AuditSettings::from_config(&config.audit);
            let auditor = Auditor::start(settings, metrics.clone())?;
            auditor.record_waiting(ProcessEvent::Start.record());
            Some(auditor)
        } else {
            warn!("audit.enabled = false: redirects and list changes are NOT recorded");
            None
        };

        let mut settings = settings.into_iter();
        let ids: Vec<&str> = config.lists.iter().map(|l| l.id.as_str()).collect();
        let lists = Arc::new(Lists::new(&ids, |i, combined| {
            let spec = &config.lists[i];
            Admission::for_list(
                &spec.id,
                settings.next().expect("one settings per list"),
                spec.origin.label(),
                metrics.clone(),
                audit.clone(),
                combined,
                i,
            )
        }));
        // A poller per list with `url` (BEHAVIOUR section 10).
        let mut pollers = Vec::with_capacity(config.lists.len());
        for (admission, spec) in lists.all().iter().zip(&config.lists) {
            pollers.push(match &spec.origin {
                crate::config::ListOrigin::File(_) => None,
                crate::config::ListOrigin::Web(origin) => Some(
                    crate::sources::pull::Poller::new(
                        Arc::clone(admission),
                        origin,
                        config.list.max_bytes,
                        metrics.fetch(&spec.id),
                    )
                    .map_err(|source| StartError::Origin {
                        key: spec.key.clone(),
                        source,
                    })?,
                ),
            });
        }
        // Every list in force is served as its RPZ zone, if asked
        // (BEHAVIOUR section 9): told by each list's admission path, so
        // only lists that passed every gate.
        if let Some(rpz) = &rpz {
            for (admission, spec) in lists.all().iter().zip(&config.lists) {
                admission.on_applied(rpz_hook(Arc::clone(rpz), spec));
            }
        }
        // Each list on its own, in order: one list's refusal or absence
        // never touches another's.
        for (admission, poller) in lists.all().iter().zip(&pollers) {
            let id = admission.id().to_owned();
            let started = match poller {
                None => admission.start(options.reset_serial_floor).await,
                Some(poller) => start_fetched(admission, poller, options.reset_serial_floor).await,
            };
            match started {
                Ok(in_force) => info!(
                    list = %id,
                    serial = in_force.header.serial,
                    entries = admission.policy().load().len(),
                    key_id = %in_force.key_id,
                    issuer = %in_force.header.issuer,
                    digest = %hex(&in_force.digest),
                    "list in force"
                ),
                Err(StartFailure::Floor(error)) => {
                    if let Some(a) = &audit {
                        a.stop();
                    }
                    return Err(StartError::Floor { list: id, error });
                }
                Err(StartFailure::NoList(refusal)) => {
                    if config.list.on_missing == OnMissing::Refuse {
                        if let Some(a) = &audit {
                            a.stop();
                        }
                        return Err(StartError::NoList { list: id, refusal });
                    }
                    warn!(list = %id, reason = %refusal, "no valid list: serving UNFILTERED for this list (list.on_missing = serve-unfiltered)");
                    // Before the first answer: the auditor sees the period
                    // start, and the next `list applied` (or stop) end it.
                    if let Some(a) = &audit {
                        crate::admission::record::unfiltered(a, &id, &refusal.to_string());
                    }
                }
            }
        }
        let admission = Arc::clone(lists.main().unwrap_or(&lists.all()[0]));

        for note in &config.upstream.obsolete {
            tracing::warn!("{note}");
        }
        let upstream = crate::upstream::Upstream::new(&config.upstream, metrics.clone())?;
        let handler = Handler::new(
            lists.snapshot().clone(),
            config
                .lists
                .iter()
                .map(|l| crate::dns::RedirectTemplate::for_list(&l.redirect, l.action))
                .collect(),
            config.server.allow.clone(),
            upstream,
            metrics.clone(),
            audit.clone(),
        );
        let expiry: Vec<_> = lists
            .all()
            .iter()
            .map(|a| a.watch_expiry(EXPIRY_CHECK))
            .collect();
        let mut watchers = Vec::new();
        if config.list.watch {
            // A fetched list has no file to watch: its poller looks.
            for (a, poller) in lists.all().iter().zip(&pollers) {
                if poller.is_none() {
                    watchers.push(crate::sources::watch(a)?);
                }
            }
        }
        let pollers: Vec<_> = pollers.iter().flatten().map(|p| p.spawn()).collect();

        let certificates = match &config.server.tls {
            Some(t) => Some(crate::tls::Certificates::load(&t.certificate, &t.key)?),
            None => None,
        };
        let mut listeners = bind(&config.server.listen, config.server.udp_sockets)?;
        listeners.bind_tls(&config.server.tls_listen, &config.server.https_listen)?;
        let dns_addrs = listeners.local_addrs();
        let tls_addrs = listeners.tls_addrs();
        let https_addrs = listeners.https_addrs();
        // A renewed certificate is taken within TLS_CHECK of being written
        // (the files' time and size are compared; a polling loop rather
        // than inotify: it also sees a file replaced by a rename or a
        // symlink switched, as certbot and cert-manager do).
        let tls_watch = certificates.as_ref().map(|c| {
            let c = Arc::clone(c);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(TLS_CHECK);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    c.reload_if_changed();
                }
            })
        });
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
        let (rpz_addrs, rpz_task) = match (&rpz, &config.rpz) {
            (Some(rpz), Some(c)) => {
                let sockets = crate::rpz::serve::Sockets::bind(&c.listen)
                    .await
                    .map_err(StartError::Rpz)?;
                let addrs = sockets.local_addrs();
                info!(addrs = ?addrs, notify = ?c.notify, "rpz listener");
                let mut rpz_stopped = stopped.clone();
                let task = tokio::spawn(crate::rpz::serve::run(
                    Arc::clone(rpz),
                    sockets,
                    async move {
                        let _ = rpz_stopped.wait_for(|s| *s).await;
                    },
                ));
                (addrs, Some(task))
            }
            _ => (Vec::new(), None),
        };

        let state = crate::admin::AdminState {
            lists: lists.clone(),
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
            crate::server::Doors {
                tcp: crate::dns::tcp::TcpLimits {
                    max_connections: config.server.tcp_max_connections,
                    max_per_client: config.server.tcp_max_per_client,
                    idle_timeout: config.server.tcp_idle_timeout,
                },
                proxies: crate::dns::proxy::Proxies::new(
                    config.server.proxy_from.clone(),
                    config.server.proxy_required,
                ),
                certificates: certificates.clone(),
            },
            serving_tx,
            async move {
                let _ = dns_stopped.wait_for(|s| *s).await;
            },
        ));
        Ok(Service {
            dns_addrs,
            tls_addrs,
            https_addrs,
            certificates,
            tls_watch,
            admin_addr,
            handler,
            admission,
            lists,
            metrics,
            rpz,
            rpz_addrs,
            rpz_task,
            stop,
            serving,
            audit,
            dns,
            admin,
            expiry,
            _watchers: watchers,
            pollers,
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
    /// The drain comes first, while the sockets still serve, so that it is
    /// bounded by `drain` whatever the requests wait for. The handler
    /// signals each time its last request in flight ends.
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

    /// Stop accepting, end the serving tasks (each lets the requests it is
    /// answering finish, however long they take; [`Service::stop_within`]
    /// bounds that).
    pub async fn stop(self) -> io::Result<()> {
        let _ = self.stop.send(true);
        for e in self.expiry.iter().chain(&self.pollers) {
            e.abort();
        }
        if let Some(w) = &self.tls_watch {
            w.abort();
        }
        let dns = self.dns.await.map_err(io::Error::other)?;
        if let Some(task) = self.rpz_task {
            let _ = task.await;
        }
        // A list request still being judged (a slow reload) holds the admin
        // listener's graceful shutdown: it gets a bound, then is dropped
        // (the list in force is unchanged by a candidate never swapped in).
        let mut admin_task = self.admin;
        let admin = match tokio::time::timeout(ADMIN_STOP, &mut admin_task).await {
            Ok(joined) => joined.map_err(io::Error::other)?,
            Err(_) => {
                warn!(
                    seconds = ADMIN_STOP.as_secs(),
                    "admin requests still running at stop; dropped"
                );
                admin_task.abort();
                Ok(())
            }
        };
        // The lists applied at start write their records in the background:
        // they go into the trail before the stop record.
        for admission in self.lists.all() {
            admission.settled().await;
        }
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

/// The start of a list fetched from a web origin: the list kept in the
/// state directory put in force first (as for a file), then the first
/// fetch in place of reading the file. No list in force after it (nothing
/// kept, and the fetch failed or was refused) is what a missing list file
/// is: `list.on_missing` decides.
async fn start_fetched(
    admission: &Arc<Admission>,
    poller: &Arc<crate::sources::pull::Poller>,
    reset_floor: bool,
) -> Result<crate::admission::InForce, StartFailure> {
    admission.start_kept(reset_floor).await?;
    let verdict = poller.poll().await;
    if let Some(in_force) = admission.in_force().await {
        return Ok(in_force);
    }
    let url = admission.list_path();
    let reason = match verdict {
        Verdict::Refused { reason } | Verdict::Failed { reason } => reason,
        other => format!("no list in force after the first fetch ({other:?})"),
    };
    // The reasons name the URL already.
    let prefix = format!("{}: ", url.display());
    let reason = reason.strip_prefix(&prefix).unwrap_or(&reason).to_owned();
    Err(StartFailure::NoList(crate::admission::Refusal::new(
        url, reason,
    )))
}

/// The admission hook that publishes each list put in force as the RPZ
/// zone of list "main", answered with `[redirect]`.
fn rpz_hook(
    rpz: Arc<crate::rpz::Rpz>,
    spec: &crate::config::ListSpec,
) -> crate::admission::OnApplied {
    use crate::rpz::{Action, Redirect, RpzVersion};
    let answer = &spec.redirect;
    let redirect = Redirect {
        action: match (&spec.action, &answer.cname) {
            (crate::config::Action::Nxdomain, _) => Action::NxDomain,
            (crate::config::Action::Redirect, Some(target)) => Action::Cname(target.clone()),
            (crate::config::Action::Redirect, None) => Action::Addresses {
                ipv4: answer.ipv4.clone(),
                ipv6: answer.ipv6.clone(),
            },
        },
        ttl: answer.ttl,
    };
    crate::admission::OnApplied(Arc::new(move |id, in_force, policy| {
        let version = RpzVersion {
            serial: in_force.header.serial,
            digest: in_force.digest,
            policy: Arc::clone(policy),
            redirect: redirect.clone(),
        };
        if let Err(e) = rpz.publish(id, version) {
            tracing::error!(list = %id, error = %e, "the list cannot be served as an RPZ zone");
        }
    }))
}
