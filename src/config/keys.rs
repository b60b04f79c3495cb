//! The file against the keys [`RawConfig`] knows, so that one run names
//! every problem: every unknown key (its dotted path, its line, the closest
//! known key), every value of the wrong type, then (module `validate`) every
//! invalid value, each with its line.
//!
//! serde's `deny_unknown_fields` stops at the first unknown key and a value
//! of the wrong type stops the whole deserialisation. So the text is parsed
//! into toml's spanned tree first; the tree is walked against the field
//! names of the raw types (taken from serde's derive, so a key added to a
//! raw type is known here without a second list); unknown keys are named
//! and taken out; then a key whose value serde refuses is named and taken
//! out, and the rest deserialised again, until what remains is accepted.

use std::fmt;
use std::ops::Range;

use serde::Deserialize;
use serde::de::{DeserializeOwned, Visitor};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::KeyError;
use super::raw::{
    RawAdmin, RawAudit, RawConfig, RawList, RawListEntry, RawLog, RawRedirect, RawRpz, RawServer,
    RawUpstream,
};

/// The array of tables among the sections (`[[lists]]`): each item holds
/// the keys [`sections`] gives it.
const ARRAY_SECTION: &str = "lists";

/// Each section of the file and the keys it may hold (for `lists`, the
/// keys of each `[[lists]]` entry).
pub(super) fn sections() -> [(&'static str, &'static [&'static str]); 9] {
    [
        ("server", fields_of::<RawServer>()),
        ("upstream", fields_of::<RawUpstream>()),
        ("list", fields_of::<RawList>()),
        (ARRAY_SECTION, fields_of::<RawListEntry>()),
        ("redirect", fields_of::<RawRedirect>()),
        ("audit", fields_of::<RawAudit>()),
        ("admin", fields_of::<RawAdmin>()),
        ("log", fields_of::<RawLog>()),
        ("rpz", fields_of::<RawRpz>()),
    ]
}

/// The field names serde's derive gives `T`: what its `Deserialize` passes
/// to `deserialize_struct`, caught by a deserializer that does nothing else.
pub(super) fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    match T::deserialize(FieldsOf) {
        Err(Fields(fields)) => fields,
        Ok(_) => &[],
    }
}

/// A deserializer that only answers `deserialize_struct`, with its fields.
struct FieldsOf;

/// The "error" that carries the field names out of [`FieldsOf`].
#[derive(Debug)]
struct Fields(&'static [&'static str]);

impl fmt::Display for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fields {:?}", self.0)
    }
}

impl std::error::Error for Fields {}

impl serde::de::Error for Fields {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Fields(&[])
    }
}

impl<'de> serde::Deserializer<'de> for FieldsOf {
    type Error = Fields;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Fields> {
        Err(Fields(&[]))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Fields> {
        Err(Fields(fields))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

/// The config text, parsed into toml's tree of spanned keys and values.
pub(super) struct Document<'t> {
    text: &'t str,
    root: Spanned<DeTable<'t>>,
}

impl<'t> Document<'t> {
    /// Parse TOML; an error here is a syntax error (toml's message names
    /// the line and column).
    pub(super) fn parse(text: &'t str) -> Result<Document<'t>, toml::de::Error> {
        let root = DeTable::parse(text).map_err(|mut e| {
            e.set_input(Some(text));
            e
        })?;
        Ok(Document { text, root })
    }

    /// The 1-based line where `offset` is.
    fn line_at(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// The line of a key as [`KeyError`] names it: `section`,
    /// `section.key`, `section.key[i]` (the item's own line), or deeper
    /// (`lists[1].redirect.ipv4[0]`); for a key the file lacks, the line of
    /// the closest enclosing key it has, `None` if not even the section.
    pub(super) fn line_of(&self, key: &str) -> Option<usize> {
        let path = parse_path(key);
        let mut value: &DeValue<'_> = self.root.get_ref().get(path.first()?.key()?)?.get_ref();
        let (first, _) = self.root.get_ref().get_key_value(path[0].key()?)?;
        let mut line = self.line_at(first.span().start);
        for seg in &path[1..] {
            match seg {
                Seg::Key(k) => {
                    let Some((k, v)) = value.as_table().and_then(|t| t.get_key_value(k.as_str()))
                    else {
                        break;
                    };
                    line = self.line_at(k.span().start);
                    value = v.get_ref();
                }
                Seg::Index(i) => {
                    let Some(item) = value.as_array().and_then(|a| a.get(*i)) else {
                        break;
                    };
                    line = self.line_at(item.span().start);
                    value = item.get_ref();
                }
            }
        }
        Some(line)
    }

    /// Every unknown key and every value of the wrong type, as errors with
    /// their line; and the config made of everything else.
    pub(super) fn read(&self) -> Result<(RawConfig, Vec<KeyError>), toml::de::Error> {
        let mut errors = Vec::new();
        let mut root = self.root.get_ref().clone();
        self.drop_unknown(&mut root, &mut errors);
        // Each round names and takes out one key, so this ends.
        loop {
            let de = toml::de::Deserializer::from(Spanned::new(self.root.span(), root.clone()));
            match RawConfig::deserialize(de) {
                Ok(raw) => return Ok((raw, errors)),
                Err(e) => {
                    let Some(key) = e.span().and_then(|span| key_at(&root, &span)) else {
                        let mut e = e;
                        e.set_input(Some(self.text));
                        return Err(e);
                    };
                    let name = show_path(&key);
                    errors.push(KeyError {
                        line: self.line_of(&name),
                        key: name,
                        reason: e.message().to_owned(),
                    });
                    remove(&mut root, &key);
                }
            }
        }
    }

    /// Name and remove each key no section knows, and each section that is
    /// not a table.
    fn drop_unknown(&self, root: &mut DeTable<'t>, errors: &mut Vec<KeyError>) {
        let sections = sections();
        let section_names: Vec<&str> = sections.iter().map(|(s, _)| *s).collect();
        let mut unknown: Vec<(Vec<Seg>, String, usize)> = Vec::new();
        for (key, value) in root.iter() {
            let name: &str = key.get_ref();
            let line = self.line_at(key.span().start);
            let Some((_, fields)) = sections.iter().find(|(s, _)| *s == name) else {
                let reason = format!(
                    "unknown section{}",
                    suggestion(name, &section_names, |s| format!("[{s}]"))
                );
                unknown.push((vec![Seg::Key(name.to_owned())], reason, line));
                continue;
            };
            if name == ARRAY_SECTION {
                let items = value
                    .get_ref()
                    .as_array()
                    .filter(|items| items.iter().all(|item| item.get_ref().as_table().is_some()));
                let Some(items) = items else {
                    let reason = format!(
                        "must be an array of tables ([[{name}]]), not {}",
                        value.get_ref().type_str()
                    );
                    unknown.push((vec![Seg::Key(name.to_owned())], reason, line));
                    continue;
                };
                for (i, item) in items.iter().enumerate() {
                    let Some(table) = item.get_ref().as_table() else {
                        continue;
                    };
                    let at = vec![Seg::Key(name.to_owned()), Seg::Index(i)];
                    self.unknown_in(table, &at, fields, &sections, &mut unknown);
                    // A list's own answer: the keys of [redirect].
                    if let Some((k, v)) = table.get_key_value("redirect")
                        && let Some(redirect) = v.get_ref().as_table()
                    {
                        let mut at = at.clone();
                        at.push(Seg::Key(k.get_ref().to_string()));
                        let keys = fields_of::<RawRedirect>();
                        self.unknown_in(redirect, &at, keys, &[], &mut unknown);
                    }
                }
                continue;
            }
            let Some(table) = value.get_ref().as_table() else {
                let reason = format!(
                    "must be a table ([{name}]), not {}",
                    value.get_ref().type_str()
                );
                unknown.push((vec![Seg::Key(name.to_owned())], reason, line));
                continue;
            };
            let at = vec![Seg::Key(name.to_owned())];
            self.unknown_in(table, &at, fields, &sections, &mut unknown);
        }
        for (key, reason, line) in unknown {
            remove(root, &key);
            errors.push(KeyError {
                key: show_path(&key),
                reason,
                line: Some(line),
            });
        }
    }

    /// The keys of `table` (at `at`) that are not in `fields`, each with
    /// the closest known key, or the section of `sections` that has it.
    fn unknown_in(
        &self,
        table: &DeTable<'_>,
        at: &[Seg],
        fields: &[&str],
        sections: &[(&str, &[&str])],
        unknown: &mut Vec<(Vec<Seg>, String, usize)>,
    ) {
        let name = show_path(at);
        let own = at.first().and_then(Seg::key).unwrap_or_default();
        for (k, _) in table.iter() {
            let k: &str = k.get_ref();
            if fields.contains(&k) {
                continue;
            }
            let here = suggestion(k, fields, |f| format!("{name}.{f}"));
            // A key written in the wrong section: say which one has it.
            let elsewhere = sections
                .iter()
                .find(|(s, f)| *s != own && f.contains(&k))
                .map(|(s, _)| {
                    if *s == ARRAY_SECTION {
                        format!(" (it belongs in [[{s}]])")
                    } else {
                        format!(" (it belongs in [{s}])")
                    }
                });
            let reason = format!("unknown key{}", elsewhere.unwrap_or(here));
            let mut key = at.to_vec();
            key.push(Seg::Key(k.to_owned()));
            unknown.push((key, reason, line_of_key(self, table, k)));
        }
    }
}

/// One step of a key's path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

impl Seg {
    fn key(&self) -> Option<&str> {
        match self {
            Seg::Key(k) => Some(k),
            Seg::Index(_) => None,
        }
    }
}

/// `lists[1].redirect.ipv4[0]` as its steps.
fn parse_path(key: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in key.split('.') {
        let mut rest = part;
        let name_end = rest.find('[').unwrap_or(rest.len());
        out.push(Seg::Key(rest[..name_end].to_owned()));
        rest = &rest[name_end..];
        while let Some(inner) = rest.strip_prefix('[') {
            let Some(close) = inner.find(']') else { break };
            if let Ok(i) = inner[..close].parse() {
                out.push(Seg::Index(i));
            }
            rest = &inner[close + 1..];
        }
    }
    out
}

/// The steps as [`KeyError`] names them.
fn show_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The line of key `k` of `table`.
fn line_of_key(doc: &Document<'_>, table: &DeTable<'_>, k: &str) -> usize {
    table
        .get_key_value(k)
        .map_or(0, |(key, _)| doc.line_at(key.span().start))
}

/// The path of the innermost key whose text holds `span` (a section, a
/// key of a section, or deeper inside `[[lists]]` and its `redirect`).
/// A table's own span may be its header alone, so the keys inside every
/// table are searched before the table itself.
fn key_at(root: &DeTable<'_>, span: &Range<usize>) -> Option<Vec<Seg>> {
    let holds = |r: Range<usize>| r.start <= span.start && span.end <= r.end;
    /// Inside `value`, at `path` (whose depth bounds the search: a key of a
    /// plain section is as deep as errors are named; inside `[[lists]]`,
    /// the item, its key, and a key of its `redirect`).
    fn inside(
        value: &DeValue<'_>,
        path: &mut Vec<Seg>,
        max: usize,
        holds: &dyn Fn(Range<usize>) -> bool,
    ) -> bool {
        if path.len() >= max {
            return false;
        }
        match value {
            DeValue::Table(table) => {
                for (k, v) in table.iter() {
                    path.push(Seg::Key(k.get_ref().to_string()));
                    if inside(v.get_ref(), path, max, holds) || holds(k.span()) || holds(v.span()) {
                        return true;
                    }
                    path.pop();
                }
                false
            }
            DeValue::Array(items) if path.len() == 1 => {
                for (i, item) in items.iter().enumerate() {
                    path.push(Seg::Index(i));
                    if inside(item.get_ref(), path, max, holds) || holds(item.span()) {
                        return true;
                    }
                    path.pop();
                }
                false
            }
            _ => false,
        }
    }
    for (k, v) in root.iter() {
        let max = if k.get_ref() == ARRAY_SECTION { 4 } else { 2 };
        let mut path = vec![Seg::Key(k.get_ref().to_string())];
        if inside(v.get_ref(), &mut path, max, &holds) || holds(k.span()) || holds(v.span()) {
            return Some(path);
        }
    }
    None
}

/// Take the key at `path` out of the tree.
fn remove(root: &mut DeTable<'_>, path: &[Seg]) {
    fn remove_in(value: &mut DeValue<'_>, path: &[Seg]) {
        match (value, path) {
            (DeValue::Table(t), [Seg::Key(k)]) => {
                t.remove(k.as_str());
            }
            (DeValue::Table(t), [Seg::Key(k), rest @ ..]) => {
                if let Some(v) = t.get_mut(k.as_str()) {
                    remove_in(v.get_mut(), rest);
                }
            }
            (DeValue::Array(a), [Seg::Index(i), rest @ ..]) if !rest.is_empty() => {
                if let Some(v) = a.get_mut(*i) {
                    remove_in(v.get_mut(), rest);
                }
            }
            _ => {}
        }
    }
    match path {
        [Seg::Key(k)] => {
            root.remove(k.as_str());
        }
        [Seg::Key(k), rest @ ..] => {
            if let Some(v) = root.get_mut(k.as_str()) {
                remove_in(v.get_mut(), rest);
            }
        }
        _ => {}
    }
}

/// `; did you mean X?` with the known name closest to `unknown` (by edit
/// distance, or one being a prefix of the other), or nothing when none is
/// close; `show` writes a known name as the message gives it.
fn suggestion(unknown: &str, known: &[&str], show: impl Fn(&str) -> String) -> String {
    let close = |k: &str| {
        let d = edit_distance(unknown, k);
        let prefix = k.starts_with(unknown) || unknown.starts_with(k);
        (d <= 2.max(unknown.len() / 3) || (prefix && !unknown.is_empty() && !k.is_empty()))
            .then_some(d)
    };
    known
        .iter()
        .filter_map(|k| close(k).map(|d| (d, *k)))
        .min()
        .map(|(_, k)| format!("; did you mean {}?", show(k)))
        .unwrap_or_default()
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(above + 1)
                .min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sections_are_the_raw_config_fields() {
        let named: Vec<&str> = sections().iter().map(|(s, _)| *s).collect();
        assert_eq!(named, fields_of::<RawConfig>());
        assert!(fields_of::<RawServer>().contains(&"listen"));
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("lvl", "level"), 2);
        assert_eq!(edit_distance("listen", "listen"), 0);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn the_closest_key_is_suggested() {
        let known = ["listen", "allow", "udp_sockets"];
        let show = |k: &str| k.to_owned();
        assert_eq!(
            suggestion("listen_on", &known, show),
            "; did you mean listen?"
        );
        assert_eq!(suggestion("alow", &known, show), "; did you mean allow?");
        assert_eq!(
            suggestion("udp", &known, show),
            "; did you mean udp_sockets?"
        );
        assert_eq!(suggestion("colour", &known, show), "");
    }
}
