//! Reading a plain query straight from the datagram, for the receive loop.
//!
//! Only plain queries take the fast paths: one question, no answer or
//! authority records, at most an OPT record of version 0, nothing after it.
//! Anything else goes the full way (hickory's parser), which handles it per
//! the RFCs.

use super::edns::{DNSSEC_OK, OPT, response_payload};
use super::header::{HEADER_LEN, Header, HeaderCounts, OPCODE_QUERY};

/// Longest key: a 255-octet name, type, class, EDNS marker and payload.
pub const MAX_KEY: usize = 255 + 2 + 2 + 1 + 2;

/// The bit of a key's EDNS marker octet that says CD=1.
const KEY_CD: u8 = 4;

/// What the fast paths need of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryView {
    /// Length of the question name on the wire (from offset 12).
    pub name_len: usize,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS.
    pub qclass: u16,
    /// The OPT record: the response's payload size (the client's, clamped
    /// as [`response_payload`] does) and DO.
    pub edns: Option<(u16, bool)>,
}

impl QueryView {
    /// Read a plain query, or `None` for anything the fast paths leave to
    /// the full path (see the module documentation).
    pub fn parse(msg: &[u8]) -> Option<QueryView> {
        if msg.len() < HEADER_LEN + 5 {
            return None;
        }
        // A query (QR=0) of opcode QUERY, not truncated; AA is meaningless
        // in a query and RD is copied to the answer.
        let header = Header::for_message(msg);
        if header.qr() || header.opcode() != OPCODE_QUERY || header.tc() {
            return None;
        }
        let counts = HeaderCounts::for_message(msg);
        if counts.qdcount() != 1
            || counts.ancount() != 0
            || counts.nscount() != 0
            || counts.arcount() > 1
        {
            return None;
        }
        let mut at = HEADER_LEN;
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
            if at - HEADER_LEN > 254 {
                return None;
            }
        }
        let name_len = at - HEADER_LEN;
        let qtype = u16::from_be_bytes([*msg.get(at)?, *msg.get(at + 1)?]);
        let qclass = u16::from_be_bytes([*msg.get(at + 2)?, *msg.get(at + 3)?]);
        at += 4;
        let mut edns = None;
        if counts.arcount() == 1 {
            // Root owner, TYPE OPT, CLASS payload, TTL ext-rcode/version/
            // flags, RDLENGTH, options (the response carries none of them,
            // but they must be well formed: see `options_well_formed`).
            let opt = msg.get(at..at + 11)?;
            if opt[0] != 0 || u16::from_be_bytes([opt[1], opt[2]]) != OPT {
                return None;
            }
            let payload = u16::from_be_bytes([opt[3], opt[4]]);
            if opt[5] != 0 || opt[6] != 0 {
                return None;
            }
            let dnssec_ok = opt[7] & DNSSEC_OK != 0;
            let rdlen = usize::from(u16::from_be_bytes([opt[9], opt[10]]));
            at += 11;
            if !options_well_formed(msg.get(at..at + rdlen)?) {
                return None;
            }
            at += rdlen;
            edns = Some((response_payload(payload), dnssec_ok));
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
    #[inline]
    pub fn max_udp(&self) -> usize {
        self.edns.map_or(512, |(payload, _)| usize::from(payload))
    }

    /// The question name of `msg` (the query this view was read from), on
    /// the wire and in the client's letter case.
    #[inline]
    pub fn name<'m>(&self, msg: &'m [u8]) -> &'m [u8] {
        &msg[HEADER_LEN..HEADER_LEN + self.name_len]
    }

    /// The whole question of `msg`: name, type and class as sent.
    #[inline]
    pub fn question<'m>(&self, msg: &'m [u8]) -> &'m [u8] {
        &msg[HEADER_LEN..HEADER_LEN + self.name_len + 4]
    }

    /// Turn `key` (made by [`QueryView::key`] for this query) into the key
    /// of the same query with CD=0. False, and `key` unchanged, if CD was
    /// not set.
    #[inline]
    pub fn clear_cd(&self, key: &mut [u8]) -> bool {
        let marker = self.name_len + 4;
        match key.get_mut(marker) {
            Some(octet) if *octet & KEY_CD != 0 => {
                *octet &= !KEY_CD;
                true
            }
            _ => false,
        }
    }

    /// The cache key: the name lowercased, type, class, CD and the EDNS
    /// settings (an answer given with checking disabled never goes to a
    /// client that did not disable it, RFC 4035 section 3.2.2). Returns
    /// the key's length in `buf`.
    #[inline]
    pub fn key(&self, msg: &[u8], buf: &mut [u8; MAX_KEY]) -> usize {
        for (d, s) in buf.iter_mut().zip(self.name(msg)) {
            *d = s.to_ascii_lowercase();
        }
        let mut n = self.name_len;
        buf[n..n + 2].copy_from_slice(&self.qtype.to_be_bytes());
        buf[n + 2..n + 4].copy_from_slice(&self.qclass.to_be_bytes());
        n += 4;
        let cd = if Header::for_message(msg).cd() {
            KEY_CD
        } else {
            0
        };
        match self.edns {
            None => {
                buf[n] = cd;
                n += 1;
            }
            Some((payload, dnssec_ok)) => {
                buf[n] = 1 | (u8::from(dnssec_ok) << 1) | cd;
                buf[n + 1..n + 3].copy_from_slice(&payload.to_be_bytes());
                n += 3;
            }
        }
        n
    }
}

/// The OPT RDATA `rdata` is a sequence of whole options (RFC 6891 section
/// 6.1.2: OPTION-CODE, OPTION-LENGTH, then OPTION-LENGTH octets), and a
/// Client Subnet option among them is one the full path reads (RFC 7871
/// section 6: FAMILY 1 or 2, SOURCE PREFIX-LENGTH within the family's
/// address, an ADDRESS of no more octets than that prefix needs; anything
/// else there is FORMERR). False leaves the query to the full path, which
/// answers it as hickory reads it: an option running past the RDATA must
/// never be answered by the fast path while the full path refuses it.
fn options_well_formed(mut rdata: &[u8]) -> bool {
    /// RFC 7871 section 6: the option code of Client Subnet.
    const CLIENT_SUBNET: u16 = 8;
    while !rdata.is_empty() {
        let Some((head, rest)) = rdata.split_first_chunk::<4>() else {
            return false;
        };
        let code = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let Some((data, rest)) = rest.split_at_checked(len) else {
            return false;
        };
        if code == CLIENT_SUBNET && !client_subnet_well_formed(data) {
            return false;
        }
        rdata = rest;
    }
    true
}

/// A Client Subnet OPTION-DATA the full path reads (RFC 7871 section 6).
fn client_subnet_well_formed(data: &[u8]) -> bool {
    let [family_hi, family_lo, source, _scope, address @ ..] = data else {
        return false;
    };
    let max_bits = match u16::from_be_bytes([*family_hi, *family_lo]) {
        1 => 32,
        2 => 128,
        _ => return false,
    };
    *source <= max_bits && address.len() == usize::from(source.div_ceil(8))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A query for `name` (dotted) type A class IN, with an OPT record if
    /// `edns` is (payload, DO).
    pub(in crate::dns) fn query(name: &str, edns: Option<(u16, bool)>) -> Vec<u8> {
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

    /// RFC 6891 section 6.1.2 and RFC 7871 section 6: options are read
    /// to the end of the RDATA, and a query whose options hickory would
    /// refuse is left to the full path (which answers it FORMERR).
    #[test]
    fn edns_options_must_fill_the_rdata_whole() {
        let with_options = |options: &[u8]| {
            let mut m = query("a.test", Some((1232, false)));
            let rdlen = m.len() - 2;
            m[rdlen..].copy_from_slice(&(options.len() as u16).to_be_bytes());
            m.extend_from_slice(options);
            QueryView::parse(&m)
        };
        let cookie = [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        let subnet = [0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2];
        assert!(with_options(&[]).is_some(), "no option");
        let padding = [0, 12, 0, 0];
        assert!(with_options(&[&cookie[..], &padding].concat()).is_some());
        assert!(with_options(&[&cookie[..], &subnet].concat()).is_some());
        assert_eq!(with_options(&cookie[..8]), None, "option cut short");
        assert_eq!(with_options(&cookie[..3]), None, "option header cut short");
        assert_eq!(with_options(&[0, 10, 0, 8]), None, "length past the RDATA");
        let mut v4_33 = [0, 8, 0, 8, 0, 1, 33, 0, 192, 0, 2, 1];
        assert_eq!(with_options(&v4_33), None, "33-bit IPv4 prefix");
        v4_33[6] = 32;
        assert!(with_options(&v4_33).is_some(), "32-bit IPv4 prefix");
        assert_eq!(
            with_options(&[0, 8, 0, 7, 0, 3, 24, 0, 192, 0, 2]),
            None,
            "family 3"
        );
        assert_eq!(
            with_options(&[0, 8, 0, 6, 0, 1, 24, 0, 192, 0]),
            None,
            "address shorter than its prefix"
        );
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

    /// RFC 4035 section 3.2.2: CD=1 is its own key, and turns into the
    /// key of the same query with CD=0 (never the reverse).
    #[test]
    fn cd_is_part_of_the_key_and_can_be_cleared() {
        for edns in [None, Some((1232, true))] {
            let plain = query("a.test", edns);
            let mut cd = plain.clone();
            cd[3] |= 0x10;
            let (view, cd_view) = (
                QueryView::parse(&plain).unwrap(),
                QueryView::parse(&cd).unwrap(),
            );
            let (mut k0, mut k1) = ([0u8; MAX_KEY], [0u8; MAX_KEY]);
            let n0 = view.key(&plain, &mut k0);
            let n1 = cd_view.key(&cd, &mut k1);
            assert_ne!(k0[..n0], k1[..n1], "{edns:?}");
            assert!(!view.clear_cd(&mut k0[..n0]), "{edns:?}: no CD to clear");
            assert!(cd_view.clear_cd(&mut k1[..n1]), "{edns:?}");
            assert_eq!(k0[..n0], k1[..n1], "{edns:?}");
        }
    }
}
