//! What reads the audit trail: the line parser, `audit verify` (the chain
//! over several lines and files), `audit report`, and the writer resuming
//! a trail.
//!
//! The input is a trail: up to four files separated by 0xFF octets (never
//! in a JSON line), written to a directory as the writer names them. An
//! input starting with 0xFE is chained first: each line's `prev` (the 64
//! characters after `"prev":"`) is replaced with the hash of the line
//! before it, as the writer would have written it, so that what `verify`
//! checks past the links (seq, versions, files) is reached too; no
//! mutation finds a SHA-256. What must hold:
//!
//! - nothing panics: not the parser, not `verify`, not the report, not a
//!   writer starting on the trail (it continues the chain or refuses with
//!   an error);
//! - a break names a file of the trail, and a line of it (or 0);
//! - an intact trail's summary counts the records read, and its last `seq`
//!   is its first plus the records after it;
//! - a writer that continued an intact trail leaves it intact.
#![no_main]

use std::path::Path;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use rempart::audit::chain::ChainHash;
use rempart::audit::record::Line;
use rempart::audit::verify::verify;
use rempart::audit::{AuditSettings, Auditor, report};
use rempart::config::ClientIpMode;
use rempart::metrics::Metrics;

static METRICS: LazyLock<std::sync::Arc<Metrics>> = LazyLock::new(Metrics::new);

fuzz_target!(|data: &[u8]| {
    let chained;
    let data = match data.split_first() {
        Some((0xFE, rest)) => {
            chained = chain(rest);
            &chained[..]
        }
        _ => data,
    };
    let files: Vec<&[u8]> = data.split(|&b| b == 0xFF).take(4).collect();
    for file in &files {
        for line in file.split(|&b| b == b'\n') {
            let _ = Line::parse(line);
        }
    }
    // In memory where there is a tmpfs: the writer syncs what it writes,
    // which on a disk costs more than everything else here.
    let dir = tempfile::tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .expect("a temporary directory");
    let mut lines = 0u64;
    for (i, bytes) in files.iter().enumerate() {
        let name = format!("rempart-audit-20261201-{i:03}.jsonl");
        std::fs::write(dir.path().join(name), bytes).expect("write a trail file");
        lines += bytes.iter().filter(|&&b| b == b'\n').count() as u64;
    }
    let intact = check(dir.path(), files.len(), lines);
    // The writer resumes only from a last record it can read; give it the
    // trails worth the cost of a thread.
    let last = files.last().and_then(|f| {
        f.strip_suffix(b"\n")
            .and_then(|f| f.rsplit(|&b| b == b'\n').next())
    });
    if last.is_some_and(|l| Line::parse(l).is_ok()) {
        let started = Auditor::start(
            AuditSettings {
                dir: dir.path().to_owned(),
                client_ip: ClientIpMode::None,
                queue: 16,
                max_file_bytes: 1 << 20,
                retention_days: 0,
                seal: None,
            },
            METRICS.clone(),
        );
        if let Ok(auditor) = started {
            auditor.flush();
            auditor.stop();
            if intact {
                let after = verify(dir.path());
                assert!(after.is_ok(), "the writer broke an intact trail: {after:?}");
            }
        }
    }
});

/// `data` with each line's `prev` replaced by the hash of the line before
/// it (across the 0xFF file separators); the first line's is kept.
fn chain(data: &[u8]) -> Vec<u8> {
    const PREV: &[u8] = b"\"prev\":\"";
    let mut out = Vec::with_capacity(data.len());
    let mut previous: Option<ChainHash> = None;
    for (i, file) in data.split(|&b| b == 0xFF).enumerate() {
        if i > 0 {
            out.push(0xFF);
        }
        for (j, line) in file.split(|&b| b == b'\n').enumerate() {
            if j > 0 {
                out.push(b'\n');
            }
            let mut line = line.to_vec();
            if let Some(p) = &previous
                && let Some(at) = line.windows(PREV.len()).position(|w| w == PREV)
                && let Some(hash) = line.get_mut(at + PREV.len()..at + PREV.len() + 64)
            {
                hash.copy_from_slice(p.as_bytes());
            }
            if !line.is_empty() {
                previous = Some(ChainHash::of(&line));
            }
            out.extend_from_slice(&line);
        }
    }
    out
}

/// `audit verify` and `audit report` on the trail in `dir` (`files` files
/// holding `lines` complete lines); true if intact.
fn check(dir: &Path, files: usize, lines: u64) -> bool {
    let intact = match verify(dir) {
        Ok(summary) => {
            assert_eq!(summary.files, files);
            assert!(
                summary.records <= lines,
                "{summary:?}: more records than lines"
            );
            if summary.records > 0 {
                assert_eq!(
                    summary.last_seq.checked_sub(summary.first_seq),
                    Some(summary.records - 1),
                    "{summary:?}"
                );
            }
            true
        }
        Err(brk) => {
            assert!(brk.file.starts_with(dir), "{brk}: not a file of the trail");
            assert!(!brk.reason.is_empty(), "{brk}: no reason");
            false
        }
    };
    if let Ok(r) = report::build(dir, None, None) {
        let _ = report::text(&r);
        let _ = report::csv(&r);
    }
    intact
}
