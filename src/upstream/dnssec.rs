//! DNSSEC records on their way through: what the cache keeps of an
//! upstream answer, and what each client gets of it.
//!
//! hickory-proto is built without its DNSSEC feature: RRSIG, NSEC, NSEC3,
//! DS and DNSKEY records arrive as [`RData::Unknown`] with their RDATA
//! intact (RFC 4034 sections 3.1.7 and 4.1.1 forbid name compression in
//! them, so the bytes read are the bytes to send) and are written back
//! unchanged.

use std::sync::Arc;

use hickory_proto::op::Message;
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{RData, Record, RecordType};

use crate::proto::{EDE_OPTION_CODE, Ede};

/// The records that prove or sign, which a client that did not set DO
/// does not get (RFC 4035 section 3.2.1).
fn is_dnssec(rtype: RecordType) -> bool {
    matches!(
        rtype,
        RecordType::RRSIG | RecordType::NSEC | RecordType::NSEC3
    )
}

/// The type an RRSIG covers: the first two octets of its RDATA (RFC 4034
/// section 3.1.1). `None` for any other record.
pub fn covered(record: &Record) -> Option<RecordType> {
    if record.record_type() != RecordType::RRSIG {
        return None;
    }
    match &record.data {
        RData::Unknown { rdata, .. } => match rdata.anything.as_slice() {
            [a, b, ..] => Some(RecordType::from(u16::from_be_bytes([*a, *b]))),
            _ => None,
        },
        _ => None,
    }
}

/// Whether `record` is kept for a client: everything for DO=1; for DO=0,
/// no RRSIG, NSEC or NSEC3 unless that is the type asked for (RFC 3225
/// section 3 and RFC 4035 section 3.2.1: a client without DO is not
/// prepared for DNSSEC records it did not ask for; Unbound and BIND strip
/// these three).
pub fn for_client(record: &Record, dnssec_ok: bool, qtype: RecordType) -> bool {
    let rtype = record.record_type();
    dnssec_ok || rtype == qtype || !is_dnssec(rtype)
}

/// The authority section relayed: the SOA of a negative answer (RFC 2308
/// section 3), the NSEC and NSEC3 records that prove a denial or a
/// wildcard expansion (RFC 4035 section 3.1.3), and the signatures of
/// those. NS records and their signatures are left out, as before.
pub fn authority(records: Vec<Record>, negative: bool) -> Vec<Record> {
    let kept = |rtype: RecordType| match rtype {
        RecordType::SOA => negative,
        RecordType::NSEC | RecordType::NSEC3 => true,
        _ => false,
    };
    records
        .into_iter()
        .filter(|r| match covered(r) {
            Some(rtype) => kept(rtype),
            None => kept(r.record_type()),
        })
        .collect()
}

/// The first Extended DNS Error of an upstream answer (RFC 8914 section
/// 2: INFO-CODE, then EXTRA-TEXT in UTF-8), to relay.
pub fn ede(message: &Message) -> Option<Ede> {
    let edns = message.edns.as_ref()?;
    edns.options()
        .options
        .iter()
        .find_map(|(_, option)| match option {
            EdnsOption::Unknown(EDE_OPTION_CODE, data) if data.len() >= 2 => {
                let code = u16::from_be_bytes([data[0], data[1]]);
                let text = String::from_utf8_lossy(&data[2..]);
                Some((code, Arc::from(text.as_ref())))
            }
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::NULL;
    use hickory_proto::rr::{Name, rdata::A};

    fn rrsig(covers: RecordType) -> Record {
        let mut rdata = u16::from(covers).to_be_bytes().to_vec();
        rdata.extend_from_slice(&[13, 2, 0, 0, 1, 44]);
        Record::from_rdata(
            Name::from_ascii("x.test.").unwrap(),
            300,
            RData::Unknown {
                code: RecordType::RRSIG,
                rdata: NULL::with(rdata),
            },
        )
    }

    fn unknown(rtype: RecordType) -> Record {
        Record::from_rdata(
            Name::from_ascii("x.test.").unwrap(),
            300,
            RData::Unknown {
                code: rtype,
                rdata: NULL::with(vec![1, 2, 3]),
            },
        )
    }

    #[test]
    fn rrsig_cover_is_read_from_the_rdata() {
        assert_eq!(covered(&rrsig(RecordType::NSEC3)), Some(RecordType::NSEC3));
        let a = Record::from_rdata(Name::root(), 1, RData::A(A::new(192, 0, 2, 1)));
        assert_eq!(covered(&a), None);
    }

    #[test]
    fn do0_clients_get_no_proofs_unless_they_asked_for_that_type() {
        let sig = rrsig(RecordType::A);
        let nsec = unknown(RecordType::NSEC);
        let key = unknown(RecordType::DNSKEY);
        assert!(for_client(&sig, true, RecordType::A));
        assert!(!for_client(&sig, false, RecordType::A));
        assert!(for_client(&sig, false, RecordType::RRSIG));
        assert!(!for_client(&nsec, false, RecordType::A));
        assert!(for_client(&nsec, false, RecordType::NSEC));
        assert!(for_client(&key, false, RecordType::DNSKEY));
    }

    #[test]
    fn authority_keeps_soa_proofs_and_their_signatures_only() {
        let soa_sig = rrsig(RecordType::SOA);
        let ns_sig = rrsig(RecordType::NS);
        let nsec = unknown(RecordType::NSEC);
        let nsec_sig = rrsig(RecordType::NSEC);
        let ns = unknown(RecordType::NS);
        let all = vec![soa_sig.clone(), ns_sig, nsec.clone(), nsec_sig.clone(), ns];
        assert_eq!(
            authority(all.clone(), true),
            [soa_sig, nsec.clone(), nsec_sig.clone()]
        );
        assert_eq!(authority(all, false), [nsec, nsec_sig]);
    }
}
