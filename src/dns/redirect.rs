//! The redirect answer for a listed name (BEHAVIOUR section 2).
//!
//! [`RedirectTemplate`] prepares, once from the config, every part of the
//! redirect that does not depend on the query. Two writers read those
//! parts: [`RedirectTemplate::records`] and [`RedirectTemplate::soa`] give
//! hickory records to the full path (TCP, CNAME mode, anything unusual),
//! and [`RedirectTemplate::write_wire`] writes the same answer straight to
//! the datagram for a plain UDP query, without a hickory message. The SOA
//! of NODATA answers takes its names, timers and serial from the constants
//! and the function below in both.

use std::sync::Arc;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, SOA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::edns::{EDE_CENSORED, Ede, ede_rdata, write_opt};
use super::header::{HEADER_LEN, Header, HeaderCounts, RCODE_NXDOMAIN};
use super::query::QueryView;
use crate::config::{Action, RedirectConfig};
use crate::policy::Rule;

/// The MNAME of the synthetic SOA of NODATA redirects.
const SOA_MNAME: &str = "rempart.invalid.";
/// The RNAME of the synthetic SOA.
const SOA_RNAME: &str = "hostmaster.rempart.invalid.";
/// The REFRESH of the synthetic SOA (RFC 1035 section 3.3.13), seconds
/// (signed, as hickory's `SOA` holds it; the same 32 bits on the wire).
const SOA_REFRESH: i32 = 3600;
/// The RETRY of the synthetic SOA, seconds.
const SOA_RETRY: i32 = 600;
/// The EXPIRE of the synthetic SOA, seconds.
const SOA_EXPIRE: i32 = 86400;

/// The SOA serial for list serial `serial`. The SOA serial is 32 bits; a
/// list serial (e.g. 2026112201) fits until the year 4294, and wraps (RFC
/// 1982 arithmetic) beyond.
#[inline]
pub const fn soa_serial(serial: u64) -> u32 {
    (serial % (u32::MAX as u64 + 1)) as u32
}

/// What a redirect answered, as the audit record says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    /// The information page's A/AAAA records.
    Redirect,
    /// NODATA with the synthetic SOA (a type the redirect has no record
    /// for).
    Nodata,
    /// The CNAME to the information host (`redirect.cname`).
    Cname,
    /// NXDOMAIN with the synthetic SOA (a list with `action = "nxdomain"`).
    Nxdomain,
}

impl AnswerKind {
    /// The name in the audit record: `redirect`, `nodata` or `cname`.
    pub const fn as_str(self) -> &'static str {
        match self {
            AnswerKind::Redirect => "redirect",
            AnswerKind::Nodata => "nodata",
            AnswerKind::Cname => "cname",
            AnswerKind::Nxdomain => "nxdomain",
        }
    }
}

/// The redirect settings, with the records' parts prepared once.
#[derive(Debug, Clone)]
pub struct RedirectTemplate {
    ipv4: Vec<A>,
    ipv6: Vec<AAAA>,
    ttl: u32,
    cname: Option<Name>,
    ede_text: Arc<str>,
    soa_mname: Name,
    soa_rname: Name,
    /// `action = "nxdomain"`: no records, NXDOMAIN with the SOA.
    nxdomain: bool,
    /// The same answer in wire form, for the receive loop; `None` in CNAME
    /// mode (the target is resolved upstream) or if it cannot fit a
    /// message.
    wire: Option<WireParts>,
}

/// The parts of a redirect in wire form, for [`RedirectTemplate::write_wire`].
#[derive(Debug, Clone)]
struct WireParts {
    /// The A records, owned by the question name.
    a: Rrs,
    /// The AAAA records, owned by the question name.
    aaaa: Rrs,
    /// The SOA record after its owner and up to its serial: TYPE, CLASS,
    /// TTL, RDLENGTH, MNAME, RNAME.
    soa_head: Box<[u8]>,
    /// The SOA record after its serial: REFRESH, RETRY, EXPIRE, MINIMUM.
    soa_tail: [u8; 16],
    /// The RDATA (with RDLENGTH) of the OPT record: EDE 16 and its text.
    opt_rdata: Box<[u8]>,
}

/// Records in wire form and how many.
#[derive(Debug, Clone)]
struct Rrs {
    bytes: Box<[u8]>,
    count: u16,
}

impl Rrs {
    /// Records of type `rtype` with each of `rdatas`, owned by the question
    /// name (RFC 1035 section 4.1.4: a pointer to offset 12), class IN.
    fn new<const N: usize>(rtype: RecordType, ttl: u32, rdatas: &[[u8; N]]) -> Option<Rrs> {
        let mut bytes = Vec::with_capacity(rdatas.len() * (12 + N));
        let pointer = 0xC000 | HEADER_LEN as u16;
        for rdata in rdatas {
            bytes.extend_from_slice(&pointer.to_be_bytes());
            bytes.extend_from_slice(&u16::from(rtype).to_be_bytes());
            bytes.extend_from_slice(&u16::from(DNSClass::IN).to_be_bytes());
            bytes.extend_from_slice(&ttl.to_be_bytes());
            bytes.extend_from_slice(&u16::try_from(N).ok()?.to_be_bytes());
            bytes.extend_from_slice(rdata);
        }
        Some(Rrs {
            bytes: bytes.into_boxed_slice(),
            count: u16::try_from(rdatas.len()).ok()?,
        })
    }
}

impl RedirectTemplate {
    /// Prepare from the config, for a list whose action is the redirect.
    pub fn new(config: &RedirectConfig) -> RedirectTemplate {
        RedirectTemplate::for_list(config, Action::Redirect)
    }

    /// Prepare the answer of a list with `action`, from its redirect
    /// settings (for NXDOMAIN, only the TTL of the SOA and the EDE text
    /// count).
    pub fn for_list(config: &RedirectConfig, action: Action) -> RedirectTemplate {
        let nxdomain = action == Action::Nxdomain;
        let mut template = RedirectTemplate {
            nxdomain,
            ipv4: if nxdomain {
                Vec::new()
            } else {
                config.ipv4.iter().copied().map(A).collect()
            },
            ipv6: if nxdomain {
                Vec::new()
            } else {
                config.ipv6.iter().copied().map(AAAA).collect()
            },
            ttl: config.ttl,
            cname: config.cname.clone().filter(|_| !nxdomain),
            ede_text: Arc::from(config.ede_text.as_str()),
            soa_mname: Name::from_ascii(SOA_MNAME).expect("constant name"),
            soa_rname: Name::from_ascii(SOA_RNAME).expect("constant name"),
            wire: None,
        };
        if template.cname.is_none() {
            template.wire = template.wire_parts();
        }
        template
    }

    /// The wire form of the records [`RedirectTemplate::records`] and
    /// [`RedirectTemplate::soa`] make, but for the owners and the serial.
    fn wire_parts(&self) -> Option<WireParts> {
        let v4: Vec<[u8; 4]> = self.ipv4.iter().map(|a| a.0.octets()).collect();
        let v6: Vec<[u8; 16]> = self.ipv6.iter().map(|a| a.0.octets()).collect();
        let a = Rrs::new(RecordType::A, self.ttl, &v4)?;
        let aaaa = Rrs::new(RecordType::AAAA, self.ttl, &v6)?;
        // Both in one answer (ANY) must still count in 16 bits.
        a.count.checked_add(aaaa.count)?;
        let mut names = Vec::new();
        push_name(&mut names, SOA_MNAME);
        push_name(&mut names, SOA_RNAME);
        let rdlen = u16::try_from(names.len() + 20).ok()?;
        let mut soa_head = Vec::with_capacity(10 + names.len());
        soa_head.extend_from_slice(&u16::from(RecordType::SOA).to_be_bytes());
        soa_head.extend_from_slice(&u16::from(DNSClass::IN).to_be_bytes());
        soa_head.extend_from_slice(&self.ttl.to_be_bytes());
        soa_head.extend_from_slice(&rdlen.to_be_bytes());
        soa_head.extend_from_slice(&names);
        let mut soa_tail = [0u8; 16];
        let timers = [
            SOA_REFRESH.to_be_bytes(),
            SOA_RETRY.to_be_bytes(),
            SOA_EXPIRE.to_be_bytes(),
            self.ttl.to_be_bytes(),
        ];
        for (field, value) in soa_tail.chunks_exact_mut(4).zip(timers) {
            field.copy_from_slice(&value);
        }
        let (code, text) = self.ede();
        Some(WireParts {
            a,
            aaaa,
            soa_head: soa_head.into_boxed_slice(),
            soa_tail,
            opt_rdata: ede_rdata(code, &text)?,
        })
    }

    /// The CNAME target of the `redirect.cname` mode, if set.
    pub fn cname(&self) -> Option<&Name> {
        self.cname.as_ref()
    }

    /// True for a list whose action is NXDOMAIN.
    pub fn nxdomain(&self) -> bool {
        self.nxdomain
    }

    /// The TTL of redirect records.
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// The EDE 16 that goes with every redirect.
    pub fn ede(&self) -> Ede {
        (EDE_CENSORED, self.ede_text.clone())
    }

    /// The records that redirect `owner` (a listed name) for `qtype`,
    /// following the table of BEHAVIOUR section 2; `None` means NODATA, and
    /// the caller adds [`RedirectTemplate::soa`]. In CNAME mode this is the
    /// CNAME alone: the caller resolves the target.
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
        Record::from_rdata(
            owner,
            self.ttl,
            RData::SOA(SOA::new(
                self.soa_mname.clone(),
                self.soa_rname.clone(),
                soa_serial(serial),
                SOA_REFRESH,
                SOA_RETRY,
                SOA_EXPIRE,
                self.ttl,
            )),
        )
    }

    /// The redirect for a listed name, straight to the wire: the answer
    /// [`RedirectTemplate::records`] / [`RedirectTemplate::soa`] and
    /// [`super::edns::response_edns`] give, for a plain UDP query (`query`,
    /// read as `view`) outside CNAME mode. Returns what it answered, or
    /// `None` if the answer exceeds what the client takes over UDP (the
    /// full path then truncates it) or there are no wire parts.
    pub fn write_wire(
        &self,
        query: &[u8],
        view: &QueryView,
        rule: &Rule<'_>,
        serial: u64,
        out: &mut Vec<u8>,
    ) -> Option<AnswerKind> {
        const A: u16 = 1;
        const AAAA: u16 = 28;
        const ANY: u16 = 255;
        let parts = self.wire.as_ref()?;
        let (a, aaaa, answers): (&[u8], &[u8], u16) = match view.qtype {
            A => (&parts.a.bytes, &[], parts.a.count),
            AAAA => (&[], &parts.aaaa.bytes, parts.aaaa.count),
            // Cannot overflow: checked when the parts were made.
            ANY => (
                &parts.a.bytes,
                &parts.aaaa.bytes,
                parts.a.count + parts.aaaa.count,
            ),
            _ => (&[], &[], 0),
        };
        let nodata = answers == 0;
        out.clear();
        let mut header = Header::answer_to(Header::for_message(query));
        if self.nxdomain {
            header.set_rcode(RCODE_NXDOMAIN);
        }
        out.extend_from_slice(header.as_octets());
        let mut counts = HeaderCounts::new();
        counts.set_qdcount(1);
        counts.set_ancount(answers);
        counts.set_nscount(u16::from(nodata));
        counts.set_arcount(u16::from(view.edns.is_some()));
        out.extend_from_slice(counts.as_octets());
        // The question as sent (letter case included).
        out.extend_from_slice(view.question(query));
        out.extend_from_slice(a);
        out.extend_from_slice(aaaa);
        if nodata {
            // The SOA of [`RedirectTemplate::soa`], owned by the entry's
            // name.
            push_name(out, rule.name);
            out.extend_from_slice(&parts.soa_head);
            out.extend_from_slice(&soa_serial(serial).to_be_bytes());
            out.extend_from_slice(&parts.soa_tail);
        }
        if let Some((payload, dnssec_ok)) = view.edns {
            write_opt(out, payload, dnssec_ok, &parts.opt_rdata);
        }
        let kind = if self.nxdomain {
            AnswerKind::Nxdomain
        } else if nodata {
            AnswerKind::Nodata
        } else {
            AnswerKind::Redirect
        };
        (out.len() <= view.max_udp()).then_some(kind)
    }
}

/// Append `name` (dotted, the final dot optional) in wire form.
fn push_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        // Labels of names from the list and the constants are <= 63 octets.
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}
