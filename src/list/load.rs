//! The one path every candidate list takes: read, verify, parse, gates.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use time::OffsetDateTime;

use super::List;
use super::signature::TrustedKeys;

/// What the load path needs from the config.
#[derive(Debug, Clone)]
pub struct LoadSettings {
    /// Keys whose signatures are accepted.
    pub trusted_keys: TrustedKeys,
    /// Names that no list may redirect (canonical form).
    pub protected: Vec<String>,
    /// Where the list in force is kept.
    pub state_dir: PathBuf,
}

/// A list that passed every check: the bytes and the signature that prove it.
#[derive(Debug, Clone)]
pub struct Accepted {
    /// The parsed list.
    pub list: Arc<List>,
    /// SHA-256 of the list bytes.
    pub digest: [u8; 32],
    /// The id of the key that signed it (hex, as minisign prints it).
    pub key_id: String,
    /// The list bytes as signed.
    pub bytes: Arc<[u8]>,
    /// The `.minisig` file's bytes.
    pub signature: Arc<[u8]>,
}

/// What to do with a candidate that passed the checks.
#[derive(Debug)]
pub enum Decision {
    /// A newer list: apply it.
    Apply(Accepted),
    /// The same serial and content as the list in force: nothing to do.
    Unchanged,
}

/// Why a candidate list was refused; names the file, the line or key, the reason.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", file.display())]
pub struct Refusal {
    /// The list file.
    pub file: PathBuf,
    /// The reason, with the line or key id where there is one.
    pub reason: String,
}

/// Judge a candidate: the signature against the trusted keys, the content,
/// then the gates against the list in force.
pub fn consider(
    settings: &LoadSettings,
    in_force: Option<&Accepted>,
    file: &Path,
    bytes: &[u8],
    signature: &[u8],
    now: OffsetDateTime,
) -> Result<Decision, Refusal> {
    let _ = (settings, in_force, file, bytes, signature, now);
    unimplemented!("consider")
}

/// Read `path` and `path.minisig` and judge them with [`consider`].
pub fn consider_file(
    settings: &LoadSettings,
    in_force: Option<&Accepted>,
    path: &Path,
    now: OffsetDateTime,
) -> Result<Decision, Refusal> {
    let _ = (settings, in_force, path, now);
    unimplemented!("consider_file")
}

/// At start: the list kept in the state directory (re-verified), then the
/// source file if it is newer. Saves the result to the state directory.
/// `Ok(None)` when there is no valid list at all.
pub fn startup(
    settings: &LoadSettings,
    source: &Path,
    now: OffsetDateTime,
) -> Result<Option<Accepted>, Refusal> {
    let _ = (settings, source, now);
    unimplemented!("startup")
}

/// `path` + `.minisig`: where a list's signature is.
pub fn signature_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".minisig");
    PathBuf::from(p)
}

/// Keep `accepted` in the state directory as the list in force (atomic).
pub fn persist(settings: &LoadSettings, accepted: &Accepted) -> std::io::Result<()> {
    let _ = (settings, accepted);
    unimplemented!("persist")
}
