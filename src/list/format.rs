//! Format v1 of the list: parse and serialise.

use std::hash::BuildHasher;
use std::path::{Path, PathBuf};

use time::{Date, OffsetDateTime};

use crate::text::rfc3339;

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

/// Why a header was refused by the check given to [`List::parse_each`]:
/// the reason, and the header key it is about, so that the error names
/// that key's line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct HeaderRefusal {
    /// The header key the refusal is about (`serial`, `issued`,
    /// `expires`...).
    pub key: &'static str,
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

/// The header time `key: value` on line `n`: RFC 3339, in UTC.
fn parse_utc(value: &str, key: &str, file: &Path, n: usize) -> Result<OffsetDateTime, ParseError> {
    let t = crate::text::parse_rfc3339(value).map_err(|e| {
        err(
            file,
            n,
            format!("{key}: {value:?} is not an RFC 3339 time: {e}"),
        )
    })?;
    if t.offset() != time::UtcOffset::UTC {
        return Err(err(
            file,
            n,
            format!("{key}: {value:?} must be in UTC (end with Z)"),
        ));
    }
    Ok(t)
}

/// A list name that is not a host name; the text names the name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Nothing at all.
    #[error("empty name")]
    Empty,
    /// Spaces before or after.
    #[error("{0:?}: spaces around the name")]
    Spaces(String),
    /// A `*` label.
    #[error("{0:?}: wildcards are not names; use match subtree")]
    Wildcard(String),
    /// An IP address.
    #[error("{0:?}: an IP address is not a domain name")]
    IpAddress(String),
    /// Refused by IDNA (UTS 46).
    #[error("{0:?}: not a valid (internationalised) domain name")]
    Idna(String),
    /// More than 253 characters in ASCII form.
    #[error("{0:?}: longer than 253 characters")]
    TooLong(String),
    /// Two dots in a row, or a leading dot.
    #[error("{0:?}: empty label")]
    EmptyLabel(String),
    /// A label of more than 63 characters.
    #[error("{0:?}: label longer than 63 characters")]
    LongLabel(String),
    /// A character other than a letter, a digit, `-` or `_`.
    #[error("{name:?}: label {label:?} has characters other than letters, digits, '-' or '_'")]
    LabelCharacter {
        /// The name as written.
        name: String,
        /// The label.
        label: String,
    },
    /// A label that starts or ends with `-`.
    #[error("{name:?}: label {label:?} starts or ends with '-'")]
    Hyphen {
        /// The name as written.
        name: String,
        /// The label.
        label: String,
    },
    /// Digits and dots only (an address, not a host name).
    #[error("{0:?}: all-numeric names are not host names")]
    AllNumeric(String),
}

/// The canonical form of a list name: IDNA (UTS 46) to its ASCII form,
/// lowercase, no trailing dot; refuses what is not a host name.
pub fn canonical_name(raw: &str) -> Result<std::borrow::Cow<'_, str>, NameError> {
    if raw.is_empty() {
        return Err(NameError::Empty);
    }
    if raw.trim() != raw {
        return Err(NameError::Spaces(raw.to_owned()));
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
            return Err(NameError::Wildcard(raw.to_owned()));
        }
        if trimmed.parse::<std::net::IpAddr>().is_ok() {
            return Err(NameError::IpAddress(raw.to_owned()));
        }
        std::borrow::Cow::Owned(
            idna::domain_to_ascii_cow(trimmed.as_bytes(), idna::AsciiDenyList::URL)
                .map_err(|_| NameError::Idna(raw.to_owned()))?
                .to_ascii_lowercase(),
        )
    };
    if ascii.len() > 253 {
        return Err(NameError::TooLong(raw.to_owned()));
    }
    for label in ascii.split('.') {
        if label.is_empty() {
            return Err(NameError::EmptyLabel(raw.to_owned()));
        }
        if label.len() > 63 {
            return Err(NameError::LongLabel(raw.to_owned()));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(NameError::LabelCharacter {
                name: raw.to_owned(),
                label: label.to_owned(),
            });
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(NameError::Hyphen {
                name: raw.to_owned(),
                label: label.to_owned(),
            });
        }
    }
    if ascii.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(NameError::AllNumeric(raw.to_owned()));
    }
    Ok(ascii)
}

/// The lines of the text, numbered from 1.
struct Lines<'t> {
    rest: std::str::Split<'t, char>,
    n: usize,
}

impl<'t> Lines<'t> {
    fn new(text: &'t str) -> Lines<'t> {
        Lines::from_line(text, 1)
    }

    /// The lines of a piece of the list whose first line is line `first`.
    fn from_line(text: &'t str, first: usize) -> Lines<'t> {
        Lines {
            rest: text.split('\n'),
            n: first - 1,
        }
    }
}

impl<'t> Iterator for Lines<'t> {
    type Item = (usize, &'t str);

    fn next(&mut self) -> Option<(usize, &'t str)> {
        let line = self.rest.next()?;
        self.n += 1;
        Some((self.n, line))
    }
}

/// The UTF-8 byte order mark that some editors write at the start of a file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The text as UTF-8 with LF line ends, checked once for the whole file;
/// the error names the first bad line, and a byte order mark or CR LF line
/// ends (what an editor may add without being asked) as such.
fn check_text<'t>(text: &'t [u8], file: &Path) -> Result<&'t str, ParseError> {
    check_piece(text, file, 1)
}

/// [`check_text`] for a piece of the list whose first line is line
/// `first_line` (a byte order mark is only looked for on line 1).
fn check_piece<'t>(text: &'t [u8], file: &Path, first_line: usize) -> Result<&'t str, ParseError> {
    let line_of =
        |offset: usize| text[..offset].iter().filter(|&&b| b == b'\n').count() + first_line;
    let cr = text.iter().position(|&b| b == b'\r');
    let crlf = cr.is_some_and(|i| text.get(i + 1) == Some(&b'\n'));
    if first_line == 1 && text.starts_with(BOM) {
        let also = if crlf {
            "; its lines also end with CR LF, where LF alone is accepted"
        } else {
            ""
        };
        return Err(err(
            file,
            1,
            format!(
                "the file starts with a UTF-8 byte order mark (BOM, bytes EF BB BF): save it as UTF-8 without BOM{also}"
            ),
        ));
    }
    if let Some(i) = cr {
        let reason = if crlf {
            "line ends with CR LF (carriage return, then line feed, as Windows editors write): lines end with LF only"
        } else {
            "carriage return (CR) found: lines end with LF only"
        };
        return Err(err(file, line_of(i), reason));
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

/// The first name listed twice, as (line of its first entry, line of the
/// second), the second as early as possible. `hashes` holds the hash of
/// each entry's name (by `hasher`); only if two are equal is the text read
/// again, from `first_line` on, for the names of the entries whose hash
/// repeats (no name nor line is kept per entry: at a million entries the
/// names and lines were 32 MB, then 16, held while the list compiled).
fn first_duplicate(
    hashes: &mut [u64],
    hasher: &hashbrown::DefaultHashBuilder,
    text: &str,
    first_line: usize,
    i_name: usize,
) -> Option<(usize, usize)> {
    hashes.sort_unstable();
    let wanted: hashbrown::HashSet<u64> = hashes
        .chunk_by(|a, b| a == b)
        .filter(|run| run.len() > 1)
        .map(|run| run[0])
        .collect();
    if wanted.is_empty() {
        return None;
    }
    // One pass over the entries, in file order: the first name seen again
    // is the answer.
    let mut seen: hashbrown::HashMap<String, usize> = hashbrown::HashMap::new();
    for (n, l) in Lines::new(text).skip(first_line.saturating_sub(1)) {
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let Some(name) = l
            .split('\t')
            .nth(i_name)
            .and_then(|raw| canonical_name(raw).ok())
        else {
            continue;
        };
        if !wanted.contains(&hasher.hash_one(&*name)) {
            continue;
        }
        match seen.entry(name.into_owned()) {
            hashbrown::hash_map::Entry::Occupied(first) => return Some((*first.get(), n)),
            hashbrown::hash_map::Entry::Vacant(v) => {
                v.insert(n);
            }
        }
    }
    None
}

/// `YYYY-MM-DD`, read by hand on the fast path (a million of them per
/// list), by `time` for the error message otherwise.
fn parse_date(s: &str) -> Result<Date, time::error::Parse> {
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
}

/// Line 1: the format line, exactly (BEHAVIOUR section 4).
fn format_line(lines: &mut Lines<'_>, file: &Path) -> Result<(), ParseError> {
    match lines.next() {
        Some((_, l)) if l == FORMAT_LINE => Ok(()),
        Some((n, l)) if l.starts_with("#rempart-list ") => Err(err(
            file,
            n,
            format!("unsupported format {l:?}: this version reads {FORMAT_LINE:?}"),
        )),
        _ => Err(err(
            file,
            1,
            format!("line 1 must be {FORMAT_LINE:?}: not a Rempart list"),
        )),
    }
}

/// The header's fields as they are read.
#[derive(Default)]
struct HeaderFields {
    issuer: Option<String>,
    serial: Option<u64>,
    issued: Option<OffsetDateTime>,
    expires: Option<OffsetDateTime>,
    extensions: Vec<(String, String)>,
    /// Each key read, with its line.
    seen: Vec<(String, usize)>,
}

impl HeaderFields {
    /// The header line `key: value`, line `n`: each key once, the four
    /// required keys and `x-` extensions only.
    fn set(&mut self, key: &str, value: &str, file: &Path, n: usize) -> Result<(), ParseError> {
        if self.line_of(key).is_some() {
            return Err(err(file, n, format!("header key {key:?} given twice")));
        }
        self.seen.push((key.to_owned(), n));
        match key {
            "issuer" => {
                if value.trim().is_empty() {
                    return Err(err(file, n, "issuer is empty"));
                }
                self.issuer = Some(value.to_owned());
            }
            "serial" => {
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err(
                        file,
                        n,
                        format!("serial {value:?} is not an unsigned integer"),
                    ));
                }
                self.serial = Some(
                    value
                        .parse::<u64>()
                        .map_err(|e| err(file, n, format!("serial {value:?}: {e}")))?,
                );
            }
            "issued" => self.issued = Some(parse_utc(value, key, file, n)?),
            "expires" => self.expires = Some(parse_utc(value, key, file, n)?),
            k if k.starts_with("x-") && k.len() > 2 => {
                self.extensions.push((key.to_owned(), value.to_owned()))
            }
            _ => {
                return Err(err(
                    file,
                    n,
                    format!("unknown header key {key:?} (extensions start with \"x-\")"),
                ));
            }
        }
        Ok(())
    }

    /// The line of header key `key`, if it was given.
    fn line_of(&self, key: &str) -> Option<usize> {
        self.seen.iter().find(|(k, _)| k == key).map(|(_, n)| *n)
    }

    /// The header, once its block has ended on line `end`: every required
    /// key given, and `expires` after `issued` (named on the `expires`
    /// line).
    fn finish(&self, file: &Path, end: usize) -> Result<Header, ParseError> {
        for required in REQUIRED_HEADERS {
            if self.line_of(required).is_none() {
                return Err(err(file, end, format!("header {required:?} missing")));
            }
        }
        let (issuer, serial, issued, expires) = (
            self.issuer.clone().unwrap_or_default(),
            self.serial.unwrap_or_default(),
            self.issued.unwrap_or(OffsetDateTime::UNIX_EPOCH),
            self.expires.unwrap_or(OffsetDateTime::UNIX_EPOCH),
        );
        if expires <= issued {
            let n = self.line_of("expires").unwrap_or(end);
            return Err(err(file, n, "expires is not after issued"));
        }
        Ok(Header {
            issuer,
            serial,
            issued,
            expires,
            extensions: self.extensions.clone(),
        })
    }
}

/// The header block, `key: value` lines up to the first empty line: the
/// header, its fields as read (with their lines), and the number of the
/// line that ends it.
fn header_block(
    lines: &mut Lines<'_>,
    file: &Path,
) -> Result<(Header, HeaderFields, usize), ParseError> {
    let mut fields = HeaderFields::default();
    let mut header_end = 1;
    loop {
        let Some((n, l)) = lines.next() else {
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
        fields.set(key, value, file, n)?;
    }
    Ok((fields.finish(file, header_end)?, fields, header_end))
}

/// The column line: the names in file order, and where the five required
/// columns are.
struct Columns<'t> {
    /// The names, owned (they outlive the text in [`Head`]).
    names: Vec<String>,
    /// The names, borrowed from the text (for [`EntryRef::extra`]).
    raw: Vec<&'t str>,
    /// The positions of `name`, `match`, `category`, `reference`, `added`.
    core: [usize; 5],
}

impl<'t> Columns<'t> {
    /// The first line after the header (which ended on line `header_end`)
    /// that is neither empty nor a comment: each column named once, the
    /// required ones present.
    fn read(lines: &mut Lines<'t>, file: &Path, header_end: usize) -> Result<Self, ParseError> {
        let (n, l) = loop {
            let Some((n, l)) = lines.next() else {
                return Err(err(file, header_end + 1, "no column line"));
            };
            if !(l.is_empty() || l.starts_with('#')) {
                break (n, l);
            }
        };
        let names: Vec<String> = l.split('\t').map(str::to_owned).collect();
        for (i, c) in names.iter().enumerate() {
            if c.is_empty() {
                return Err(err(file, n, format!("column {} has no name", i + 1)));
            }
            if names[..i].contains(c) {
                return Err(err(file, n, format!("column {c:?} named twice")));
            }
        }
        for required in REQUIRED_COLUMNS {
            if !names.iter().any(|c| c == required) {
                return Err(err(
                    file,
                    n,
                    format!("column {required:?} missing from the column line"),
                ));
            }
        }
        let index = |name: &str| names.iter().position(|c| c == name).unwrap_or(0);
        let core = REQUIRED_COLUMNS.map(index);
        Ok(Columns {
            raw: l.split('\t').collect(),
            names,
            core,
        })
    }
}

/// Every entry line after the column line, handed to `on_entry` in file
/// order; then the duplicate check. The number of entries.
fn entries<'t, E: std::fmt::Display>(
    lines: &mut Lines<'t>,
    text: &'t str,
    file: &Path,
    columns: &Columns<'t>,
    lines_left: usize,
    mut on_entry: impl FnMut(EntryRef<'t>) -> Result<(), E>,
) -> Result<usize, ParseError> {
    // Duplicate names are found after the loop, by sorting hashes: a
    // sequential pass, where a hash table costs a cache miss per entry.
    let names_hasher = hashbrown::DefaultHashBuilder::default();
    let mut hashes: Vec<u64> = Vec::with_capacity(lines_left);
    let mut fields: Vec<&str> = Vec::with_capacity(columns.names.len());
    let mut first_line = None;
    for (n, l) in lines {
        first_line.get_or_insert(n);
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let entry = entry(n, l, &mut fields, columns, file)?;
        hashes.push(names_hasher.hash_one(&*entry.name));
        on_entry(entry).map_err(|r| err(file, n, r.to_string()))?;
    }
    let count = hashes.len();
    let found = first_line.and_then(|first| {
        first_duplicate(&mut hashes, &names_hasher, text, first, columns.core[0])
    });
    if let Some((first, second)) = found {
        let name = Lines::new(text)
            .nth(second - 1)
            .and_then(|(_, l)| l.split('\t').nth(columns.core[0]))
            .and_then(|raw| canonical_name(raw).ok())
            .unwrap_or_default();
        return Err(err(
            file,
            second,
            format!("{name:?} is listed twice (first on line {first})"),
        ));
    }
    Ok(count)
}

/// The entry on line `n`, `l`: one field per column, separated by one tab
/// (`fields` is a buffer reused from line to line).
#[inline]
fn entry<'t>(
    n: usize,
    l: &'t str,
    fields: &mut Vec<&'t str>,
    columns: &Columns<'t>,
    file: &Path,
) -> Result<EntryRef<'t>, ParseError> {
    let [i_name, i_match, i_category, i_reference, i_added] = columns.core;
    fields.clear();
    fields.extend(l.split('\t'));
    if fields.len() != columns.names.len() {
        return Err(err(
            file,
            n,
            format!(
                "{} fields, the column line names {} (fields are separated by one tab)",
                fields.len(),
                columns.names.len()
            ),
        ));
    }
    let name = canonical_name(fields[i_name]).map_err(|r| err(file, n, format!("name: {r}")))?;
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
    let extra = if columns.names.len() == columns.core.len() {
        Vec::new()
    } else {
        columns
            .raw
            .iter()
            .zip(fields.iter())
            .enumerate()
            .filter(|(i, _)| !columns.core.contains(i))
            .map(|(_, (c, v))| (*c, *v))
            .collect()
    };
    Ok(EntryRef {
        name,
        kind,
        category,
        reference,
        added,
        extra,
        line: n,
    })
}

/// The start of a list read in pieces ([`List::prelude`]): the header
/// and the column line, with what is needed to read the entries of each
/// piece that follows ([`Prelude::entries`]).
pub struct Prelude<'t> {
    /// The header.
    pub header: Header,
    columns: Columns<'t>,
    /// Where the entries start in the first piece (after the column line).
    pub entries_at: usize,
    /// The line number of the first line after the column line.
    pub entries_line: usize,
}

/// True if `text`, the start of a list, holds its format line, header and
/// column line, whole (each followed by its line end): [`List::prelude`]
/// can read them from it. A list whose start this is not must be read
/// further (or whole) first.
pub fn has_prelude(text: &[u8]) -> bool {
    let mut lines = text.split(|&b| b == b'\n');
    let mut complete = text.iter().filter(|&&b| b == b'\n').count();
    // The format line, then the header up to its empty line.
    let _ = lines.next();
    complete = complete.saturating_sub(1);
    loop {
        let Some(l) = lines.next() else { return false };
        if complete == 0 {
            return false;
        }
        complete -= 1;
        if l.is_empty() {
            break;
        }
    }
    // The column line: the first that is neither empty nor a comment.
    for l in lines {
        if complete == 0 {
            return false;
        }
        complete -= 1;
        if !(l.is_empty() || l.starts_with(b"#")) {
            return true;
        }
    }
    false
}

impl List {
    /// The format line, header and column line at the start of `first`
    /// (the first piece of a list read in pieces, holding them whole:
    /// [`has_prelude`]), with the checks and errors of
    /// [`List::parse_each`]; `on_header` as there. The entries follow, in
    /// this piece from [`Prelude::entries_at`] and in the next ones:
    /// [`Prelude::entries`].
    pub fn prelude<'t>(
        first: &'t [u8],
        file: &Path,
        on_header: impl FnOnce(&Header) -> Result<(), HeaderRefusal>,
    ) -> Result<Prelude<'t>, ParseError> {
        prelude_of(check_text(first, file)?, file, on_header)
    }
}

/// [`List::prelude`] of text already checked ([`check_text`]).
fn prelude_of<'t>(
    checked: &'t str,
    file: &Path,
    on_header: impl FnOnce(&Header) -> Result<(), HeaderRefusal>,
) -> Result<Prelude<'t>, ParseError> {
    let mut lines = Lines::new(checked);
    format_line(&mut lines, file)?;
    let (header, fields, header_end) = header_block(&mut lines, file)?;
    // A refusal names the line of the key it is about: the serial of a
    // rollback, not the empty line after the header.
    on_header(&header).map_err(|r| {
        let n = fields.line_of(r.key).unwrap_or(header_end);
        err(file, n, r.reason)
    })?;
    let columns = Columns::read(&mut lines, file, header_end)?;
    // `lines.n` is the column line: what precedes the next line is that
    // many lines, each with its line end.
    let entries_line = lines.n + 1;
    let entries_at = checked
        .bytes()
        .enumerate()
        .filter(|&(_, b)| b == b'\n')
        .nth(lines.n - 1)
        .map_or(checked.len(), |(i, _)| i + 1);
    Ok(Prelude {
        header,
        columns,
        entries_at,
        entries_line,
    })
}

impl<'t> Prelude<'t> {
    /// The entries of `piece` (the first piece from
    /// [`Prelude::entries_at`], or a later one; each but the last ends at a
    /// line end), whose first line is line `first_line`: each handed to
    /// `on_entry` in file order, with the checks and errors of
    /// [`List::parse_each`] but one: a name listed twice is not looked for
    /// (the caller does, across pieces). The number of entries.
    pub fn entries<'c, E: std::fmt::Display>(
        &self,
        piece: &'c [u8],
        first_line: usize,
        file: &Path,
        mut on_entry: impl FnMut(EntryRef<'c>) -> Result<(), E>,
    ) -> Result<usize, ParseError>
    where
        't: 'c,
    {
        let text = check_piece(piece, file, first_line)?;
        let columns: &Columns<'c> = &self.columns;
        let mut fields: Vec<&'c str> = Vec::with_capacity(columns.names.len());
        let mut count = 0;
        for (n, l) in Lines::from_line(text, first_line) {
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let entry = entry(n, l, &mut fields, columns, file)?;
            count += 1;
            on_entry(entry).map_err(|r| err(file, n, r.to_string()))?;
        }
        Ok(count)
    }
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
                Ok::<(), std::convert::Infallible>(())
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
    /// order, borrowed from the text. An `Err` from either stops the parse
    /// with that reason at that line: for `on_header`, the line of the
    /// header key its [`HeaderRefusal`] names; for `on_entry`, the entry's
    /// line, with the error's `Display` text. A list of a
    /// million entries is read this way without a million small allocations.
    ///
    /// The phases, in file order, one function each: the format line, the
    /// header block, the column line, the entries. Duplicate names are
    /// found at the end: `on_entry` may have seen both before the parse
    /// fails.
    pub fn parse_each<'t, E: std::fmt::Display>(
        text: &'t [u8],
        file: &Path,
        on_header: impl FnOnce(&Header) -> Result<(), HeaderRefusal>,
        on_entry: impl FnMut(EntryRef<'t>) -> Result<(), E>,
    ) -> Result<Head, ParseError> {
        let checked = check_text(text, file)?;
        let prelude = prelude_of(checked, file, on_header)?;
        let mut lines = Lines::from_line(&checked[prelude.entries_at..], prelude.entries_line);
        // At most one entry a line.
        let lines_left = text.iter().filter(|&&b| b == b'\n').count() + 1;
        let entries = entries(
            &mut lines,
            checked,
            file,
            &prelude.columns,
            lines_left,
            on_entry,
        )?;
        Ok(Head {
            header: prelude.header,
            columns: prelude.columns.names,
            entries,
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
        out.push_str(&format!("issued: {}\n", rfc3339(self.header.issued)));
        out.push_str(&format!("expires: {}\n", rfc3339(self.header.expires)));
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

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "#rempart-list v1\nissuer: T\nserial: 9\nissued: 2026-01-01T00:00:00Z\nexpires: 2099-01-01T00:00:00Z\n\n";
    const COLUMNS: &str = "name\tmatch\tcategory\treference\tadded\n";

    /// The parse of `text` as one line: the error as printed, or what was
    /// read. A serial of 666 is refused by the header callback, the name
    /// `refused.test` by the entry callback.
    fn outcome(text: &[u8]) -> String {
        let mut seen = Vec::new();
        let head = List::parse_each(
            text,
            Path::new("l.txt"),
            |h| {
                if h.serial == 666 {
                    Err(HeaderRefusal {
                        key: "serial",
                        reason: String::from("serial 666 refused"),
                    })
                } else {
                    Ok(())
                }
            },
            |e| {
                if e.name == "refused.test" {
                    return Err(String::from("entry refused"));
                }
                seen.push(format!("{}@{}{:?}", e.name, e.line, e.extra));
                Ok(())
            },
        );
        match head {
            Ok(h) => format!("ok {} {:?} {}", h.entries, h.columns, seen.join(" ")),
            Err(e) => e.to_string(),
        }
    }

    fn entry(line: &str) -> Vec<u8> {
        format!("{HEAD}{COLUMNS}{line}\n").into_bytes()
    }

    fn header(lines: &str) -> Vec<u8> {
        format!("#rempart-list v1\n{lines}\n{COLUMNS}a.test\texact\tc\tr\t2026-01-01\n")
            .into_bytes()
    }

    /// Every refusal, with its line and words, and what an accepted list
    /// hands over: `parse_each`'s phases say what the one function said
    /// before it was split (the expectations were taken from it).
    #[test]
    fn every_refusal_names_its_line_and_reason() {
        let cases: Vec<Vec<u8>> = vec![
            b"hello\n".to_vec(),
            b"".to_vec(),
            b"#rempart-list v2\n".to_vec(),
            b"#rempart-list v1\nissuer: T\n".to_vec(),
            b"#rempart-list v1".to_vec(),
            header("issuer T\n"),
            header("issuer: T\nissuer: U\n"),
            header("issuer:  \n"),
            header("issuer: T\nserial: 9a\n"),
            header("issuer: T\nserial: 99999999999999999999999\n"),
            header("issuer: T\nserial: 1\nissued: yesterday\n"),
            header("issuer: T\nserial: 1\nissued: 2026-01-01T00:00:00+01:00\n"),
            header("issuer: T\nserial: 1\nissued: 2026-01-01T00:00:00Z\nexpires: never\n"),
            header("issuer: T\nfrom: me\n"),
            header("issuer: T\nx-: me\n"),
            header("issuer: T\nserial: 1\nissued: 2026-01-01T00:00:00Z\n"),
            header("issuer: T\nserial: 1\nissued: 2026-01-01T00:00:00Z\nexpires: 2026-01-01T00:00:00Z\n"),
            header("issuer: T\nserial: 666\nissued: 2026-01-01T00:00:00Z\nexpires: 2099-01-01T00:00:00Z\nx-note: a b\n"),
            format!("{HEAD}# only a comment\n\n").into_bytes(),
            format!("{HEAD}name\t\tmatch\n").into_bytes(),
            format!("{HEAD}name\tname\n").into_bytes(),
            format!("{HEAD}name\tmatch\tcategory\treference\n").into_bytes(),
            entry("a.test\texact\tc"),
            entry("a.test\texact\tc\tr\t2026-01-01\textra"),
            entry("\texact\tc\tr\t2026-01-01"),
            entry(" a.test\texact\tc\tr\t2026-01-01"),
            entry("*.a.test\texact\tc\tr\t2026-01-01"),
            entry("192.0.2.1\texact\tc\tr\t2026-01-01"),
            entry("xn--a.test\texact\tc\tr\t2026-01-01"),
            entry("a..test\texact\tc\tr\t2026-01-01"),
            entry(&format!("{}.test\texact\tc\tr\t2026-01-01", "a".repeat(64))),
            entry(&format!("{}test\texact\tc\tr\t2026-01-01", "abcdefghi.".repeat(25))),
            entry("a!b.test\texact\tc\tr\t2026-01-01"),
            entry("-a.test\texact\tc\tr\t2026-01-01"),
            entry("1.2.3.4.5\texact\tc\tr\t2026-01-01"),
            entry("a.test\twide\tc\tr\t2026-01-01"),
            entry("a.test\texact\t\tr\t2026-01-01"),
            entry("a.test\texact\tc\t\t2026-01-01"),
            entry("a.test\texact\tc\tr\t2026-02-30"),
            entry("a.test\texact\tc\tr\t26-01-01"),
            entry("refused.test\texact\tc\tr\t2026-01-01"),
            entry("a.test\texact\tc\tr\t2026-01-01\n\n# note\nb.test\tsubtree\tc\tr\t2026-01-01\nA.Test.\texact\tc\tr\t2026-01-01"),
            format!("{HEAD}{COLUMNS}a.test\texact\tc\tr\t2026-01-01\r\n").into_bytes(),
            [format!("{HEAD}{COLUMNS}a.test\texact\tc\t").as_bytes(), b"\xff\t2026-01-01\n"].concat(),
            entry("B\u{fc}cher.test\texact\tc\tr\t2026-01-01\n# x\nb.test\tsubtree\tc\tr\t2026-01-01"),
            format!("{HEAD}# comment\n\nadded\tname\tnote\treference\tmatch\tcategory\n2026-01-01\tb.test\tseen\tR\tsubtree\tC\n").into_bytes(),
        ];
        let got: Vec<String> = cases.iter().map(|c| outcome(c)).collect();
        assert_eq!(got.len(), EXPECTED.len());
        for (got, expected) in got.iter().zip(EXPECTED) {
            assert_eq!(got, expected);
        }
    }

    /// Duplicates are found from the names' hashes alone, the text read
    /// again only for the names whose hash repeats: the first name seen
    /// twice (in the canonical form: an IDN and its punycode are one
    /// name), with both lines, whatever the column order; a name that is
    /// also the column line's first field is not a duplicate of it.
    #[test]
    fn the_first_duplicate_is_named_with_both_lines() {
        let e = |name: &str| format!("{name}\texact\tc\tr\t2026-01-01\n");
        let text = format!(
            "{HEAD}{COLUMNS}{}{}\n# note\n{}{}{}",
            e("b.test"),
            e("bücher.test"),
            e("xn--bcher-kva.test"),
            e("b.test"),
            e("b.test")
        );
        assert_eq!(
            outcome(text.as_bytes()),
            r#"l.txt:12: "xn--bcher-kva.test" is listed twice (first on line 9)"#
        );
        let reordered = format!(
            "{HEAD}added\tmatch\tcategory\treference\tname\n2026-01-01\texact\tc\tr\tname\n2026-01-01\texact\tc\tr\tz.test\n2026-01-01\texact\tc\tr\tz.test\n"
        );
        assert_eq!(
            outcome(reordered.as_bytes()),
            r#"l.txt:10: "z.test" is listed twice (first on line 9)"#
        );
    }

    /// Issue 15: a byte order mark was refused as a bad first line. It is
    /// named as such, and so are CR LF line ends and a lone CR.
    #[test]
    fn a_byte_order_mark_and_cr_are_named_as_such() {
        let good = format!("{HEAD}{COLUMNS}a.test\texact\tc\tr\t2026-01-01\n");
        assert!(outcome(good.as_bytes()).starts_with("ok 1"));
        let bom = [BOM, good.as_bytes()].concat();
        assert_eq!(
            outcome(&bom),
            "l.txt:1: the file starts with a UTF-8 byte order mark (BOM, bytes EF BB BF): save it as UTF-8 without BOM"
        );
        let both = [BOM, good.replace('\n', "\r\n").as_bytes()].concat();
        assert!(
            outcome(&both).ends_with(
                "without BOM; its lines also end with CR LF, where LF alone is accepted"
            ),
            "{}",
            outcome(&both)
        );
        assert_eq!(
            outcome(good.replace('\n', "\r\n").as_bytes()),
            "l.txt:1: line ends with CR LF (carriage return, then line feed, as Windows editors write): lines end with LF only"
        );
        assert_eq!(
            outcome(good.replace("issuer: T\n", "issuer: T\r").as_bytes()),
            "l.txt:2: carriage return (CR) found: lines end with LF only"
        );
    }

    /// Issue 15: a header refusal named the empty line after the header.
    /// It names the line of the key it is about.
    #[test]
    fn a_header_refusal_names_its_key_line() {
        let text = format!(
            "#rempart-list v1\nissuer: T\nx-a: 1\nserial: 666\nissued: 2026-01-01T00:00:00Z\nexpires: 2099-01-01T00:00:00Z\n\n{COLUMNS}"
        );
        assert_eq!(outcome(text.as_bytes()), "l.txt:4: serial 666 refused");
        let refuse = |key: &'static str| {
            List::parse_each(
                text.as_bytes(),
                Path::new("l.txt"),
                |_| {
                    Err(HeaderRefusal {
                        key,
                        reason: "no".into(),
                    })
                },
                |_| Ok::<(), String>(()),
            )
            .unwrap_err()
            .line
        };
        assert_eq!(refuse("issued"), 5);
        assert_eq!(refuse("expires"), 6);
        assert_eq!(refuse("x-a"), 3);
        // A key the header lacks: the line that ends it.
        assert_eq!(refuse("x-b"), 7);
    }

    const EXPECTED: &[&str] = &[
        r##"l.txt:1: line 1 must be "#rempart-list v1": not a Rempart list"##,
        r##"l.txt:1: line 1 must be "#rempart-list v1": not a Rempart list"##,
        r##"l.txt:1: unsupported format "#rempart-list v2": this version reads "#rempart-list v1""##,
        r##"l.txt:3: header "serial" missing"##,
        r##"l.txt:2: end of file in the header: an empty line, then the column line, must follow"##,
        r##"l.txt:2: header line "issuer T" is not `key: value`"##,
        r##"l.txt:3: header key "issuer" given twice"##,
        r##"l.txt:2: issuer is empty"##,
        r##"l.txt:3: serial "9a" is not an unsigned integer"##,
        r##"l.txt:3: serial "99999999999999999999999": number too large to fit in target type"##,
        r##"l.txt:4: issued: "yesterday" is not an RFC 3339 time: the 'year' component could not be parsed"##,
        r##"l.txt:4: issued: "2026-01-01T00:00:00+01:00" must be in UTC (end with Z)"##,
        r##"l.txt:5: expires: "never" is not an RFC 3339 time: the 'year' component could not be parsed"##,
        r##"l.txt:3: unknown header key "from" (extensions start with "x-")"##,
        r##"l.txt:3: unknown header key "x-" (extensions start with "x-")"##,
        r##"l.txt:5: header "expires" missing"##,
        r##"l.txt:5: expires is not after issued"##,
        r##"l.txt:3: serial 666 refused"##,
        r##"l.txt:7: no column line"##,
        r##"l.txt:7: column 2 has no name"##,
        r##"l.txt:7: column "name" named twice"##,
        r##"l.txt:7: column "added" missing from the column line"##,
        r##"l.txt:8: 3 fields, the column line names 5 (fields are separated by one tab)"##,
        r##"l.txt:8: 6 fields, the column line names 5 (fields are separated by one tab)"##,
        r##"l.txt:8: name: empty name"##,
        r##"l.txt:8: name: " a.test": spaces around the name"##,
        r##"l.txt:8: name: "*.a.test": wildcards are not names; use match subtree"##,
        r##"l.txt:8: name: "192.0.2.1": all-numeric names are not host names"##,
        r##"l.txt:8: name: "xn--a.test": not a valid (internationalised) domain name"##,
        r##"l.txt:8: name: "a..test": empty label"##,
        r##"l.txt:8: name: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test": label longer than 63 characters"##,
        r##"l.txt:8: name: "abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.abcdefghi.test": longer than 253 characters"##,
        r##"l.txt:8: name: "a!b.test": label "a!b" has characters other than letters, digits, '-' or '_'"##,
        r##"l.txt:8: name: "-a.test": label "-a" starts or ends with '-'"##,
        r##"l.txt:8: name: "1.2.3.4.5": all-numeric names are not host names"##,
        r##"l.txt:8: match "wide": expected "subtree" or "exact""##,
        r##"l.txt:8: category is empty"##,
        r##"l.txt:8: reference is empty"##,
        r##"l.txt:8: added "2026-02-30" is not a date YYYY-MM-DD: day was not in range"##,
        r##"l.txt:8: added "26-01-01" is not a date YYYY-MM-DD: the 'year' component could not be parsed"##,
        r##"l.txt:8: entry refused"##,
        r##"l.txt:12: "a.test" is listed twice (first on line 8)"##,
        r##"l.txt:8: line ends with CR LF (carriage return, then line feed, as Windows editors write): lines end with LF only"##,
        r##"l.txt:8: not UTF-8: invalid utf-8 sequence of 1 bytes from index 15"##,
        r##"ok 2 ["name", "match", "category", "reference", "added"] xn--bcher-kva.test@8[] b.test@10[]"##,
        r##"ok 1 ["added", "name", "note", "reference", "match", "category"] b.test@10[("note", "seen")]"##,
    ];
}
