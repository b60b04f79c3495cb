//! Ready-to-send answers: the UDP fast path for names in the cache.
//!
//! Decoding a query into hickory's message types, cloning the cached records,
//! applying the policy to the CNAME chain and encoding the response costs
//! more than everything else a cached answer needs. So once an answer for a
//! name has been built and sent, its bytes are kept here, and the next query
//! for the same name, type, class and EDNS settings is answered by copying
//! them and rewriting what differs (RFC 1035 section 4.1):
//!
//! - the ID, and the RD and CD bits, from the query;
//! - the question name, in the client's letter case (the bytes are the same
//!   length; names in the answer that point to it follow);
//! - every TTL, counted down from when the upstream answer was stored, as
//!   the record cache does.
//!
//! An entry is valid only under the policy snapshot it was built with
//! ([`Policy::generation`](crate::policy::Policy::generation)): after a list
//! change the first query takes the full path and builds a new entry, so a
//! name listed (or a CNAME chain leading into one) by the new list is never
//! answered from here. Redirects are never kept here (each one is audited).
//!
//! Only plain queries take this path: one question, no answer or authority
//! records, at most an OPT record of version 0, nothing after it. Anything
//! else (and any answer larger than the client takes over UDP) goes the full
//! way, which handles it per the RFCs.

use std::time::Instant;

use super::answer::EDNS_PAYLOAD;

/// Header length.
const HEADER: usize = 12;
/// RR type of OPT (RFC 6891).
const OPT: u16 = 41;
/// Longest key: a 255-octet name, type, class, EDNS marker and payload.
const MAX_KEY: usize = 255 + 2 + 2 + 1 + 2;

/// What the fast path needs of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryView {
    /// Length of the question name on the wire (from offset 12).
    pub name_len: usize,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS.
    pub qclass: u16,
    /// The OPT record: the response's payload size (the client's, clamped
    /// to 512..=1232 as [`super::answer::response_edns`] does) and DO.
    pub edns: Option<(u16, bool)>,
}

impl QueryView {
    /// Read a plain query, or `None` for anything the fast path leaves to
    /// the full path (see the module documentation).
    pub fn parse(msg: &[u8]) -> Option<QueryView> {
        if msg.len() < HEADER + 5 {
            return None;
        }
        // QR=0, OPCODE=0 (QUERY), TC=0; AA is meaningless in a query.
        if msg[2] & 0b1111_1010 != 0 {
            return None;
        }
        let count = |i: usize| u16::from_be_bytes([msg[i], msg[i + 1]]);
        if count(4) != 1 || count(6) != 0 || count(8) != 0 || count(10) > 1 {
            return None;
        }
        let mut at = HEADER;
        loop {
            let len = usize::from(*msg.get(at)?);
            if len == 0 {
                at += 1;
                break;
            }
            // A compression pointer or a reserved label type.
            if len > 63 {
                return None;
            }
            at += 1 + len;
            if at - HEADER > 254 {
                return None;
            }
        }
        let name_len = at - HEADER;
        let qtype = u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]);
        let qclass = u16::from_be_bytes([*msg.get(at + 2)?, *msg.get(at + 3)?]);
        at += 4;
        let mut edns = None;
        if count(10) == 1 {
            // Root owner, TYPE OPT, CLASS payload, TTL ext-rcode/version/
            // flags, RDLENGTH, options (ignored: the response carries none
            // of them).
            let opt = msg.get(at..at + 11)?;
            if opt[0] != 0 || u16::from_be_bytes([opt[1], opt[2]]) != OPT {
                return None;
            }
            let payload = u16::from_be_bytes([opt[3], opt[4]]);
            if opt[5] != 0 || opt[6] != 0 {
                return None;
            }
            let dnssec_ok = opt[7] & 0x80 != 0;
            let rdlen = usize::from(u16::from_be_bytes([opt[9], opt[10]]));
            at += 11 + rdlen;
            edns = Some((payload.clamp(512, EDNS_PAYLOAD), dnssec_ok));
        }
        if at != msg.len() {
            return None;
        }
        Some(QueryView {
            name_len,
            qtype,
            qclass,
            edns,
        })
    }

    /// The largest answer this client takes over UDP.
    pub fn max_udp(&self) -> usize {
        self.edns.map_or(512, |(payload, _)| usize::from(payload))
    }

    /// The cache key: the name lowercased, type, class, EDNS settings.
    /// Returns the key's length in `buf`.
    pub fn key(&self, msg: &[u8], buf: &mut [u8; MAX_KEY]) -> usize {
        let name = &msg[HEADER..HEADER + self.name_len];
        for (d, s) in buf.iter_mut().zip(name) {
            *d = s.to_ascii_lowercase();
        }
        let mut n = self.name_len;
        buf[n..n + 2].copy_from_slice(&self.qtype.to_be_bytes());
        buf[n + 2..n + 4].copy_from_slice(&self.qclass.to_be_bytes());
        n += 4;
        match self.edns {
            None => {
                buf[n] = 0;
                n += 1;
            }
            Some((payload, dnssec_ok)) => {
                buf[n] = 1 | (u8::from(dnssec_ok) << 1);
                buf[n + 1..n + 3].copy_from_slice(&payload.to_be_bytes());
                n += 3;
            }
        }
        n
    }
}

/// When the upstream answer behind a response was stored, and for how long
/// it may be served (the record cache's entry; see `upstream::Stamp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// When the answer was stored.
    pub stored: Instant,
    /// Seconds it may be served from then.
    pub ttl: u32,
    /// Its age in seconds when the TTLs of this answer were computed.
    pub age: u32,
    /// The policy snapshot the answer was built under.
    pub generation: u64,
}

/// A response as sent, with where its TTLs are.
#[derive(Debug)]
pub struct WireAnswer {
    bytes: Box<[u8]>,
    /// Offset and value (as encoded) of every TTL but OPT's.
    ttls: Box<[(u16, u32)]>,
    stamp: Stamp,
}

/// Offsets and values of the TTLs of every record of `msg` but OPT, or
/// `None` if the message cannot be walked (then it is not kept).
fn ttl_offsets(msg: &[u8]) -> Option<Vec<(u16, u32)>> {
    let count = |i: usize| usize::from(u16::from_be_bytes([msg[i], msg[i + 1]]));
    if msg.len() < HEADER {
        return None;
    }
    let questions = count(4);
    let records = count(6) + count(8) + count(10);
    let mut at = HEADER;
    let skip_name = |mut at: usize| -> Option<usize> {
        loop {
            let len = *msg.get(at)?;
            match len {
                0 => return Some(at + 1),
                1..=63 => at += 1 + usize::from(len),
                0xC0..=0xFF => return Some(at + 2),
                _ => return None,
            }
        }
    };
    for _ in 0..questions {
        at = skip_name(at)? + 4;
    }
    let mut out = Vec::with_capacity(records);
    for _ in 0..records {
        at = skip_name(at)?;
        let fixed = msg.get(at..at + 10)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        if rtype != OPT {
            let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
            out.push((u16::try_from(at + 4).ok()?, ttl));
        }
        let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        at += 10 + rdlen;
    }
    (at == msg.len()).then_some(out)
}

/// The ready-to-send answers, bounded in count.
pub struct WireCache {
    entries: quick_cache::sync::Cache<Box<[u8]>, std::sync::Arc<WireAnswer>>,
}

impl std::fmt::Debug for WireCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireCache")
            .field("entries", &self.entries.len())
            .finish()
    }
}

impl WireCache {
    /// A cache of at most `capacity` answers.
    pub fn new(capacity: usize) -> WireCache {
        WireCache {
            entries: quick_cache::sync::Cache::new(capacity.max(1)),
        }
    }

    /// Answers kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Write into `out` the answer to `query` (the bytes received, read as
    /// `view`) if one is kept for it, valid under policy `generation`, and
    /// small enough for the client. Returns false (and leaves the query to
    /// the full path) otherwise.
    pub fn answer(
        &self,
        query: &[u8],
        view: &QueryView,
        generation: u64,
        out: &mut Vec<u8>,
    ) -> bool {
        let mut key = [0u8; MAX_KEY];
        let n = view.key(query, &mut key);
        let Some(entry) = self.entries.get(&key[..n]) else {
            return false;
        };
        let stamp = entry.stamp;
        let age = u32::try_from(stamp.stored.elapsed().as_secs()).unwrap_or(u32::MAX);
        if stamp.generation != generation || age >= stamp.ttl {
            self.entries.remove(&key[..n]);
            return false;
        }
        if entry.bytes.len() > view.max_udp() {
            return false;
        }
        out.clear();
        out.extend_from_slice(&entry.bytes);
        // ID; RD and CD as asked (RFC 1035 section 4.1.1, RFC 4035 3.2.2).
        out[0..2].copy_from_slice(&query[0..2]);
        out[2] = (out[2] & !0x01) | (query[2] & 0x01);
        out[3] = (out[3] & !0x10) | (query[3] & 0x10);
        let name = HEADER..HEADER + view.name_len;
        out[name.clone()].copy_from_slice(&query[name]);
        let since = age.saturating_sub(stamp.age);
        let left = stamp.ttl - age;
        for &(at, ttl) in entry.ttls.iter() {
            let at = usize::from(at);
            let now = ttl.saturating_sub(since).min(left);
            out[at..at + 4].copy_from_slice(&now.to_be_bytes());
        }
        true
    }

    /// Keep `response` (just sent for `query`, read as `view`) for the next
    /// queries alike. A response that cannot be walked is not kept.
    pub fn keep(&self, query: &[u8], view: &QueryView, response: &[u8], stamp: Stamp) {
        // NOERROR (0) or NXDOMAIN (3), RFC 1035 section 4.1.1.
        let usable = matches!(response.get(3).map(|b| b & 0x0f), Some(0 | 3));
        // Truncated answers go the full way each time.
        if !usable || response[2] & 0x02 != 0 || stamp.ttl == 0 {
            return;
        }
        let Some(ttls) = ttl_offsets(response) else {
            return;
        };
        let mut key = [0u8; MAX_KEY];
        let n = view.key(query, &mut key);
        self.entries.insert(
            Box::from(&key[..n]),
            std::sync::Arc::new(WireAnswer {
                bytes: Box::from(response),
                ttls: ttls.into_boxed_slice(),
                stamp,
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `name` (dotted) type A class IN, with an OPT record if
    /// `edns` is (payload, DO).
    fn query(name: &str, edns: Option<(u16, bool)>) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.').filter(|l| !l.is_empty()) {
            m.push(label.len() as u8);
            m.extend_from_slice(label.as_bytes());
        }
        m.extend_from_slice(&[0, 0, 1, 0, 1]);
        if let Some((payload, dnssec_ok)) = edns {
            m[11] = 1;
            m.push(0);
            m.extend_from_slice(&OPT.to_be_bytes());
            m.extend_from_slice(&payload.to_be_bytes());
            m.extend_from_slice(&[0, 0, if dnssec_ok { 0x80 } else { 0 }, 0, 0, 0]);
        }
        m
    }

    #[test]
    fn plain_queries_are_read_and_others_left_to_the_full_path() {
        let v = QueryView::parse(&query("Www.Example.test", None)).unwrap();
        assert_eq!((v.name_len, v.qtype, v.qclass, v.edns), (18, 1, 1, None));
        assert_eq!(v.max_udp(), 512);
        let v = QueryView::parse(&query("a.test", Some((4096, true)))).unwrap();
        assert_eq!(v.edns, Some((1232, true)));
        let v = QueryView::parse(&query("a.test", Some((100, false)))).unwrap();
        assert_eq!(v.edns, Some((512, false)));

        let plain = query("a.test", None);
        let mut response = plain.clone();
        response[2] |= 0x80;
        assert_eq!(QueryView::parse(&response), None, "QR=1");
        let mut notify = plain.clone();
        notify[2] |= 4 << 3;
        assert_eq!(QueryView::parse(&notify), None, "opcode NOTIFY");
        let mut two = plain.clone();
        two[5] = 2;
        assert_eq!(QueryView::parse(&two), None, "two questions");
        let mut trailing = plain.clone();
        trailing.push(0);
        assert_eq!(QueryView::parse(&trailing), None, "trailing byte");
        assert_eq!(
            QueryView::parse(&plain[..plain.len() - 1]),
            None,
            "cut short"
        );
        let mut pointer = plain.clone();
        pointer[12] = 0xC0;
        assert_eq!(QueryView::parse(&pointer), None, "compression pointer");
        let mut version = query("a.test", Some((1232, false)));
        let v = version.len() - 5;
        version[v] = 1;
        assert_eq!(QueryView::parse(&version), None, "EDNS version 1");
    }

    #[test]
    fn keys_ignore_case_and_tell_edns_settings_apart() {
        let key = |m: &[u8]| {
            let mut buf = [0u8; MAX_KEY];
            let n = QueryView::parse(m).unwrap().key(m, &mut buf);
            buf[..n].to_vec()
        };
        assert_eq!(
            key(&query("WWW.example.TEST", None)),
            key(&query("www.example.test", None))
        );
        assert_ne!(key(&query("a.test", None)), key(&query("b.test", None)));
        assert_ne!(
            key(&query("a.test", None)),
            key(&query("a.test", Some((1232, false))))
        );
        assert_ne!(
            key(&query("a.test", Some((1232, false)))),
            key(&query("a.test", Some((1232, true))))
        );
        assert_ne!(
            key(&query("a.test", Some((1232, false)))),
            key(&query("a.test", Some((512, false))))
        );
    }

    /// A response to `q`: one A record (owner: pointer to the question),
    /// TTL `ttl`.
    fn response(q: &[u8], ttl: u32) -> Vec<u8> {
        let mut r = q[..q.len()].to_vec();
        r[2] = 0x81;
        r[3] = 0x80;
        r[7] = 1;
        r[11] = 0;
        let end = 12 + QueryView::parse(q).unwrap().name_len + 4;
        r.truncate(end);
        r.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
        r.extend_from_slice(&ttl.to_be_bytes());
        r.extend_from_slice(&[0, 4, 192, 0, 2, 1]);
        r
    }

    #[test]
    fn a_kept_answer_takes_the_id_flags_case_and_current_ttl() {
        let cache = WireCache::new(16);
        let first = query("www.example.test", None);
        let view = QueryView::parse(&first).unwrap();
        let sent = response(&first, 300);
        assert_eq!(
            ttl_offsets(&sent),
            Some(vec![(sent.len() as u16 - 10, 300)])
        );
        let stamp = Stamp {
            stored: Instant::now() - std::time::Duration::from_secs(10),
            ttl: 200,
            age: 10,
            generation: 7,
        };
        cache.keep(&first, &view, &sent, stamp);

        let mut second = query("WWW.Example.TEST", None);
        second[0] = 0xAB;
        second[3] = 0x10; // CD
        second[2] = 0x00; // RD=0
        let view2 = QueryView::parse(&second).unwrap();
        let mut out = Vec::new();
        assert!(!cache.answer(&second, &view2, 8, &mut out), "other policy");
        cache.keep(&first, &view, &sent, stamp);
        assert!(cache.answer(&second, &view2, 7, &mut out));
        assert_eq!(&out[0..2], &[0xAB, 0x34]);
        assert_eq!(out[2], 0x80, "QR, RD=0 as asked");
        assert_eq!(out[3], 0x90, "RA, CD as asked");
        assert_eq!(
            &out[12..12 + view2.name_len],
            &second[12..12 + view2.name_len]
        );
        let ttl = u32::from_be_bytes(out[out.len() - 10..out.len() - 6].try_into().unwrap());
        // Stored 10 s ago with 200 s to live: at most 190 s left.
        assert!((189..=190).contains(&ttl), "{ttl}");

        let expired = Stamp {
            stored: Instant::now() - std::time::Duration::from_secs(300),
            ..stamp
        };
        cache.keep(&first, &view, &sent, expired);
        assert!(!cache.answer(&second, &view2, 7, &mut out), "expired");
    }

    #[test]
    fn truncated_and_failed_answers_are_not_kept() {
        let cache = WireCache::new(16);
        let q = query("a.test", None);
        let view = QueryView::parse(&q).unwrap();
        let stamp = Stamp {
            stored: Instant::now(),
            ttl: 60,
            age: 0,
            generation: 1,
        };
        let mut tc = response(&q, 60);
        tc[2] |= 0x02;
        cache.keep(&q, &view, &tc, stamp);
        let mut servfail = response(&q, 60);
        servfail[3] |= 2;
        cache.keep(&q, &view, &servfail, stamp);
        let mut torn = response(&q, 60);
        torn.pop();
        cache.keep(&q, &view, &torn, stamp);
        assert!(cache.is_empty());
    }
}
