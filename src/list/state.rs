//! The list in force, kept in the state directory.
//!
//! One file, `in-force.state`, holds the list's bytes, its signature and
//! what is known of it (serial, digest, key id, when it was applied):
//!
//! ```text
//! rempart-state v3
//! {"serial":...,"digest":"...","key_id":"...","applied":"...","signature_len":N,"list_len":M}
//! <N bytes: the .minisig file><M bytes: the list, as signed>
//! ```
//!
//! The bytes are stored as they are (a million-entry list is 50 MB: no
//! escaping), and the file is replaced atomically ([`replace`]: written to
//! a temporary file of its own, synced, renamed over, the directory
//! synced), so a crash leaves the old list or the new one, never half of
//! each. Writes are serialised by the admission path's lock. The serial
//! floor ([`super::floor`]) is kept apart, so that losing this file cannot
//! lower it. The signature is checked
//! again when the file is read: the state directory is not trusted more
//! than the list file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// The file name in the state directory.
pub const FILE_NAME: &str = "in-force.state";
/// The first line of the file.
pub const MAGIC: &str = "rempart-state v3";
/// The first line of a file written before the serial floor existed (the
/// same layout): read as well, and it tells an upgrade (no floor yet) from
/// a floor lost.
pub const MAGIC_BEFORE_FLOOR: &str = "rempart-state v2";

/// What is known of the kept list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// Serial of the list.
    pub serial: u64,
    /// SHA-256 of the list bytes, hex.
    pub digest: String,
    /// Id of the key that signed it.
    pub key_id: String,
    /// When this resolver applied it (RFC 3339).
    pub applied: String,
    /// Bytes of signature that follow the meta line.
    pub signature_len: usize,
    /// Bytes of list that follow the signature.
    pub list_len: usize,
}

/// What the state file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    /// What is known of it.
    pub meta: Meta,
    /// The list as signed.
    pub list: Vec<u8>,
    /// The `.minisig` bytes.
    pub signature: Vec<u8>,
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

/// `open(file)`, `None` if there is no such file: how each file of the
/// state directory is read.
pub fn if_present<'a, T>(
    file: &'a Path,
    open: impl FnOnce(&'a Path) -> std::io::Result<T>,
) -> Result<Option<T>, StateError> {
    match open(file) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StateError {
            file: file.to_owned(),
            reason: format!("cannot read: {e}"),
        }),
    }
}

/// Read the kept list, `None` if there is none.
pub fn load(dir: &Path) -> Result<Option<Kept>, StateError> {
    let file = path(dir);
    let Some(mut bytes) = if_present(&file, std::fs::read)? else {
        return Ok(None);
    };
    let bad = |reason: String| StateError {
        file: file.clone(),
        reason: format!("not a state file: {reason}"),
    };
    let mut lines = bytes.splitn(3, |&b| b == b'\n');
    let (Some(magic), Some(meta_line), Some(_)) = (lines.next(), lines.next(), lines.next()) else {
        return Err(bad("truncated before the body".into()));
    };
    if magic != MAGIC.as_bytes() && magic != MAGIC_BEFORE_FLOOR.as_bytes() {
        return Err(bad(format!("the first line is not {MAGIC:?}")));
    }
    let meta: Meta = serde_json::from_slice(meta_line).map_err(|e| bad(e.to_string()))?;
    let body_start = magic.len() + 1 + meta_line.len() + 1;
    let end = body_start
        .checked_add(meta.signature_len)
        .and_then(|n| n.checked_add(meta.list_len));
    if end != Some(bytes.len()) {
        return Err(bad(format!(
            "{} bytes after the meta line, {} expected (a torn write?)",
            bytes.len() - body_start,
            meta.signature_len.saturating_add(meta.list_len)
        )));
    }
    let list = bytes.split_off(body_start + meta.signature_len);
    let signature = bytes.split_off(body_start);
    Ok(Some(Kept {
        meta,
        list,
        signature,
    }))
}

/// Whether the state file was written before the serial floor existed
/// (its first line is [`MAGIC_BEFORE_FLOOR`]); `None` if there is no state
/// file. Reads the first line only.
pub fn before_floor(dir: &Path) -> Result<Option<bool>, StateError> {
    use std::io::{BufRead, Read};
    let file = path(dir);
    let Some(f) = if_present(&file, std::fs::File::open)? else {
        return Ok(None);
    };
    let mut first = Vec::new();
    std::io::BufReader::new(f.take(64))
        .read_until(b'\n', &mut first)
        .map_err(|e| StateError {
            file,
            reason: format!("cannot read: {e}"),
        })?;
    Ok(Some(first == format!("{MAGIC_BEFORE_FLOOR}\n").as_bytes()))
}

/// Replace the kept list atomically. The list's bytes are freed once
/// written, before the (slow) sync to disk: at a million entries they are
/// 65 MB that need not stay resident meanwhile.
pub fn save(dir: &Path, meta: &Meta, list: Vec<u8>, signature: &[u8]) -> Result<(), StateError> {
    let meta = Meta {
        signature_len: signature.len(),
        list_len: list.len(),
        ..meta.clone()
    };
    let meta_line = serde_json::to_vec(&meta).map_err(|e| StateError {
        file: path(dir),
        reason: e.to_string(),
    })?;
    replace(dir, FILE_NAME, move |f| {
        f.write_all(MAGIC.as_bytes())?;
        f.write_all(b"\n")?;
        f.write_all(&meta_line)?;
        f.write_all(b"\n")?;
        f.write_all(signature)?;
        f.write_all(&list)?;
        drop(list);
        Ok(())
    })
}

/// A kept list written as it is read ([`Pending::create`], then each
/// piece of the list [`Pending::write`]), so that a large list file is
/// never held whole in memory. It replaces the kept list only once
/// [`Written::commit`]ted, after the list was applied; dropped before,
/// its temporary file is removed.
pub struct Pending {
    out: std::io::BufWriter<std::fs::File>,
    temporary: Temporary,
    /// Bytes of list still expected.
    left: usize,
}

/// A [`Pending`] kept list whose bytes are all written, not yet synced
/// nor in place.
#[derive(Debug)]
pub struct Written {
    file: std::fs::File,
    temporary: Temporary,
}

/// A temporary file of the state directory, removed when dropped unless
/// renamed over its target.
#[derive(Debug)]
struct Temporary {
    dir: PathBuf,
    tmp: PathBuf,
    target: PathBuf,
    done: bool,
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl Temporary {
    /// A new temporary for `dir/name`, created (the directory too).
    fn create(dir: &Path, name: &str) -> Result<(Temporary, std::fs::File), StateError> {
        let target = dir.join(name);
        let err = |reason: String| StateError {
            file: target.clone(),
            reason,
        };
        std::fs::create_dir_all(dir)
            .map_err(|e| err(format!("cannot create the directory: {e}")))?;
        let n = TEMPORARIES.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| err(format!("cannot write: {e}")))?;
        Ok((
            Temporary {
                dir: dir.to_owned(),
                tmp,
                target: target.clone(),
                done: false,
            },
            file,
        ))
    }

    fn error(&self, e: std::io::Error) -> StateError {
        StateError {
            file: self.target.clone(),
            reason: format!("cannot write: {e}"),
        }
    }
}

impl Pending {
    /// Start writing the kept list described by `meta` (its `list_len`
    /// bytes to come) with `signature`.
    pub fn create(dir: &Path, meta: &Meta, signature: &[u8]) -> Result<Pending, StateError> {
        let meta = Meta {
            signature_len: signature.len(),
            ..meta.clone()
        };
        let meta_line = serde_json::to_vec(&meta).map_err(|e| StateError {
            file: path(dir),
            reason: e.to_string(),
        })?;
        let (temporary, file) = Temporary::create(dir, FILE_NAME)?;
        let mut out = std::io::BufWriter::new(file);
        let head = (|| {
            out.write_all(MAGIC.as_bytes())?;
            out.write_all(b"\n")?;
            out.write_all(&meta_line)?;
            out.write_all(b"\n")?;
            out.write_all(signature)
        })();
        head.map_err(|e| temporary.error(e))?;
        Ok(Pending {
            out,
            temporary,
            left: meta.list_len,
        })
    }

    /// The next bytes of the list.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), StateError> {
        if bytes.len() > self.left {
            return Err(StateError {
                file: self.temporary.target.clone(),
                reason: "more list bytes than announced".into(),
            });
        }
        self.left -= bytes.len();
        self.out
            .write_all(bytes)
            .map_err(|e| self.temporary.error(e))
    }

    /// Every byte announced was written.
    pub fn finish(self) -> Result<Written, StateError> {
        let Pending {
            out,
            temporary,
            left,
        } = self;
        if left != 0 {
            return Err(StateError {
                file: temporary.target.clone(),
                reason: format!("{left} list bytes missing"),
            });
        }
        let file = out
            .into_inner()
            .map_err(|e| temporary.error(e.into_error()))?;
        Ok(Written { file, temporary })
    }
}

impl Written {
    /// Make it the kept list: synced, renamed over the state file, the
    /// directory synced (as [`replace`]).
    pub fn commit(mut self) -> Result<(), StateError> {
        let t = &mut self.temporary;
        let attempt = || -> std::io::Result<()> {
            self.file.sync_all()?;
            std::fs::rename(&t.tmp, &t.target)?;
            std::fs::File::open(&t.dir)?.sync_all()
        };
        let result = attempt();
        if std::fs::symlink_metadata(&t.tmp).is_err() {
            t.done = true;
        }
        result.map_err(|e| t.error(e))
    }
}

/// Temporary files made by this process so far: with the pid, what makes
/// each temporary name unique, so that two writes never share one.
static TEMPORARIES: AtomicU64 = AtomicU64::new(0);

/// Replace `dir/name` atomically with what `write` writes: into a
/// temporary file of a name no other write uses (pid and counter), synced,
/// renamed over `name`, the directory synced. A crash leaves the old file
/// or the new one, never half of each; a failure removes the temporary.
pub fn replace(
    dir: &Path,
    name: &str,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<(), StateError> {
    let file = dir.join(name);
    let err = |reason: String| StateError {
        file: file.clone(),
        reason,
    };
    std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create the directory: {e}")))?;
    let n = TEMPORARIES.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let attempt = || -> std::io::Result<()> {
        let mut f = std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?,
        );
        write(&mut f)?;
        let f = f.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &file)?;
        std::fs::File::open(dir)?.sync_all()
    };
    attempt().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(format!("cannot write: {e}"))
    })
}

/// Remove the temporary files that a process stopped in the middle of a
/// [`replace`], an upload or a fetch left in `dir` (at start, before any
/// write: one resolver per state directory): `.*.tmp`, and the signatures
/// beside them, `.*.tmp.minisig`. Best effort: what cannot be removed only
/// takes room.
pub fn remove_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && (name.ends_with(".tmp") || name.ends_with(".tmp.minisig")) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_and_loads_bytes_as_they_are() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_none());
        let meta = Meta {
            serial: 7,
            digest: "ab".into(),
            key_id: "K".into(),
            applied: "2026-11-23T00:00:00Z".into(),
            signature_len: 0,
            list_len: 0,
        };
        let list = b"#rempart-list v1\nline\twith\ttabs\n\xff not even utf-8\n";
        save(
            dir.path(),
            &meta,
            list.to_vec(),
            b"untrusted comment: x\nsig\n",
        )
        .unwrap();
        let kept = load(dir.path()).unwrap().unwrap();
        assert_eq!(kept.list, list);
        assert_eq!(kept.signature, b"untrusted comment: x\nsig\n");
        assert_eq!(kept.meta.serial, 7);
        // A torn file is refused, not half read.
        let f = path(dir.path());
        let bytes = std::fs::read(&f).unwrap();
        std::fs::write(&f, &bytes[..bytes.len() - 3]).unwrap();
        assert!(load(dir.path()).unwrap_err().reason.contains("torn"));
    }
}
