//! What to answer ([`Reply`]) and the one place it becomes a DNS message
//! ([`Response`]), whether the bytes go out in a datagram of the receive
//! loop or on a TCP connection.

use std::iter;
use std::slice;

use hickory_proto::ProtoError;
use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, ResponseCode};
use hickory_proto::rr::{Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_server::server::Request;
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder};
use tracing::warn;

use super::edns::{Ede, response_edns};
use super::header::HEADER_LEN;
use super::wire::Stamp;

/// What to send: everything but the header flags common to all answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Response code.
    pub rcode: ResponseCode,
    /// Answer section.
    pub answers: Vec<Record>,
    /// Authority section.
    pub authorities: Vec<Record>,
    /// Extended DNS Error (info code, text), sent only to EDNS clients.
    pub ede: Option<Ede>,
    /// AD: a trusted upstream validated the answer, and the client set AD
    /// or DO (RFC 6840 sections 5.7 and 5.8).
    pub authentic: bool,
    /// For an answer relayed from the cache or upstream: what makes its
    /// bytes reusable by the UDP fast path ([`super::wire`]).
    pub stamp: Option<Stamp>,
}

impl Reply {
    /// An answer with only a response code.
    pub fn rcode(rcode: ResponseCode) -> Reply {
        Reply {
            rcode,
            answers: Vec::new(),
            authorities: Vec::new(),
            ede: None,
            authentic: false,
            stamp: None,
        }
    }
}

/// The message hickory encodes: borrowed sections, no additional records
/// but OPT.
type Message<'a> = MessageResponse<
    'a,
    'a,
    slice::Iter<'a, Record>,
    slice::Iter<'a, Record>,
    iter::Empty<&'a Record>,
    iter::Empty<&'a Record>,
>;

/// The records of a reply that go in the message: the first `answers`
/// and `authorities`, and whether TC is set.
#[derive(Debug, Clone, Copy)]
struct Cut {
    answers: usize,
    authorities: usize,
    truncated: bool,
}

/// The end (one past the last record) of each RRset of `records`: the
/// positions where a message may stop without splitting an RRset.
fn rrset_ends(records: &[Record]) -> impl Iterator<Item = usize> + '_ {
    (1..=records.len()).filter(move |&end| {
        records
            .get(end)
            .is_none_or(|next| !same_rrset(&records[end - 1], next))
    })
}

/// RFC 2181 section 5: an RRset is the records with the same name, class
/// and type (for signatures, the same type covered, RFC 4035 section 2.2).
fn same_rrset(a: &Record, b: &Record) -> bool {
    // TYPE COVERED: the first two octets of an RRSIG's RDATA (read from
    // the encoding, whichever way hickory represents the record).
    let covered = |r: &Record| {
        (r.record_type() == RecordType::RRSIG)
            .then(|| r.data.to_bytes().ok()?.get(..2).map(|t| [t[0], t[1]]))
            .flatten()
    };
    a.name == b.name
        && a.dns_class == b.dns_class
        && a.record_type() == b.record_type()
        && covered(a) == covered(b)
}

/// `reply` to `request` as a message: the header flags of every answer
/// (RA=1, AD as the reply says, the rest from the request) and OPT only for
/// EDNS queries.
pub struct Response<'a> {
    request: &'a Request,
    reply: &'a Reply,
    metadata: Metadata,
    edns: Option<Edns>,
}

impl<'a> Response<'a> {
    /// Assemble the answer `reply` to `request`.
    pub fn new(request: &'a Request, reply: &'a Reply) -> Response<'a> {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.recursion_available = true;
        metadata.authentic_data = reply.authentic;
        metadata.response_code = reply.rcode;
        let edns = request
            .edns
            .as_ref()
            .map(|e| response_edns(e, reply.ede.as_ref()));
        Response {
            request,
            reply,
            metadata,
            edns,
        }
    }

    fn message(&self, cut: Cut) -> Message<'_> {
        let mut metadata = self.metadata;
        metadata.truncation = cut.truncated;
        MessageResponseBuilder::new(&self.request.queries, self.edns.as_ref()).build(
            metadata,
            self.reply.answers[..cut.answers].iter(),
            self.reply.authorities[..cut.authorities].iter(),
            iter::empty(),
            iter::empty(),
        )
    }

    /// The message with the records `cut` keeps, on the wire.
    fn emit(&self, cut: Cut) -> Result<Vec<u8>, ProtoError> {
        let mut bytes = Vec::with_capacity(512);
        self.message(cut)
            .destructive_emit(&mut BinEncoder::new(&mut bytes))?;
        Ok(bytes)
    }

    /// What of the reply fits in `max_size` octets, and its bytes.
    ///
    /// RFC 2181 section 9: a response that does not fit keeps whole RRsets
    /// (never part of one, nor bytes of a record after the last one
    /// counted) and sets TC when a record it needs could not be included.
    /// The answer section is always needed; the authority section is
    /// needed by a negative answer or a referral (no answer records), and
    /// by a DNSSEC client (RFC 4035 section 3.1: signatures and denial
    /// proofs that do not fit set TC). OPT is kept in every case (RFC 6891
    /// section 7).
    fn fit(&self, max_size: u16) -> Result<(Cut, Vec<u8>), ProtoError> {
        let answers = &self.reply.answers;
        let authorities = &self.reply.authorities;
        let whole = Cut {
            answers: answers.len(),
            authorities: authorities.len(),
            truncated: false,
        };
        let bytes = self.emit(whole)?;
        if bytes.len() <= usize::from(max_size) {
            return Ok((whole, bytes));
        }
        let dnssec_ok = self.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
        // Where the message may end: between RRsets, answers then
        // authorities (the records of an RRset follow each other, as every
        // server sends them).
        let ends: Vec<usize> = iter::once(0)
            .chain(rrset_ends(answers))
            .chain(rrset_ends(authorities).map(|end| answers.len() + end))
            .collect();
        let cut_at = |end: usize| Cut {
            answers: end.min(answers.len()),
            authorities: end.saturating_sub(answers.len()),
            truncated: end < answers.len()
                || (end < whole.answers + whole.authorities && (answers.is_empty() || dnssec_ok)),
        };
        // The longest prefix that fits: the length grows with the prefix,
        // so a binary search. The empty one is sent even if it does not fit
        // (its size is the question's and the OPT record's).
        let (mut fits, mut over) = (0, ends.len() - 1);
        while over - fits > 1 {
            let mid = (fits + over) / 2;
            if self.emit(cut_at(ends[mid]))?.len() <= usize::from(max_size) {
                fits = mid;
            } else {
                over = mid;
            }
        }
        let cut = cut_at(ends[fits]);
        Ok((cut, self.emit(cut)?))
    }

    /// The header alone with SERVFAIL: what is left when the answer cannot
    /// be encoded or sent.
    fn servfail(&self) -> Header {
        let mut metadata = self.metadata;
        metadata.response_code = ResponseCode::ServFail;
        Header {
            metadata,
            counts: HeaderCounts::default(),
        }
    }

    /// The answer on the wire, at most `max_size` octets (see `fit` for
    /// what is dropped); SERVFAIL if it cannot be encoded.
    pub fn encode(&self, max_size: u16) -> Vec<u8> {
        match self.fit(max_size) {
            Ok((_, bytes)) => bytes,
            Err(error) => {
                warn!(%error, "cannot encode an answer; SERVFAIL instead");
                let mut bytes = Vec::with_capacity(HEADER_LEN);
                let _ = self.servfail().emit(&mut BinEncoder::new(&mut bytes));
                bytes
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::query::tests::query;
    use hickory_proto::op::Message;
    use hickory_proto::rr::{Name, RData, rdata};
    use hickory_server::net::xfer::Protocol;

    fn request(edns: Option<(u16, bool)>) -> Request {
        let src = "192.0.2.1:5353".parse().unwrap();
        Request::from_bytes(query("a.test", edns), src, Protocol::Udp).unwrap()
    }

    /// `n` records of one TXT RRset owned by `owner`, 100 octets of text each.
    fn txt(owner: &str, n: usize) -> Vec<Record> {
        let name = Name::from_ascii(owner).unwrap();
        (0..n)
            .map(|i| {
                let text = format!("{i:03}{}", "x".repeat(97));
                Record::from_rdata(name.clone(), 60, RData::TXT(rdata::TXT::new(vec![text])))
            })
            .collect()
    }

    fn sent(request: &Request, reply: &Reply, max: u16) -> Message {
        let bytes = Response::new(request, reply).encode(max);
        assert!(bytes.len() <= usize::from(max), "{} > {max}", bytes.len());
        Message::from_vec(&bytes).unwrap()
    }

    /// RFC 2181 section 9: whole RRsets, TC when a needed one is left out;
    /// the authority of a positive answer is needed only by DNSSEC clients.
    #[test]
    fn truncation_keeps_whole_rrsets_and_sets_tc_when_one_is_needed() {
        let plain = request(None);
        let reply = Reply {
            answers: [txt("a.test", 2), txt("b.test", 2), txt("c.test", 4)].concat(),
            ..Reply::rcode(ResponseCode::NoError)
        };
        let m = sent(&plain, &reply, 512);
        assert_eq!(m.answers.len(), 4, "two whole RRsets of two");
        assert!(m.metadata.truncation);
        let m = sent(&plain, &reply, u16::MAX);
        assert_eq!((m.answers.len(), m.metadata.truncation), (8, false));

        let with_authority = Reply {
            answers: txt("a.test", 2),
            authorities: txt("ns.test", 4),
            ..Reply::rcode(ResponseCode::NoError)
        };
        let m = sent(&plain, &with_authority, 512);
        assert_eq!((m.answers.len(), m.authorities.len()), (2, 0));
        assert!(!m.metadata.truncation, "extra data left out: no TC");
        let dnssec = request(Some((512, true)));
        let m = sent(&dnssec, &with_authority, 512);
        assert_eq!((m.answers.len(), m.authorities.len()), (2, 0));
        assert!(m.metadata.truncation, "DO=1: the authority is needed");
        assert!(m.edns.is_some(), "OPT kept");

        let negative = Reply {
            authorities: txt("test", 6),
            ..Reply::rcode(ResponseCode::NXDomain)
        };
        let m = sent(&plain, &negative, 512);
        assert!(m.authorities.is_empty() && m.metadata.truncation);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    }
}
