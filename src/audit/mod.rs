//! Proving what was decided: the tamper-evident audit trail.
//!
//! # Format (schema version 1)
//!
//! The trail is a directory of JSON Lines files named
//! `rempart-audit-YYYYMMDD-NNN.jsonl` (UTC date, then a sequence number
//! within the day), so that their names sort in the order they were
//! written. Every line is one record:
//!
//! ```json
//! {"v":1,"seq":7,"time":"2026-11-22T10:00:00.123Z","prev":"<64 hex>","kind":"redirect",...}
//! ```
//!
//! - `v`: the schema version (1).
//! - `seq`: the record's number in the trail, +1 per record, across files.
//! - `time`: when the event happened (UTC, milliseconds).
//! - `prev`: SHA-256 (hex) of the previous record's line (its bytes without
//!   the newline); 64 zeros for the first record of a new trail. The first
//!   record of a file names the last record of the previous file, so an
//!   edited byte, a deleted or inserted line, a reordering or a removed file
//!   breaks the chain, and `rempart audit verify` names where.
//! - `kind` and the fields of that kind:
//!   - `redirect`: `qname`, `qtype`, `rule` (the entry's name), `reference`,
//!     `category`, `serial` and `digest` (the list in force), `answer`
//!     (`redirect`, `nodata` or `cname`), `transport` (`udp`, `tcp`), and
//!     `client` per `audit.client_ip` (absent with `none`);
//!   - `list`: `event` (`applied`, `refused`, `expired`), and for applied:
//!     `serial`, `digest`, `issuer`, `issued`, `expires`, `key_id`,
//!     `entries`, `added`, `removed` (`time` is when it was swapped in);
//!     for refused: `source` (the file, or `<pushed list>`), `reason`; for
//!     expired: `serial`, `digest`, `issuer`, `expires` (the list stays in
//!     force until a newer one);
//!   - `entry`: one per name added or removed by an applied list: `change`
//!     (`added`, `removed`), `name`, `reference`, `category`, `serial` and
//!     `issued` of the list that made the change (the report's evidence for
//!     the 24-hour obligations);
//!   - `process`: `event` (`start`, `stop`), `version`, `pid`;
//!   - `loss`: `lost` (records that could not be written: queue full or disk
//!     failure), `reason`. The gap is in the chain for the auditor to see.
//!
//! # Privacy
//!
//! `audit.client_ip`: `none` (default: no client field), `truncate` (/24 for
//! IPv4, /56 for IPv6), `hmac` (HMAC-SHA-256 of the address under a random
//! key made in memory each UTC day and never written anywhere: one day's
//! records link a client, days do not; a restart starts a new key), `full`.

pub mod report;
pub mod seal;
pub mod verify;
pub mod writer;

use std::net::IpAddr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

pub use writer::{AuditSettings, Auditor};

/// The schema version written in `v`.
pub const SCHEMA_VERSION: u32 = 1;
/// `prev` of the first record of a trail.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// File names: `PREFIX` + `YYYYMMDD-NNN` + `SUFFIX`.
pub const FILE_PREFIX: &str = "rempart-audit-";
/// File name suffix.
pub const FILE_SUFFIX: &str = ".jsonl";

/// One line of the trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// Schema version.
    pub v: u32,
    /// Record number.
    pub seq: u64,
    /// Event time, RFC 3339 UTC with milliseconds.
    pub time: String,
    /// SHA-256 of the previous line.
    pub prev: String,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
}

/// What a record says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A redirected query.
    Redirect(Redirect),
    /// A list applied, refused or expired.
    List(ListEvent),
    /// A name added or removed by an applied list.
    Entry(EntryChange),
    /// The process started or stopped.
    Process(Process),
    /// Records that could not be written.
    Loss(Loss),
}

/// A redirected query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Redirect {
    /// The name asked (as sent).
    pub qname: String,
    /// The query type.
    pub qtype: String,
    /// The entry that matched.
    pub rule: String,
    /// The entry's reference.
    pub reference: String,
    /// The entry's category.
    pub category: String,
    /// Serial of the list in force.
    pub serial: u64,
    /// Digest of the list in force.
    pub digest: String,
    /// `redirect` (A/AAAA), `nodata`, or `cname`.
    pub answer: String,
    /// `udp` or `tcp`.
    pub transport: String,
    /// The client, per `audit.client_ip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

/// A list event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListEvent {
    /// `applied`, `refused`, `expired`.
    pub event: String,
    /// Serial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<u64>,
    /// SHA-256 of the list, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Header `issuer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Header `issued`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued: Option<String>,
    /// Header `expires`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// Signing key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// Entries of the list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<usize>,
    /// Names added since the previous list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added: Option<usize>,
    /// Names removed since the previous list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<usize>,
    /// Where a refused list came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Why it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A name added or removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryChange {
    /// `added` or `removed`.
    pub change: String,
    /// The name.
    pub name: String,
    /// The entry's reference.
    pub reference: String,
    /// The entry's category.
    pub category: String,
    /// Serial of the list that made the change.
    pub serial: u64,
    /// `issued` of that list.
    pub issued: String,
}

/// Process start or stop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Process {
    /// `start` or `stop`.
    pub event: String,
    /// Rempart's version.
    pub version: String,
    /// Process id.
    pub pid: u32,
}

/// Records lost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Loss {
    /// How many.
    pub lost: u64,
    /// Why.
    pub reason: String,
}

/// A redirect as the query path hands it over: the name, the type and the
/// policy entry, nothing formatted. The writer thread turns it into a
/// [`Redirect`] record, so that the audit trail costs the query path one
/// queue push, not a dozen strings.
#[derive(Debug)]
pub struct RedirectRef {
    /// The name asked, as sent.
    pub qname: hickory_proto::rr::Name,
    /// The query type.
    pub qtype: hickory_proto::rr::RecordType,
    /// The snapshot that decided (kept alive until written).
    pub policy: std::sync::Arc<crate::policy::Policy>,
    /// The entry that matched, in `policy`.
    pub index: u32,
    /// `redirect`, `nodata` or `cname`.
    pub answer: &'static str,
    /// TCP (else UDP).
    pub tcp: bool,
}

impl RedirectRef {
    /// The record, without the client (the writer adds it).
    pub fn to_event(&self) -> Event {
        let rule = self.policy.rule_at(self.index);
        let info = self.policy.info();
        Event::Redirect(Redirect {
            qname: self.qname.to_string(),
            qtype: self.qtype.to_string(),
            rule: rule.map(|r| r.name.to_owned()).unwrap_or_default(),
            reference: rule.map(|r| r.reference().to_owned()).unwrap_or_default(),
            category: rule.map(|r| r.category.to_owned()).unwrap_or_default(),
            serial: info.map_or(0, |i| i.serial),
            digest: info.map(|i| i.digest_hex.clone()).unwrap_or_default(),
            answer: self.answer.to_owned(),
            transport: if self.tcp { "tcp" } else { "udp" }.to_owned(),
            client: None,
        })
    }
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

/// SHA-256 of a line, hex.
pub fn line_hash(line: &[u8]) -> String {
    String::from_utf8_lossy(&line_hash_hex(line)).into_owned()
}

/// SHA-256 of a line, as 64 ASCII hex digits (no allocation).
pub fn line_hash_hex(line: &[u8]) -> [u8; 64] {
    use sha2::Digest;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = sha2::Sha256::digest(line);
    let mut out = [0u8; 64];
    for (i, b) in digest.iter().enumerate() {
        out[2 * i] = HEX[usize::from(b >> 4)];
        out[2 * i + 1] = HEX[usize::from(b & 15)];
    }
    out
}

/// RFC 3339 UTC with milliseconds.
pub fn format_time(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&fmt).unwrap_or_default()
}

/// Parse a `time` field.
pub fn parse_time(s: &str) -> Option<time::OffsetDateTime> {
    crate::text::parse_rfc3339(s).ok()
}

/// The trail's files in order.
pub fn trail_files(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(FILE_PREFIX) && n.ends_with(FILE_SUFFIX))
        })
        .collect();
    files.sort();
    Ok(files)
}
