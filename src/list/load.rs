//! The one path every candidate list takes: read, verify, parse, gates.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use tracing::warn;

use super::format::HeaderRefusal;
use super::signature::TrustedKeys;
use super::{Header, List, gate, state};
use crate::policy::{Policy, PolicyBuilder};

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

/// A list that passed every check, compiled: the policy snapshot to
/// enforce, and the bytes and the signature that prove it.
#[derive(Debug)]
pub struct Accepted {
    /// The list's header.
    pub header: Header,
    /// Number of entries.
    pub entries: usize,
    /// The compiled snapshot.
    pub policy: Policy,
    /// SHA-256 of the list bytes.
    pub digest: [u8; 32],
    /// The id of the key that signed it (hex, as minisign prints it).
    pub key_id: String,
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
            header: self.header.clone(),
            digest: self.digest,
            key_id: self.key_id.clone(),
            entries: self.entries,
        }
    }
}

/// What to do with a candidate that passed the checks.
#[derive(Debug)]
pub enum Decision {
    /// A newer list: apply it (boxed: it is large, `Unchanged` is nothing).
    Apply(Box<Accepted>),
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

/// Verify the signature, then read and compile the list in one pass,
/// applying `checks` as it goes. Nothing is parsed before the signature
/// verifies; the entries are never held whole (a million of them would
/// cost more than the snapshot itself).
fn verify_and_compile(
    settings: &LoadSettings,
    file: &Path,
    bytes: &[u8],
    signature: &[u8],
    checks: Option<(Option<&InForce>, [u8; 32], OffsetDateTime)>,
) -> Result<Accepted, Refusal> {
    let key_id = settings
        .trusted_keys
        .verify(bytes, signature)
        .map_err(|e| refuse(file, format!("signature: {e}")))?;
    let digest = match checks {
        Some((_, d, _)) => d,
        None => digest(bytes),
    };
    let protected = gate::Protected::new(&settings.protected);
    let lines = bytes.iter().filter(|&&b| b == b'\n').count();
    // Two stages on two threads: one reads and checks, the other compiles
    // what it is handed, in batches. Both run at a low priority (nice 10):
    // the query workers come first, the load takes what is left.
    const BATCH: usize = 4096;
    let (head, builder) = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<super::format::EntryRef<'_>>>(16);
        let compiler = scope.spawn(move || {
            lower_priority();
            let mut builder = PolicyBuilder::with_capacity(lines);
            for batch in rx {
                for e in batch {
                    builder.push(&e.name, e.kind, e.category, e.reference);
                }
            }
            builder
        });
        let reader = scope.spawn(move || {
            lower_priority();
            let mut batch = Vec::with_capacity(BATCH);
            let head = List::parse_each(
                bytes,
                file,
                |header| match checks {
                    None => Ok(()),
                    Some((in_force, _, now)) => {
                        if let Some(current) = in_force {
                            check_serial(header.serial, current).map_err(|reason| {
                                HeaderRefusal {
                                    key: "serial",
                                    reason,
                                }
                            })?;
                        }
                        gate::check_header(header, now)
                    }
                },
                |e| {
                    if checks.is_some() {
                        gate::check_entry(&e, &protected)?;
                    }
                    batch.push(e);
                    if batch.len() == BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                        // The compiler only stops when this sender is dropped.
                        let _ = tx.send(full);
                    }
                    Ok::<(), String>(())
                },
            );
            if head.is_ok() && !batch.is_empty() {
                let _ = tx.send(batch);
            }
            drop(tx);
            head
        });
        let head = reader.join();
        let builder = compiler.join();
        (head, builder)
    });
    let builder = builder.map_err(|_| refuse(file, "the compiler thread failed"))?;
    let head = head
        .map_err(|_| refuse(file, "the reader thread failed"))?
        .map_err(|e| {
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
        policy: builder.finish(&head.header, digest),
        header: head.header,
        entries: head.entries,
        digest,
        key_id,
    })
}

/// Nice 10 for the calling thread (best effort: an error only means the
/// load competes with queries on equal terms).
fn lower_priority() {
    use thread_priority::{ThreadPriority, ThreadPriorityValue, set_current_thread_priority};
    if let Ok(value) = ThreadPriorityValue::try_from(25u8) {
        let _ = set_current_thread_priority(ThreadPriority::Crossplatform(value));
    }
}

/// A new list's serial must be greater than the one in force (the same
/// serial with the same bytes is caught before, as unchanged).
fn check_serial(serial: u64, current: &InForce) -> Result<(), String> {
    let in_force = current.header.serial;
    if serial == in_force {
        return Err(format!(
            "serial {serial} is the serial in force with other content (equivocation): a new version needs a greater serial"
        ));
    }
    if serial < in_force {
        return Err(format!(
            "serial {serial} is older than the serial in force, {in_force} (rollback)"
        ));
    }
    Ok(())
}

/// Verify the signature and compile, without the other gates: for the list
/// kept in the state directory, which this resolver applied before.
pub fn verify_and_parse(
    settings: &LoadSettings,
    file: &Path,
    bytes: &[u8],
    signature: &[u8],
) -> Result<Accepted, Refusal> {
    verify_and_compile(settings, file, bytes, signature, None)
}

/// Judge a candidate: the same bytes as the list in force change nothing;
/// otherwise the signature against the trusted keys, the header (serial
/// against the list in force, dates), then every entry (format, public
/// suffixes, protected names), compiling as it reads. The candidate is
/// refused whole at the first failure.
pub fn consider(
    settings: &LoadSettings,
    in_force: Option<&InForce>,
    file: &Path,
    bytes: &[u8],
    signature: &[u8],
    now: OffsetDateTime,
) -> Result<Decision, Refusal> {
    let digest = digest(bytes);
    if let Some(current) = in_force
        && current.digest == digest
    {
        return Ok(Decision::Unchanged);
    }
    verify_and_compile(
        settings,
        file,
        bytes,
        signature,
        Some((in_force, digest, now)),
    )
    .map(|a| Decision::Apply(Box::new(a)))
}

/// Read `path` and `path.minisig`.
pub fn read_pair(path: &Path) -> Result<(Vec<u8>, Vec<u8>), Refusal> {
    let bytes = std::fs::read(path).map_err(|e| refuse(path, format!("cannot read: {e}")))?;
    let sig_path = signature_path(path);
    let signature = std::fs::read(&sig_path)
        .map_err(|e| refuse(path, format!("{}: cannot read: {e}", sig_path.display())))?;
    Ok((bytes, signature))
}

/// Read `path` and `path.minisig` and judge them with [`consider`].
pub fn consider_file(
    settings: &LoadSettings,
    in_force: Option<&InForce>,
    path: &Path,
    now: OffsetDateTime,
) -> Result<Decision, Refusal> {
    let (bytes, signature) = read_pair(path)?;
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
    /// The bytes and signature of a list applied now, to keep in the state
    /// directory ([`persist`]) once serving: the source file holds them
    /// meanwhile, so a crash before that loses nothing.
    pub to_keep: Option<(Vec<u8>, Vec<u8>)>,
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
        Ok(Some(k)) => match verify_and_parse(settings, &state_file, &k.list, &k.signature) {
            Ok(a) => {
                if a.header.expires <= now {
                    warn!(serial = a.header.serial, expires = %crate::text::rfc3339(a.header.expires), "the kept list has expired; it stays in force until a newer list is applied");
                }
                Some(a)
            }
            Err(refusal) => {
                warn!(file = %state_file.display(), reason = %refusal.reason, "the kept list does not verify; ignored");
                None
            }
        },
        Ok(None) => None,
        Err(e) => {
            warn!(file = %e.file.display(), reason = %e.reason, "cannot read the kept list");
            None
        }
    };
    let current = kept.as_ref().map(Accepted::in_force);
    let mut pair = None;
    let decision = read_pair(source).and_then(|(bytes, signature)| {
        let d = consider(settings, current.as_ref(), source, &bytes, &signature, now);
        pair = Some((bytes, signature));
        d
    });
    match decision {
        Ok(Decision::Apply(accepted)) => Ok(Startup {
            in_force: *accepted,
            applied_now: true,
            previous: kept,
            to_keep: pair,
            refused: None,
        }),
        Ok(Decision::Unchanged) => match kept {
            Some(k) => Ok(Startup {
                in_force: k,
                applied_now: false,
                previous: None,
                to_keep: None,
                refused: None,
            }),
            None => Err(refuse(source, "unchanged without a kept list")),
        },
        Err(refusal) => match kept {
            Some(k) => {
                warn!(file = %refusal.file.display(), reason = %refusal.reason, serial = k.header.serial, "list refused; the kept list stays in force");
                Ok(Startup {
                    in_force: k,
                    applied_now: false,
                    previous: None,
                    to_keep: None,
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
pub fn persist(
    settings: &LoadSettings,
    accepted: &InForce,
    bytes: Vec<u8>,
    signature: &[u8],
) -> Result<(), state::StateError> {
    let meta = state::Meta {
        serial: accepted.header.serial,
        digest: crate::text::hex(&accepted.digest),
        key_id: accepted.key_id.clone(),
        applied: crate::text::rfc3339(OffsetDateTime::now_utc()),
        signature_len: 0,
        list_len: 0,
    };
    state::save(&settings.state_dir, &meta, bytes, signature)
}
