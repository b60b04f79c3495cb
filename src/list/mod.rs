//! The list format (v1) and its authenticity. A leaf: it imports no module
//! above it (admitting a list, compiling and recording it belong to
//! `admission`, which uses this one).
//!
//! - [`format`](mod@format): parse and serialise the text format of BEHAVIOUR section 4.
//! - [`pair`]: a list and its `.minisig` as bytes: reading them, the digest.
//! - [`signature`]: trusted minisign public keys, verification, key making
//!   and signing.
//! - [`gate`]: the checks a verified list must pass before it is applied.
//! - [`state`]: the list in force, kept in the state directory.
//! - [`floor`]: the serial floor and the history of lists applied, kept
//!   apart from the state file.

pub mod floor;
pub mod format;
pub mod gate;
pub mod pair;
pub mod signature;
pub mod state;

pub use format::{Entry, Header, List, MatchKind, ParseError};
pub use pair::{Pair, ReadError, digest, signature_path};
