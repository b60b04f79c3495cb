//! `rempart audit report DIR [--from T] [--to T] [--format text|json|csv]`.
//!
//! Redirects per entry (with reference and category), per category and per
//! day; the list versions applied, with the delay from `issued` to applied;
//! and every name added or removed, with the same delay: the evidence for
//! the 24-hour obligations (block within 24 hours of notification, restore
//! within 24 hours of delisting).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use time::OffsetDateTime;

use super::record::{EntryChange, Event, Line, NotARecord, parse_time};
use super::trail::{self, TrailFile};

/// The law's delay: 24 hours.
pub const OBLIGATION_SECONDS: i64 = 24 * 3600;

/// Redirects of one entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntryCount {
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
    /// Seconds from `issued` to applied.
    pub delay_seconds: i64,
}

/// A name added or removed, with when it took effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The `entry` record: the change, the name, its reference and
    /// category, the list that made it and that list's `issued`.
    #[serde(flatten)]
    pub entry: EntryChange,
    /// When applied.
    pub applied: String,
    /// Seconds from `issued` to applied.
    pub delay_seconds: i64,
    /// True when the delay is within 24 hours.
    pub within_24h: bool,
}

/// A refused list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refused {
    /// When.
    pub time: String,
    /// Why.
    pub reason: String,
}

/// The report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
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
    /// Names added and removed.
    pub changes: Vec<Change>,
    /// Lists refused.
    pub refused: Vec<Refused>,
    /// Records lost (from `loss` records).
    pub lost: u64,
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
    let fmt = crate::text::rfc3339;
    let mut r = Report {
        from: from.map(fmt),
        to: to.map(fmt),
        ..Report::default()
    };
    let mut entries: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for file in files {
        let text = TrailFile::read(&file).map_err(|source| ReportError::Read {
            file: file.clone(),
            source,
        })?;
        // A torn last line is read too: it does not parse, and says where.
        for (n, line) in text.lines().chain(text.torn()) {
            let record = Line::parse(line).map_err(|source| ReportError::Record {
                file: file.clone(),
                line: n,
                source,
            })?;
            let Some(t) = parse_time(&record.time) else {
                continue;
            };
            if from.is_some_and(|f| t < f) || to.is_some_and(|to| t >= to) {
                continue;
            }
            match record.event {
                Event::Redirect(x) => {
                    r.redirects += 1;
                    *entries
                        .entry((x.rule, x.reference, x.category.clone()))
                        .or_default() += 1;
                    *r.per_category.entry(x.category).or_default() += 1;
                    *r.per_day.entry(record.time[..10].to_owned()).or_default() += 1;
                }
                Event::List(l) if l.event == "applied" => {
                    let issued = l.issued.unwrap_or_default();
                    r.versions.push(Version {
                        serial: l.serial.unwrap_or_default(),
                        issuer: l.issuer.unwrap_or_default(),
                        digest: l.digest.unwrap_or_default(),
                        delay_seconds: delay(&issued, t),
                        issued,
                        applied: record.time.clone(),
                    });
                }
                Event::List(l) if l.event == "refused" => r.refused.push(Refused {
                    time: record.time.clone(),
                    reason: l.reason.unwrap_or_default(),
                }),
                Event::Entry(c) => {
                    let d = delay(&c.issued, t);
                    r.changes.push(Change {
                        entry: c,
                        applied: record.time.clone(),
                        delay_seconds: d,
                        within_24h: d <= OBLIGATION_SECONDS,
                    });
                }
                Event::Loss(l) => r.lost += l.lost,
                _ => {}
            }
        }
    }
    r.per_entry = entries
        .into_iter()
        .map(|((name, reference, category), redirects)| EntryCount {
            name,
            reference,
            category,
            redirects,
        })
        .collect();
    r.per_entry
        .sort_by(|a, b| b.redirects.cmp(&a.redirects).then(a.name.cmp(&b.name)));
    Ok(r)
}

fn duration(s: i64) -> String {
    let sign = if s < 0 { "-" } else { "" };
    let s = s.abs();
    format!("{sign}{}h{:02}m{:02}s", s / 3600, (s % 3600) / 60, s % 60)
}

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
        "\nPer entry:\n  {:<40} {:<24} {:<16} {:>10}",
        "name", "reference", "category", "redirects"
    );
    for e in &r.per_entry {
        let _ = writeln!(
            o,
            "  {:<40} {:<24} {:<16} {:>10}",
            e.name, e.reference, e.category, e.redirects
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
    let _ = writeln!(
        o,
        "\nList versions applied:\n  {:<12} {:<22} {:<26} {:>12}",
        "serial", "issued", "applied", "delay"
    );
    for v in &r.versions {
        let _ = writeln!(
            o,
            "  {:<12} {:<22} {:<26} {:>12}",
            v.serial,
            v.issued,
            v.applied,
            duration(v.delay_seconds)
        );
    }
    let _ = writeln!(
        o,
        "\nNames added and removed (24-hour obligations):\n  {:<8} {:<40} {:<24} {:<12} {:>12}  within 24 h",
        "change", "name", "reference", "serial", "delay"
    );
    for c in &r.changes {
        let _ = writeln!(
            o,
            "  {:<8} {:<40} {:<24} {:<12} {:>12}  {}",
            c.entry.change,
            c.entry.name,
            c.entry.reference,
            c.entry.serial,
            duration(c.delay_seconds),
            if c.within_24h { "yes" } else { "NO" }
        );
    }
    if !r.refused.is_empty() {
        let _ = writeln!(o, "\nLists refused:");
        for x in &r.refused {
            let _ = writeln!(o, "  {}  {}", x.time, x.reason);
        }
    }
    o
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// CSV: one table, a `section` column saying which part a row belongs to.
pub fn csv(r: &Report) -> String {
    let mut o = String::from(
        "section,name,reference,category,day,count,change,serial,issued,applied,delay_seconds,within_24h\n",
    );
    let row = |o: &mut String, cols: [&str; 12]| {
        let cols: Vec<String> = cols.iter().map(|c| csv_field(c)).collect();
        o.push_str(&cols.join(","));
        o.push('\n');
    };
    for e in &r.per_entry {
        row(
            &mut o,
            [
                "entry",
                &e.name,
                &e.reference,
                &e.category,
                "",
                &e.redirects.to_string(),
                "",
                "",
                "",
                "",
                "",
                "",
            ],
        );
    }
    for (c, n) in &r.per_category {
        row(
            &mut o,
            [
                "category",
                "",
                "",
                c,
                "",
                &n.to_string(),
                "",
                "",
                "",
                "",
                "",
                "",
            ],
        );
    }
    for (d, n) in &r.per_day {
        row(
            &mut o,
            ["day", "", "", "", d, &n.to_string(), "", "", "", "", "", ""],
        );
    }
    for v in &r.versions {
        row(
            &mut o,
            [
                "version",
                "",
                "",
                "",
                "",
                "",
                "",
                &v.serial.to_string(),
                &v.issued,
                &v.applied,
                &v.delay_seconds.to_string(),
                "",
            ],
        );
    }
    for c in &r.changes {
        row(
            &mut o,
            [
                "change",
                &c.entry.name,
                &c.entry.reference,
                &c.entry.category,
                "",
                "",
                &c.entry.change,
                &c.entry.serial.to_string(),
                &c.entry.issued,
                &c.applied,
                &c.delay_seconds.to_string(),
                if c.within_24h { "yes" } else { "no" },
            ],
        );
    }
    o
}
