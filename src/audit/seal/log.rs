//! The seal log, `seals.jsonl` beside the trail: one line per seal
//! ([`Seal::to_log_line`]), appended, never removed by retention, so that
//! the chain of keys from `pk_0` survives the removal of the oldest trail
//! files.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{LOG_FILE, ParseError, Seal};

/// The seal log cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A file operation failed.
    #[error("{}: cannot {op}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A line is not a seal.
    #[error("{}:{line}: {source}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        source: ParseError,
    },
}

/// What the seal log holds.
#[derive(Debug, Default)]
pub struct SealLog {
    /// The seals, in the file's order.
    pub seals: Vec<Seal>,
    /// The last line has no end of line (a crash while appending): it was
    /// left out. The writer appends that seal again from the key file's
    /// `last-seal` after cutting the torn bytes ([`cut_torn`]).
    pub torn: bool,
}

/// The seal log's path in the trail's directory.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(LOG_FILE)
}

/// Read the seal log of the trail in `dir` (none yet: empty).
pub fn read(dir: &Path) -> Result<SealLog, LogError> {
    let path = path(dir);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(SealLog::default()),
        Err(source) => {
            return Err(LogError::Io {
                path,
                op: "read",
                source,
            });
        }
    };
    let complete = complete_len(&text);
    let mut log = SealLog {
        seals: Vec::new(),
        torn: complete < text.len(),
    };
    for (i, line) in text[..complete]
        .split_inclusive(|&b| b == b'\n')
        .enumerate()
    {
        let line = &line[..line.len() - 1];
        let seal = Seal::from_log_line(line).map_err(|source| LogError::Line {
            path: path.clone(),
            line: i + 1,
            source,
        })?;
        log.seals.push(seal);
    }
    Ok(log)
}

/// Length of `text` up to and with its last end of line.
fn complete_len(text: &[u8]) -> usize {
    text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
}

/// Cut a torn last line (a crash while appending) off the seal log.
pub fn cut_torn(dir: &Path) -> Result<(), LogError> {
    let path = path(dir);
    let io = |op, source| LogError::Io {
        path: path.clone(),
        op,
        source,
    };
    let text = std::fs::read(&path).map_err(|e| io("read", e))?;
    let complete = complete_len(&text);
    if complete < text.len() {
        OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| {
                f.set_len(complete as u64)?;
                f.sync_all()
            })
            .map_err(|e| io("cut a torn line", e))?;
    }
    Ok(())
}

/// Append `seal` to the seal log and sync it (and the directory, when the
/// log is new).
pub fn append(dir: &Path, seal: &Seal) -> Result<(), LogError> {
    let path = path(dir);
    let io = |op, source| LogError::Io {
        path: path.clone(),
        op,
        source,
    };
    let new = !path.exists();
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| io("open", e))?;
    let mut line = seal.to_log_line().into_bytes();
    line.push(b'\n');
    file.write_all(&line)
        .and_then(|()| file.sync_data())
        .map_err(|e| io("append", e))?;
    if new {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("sync the directory", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::audit::seal::{Digest, Head, SealingKey};

    fn seals(n: u64) -> Vec<Seal> {
        let mut key = SealingKey::generate().unwrap();
        (1..=n)
            .map(|i| {
                let head = Head {
                    seq: 10 * i,
                    hash: Digest::of(&i.to_be_bytes()),
                };
                key.evolve(head, 1, SystemTime::now()).unwrap()
            })
            .collect()
    }

    #[test]
    fn seals_appended_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().seals.is_empty());
        let all = seals(3);
        for s in &all {
            append(dir.path(), s).unwrap();
        }
        let log = read(dir.path()).unwrap();
        assert_eq!(log.seals, all);
        assert!(!log.torn);
    }

    #[test]
    fn a_torn_last_line_is_left_out_and_cut() {
        let dir = tempfile::tempdir().unwrap();
        let all = seals(2);
        append(dir.path(), &all[0]).unwrap();
        let half = all[1].to_log_line();
        let mut f = OpenOptions::new()
            .append(true)
            .open(path(dir.path()))
            .unwrap();
        f.write_all(&half.as_bytes()[..half.len() / 2]).unwrap();
        let log = read(dir.path()).unwrap();
        assert_eq!((log.seals.len(), log.torn), (1, true));
        cut_torn(dir.path()).unwrap();
        append(dir.path(), &all[1]).unwrap();
        let log = read(dir.path()).unwrap();
        assert_eq!((log.seals, log.torn), (all, false));
    }

    #[test]
    fn a_line_that_is_not_a_seal_is_named() {
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), &seals(1)[0]).unwrap();
        let mut f = OpenOptions::new()
            .append(true)
            .open(path(dir.path()))
            .unwrap();
        f.write_all(b"{}\n").unwrap();
        assert!(matches!(
            read(dir.path()),
            Err(LogError::Line { line: 2, .. })
        ));
    }
}
