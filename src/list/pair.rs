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

/// The largest signature file read: a minisign signature is a few hundred
/// bytes, with its trusted comment.
pub const MAX_SIGNATURE_BYTES: u64 = 8 * 1024;

/// A file of the pair cannot be read, or is not what a list file may be:
/// names that file.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Opening or reading failed.
    #[error("{}: cannot read: {source}", file.display())]
    Io {
        /// The list file or its signature file, whichever failed.
        file: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a regular file (a FIFO would block the reader, a device such as
    /// `/dev/zero` never ends). A symbolic link to a regular file is fine.
    #[error("{}: not a regular file (a {kind}); refused", file.display())]
    NotRegular {
        /// The file.
        file: PathBuf,
        /// What it is.
        kind: &'static str,
    },
    /// Larger than the limit (`list.max_bytes` for a list).
    #[error("{}: larger than {limit} bytes; refused", file.display())]
    TooLarge {
        /// The file.
        file: PathBuf,
        /// The limit.
        limit: u64,
    },
}

impl ReadError {
    /// The file at fault.
    pub fn file(&self) -> &Path {
        match self {
            ReadError::Io { file, .. }
            | ReadError::NotRegular { file, .. }
            | ReadError::TooLarge { file, .. } => file,
        }
    }
}

impl Pair {
    /// Read `path` (at most `max_list_bytes`) and [`signature_path`]`(path)`
    /// (at most [`MAX_SIGNATURE_BYTES`]), each only if a regular file.
    pub fn read(path: &Path, max_list_bytes: u64) -> Result<Pair, ReadError> {
        let list = read_regular(path, max_list_bytes)?;
        let signature = read_signature(path)?;
        Ok(Pair { list, signature })
    }
}

/// The bytes of `file` if it is a regular file of at most `limit` bytes.
fn read_regular(file: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    use std::io::Read;
    let (f, len) = open_regular(file, limit)?;
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    f.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| ReadError::Io {
            file: file.to_owned(),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge {
            file: file.to_owned(),
            limit,
        });
    }
    Ok(bytes)
}

/// `file` opened for reading, and its length, if it is a regular file of
/// at most `limit` bytes (a reader must still stop after `limit`: the file
/// may grow while read).
///
/// Opened with `O_NONBLOCK`, so that a FIFO cannot hold the open (waiting
/// for a writer); what was opened is then checked (not the path, which may
/// have been replaced in between).
pub fn open_regular(file: &Path, limit: u64) -> Result<(std::fs::File, u64), ReadError> {
    let io = |source| ReadError::Io {
        file: file.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(target_os = "linux")]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let f = options.open(file).map_err(io)?;
    let meta = f.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular {
            file: file.to_owned(),
            kind: kind(&meta.file_type()),
        });
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge {
            file: file.to_owned(),
            limit,
        });
    }
    Ok((f, meta.len()))
}

/// The signature file of the list at `path` ([`signature_path`]), read
/// with the bounds of [`Pair::read`].
pub fn read_signature(path: &Path) -> Result<Vec<u8>, ReadError> {
    read_regular(&signature_path(path), MAX_SIGNATURE_BYTES)
}

/// What a file that is not a regular file is, in words.
fn kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_socket() {
        "socket"
    } else {
        "special file"
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
