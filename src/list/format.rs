//! Format v1 of the list: parse and serialise.

use std::hash::BuildHasher;
use std::path::{Path, PathBuf};

use time::{Date, OffsetDateTime};

/// How an entry matches names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchKind {
    /// The name itself and every name below it (the default).
    Subtree,
    /// That name only.
    Exact,
}

/// The header of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// `issuer:`
    pub issuer: String,
    /// `serial:`; grows with every version.
    pub serial: u64,
    /// `issued:` (RFC 3339, UTC).
    pub issued: OffsetDateTime,
    /// `expires:` (RFC 3339, UTC).
    pub expires: OffsetDateTime,
    /// `x-` keys, in file order.
    pub extensions: Vec<(String, String)>,
}

/// One entry of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Canonical form: lowercase A-label (punycode for IDN), no trailing dot.
    pub name: String,
    /// `match` column.
    pub kind: MatchKind,
    /// `category` column.
    pub category: String,
    /// `reference` column: the authority's reference of the decision.
    pub reference: String,
    /// `added` column.
    pub added: Date,
    /// Columns beyond the five required ones, as (column name, value).
    pub extra: Vec<(String, String)>,
    /// Line number (1-based) in the source file.
    pub line: usize,
}

/// A parsed list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct List {
    /// The header.
    pub header: Header,
    /// The column line, in file order.
    pub columns: Vec<String>,
    /// The entries, in file order.
    pub entries: Vec<Entry>,
}

/// A list that does not parse: names the file, the line and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {reason}", file.display())]
pub struct ParseError {
    /// The file read.
    pub file: PathBuf,
    /// 1-based line number (0 when the whole file is at fault).
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

/// The format line, exactly (BEHAVIOUR section 4).
pub const FORMAT_LINE: &str = "#rempart-list v1";
/// Columns every list must name.
pub const REQUIRED_COLUMNS: [&str; 5] = ["name", "match", "category", "reference", "added"];
const REQUIRED_HEADERS: [&str; 4] = ["issuer", "serial", "issued", "expires"];

fn err(file: &Path, line: usize, reason: impl Into<String>) -> ParseError {
    ParseError {
        file: file.to_owned(),
        line,
        reason: reason.into(),
    }
}

fn rfc3339(value: &str) -> Result<OffsetDateTime, String> {
    let t = crate::text::parse_rfc3339(value)
        .map_err(|e| format!("{value:?} is not an RFC 3339 time: {e}"))?;
    if t.offset() != time::UtcOffset::UTC {
        return Err(format!("{value:?} must be in UTC (end with Z)"));
    }
    Ok(t)
}

use crate::text::rfc3339 as format_time;

/// The canonical form of a list name: IDNA (UTS 46) to its ASCII form,
/// lowercase, no trailing dot; refuses what is not a host name.
pub fn canonical_name(raw: &str) -> Result<std::borrow::Cow<'_, str>, String> {
    if raw.is_empty() {
        return Err("empty name".into());
    }
    if raw.trim() != raw {
        return Err(format!("{raw:?}: spaces around the name"));
    }
    let trimmed = raw.strip_suffix('.').unwrap_or(raw);
    // The common case, already canonical (lowercase ASCII letters, digits,
    // '-', '_' and dots, no punycode label to check): no IDNA pass needed.
    let plain = !trimmed.is_empty()
        && trimmed.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_' || b == b'.'
        })
        && !trimmed.starts_with("xn--")
        && !trimmed.contains(".xn--");
    let ascii = if plain {
        std::borrow::Cow::Borrowed(trimmed)
    } else {
        if trimmed.contains('*') {
            return Err(format!(
                "{raw:?}: wildcards are not names; use match subtree"
            ));
        }
        if trimmed.parse::<std::net::IpAddr>().is_ok() {
            return Err(format!("{raw:?}: an IP address is not a domain name"));
        }
        std::borrow::Cow::Owned(
            idna::domain_to_ascii_cow(trimmed.as_bytes(), idna::AsciiDenyList::URL)
                .map_err(|_| format!("{raw:?}: not a valid (internationalised) domain name"))?
                .to_ascii_lowercase(),
        )
    };
    if ascii.len() > 253 {
        return Err(format!("{raw:?}: longer than 253 characters"));
    }
    for label in ascii.split('.') {
        if label.is_empty() {
            return Err(format!("{raw:?}: empty label"));
        }
        if label.len() > 63 {
            return Err(format!("{raw:?}: label longer than 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "{raw:?}: label {label:?} has characters other than letters, digits, '-' or '_'"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("{raw:?}: label {label:?} starts or ends with '-'"));
        }
    }
    if ascii.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!("{raw:?}: all-numeric names are not host names"));
    }
    Ok(ascii)
}

/// One line of the file as text, refusing CR and what is not UTF-8.
fn read_line<'t>(
    lines: &mut impl Iterator<Item = (usize, &'t str)>,
    _file: &Path,
) -> Result<Option<(usize, &'t str)>, ParseError> {
    Ok(lines.next())
}

/// The text as UTF-8 with LF line ends, checked once for the whole file;
/// the error names the first bad line.
fn check_text<'t>(text: &'t [u8], file: &Path) -> Result<&'t str, ParseError> {
    let line_of = |offset: usize| text[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
    if let Some(i) = text.iter().position(|&b| b == b'\r') {
        return Err(err(
            file,
            line_of(i),
            "carriage return (CR) found: lines end with LF only",
        ));
    }
    std::str::from_utf8(text).map_err(|e| {
        let n = line_of(e.valid_up_to());
        let line_start = text[..e.valid_up_to()]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1);
        let in_line = std::str::from_utf8(&text[line_start..])
            .map_err(|e| e.to_string())
            .err()
            .unwrap_or_default();
        err(file, n, format!("not UTF-8: {in_line}"))
    })
}

/// The duplicate name that comes first in the file, as (index of its first
/// occurrence, index of the repeat), if any. `hashes` holds (hash of the
/// name, entry index) and is sorted here.
fn first_duplicate(
    hashes: &mut [(u64, u32)],
    names: &[(std::borrow::Cow<'_, str>, usize)],
) -> Option<(usize, usize)> {
    hashes.sort_unstable();
    let mut best: Option<(usize, usize)> = None;
    for run in hashes.chunk_by(|a, b| a.0 == b.0) {
        if run.len() < 2 {
            continue;
        }
        // Same hash: compare the names (a run is almost always one name).
        for (k, &(_, i)) in run.iter().enumerate() {
            for &(_, j) in &run[..k] {
                let (i, j) = (i as usize, j as usize);
                if names[i].0 == names[j].0 {
                    let pair = (i.min(j), i.max(j));
                    if best.is_none_or(|b| pair.1 < b.1) {
                        best = Some(pair);
                    }
                }
            }
        }
    }
    best
}

/// `YYYY-MM-DD`, read by hand on the fast path (a million of them per
/// list), by `time` for the error message otherwise.
fn parse_date(s: &str) -> Result<Date, String> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    if b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && let (Some(y), Some(m), Some(d)) = (digits(0..4), digits(5..7), digits(8..10))
        && let Ok(month) = time::Month::try_from(m as u8)
        && let Ok(date) = Date::from_calendar_date(y as i32, month, d as u8)
    {
        return Ok(date);
    }
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|e| e.to_string())
}

impl MatchKind {
    /// The word used in the list.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchKind::Subtree => "subtree",
            MatchKind::Exact => "exact",
        }
    }
}

/// The parts of a list before its entries, and how many entries it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The header.
    pub header: Header,
    /// The column line, in file order.
    pub columns: Vec<String>,
    /// Number of entries.
    pub entries: usize,
}

/// One entry as read, borrowed from the text (see [`List::parse_each`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// Canonical name (lowercase A-label, no trailing dot); borrowed from
    /// the text unless it had to be rewritten.
    pub name: std::borrow::Cow<'a, str>,
    /// `match` column.
    pub kind: MatchKind,
    /// `category` column.
    pub category: &'a str,
    /// `reference` column.
    pub reference: &'a str,
    /// `added` column.
    pub added: Date,
    /// Columns beyond the five required ones, as (column name, value).
    pub extra: Vec<(&'a str, &'a str)>,
    /// Line number (1-based).
    pub line: usize,
}

impl EntryRef<'_> {
    /// An owned [`Entry`].
    pub fn to_entry(&self) -> Entry {
        Entry {
            name: self.name.to_string(),
            kind: self.kind,
            category: self.category.to_owned(),
            reference: self.reference.to_owned(),
            added: self.added,
            extra: self
                .extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            line: self.line,
        }
    }
}

impl List {
    /// Parse `text` read from `file` (the path is only used in errors).
    ///
    /// Line endings are `\n`; a `\r` anywhere is refused (the signed bytes
    /// are the list, so one canonical form is accepted, not two).
    pub fn parse(text: &[u8], file: &Path) -> Result<List, ParseError> {
        let mut entries = Vec::new();
        let head = List::parse_each(
            text,
            file,
            |_| Ok(()),
            |e| {
                entries.push(e.to_entry());
                Ok(())
            },
        )?;
        Ok(List {
            header: head.header,
            columns: head.columns,
            entries,
        })
    }

    /// Parse `text` without keeping the entries: `on_header` judges the
    /// header before any entry is read, `on_entry` gets each entry in file
    /// order, borrowed from the text. An `Err(reason)` from either stops the
    /// parse with that reason at that line. A list of a million entries is
    /// read this way without a million small allocations.
    ///
    /// Duplicate names are found at the end: `on_entry` may have seen both
    /// before the parse fails.
    pub fn parse_each<'t>(
        text: &'t [u8],
        file: &Path,
        on_header: impl FnOnce(&Header) -> Result<(), String>,
        mut on_entry: impl FnMut(EntryRef<'t>) -> Result<(), String>,
    ) -> Result<Head, ParseError> {
        let checked = check_text(text, file)?;
        let mut lines = checked.split('\n').enumerate().map(|(i, l)| (i + 1, l));
        // Line 1: the format line.
        match read_line(&mut lines, file)? {
            Some((_, l)) if l == FORMAT_LINE => {}
            Some((n, l)) if l.starts_with("#rempart-list ") => {
                return Err(err(
                    file,
                    n,
                    format!("unsupported format {l:?}: this version reads {FORMAT_LINE:?}"),
                ));
            }
            _ => {
                return Err(err(
                    file,
                    1,
                    format!("line 1 must be {FORMAT_LINE:?}: not a Rempart list"),
                ));
            }
        }

        // Header up to the first empty line.
        let mut issuer = None;
        let mut serial = None;
        let mut issued = None;
        let mut expires = None;
        let mut extensions: Vec<(String, String)> = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        let mut header_end = 1;
        loop {
            let Some((n, l)) = read_line(&mut lines, file)? else {
                return Err(err(
                    file,
                    header_end + 1,
                    "end of file in the header: an empty line, then the column line, must follow",
                ));
            };
            header_end = n;
            if l.is_empty() {
                break;
            }
            let Some((key, value)) = l.split_once(": ") else {
                return Err(err(
                    file,
                    n,
                    format!("header line {l:?} is not `key: value`"),
                ));
            };
            if seen.iter().any(|k| k == key) {
                return Err(err(file, n, format!("header key {key:?} given twice")));
            }
            seen.push(key.to_owned());
            let value = value.to_owned();
            match key {
                "issuer" => {
                    if value.trim().is_empty() {
                        return Err(err(file, n, "issuer is empty"));
                    }
                    issuer = Some(value);
                }
                "serial" => {
                    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(err(
                            file,
                            n,
                            format!("serial {value:?} is not an unsigned integer"),
                        ));
                    }
                    serial = Some(
                        value
                            .parse::<u64>()
                            .map_err(|e| err(file, n, format!("serial {value:?}: {e}")))?,
                    );
                }
                "issued" => {
                    issued =
                        Some(rfc3339(&value).map_err(|r| err(file, n, format!("issued: {r}")))?)
                }
                "expires" => {
                    expires =
                        Some(rfc3339(&value).map_err(|r| err(file, n, format!("expires: {r}")))?)
                }
                k if k.starts_with("x-") && k.len() > 2 => extensions.push((key.to_owned(), value)),
                _ => {
                    return Err(err(
                        file,
                        n,
                        format!("unknown header key {key:?} (extensions start with \"x-\")"),
                    ));
                }
            }
        }
        for required in REQUIRED_HEADERS {
            if !seen.iter().any(|k| k == required) {
                return Err(err(
                    file,
                    header_end,
                    format!("header {required:?} missing"),
                ));
            }
        }
        let (issuer, serial, issued, expires) = (
            issuer.unwrap_or_default(),
            serial.unwrap_or_default(),
            issued.unwrap_or(OffsetDateTime::UNIX_EPOCH),
            expires.unwrap_or(OffsetDateTime::UNIX_EPOCH),
        );
        if expires <= issued {
            return Err(err(file, header_end, "expires is not after issued"));
        }
        let header = Header {
            issuer,
            serial,
            issued,
            expires,
            extensions,
        };
        on_header(&header).map_err(|r| err(file, header_end, r))?;

        // The column line: the first line after the header that is neither
        // empty nor a comment.
        let (columns, column_names) = loop {
            let Some((n, l)) = read_line(&mut lines, file)? else {
                return Err(err(file, header_end + 1, "no column line"));
            };
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let columns: Vec<String> = l.split('\t').map(str::to_owned).collect();
            for (i, c) in columns.iter().enumerate() {
                if c.is_empty() {
                    return Err(err(file, n, format!("column {} has no name", i + 1)));
                }
                if columns[..i].contains(c) {
                    return Err(err(file, n, format!("column {c:?} named twice")));
                }
            }
            for required in REQUIRED_COLUMNS {
                if !columns.iter().any(|c| c == required) {
                    return Err(err(
                        file,
                        n,
                        format!("column {required:?} missing from the column line"),
                    ));
                }
            }
            break (columns, l.split('\t').collect::<Vec<&'t str>>());
        };
        let index = |name: &str| columns.iter().position(|c| c == name).unwrap_or(0);
        let (i_name, i_match, i_category, i_reference, i_added) = (
            index("name"),
            index("match"),
            index("category"),
            index("reference"),
            index("added"),
        );

        // At most one entry a line.
        let lines_left = text.iter().filter(|&&b| b == b'\n').count() + 1;
        // The names, for the duplicate check (borrowed unless rewritten).
        let mut names: Vec<(std::borrow::Cow<'t, str>, usize)> = Vec::with_capacity(lines_left);
        // Duplicate names are found after the loop, by sorting hashes: a
        // sequential pass, where a hash table costs a cache miss per entry.
        let names_hasher = hashbrown::DefaultHashBuilder::default();
        let mut hashes: Vec<(u64, u32)> = Vec::with_capacity(lines_left);
        let mut fields: Vec<&str> = Vec::with_capacity(columns.len());
        let core = [i_name, i_match, i_category, i_reference, i_added];
        while let Some((n, l)) = read_line(&mut lines, file)? {
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            fields.clear();
            fields.extend(l.split('\t'));
            if fields.len() != columns.len() {
                return Err(err(
                    file,
                    n,
                    format!(
                        "{} fields, the column line names {} (fields are separated by one tab)",
                        fields.len(),
                        columns.len()
                    ),
                ));
            }
            let name =
                canonical_name(fields[i_name]).map_err(|r| err(file, n, format!("name: {r}")))?;
            let hash = names_hasher.hash_one(&*name);
            let kind = match fields[i_match] {
                "subtree" => MatchKind::Subtree,
                "exact" => MatchKind::Exact,
                other => {
                    return Err(err(
                        file,
                        n,
                        format!("match {other:?}: expected \"subtree\" or \"exact\""),
                    ));
                }
            };
            let category = fields[i_category];
            if category.is_empty() {
                return Err(err(file, n, "category is empty"));
            }
            let reference = fields[i_reference];
            if reference.is_empty() {
                return Err(err(file, n, "reference is empty"));
            }
            let added = parse_date(fields[i_added]).map_err(|e| {
                err(
                    file,
                    n,
                    format!("added {:?} is not a date YYYY-MM-DD: {e}", fields[i_added]),
                )
            })?;
            let extra = if columns.len() == core.len() {
                Vec::new()
            } else {
                column_names
                    .iter()
                    .zip(&fields)
                    .enumerate()
                    .filter(|(i, _)| !core.contains(i))
                    .map(|(_, (c, v))| (*c, *v))
                    .collect()
            };
            let index =
                u32::try_from(names.len()).map_err(|_| err(file, n, "more than 2^32 entries"))?;
            hashes.push((hash, index));
            on_entry(EntryRef {
                name: name.clone(),
                kind,
                category,
                reference,
                added,
                extra,
                line: n,
            })
            .map_err(|r| err(file, n, r))?;
            names.push((name, n));
        }
        if let Some((first, second)) = first_duplicate(&mut hashes, &names) {
            let (name, first, second) = (&names[second].0, names[first].1, names[second].1);
            return Err(err(
                file,
                second,
                format!("{name:?} is listed twice (first on line {first})"),
            ));
        }
        Ok(Head {
            header,
            columns,
            entries: names.len(),
        })
    }

    /// The canonical text of the list; `parse(serialise(l)) == l` except for
    /// line numbers.
    pub fn serialise(&self) -> String {
        let mut out = String::new();
        out.push_str(FORMAT_LINE);
        out.push('\n');
        out.push_str(&format!("issuer: {}\n", self.header.issuer));
        out.push_str(&format!("serial: {}\n", self.header.serial));
        out.push_str(&format!("issued: {}\n", format_time(self.header.issued)));
        out.push_str(&format!("expires: {}\n", format_time(self.header.expires)));
        for (k, v) in &self.header.extensions {
            out.push_str(&format!("{k}: {v}\n"));
        }
        out.push('\n');
        let columns: Vec<&str> = if self.columns.is_empty() {
            REQUIRED_COLUMNS.to_vec()
        } else {
            self.columns.iter().map(String::as_str).collect()
        };
        out.push_str(&columns.join("\t"));
        out.push('\n');
        for e in &self.entries {
            let added = e
                .added
                .format(time::macros::format_description!("[year]-[month]-[day]"))
                .unwrap_or_default();
            let fields: Vec<&str> = columns
                .iter()
                .map(|c| match *c {
                    "name" => e.name.as_str(),
                    "match" => e.kind.as_str(),
                    "category" => e.category.as_str(),
                    "reference" => e.reference.as_str(),
                    "added" => added.as_str(),
                    other => e
                        .extra
                        .iter()
                        .find(|(k, _)| k == other)
                        .map_or("", |(_, v)| v.as_str()),
                })
                .collect();
            out.push_str(&fields.join("\t"));
            out.push('\n');
        }
        out
    }
}
