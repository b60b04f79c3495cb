//! The writer: a bounded queue in front of one thread that batches records
//! to disk.
//!
//! The query path calls [`Auditor::record`], which never waits: when the
//! queue is full the record is counted as lost. The writer thread writes
//! whole batches with one `write` call; if the disk fails it cuts the file
//! back to its last complete record and counts the batch as lost. Before the
//! next records it writes, it writes a `loss` record with the count, so the
//! gap is in the chain for the auditor to see, and service goes on.
//! List and process events (rare, and evidence the auditor must get) wait
//! for room in the queue instead of being dropped.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{
    Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError, sync_channel,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use time::{Date, OffsetDateTime};
use tracing::{error, info, warn};

use super::chain::{Batch, ChainHash, Serialised};
use super::privacy::ClientPrivacy;
use super::record::{ClockJump, Event, Loss, RedirectRef, format_time};
use super::seal::sealer::{Sealer, digest_of};
use super::seal::{self, Head, Seal, SealError, SealSettings};
use super::trail::{Trail, TrailError};
use crate::config::{AuditConfig, ClientIpMode, SealMode};
use crate::metrics::Metrics;

/// While records keep coming, the writer drains the queue at this pace.
const BUSY_TICK: Duration = Duration::from_millis(2);
/// Records taken from the queue per write.
const BATCH: usize = 4096;
/// The marker file that exists while a writer runs (see the module
/// documentation of [`crate::audit`]).
pub const RUNNING_MARKER: &str = "writer.running";
/// At start, a clock this far past the last record is recorded as a
/// forward jump (or a downtime: from the trail alone they look the same).
const START_FORWARD_BOUND: Duration = Duration::from_secs(24 * 3600);
/// While running, the wall clock moving this far from the monotonic clock
/// is recorded as a jump (NTP slews by far less; a step does more).
const RUN_DRIFT_BOUND: Duration = Duration::from_secs(300);

/// The writer's settings (from `[audit]`).
#[derive(Debug, Clone)]
pub struct AuditSettings {
    /// Directory of the trail.
    pub dir: PathBuf,
    /// Client address privacy.
    pub client_ip: ClientIpMode,
    /// Records the queue holds before the query path starts losing them.
    pub queue: usize,
    /// A file is closed and a new one started past this size.
    pub max_file_bytes: u64,
    /// Files whose day is older than this many days are deleted (0: never).
    pub retention_days: u32,
    /// Seal the trail with this key, every so often (if it exists, unless
    /// required); `None`: `audit.seal = false`, never sealed.
    pub seal: Option<SealSettings>,
}

impl AuditSettings {
    /// The writer's settings from `[audit]`.
    pub fn from_config(c: &AuditConfig) -> AuditSettings {
        AuditSettings {
            dir: c.dir.clone(),
            client_ip: c.client_ip,
            queue: c.queue,
            max_file_bytes: c.max_file_bytes,
            retention_days: c.retention_days,
            seal: match c.seal {
                SealMode::Off => None,
                mode => Some(SealSettings {
                    key: c.seal_key.clone(),
                    interval: c.seal_interval,
                    required: mode == SealMode::Required,
                }),
            },
        }
    }
}

#[allow(
    clippy::large_enum_variant,
    reason = "almost every message is a record: boxing would add an allocation per redirect"
)]
enum Msg {
    Record(Pending),
    Flush(SyncSender<()>),
    Stop,
}

/// The handle the rest of the process writes through.
pub struct Auditor {
    tx: Mutex<Option<SyncSender<Msg>>>,
    fast: SyncSender<Msg>,
    lost: Arc<AtomicU64>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    metrics: Arc<Metrics>,
    settings: AuditSettings,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor")
            .field("dir", &self.settings.dir)
            .finish()
    }
}

/// The audit directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The directory cannot be created.
    #[error("audit.dir {}: cannot create: {source}", dir.display())]
    Create {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The trail in it cannot be continued.
    #[error("audit.dir {}: {source}", dir.display())]
    Trail {
        /// The directory.
        dir: PathBuf,
        /// What is wrong.
        source: TrailError,
    },
    /// Sealing cannot start (`audit.seal = true`).
    #[error("audit.dir {}: {source}", dir.display())]
    Seal {
        /// The directory.
        dir: PathBuf,
        /// What is wrong.
        source: SealError,
    },
    /// The writer thread cannot be started.
    #[error("audit.dir {}: cannot start the writer: {source}", dir.display())]
    Thread {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// What a pending record holds.
#[derive(Debug)]
pub enum PendingEvent {
    /// A record ready to write.
    Event(Event),
    /// A redirect, formatted by the writer.
    Redirect(RedirectRef),
}

/// What the query path hands to the writer: the event, when it happened,
/// and the client address (the writer applies the privacy mode, so the
/// query path never touches the HMAC key).
#[derive(Debug)]
pub struct Pending {
    /// When.
    pub time: SystemTime,
    /// What.
    pub event: PendingEvent,
    /// Who, for redirects.
    pub client: Option<IpAddr>,
}

impl Auditor {
    /// Open the trail in `settings.dir` (continuing its chain) and start the
    /// writer thread.
    pub fn start(
        settings: AuditSettings,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Auditor>, AuditError> {
        let dir = || settings.dir.clone();
        std::fs::create_dir_all(&settings.dir)
            .map_err(|source| AuditError::Create { dir: dir(), source })?;
        let lost = Arc::new(AtomicU64::new(0));
        let mut writer = Writer::open(&settings, lost.clone(), metrics.clone())?;
        let (tx, rx) = sync_channel::<Msg>(settings.queue.max(16));
        let thread = std::thread::Builder::new()
            .name("rempart-audit".into())
            .spawn(move || writer.run(rx))
            .map_err(|source| AuditError::Thread { dir: dir(), source })?;
        Ok(Arc::new(Auditor {
            fast: tx.clone(),
            tx: Mutex::new(Some(tx)),
            lost,
            thread: Mutex::new(Some(thread)),
            metrics,
            settings,
        }))
    }

    /// Hand a record to the writer without waiting; counted as lost if the
    /// queue is full.
    pub fn record(&self, event: Event, client: Option<IpAddr>) {
        let msg = Msg::Record(Pending {
            time: SystemTime::now(),
            event: PendingEvent::Event(event),
            client,
        });
        match self.fast.try_send(msg) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.lost.fetch_add(1, Ordering::Relaxed);
                self.metrics.audit_lost(1);
            }
        }
    }

    /// Hand a redirect to the writer without waiting (the query path);
    /// counted as lost if the queue is full.
    pub fn record_redirect(&self, redirect: RedirectRef, client: IpAddr) {
        let msg = Msg::Record(Pending {
            time: SystemTime::now(),
            event: PendingEvent::Redirect(redirect),
            client: Some(client),
        });
        if self.fast.try_send(msg).is_err() {
            self.lost.fetch_add(1, Ordering::Relaxed);
            self.metrics.audit_lost(1);
        }
    }

    /// Hand a record to the writer, waiting for room: for list and process
    /// events, which must not be dropped.
    pub fn record_waiting(&self, event: Event) {
        self.record_waiting_at(event, SystemTime::now());
    }

    /// [`Auditor::record_waiting`] for an event that happened at `time`
    /// (a list applied: the record's time is the swap, not when the
    /// record was made).
    pub fn record_waiting_at(&self, event: Event, time: SystemTime) {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let msg = Msg::Record(Pending {
            time,
            event: PendingEvent::Event(event),
            client: None,
        });
        let sent = tx.map(|tx| tx.send(msg).is_ok()).unwrap_or(false);
        if !sent {
            self.lost.fetch_add(1, Ordering::Relaxed);
            self.metrics.audit_lost(1);
        }
    }

    /// Wait until every record handed over so far is written.
    pub fn flush(&self) {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(tx) = tx {
            let (done, wait) = sync_channel(1);
            if tx.send(Msg::Flush(done)).is_ok() {
                let _ = wait.recv_timeout(Duration::from_secs(30));
            }
        }
    }

    /// Write what is queued, sync, and stop the writer thread.
    pub fn stop(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        // Everything queued before the stop is written first.
        let _ = self.fast.send(Msg::Stop);
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }

    /// The trail's directory.
    pub fn dir(&self) -> &Path {
        &self.settings.dir
    }
}

/// The writer thread's state: the trail, the privacy mode, and where the
/// chain stands.
struct Writer {
    trail: Trail,
    privacy: ClientPrivacy,
    /// The hash of the last record written.
    prev: ChainHash,
    /// Its `seq`.
    seq: u64,
    lost: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
    dirty: bool,
    last_error: Option<std::time::Instant>,
    /// The sealing key and epoch (`audit.seal`).
    sealer: Option<Sealer>,
    /// `seq` of the first record the trail holds (what retention kept).
    from_seq: u64,
    /// The wall and monotonic clocks at the last check: a jump is the
    /// wall clock moving away from the monotonic one.
    clocks: (SystemTime, Instant),
    /// Retention's "now": the last record found at start (or the clock,
    /// if earlier), plus the monotonic time run since.
    retention_base: (SystemTime, Instant),
}

impl Writer {
    /// Continue the trail in `settings.dir` where it stands; a torn record
    /// cut off its end is counted as lost.
    fn open(
        settings: &AuditSettings,
        lost: Arc<AtomicU64>,
        metrics: Arc<Metrics>,
    ) -> Result<Writer, AuditError> {
        let dir = &settings.dir;
        let (trail, tail) = Trail::open(dir, settings.max_file_bytes, settings.retention_days)
            .map_err(|source| AuditError::Trail {
                dir: dir.clone(),
                source,
            })?;
        let marker = dir.join(RUNNING_MARKER);
        let unclean = marker.exists();
        if tail.torn && !unclean {
            lost.fetch_add(1, Ordering::Relaxed);
        }
        let end = Head {
            seq: tail.seq,
            hash: digest_of(&tail.prev),
        };
        let (sealer, for_trail) = match &settings.seal {
            Some(s) => match Sealer::open(s, dir, end) {
                Ok((sealer, for_trail)) => (Some(sealer), for_trail),
                // As journald's `Seal=`: sealing acts once a key was set
                // up; until then one warning says how.
                Err(SealError::NoKey { path }) if !s.required => {
                    let log = seal::log::path(dir);
                    if std::fs::metadata(&log).is_ok_and(|m| m.len() > 0) {
                        return Err(AuditError::Seal {
                            dir: dir.clone(),
                            source: SealError::KeyGone { path, log },
                        });
                    }
                    warn!(
                        dir = %dir.display(),
                        seal_key = %path.display(),
                        "audit: the trail is hash-chained but NOT sealed (no sealing key at audit.seal_key): whoever can write the directory can rewrite it undetected; to seal it, run `rempart audit setup-keys --config FILE` and restart (audit.seal = false silences this)"
                    );
                    (None, None)
                }
                Err(source) => {
                    return Err(AuditError::Seal {
                        dir: dir.clone(),
                        source,
                    });
                }
            },
            None => {
                info!(
                    dir = %dir.display(),
                    "audit.seal = false: the trail is hash-chained, not sealed"
                );
                (None, None)
            }
        };
        let from_seq = trail.first_seq_without(&[], tail.seq + 1);
        let now = (SystemTime::now(), Instant::now());
        let tail_time = tail.time;
        let mut writer = Writer {
            trail,
            privacy: ClientPrivacy::new(settings.client_ip),
            prev: tail.prev,
            seq: tail.seq,
            lost,
            metrics,
            dirty: false,
            last_error: None,
            sealer,
            from_seq,
            clocks: now,
            retention_base: (tail_time.map_or(now.0, |t| t.min(now.0)), now.1),
        };
        let today = OffsetDateTime::now_utc().date();
        if let Some(seal) = for_trail {
            // A crash after the key file was replaced and before the seal
            // reached the trail: it follows its head, as it would have.
            writer.append_seal(&seal, today);
        }
        let mut evidence = Vec::new();
        if unclean {
            evidence.push(Event::Loss(Loss {
                lost: u64::from(tail.torn),
                reason: "the previous run did not stop cleanly (crash, SIGKILL or power loss): the records still queued then (up to audit.queue) are lost, their number unknown".into(),
            }));
        }
        if let Some(jump) = tail_time.and_then(|t| start_jump(t, now.0)) {
            evidence.push(Event::Clock(jump));
        }
        if !evidence.is_empty() {
            let mut batch = evidence
                .into_iter()
                .map(|event| Pending {
                    time: now.0,
                    event: PendingEvent::Event(event),
                    client: None,
                })
                .collect();
            writer.write_on(&mut batch, today);
            writer.sync();
        }
        std::fs::write(&marker, format!("{}\n", std::process::id())).map_err(|source| {
            AuditError::Create {
                dir: dir.clone(),
                source,
            }
        })?;
        Ok(writer)
    }

    /// The wall clock moved away from the monotonic one since the last
    /// check: a `clock` record for the batch about to be written.
    fn clock_jump(&mut self) -> Option<ClockJump> {
        let (wall, mono) = (SystemTime::now(), Instant::now());
        let (last_wall, last_mono) = std::mem::replace(&mut self.clocks, (wall, mono));
        let expected = last_wall + mono.duration_since(last_mono);
        let (jump, by) = match wall.duration_since(expected) {
            Ok(ahead) => ("forward", ahead),
            Err(e) => ("backwards", e.duration()),
        };
        if by <= RUN_DRIFT_BOUND {
            return None;
        }
        warn!(
            jump,
            seconds = by.as_secs(),
            "audit: the wall clock jumped; recorded in the trail"
        );
        Some(ClockJump {
            jump: jump.into(),
            seconds: signed_secs(jump, by),
            before: format_time(expected),
            reason: "the wall clock moved away from the monotonic clock while running".into(),
        })
    }

    /// Retention's "today": the newest record's `day`, but never past the
    /// last record found at start plus the time run since, so that a clock
    /// set ahead deletes nothing.
    fn retention_day(&self, day: Date) -> Date {
        let (base, at) = self.retention_base;
        let bound = OffsetDateTime::from(base + at.elapsed()).date();
        day.min(bound)
    }

    fn run(&mut self, rx: Receiver<Msg>) {
        let mut batch: Vec<Pending> = Vec::with_capacity(BATCH);
        let mut flushes: Vec<SyncSender<()>> = Vec::new();
        let mut stop = false;
        let mut last_sync = std::time::Instant::now();
        // Busy: drain, write, sleep a tick, drain again, never parked in
        // `recv` (a parked writer costs every producer a wake-up call).
        // Idle: park until the next record (or a second, for the sync).
        let mut busy = false;
        loop {
            let first = if busy {
                std::thread::sleep(BUSY_TICK);
                match rx.try_recv() {
                    Ok(m) => Some(m),
                    Err(TryRecvError::Empty) => None,
                    Err(TryRecvError::Disconnected) => {
                        stop = true;
                        None
                    }
                }
            } else {
                match rx.recv_timeout(Duration::from_secs(1)) {
                    Ok(m) => Some(m),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => {
                        stop = true;
                        None
                    }
                }
            };
            busy = first.is_some();
            let mut next = first;
            while let Some(m) = next.take() {
                match m {
                    Msg::Record(p) => batch.push(p),
                    Msg::Flush(done) => flushes.push(done),
                    Msg::Stop => stop = true,
                }
                if batch.len() < BATCH && !stop {
                    next = rx.try_recv().ok();
                }
            }
            self.write(&mut batch);
            // The end of an epoch, and the last one at stop.
            if self
                .sealer
                .as_ref()
                .is_some_and(|s| s.due(self.seq) || (stop && s.unsealed(self.seq)))
            {
                self.seal_now(OffsetDateTime::now_utc().date());
            }
            // Durability once a second, and whenever someone waits for it.
            if !flushes.is_empty()
                || stop
                || (self.dirty && last_sync.elapsed() >= Duration::from_secs(1))
            {
                self.sync();
                last_sync = std::time::Instant::now();
            }
            for done in flushes.drain(..) {
                let _ = done.try_send(());
            }
            if stop {
                // A clean stop: the next start finds no marker.
                let _ = std::fs::remove_file(self.trail.dir().join(RUNNING_MARKER));
                return;
            }
        }
    }

    fn sync(&mut self) {
        self.trail.sync();
        self.dirty = false;
    }

    /// Serialise `batch` (after a loss record if records were lost), write
    /// it in one call, and advance the chain only if it reached the disk.
    fn write(&mut self, batch: &mut Vec<Pending>) {
        self.write_on(batch, OffsetDateTime::now_utc().date());
    }

    /// [`Writer::write`] on a given UTC day: the day names the file (a new
    /// one when the day changes), picks the HMAC key and drives retention.
    fn write_on(&mut self, batch: &mut Vec<Pending>, day: Date) {
        let lost = self.lost.swap(0, Ordering::AcqRel);
        if batch.is_empty() && lost == 0 {
            return;
        }
        if let Some(jump) = self.clock_jump() {
            batch.insert(
                0,
                Pending {
                    time: SystemTime::now(),
                    event: PendingEvent::Event(Event::Clock(jump)),
                    client: None,
                },
            );
        }
        if self.trail.needs_rotation(day) {
            if let Err(e) = self.trail.rotate(day) {
                let records = batch.len() as u64;
                batch.clear();
                self.failed(lost, records, &e);
                return;
            }
            self.rotated(day);
        }
        let mut lines = Batch::new(self.prev, self.seq, batch.len());
        if lost > 0 {
            lines.push_event(
                &Event::Loss(Loss {
                    lost,
                    reason: "records dropped before this point: audit queue full or disk failure"
                        .into(),
                }),
                SystemTime::now(),
            );
        }
        for p in batch.drain(..) {
            match p.event {
                PendingEvent::Redirect(r) => {
                    let client = p.client.and_then(|ip| self.privacy.client(ip, day));
                    lines.push_redirect(&r, client.as_deref(), p.time);
                }
                PendingEvent::Event(mut event) => {
                    if let (Event::Redirect(r), Some(ip)) = (&mut event, p.client) {
                        r.client = self.privacy.client(ip, day);
                    }
                    lines.push_event(&event, p.time);
                }
            }
        }
        let Serialised {
            prev,
            seq,
            bytes,
            count,
        } = lines.finish();
        let records = count - u64::from(lost > 0);
        match self.trail.append(&bytes, day) {
            Ok(()) => {
                self.prev = prev;
                self.seq = seq;
                self.dirty = true;
                self.metrics.audit_written(count);
            }
            Err(e) => self.failed(lost, records, &e),
        }
    }

    /// A batch of `records` (after `lost` earlier ones) did not reach the
    /// disk: the lost count comes back, plus its records, for the next
    /// `loss` record.
    fn failed(&mut self, lost: u64, records: u64, e: &std::io::Error) {
        self.lost.fetch_add(lost + records, Ordering::AcqRel);
        self.metrics.audit_lost(records);
        let now = std::time::Instant::now();
        if self
            .last_error
            .is_none_or(|t| now.duration_since(t) > Duration::from_secs(10))
        {
            error!(error = %e, dir = %self.trail.dir().display(), "audit: cannot write; records are counted as lost and the gap will be recorded");
            self.last_error = Some(now);
        }
        self.trail.close();
    }

    /// A new file was started: the epoch ends with a seal, as its first
    /// record, that also announces where the trail starts once the files
    /// past retention are gone; then they are removed. (A seal first, a
    /// removal after: a removal no seal announced is tampering.)
    fn rotated(&mut self, day: Date) {
        let expired = self.trail.expired(self.retention_day(day));
        if !expired.is_empty() {
            self.from_seq = self.trail.first_seq_without(&expired, self.seq + 1);
        }
        if self.sealer.as_ref().is_some_and(|s| s.unsealed(self.seq)) || !expired.is_empty() {
            self.seal_now(day);
        }
        self.trail.remove(&expired);
    }

    /// End the sealing epoch now (when sealing): seal the last record
    /// written, after syncing it, and write the seal after it.
    fn seal_now(&mut self, day: Date) {
        let Some(sealer) = self.sealer.as_mut() else {
            return;
        };
        if self.seq == 0 {
            return;
        }
        self.trail.sync();
        let head = Head {
            seq: self.seq,
            hash: digest_of(&self.prev),
        };
        let seal = match sealer.seal(head, self.from_seq.min(self.seq + 1), SystemTime::now()) {
            Ok(seal) => Some(seal),
            Err(f) => {
                f.log();
                if f.stop {
                    self.sealer = None;
                }
                f.for_trail.map(|s| *s)
            }
        };
        if let Some(seal) = seal {
            self.append_seal(&seal, day);
        }
    }

    /// Write `seal` as the record after its head, and sync it.
    fn append_seal(&mut self, seal: &Seal, day: Date) {
        let mut lines = Batch::new(self.prev, self.seq, 1);
        lines.push_event(&Event::Seal(seal.to_record()), seal.time());
        let out = lines.finish();
        match self.trail.append_here(&out.bytes, day) {
            Ok(()) => {
                self.prev = out.prev;
                self.seq = out.seq;
                self.metrics.audit_written(out.count);
                self.sync();
                if let Some(s) = self.sealer.as_mut() {
                    s.written(out.seq);
                }
            }
            Err(e) => {
                // Not a lost record: the seal stays in the key file and
                // the seal log, and `audit verify --key` names the gap.
                error!(error = %e, epoch = seal.epoch, "audit: cannot write the seal into the trail");
                self.trail.close();
            }
        }
    }
}

/// At start, the clock `now` against the last record's time `last`: behind
/// it, or more than [`START_FORWARD_BOUND`] past it.
fn start_jump(last: SystemTime, now: SystemTime) -> Option<ClockJump> {
    let (jump, by, reason) = match now.duration_since(last) {
        Err(e) if e.duration() > Duration::from_secs(1) => (
            "backwards",
            e.duration(),
            "the clock at start is behind the last record",
        ),
        Ok(gap) if gap > START_FORWARD_BOUND => (
            "forward",
            gap,
            "the clock at start is more than a day past the last record (a clock set ahead, or a long downtime)",
        ),
        _ => return None,
    };
    warn!(
        jump,
        seconds = by.as_secs(),
        "audit: clock jump at start; recorded in the trail"
    );
    Some(ClockJump {
        jump: jump.into(),
        seconds: signed_secs(jump, by),
        before: format_time(last),
        reason: reason.into(),
    })
}

fn signed_secs(jump: &str, by: Duration) -> i64 {
    let s = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
    if jump == "backwards" { -s } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Line, trail, verify};

    /// A writer (no thread) on the trail in `dir`.
    fn writer(dir: &Path, client_ip: ClientIpMode, retention_days: u32) -> Writer {
        let settings = AuditSettings {
            dir: dir.to_path_buf(),
            client_ip,
            queue: 16,
            max_file_bytes: 1 << 20,
            retention_days,
            seal: None,
        };
        Writer::open(&settings, Arc::new(AtomicU64::new(0)), Metrics::new()).unwrap()
    }

    /// `n` redirects of `www.bad.test` A under a one-entry list, from
    /// `client`.
    fn redirects(n: usize, client: Option<IpAddr>) -> Vec<Pending> {
        let list = crate::list::List::parse(
            "#rempart-list v1\nissuer: T\nserial: 9\nissued: 2026-01-01T00:00:00Z\nexpires: 2099-01-01T00:00:00Z\n\nname\tmatch\tcategory\treference\tadded\nbad.test\tsubtree\tterrorism\tREF-1\t2026-01-01\n"
                .as_bytes(),
            std::path::Path::new("t"),
        )
        .unwrap();
        let policy = Arc::new(crate::policy::Policy::compile(&list, [7; 32]));
        (0..n)
            .map(|_| Pending {
                time: SystemTime::now(),
                event: PendingEvent::Redirect(RedirectRef {
                    qname: hickory_proto::rr::Name::from_ascii("www.bad.test.").unwrap(),
                    qtype: hickory_proto::rr::RecordType::A,
                    policy: policy.clone(),
                    index: 0,
                    answer: "redirect",
                    transport: crate::proto::Transport::Udp,
                }),
                client,
            })
            .collect()
    }

    /// `audit.client_ip = "hmac"`: one day's records link a client, two
    /// days' do not (the key is drawn at random for each UTC day, kept in
    /// memory only, and a past day's key is gone), and the key is never
    /// written next to the log.
    #[test]
    fn hmac_pseudonyms_link_one_day_and_never_two() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(dir.path(), ClientIpMode::Hmac, 0);
        let day = time::macros::date!(2026 - 11 - 23);
        let next = day.next_day().unwrap();
        let (v4, v6): (IpAddr, IpAddr) =
            ("192.0.2.7".parse().unwrap(), "2001:db8::7".parse().unwrap());
        let a = w.privacy.client(v4, day).unwrap();
        assert_eq!(
            w.privacy.client(v4, day).unwrap(),
            a,
            "same day, same address: linked"
        );
        assert_ne!(w.privacy.client(v6, day).unwrap(), a, "another address");
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        let key_day = w.privacy.key().unwrap();
        let b = w.privacy.client(v4, next).unwrap();
        assert_ne!(b, a, "the next day: not linked");
        let key_next = w.privacy.key().unwrap();
        assert_ne!(key_day.1, key_next.1, "a new key each day");
        assert_eq!(key_next.0, next);
        assert_ne!(
            w.privacy.client(v4, day).unwrap(),
            a,
            "a past day's key is gone"
        );

        // Records written with both keys: neither key is on disk.
        let mut batch = redirects(3, Some(v4));
        w.write(&mut batch);
        let mut on_disk = Vec::new();
        for f in std::fs::read_dir(dir.path()).unwrap() {
            on_disk.extend(std::fs::read(f.unwrap().path()).unwrap());
        }
        let text = String::from_utf8_lossy(&on_disk);
        assert!(
            text.contains("\"client\":\""),
            "records were written: {text}"
        );
        assert!(!text.contains("192.0.2.7"), "no address");
        for (_, key) in [key_day, key_next, w.privacy.key().unwrap()] {
            let hex: String = crate::text::hex(&key);
            assert!(!text.contains(&hex), "key in hex on disk");
            assert!(
                !on_disk.windows(32).any(|win| win == key),
                "raw key on disk"
            );
        }
    }

    /// A new file each UTC day, chained to the last record of the day
    /// before; files past `audit.retention_days` are deleted at the next
    /// rotation, and the trail left still verifies (starting after them).
    #[test]
    fn files_rotate_by_day_chain_across_and_age_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(dir.path(), ClientIpMode::None, 3);
        let three = || redirects(3, None);
        let names = |dir: &Path| -> Vec<String> {
            trail::files(dir)
                .unwrap()
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        let d0 = time::macros::date!(2026 - 11 - 10);
        w.write_on(&mut three(), d0);
        w.write_on(&mut three(), d0);
        assert_eq!(names(dir.path()), ["rempart-audit-20261110-000.jsonl"]);

        // The next day: a new file whose first record names the last one
        // of the day before.
        w.write_on(&mut three(), d0.next_day().unwrap());
        assert_eq!(
            names(dir.path()),
            [
                "rempart-audit-20261110-000.jsonl",
                "rempart-audit-20261111-000.jsonl"
            ]
        );
        let day0 =
            std::fs::read_to_string(dir.path().join("rempart-audit-20261110-000.jsonl")).unwrap();
        let day1 =
            std::fs::read_to_string(dir.path().join("rempart-audit-20261111-000.jsonl")).unwrap();
        let last0 = day0.lines().last().unwrap();
        let first1 = Line::parse(day1.lines().next().unwrap().as_bytes()).unwrap();
        assert_eq!(day0.lines().count(), 6);
        assert_eq!(first1.prev, ChainHash::of(last0.as_bytes()).as_str());
        assert_eq!(first1.seq, 7);
        let s = verify::verify(dir.path()).unwrap();
        assert_eq!((s.files, s.records, s.from_genesis), (2, 9, true));

        // Five days on, with 3 days of retention: both older files go.
        w.write_on(&mut three(), d0 + time::Duration::days(5));
        assert_eq!(names(dir.path()), ["rempart-audit-20261115-000.jsonl"]);
        let s = verify::verify(dir.path()).unwrap();
        assert_eq!(
            (s.files, s.records, s.first_seq, s.last_seq, s.from_genesis),
            (1, 3, 10, 12, false),
            "the trail left verifies and says it starts after removed files"
        );
    }

    /// With sealing, retention seals first (the seal announces where the
    /// trail will start) and deletes after: `audit verify --key` accepts
    /// the removal and names the seal that announced it.
    #[test]
    fn sealed_retention_is_announced_by_a_seal() {
        let dir = tempfile::tempdir().unwrap();
        let trail_dir = dir.path().join("trail");
        let key_file = dir.path().join("seal.key");
        let key = crate::audit::seal::SealingKey::generate().unwrap();
        key.write(&key_file).unwrap();
        let pk0 = key.verifying_key();
        let settings = AuditSettings {
            dir: trail_dir.clone(),
            client_ip: ClientIpMode::None,
            queue: 16,
            max_file_bytes: 1 << 20,
            retention_days: 3,
            seal: Some(SealSettings {
                key: key_file,
                interval: Duration::from_secs(3600),
                required: true,
            }),
        };
        std::fs::create_dir_all(&trail_dir).unwrap();
        let mut w = Writer::open(&settings, Arc::new(AtomicU64::new(0)), Metrics::new()).unwrap();
        let d0 = time::macros::date!(2026 - 11 - 10);
        w.write_on(&mut redirects(3, None), d0);
        w.write_on(&mut redirects(3, None), d0.next_day().unwrap());
        w.write_on(&mut redirects(3, None), d0 + time::Duration::days(5));
        w.seal_now(d0 + time::Duration::days(5));
        assert_eq!(
            trail::files(&trail_dir).unwrap().len(),
            1,
            "two files aged out"
        );
        let s = verify::verify_with(&trail_dir, Some(pk0)).unwrap();
        let sealed = s.sealed.unwrap();
        assert_eq!(sealed.unsealed, 0);
        assert_eq!(sealed.removed.len(), 1, "{sealed:?}");
        assert!(sealed.removed[0].announced.is_some(), "{sealed:?}");
        // Without the seal that announced it, the same removal is tampering.
        let log = crate::audit::seal::log::path(&trail_dir);
        let text = std::fs::read_to_string(&log).unwrap();
        let kept: Vec<&str> = text.lines().take(1).collect();
        std::fs::write(&log, kept.join("\n") + "\n").unwrap();
        assert!(verify::verify_with(&trail_dir, Some(pk0)).is_err());
    }
}
