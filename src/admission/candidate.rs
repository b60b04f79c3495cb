//! One candidate list, judged: signature, parse, gates, and the compiled
//! [`Policy`], in one pass over the bytes. These functions only compute:
//! [`Admission`](super::Admission) runs them on a blocking thread, then
//! swaps and records.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use sha2::{Digest, Sha256};

use crate::list::floor::Floor;
use crate::list::format::has_prelude;
use crate::list::gate::{self, Protected};
use crate::list::pair::{open_regular, read_signature};
use crate::list::signature::{PiecesError, TrustedKeys};
use crate::list::state::{self, Pending, StateError, Written};
use crate::list::{Header, List, Pair, ReadError, digest};
use crate::policy::{Policy, PolicyBuilder};

/// What the admission path needs from the config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Keys whose signatures are accepted.
    pub trusted_keys: TrustedKeys,
    /// Names that no list may redirect (canonical form).
    pub protected: Vec<String>,
    /// Where the list in force is kept.
    pub state_dir: PathBuf,
    /// The largest list file read (`list.max_bytes`).
    pub max_bytes: u64,
    /// The list's legal delay in hours (`deadline_hours`), for the audit
    /// trail's `applied` records and the auditor's report.
    pub deadline_hours: u32,
}

/// A list that passed every check, compiled: the policy snapshot to
/// enforce, and what identifies the list.
#[derive(Debug)]
pub struct Accepted {
    /// The list's header.
    pub header: Header,
    /// Number of entries.
    pub entries: usize,
    /// The compiled snapshot.
    pub policy: Policy,
    /// SHA-256 of the list bytes.
    pub digest: [u8; 32],
    /// The id of the key that signed it (hex, as minisign prints it).
    pub key_id: String,
}

/// What later candidates are judged against: the list in force, without
/// its entries (the policy snapshot holds those; the state directory holds
/// the bytes), so that a million-entry list is not held twice in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InForce {
    /// The list's header.
    pub header: Header,
    /// SHA-256 of the list bytes.
    pub digest: [u8; 32],
    /// The id of the key that signed it.
    pub key_id: String,
    /// Number of entries.
    pub entries: usize,
}

impl Accepted {
    /// What stays known of this list once it is in force.
    pub fn in_force(&self) -> InForce {
        InForce {
            header: self.header.clone(),
            digest: self.digest,
            key_id: self.key_id.clone(),
            entries: self.entries,
        }
    }
}

/// What to do with a candidate that passed the checks.
#[derive(Debug)]
pub enum Decision {
    /// A newer list: apply it (boxed: it is large, `Unchanged` is nothing).
    Apply(Box<Accepted>),
    /// The same bytes as the list in force: nothing to do.
    Unchanged,
    /// An older list that this resolver applied before (its digest is in
    /// the [`Floor`]'s history): the list file left behind by a push, say.
    /// Nothing to do, and nothing to alert on.
    Stale {
        /// Its serial.
        serial: u64,
    },
}

/// Why a candidate list was refused; names the file, the line or key, the reason.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", file.display())]
pub struct Refusal {
    /// The file at fault (the list, its signature, or the label of a list
    /// that came without a file).
    pub file: PathBuf,
    /// The reason, with the line or key id where there is one.
    pub reason: String,
}

impl Refusal {
    /// A refusal of `file`.
    pub fn new(file: &Path, reason: impl Into<String>) -> Refusal {
        Refusal {
            file: file.to_owned(),
            reason: reason.into(),
        }
    }
}

impl From<ReadError> for Refusal {
    fn from(e: ReadError) -> Refusal {
        let reason = match &e {
            ReadError::Io { source, .. } => format!("cannot read: {source}"),
            ReadError::NotRegular { kind, .. } => format!("not a regular file (a {kind})"),
            ReadError::TooLarge { limit, .. } => {
                format!("larger than {limit} bytes (list.max_bytes for a list)")
            }
        };
        Refusal::new(e.file(), reason)
    }
}

/// Judge a candidate: the same bytes as the list in force change nothing;
/// otherwise the signature against the trusted keys, the header (serial
/// against the list in force, dates), then every entry (format, public
/// suffixes, protected names), compiling as it reads. The candidate is
/// refused whole at the first failure. [`consider_against`] with no floor.
pub fn consider(
    settings: &Settings,
    in_force: Option<&InForce>,
    file: &Path,
    bytes: &[u8],
    signature: &[u8],
    now: OffsetDateTime,
) -> Result<Decision, Refusal> {
    consider_against(
        settings,
        in_force,
        &Floor::default(),
        file,
        bytes,
        signature,
        now,
    )
}

/// [`consider`], with the serial floor and the history of lists applied:
///
/// - a list this resolver applied before, older than the list in force or
///   the floor, is [`Decision::Stale`] (it was verified when applied; its
///   digest names it);
/// - any other list must have a serial above both the list in force and
///   the floor, so that a lost state file does not let an older list in;
/// - a list of the history at the floor, when the list in force is older
///   (the state file could not be written), is judged against the list in
///   force only: it is the list that was in force.
pub fn consider_against(
    settings: &Settings,
    in_force: Option<&InForce>,
    floor: &Floor,
    file: &Path,
    bytes: &[u8],
    signature: &[u8],
    now: OffsetDateTime,
) -> Result<Decision, Refusal> {
    let digest = digest(bytes);
    let to_beat = match to_beat(in_force, floor, &digest) {
        Ok(to_beat) => to_beat,
        Err(decision) => return Ok(decision),
    };
    verify_and_compile(
        settings,
        file,
        bytes,
        signature,
        Some((to_beat, digest, now)),
    )
    .map(|a| Decision::Apply(Box::new(a)))
}

/// The serial a candidate whose bytes have `digest` must be above (none
/// when nothing is in force nor floored), or what to do with it at once:
/// [`Decision::Unchanged`] for the bytes in force, [`Decision::Stale`] for
/// a list of the floor's history older than the list in force or the floor.
fn to_beat(
    in_force: Option<&InForce>,
    floor: &Floor,
    digest: &[u8; 32],
) -> Result<Option<u64>, Decision> {
    if in_force.is_some_and(|current| current.digest == *digest) {
        return Err(Decision::Unchanged);
    }
    let current = in_force.map(|c| c.header.serial);
    let top = current.max(floor.serial());
    match floor.seen(digest) {
        Some(serial) if top.is_some_and(|top| serial < top) => Err(Decision::Stale { serial }),
        Some(_) => Ok(current),
        None => Ok(top),
    }
}

/// Verify the signature and compile, without the other gates: for the list
/// kept in the state directory, which this resolver applied before (a key
/// removed from the trust list takes its lists with it; a list expired
/// since stays in force until a newer one comes).
pub fn verify_kept(
    settings: &Settings,
    file: &Path,
    bytes: &[u8],
    signature: &[u8],
) -> Result<Accepted, Refusal> {
    verify_and_compile(settings, file, bytes, signature, None)
}

/// Verify the signature, then read and compile the list in one pass,
/// applying `checks` as it goes. Nothing is parsed before the signature
/// verifies; the entries are never held whole (a million of them would
/// cost more than the snapshot itself).
fn verify_and_compile(
    settings: &Settings,
    file: &Path,
    bytes: &[u8],
    signature: &[u8],
    checks: Option<(Option<u64>, [u8; 32], OffsetDateTime)>,
) -> Result<Accepted, Refusal> {
    let key_id = settings
        .trusted_keys
        .verify(bytes, signature)
        .map_err(|e| Refusal::new(file, format!("signature: {e}")))?;
    let digest = match checks {
        Some((_, d, _)) => d,
        None => digest(bytes),
    };
    let lines = bytes.iter().filter(|&&b| b == b'\n').count();
    let (accepted, _) = compile(
        settings,
        file,
        Pieces::memory(bytes),
        Sizes {
            lines,
            bytes: bytes.len(),
        },
        checks.map(|(to_beat, _, now)| (to_beat, now)),
        None,
        digest,
        key_id,
    )?;
    Ok(accepted)
}

/// [`consider_against`] for a list file, read twice a piece at a time and
/// never held whole (at a million entries it is 65 MB, which a reload
/// would hold beside two snapshots): a first pass for its digest and
/// signature, then a second that parses and compiles it and writes the
/// copy kept in the state directory, if it is to be applied. The second
/// pass checks that it read the bytes the first one verified (the file
/// may be replaced in between): otherwise the candidate is refused, and
/// tried again like any other.
///
/// With the decision, the state directory's new copy of the list
/// ([`KeptCopy`]), to put in place once the list is in force.
pub fn consider_file(
    settings: &Settings,
    in_force: Option<&InForce>,
    floor: &Floor,
    file: &Path,
    now: OffsetDateTime,
) -> Result<(Decision, KeptCopy), Refusal> {
    let signature = read_signature(file)?;
    // First pass: the digest, and the signature over the same bytes.
    let (list, _) = open_regular(file, settings.max_bytes)?;
    let mut pieces = Pieces::file(list, file, settings.max_bytes);
    let mut hasher = Sha256::new();
    let mut lines = 0;
    let verified = settings.trusted_keys.verify_pieces(&signature, |feed| {
        while let Some(piece) = pieces.next(false)? {
            hasher.update(&piece[..]);
            lines += piece.iter().filter(|&&b| b == b'\n').count();
            feed(&piece);
        }
        Ok::<(), Refusal>(())
    });
    let key_id = match verified {
        // A legacy signature is checked over the whole list: read it whole.
        Ok(None) => {
            let pair = Pair::read(file, settings.max_bytes)?;
            let decision = consider_against(
                settings,
                in_force,
                floor,
                file,
                &pair.list,
                &pair.signature,
                now,
            )?;
            return Ok((decision, KeptCopy::Bytes(pair)));
        }
        Ok(Some(key_id)) => Ok(key_id),
        Err(PiecesError::Feed(refusal)) => return Err(refusal),
        Err(PiecesError::Signature(e)) => Err(e),
    };
    let digest: [u8; 32] = hasher.finalize().into();
    let length = pieces.len();
    // As for a list in memory: the same bytes change nothing, a list
    // applied before is stale, whatever its signature file says now.
    let to_beat = match to_beat(in_force, floor, &digest) {
        Ok(to_beat) => to_beat,
        Err(decision) => return Ok((decision, KeptCopy::None)),
    };
    let key_id = key_id.map_err(|e| Refusal::new(file, format!("signature: {e}")))?;
    // Second pass: parse and compile what the first verified.
    let (list, _) = open_regular(file, settings.max_bytes)?;
    let keep = Keep {
        dir: &settings.state_dir,
        signature: &signature,
        length,
    };
    let (accepted, written) = compile(
        settings,
        file,
        Pieces::file(list, file, settings.max_bytes),
        Sizes {
            lines,
            bytes: usize::try_from(length).unwrap_or(usize::MAX),
        },
        Some((to_beat, now)),
        Some(keep),
        digest,
        key_id,
    )?;
    let written = written.unwrap_or_else(|| {
        Err(StateError {
            file: state::path(&settings.state_dir),
            reason: "not written".into(),
        })
    });
    Ok((
        Decision::Apply(Box::new(accepted)),
        KeptCopy::Written(written),
    ))
}

/// The copy of a list to keep in the state directory, once it is applied.
#[derive(Debug)]
pub enum KeptCopy {
    /// Nothing to keep (the list is not applied).
    None,
    /// The list's bytes and signature, to write (a list read whole).
    Bytes(Pair),
    /// Written already while the list was read, to put in place (or why
    /// it could not be written: the list is applied anyway, as any list
    /// read from a file whose copy cannot be kept).
    Written(Result<Written, StateError>),
}

/// Where the pieces of a list come from: a slice in memory, or a file read
/// a piece at a time.
enum Pieces<'a> {
    Memory {
        rest: &'a [u8],
    },
    File {
        reader: std::io::Take<std::fs::File>,
        path: &'a Path,
        limit: u64,
        /// The start of a line that the last read cut.
        carry: Vec<u8>,
        done: bool,
        /// Bytes read so far.
        read: u64,
    },
}

/// A piece: borrowed from a list in memory, or read from the file.
enum Piece<'a> {
    Borrowed(&'a [u8]),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Piece<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Piece::Borrowed(b) => b,
            Piece::Owned(v) => v,
        }
    }
}

/// The size of a piece, but the first (which holds at least the header
/// and the column line) and any that must end a longer line: a read from
/// the page cache worth the system call, small beside a list.
const PIECE: usize = 1 << 20;

impl<'a> Pieces<'a> {
    fn memory(bytes: &'a [u8]) -> Pieces<'a> {
        Pieces::Memory { rest: bytes }
    }

    fn file(f: std::fs::File, path: &'a Path, limit: u64) -> Pieces<'a> {
        use std::io::Read;
        Pieces::File {
            reader: f.take(limit.saturating_add(1)),
            path,
            limit,
            carry: Vec::new(),
            done: false,
            read: 0,
        }
    }

    /// Bytes read so far (the list's length, once every piece is read).
    fn len(&self) -> u64 {
        match self {
            Pieces::Memory { .. } => 0,
            Pieces::File { read, .. } => *read,
        }
    }

    /// The next piece, ending at a line end unless it is the last; the
    /// `first` one holds the list's prelude whole if the list has one
    /// ([`has_prelude`]). `None` at the end.
    fn next(&mut self, first: bool) -> Result<Option<Piece<'a>>, Refusal> {
        let complete = |text: &[u8], at_end: bool| {
            if at_end {
                return Some(text.len());
            }
            let end = text.iter().rposition(|&b| b == b'\n').map(|i| i + 1)?;
            (!first || has_prelude(&text[..end])).then_some(end)
        };
        match self {
            Pieces::Memory { rest } => {
                if rest.is_empty() {
                    return Ok(None);
                }
                let mut size = PIECE;
                loop {
                    let at_end = size >= rest.len();
                    let window = &rest[..size.min(rest.len())];
                    if let Some(end) = complete(window, at_end) {
                        let (piece, tail) = rest.split_at(end);
                        *rest = tail;
                        return Ok(Some(Piece::Borrowed(piece)));
                    }
                    size = size.saturating_mul(2);
                }
            }
            Pieces::File {
                reader,
                path,
                limit,
                carry,
                done,
                read,
            } => {
                if *done && carry.is_empty() {
                    return Ok(None);
                }
                let mut buf = Vec::with_capacity(carry.len() + PIECE);
                buf.append(carry);
                loop {
                    let have = buf.len();
                    if !*done {
                        let want = (have + PIECE).max(buf.capacity());
                        buf.resize(want, 0);
                        let n = read_full(reader, &mut buf[have..])
                            .map_err(|e| Refusal::new(path, format!("cannot read: {e}")))?;
                        buf.truncate(have + n);
                        *read += n as u64;
                        if *read > *limit {
                            return Err(Refusal::new(
                                path,
                                format!("larger than {limit} bytes (list.max_bytes for a list)"),
                            ));
                        }
                        *done = n < want - have;
                    }
                    if let Some(end) = complete(&buf, *done) {
                        *carry = buf.split_off(end);
                        return Ok(Some(Piece::Owned(buf)));
                    }
                    if *done {
                        // Unreachable: at the end, the rest is complete.
                        return Ok(Some(Piece::Owned(buf)));
                    }
                }
            }
        }
    }
}

/// Fill `buf` from `reader` unless the end comes first: the bytes read.
fn read_full(reader: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Room to give the compiled snapshot: the list's line and byte counts.
struct Sizes {
    lines: usize,
    bytes: usize,
}

/// Where to write the copy of a list read from a file, for the state
/// directory: its signature, and the length the first pass read.
struct Keep<'a> {
    dir: &'a Path,
    signature: &'a [u8],
    length: u64,
}

/// An entry of a piece, by place in the piece: what crosses from the
/// reading thread to the compiling one (the piece travels with it).
struct Placed {
    /// The name's place, or (when the canonical form had to be written
    /// anew: an IDN) its index among the message's owned names, marked by
    /// the top bit.
    name: (u32, u32),
    kind: crate::list::MatchKind,
    category: (u32, u32),
    reference: (u32, u32),
    line: u32,
}

/// Entries a batch has room for at first: a MiB of them.
const PLACED: usize = crate::alloc::BIG.div_ceil(std::mem::size_of::<Placed>());

/// The top bit of [`Placed::name`]'s first half: an owned name.
const OWNED: u32 = 1 << 31;

/// Entries of one piece: the piece, their places in it, and the names
/// that are not in it as they are.
struct Batch<'a> {
    piece: Piece<'a>,
    placed: Vec<Placed>,
    owned: Vec<String>,
}

/// The place of `part` (a slice of `piece`) in `piece`.
fn place(piece: &[u8], part: &str) -> (u32, u32) {
    let at = part.as_ptr() as usize - piece.as_ptr() as usize;
    (at as u32, part.len() as u32)
}

/// The text at `at` in `piece` (written there by [`place`]).
fn placed(piece: &[u8], (at, len): (u32, u32)) -> &str {
    std::str::from_utf8(&piece[at as usize..][..len as usize]).unwrap_or("")
}

/// Read, check and compile the list in `pieces`, on two threads (one reads
/// and checks, the other compiles what it is handed, a piece at a time),
/// both at a low priority (nice 10): the query workers come first, the
/// load takes what is left. With `keep`, the pieces are also written to a
/// new copy for the state directory, and hashed: they must be the bytes
/// whose `digest` the first pass verified.
#[allow(clippy::too_many_arguments)]
fn compile(
    settings: &Settings,
    file: &Path,
    mut pieces: Pieces<'_>,
    sizes: Sizes,
    checks: Option<(Option<u64>, OffsetDateTime)>,
    keep: Option<Keep<'_>>,
    digest: [u8; 32],
    key_id: String,
) -> Result<(Accepted, Option<Result<Written, StateError>>), Refusal> {
    let protected = Protected::new(&settings.protected);
    let checked = keep.is_some();
    let (read, built) = std::thread::scope(|scope| {
        // Few pieces in flight: each is a MiB of text and its entries.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Batch<'_>>(2);
        let compiler = scope.spawn(move || {
            lower_priority();
            let mut builder = PolicyBuilder::for_list(sizes.lines, sizes.bytes);
            // The line of each entry, to name both lines of a name listed
            // twice (the builder finds it: one probe it makes anyway).
            let mut lines: Vec<u32> = Vec::with_capacity(sizes.lines);
            let mut twice = None;
            for batch in rx {
                let piece = &batch.piece[..];
                for e in &batch.placed {
                    let name = if e.name.0 & OWNED != 0 {
                        batch.owned[(e.name.0 & !OWNED) as usize].as_str()
                    } else {
                        placed(piece, e.name)
                    };
                    let category = placed(piece, e.category);
                    let reference = placed(piece, e.reference);
                    match builder.insert(name, e.kind, category, reference) {
                        Ok(()) => lines.push(e.line),
                        Err(first) => {
                            if twice.is_none() {
                                let first = lines.get(first as usize).copied().unwrap_or(0);
                                twice = Some((name.to_owned(), first, e.line));
                            }
                        }
                    }
                }
            }
            (builder, twice)
        });
        let reader = scope.spawn(move || {
            lower_priority();
            read_pieces(&mut pieces, file, checks, &protected, keep, &tx)
        });
        (reader.join(), compiler.join())
    });
    let (builder, twice) = built.map_err(|_| Refusal::new(file, "the compiler thread failed"))?;
    let (header, entries, second) = read
        .map_err(|_| Refusal::new(file, "the reader thread failed"))?
        .map_err(|e| match e {
            Failed::Parse(e) => Refusal::new(
                file,
                if e.line > 0 {
                    format!("line {}: {}", e.line, e.reason)
                } else {
                    e.reason
                },
            ),
            Failed::Refused(r) => r,
        })?;
    if let Some((name, first, second)) = twice {
        return Err(Refusal::new(
            file,
            format!("line {second}: {name:?} is listed twice (first on line {first})"),
        ));
    }
    if checked && second.digest != Some(digest) {
        return Err(Refusal::new(
            file,
            "the file changed while it was read (its bytes are not those whose signature was checked); it is read again at its next change",
        ));
    }
    Ok((
        Accepted {
            policy: builder.finish(&header, digest),
            header,
            entries,
            digest,
            key_id,
        },
        second.written,
    ))
}

/// Why the reading thread stopped.
enum Failed {
    Parse(crate::list::ParseError),
    Refused(Refusal),
}

/// What the second pass of a file found besides the entries: the digest of
/// what it read, and the copy for the state directory.
#[derive(Default)]
struct Second {
    digest: Option<[u8; 32]>,
    written: Option<Result<Written, StateError>>,
}

/// The reading thread of [`compile`]: the prelude from the first piece,
/// then each piece's entries checked and sent, placed, to the compiler.
fn read_pieces<'a>(
    pieces: &mut Pieces<'a>,
    file: &Path,
    checks: Option<(Option<u64>, OffsetDateTime)>,
    protected: &Protected,
    keep: Option<Keep<'_>>,
    tx: &std::sync::mpsc::SyncSender<Batch<'a>>,
) -> Result<(Header, usize, Second), Failed> {
    let mut hasher = keep.as_ref().map(|_| Sha256::new());
    let first = pieces.next(true).map_err(Failed::Refused)?;
    let first = first.unwrap_or(Piece::Borrowed(&[]));
    if let Some(h) = &mut hasher {
        h.update(&first[..]);
    }
    // The prelude borrows its column names from the first piece, kept
    // until the end; its entries are sent as a copy.
    let prelude = List::prelude(&first, file, |header| match checks {
        None => Ok(()),
        Some((to_beat, now)) => {
            if let Some(to_beat) = to_beat {
                gate::check_serial(header.serial, to_beat)
                    .map_err(gate::GateError::into_header_refusal)?;
            }
            gate::check_header(header, now).map_err(gate::GateError::into_header_refusal)
        }
    })
    .map_err(Failed::Parse)?;
    let mut pending = keep.map(|k| {
        let meta = state::Meta {
            serial: prelude.header.serial,
            digest: String::new(),
            key_id: String::new(),
            applied: crate::text::rfc3339(OffsetDateTime::now_utc()),
            signature_len: 0,
            list_len: usize::try_from(k.length).unwrap_or(usize::MAX),
        };
        Pending::create(k.dir, &meta, k.signature)
    });
    let mut write = |bytes: &[u8]| {
        if let Some(Ok(p)) = &mut pending
            && let Err(e) = p.write(bytes)
        {
            pending = Some(Err(e));
        }
    };
    write(&first);
    let mut entries = 0;
    let mut line = prelude.entries_line;
    let rest = Piece::Owned(first[prelude.entries_at..].to_vec());
    let mut next = Some(rest);
    while let Some(piece) = next.take() {
        let mut batch = Batch {
            // Room for a piece of short lines, and at least
            // [`BIG`](crate::alloc::BIG) bytes:
            // a block that size is the kernel's, returned whole when the
            // compiler frees it (a smaller one, made on this thread and
            // freed on the other, stayed resident after the load).
            placed: Vec::with_capacity(PLACED),
            owned: Vec::new(),
            piece: Piece::Borrowed(&[]),
        };
        let text: &[u8] = &piece;
        entries += prelude
            .entries(text, line, file, |e| {
                if checks.is_some() {
                    gate::check_entry(&e, protected)?;
                }
                let name = match &e.name {
                    std::borrow::Cow::Borrowed(n) => place(text, n),
                    std::borrow::Cow::Owned(n) => {
                        batch.owned.push(n.clone());
                        ((batch.owned.len() as u32 - 1) | OWNED, 0)
                    }
                };
                batch.placed.push(Placed {
                    name,
                    kind: e.kind,
                    category: place(text, e.category),
                    reference: place(text, e.reference),
                    line: u32::try_from(e.line).unwrap_or(u32::MAX),
                });
                Ok::<(), gate::GateError>(())
            })
            .map_err(Failed::Parse)?;
        line += text.iter().filter(|&&b| b == b'\n').count();
        batch.piece = piece;
        // The compiler only stops when the sender is dropped.
        let _ = tx.send(batch);
        next = pieces.next(false).map_err(Failed::Refused)?;
        if let Some(p) = &next {
            if let Some(h) = &mut hasher {
                h.update(&p[..]);
            }
            write(p);
        }
    }
    let header = prelude.header.clone();
    drop(prelude);
    drop(first);
    let second = Second {
        digest: hasher.map(|h| h.finalize().into()),
        written: pending.map(|p| p.and_then(Pending::finish)),
    };
    Ok((header, entries, second))
}

/// The crate-neutral priority (0 lowest .. 99 highest) that
/// `thread_priority` turns into nice 10 under SCHED_OTHER: it maps `p` to
/// `-20 + trunc(39 * (1 - p / 99))`, which is 10 for 22 (25 gave nice 9).
const LOAD_PRIORITY: u8 = 22;

/// Nice 10 for the calling thread (best effort: an error only means the
/// load competes with queries on equal terms).
fn lower_priority() {
    use thread_priority::{ThreadPriority, ThreadPriorityValue, set_current_thread_priority};
    if let Ok(value) = ThreadPriorityValue::try_from(LOAD_PRIORITY) {
        let _ = set_current_thread_priority(ThreadPriority::Crossplatform(value));
    }
}

#[cfg(test)]
mod tests {
    /// The nice value of the calling thread: field 19 of its `stat` line,
    /// counted after the command name (which may hold spaces).
    #[cfg(target_os = "linux")]
    fn own_nice() -> i32 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        after_name.split(' ').nth(16).unwrap().parse().unwrap()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_load_threads_run_at_nice_10() {
        let nice = std::thread::spawn(|| {
            super::lower_priority();
            own_nice()
        })
        .join()
        .unwrap();
        assert_eq!(nice, 10);
    }

    use super::*;
    use crate::list::signature::{keygen, sign};

    /// A signed list of `n` entries in `dir` (its lines padded so that it
    /// spans several pieces), with `edit` applied to its text first.
    struct Signed {
        dir: tempfile::TempDir,
        settings: Settings,
        secret: String,
        path: std::path::PathBuf,
    }

    impl Signed {
        fn new(n: usize, serial: u64, edit: impl FnOnce(&mut String)) -> Signed {
            let dir = tempfile::tempdir().unwrap();
            let keys = keygen().unwrap();
            std::fs::write(dir.path().join("k.pub"), &keys.public).unwrap();
            let settings = Settings {
                trusted_keys: TrustedKeys::load(&[dir.path().join("k.pub")]).unwrap(),
                protected: vec!["wordpress.com".into()],
                state_dir: dir.path().join("state"),
                max_bytes: 64 << 20,
                deadline_hours: 24,
            };
            let path = dir.path().join("list.txt");
            let s = Signed {
                dir,
                settings,
                secret: keys.secret,
                path,
            };
            s.write(&text(n, serial, edit));
            s
        }

        fn write(&self, text: &str) {
            std::fs::write(&self.path, text).unwrap();
            let sig = sign(&self.secret, text.as_bytes(), "t").unwrap();
            std::fs::write(crate::list::signature_path(&self.path), sig).unwrap();
        }

        /// The judgement of the file read in pieces, and of its bytes in
        /// memory, as one comparable outcome each.
        fn both(&self) -> (String, String) {
            let now = OffsetDateTime::now_utc();
            let floor = Floor::default();
            let show = |d: Result<Decision, Refusal>| match d {
                Ok(Decision::Apply(a)) => {
                    let mut rules: Vec<String> = a
                        .policy
                        .rules()
                        .map(|r| {
                            format!("{} {:?} {} {}", r.name, r.kind, r.category, r.reference())
                        })
                        .collect();
                    rules.sort();
                    format!(
                        "apply {} {} {}",
                        a.header.serial,
                        a.entries,
                        rules.join(",")
                    )
                }
                Ok(other) => format!("{other:?}"),
                Err(r) => format!("refused: {r}"),
            };
            let pieces =
                consider_file(&self.settings, None, &floor, &self.path, now).map(|(d, _)| d);
            let pair = Pair::read(&self.path, self.settings.max_bytes).unwrap();
            let whole = consider(
                &self.settings,
                None,
                &self.path,
                &pair.list,
                &pair.signature,
                now,
            );
            (show(pieces), show(whole))
        }
    }

    /// A list of `n` entries, each line about 100 bytes.
    fn text(n: usize, serial: u64, edit: impl FnOnce(&mut String)) -> String {
        let mut t = format!(
            "#rempart-list v1\nissuer: T\nserial: {serial}\nissued: 2026-01-01T00:00:00Z\nexpires: 2099-01-01T00:00:00Z\nx-note: a header extension\n\n# a comment\nname\tmatch\tcategory\treference\tadded\treview\n"
        );
        for i in 0..n {
            let kind = if i % 3 == 0 { "exact" } else { "subtree" };
            t.push_str(&format!(
                "n{i}.padding-padding-padding-padding-padding.example.fr\t{kind}\tcat{}\tREF-{i:08}-padding-padding\t2026-01-02\tok\n",
                i % 4
            ));
        }
        edit(&mut t);
        t
    }

    /// The line of the entry `n{i}.` in `text`.
    fn line_of(text: &str, i: usize) -> usize {
        let at = text.find(&format!("\nn{i}.")).unwrap();
        text[..at].matches('\n').count() + 2
    }

    #[test]
    fn a_list_read_in_pieces_compiles_as_the_same_list_read_whole() {
        // About 3 MB: four pieces.
        let s = Signed::new(30_000, 7, |_| {});
        let (pieces, whole) = s.both();
        assert!(pieces.starts_with("apply 7 30000 "), "{}", &pieces[..80]);
        assert_eq!(pieces, whole);
        // Without a final line end, with an IDN and an upper-case name in
        // a later piece, and a line longer than a piece.
        let long = format!("x-{}", "y".repeat(PIECE + 10));
        let s = Signed::new(30_000, 8, |t| {
            t.push_str("Straße-ÉTÉ.example.fr\tsubtree\tc\tR\t2026-01-02\tok\n");
            t.push_str("UPPER.Example.FR.\texact\tc\tR2\t2026-01-02\tok\n");
            t.push_str(&format!(
                "long.example.fr\tsubtree\tc\t{long}\t2026-01-02\tok"
            ));
        });
        let (pieces, whole) = s.both();
        assert!(pieces.starts_with("apply 8 30003 "), "{}", &pieces[..80]);
        assert!(pieces.contains(",xn--"), "IDN");
        assert!(pieces.contains("upper.example.fr Exact"), "case");
        assert_eq!(pieces, whole);
        // A header longer than a piece: the first piece grows to hold it.
        let s = Signed::new(30_000, 9, |t| {
            *t = t.replacen("a header extension", &"z".repeat(3 * PIECE), 1);
        });
        let (pieces, whole) = s.both();
        assert!(pieces.starts_with("apply 9 30000 "), "{}", &pieces[..80]);
        assert_eq!(pieces, whole);
    }

    #[test]
    fn errors_in_a_later_piece_name_the_same_line_as_whole() {
        type Edit = Box<dyn Fn(&mut String)>;
        let cases: Vec<(&str, Edit)> = vec![
            (
                "bad match",
                Box::new(|t: &mut String| {
                    *t = t.replacen(
                        "n25000.padding-padding-padding-padding-padding.example.fr\tsubtree",
                        "n25000.padding-padding-padding-padding-padding.example.fr\tsometimes",
                        1,
                    );
                }),
            ),
            (
                "listed twice",
                Box::new(|t: &mut String| {
                    t.push_str("n2.padding-padding-padding-padding-padding.example.fr\tsubtree\tc\tR\t2026-01-02\tok\n");
                }),
            ),
            (
                "carriage return",
                Box::new(|t: &mut String| {
                    *t = t.replacen("REF-00027000", "REF-00027000\r", 1);
                }),
            ),
            (
                "protected",
                Box::new(|t: &mut String| {
                    t.push_str("wordpress.com\tsubtree\tc\tR\t2026-01-02\tok\n");
                }),
            ),
            (
                "fields",
                Box::new(|t: &mut String| {
                    *t = t.replacen(
                        "REF-00020000-padding-padding\t",
                        "REF-00020000-padding-padding\t\t",
                        1,
                    );
                }),
            ),
        ];
        for (what, edit) in cases {
            let s = Signed::new(30_000, 7, |t| edit(t));
            let (pieces, whole) = s.both();
            assert!(pieces.starts_with("refused: "), "{what}: {pieces}");
            assert_eq!(pieces, whole, "{what}");
        }
        // The duplicate names both lines.
        let s = Signed::new(30_000, 7, |t| {
            t.push_str("n29999.padding-padding-padding-padding-padding.example.fr\tsubtree\tc\tR\t2026-01-02\tok\n");
        });
        let text = std::fs::read_to_string(&s.path).unwrap();
        let (pieces, _) = s.both();
        let first = line_of(&text, 29_999);
        let second = text.matches('\n').count();
        assert!(
            pieces.contains(&format!("line {second}: "))
                && pieces.contains(&format!("(first on line {first})")),
            "{pieces}"
        );
    }

    #[test]
    fn a_file_that_changes_between_the_passes_is_refused() {
        let s = Signed::new(20_000, 7, |_| {});
        let text = std::fs::read_to_string(&s.path).unwrap();
        let digest = digest(text.as_bytes());
        // The second pass reads other bytes than those the first verified:
        // the same length, one entry's reference changed.
        std::fs::write(&s.path, text.replacen("REF-00010000", "REF-00099999", 1)).unwrap();
        let (f, len) = open_regular(&s.path, s.settings.max_bytes).unwrap();
        let keep = Keep {
            dir: &s.settings.state_dir,
            signature: b"sig",
            length: len,
        };
        let result = compile(
            &s.settings,
            &s.path,
            Pieces::file(f, &s.path, s.settings.max_bytes),
            Sizes {
                lines: 20_000,
                bytes: text.len(),
            },
            Some((None, OffsetDateTime::now_utc())),
            Some(keep),
            digest,
            "K".into(),
        );
        let e = result.expect_err("refused");
        assert!(e.reason.contains("changed while it was read"), "{e}");
        // Nothing is left in the state directory.
        let left: Vec<_> = std::fs::read_dir(&s.settings.state_dir)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn the_copy_written_while_reading_is_the_list_as_signed() {
        let s = Signed::new(20_000, 7, |_| {});
        let now = OffsetDateTime::now_utc();
        let (decision, copy) =
            consider_file(&s.settings, None, &Floor::default(), &s.path, now).unwrap();
        let Decision::Apply(a) = decision else {
            panic!("{decision:?}")
        };
        let KeptCopy::Written(Ok(written)) = copy else {
            panic!("not written")
        };
        // Not in place before the commit.
        assert!(state::load(&s.settings.state_dir).unwrap().is_none());
        written.commit().unwrap();
        let kept = state::load(&s.settings.state_dir).unwrap().unwrap();
        assert_eq!(kept.list, std::fs::read(&s.path).unwrap());
        assert_eq!(
            kept.signature,
            std::fs::read(crate::list::signature_path(&s.path)).unwrap()
        );
        assert_eq!(kept.meta.serial, 7);
        // And it verifies as the kept list.
        let again = verify_kept(&s.settings, &s.path, &kept.list, &kept.signature).unwrap();
        assert_eq!(again.digest, a.digest);
        // A second look at the same file changes nothing and writes nothing.
        let in_force = a.in_force();
        let (decision, copy) = consider_file(
            &s.settings,
            Some(&in_force),
            &Floor::default(),
            &s.path,
            now,
        )
        .unwrap();
        assert!(matches!(decision, Decision::Unchanged));
        assert!(matches!(copy, KeptCopy::None));
    }

    /// minisign before 0.10 signed the data itself, not its hash: such a
    /// signature cannot be checked a piece at a time, and the file is read
    /// whole. Made by the `minisign` tool's `-l`, when it is installed.
    #[test]
    fn a_legacy_signature_is_verified_over_the_whole_file() {
        let s = Signed::new(20_000, 7, |_| {});
        let key = s.dir.path().join("k.key");
        std::fs::write(&key, &s.secret).unwrap();
        let signed = std::process::Command::new("minisign")
            .args(["-S", "-l", "-s"])
            .arg(&key)
            .arg("-m")
            .arg(&s.path)
            .stdin(std::process::Stdio::null())
            .output();
        match signed {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!("minisign -S -l: {}", String::from_utf8_lossy(&out.stderr)),
            Err(e) => {
                eprintln!("skipped: no minisign tool ({e})");
                return;
            }
        }
        let sig = std::fs::read_to_string(crate::list::signature_path(&s.path)).unwrap();
        let now = OffsetDateTime::now_utc();
        let (decision, copy) =
            consider_file(&s.settings, None, &Floor::default(), &s.path, now).unwrap();
        assert!(
            matches!(decision, Decision::Apply(_)),
            "{decision:?} with {sig}"
        );
        assert!(matches!(copy, KeptCopy::Bytes(p) if !p.list.is_empty()));
        // A legacy signature over other bytes is refused.
        let text = std::fs::read_to_string(&s.path).unwrap();
        std::fs::write(&s.path, text.replacen("REF-00010000", "REF-00099999", 1)).unwrap();
        let e = consider_file(&s.settings, None, &Floor::default(), &s.path, now).unwrap_err();
        assert!(e.reason.contains("signature"), "{e}");
    }
}
