//! Format v1 of the list: parse and serialise.

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

impl List {
    /// Parse `text` read from `file` (the path is only used in errors).
    pub fn parse(text: &[u8], file: &Path) -> Result<List, ParseError> {
        let _ = (text, file);
        unimplemented!("list parser")
    }

    /// The canonical text of the list; `parse(serialise(l)) == l` except for
    /// line numbers.
    pub fn serialise(&self) -> String {
        unimplemented!("list serialiser")
    }
}
