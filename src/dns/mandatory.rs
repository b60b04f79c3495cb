//! The RFCs' rules for requests: what gets an error code before any
//! decision is made, in the one place both doors (the receive loop's tasks
//! and the TCP connections) go through, answered as Unbound answers it; and
//! the answer to a message too damaged to parse.
//!
//! Responses have their half of the rules in [`super::response`]: RA and
//! AD, OPT only for EDNS queries, truncation to the client's size.

use hickory_proto::op::{OpCode, ResponseCode};
use hickory_proto::rr::DNSClass;
use hickory_server::server::Request;

use super::header::{HEADER_LEN, Header, RCODE_FORMERR};

/// The error code that answers `request` before any decision, if it
/// breaks one of these rules (checked in this order, as Unbound does):
///
/// - RFC 1035 section 4.1.1: an opcode other than QUERY is not
///   implemented here: NOTIMP (a resolver serves no NOTIFY nor UPDATE);
/// - a query holds one question (RFC 9619: QDCOUNT is 1) and no answer or
///   authority records: FORMERR;
/// - RFC 6891 section 6.1.3: an EDNS version above the one implemented
///   (0): BADVERS, in an OPT record of version 0 (the response builder
///   writes the extended RCODE and the version);
/// - a class other than IN, CH (RFC 1035 section 3.2.4; CHAOS, forwarded
///   as before) and ANY (section 3.2.5): REFUSED, as Unbound refuses the
///   classes it has no data for.
pub fn check(request: &Request) -> Option<ResponseCode> {
    if request.metadata.op_code != OpCode::Query {
        return Some(ResponseCode::NotImp);
    }
    if request.queries.len() != 1 || !request.answers.is_empty() || !request.authorities.is_empty()
    {
        return Some(ResponseCode::FormErr);
    }
    if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
        return Some(ResponseCode::BADVERS);
    }
    let class = request.queries.queries()[0].query_class();
    if !matches!(class, DNSClass::IN | DNSClass::CH | DNSClass::ANY) {
        return Some(ResponseCode::Refused);
    }
    None
}

/// The answer to a query too damaged to parse: the header with FORMERR,
/// if the header itself can be read and is a query's (RFC 1035 section
/// 4.1.1).
pub fn formerr(query: &[u8]) -> Option<[u8; HEADER_LEN]> {
    if query.len() < HEADER_LEN {
        return None;
    }
    let asked = Header::for_message(query);
    if asked.qr() {
        return None;
    }
    // The ID, opcode and RD of the query; QR=1, RA=1, FORMERR; no counts.
    let mut header = Header::new();
    header.set_id(asked.id());
    header.set_qr(true);
    header.set_opcode(asked.opcode());
    header.set_rd(asked.rd());
    header.set_ra(true);
    header.set_rcode(RCODE_FORMERR);
    let mut out = [0u8; HEADER_LEN];
    header.write_to(&mut out);
    Some(out)
}
