//! The header of a DNS message, field by field.
//!
//! RFC 1035 section 4.1.1: every message starts with a twelve-octet header,
//! an ID, a word of flags and codes, and four section counts:
//!
//! ```text
//!                                 1  1  1  1  1  1
//!   0  1  2  3  4  5  6  7  8  9  0  1  2  3  4  5
//! +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//! |                      ID                       |
//! +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//! |QR|   Opcode  |AA|TC|RD|RA| Z|AD|CD|   RCODE   |
//! +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//! |                    QDCOUNT                    |
//! |                    ANCOUNT                    |
//! |                    NSCOUNT                    |
//! |                    ARCOUNT                    |
//! +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//! ```
//!
//! (AD and CD are RFC 4035 section 3.2, Z is reserved.) As in NLnet Labs'
//! `domain`, the header is two values kept in wire order: [`Header`], the
//! ID and flags that a response may rewrite freely, and [`HeaderCounts`],
//! which describe the sections that follow. The fast paths read and write
//! raw datagrams through them, so every accessor is a `const fn`, inlined,
//! with no allocation: the same byte operations as masks written by hand,
//! with the bit's name beside them.

/// Length of the header (RFC 1035 section 4.1.1).
pub const HEADER_LEN: usize = 12;

/// OPCODE 0: a standard query (RFC 1035 section 4.1.1).
pub const OPCODE_QUERY: u8 = 0;
/// RCODE 0: no error (RFC 1035 section 4.1.1).
pub const RCODE_NOERROR: u8 = 0;
/// RCODE 1: format error, the query could not be interpreted.
pub const RCODE_FORMERR: u8 = 1;
/// RCODE 3: the name does not exist.
pub const RCODE_NXDOMAIN: u8 = 3;
/// RCODE 5: the server refuses to answer (RFC 1035 section 4.1.1).
pub const RCODE_REFUSED: u8 = 5;

/// The ID and flags: the first four octets of the header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    inner: [u8; 4],
}

impl Header {
    /// A header with every field zero: a query, opcode QUERY, NOERROR.
    #[inline]
    pub const fn new() -> Header {
        Header { inner: [0; 4] }
    }

    /// The header of `msg`.
    ///
    /// # Panics
    ///
    /// If `msg` is shorter than four octets.
    #[inline]
    pub const fn for_message(msg: &[u8]) -> Header {
        Header {
            inner: [msg[0], msg[1], msg[2], msg[3]],
        }
    }

    /// Write this header over the first four octets of `msg`.
    ///
    /// # Panics
    ///
    /// If `msg` is shorter than four octets.
    #[inline]
    pub fn write_to(self, msg: &mut [u8]) {
        msg[..4].copy_from_slice(&self.inner);
    }

    /// The four octets, in wire order.
    #[inline]
    pub const fn as_octets(&self) -> &[u8; 4] {
        &self.inner
    }

    /// The header of our answer to `query`, NOERROR: RFC 1035 section
    /// 4.1.1, the ID and RD of the query, QR=1, opcode QUERY; RA=1 (a
    /// resolver); CD as asked (RFC 4035 section 3.2.2); AD=0.
    #[inline]
    pub const fn answer_to(query: Header) -> Header {
        let mut header = Header::new();
        header.set_id(query.id());
        header.set_qr(true);
        header.set_rd(query.rd());
        header.set_ra(true);
        header.set_cd(query.cd());
        header
    }

    /// ID: chosen by the asker, copied into the response.
    #[inline]
    pub const fn id(self) -> u16 {
        u16::from_be_bytes([self.inner[0], self.inner[1]])
    }

    /// Set the ID.
    #[inline]
    pub const fn set_id(&mut self, id: u16) {
        let [hi, lo] = id.to_be_bytes();
        self.inner[0] = hi;
        self.inner[1] = lo;
    }

    /// QR: the message is a response.
    #[inline]
    pub const fn qr(self) -> bool {
        self.bit(2, 7)
    }

    /// Set QR.
    #[inline]
    pub const fn set_qr(&mut self, set: bool) {
        self.set_bit(2, 7, set);
    }

    /// OPCODE: the kind of query ([`OPCODE_QUERY`] for a standard one).
    #[inline]
    pub const fn opcode(self) -> u8 {
        (self.inner[2] >> 3) & 0x0F
    }

    /// Set OPCODE (four bits).
    #[inline]
    pub const fn set_opcode(&mut self, opcode: u8) {
        self.inner[2] = (self.inner[2] & 0x87) | ((opcode & 0x0F) << 3);
    }

    /// AA: an authoritative answer (meaningless in a query).
    #[inline]
    pub const fn aa(self) -> bool {
        self.bit(2, 2)
    }

    /// Set AA.
    #[inline]
    pub const fn set_aa(&mut self, set: bool) {
        self.set_bit(2, 2, set);
    }

    /// TC: the message was truncated.
    #[inline]
    pub const fn tc(self) -> bool {
        self.bit(2, 1)
    }

    /// Set TC.
    #[inline]
    pub const fn set_tc(&mut self, set: bool) {
        self.set_bit(2, 1, set);
    }

    /// RD: recursion desired, copied from the query into the response.
    #[inline]
    pub const fn rd(self) -> bool {
        self.bit(2, 0)
    }

    /// Set RD.
    #[inline]
    pub const fn set_rd(&mut self, set: bool) {
        self.set_bit(2, 0, set);
    }

    /// RA: recursion available (meaningless in a query).
    #[inline]
    pub const fn ra(self) -> bool {
        self.bit(3, 7)
    }

    /// Set RA.
    #[inline]
    pub const fn set_ra(&mut self, set: bool) {
        self.set_bit(3, 7, set);
    }

    /// Z: reserved, zero in queries and responses.
    #[inline]
    pub const fn z(self) -> bool {
        self.bit(3, 6)
    }

    /// AD: authentic data (RFC 4035 section 3.2.3).
    #[inline]
    pub const fn ad(self) -> bool {
        self.bit(3, 5)
    }

    /// Set AD.
    #[inline]
    pub const fn set_ad(&mut self, set: bool) {
        self.set_bit(3, 5, set);
    }

    /// CD: checking disabled, copied from the query into the response
    /// (RFC 4035 section 3.2.2).
    #[inline]
    pub const fn cd(self) -> bool {
        self.bit(3, 4)
    }

    /// Set CD.
    #[inline]
    pub const fn set_cd(&mut self, set: bool) {
        self.set_bit(3, 4, set);
    }

    /// RCODE: the response code (its low four bits; EDNS extends it).
    #[inline]
    pub const fn rcode(self) -> u8 {
        self.inner[3] & 0x0F
    }

    /// Set RCODE (four bits).
    #[inline]
    pub const fn set_rcode(&mut self, rcode: u8) {
        self.inner[3] = (self.inner[3] & 0xF0) | (rcode & 0x0F);
    }

    /// Bit `bit` (7 is the most significant) of octet `at`.
    #[inline]
    const fn bit(self, at: usize, bit: u32) -> bool {
        self.inner[at] & (1 << bit) != 0
    }

    /// Set or clear bit `bit` of octet `at`, without a branch.
    #[inline]
    const fn set_bit(&mut self, at: usize, bit: u32, set: bool) {
        self.inner[at] = (self.inner[at] & !(1 << bit)) | ((set as u8) << bit);
    }
}

/// The four section counts: octets 4 to 11 of the header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeaderCounts {
    inner: [u8; 8],
}

impl HeaderCounts {
    /// Every count zero.
    #[inline]
    pub const fn new() -> HeaderCounts {
        HeaderCounts { inner: [0; 8] }
    }

    /// The counts of `msg`.
    ///
    /// # Panics
    ///
    /// If `msg` is shorter than the header.
    #[inline]
    pub const fn for_message(msg: &[u8]) -> HeaderCounts {
        HeaderCounts {
            inner: [
                msg[4], msg[5], msg[6], msg[7], msg[8], msg[9], msg[10], msg[11],
            ],
        }
    }

    /// The eight octets, in wire order.
    #[inline]
    pub const fn as_octets(&self) -> &[u8; 8] {
        &self.inner
    }

    /// QDCOUNT: entries in the question section.
    #[inline]
    pub const fn qdcount(self) -> u16 {
        self.get(0)
    }

    /// Set QDCOUNT.
    #[inline]
    pub const fn set_qdcount(&mut self, n: u16) {
        self.set(0, n);
    }

    /// ANCOUNT: records in the answer section.
    #[inline]
    pub const fn ancount(self) -> u16 {
        self.get(2)
    }

    /// Set ANCOUNT.
    #[inline]
    pub const fn set_ancount(&mut self, n: u16) {
        self.set(2, n);
    }

    /// NSCOUNT: records in the authority section.
    #[inline]
    pub const fn nscount(self) -> u16 {
        self.get(4)
    }

    /// Set NSCOUNT.
    #[inline]
    pub const fn set_nscount(&mut self, n: u16) {
        self.set(4, n);
    }

    /// ARCOUNT: records in the additional section (OPT included).
    #[inline]
    pub const fn arcount(self) -> u16 {
        self.get(6)
    }

    /// Set ARCOUNT.
    #[inline]
    pub const fn set_arcount(&mut self, n: u16) {
        self.set(6, n);
    }

    #[inline]
    const fn get(self, at: usize) -> u16 {
        u16::from_be_bytes([self.inner[at], self.inner[at + 1]])
    }

    #[inline]
    const fn set(&mut self, at: usize, n: u16) {
        let [hi, lo] = n.to_be_bytes();
        self.inner[at] = hi;
        self.inner[at + 1] = lo;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_field_is_the_bit_rfc_1035_names() {
        let mut h = Header::new();
        h.set_id(0xBEEF);
        assert_eq!(h.as_octets(), &[0xBE, 0xEF, 0, 0]);
        for (set, octets, read) in [
            (
                Header::set_qr as fn(&mut Header, bool),
                [0x80, 0],
                Header::qr as fn(Header) -> bool,
            ),
            (Header::set_aa, [0x04, 0], Header::aa),
            (Header::set_tc, [0x02, 0], Header::tc),
            (Header::set_rd, [0x01, 0], Header::rd),
            (Header::set_ra, [0, 0x80], Header::ra),
            (Header::set_ad, [0, 0x20], Header::ad),
            (Header::set_cd, [0, 0x10], Header::cd),
        ] {
            let mut h = Header::new();
            set(&mut h, true);
            assert_eq!(&h.as_octets()[2..], &octets);
            assert!(read(h));
            set(&mut h, false);
            assert_eq!(h, Header::new());
        }
        let mut h = Header::for_message(&[0, 0, 0xFF, 0xFF]);
        assert_eq!((h.opcode(), h.rcode()), (15, 15));
        assert!(h.z());
        h.set_opcode(OPCODE_QUERY);
        h.set_rcode(RCODE_FORMERR);
        assert_eq!(h.as_octets(), &[0, 0, 0x87, 0xF1]);
        let mut out = [0u8; 6];
        h.write_to(&mut out);
        assert_eq!(out, [0, 0, 0x87, 0xF1, 0, 0]);
    }

    #[test]
    fn counts_are_big_endian_in_section_order() {
        let mut c = HeaderCounts::new();
        c.set_qdcount(1);
        c.set_ancount(0x0203);
        c.set_nscount(4);
        c.set_arcount(5);
        assert_eq!(c.as_octets(), &[0, 1, 2, 3, 0, 4, 0, 5]);
        let msg = [[0u8; 4].as_slice(), c.as_octets()].concat();
        let read = HeaderCounts::for_message(&msg);
        assert_eq!(
            (
                read.qdcount(),
                read.ancount(),
                read.nscount(),
                read.arcount()
            ),
            (1, 0x0203, 4, 5)
        );
    }
}
