//! `rempart audit verify [--key FILE] DIR`: check the chain and, with the
//! auditor's verification key, the seals.
//!
//! Without a key, the check proves nothing against whoever can write the
//! directory (they can recompute every `prev`); it finds accidents and
//! careless edits. With the key, every record up to the last seal is
//! proven ([`crate::audit::seal::chain`] says what each check catches).

use std::path::{Path, PathBuf};

use super::chain::ChainHash;
use super::record::{Event, Line, SCHEMA_VERSION, is_known_version};
use super::seal::{self, Digest, SealChain, SealReport, VerifyingKey};
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
    /// The newest file ends with an unterminated line (a batch being
    /// written, or a crash the next start repairs): it was not read.
    pub torn_tail: bool,
    /// What the seals prove, when checked with a verification key.
    pub sealed: Option<SealReport>,
}

/// Check every record's `prev` against the hash of the record before it,
/// across files, and that `seq` grows by one.
pub fn verify(dir: &Path) -> Result<Summary, Break> {
    verify_with(dir, None)
}

/// [`verify`], and with `key` (the auditor's `pk_0`) the seal log and
/// every record against the seals.
pub fn verify_with(dir: &Path, key: Option<VerifyingKey>) -> Result<Summary, Break> {
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
        torn_tail: false,
        sealed: None,
    };
    let mut sealing = match key {
        None => None,
        Some(key) => Some(seal_chain(dir, key)?),
    };
    for (i, file) in files.iter().enumerate() {
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
            if i + 1 < files.len() {
                return Err(brk(n, "the last record is torn (no end of line)".into()));
            }
            summary.torn_tail = true;
        }
        for (n, line) in text.lines() {
            let record = Line::parse(line).map_err(|e| brk(n, e.to_string()))?;
            if !is_known_version(record.v) {
                return Err(brk(
                    n,
                    format!(
                        "schema version {} is not one of 1 to {SCHEMA_VERSION}",
                        record.v
                    ),
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
                    // The first characters, not bytes: `prev` is whatever
                    // the file holds, multibyte characters included.
                    let short: String = record.prev.chars().take(16).collect();
                    return Err(brk(n, format!("prev {short} {why}")));
                }
                Some(_) => {}
            }
            if let Some(s) = seq {
                // No record can follow the largest seq there is: the
                // writer refuses to go on from it (a record there was
                // edited, or written by something else).
                let Some(next) = s.checked_add(1) else {
                    return Err(brk(
                        n,
                        format!(
                            "seq {} follows {s}, the largest seq there is: no record can follow it",
                            record.seq
                        ),
                    ));
                };
                if record.seq != next {
                    return Err(brk(n, format!("seq {} follows {s}", record.seq)));
                }
            }
            if let Some(chain) = &mut sealing {
                seal_record(chain, line, &record).map_err(|reason| brk(n, reason))?;
            }
            prev = Some(ChainHash::of(line));
            seq = Some(record.seq);
            summary.records += 1;
            summary.last_seq = record.seq;
        }
    }
    summary.head = prev.map(|h| h.to_string()).unwrap_or_default();
    if let Some(chain) = sealing {
        summary.sealed = Some(chain.finish().map_err(|e| Break {
            file: files.last().cloned().unwrap_or_else(|| dir.to_owned()),
            line: 0,
            reason: e.to_string(),
            unreadable: false,
        })?);
    }
    Ok(summary)
}

/// The seal log of the trail in `dir`, checked from `key`.
fn seal_chain(dir: &Path, key: VerifyingKey) -> Result<SealChain, Break> {
    let log = seal::log::read(dir).map_err(|e| Break {
        file: seal::log::path(dir),
        line: 0,
        unreadable: matches!(e, seal::LogError::Io { .. }),
        reason: e.to_string(),
    })?;
    // A torn last line: a crash while appending, which the next start
    // repairs from the key file; that seal is not counted.
    SealChain::new(key, log.seals).map_err(|e| Break {
        file: seal::log::path(dir),
        line: 0,
        reason: e.to_string(),
        unreadable: false,
    })
}

/// Feed one record to the seal check.
fn seal_record(chain: &mut SealChain, line: &[u8], record: &Line) -> Result<(), String> {
    let prev =
        Digest::from_hex(&record.prev).ok_or_else(|| "prev is not 64 hex digits".to_owned())?;
    let seal = match &record.event {
        Event::Seal(r) => Some(
            seal::Seal::from_record(r, &record.time).map_err(|e| format!("seal record: {e}"))?,
        ),
        _ => None,
    };
    chain
        .record(seal::Record {
            seq: record.seq,
            prev,
            hash: Digest::of(line),
            seal: seal.as_ref(),
        })
        .map_err(|e| e.to_string())
}
