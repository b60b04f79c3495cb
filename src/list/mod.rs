//! The list format (v1) and its authenticity.
//!
//! - [`format`]: parse and serialise the text format of BEHAVIOUR section 4.
//! - [`signature`]: trusted minisign public keys, verification, key making
//!   and signing.
//! - [`gate`]: the checks a verified list must pass before it is applied.
//! - [`state`]: the list in force, kept in the state directory.
//! - [`load`]: the one path every candidate list takes (read, verify, parse,
//!   gates), used at start and by every reload trigger.

pub mod format;
pub mod gate;
pub mod load;
pub mod signature;
pub mod state;

pub use format::{Entry, Header, List, MatchKind, ParseError};
pub use load::{Accepted, Decision, InForce, LoadSettings, Refusal};
