//! Trusted minisign keys, verification, key making and signing.

use std::path::{Path, PathBuf};

/// The set of trusted public keys (several at once, for rotation).
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<(String, minisign_verify::PublicKey, PathBuf)>,
}

/// A key file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", file.display())]
pub struct KeyError {
    /// The key file.
    pub file: PathBuf,
    /// What is wrong.
    pub reason: String,
}

impl TrustedKeys {
    /// Load minisign `.pub` files.
    pub fn load(paths: &[PathBuf]) -> Result<TrustedKeys, KeyError> {
        let _ = (paths, &Path::new(""));
        unimplemented!("TrustedKeys::load")
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
