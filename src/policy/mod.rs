//! Deciding: an immutable snapshot compiled from the verified lists.
//!
//! Each list compiles to a [`Policy`]; the query path holds the current
//! [`Snapshot`] of every list, in precedence order, through an `ArcSwap`
//! and asks [`Snapshot::verdict`] for each name: the first list with a
//! matching entry decides, within it the most specific entry (issue 17).
//! Only the reload path builds a new one, off the query path: a new list
//! compiles its own `Policy` and the new snapshot shares the others'.
//!
//! # Design, for a million entries
//!
//! - Entry names live in one byte arena (dotted, lowercase), references in a
//!   second one; each entry is a 16-byte record of offsets, its match kind and
//!   an index into the interned categories.
//! - A [`hashbrown::HashTable`] maps a 64-bit hash of each name to its entry
//!   index (4 bytes a slot). The hash is computed label by label *from the
//!   right* (`test`, then `bad.test`, then `www.bad.test`), so hashing a query
//!   name once, right to left, yields the hash of every one of its suffixes
//!   without hashing any byte twice.
//! - A lookup walks the labels into fixed-size stack arrays (a name has at
//!   most 127 labels), then probes from the whole name toward the top-level
//!   label: the first hit is the most specific entry. A hash hit is always
//!   confirmed against the entry's real name, label by label, ignoring ASCII
//!   case: a legal block is never decided on a hash alone.
//! - `verdict` allocates nothing and takes no lock.
//!
//! The hash is seeded per process (from the standard library's random
//! `RandomState`), so query names chosen by a client cannot be crafted to
//! collide in advance; a collision would only cost one more comparison.
//! Every list of the process shares the seed, so that a query name hashed
//! once serves the probe of every list.
//!
//! Measured (`cargo bench --bench policy`, 2-core machine, 1,000,000 entries
//! of 2-4 labels): see the README's Performance section for the figures.

use std::hash::{BuildHasher, Hasher};

use hashbrown::HashTable;
use hickory_proto::rr::Name;

use crate::list::{List, MatchKind};

/// The entry that matched a name.
#[derive(Clone, Copy)]
pub struct Rule<'a> {
    /// The entry's name (canonical form).
    pub name: &'a str,
    /// Its match kind.
    pub kind: MatchKind,
    /// Its category.
    pub category: &'a str,
    /// Its index in the snapshot ([`Policy::rule_at`]).
    pub index: u32,
    /// The reference arena and the reference's place in it: sliced only
    /// when asked ([`Rule::reference`]). The query path never needs the
    /// reference, and slicing it would read (check the UTF-8 boundaries of)
    /// a cache line of its own.
    references: &'a str,
    ref_off: u32,
    ref_len: u32,
}

impl<'a> Rule<'a> {
    /// The authority's reference of the decision.
    pub fn reference(&self) -> &'a str {
        &self.references[self.ref_off as usize..][..self.ref_len as usize]
    }

    /// True if `other` blocks the same way for the same decision: same
    /// match kind, category and reference (the name aside).
    pub fn same_terms(&self, other: &Rule<'_>) -> bool {
        self.kind == other.kind
            && self.category == other.category
            && self.reference() == other.reference()
    }
}

/// What a new list changed, name by name, from the one before. Entries
/// are held by index (4 bytes, where a [`Rule`] is 64: a first list of a
/// million entries is a million added) and read as rules when asked.
pub struct Changes<'a> {
    new: &'a Policy,
    old: &'a Policy,
    added: Vec<u32>,
    removed: Vec<u32>,
    changed: Vec<(u32, u32)>,
}

impl<'a> Changes<'a> {
    /// Entries of the new list whose name the old one did not list.
    pub fn added(&self) -> impl Iterator<Item = Rule<'a>> + '_ {
        self.added.iter().map(|&i| self.new.rule(i))
    }

    /// Entries of the old list whose name the new one does not list.
    pub fn removed(&self) -> impl Iterator<Item = Rule<'a>> + '_ {
        self.removed.iter().map(|&i| self.old.rule(i))
    }

    /// Names both list with another match kind, category or reference:
    /// (the new entry, the old one).
    pub fn changed(&self) -> impl Iterator<Item = (Rule<'a>, Rule<'a>)> + '_ {
        self.changed
            .iter()
            .map(|&(n, o)| (self.new.rule(n), self.old.rule(o)))
    }

    /// How many were added, removed and changed.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.added.len(), self.removed.len(), self.changed.len())
    }
}

impl std::fmt::Debug for Changes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changes")
            .field("added", &self.added().collect::<Vec<_>>())
            .field("removed", &self.removed().collect::<Vec<_>>())
            .field("changed", &self.changed().collect::<Vec<_>>())
            .finish()
    }
}

// By hand: the derived ones would compare and print the whole reference
// arena (tens of MB at a million entries) instead of the one reference.
impl PartialEq for Rule<'_> {
    fn eq(&self, other: &Self) -> bool {
        (
            self.name,
            self.kind,
            self.category,
            self.reference(),
            self.index,
        ) == (
            other.name,
            other.kind,
            other.category,
            other.reference(),
            other.index,
        )
    }
}

impl Eq for Rule<'_> {}

impl std::fmt::Debug for Rule<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("category", &self.category)
            .field("reference", &self.reference())
            .field("index", &self.index)
            .finish()
    }
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
    /// The same, in hex (for logs and audit records, made once).
    pub digest_hex: String,
    /// Header `issued`.
    pub issued: time::OffsetDateTime,
    /// Header `expires`.
    pub expires: time::OffsetDateTime,
}

/// One compiled entry: offsets into the arenas (12 bytes: a million
/// entries take 11.4 MiB). References are written to their arena in entry
/// order, so a reference ends where the next entry's begins: its length is
/// not kept (it is only read off the query path, by [`Rule::reference`]).
#[derive(Debug, Clone, Copy)]
struct Compiled {
    name_off: u32,
    ref_off: u32,
    category: u16,
    name_len: u8,
    exact: bool,
}

/// Largest number of labels in a DNS name (255 octets on the wire).
const MAX_LABELS: usize = 128;

/// A compiled, immutable list: `verdict(name)` without allocation.
#[derive(Debug, Default)]
pub struct Policy {
    info: Option<ListInfo>,
    /// Entry names, dotted, lowercase ASCII (a `String`: slices are `&str`
    /// with no UTF-8 check on the query path).
    names: String,
    references: String,
    categories: Vec<String>,
    entries: Vec<Compiled>,
    table: HashTable<u32>,
    seed: u64,
    /// Unique per compiled snapshot (0 for the empty policy): what answers
    /// built under this snapshot are tagged with.
    generation: u64,
    /// The id of the list this snapshot enforces (`main` until the
    /// admission path labels it): audit records name it.
    list: std::sync::Arc<str>,
}

/// The hash seed of every snapshot of this process: one hash pass over a
/// query name serves every list's table ([`Snapshot::verdict`]). Random
/// per process, so that names cannot be crafted to collide in advance.
fn process_seed() -> u64 {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SEED.get_or_init(|| {
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
            | 1
    })
}

/// A query name cut into labels, with the hash of each of its suffixes:
/// made once per name, probed against each list in turn.
struct Hashed<'l> {
    labels: [&'l [u8]; MAX_LABELS],
    hashes: [u64; MAX_LABELS],
    n: usize,
}

impl<'l> Hashed<'l> {
    /// From the labels given right to left; `None` past [`MAX_LABELS`].
    #[inline]
    fn new(rev: impl Iterator<Item = &'l [u8]>) -> Option<Hashed<'l>> {
        let mut h = Hashed {
            labels: [&[]; MAX_LABELS],
            hashes: [0u64; MAX_LABELS],
            n: 0,
        };
        // Right to left: hashes[k] is the hash of the suffix of k+1 labels.
        let mut state = process_seed();
        for label in rev {
            if h.n == MAX_LABELS {
                return None;
            }
            state = absorb_label(state, label);
            h.labels[MAX_LABELS - 1 - h.n] = label;
            h.hashes[h.n] = finish(state);
            h.n += 1;
        }
        Some(h)
    }

    /// From a name in wire form (no compression pointer); `None` for a
    /// malformed name.
    #[inline]
    fn from_wire(wire: &'l [u8]) -> Option<Hashed<'l>> {
        let mut labels: [&[u8]; MAX_LABELS] = [&[]; MAX_LABELS];
        let mut n = 0;
        let mut at = 0;
        loop {
            let len = usize::from(*wire.get(at)?);
            if len == 0 {
                break;
            }
            if len > 63 || n == MAX_LABELS {
                return None;
            }
            labels[n] = wire.get(at + 1..at + 1 + len)?;
            n += 1;
            at += 1 + len;
        }
        Hashed::new(labels[..n].iter().rev().copied())
    }
}

/// The next [`Policy::generation`].
static NEXT_GENERATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// FNV-1a over one label, lowercased, continuing from `state`, with a
/// separator so that label boundaries count (`ab.c` differs from `a.bc`).
#[inline]
fn absorb_label(mut state: u64, label: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    for &b in label {
        state ^= u64::from(b.to_ascii_lowercase());
        state = state.wrapping_mul(PRIME);
    }
    state ^= 0x2e;
    state.wrapping_mul(PRIME)
}

/// Spread the bits (murmur3's fmix64): hashbrown uses the top 7 bits as tags.
#[inline]
fn finish(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

impl Policy {
    /// A policy that lists nothing (no list in force).
    pub fn empty() -> Policy {
        Policy::default()
    }

    /// Compile a verified list. Names are unique in a parsed list; should a
    /// name appear twice, the first entry wins.
    pub fn compile(list: &List, digest: [u8; 32]) -> Policy {
        let mut b = PolicyBuilder::with_capacity(list.entries.len());
        for e in &list.entries {
            b.push(&e.name, e.kind, &e.category, &e.reference);
        }
        b.finish(&list.header, digest)
    }

    fn hash_dotted(&self, name: &[u8]) -> u64 {
        Self::hash_dotted_with(self.seed, name)
    }

    fn hash_dotted_with(seed: u64, name: &[u8]) -> u64 {
        let mut state = seed;
        for label in name.rsplit(|&b| b == b'.') {
            state = absorb_label(state, label);
        }
        finish(state)
    }

    /// Tells snapshots apart: two snapshots with the same generation give
    /// the same verdicts (every empty policy has generation 0).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The list this snapshot enforces, `None` for the empty policy.
    pub fn info(&self) -> Option<&ListInfo> {
        self.info.as_ref()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes held by the snapshot's arenas and table (not counting the
    /// small fixed part), for the memory figures.
    pub fn heap_bytes(&self) -> usize {
        self.names.capacity()
            + self.references.capacity()
            + self.entries.capacity() * std::mem::size_of::<Compiled>()
            + self.table.capacity() * (std::mem::size_of::<u32>() + 1)
            + self.categories.iter().map(String::capacity).sum::<usize>()
    }

    fn rule(&self, index: u32) -> Rule<'_> {
        let c = &self.entries[index as usize];
        let name = &self.names[c.name_off as usize..][..usize::from(c.name_len)];
        Rule {
            name,
            kind: if c.exact {
                MatchKind::Exact
            } else {
                MatchKind::Subtree
            },
            category: &self.categories[usize::from(c.category)],
            index,
            references: &self.references,
            ref_off: c.ref_off,
            ref_len: self.ref_end(index) - c.ref_off,
        }
    }

    /// Where the reference of entry `index` ends in its arena: where the
    /// next entry's begins, or the arena's end.
    fn ref_end(&self, index: u32) -> u32 {
        match self.entries.get(index as usize + 1) {
            Some(next) => next.ref_off,
            None => self.references.len() as u32,
        }
    }

    /// The entry at `index` (from [`Rule::index`]).
    pub fn rule_at(&self, index: u32) -> Option<Rule<'_>> {
        ((index as usize) < self.entries.len()).then(|| self.rule(index))
    }

    /// The entry listed under exactly `name` (canonical: lowercase, no
    /// final dot), whatever its match kind.
    pub fn get(&self, name: &str) -> Option<Rule<'_>> {
        let name = name.as_bytes();
        let hash = self.hash_dotted(name);
        self.table
            .find(hash, |&i| {
                let c = &self.entries[i as usize];
                self.names.as_bytes()[c.name_off as usize..][..usize::from(c.name_len)]
                    .eq_ignore_ascii_case(name)
            })
            .map(|&i| self.rule(i))
    }

    /// Every entry, in list order.
    pub fn rules(&self) -> impl Iterator<Item = Rule<'_>> {
        (0..self.entries.len() as u32).map(|i| self.rule(i))
    }

    /// What changed from `old` to `self`, name by name ([`Changes`]).
    pub fn changes_from<'a>(&'a self, old: &'a Policy) -> Changes<'a> {
        let mut changes = Changes {
            new: self,
            old,
            added: Vec::new(),
            removed: Vec::new(),
            changed: Vec::new(),
        };
        for r in self.rules() {
            match old.get(r.name) {
                None => changes.added.push(r.index),
                Some(o) if !r.same_terms(&o) => changes.changed.push((r.index, o.index)),
                Some(_) => {}
            }
        }
        changes.removed = old
            .rules()
            .filter(|r| self.get(r.name).is_none())
            .map(|r| r.index)
            .collect();
        changes
    }

    /// True if entry `index` names exactly the labels `labels` (leftmost
    /// first), ignoring ASCII case.
    fn confirm(&self, index: u32, labels: &[&[u8]]) -> bool {
        let c = &self.entries[index as usize];
        let mut name = self.names.as_bytes()[c.name_off as usize..][..usize::from(c.name_len)]
            .split(|&b| b == b'.');
        for label in labels {
            match name.next() {
                Some(n) if n.eq_ignore_ascii_case(label) => {}
                _ => return false,
            }
        }
        name.next().is_none()
    }

    /// The entry that redirects `name`, if any: the entry for the name
    /// itself (either kind), else the closest `subtree` entry among its
    /// ancestors. Label-wise and ASCII case-insensitive; the root name
    /// matches nothing.
    pub fn verdict(&self, name: &Name) -> Option<Rule<'_>> {
        self.verdict_rev(name.iter().rev())
    }

    /// [`Policy::verdict`] for a name in DNS wire form (length-prefixed
    /// labels, ending with the root label, no compression pointer), as a
    /// query carries it; `None` as well for a malformed name.
    pub fn verdict_wire(&self, wire: &[u8]) -> Option<Rule<'_>> {
        if self.entries.is_empty() {
            return None;
        }
        self.probe(&Hashed::from_wire(wire)?)
    }

    /// The verdict for the name whose labels are given right to left.
    fn verdict_rev<'l>(&self, rev: impl Iterator<Item = &'l [u8]>) -> Option<Rule<'_>> {
        if self.entries.is_empty() {
            return None;
        }
        self.probe(&Hashed::new(rev)?)
    }

    /// The most specific entry of this list for the hashed name.
    #[inline]
    fn probe(&self, h: &Hashed<'_>) -> Option<Rule<'_>> {
        let n = h.n;
        let labels = &h.labels[MAX_LABELS - n..];
        // From the whole name toward the top-level label: most specific first.
        for k in (0..n).rev() {
            let suffix = &labels[n - 1 - k..];
            let whole = k == n - 1;
            if let Some(&index) = self.table.find(h.hashes[k], |&i| self.confirm(i, suffix))
                && (whole || !self.entries[index as usize].exact)
            {
                return Some(self.rule(index));
            }
        }
        None
    }

    /// The id of the list this snapshot enforces.
    pub fn list(&self) -> &str {
        if self.list.is_empty() {
            crate::config::MAIN_LIST
        } else {
            &self.list
        }
    }

    /// The same snapshot, enforcing list `id`.
    pub fn labelled(mut self, id: std::sync::Arc<str>) -> Policy {
        self.list = id;
        self
    }
}

/// The entry that decides a name, and the list it belongs to.
#[derive(Clone, Copy, Debug)]
pub struct Hit<'a> {
    /// The list's place in the precedence order (its index in
    /// [`Snapshot::lists`] and in the configuration).
    pub list: usize,
    /// The entry.
    pub rule: Rule<'a>,
}

/// The policy of every list together: what the query path loads, once per
/// query, from an `ArcSwap`. Each list keeps its own compiled [`Policy`]
/// (a reload of one list compiles that list only, and the new snapshot
/// shares the others' by reference); a query name is cut and hashed once
/// and probed against each list in precedence order: the first list with
/// a matching entry decides, and within a list the most specific entry.
#[derive(Debug, Default)]
pub struct Snapshot {
    lists: Vec<std::sync::Arc<Policy>>,
    /// Entries of every list together (the query path's first test).
    entries: usize,
    /// Unique per snapshot (0 when every list is empty): what answers built
    /// under it are tagged with, so that a change of any list invalidates
    /// them.
    generation: u64,
}

impl Snapshot {
    /// The lists `ids`, in this order, none in force yet.
    pub fn empty(ids: &[&str]) -> Snapshot {
        Snapshot {
            lists: ids
                .iter()
                .map(|id| std::sync::Arc::new(Policy::empty().labelled(std::sync::Arc::from(*id))))
                .collect(),
            entries: 0,
            generation: 0,
        }
    }

    /// A snapshot of these lists, in precedence order.
    pub fn of(lists: Vec<std::sync::Arc<Policy>>) -> Snapshot {
        let generation = if lists.iter().all(|l| l.generation() == 0) {
            0
        } else {
            NEXT_GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        };
        let entries = lists.iter().map(|l| l.len()).sum();
        Snapshot {
            lists,
            entries,
            generation,
        }
    }

    /// This snapshot with list `index` replaced by `policy` (the others
    /// shared, not copied).
    pub fn replaced(&self, index: usize, policy: std::sync::Arc<Policy>) -> Snapshot {
        let mut lists = self.lists.clone();
        if let Some(slot) = lists.get_mut(index) {
            *slot = policy;
        }
        Snapshot::of(lists)
    }

    /// The lists, in precedence order.
    pub fn lists(&self) -> &[std::sync::Arc<Policy>] {
        &self.lists
    }

    /// Tells snapshots apart (see [`Policy::generation`]).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Entries of every list together.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// True when no list lists anything.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The entry that decides `name`, and its list (see the type's
    /// documentation). Allocation-free.
    pub fn verdict(&self, name: &Name) -> Option<Hit<'_>> {
        if self.is_empty() {
            return None;
        }
        self.first(&Hashed::new(name.iter().rev())?)
    }

    /// [`Snapshot::verdict`] for a name in DNS wire form (see
    /// [`Policy::verdict_wire`]).
    pub fn verdict_wire(&self, wire: &[u8]) -> Option<Hit<'_>> {
        if self.is_empty() {
            return None;
        }
        self.first(&Hashed::from_wire(wire)?)
    }

    #[inline]
    fn first(&self, h: &Hashed<'_>) -> Option<Hit<'_>> {
        self.lists.iter().enumerate().find_map(|(list, p)| {
            if p.is_empty() {
                return None;
            }
            p.probe(h).map(|rule| Hit { list, rule })
        })
    }
}

/// Builds a [`Policy`] one entry at a time, so that a list can be compiled
/// while it is read (see `List::parse_each`), never held whole.
#[derive(Debug)]
pub struct PolicyBuilder {
    p: Policy,
    category_index: hashbrown::HashMap<String, u16>,
}

impl PolicyBuilder {
    /// A builder for the `entries` entries of a list file of `bytes`
    /// octets: the name and reference arenas are given room for the
    /// largest they can be (their text comes from the file), so they are
    /// never copied while growing. Room not written costs no memory (the
    /// pages are only address space until touched); a copy while growing
    /// held both copies at once.
    pub fn for_list(entries: usize, bytes: usize) -> PolicyBuilder {
        let mut b = PolicyBuilder::with_capacity(entries);
        b.p.names.reserve(bytes.min(entries.saturating_mul(254)));
        b.p.references
            .reserve(bytes.min(entries.saturating_mul(64)));
        b
    }

    /// A builder for about `entries` entries.
    pub fn with_capacity(entries: usize) -> PolicyBuilder {
        let seed = process_seed();
        PolicyBuilder {
            p: Policy {
                info: None,
                names: String::with_capacity(entries * 20),
                references: String::with_capacity(entries * 12),
                categories: Vec::new(),
                entries: Vec::with_capacity(entries),
                table: HashTable::with_capacity(entries),
                seed,
                generation: 0,
                list: std::sync::Arc::from(""),
            },
            category_index: hashbrown::HashMap::new(),
        }
    }

    /// Add an entry (`name` canonical: lowercase, no final dot). A name
    /// already added is ignored (the first entry wins).
    pub fn push(&mut self, name: &str, kind: MatchKind, category: &str, reference: &str) {
        let _ = self.insert(name, kind, category, reference);
    }

    /// [`Self::push`], telling a name already added: `Err` with the index
    /// of its entry (the list loader refuses a list that names one twice).
    pub fn insert(
        &mut self,
        name: &str,
        kind: MatchKind,
        category: &str,
        reference: &str,
    ) -> Result<(), u32> {
        let p = &mut self.p;
        let name = name.trim_end_matches('.').as_bytes();
        // Canonical names are ASCII (IDNs as punycode); anything else is
        // not a name a query can carry.
        if name.is_empty() || name.len() > usize::from(u8::MAX) || !name.is_ascii() {
            return Ok(());
        }
        let hash = p.hash_dotted(name);
        let (names, entries, seed) = (&p.names, &p.entries, p.seed);
        // One probe finds a duplicate or the free slot to fill.
        let slot = match p.table.entry(
            hash,
            |&i| {
                let c = &entries[i as usize];
                names.as_bytes()[c.name_off as usize..][..usize::from(c.name_len)]
                    .eq_ignore_ascii_case(name)
            },
            |&i| {
                let c = &entries[i as usize];
                Policy::hash_dotted_with(
                    seed,
                    &names.as_bytes()[c.name_off as usize..][..usize::from(c.name_len)],
                )
            },
        ) {
            hashbrown::hash_table::Entry::Occupied(o) => return Err(*o.get()),
            hashbrown::hash_table::Entry::Vacant(v) => v,
        };
        let category = match self.category_index.get(category) {
            Some(&i) => i,
            None => {
                p.categories.push(category.to_owned());
                let i = u16::try_from(p.categories.len() - 1).unwrap_or(u16::MAX);
                self.category_index.insert(category.to_owned(), i);
                i
            }
        };
        let mut cut = reference.len().min(usize::from(u16::MAX));
        while !reference.is_char_boundary(cut) {
            cut -= 1;
        }
        let reference = &reference[..cut];
        let compiled = Compiled {
            name_off: u32::try_from(p.names.len()).expect("name arena under 4 GiB"),
            name_len: name.len() as u8,
            ref_off: u32::try_from(p.references.len()).expect("reference arena under 4 GiB"),
            category,
            exact: kind == MatchKind::Exact,
        };
        p.names
            .extend(name.iter().map(|&b| char::from(b.to_ascii_lowercase())));
        p.references.push_str(reference);
        let index = u32::try_from(p.entries.len()).expect("fewer than 2^32 entries");
        slot.insert(index);
        p.entries.push(compiled);
        Ok(())
    }

    /// The snapshot of the list with `header` and `digest`.
    pub fn finish(mut self, header: &crate::list::Header, digest: [u8; 32]) -> Policy {
        self.p.info = Some(ListInfo {
            issuer: header.issuer.clone(),
            serial: header.serial,
            digest,
            digest_hex: crate::text::hex(&digest),
            issued: header.issued,
            expires: header.expires,
        });
        // The arenas were sized from a guess: give back what is unused.
        self.p.names.shrink_to_fit();
        self.p.references.shrink_to_fit();
        self.p.entries.shrink_to_fit();
        self.p.generation = NEXT_GENERATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::list::{Entry, Header};

    pub(crate) fn list(entries: &[(&str, MatchKind)]) -> List {
        let t = time::OffsetDateTime::UNIX_EPOCH;
        List {
            header: Header {
                issuer: "T".into(),
                serial: 7,
                issued: t,
                expires: t,
                extensions: vec![],
            },
            columns: vec![],
            entries: entries
                .iter()
                .enumerate()
                .map(|(i, (name, kind))| Entry {
                    name: (*name).to_owned(),
                    kind: *kind,
                    category: if i % 2 == 0 {
                        "terrorism"
                    } else {
                        "child-abuse"
                    }
                    .into(),
                    reference: format!("REF-{i}"),
                    added: time::Date::MIN,
                    extra: vec![],
                    line: i + 8,
                })
                .collect(),
        }
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn hit(p: &Policy, s: &str) -> Option<String> {
        p.verdict(&name(s)).map(|r| r.name.to_owned())
    }

    #[test]
    fn subtree_exact_case_and_labels() {
        use MatchKind::*;
        let p = Policy::compile(
            &list(&[
                ("bad.example", Subtree),
                ("someblog.wordpress.com", Subtree),
                ("host.example.net", Exact),
            ]),
            [0; 32],
        );
        assert_eq!(p.len(), 3);
        for yes in [
            "bad.example",
            "www.bad.example.",
            "a.b.bad.example",
            "BaD.ExAmPlE.",
        ] {
            assert_eq!(hit(&p, yes).as_deref(), Some("bad.example"), "{yes}");
        }
        for no in [
            "notbad.example",
            "bad.example.org",
            "example",
            "wordpress.com",
            "www.wordpress.com",
            ".",
        ] {
            assert_eq!(hit(&p, no), None, "{no}");
        }
        assert_eq!(
            hit(&p, "x.someblog.wordpress.com").as_deref(),
            Some("someblog.wordpress.com")
        );
        assert_eq!(
            hit(&p, "host.example.net").as_deref(),
            Some("host.example.net")
        );
        assert_eq!(hit(&p, "www.host.example.net"), None);
        let r = p.verdict(&name("www.bad.example")).unwrap();
        assert_eq!(
            (r.category, r.reference(), r.kind),
            ("terrorism", "REF-0", Subtree)
        );
        assert_eq!(
            format!("{r:?}"),
            r#"Rule { name: "bad.example", kind: Subtree, category: "terrorism", reference: "REF-0", index: 0 }"#
        );
        assert_eq!(p.info().unwrap().serial, 7);
    }

    #[test]
    fn most_specific_entry_wins() {
        use MatchKind::*;
        let p = Policy::compile(
            &list(&[
                ("example", Subtree),
                ("a.example", Exact),
                ("b.a.example", Subtree),
            ]),
            [0; 32],
        );
        assert_eq!(hit(&p, "a.example").as_deref(), Some("a.example"));
        assert_eq!(hit(&p, "x.a.example").as_deref(), Some("example"));
        assert_eq!(hit(&p, "c.b.a.example").as_deref(), Some("b.a.example"));
    }

    #[test]
    fn longest_names_and_empty_policy() {
        let long: Vec<String> = (0..127).map(|i| format!("{}", i % 10)).collect();
        let long = long.join(".");
        let p = Policy::compile(&list(&[("8.0.1.2.3.4.5.6", MatchKind::Subtree)]), [0; 32]);
        assert_eq!(hit(&p, &long), None);
        let p2 = Policy::compile(&list(&[(&long[2..], MatchKind::Subtree)]), [0; 32]);
        assert!(p2.verdict(&name(&long)).is_some());
        assert_eq!(Policy::empty().verdict(&name("bad.example")), None);
        assert!(Policy::empty().info().is_none());
    }

    #[test]
    fn each_entry_keeps_its_own_reference() {
        // A reference's length is where the next one begins: empty ones,
        // a duplicate refused between two entries, the last entry and a
        // reference cut at 65,535 bytes must each come back whole.
        let mut b = PolicyBuilder::with_capacity(8);
        let long = "R".repeat(70_000);
        b.insert("a.test", MatchKind::Exact, "c1", "REF-A").unwrap();
        b.insert("b.test", MatchKind::Subtree, "c2", "").unwrap();
        assert_eq!(b.insert("a.test", MatchKind::Exact, "c1", "OTHER"), Err(0));
        b.insert("c.test", MatchKind::Subtree, "c1", "REF-C")
            .unwrap();
        b.insert("d.test", MatchKind::Subtree, "c1", &long).unwrap();
        b.insert("e.test", MatchKind::Exact, "c2", "REF-E").unwrap();
        let p = b.finish(&list(&[]).header, [0; 32]);
        let refs: Vec<(&str, &str, &str)> = p
            .rules()
            .map(|r| (r.name, r.category, r.reference()))
            .collect();
        assert_eq!(
            refs,
            [
                ("a.test", "c1", "REF-A"),
                ("b.test", "c2", ""),
                ("c.test", "c1", "REF-C"),
                ("d.test", "c1", &long[..65_535]),
                ("e.test", "c2", "REF-E"),
            ]
        );
        assert_eq!(p.get("c.test").unwrap().reference(), "REF-C");
        assert_eq!(
            p.verdict(&name("x.d.test")).unwrap().reference().len(),
            65_535
        );
        assert_eq!(std::mem::size_of::<Compiled>(), 12);
    }

    /// Which list and entry decide `s` in `snap`.
    fn decide(snap: &Snapshot, s: &str) -> Option<(usize, String)> {
        let by_name = snap
            .verdict(&name(s))
            .map(|h| (h.list, h.rule.name.to_owned()));
        // The wire form decides the same.
        let wire = hickory_proto::serialize::binary::BinEncodable::to_bytes(&name(s)).unwrap();
        let by_wire = snap
            .verdict_wire(&wire)
            .map(|h| (h.list, h.rule.name.to_owned()));
        assert_eq!(by_name, by_wire, "{s}");
        by_name
    }

    #[test]
    fn the_first_list_with_a_match_decides_and_within_it_the_most_specific_entry() {
        use std::sync::Arc;
        let first = Arc::new(
            Policy::compile(
                &list(&[
                    ("example.test", MatchKind::Subtree),
                    ("only.first", MatchKind::Exact),
                ]),
                [1; 32],
            )
            .labelled(Arc::from("lcen")),
        );
        let second = Arc::new(
            Policy::compile(
                &list(&[
                    ("www.example.test", MatchKind::Subtree),
                    ("casino.test", MatchKind::Subtree),
                    ("deep.casino.test", MatchKind::Exact),
                ]),
                [2; 32],
            )
            .labelled(Arc::from("anj")),
        );
        let snap = Snapshot::of(vec![Arc::clone(&first), Arc::clone(&second)]);
        // The second list has the more specific entry, the first decides.
        assert_eq!(
            decide(&snap, "a.www.example.test"),
            Some((0, "example.test".into()))
        );
        // Only the second matches: it decides, most specific entry first.
        assert_eq!(
            decide(&snap, "deep.casino.test"),
            Some((1, "deep.casino.test".into()))
        );
        assert_eq!(
            decide(&snap, "x.deep.casino.test"),
            Some((1, "casino.test".into()))
        );
        assert_eq!(decide(&snap, "x.only.first"), None);
        assert_eq!(decide(&snap, "unlisted.test"), None);
        assert_eq!(snap.lists()[1].list(), "anj");
        assert_eq!(snap.len(), 5);
        // The order is the precedence.
        let swapped = Snapshot::of(vec![Arc::clone(&second), Arc::clone(&first)]);
        assert_eq!(
            decide(&swapped, "a.www.example.test"),
            Some((0, "www.example.test".into()))
        );
        // A list replaced alone: the other list is shared, not copied, and
        // the generation tells the snapshots apart.
        let emptied = snap.replaced(0, Arc::new(Policy::empty()));
        assert!(Arc::ptr_eq(&emptied.lists()[1], &second));
        assert_ne!(emptied.generation(), snap.generation());
        assert_eq!(
            decide(&emptied, "a.www.example.test"),
            Some((1, "www.example.test".into()))
        );
        // No list in force: nothing decided, generation 0 (no answer kept).
        let none = Snapshot::empty(&["a", "b"]);
        assert_eq!(decide(&none, "example.test"), None);
        assert_eq!(none.generation(), 0);
        assert_eq!(none.lists()[1].list(), "b");
    }
}
