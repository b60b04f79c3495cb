//! The audit records of list admission: `list` (applied, refused, expired,
//! unfiltered) and one `entry` per name an applied list added, removed or
//! changed. Each call waits for room in the audit queue: call them off the
//! async workers.

use std::path::Path;
use std::time::SystemTime;

use crate::audit::{Auditor, EntryChange, EntryTerms, Event, ListEvent};
use crate::policy::{Changes, Rule};
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
    /// No list at all at start, and `list.on_missing = "serve-unfiltered"`:
    /// the resolver answers without filtering until a list is applied.
    Unfiltered,
}

impl ListEventKind {
    /// The name written in the record.
    pub fn as_str(self) -> &'static str {
        match self {
            ListEventKind::Applied => "applied",
            ListEventKind::Refused => "refused",
            ListEventKind::Expired => "expired",
            ListEventKind::Unfiltered => "unfiltered",
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
    /// The name stays listed, with another match kind, category or
    /// reference.
    Changed,
}

impl EntryChangeKind {
    /// The name written in the record.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryChangeKind::Added => "added",
            EntryChangeKind::Removed => "removed",
            EntryChangeKind::Changed => "changed",
        }
    }
}

/// A `list applied` record, at `applied` (when the snapshot was swapped
/// in), then one `entry` record per name added, removed or changed (with
/// match kind, reference and category, and for a change the old ones).
pub fn applied(
    audit: &Auditor,
    list: &str,
    deadline_hours: u32,
    new: &InForce,
    applied: SystemTime,
    changes: &Changes<'_>,
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
            added: Some(changes.counts().0),
            removed: Some(changes.counts().1),
            changed: Some(changes.counts().2),
            deadline_hours: Some(deadline_hours),
            ..ListEvent::default()
        }),
        applied,
    );
    let entry = |change: EntryChangeKind, r: &Rule<'_>, was: Option<&Rule<'_>>| {
        Event::Entry(EntryChange {
            change: change.as_str().into(),
            list: Some(list.to_owned()),
            name: r.name.to_owned(),
            match_kind: Some(r.kind.as_str().to_owned()),
            reference: r.reference().to_owned(),
            category: r.category.to_owned(),
            serial: h.serial,
            issued: issued.clone(),
            was: was.map(|o| EntryTerms {
                match_kind: o.kind.as_str().to_owned(),
                reference: o.reference().to_owned(),
                category: o.category.to_owned(),
            }),
        })
    };
    for r in changes.added() {
        audit.record_waiting(entry(EntryChangeKind::Added, &r, None));
    }
    for r in changes.removed() {
        audit.record_waiting(entry(EntryChangeKind::Removed, &r, None));
    }
    for (r, old) in changes.changed() {
        audit.record_waiting(entry(EntryChangeKind::Changed, &r, Some(&old)));
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

/// A `list unfiltered` record: the resolver starts serving without any
/// list (`list.on_missing = "serve-unfiltered"`), and why there is none.
/// The period lasts until the next `list applied`, or the stop.
pub fn unfiltered(audit: &Auditor, list: &str, reason: &str) {
    audit.record_waiting(Event::List(ListEvent {
        event: ListEventKind::Unfiltered.as_str().into(),
        list: Some(list.to_owned()),
        reason: Some(reason.to_owned()),
        ..ListEvent::default()
    }));
}
