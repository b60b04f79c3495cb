//! The seals' copy outside the audit directory: the system journal.
//!
//! Every seal is also logged as one line, [`JOURNAL_MESSAGE`] and the
//! fields of [`Seal::journal_line`]. Whoever can write the directory can
//! cut the newest records off the trail together with their seals (in the
//! trail and in `seals.jsonl`): what is left verifies, sealed up to an
//! earlier seal. The journal, shipped off the machine, still holds the
//! seals that were cut. `rempart audit verify --key FILE --seals COPY DIR`
//! reads that copy and requires every seal of this trail in it to be one
//! the trail holds and that verifies; one missing is the cut, named by its
//! time.
//!
//! The copy is what `journalctl -u rempart` prints, in any of the forms an
//! auditor is likely to receive:
//!
//! - `-o cat` (or the default short form, or the resolver's stderr) with
//!   `log.format = "text"`: a line holding `audit: trail sealed trail=...
//!   epoch=... seq=... head=... time=... seal=...`;
//! - `-o cat` with `log.format = "json"`: one JSON object per line, with
//!   `"message": "audit: trail sealed"` and those fields;
//! - `-o json`: one JSON object per line whose `MESSAGE` is either of the
//!   above.
//!
//! Other lines are skipped, so the whole journal of the period will do.

use std::path::{Path, PathBuf};

use super::{JOURNAL_MESSAGE, KeyId, Seal, SealReport};

/// One seal as the journal printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalSeal {
    /// 1-based line of the copy.
    pub line: usize,
    /// `trail`: the key id of the trail's first verification key.
    pub trail: String,
    /// `epoch`.
    pub epoch: u64,
    /// `seq`: the sealed record's.
    pub seq: u64,
    /// `head`: the sealed record's line hash.
    pub head: String,
    /// `time`: when the seal was made.
    pub time: String,
    /// `seal`: the seal's digest ([`Seal::digest`]).
    pub seal: String,
}

impl JournalSeal {
    /// The fields as [`Seal::journal_line`] writes them.
    fn fields(&self) -> String {
        format!(
            "trail={} epoch={} seq={} head={} time={} seal={}",
            self.trail, self.epoch, self.seq, self.head, self.time, self.seal
        )
    }
}

/// The copy cannot be read, or a seal line in it is not one.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The file cannot be read.
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line says `audit: trail sealed` but a field is missing or wrong.
    #[error("{}:{line}: an `{JOURNAL_MESSAGE}` line without a valid `{field}` field", file.display())]
    Field {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// The field.
        field: &'static str,
    },
}

/// What the copy proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyCheck {
    /// Seals of this trail found in the copy, each in the trail.
    pub matched: usize,
    /// The newest of them: (epoch, time).
    pub newest: (u64, String),
    /// Seal lines of other trails (an earlier trail moved aside), skipped.
    pub other_trails: usize,
}

/// The copy and the trail disagree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CopyBreak {
    /// A seal in the copy is not in the trail: the trail was cut.
    #[error(
        "line {line}: truncation detected: the seal of epoch {epoch} made at {time} (sealing records up to seq {seq}) is in the journal copy but not in the trail, which is sealed only up to {sealed_up_to}: records and seals after that were cut off"
    )]
    Missing {
        /// Line of the copy.
        line: usize,
        /// The seal's epoch.
        epoch: u64,
        /// The seal's time.
        time: String,
        /// The seq it sealed.
        seq: u64,
        /// The trail's last seal (`epoch N at T`), or `nothing`.
        sealed_up_to: String,
    },
    /// The trail holds a seal of that epoch, but another one.
    #[error(
        "line {line}: the seal of epoch {epoch} in the journal copy ({copy}) is not the trail's ({trail}): the trail or the copy was altered"
    )]
    Differs {
        /// Line of the copy.
        line: usize,
        /// The epoch.
        epoch: u64,
        /// The copy's fields.
        copy: String,
        /// The trail's.
        trail: String,
    },
    /// Nothing of this trail in the copy: nothing was checked.
    #[error(
        "the journal copy holds no seal of this trail (key id {trail}; {other} seal line(s) of other trails): nothing to check against; export the journal of the trail's period"
    )]
    Empty {
        /// This trail's key id.
        trail: KeyId,
        /// Seal lines of other trails.
        other: usize,
    },
}

/// Read the copy in `file`: every seal line, in order.
pub fn read(file: &Path) -> Result<Vec<JournalSeal>, CopyError> {
    let text = std::fs::read(file).map_err(|source| CopyError::Read {
        file: file.to_owned(),
        source,
    })?;
    parse(&String::from_utf8_lossy(&text)).map_err(|(line, field)| CopyError::Field {
        file: file.to_owned(),
        line,
        field,
    })
}

/// The seal lines of `text`; `Err((line, field))` for a seal line with a
/// field missing or not of its form.
pub fn parse(text: &str) -> Result<Vec<JournalSeal>, (usize, &'static str)> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(fields) = seal_fields(line) {
            out.push(to_seal(i + 1, &fields).map_err(|field| (i + 1, field))?);
        }
    }
    Ok(out)
}

/// The named fields of a seal line, or `None` if `line` is not one.
fn seal_fields(line: &str) -> Option<Vec<(String, String)>> {
    let trimmed = line.trim();
    if trimmed.starts_with('{') {
        let Ok(serde_json::Value::Object(o)) = serde_json::from_str(trimmed) else {
            return None;
        };
        // `journalctl -o json`: the log line is the MESSAGE.
        if let Some(m) = o.get("MESSAGE").and_then(|m| m.as_str()) {
            return seal_fields(m);
        }
        // `log.format = "json"`: the fields beside the message.
        if o.get("message").and_then(|m| m.as_str()) != Some(JOURNAL_MESSAGE) {
            return None;
        }
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        return Some(o.iter().map(|(k, v)| (k.clone(), text(v))).collect());
    }
    // The text form: `... audit: trail sealed trail=... epoch=...`.
    let (_, rest) = line.split_once(JOURNAL_MESSAGE)?;
    Some(
        rest.split_whitespace()
            .filter_map(|t| t.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
            .collect(),
    )
}

fn to_seal(line: usize, fields: &[(String, String)]) -> Result<JournalSeal, &'static str> {
    let get = |name: &'static str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
            .ok_or(name)
    };
    let hex = |name: &'static str, len: usize| {
        get(name).and_then(|v| {
            (v.len() == len && v.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| v.to_ascii_lowercase())
                .ok_or(name)
        })
    };
    let number = |name: &'static str| get(name).and_then(|v| v.parse::<u64>().map_err(|_| name));
    Ok(JournalSeal {
        line,
        trail: hex("trail", 16)?,
        epoch: number("epoch")?,
        seq: number("seq")?,
        head: hex("head", 64)?,
        time: get("time")?.to_owned(),
        seal: hex("seal", 64)?,
    })
}

/// Check the copy against the seals the trail holds (`report`, from
/// `audit verify --key`): every seal of this trail in the copy must be
/// one of them, field for field.
pub fn check(copy: &[JournalSeal], report: &SealReport) -> Result<CopyCheck, CopyBreak> {
    let trail = report.trail.to_string();
    let mut matched = 0;
    let mut newest: Option<&JournalSeal> = None;
    let mut other_trails = 0;
    for c in copy {
        if c.trail != trail {
            other_trails += 1;
            continue;
        }
        let held: Option<&Seal> = report.verified.iter().find(|s| s.epoch == c.epoch);
        match held {
            None => {
                return Err(CopyBreak::Missing {
                    line: c.line,
                    epoch: c.epoch,
                    time: c.time.clone(),
                    seq: c.seq,
                    sealed_up_to: report.verified.last().map_or("nothing".into(), |s| {
                        format!("epoch {} at {}", s.epoch, s.time_text())
                    }),
                });
            }
            Some(s) if s.journal_line() != c.fields() => {
                return Err(CopyBreak::Differs {
                    line: c.line,
                    epoch: c.epoch,
                    copy: c.fields(),
                    trail: s.journal_line(),
                });
            }
            Some(_) => {
                matched += 1;
                if newest.is_none_or(|n| c.epoch > n.epoch) {
                    newest = Some(c);
                }
            }
        }
    }
    match newest {
        Some(n) => Ok(CopyCheck {
            matched,
            newest: (n.epoch, n.time.clone()),
            other_trails,
        }),
        None => Err(CopyBreak::Empty {
            trail: report.trail,
            other: other_trails,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "5b0d00000000000000000000000000000000000000000000000000000000a0e1";
    const SEAL: &str = "77aa000000000000000000000000000000000000000000000000000000000003";

    fn fields() -> String {
        format!(
            "trail=3fdf00112233448d epoch=41 seq=18233 head={HEAD} time=2026-11-23T10:15:00.002Z seal={SEAL}"
        )
    }

    #[test]
    fn every_export_form_of_the_journal_reads_the_same() {
        let fields = fields();
        // `-o cat` of the text log (as the resolver's stderr).
        let text_line = format!(
            "2026-11-23T10:15:00.003Z  INFO rempart::audit::seal::sealer: {JOURNAL_MESSAGE} {fields}"
        );
        // `-o cat` of the JSON log: numbers as numbers.
        let mut json_fields = serde_json::Map::new();
        json_fields.insert("message".into(), JOURNAL_MESSAGE.into());
        for (k, v) in fields.split(' ').filter_map(|t| t.split_once('=')) {
            let v: serde_json::Value = match (k, v.parse::<u64>()) {
                ("epoch" | "seq", Ok(n)) => n.into(),
                _ => v.into(),
            };
            json_fields.insert(k.into(), v);
        }
        let json_line = serde_json::Value::Object(json_fields).to_string();
        // `-o json` of either.
        let journal_json = serde_json::json!({"MESSAGE": text_line, "_PID": "7"}).to_string();
        let journal_of_json = serde_json::json!({"MESSAGE": json_line}).to_string();
        let copy = [
            "starting version=0.1.0",
            &text_line,
            &json_line,
            &journal_json,
            &journal_of_json,
            "{\"MESSAGE\": \"list applied\"}",
        ]
        .join("\n");
        let seals = parse(&copy).unwrap();
        let lines: Vec<usize> = seals.iter().map(|s| s.line).collect();
        assert_eq!(lines, [2, 3, 4, 5]);
        for s in seals {
            assert_eq!(s.fields(), fields);
        }
    }

    #[test]
    fn a_seal_line_with_a_bad_field_names_its_line_and_field() {
        let bad = format!("x\n{JOURNAL_MESSAGE} trail=3fdf00112233448d epoch=forty");
        assert_eq!(parse(&bad), Err((2, "epoch")));
        let short = format!("{JOURNAL_MESSAGE} {}", fields().replace(SEAL, "77aa"));
        assert_eq!(parse(&short), Err((1, "seal")));
    }
}
