//! Changing the decision safely: watch, verify, compile, swap.
//!
//! Every trigger (the file watcher, SIGHUP, `POST /v1/list/reload`,
//! `PUT /v1/list`) ends in [`Reloader::judge`]: the candidate goes through
//! the one load path of [`crate::list::load`] (signature, parse, gates), is
//! compiled into a new [`Policy`] and kept in the state directory, all on a
//! blocking thread, off the query path; only then is the snapshot swapped.
//! The query path never waits: it keeps loading whichever snapshot is in the
//! `ArcSwap` (a lock would make every query wait while a million entries
//! compile). The old snapshot is freed on a blocking thread too, so that
//! dropping a million entries never stalls a worker. A refused candidate
//! changes nothing but one log line and a counter.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use serde::Serialize;
use tokio::sync::Mutex;
use tracing::{error, info, warn};

use crate::audit::{Auditor, EntryChange, Event, ListEvent};
use crate::list::{Decision, InForce, LoadSettings, load};
use crate::metrics::{Metrics, ReloadOutcome};
use crate::policy::{Policy, Rule};

/// After a change in the list's directory, wait this long for the other
/// file of the pair (list and `.minisig`) before a first try.
pub const DEBOUNCE: Duration = Duration::from_millis(50);
/// A candidate from the watcher that is refused is tried again for this
/// long (the list and its signature are two files, written one after the
/// other) before the refusal counts.
pub const SETTLE: Duration = Duration::from_secs(3);
/// Interval between tries within [`SETTLE`].
pub const RETRY: Duration = Duration::from_millis(100);

/// What became of a candidate list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Outcome {
    /// A newer list is in force.
    Applied {
        /// Its serial.
        serial: u64,
        /// SHA-256 of its bytes, hex.
        digest: String,
        /// Its entries.
        entries: usize,
        /// Names added since the previous list.
        added: usize,
        /// Names removed since the previous list.
        removed: usize,
        /// Milliseconds from reading to the swap.
        millis: u64,
    },
    /// The same list as the one in force: nothing changed.
    Unchanged {
        /// The serial in force.
        serial: u64,
    },
    /// Refused; the list in force keeps serving.
    Refused {
        /// Why, naming the file and the line or key.
        reason: String,
    },
}

/// The reload path.
#[derive(Debug)]
pub struct Reloader {
    settings: LoadSettings,
    source: PathBuf,
    policy: Arc<ArcSwap<Policy>>,
    /// The list in force. The mutex serialises reloads (two pushes at once
    /// are judged one after the other, each against the list in force); the
    /// query path never touches it.
    in_force: Mutex<Option<InForce>>,
    metrics: Arc<Metrics>,
    audit: Option<Arc<Auditor>>,
}

pub use crate::text::hex;

impl Reloader {
    /// A reloader for `source`, swapping into `policy`.
    pub fn new(
        settings: LoadSettings,
        source: PathBuf,
        policy: Arc<ArcSwap<Policy>>,
        in_force: Option<InForce>,
        metrics: Arc<Metrics>,
        audit: Option<Arc<Auditor>>,
    ) -> Arc<Reloader> {
        if let Some(a) = &in_force {
            metrics.list_in_force(
                a.header.serial,
                a.entries,
                a.header.issued.unix_timestamp() as f64,
                a.header.expires.unix_timestamp() as f64,
                time::OffsetDateTime::now_utc().unix_timestamp() as f64,
            );
        }
        Arc::new(Reloader {
            settings,
            source,
            policy,
            in_force: Mutex::new(in_force),
            metrics,
            audit,
        })
    }

    /// Check every `every` whether the list in force has expired. The first
    /// time a list is found expired, a warning is logged and a `list
    /// expired` record written. It stays in force: an expired list still
    /// names content the authority ordered blocked, and lifting every block
    /// because a file is late would be the worse failure; a newer list (or
    /// an operator) ends it. `rempart_list_expires_timestamp_seconds` lets
    /// monitoring alert before that.
    pub fn watch_expiry(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut reported: Option<u64> = None;
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(me) = me.upgrade() else { return };
                let expired = {
                    let in_force = me.in_force.lock().await;
                    in_force.as_ref().and_then(|a| {
                        (a.header.expires <= time::OffsetDateTime::now_utc()
                            && reported != Some(a.header.serial))
                        .then(|| a.clone())
                    })
                };
                let Some(a) = expired else { continue };
                reported = Some(a.header.serial);
                let expires = crate::text::rfc3339(a.header.expires);
                warn!(serial = a.header.serial, expires = %expires, "the list in force has EXPIRED; it stays in force until a newer list is applied");
                if let Some(audit) = me.audit.clone() {
                    let event = Event::List(ListEvent {
                        event: "expired".into(),
                        serial: Some(a.header.serial),
                        digest: Some(hex(&a.digest)),
                        issuer: Some(a.header.issuer.clone()),
                        expires: Some(expires),
                        ..ListEvent::default()
                    });
                    let _ = tokio::task::spawn_blocking(move || audit.record_waiting(event)).await;
                }
            }
        })
    }

    /// The configured list file.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Serial of the list in force.
    pub async fn serial(&self) -> Option<u64> {
        self.in_force.lock().await.as_ref().map(|a| a.header.serial)
    }

    /// Read the configured file and its signature, and judge them.
    pub async fn reload_file(&self) -> Outcome {
        self.reload_file_inner(true).await
    }

    async fn reload_file_inner(&self, report_refusal: bool) -> Outcome {
        let path = self.source.clone();
        let read = tokio::task::spawn_blocking(move || {
            let bytes = std::fs::read(&path);
            let sig = std::fs::read(load::signature_path(&path));
            (path, bytes, sig)
        })
        .await;
        let (path, bytes, sig) = match read {
            Ok(r) => r,
            Err(e) => {
                return self.refused(&self.source, format!("reader task failed: {e}"), true);
            }
        };
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => {
                return self.refused(
                    &path,
                    format!("{}: cannot read: {e}", path.display()),
                    report_refusal,
                );
            }
        };
        let sig = match sig {
            Ok(s) => s,
            Err(e) => {
                return self.refused(
                    &path,
                    format!(
                        "{}: cannot read: {e}",
                        load::signature_path(&path).display()
                    ),
                    report_refusal,
                );
            }
        };
        self.judge(path, bytes, sig, report_refusal, false).await
    }

    /// Judge a list and its signature received over the admin endpoint.
    pub async fn push(&self, list: Vec<u8>, signature: Vec<u8>) -> Outcome {
        self.judge(PathBuf::from("<pushed list>"), list, signature, true, true)
            .await
    }

    fn refused(&self, file: &Path, reason: String, report: bool) -> Outcome {
        if report {
            warn!(file = %file.display(), %reason, "list refused; the list in force keeps serving");
            self.metrics.reload(ReloadOutcome::Refused);
            if let Some(audit) = &self.audit {
                let audit = audit.clone();
                let refusal = crate::list::Refusal {
                    file: file.to_owned(),
                    reason: reason.clone(),
                };
                // Waits for room in the audit queue: off the async workers.
                tokio::task::spawn_blocking(move || audit_refused(&audit, &refusal));
            }
        }
        Outcome::Refused { reason }
    }

    /// The one path: verify, gates, compile, persist, swap.
    async fn judge(
        &self,
        file: PathBuf,
        bytes: Vec<u8>,
        sig: Vec<u8>,
        report_refusal: bool,
        keep_first: bool,
    ) -> Outcome {
        let started = Instant::now();
        let mut in_force = self.in_force.lock().await;
        let settings = self.settings.clone();
        let current = in_force.clone();
        let source = file.clone();
        let work = tokio::task::spawn_blocking(move || {
            let now = time::OffsetDateTime::now_utc();
            match load::consider(&settings, current.as_ref(), &file, &bytes, &sig, now) {
                Err(refusal) => Err(refusal.to_string()),
                Ok(Decision::Unchanged) => Ok(None),
                Ok(Decision::Apply(accepted)) => {
                    let accepted = *accepted;
                    let in_force = accepted.in_force();
                    // A pushed list exists nowhere else: it is kept before
                    // the swap, so that a restart enforces what clients were
                    // told. A list read from `list.path` is kept right after
                    // the swap (a restart would read the file again).
                    let to_keep = if keep_first {
                        keep(&settings, &in_force, bytes, &sig);
                        None
                    } else {
                        Some((settings, bytes, sig))
                    };
                    Ok(Some((in_force, accepted.policy, to_keep)))
                }
            }
        })
        .await;
        let result = match work {
            Ok(r) => r,
            Err(e) => Err(format!("list worker failed: {e}")),
        };
        match result {
            Err(reason) => self.refused(&source, reason, report_refusal),
            Ok(None) => {
                let serial = in_force.as_ref().map_or(0, |a| a.header.serial);
                info!(serial, "list unchanged");
                self.metrics.reload(ReloadOutcome::Unchanged);
                Outcome::Unchanged { serial }
            }
            Ok(Some((accepted, policy, to_keep))) => {
                let entries = policy.len();
                let new = Arc::new(policy);
                let old = self.policy.swap(Arc::clone(&new));
                let applied = std::time::SystemTime::now();
                // In force from here: the time reported is the time to this.
                let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                // Then, off the async workers: what changed (for the log
                // and the audit trail), and freeing the old snapshot.
                let audit = self.audit.clone();
                let info = accepted.clone();
                let (added, removed) = tokio::task::spawn_blocking(move || {
                    if let Some((settings, bytes, sig)) = to_keep {
                        keep(&settings, &info, bytes, &sig);
                    }
                    let (added, removed) = new.changes_from(&old);
                    if let Some(audit) = &audit {
                        audit_applied(audit, &info, applied, &added, &removed);
                    }
                    (added.len(), removed.len())
                })
                .await
                .unwrap_or((0, 0));
                let serial = accepted.header.serial;
                let digest = hex(&accepted.digest);
                info!(serial, digest = %digest, entries, added, removed, millis, key_id = %accepted.key_id, "list applied");
                self.metrics.reload(ReloadOutcome::Applied);
                self.metrics.list_in_force(
                    serial,
                    entries,
                    accepted.header.issued.unix_timestamp() as f64,
                    accepted.header.expires.unix_timestamp() as f64,
                    time::OffsetDateTime::now_utc().unix_timestamp() as f64,
                );
                *in_force = Some(accepted);
                Outcome::Applied {
                    serial,
                    digest,
                    entries,
                    added,
                    removed,
                    millis,
                }
            }
        }
    }

    /// Watch the list's directory (not the file: editors and `mv` replace
    /// the inode) and reload when the list or its signature changes.
    pub fn watch(self: &Arc<Self>) -> notify::Result<notify::RecommendedWatcher> {
        use notify::{RecursiveMode, Watcher};
        let dir = match self.source.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let file_name = self.source.file_name().map(|f| f.to_owned());
        let sig_name = load::signature_path(&self.source)
            .file_name()
            .map(|f| f.to_owned());
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                if event.kind.is_access() {
                    return;
                }
                let ours = event.paths.iter().any(|p| {
                    let name = p.file_name().map(|f| f.to_owned());
                    name == file_name || name == sig_name
                });
                if ours {
                    // A full channel already holds a pending reload.
                    let _ = tx.try_send(());
                }
            })?;
        watcher.watch(&dir, RecursiveMode::NonRecursive)?;
        let this = Arc::clone(self);
        tokio::spawn(async move {
            while rx.recv().await.is_some() {
                tokio::time::sleep(DEBOUNCE).await;
                while rx.try_recv().is_ok() {}
                let deadline = Instant::now() + SETTLE;
                loop {
                    let last = Instant::now() + RETRY >= deadline;
                    match this.reload_file_inner(last).await {
                        Outcome::Refused { .. } if !last => {
                            tokio::time::sleep(RETRY).await;
                            // A newer change restarts the wait.
                            if rx.try_recv().is_ok() {
                                while rx.try_recv().is_ok() {}
                            }
                        }
                        _ => break,
                    }
                }
            }
        });
        info!(dir = %dir.display(), "watching the list's directory");
        Ok(watcher)
    }
}

/// Keep a list applied in the state directory. A failure does not stop
/// enforcement (the law's 24 hours run), but is loud.
fn keep(settings: &LoadSettings, in_force: &InForce, bytes: Vec<u8>, sig: &[u8]) {
    if let Err(e) = load::persist(settings, in_force, bytes, sig) {
        error!(error = %e, serial = in_force.header.serial, "cannot keep the list in the state directory; a restart would enforce the previous one");
    }
}

/// Write a `list applied` record and one `entry` record per name added or
/// removed (with reference and category). Waits for room in the audit
/// queue: call it off the async workers.
pub fn audit_applied(
    audit: &Auditor,
    new: &InForce,
    applied: std::time::SystemTime,
    added: &[Rule<'_>],
    removed: &[Rule<'_>],
) {
    let h = &new.header;
    let fmt = crate::text::rfc3339;
    let issued = fmt(h.issued);
    audit.record_waiting_at(
        Event::List(ListEvent {
            event: "applied".into(),
            serial: Some(h.serial),
            digest: Some(hex(&new.digest)),
            issuer: Some(h.issuer.clone()),
            issued: Some(issued.clone()),
            expires: Some(fmt(h.expires)),
            key_id: Some(new.key_id.clone()),
            entries: Some(new.entries),
            added: Some(added.len()),
            removed: Some(removed.len()),
            ..ListEvent::default()
        }),
        applied,
    );
    for (change, rules) in [("added", added), ("removed", removed)] {
        for r in rules {
            audit.record_waiting(Event::Entry(EntryChange {
                change: change.into(),
                name: r.name.to_owned(),
                reference: r.reference().to_owned(),
                category: r.category.to_owned(),
                serial: h.serial,
                issued: issued.clone(),
            }));
        }
    }
}

/// Write a `list refused` record.
pub fn audit_refused(audit: &Auditor, refusal: &crate::list::Refusal) {
    audit.record_waiting(Event::List(ListEvent {
        event: "refused".into(),
        source: Some(refusal.file.display().to_string()),
        reason: Some(refusal.reason.clone()),
        ..ListEvent::default()
    }));
}
