//! The sealing key: the only secret of the scheme, held by the resolver,
//! replaced at every seal so that the key of a past epoch no longer exists
//! anywhere.
//!
//! # The key file
//!
//! Text, mode 0600, outside the trail's directory (a copy of the trail
//! handed to an auditor must not carry the key that can seal its future):
//!
//! ```text
//! # comment lines
//! rempart-seal-key v1
//! trail 0123456789abcdef
//! epoch 7
//! secret <64 hex: the Ed25519 seed of this epoch's key>
//! last-seal <the seal of epoch 6, as a seal log line>
//! ```
//!
//! `last-seal` (absent at epoch 0) is the seal the previous key made just
//! before it was erased. Writing the new key file is the commit point of a
//! seal; the order is: [`SealingKey::evolve`], [`SealingKey::write`], then
//! append the seal to the seal log, then to the trail. A crash between any
//! two leaves a key file that says which seal to append at the next start
//! ([`SealingKey::resume`]), never a seal whose next key was lost (which
//! would end the chain) nor an old key still on disk beside a seal made
//! with it (which would let the next start sign the epoch twice).

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use zeroize::Zeroizing;

use super::{Head, KeyId, Seal, VerifyingKey, unhex};

/// First line of a key file (after comments).
const MAGIC: &str = "rempart-seal-key v1";

/// The sealing key cannot be drawn, read, written or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The system gave no randomness.
    #[error("no randomness from the system for a sealing key: {0}")]
    Random(getrandom::Error),
    /// A file operation failed.
    #[error("{}: cannot {op}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The key file is not a plain file (a symbolic link, a directory).
    #[error("{}: not a plain file", path.display())]
    NotAFile {
        /// The file.
        path: PathBuf,
    },
    /// Someone other than its owner can read or write the key file.
    #[error("{}: mode {mode:03o} lets the group or others read or write the sealing key (chmod 600)", path.display())]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file is not in the format.
    #[error("{}:{line}: {reason}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// 1-based line, 0 for the file as a whole.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The key file and the seal log disagree.
    #[error(
        "the sealing key (epoch {key_epoch}) does not follow the seal log (last epoch {}): a key file restored from a backup, or a seal log edited, removed or of another trail",
        match .log_epoch { Some(e) => e.to_string(), None => "none".to_owned() }
    )]
    Resume {
        /// The key's epoch.
        key_epoch: u64,
        /// The log's last seal's epoch.
        log_epoch: Option<u64>,
    },
    /// A seal must cover at least one record more than the previous seal.
    #[error("a seal's head (seq {seq}) must follow the previous seal's (seq {previous})")]
    HeadNotAfter {
        /// The head asked for.
        seq: u64,
        /// The previous seal's head.
        previous: u64,
    },
    /// A seal cannot say that the trail starts after its own record (the
    /// one after its head).
    #[error("a seal's first kept seq ({from_seq}) cannot follow its own record (seq {head} + 1)")]
    FromAfterHead {
        /// `from_seq` asked for.
        from_seq: u64,
        /// The head's seq.
        head: u64,
    },
}

/// A random Ed25519 key (the 32-byte seed of RFC 8032 section 5.1.5),
/// drawn from the system (`getrandom`).
fn random_key() -> Result<ed25519_dalek::SigningKey, KeyError> {
    let mut seed = Zeroizing::new([0u8; 32]);
    getrandom::fill(seed.as_mut_slice()).map_err(KeyError::Random)?;
    Ok(ed25519_dalek::SigningKey::from_bytes(&seed))
}

/// The resolver's current sealing key `sk_n`.
///
/// It signs exactly one seal, the one that ends its epoch, and is replaced
/// in the same step ([`SealingKey::evolve`]); the replaced key is erased
/// from memory (the Ed25519 key zeroes itself when dropped) and from disk
/// by the next [`SealingKey::write`].
pub struct SealingKey {
    trail: KeyId,
    epoch: u64,
    key: ed25519_dalek::SigningKey,
    last_seal: Option<Seal>,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingKey")
            .field("trail", &self.trail)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

impl SealingKey {
    /// Set-up: a new trail's first key `sk_0`. Its
    /// [`SealingKey::verifying_key`] is `pk_0`, the auditor's key.
    pub fn generate() -> Result<SealingKey, KeyError> {
        let key = random_key()?;
        Ok(SealingKey {
            trail: VerifyingKey(key.verifying_key()).id(),
            epoch: 0,
            key,
            last_seal: None,
        })
    }

    /// The trail this key seals (the key id of `pk_0`).
    pub fn trail(&self) -> KeyId {
        self.trail
    }

    /// The epoch this key will seal.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// This epoch's verification key (`pk_0` at set-up).
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey(self.key.verifying_key())
    }

    /// The key itself, for tests that play an intruder holding it.
    #[cfg(test)]
    pub(super) fn key_for_tests(&self) -> &ed25519_dalek::SigningKey {
        &self.key
    }

    /// The seal the previous key made (none at epoch 0): at start, the
    /// writer appends it to the seal log and the trail if they lack it.
    pub fn last_seal(&self) -> Option<&Seal> {
        self.last_seal.as_ref()
    }

    /// At start: what the key file's `last-seal` asks of the seal log
    /// whose last seal is `log_last`. `Ok(Some(seal))`: the key file was
    /// replaced but the seal was not appended (a crash between the two):
    /// append it to the seal log, and to the trail if the trail's last
    /// record is its head. `Ok(None)`: the log is up to date. An error:
    /// the key file and the log disagree (a key file restored from a
    /// backup, a seal log edited, removed or from another trail); sealing
    /// on would fork the chain, which `audit verify` reports.
    pub fn resume(&self, log_last: Option<&Seal>) -> Result<Option<&Seal>, KeyError> {
        let behind = || KeyError::Resume {
            key_epoch: self.epoch,
            log_epoch: log_last.map(|s| s.epoch),
        };
        if let Some(l) = log_last
            && l.trail != self.trail
        {
            return Err(behind());
        }
        match (&self.last_seal, log_last) {
            (None, None) => Ok(None),
            (Some(mine), Some(l)) if mine == l => Ok(None),
            (Some(mine), None) if mine.epoch == 0 => Ok(Some(mine)),
            (Some(mine), Some(l)) if l.epoch + 1 == mine.epoch => Ok(Some(mine)),
            _ => Err(behind()),
        }
    }

    /// End this epoch: sign the seal of `head` (the last record written,
    /// and fsynced) with this epoch's key, naming a new random key, and
    /// become that key. The old key is gone from memory when this returns;
    /// [`SealingKey::write`] must then replace the key file before the
    /// seal is written anywhere (see the module's documentation).
    ///
    /// `from_seq`: the first record the trail still holds (1 without
    /// retention). `time`: now.
    pub fn evolve(
        &mut self,
        head: Head,
        from_seq: u64,
        time: SystemTime,
    ) -> Result<Seal, KeyError> {
        if let Some(previous) = &self.last_seal
            && head.seq <= previous.head.seq
        {
            return Err(KeyError::HeadNotAfter {
                seq: head.seq,
                previous: previous.head.seq,
            });
        }
        if from_seq > head.seq + 1 {
            return Err(KeyError::FromAfterHead {
                from_seq,
                head: head.seq,
            });
        }
        let next = random_key()?;
        let time_ms = time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let seal = Seal {
            trail: self.trail,
            epoch: self.epoch,
            head,
            from_seq,
            time_ms,
            next_key: VerifyingKey(next.verifying_key()),
            sig: [0; 64],
        }
        .signed(&self.key);
        // The old key is dropped here, and zeroed (ZeroizeOnDrop).
        self.key = next;
        self.epoch += 1;
        self.last_seal = Some(seal.clone());
        Ok(seal)
    }

    /// The key file's text.
    fn to_text(&self) -> Zeroizing<String> {
        let mut text = Zeroizing::new(String::with_capacity(512));
        text.push_str(
            "# Rempart's audit sealing key: secret, replaced at every seal.\n\
             # Never copy it: whoever holds it can seal false records.\n",
        );
        text.push_str(MAGIC);
        text.push('\n');
        text.push_str(&format!("trail {}\nepoch {}\n", self.trail, self.epoch));
        text.push_str("secret ");
        // `hex` sizes its string exactly: no copy of the secret is left
        // behind by a reallocation.
        text.push_str(&Zeroizing::new(crate::text::hex(self.key.as_bytes())));
        text.push('\n');
        if let Some(seal) = &self.last_seal {
            text.push_str("last-seal ");
            text.push_str(&seal.to_log_line());
            text.push('\n');
        }
        text
    }

    /// Parse a key file's text.
    fn from_text(path: &Path, text: &str) -> Result<SealingKey, KeyError> {
        let err = |line: usize, reason: String| KeyError::Format {
            path: path.to_owned(),
            line,
            reason,
        };
        let mut magic = false;
        let mut trail = None;
        let mut epoch = None;
        let mut secret: Option<Zeroizing<[u8; 32]>> = None;
        let mut last_seal = None;
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            if !magic {
                if line != MAGIC {
                    return Err(err(
                        n,
                        format!("not a sealing key file (expected `{MAGIC}`)"),
                    ));
                }
                magic = true;
                continue;
            }
            let (word, value) = line.split_once(' ').unwrap_or((line, ""));
            let twice = || err(n, format!("`{word}` given twice"));
            match word {
                "trail" if trail.is_none() => {
                    trail = Some(
                        KeyId::from_hex(value)
                            .ok_or_else(|| err(n, "trail: not 16 hex digits".into()))?,
                    );
                }
                "epoch" if epoch.is_none() => {
                    epoch = Some(
                        value
                            .parse::<u64>()
                            .map_err(|_| err(n, "epoch: not a number".into()))?,
                    );
                }
                "secret" if secret.is_none() => {
                    secret = Some(Zeroizing::new(
                        unhex(value).ok_or_else(|| err(n, "secret: not 64 hex digits".into()))?,
                    ));
                }
                "last-seal" if last_seal.is_none() => {
                    last_seal = Some(
                        Seal::from_log_line(value.as_bytes())
                            .map_err(|e| err(n, format!("last-seal: {e}")))?,
                    );
                }
                "trail" | "epoch" | "secret" | "last-seal" => return Err(twice()),
                _ => return Err(err(n, format!("unknown line `{word}`"))),
            }
        }
        let missing = |what: &str| err(0, format!("no `{what}` line"));
        let trail = trail.ok_or_else(|| missing("trail"))?;
        let epoch = epoch.ok_or_else(|| missing("epoch"))?;
        let secret = secret.ok_or_else(|| missing("secret"))?;
        let key = ed25519_dalek::SigningKey::from_bytes(&secret);
        let public = VerifyingKey(key.verifying_key());
        // The key must be the one the last seal certified (or pk_0 itself):
        // anything else could only make seals that fail verification.
        match &last_seal {
            None if epoch == 0 && public.id() == trail => {}
            None => {
                return Err(err(
                    0,
                    "no `last-seal`, yet the key is not the trail's first".into(),
                ));
            }
            Some(s) if s.trail == trail && s.epoch + 1 == epoch && s.next_key == public => {}
            Some(_) => {
                return Err(err(
                    0,
                    "`last-seal` does not certify this key for this epoch".into(),
                ));
            }
        }
        Ok(SealingKey {
            trail,
            epoch,
            key,
            last_seal,
        })
    }

    /// Read the key file, refusing one that the group or others can read
    /// or write, and one that is not a plain file.
    pub fn read(path: &Path) -> Result<SealingKey, KeyError> {
        let io = |op, source| KeyError::Io {
            path: path.to_owned(),
            op,
            source,
        };
        let plain = |m: &std::fs::Metadata| m.file_type().is_file();
        if !plain(&std::fs::symlink_metadata(path).map_err(|e| io("read", e))?) {
            return Err(KeyError::NotAFile {
                path: path.to_owned(),
            });
        }
        let mut file = File::open(path).map_err(|e| io("open", e))?;
        // Checked on the open file: what was checked is what is read.
        let meta = file.metadata().map_err(|e| io("read", e))?;
        if !plain(&meta) {
            return Err(KeyError::NotAFile {
                path: path.to_owned(),
            });
        }
        let mode = meta.mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
        let mut bytes = Zeroizing::new(Vec::with_capacity(4096));
        file.read_to_end(&mut bytes).map_err(|e| io("read", e))?;
        let text = std::str::from_utf8(&bytes).map_err(|_| KeyError::Format {
            path: path.to_owned(),
            line: 0,
            reason: "not UTF-8 text".into(),
        })?;
        SealingKey::from_text(path, text)
    }

    /// Replace the key file with this key, atomically, mode 0600: write
    /// a temporary file beside it, fsync, rename over the old one, fsync
    /// the directory. Then the old file's bytes are overwritten with zeros
    /// through a handle opened before the rename (best effort: a
    /// copy-on-write file system or an SSD may keep the old blocks; the
    /// rename alone already removes the old key from the file system's
    /// view). A crash at any point leaves either the old key file or the
    /// new one, whole.
    pub fn write(&self, path: &Path) -> Result<(), KeyError> {
        let io = |op, source| KeyError::Io {
            path: path.to_owned(),
            op,
            source,
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
        tmp_name.push(".tmp");
        let tmp = dir.join(tmp_name);
        // A temporary file left by a crash holds a key that was never
        // committed: wipe it, then start again.
        if let Ok(stale) = OpenOptions::new().write(true).open(&tmp) {
            wipe(stale);
            std::fs::remove_file(&tmp).map_err(|e| io("remove the stale temporary file", e))?;
        }
        let old = OpenOptions::new().write(true).open(path).ok();
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io("create the temporary file", e))?;
        file.write_all(self.to_text().as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| io("write the temporary file", e))?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(|e| io("replace", e))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("sync the directory", e))?;
        if let Some(old) = old {
            wipe(old);
        }
        Ok(())
    }
}

/// Overwrite a file's bytes with zeros and sync, best effort (the caller
/// has nothing better to do on failure than go on).
fn wipe(mut file: File) {
    let Ok(len) = file.metadata().map(|m| m.len()) else {
        return;
    };
    let zeros = [0u8; 4096];
    let mut left = len;
    let _ = file.seek(SeekFrom::Start(0));
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        if file.write_all(&zeros[..n]).is_err() {
            return;
        }
        left -= n as u64;
    }
    let _ = file.sync_data();
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use crate::audit::seal::Digest;

    fn head(seq: u64) -> Head {
        Head {
            seq,
            hash: Digest::of(format!("line {seq}").as_bytes()),
        }
    }

    #[test]
    fn each_seal_is_signed_by_the_key_the_one_before_certified() {
        let mut key = SealingKey::generate().unwrap();
        let pk0 = key.verifying_key();
        assert_eq!(key.trail(), pk0.id());
        let s0 = key.evolve(head(10), 1, SystemTime::now()).unwrap();
        let s1 = key.evolve(head(20), 1, SystemTime::now()).unwrap();
        assert_eq!((s0.epoch, s1.epoch, key.epoch()), (0, 1, 2));
        assert!(s0.verifies_with(&pk0));
        assert!(s1.verifies_with(&s0.next_key));
        assert!(!s1.verifies_with(&pk0));
        assert_eq!(key.verifying_key(), s1.next_key);
        assert_eq!(key.last_seal(), Some(&s1));
    }

    #[test]
    fn an_evolved_key_cannot_sign_an_earlier_epoch() {
        let mut key = SealingKey::generate().unwrap();
        let pk0 = key.verifying_key();
        let s0 = key.evolve(head(10), 1, SystemTime::now()).unwrap();
        // The intruder holds the key of epoch 1 and rewrites epoch 0's
        // seal to cover other records: it does not verify with pk_0.
        let forged = Seal {
            head: head(9),
            ..s0.clone()
        }
        .signed(&key.key);
        assert!(!forged.verifies_with(&pk0));
        // Nor does the API let it seal epoch 0 again.
        let again = key.evolve(head(11), 1, SystemTime::now()).unwrap();
        assert_eq!(again.epoch, 1);
        assert!(!again.verifies_with(&pk0));
    }

    #[test]
    fn a_seal_must_move_the_head_forward() {
        let mut key = SealingKey::generate().unwrap();
        key.evolve(head(10), 1, SystemTime::now()).unwrap();
        assert!(matches!(
            key.evolve(head(10), 1, SystemTime::now()),
            Err(KeyError::HeadNotAfter {
                seq: 10,
                previous: 10
            })
        ));
        assert!(matches!(
            key.evolve(head(12), 14, SystemTime::now()),
            Err(KeyError::FromAfterHead { .. })
        ));
        assert_eq!(key.epoch(), 1, "a refused seal changes nothing");
    }

    #[test]
    fn at_start_the_seal_a_crash_left_out_of_the_log_is_appended() {
        let dir = tempfile::tempdir().unwrap();
        let backup = dir.path().join("seal.key");
        let mut key = SealingKey::generate().unwrap();
        assert_eq!(key.resume(None).unwrap(), None);
        let s0 = key.evolve(head(5), 1, SystemTime::now()).unwrap();
        key.write(&backup).unwrap();
        // Crash after the key file, before the log.
        assert_eq!(key.resume(None).unwrap(), Some(&s0));
        assert_eq!(key.resume(Some(&s0)).unwrap(), None);
        let s1 = key.evolve(head(9), 1, SystemTime::now()).unwrap();
        assert_eq!(key.resume(Some(&s0)).unwrap(), Some(&s1));
        assert_eq!(key.resume(Some(&s1)).unwrap(), None);
        // A key file from a backup (behind the log), a log cut by more
        // than a crash could, a log of another trail: refused.
        assert!(matches!(
            SealingKey::read(&backup).unwrap().resume(Some(&s1)),
            Err(KeyError::Resume {
                key_epoch: 1,
                log_epoch: Some(1)
            })
        ));
        let mut old = SealingKey::generate().unwrap();
        let o0 = old.evolve(head(5), 1, SystemTime::now()).unwrap();
        assert!(matches!(
            old.resume(Some(&s1)),
            Err(KeyError::Resume { .. })
        ));
        key.evolve(head(12), 1, SystemTime::now()).unwrap();
        assert!(matches!(
            key.resume(Some(&s0)),
            Err(KeyError::Resume {
                key_epoch: 3,
                log_epoch: Some(0)
            })
        ));
        assert!(key.resume(None).is_err());
        assert!(key.resume(Some(&o0)).is_err());
        let fresh = SealingKey::generate().unwrap();
        assert!(fresh.resume(Some(&s0)).is_err());
    }

    #[test]
    fn the_key_file_is_0600_replaced_whole_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seal.key");
        let mut key = SealingKey::generate().unwrap();
        key.write(&path).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let back = SealingKey::read(&path).unwrap();
        assert_eq!(back.verifying_key(), key.verifying_key());
        assert_eq!((back.epoch(), back.trail()), (0, key.trail()));

        let old_secret = crate::text::hex(key.key.as_bytes());
        let old_inode = meta.ino();
        let seal = key.evolve(head(5), 1, SystemTime::now()).unwrap();
        key.write(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains(&old_secret),
            "the old key is not in the file"
        );
        assert_ne!(std::fs::metadata(&path).unwrap().ino(), old_inode);
        assert!(!dir.path().join("seal.key.tmp").exists());
        let back = SealingKey::read(&path).unwrap();
        assert_eq!(back.epoch(), 1);
        assert_eq!(back.verifying_key(), seal.next_key);
        assert_eq!(back.last_seal(), Some(&seal), "the pending seal survives");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn a_stale_temporary_file_is_wiped_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seal.key");
        std::fs::write(dir.path().join("seal.key.tmp"), "half a key").unwrap();
        let key = SealingKey::generate().unwrap();
        key.write(&path).unwrap();
        assert!(!dir.path().join("seal.key.tmp").exists());
        assert_eq!(
            SealingKey::read(&path).unwrap().verifying_key(),
            key.verifying_key()
        );
    }

    #[test]
    fn a_key_file_others_can_read_or_write_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seal.key");
        SealingKey::generate().unwrap().write(&path).unwrap();
        for mode in [0o640, 0o604, 0o620, 0o602, 0o644] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            match SealingKey::read(&path) {
                Err(KeyError::Permissions { mode: m, .. }) => assert_eq!(m, mode),
                other => panic!("mode {mode:o}: {other:?}"),
            }
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert!(
            SealingKey::read(&path).is_ok(),
            "read-only for the owner is fine"
        );
        let link = dir.path().join("link.key");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(matches!(
            SealingKey::read(&link),
            Err(KeyError::NotAFile { .. })
        ));
    }

    #[test]
    fn a_key_file_that_does_not_hold_together_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seal.key");
        let mut key = SealingKey::generate().unwrap();
        key.evolve(head(3), 1, SystemTime::now()).unwrap();
        let good = key.to_text();
        let other = SealingKey::generate().unwrap();
        let other_secret = format!("secret {}", crate::text::hex(other.key.as_bytes()));
        let secret_line = good.lines().find(|l| l.starts_with("secret ")).unwrap();
        let cases = [
            good.replace(MAGIC, "rempart-seal-key v2"),
            good.replace("epoch 1", "epoch 2"),
            good.replace(secret_line, &other_secret),
            good.replace("trail ", "trail 0"),
            good.replace("epoch 1\n", "epoch 1\nepoch 1\n"),
            good.replace("epoch 1\n", "epoch 1\ncolour blue\n"),
            good.lines()
                .filter(|l| !l.starts_with("last-seal"))
                .collect::<Vec<_>>()
                .join("\n"),
        ];
        for text in cases {
            std::fs::write(&path, &text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            assert!(
                matches!(SealingKey::read(&path), Err(KeyError::Format { .. })),
                "{text}"
            );
        }
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let key = SealingKey::generate().unwrap();
        let secret = crate::text::hex(key.key.as_bytes());
        assert!(!format!("{key:?}").contains(&secret));
    }
}
