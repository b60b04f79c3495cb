//! The line format and the chain: how records become the bytes of the
//! trail, each line naming the SHA-256 of the one before it.
//!
//! A line is `{"v":..,"seq":..,"time":"..","prev":"<64 hex>",` followed by
//! the event's fields (`"kind":..` first), `}` and a newline. `Batch`
//! writes a batch of them into one buffer (the writer hands it to the disk
//! in one call); [`ChainHash::of`] is the one hash of a line, which the
//! writer, `audit verify` and the writer reopening a trail all use.

use std::time::SystemTime;

use super::record::{Event, RedirectRef, SCHEMA_VERSION, format_time};

/// SHA-256 of a line of the trail (its bytes without the newline), as the
/// 64 lowercase hex digits written in the next line's `prev`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ChainHash([u8; 64]);

impl ChainHash {
    /// `prev` of the first record of a trail: 64 zeros.
    pub const GENESIS: ChainHash = ChainHash([b'0'; 64]);

    /// The hash of `line` (without its newline); no allocation.
    pub fn of(line: &[u8]) -> ChainHash {
        use sha2::Digest;
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let digest = sha2::Sha256::digest(line);
        let mut out = [0u8; 64];
        for (i, b) in digest.iter().enumerate() {
            out[2 * i] = HEX[usize::from(b >> 4)];
            out[2 * i + 1] = HEX[usize::from(b & 15)];
        }
        ChainHash(out)
    }

    /// The hex digits, as written in `prev`.
    pub fn as_str(&self) -> &str {
        // Only hex digits are ever stored: never the empty fallback.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The hex digits, as bytes.
    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

impl std::fmt::Display for ChainHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChainHash({})", self.as_str())
    }
}

/// A batch being serialised: each line is hashed into the next one's `prev`.
pub(super) struct Batch {
    /// The hash of the last line.
    prev: ChainHash,
    seq: u64,
    bytes: Vec<u8>,
    count: u64,
    /// The last (millisecond, formatted time): a batch is mostly one instant.
    time_cache: (u128, String),
    scratch: String,
}

/// A serialised batch: its bytes and where the chain stands after it.
pub(super) struct Serialised {
    /// The hash of the batch's last line.
    pub prev: ChainHash,
    /// The `seq` of its last line.
    pub seq: u64,
    /// The lines, each ending with a newline.
    pub bytes: Vec<u8>,
    /// How many lines.
    pub count: u64,
}

impl Batch {
    /// A batch that continues the chain after the line hashed `prev`,
    /// numbered `seq`, with room for about `records` lines.
    pub(super) fn new(prev: ChainHash, seq: u64, records: usize) -> Batch {
        Batch {
            prev,
            seq,
            // A redirect line is ~400 bytes (two 64-digit hashes): no
            // regrowth (and copy) of the batch's buffer on the way.
            bytes: Vec::with_capacity(records * 448 + 512),
            count: 0,
            time_cache: (0, String::new()),
            scratch: String::with_capacity(256),
        }
    }

    /// The bytes, and where the chain stands after them.
    pub(super) fn finish(self) -> Serialised {
        Serialised {
            prev: self.prev,
            seq: self.seq,
            bytes: self.bytes,
            count: self.count,
        }
    }

    /// `{"v":..,"seq":..,"time":..,"prev":..,` and the line's start.
    fn head(&mut self, time: SystemTime) -> usize {
        use std::io::Write as _;
        self.seq += 1;
        let millis = time
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        if self.time_cache.0 != millis || self.time_cache.1.is_empty() {
            self.time_cache = (millis, format_time(time));
        }
        let start = self.bytes.len();
        let _ = write!(
            self.bytes,
            "{{\"v\":{SCHEMA_VERSION},\"seq\":{},\"time\":\"",
            self.seq
        );
        self.bytes.extend_from_slice(self.time_cache.1.as_bytes());
        self.bytes.extend_from_slice(b"\",\"prev\":\"");
        self.bytes.extend_from_slice(self.prev.as_bytes());
        self.bytes.extend_from_slice(b"\",");
        start
    }

    fn end(&mut self, start: usize) {
        self.prev = ChainHash::of(&self.bytes[start..]);
        self.bytes.push(b'\n');
        self.count += 1;
    }

    /// Any event, through serde: its object without the opening brace
    /// follows the head (the same line as serialising a
    /// [`Line`](super::Line), without serde's buffering of a flattened,
    /// internally tagged enum).
    pub(super) fn push_event(&mut self, event: &Event, time: SystemTime) {
        let start = self.head(time);
        let event_start = self.bytes.len();
        if serde_json::to_writer(&mut self.bytes, event).is_err()
            || self.bytes.get(event_start) != Some(&b'{')
        {
            self.bytes.truncate(start);
            self.seq -= 1;
            return;
        }
        self.bytes.remove(event_start);
        self.end(start);
    }

    /// A redirect, written field by field with no intermediate strings: the
    /// same bytes as [`RedirectRef::to_event`] through [`Batch::push_event`]
    /// (a test checks it), at a fraction of the cost.
    pub(super) fn push_redirect(
        &mut self,
        r: &RedirectRef,
        client: Option<&str>,
        time: SystemTime,
    ) {
        use std::fmt::Write as _;
        use std::io::Write as _;
        let start = self.head(time);
        let rule = r.policy.rule_at(r.index);
        let info = r.policy.info();
        let b = &mut self.bytes;
        b.extend_from_slice(b"\"kind\":\"redirect\",\"qname\":");
        if !write_plain_name(b, &r.qname) {
            // Escapes needed (DNS presentation, then JSON): the slow way.
            self.scratch.clear();
            let _ = write!(self.scratch, "{}", r.qname);
            let _ = serde_json::to_writer(&mut *b, self.scratch.as_str());
        }
        b.extend_from_slice(b",\"qtype\":\"");
        let _ = write!(b, "{}", r.qtype);
        b.extend_from_slice(b"\",\"rule\":");
        let _ = serde_json::to_writer(&mut *b, rule.map_or("", |r| r.name));
        b.extend_from_slice(b",\"reference\":");
        let _ = serde_json::to_writer(&mut *b, rule.map_or("", |r| r.reference()));
        b.extend_from_slice(b",\"category\":");
        let _ = serde_json::to_writer(&mut *b, rule.map_or("", |r| r.category));
        // A list id is [a-z0-9-]: no escape needed.
        b.extend_from_slice(b",\"list\":\"");
        b.extend_from_slice(r.policy.list().as_bytes());
        b.push(b'"');
        let _ = write!(
            b,
            ",\"serial\":{},\"digest\":\"{}\",\"answer\":\"{}\",\"transport\":\"{}\"",
            info.map_or(0, |i| i.serial),
            info.map_or("", |i| i.digest_hex.as_str()),
            r.answer,
            r.transport()
        );
        if let Some(c) = client {
            b.extend_from_slice(b",\"client\":");
            let _ = serde_json::to_writer(&mut *b, c);
        }
        b.push(b'}');
        self.end(start);
    }
}

/// Write `name` as a JSON string the way `Name`'s Display and serde_json
/// would, when every label is letters, digits, `-` and `_` (nothing to
/// escape, which is every name of real traffic); false (and nothing
/// written) otherwise.
fn write_plain_name(b: &mut Vec<u8>, name: &hickory_proto::rr::Name) -> bool {
    let plain = |l: &[u8]| {
        l.iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_')
    };
    if name.is_root() || !name.iter().all(plain) {
        return false;
    }
    b.push(b'"');
    for label in name.iter() {
        b.extend_from_slice(label);
        b.push(b'.');
    }
    if !name.is_fqdn() {
        b.pop();
    }
    b.push(b'"');
    true
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::audit::Line;

    #[test]
    fn the_fast_redirect_line_is_the_serde_line() {
        let list = crate::list::List::parse(
            "#rempart-list v1\nissuer: T\nserial: 9\nissued: 2026-01-01T00:00:00Z\nexpires: 2099-01-01T00:00:00Z\n\nname\tmatch\tcategory\treference\tadded\nbad.test\tsubtree\tterror\"ism\tREF-\u{e9}\\1\t2026-01-01\n"
                .as_bytes(),
            std::path::Path::new("t"),
        )
        .unwrap();
        let policy = std::sync::Arc::new(crate::policy::Policy::compile(&list, [7; 32]));
        // A label with a quote and a backslash (both need escaping), and a
        // plain name as in real traffic (written without Display).
        let odd = hickory_proto::rr::Name::from_labels(vec![
            b"W\"w\\".as_ref(),
            b"Bad".as_ref(),
            b"test".as_ref(),
        ])
        .unwrap();
        let plain = hickory_proto::rr::Name::from_ascii("wWw.B-a_d.test.").unwrap();
        for qname in [odd, plain] {
            let r = RedirectRef {
                qname,
                qtype: hickory_proto::rr::RecordType::AAAA,
                policy: policy.clone(),
                index: 0,
                answer: "redirect",
                transport: crate::proto::Transport::Tcp,
            };
            let time = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_400_000_123);
            let new = || Batch::new(ChainHash::GENESIS, 4, 1);
            let (mut fast, mut slow) = (new(), new());
            fast.push_redirect(&r, Some("127.0.0.0/24"), time);
            let mut event = r.to_event();
            if let Event::Redirect(e) = &mut event {
                e.client = Some("127.0.0.0/24".into());
            }
            slow.push_event(&event, time);
            let (fast, slow) = (fast.finish(), slow.finish());
            assert_eq!(
                String::from_utf8(fast.bytes.clone()).unwrap(),
                String::from_utf8(slow.bytes).unwrap()
            );
            assert_eq!(fast.prev, slow.prev);
            let line = Line::parse(fast.bytes.trim_ascii_end()).unwrap();
            assert_eq!(line.seq, 5);
        }
    }

    #[test]
    fn the_genesis_value_is_64_zeros() {
        assert_eq!(ChainHash::GENESIS.as_str(), "0".repeat(64));
        assert_eq!(
            ChainHash::of(b"").as_str(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "SHA-256 of nothing"
        );
    }
}
