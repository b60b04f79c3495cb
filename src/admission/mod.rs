//! Admitting a list: the one path by which a list takes effect.
//!
//! Every [`Source`] (the list file at start, the file watcher, SIGHUP and
//! `POST /v1/list/reload`, `PUT /v1/list`) goes through
//! [`Admission::admit`]:
//!
//! 1. **read** the list and its signature ([`crate::list::Pair`]);
//! 2. **verify** the signature, **parse**, run the **gates** and **compile**
//!    the new [`Policy`] in one pass ([`candidate`]), on a blocking thread
//!    at low priority, off the query path;
//! 3. **persist** it in the state directory: before the swap when the bytes
//!    exist nowhere else (a push), right after it otherwise;
//! 4. **swap** the snapshot in;
//! 5. **record**: metrics, the log line, the audit trail (`list applied` and
//!    one record per name added or removed, or `list refused`).
//!
//! The query path never waits: it loads whichever snapshot is in the
//! `ArcSwap` (a lock would make every query wait while a million entries
//! compile). The old snapshot is freed on a blocking thread too, so that
//! dropping a million entries never stalls a worker. A refused candidate
//! changes nothing but one log line, a counter and an audit record.
//!
//! At start ([`Admission::start`]) the list kept in the state directory is
//! put in force first (its signature checked, no other gate: it is the last
//! list this resolver applied), then `list.path` is admitted against it like
//! any candidate; only the recording of what it changed runs behind serving.

pub mod candidate;
pub mod record;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::{Mutex, OwnedMutexGuard};
use tracing::{error, info, warn};

use crate::audit::Auditor;
use crate::list::{Pair, state};
use crate::metrics::{Metrics, ReloadOutcome};
use crate::policy::Policy;
use crate::text::hex;
pub use candidate::{Accepted, Decision, InForce, Refusal, Settings, consider, verify_kept};

/// The label of a pushed list in logs and audit records.
pub const PUSHED: &str = "<pushed list>";

/// Where a candidate list comes from, and what brought it.
#[derive(Debug)]
pub enum Source {
    /// The list file, read at start after the list kept in the state
    /// directory was put in force.
    Start(PathBuf),
    /// The list file, changed on disk (the file watcher).
    Watch(PathBuf),
    /// The list file, re-read on an operator's request: SIGHUP or
    /// `POST /v1/list/reload`.
    Signal(PathBuf),
    /// A list and its signature received on `PUT /v1/list`: they exist
    /// nowhere else.
    Push(Pair),
}

impl Source {
    /// What logs and audit records call it: the file, or [`PUSHED`].
    pub fn label(&self) -> &Path {
        match self {
            Source::Start(path) | Source::Watch(path) | Source::Signal(path) => path,
            Source::Push(_) => Path::new(PUSHED),
        }
    }
}

/// What became of a candidate list (the JSON body of the admin list
/// endpoints: operators script against its field names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Verdict {
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
    /// Refused; the list in force still serves.
    Refused {
        /// Why, naming the file and the line or key.
        reason: String,
    },
}

/// What a refusal does besides being returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusals {
    /// Logged, counted and audited.
    Record,
    /// Only returned: the file watcher tries again while the pair may be
    /// half written, and records the last try's refusal.
    Return,
}

/// The list in force; the mutex serialises admissions (two pushes at once
/// are judged one after the other, each against the list in force). The
/// query path never touches it.
type InForceCell = Arc<Mutex<Option<InForce>>>;

/// The admission path of one list.
#[derive(Debug)]
pub struct Admission {
    settings: Settings,
    list_path: PathBuf,
    policy: Arc<ArcSwap<Policy>>,
    in_force: InForceCell,
    metrics: Arc<Metrics>,
    audit: Option<Arc<Auditor>>,
}

/// A candidate that passed every check, not yet swapped in.
struct Candidate {
    in_force: InForce,
    policy: Policy,
    /// The bytes still to keep in the state directory (none when they were
    /// kept before the swap).
    to_persist: Option<Pair>,
}

/// What [`Admission::admit_with`] did.
enum Admitted {
    /// Swapped in; what remains to do is in the [`Settle`] (boxed: it is
    /// large, the others are small).
    Applied(Box<Settle>),
    /// The same bytes as the list in force.
    Unchanged { serial: u64 },
    /// Refused (and recorded, per [`Refusals`]).
    Refused(Refusal),
}

/// What remains after a swap: keep the list (if not yet), find what it
/// changed, write the audit records, free the old snapshot. Holds the
/// in-force guard until done, so the next candidate waits for it and a
/// later list is never overwritten in the state directory by this one.
struct Settle {
    guard: OwnedMutexGuard<Option<InForce>>,
    in_force: InForce,
    new: Arc<Policy>,
    old: Arc<Policy>,
    applied: SystemTime,
    millis: u64,
    to_persist: Option<Pair>,
    state_dir: PathBuf,
    audit: Option<Arc<Auditor>>,
}

impl Admission {
    /// An admission path for `list_path`, with no list in force yet (an
    /// empty policy) until [`Admission::start`].
    pub fn new(
        settings: Settings,
        list_path: PathBuf,
        metrics: Arc<Metrics>,
        audit: Option<Arc<Auditor>>,
    ) -> Arc<Admission> {
        Arc::new(Admission {
            settings,
            list_path,
            policy: Arc::new(ArcSwap::from_pointee(Policy::empty())),
            in_force: Arc::new(Mutex::new(None)),
            metrics,
            audit,
        })
    }

    /// The policy cell the query path reads; only this path stores into it.
    pub fn policy(&self) -> &Arc<ArcSwap<Policy>> {
        &self.policy
    }

    /// The configured list file (`list.path`).
    pub fn list_path(&self) -> &Path {
        &self.list_path
    }

    /// Serial of the list in force.
    pub async fn serial(&self) -> Option<u64> {
        self.in_force.lock().await.as_ref().map(|a| a.header.serial)
    }

    /// At start: the list kept in the state directory ([`Self::restore_kept`]),
    /// then `list.path` admitted against it like any candidate. What the
    /// list changed is recorded behind serving (a first list of a million
    /// entries is a million audit records); a reload waits for it.
    ///
    /// The kept list stays in force if the source file is gone or now fails
    /// a check (a warning says so). `Err` when there is no list in force at
    /// all: what to do then is `list.on_missing`'s.
    pub async fn start(&self) -> Result<InForce, Refusal> {
        self.restore_kept().await;
        let source = Source::Start(self.list_path.clone());
        match self.admit_with(source, Refusals::Record).await {
            Admitted::Applied(settle) => {
                let in_force = settle.in_force.clone();
                tokio::spawn(settle.run(false));
                Ok(in_force)
            }
            Admitted::Unchanged { .. } => self
                .in_force
                .lock()
                .await
                .clone()
                .ok_or_else(|| Refusal::new(&self.list_path, "unchanged without a kept list")),
            Admitted::Refused(refusal) => self.in_force.lock().await.clone().ok_or(refusal),
        }
    }

    /// Put the list kept in the state directory in force, if its signature
    /// still verifies against the trusted keys (a key removed from the trust
    /// list takes its lists with it). No other gate, no count, no record: it
    /// is the last list this resolver applied, and stays in force even if
    /// it has expired since (a warning says so).
    pub async fn restore_kept(&self) -> Option<InForce> {
        let mut in_force = self.in_force.lock().await;
        let settings = self.settings.clone();
        let kept = tokio::task::spawn_blocking(move || load_kept(&settings))
            .await
            .ok()
            .flatten()?;
        let info = kept.in_force();
        self.show_in_force(&info);
        self.policy.store(Arc::new(kept.policy));
        *in_force = Some(info.clone());
        Some(info)
    }

    /// Admit a candidate: read, verify, parse, gates, compile, persist,
    /// swap, record. The one path of every source.
    pub async fn admit(&self, source: Source) -> Verdict {
        let admitted = self.admit_with(source, Refusals::Record).await;
        Self::verdict(admitted).await
    }

    /// [`Self::admit`], except that a refusal is only returned: not logged,
    /// counted nor audited (for the file watcher, which tries again while
    /// the list and its signature may be half written).
    pub async fn try_admit(&self, source: Source) -> Verdict {
        let admitted = self.admit_with(source, Refusals::Return).await;
        Self::verdict(admitted).await
    }

    /// `list.path` again, as SIGHUP and `POST /v1/list/reload` ask.
    pub async fn reread(&self) -> Verdict {
        self.admit(Source::Signal(self.list_path.clone())).await
    }

    async fn verdict(admitted: Admitted) -> Verdict {
        match admitted {
            Admitted::Refused(refusal) => Verdict::Refused {
                reason: refusal.to_string(),
            },
            Admitted::Unchanged { serial } => Verdict::Unchanged { serial },
            Admitted::Applied(settle) => {
                let (serial, digest) =
                    (settle.in_force.header.serial, hex(&settle.in_force.digest));
                let key_id = settle.in_force.key_id.clone();
                let (entries, millis) = (settle.new.len(), settle.millis);
                let (added, removed) = settle.run(true).await.unwrap_or((0, 0));
                info!(serial, digest = %digest, entries, added, removed, millis, key_id = %key_id, "list applied");
                Verdict::Applied {
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

    /// The one path: everything up to the swap, and the record of a
    /// refusal or of an unchanged list.
    async fn admit_with(&self, source: Source, refusals: Refusals) -> Admitted {
        let started = Instant::now();
        let in_force = Arc::clone(&self.in_force).lock_owned().await;
        let label = source.label().to_owned();
        let at_start = matches!(source, Source::Start(_));
        let settings = self.settings.clone();
        let current = in_force.clone();
        let judged =
            tokio::task::spawn_blocking(move || judge(&settings, current.as_ref(), source))
                .await
                .unwrap_or_else(|e| Err(Refusal::new(&label, format!("list worker failed: {e}"))));
        match judged {
            Err(refusal) => {
                if refusals == Refusals::Record {
                    self.refused(&label, &refusal, at_start, in_force.as_ref())
                        .await;
                }
                Admitted::Refused(refusal)
            }
            Ok(None) => {
                let serial = in_force.as_ref().map_or(0, |a| a.header.serial);
                // At start the service logs the list in force.
                if !at_start {
                    info!(serial, "list unchanged");
                }
                self.metrics.reload(ReloadOutcome::Unchanged);
                Admitted::Unchanged { serial }
            }
            Ok(Some(candidate)) => {
                Admitted::Applied(Box::new(self.swap(in_force, candidate, started)))
            }
        }
    }

    /// A refusal: one log line, a counter, a `list refused` record. The
    /// list in force (if any) keeps serving.
    async fn refused(
        &self,
        label: &Path,
        refusal: &Refusal,
        at_start: bool,
        in_force: Option<&InForce>,
    ) {
        let reason = refusal.to_string();
        match (at_start, in_force) {
            // No list at all: the service says what follows (`list.on_missing`).
            (true, None) => {}
            (true, Some(kept)) => {
                warn!(file = %label.display(), reason = %reason, serial = kept.header.serial, "list refused; the kept list stays in force");
            }
            (false, _) => {
                warn!(file = %label.display(), reason = %reason, "list refused; the list in force keeps serving");
            }
        }
        self.metrics.reload(ReloadOutcome::Refused);
        if let Some(audit) = self.audit.clone() {
            let label = label.to_owned();
            // Waits for room in the audit queue: off the async workers.
            let _ =
                tokio::task::spawn_blocking(move || record::refused(&audit, &label, &reason)).await;
        }
    }

    /// Put `candidate` in force: the snapshot swapped, the metrics, the
    /// list in force; the rest is the returned [`Settle`]'s.
    fn swap(
        &self,
        mut guard: OwnedMutexGuard<Option<InForce>>,
        candidate: Candidate,
        started: Instant,
    ) -> Settle {
        let new = Arc::new(candidate.policy);
        let old = self.policy.swap(Arc::clone(&new));
        let applied = SystemTime::now();
        // In force from here: the time reported is the time to this.
        let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.metrics.reload(ReloadOutcome::Applied);
        self.show_in_force(&candidate.in_force);
        *guard = Some(candidate.in_force.clone());
        Settle {
            guard,
            in_force: candidate.in_force,
            new,
            old,
            applied,
            millis,
            to_persist: candidate.to_persist,
            state_dir: self.settings.state_dir.clone(),
            audit: self.audit.clone(),
        }
    }

    /// The `rempart_list_*` gauges for the list now in force.
    fn show_in_force(&self, a: &InForce) {
        self.metrics.list_in_force(
            a.header.serial,
            a.entries,
            a.header.issued.unix_timestamp() as f64,
            a.header.expires.unix_timestamp() as f64,
            OffsetDateTime::now_utc().unix_timestamp() as f64,
        );
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
                        (a.header.expires <= OffsetDateTime::now_utc()
                            && reported != Some(a.header.serial))
                        .then(|| a.clone())
                    })
                };
                let Some(a) = expired else { continue };
                reported = Some(a.header.serial);
                let expires = crate::text::rfc3339(a.header.expires);
                warn!(serial = a.header.serial, expires = %expires, "the list in force has EXPIRED; it stays in force until a newer list is applied");
                if let Some(audit) = me.audit.clone() {
                    let _ = tokio::task::spawn_blocking(move || record::expired(&audit, &a)).await;
                }
            }
        })
    }
}

impl Settle {
    /// Off the async workers: keep the list in the state directory if not
    /// yet, find what changed (when `count`, or for the audit trail), write
    /// the audit records, free the old snapshot. Returns the names added
    /// and removed, when found.
    async fn run(self: Box<Self>, count: bool) -> Option<(usize, usize)> {
        let Settle {
            guard,
            in_force,
            new,
            old,
            applied,
            to_persist,
            state_dir,
            audit,
            ..
        } = *self;
        let changes = tokio::task::spawn_blocking(move || {
            if let Some(pair) = to_persist {
                persist(&state_dir, &in_force, pair);
            }
            if !count && audit.is_none() {
                return None;
            }
            let (added, removed) = new.changes_from(&old);
            if let Some(audit) = &audit {
                record::applied(audit, &in_force, applied, &added, &removed);
            }
            Some((added.len(), removed.len()))
        })
        .await
        .ok()
        .flatten();
        drop(guard);
        changes
    }
}

/// Read, verify, parse, gates, compile; and keep a list that exists
/// nowhere else. Blocking: runs on a blocking thread.
fn judge(
    settings: &Settings,
    in_force: Option<&InForce>,
    source: Source,
) -> Result<Option<Candidate>, Refusal> {
    let (file, pair, only_copy) = match source {
        Source::Push(pair) => (PathBuf::from(PUSHED), pair, true),
        Source::Start(path) | Source::Watch(path) | Source::Signal(path) => {
            let pair = Pair::read(&path)?;
            (path, pair, false)
        }
    };
    let now = OffsetDateTime::now_utc();
    match consider(settings, in_force, &file, &pair.list, &pair.signature, now)? {
        Decision::Unchanged => Ok(None),
        Decision::Apply(accepted) => {
            let accepted = *accepted;
            let in_force = accepted.in_force();
            // A pushed list exists nowhere else: it is kept before the
            // swap, so that a restart enforces what clients were told. A
            // list read from a file is kept right after the swap (a restart
            // would read the file again).
            let to_persist = if only_copy {
                persist(&settings.state_dir, &in_force, pair);
                None
            } else {
                Some(pair)
            };
            Ok(Some(Candidate {
                in_force,
                policy: accepted.policy,
                to_persist,
            }))
        }
    }
}

/// The list kept in the state directory, if there is one and its signature
/// verifies; each reason to ignore it is a warning.
fn load_kept(settings: &Settings) -> Option<Accepted> {
    let file = state::path(&settings.state_dir);
    let kept = match state::load(&settings.state_dir) {
        Ok(Some(k)) => k,
        Ok(None) => return None,
        Err(e) => {
            warn!(file = %e.file.display(), reason = %e.reason, "cannot read the kept list");
            return None;
        }
    };
    match verify_kept(settings, &file, &kept.list, &kept.signature) {
        Ok(a) => {
            if a.header.expires <= OffsetDateTime::now_utc() {
                warn!(serial = a.header.serial, expires = %crate::text::rfc3339(a.header.expires), "the kept list has expired; it stays in force until a newer list is applied");
            }
            Some(a)
        }
        Err(refusal) => {
            warn!(file = %file.display(), reason = %refusal.reason, "the kept list does not verify; ignored");
            None
        }
    }
}

/// Keep a list applied in the state directory, with the bytes and the
/// signature that prove it (atomic: see [`state::save`]). A failure does
/// not stop enforcement (the law's 24 hours run), but is loud.
fn persist(state_dir: &Path, in_force: &InForce, pair: Pair) {
    let meta = state::Meta {
        serial: in_force.header.serial,
        digest: hex(&in_force.digest),
        key_id: in_force.key_id.clone(),
        applied: crate::text::rfc3339(OffsetDateTime::now_utc()),
        signature_len: 0,
        list_len: 0,
    };
    if let Err(e) = state::save(state_dir, &meta, pair.list, &pair.signature) {
        error!(error = %e, serial = in_force.header.serial, "cannot keep the list in the state directory; a restart would enforce the previous one");
    }
}
