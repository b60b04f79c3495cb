//! Where a list comes from, and what tells the admission path to look.
//!
//! The list file, watched on disk ([`watch`]); a web origin, polled
//! ([`pull`]). SIGHUP is handled with the other signals in `rempart
//! serve`; the admin endpoints (`POST /v1/list/reload`, `PUT /v1/list`)
//! in `admin`. Each ends in [`Admission::admit`] with its [`Source`].

pub mod pull;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::info;

use crate::admission::{Admission, Source, Verdict};
use crate::list::signature_path;

/// After a change in the list's directory, wait this long for the other
/// file of the pair (list and `.minisig`) before a first try.
pub const DEBOUNCE: Duration = Duration::from_millis(50);
/// A candidate from the watcher that is refused is tried again for this
/// long (the list and its signature are two files, written one after the
/// other) before the refusal counts.
pub const SETTLE: Duration = Duration::from_secs(3);
/// Interval between tries within [`SETTLE`].
pub const RETRY: Duration = Duration::from_millis(100);

/// Watch the directory of `admission`'s list file (not the file: editors
/// and `mv` replace the inode) and admit the file when the list or its
/// signature changes. The watch lasts as long as the returned watcher.
pub fn watch(admission: &Arc<Admission>) -> notify::Result<notify::RecommendedWatcher> {
    use notify::{RecursiveMode, Watcher};
    let path = admission.list_path().to_owned();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let file_name = path.file_name().map(|f| f.to_owned());
    let sig_name = signature_path(&path).file_name().map(|f| f.to_owned());
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if event.kind.is_access() {
            return;
        }
        let ours = event.paths.iter().any(|p| {
            let name = p.file_name().map(|f| f.to_owned());
            name == file_name || name == sig_name
        });
        if ours {
            // A full channel already holds a pending reload.
            let _ = tx.try_send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    let admission = Arc::clone(admission);
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            tokio::time::sleep(DEBOUNCE).await;
            while rx.try_recv().is_ok() {}
            let deadline = Instant::now() + SETTLE;
            loop {
                let source = Source::Watch(path.clone());
                if Instant::now() + RETRY >= deadline {
                    // The last try: its refusal is recorded.
                    admission.admit(source).await;
                    break;
                }
                match admission.try_admit(source).await {
                    Verdict::Refused { .. } => {
                        tokio::time::sleep(RETRY).await;
                        // A newer change restarts the wait.
                        if rx.try_recv().is_ok() {
                            while rx.try_recv().is_ok() {}
                        }
                    }
                    _ => break,
                }
            }
        }
    });
    info!(dir = %dir.display(), "watching the list's directory");
    Ok(watcher)
}
