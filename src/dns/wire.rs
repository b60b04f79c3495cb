//! Ready-to-send answers: the UDP fast path for names in the cache.
//!
//! Decoding a query into hickory's message types, cloning the cached records,
//! applying the policy to the CNAME chain and encoding the response costs
//! more than everything else a cached answer needs. So once an answer for a
//! name has been built and sent, its bytes are kept here, and the next query
//! for the same name, type, class and EDNS settings is answered by copying
//! them and rewriting what differs (RFC 1035 section 4.1):
//!
//! - the ID, and the RD and CD bits, from the query (CD is part of the key:
//!   an answer given with checking disabled is kept apart, and serves no
//!   query without CD);
//! - AD, from what the upstream answer allows and the query's AD and DO
//!   (RFC 6840 section 5.8);
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
//! Only plain queries ([`QueryView`]) take this path; any answer larger
//! than the client takes over UDP goes the full way, which handles it per
//! the RFCs.

use std::sync::Arc;

use super::edns::OPT;
use super::header::{HEADER_LEN, Header, HeaderCounts, RCODE_NOERROR, RCODE_NXDOMAIN};
use super::query::{MAX_KEY, QueryView};
use crate::upstream::{Bounded, ENTRY_OVERHEAD, Stored};

/// What makes the bytes of an answer relayed from upstream reusable: the
/// cache entry behind it, and the policy snapshot it was built under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The upstream answer's cache entry: when it was stored, for how
    /// long, and its age when this answer's TTLs were computed.
    pub stored: Stored,
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
    if msg.len() < HEADER_LEN {
        return None;
    }
    let counts = HeaderCounts::for_message(msg);
    let questions = counts.qdcount();
    let records = usize::from(counts.ancount())
        + usize::from(counts.nscount())
        + usize::from(counts.arcount());
    let mut at = HEADER_LEN;
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

/// Weighs kept answers by their bytes.
#[derive(Debug, Clone, Copy)]
struct Bytes;

impl quick_cache::Weighter<Box<[u8]>, Arc<WireAnswer>> for Bytes {
    fn weight(&self, key: &Box<[u8]>, answer: &Arc<WireAnswer>) -> u64 {
        let fixed = std::mem::size_of::<WireAnswer>() + std::mem::size_of::<Box<[u8]>>();
        let ttls = answer.ttls.len() * std::mem::size_of::<(u16, u32)>();
        (fixed + key.len() + answer.bytes.len() + ttls + ENTRY_OVERHEAD) as u64
    }
}

/// The ready-to-send answers, bounded in bytes.
pub struct WireCache {
    entries: Bounded<Box<[u8]>, Arc<WireAnswer>, Bytes>,
}

impl std::fmt::Debug for WireCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireCache")
            .field("entries", &self.entries.len())
            .finish()
    }
}

impl WireCache {
    /// A cache of at most `budget` bytes.
    pub fn new(budget: u64) -> WireCache {
        let slot = std::mem::size_of::<(Box<[u8]>, Arc<WireAnswer>)>();
        WireCache {
            entries: Bounded::new(budget, slot, Bytes),
        }
    }

    /// Bytes kept, as weighed, with the room kept for evicted keys.
    pub fn bytes(&self) -> u64 {
        self.entries.bytes()
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
        // RFC 4035 section 3.2.2: a client that set CD checks for itself,
        // so an answer checked upstream serves it too (never the reverse).
        let found = self.entries.get(&key[..n]).or_else(|| {
            view.clear_cd(&mut key[..n])
                .then(|| self.entries.get(&key[..n]))
                .flatten()
        });
        let Some(entry) = found else {
            return false;
        };
        let Stamp {
            stored,
            generation: built_under,
        } = entry.stamp;
        let age = u32::try_from(stored.at.elapsed().as_secs()).unwrap_or(u32::MAX);
        if built_under != generation || age >= stored.ttl {
            self.entries.remove(&key[..n]);
            return false;
        }
        if entry.bytes.len() > view.max_udp() {
            return false;
        }
        out.clear();
        out.extend_from_slice(&entry.bytes);
        // ID; RD and CD as asked (RFC 1035 section 4.1.1, RFC 4035 3.2.2);
        // AD to clients that set AD or DO (RFC 6840 section 5.8).
        let asked = Header::for_message(query);
        let mut header = Header::for_message(out);
        header.set_id(asked.id());
        header.set_rd(asked.rd());
        header.set_cd(asked.cd());
        let dnssec_ok = view.edns.is_some_and(|(_, dnssec_ok)| dnssec_ok);
        header.set_ad(stored.authentic && (asked.ad() || dnssec_ok));
        header.write_to(out);
        let name = view.name(query);
        out[HEADER_LEN..HEADER_LEN + name.len()].copy_from_slice(name);
        let since = age.saturating_sub(stored.age);
        let left = stored.ttl - age;
        for &(at, ttl) in entry.ttls.iter() {
            let at = usize::from(at);
            let now = ttl.saturating_sub(since).min(left);
            out[at..at + 4].copy_from_slice(&now.to_be_bytes());
        }
        true
    }

    /// Keep `response` (just sent for `query`, read as `view`) for the next
    /// queries alike. A response that cannot be walked is not kept.
    pub fn insert(&self, query: &[u8], view: &QueryView, response: &[u8], stamp: Stamp) {
        if response.len() < HEADER_LEN {
            return;
        }
        let header = Header::for_message(response);
        let usable = matches!(header.rcode(), RCODE_NOERROR | RCODE_NXDOMAIN);
        // Truncated answers go the full way each time.
        if !usable || header.tc() || stamp.stored.ttl == 0 {
            return;
        }
        let Some(ttls) = ttl_offsets(response) else {
            return;
        };
        let mut key = [0u8; MAX_KEY];
        let n = view.key(query, &mut key);
        self.entries.insert(
            Box::from(&key[..n]),
            Arc::new(WireAnswer {
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
    use crate::dns::query::tests::query;
    use std::time::Instant;

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
        let cache = WireCache::new(1 << 20);
        let first = query("www.example.test", None);
        let view = QueryView::parse(&first).unwrap();
        let sent = response(&first, 300);
        assert_eq!(
            ttl_offsets(&sent),
            Some(vec![(sent.len() as u16 - 10, 300)])
        );
        let stamp = Stamp {
            stored: Stored {
                at: Instant::now() - std::time::Duration::from_secs(10),
                ttl: 200,
                age: 10,
                authentic: false,
            },
            generation: 7,
        };
        cache.insert(&first, &view, &sent, stamp);

        let mut second = query("WWW.Example.TEST", None);
        second[0] = 0xAB;
        second[3] = 0x10; // CD
        second[2] = 0x00; // RD=0
        let view2 = QueryView::parse(&second).unwrap();
        let mut out = Vec::new();
        assert!(!cache.answer(&second, &view2, 8, &mut out), "other policy");
        cache.insert(&first, &view, &sent, stamp);
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
            stored: Stored {
                at: Instant::now() - std::time::Duration::from_secs(300),
                ..stamp.stored
            },
            ..stamp
        };
        cache.insert(&first, &view, &sent, expired);
        assert!(!cache.answer(&second, &view2, 7, &mut out), "expired");
    }

    #[test]
    fn truncated_and_failed_answers_are_not_kept() {
        let cache = WireCache::new(1 << 20);
        let q = query("a.test", None);
        let view = QueryView::parse(&q).unwrap();
        let stamp = Stamp {
            stored: Stored {
                at: Instant::now(),
                ttl: 60,
                age: 0,
                authentic: false,
            },
            generation: 1,
        };
        let mut tc = response(&q, 60);
        tc[2] |= 0x02;
        cache.insert(&q, &view, &tc, stamp);
        let mut servfail = response(&q, 60);
        servfail[3] |= 2;
        cache.insert(&q, &view, &servfail, stamp);
        let mut torn = response(&q, 60);
        torn.pop();
        cache.insert(&q, &view, &torn, stamp);
        assert!(cache.is_empty());
    }
}
