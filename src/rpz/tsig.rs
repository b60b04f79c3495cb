//! TSIG (RFC 8945) with HMAC-SHA256, for the RPZ listener: the key read
//! from a BIND key file, requests verified, answers signed, a transfer's
//! messages each signed in a chain.
//!
//! Written on the HMAC and SHA-256 the crate already uses rather than
//! hickory-proto's TSIG (behind its DNSSEC feature, which would change how
//! every forwarded DNSSEC record is parsed), and because a transfer's
//! later messages are signed over the TSIG timers only (RFC 8945 section
//! 5.3.1), which hickory's signer does not do.

use std::path::{Path, PathBuf};

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// TSIG's RR type (RFC 8945 section 4.2).
const TYPE_TSIG: u16 = 250;
/// Class ANY.
const CLASS_ANY: u16 = 255;
/// The allowed difference between the signer's clock and ours, seconds
/// (RFC 8945 section 10: 300 recommended).
pub const FUDGE: u16 = 300;
/// TSIG error codes (RFC 8945 section 3).
const BADSIG: u16 = 16;
const BADKEY: u16 = 17;
const BADTIME: u16 = 18;

/// `hmac-sha256.` in wire form: the one algorithm supported.
const HMAC_SHA256: &[u8] = b"\x0bhmac-sha256\x00";

/// A TSIG key: its name and secret.
#[derive(Clone)]
pub struct TsigKey {
    /// The key's name, lowercase, in wire form (RFC 8945 section 4.3.3:
    /// canonical form in the digest).
    name_wire: Vec<u8>,
    /// The key's name as written.
    name: String,
    secret: Vec<u8>,
}

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Why a key file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", file.display())]
pub struct KeyFileError {
    /// The file.
    pub file: PathBuf,
    /// What is wrong.
    pub reason: String,
}

impl TsigKey {
    /// Read a BIND key file: `key "name" { algorithm hmac-sha256; secret
    /// "base64"; };` (as `tsig-keygen` writes it; comments allowed).
    /// The file must be readable by its owner only (mode 0600 or 0400), as
    /// the admin token: the secret signs every transfer.
    pub fn load(file: &Path) -> Result<TsigKey, KeyFileError> {
        use std::io::Read;
        use std::os::unix::fs::PermissionsExt;
        let error = |reason: String| KeyFileError {
            file: file.to_owned(),
            reason,
        };
        let mut opened = std::fs::File::open(file).map_err(|e| error(e.to_string()))?;
        // The mode of the file opened, not of the path, so that a swap
        // between the check and the read cannot pass.
        let mode = opened
            .metadata()
            .map_err(|e| error(e.to_string()))?
            .permissions()
            .mode()
            & 0o7777;
        if mode & 0o077 != 0 {
            return Err(error(format!(
                "mode {mode:04o} lets the group or others at the TSIG secret: make the file readable by its owner only (chmod 600)"
            )));
        }
        let mut text = String::new();
        opened
            .read_to_string(&mut text)
            .map_err(|e| error(e.to_string()))?;
        TsigKey::parse(&text).map_err(|reason| KeyFileError {
            file: file.to_owned(),
            reason,
        })
    }

    /// Parse the text of a BIND key file (one key).
    pub fn parse(text: &str) -> Result<TsigKey, String> {
        let tokens = tokens(text)?;
        let mut t = tokens.iter().map(String::as_str);
        let expect = |got: Option<&str>, want: &str| match got {
            Some(g) if g == want => Ok(()),
            Some(g) => Err(format!("expected {want:?}, found {g:?}")),
            None => Err(format!("expected {want:?}, found the end of the file")),
        };
        expect(t.next(), "key")?;
        let name = t.next().ok_or("no key name after \"key\"")?.to_owned();
        expect(t.next(), "{")?;
        let (mut algorithm, mut secret) = (None, None);
        loop {
            match t.next() {
                Some("}") => break,
                Some("algorithm") => algorithm = t.next().map(str::to_ascii_lowercase),
                Some("secret") => secret = t.next().map(str::to_owned),
                Some(other) => return Err(format!("unknown statement {other:?} in the key")),
                None => return Err("the key's \"}\" is missing".into()),
            }
            expect(t.next(), ";")?;
        }
        expect(t.next(), ";")?;
        if let Some(extra) = t.next() {
            return Err(format!("{extra:?} after the key: one key per file is read"));
        }
        match algorithm.as_deref() {
            Some("hmac-sha256") => {}
            Some(other) => {
                return Err(format!(
                    "algorithm {other:?} is not supported: only hmac-sha256"
                ));
            }
            None => return Err("no algorithm (hmac-sha256)".into()),
        }
        let secret = secret.ok_or("no secret")?;
        let secret = base64::engine::general_purpose::STANDARD
            .decode(secret.as_bytes())
            .map_err(|e| format!("the secret is not base64: {e}"))?;
        if secret.len() < 16 {
            return Err(format!(
                "the secret has {} octets: at least 16 are needed",
                secret.len()
            ));
        }
        let name_wire = name_to_wire(&name)?;
        Ok(TsigKey {
            name_wire,
            name,
            secret,
        })
    }

    /// The key's name as written in the file.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn mac(&self, parts: &[&[u8]]) -> Vec<u8> {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .expect("HMAC takes keys of any length");
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().to_vec()
    }
}

/// The tokens of a BIND config text: quoted strings (unquoted), words, and
/// `{`, `}`, `;`; comments (`#`, `//`, `/* */`) dropped.
fn tokens(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '#' => while chars.next().is_some_and(|c| c != '\n') {},
            '/' if chars.peek() == Some(&'/') => while chars.next().is_some_and(|c| c != '\n') {},
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                loop {
                    match chars.next() {
                        Some('/') if last == '*' => break,
                        Some(c) => last = c,
                        None => return Err("a /* comment is not closed".into()),
                    }
                }
            }
            '{' | '}' | ';' => out.push(c.to_string()),
            '"' => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(c) => s.push(c),
                        None => return Err("a quoted string is not closed".into()),
                    }
                }
                out.push(s);
            }
            c => {
                let mut s = c.to_string();
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || matches!(n, '{' | '}' | ';' | '"') {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                out.push(s);
            }
        }
    }
    Ok(out)
}

/// A name in lowercase uncompressed wire form.
fn name_to_wire(name: &str) -> Result<Vec<u8>, String> {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let mut wire = Vec::new();
    if !name.is_empty() {
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(format!("key name {name:?}: a label is empty or too long"));
            }
            wire.push(label.len() as u8);
            wire.extend_from_slice(label.as_bytes());
        }
    }
    wire.push(0);
    if wire.len() > 255 {
        return Err(format!("key name {name:?} is too long"));
    }
    Ok(wire)
}

/// A request's TSIG, verified.
#[derive(Debug, Clone)]
pub struct RequestSignature {
    /// Its MAC: the first answer's digest starts with it.
    pub mac: Vec<u8>,
}

/// What the TSIG of a request says.
#[derive(Debug)]
pub enum Checked {
    /// No TSIG: the message as received.
    Unsigned,
    /// A valid TSIG; `message` is the request without it (as signed).
    Signed {
        /// The request without its TSIG record, ARCOUNT lowered.
        message: Vec<u8>,
        /// The signature.
        signature: RequestSignature,
    },
    /// A TSIG that does not verify: answer NOTAUTH with this unsigned
    /// TSIG error (RFC 8945 section 5.2).
    Rejected {
        /// The request without its TSIG record.
        message: Vec<u8>,
        /// BADKEY, BADSIG or BADTIME.
        error: TsigError,
    },
}

/// Why a request's TSIG is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsigError {
    /// Another key or algorithm (RFC 8945 section 5.2.1).
    BadKey,
    /// The MAC does not verify (section 5.2.2).
    BadSig,
    /// Signed too long ago or ahead (section 5.2.3).
    BadTime,
}

impl TsigError {
    fn code(self) -> u16 {
        match self {
            TsigError::BadKey => BADKEY,
            TsigError::BadSig => BADSIG,
            TsigError::BadTime => BADTIME,
        }
    }
}

/// Check the TSIG of `request` (the last additional record, RFC 8945
/// section 5.1) against `key`, at `now` (Unix seconds). `None` when the
/// message cannot be walked.
pub fn check(key: &TsigKey, request: &[u8], now: u64) -> Option<Checked> {
    let Some(tsig) = find_tsig(request)? else {
        return Some(Checked::Unsigned);
    };
    // The request as signed: without the TSIG record, ARCOUNT lowered, the
    // original ID (RFC 8945 section 4.3.1).
    let mut message = request[..tsig.start].to_vec();
    let arcount = u16::from_be_bytes([message[10], message[11]]) - 1;
    message[10..12].copy_from_slice(&arcount.to_be_bytes());
    message[0..2].copy_from_slice(&tsig.original_id.to_be_bytes());
    if tsig.key_name != key.name_wire || !tsig.algorithm.eq_ignore_ascii_case(HMAC_SHA256) {
        return Some(Checked::Rejected {
            message,
            error: TsigError::BadKey,
        });
    }
    // RFC 8945 section 4.3.3: the message, then the TSIG variables.
    let variables = variables(
        &key.name_wire,
        tsig.time,
        tsig.fudge,
        tsig.error,
        &tsig.other,
    );
    let expected = key.mac(&[&message, &variables]);
    // Constant time: a plain comparison stops at the first differing byte.
    use subtle::ConstantTimeEq;
    if tsig.mac.len() != expected.len() || !bool::from(tsig.mac.ct_eq(&expected)) {
        return Some(Checked::Rejected {
            message,
            error: TsigError::BadSig,
        });
    }
    if now.abs_diff(tsig.time) > u64::from(tsig.fudge) {
        return Some(Checked::Rejected {
            message,
            error: TsigError::BadTime,
        });
    }
    message[0..2].copy_from_slice(&request[0..2]);
    Some(Checked::Signed {
        message,
        signature: RequestSignature { mac: tsig.mac },
    })
}

/// The TSIG variables of the digest (RFC 8945 section 4.3.3).
fn variables(key_name: &[u8], time: u64, fudge: u16, error: u16, other: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(key_name.len() + 32 + other.len());
    v.extend_from_slice(key_name);
    v.extend_from_slice(&CLASS_ANY.to_be_bytes());
    v.extend_from_slice(&0u32.to_be_bytes());
    v.extend_from_slice(HMAC_SHA256);
    v.extend_from_slice(&time.to_be_bytes()[2..]);
    v.extend_from_slice(&fudge.to_be_bytes());
    v.extend_from_slice(&error.to_be_bytes());
    v.extend_from_slice(&(other.len() as u16).to_be_bytes());
    v.extend_from_slice(other);
    v
}

/// Signs the answers to one signed request: the first over the request's
/// MAC and the TSIG variables, each later one (a transfer's next messages)
/// over the previous MAC and the TSIG timers (RFC 8945 section 5.3.1).
#[derive(Debug)]
pub struct ResponseSigner {
    key: TsigKey,
    previous: Vec<u8>,
    first: bool,
}

impl ResponseSigner {
    /// The signer of the answers to a request signed with `signature`.
    pub fn new(key: &TsigKey, signature: RequestSignature) -> ResponseSigner {
        ResponseSigner {
            key: key.clone(),
            previous: signature.mac,
            first: true,
        }
    }

    /// `message` (encoded, without TSIG) with its TSIG record appended.
    pub fn sign(&mut self, message: &[u8], now: u64) -> Vec<u8> {
        let prior_len = (self.previous.len() as u16).to_be_bytes();
        let mac = if self.first {
            let v = variables(&self.key.name_wire, now, FUDGE, 0, &[]);
            self.key.mac(&[&prior_len, &self.previous, message, &v])
        } else {
            let mut timers = now.to_be_bytes()[2..].to_vec();
            timers.extend_from_slice(&FUDGE.to_be_bytes());
            self.key
                .mac(&[&prior_len, &self.previous, message, &timers])
        };
        self.first = false;
        let out = append_tsig(&self.key.name_wire, message, now, &mac, 0);
        self.previous = mac;
        out
    }
}

/// The error answer to a rejected TSIG: `message` with an unsigned TSIG
/// record carrying the error (RFC 8945 section 5.2: BADSIG and BADKEY
/// answers are unsigned).
pub fn append_error(key_name: &[u8], message: &[u8], now: u64, error: TsigError) -> Vec<u8> {
    append_tsig(key_name, message, now, &[], error.code())
}

/// The wire name of `key` (for error answers).
pub fn key_name_wire(key: &TsigKey) -> &[u8] {
    &key.name_wire
}

fn append_tsig(key_name: &[u8], message: &[u8], now: u64, mac: &[u8], error: u16) -> Vec<u8> {
    let mut out = message.to_vec();
    let arcount = u16::from_be_bytes([out[10], out[11]]) + 1;
    out[10..12].copy_from_slice(&arcount.to_be_bytes());
    let id = [message[0], message[1]];
    let mut rdata = Vec::with_capacity(HMAC_SHA256.len() + 16 + mac.len());
    rdata.extend_from_slice(HMAC_SHA256);
    rdata.extend_from_slice(&now.to_be_bytes()[2..]);
    rdata.extend_from_slice(&FUDGE.to_be_bytes());
    rdata.extend_from_slice(&(mac.len() as u16).to_be_bytes());
    rdata.extend_from_slice(mac);
    rdata.extend_from_slice(&id);
    rdata.extend_from_slice(&error.to_be_bytes());
    rdata.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(key_name);
    out.extend_from_slice(&TYPE_TSIG.to_be_bytes());
    out.extend_from_slice(&CLASS_ANY.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(&rdata);
    out
}

/// A TSIG record found in a message.
struct Found {
    start: usize,
    key_name: Vec<u8>,
    algorithm: Vec<u8>,
    time: u64,
    fudge: u16,
    mac: Vec<u8>,
    original_id: u16,
    error: u16,
    other: Vec<u8>,
}

/// The message's TSIG record if its last record is one; `None` when the
/// message cannot be walked.
fn find_tsig(m: &[u8]) -> Option<Option<Found>> {
    let count = |i: usize| u16::from_be_bytes([m[i], m[i + 1]]) as usize;
    if m.len() < 12 {
        return None;
    }
    let (qd, records) = (count(4), count(6) + count(8) + count(10));
    let mut at = 12;
    for _ in 0..qd {
        at = read_name(m, at)?.1 + 4;
    }
    let mut last = None;
    for _ in 0..records {
        let start = at;
        let (name, after) = read_name(m, at)?;
        let head = m.get(after..after + 10)?;
        let rtype = u16::from_be_bytes([head[0], head[1]]);
        let rdlen = u16::from_be_bytes([head[8], head[9]]) as usize;
        let rdata = m.get(after + 10..after + 10 + rdlen)?;
        at = after + 10 + rdlen;
        last = (rtype == TYPE_TSIG).then(|| (start, name, rdata.to_vec()));
    }
    if at != m.len() {
        return None;
    }
    let Some((start, key_name, rdata)) = last else {
        return Some(None);
    };
    // RFC 8945 section 4.2: the algorithm name is not compressed.
    let (algorithm, mut i) = read_name(&rdata, 0)?;
    let field = |i: usize, n: usize| rdata.get(i..i + n);
    let mut time = [0u8; 8];
    time[2..].copy_from_slice(field(i, 6)?);
    let fudge = u16::from_be_bytes(field(i + 6, 2)?.try_into().ok()?);
    let mac_len = u16::from_be_bytes(field(i + 8, 2)?.try_into().ok()?) as usize;
    let mac = field(i + 10, mac_len)?.to_vec();
    i += 10 + mac_len;
    let original_id = u16::from_be_bytes(field(i, 2)?.try_into().ok()?);
    let error = u16::from_be_bytes(field(i + 2, 2)?.try_into().ok()?);
    let other_len = u16::from_be_bytes(field(i + 4, 2)?.try_into().ok()?) as usize;
    let other = field(i + 6, other_len)?.to_vec();
    Some(Some(Found {
        start,
        key_name,
        algorithm,
        time: u64::from_be_bytes(time),
        fudge,
        mac,
        original_id,
        error,
        other,
    }))
}

/// The name at `at`, lowercase and uncompressed, and the offset after it
/// (pointers followed, at most 64 of them).
fn read_name(m: &[u8], mut at: usize) -> Option<(Vec<u8>, usize)> {
    let mut name = Vec::new();
    let mut end = None;
    for _ in 0..64 {
        let len = *m.get(at)? as usize;
        if len & 0xc0 == 0xc0 {
            let target = ((len & 0x3f) << 8) | *m.get(at + 1)? as usize;
            end.get_or_insert(at + 2);
            at = target;
            continue;
        }
        if len & 0xc0 != 0 {
            return None;
        }
        name.push(len as u8);
        if len == 0 {
            return Some((name, end.unwrap_or(at + 1)));
        }
        name.extend(
            m.get(at + 1..at + 1 + len)?
                .iter()
                .map(u8::to_ascii_lowercase),
        );
        at += 1 + len;
        if name.len() > 255 {
            return None;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "# made by tsig-keygen\nkey \"xfr-key\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==\";\n};\n";

    #[test]
    fn a_bind_key_file_is_read_and_bad_ones_named() {
        let k = TsigKey::parse(KEY).unwrap();
        assert_eq!(k.name(), "xfr-key");
        assert_eq!(k.name_wire, b"\x07xfr-key\x00");
        for (text, says) in [
            (KEY.replace("hmac-sha256", "hmac-md5"), "only hmac-sha256"),
            (KEY.replace("c2Vj", "!!!!"), "not base64"),
            (
                KEY.replace("\talgorithm hmac-sha256;\n", ""),
                "no algorithm",
            ),
            (KEY.replace("};\n", "}\n"), "expected \";\""),
            (format!("{KEY}{KEY}"), "one key per file"),
            (
                "key \"k\" { algorithm hmac-sha256; secret \"c2hvcnQ=\"; };".into(),
                "at least 16",
            ),
        ] {
            let err = TsigKey::parse(&text).unwrap_err();
            assert!(err.contains(says), "{err} (wanted {says})");
        }
    }

    /// A request signed as a client would, then checked: valid; any
    /// changed octet, another key or a stale time is rejected.
    #[test]
    fn requests_are_verified_and_answers_chained() {
        let key = TsigKey::parse(KEY).unwrap();
        let mut q = hickory_proto::op::Message::query();
        q.add_query(hickory_proto::op::Query::query(
            hickory_proto::rr::Name::from_ascii("main.rpz.rempart.").unwrap(),
            hickory_proto::rr::RecordType::AXFR,
        ));
        let bytes = q.to_vec().unwrap();
        let now = 1_800_000_000;
        let v = variables(&key.name_wire, now, FUDGE, 0, &[]);
        let mac = key.mac(&[&bytes, &v]);
        let signed = append_tsig(&key.name_wire, &bytes, now, &mac, 0);
        match check(&key, &signed, now + 10).unwrap() {
            Checked::Signed { message, signature } => {
                assert_eq!(message, bytes);
                assert_eq!(signature.mac, mac);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            check(&key, &bytes, now).unwrap(),
            Checked::Unsigned
        ));
        let mut tampered = signed.clone();
        tampered[3] ^= 0x01;
        assert!(matches!(
            check(&key, &tampered, now).unwrap(),
            Checked::Rejected {
                error: TsigError::BadSig,
                ..
            }
        ));
        assert!(matches!(
            check(&key, &signed, now + 301).unwrap(),
            Checked::Rejected {
                error: TsigError::BadTime,
                ..
            }
        ));
        let other = TsigKey::parse(&KEY.replace("xfr-key", "other")).unwrap();
        assert!(matches!(
            check(&other, &signed, now).unwrap(),
            Checked::Rejected {
                error: TsigError::BadKey,
                ..
            }
        ));
        // Answers: the first over the request MAC and the variables, the
        // next over the previous MAC and the timers.
        let mut s = ResponseSigner::new(&key, RequestSignature { mac: mac.clone() });
        let a1 = s.sign(&bytes, now);
        let a2 = s.sign(&bytes, now);
        let mac1 = key.mac(&[&[0, 32], &mac, &bytes, &v]);
        assert_eq!(a1, append_tsig(&key.name_wire, &bytes, now, &mac1, 0));
        let mut timers = now.to_be_bytes()[2..].to_vec();
        timers.extend_from_slice(&FUDGE.to_be_bytes());
        let mac2 = key.mac(&[&[0, 32], &mac1, &bytes, &timers]);
        assert_eq!(a2, append_tsig(&key.name_wire, &bytes, now, &mac2, 0));
    }
}
