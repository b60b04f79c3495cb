//! What to answer ([`Reply`]) and the one place it becomes a DNS message
//! ([`Response`]), whether the bytes go out in a datagram of the receive
//! loop or through hickory's handler for TCP.

use std::iter;
use std::slice;

use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};
use hickory_server::server::{Request, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder};
use tracing::{debug, warn};

use super::edns::{Ede, response_edns};
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

    fn message(&self) -> Message<'_> {
        MessageResponseBuilder::new(&self.request.queries, self.edns.as_ref()).build(
            self.metadata,
            self.reply.answers.iter(),
            self.reply.authorities.iter(),
            iter::empty(),
            iter::empty(),
        )
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

    /// The answer on the wire, at most `max_size` octets (the rest dropped
    /// and TC set, RFC 2181 section 9); SERVFAIL if it cannot be encoded.
    pub fn encode(&self, max_size: u16) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut bytes);
        encoder.set_max_size(max_size);
        if let Err(error) = self.message().destructive_emit(&mut encoder) {
            warn!(%error, "cannot encode an answer; SERVFAIL instead");
            bytes.clear();
            let _ = self.servfail().emit(&mut BinEncoder::new(&mut bytes));
        }
        bytes
    }

    /// Encode and send the answer through hickory's `handle` (TCP).
    pub async fn send<R: ResponseHandler>(&self, mut handle: R) -> ResponseInfo {
        match handle.send_response(self.message()).await {
            Ok(info) => info,
            Err(error) => {
                debug!(client = %self.request.src(), %error, "cannot send the answer");
                ResponseInfo::from(self.servfail())
            }
        }
    }
}
