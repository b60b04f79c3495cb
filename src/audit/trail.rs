//! The trail on disk: file names, listing the files in order, reading a
//! file back line by line, and, for the writer, opening the trail where it
//! stands, appending, rotating and removing files past retention.
//!
//! Files are named `rempart-audit-YYYYMMDD-NNN.jsonl` (UTC day, then a
//! sequence number within the day), so that their names sort in the order
//! they were written. `audit verify`, `audit report` and the writer list
//! them with [`files`] and read them with [`TrailFile`]: one idea of what a
//! trail file is and where its lines end.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use time::Date;
use tracing::warn;

use super::chain::ChainHash;
use super::record::{Line, NotARecord};

/// File names: `FILE_PREFIX` + `YYYYMMDD-NNN` + `FILE_SUFFIX`.
pub const FILE_PREFIX: &str = "rempart-audit-";
/// File name suffix.
pub const FILE_SUFFIX: &str = ".jsonl";

/// The name of the `index`-th file (from 0) started on `day`.
fn file_name(day: Date, index: u32) -> String {
    let d = day
        .format(time::macros::format_description!("[year][month][day]"))
        .unwrap_or_default();
    format!("{FILE_PREFIX}{d}-{index:03}{FILE_SUFFIX}")
}

/// The day and index a trail file's name gives, if it is one.
pub fn parse_file_name(path: &Path) -> Option<(Date, u32)> {
    let name = path.file_name()?.to_str()?;
    let core = name.strip_prefix(FILE_PREFIX)?.strip_suffix(FILE_SUFFIX)?;
    let (day, index) = core.split_once('-')?;
    let day = Date::parse(day, time::macros::format_description!("[year][month][day]")).ok()?;
    Some((day, index.parse().ok()?))
}

/// The trail's files in `dir`, in the order they were written.
pub fn files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(FILE_PREFIX) && n.ends_with(FILE_SUFFIX))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// One file of the trail, read whole: its complete lines (each ended by a
/// newline) and, after them, a torn last line if a write was cut short.
#[derive(Debug)]
pub struct TrailFile {
    bytes: Vec<u8>,
    /// Bytes up to and with the last newline.
    complete: usize,
}

impl TrailFile {
    /// Read `path`.
    pub fn read(path: &Path) -> std::io::Result<TrailFile> {
        let bytes = std::fs::read(path)?;
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        Ok(TrailFile { bytes, complete })
    }

    /// True if the file has no byte.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The complete lines, without their newline, numbered from 1.
    pub fn lines(&self) -> impl Iterator<Item = (usize, &[u8])> {
        self.bytes[..self.complete]
            .strip_suffix(b"\n")
            .into_iter()
            .flat_map(|body| body.split(|&b| b == b'\n'))
            .enumerate()
            .map(|(i, line)| (i + 1, line))
    }

    /// The last complete line, if any (without reading the others).
    pub fn last_line(&self) -> Option<&[u8]> {
        self.bytes[..self.complete]
            .strip_suffix(b"\n")?
            .rsplit(|&b| b == b'\n')
            .next()
    }

    /// The bytes after the last newline (a record whose write was cut
    /// short), with their line number.
    pub fn torn(&self) -> Option<(usize, &[u8])> {
        (self.complete < self.bytes.len()).then(|| {
            let n = self.bytes[..self.complete]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            (n + 1, &self.bytes[self.complete..])
        })
    }
}

/// The largest `seq` a trail is continued from: 2^63 - 1, which a
/// million records a second reach in 292,000 years, so that the writer's
/// `seq + 1` (and the seal's `seq + 1`) can never overflow. A last record
/// above it was edited, and [`TrailError::SeqExhausted`] refuses it.
pub const MAX_RESUMED_SEQ: u64 = i64::MAX as u64;

/// The trail cannot be opened where it stands.
#[derive(Debug, thiserror::Error)]
pub enum TrailError {
    /// The directory cannot be listed.
    #[error("cannot list: {0}")]
    List(#[source] std::io::Error),
    /// The last file cannot be read.
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The torn end of the last file cannot be cut off.
    #[error("{}: cannot cut a torn record: {source}", file.display())]
    Cut {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The last record does not parse: the chain cannot be continued.
    #[error("{}: the last record is not readable: {}", file.display(), source.0)]
    LastRecord {
        /// The file.
        file: PathBuf,
        /// Why.
        source: NotARecord,
    },
    /// The last file is empty and others come before it: its predecessor
    /// would be the link to continue from, and is not the last file.
    #[error("{}: empty file after others", file.display())]
    EmptyAfterOthers {
        /// The file.
        file: PathBuf,
    },
    /// The last record's `seq` is above [`MAX_RESUMED_SEQ`]: no trail
    /// written by Rempart gets there, and the chain cannot go on from it
    /// without running out of numbers.
    #[error(
        "{}: the last record's seq is {seq}, beyond any trail Rempart writes (at most {MAX_RESUMED_SEQ}): the record was edited or not written by Rempart, and the chain cannot be continued; check it with `rempart audit verify`, then move the trail's files elsewhere (keep them for the auditor) to start a new chain",
        file.display()
    )]
    SeqExhausted {
        /// The file.
        file: PathBuf,
        /// The last record's `seq`.
        seq: u64,
    },
    /// The last file cannot be opened to append.
    #[error("{}: cannot open: {source}", file.display())]
    Open {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Where an existing trail stands: the chain continues from there.
pub(super) struct Tail {
    /// The hash of the last complete record (the genesis value if none).
    pub prev: ChainHash,
    /// Its `seq` (0 if none).
    pub seq: u64,
    /// Its `time`, if any.
    pub time: Option<std::time::SystemTime>,
    /// A torn record (a crash while writing) was cut off the end.
    pub torn: bool,
}

struct OpenFile {
    path: PathBuf,
    file: File,
    size: u64,
    day: Date,
}

/// The trail as the writer holds it: the directory, the file being
/// written, and when to start a new one or remove old ones.
pub(super) struct Trail {
    dir: PathBuf,
    max_file_bytes: u64,
    retention_days: u32,
    file: Option<OpenFile>,
}

impl Trail {
    /// Find where the trail in `dir` stands: the last complete record of
    /// the last file gives `prev` and `seq`. A torn last line (a crash
    /// while writing) is cut off and reported in [`Tail::torn`].
    pub(super) fn open(
        dir: &Path,
        max_file_bytes: u64,
        retention_days: u32,
    ) -> Result<(Trail, Tail), TrailError> {
        let mut trail = Trail {
            dir: dir.to_owned(),
            max_file_bytes,
            retention_days,
            file: None,
        };
        let mut tail = Tail {
            prev: ChainHash::GENESIS,
            seq: 0,
            time: None,
            torn: false,
        };
        let files = files(dir).map_err(TrailError::List)?;
        let Some(last) = files.last() else {
            return Ok((trail, tail));
        };
        let text = TrailFile::read(last).map_err(|source| TrailError::Read {
            file: last.clone(),
            source,
        })?;
        if text.torn().is_some() {
            OpenOptions::new()
                .write(true)
                .open(last)
                .and_then(|f| f.set_len(text.complete as u64))
                .map_err(|source| TrailError::Cut {
                    file: last.clone(),
                    source,
                })?;
            warn!(file = %last.display(), "audit: a torn record (crash while writing) was cut off");
            tail.torn = true;
        }
        if let Some(line) = text.last_line().filter(|l| !l.is_empty()) {
            let parsed = Line::parse(line).map_err(|source| TrailError::LastRecord {
                file: last.clone(),
                source,
            })?;
            if parsed.seq > MAX_RESUMED_SEQ {
                return Err(TrailError::SeqExhausted {
                    file: last.clone(),
                    seq: parsed.seq,
                });
            }
            tail.prev = ChainHash::of(line);
            tail.seq = parsed.seq;
            tail.time = super::record::parse_time(&parsed.time).map(std::time::SystemTime::from);
        } else if files.len() > 1 {
            return Err(TrailError::EmptyAfterOthers { file: last.clone() });
        }
        if let Some((day, _)) = parse_file_name(last) {
            let file = OpenOptions::new()
                .append(true)
                .open(last)
                .map_err(|source| TrailError::Open {
                    file: last.clone(),
                    source,
                })?;
            trail.file = Some(OpenFile {
                path: last.clone(),
                file,
                size: text.complete as u64,
                day,
            });
        }
        Ok((trail, tail))
    }

    /// Append whole records to the current file, starting a new one first
    /// when the day changed or the file is full. On failure the file is cut
    /// back to its last complete record: no torn line stays.
    pub(super) fn append(&mut self, bytes: &[u8], day: Date) -> std::io::Result<()> {
        if self.needs_rotation(day) {
            self.rotate(day)?;
        }
        self.append_here(bytes, day)
    }

    /// Append to the current file even if full or of another day (a seal
    /// stays in the file of the record it seals); a new file only if none
    /// is open.
    pub(super) fn append_here(&mut self, bytes: &[u8], day: Date) -> std::io::Result<()> {
        if self.file.is_none() {
            self.rotate(day)?;
        }
        let f = self
            .file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("no audit file"))?;
        let before = f.size;
        if let Err(e) = f.file.write_all(bytes) {
            let _ = f.file.set_len(before);
            let _ = f.file.seek(SeekFrom::End(0));
            return Err(e);
        }
        f.size += bytes.len() as u64;
        Ok(())
    }

    /// True if records written on `day` go to a new file: the day changed,
    /// the current file is full, or there is none.
    pub(super) fn needs_rotation(&self, day: Date) -> bool {
        match &self.file {
            None => true,
            Some(f) => f.day != day || f.size >= self.max_file_bytes,
        }
    }

    /// The trail's directory.
    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Make what was appended durable (best effort: a failing disk shows
    /// at the next write).
    pub(super) fn sync(&self) {
        if let Some(f) = &self.file {
            let _ = f.file.sync_data();
        }
    }

    /// Let go of the current file (after a failed write): the next append
    /// starts a new one.
    pub(super) fn close(&mut self) {
        self.file = None;
    }

    /// Close the current file and start a new one for `day`.
    pub(super) fn rotate(&mut self, day: Date) -> std::io::Result<()> {
        if let Some(f) = self.file.take() {
            let _ = f.file.sync_all();
        }
        let files = files(&self.dir)?;
        // A clock set back must not name a file that sorts before the
        // files already written: the chain would read out of order.
        let day = files
            .last()
            .and_then(|p| parse_file_name(p))
            .map_or(day, |(last, _)| last.max(day));
        let index = files
            .iter()
            .filter_map(|p| parse_file_name(p))
            .filter(|(d, _)| *d == day)
            .map(|(_, i)| i + 1)
            .max()
            .unwrap_or(0);
        let path = self.dir.join(file_name(day, index));
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        if let Ok(d) = File::open(&self.dir) {
            let _ = d.sync_all();
        }
        self.file = Some(OpenFile {
            path,
            file,
            size: 0,
            day,
        });
        Ok(())
    }

    /// The files older than the retention period on `today`, oldest
    /// first, never the file being written. The writer removes them with
    /// [`Trail::remove`] after a rotation, once a seal has announced where
    /// the trail will start.
    pub(super) fn expired(&self, today: Date) -> Vec<PathBuf> {
        if self.retention_days == 0 {
            return Vec::new();
        }
        let cutoff = today - time::Duration::days(i64::from(self.retention_days));
        let Ok(files) = files(&self.dir) else {
            return Vec::new();
        };
        files
            .into_iter()
            .filter(|p| {
                parse_file_name(p).is_some_and(|(d, _)| d < cutoff)
                    && self.file.as_ref().is_none_or(|f| f.path != *p)
            })
            .collect()
    }

    /// `seq` of the first record the trail holds once `removed` are gone;
    /// `next` (the next record's `seq`) if no file kept holds a record.
    pub(super) fn first_seq_without(&self, removed: &[PathBuf], next: u64) -> u64 {
        let Ok(files) = files(&self.dir) else {
            return next;
        };
        files
            .iter()
            .filter(|p| !removed.contains(p))
            .find_map(|p| first_seq(p))
            .unwrap_or(next)
    }

    /// Delete the files `expired` named (oldest first; the chain then
    /// starts at the oldest file kept, which verify reports).
    pub(super) fn remove(&self, expired: &[PathBuf]) {
        for p in expired {
            match std::fs::remove_file(p) {
                Ok(()) => {
                    tracing::info!(file = %p.display(), "audit: file past retention removed")
                }
                Err(e) => {
                    warn!(file = %p.display(), error = %e, "audit: cannot remove a file past retention")
                }
            }
        }
    }
}

/// `seq` of the first record of the file at `path`, reading its first
/// line only (files run to `audit.max_file_mb`).
fn first_seq(path: &Path) -> Option<u64> {
    use std::io::BufRead as _;
    let mut line = Vec::new();
    std::io::BufReader::new(File::open(path).ok()?)
        .read_until(b'\n', &mut line)
        .ok()?;
    let line = line.strip_suffix(b"\n")?;
    Line::parse(line).ok().map(|l| l.seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_in_the_order_written_and_parse_back() {
        let day = time::macros::date!(2026 - 11 - 09);
        let name = file_name(day, 7);
        assert_eq!(name, "rempart-audit-20261109-007.jsonl");
        assert_eq!(parse_file_name(Path::new(&name)), Some((day, 7)));
        assert!(file_name(day, 999) < file_name(day.next_day().unwrap(), 0));
        assert_eq!(parse_file_name(Path::new("rempart-audit-x.jsonl")), None);
    }

    #[test]
    fn lines_are_numbered_and_a_torn_end_is_apart() {
        let dir = tempfile::tempdir().unwrap();
        let read = |bytes: &[u8]| {
            let p = dir.path().join("f");
            std::fs::write(&p, bytes).unwrap();
            TrailFile::read(&p).unwrap()
        };
        let f = read(b"a\nb\nto");
        assert_eq!(f.lines().collect::<Vec<_>>(), [(1, &b"a"[..]), (2, b"b")]);
        assert_eq!(f.last_line(), Some(&b"b"[..]));
        assert_eq!(f.torn(), Some((3, &b"to"[..])));
        let f = read(b"");
        assert!(f.is_empty() && f.lines().next().is_none() && f.torn().is_none());
        assert_eq!(f.last_line(), None);
        let f = read(b"torn");
        assert_eq!((f.lines().count(), f.last_line()), (0, None));
        assert_eq!(f.torn(), Some((1, &b"torn"[..])));
    }
}
