//! The content of an RPZ zone, from a list version: pure functions, no I/O.
//!
//! The records follow draft-vixie-dnsop-dns-rpz (the format BIND, Unbound,
//! PowerDNS and Knot read), section 4.1 (QNAME trigger) and section 5
//! (actions): for an entry `bad.example` of zone `main.rpz.rempart.`,
//!
//! - "Local Data" action: `bad.example.main.rpz.rempart. A <address>` (and
//!   AAAA, one record per address), or `CNAME <information host>`;
//! - "NXDOMAIN" action: `CNAME .` (section 5.1);
//! - a `subtree` entry also gets the wildcard owner
//!   `*.bad.example.main.rpz.rempart.` with the same records (section
//!   4.1: "a wildcard ... matches names below"), `exact` does not.
//!
//! The apex holds a SOA and an NS record (BIND refuses a zone without NS;
//! the NS target `localhost.` is the convention of RPZ zones, which no one
//! resolves through).

use std::collections::VecDeque;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, SOA};
use hickory_proto::rr::{Name, RData, Record};

use crate::list::MatchKind;
use crate::policy::Policy;

/// SOA refresh, seconds: how often a secondary that missed a NOTIFY asks.
pub const SOA_REFRESH: i32 = 300;
/// SOA retry, seconds.
pub const SOA_RETRY: i32 = 60;
/// SOA expire, seconds (30 days): a secondary that cannot reach Rempart
/// keeps enforcing its copy this long. Short would lift every block on
/// the fleet when the primary is down; the list's own `expires` is the
/// authority's bound, not the transport's.
pub const SOA_EXPIRE: i32 = 30 * 24 * 3600;

/// Versions of a zone whose differences are kept for IXFR.
pub const HISTORY_VERSIONS: usize = 16;
/// Names kept in the IXFR history, all versions together: beyond, the
/// oldest differences are dropped (their secondaries get a full transfer).
pub const HISTORY_NAMES: usize = 1_000_000;

/// What a listed name is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Local data: the information page's addresses.
    Addresses {
        /// A records.
        ipv4: Vec<Ipv4Addr>,
        /// AAAA records.
        ipv6: Vec<Ipv6Addr>,
    },
    /// Local data: `CNAME` to the information host.
    Cname(Name),
    /// The RPZ NXDOMAIN action (`CNAME .`).
    NxDomain,
}

/// The redirect of a list: what its names are answered with, and the TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirect {
    /// The action.
    pub action: Action,
    /// TTL of every record of the zone (and the SOA minimum).
    pub ttl: u32,
}

impl Redirect {
    /// The record data every listed owner name gets.
    pub fn rdata(&self) -> Vec<RData> {
        match &self.action {
            Action::Addresses { ipv4, ipv6 } => ipv4
                .iter()
                .map(|a| RData::A(A(*a)))
                .chain(ipv6.iter().map(|a| RData::AAAA(AAAA(*a))))
                .collect(),
            Action::Cname(target) => vec![RData::CNAME(CNAME(target.clone()))],
            Action::NxDomain => vec![RData::CNAME(CNAME(Name::root()))],
        }
    }
}

/// A list version as an RPZ zone publishes it.
#[derive(Debug, Clone)]
pub struct RpzVersion {
    /// The list's serial (64 bits; see [`zone_serial`]).
    pub serial: u64,
    /// The list's SHA-256: the same serial and digest are the same list.
    pub digest: [u8; 32],
    /// Its entries, as compiled for the query path (shared, not copied).
    pub policy: Arc<Policy>,
    /// What its names are answered with.
    pub redirect: Redirect,
}

/// The 32-bit SOA serial of a list serial, given the zone's previous SOA
/// serial.
///
/// The list serial is 64 bits, the SOA serial 32 (RFC 1035 section 3.3.13)
/// and compared in sequence space arithmetic (RFC 1982 section 3.2). The
/// zone serial is the list serial modulo 2^32 (the identity for the usual
/// `YYYYMMDDnn` serials, below 4294967296), provided it is greater, in RFC
/// 1982 terms, than the previous zone serial; otherwise (a list serial
/// that jumped by 2^31 or more, or wrapped modulo 2^32) it is the previous
/// serial plus one, so that every secondary still sees a newer zone.
pub fn zone_serial(list_serial: u64, previous: Option<u32>) -> u32 {
    let mapped = list_serial as u32;
    match previous {
        Some(p) if !serial_greater(mapped, p) => p.wrapping_add(1),
        _ => mapped,
    }
}

/// `a > b` in RFC 1982 section 3.2 serial arithmetic (SERIAL_BITS = 32);
/// a pair 2^31 apart is undefined and answers false.
pub fn serial_greater(a: u32, b: u32) -> bool {
    const HALF: u32 = 1 << 31;
    (a < b && b - a > HALF) || (a > b && a - b < HALF)
}

/// The zone served for list `id`: `<id>.<suffix>`.
pub fn zone_name(id: &str, suffix: &Name) -> Result<Name, ZoneNameError> {
    Name::from_ascii(id)
        .and_then(|label| label.append_domain(suffix))
        .map_err(|e| ZoneNameError {
            id: id.to_owned(),
            reason: e.to_string(),
        })
}

/// A list id that makes no zone name.
#[derive(Debug, Clone, thiserror::Error)]
#[error("list id {id:?} makes no RPZ zone name: {reason}")]
pub struct ZoneNameError {
    /// The list id.
    pub id: String,
    /// Why.
    pub reason: String,
}

/// One version of one zone: its apex, SOA serial and content.
#[derive(Debug)]
pub struct Zone {
    /// The apex, e.g. `main.rpz.rempart.`.
    pub apex: Name,
    /// The SOA serial ([`zone_serial`]).
    pub serial: u32,
    /// The list version.
    pub version: RpzVersion,
    rdata: Vec<RData>,
}

/// A name, the name it would have in the zone, too long to be one (an
/// entry of 253 characters under a zone suffix of 20 exceeds RFC 1035's
/// 255 octets): left out of the zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrepresentable(pub String);

impl Zone {
    /// Zone `apex` with `version` at SOA serial `serial`.
    pub fn new(apex: Name, serial: u32, version: RpzVersion) -> Zone {
        let rdata = version.redirect.rdata();
        Zone {
            apex,
            serial,
            version,
            rdata,
        }
    }

    /// The apex SOA at serial `serial` (IXFR names older serials).
    pub fn soa_at(&self, serial: u32) -> Record {
        let mname = Name::from_ascii("localhost.").expect("a valid name");
        let rname = Name::from_ascii("hostmaster")
            .and_then(|l| l.append_domain(&self.apex))
            .unwrap_or_else(|_| mname.clone());
        Record::from_rdata(
            self.apex.clone(),
            self.version.redirect.ttl,
            RData::SOA(SOA::new(
                mname,
                rname,
                serial,
                SOA_REFRESH,
                SOA_RETRY,
                SOA_EXPIRE,
                self.version.redirect.ttl,
            )),
        )
    }

    /// The apex SOA.
    pub fn soa(&self) -> Record {
        self.soa_at(self.serial)
    }

    /// The apex NS.
    pub fn ns(&self) -> Record {
        Record::from_rdata(
            self.apex.clone(),
            self.version.redirect.ttl,
            RData::NS(NS(Name::from_ascii("localhost.").expect("a valid name"))),
        )
    }

    /// Entries in the zone's list.
    pub fn entries(&self) -> u32 {
        self.version.policy.len() as u32
    }

    /// The records of entry `index` (empty past the end). An entry whose
    /// name is too long under the apex gives an error, and no records.
    pub fn records_at(&self, index: u32) -> Result<Vec<Record>, Unrepresentable> {
        match self.version.policy.rule_at(index) {
            Some(rule) => self.records_of(rule.name, rule.kind),
            None => Ok(Vec::new()),
        }
    }

    /// The records of a listed `name` of `kind` (canonical form, no final
    /// dot): the name, and for `subtree` its wildcard, each with every
    /// record of the redirect.
    pub fn records_of(&self, name: &str, kind: MatchKind) -> Result<Vec<Record>, Unrepresentable> {
        let too_long = || Unrepresentable(name.to_owned());
        let owner = Name::from_ascii(name)
            .and_then(|n| n.append_domain(&self.apex))
            .map_err(|_| too_long())?;
        let mut owners = vec![owner];
        if kind == MatchKind::Subtree {
            let wildcard = Name::from_ascii("*")
                .and_then(|w| w.append_name(&owners[0]))
                .map_err(|_| too_long())?;
            owners.push(wildcard);
        }
        let ttl = self.version.redirect.ttl;
        Ok(owners
            .iter()
            .flat_map(|o| {
                self.rdata
                    .iter()
                    .map(move |d| Record::from_rdata(o.clone(), ttl, d.clone()))
            })
            .collect())
    }

    /// Every record of the zone, the apex first, the SOA not repeated at
    /// the end (for tests and small zones: a transfer streams them).
    pub fn all_records(&self) -> (Vec<Record>, Vec<Unrepresentable>) {
        let mut records = vec![self.soa(), self.ns()];
        let mut left_out = Vec::new();
        for i in 0..self.entries() {
            match self.records_at(i) {
                Ok(r) => records.extend(r),
                Err(u) => left_out.push(u),
            }
        }
        (records, left_out)
    }
}

/// What changed from one zone version to the next, for IXFR (RFC 1995).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    /// The SOA serial it starts from.
    pub from: u32,
    /// The SOA serial it leads to.
    pub to: u32,
    /// Entries whose records are deleted (name, kind).
    pub removed: Vec<(String, MatchKind)>,
    /// Entries whose records are added.
    pub added: Vec<(String, MatchKind)>,
}

impl Diff {
    /// The difference between two lists, entry by entry: a name listed in
    /// both with another match kind is removed then added.
    pub fn between(old: &Policy, new: &Policy, from: u32, to: u32) -> Diff {
        let mut removed = Vec::new();
        let mut added = Vec::new();
        for r in new.rules() {
            match old.get(r.name) {
                Some(o) if o.kind == r.kind => {}
                Some(o) => {
                    removed.push((o.name.to_owned(), o.kind));
                    added.push((r.name.to_owned(), r.kind));
                }
                None => added.push((r.name.to_owned(), r.kind)),
            }
        }
        for o in old.rules() {
            if new.get(o.name).is_none() {
                removed.push((o.name.to_owned(), o.kind));
            }
        }
        Diff {
            from,
            to,
            removed,
            added,
        }
    }

    /// Names it holds (its weight in the history).
    pub fn names(&self) -> usize {
        self.removed.len() + self.added.len()
    }
}

/// The differences of the last versions of a zone, oldest first, each
/// leading to the next: bounded by [`HISTORY_VERSIONS`] and
/// [`HISTORY_NAMES`].
#[derive(Debug, Clone, Default)]
pub struct History {
    diffs: VecDeque<Arc<Diff>>,
    names: usize,
}

impl History {
    /// Add the newest difference, dropping the oldest beyond the bounds.
    pub fn push(&mut self, diff: Diff) {
        self.names += diff.names();
        self.diffs.push_back(Arc::new(diff));
        while self.diffs.len() > HISTORY_VERSIONS
            || (self.names > HISTORY_NAMES && !self.diffs.is_empty())
        {
            if let Some(d) = self.diffs.pop_front() {
                self.names -= d.names();
            }
        }
    }

    /// The differences from serial `from` to the newest version, if the
    /// history reaches back to `from` (none when it does not: the client
    /// gets the whole zone).
    pub fn since(&self, from: u32) -> Option<Vec<Arc<Diff>>> {
        let start = self.diffs.iter().position(|d| d.from == from)?;
        Some(self.diffs.iter().skip(start).cloned().collect())
    }

    /// Forget everything (the records of every name changed, e.g. another
    /// redirect: only a full transfer is right).
    pub fn clear(&mut self) {
        self.diffs.clear();
        self.names = 0;
    }

    /// Versions held.
    pub fn len(&self) -> usize {
        self.diffs.len()
    }

    /// True when no difference is held.
    pub fn is_empty(&self) -> bool {
        self.diffs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::list::List;
    use std::path::Path;

    fn policy(serial: u64, entries: &[(&str, &str)]) -> Arc<Policy> {
        let mut t = format!(
            "#rempart-list v1\nissuer: TEST\nserial: {serial}\nissued: 2026-01-01T00:00:00Z\nexpires: 2099-01-01T00:00:00Z\n\nname\tmatch\tcategory\treference\tadded\n"
        );
        for (name, kind) in entries {
            t.push_str(&format!("{name}\t{kind}\tterrorism\tREF\t2026-01-01\n"));
        }
        let list = List::parse(t.as_bytes(), Path::new("t")).unwrap();
        Arc::new(Policy::compile(&list, [0; 32]))
    }

    fn zone(action: Action, entries: &[(&str, &str)]) -> Zone {
        let suffix = Name::from_ascii("rpz.rempart.").unwrap();
        Zone::new(
            zone_name("main", &suffix).unwrap(),
            7,
            RpzVersion {
                serial: 7,
                digest: [0; 32],
                policy: policy(7, entries),
                redirect: Redirect { action, ttl: 60 },
            },
        )
    }

    fn lines(records: &[Record]) -> Vec<String> {
        records
            .iter()
            .map(|r| format!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data))
            .collect()
    }

    #[test]
    fn subtree_gives_the_name_and_its_wildcard_exact_the_name_only() {
        let z = zone(
            Action::Addresses {
                ipv4: vec![Ipv4Addr::new(192, 0, 2, 80)],
                ipv6: vec!["2001:db8::80".parse().unwrap()],
            },
            &[("bad.test", "subtree"), ("host.test", "exact")],
        );
        let (records, left_out) = z.all_records();
        assert!(left_out.is_empty());
        assert_eq!(
            lines(&records),
            [
                "main.rpz.rempart. 60 SOA localhost. hostmaster.main.rpz.rempart. 7 300 60 2592000 60",
                "main.rpz.rempart. 60 NS localhost.",
                "bad.test.main.rpz.rempart. 60 A 192.0.2.80",
                "bad.test.main.rpz.rempart. 60 AAAA 2001:db8::80",
                "*.bad.test.main.rpz.rempart. 60 A 192.0.2.80",
                "*.bad.test.main.rpz.rempart. 60 AAAA 2001:db8::80",
                "host.test.main.rpz.rempart. 60 A 192.0.2.80",
                "host.test.main.rpz.rempart. 60 AAAA 2001:db8::80",
            ]
        );
    }

    #[test]
    fn cname_and_nxdomain_actions_are_cname_records() {
        let info = Name::from_ascii("info.block.test.").unwrap();
        let z = zone(Action::Cname(info), &[("bad.test", "exact")]);
        assert_eq!(
            lines(&z.records_at(0).unwrap()),
            ["bad.test.main.rpz.rempart. 60 CNAME info.block.test."]
        );
        let z = zone(Action::NxDomain, &[("bad.test", "subtree")]);
        assert_eq!(
            lines(&z.records_at(0).unwrap()),
            [
                "bad.test.main.rpz.rempart. 60 CNAME .",
                "*.bad.test.main.rpz.rempart. 60 CNAME .",
            ]
        );
    }

    #[test]
    fn a_name_too_long_under_the_apex_is_reported_not_truncated() {
        // 247 characters: a valid list entry, 264 under the apex.
        let long = format!(
            "{}.{}.{}.{}.test",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(50)
        );
        let z = zone(
            Action::NxDomain,
            &[(&long, "subtree"), ("ok.test", "exact")],
        );
        let (records, left_out) = z.all_records();
        assert_eq!(left_out, [Unrepresentable(long)]);
        assert_eq!(records.len(), 3);
    }

    #[test]
    fn zone_serial_is_the_list_serial_mod_2_32_unless_not_newer() {
        assert_eq!(zone_serial(2026120301, None), 2026120301);
        assert_eq!(zone_serial(2026120302, Some(2026120301)), 2026120302);
        // 2^32 + 5 maps to 5, which is not newer than 2026120302: bumped.
        assert_eq!(zone_serial((1 << 32) + 5, Some(2026120302)), 2026120303);
        // Sequence space wraps: 3 is newer than 0xffff_fff0.
        assert_eq!(zone_serial(3, Some(0xffff_fff0)), 3);
        // The bump wraps too.
        assert_eq!(zone_serial(1, Some(u32::MAX)), 1);
        assert_eq!(zone_serial(5, Some(u32::MAX - 2)), 5);
        assert_eq!(
            zone_serial(0x8000_0000, Some(0)),
            1,
            "2^31 apart: undefined, bumped"
        );
        assert!(serial_greater(0, u32::MAX));
        assert!(!serial_greater(7, 7));
    }

    #[test]
    fn diff_names_removed_added_and_kind_changes() {
        let old = policy(
            1,
            &[
                ("a.test", "subtree"),
                ("b.test", "exact"),
                ("c.test", "exact"),
            ],
        );
        let new = policy(
            2,
            &[
                ("a.test", "subtree"),
                ("b.test", "subtree"),
                ("d.test", "exact"),
            ],
        );
        let d = Diff::between(&old, &new, 1, 2);
        assert_eq!(
            d.removed,
            [
                ("b.test".to_owned(), MatchKind::Exact),
                ("c.test".to_owned(), MatchKind::Exact)
            ]
        );
        assert_eq!(
            d.added,
            [
                ("b.test".to_owned(), MatchKind::Subtree),
                ("d.test".to_owned(), MatchKind::Exact)
            ]
        );
    }

    #[test]
    fn history_is_bounded_and_answers_only_from_a_known_serial() {
        let mut h = History::default();
        for s in 0..20u32 {
            h.push(Diff {
                from: s,
                to: s + 1,
                removed: vec![],
                added: vec![("x.test".into(), MatchKind::Exact)],
            });
        }
        assert_eq!(h.len(), HISTORY_VERSIONS);
        assert!(h.since(3).is_none(), "dropped");
        let chain = h.since(15).unwrap();
        assert_eq!(
            chain.iter().map(|d| d.from).collect::<Vec<_>>(),
            [15, 16, 17, 18, 19]
        );
        assert!(h.since(20).is_none(), "the current serial has no diff");
    }
}
