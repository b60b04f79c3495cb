//! EDNS in answers: the OPT record and the Extended DNS Error option.
//!
//! Both paths that write answers (hickory's encoder for the full path, the
//! byte writers of the receive loop) take the payload size, the OPT layout
//! and the EDE codes from here.

use hickory_proto::op::Edns;
use hickory_proto::rr::rdata::opt::EdnsOption;

/// RFC 6891 section 6.1.1: the RR type of OPT.
pub const OPT: u16 = 41;
/// RFC 8914 section 4.17: "Censored".
pub const EDE_CENSORED: u16 = 16;
/// RFC 8914 section 4.19: "Prohibited".
pub const EDE_PROHIBITED: u16 = 18;
/// The numbers shared with the forwarder (option code, EDE 22 and 23, the
/// advertised payload, the EDE type).
pub use crate::proto::{
    EDE_NETWORK_ERROR, EDE_NO_REACHABLE_AUTHORITY, EDE_OPTION_CODE, EDNS_PAYLOAD, Ede,
};
/// RFC 3225 section 3: DO, the high bit of the OPT record's flags (the
/// third octet of its TTL field).
pub const DNSSEC_OK: u8 = 0x80;
/// RFC 6891 section 6.2.3: payload sizes below 512 are treated as 512.
const MIN_PAYLOAD: u16 = 512;

/// The payload size of our answer to a client that advertised `asked`: the
/// client's, within 512..=[`EDNS_PAYLOAD`]. Also the largest UDP answer we
/// send it.
#[inline]
pub const fn response_payload(asked: u16) -> u16 {
    if asked < MIN_PAYLOAD {
        MIN_PAYLOAD
    } else if asked > EDNS_PAYLOAD {
        EDNS_PAYLOAD
    } else {
        asked
    }
}

/// The OPTION-DATA of an EDE option (RFC 8914 section 2): INFO-CODE (16
/// bits) then EXTRA-TEXT (UTF-8).
pub fn ede_data(code: u16, text: &str) -> Vec<u8> {
    let mut data = Vec::with_capacity(2 + text.len());
    data.extend_from_slice(&code.to_be_bytes());
    data.extend_from_slice(text.as_bytes());
    data
}

/// The OPT record of an answer to a query that carried one (RFC 6891
/// section 7: a responder that understands EDNS includes OPT in its
/// response to an EDNS query, and only then).
pub fn response_edns(query: &Edns, ede: Option<&Ede>) -> Edns {
    let mut edns = Edns::new();
    edns.set_max_payload(response_payload(query.max_payload()));
    edns.set_version(0);
    // RFC 3225 section 3: the DO bit of the query is copied in the response.
    edns.set_dnssec_ok(query.flags().dnssec_ok);
    if let Some((code, text)) = ede {
        edns.options_mut()
            .insert(EdnsOption::Unknown(EDE_OPTION_CODE, ede_data(*code, text)));
    }
    edns
}

/// Append the OPT record of an answer to the wire (RFC 6891 section 6.1.2:
/// root owner, TYPE 41, CLASS the payload size, TTL extended RCODE 0,
/// version 0 and the flags with DO as asked, RDLENGTH, options), its
/// RDATA `options` already encoded.
#[inline]
pub fn write_opt(out: &mut Vec<u8>, payload: u16, dnssec_ok: bool, options: &[u8]) {
    let [t0, t1] = OPT.to_be_bytes();
    let [p0, p1] = payload.to_be_bytes();
    let flags = if dnssec_ok { DNSSEC_OK } else { 0 };
    out.extend_from_slice(&[0, t0, t1, p0, p1, 0, 0, flags, 0]);
    out.extend_from_slice(options);
}

/// The RDATA of an OPT record holding one EDE option, RDLENGTH first:
/// what [`write_opt`] takes. `None` if the text does not fit in a record.
pub fn ede_rdata(code: u16, text: &str) -> Option<Box<[u8]>> {
    let data = ede_data(code, text);
    let option_len = u16::try_from(data.len()).ok()?;
    let rdlen = option_len.checked_add(4)?;
    let mut out = Vec::with_capacity(2 + usize::from(rdlen));
    out.extend_from_slice(&rdlen.to_be_bytes());
    out.extend_from_slice(&EDE_OPTION_CODE.to_be_bytes());
    out.extend_from_slice(&option_len.to_be_bytes());
    out.extend_from_slice(&data);
    Some(out.into_boxed_slice())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::serialize::binary::BinEncodable;

    #[test]
    fn payload_sizes_are_clamped_to_what_we_take() {
        assert_eq!(response_payload(0), 512);
        assert_eq!(response_payload(512), 512);
        assert_eq!(response_payload(1000), 1000);
        assert_eq!(response_payload(4096), EDNS_PAYLOAD);
    }

    /// The OPT record the receive loop writes is the one hickory encodes
    /// for the full path.
    #[test]
    fn the_written_opt_is_the_encoded_one() {
        for (payload, dnssec_ok) in [(4096, true), (512, false), (1000, true)] {
            let mut query = Edns::new();
            query.set_max_payload(payload);
            query.set_dnssec_ok(dnssec_ok);
            let ede: Ede = (
                EDE_CENSORED,
                std::sync::Arc::from("blocked: see https://x.test/"),
            );
            let encoded = hickory_proto::rr::Record::from(&response_edns(&query, Some(&ede)))
                .to_bytes()
                .unwrap();
            let mut written = Vec::new();
            let rdata = ede_rdata(ede.0, &ede.1).unwrap();
            write_opt(&mut written, response_payload(payload), dnssec_ok, &rdata);
            assert_eq!(written, encoded, "{payload} {dnssec_ok}");
        }
    }
}
