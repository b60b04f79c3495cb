//! One candidate list, judged: signature, parse, gates, and the compiled
//! [`Policy`], in one pass over the bytes. These functions only compute:
//! [`Admission`](super::Admission) runs them on a blocking thread, then
//! swaps and records.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::list::floor::Floor;
use crate::list::format::EntryRef;
use crate::list::gate::{self, Protected};
use crate::list::signature::TrustedKeys;
use crate::list::{Header, List, ReadError, digest};
use crate::policy::{Policy, PolicyBuilder};

/// What the admission path needs from the config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Keys whose signatures are accepted.
    pub trusted_keys: TrustedKeys,
    /// Names that no list may redirect (canonical form).
    pub protected: Vec<String>,
    /// Where the list in force is kept.
    pub state_dir: PathBuf,
    /// The largest list file read (`list.max_bytes`).
    pub max_bytes: u64,
    /// The list's legal delay in hours (`deadline_hours`), for the audit
    /// trail's `applied` records and the auditor's report.
    pub deadline_hours: u32,
}

/// A list that passed every check, compiled: the policy snapshot to
/// enforce, and what identifies the list.
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
/// the bytes), so that a million-entry list is not held twice in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InForce {
    /// The list's header.
    pub header: Header,
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
    /// The same bytes as the list in force: nothing to do.
    Unchanged,
    /// An older list that this resolver applied before (its digest is in
    /// the [`Floor`]'s history): the list file left behind by a push, say.
    /// Nothing to do, and nothing to alert on.
    Stale {
        /// Its serial.
        serial: u64,
    },
}

/// Why a candidate list was refused; names the file, the line or key, the reason.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", file.display())]
pub struct Refusal {
    /// The file at fault (the list, its signature, or the label of a list
    /// that came without a file).
    pub file: PathBuf,
    /// The reason, with the line or key id where there is one.
    pub reason: String,
}

impl Refusal {
    /// A refusal of `file`.
    pub fn new(file: &Path, reason: impl Into<String>) -> Refusal {
        Refusal {
            file: file.to_owned(),
            reason: reason.into(),
        }
    }
}

impl From<ReadError> for Refusal {
    fn from(e: ReadError) -> Refusal {
        let reason = match &e {
            ReadError::Io { source, .. } => format!("cannot read: {source}"),
            ReadError::NotRegular { kind, .. } => format!("not a regular file (a {kind})"),
            ReadError::TooLarge { limit, .. } => {
                format!("larger than {limit} bytes (list.max_bytes for a list)")
            }
        };
        Refusal::new(e.file(), reason)
    }
}

/// Judge a candidate: the same bytes as the list in force change nothing;
/// otherwise the signature against the trusted keys, the header (serial
/// against the list in force, dates), then every entry (format, public
/// suffixes, protected names), compiling as it reads. The candidate is
/// refused whole at the first failure. [`consider_against`] with no floor.
pub fn consider(
    settings: &Settings,
    in_force: Option<&InForce>,
    file: &Path,
    bytes: &[u8],
    signature: &[u8],
    now: OffsetDateTime,
) -> Result<Decision, Refusal> {
    consider_against(
        settings,
        in_force,
        &Floor::default(),
        file,
        bytes,
        signature,
        now,
    )
}

/// [`consider`], with the serial floor and the history of lists applied:
///
/// - a list this resolver applied before, older than the list in force or
///   the floor, is [`Decision::Stale`] (it was verified when applied; its
///   digest names it);
/// - any other list must have a serial above both the list in force and
///   the floor, so that a lost state file does not let an older list in;
/// - a list of the history at the floor, when the list in force is older
///   (the state file could not be written), is judged against the list in
///   force only: it is the list that was in force.
pub fn consider_against(
    settings: &Settings,
    in_force: Option<&InForce>,
    floor: &Floor,
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
    let current = in_force.map(|c| c.header.serial);
    let top = current.max(floor.serial());
    let to_beat = match floor.seen(&digest) {
        Some(serial) if top.is_some_and(|top| serial < top) => {
            return Ok(Decision::Stale { serial });
        }
        Some(_) => current,
        None => top,
    };
    verify_and_compile(
        settings,
        file,
        bytes,
        signature,
        Some((to_beat, digest, now)),
    )
    .map(|a| Decision::Apply(Box::new(a)))
}

/// Verify the signature and compile, without the other gates: for the list
/// kept in the state directory, which this resolver applied before (a key
/// removed from the trust list takes its lists with it; a list expired
/// since stays in force until a newer one comes).
pub fn verify_kept(
    settings: &Settings,
    file: &Path,
    bytes: &[u8],
    signature: &[u8],
) -> Result<Accepted, Refusal> {
    verify_and_compile(settings, file, bytes, signature, None)
}

/// Verify the signature, then read and compile the list in one pass,
/// applying `checks` as it goes. Nothing is parsed before the signature
/// verifies; the entries are never held whole (a million of them would
/// cost more than the snapshot itself).
fn verify_and_compile(
    settings: &Settings,
    file: &Path,
    bytes: &[u8],
    signature: &[u8],
    checks: Option<(Option<u64>, [u8; 32], OffsetDateTime)>,
) -> Result<Accepted, Refusal> {
    let key_id = settings
        .trusted_keys
        .verify(bytes, signature)
        .map_err(|e| Refusal::new(file, format!("signature: {e}")))?;
    let digest = match checks {
        Some((_, d, _)) => d,
        None => digest(bytes),
    };
    let protected = Protected::new(&settings.protected);
    let lines = bytes.iter().filter(|&&b| b == b'\n').count();
    // Two stages on two threads: one reads and checks, the other compiles
    // what it is handed, in batches. Both run at a low priority (nice 10):
    // the query workers come first, the load takes what is left.
    const BATCH: usize = 4096;
    let (head, builder) = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<EntryRef<'_>>>(16);
        let compiler = scope.spawn(move || {
            lower_priority();
            let mut builder = PolicyBuilder::for_list(lines, bytes.len());
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
                    Some((to_beat, _, now)) => {
                        if let Some(to_beat) = to_beat {
                            gate::check_serial(header.serial, to_beat)
                                .map_err(gate::GateError::into_header_refusal)?;
                        }
                        gate::check_header(header, now)
                            .map_err(gate::GateError::into_header_refusal)
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
                    Ok::<(), gate::GateError>(())
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
    let builder = builder.map_err(|_| Refusal::new(file, "the compiler thread failed"))?;
    let head = head
        .map_err(|_| Refusal::new(file, "the reader thread failed"))?
        .map_err(|e| {
            Refusal::new(
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

/// The crate-neutral priority (0 lowest .. 99 highest) that
/// `thread_priority` turns into nice 10 under SCHED_OTHER: it maps `p` to
/// `-20 + trunc(39 * (1 - p / 99))`, which is 10 for 22 (25 gave nice 9).
const LOAD_PRIORITY: u8 = 22;

/// Nice 10 for the calling thread (best effort: an error only means the
/// load competes with queries on equal terms).
fn lower_priority() {
    use thread_priority::{ThreadPriority, ThreadPriorityValue, set_current_thread_priority};
    if let Ok(value) = ThreadPriorityValue::try_from(LOAD_PRIORITY) {
        let _ = set_current_thread_priority(ThreadPriority::Crossplatform(value));
    }
}

#[cfg(test)]
mod tests {
    /// The nice value of the calling thread: field 19 of its `stat` line,
    /// counted after the command name (which may hold spaces).
    #[cfg(target_os = "linux")]
    fn own_nice() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        after_name.split(' ').nth(16).unwrap().parse().unwrap()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_load_threads_run_at_nice_10() {
        let nice = std::thread::spawn(|| {
            super::lower_priority();
            own_nice()
        })
        .join()
        .unwrap();
        assert_eq!(nice, 10);
    }
}
