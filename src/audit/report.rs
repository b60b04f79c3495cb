//! `rempart audit report DIR [--from T] [--to T] [--format text|json|csv]`.
//!
//! Redirects per entry (with reference and category), per category and per
//! day; the list versions applied, with the delay from `issued` to applied
//! and the names each added, removed and changed; and every name added,
//! removed or changed (another match kind, reference or category: the old
//! and new values), with the same delay: the evidence for the 24-hour
//! obligations (block within 24 hours of notification, restore within 24
//! hours of delisting).
//!
//! The first list of the trail owes no delay, and an `issued` after the
//! time applied counts none ([`Obligation`]); the periods the resolver was
//! stopped or ran without any list ([`Unfiltered`]), the lists refused and
//! the records lost are in every format.
//!
//! The chain is checked first ([`check_chain`], with the seals when the
//! auditor's key is given) and the report says what was found: figures
//! from a trail that was changed are worth nothing, so the command refuses
//! a broken chain unless asked otherwise.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use time::OffsetDateTime;

use super::record::{EntryChange, Event, Line, NotARecord, parse_time};
use super::seal::VerifyingKey;
use super::trail::{self, TrailFile};
use super::verify::{self, Break};

/// The law's delay: 24 hours.
pub const OBLIGATION_SECONDS: i64 = 24 * 3600;

/// Redirects of one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryCount {
    /// The list whose entry it is.
    pub list: String,
    /// The entry's name.
    pub name: String,
    /// Its reference.
    pub reference: String,
    /// Its category.
    pub category: String,
    /// Redirects.
    pub redirects: u64,
}

/// A list version applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Version {
    /// The list (its id; `main` in trails written before several lists).
    pub list: String,
    /// The list's legal delay in hours when applied (24 in trails written
    /// before several lists).
    pub deadline_hours: u32,
    /// Serial.
    pub serial: u64,
    /// Issuer.
    pub issuer: String,
    /// Digest.
    pub digest: String,
    /// `issued`.
    pub issued: String,
    /// When applied.
    pub applied: String,
    /// Seconds from `issued` to applied (0 if `issued` is later).
    pub delay_seconds: i64,
    /// Id of the key that signed it.
    pub key_id: String,
    /// Whether the 24-hour obligation applies and was met
    /// ([`Obligation`]).
    pub obligation: Obligation,
    /// Names it added, removed and changed (its `entry` records).
    pub names: NameCounts,
}

/// How many names a list version added, removed and changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NameCounts {
    /// Names listed from this version on.
    pub added: u64,
    /// Names no longer listed.
    pub removed: u64,
    /// Names kept with another match kind, reference or category.
    pub changed: u64,
}

/// The 24-hour obligation for a list version or an entry change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Obligation {
    /// Applied within 24 hours of `issued`.
    Met,
    /// Applied more than 24 hours after `issued`.
    Late,
    /// The first list the trail holds (the resolver's installation, or
    /// the start of what retention kept): nothing was in force before it,
    /// so no delay is owed.
    FirstList,
    /// `issued` is after the time applied (the issuer's clock or this
    /// resolver's): no delay to count.
    IssuedLater,
}

impl Obligation {
    fn of(delay: i64, first: bool, deadline_seconds: i64) -> Obligation {
        match delay {
            _ if first => Obligation::FirstList,
            d if d < 0 => Obligation::IssuedLater,
            d if d <= deadline_seconds => Obligation::Met,
            _ => Obligation::Late,
        }
    }

    /// For the text report.
    pub fn text(self) -> &'static str {
        match self {
            Obligation::Met => "yes",
            Obligation::Late => "NO (late)",
            Obligation::FirstList => "n/a: first list",
            Obligation::IssuedLater => "n/a: issued later",
        }
    }

    /// For the CSV report.
    pub fn csv(self) -> &'static str {
        match self {
            Obligation::Met => "met",
            Obligation::Late => "late",
            Obligation::FirstList => "first_list",
            Obligation::IssuedLater => "issued_later",
        }
    }
}

/// A period the resolver was stopped: from its stop (or, after a crash,
/// its last record) to the next start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stopped {
    /// From.
    pub from: String,
    /// To.
    pub to: String,
    /// A clean stop (else a crash, a SIGKILL or a power loss).
    pub clean: bool,
}

/// A period the resolver answered without any list in force: it started
/// with none (`list.on_missing = "serve-unfiltered"`, a `list unfiltered`
/// record) and served unfiltered until a list was applied or it stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unfiltered {
    /// The list that was missing (its id).
    pub list: String,
    /// From (the `list unfiltered` record).
    pub from: String,
    /// To; `None` while still unfiltered at the trail's last record.
    pub to: Option<String>,
    /// How the period ended.
    pub until: UnfilteredEnd,
    /// Why there was no list (the refusal of the list file at start).
    pub reason: String,
}

/// How a period without a list ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnfilteredEnd {
    /// A list was applied.
    ListApplied,
    /// The resolver stopped cleanly.
    Stopped,
    /// The resolver crashed (its last record ends the period).
    Crashed,
    /// Not ended: the trail's last record came while still unfiltered.
    EndOfTrail,
}

impl UnfilteredEnd {
    /// For the text report.
    pub fn text(self) -> &'static str {
        match self {
            UnfilteredEnd::ListApplied => "until a list was applied",
            UnfilteredEnd::Stopped => "until the resolver stopped",
            UnfilteredEnd::Crashed => "until the resolver crashed (its last record)",
            UnfilteredEnd::EndOfTrail => "still unfiltered at the end of the trail",
        }
    }

    /// For the CSV report.
    pub fn csv(self) -> &'static str {
        match self {
            UnfilteredEnd::ListApplied => "list_applied",
            UnfilteredEnd::Stopped => "stopped",
            UnfilteredEnd::Crashed => "crashed",
            UnfilteredEnd::EndOfTrail => "end_of_trail",
        }
    }
}

/// A name added, removed or changed, with when it took effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The `entry` record: the change, the name, its match kind, reference
    /// and category (for a change, `was`: those before), the list that
    /// made it and that list's `issued`.
    #[serde(flatten)]
    pub entry: EntryChange,
    /// When applied.
    pub applied: String,
    /// Seconds from `issued` to applied (0 if `issued` is later).
    pub delay_seconds: i64,
    /// True when the delay is within 24 hours.
    pub within_24h: bool,
    /// Whether the 24-hour obligation applies and was met.
    pub obligation: Obligation,
}

/// A refused list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refused {
    /// The list refused (its id).
    pub list: String,
    /// When.
    pub time: String,
    /// Why.
    pub reason: String,
}

/// What the check of the chain found, before the figures.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChainStatus {
    /// The chain (and the seals, when checked with a key) is intact.
    pub intact: bool,
    /// The first break (file, line, reason), when not intact.
    pub broken: Option<String>,
    /// Records read.
    pub records: u64,
    /// SHA-256 of the last record's line.
    pub head: String,
    /// Checked with the auditor's verification key.
    pub with_key: bool,
    /// Time up to which the trail is sealed (with a key, and a seal).
    pub sealed_up_to: Option<String>,
    /// `seq` of the last sealed record.
    pub sealed_seq: Option<u64>,
    /// Records after the last seal, which nothing proves yet.
    pub unsealed: u64,
}

impl ChainStatus {
    /// One line for people.
    pub fn summary(&self) -> String {
        if let Some(b) = &self.broken {
            return format!("BROKEN at {b}: the figures below come from a trail that was changed");
        }
        let mut o = format!(
            "intact ({} records, head {})",
            self.records,
            if self.head.is_empty() {
                "-"
            } else {
                &self.head
            }
        );
        match (&self.sealed_up_to, self.sealed_seq) {
            (Some(t), Some(seq)) => {
                o.push_str(&format!("; sealed up to {t} (seq {seq})"));
                if self.unsealed > 0 {
                    o.push_str(&format!("; {} record(s) after it not sealed", self.unsealed));
                }
            }
            _ if self.with_key => o.push_str("; nothing sealed yet"),
            _ => o.push_str(
                "; checked without the verification key, which proves nothing against someone who can write the directory (--key FILE)",
            ),
        }
        o
    }
}

/// Check the trail in `dir` as `audit verify` does (with the seals if
/// `key` is given). `Err`: the trail cannot be read at all.
pub fn check_chain(dir: &Path, key: Option<VerifyingKey>) -> Result<ChainStatus, Break> {
    let with_key = key.is_some();
    match verify::verify_with(dir, key) {
        Ok(s) => {
            let sealed = s.sealed.as_ref().and_then(|r| r.sealed);
            Ok(ChainStatus {
                intact: true,
                broken: None,
                records: s.records,
                head: s.head,
                with_key,
                sealed_up_to: sealed.map(|x| x.time_text()),
                sealed_seq: sealed.map(|x| x.seq),
                unsealed: s.sealed.map_or(0, |r| r.unsealed),
            })
        }
        Err(b) if b.unreadable => Err(b),
        Err(b) => Ok(ChainStatus {
            intact: false,
            broken: Some(b.to_string()),
            with_key,
            ..ChainStatus::default()
        }),
    }
}

/// The report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The chain, checked before the figures.
    pub chain: ChainStatus,
    /// The newest file ended with an unterminated line (a batch being
    /// written): it was not read.
    pub torn_tail: bool,
    /// Start of the period (inclusive), if given.
    pub from: Option<String>,
    /// End of the period (exclusive), if given.
    pub to: Option<String>,
    /// Redirects in the period.
    pub redirects: u64,
    /// Per entry, most redirected first.
    pub per_entry: Vec<EntryCount>,
    /// Per category.
    pub per_category: BTreeMap<String, u64>,
    /// Per UTC day.
    pub per_day: BTreeMap<String, u64>,
    /// List versions applied.
    pub versions: Vec<Version>,
    /// Names added, removed and changed.
    pub changes: Vec<Change>,
    /// Lists refused.
    pub refused: Vec<Refused>,
    /// Records lost (from `loss` records).
    pub lost: u64,
    /// Periods the resolver was stopped.
    pub stopped: Vec<Stopped>,
    /// Periods the resolver ran without any list (unfiltered).
    pub unfiltered: Vec<Unfiltered>,
    /// The host name of the resolver that wrote the trail (from its last
    /// `process` record naming one).
    pub host: Option<String>,
    /// Per list, in the order the trail first names them.
    pub per_list: Vec<ListSummary>,
}

/// One list (one authority) in the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ListSummary {
    /// The list's id.
    pub list: String,
    /// Who issued its versions (the `issuer` of each version applied).
    pub issuers: Vec<String>,
    /// Its legal delay in hours (of the last version applied).
    pub deadline_hours: u32,
    /// Redirects it decided in the period.
    pub redirects: u64,
    /// Versions applied in the period.
    pub versions: usize,
    /// Names added, removed or changed in the period late for the
    /// deadline, versions included.
    pub late: usize,
    /// Lists refused in the period.
    pub refused: usize,
}

/// The trail cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The directory cannot be listed.
    #[error("{}: {source}", dir.display())]
    List {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file cannot be read.
    #[error("{}: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not an audit record.
    #[error("{}:{line}: {source}", file.display())]
    Record {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// Why.
        source: NotARecord,
    },
}

/// A list's deadline in seconds, from its last `applied` record (24 hours
/// until one says).
fn deadline_of(deadlines: &BTreeMap<String, i64>, list: &str) -> i64 {
    deadlines.get(list).copied().unwrap_or(OBLIGATION_SECONDS)
}

fn delay(issued: &str, applied: OffsetDateTime) -> i64 {
    parse_time(issued).map_or(0, |i| (applied - i).whole_seconds())
}

/// Build the report of the records whose time is in `[from, to)`.
pub fn build(
    dir: &Path,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
) -> Result<Report, ReportError> {
    let files = trail::files(dir).map_err(|source| ReportError::List {
        dir: dir.to_owned(),
        source,
    })?;
    let mut tally = Tally::new(from, to);
    let newest = files.last().cloned();
    for file in files {
        let text = TrailFile::read(&file).map_err(|source| ReportError::Read {
            file: file.clone(),
            source,
        })?;
        // An unterminated last line in the newest file is a batch being
        // written (or a crash the next start repairs): left out, and said.
        // Anywhere else it is read: it does not parse, and says where.
        let torn = text.torn();
        let torn = if torn.is_some() && Some(&file) == newest.as_ref() {
            tally.r.torn_tail = true;
            None
        } else {
            torn
        };
        for (n, line) in text.lines().chain(torn) {
            let record = Line::parse(line).map_err(|source| ReportError::Record {
                file: file.clone(),
                line: n,
                source,
            })?;
            tally.add(record);
        }
    }
    Ok(tally.finish())
}

/// The report being built, one record at a time in trail order.
struct Tally {
    r: Report,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
    /// Redirects per (list, name, reference, category).
    entries: BTreeMap<(String, String, String, String), u64>,
    /// Per list, the first serial applied, read from the start of the
    /// trail (before `from` too): it owes no delay.
    first_serial: BTreeMap<String, u64>,
    /// Per list, its deadline in seconds (from its last `applied`).
    deadline: BTreeMap<String, i64>,
    /// The last process event and its time, for the stops.
    last_process: Option<(String, String)>,
    /// The last record's time.
    last_time: String,
    /// Names added, removed and changed per (list, serial), over the whole
    /// trail (a version's `entry` records may fall just past `to`).
    names: BTreeMap<(String, u64), NameCounts>,
    /// Periods without a list that have not ended yet, per list: (from,
    /// reason).
    unfiltered: BTreeMap<String, (String, String)>,
    /// Lists in the order the trail first names them.
    order: Vec<String>,
}

impl Tally {
    fn new(from: Option<OffsetDateTime>, to: Option<OffsetDateTime>) -> Tally {
        let fmt = crate::text::rfc3339;
        Tally {
            r: Report {
                from: from.map(fmt),
                to: to.map(fmt),
                ..Report::default()
            },
            from,
            to,
            entries: BTreeMap::new(),
            first_serial: BTreeMap::new(),
            deadline: BTreeMap::new(),
            last_process: None,
            last_time: String::new(),
            names: BTreeMap::new(),
            unfiltered: BTreeMap::new(),
            order: Vec::new(),
        }
    }

    /// Open or close a period without a list; `previous_time` is the time
    /// of the record before this one (the last of a run that crashed).
    fn track_unfiltered(&mut self, record: &Line, previous_time: &str) {
        match &record.event {
            Event::List(l) if l.event == "unfiltered" => {
                // A second one without a start between cannot be written;
                // if it is there, the first period ends where it starts.
                let list = l.list_id().to_owned();
                self.end_unfiltered(&list, Some(&record.time), UnfilteredEnd::Crashed);
                let reason = l.reason.clone().unwrap_or_default();
                self.unfiltered.insert(list, (record.time.clone(), reason));
            }
            Event::List(l) if l.event == "applied" => {
                let list = l.list_id().to_owned();
                self.end_unfiltered(&list, Some(&record.time), UnfilteredEnd::ListApplied);
            }
            Event::Process(p) if p.event == "stop" => {
                self.end_all_unfiltered(Some(&record.time), UnfilteredEnd::Stopped);
            }
            Event::Process(p) if p.event == "start" => {
                self.end_all_unfiltered(Some(previous_time), UnfilteredEnd::Crashed);
            }
            _ => {}
        }
    }

    /// End every open period without a list.
    fn end_all_unfiltered(&mut self, to: Option<&str>, until: UnfilteredEnd) {
        let lists: Vec<String> = self.unfiltered.keys().cloned().collect();
        for list in lists {
            self.end_unfiltered(&list, to, until);
        }
    }

    /// End the open period without `list`, if any, at `to`; kept if it
    /// overlaps `[from, to)`.
    fn end_unfiltered(&mut self, list: &str, to: Option<&str>, until: UnfilteredEnd) {
        let Some((from, reason)) = self.unfiltered.remove(list) else {
            return;
        };
        let starts_before_end = match (parse_time(&from), self.to) {
            (Some(f), Some(bound)) => f < bound,
            _ => true,
        };
        let ends_after_start = match (to.and_then(parse_time), self.from) {
            (Some(t), Some(bound)) => t > bound,
            _ => true,
        };
        if starts_before_end && ends_after_start {
            self.r.unfiltered.push(Unfiltered {
                list: list.to_owned(),
                from,
                to: to.map(str::to_owned),
                until,
                reason,
            });
        }
    }

    fn add(&mut self, record: Line) {
        let Some(t) = parse_time(&record.time) else {
            return;
        };
        let previous_time = std::mem::replace(&mut self.last_time, record.time.clone());
        self.track_unfiltered(&record, &previous_time);
        let outside = self.from.is_some_and(|f| t < f) || self.to.is_some_and(|to| t >= to);
        let r = &mut self.r;
        match &record.event {
            Event::List(l) => {
                let list = l.list_id().to_owned();
                if !self.order.contains(&list) {
                    self.order.push(list.clone());
                }
                if l.event == "applied" {
                    if let Some(serial) = l.serial {
                        self.first_serial.entry(list.clone()).or_insert(serial);
                    }
                    let hours = l.deadline_hours.unwrap_or(24);
                    self.deadline.insert(list, i64::from(hours) * 3600);
                }
            }
            Event::Process(p) => {
                if p.event == "start"
                    && let Some((event, time)) = &self.last_process
                    && !outside
                {
                    let clean = event == "stop";
                    r.stopped.push(Stopped {
                        from: if clean { time.clone() } else { previous_time },
                        to: record.time.clone(),
                        clean,
                    });
                }
                self.last_process = Some((p.event.clone(), record.time.clone()));
                if p.host.is_some() {
                    r.host.clone_from(&p.host);
                }
            }
            Event::Entry(c) => {
                let n = self
                    .names
                    .entry((c.list_id().to_owned(), c.serial))
                    .or_default();
                match c.change.as_str() {
                    "added" => n.added += 1,
                    "removed" => n.removed += 1,
                    "changed" => n.changed += 1,
                    _ => {}
                }
            }
            _ => {}
        }
        if outside {
            return;
        }
        match record.event {
            Event::Redirect(x) => {
                r.redirects += 1;
                let list = x.list_id().to_owned();
                if !self.order.contains(&list) {
                    self.order.push(list.clone());
                }
                *self
                    .entries
                    .entry((list, x.rule, x.reference, x.category.clone()))
                    .or_default() += 1;
                *r.per_category.entry(x.category).or_default() += 1;
                *r.per_day.entry(record.time[..10].to_owned()).or_default() += 1;
            }
            Event::List(l) if l.event == "applied" => {
                let list = l.list_id().to_owned();
                let issued = l.issued.unwrap_or_default();
                let d = delay(&issued, t);
                let first = l.serial == self.first_serial.get(&list).copied();
                let deadline = deadline_of(&self.deadline, &list);
                r.versions.push(Version {
                    deadline_hours: l.deadline_hours.unwrap_or(24),
                    list,
                    serial: l.serial.unwrap_or_default(),
                    issuer: l.issuer.unwrap_or_default(),
                    digest: l.digest.unwrap_or_default(),
                    delay_seconds: d.max(0),
                    issued,
                    applied: record.time.clone(),
                    key_id: l.key_id.unwrap_or_default(),
                    obligation: Obligation::of(d, first, deadline),
                    names: NameCounts::default(),
                });
            }
            Event::List(l) if l.event == "refused" => r.refused.push(Refused {
                list: l.list_id().to_owned(),
                time: record.time.clone(),
                reason: l.reason.unwrap_or_default(),
            }),
            Event::Entry(c) => {
                let d = delay(&c.issued, t);
                let first = self.first_serial.get(c.list_id()) == Some(&c.serial);
                let obligation = Obligation::of(d, first, deadline_of(&self.deadline, c.list_id()));
                r.changes.push(Change {
                    entry: c,
                    applied: record.time.clone(),
                    delay_seconds: d.max(0),
                    within_24h: d <= OBLIGATION_SECONDS,
                    obligation,
                });
            }
            Event::Loss(l) => r.lost += l.lost,
            _ => {}
        }
    }

    fn finish(mut self) -> Report {
        self.end_all_unfiltered(None, UnfilteredEnd::EndOfTrail);
        let mut r = self.r;
        r.per_entry = self
            .entries
            .into_iter()
            .map(
                |((list, name, reference, category), redirects)| EntryCount {
                    list,
                    name,
                    reference,
                    category,
                    redirects,
                },
            )
            .collect();
        r.per_entry
            .sort_by(|a, b| b.redirects.cmp(&a.redirects).then(a.name.cmp(&b.name)));
        for v in &mut r.versions {
            v.names = self
                .names
                .get(&(v.list.clone(), v.serial))
                .copied()
                .unwrap_or_default();
        }
        r.per_list = self
            .order
            .iter()
            .map(|list| {
                let mut issuers: Vec<String> = Vec::new();
                for v in r.versions.iter().filter(|v| &v.list == list) {
                    if !issuers.contains(&v.issuer) {
                        issuers.push(v.issuer.clone());
                    }
                }
                let late = r
                    .versions
                    .iter()
                    .filter(|v| &v.list == list && v.obligation == Obligation::Late)
                    .count()
                    + r.changes
                        .iter()
                        .filter(|c| c.entry.list_id() == list && c.obligation == Obligation::Late)
                        .count();
                ListSummary {
                    list: list.clone(),
                    issuers,
                    deadline_hours: u32::try_from(deadline_of(&self.deadline, list) / 3600)
                        .unwrap_or(24),
                    redirects: r
                        .per_entry
                        .iter()
                        .filter(|e| &e.list == list)
                        .map(|e| e.redirects)
                        .sum(),
                    versions: r.versions.iter().filter(|v| &v.list == list).count(),
                    late,
                    refused: r.refused.iter().filter(|x| &x.list == list).count(),
                }
            })
            .collect();
        r
    }
}

pub(super) fn duration(s: i64) -> String {
    let s = s.max(0);
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    if d > 0 {
        format!("{d} d {h:02} h {m:02} min")
    } else {
        format!("{h} h {m:02} min")
    }
}

/// What the delay columns mean, for readers who are not engineers.
pub(super) const LEGEND: &str = "Delay: from the time the list says it was issued to the time this resolver applied it (d = days, h = hours, min = minutes). In time: \"yes\" if the list's legal delay was met (its deadline, 24 hours for the LCEN list and for trails that name none); \"NO (late)\" if not; \"n/a: first list\" for the first list of the trail (nothing was in force before it, so no delay is owed); \"n/a: issued later\" when the list's issue time is after the time it was applied (a clock is wrong): no delay is counted.";

/// Human-readable text.
pub fn text(r: &Report) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Rempart audit report, from {} to {}",
        r.from.as_deref().unwrap_or("the start of the trail"),
        r.to.as_deref().unwrap_or("its end")
    );
    let _ = writeln!(o, "\nChain checked first: {}", r.chain.summary());
    if r.torn_tail {
        let _ = writeln!(
            o,
            "The newest file ends with an unterminated line (a record being written): not counted"
        );
    }
    let _ = writeln!(o, "\nRedirects: {}", r.redirects);
    if r.lost > 0 {
        let _ = writeln!(
            o,
            "WARNING: {} audit records were lost (see the loss records)",
            r.lost
        );
    }
    let _ = writeln!(
        o,
        "\nPer list (each list is one authority's, signed by its keys; the first list of the configuration decides a name listed by several):\n  {:<12} {:<32} {:>9} {:>10} {:>9} {:>6} {:>8}",
        "list", "issued by", "deadline", "redirects", "versions", "late", "refused"
    );
    for l in &r.per_list {
        let _ = writeln!(
            o,
            "  {:<12} {:<32} {:>7} h {:>10} {:>9} {:>6} {:>8}",
            l.list,
            l.issuers.join("; "),
            l.deadline_hours,
            l.redirects,
            l.versions,
            l.late,
            l.refused
        );
    }
    let _ = writeln!(
        o,
        "\nPer entry:\n  {:<12} {:<40} {:<24} {:<16} {:>10}",
        "list", "name", "reference", "category", "redirects"
    );
    for e in &r.per_entry {
        let _ = writeln!(
            o,
            "  {:<12} {:<40} {:<24} {:<16} {:>10}",
            e.list, e.name, e.reference, e.category, e.redirects
        );
    }
    let _ = writeln!(o, "\nPer category:");
    for (c, n) in &r.per_category {
        let _ = writeln!(o, "  {c:<24} {n:>10}");
    }
    let _ = writeln!(o, "\nPer day (UTC):");
    for (d, n) in &r.per_day {
        let _ = writeln!(o, "  {d}  {n:>10}");
    }
    let _ = writeln!(o, "\n{LEGEND}");
    let _ = writeln!(
        o,
        "\nList versions applied (names added / removed / changed by each):\n  {:<12} {:<12} {:<22} {:<26} {:>18}  {:<18} {:<16} {:>7} {:>7} {:>7}",
        "list",
        "serial",
        "issued",
        "applied",
        "delay",
        "in time",
        "signed by key",
        "added",
        "removed",
        "changed"
    );
    for v in &r.versions {
        let _ = writeln!(
            o,
            "  {:<12} {:<12} {:<22} {:<26} {:>18}  {:<18} {:<16} {:>7} {:>7} {:>7}",
            v.list,
            v.serial,
            v.issued,
            v.applied,
            duration(v.delay_seconds),
            v.obligation.text(),
            v.key_id,
            v.names.added,
            v.names.removed,
            v.names.changed
        );
    }
    let _ = writeln!(
        o,
        "\nNames added, removed and changed (each within its list's deadline; \"changed\": still blocked, with another match, reference or category, the old ones on the line below):\n  {:<12} {:<8} {:<40} {:<8} {:<24} {:<12} {:>18}  in time",
        "list", "change", "name", "match", "reference", "serial", "delay"
    );
    for c in &r.changes {
        let _ = writeln!(
            o,
            "  {:<12} {:<8} {:<40} {:<8} {:<24} {:<12} {:>18}  {}",
            c.entry.list_id(),
            c.entry.change,
            c.entry.name,
            c.entry.match_kind.as_deref().unwrap_or("-"),
            c.entry.reference,
            c.entry.serial,
            duration(c.delay_seconds),
            c.obligation.text()
        );
        if let Some(was) = &c.entry.was {
            let _ = writeln!(
                o,
                "  {:<12} {:<8} was: match {}, reference {}, category {}; now: match {}, reference {}, category {}",
                "",
                "",
                was.match_kind,
                was.reference,
                was.category,
                c.entry.match_kind.as_deref().unwrap_or("-"),
                c.entry.reference,
                c.entry.category
            );
        }
    }
    let _ = writeln!(o, "\nLists refused: {}", r.refused.len());
    for x in &r.refused {
        let _ = writeln!(o, "  {}  list {}: {}", x.time, x.list, x.reason);
    }
    let _ = writeln!(o, "\nRecords lost: {}", r.lost);
    let _ = writeln!(
        o,
        "\nPeriods the resolver was stopped (nothing was filtered, nothing recorded): {}",
        r.stopped.len()
    );
    for p in &r.stopped {
        let _ = writeln!(
            o,
            "  from {} to {}  {}",
            p.from,
            p.to,
            if p.clean {
                "stopped"
            } else {
                "crashed (unclean stop: records may be lost)"
            }
        );
    }
    let _ = writeln!(
        o,
        "\nPeriods the resolver answered without a list (unfiltered: it started with no valid version of that list, as list.on_missing = \"serve-unfiltered\" allows, and blocked nothing of it): {}",
        r.unfiltered.len()
    );
    for p in &r.unfiltered {
        let length = match p.to.as_deref().and_then(parse_time) {
            Some(to) => parse_time(&p.from).map_or(String::new(), |from| {
                format!(" ({})", duration((to - from).whole_seconds()))
            }),
            None => String::new(),
        };
        let _ = writeln!(
            o,
            "  list {}: from {} to {}{length}  {}; no list because: {}",
            p.list,
            p.from,
            p.to.as_deref().unwrap_or("-"),
            p.until.text(),
            p.reason
        );
    }
    o
}

pub(super) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// The CSV columns, in order ([`CSV_COLUMNS`] names them).
#[derive(Debug, Clone, Copy)]
enum Col {
    Section,
    Name,
    Reference,
    Category,
    Day,
    Count,
    Change,
    Serial,
    Issued,
    Applied,
    DelaySeconds,
    Within24h,
    Match,
    WasMatch,
    WasReference,
    WasCategory,
    Added,
    Removed,
    Changed,
    List,
    DeadlineHours,
}

/// The CSV header, one name per [`Col`]. New columns go at the end, so
/// that a spreadsheet reading columns by position keeps working.
const CSV_COLUMNS: [&str; 21] = [
    "section",
    "name",
    "reference",
    "category",
    "day",
    "count",
    "change",
    "serial",
    "issued",
    "applied",
    "delay_seconds",
    "within_24h",
    "match",
    "was_match",
    "was_reference",
    "was_category",
    "added",
    "removed",
    "changed",
    "list",
    "deadline_hours",
];

/// One CSV row of `section`, the other cells empty but `cells`.
fn csv_row(o: &mut String, section: &str, cells: &[(Col, &str)]) {
    let mut cols = [""; CSV_COLUMNS.len()];
    cols[Col::Section as usize] = section;
    for &(c, v) in cells {
        cols[c as usize] = v;
    }
    let cols: Vec<String> = cols.iter().map(|c| csv_field(c)).collect();
    o.push_str(&cols.join(","));
    o.push('\n');
}

/// CSV: one table, a `section` column saying which part a row belongs to:
/// `chain` (see [`ChainStatus`]), `entry`, `category`, `day`, `version`
/// (`reference` holds the signing key id; `added`, `removed`, `changed`
/// the names it changed), `change` (`match`; for `changed`, `was_match`,
/// `was_reference` and `was_category` the entry before), `refused`
/// (`reference` holds the reason, `applied` the time), `lost` (`count`),
/// `stopped` (`reference` is `clean` or `unclean`, `issued` and `applied`
/// the period), `unfiltered` (`name`: how it ended, see [`UnfilteredEnd`];
/// `reference`: why there was no list; `issued` and `applied` the period,
/// `applied` empty while not ended), `list` (one per list: `list`, `reference`
/// its issuers, `deadline_hours`, `count` its redirects, `serial` the
/// versions applied, `change` how many were late, `removed` how many lists
/// were refused). Every row that belongs to a list has `list`; versions
/// also `deadline_hours`. `within_24h` (the list's deadline, despite the
/// name kept for readers by name) is `met`, `late`, `first_list` (no delay
/// owed) or `issued_later` (no delay counted).
pub fn csv(r: &Report) -> String {
    use Col::*;
    let mut o = CSV_COLUMNS.join(",");
    o.push('\n');
    // The chain: `name` intact or broken, `reference` the head (or the
    // break), `count` the records, `serial` and `applied` the last sealed
    // record and its time.
    let c = &r.chain;
    let sealed_seq = c.sealed_seq.map(|s| s.to_string()).unwrap_or_default();
    csv_row(
        &mut o,
        "chain",
        &[
            (Name, if c.intact { "intact" } else { "broken" }),
            (Reference, c.broken.as_deref().unwrap_or(&c.head)),
            (Count, &c.records.to_string()),
            (Serial, &sealed_seq),
            (Applied, c.sealed_up_to.as_deref().unwrap_or("")),
        ],
    );
    for e in &r.per_entry {
        csv_row(
            &mut o,
            "entry",
            &[
                (Name, &e.name),
                (Reference, &e.reference),
                (Category, &e.category),
                (Count, &e.redirects.to_string()),
                (List, &e.list),
            ],
        );
    }
    for l in &r.per_list {
        csv_row(
            &mut o,
            "list",
            &[
                (List, &l.list),
                (Reference, &l.issuers.join("; ")),
                (DeadlineHours, &l.deadline_hours.to_string()),
                (Count, &l.redirects.to_string()),
                (Serial, &l.versions.to_string()),
                (Change, &l.late.to_string()),
                (Removed, &l.refused.to_string()),
            ],
        );
    }
    for (c, n) in &r.per_category {
        csv_row(
            &mut o,
            "category",
            &[(Category, c), (Count, &n.to_string())],
        );
    }
    for (d, n) in &r.per_day {
        csv_row(&mut o, "day", &[(Day, d), (Count, &n.to_string())]);
    }
    for v in &r.versions {
        csv_row(
            &mut o,
            "version",
            &[
                (Reference, &v.key_id),
                (Serial, &v.serial.to_string()),
                (Issued, &v.issued),
                (Applied, &v.applied),
                (DelaySeconds, &v.delay_seconds.to_string()),
                (Within24h, v.obligation.csv()),
                (Added, &v.names.added.to_string()),
                (Removed, &v.names.removed.to_string()),
                (Changed, &v.names.changed.to_string()),
                (List, &v.list),
                (DeadlineHours, &v.deadline_hours.to_string()),
            ],
        );
    }
    for c in &r.changes {
        let e = &c.entry;
        let was = e.was.as_ref();
        csv_row(
            &mut o,
            "change",
            &[
                (Name, &e.name),
                (Reference, &e.reference),
                (Category, &e.category),
                (Change, &e.change),
                (Serial, &e.serial.to_string()),
                (Issued, &e.issued),
                (Applied, &c.applied),
                (DelaySeconds, &c.delay_seconds.to_string()),
                (Within24h, c.obligation.csv()),
                (Match, e.match_kind.as_deref().unwrap_or("")),
                (WasMatch, was.map_or("", |w| &w.match_kind)),
                (WasReference, was.map_or("", |w| &w.reference)),
                (WasCategory, was.map_or("", |w| &w.category)),
                (List, e.list_id()),
            ],
        );
    }
    for x in &r.refused {
        csv_row(
            &mut o,
            "refused",
            &[(Reference, &x.reason), (Applied, &x.time), (List, &x.list)],
        );
    }
    csv_row(&mut o, "lost", &[(Count, &r.lost.to_string())]);
    for p in &r.stopped {
        let how = if p.clean { "clean" } else { "unclean" };
        csv_row(
            &mut o,
            "stopped",
            &[(Reference, how), (Issued, &p.from), (Applied, &p.to)],
        );
    }
    for p in &r.unfiltered {
        csv_row(
            &mut o,
            "unfiltered",
            &[
                (Name, p.until.csv()),
                (Reference, &p.reason),
                (Issued, &p.from),
                (Applied, p.to.as_deref().unwrap_or("")),
                (List, &p.list),
            ],
        );
    }
    o
}
