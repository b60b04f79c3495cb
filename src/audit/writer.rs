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

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{
    Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError, sync_channel,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use hmac::{Hmac, Mac};
use time::{Date, OffsetDateTime};
use tracing::{error, warn};

use super::{
    Event, FILE_PREFIX, FILE_SUFFIX, GENESIS, Line, Loss, Pending, PendingEvent, RedirectRef,
    SCHEMA_VERSION, line_hash,
};
use crate::config::ClientIpMode;
use crate::metrics::Metrics;

/// Records taken from the queue per write.
/// While records keep coming, the writer drains the queue at this pace.
const BUSY_TICK: Duration = Duration::from_millis(2);
const BATCH: usize = 4096;

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
#[error("audit.dir {}: {reason}", dir.display())]
pub struct AuditError {
    /// The directory.
    pub dir: PathBuf,
    /// What is wrong.
    pub reason: String,
}

impl Auditor {
    /// Open the trail in `settings.dir` (continuing its chain) and start the
    /// writer thread.
    pub fn start(
        settings: AuditSettings,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Auditor>, AuditError> {
        let err = |reason: String| AuditError {
            dir: settings.dir.clone(),
            reason,
        };
        std::fs::create_dir_all(&settings.dir).map_err(|e| err(format!("cannot create: {e}")))?;
        let lost = Arc::new(AtomicU64::new(0));
        let mut writer = Writer::open(&settings, lost.clone(), metrics.clone()).map_err(err)?;
        let (tx, rx) = sync_channel::<Msg>(settings.queue.max(16));
        let thread = std::thread::Builder::new()
            .name("rempart-audit".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| err(format!("cannot start the writer: {e}")))?;
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

struct OpenFile {
    path: PathBuf,
    file: File,
    size: u64,
    day: Date,
}

struct Writer {
    settings: AuditSettings,
    file: Option<OpenFile>,
    prev: String,
    seq: u64,
    lost: Arc<AtomicU64>,
    metrics: Arc<Metrics>,
    hmac_key: Option<(Date, [u8; 32])>,
    dirty: bool,
    last_error: Option<std::time::Instant>,
}

fn parse_name(path: &Path) -> Option<(Date, u32)> {
    let name = path.file_name()?.to_str()?;
    let core = name.strip_prefix(FILE_PREFIX)?.strip_suffix(FILE_SUFFIX)?;
    let (day, index) = core.split_once('-')?;
    let day = Date::parse(day, time::macros::format_description!("[year][month][day]")).ok()?;
    Some((day, index.parse().ok()?))
}

fn file_name(day: Date, index: u32) -> String {
    let d = day
        .format(time::macros::format_description!("[year][month][day]"))
        .unwrap_or_default();
    format!("{FILE_PREFIX}{d}-{index:03}{FILE_SUFFIX}")
}

impl Writer {
    /// Find where the trail stands: the last complete record of the last
    /// file gives `prev` and `seq`. A torn last line (a crash while
    /// writing) is cut off and reported as a loss.
    fn open(
        settings: &AuditSettings,
        lost: Arc<AtomicU64>,
        metrics: Arc<Metrics>,
    ) -> Result<Writer, String> {
        let mut w = Writer {
            settings: settings.clone(),
            file: None,
            prev: GENESIS.to_owned(),
            seq: 0,
            lost,
            metrics,
            hmac_key: None,
            dirty: false,
            last_error: None,
        };
        let files = super::trail_files(&settings.dir).map_err(|e| format!("cannot list: {e}"))?;
        if let Some(last) = files.last() {
            let mut text = Vec::new();
            File::open(last)
                .and_then(|mut f| f.read_to_end(&mut text))
                .map_err(|e| format!("{}: cannot read: {e}", last.display()))?;
            let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            if complete < text.len() {
                OpenOptions::new()
                    .write(true)
                    .open(last)
                    .and_then(|f| f.set_len(complete as u64))
                    .map_err(|e| format!("{}: cannot cut a torn record: {e}", last.display()))?;
                warn!(file = %last.display(), "audit: a torn record (crash while writing) was cut off");
                w.lost.fetch_add(1, Ordering::Relaxed);
            }
            let body = &text[..complete];
            let last_line = body[..body.len().saturating_sub(1)]
                .rsplit(|&b| b == b'\n')
                .next()
                .filter(|l| !l.is_empty());
            if let Some(line) = last_line {
                let parsed: Line = serde_json::from_slice(line).map_err(|e| {
                    format!("{}: the last record is not readable: {e}", last.display())
                })?;
                w.prev = line_hash(line);
                w.seq = parsed.seq;
            } else if files.len() > 1 {
                return Err(format!("{}: empty file after others", last.display()));
            }
            if let Some((day, _)) = parse_name(last) {
                let file = OpenOptions::new()
                    .append(true)
                    .open(last)
                    .map_err(|e| format!("{}: cannot open: {e}", last.display()))?;
                w.file = Some(OpenFile {
                    path: last.clone(),
                    file,
                    size: complete as u64,
                    day,
                });
            }
        }
        Ok(w)
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
                return;
            }
        }
    }

    fn sync(&mut self) {
        if let Some(f) = &self.file {
            let _ = f.file.sync_data();
        }
        self.dirty = false;
    }

    /// Apply the privacy mode to a client address.
    fn client(&mut self, ip: IpAddr, day: Date) -> Option<String> {
        match self.settings.client_ip {
            ClientIpMode::None => None,
            ClientIpMode::Full => Some(ip.to_string()),
            ClientIpMode::Truncate => Some(match ip {
                IpAddr::V4(v4) => {
                    let o = v4.octets();
                    format!("{}.{}.{}.0/24", o[0], o[1], o[2])
                }
                IpAddr::V6(v6) => {
                    let mut o = v6.octets();
                    o[7] = 0;
                    o[8..].fill(0);
                    format!("{}/56", std::net::Ipv6Addr::from(o))
                }
            }),
            ClientIpMode::Hmac => {
                let key = match self.hmac_key {
                    Some((d, k)) if d == day => k,
                    _ => {
                        let mut k = [0u8; 32];
                        if getrandom::fill(&mut k).is_err() {
                            return Some("hmac-unavailable".into());
                        }
                        self.hmac_key = Some((day, k));
                        k
                    }
                };
                let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).ok()?;
                match ip {
                    IpAddr::V4(v4) => mac.update(&v4.octets()),
                    IpAddr::V6(v6) => mac.update(&v6.octets()),
                }
                let out = mac.finalize().into_bytes();
                Some(crate::text::hex(&out[..16]))
            }
        }
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
        let mut chain = Chain {
            prev: hex_array(&self.prev),
            seq: self.seq,
            // A redirect line is ~400 bytes (two 64-digit hashes): no regrowth
            // (and copy) of the batch's buffer on the way.
            bytes: Vec::with_capacity(batch.len() * 448 + 512),
            count: 0,
            time_cache: (0, String::new()),
            scratch: String::with_capacity(256),
        };
        if lost > 0 {
            chain.push_event(
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
                    let client = p.client.and_then(|ip| self.client(ip, day));
                    chain.push_redirect(&r, client.as_deref(), p.time);
                }
                PendingEvent::Event(mut event) => {
                    if let (Event::Redirect(r), Some(ip)) = (&mut event, p.client) {
                        r.client = self.client(ip, day);
                    }
                    chain.push_event(&event, p.time);
                }
            }
        }
        let Chain {
            prev,
            seq,
            bytes,
            count,
            ..
        } = chain;
        let records = count - u64::from(lost > 0);
        match self.append(&bytes, day) {
            Ok(()) => {
                self.prev = String::from_utf8_lossy(&prev).into_owned();
                self.seq = seq;
                self.dirty = true;
                self.metrics.audit_written(count);
            }
            Err(e) => {
                // The lost count of this batch comes back, plus its records.
                self.lost.fetch_add(lost + records, Ordering::AcqRel);
                self.metrics.audit_lost(records);
                let now = std::time::Instant::now();
                if self
                    .last_error
                    .is_none_or(|t| now.duration_since(t) > Duration::from_secs(10))
                {
                    error!(error = %e, dir = %self.settings.dir.display(), "audit: cannot write; records are counted as lost and the gap will be recorded");
                    self.last_error = Some(now);
                }
                self.file = None;
            }
        }
    }

    /// Append to the current file, rotating by day and size first.
    fn append(&mut self, bytes: &[u8], day: Date) -> std::io::Result<()> {
        let rotate = match &self.file {
            None => true,
            Some(f) => f.day != day || f.size >= self.settings.max_file_bytes,
        };
        if rotate {
            self.rotate(day)?;
        }
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("no audit file"))?;
        let before = f.size;
        if let Err(e) = f.file.write_all(bytes) {
            // Cut back to the last complete record: no torn line stays.
            let _ = f.file.set_len(before);
            let _ = f.file.seek(SeekFrom::End(0));
            return Err(e);
        }
        f.size += bytes.len() as u64;
        Ok(())
    }

    fn rotate(&mut self, day: Date) -> std::io::Result<()> {
        if let Some(f) = self.file.take() {
            let _ = f.file.sync_all();
        }
        let files = super::trail_files(&self.settings.dir)?;
        let index = files
            .iter()
            .filter_map(|p| parse_name(p))
            .filter(|(d, _)| *d == day)
            .map(|(_, i)| i + 1)
            .max()
            .unwrap_or(0);
        let path = self.settings.dir.join(file_name(day, index));
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        if let Ok(d) = File::open(&self.settings.dir) {
            let _ = d.sync_all();
        }
        self.file = Some(OpenFile {
            path,
            file,
            size: 0,
            day,
        });
        self.retention(day, &files);
        Ok(())
    }

    /// Delete files older than the retention period (oldest first; the
    /// chain then starts at the oldest file kept, which verify reports).
    fn retention(&self, today: Date, files: &[PathBuf]) {
        if self.settings.retention_days == 0 {
            return;
        }
        let cutoff = today - time::Duration::days(i64::from(self.settings.retention_days));
        for p in files {
            if let Some((d, _)) = parse_name(p)
                && d < cutoff
                && self.file.as_ref().is_none_or(|f| f.path != *p)
            {
                match std::fs::remove_file(p) {
                    Ok(()) => {
                        tracing::info!(file = %p.display(), "audit: file past retention removed")
                    }
                    Err(e) => {
                        warn!(file = %p.display(), error = %e, "audit: cannot remove a file past retention")
                    }
                }
            }
        }
    }
}

/// `prev` as the 64 hex digits a [`Chain`] holds (the genesis value and
/// every hash are 64 ASCII hex digits; anything else is a bug, seen by
/// `audit verify`).
fn hex_array(prev: &str) -> [u8; 64] {
    let mut out = [b'0'; 64];
    for (d, s) in out.iter_mut().zip(prev.as_bytes()) {
        *d = *s;
    }
    out
}

/// Write `name` as a JSON string the way `Name`'s Display and serde_json
/// would, when every label is letters, digits, `-` and `_` (nothing to
/// escape, which is every name of real traffic); false (and nothing
/// written) otherwise.
fn write_plain_name(b: &mut Vec<u8>, name: &hickory_proto::rr::Name) -> bool {
    let plain = |l: &[u8]| {
        l.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
    };
    if name.is_root() || !name.iter().all(plain) {
        return false;
    }
    b.push(b'"');
    for label in name.iter() {
        b.extend_from_slice(label);
        b.push(b'.');
    }
    if !name.is_fqdn() {
        b.pop();
    }
    b.push(b'"');
    true
}

/// A batch being serialised: each line is hashed into the next one's `prev`.
struct Chain {
    /// The hash of the last line, hex.
    prev: [u8; 64],
    seq: u64,
    bytes: Vec<u8>,
    count: u64,
    /// The last (millisecond, formatted time): a batch is mostly one instant.
    time_cache: (u128, String),
    scratch: String,
}

impl Chain {
    /// `{"v":..,"seq":..,"time":..,"prev":..,` and the line's start.
    fn head(&mut self, time: SystemTime) -> usize {
        use std::io::Write as _;
        self.seq += 1;
        let millis = time
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        if self.time_cache.0 != millis || self.time_cache.1.is_empty() {
            self.time_cache = (millis, super::format_time(time));
        }
        let start = self.bytes.len();
        let _ = write!(
            self.bytes,
            "{{\"v\":{SCHEMA_VERSION},\"seq\":{},\"time\":\"",
            self.seq
        );
        self.bytes.extend_from_slice(self.time_cache.1.as_bytes());
        self.bytes.extend_from_slice(b"\",\"prev\":\"");
        self.bytes.extend_from_slice(&self.prev);
        self.bytes.extend_from_slice(b"\",");
        start
    }

    fn end(&mut self, start: usize) {
        self.prev = super::line_hash_hex(&self.bytes[start..]);
        self.bytes.push(b'\n');
        self.count += 1;
    }

    /// Any event, through serde: its object without the opening brace
    /// follows the head (the same line as serialising a [`Line`], without
    /// serde's buffering of a flattened, internally tagged enum).
    fn push_event(&mut self, event: &Event, time: SystemTime) {
        let start = self.head(time);
        let event_start = self.bytes.len();
        if serde_json::to_writer(&mut self.bytes, event).is_err()
            || self.bytes.get(event_start) != Some(&b'{')
        {
            self.bytes.truncate(start);
            self.seq -= 1;
            return;
        }
        self.bytes.remove(event_start);
        self.end(start);
    }

    /// A redirect, written field by field with no intermediate strings: the
    /// same bytes as [`RedirectRef::to_event`] through [`Chain::push_event`]
    /// (a test checks it), at a fraction of the cost.
    fn push_redirect(&mut self, r: &RedirectRef, client: Option<&str>, time: SystemTime) {
        use std::fmt::Write as _;
        use std::io::Write as _;
        let start = self.head(time);
        let rule = r.policy.rule_at(r.index);
        let info = r.policy.info();
        let b = &mut self.bytes;
        b.extend_from_slice(b"\"kind\":\"redirect\",\"qname\":");
        if !write_plain_name(b, &r.qname) {
            // Escapes needed (DNS presentation, then JSON): the slow way.
            self.scratch.clear();
            let _ = write!(self.scratch, "{}", r.qname);
            let _ = serde_json::to_writer(&mut *b, self.scratch.as_str());
        }
        b.extend_from_slice(b",\"qtype\":\"");
        let _ = write!(b, "{}", r.qtype);
        b.extend_from_slice(b"\",\"rule\":");
        let _ = serde_json::to_writer(&mut *b, rule.map_or("", |r| r.name));
        b.extend_from_slice(b",\"reference\":");
        let _ = serde_json::to_writer(&mut *b, rule.map_or("", |r| r.reference()));
        b.extend_from_slice(b",\"category\":");
        let _ = serde_json::to_writer(&mut *b, rule.map_or("", |r| r.category));
        let _ = write!(
            b,
            ",\"serial\":{},\"digest\":\"{}\",\"answer\":\"{}\",\"transport\":\"{}\"",
            info.map_or(0, |i| i.serial),
            info.map_or("", |i| i.digest_hex.as_str()),
            r.answer,
            if r.tcp { "tcp" } else { "udp" }
        );
        if let Some(c) = client {
            b.extend_from_slice(b",\"client\":");
            let _ = serde_json::to_writer(&mut *b, c);
        }
        b.push(b'}');
        self.end(start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                    tcp: false,
                }),
                client,
            })
            .collect()
    }

    #[test]
    fn the_fast_redirect_line_is_the_serde_line() {
        let list = crate::list::List::parse(
            "#rempart-list v1\nissuer: T\nserial: 9\nissued: 2026-01-01T00:00:00Z\nexpires: 2099-01-01T00:00:00Z\n\nname\tmatch\tcategory\treference\tadded\nbad.test\tsubtree\tterror\"ism\tREF-\u{e9}\\1\t2026-01-01\n"
                .as_bytes(),
            std::path::Path::new("t"),
        )
        .unwrap();
        let policy = std::sync::Arc::new(crate::policy::Policy::compile(&list, [7; 32]));
        // A label with a quote and a backslash (both need escaping), and a
        // plain name as in real traffic (written without Display).
        let odd = hickory_proto::rr::Name::from_labels(vec![
            b"W\"w\\".as_ref(),
            b"Bad".as_ref(),
            b"test".as_ref(),
        ])
        .unwrap();
        let plain = hickory_proto::rr::Name::from_ascii("wWw.B-a_d.test.").unwrap();
        for qname in [odd, plain] {
            let r = RedirectRef {
                qname,
                qtype: hickory_proto::rr::RecordType::AAAA,
                policy: policy.clone(),
                index: 0,
                answer: "redirect",
                tcp: true,
            };
            let time = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_400_000_123);
            let new = || Chain {
                prev: hex_array(GENESIS),
                seq: 4,
                bytes: Vec::new(),
                count: 0,
                time_cache: (0, String::new()),
                scratch: String::new(),
            };
            let (mut fast, mut slow) = (new(), new());
            fast.push_redirect(&r, Some("127.0.0.0/24"), time);
            let mut event = r.to_event();
            if let Event::Redirect(e) = &mut event {
                e.client = Some("127.0.0.0/24".into());
            }
            slow.push_event(&event, time);
            assert_eq!(
                String::from_utf8(fast.bytes.clone()).unwrap(),
                String::from_utf8(slow.bytes).unwrap()
            );
            assert_eq!(fast.prev, slow.prev);
            let line: Line = serde_json::from_slice(fast.bytes.trim_ascii_end()).unwrap();
            assert_eq!(line.seq, 5);
        }
    }

    /// `audit.client_ip = "hmac"`: one day's records link a client, two
    /// days' do not (the key is drawn at random for each UTC day, kept in
    /// memory only, and a past day's key is gone), and the key is never
    /// written next to the log.
    #[test]
    fn hmac_pseudonyms_link_one_day_and_never_two() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer {
            settings: AuditSettings {
                dir: dir.path().to_path_buf(),
                client_ip: ClientIpMode::Hmac,
                queue: 16,
                max_file_bytes: 1 << 20,
                retention_days: 0,
            },
            file: None,
            prev: GENESIS.into(),
            seq: 0,
            lost: Arc::new(AtomicU64::new(0)),
            metrics: Metrics::new(),
            hmac_key: None,
            dirty: false,
            last_error: None,
        };
        let day = time::macros::date!(2026 - 11 - 23);
        let next = day.next_day().unwrap();
        let (v4, v6): (IpAddr, IpAddr) =
            ("192.0.2.7".parse().unwrap(), "2001:db8::7".parse().unwrap());
        let a = w.client(v4, day).unwrap();
        assert_eq!(
            w.client(v4, day).unwrap(),
            a,
            "same day, same address: linked"
        );
        assert_ne!(w.client(v6, day).unwrap(), a, "another address");
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        let key_day = w.hmac_key.unwrap();
        let b = w.client(v4, next).unwrap();
        assert_ne!(b, a, "the next day: not linked");
        let key_next = w.hmac_key.unwrap();
        assert_ne!(key_day.1, key_next.1, "a new key each day");
        assert_eq!(key_next.0, next);
        assert_ne!(w.client(v4, day).unwrap(), a, "a past day's key is gone");

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
        for (_, key) in [key_day, key_next, w.hmac_key.unwrap()] {
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
        let settings = AuditSettings {
            dir: dir.path().to_path_buf(),
            client_ip: ClientIpMode::None,
            queue: 16,
            max_file_bytes: 1 << 20,
            retention_days: 3,
        };
        let mut w = Writer::open(&settings, Arc::new(AtomicU64::new(0)), Metrics::new()).unwrap();
        let three = || redirects(3, None);
        let names = |dir: &Path| -> Vec<String> {
            super::super::trail_files(dir)
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
        let first1: Line = serde_json::from_str(day1.lines().next().unwrap()).unwrap();
        assert_eq!(day0.lines().count(), 6);
        assert_eq!(first1.prev, super::super::line_hash(last0.as_bytes()));
        assert_eq!(first1.seq, 7);
        let s = super::super::verify::verify(dir.path()).unwrap();
        assert_eq!((s.files, s.records, s.from_genesis), (2, 9, true));

        // Five days on, with 3 days of retention: both older files go.
        w.write_on(&mut three(), d0 + time::Duration::days(5));
        assert_eq!(names(dir.path()), ["rempart-audit-20261115-000.jsonl"]);
        let s = super::super::verify::verify(dir.path()).unwrap();
        assert_eq!(
            (s.files, s.records, s.first_seq, s.last_seq, s.from_genesis),
            (1, 3, 10, 12, false),
            "the trail left verifies and says it starts after removed files"
        );
    }
}
