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

/// Why a list fails a gate (BEHAVIOUR section 4). Any one refuses the
/// whole list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    /// `expires` is not after now.
    #[error("expired: expires {} is not after now ({})", rfc3339(*expires), to_second(*now))]
    Expired {
        /// The header's `expires`.
        expires: OffsetDateTime,
        /// This clock.
        now: OffsetDateTime,
    },
    /// `issued` is further ahead of this clock than [`MAX_ISSUED_SKEW`].
    #[error(
        "issued {} is in the future (more than {} minutes ahead of this clock, {})",
        rfc3339(*issued),
        MAX_ISSUED_SKEW.whole_minutes(),
        to_second(*now)
    )]
    IssuedInFuture {
        /// The header's `issued`.
        issued: OffsetDateTime,
        /// This clock.
        now: OffsetDateTime,
    },
    /// The serial in force, with other bytes.
    #[error(
        "serial {serial} is the serial in force with other content (equivocation): a new version needs a greater serial"
    )]
    Equivocation {
        /// The candidate's serial.
        serial: u64,
    },
    /// A serial below the one in force.
    #[error("serial {serial} is older than the serial in force, {in_force} (rollback)")]
    Rollback {
        /// The candidate's serial.
        serial: u64,
        /// The serial in force.
        in_force: u64,
    },
    /// An entry would redirect a protected name.
    #[error(
        "{name:?} would redirect the protected name {protected:?} (the October 2016 failure); the whole list is refused"
    )]
    Protected {
        /// The entry's name.
        name: String,
        /// The protected name it covers.
        protected: String,
    },
    /// An entry is a top-level domain.
    #[error("{name:?} is a top-level domain; the whole list is refused")]
    TopLevelDomain {
        /// The entry's name.
        name: String,
    },
    /// An entry is a public suffix.
    #[error(
        "{name:?} is a public suffix (every name registered under it would be blocked); the whole list is refused"
    )]
    PublicSuffix {
        /// The entry's name.
        name: String,
    },
}

impl GateError {
    /// The header key a header gate is about (`expires`, `issued`,
    /// `serial`), so that a refusal names that key's line; `None` for the
    /// gates on entries.
    pub fn header_key(&self) -> Option<&'static str> {
        match self {
            GateError::Expired { .. } => Some("expires"),
            GateError::IssuedInFuture { .. } => Some("issued"),
            GateError::Equivocation { .. } | GateError::Rollback { .. } => Some("serial"),
            _ => None,
        }
    }

    /// As the list parser's header refusal: the key and the reason.
    pub fn into_header_refusal(self) -> HeaderRefusal {
        HeaderRefusal {
            key: self.header_key().unwrap_or("serial"),
            reason: self.to_string(),
        }
    }
}

/// This clock to the second, in RFC 3339: messages need no nanoseconds.
fn to_second(now: OffsetDateTime) -> String {
    rfc3339(now.replace_nanosecond(0).unwrap_or(now))
}

/// A parsed list that fails a gate: the header, or an entry and its line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    /// The header fails a gate.
    #[error(transparent)]
    Header(GateError),
    /// An entry fails a gate.
    #[error("line {line}: {gate}")]
    Entry {
        /// The entry's line.
        line: usize,
        /// The gate.
        #[source]
        gate: GateError,
    },
}

/// Not expired, and not issued in the future beyond [`MAX_ISSUED_SKEW`].
pub fn check_header(header: &Header, now: OffsetDateTime) -> Result<(), GateError> {
    if header.expires <= now {
        return Err(GateError::Expired {
            expires: header.expires,
            now,
        });
    }
    if header.issued > now + MAX_ISSUED_SKEW {
        return Err(GateError::IssuedInFuture {
            issued: header.issued,
            now,
        });
    }
    Ok(())
}

/// The serial never goes back: a new list's serial must be greater than
/// the one in force (the same serial with the same bytes is caught before
/// this, as unchanged).
pub fn check_serial(serial: u64, in_force: u64) -> Result<(), GateError> {
    if serial == in_force {
        return Err(GateError::Equivocation { serial });
    }
    if serial < in_force {
        return Err(GateError::Rollback { serial, in_force });
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
    pub fn check(&self, name: &str, kind: MatchKind) -> Result<(), GateError> {
        let hit = if self.names.contains(name) {
            Some(name)
        } else if kind == MatchKind::Subtree {
            self.ancestors.get(name).map(String::as_str)
        } else {
            None
        };
        match hit {
            Some(p) => Err(GateError::Protected {
                name: name.to_owned(),
                protected: p.to_owned(),
            }),
            None => Ok(()),
        }
    }
}

/// No top-level domain or public suffix (`com`, `co.uk`, `blogspot.com`):
/// blocking one blocks every site registered under it. The Public Suffix
/// List is the one built into the `psl` crate.
pub fn check_public_suffix(name: &str) -> Result<(), GateError> {
    if !name.contains('.') {
        return Err(GateError::TopLevelDomain {
            name: name.to_owned(),
        });
    }
    if let Some(suffix) = psl::suffix(name.as_bytes())
        && suffix.is_known()
        && suffix.as_bytes() == name.as_bytes()
    {
        return Err(GateError::PublicSuffix {
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Every entry gate: public suffixes, protected names.
pub fn check_entry(e: &EntryRef<'_>, protected: &Protected) -> Result<(), GateError> {
    check_public_suffix(&e.name)?;
    protected.check(&e.name, e.kind)
}

/// Every gate on a parsed list: dates, public suffixes, protected names;
/// entry refusals name their line.
pub fn check_content(
    list: &List,
    protected: &[String],
    now: OffsetDateTime,
) -> Result<(), ContentError> {
    check_header(&list.header, now).map_err(ContentError::Header)?;
    let protected = Protected::new(protected);
    for e in &list.entries {
        check_public_suffix(&e.name)
            .and_then(|()| protected.check(&e.name, e.kind))
            .map_err(|gate| ContentError::Entry { line: e.line, gate })?;
    }
    Ok(())
}
