//! A signed list as bytes: the list and its minisign signature, which sits
//! beside it on disk as `LIST.minisig` (BEHAVIOUR section 4). Nothing here
//! parses or trusts the bytes; that is for the admission path.

use std::path::{Path, PathBuf};

/// A list and its signature, as signed: the unit every source hands over
/// (a file and its `.minisig`, a push, the state directory).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Pair {
    /// The list file's bytes.
    pub list: Vec<u8>,
    /// The `.minisig` file's bytes.
    pub signature: Vec<u8>,
}

/// Lengths only: a million-entry list is 60 MB.
impl std::fmt::Debug for Pair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pair")
            .field("list_len", &self.list.len())
            .field("signature_len", &self.signature.len())
            .finish()
    }
}

/// A file of the pair cannot be read: names that file.
#[derive(Debug, thiserror::Error)]
#[error("{}: cannot read: {source}", file.display())]
pub struct ReadError {
    /// The list file or its signature file, whichever failed.
    pub file: PathBuf,
    /// The cause.
    pub source: std::io::Error,
}

impl Pair {
    /// Read `path` and [`signature_path`]`(path)`.
    pub fn read(path: &Path) -> Result<Pair, ReadError> {
        let read = |file: &Path| {
            std::fs::read(file).map_err(|source| ReadError {
                file: file.to_owned(),
                source,
            })
        };
        let list = read(path)?;
        let signature = read(&signature_path(path))?;
        Ok(Pair { list, signature })
    }
}

/// `path` + `.minisig`: where a list's signature is.
pub fn signature_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".minisig");
    PathBuf::from(p)
}

/// SHA-256 of a list's bytes: what names a version in logs, metrics and the
/// audit trail, and tells an unchanged list from a new one.
pub fn digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}
