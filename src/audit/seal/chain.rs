//! Checking a sealed trail with the auditor's key `pk_0`.
//!
//! [`SealChain::new`] checks the seal log: seal n is epoch n, names the
//! trail of `pk_0`, and verifies with the key seal n-1 certified (`pk_0`
//! for seal 0). Then every record of the trail, in order, goes through
//! [`SealChain::record`]: `seq` grows by one, `prev` is the hash of the
//! record before, the record at a seal's head has the hash the seal
//! signed, and the record after it is that seal. [`SealChain::finish`]
//! checks that the trail reaches the last seal's head and says what is
//! proven.
//!
//! What each check catches:
//!
//! | change to the trail                                  | seen as            |
//! | ---------------------------------------------------- | ------------------ |
//! | a record rewritten, deleted, inserted or reordered, the chain recomputed | [`ChainError::Head`] |
//! | the same, the chain not recomputed                   | [`ChainError::Link`], [`ChainError::Seq`] |
//! | records cut off the end, up to the last seal         | [`ChainError::Truncated`] |
//! | the oldest files deleted, no seal announcing it      | [`ChainError::Missing`] |
//! | a seal forged or altered, the chain re-keyed         | [`ChainError::Forged`] |
//! | a seal removed from the log, inserted, reordered     | [`ChainError::Epoch`] |
//! | a trail checked with another trail's key             | [`ChainError::OtherTrail`] |
//! | the seal log cut, the trail still holding the seals  | [`ChainError::NotInLog`] |
//!
//! Records after the last seal are checked for `seq` and `prev` only:
//! nothing proves them yet, and the report says how many there are.

use std::fmt;

use super::{Digest, KeyId, Seal, VerifyingKey};

/// One record of the trail, as the verifier needs it.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Its `seq`.
    pub seq: u64,
    /// Its `prev`.
    pub prev: Digest,
    /// SHA-256 of its line.
    pub hash: Digest,
    /// The seal it holds, if it is a record of kind `seal`.
    pub seal: Option<&'a Seal>,
}

/// What a seal says of the trail, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sealed {
    /// The seal's epoch.
    pub epoch: u64,
    /// The last record it covers.
    pub seq: u64,
    /// That record's line hash (to compare with the journal's copy).
    pub head: Digest,
    /// When it was sealed, ms since 1970.
    pub time_ms: u64,
}

impl Sealed {
    fn of(s: &Seal) -> Sealed {
        Sealed {
            epoch: s.epoch,
            seq: s.head.seq,
            head: s.head.hash,
            time_ms: s.time_ms,
        }
    }

    /// The time as the trail writes times.
    pub fn time_text(&self) -> String {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(self.time_ms);
        crate::text::record_time(t)
    }
}

/// Records at the start of the trail that are no longer there, and why
/// that is not tampering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Removal {
    /// The first record removed.
    pub first: u64,
    /// The last record removed.
    pub last: u64,
    /// The seal that announced their removal by retention; `None`: they
    /// were gone before the first seal (sealing was set up on a trail
    /// whose oldest files had already been removed), so nothing says what
    /// they held or why they went.
    pub announced: Option<Sealed>,
}

/// What a sealed trail proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealReport {
    /// The trail: the key id of `pk_0`.
    pub trail: KeyId,
    /// Seals verified.
    pub seals: u64,
    /// The last seal: every record up to it is proven. `None`: nothing is.
    pub sealed: Option<Sealed>,
    /// Records read.
    pub records: u64,
    /// Records after the last seal: not proven.
    pub unsealed: u64,
    /// Records no longer in the trail, each range with its reason.
    pub removed: Vec<Removal>,
    /// Every seal of the seal log, verified from `pk_0` and against the
    /// trail, in epoch order (what a copy kept elsewhere is checked
    /// against: [`super::journal`]).
    pub verified: Vec<Seal>,
}

impl fmt::Display for SealReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sealed {
            Some(s) => writeln!(
                f,
                "sealed up to {} (seq {}, epoch {}, head {}), trail key id {}",
                s.time_text(),
                s.seq,
                s.epoch,
                s.head,
                self.trail
            )?,
            None => writeln!(f, "nothing sealed yet, trail key id {}", self.trail)?,
        }
        for r in &self.removed {
            match &r.announced {
                Some(s) => writeln!(
                    f,
                    "records {}..{} removed by retention on {} (seal of epoch {})",
                    r.first,
                    r.last,
                    s.time_text(),
                    s.epoch
                )?,
                None => writeln!(
                    f,
                    "records {}..{} were gone before the first seal: nothing proves what they held",
                    r.first, r.last
                )?,
            }
        }
        if self.unsealed > 0 {
            writeln!(
                f,
                "{} record(s) after the last seal are not sealed: nothing proves them yet",
                self.unsealed
            )?;
        }
        Ok(())
    }
}

/// Names the key a seal must verify with, for messages.
fn certifier(epoch: &u64) -> String {
    match epoch {
        0 => "the given verification key".to_owned(),
        n => format!("the key the seal of epoch {} certified", n - 1),
    }
}

/// Why a sealed trail is not what its seals say.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// A seal names another trail.
    #[error(
        "the seal of epoch {epoch} belongs to the trail with key id {trail}, not {key} (the key given): the wrong verification key, or the trail was sealed again under another key"
    )]
    OtherTrail {
        /// The seal's epoch.
        epoch: u64,
        /// The trail it names.
        trail: KeyId,
        /// The id of the key given.
        key: KeyId,
    },
    /// The seal log's n-th seal is not epoch n.
    #[error(
        "the seal log holds epoch {found} where epoch {expected} belongs: a seal was removed, inserted or reordered"
    )]
    Epoch {
        /// The epoch expected at that place.
        expected: u64,
        /// The epoch found.
        found: u64,
    },
    /// A seal's signature does not verify.
    #[error(
        "the seal of epoch {epoch} does not verify with {}: the seal was forged or altered, or the chain was re-keyed",
        certifier(.epoch)
    )]
    Forged {
        /// The seal's epoch.
        epoch: u64,
    },
    /// A seal covers no record after the previous seal's head.
    #[error(
        "the seal of epoch {epoch} covers up to seq {seq}, not after the previous seal (seq {previous})"
    )]
    HeadBackwards {
        /// The seal's epoch.
        epoch: u64,
        /// Its head.
        seq: u64,
        /// The previous seal's head.
        previous: u64,
    },
    /// A seal's first kept record is after its own record, or before the
    /// previous seal's (removed records do not come back).
    #[error(
        "the seal of epoch {epoch} says the trail starts at seq {from_seq}, which is after its own record or before the previous seal's start"
    )]
    From {
        /// The seal's epoch.
        epoch: u64,
        /// Its `from_seq`.
        from_seq: u64,
    },
    /// `seq` does not grow by one.
    #[error("seq {seq} follows seq {after}: records are missing or out of order")]
    Seq {
        /// This record's seq.
        seq: u64,
        /// The previous record's.
        after: u64,
    },
    /// `prev` is not the hash of the record before (or, for seq 1, the
    /// genesis value).
    #[error(
        "seq {seq}: prev is not the hash of the record before it (a record was edited, deleted, inserted or reordered)"
    )]
    Link {
        /// This record's seq.
        seq: u64,
    },
    /// The record at a seal's head is not the one the seal signed.
    #[error(
        "seq {seq} is not the record the seal of epoch {epoch} signed: records up to it were rewritten, deleted, inserted or reordered"
    )]
    Head {
        /// The seal's epoch.
        epoch: u64,
        /// Its head.
        seq: u64,
    },
    /// The record after a seal's head is not that seal.
    #[error("seq {seq} is not the seal of epoch {epoch} that the seal log holds")]
    SealLine {
        /// The seal's epoch.
        epoch: u64,
        /// Where its record should be.
        seq: u64,
    },
    /// The trail holds a seal the seal log does not.
    #[error(
        "seq {seq} is a seal (epoch {epoch}) that the seal log does not hold at that place: the seal log was cut or edited"
    )]
    NotInLog {
        /// The record.
        seq: u64,
        /// The epoch it claims.
        epoch: u64,
    },
    /// Records at the start are missing and no seal announced it.
    #[error(
        "records {first}..{last} are missing and no seal announced their removal by retention: TAMPERING"
    )]
    Missing {
        /// The first missing record.
        first: u64,
        /// The last.
        last: u64,
    },
    /// The trail ends before the last seal's head.
    #[error(
        "the seal of epoch {epoch} ({time}) covers up to seq {seq}, but the trail ends {}: records were cut off the end",
        match .end { Some(e) => format!("at seq {e}"), None => "before its first record".to_owned() }
    )]
    Truncated {
        /// The last seal's epoch.
        epoch: u64,
        /// Its head.
        seq: u64,
        /// Its time.
        time: String,
        /// The trail's last record.
        end: Option<u64>,
    },
}

/// The check of a trail against its seals, fed one record at a time (so
/// that `audit verify` reads each file once and names the file and line
/// of a break).
#[derive(Debug)]
pub struct SealChain {
    trail: KeyId,
    seals: Vec<Seal>,
    /// The first seal whose record is not yet read.
    next: usize,
    /// The last seal whose head was found in the trail.
    reached: Option<usize>,
    /// The first record read.
    first: Option<u64>,
    /// The last record read: its seq and hash.
    last: Option<(u64, Digest)>,
    records: u64,
}

impl SealChain {
    /// Check the seal log's seals (in the log's order) with the auditor's
    /// key `pk0`.
    pub fn new(pk0: VerifyingKey, seals: Vec<Seal>) -> Result<SealChain, ChainError> {
        let trail = pk0.id();
        let mut key = pk0;
        let mut previous: Option<&Seal> = None;
        for (expected, s) in (0u64..).zip(&seals) {
            if s.trail != trail {
                return Err(ChainError::OtherTrail {
                    epoch: s.epoch,
                    trail: s.trail,
                    key: trail,
                });
            }
            if s.epoch != expected {
                return Err(ChainError::Epoch {
                    expected,
                    found: s.epoch,
                });
            }
            if !s.verifies_with(&key) {
                return Err(ChainError::Forged { epoch: s.epoch });
            }
            if let Some(p) = previous
                && s.head.seq <= p.head.seq
            {
                return Err(ChainError::HeadBackwards {
                    epoch: s.epoch,
                    seq: s.head.seq,
                    previous: p.head.seq,
                });
            }
            if s.from_seq > s.head.seq + 1 || previous.is_some_and(|p| s.from_seq < p.from_seq) {
                return Err(ChainError::From {
                    epoch: s.epoch,
                    from_seq: s.from_seq,
                });
            }
            key = s.next_key;
            previous = Some(s);
        }
        Ok(SealChain {
            trail,
            seals,
            next: 0,
            reached: None,
            first: None,
            last: None,
            records: 0,
        })
    }

    /// The next record of the trail.
    pub fn record(&mut self, r: Record<'_>) -> Result<(), ChainError> {
        match self.last {
            None => self.start(&r)?,
            Some((seq, _)) if r.seq != seq + 1 => {
                return Err(ChainError::Seq {
                    seq: r.seq,
                    after: seq,
                });
            }
            Some((_, hash)) if r.prev != hash => return Err(ChainError::Link { seq: r.seq }),
            Some(_) => {}
        }
        let mut consumed = false;
        // The record after a seal's head is that seal. When the head was
        // read, `prev` was checked against it above; when it was removed
        // (retention cut just before the seal), `prev` is checked here.
        if let Some(s) = self.seals.get(self.next)
            && r.seq == s.head.seq + 1
        {
            if r.prev != s.head.hash {
                return Err(ChainError::Head {
                    epoch: s.epoch,
                    seq: s.head.seq,
                });
            }
            if r.seal != Some(s) {
                return Err(ChainError::SealLine {
                    epoch: s.epoch,
                    seq: r.seq,
                });
            }
            self.reached = Some(self.next);
            self.next += 1;
            consumed = true;
        }
        // The record at a seal's head (possibly the seal just read, when
        // an epoch holds no record but the seal of the one before).
        if let Some(s) = self.seals.get(self.next)
            && r.seq == s.head.seq
        {
            if r.hash != s.head.hash {
                return Err(ChainError::Head {
                    epoch: s.epoch,
                    seq: r.seq,
                });
            }
            self.reached = Some(self.next);
        }
        if let Some(s) = r.seal
            && !consumed
        {
            return Err(ChainError::NotInLog {
                seq: r.seq,
                epoch: s.epoch,
            });
        }
        self.last = Some((r.seq, r.hash));
        self.records += 1;
        Ok(())
    }

    /// The first record: where the trail starts, and whether a seal
    /// announced the removal of what came before.
    fn start(&mut self, r: &Record<'_>) -> Result<(), ChainError> {
        self.first = Some(r.seq);
        // Seals whose head and record were both removed by retention.
        while self
            .seals
            .get(self.next)
            .is_some_and(|s| s.head.seq + 1 < r.seq)
        {
            self.next += 1;
        }
        if r.seq <= 1 {
            if r.prev != Digest::GENESIS {
                return Err(ChainError::Link { seq: r.seq });
            }
            return Ok(());
        }
        // The last seal says from which record the trail was kept; with
        // no seal, nothing is claimed (and nothing is proven).
        if let Some(s) = self.seals.last()
            && r.seq > s.from_seq
        {
            return Err(ChainError::Missing {
                first: s.from_seq,
                last: r.seq - 1,
            });
        }
        Ok(())
    }

    /// After the last record: the trail must reach the last seal's head.
    pub fn finish(self) -> Result<SealReport, ChainError> {
        let end = self.last.map(|(seq, _)| seq);
        if let Some(s) = self.seals.last()
            && end.is_none_or(|e| e < s.head.seq)
        {
            return Err(ChainError::Truncated {
                epoch: s.epoch,
                seq: s.head.seq,
                time: s.time_text(),
                end,
            });
        }
        let sealed = self.reached.map(|i| Sealed::of(&self.seals[i]));
        let unsealed = match (&sealed, end) {
            // The seal's own record is not counted as unsealed.
            (Some(s), Some(e)) => e.saturating_sub(s.seq + 1),
            _ => self.records,
        };
        Ok(SealReport {
            trail: self.trail,
            seals: self.seals.len() as u64,
            sealed,
            records: self.records,
            unsealed,
            removed: removals(&self.seals, self.first.unwrap_or(1)),
            verified: self.seals,
        })
    }
}

/// The records before `first` (the trail's first record), in ranges: each
/// removed by the retention a seal announced (its `from_seq` grew), or
/// gone before the first seal.
fn removals(seals: &[Seal], first: u64) -> Vec<Removal> {
    let mut out = Vec::new();
    let mut kept_from = 1;
    for (i, s) in seals.iter().enumerate() {
        if s.from_seq > kept_from && kept_from < first {
            out.push(Removal {
                first: kept_from,
                last: s.from_seq.min(first) - 1,
                announced: (i > 0).then(|| Sealed::of(s)),
            });
        }
        kept_from = kept_from.max(s.from_seq);
    }
    if kept_from < first {
        // No seal yet, or the trail starts before the last seal's start
        // (`start` refused the other case): nothing said why they went.
        out.push(Removal {
            first: kept_from,
            last: first - 1,
            announced: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::audit::seal::{Head, SealingKey};

    /// A trail line as the tests build it: the payload stands for the
    /// record's other fields.
    #[derive(Debug, Clone)]
    struct Line {
        seq: u64,
        prev: Digest,
        hash: Digest,
        payload: String,
        seal: Option<Seal>,
    }

    fn hash(seq: u64, prev: Digest, payload: &str) -> Digest {
        Digest::of(format!("{seq} {prev} {payload}").as_bytes())
    }

    /// A resolver writing and sealing a trail.
    struct Resolver {
        key: SealingKey,
        pk0: VerifyingKey,
        lines: Vec<Line>,
        log: Vec<Seal>,
        clock: u64,
    }

    impl Resolver {
        fn new() -> Resolver {
            let key = SealingKey::generate().unwrap();
            Resolver {
                pk0: key.verifying_key(),
                key,
                lines: Vec::new(),
                log: Vec::new(),
                clock: 1_795_000_000_000,
            }
        }

        fn push(&mut self, payload: String, seal: Option<Seal>) {
            let (seq, prev) = self
                .lines
                .last()
                .map_or((1, Digest::GENESIS), |l| (l.seq + 1, l.hash));
            self.lines.push(Line {
                seq,
                prev,
                hash: hash(seq, prev, &payload),
                payload,
                seal,
            });
        }

        fn records(&mut self, n: usize) {
            for _ in 0..n {
                let seq = self.lines.last().map_or(1, |l| l.seq + 1);
                self.push(format!("redirect {seq}"), None);
            }
        }

        /// Seal with the trail kept from `from_seq`.
        fn seal_from(&mut self, from_seq: u64) {
            self.clock += 900_000;
            let last = self.lines.last().unwrap();
            let head = Head {
                seq: last.seq,
                hash: last.hash,
            };
            let at = UNIX_EPOCH + Duration::from_millis(self.clock);
            let seal = self.key.evolve(head, from_seq, at).unwrap();
            self.log.push(seal.clone());
            self.push(seal.to_log_line(), Some(seal));
        }

        fn seal(&mut self) {
            let from = self.log.last().map_or(1, |s| s.from_seq);
            self.seal_from(from);
        }

        /// Records 1..=10, seal 0 at 11, 12..=20, seal 1 at 21, 22..=25.
        fn standard() -> Resolver {
            let mut r = Resolver::new();
            r.records(10);
            r.seal();
            r.records(9);
            r.seal();
            r.records(4);
            r
        }
    }

    fn check(pk0: VerifyingKey, log: &[Seal], lines: &[Line]) -> Result<SealReport, ChainError> {
        let mut chain = SealChain::new(pk0, log.to_vec())?;
        for l in lines {
            chain.record(Record {
                seq: l.seq,
                prev: l.prev,
                hash: l.hash,
                seal: l.seal.as_ref(),
            })?;
        }
        chain.finish()
    }

    /// What a forger without the key does after changing records: number
    /// them again from the first and recompute every `prev` and hash. The
    /// seal records keep their (signed) contents.
    fn rehash(mut lines: Vec<Line>) -> Vec<Line> {
        let (mut seq, mut prev) = (lines[0].seq, lines[0].prev);
        for l in &mut lines {
            l.seq = seq;
            l.prev = prev;
            l.hash = hash(seq, prev, &l.payload);
            prev = l.hash;
            seq += 1;
        }
        lines
    }

    fn at(lines: &[Line], seq: u64) -> usize {
        lines.iter().position(|l| l.seq == seq).unwrap()
    }

    #[test]
    fn an_intact_trail_is_sealed_up_to_its_last_seal() {
        let r = Resolver::standard();
        let report = check(r.pk0, &r.log, &r.lines).unwrap();
        assert_eq!(report.trail, r.pk0.id());
        assert_eq!(report.seals, 2);
        assert_eq!(report.records, 25);
        assert_eq!(report.unsealed, 4);
        assert!(report.removed.is_empty());
        let sealed = report.sealed.unwrap();
        assert_eq!((sealed.epoch, sealed.seq), (1, 20));
        assert_eq!(sealed.head, r.lines[at(&r.lines, 20)].hash);
        assert_eq!(sealed.time_text(), "2026-11-18T11:36:40.000Z");
        let text = report.to_string();
        assert!(
            text.starts_with("sealed up to 2026-11-18T11:36:40.000Z (seq 20, epoch 1, head "),
            "{text}"
        );
        assert!(
            text.contains("4 record(s) after the last seal are not sealed"),
            "{text}"
        );
    }

    #[test]
    fn rewritten_deleted_inserted_or_reordered_records_break_a_head() {
        let r = Resolver::standard();
        let i = at(&r.lines, 5);
        let mut rewritten = r.lines.clone();
        rewritten[i].payload = "redirect 5, but another name".into();
        let mut deleted = r.lines.clone();
        deleted.remove(i);
        let mut inserted = r.lines.clone();
        inserted.insert(i, r.lines[i].clone());
        let mut reordered = r.lines.clone();
        reordered.swap(i, i + 1);
        // In the second epoch too.
        let mut late = r.lines.clone();
        late.remove(at(&r.lines, 15));
        for (what, lines, epoch) in [
            ("rewritten", rewritten, 0),
            ("deleted", deleted, 0),
            ("inserted", inserted, 0),
            ("reordered", reordered, 0),
            ("deleted in epoch 1", late, 1),
        ] {
            let got = check(r.pk0, &r.log, &rehash(lines));
            assert!(
                matches!(got, Err(ChainError::Head { epoch: e, .. }) if e == epoch),
                "{what}: {got:?}"
            );
        }
    }

    #[test]
    fn a_change_without_rehashing_breaks_the_link() {
        let r = Resolver::standard();
        let mut lines = r.lines.clone();
        let i = at(&lines, 5);
        lines[i].hash = hash(5, lines[i].prev, "something else");
        assert_eq!(
            check(r.pk0, &r.log, &lines),
            Err(ChainError::Link { seq: 6 })
        );
        let mut lines = r.lines.clone();
        lines.remove(i);
        assert_eq!(
            check(r.pk0, &r.log, &lines),
            Err(ChainError::Seq { seq: 6, after: 4 })
        );
        let mut lines = r.lines.clone();
        lines[0].prev = Digest([1; 32]);
        assert_eq!(
            check(r.pk0, &r.log, &lines),
            Err(ChainError::Link { seq: 1 })
        );
    }

    #[test]
    fn records_after_the_last_seal_are_not_proven() {
        let r = Resolver::standard();
        let mut lines = r.lines.clone();
        let i = at(&lines, 23);
        lines[i].payload = "a record the forger wrote".into();
        let report = check(r.pk0, &r.log, &rehash(lines)).unwrap();
        assert_eq!(report.unsealed, 4, "said to be unproven, not proven");
    }

    #[test]
    fn records_cut_off_the_end_up_to_the_last_seal_are_seen() {
        let r = Resolver::standard();
        let cut = |n: usize| r.lines[..n].to_vec();
        assert!(matches!(
            check(r.pk0, &r.log, &cut(15)),
            Err(ChainError::Truncated {
                epoch: 1,
                seq: 20,
                end: Some(15),
                ..
            })
        ));
        assert!(matches!(
            check(r.pk0, &r.log, &cut(0)),
            Err(ChainError::Truncated { end: None, .. })
        ));
        // Cut after the last seal: only unsealed records go, and the
        // report never claimed them.
        assert_eq!(check(r.pk0, &r.log, &cut(21)).unwrap().unsealed, 0);
        // A crash after the seal went to the seal log, before the trail:
        // the head is there, and sealed.
        let report = check(r.pk0, &r.log, &cut(20)).unwrap();
        assert_eq!(report.sealed.unwrap().seq, 20);
        assert_eq!(report.unsealed, 0);
    }

    #[test]
    fn every_field_of_a_seal_is_signed() {
        let r = Resolver::standard();
        let other = SealingKey::generate().unwrap().verifying_key();
        type Edit = fn(&mut Seal, VerifyingKey);
        let edits: [(&str, Edit); 7] = [
            ("head seq", |s, _| s.head.seq -= 1),
            ("head hash", |s, _| s.head.hash.0[0] ^= 1),
            ("from_seq", |s, _| s.from_seq += 1),
            ("time", |s, _| s.time_ms += 1),
            ("next key", |s, k| s.next_key = k),
            ("signature", |s, _| s.sig[10] ^= 1),
            ("trail", |s, _| s.trail.0[0] ^= 1),
        ];
        for epoch in [0, 1] {
            for (what, edit) in &edits {
                let mut log = r.log.clone();
                edit(&mut log[epoch], other);
                let got = check(r.pk0, &log, &r.lines);
                let expected = if *what == "trail" {
                    matches!(got, Err(ChainError::OtherTrail { .. }))
                } else {
                    got == Err(ChainError::Forged {
                        epoch: epoch as u64,
                    })
                };
                assert!(expected, "{what} of epoch {epoch}: {got:?}");
            }
        }
        let mut log = r.log.clone();
        log[1].epoch = 2;
        assert_eq!(
            check(r.pk0, &log, &r.lines),
            Err(ChainError::Epoch {
                expected: 1,
                found: 2
            })
        );
    }

    #[test]
    fn a_seal_removed_or_reordered_in_the_log_is_seen() {
        let mut r = Resolver::standard();
        r.seal();
        let mut removed = r.log.clone();
        removed.remove(1);
        assert_eq!(
            check(r.pk0, &removed, &r.lines),
            Err(ChainError::Epoch {
                expected: 1,
                found: 2
            })
        );
        let mut reordered = r.log.clone();
        reordered.swap(0, 1);
        assert_eq!(
            check(r.pk0, &reordered, &r.lines),
            Err(ChainError::Epoch {
                expected: 0,
                found: 1
            })
        );
        // The newest seal cut from the log, still in the trail.
        let cut = r.log[..2].to_vec();
        assert_eq!(
            check(r.pk0, &cut, &r.lines),
            Err(ChainError::NotInLog { seq: 26, epoch: 2 })
        );
    }

    #[test]
    fn the_trail_and_the_log_must_hold_the_same_seals() {
        let r = Resolver::standard();
        let mut lines = r.lines.clone();
        let i = at(&lines, 11);
        let mut other = lines[i].seal.clone().unwrap();
        other.time_ms += 1;
        lines[i].seal = Some(other);
        assert_eq!(
            check(r.pk0, &r.log, &lines),
            Err(ChainError::SealLine { epoch: 0, seq: 11 })
        );
        let mut lines = r.lines.clone();
        lines[i].seal = None;
        assert_eq!(
            check(r.pk0, &r.log, &lines),
            Err(ChainError::SealLine { epoch: 0, seq: 11 })
        );
    }

    #[test]
    fn the_wrong_key_or_a_re_keyed_chain_is_refused() {
        let r = Resolver::standard();
        let wrong = SealingKey::generate().unwrap().verifying_key();
        assert_eq!(
            check(wrong, &r.log, &r.lines),
            Err(ChainError::OtherTrail {
                epoch: 0,
                trail: r.pk0.id(),
                key: wrong.id()
            })
        );
        // A forger makes a new first key and seals everything again under
        // the old trail's name: pk_0 does not verify it.
        let forger = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let mut log = r.log.clone();
        log[0] = log[0].clone().signed(&forger);
        assert_eq!(
            check(r.pk0, &log, &r.lines),
            Err(ChainError::Forged { epoch: 0 })
        );
        // Or re-keys from the second seal on.
        let mut log = r.log.clone();
        log[1] = log[1].clone().signed(&forger);
        assert_eq!(
            check(r.pk0, &log, &r.lines),
            Err(ChainError::Forged { epoch: 1 })
        );
    }

    #[test]
    fn an_intruder_with_the_current_key_cannot_reseal_the_past() {
        let mut r = Resolver::standard();
        // The intruder takes the machine now: the key of epoch 2.
        let stolen = r.key.key_for_tests();
        let mut lines = r.lines.clone();
        lines.remove(at(&lines, 5));
        let lines = rehash(lines);
        let mut log = r.log.clone();
        log[0].head.hash = lines[at(&lines, 10)].hash;
        log[0] = log[0].clone().signed(stolen);
        assert_eq!(
            check(r.pk0, &log, &lines),
            Err(ChainError::Forged { epoch: 0 })
        );
        // What it can do: seal false records from now on.
        r.records(1);
        r.seal();
        assert!(check(r.pk0, &r.log, &r.lines).is_ok());
    }

    #[test]
    fn retention_announced_by_a_seal_is_not_tampering() {
        let mut r = Resolver::new();
        r.records(10);
        r.seal(); // seq 11
        r.records(9);
        // Rotation: the file of 1..=11 goes, announced by the seal first.
        r.seal_from(12); // seq 21
        r.records(4);
        let kept = r.lines[at(&r.lines, 12)..].to_vec();
        let report = check(r.pk0, &r.log, &kept).unwrap();
        assert_eq!(report.records, 14);
        assert_eq!(
            report.removed,
            vec![Removal {
                first: 1,
                last: 11,
                announced: Some(Sealed::of(&r.log[1])),
            }]
        );
        let text = report.to_string();
        assert!(
            text.contains(
                "records 1..11 removed by retention on 2026-11-18T11:36:40.000Z (seal of epoch 1)"
            ),
            "{text}"
        );
        // A crash between the seal and the deletion: nothing removed yet.
        assert!(check(r.pk0, &r.log, &r.lines).unwrap().removed.is_empty());
        // A removal that stopped short of what was announced.
        let report = check(r.pk0, &r.log, &r.lines[at(&r.lines, 6)..]).unwrap();
        assert_eq!(report.removed[0].last, 5);
        // The trail starting with a seal whose head was removed.
        let mut r = Resolver::new();
        r.records(10);
        r.seal_from(11); // seq 11, the seal's own record kept
        r.records(2);
        let report = check(r.pk0, &r.log, &r.lines[10..]).unwrap();
        assert_eq!(report.sealed.unwrap().seq, 10);
        assert_eq!(report.unsealed, 2);
    }

    #[test]
    fn old_files_deleted_without_retention_are_tampering() {
        let r = Resolver::standard();
        let kept = r.lines[at(&r.lines, 12)..].to_vec();
        let got = check(r.pk0, &r.log, &kept);
        assert_eq!(got, Err(ChainError::Missing { first: 1, last: 11 }));
        assert!(got.unwrap_err().to_string().ends_with("TAMPERING"));
        // More removed than retention announced.
        let mut r = Resolver::new();
        r.records(10);
        r.seal();
        r.records(9);
        r.seal_from(12);
        r.records(4);
        let kept = r.lines[at(&r.lines, 16)..].to_vec();
        assert_eq!(
            check(r.pk0, &r.log, &kept),
            Err(ChainError::Missing {
                first: 12,
                last: 15
            })
        );
    }

    #[test]
    fn records_gone_before_sealing_began_are_named_as_unproven() {
        // Sealing set up on a trail whose records 1..=4 were removed.
        let mut r = Resolver::new();
        r.records(10);
        let lines = r.lines.split_off(4);
        r.lines = lines;
        r.seal_from(5);
        r.records(2);
        let report = check(r.pk0, &r.log, &r.lines).unwrap();
        assert_eq!(
            report.removed,
            vec![Removal {
                first: 1,
                last: 4,
                announced: None
            }]
        );
        assert!(report.to_string().contains("gone before the first seal"));
    }

    #[test]
    fn an_epoch_may_hold_nothing_but_the_seal_before_it() {
        let mut r = Resolver::new();
        r.records(3);
        r.seal(); // 4
        r.seal(); // 5: its head is seal 0's record
        r.records(1);
        let report = check(r.pk0, &r.log, &r.lines).unwrap();
        assert_eq!(report.sealed.unwrap().seq, 4);
        assert_eq!(report.unsealed, 1);
    }

    #[test]
    fn with_no_seal_nothing_is_proven() {
        let mut r = Resolver::new();
        r.records(5);
        let report = check(r.pk0, &r.log, &r.lines).unwrap();
        assert_eq!((report.sealed, report.unsealed), (None, 5));
        assert!(report.to_string().starts_with("nothing sealed yet"));
    }
}
