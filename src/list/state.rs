//! The list in force, kept in the state directory.
//!
//! One file, `in-force.state`, holds the list's bytes, its signature and
//! what is known of it (serial, digest, key id, when it was applied):
//!
//! ```text
//! rempart-state v2
//! {"serial":...,"digest":"...","key_id":"...","applied":"...","signature_len":N,"list_len":M}
//! <N bytes: the .minisig file><M bytes: the list, as signed>
//! ```
//!
//! The bytes are stored as they are (a million-entry list is 50 MB: no
//! escaping), and the file is replaced atomically (written to a temporary
//! file, synced, renamed over, the directory synced), so a crash leaves the
//! old list or the new one, never half of each. The signature is checked
//! again when the file is read: the state directory is not trusted more
//! than the list file.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The file name in the state directory.
pub const FILE_NAME: &str = "in-force.state";
/// The first line of the file.
pub const MAGIC: &str = "rempart-state v2";

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

/// Read the kept list, `None` if there is none.
pub fn load(dir: &Path) -> Result<Option<Kept>, StateError> {
    let file = path(dir);
    let mut bytes = match std::fs::read(&file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(StateError {
                file,
                reason: e.to_string(),
            });
        }
    };
    let bad = |reason: String| StateError {
        file: file.clone(),
        reason: format!("not a state file: {reason}"),
    };
    let mut lines = bytes.splitn(3, |&b| b == b'\n');
    let (Some(magic), Some(meta_line), Some(_)) = (lines.next(), lines.next(), lines.next()) else {
        return Err(bad("truncated before the body".into()));
    };
    if magic != MAGIC.as_bytes() {
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

/// Replace the kept list atomically. The list's bytes are freed once
/// written, before the (slow) sync to disk: at a million entries they are
/// 65 MB that need not stay resident meanwhile.
pub fn save(dir: &Path, meta: &Meta, list: Vec<u8>, signature: &[u8]) -> Result<(), StateError> {
    let file = path(dir);
    let err = |reason: String| StateError {
        file: file.clone(),
        reason,
    };
    std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create the directory: {e}")))?;
    let tmp = dir.join(format!(".{FILE_NAME}.{}.tmp", std::process::id()));
    let meta = Meta {
        signature_len: signature.len(),
        list_len: list.len(),
        ..meta.clone()
    };
    let meta_line = serde_json::to_vec(&meta).map_err(|e| err(e.to_string()))?;
    let (tmp_path, file_path) = (&tmp, &file);
    let write = move || -> std::io::Result<()> {
        let (tmp, file) = (tmp_path, file_path);
        let mut f = std::io::BufWriter::new(std::fs::File::create(tmp)?);
        f.write_all(MAGIC.as_bytes())?;
        f.write_all(b"\n")?;
        f.write_all(&meta_line)?;
        f.write_all(b"\n")?;
        f.write_all(signature)?;
        f.write_all(&list)?;
        drop(list);
        let f = f.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        std::fs::rename(tmp, file)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(format!("cannot write: {e}"))
    })
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
