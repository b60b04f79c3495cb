//! The writer's side of sealing: when an epoch ends, and the order in
//! which the key file, the seal log, the journal and the trail learn of a
//! seal, so that a crash between any two steps is repaired at the next
//! start (see [`super::key`]).
//!
//! An epoch ends every `audit.seal_interval_s` if records were written
//! since the last seal, at every file rotation (the seal then also
//! announces the start of the trail that retention keeps), and at stop.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use tracing::{error, info};

use super::{Digest, Head, JOURNAL_MESSAGE, KeyError, LogError, Seal, SealingKey, log};

/// Where the sealing key is and how long an epoch lasts (from
/// `audit.seal_key` and `audit.seal_interval_s`).
#[derive(Debug, Clone)]
pub struct SealSettings {
    /// The key file.
    pub key: PathBuf,
    /// Time between seals.
    pub interval: Duration,
    /// `audit.seal = true`: a missing key stops the start. Otherwise (the
    /// setting left out) a missing key means the trail is not sealed, as
    /// systemd-journald's `Seal=` without a key, unless the trail was
    /// sealed before ([`SealError::KeyGone`]).
    pub required: bool,
}

/// Sealing cannot start, or a seal cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// No key file where `audit.seal_key` says.
    #[error(
        "audit.seal_key {}: no sealing key; make the first one with `rempart audit setup-keys --config FILE` (or set audit.seal = false to run unsealed)",
        path.display()
    )]
    NoKey {
        /// The key file.
        path: PathBuf,
    },
    /// No key file, but the trail in `audit.dir` was sealed: the key was
    /// removed or moved, and going on unsealed would hide it.
    #[error(
        "audit.seal_key {}: no sealing key, but this trail was sealed (its seal log is {}): the key was removed or moved; put it back where audit.seal_key says, or set audit.seal = false to go on unsealed (the seals then stop, as the auditor will see)",
        path.display(),
        log.display()
    )]
    KeyGone {
        /// The key file.
        path: PathBuf,
        /// The seal log that says the trail was sealed.
        log: PathBuf,
    },
    /// The key file cannot be read, written or used.
    #[error("audit.seal_key: {0}")]
    Key(#[from] KeyError),
    /// The seal log cannot be read or written.
    #[error("seal log: {0}")]
    Log(#[from] LogError),
    /// The trail does not reach the last seal's head, or holds another
    /// record there: sealing on would sign a rewritten past.
    #[error(
        "the trail ends at seq {end}, but the last seal (epoch {epoch}) signed seq {head} with another content or beyond: records were cut off or rewritten (`rempart audit verify --key` shows where); move the trail aside to start a new one"
    )]
    Diverged {
        /// The last seal's epoch.
        epoch: u64,
        /// Its head.
        head: u64,
        /// The trail's last record.
        end: u64,
    },
}

/// A seal that failed, and what the writer must still do.
#[derive(Debug)]
pub struct SealFailure {
    /// Why.
    pub error: SealError,
    /// The seal committed to the key file: it must go to the trail all
    /// the same (the next start appends it to the seal log).
    pub for_trail: Option<Box<Seal>>,
    /// Sealing cannot go on in this run (the key in memory no longer
    /// matches the key file or the seal log); the next start resumes.
    pub stop: bool,
}

/// The writer's sealing state.
#[derive(Debug)]
pub struct Sealer {
    key: SealingKey,
    path: PathBuf,
    dir: PathBuf,
    interval: Duration,
    last: Instant,
    /// `seq` of the last seal's own record (0: none yet).
    sealed_through: u64,
}

impl Sealer {
    /// At start, with the trail in `dir` ending at `end` (seq and line
    /// hash; seq 0 for an empty trail): read the key, repair what a crash
    /// left (a torn seal log line, a seal in the key file that the seal
    /// log lacks) and return the seal that must follow the trail's last
    /// record, if the crash came before it was written there.
    pub fn open(
        settings: &SealSettings,
        dir: &Path,
        end: Head,
    ) -> Result<(Sealer, Option<Seal>), SealError> {
        let key = match SealingKey::read(&settings.key) {
            Err(KeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(SealError::NoKey {
                    path: settings.key.clone(),
                });
            }
            k => k?,
        };
        let seal_log = log::read(dir)?;
        if seal_log.torn {
            log::cut_torn(dir)?;
        }
        if let Some(s) = key.resume(seal_log.seals.last())? {
            log::append(dir, s)?;
        }
        let mut for_trail = None;
        let mut sealed_through = 0;
        if let Some(s) = key.last_seal() {
            if end.seq < s.head.seq || (end.seq == s.head.seq && end.hash != s.head.hash) {
                return Err(SealError::Diverged {
                    epoch: s.epoch,
                    head: s.head.seq,
                    end: end.seq,
                });
            }
            if end.seq == s.head.seq {
                for_trail = Some(s.clone());
            }
            sealed_through = s.head.seq + 1;
        }
        info!(
            trail = %key.trail(),
            epoch = key.epoch(),
            key = %settings.key.display(),
            interval_s = settings.interval.as_secs(),
            "audit: sealing the trail"
        );
        Ok((
            Sealer {
                key,
                path: settings.key.clone(),
                dir: dir.to_owned(),
                interval: settings.interval,
                last: Instant::now(),
                sealed_through,
            },
            for_trail,
        ))
    }

    /// True if the epoch has lasted `audit.seal_interval_s` and records
    /// were written since the last seal (the trail's last is `seq`).
    pub fn due(&self, seq: u64) -> bool {
        self.last.elapsed() >= self.interval && self.unsealed(seq)
    }

    /// True if records were written since the last seal.
    pub fn unsealed(&self, seq: u64) -> bool {
        seq > self.sealed_through
    }

    /// End the epoch: seal `head` (written and synced), replace the key
    /// file, append the seal to the seal log and log its journal line.
    /// The caller then writes the returned seal as the record after
    /// `head` and calls [`Sealer::written`].
    pub fn seal(
        &mut self,
        head: Head,
        from_seq: u64,
        now: SystemTime,
    ) -> Result<Seal, SealFailure> {
        let fail = |error, for_trail, stop| SealFailure {
            error,
            for_trail,
            stop,
        };
        let seal = self
            .key
            .evolve(head, from_seq, now)
            .map_err(|e| fail(e.into(), None, false))?;
        self.last = Instant::now();
        // The commit point: from here on the old key is gone.
        self.key
            .write(&self.path)
            .map_err(|e| fail(e.into(), None, true))?;
        info!(
            trail = %seal.trail,
            epoch = seal.epoch,
            seq = seal.head.seq,
            head = %seal.head.hash,
            time = %seal.time_text(),
            seal = %seal.digest(),
            "{JOURNAL_MESSAGE}"
        );
        log::append(&self.dir, &seal)
            .map_err(|e| fail(e.into(), Some(Box::new(seal.clone())), true))?;
        Ok(seal)
    }

    /// The seal's record was written at `seq`.
    pub fn written(&mut self, seq: u64) {
        self.sealed_through = seq;
    }
}

impl SealFailure {
    /// Log the failure once, saying what it means for the trail.
    pub fn log(&self) {
        if self.stop {
            error!(error = %self.error, "audit: sealing stopped until the next start; records from now on are not sealed");
        } else {
            error!(error = %self.error, "audit: cannot seal now; will try again at the next epoch");
        }
    }
}

/// The chain's head as the writer holds it (a `prev` value) as a digest.
pub fn digest_of(prev: &crate::audit::chain::ChainHash) -> Digest {
    Digest::from_hex(prev.as_str()).unwrap_or(Digest::GENESIS)
}
