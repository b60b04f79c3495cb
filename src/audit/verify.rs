//! `rempart audit verify DIR`: check the chain.

use std::path::{Path, PathBuf};

use super::chain::ChainHash;
use super::record::{Line, SCHEMA_VERSION};
use super::trail::{self, TrailFile};

/// The first break in a trail: the file, the line and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}: {reason}", file.display())]
pub struct Break {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0: the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub reason: String,
    /// The trail could not be read (an I/O error): nothing is known about
    /// it, which is not the same as a break (`audit verify` exits 3, not 1).
    pub unreadable: bool,
}

/// What an intact trail holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Files read.
    pub files: usize,
    /// Records read.
    pub records: u64,
    /// `seq` of the first record.
    pub first_seq: u64,
    /// `seq` of the last record.
    pub last_seq: u64,
    /// SHA-256 of the last record's line: the trail's head. Kept outside
    /// the trail (a ticket, an e-mail to the auditor), it proves later
    /// that nothing was changed up to that record, the last ones included.
    pub head: String,
    /// True if the first record starts a trail (its `prev` is the genesis
    /// value); false if older files were removed (retention).
    pub from_genesis: bool,
}

/// Check every record's `prev` against the hash of the record before it,
/// across files, and that `seq` grows by one.
pub fn verify(dir: &Path) -> Result<Summary, Break> {
    let files = trail::files(dir).map_err(|e| Break {
        file: dir.to_owned(),
        line: 0,
        reason: format!("cannot list the trail: {e}"),
        unreadable: true,
    })?;
    let mut prev: Option<ChainHash> = None;
    let mut seq: Option<u64> = None;
    let mut summary = Summary {
        files: files.len(),
        records: 0,
        first_seq: 0,
        last_seq: 0,
        from_genesis: false,
        head: String::new(),
    };
    for file in &files {
        let brk = |line: usize, reason: String| Break {
            file: file.clone(),
            line,
            reason,
            unreadable: false,
        };
        let text = TrailFile::read(file).map_err(|e| Break {
            unreadable: true,
            ..brk(0, format!("cannot read: {e}"))
        })?;
        if let Some((n, _)) = text.torn() {
            return Err(brk(n, "the last record is torn (no end of line)".into()));
        }
        for (n, line) in text.lines() {
            let record = Line::parse(line).map_err(|e| brk(n, e.to_string()))?;
            if record.v != SCHEMA_VERSION {
                return Err(brk(
                    n,
                    format!("schema version {} is not {SCHEMA_VERSION}", record.v),
                ));
            }
            match &prev {
                None => {
                    summary.first_seq = record.seq;
                    summary.from_genesis = record.prev == ChainHash::GENESIS.as_str();
                }
                Some(p) if p.as_str() != record.prev => {
                    let why = if n == 1 {
                        "does not follow the last record of the previous file (a file was removed, or records at the end of the previous file were deleted or edited)"
                    } else {
                        "does not follow the record before it (a record was edited, deleted, inserted or reordered)"
                    };
                    return Err(brk(
                        n,
                        format!("prev {} {why}", &record.prev[..record.prev.len().min(16)]),
                    ));
                }
                Some(_) => {}
            }
            if let Some(s) = seq
                && record.seq != s + 1
            {
                return Err(brk(n, format!("seq {} follows {s}", record.seq)));
            }
            prev = Some(ChainHash::of(line));
            seq = Some(record.seq);
            summary.records += 1;
            summary.last_seq = record.seq;
        }
    }
    summary.head = prev.map(|h| h.to_string()).unwrap_or_default();
    Ok(summary)
}
