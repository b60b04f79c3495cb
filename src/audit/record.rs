//! What a record says: the schema of one line of the trail (version
//! [`SCHEMA_VERSION`]), and the one way a line is read back.
//!
//! The writer serialises lines in [`super::chain`] (a fast path for
//! redirects, serde for the rest, the same bytes either way); everything that
//! reads the trail, the writer reopening it included, parses a line with
//! [`Line::parse`].

use serde::{Deserialize, Serialize};

/// The schema version written in `v`. Version 2 added the `seal` and
/// `clock` kinds and `host` in `process` records;
/// readers accept every version from 1 ([`is_known_version`]), as a trail
/// written before an upgrade goes on in the same chain.
pub const SCHEMA_VERSION: u32 = 2;

/// True if `v` is a schema version this code reads (1 to
/// [`SCHEMA_VERSION`]: each version only adds kinds and fields).
pub fn is_known_version(v: u32) -> bool {
    (1..=SCHEMA_VERSION).contains(&v)
}

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

/// A line of the trail that is not an audit record.
#[derive(Debug, thiserror::Error)]
#[error("not an audit record: {0}")]
pub struct NotARecord(
    /// What the JSON parser says, with the column.
    #[from]
    pub serde_json::Error,
);

impl Line {
    /// Read one line of the trail (its bytes without the newline).
    pub fn parse(line: &[u8]) -> Result<Line, NotARecord> {
        Ok(serde_json::from_slice(line)?)
    }
}

/// What a record says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A redirected query.
    Redirect(RedirectRecord),
    /// A list applied, refused or expired.
    List(ListEvent),
    /// A name added or removed by an applied list.
    Entry(EntryChange),
    /// The process started or stopped.
    Process(Process),
    /// Records that could not be written.
    Loss(Loss),
    /// The end of a sealing epoch (schema version 2): the chain head
    /// signed by the epoch's key (see [`crate::audit::seal`]).
    Seal(crate::audit::seal::SealRecord),
    /// The clock jumped (schema version 2).
    Clock(ClockJump),
}

/// The wall clock jumped: record times around it do not measure time, and
/// retention does not count across it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockJump {
    /// `backwards` or `forward`.
    pub jump: String,
    /// Seconds the clock moved beyond what elapsed (negative: backwards);
    /// at start, the whole gap since the last record (downtime included).
    pub seconds: i64,
    /// The time the clock gave before the jump (at start: the last
    /// record's time).
    pub before: String,
    /// How it was seen.
    pub reason: String,
}

/// A redirected query, as the trail records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RedirectRecord {
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
    /// The id of the list that decided (absent in records written before
    /// several lists: those are list `main`'s, see [`RedirectRecord::list_id`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<String>,
    /// Serial of that list in force.
    pub serial: u64,
    /// Digest of that list in force.
    pub digest: String,
    /// `redirect` (A/AAAA), `nodata`, `cname` or `nxdomain`.
    pub answer: String,
    /// `udp` or `tcp`.
    pub transport: String,
    /// The client, per `audit.client_ip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

/// The list of a record that names none: one written before several
/// lists, when the only list was `main`.
fn list_or_main(list: &Option<String>) -> &str {
    list.as_deref().unwrap_or(crate::config::MAIN_LIST)
}

impl RedirectRecord {
    /// The id of the list that decided (`main` for an older record).
    pub fn list_id(&self) -> &str {
        list_or_main(&self.list)
    }
}

impl ListEvent {
    /// The id of the list (`main` for an older record).
    pub fn list_id(&self) -> &str {
        list_or_main(&self.list)
    }
}

impl EntryChange {
    /// The id of the list (`main` for an older record).
    pub fn list_id(&self) -> &str {
        list_or_main(&self.list)
    }
}

/// A list event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListEvent {
    /// `applied`, `refused`, `expired`, `unfiltered` (no list at start:
    /// answers not filtered until the next `applied`).
    pub event: String,
    /// The list's id (absent in records written before several lists: see
    /// [`ListEvent::list_id`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<String>,
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
    /// Names kept with another match kind, category or reference (absent
    /// from records written before changes were recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<usize>,
    /// The list's legal delay in hours, as configured when it was applied
    /// (`applied` records; absent from records written before several
    /// lists: 24).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_hours: Option<u32>,
    /// Where a refused list came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Why it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A name added, removed or changed by an applied list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryChange {
    /// `added`, `removed` or `changed` (the name stays listed, with
    /// another match kind, category or reference).
    pub change: String,
    /// The list's id (absent in records written before several lists: see
    /// [`EntryChange::list_id`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list: Option<String>,
    /// The name.
    pub name: String,
    /// The entry's match kind, `subtree` or `exact` (absent from records
    /// written before it was recorded).
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    pub match_kind: Option<String>,
    /// The entry's reference.
    pub reference: String,
    /// The entry's category.
    pub category: String,
    /// Serial of the list that made the change.
    pub serial: u64,
    /// `issued` of that list.
    pub issued: String,
    /// For `changed`: the entry as the list before had it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub was: Option<EntryTerms>,
}

/// What an entry said before a change: its match kind, reference and
/// category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryTerms {
    /// `subtree` or `exact`.
    #[serde(rename = "match")]
    pub match_kind: String,
    /// The reference.
    pub reference: String,
    /// The category.
    pub category: String,
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
    /// The machine's host name (schema version 2: trails of a fleet are
    /// told apart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl Process {
    /// This process's `event` (`start` or `stop`) record.
    pub fn now(event: &str) -> Process {
        Process {
            event: event.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid: std::process::id(),
            host: host_name(),
        }
    }
}

/// The host name the kernel gives (Linux: `/proc/sys/kernel/hostname`,
/// else `/etc/hostname`).
pub fn host_name() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
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
/// [`RedirectRecord`] line, so that the audit trail costs the query path one
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
    /// `redirect`, `nodata`, `cname` or `nxdomain`.
    pub answer: &'static str,
    /// How the query came.
    pub transport: crate::proto::Transport,
}

impl RedirectRef {
    /// `udp`, `tcp`, `dot` or `doh`, as written in `transport`.
    pub fn transport(&self) -> &'static str {
        self.transport.as_str()
    }

    /// The record, without the client (the writer adds it).
    pub fn to_event(&self) -> Event {
        let rule = self.policy.rule_at(self.index);
        let info = self.policy.info();
        Event::Redirect(RedirectRecord {
            qname: self.qname.to_string(),
            qtype: self.qtype.to_string(),
            rule: rule.map(|r| r.name.to_owned()).unwrap_or_default(),
            reference: rule.map(|r| r.reference().to_owned()).unwrap_or_default(),
            category: rule.map(|r| r.category.to_owned()).unwrap_or_default(),
            list: Some(self.policy.list().to_owned()),
            serial: info.map_or(0, |i| i.serial),
            digest: info.map(|i| i.digest_hex.clone()).unwrap_or_default(),
            answer: self.answer.to_owned(),
            transport: self.transport().to_owned(),
            client: None,
        })
    }
}

/// `time` as written in a record, and read back: see [`crate::text`].
pub use crate::text::{parse_record_time as parse_time, record_time as format_time};
