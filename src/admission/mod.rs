//! Admitting a list: the one path by which a list takes effect.
//!
//! Every [`Source`] (the list file at start, the file watcher, SIGHUP and
//! `POST /v1/list/reload`, `PUT /v1/list`, a fetch from a web origin) goes
//! through
//! [`Admission::admit`]:
//!
//! 1. **read** the list and its signature ([`crate::list::Pair`]);
//! 2. **verify** the signature, **parse**, run the **gates** and **compile**
//!    the new [`Policy`] in one pass ([`candidate`]), on a blocking thread
//!    at low priority, off the query path;
//! 3. **persist** it in the state directory, then the serial floor
//!    ([`crate::list::floor`]): before the swap when the bytes exist
//!    nowhere else (a push, refused if they cannot be kept), right after it
//!    otherwise;
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
//! A list older than the list in force or the serial floor is refused as a
//! rollback, unless this resolver applied it before (its digest is in the
//! floor's history): then it is stale, which is said once at info level and
//! is neither a refusal nor an audit record.
//!
//! At start ([`Admission::start`]) the serial floor is checked against the
//! state directory (a floor without its kept list, or the reverse, stops
//! the start unless the operator resets the floor), the list kept in the
//! state directory is put in force first (its signature checked, no other gate: it is the last
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
use crate::list::Pair;
use crate::list::floor::{self, Floor};
use crate::list::state::{self, StateError, Written};
use crate::metrics::{ListMetrics, Metrics, ReloadOutcome};
use crate::policy::{Policy, Snapshot};
use crate::text::hex;
pub use candidate::{
    Accepted, Decision, InForce, KeptCopy, Refusal, Settings, consider, consider_against,
    consider_file, verify_kept,
};

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
    /// A list and its signature received on `PUT /v1/list`, as the admin
    /// endpoint wrote them to this path and `.minisig` beside it while
    /// they arrived (a large list is never held whole): read a piece at a
    /// time like a file, named [`PUSHED`], and kept in the state directory
    /// before the swap (they exist nowhere else).
    Push(PathBuf),
    /// A list and its signature fetched from a web origin (`url`), as the
    /// poller wrote them to `path` and `path.minisig` while they arrived
    /// (a large list is never held whole): read a piece at a time like a
    /// file, named by its URL, and kept in the state directory after the
    /// swap like a file's (the origin still has it).
    Fetch {
        /// The list's URL (the signature's is this + `.minisig`).
        url: String,
        /// Where the poller wrote what the origin sent.
        path: PathBuf,
    },
}

impl Source {
    /// What logs and audit records call it: the file, the URL, or
    /// [`PUSHED`].
    pub fn label(&self) -> &Path {
        match self {
            Source::Start(path) | Source::Watch(path) | Source::Signal(path) => path,
            Source::Push(_) => Path::new(PUSHED),
            Source::Fetch { url, .. } => Path::new(url),
        }
    }
}

/// Asks a web origin's poller for a fetch now (SIGHUP, `POST
/// /v1/lists/{id}/reload`), and receives its verdict.
pub type FetchNow = tokio::sync::mpsc::Sender<tokio::sync::oneshot::Sender<Verdict>>;

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
    /// An older list that this resolver applied before (the list file
    /// left behind by a push): nothing changed, and it is no attack.
    Stale {
        /// The candidate's serial.
        serial: u64,
        /// The serial in force.
        in_force: u64,
    },
    /// Refused; the list in force still serves.
    Refused {
        /// Why, naming the file and the line or key.
        reason: String,
    },
    /// A list fetched from a web origin could not be fetched (connection,
    /// TLS, HTTP status, timeout, size); the list in force still serves.
    Failed {
        /// Why, naming the URL.
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

/// The snapshot of every list, which the query path loads: each list's
/// admission path replaces its own slot, under a lock that orders the
/// writers (never taken by readers; held for a copy of a few pointers).
#[derive(Debug)]
pub struct Combined {
    cell: Arc<ArcSwap<Snapshot>>,
    writer: std::sync::Mutex<()>,
}

impl Combined {
    /// A snapshot of the lists `ids`, in this order, none in force yet.
    pub fn new(ids: &[&str]) -> Arc<Combined> {
        Arc::new(Combined {
            cell: Arc::new(ArcSwap::from_pointee(Snapshot::empty(ids))),
            writer: std::sync::Mutex::new(()),
        })
    }

    /// The cell the query path reads.
    pub fn cell(&self) -> &Arc<ArcSwap<Snapshot>> {
        &self.cell
    }

    /// Put `policy` in list `index`'s slot: a new snapshot sharing every
    /// other list's compiled policy (only the list that changed was
    /// compiled).
    fn set(&self, index: usize, policy: Arc<Policy>) {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let next = self.cell.load().replaced(index, policy);
        self.cell.store(Arc::new(next));
    }
}

/// Every list's admission path, in precedence order, and the snapshot of
/// them all.
#[derive(Debug)]
pub struct Lists {
    admissions: Vec<Arc<Admission>>,
    combined: Arc<Combined>,
}

impl Lists {
    /// The lists `ids`, in precedence order, each admission path made by
    /// `make` from its index and the shared snapshot.
    pub fn new(
        ids: &[&str],
        mut make: impl FnMut(usize, Arc<Combined>) -> Arc<Admission>,
    ) -> Lists {
        let combined = Combined::new(ids);
        let admissions = (0..ids.len())
            .map(|i| make(i, Arc::clone(&combined)))
            .collect();
        Lists {
            admissions,
            combined,
        }
    }

    /// Every list, in precedence order.
    pub fn all(&self) -> &[Arc<Admission>] {
        &self.admissions
    }

    /// The list with id `id`.
    pub fn get(&self, id: &str) -> Option<&Arc<Admission>> {
        self.admissions.iter().find(|a| *a.id == *id)
    }

    /// The list the single-list interfaces mean (`/v1/list`, `list push`
    /// without `--list`): `main`, or the only list; `None` when there are
    /// several and none is `main`.
    pub fn main(&self) -> Option<&Arc<Admission>> {
        self.get(crate::config::MAIN_LIST)
            .or(match self.admissions.as_slice() {
                [only] => Some(only),
                _ => None,
            })
    }

    /// The snapshot of every list that the query path reads.
    pub fn snapshot(&self) -> &Arc<ArcSwap<Snapshot>> {
        self.combined.cell()
    }

    /// Every list's file again, one after the other, in order (SIGHUP).
    pub async fn reread_all(&self) -> Vec<(String, Verdict)> {
        let mut out = Vec::with_capacity(self.admissions.len());
        for a in &self.admissions {
            out.push((a.id().to_owned(), a.reread().await));
        }
        out
    }
}

/// The admission path of one list.
#[derive(Debug)]
pub struct Admission {
    /// The list's id (`main` for a lone `[list]`).
    id: Arc<str>,
    settings: Settings,
    list_path: PathBuf,
    /// This list's compiled policy alone.
    policy: Arc<ArcSwap<Policy>>,
    /// The snapshot of every list, and this list's place in it.
    combined: Arc<Combined>,
    index: usize,
    list_metrics: Arc<ListMetrics>,
    in_force: InForceCell,
    /// The serial floor and the history of lists applied, as last written
    /// to disk. Read and replaced only under the `in_force` lock.
    floor: FloorCell,
    audit: Option<Arc<Auditor>>,
    /// Told of every list put in force ([`Admission::on_applied`]).
    on_applied: std::sync::OnceLock<OnApplied>,
    /// The background settling of the list applied at start (kept in the
    /// state directory, its audit records), awaited at stop.
    start_settle: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// For a list fetched from a web origin: its poller, which a reread
    /// asks for a fetch instead of reading `list_path`.
    fetch_now: std::sync::OnceLock<FetchNow>,
}

/// What is told of each list put in force, with the list's id: the kept
/// list at start, then
/// every list applied, one after the other in the order they took effect,
/// on a blocking thread (the RPZ zones follow the lists through it). A
/// refused list is never told.
#[derive(Clone)]
pub struct OnApplied(pub Arc<AppliedFn>);

/// The function an [`OnApplied`] calls.
pub type AppliedFn = dyn Fn(&str, &InForce, &Arc<Policy>) + Send + Sync;

impl std::fmt::Debug for OnApplied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnApplied")
    }
}

/// The serial floor in memory (a std mutex: held for a copy or a store,
/// never across an await; the `in_force` lock orders the writers).
type FloorCell = Arc<std::sync::Mutex<Floor>>;

/// A candidate that passed every check, not yet swapped in.
struct Candidate {
    in_force: InForce,
    policy: Policy,
    /// The bytes still to keep in the state directory (none when they were
    /// kept before the swap).
    to_persist: Option<ToKeep>,
    /// The floor with this list applied.
    floor: Floor,
    /// Whether that floor is written already (before the swap, with the
    /// bytes of a push); otherwise it is written after the state file.
    floor_kept: bool,
}

/// What [`judge`] found (the candidate boxed: it is large, the others
/// are small).
enum Judged {
    Unchanged,
    Stale { serial: u64 },
    Apply(Box<Candidate>),
}

/// Why the serial floor does not let the resolver start: each means that
/// an older list than one already applied could be applied, so the
/// resolver is not ready until the operator resets the floor
/// (`rempart serve --reset-serial-floor`).
#[derive(Debug, thiserror::Error)]
pub enum FloorError {
    /// A kept list and no floor: the floor was deleted (or the state
    /// directory restored without it, or written by a version before it).
    #[error(
        "{}: missing while a kept list exists ({}); the serial floor was deleted, or the state directory restored without it",
        floor.display(),
        state.display()
    )]
    Missing {
        /// The floor file.
        floor: PathBuf,
        /// The state file.
        state: PathBuf,
    },
    /// A floor and no usable kept list: the state file was deleted or
    /// damaged.
    #[error(
        "{}: lists up to serial {serial} were applied, but the kept list is {reason}",
        floor.display()
    )]
    StateLost {
        /// The floor file.
        floor: PathBuf,
        /// The floor.
        serial: u64,
        /// What became of the state file.
        reason: String,
    },
    /// The floor cannot be read, is damaged, or cannot be written.
    #[error(transparent)]
    Unusable(#[from] StateError),
}

/// Why [`Admission::start`] leaves no list to serve.
#[derive(Debug, thiserror::Error)]
pub enum StartFailure {
    /// No list at all: what to do is `list.on_missing`'s.
    #[error(transparent)]
    NoList(Refusal),
    /// The serial floor does not match the state directory.
    #[error(transparent)]
    Floor(FloorError),
}

/// What [`Admission::admit_with`] did.
enum Admitted {
    /// Swapped in; what remains to do is in the [`Settle`] (boxed: it is
    /// large, the others are small).
    Applied(Box<Settle>),
    /// The same bytes as the list in force.
    Unchanged { serial: u64 },
    /// An older list this resolver applied before.
    Stale { serial: u64, in_force: u64 },
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
    to_persist: Option<ToKeep>,
    /// The floor with this list, and whether still to write.
    floor: Option<Floor>,
    floor_cell: FloorCell,
    state_dir: PathBuf,
    /// The list's legal delay, written in its `applied` record.
    deadline_hours: u32,
    audit: Option<Arc<Auditor>>,
    on_applied: Option<OnApplied>,
}

impl Admission {
    /// An admission path for `list_path`, the only list (`main`), with no
    /// list in force yet (an empty policy) until [`Admission::start`].
    pub fn new(
        settings: Settings,
        list_path: PathBuf,
        metrics: Arc<Metrics>,
        audit: Option<Arc<Auditor>>,
    ) -> Arc<Admission> {
        let combined = Combined::new(&[crate::config::MAIN_LIST]);
        Admission::for_list(
            crate::config::MAIN_LIST,
            settings,
            list_path,
            metrics,
            audit,
            combined,
            0,
        )
    }

    /// The admission path of list `id`, slot `index` of `combined`.
    pub fn for_list(
        id: &str,
        settings: Settings,
        list_path: PathBuf,
        metrics: Arc<Metrics>,
        audit: Option<Arc<Auditor>>,
        combined: Arc<Combined>,
        index: usize,
    ) -> Arc<Admission> {
        Arc::new(Admission {
            id: Arc::from(id),
            list_metrics: metrics.list(id),
            combined,
            index,
            settings,
            list_path,
            policy: Arc::new(ArcSwap::from_pointee(Policy::empty())),
            in_force: Arc::new(Mutex::new(None)),
            floor: Arc::new(std::sync::Mutex::new(Floor::default())),
            audit,
            on_applied: std::sync::OnceLock::new(),
            start_settle: std::sync::Mutex::new(None),
            fetch_now: std::sync::OnceLock::new(),
        })
    }

    /// Make this a list fetched from a web origin: [`Self::reread`] asks
    /// `poller` for a fetch (set once; a second is ignored and `false`
    /// returned).
    pub fn fetched_by(&self, poller: FetchNow) -> bool {
        self.fetch_now.set(poller).is_ok()
    }

    /// The list's state directory (`list.state_dir`, or its `<id>/`).
    pub fn state_dir(&self) -> &Path {
        &self.settings.state_dir
    }

    /// Whether this list is fetched from a web origin.
    pub fn is_fetched(&self) -> bool {
        self.fetch_now.get().is_some()
    }

    /// Have `hook` told of every list put in force from now on (set once,
    /// before [`Self::start`]; a second hook is ignored and `false`
    /// returned).
    pub fn on_applied(&self, hook: OnApplied) -> bool {
        self.on_applied.set(hook).is_ok()
    }

    /// This list's compiled policy; only this path stores into it.
    pub fn policy(&self) -> &Arc<ArcSwap<Policy>> {
        &self.policy
    }

    /// The snapshot of every list that the query path reads.
    pub fn snapshot(&self) -> &Arc<ArcSwap<Snapshot>> {
        self.combined.cell()
    }

    /// The list's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Put `policy` in force for this list: in its own cell and in the
    /// snapshot of every list. Returns the policy it replaces.
    fn put(&self, policy: Arc<Policy>) -> Arc<Policy> {
        let old = self.policy.swap(Arc::clone(&policy));
        self.combined.set(self.index, policy);
        old
    }

    /// The configured list file (`list.path`); for a list fetched from a
    /// web origin, its URL (what logs call it).
    pub fn list_path(&self) -> &Path {
        &self.list_path
    }

    /// Serial of the list in force.
    pub async fn serial(&self) -> Option<u64> {
        self.in_force.lock().await.as_ref().map(|a| a.header.serial)
    }

    /// At start: the serial floor checked against the state directory,
    /// the list kept there put in force ([`Self::restore_kept`]), then
    /// `list.path` admitted against both like any candidate. What the list
    /// changed is recorded behind serving (a first list of a million
    /// entries is a million audit records); a reload waits for it.
    ///
    /// The kept list stays in force if the source file is gone or now fails
    /// a check (a warning says so). [`StartFailure::NoList`] when there is
    /// no list in force at all: what to do then is `list.on_missing`'s.
    /// [`StartFailure::Floor`] when the floor is missing or damaged while a
    /// list is kept, or a floor remains without its kept list, unless
    /// `reset_floor` (the operator's explicit `--reset-serial-floor`): the
    /// floor is then rebuilt from the list in force.
    pub async fn start(&self, reset_floor: bool) -> Result<InForce, StartFailure> {
        self.start_kept(reset_floor).await?;
        let source = Source::Start(self.list_path.clone());
        let kept_or = |refusal: Refusal| async {
            self.in_force
                .lock()
                .await
                .clone()
                .ok_or(StartFailure::NoList(refusal))
        };
        match self.admit_with(source, Refusals::Record).await {
            Admitted::Applied(settle) => {
                let in_force = settle.in_force.clone();
                let settling = tokio::spawn(async move {
                    settle.run(false).await;
                });
                *self.start_settle.lock().unwrap_or_else(|e| e.into_inner()) = Some(settling);
                Ok(in_force)
            }
            Admitted::Unchanged { .. } | Admitted::Stale { .. } => {
                kept_or(Refusal::new(
                    &self.list_path,
                    "unchanged without a kept list",
                ))
                .await
            }
            Admitted::Refused(refusal) => kept_or(refusal).await,
        }
    }

    /// The first half of [`Self::start`]: the serial floor checked against
    /// the state directory and the list kept there put in force, returned
    /// if there is one. A list fetched from a web origin starts so; its
    /// poller's first fetch then takes the place of reading `list.path`.
    pub async fn start_kept(&self, reset_floor: bool) -> Result<Option<InForce>, StartFailure> {
        let checked = {
            let dir = self.settings.state_dir.clone();
            tokio::task::spawn_blocking(move || check_floor(&dir, reset_floor))
                .await
                .map_err(|e| StateError {
                    file: floor::path(&self.settings.state_dir),
                    reason: format!("worker failed: {e}"),
                })
                .map_err(FloorError::from)
                .and_then(|r| r)
                .map_err(StartFailure::Floor)?
        };
        let (kept, unreadable) = self.restore().await;
        self.settle_floor(checked, kept.as_ref(), unreadable)
            .await
            .map_err(StartFailure::Floor)?;
        Ok(kept)
    }

    /// The list in force, if any.
    pub async fn in_force(&self) -> Option<InForce> {
        self.in_force.lock().await.clone()
    }

    /// Wait until the list applied at start is settled (kept in the state
    /// directory, its `applied` and `entry` records queued): a stop right
    /// after a start must not drop them.
    pub async fn settled(&self) {
        let settling = self
            .start_settle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(settling) = settling {
            let _ = settling.await;
        }
    }

    /// After [`check_floor`] and the kept list's restore: a fresh floor
    /// (first start, or reset) is written with the kept list in it; a kept
    /// list newer than the floor (a stop between the writes of the two) is
    /// added to it; a floor without a readable kept list stops the start.
    async fn settle_floor(
        &self,
        checked: Checked,
        kept: Option<&InForce>,
        unreadable: Option<StateError>,
    ) -> Result<(), FloorError> {
        let _in_force = self.in_force.lock().await;
        let dir = self.settings.state_dir.clone();
        let (floor, write) = match checked {
            Checked::Fresh => (Floor::default(), true),
            Checked::Found(floor) => (floor, false),
        };
        if let (Some(serial), Some(e)) = (floor.serial(), unreadable) {
            return Err(FloorError::StateLost {
                floor: floor::path(&dir),
                serial,
                reason: format!("unreadable: {e}"),
            });
        }
        let (floor, write) = match kept {
            Some(k) if floor.serial().is_none_or(|f| k.header.serial > f) || write => {
                (floor.with(k.header.serial, &k.digest), true)
            }
            Some(k) => {
                if floor.serial().is_some_and(|f| k.header.serial < f) {
                    warn!(
                        serial = k.header.serial,
                        floor = floor.serial(),
                        "the kept list is older than the serial floor (its write failed?); only a list at or above the floor can replace it"
                    );
                }
                (floor, false)
            }
            None => (floor, write),
        };
        if write {
            let to_save = floor.clone();
            tokio::task::spawn_blocking(move || floor::save(&dir, &to_save))
                .await
                .map_err(|e| StateError {
                    file: floor::path(&self.settings.state_dir),
                    reason: format!("worker failed: {e}"),
                })??;
        }
        *lock(&self.floor) = floor;
        Ok(())
    }

    /// Put the list kept in the state directory in force, if its signature
    /// still verifies against the trusted keys (a key removed from the trust
    /// list takes its lists with it). No other gate, no count, no record: it
    /// is the last list this resolver applied, and stays in force even if
    /// it has expired since (a warning says so). The serial floor is read
    /// too (a damaged one is ignored here: [`Self::start`] checks it).
    pub async fn restore_kept(&self) -> Option<InForce> {
        let kept = self.restore().await.0;
        let dir = self.settings.state_dir.clone();
        let floor = tokio::task::spawn_blocking(move || floor::load(&dir))
            .await
            .ok()
            .and_then(|r| r.ok())
            .flatten()
            .unwrap_or_default();
        let _in_force = self.in_force.lock().await;
        *lock(&self.floor) = floor;
        kept
    }

    /// The kept list put in force, and why it could not be read if so.
    async fn restore(&self) -> (Option<InForce>, Option<StateError>) {
        let mut in_force = self.in_force.lock().await;
        let settings = self.settings.clone();
        let (kept, unreadable) = tokio::task::spawn_blocking(move || load_kept(&settings))
            .await
            .unwrap_or((None, None));
        let Some(kept) = kept else {
            return (None, unreadable);
        };
        let info = kept.in_force();
        self.show_in_force(&info);
        let policy = Arc::new(kept.policy.labelled(Arc::clone(&self.id)));
        self.put(Arc::clone(&policy));
        *in_force = Some(info.clone());
        if let Some(hook) = self.on_applied.get().cloned() {
            let told = info.clone();
            let id = Arc::clone(&self.id);
            let _ = tokio::task::spawn_blocking(move || (hook.0)(&id, &told, &policy)).await;
        }
        (Some(info), None)
    }

    /// Admit a candidate: read, verify, parse, gates, compile, persist,
    /// swap, record. The one path of every source.
    pub async fn admit(&self, source: Source) -> Verdict {
        let admitted = self.admit_with(source, Refusals::Record).await;
        self.verdict(admitted).await
    }

    /// [`Self::admit`], except that a refusal is only returned: not logged,
    /// counted nor audited (for the file watcher, which tries again while
    /// the list and its signature may be half written).
    pub async fn try_admit(&self, source: Source) -> Verdict {
        let admitted = self.admit_with(source, Refusals::Return).await;
        self.verdict(admitted).await
    }

    /// `list.path` again, as SIGHUP and `POST /v1/list/reload` ask; for a
    /// list fetched from a web origin, a fetch now, by its poller.
    pub async fn reread(&self) -> Verdict {
        if let Some(poller) = self.fetch_now.get() {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let gone = || Verdict::Refused {
                reason: format!("{}: the poller has stopped", self.list_path.display()),
            };
            if poller.send(tx).await.is_err() {
                return gone();
            }
            return rx.await.unwrap_or_else(|_| gone());
        }
        self.admit(Source::Signal(self.list_path.clone())).await
    }

    async fn verdict(&self, admitted: Admitted) -> Verdict {
        match admitted {
            Admitted::Refused(refusal) => Verdict::Refused {
                reason: refusal.to_string(),
            },
            Admitted::Unchanged { serial } => Verdict::Unchanged { serial },
            Admitted::Stale { serial, in_force } => Verdict::Stale { serial, in_force },
            Admitted::Applied(settle) => {
                let (serial, digest) =
                    (settle.in_force.header.serial, hex(&settle.in_force.digest));
                let key_id = settle.in_force.key_id.clone();
                let (entries, millis) = (settle.new.len(), settle.millis);
                let Counts {
                    added,
                    removed,
                    changed,
                } = settle.run(true).await.unwrap_or_default();
                info!(list = %self.id, serial, digest = %digest, entries, added, removed, changed, millis, key_id = %key_id, "list applied");
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
        let floor = lock(&self.floor).clone();
        let judged =
            tokio::task::spawn_blocking(move || judge(&settings, current.as_ref(), &floor, source))
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
            Ok(Judged::Stale { serial }) => {
                let current = in_force.as_ref().map_or(0, |a| a.header.serial);
                info!(list = %self.id, file = %label.display(), serial, in_force = current, "the list file is an older list this resolver applied before (stale); the list in force keeps serving");
                self.list_metrics.reload(ReloadOutcome::Unchanged);
                Admitted::Stale {
                    serial,
                    in_force: current,
                }
            }
            Ok(Judged::Unchanged) => {
                let serial = in_force.as_ref().map_or(0, |a| a.header.serial);
                // At start the service logs the list in force.
                if !at_start {
                    info!(list = %self.id, serial, "list unchanged");
                }
                self.list_metrics.reload(ReloadOutcome::Unchanged);
                Admitted::Unchanged { serial }
            }
            Ok(Judged::Apply(candidate)) => {
                Admitted::Applied(Box::new(self.swap(in_force, *candidate, started)))
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
                warn!(list = %self.id, file = %label.display(), reason = %reason, serial = kept.header.serial, "list refused; the kept list stays in force");
            }
            (false, _) => {
                warn!(list = %self.id, file = %label.display(), reason = %reason, "list refused; the list in force keeps serving");
            }
        }
        self.list_metrics.reload(ReloadOutcome::Refused);
        if let Some(audit) = self.audit.clone() {
            let label = label.to_owned();
            let id = Arc::clone(&self.id);
            // Waits for room in the audit queue: off the async workers.
            let _ =
                tokio::task::spawn_blocking(move || record::refused(&audit, &id, &label, &reason))
                    .await;
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
        let new = Arc::new(candidate.policy.labelled(Arc::clone(&self.id)));
        let old = self.put(Arc::clone(&new));
        let applied = SystemTime::now();
        // In force from here: the time reported is the time to this.
        let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.list_metrics.reload(ReloadOutcome::Applied);
        self.show_in_force(&candidate.in_force);
        *guard = Some(candidate.in_force.clone());
        let floor = if candidate.floor_kept {
            *lock(&self.floor) = candidate.floor;
            None
        } else {
            Some(candidate.floor)
        };
        Settle {
            guard,
            in_force: candidate.in_force,
            new,
            old,
            applied,
            millis,
            to_persist: candidate.to_persist,
            floor,
            floor_cell: Arc::clone(&self.floor),
            state_dir: self.settings.state_dir.clone(),
            deadline_hours: self.settings.deadline_hours,
            audit: self.audit.clone(),
            on_applied: self.on_applied.get().cloned(),
        }
    }

    /// The `rempart_list_*` gauges for the list now in force.
    fn show_in_force(&self, a: &InForce) {
        self.list_metrics.in_force(
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
                warn!(list = %me.id, serial = a.header.serial, expires = %expires, "the list in force has EXPIRED; it stays in force until a newer list is applied");
                if let Some(audit) = me.audit.clone() {
                    let id = Arc::clone(&me.id);
                    let _ =
                        tokio::task::spawn_blocking(move || record::expired(&audit, &id, &a)).await;
                }
            }
        })
    }
}

/// How many names a list added, removed and changed (the log line).
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    added: usize,
    removed: usize,
    changed: usize,
}

impl Settle {
    /// Off the async workers: keep the list in the state directory if not
    /// yet, find what changed (when `count`, or for the audit trail), write
    /// the audit records, free the old snapshot. Returns the names added,
    /// removed and changed, when found.
    async fn run(self: Box<Self>, count: bool) -> Option<Counts> {
        let Settle {
            guard,
            in_force,
            new,
            old,
            applied,
            to_persist,
            floor,
            floor_cell,
            state_dir,
            deadline_hours,
            audit,
            on_applied,
            ..
        } = *self;
        let changes = tokio::task::spawn_blocking(move || {
            let kept = match to_persist {
                None | Some(ToKeep::Nothing) => Ok(()),
                Some(ToKeep::Bytes(pair)) => persist(&state_dir, &in_force, pair),
                Some(ToKeep::Written(written)) => written.and_then(Written::commit),
            };
            if let Err(e) = kept {
                error!(error = %e, serial = in_force.header.serial, "cannot keep the list in the state directory; a restart would enforce the previous one until the list file is read");
            }
            // After the state file: a stop between the two leaves a kept
            // list newer than the floor, which the next start accepts.
            if let Some(floor) = floor {
                match floor::save(&state_dir, &floor) {
                    Ok(()) => *lock(&floor_cell) = floor,
                    Err(e) => {
                        error!(error = %e, serial = in_force.header.serial, "cannot write the serial floor; after a restart, a list between the old floor and this serial would not be refused");
                    }
                }
            }
            if let Some(hook) = on_applied {
                (hook.0)(new.list(), &in_force, &new);
            }
            if !count && audit.is_none() {
                return None;
            }
            let changes = new.changes_from(&old);
            if let Some(audit) = &audit {
                record::applied(audit, new.list(), deadline_hours, &in_force, applied, &changes);
            }
            let (added, removed, changed) = changes.counts();
            Some(Counts {
                added,
                removed,
                changed,
            })
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
    floor: &Floor,
    source: Source,
) -> Result<Judged, Refusal> {
    let now = OffsetDateTime::now_utc();
    // A file is read a piece at a time, never whole; what was received
    // (pushed, fetched) is named as its sender knows it, not by the
    // temporary file it was written to.
    let received = |path: &Path, name: PathBuf| {
        let (decision, copy) = consider_file(settings, in_force, floor, path, now)
            .map_err(|r| renamed(r, path, &name))?;
        Ok::<_, Refusal>((name, decision, ToKeep::from(copy)))
    };
    let (file, decision, to_keep) = match source {
        Source::Start(path) | Source::Watch(path) | Source::Signal(path) => {
            let (decision, copy) = consider_file(settings, in_force, floor, &path, now)?;
            (path, decision, ToKeep::from(copy))
        }
        Source::Push(path) => received(&path, PathBuf::from(PUSHED))?,
        Source::Fetch { url, path } => received(&path, PathBuf::from(url))?,
    };
    match decision {
        Decision::Unchanged => Ok(Judged::Unchanged),
        Decision::Stale { serial } => Ok(Judged::Stale { serial }),
        Decision::Apply(accepted) => {
            let accepted = *accepted;
            let in_force = accepted.in_force();
            let floor = floor.with(in_force.header.serial, &in_force.digest);
            // A pushed list exists nowhere else: it is kept before the
            // swap, so that a restart enforces what clients were told, and
            // refused if it cannot be kept (the list in force unchanged).
            // A list read from a file is kept right after the swap (a
            // restart would read the file again).
            let (to_persist, floor_kept) = if file == Path::new(PUSHED) {
                let cannot_keep = |e: StateError| {
                    Refusal::new(
                        &file,
                        format!("cannot keep it in the state directory, so not applied: {e}"),
                    )
                };
                match to_keep {
                    ToKeep::Bytes(pair) => persist(&settings.state_dir, &in_force, pair),
                    ToKeep::Written(written) => written.and_then(Written::commit),
                    ToKeep::Nothing => Ok(()),
                }
                .map_err(cannot_keep)?;
                floor::save(&settings.state_dir, &floor).map_err(cannot_keep)?;
                (None, true)
            } else {
                (Some(to_keep), false)
            };
            Ok(Judged::Apply(Box::new(Candidate {
                in_force,
                policy: accepted.policy,
                to_persist,
                floor,
                floor_kept,
            })))
        }
    }
}

/// `refusal` of the file at `path` or of its signature, naming `name`
/// instead (and `name.minisig`).
fn renamed(refusal: Refusal, path: &Path, name: &Path) -> Refusal {
    let file = if refusal.file == path {
        name.to_owned()
    } else if refusal.file == crate::list::signature_path(path) {
        crate::list::signature_path(name)
    } else {
        refusal.file
    };
    Refusal { file, ..refusal }
}

impl From<KeptCopy> for ToKeep {
    fn from(copy: KeptCopy) -> ToKeep {
        match copy {
            KeptCopy::Written(w) => ToKeep::Written(w),
            KeptCopy::Bytes(pair) => ToKeep::Bytes(pair),
            KeptCopy::None => ToKeep::Nothing,
        }
    }
}

/// The copy of a list to keep in the state directory once applied.
enum ToKeep {
    /// None: the list is not applied (unchanged, stale).
    Nothing,
    /// Its bytes and signature, to write.
    Bytes(Pair),
    /// Written already while it was read (or why it could not be): to put
    /// in place.
    Written(Result<Written, StateError>),
}

/// What the floor on disk says before the kept list is read.
enum Checked {
    /// No floor yet (first start), or the operator reset it: to write.
    Fresh,
    /// The floor, read.
    Found(Floor),
}

/// The serial floor against the state directory, before anything is put in
/// force (and the temporaries of an interrupted write removed): a damaged
/// floor, a kept list without a floor, or a floor with
/// lists applied and no kept list, is an error unless `reset`.
fn check_floor(dir: &Path, reset: bool) -> Result<Checked, FloorError> {
    state::remove_temporaries(dir);
    if reset {
        floor::remove(dir)?;
        warn!(file = %floor::path(dir).display(), "serial floor reset by the operator (--reset-serial-floor): it is rebuilt from the list in force");
        return Ok(Checked::Fresh);
    }
    let state_file = state::path(dir);
    let before_floor = state::before_floor(dir)?;
    let state_exists = before_floor.is_some();
    match floor::load(dir)? {
        // Kept by a version without the floor: an upgrade, not a loss.
        None if before_floor == Some(true) => {
            warn!(file = %floor::path(dir).display(), "no serial floor yet (state directory of an earlier version): it is built from the kept list");
            Ok(Checked::Fresh)
        }
        None if state_exists => Err(FloorError::Missing {
            floor: floor::path(dir),
            state: state_file,
        }),
        None => Ok(Checked::Fresh),
        Some(f) => match f.serial() {
            Some(serial) if !state_exists => Err(FloorError::StateLost {
                floor: floor::path(dir),
                serial,
                reason: format!("missing ({})", state_file.display()),
            }),
            _ => Ok(Checked::Found(f)),
        },
    }
}

/// The floor cell's value (a panic while it was held cannot leave it half
/// written: it is replaced whole).
fn lock(cell: &FloorCell) -> std::sync::MutexGuard<'_, Floor> {
    cell.lock().unwrap_or_else(|e| e.into_inner())
}

/// The list kept in the state directory, if there is one and its signature
/// verifies; each reason to ignore it is a warning. The error when the
/// state file exists but cannot be read or is damaged.
fn load_kept(settings: &Settings) -> (Option<Accepted>, Option<StateError>) {
    let file = state::path(&settings.state_dir);
    let kept = match state::load(&settings.state_dir) {
        Ok(Some(k)) => k,
        Ok(None) => return (None, None),
        Err(e) => {
            warn!(file = %e.file.display(), reason = %e.reason, "cannot read the kept list");
            return (None, Some(e));
        }
    };
    match verify_kept(settings, &file, &kept.list, &kept.signature) {
        Ok(a) => {
            if a.header.expires <= OffsetDateTime::now_utc() {
                warn!(serial = a.header.serial, expires = %crate::text::rfc3339(a.header.expires), "the kept list has expired; it stays in force until a newer list is applied");
            }
            (Some(a), None)
        }
        Err(refusal) => {
            warn!(file = %file.display(), reason = %refusal.reason, "the kept list does not verify; ignored");
            (None, None)
        }
    }
}

/// Keep a list applied in the state directory, with the bytes and the
/// signature that prove it (atomic: see [`state::save`]).
fn persist(state_dir: &Path, in_force: &InForce, pair: Pair) -> Result<(), StateError> {
    let meta = state::Meta {
        serial: in_force.header.serial,
        digest: hex(&in_force.digest),
        key_id: in_force.key_id.clone(),
        applied: crate::text::rfc3339(OffsetDateTime::now_utc()),
        signature_len: 0,
        list_len: 0,
    };
    state::save(state_dir, &meta, pair.list, &pair.signature)
}
