//! Proving what was decided: the tamper-evident audit trail.
//!
//! # Format (schema version 2)
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
//! - `v`: the schema version (2; version 1 lacked the `seal` kind, and its
//!   records still read and verify, in the same chain).
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
//!     (`redirect`, `nodata` or `cname`), `transport` (`udp`, `tcp`, `dot`, `doh`), and
//!     `client` per `audit.client_ip` (absent with `none`);
//!   - `list`: `event` (`applied`, `refused`, `expired`, `unfiltered`),
//!     and for applied:
//!     `serial`, `digest`, `issuer`, `issued`, `expires`, `key_id`,
//!     `entries`, `added`, `removed`, `changed` (`time` is when it was
//!     swapped in);
//!     for refused: `source` (the file, or `<pushed list>`), `reason`; for
//!     expired: `serial`, `digest`, `issuer`, `expires` (the list stays in
//!     force until a newer one); for unfiltered (at start, no list at all
//!     and `list.on_missing = "serve-unfiltered"`: answers are not filtered
//!     until the next `applied`, or the stop): `reason`;
//!   - `entry`: one per name added, removed or changed by an applied
//!     list: `change` (`added`, `removed`, `changed`: the name stays
//!     listed with another match kind, reference or category), `name`,
//!     `match`, `reference`, `category`, `serial` and `issued` of the list
//!     that made the change (the report's evidence for the 24-hour
//!     obligations), and for `changed`, `was`: the `match`, `reference`
//!     and `category` before (`changed`, `match` and `was` came later
//!     within version 2, adding without changing a meaning: older records
//!     lack them and still read, older readers skip them);
//!   - `process`: `event` (`start`, `stop`), `version`, `pid`, `host`
//!     (version 2);
//!   - `loss`: `lost` (records that could not be written: queue full or disk
//!     failure), `reason`. The gap is in the chain for the auditor to see;
//!   - `seal` (version 2): the end of a sealing epoch, right after the
//!     record it seals: `trail`, `epoch`, `head_seq`, `head`, `from_seq`,
//!     `next_key`, `sig` ([`seal`] says what they prove);
//!   - `clock` (version 2): the wall clock jumped: `jump` (`backwards`,
//!     `forward`), `seconds`, `before`, `reason`. At start, a clock behind
//!     the last record, or more than a day past it (downtime looks the
//!     same: the record says so); while running, a clock that moved more
//!     than five minutes away from the monotonic clock.
//!
//! # Faults leave evidence
//!
//! A marker file (`writer.running` in the directory) exists while the
//! writer runs and is removed at a clean stop: found at start, it means
//! the last run ended in a crash, a SIGKILL or a power loss, and a `loss`
//! record says so (the records still queued then are lost, their number
//! unknown). Retention never deletes by the clock alone: it counts from
//! the newest record's day, capped by the last record found at start plus
//! the time the process has run (monotonic), so a clock far ahead deletes
//! nothing; and a file is never named for a day before the last file's.
//!
//! # Privacy
//!
//! `audit.client_ip`: `none` (default: no client field), `truncate` (/24 for
//! IPv4, /56 for IPv6), `hmac` (HMAC-SHA-256 of the address under a random
//! key made in memory each UTC day and never written anywhere: one day's
//! records link a client, days do not; a restart starts a new key), `full`.

//!
//! # Modules
//!
//! One job each, and one code for writing and reading: [`record`] (what a
//! line says, and parsing it back), [`chain`] (serialising lines, each
//! naming the SHA-256 of the one before), [`trail`] (the files: names,
//! listing, reading, rotation, retention), `privacy` (the client address
//! modes), [`writer`] (the bounded queue and the thread that writes),
//! [`seal`] (forward-secure seals: the key, the seal log, checking them, and
//! the writer's side in `seal::sealer`), [`verify`] and [`report`] (which
//! read the trail through `trail`, `record` and `chain`, as the writer
//! does), and [`fleet`] (several resolvers' reports together).

pub mod chain;
pub mod fleet;
mod privacy;
pub mod record;
pub mod report;
pub mod seal;
pub mod trail;
pub mod verify;
pub mod writer;

pub use record::{
    ClockJump, EntryChange, EntryTerms, Event, Line, ListEvent, Loss, Process, RedirectRecord,
    RedirectRef, SCHEMA_VERSION,
};
pub use writer::{AuditError, AuditSettings, Auditor};
