//! `rempart list inspect --config FILE NAME`: which list and entry of a
//! resolver decide a name, and why (precedence, most specific entry,
//! protected names), as the resolver's snapshot would decide it.
//!
//! Each list is read as the resolver would enforce it after a restart: the
//! list kept in its state directory (the last one applied), else its file
//! (said "not yet applied"). The signatures are not checked here (`rempart
//! list verify` does that); the verdict is the resolver's own code's
//! ([`crate::policy::Snapshot::verdict`]).

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use super::{EXIT_FAILURE, EXIT_OK, EXIT_REFUSED, EXIT_USAGE};
use crate::config::{Action, Config, ListSpec};
use crate::list::format::canonical_name;
use crate::list::{List, MatchKind, digest};
use crate::policy::{Policy, Snapshot};

/// Where a list judged here comes from.
enum Source {
    /// The list kept in the state directory: the one in force.
    Kept,
    /// The list file, when nothing is kept: not yet applied.
    File,
    /// Neither could be read: the list has nothing in force.
    None(String),
}

/// Print which list and entry decide `name` under the config `file`.
pub fn decide(file: &Path, name: &str) -> ExitCode {
    let config = match Config::load(file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_REFUSED);
        }
    };
    let name = match canonical_name(name) {
        Ok(n) => n.into_owned(),
        Err(e) => {
            eprintln!("rempart list inspect: {name:?} is not a domain name: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let mut policies = Vec::with_capacity(config.lists.len());
    let mut sources = Vec::with_capacity(config.lists.len());
    for spec in &config.lists {
        let (policy, source) = read_list(spec);
        policies.push(Arc::new(policy.labelled(Arc::from(spec.id.as_str()))));
        sources.push(source);
    }
    let snapshot = Snapshot::of(policies);
    let Ok(query) = hickory_proto::rr::Name::from_ascii(format!("{name}.")) else {
        eprintln!("rempart list inspect: {name:?} is not a domain name");
        return ExitCode::from(EXIT_USAGE);
    };
    let hit = snapshot.verdict(&query);
    let mut out = format!("{name}\n");
    for (rank, (spec, policy)) in config.lists.iter().zip(snapshot.lists()).enumerate() {
        let from = match &sources[rank] {
            Source::Kept => format!("serial {} in force", policy.info().map_or(0, |i| i.serial)),
            Source::File => format!(
                "serial {} from {}, not yet applied",
                policy.info().map_or(0, |i| i.serial),
                spec.origin.label().display()
            ),
            Source::None(why) => format!("nothing in force: {why}"),
        };
        // The most specific entry of this list alone.
        let own = Snapshot::of(vec![Arc::clone(policy)]);
        let line = match own.verdict(&query) {
            Some(h) => {
                let mark = match hit {
                    Some(d) if d.list == rank => "  <- decides",
                    Some(_) => "  (an earlier list decides)",
                    None => "",
                };
                format!(
                    "{} {} {} {}{mark}",
                    h.rule.name,
                    kind(h.rule.kind),
                    h.rule.category,
                    h.rule.reference()
                )
            }
            None => "no entry".to_owned(),
        };
        let _ = writeln!(out, "  {}. list {} ({from}): {line}", rank + 1, spec.id);
    }
    match hit {
        Some(h) => {
            let spec = &config.lists[h.list];
            let _ = writeln!(
                out,
                "decided by list {} (the first list in the config with a matching entry), entry {} ({}: {}): {}",
                spec.id,
                h.rule.name,
                kind(h.rule.kind),
                if h.rule.kind == MatchKind::Exact {
                    "this name only"
                } else {
                    "the name and every name below it; the most specific entry of the list"
                },
                answer(spec)
            );
        }
        None => out.push_str("not listed: forwarded upstream\n"),
    }
    if let Some(why) = protection(&name, &config.list.protected) {
        let _ = writeln!(out, "{why}");
    }
    print!("{out}");
    if sources.iter().any(|s| matches!(s, Source::None(_))) {
        return ExitCode::from(EXIT_FAILURE);
    }
    ExitCode::from(EXIT_OK)
}

/// The list `spec` as the resolver would enforce it, compiled.
fn read_list(spec: &ListSpec) -> (Policy, Source) {
    let kept = crate::list::state::load(&spec.state_dir);
    let (bytes, file, source) = match kept {
        Ok(Some(k)) => (
            k.list,
            crate::list::state::path(&spec.state_dir),
            Source::Kept,
        ),
        Ok(None) | Err(_) => match &spec.origin {
            crate::config::ListOrigin::File(path) => match std::fs::read(path) {
                Ok(b) => (b, path.clone(), Source::File),
                Err(e) => {
                    let why = format!("no kept list, {}: {e}", path.display());
                    return (Policy::empty(), Source::None(why));
                }
            },
            // Never fetched here: what the resolver fetched is kept.
            crate::config::ListOrigin::Web(w) => {
                let why = format!("no kept list yet (fetched from {})", w.url);
                return (Policy::empty(), Source::None(why));
            }
        },
    };
    match List::parse(&bytes, &file) {
        Ok(list) => (Policy::compile(&list, digest(&bytes)), source),
        Err(e) => (
            Policy::empty(),
            Source::None(format!("{}: {e}", file.display())),
        ),
    }
}

fn kind(k: MatchKind) -> &'static str {
    match k {
        MatchKind::Subtree => "subtree",
        MatchKind::Exact => "exact",
    }
}

/// What the list `spec` answers for the names it decides.
fn answer(spec: &ListSpec) -> String {
    let r = &spec.redirect;
    match spec.action {
        Action::Nxdomain => "NXDOMAIN with EDE 16".to_owned(),
        Action::Redirect => {
            let mut to: Vec<String> = Vec::new();
            if let Some(c) = &r.cname {
                to.push(format!("CNAME {c}"));
            }
            to.extend(r.ipv4.iter().map(|a| format!("A {a}")));
            to.extend(r.ipv6.iter().map(|a| format!("AAAA {a}")));
            format!("redirect to {} (TTL {}) with EDE 16", to.join(", "), r.ttl)
        }
    }
}

/// Why `name` may not be blocked, or only partly, if so.
fn protection(name: &str, protected: &[String]) -> Option<String> {
    let under = |n: &str, p: &str| {
        n.len() > p.len() && n.ends_with(p) && n.as_bytes()[n.len() - p.len() - 1] == b'.'
    };
    if let Some(p) = protected.iter().find(|p| *p == name || under(p, name)) {
        return Some(format!(
            "protected: {name} is or is above the protected name {p}: every list with an entry for it is refused, so no list can decide it"
        ));
    }
    protected
        .iter()
        .find(|p| under(name, p))
        .map(|p| format!("under the protected name {p}: only an entry below {p} can decide it"))
}
