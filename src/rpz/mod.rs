//! Rempart as the RPZ primary of a fleet: each list in force, after its
//! signature and every gate, served as a Response Policy Zone
//! (draft-vixie-dnsop-dns-rpz) to the resolvers a provider already runs.
//!
//! - [`zone`]: the records of a list version, the SOA serial, the IXFR
//!   history (pure, no I/O).

pub mod zone;

pub use zone::{Action, Diff, History, Redirect, RpzVersion, Zone, ZoneNameError};
