//! The one path every candidate list takes: read, verify, parse, gates.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use time::OffsetDateTime;

use tracing::warn;

use super::signature::TrustedKeys;
use super::{List, gate, state};

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

/// What later candidates are judged against: the list in force, without
/// its entries (the policy snapshot holds those; the state directory holds
/// the bytes), so that a million-entry list is not kept twice in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InForce {
    /// The list's header.
    pub header: super::Header,
    /// SHA-256 of the list bytes.
    pub digest: [u8; 32],
    /// The id of the key that signed it.
    pub key_id: String,
    /// Number of entries.
    pub entries: usize,
}

impl Accepted {
    /// What stays known of this list once it is in force.
    pub fn in_force(&self) -> InForce {
        InForce {
            header: self.list.header.clone(),
            digest: self.digest,
            key_id: self.key_id.clone(),
            entries: self.list.entries.len(),
        }
    }
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

fn refuse(file: &Path, reason: impl Into<String>) -> Refusal {
    Refusal {
        file: file.to_owned(),
        reason: reason.into(),
    }
}

/// SHA-256 of `bytes`.
pub fn digest(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// Verify the signature and parse, nothing else: what `rempart list
/// verify` and every other check start with. Nothing is parsed before the
/// signature verifies.
pub fn verify_and_parse(
    settings: &LoadSettings,
    file: &Path,
    bytes: &[u8],
    signature: &[u8],
) -> Result<Accepted, Refusal> {
    let key_id = settings
        .trusted_keys
        .verify(bytes, signature)
        .map_err(|e| refuse(file, format!("signature: {e}")))?;
    let list = List::parse(bytes, file).map_err(|e| {
        refuse(
            file,
            if e.line > 0 {
                format!("line {}: {}", e.line, e.reason)
            } else {
                e.reason
            },
        )
    })?;
    Ok(Accepted {
        list: Arc::new(list),
        digest: digest(bytes),
        key_id,
        bytes: Arc::from(bytes),
        signature: Arc::from(signature),
    })
}

/// Judge a candidate: the signature against the trusted keys, the content,
/// the serial against the list in force, then the gates (dates, public
/// suffixes, protected names). The candidate is refused whole at the first
/// failure.
pub fn consider(
    settings: &LoadSettings,
    in_force: Option<&InForce>,
    file: &Path,
    bytes: &[u8],
    signature: &[u8],
    now: OffsetDateTime,
) -> Result<Decision, Refusal> {
    let candidate = verify_and_parse(settings, file, bytes, signature)?;
    let serial = candidate.list.header.serial;
    if let Some(current) = in_force {
        let in_force_serial = current.header.serial;
        if serial == in_force_serial {
            if candidate.digest == current.digest {
                return Ok(Decision::Unchanged);
            }
            return Err(refuse(
                file,
                format!(
                    "serial {serial} is the serial in force with other content (equivocation): a new version needs a greater serial"
                ),
            ));
        }
        if serial < in_force_serial {
            return Err(refuse(
                file,
                format!(
                    "serial {serial} is older than the serial in force, {in_force_serial} (rollback)"
                ),
            ));
        }
    }
    gate::check_content(&candidate.list, &settings.protected, now).map_err(|r| refuse(file, r))?;
    Ok(Decision::Apply(candidate))
}

/// Read `path` and `path.minisig` and judge them with [`consider`].
pub fn consider_file(
    settings: &LoadSettings,
    in_force: Option<&InForce>,
    path: &Path,
    now: OffsetDateTime,
) -> Result<Decision, Refusal> {
    let bytes = std::fs::read(path).map_err(|e| refuse(path, format!("cannot read: {e}")))?;
    let sig_path = signature_path(path);
    let signature = std::fs::read(&sig_path)
        .map_err(|e| refuse(path, format!("{}: cannot read: {e}", sig_path.display())))?;
    consider(settings, in_force, path, &bytes, &signature, now)
}

/// What [`startup`] found.
#[derive(Debug)]
pub struct Startup {
    /// The list to enforce.
    pub in_force: Accepted,
    /// True when it was applied now (the source file was newer than the
    /// kept list, or there was none); false when the kept list stays.
    pub applied_now: bool,
    /// The kept list it replaced, when `applied_now`.
    pub previous: Option<Accepted>,
    /// Why the source file was refused, when it was.
    pub refused: Option<Refusal>,
}

/// At start: the list kept in the state directory, then the source file
/// if it is newer; the one in force is kept in the state directory.
///
/// The kept list must still verify against the trusted keys (a key removed
/// from the trust list takes its lists with it), but no other gate applies
/// to it: it is the last list this resolver applied, and it stays in force
/// even if it has expired since or the source file is gone or now fails a
/// check (a warning says so). `Err` when there is no valid list at all.
pub fn startup(
    settings: &LoadSettings,
    source: &Path,
    now: OffsetDateTime,
) -> Result<Startup, Refusal> {
    let state_file = state::path(&settings.state_dir);
    let kept = match state::load(&settings.state_dir) {
        Ok(Some(k)) => {
            match verify_and_parse(
                settings,
                &state_file,
                k.list.as_bytes(),
                k.signature.as_bytes(),
            ) {
                Ok(a) => {
                    if a.list.header.expires <= now {
                        warn!(serial = a.list.header.serial, expires = %a.list.header.expires, "the kept list has expired; it stays in force until a newer list is applied");
                    }
                    Some(a)
                }
                Err(refusal) => {
                    warn!(file = %state_file.display(), reason = %refusal.reason, "the kept list does not verify; ignored");
                    None
                }
            }
        }
        Ok(None) => None,
        Err(e) => {
            warn!(file = %e.file.display(), reason = %e.reason, "cannot read the kept list");
            None
        }
    };
    match consider_file(
        settings,
        kept.as_ref().map(Accepted::in_force).as_ref(),
        source,
        now,
    ) {
        Ok(Decision::Apply(accepted)) => {
            if let Err(e) = persist(settings, &accepted) {
                warn!(file = %e.file.display(), reason = %e.reason, "cannot keep the list in the state directory");
            }
            Ok(Startup {
                in_force: accepted,
                applied_now: true,
                previous: kept,
                refused: None,
            })
        }
        Ok(Decision::Unchanged) => match kept {
            Some(k) => Ok(Startup {
                in_force: k,
                applied_now: false,
                previous: None,
                refused: None,
            }),
            None => Err(refuse(source, "unchanged without a kept list")),
        },
        Err(refusal) => match kept {
            Some(k) => {
                warn!(file = %refusal.file.display(), reason = %refusal.reason, serial = k.list.header.serial, "list refused; the kept list stays in force");
                Ok(Startup {
                    in_force: k,
                    applied_now: false,
                    previous: None,
                    refused: Some(refusal),
                })
            }
            None => Err(refusal),
        },
    }
}

/// `path` + `.minisig`: where a list's signature is.
pub fn signature_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".minisig");
    PathBuf::from(p)
}

/// Keep `accepted` in the state directory as the list in force (atomic).
pub fn persist(settings: &LoadSettings, accepted: &Accepted) -> Result<(), state::StateError> {
    let kept = state::Kept {
        format: 1,
        serial: accepted.list.header.serial,
        digest: accepted.digest.iter().map(|b| format!("{b:02x}")).collect(),
        key_id: accepted.key_id.clone(),
        applied: OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        list: String::from_utf8_lossy(&accepted.bytes).into_owned(),
        signature: String::from_utf8_lossy(&accepted.signature).into_owned(),
    };
    state::save(&settings.state_dir, &kept)
}
