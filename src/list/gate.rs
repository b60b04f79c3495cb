//! The gates a verified, parsed list must pass before it is applied
//! (BEHAVIOUR section 4). Each refusal names the line and the reason.

use time::{Duration, OffsetDateTime};

use super::{List, MatchKind};

/// How far in the future `issued` may be (clock skew between the authority
/// and the resolver).
pub const MAX_ISSUED_SKEW: Duration = Duration::minutes(5);

/// Not expired, and not issued in the future beyond [`MAX_ISSUED_SKEW`].
pub fn check_dates(list: &List, now: OffsetDateTime) -> Result<(), String> {
    if list.header.expires <= now {
        return Err(format!(
            "expired: expires {} is not after now ({now})",
            list.header.expires
        ));
    }
    if list.header.issued > now + MAX_ISSUED_SKEW {
        return Err(format!(
            "issued {} is in the future (more than {} minutes ahead of this clock, {now})",
            list.header.issued,
            MAX_ISSUED_SKEW.whole_minutes()
        ));
    }
    Ok(())
}

/// No entry redirects a protected name: an entry equal to it, or a subtree
/// entry above it. An entry below a protected name is allowed
/// (`someblog.wordpress.com` under a protected `wordpress.com`).
pub fn check_protected(list: &List, protected: &[String]) -> Result<(), String> {
    for e in &list.entries {
        for p in protected {
            let equal = e.name == *p;
            let ancestor = e.kind == MatchKind::Subtree
                && p.len() > e.name.len()
                && p.ends_with(&e.name)
                && p.as_bytes()[p.len() - e.name.len() - 1] == b'.';
            if equal || ancestor {
                return Err(format!(
                    "line {}: {:?} would redirect the protected name {p:?} (the October 2016 failure); the whole list is refused",
                    e.line, e.name
                ));
            }
        }
    }
    Ok(())
}

/// No entry is a top-level domain or a public suffix (`com`, `co.uk`,
/// `blogspot.com`): blocking one blocks every site registered under it.
/// The Public Suffix List is the one built into the `psl` crate.
pub fn check_public_suffixes(list: &List) -> Result<(), String> {
    for e in &list.entries {
        if !e.name.contains('.') {
            return Err(format!(
                "line {}: {:?} is a top-level domain; the whole list is refused",
                e.line, e.name
            ));
        }
        if let Some(suffix) = psl::suffix(e.name.as_bytes())
            && suffix.is_known()
            && suffix.as_bytes() == e.name.as_bytes()
        {
            return Err(format!(
                "line {}: {:?} is a public suffix (every name registered under it would be blocked); the whole list is refused",
                e.line, e.name
            ));
        }
    }
    Ok(())
}

/// Every content gate: dates, protected names, public suffixes.
pub fn check_content(list: &List, protected: &[String], now: OffsetDateTime) -> Result<(), String> {
    check_dates(list, now)?;
    check_public_suffixes(list)?;
    check_protected(list, protected)
}
