//! Building the redirect answer for a listed name (BEHAVIOUR section 2).

use std::sync::Arc;

use hickory_proto::op::{Edns, ResponseCode};
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::rdata::{A, AAAA, CNAME, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::wire::QueryView;
use crate::config::RedirectConfig;
use crate::policy::Rule;

/// RFC 8914 section 2: the EDNS option code of an Extended DNS Error.
pub const EDE_OPTION_CODE: u16 = 15;
/// RFC 8914 section 4.17: "Censored".
pub const EDE_CENSORED: u16 = 16;
/// RFC 8914 section 4.19: "Prohibited".
pub const EDE_PROHIBITED: u16 = 18;
/// The UDP payload size we advertise (the DNS flag day 2020 value).
pub const EDNS_PAYLOAD: u16 = 1232;

/// The MNAME of the synthetic SOA of NODATA redirects.
const SOA_MNAME: &str = "rempart.invalid.";
/// The RNAME of the synthetic SOA.
const SOA_RNAME: &str = "hostmaster.rempart.invalid.";

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
    pub ede: Option<(u16, Arc<str>)>,
    /// For an answer relayed from the cache or upstream: what makes its
    /// bytes reusable by the UDP fast path ([`super::wire`]).
    pub stamp: Option<super::wire::Stamp>,
}

impl Reply {
    /// An answer with only a response code.
    pub fn rcode(rcode: ResponseCode) -> Reply {
        Reply {
            rcode,
            answers: Vec::new(),
            authorities: Vec::new(),
            ede: None,
            stamp: None,
        }
    }
}

/// The redirect settings, with the records' parts prepared once.
#[derive(Debug, Clone)]
pub struct Redirect {
    ipv4: Vec<A>,
    ipv6: Vec<AAAA>,
    ttl: u32,
    cname: Option<Name>,
    ede_text: Arc<str>,
    soa_mname: Name,
    soa_rname: Name,
}

impl Redirect {
    /// Prepare from the config.
    pub fn new(config: &RedirectConfig) -> Redirect {
        Redirect {
            ipv4: config.ipv4.iter().copied().map(A).collect(),
            ipv6: config.ipv6.iter().copied().map(AAAA).collect(),
            ttl: config.ttl,
            cname: config.cname.clone(),
            ede_text: Arc::from(config.ede_text.as_str()),
            soa_mname: Name::from_ascii(SOA_MNAME).expect("constant name"),
            soa_rname: Name::from_ascii(SOA_RNAME).expect("constant name"),
        }
    }

    /// The CNAME target of the `redirect.cname` mode, if set.
    pub fn cname(&self) -> Option<&Name> {
        self.cname.as_ref()
    }

    /// The TTL of redirect records.
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// The EDE 16 that goes with every redirect.
    pub fn ede(&self) -> (u16, Arc<str>) {
        (EDE_CENSORED, self.ede_text.clone())
    }

    /// The records that redirect `owner` (a listed name) for `qtype`,
    /// following the table of BEHAVIOUR section 2; `None` means NODATA, and
    /// the caller adds [`Redirect::soa`]. In CNAME mode this is the CNAME
    /// alone: the caller resolves the target.
    pub fn records(&self, owner: &Name, qtype: RecordType) -> Option<Vec<Record>> {
        if let Some(target) = &self.cname {
            return Some(vec![Record::from_rdata(
                owner.clone(),
                self.ttl,
                RData::CNAME(CNAME(target.clone())),
            )]);
        }
        let a = || {
            self.ipv4
                .iter()
                .map(|a| Record::from_rdata(owner.clone(), self.ttl, RData::A(*a)))
        };
        let aaaa = || {
            self.ipv6
                .iter()
                .map(|a| Record::from_rdata(owner.clone(), self.ttl, RData::AAAA(*a)))
        };
        let records: Vec<Record> = match qtype {
            RecordType::A => a().collect(),
            RecordType::AAAA => aaaa().collect(),
            // RFC 8482 section 4.1 allows a subset; we give the redirect.
            RecordType::ANY => a().chain(aaaa()).collect(),
            _ => Vec::new(),
        };
        (!records.is_empty()).then_some(records)
    }

    /// The SOA of a NODATA redirect (RFC 2308 section 3: a negative answer
    /// carries the SOA; its TTL and MINIMUM are the redirect TTL). The owner
    /// is the list entry's name, the apex of what is redirected.
    pub fn soa(&self, rule: &Rule<'_>, serial: u64) -> Record {
        let owner = Name::from_ascii(format!("{}.", rule.name)).unwrap_or_else(|_| Name::root());
        // The SOA serial is 32 bits; the list serial (e.g. 2026112201) fits
        // until the year 4294, and wraps (RFC 1982 arithmetic) beyond.
        let serial = (serial % (u64::from(u32::MAX) + 1)) as u32;
        Record::from_rdata(
            owner,
            self.ttl,
            RData::SOA(SOA::new(
                self.soa_mname.clone(),
                self.soa_rname.clone(),
                serial,
                3600,
                600,
                86400,
                self.ttl,
            )),
        )
    }
}

/// Append `name` (dotted, without the final dot) in wire form.
fn push_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        // Labels of names from the list and the constants are <= 63 octets.
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

impl Redirect {
    /// The redirect for a listed name, straight to the wire: the answer
    /// [`Redirect::records`] / [`Redirect::soa`] and [`response_edns`] give,
    /// for a plain UDP query (`query`, read as `view`) outside CNAME mode.
    /// Returns the answer kind for the audit record (`redirect`, `nodata`),
    /// or `None` if the answer exceeds what the client takes over UDP (the
    /// full path then truncates it).
    pub fn write_wire(
        &self,
        query: &[u8],
        view: &QueryView,
        rule: &Rule<'_>,
        serial: u64,
        out: &mut Vec<u8>,
    ) -> Option<&'static str> {
        const A: u16 = 1;
        const AAAA: u16 = 28;
        const ANY: u16 = 255;
        let (v4, v6) = match view.qtype {
            A => (self.ipv4.len(), 0),
            AAAA => (0, self.ipv6.len()),
            ANY => (self.ipv4.len(), self.ipv6.len()),
            _ => (0, 0),
        };
        let answers = v4 + v6;
        let nodata = answers == 0;
        out.clear();
        // Header: ID; QR=1, opcode QUERY, RD as asked; RA=1, CD as asked,
        // NOERROR; one question; the counts.
        out.extend_from_slice(&query[..2]);
        out.push(0x80 | (query[2] & 0x01));
        out.push(0x80 | (query[3] & 0x10));
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&u16::try_from(answers).ok()?.to_be_bytes());
        out.extend_from_slice(&u16::from(nodata).to_be_bytes());
        out.extend_from_slice(&u16::from(view.edns.is_some()).to_be_bytes());
        // The question as sent (letter case included).
        out.extend_from_slice(&query[12..12 + view.name_len + 4]);
        let ttl = self.ttl.to_be_bytes();
        // Owner: a pointer to the question name (offset 12).
        for a in self.ipv4.iter().take(v4) {
            out.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
            out.extend_from_slice(&ttl);
            out.extend_from_slice(&[0, 4]);
            out.extend_from_slice(&a.0.octets());
        }
        for a in self.ipv6.iter().take(v6) {
            out.extend_from_slice(&[0xC0, 12, 0, 28, 0, 1]);
            out.extend_from_slice(&ttl);
            out.extend_from_slice(&[0, 16]);
            out.extend_from_slice(&a.0.octets());
        }
        if nodata {
            // The SOA of [`Redirect::soa`], owned by the entry's name.
            push_name(out, rule.name);
            out.extend_from_slice(&[0, 6, 0, 1]);
            out.extend_from_slice(&ttl);
            let rdlen_at = out.len();
            out.extend_from_slice(&[0, 0]);
            push_name(out, SOA_MNAME);
            push_name(out, SOA_RNAME);
            let serial = (serial % (u64::from(u32::MAX) + 1)) as u32;
            for field in [serial, 3600, 600, 86400, self.ttl] {
                out.extend_from_slice(&field.to_be_bytes());
            }
            let rdlen = u16::try_from(out.len() - rdlen_at - 2).ok()?;
            out[rdlen_at..rdlen_at + 2].copy_from_slice(&rdlen.to_be_bytes());
        }
        if let Some((payload, dnssec_ok)) = view.edns {
            // OPT: root owner, payload, version 0, DO as asked, EDE 16.
            let text = self.ede_text.as_bytes();
            let option_len = u16::try_from(2 + text.len()).ok()?;
            out.extend_from_slice(&[0, 0, 41]);
            out.extend_from_slice(&payload.to_be_bytes());
            out.extend_from_slice(&[0, 0, if dnssec_ok { 0x80 } else { 0 }, 0]);
            out.extend_from_slice(&(option_len + 4).to_be_bytes());
            out.extend_from_slice(&EDE_OPTION_CODE.to_be_bytes());
            out.extend_from_slice(&option_len.to_be_bytes());
            out.extend_from_slice(&EDE_CENSORED.to_be_bytes());
            out.extend_from_slice(text);
        }
        (out.len() <= view.max_udp()).then_some(if nodata { "nodata" } else { "redirect" })
    }
}

/// The OPT record of an answer to a query that carried one (RFC 6891
/// section 7: a responder that understands EDNS includes OPT in its
/// response to an EDNS query, and only then).
pub fn response_edns(query: &Edns, ede: Option<&(u16, Arc<str>)>) -> Edns {
    let mut edns = Edns::new();
    edns.set_max_payload(query.max_payload().clamp(512, EDNS_PAYLOAD));
    edns.set_version(0);
    // RFC 3225 section 3: the DO bit of the query is copied in the response.
    edns.set_dnssec_ok(query.flags().dnssec_ok);
    if let Some((code, text)) = ede {
        // RFC 8914 section 2: INFO-CODE (16 bits) then EXTRA-TEXT (UTF-8).
        let mut data = Vec::with_capacity(2 + text.len());
        data.extend_from_slice(&code.to_be_bytes());
        data.extend_from_slice(text.as_bytes());
        edns.options_mut()
            .insert(EdnsOption::Unknown(EDE_OPTION_CODE, data));
    }
    edns
}
