//! Sealing the trail: forward-secure signatures an auditor checks with a
//! public key, so that whoever runs the resolver later cannot rewrite what
//! was written before.
//!
//! The hash chain (`seq`, `prev`) alone proves nothing against the
//! operator: anyone who can write the directory can delete a record and
//! recompute every `prev` after it. Sealing adds what the operator cannot
//! recompute, after the model of Schneier and Kelsey ("Secure audit logs to
//! support computer forensics", 1999: the key evolves and the old one is
//! erased, so an intruder who takes the machine at time t cannot forge
//! anything before t) and of systemd-journald's Forward Secure Sealing (the
//! operational shape: set-up prints a verification key for the auditor,
//! the machine keeps only the current sealing key). Unlike journald's FSS,
//! the verification key is an Ed25519 public key: holding it lets an
//! auditor check, never forge.
//!
//! # The scheme
//!
//! - **Set-up** makes the sealing key `sk_0` (a random Ed25519 key) and
//!   prints its public half `pk_0`, the auditor's verification key, as
//!   `rempart-seal-v1:<base64>`, with its [`KeyId`]. The key id of `pk_0`
//!   also names the trail: every seal carries it.
//! - **At the end of epoch n** (every `audit.seal_interval_s`, at file
//!   rotation and at stop) the resolver draws a new random key `sk_{n+1}`
//!   and makes a [`Seal`]: the epoch, the chain head (`seq` and line hash
//!   of the last record written), the first `seq` the trail still holds
//!   (what retention kept), the time, and `pk_{n+1}`, all signed by `sk_n`
//!   over a fixed-layout byte string ([`Seal::signed_bytes`]: never JSON
//!   text, which has more than one spelling). Then `sk_n` is erased: the
//!   key file is replaced by `sk_{n+1}` ([`SealingKey::write`]). The next
//!   key is drawn at random, not derived from the current one (as
//!   journald's FSPRG does): a key file leaked once (a backup) then gives
//!   no key of a later epoch. The price, a seal that must not be published
//!   before the new key is on disk, is paid by the write order in [`key`].
//! - **Verification** starts from `pk_0` and walks the seals in order:
//!   each one must verify with the key the previous one certified, so a
//!   seal cannot be removed, inserted, reordered or forged, and the chain
//!   cannot be re-keyed. Each seal's head must be the hash of the record
//!   at its `seq`; as every record's `prev` is the hash of the record
//!   before, a signed head covers every record up to it ([`SealChain`]).
//!
//! # Where seals are written
//!
//! Each seal is written three times: as a record of kind `seal` in the
//! trail (so that the trail shows where each epoch ends, and the records
//! after it chain over it: [`SealRecord`]), as one line of `seals.jsonl`
//! beside the trail (the seal log: [`log`]), and as one line in the system
//! journal ([`Seal::journal_line`]), a copy outside the directory.
//! Retention never removes the seal log, so the key chain from `pk_0`
//! survives the removal of old files. Every seal says from which `seq` the
//! trail starts (`from_seq`): retention seals first, announcing the new
//! start, then deletes, so a removal announced by a seal is told apart
//! from one that no seal announced (tampering) without a record of its
//! own that retention could later remove. The seal log needs no hash
//! chain of its own: each seal is signed by the key the one before it
//! certified, which already fixes their order; and the trail's copies of
//! the seals show a seal log cut short, as the seal log shows a trail cut
//! short.
//!
//! # What a seal proves, and what it does not
//!
//! A verified seal proves that the records up to its head are those the
//! resolver wrote, as they were at that time. Records after the last seal
//! are proven by nothing yet. Whoever holds the current sealing key (an
//! intruder on the resolver now) can write false records and seals from
//! now on, but cannot change anything sealed before. Cutting the newest
//! seals off both the trail and the seal log is seen only against a copy
//! kept elsewhere: the journal ([`journal`] checks its export), or a head
//! the auditor received.

pub mod chain;
pub mod journal;
pub mod key;
pub mod log;
pub mod sealer;

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

pub use chain::{ChainError, Record, Removal, SealChain, SealReport, Sealed};
pub use key::{KeyError, SealingKey};
pub use log::{LogError, SealLog};
pub use sealer::{SealError, SealSettings};

/// Prefix of a verification key's text form, and the scheme's version.
pub const KEY_PREFIX: &str = "rempart-seal-v1:";
/// The seal log's file name, in the trail's directory.
pub const LOG_FILE: &str = "seals.jsonl";
/// The seal log's format version (`v` of each line).
pub const LOG_VERSION: u32 = 1;
/// The message of the journal line written for each seal
/// ([`Seal::journal_line`] gives its fields).
pub const JOURNAL_MESSAGE: &str = "audit: trail sealed";

/// Domain separation for the signed bytes: a signature made for a seal is
/// never valid for anything else the same key could sign.
const SIGNED_DOMAIN: &[u8; 16] = b"rempart-seal-v1\0";
/// Domain separation for key ids.
const KEY_ID_DOMAIN: &[u8] = b"rempart-seal-v1 key id\0";
/// Length of [`Seal::signed_bytes`].
pub const SIGNED_LEN: usize = 16 + 8 + 8 + 8 + 32 + 8 + 8 + 32;

/// A seal, a key or a seal log line that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not JSON, or a field missing.
    #[error("not a seal: {0}")]
    Json(#[from] serde_json::Error),
    /// A field of the wrong form.
    #[error("seal field `{field}`: {value:?} is not {expected}")]
    Field {
        /// The field.
        field: &'static str,
        /// What it held.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
    /// A seal log line of another version.
    #[error("seal log version {0} is not {LOG_VERSION}")]
    Version(u32),
    /// A verification key's text form.
    #[error("not a verification key (`{KEY_PREFIX}` and 32 bytes in base64): {0:?}")]
    Key(String),
    /// A text with no verification key, or with two.
    #[error("{0}")]
    KeyText(&'static str),
}

fn field(field: &'static str, value: &str, expected: &'static str) -> ParseError {
    ParseError::Field {
        field,
        value: value.to_owned(),
        expected,
    }
}

/// Lowercase or uppercase hex to exactly `N` bytes.
fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let digit = |c: u8| char::from(c).to_digit(16).map(|d| d as u8);
    let s = s.as_bytes();
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        *o = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// `Display` and `Debug` as lowercase hex, for the byte-array newtypes
/// (the form the trail writes hashes in).
macro_rules! hex_text {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&crate::text::hex(&self.0))
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }
    )*};
}

hex_text!(Digest, KeyId);

/// A SHA-256 digest: a record's line hash, a chain head.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// `prev` of a trail's first record (the audit format's `GENESIS`).
    pub const GENESIS: Digest = Digest([0; 32]);

    /// SHA-256 of a trail line (its bytes without the newline): the same
    /// value as `prev` of the record after it.
    pub fn of(line: &[u8]) -> Digest {
        use sha2::Digest as _;
        Digest(sha2::Sha256::digest(line).into())
    }

    /// From 64 hex digits (a `prev` field).
    pub fn from_hex(s: &str) -> Option<Digest> {
        unhex(s).map(Digest)
    }
}

/// A verification key's id: the first 8 bytes of a domain-separated
/// SHA-256 of the key, printed as 16 hex digits. The id of `pk_0` names
/// the trail.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 8]);

impl KeyId {
    /// From 16 hex digits.
    pub fn from_hex(s: &str) -> Option<KeyId> {
        unhex(s).map(KeyId)
    }
}

/// A public key that checks seals: `pk_0` is the auditor's, the others
/// are certified one by one by the seals.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VerifyingKey(ed25519_dalek::VerifyingKey);

impl VerifyingKey {
    /// From the 32 bytes of an Ed25519 public key. Refused: bytes that are
    /// not a curve point, and the weak (small-order) keys for which a
    /// signature would prove nothing.
    pub fn from_bytes(bytes: &[u8; 32]) -> Option<VerifyingKey> {
        ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .ok()
            .filter(|k| !k.is_weak())
            .map(VerifyingKey)
    }

    /// The 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The key's id.
    pub fn id(&self) -> KeyId {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(KEY_ID_DOMAIN);
        h.update(self.0.as_bytes());
        let digest = h.finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        KeyId(id)
    }

    /// The verification key in a text that may hold comments: its one
    /// line starting with [`KEY_PREFIX`] (what `audit setup-keys` prints
    /// on its last line, saved to a file by the auditor). Blank lines and
    /// lines starting with `#` are ignored; any other line is an error, so
    /// that a wrong file is not half read.
    pub fn from_text(text: &str) -> Result<VerifyingKey, ParseError> {
        let mut found: Option<VerifyingKey> = None;
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = line.parse()?;
            if found.is_some_and(|k| k != key) {
                return Err(ParseError::KeyText("two different verification keys"));
            }
            found = Some(key);
        }
        found.ok_or(ParseError::KeyText("no verification key"))
    }

    /// Check an Ed25519 signature, strictly (RFC 8032 section 5.1.7, with
    /// the checks that reject malleable signatures: `verify_strict`).
    fn verifies(&self, message: &[u8], sig: &[u8; 64]) -> bool {
        let sig = ed25519_dalek::Signature::from_bytes(sig);
        self.0.verify_strict(message, &sig).is_ok()
    }
}

impl fmt::Display for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{KEY_PREFIX}{}", BASE64.encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({}, id {})", self, self.id())
    }
}

impl FromStr for VerifyingKey {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<VerifyingKey, ParseError> {
        let bad = || ParseError::Key(s.chars().take(80).collect());
        let b64 = s.trim().strip_prefix(KEY_PREFIX).ok_or_else(bad)?;
        let bytes = BASE64.decode(b64).map_err(|_| bad())?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| bad())?;
        VerifyingKey::from_bytes(&bytes).ok_or_else(bad)
    }
}

/// The head of the hash chain: the last record a seal covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Its `seq`.
    pub seq: u64,
    /// SHA-256 of its line.
    pub hash: Digest,
}

/// The end of an epoch: the chain head signed by the epoch's key, and the
/// next epoch's public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    /// The trail: the key id of `pk_0`.
    pub trail: KeyId,
    /// The epoch this seal ends (0 for the first), signed by its key.
    pub epoch: u64,
    /// The last record covered.
    pub head: Head,
    /// The first `seq` the trail holds once this seal is written (at most
    /// `head.seq + 1`, the seal's own record): records before it were
    /// removed by the retention this seal announces, or by an earlier one
    /// (or, for the first seal, before sealing began).
    pub from_seq: u64,
    /// When, in milliseconds since 1970-01-01T00:00:00Z.
    pub time_ms: u64,
    /// The next epoch's verification key.
    pub next_key: VerifyingKey,
    /// Ed25519 signature of [`Seal::signed_bytes`] by this epoch's key.
    pub sig: [u8; 64],
}

/// A seal's fields in the trail: a record of kind `seal`, whose `time` is
/// the seal's time (`seq` and `prev` are the head's plus one and hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealRecord {
    /// Key id of `pk_0`, 16 hex digits.
    pub trail: String,
    /// The epoch sealed.
    pub epoch: u64,
    /// `seq` of the last record covered.
    pub head_seq: u64,
    /// SHA-256 of that record's line, 64 hex digits.
    pub head: String,
    /// First `seq` the trail held.
    pub from_seq: u64,
    /// The next key, in its text form.
    pub next_key: String,
    /// The signature, base64.
    pub sig: String,
}

/// One line of the seal log.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogLine {
    v: u32,
    time: String,
    #[serde(flatten)]
    seal: SealRecord,
}

impl Seal {
    /// The bytes the signature covers, fixed layout, integers big-endian:
    ///
    /// ```text
    /// "rempart-seal-v1\0"  16  domain separation
    /// trail                 8  key id of pk_0
    /// epoch                 8
    /// head.seq              8
    /// head.hash            32
    /// from_seq              8
    /// time_ms               8
    /// next_key             32
    /// ```
    pub fn signed_bytes(&self) -> [u8; SIGNED_LEN] {
        let mut out = [0u8; SIGNED_LEN];
        let parts: [&[u8]; 8] = [
            SIGNED_DOMAIN,
            &self.trail.0,
            &self.epoch.to_be_bytes(),
            &self.head.seq.to_be_bytes(),
            &self.head.hash.0,
            &self.from_seq.to_be_bytes(),
            &self.time_ms.to_be_bytes(),
            self.next_key.0.as_bytes(),
        ];
        let mut at = 0;
        for p in parts {
            out[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        out
    }

    /// True if `key` signed this seal.
    pub fn verifies_with(&self, key: &VerifyingKey) -> bool {
        key.verifies(&self.signed_bytes(), &self.sig)
    }

    /// Sign the fields with `key` (the epoch's key: only
    /// [`SealingKey::evolve`] holds it).
    fn signed(mut self, key: &ed25519_dalek::SigningKey) -> Seal {
        use ed25519_dalek::Signer as _;
        self.sig = key.sign(&self.signed_bytes()).to_bytes();
        self
    }

    /// The seal's time.
    pub fn time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.time_ms)
    }

    /// The seal's time as the trail writes times (RFC 3339, UTC, ms).
    pub fn time_text(&self) -> String {
        crate::text::record_time(self.time())
    }

    /// SHA-256 of the signed bytes and the signature: names this one seal
    /// (in the journal line, where a shorter text is welcome).
    pub fn digest(&self) -> Digest {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(self.signed_bytes());
        h.update(self.sig);
        Digest(h.finalize().into())
    }

    /// The fields of the trail's `seal` record.
    pub fn to_record(&self) -> SealRecord {
        SealRecord {
            trail: self.trail.to_string(),
            epoch: self.epoch,
            head_seq: self.head.seq,
            head: self.head.hash.to_string(),
            from_seq: self.from_seq,
            next_key: self.next_key.to_string(),
            sig: BASE64.encode(self.sig),
        }
    }

    /// The seal a trail record holds; `time` is the record's `time`.
    pub fn from_record(r: &SealRecord, time: &str) -> Result<Seal, ParseError> {
        let at = crate::text::parse_record_time(time)
            .ok_or_else(|| field("time", time, "an RFC 3339 time"))?;
        let ns = at.unix_timestamp_nanos();
        let time_ms = u64::try_from(ns / 1_000_000)
            .ok()
            .filter(|_| ns % 1_000_000 == 0)
            .ok_or_else(|| field("time", time, "a time after 1970, in whole milliseconds"))?;
        let sig = BASE64
            .decode(&r.sig)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .ok_or_else(|| field("sig", &r.sig, "64 bytes in base64"))?;
        Ok(Seal {
            trail: KeyId::from_hex(&r.trail)
                .ok_or_else(|| field("trail", &r.trail, "16 hex digits"))?,
            epoch: r.epoch,
            head: Head {
                seq: r.head_seq,
                hash: Digest::from_hex(&r.head)
                    .ok_or_else(|| field("head", &r.head, "64 hex digits"))?,
            },
            from_seq: r.from_seq,
            time_ms,
            next_key: r
                .next_key
                .parse()
                .map_err(|_| field("next_key", &r.next_key, "a verification key"))?,
            sig,
        })
    }

    /// The seal log's line (JSON, without the newline).
    pub fn to_log_line(&self) -> String {
        let line = LogLine {
            v: LOG_VERSION,
            time: self.time_text(),
            seal: self.to_record(),
        };
        // A struct of strings and integers always serialises.
        serde_json::to_string(&line).unwrap_or_default()
    }

    /// Read a seal log line.
    pub fn from_log_line(line: &[u8]) -> Result<Seal, ParseError> {
        let l: LogLine = serde_json::from_slice(line)?;
        if l.v != LOG_VERSION {
            return Err(ParseError::Version(l.v));
        }
        Seal::from_record(&l.seal, &l.time)
    }

    /// The journal line's fields after [`JOURNAL_MESSAGE`], in this order
    /// and with these names (a stable interface: an auditor greps them):
    /// `trail=<key id> epoch=<n> seq=<head seq> head=<64 hex>
    /// time=<RFC 3339> seal=<64 hex>`, `seal` being [`Seal::digest`].
    pub fn journal_line(&self) -> String {
        format!(
            "trail={} epoch={} seq={} head={} time={} seal={}",
            self.trail,
            self.epoch,
            self.head.seq,
            self.head.hash,
            self.time_text(),
            self.digest()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn seal_for_tests() -> Seal {
        let mut key = SealingKey::generate().unwrap();
        let head = Head {
            seq: 41,
            hash: Digest::of(b"line 41"),
        };
        key.evolve(
            head,
            1,
            UNIX_EPOCH + Duration::from_millis(1_795_000_000_123),
        )
        .unwrap()
    }

    #[test]
    fn signed_bytes_have_a_fixed_layout() {
        let key: VerifyingKey = "rempart-seal-v1:O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik="
            .parse()
            .unwrap();
        let seal = Seal {
            trail: KeyId([1, 2, 3, 4, 5, 6, 7, 8]),
            epoch: 3,
            head: Head {
                seq: 0x0102,
                hash: Digest([0xaa; 32]),
            },
            from_seq: 1,
            time_ms: 0x0a0b,
            next_key: key,
            sig: [0; 64],
        };
        let b = seal.signed_bytes();
        assert_eq!(&b[..16], b"rempart-seal-v1\0");
        assert_eq!(&b[16..24], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&b[24..32], &3u64.to_be_bytes());
        assert_eq!(&b[32..40], &0x0102u64.to_be_bytes());
        assert_eq!(&b[40..72], &[0xaa; 32]);
        assert_eq!(&b[72..80], &1u64.to_be_bytes());
        assert_eq!(&b[80..88], &0x0a0bu64.to_be_bytes());
        assert_eq!(&b[88..], &key.to_bytes());
    }

    #[test]
    fn a_verification_key_prints_and_parses_back() {
        let key = SealingKey::generate().unwrap().verifying_key();
        let text = key.to_string();
        assert!(text.starts_with("rempart-seal-v1:"));
        assert_eq!(text.parse::<VerifyingKey>().unwrap(), key);
        let file = format!(
            "# rempart audit verification key, id {}\n\n{text}\n",
            key.id()
        );
        assert_eq!(VerifyingKey::from_text(&file).unwrap(), key);
        assert_eq!(key.id().to_string().len(), 16);
        assert_eq!(KeyId::from_hex(&key.id().to_string()), Some(key.id()));
    }

    #[test]
    fn malformed_verification_keys_are_refused() {
        let key = SealingKey::generate().unwrap().verifying_key().to_string();
        let b64 = key.strip_prefix(KEY_PREFIX).unwrap();
        let mut identity = [0u8; 32];
        identity[0] = 1;
        for bad in [
            b64.to_owned(),                                     // no prefix
            format!("rempart-seal-v2:{b64}"),                   // another version
            format!("{KEY_PREFIX}{}", &b64[..40]),              // short
            format!("{KEY_PREFIX}{b64}AAAA"),                   // long
            format!("{KEY_PREFIX}{}", BASE64.encode([0; 32])),  // small order: weak
            format!("{KEY_PREFIX}{}", BASE64.encode(identity)), // weak
        ] {
            assert!(bad.parse::<VerifyingKey>().is_err(), "{bad}");
        }
        let other = SealingKey::generate().unwrap().verifying_key();
        assert!(VerifyingKey::from_text(&format!("{key}\n{other}\n")).is_err());
        assert!(VerifyingKey::from_text("# nothing\n").is_err());
        assert!(VerifyingKey::from_text(&format!("{key}\nhello\n")).is_err());
    }

    #[test]
    fn a_seal_goes_through_the_log_and_the_trail_unchanged() {
        let seal = seal_for_tests();
        assert!(!seal.verifies_with(&seal.next_key));
        let line = seal.to_log_line();
        assert!(line.starts_with(r#"{"v":1,"time":"2026-11-18T"#), "{line}");
        assert_eq!(Seal::from_log_line(line.as_bytes()).unwrap(), seal);
        let record = seal.to_record();
        assert_eq!(Seal::from_record(&record, &seal.time_text()).unwrap(), seal);
        // The record's JSON is what the trail's `seal` kind holds.
        let json = serde_json::to_string(&record).unwrap();
        assert_eq!(serde_json::from_str::<SealRecord>(&json).unwrap(), record);
    }

    #[test]
    fn unreadable_seal_lines_are_refused() {
        let line = seal_for_tests().to_log_line();
        for (from, to) in [
            (r#""v":1"#, r#""v":2"#),
            (r#""head":""#, r#""head":"zz"#),
            (r#""sig":""#, r#""sig":"AA"#),
            (r#""trail":""#, r#""trail":"0"#),
            (r#""next_key":"rempart-seal-v1:"#, r#""next_key":""#),
            (r#".123Z""#, r#".123456Z""#),
            (r#""epoch""#, r#""extra":1,"epoch""#),
        ] {
            let bad = line.replacen(from, to, 1);
            assert_ne!(bad, line, "{from}");
            assert!(Seal::from_log_line(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_journal_line_names_the_head() {
        let seal = seal_for_tests();
        let line = seal.journal_line();
        assert_eq!(
            line,
            format!(
                "trail={} epoch=0 seq=41 head={} time=2026-11-18T11:06:40.123Z seal={}",
                seal.trail,
                Digest::of(b"line 41"),
                seal.digest()
            )
        );
    }

    #[test]
    fn hex_digests_read_back() {
        let d = Digest::of(b"x");
        assert_eq!(Digest::from_hex(&d.to_string()), Some(d));
        assert_eq!(
            Digest::from_hex(&d.to_string().to_uppercase()),
            Some(d),
            "either case"
        );
        assert_eq!(Digest::from_hex(&d.to_string()[1..]), None);
        assert_eq!(Digest::from_hex(&"g".repeat(64)), None);
        assert_eq!(
            Digest::from_hex(crate::audit::chain::ChainHash::GENESIS.as_str()),
            Some(Digest::GENESIS)
        );
        assert_eq!(
            d.to_string(),
            crate::audit::chain::ChainHash::of(b"x").as_str()
        );
    }
}
