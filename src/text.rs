//! The two text forms every part of Rempart prints: digests and keys as
//! lowercase hex, times as RFC 3339 UTC. One helper each, so that a log
//! line, an audit record, a state file and a report always agree.

use std::fmt::Write as _;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// `bytes` as lowercase hex, two digits per byte.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// `t` in RFC 3339 (`2026-11-22T10:00:00Z` for a UTC time).
pub fn rfc3339(t: OffsetDateTime) -> String {
    // Formatting fails only for years outside 0..=9999, which no list,
    // record or clock of ours holds; an empty field says so rather than
    // a panic.
    t.format(&Rfc3339).unwrap_or_default()
}

/// Parse an RFC 3339 time (any offset).
pub fn parse_rfc3339(s: &str) -> Result<OffsetDateTime, time::error::Parse> {
    OffsetDateTime::parse(s, &Rfc3339)
}

/// A record time: RFC 3339 UTC with milliseconds
/// (`2026-11-22T10:00:00.123Z`), as the audit trail and its seals write it.
pub fn record_time(t: std::time::SystemTime) -> String {
    let t = OffsetDateTime::from(t);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&fmt).unwrap_or_default()
}

/// A record time read back (any RFC 3339 time).
pub fn parse_record_time(s: &str) -> Option<OffsetDateTime> {
    parse_rfc3339(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_two_lowercase_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn rfc3339_round_trips_a_utc_time() {
        let t = time::macros::datetime!(2026-11-30 00:00:00 UTC);
        assert_eq!(rfc3339(t), "2026-11-30T00:00:00Z");
        assert_eq!(parse_rfc3339("2026-11-30T00:00:00Z").unwrap(), t);
    }
}
