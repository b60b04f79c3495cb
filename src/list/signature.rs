//! Trusted minisign keys, verification, key making and signing.
//!
//! The format is minisign's (Ed25519), so an authority can sign with the
//! `minisign` tool shipped by Debian and check with it: a `.pub` file is an
//! untrusted comment line and the base64 of `Ed` + key id (8 bytes) + public
//! key (32 bytes); a `.minisig` file adds a trusted comment and a global
//! signature over the signature and that comment. Verification uses
//! `minisign-verify` (no I/O, audited against the reference tool); keys and
//! signatures are made with the `minisign` crate.

use std::io::Cursor;
use std::path::{Path, PathBuf};

/// The set of trusted public keys (several at once, for rotation).
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<TrustedKey>,
}

#[derive(Debug, Clone)]
struct TrustedKey {
    id: String,
    key: minisign_verify::PublicKey,
    file: PathBuf,
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

/// A signature that does not verify against any trusted key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct SignatureError {
    /// What is wrong, with the key ids involved.
    pub reason: String,
}

/// A key id as minisign prints it: the 8 id bytes read as a little-endian
/// integer, in 16 uppercase hex digits.
pub fn key_id(bytes: &[u8]) -> String {
    let mut id = [0u8; 8];
    let n = bytes.len().min(8);
    id[..n].copy_from_slice(&bytes[..n]);
    format!("{:016X}", u64::from_le_bytes(id))
}

/// The key id named by a `.pub` file's text or a `.minisig` file's text,
/// read with the `minisign` crate (minisign-verify keeps it private).
fn public_key_id(text: &str) -> Option<String> {
    let pk = minisign::PublicKeyBox::from_string(text)
        .ok()?
        .into_public_key()
        .ok()?;
    Some(key_id(pk.keynum()))
}

/// The key id that a signature claims to be made with.
pub fn signature_key_id(signature: &str) -> Option<String> {
    let sig = minisign::SignatureBox::from_string(signature).ok()?;
    Some(key_id(sig.keynum()))
}

impl TrustedKeys {
    /// Load minisign `.pub` files.
    pub fn load(paths: &[PathBuf]) -> Result<TrustedKeys, KeyError> {
        let mut keys: Vec<TrustedKey> = Vec::with_capacity(paths.len());
        for path in paths {
            let text = std::fs::read_to_string(path).map_err(|e| KeyError {
                file: path.clone(),
                reason: format!("cannot read: {e}"),
            })?;
            keys.push(Self::parse_one(&text, path)?);
        }
        Ok(TrustedKeys { keys })
    }

    /// Parse one `.pub` file's text.
    fn parse_one(text: &str, path: &Path) -> Result<TrustedKey, KeyError> {
        let bad = |reason: String| KeyError {
            file: path.to_owned(),
            reason,
        };
        let key = minisign_verify::PublicKey::decode(text.trim_end())
            .or_else(|_| {
                // A bare base64 line (as `minisign -P` takes) is accepted too.
                minisign_verify::PublicKey::from_base64(text.trim())
            })
            .map_err(|e| bad(format!("not a minisign public key: {e}")))?;
        let id = public_key_id(text)
            .or_else(|| public_key_id(&format!("untrusted comment: key\n{}\n", text.trim())))
            .ok_or_else(|| bad("not a minisign public key".into()))?;
        Ok(TrustedKey {
            id,
            key,
            file: path.to_owned(),
        })
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The ids of the trusted keys.
    pub fn ids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.id.clone()).collect()
    }

    /// The signature in `signature` (a `.minisig` file's bytes) and the
    /// trusted key that claims to have made it, or why not.
    fn signer(
        &self,
        signature: &[u8],
    ) -> Result<(minisign_verify::Signature, &TrustedKey), SignatureError> {
        let text = std::str::from_utf8(signature).map_err(|_| SignatureError {
            reason: "the signature file is not minisign text (not UTF-8)".into(),
        })?;
        let sig = minisign_verify::Signature::decode(text).map_err(|e| SignatureError {
            reason: format!("the signature file is not a minisign signature: {e}"),
        })?;
        let claimed = signature_key_id(text).unwrap_or_else(|| "?".into());
        let Some(key) = self.keys.iter().find(|k| k.id == claimed) else {
            return Err(SignatureError {
                reason: format!(
                    "signed by key {claimed}, which is not trusted (trusted: {})",
                    self.ids().join(", ")
                ),
            });
        };
        Ok((sig, key))
    }

    /// Verify `signature` (a `.minisig` file's bytes) over `data`; the id of
    /// the trusted key that made it, or why not.
    pub fn verify(&self, data: &[u8], signature: &[u8]) -> Result<String, SignatureError> {
        let (sig, key) = self.signer(signature)?;
        // Legacy (non-prehashed) signatures are what minisign made before
        // 0.10; the reference tool still verifies them, so do we.
        key.key
            .verify(data, &sig, true)
            .map_err(|e| mismatch(key, e))?;
        Ok(key.id.clone())
    }

    /// [`Self::verify`] over data handed in pieces: `feed` calls the
    /// function it is given with each piece, in order (a list file read a
    /// MiB at a time, never whole). `Ok(None)` for a legacy signature (made
    /// by minisign before 0.10, over the data itself rather than its
    /// BLAKE2b hash): it cannot be checked in pieces, and `feed` is not
    /// called; the caller verifies the whole data with [`Self::verify`].
    /// An error of `feed` is returned as it is.
    pub fn verify_pieces<E>(
        &self,
        signature: &[u8],
        feed: impl FnOnce(&mut dyn FnMut(&[u8])) -> Result<(), E>,
    ) -> Result<Option<String>, PiecesError<E>> {
        let (sig, key) = self.signer(signature).map_err(PiecesError::Signature)?;
        let mut verifier = match key.key.verify_stream(&sig) {
            Ok(v) => v,
            Err(minisign_verify::Error::UnsupportedLegacyMode) => return Ok(None),
            Err(e) => return Err(PiecesError::Signature(mismatch(key, e))),
        };
        feed(&mut |piece| verifier.update(piece)).map_err(PiecesError::Feed)?;
        verifier
            .finalize()
            .map_err(|e| PiecesError::Signature(mismatch(key, e)))?;
        Ok(Some(key.id.clone()))
    }
}

/// Why [`TrustedKeys::verify_pieces`] failed: the signature, or the data
/// could not be read.
#[derive(Debug)]
pub enum PiecesError<E> {
    /// The signature does not verify.
    Signature(SignatureError),
    /// The pieces could not be read.
    Feed(E),
}

/// "does not match": names the key and its file.
fn mismatch(key: &TrustedKey, e: minisign_verify::Error) -> SignatureError {
    SignatureError {
        reason: format!(
            "signature by key {} ({}) does not match the list: {e}",
            key.id,
            key.file.display()
        ),
    }
}

/// A key pair made by [`keygen`].
#[derive(Debug)]
pub struct KeyFiles {
    /// The public key file's text (`.pub`).
    pub public: String,
    /// The secret key file's text (unencrypted).
    pub secret: String,
    /// The key id.
    pub id: String,
}

/// Make an Ed25519 key pair in minisign's format. The secret key is not
/// encrypted, in the format of `minisign -G -W` (no KDF, a BLAKE2b
/// checksum), so the `minisign` tool signs with it without a prompt:
/// protect the file itself.
pub fn keygen() -> Result<KeyFiles, minisign::PError> {
    use blake2::Digest;
    let minisign::KeyPair { pk, sk } = minisign::KeyPair::generate_unencrypted_keypair()?;
    // The crate's "unencrypted" key keeps the scrypt KDF tag and no
    // checksum, which other implementations refuse: rewrite it as minisign
    // does. Layout: sig_alg(2) kdf_alg(2) chk_alg(2) salt(32) ops(8) mem(8)
    // keynum(8) sk(64) chk(32).
    let mut bytes = sk.to_bytes();
    bytes[2..4].fill(0);
    bytes[6..54].fill(0);
    let mut h = blake2::Blake2b::<blake2::digest::consts::U32>::new();
    h.update(&bytes[0..2]);
    h.update(&bytes[54..126]);
    let chk = h.finalize();
    bytes[126..158].copy_from_slice(&chk);
    let sk = minisign::SecretKey::from_bytes(&bytes)?;
    let id = key_id(pk.keynum());
    let public_box = pk.to_box()?.to_string();
    let base64 = public_box.lines().nth(1).unwrap_or_default();
    let public = format!("untrusted comment: rempart public key {id}\n{base64}\n");
    let secret = sk
        .to_box(Some(&format!("rempart secret key {id}")))?
        .to_string();
    Ok(KeyFiles { public, secret, id })
}

/// Read a minisign secret key file that is not encrypted (`minisign -G
/// -W`, or `rempart list keygen`). minisign 0.11 leaves the checksum of such
/// keys empty, newer versions fill it: both are read, and a filled checksum
/// must match. An encrypted key is refused, never prompted for.
fn read_unencrypted_secret_key(text: &str) -> Result<minisign::SecretKey, minisign::PError> {
    use base64::Engine;
    use blake2::Digest;
    let bad = |why: &str| minisign::PError::new(minisign::ErrorKind::Io, why.to_owned());
    let line = text
        .lines()
        .nth(1)
        .ok_or_else(|| bad("not a minisign secret key file (no key line)"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(line.trim())
        .map_err(|_| bad("not a minisign secret key file (bad base64)"))?;
    if bytes.len() != 158 || &bytes[0..2] != b"Ed" {
        return Err(bad("not a minisign Ed25519 secret key"));
    }
    if bytes[2..4] != [0, 0] {
        return Err(bad(
            "the secret key is encrypted (made without -W): decrypt it or make one with `rempart list keygen`",
        ));
    }
    let chk = &bytes[126..158];
    if chk.iter().any(|&b| b != 0) {
        let mut h = blake2::Blake2b::<blake2::digest::consts::U32>::new();
        h.update(&bytes[0..2]);
        h.update(&bytes[54..126]);
        if h.finalize().as_slice() != chk {
            return Err(bad("the secret key file is corrupt (checksum mismatch)"));
        }
    }
    minisign::SecretKey::from_bytes(&bytes)
}

/// Sign `data` with the secret key file's text; the `.minisig` text.
/// `trusted_comment` is covered by the signature (minisign shows it).
pub fn sign(
    secret_key: &str,
    data: &[u8],
    trusted_comment: &str,
) -> Result<String, minisign::PError> {
    let sk = read_unencrypted_secret_key(secret_key)?;
    let pk = minisign::PublicKey::from_secret_key(&sk).ok();
    let sig = minisign::sign(
        pk.as_ref(),
        &sk,
        Cursor::new(data),
        Some(trusted_comment),
        Some("signature from rempart list sign"),
    )?;
    Ok(sig.to_string())
}
