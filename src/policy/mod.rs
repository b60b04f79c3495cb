//! Deciding: an immutable snapshot compiled from a verified list.
//!
//! The query path holds the current [`Policy`] through an `ArcSwap` and asks
//! [`Policy::verdict`] for each name; only the reload path builds a new one.

use hickory_proto::rr::Name;

use crate::list::{List, MatchKind};

/// The entry that matched a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule<'a> {
    /// The entry's name (canonical form).
    pub name: &'a str,
    /// Its match kind.
    pub kind: MatchKind,
    /// Its category.
    pub category: &'a str,
    /// The authority's reference of the decision.
    pub reference: &'a str,
}

/// Identity of the list a snapshot was compiled from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListInfo {
    /// Header `issuer`.
    pub issuer: String,
    /// Header `serial`.
    pub serial: u64,
    /// SHA-256 of the signed bytes.
    pub digest: [u8; 32],
    /// Header `issued`.
    pub issued: time::OffsetDateTime,
    /// Header `expires`.
    pub expires: time::OffsetDateTime,
}

/// A compiled, immutable list: `verdict(name)` without allocation.
#[derive(Debug, Default)]
pub struct Policy {
    info: Option<ListInfo>,
}

impl Policy {
    /// A policy that lists nothing (no list in force).
    pub fn empty() -> Policy {
        Policy::default()
    }

    /// Compile a verified list.
    pub fn compile(list: &List, digest: [u8; 32]) -> Policy {
        let _ = (list, digest);
        unimplemented!("Policy::compile")
    }

    /// The list this snapshot enforces, `None` for the empty policy.
    pub fn info(&self) -> Option<&ListInfo> {
        self.info.as_ref()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        0
    }

    /// True when nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry that redirects `name`, if any: an exact entry equal to the
    /// name, else the closest subtree entry equal to the name or one of its
    /// ancestors. Label-wise and ASCII case-insensitive.
    pub fn verdict(&self, name: &Name) -> Option<Rule<'_>> {
        let _ = name;
        None
    }
}
