//! The audit records of list admission: `list` (applied, refused, expired)
//! and one `entry` per name an applied list added or removed. Each call
//! waits for room in the audit queue: call them off the async workers.

use std::path::Path;
use std::time::SystemTime;

use crate::audit::{Auditor, EntryChange, Event, ListEvent};
use crate::policy::Rule;
use crate::text::{hex, rfc3339};

use super::InForce;

/// The `event` of a `list` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListEventKind {
    /// A list was put in force.
    Applied,
    /// A candidate was refused.
    Refused,
    /// The list in force has expired.
    Expired,
}

impl ListEventKind {
    /// The name written in the record.
    pub fn as_str(self) -> &'static str {
        match self {
            ListEventKind::Applied => "applied",
            ListEventKind::Refused => "refused",
            ListEventKind::Expired => "expired",
        }
    }
}

/// The `change` of an `entry` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryChangeKind {
    /// The name is listed from this list on.
    Added,
    /// The name is no longer listed.
    Removed,
}

impl EntryChangeKind {
    /// The name written in the record.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryChangeKind::Added => "added",
            EntryChangeKind::Removed => "removed",
        }
    }
}

/// A `list applied` record, at `applied` (when the snapshot was swapped
/// in), then one `entry` record per name added or removed (with reference
/// and category).
pub fn applied(
    audit: &Auditor,
    list: &str,
    new: &InForce,
    applied: SystemTime,
    added: &[Rule<'_>],
    removed: &[Rule<'_>],
) {
    let h = &new.header;
    let issued = rfc3339(h.issued);
    audit.record_waiting_at(
        Event::List(ListEvent {
            event: ListEventKind::Applied.as_str().into(),
            list: Some(list.to_owned()),
            serial: Some(h.serial),
            digest: Some(hex(&new.digest)),
            issuer: Some(h.issuer.clone()),
            issued: Some(issued.clone()),
            expires: Some(rfc3339(h.expires)),
            key_id: Some(new.key_id.clone()),
            entries: Some(new.entries),
            added: Some(added.len()),
            removed: Some(removed.len()),
            ..ListEvent::default()
        }),
        applied,
    );
    for (change, rules) in [
        (EntryChangeKind::Added, added),
        (EntryChangeKind::Removed, removed),
    ] {
        for r in rules {
            audit.record_waiting(Event::Entry(EntryChange {
                change: change.as_str().into(),
                list: Some(list.to_owned()),
                name: r.name.to_owned(),
                reference: r.reference().to_owned(),
                category: r.category.to_owned(),
                serial: h.serial,
                issued: issued.clone(),
            }));
        }
    }
}

/// A `list refused` record: where the candidate came from, and why.
pub fn refused(audit: &Auditor, list: &str, source: &Path, reason: &str) {
    audit.record_waiting(Event::List(ListEvent {
        event: ListEventKind::Refused.as_str().into(),
        list: Some(list.to_owned()),
        source: Some(source.display().to_string()),
        reason: Some(reason.to_owned()),
        ..ListEvent::default()
    }));
}

/// A `list expired` record for the list in force.
pub fn expired(audit: &Auditor, list: &str, in_force: &InForce) {
    let h = &in_force.header;
    audit.record_waiting(Event::List(ListEvent {
        event: ListEventKind::Expired.as_str().into(),
        list: Some(list.to_owned()),
        serial: Some(h.serial),
        digest: Some(hex(&in_force.digest)),
        issuer: Some(h.issuer.clone()),
        expires: Some(rfc3339(h.expires)),
        ..ListEvent::default()
    }));
}
