//! The list in force, kept in the state directory.
//!
//! One file, `in-force.json`, holds the list's bytes, its signature and what
//! is known of it (serial, digest, key id, when it was applied). It is
//! replaced atomically (written to a temporary file, synced, renamed over,
//! the directory synced), so a crash leaves the old list or the new one,
//! never half of each.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file name in the state directory.
pub const FILE_NAME: &str = "in-force.json";

/// What the state file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    /// Format of this file (1).
    pub format: u32,
    /// Serial of the list.
    pub serial: u64,
    /// SHA-256 of the list bytes, hex.
    pub digest: String,
    /// Id of the key that signed it.
    pub key_id: String,
    /// When this resolver applied it (RFC 3339).
    pub applied: String,
    /// The list as signed.
    pub list: String,
    /// The `.minisig` text.
    pub signature: String,
}

/// The state directory cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", file.display())]
pub struct StateError {
    /// The file.
    pub file: PathBuf,
    /// What went wrong.
    pub reason: String,
}

/// Where the state file is.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Read the kept list, `None` if there is none.
pub fn load(dir: &Path) -> Result<Option<Kept>, StateError> {
    let file = path(dir);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(StateError {
                file,
                reason: e.to_string(),
            });
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| StateError {
            file,
            reason: format!("not a state file: {e}"),
        })
}

/// Replace the kept list atomically.
pub fn save(dir: &Path, kept: &Kept) -> Result<(), StateError> {
    let file = path(dir);
    let err = |reason: String| StateError {
        file: file.clone(),
        reason,
    };
    std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create the directory: {e}")))?;
    let tmp = dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
    let body = serde_json::to_vec_pretty(kept).map_err(|e| err(e.to_string()))?;
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&body)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &file)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(format!("cannot write: {e}"))
    })
}
