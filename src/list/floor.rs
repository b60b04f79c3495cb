//! The serial floor: the serials and digests of the last lists this
//! resolver applied, kept in the state directory apart from the list in
//! force ([`super::state`]).
//!
//! The greatest serial in it is the floor: no list below it is ever
//! applied again, even when the state file is lost, so that deleting or
//! corrupting `in-force.state` cannot reopen the door to an older validly
//! signed list (a rollback). The history beside it tells an older list this
//! resolver applied itself (a list file left behind by a push: stale, not
//! an attack) from an older list never seen here (a rollback).
//!
//! ```text
//! rempart-floor v1
//! <serial> <sha-256 of the list, hex>     (one line per list, oldest first)
//! sha256 <hex of every byte above>
//! ```
//!
//! The last line makes a damaged file detectable: a floor that cannot be
//! read is never taken as no floor. The file is replaced atomically
//! ([`super::state::replace`]) and written after the state file, so that a
//! crash between the two leaves a kept list newer than the floor, never
//! the reverse.

use std::path::{Path, PathBuf};

use super::state::{StateError, if_present, replace};
use crate::text::hex;

/// The file name in the state directory.
pub const FILE_NAME: &str = "serial.floor";
/// The first line of the file.
pub const MAGIC: &str = "rempart-floor v1";
/// How many applied lists the history remembers.
pub const HISTORY: usize = 64;

/// One list this resolver applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Its serial.
    pub serial: u64,
    /// SHA-256 of its bytes, hex.
    pub digest: String,
}

/// The last [`HISTORY`] lists applied, oldest first; empty before the
/// first list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Floor {
    applied: Vec<Applied>,
}

impl Floor {
    /// The floor: the greatest serial applied, if any.
    pub fn serial(&self) -> Option<u64> {
        self.applied.iter().map(|a| a.serial).max()
    }

    /// The serial of the list of this digest, if this resolver applied it.
    pub fn seen(&self, digest: &[u8; 32]) -> Option<u64> {
        let digest = hex(digest);
        self.applied
            .iter()
            .find(|a| a.digest == digest)
            .map(|a| a.serial)
    }

    /// This history with one more list applied (the oldest dropped beyond
    /// [`HISTORY`]; a list applied again moves to the end).
    pub fn with(&self, serial: u64, digest: &[u8; 32]) -> Floor {
        let digest = hex(digest);
        let mut applied: Vec<Applied> = self
            .applied
            .iter()
            .filter(|a| a.digest != digest)
            .cloned()
            .collect();
        applied.push(Applied { serial, digest });
        let excess = applied.len().saturating_sub(HISTORY);
        applied.drain(..excess);
        Floor { applied }
    }

    /// The lists remembered, oldest first.
    pub fn applied(&self) -> &[Applied] {
        &self.applied
    }

    fn text(&self) -> String {
        let mut body = format!("{MAGIC}\n");
        for a in &self.applied {
            body.push_str(&format!("{} {}\n", a.serial, a.digest));
        }
        let seal = hex(&super::digest(body.as_bytes()));
        body.push_str(&format!("sha256 {seal}\n"));
        body
    }
}

/// Where the floor is.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Read the floor: `None` if there is no file, `Err` if it cannot be read
/// or is damaged (never taken as no floor).
pub fn load(dir: &Path) -> Result<Option<Floor>, StateError> {
    let file = path(dir);
    let Some(text) = if_present(&file, std::fs::read)? else {
        return Ok(None);
    };
    let bad = |reason: String| StateError {
        file: file.clone(),
        reason: format!("damaged serial floor: {reason}"),
    };
    let text = String::from_utf8(text).map_err(|_| bad("not UTF-8".into()))?;
    let body_end = text
        .trim_end_matches('\n')
        .rfind('\n')
        .map(|i| i + 1)
        .ok_or_else(|| bad("no checksum line".into()))?;
    let (body, seal) = text.split_at(body_end);
    if seal != format!("sha256 {}\n", hex(&super::digest(body.as_bytes()))) {
        return Err(bad("the checksum does not match".into()));
    }
    let mut lines = body.lines();
    if lines.next() != Some(MAGIC) {
        return Err(bad(format!("the first line is not {MAGIC:?}")));
    }
    let mut applied = Vec::new();
    for (i, line) in lines.enumerate() {
        let parsed = line.split_once(' ').and_then(|(serial, digest)| {
            let ok = digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit());
            Some(Applied {
                serial: serial.parse().ok()?,
                digest: ok.then(|| digest.to_owned())?,
            })
        });
        applied.push(parsed.ok_or_else(|| bad(format!("line {}: not \"SERIAL DIGEST\"", i + 2)))?);
    }
    Ok(Some(Floor { applied }))
}

/// Replace the floor atomically (and durably: synced, with its directory).
pub fn save(dir: &Path, floor: &Floor) -> Result<(), StateError> {
    let text = floor.text();
    replace(dir, FILE_NAME, |f| {
        std::io::Write::write_all(f, text.as_bytes())
    })
}

/// Remove the floor (the operator's explicit reset).
pub fn remove(dir: &Path) -> Result<(), StateError> {
    match std::fs::remove_file(path(dir)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StateError {
            file: path(dir),
            reason: format!("cannot remove: {e}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_history_and_refuses_a_damaged_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        let mut floor = Floor::default();
        assert_eq!(floor.serial(), None);
        for serial in 1..=(HISTORY as u64 + 5) {
            floor = floor.with(serial, &[serial as u8; 32]);
        }
        save(dir.path(), &floor).unwrap();
        let read = load(dir.path()).unwrap().unwrap();
        assert_eq!(read, floor);
        assert_eq!(read.applied().len(), HISTORY);
        assert_eq!(read.serial(), Some(HISTORY as u64 + 5));
        assert_eq!(read.seen(&[7; 32]), Some(7));
        assert_eq!(read.seen(&[2; 32]), None, "beyond the history");
        // The floor is the greatest serial, whatever the order applied.
        assert_eq!(read.with(3, &[0xee; 32]).serial(), read.serial());

        // One changed byte, or a torn file, is damage, not "no floor".
        let f = path(dir.path());
        let text = std::fs::read_to_string(&f).unwrap();
        std::fs::write(&f, text.replacen("69 ", "68 ", 1)).unwrap();
        assert!(load(dir.path()).unwrap_err().reason.contains("checksum"));
        std::fs::write(&f, &text[..text.len() / 2]).unwrap();
        assert!(load(dir.path()).is_err());
        std::fs::write(&f, "").unwrap();
        assert!(load(dir.path()).is_err());
    }
}
