//! Several resolvers' trails in one report (`rempart audit report DIR
//! DIR...`): per list version, when each resolver applied it, which did
//! not, and the slowest delay from `issued`. Each trail's own report
//! ([`super::report`]) is built first, its chain checked.

use std::collections::BTreeMap;

use serde::Serialize;

use super::report::{LEGEND, Obligation, Report, csv_field, duration};

/// One resolver's trail in a fleet report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetResolver {
    /// The trail's directory, as given.
    pub trail: String,
    /// The host name its `process` records give (or the directory when
    /// they name none: trails written before schema version 2).
    pub host: String,
    /// Its chain, checked before its figures.
    pub chain: String,
}

/// When one resolver applied a list version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetApplied {
    /// The resolver ([`FleetResolver::host`]).
    pub host: String,
    /// When it applied the version.
    pub applied: String,
    /// Seconds from `issued` to then (0 if `issued` is later).
    pub delay_seconds: i64,
    /// Whether the 24-hour obligation applies and was met there.
    pub obligation: Obligation,
}

/// One list version across the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetVersion {
    /// The list.
    pub list: String,
    /// Serial.
    pub serial: u64,
    /// Digest of the signed list.
    pub digest: String,
    /// `issued`.
    pub issued: String,
    /// Each resolver that applied it, in the order of the trails given.
    pub applied: Vec<FleetApplied>,
    /// Resolvers whose trail does not show it applied in the period.
    pub not_applied: Vec<String>,
    /// The slowest resolver's delay from `issued`, seconds.
    pub slowest_delay_seconds: i64,
    /// That resolver.
    pub slowest: String,
    /// The obligation over the fleet: late if one resolver was late.
    pub obligation: Obligation,
}

/// Several resolvers' trails together: per list version, when each
/// resolver applied it and the slowest delay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fleet {
    /// The resolvers, in the order given.
    pub resolvers: Vec<FleetResolver>,
    /// The versions, oldest serial first.
    pub versions: Vec<FleetVersion>,
}

/// The fleet view of `reports` (trail directory, its report).
pub fn fleet(reports: &[(String, Report)]) -> Fleet {
    let hosts: Vec<&str> = reports
        .iter()
        .map(|(trail, r)| r.host.as_deref().unwrap_or(trail))
        .collect();
    // Two trails of one host (two instances on a machine) are told apart
    // by their directory.
    let resolvers: Vec<FleetResolver> = reports
        .iter()
        .zip(&hosts)
        .map(|((trail, r), &host)| FleetResolver {
            trail: trail.clone(),
            host: if hosts.iter().filter(|&&h| h == host).count() > 1 {
                format!("{host} ({trail})")
            } else {
                host.to_owned()
            },
            chain: r.chain.summary(),
        })
        .collect();
    let mut by_version: BTreeMap<(String, u64, String), FleetVersion> = BTreeMap::new();
    for (resolver, (_, r)) in resolvers.iter().zip(reports) {
        for v in &r.versions {
            let entry = by_version
                .entry((v.list.clone(), v.serial, v.digest.clone()))
                .or_insert_with(|| FleetVersion {
                    list: v.list.clone(),
                    serial: v.serial,
                    digest: v.digest.clone(),
                    issued: v.issued.clone(),
                    applied: Vec::new(),
                    not_applied: Vec::new(),
                    slowest_delay_seconds: 0,
                    slowest: String::new(),
                    obligation: Obligation::FirstList,
                });
            // A version applied again (a restart) counts once: the first time.
            if entry.applied.iter().any(|a| a.host == resolver.host) {
                continue;
            }
            entry.applied.push(FleetApplied {
                host: resolver.host.clone(),
                applied: v.applied.clone(),
                delay_seconds: v.delay_seconds,
                obligation: v.obligation,
            });
        }
    }
    let mut versions: Vec<FleetVersion> = by_version.into_values().collect();
    for v in &mut versions {
        v.not_applied = resolvers
            .iter()
            .filter(|r| !v.applied.iter().any(|a| a.host == r.host))
            .map(|r| r.host.clone())
            .collect();
        if let Some(slowest) = v.applied.iter().max_by_key(|a| a.delay_seconds) {
            v.slowest_delay_seconds = slowest.delay_seconds;
            v.slowest.clone_from(&slowest.host);
        }
        // Late if any resolver was late; met if every resolver that owed a
        // delay met it; a first list everywhere owes none.
        v.obligation = v
            .applied
            .iter()
            .map(|a| a.obligation)
            .max_by_key(|o| match o {
                Obligation::Late => 3,
                Obligation::Met => 2,
                Obligation::IssuedLater => 1,
                Obligation::FirstList => 0,
            })
            .unwrap_or(Obligation::FirstList);
    }
    Fleet {
        resolvers,
        versions,
    }
}

/// The fleet view as text: the resolvers, then one block per version.
pub fn text(f: &Fleet) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "Rempart audit report for {} resolvers (each trail's own report follows)",
        f.resolvers.len()
    );
    let _ = writeln!(o, "\nResolvers (each chain checked first):");
    for r in &f.resolvers {
        let _ = writeln!(o, "  {:<24} {}  [{}]", r.host, r.trail, r.chain);
    }
    let _ = writeln!(
        o,
        "\nList versions across the fleet (the slowest resolver decides whether the 24 hours were met):"
    );
    for v in &f.versions {
        let _ = writeln!(
            o,
            "\n  list {}  serial {}  issued {}  slowest: {} on {}  in time: {}",
            v.list,
            v.serial,
            v.issued,
            duration(v.slowest_delay_seconds),
            v.slowest,
            v.obligation.text()
        );
        for a in &v.applied {
            let _ = writeln!(
                o,
                "    {:<24} applied {}  delay {}  {}",
                a.host,
                a.applied,
                duration(a.delay_seconds),
                a.obligation.text()
            );
        }
        for h in &v.not_applied {
            let _ = writeln!(o, "    {h:<24} NOT APPLIED in the period");
        }
    }
    let _ = writeln!(o, "\n{LEGEND}");
    o
}

/// The fleet view as CSV: one row per version and resolver (`applied`
/// empty where the resolver's trail does not show it).
pub fn csv(f: &Fleet) -> String {
    let mut o = String::from(
        "serial,digest,issued,host,trail,applied,delay_seconds,within_24h,slowest_delay_seconds,slowest,fleet_within_24h,list\n",
    );
    for v in &f.versions {
        for r in &f.resolvers {
            let a = v.applied.iter().find(|a| a.host == r.host);
            let cells = [
                v.serial.to_string(),
                v.digest.clone(),
                v.issued.clone(),
                r.host.clone(),
                r.trail.clone(),
                a.map(|a| a.applied.clone()).unwrap_or_default(),
                a.map(|a| a.delay_seconds.to_string()).unwrap_or_default(),
                a.map(|a| a.obligation.csv().to_owned())
                    .unwrap_or_else(|| "not_applied".to_owned()),
                v.slowest_delay_seconds.to_string(),
                v.slowest.clone(),
                v.obligation.csv().to_owned(),
                v.list.clone(),
            ];
            let cells: Vec<String> = cells.iter().map(|c| csv_field(c)).collect();
            o.push_str(&cells.join(","));
            o.push('\n');
        }
    }
    o
}
