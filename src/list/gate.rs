//! The gates a verified list must pass before it is applied (BEHAVIOUR
//! section 4). Each refusal names the line and the reason.
//!
//! The entry gates work one entry at a time ([`check_entry`]), so the load
//! path applies them while it reads, without keeping the entries.

use std::collections::{HashMap, HashSet};

use time::{Duration, OffsetDateTime};

use super::format::{EntryRef, HeaderRefusal};
use super::{Header, List, MatchKind};
use crate::text::rfc3339;

/// How far in the future `issued` may be (clock skew between the authority
/// and the resolver).
pub const MAX_ISSUED_SKEW: Duration = Duration::minutes(5);

/// Not expired, and not issued in the future beyond [`MAX_ISSUED_SKEW`];
/// a refusal names the key it is about.
pub fn check_header(header: &Header, now: OffsetDateTime) -> Result<(), HeaderRefusal> {
    // The clock to the second in messages; the comparisons use it whole.
    let now_text = || rfc3339(now.replace_nanosecond(0).unwrap_or(now));
    if header.expires <= now {
        return Err(HeaderRefusal {
            key: "expires",
            reason: format!(
                "expired: expires {} is not after now ({})",
                rfc3339(header.expires),
                now_text()
            ),
        });
    }
    if header.issued > now + MAX_ISSUED_SKEW {
        return Err(HeaderRefusal {
            key: "issued",
            reason: format!(
                "issued {} is in the future (more than {} minutes ahead of this clock, {})",
                rfc3339(header.issued),
                MAX_ISSUED_SKEW.whole_minutes(),
                now_text()
            ),
        });
    }
    Ok(())
}

/// The protected names, indexed so that each entry costs two lookups:
/// an entry equal to a protected name, or a subtree entry equal to one of
/// its ancestors, is refused.
#[derive(Debug, Clone, Default)]
pub struct Protected {
    names: HashSet<String>,
    /// Proper ancestor -> the protected name below it.
    ancestors: HashMap<String, String>,
}

impl Protected {
    /// Index canonical protected names.
    pub fn new(names: &[String]) -> Protected {
        let mut p = Protected::default();
        for name in names {
            p.names.insert(name.clone());
            let mut rest = name.as_str();
            while let Some((_, parent)) = rest.split_once('.') {
                p.ancestors
                    .entry(parent.to_owned())
                    .or_insert_with(|| name.clone());
                rest = parent;
            }
        }
        p
    }

    /// `Err` if an entry `name` of `kind` would redirect a protected name.
    /// An entry below a protected name is allowed (`someblog.wordpress.com`
    /// under a protected `wordpress.com`).
    pub fn check(&self, name: &str, kind: MatchKind) -> Result<(), String> {
        let hit = if self.names.contains(name) {
            Some(name)
        } else if kind == MatchKind::Subtree {
            self.ancestors.get(name).map(String::as_str)
        } else {
            None
        };
        match hit {
            Some(p) => Err(format!(
                "{name:?} would redirect the protected name {p:?} (the October 2016 failure); the whole list is refused"
            )),
            None => Ok(()),
        }
    }
}

/// No top-level domain or public suffix (`com`, `co.uk`, `blogspot.com`):
/// blocking one blocks every site registered under it. The Public Suffix
/// List is the one built into the `psl` crate.
pub fn check_public_suffix(name: &str) -> Result<(), String> {
    if !name.contains('.') {
        return Err(format!(
            "{name:?} is a top-level domain; the whole list is refused"
        ));
    }
    if let Some(suffix) = psl::suffix(name.as_bytes())
        && suffix.is_known()
        && suffix.as_bytes() == name.as_bytes()
    {
        return Err(format!(
            "{name:?} is a public suffix (every name registered under it would be blocked); the whole list is refused"
        ));
    }
    Ok(())
}

/// Every entry gate: public suffixes, protected names.
pub fn check_entry(e: &EntryRef<'_>, protected: &Protected) -> Result<(), String> {
    check_public_suffix(&e.name)?;
    protected.check(&e.name, e.kind)
}

/// Every gate on a parsed list: dates, public suffixes, protected names;
/// entry refusals name their line.
pub fn check_content(list: &List, protected: &[String], now: OffsetDateTime) -> Result<(), String> {
    check_header(&list.header, now).map_err(|r| r.reason)?;
    let protected = Protected::new(protected);
    for e in &list.entries {
        check_public_suffix(&e.name)
            .and_then(|()| protected.check(&e.name, e.kind))
            .map_err(|r| format!("line {}: {r}", e.line))?;
    }
    Ok(())
}
