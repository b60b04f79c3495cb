//! Rempart: a DNS resolver that enforces an administrative blocklist.
//!
//! **Input.** [`config`] turns a strict TOML file into a validated
//! [`config::Config`]. [`list`] reads the authority's signed list (format v1),
//! checks its minisign signature against the trusted keys and runs the gates
//! (serial never going back, not expired, no protected name blocked) before a
//! list may be applied; the list in force is kept in the state directory.
//!
//! **Decision.** [`policy`] compiles a verified list into an immutable
//! [`policy::Policy`] snapshot whose `verdict(name)` answers, without
//! allocation, whether a name is listed and by which entry. The snapshot lives
//! in an `ArcSwap`, so the query path loads it without a lock and a reload
//! replaces it whole.
//!
//! **Output.** [`dns`] speaks DNS: the request handler checks the client
//! against the allowed networks, asks the policy for a verdict, builds the
//! redirect answer (A/AAAA to the information page, NODATA otherwise, EDE 16)
//! or forwards the query through [`upstream`] (our UDP/TCP exchange plus a
//! DNSSEC-transparent, byte-bounded answer cache) and applies the policy to every name of the answer's CNAME chain.
//! [`server`] binds the sockets and runs until a shutdown signal.
//!
//! **Change.** [`reload`] is the one path by which a new list takes effect
//! (file watcher, SIGHUP, [`admin`] endpoints): verify, gates, compile off the
//! query path, then swap. [`metrics`] declares every metric name once.

pub mod admin;
pub mod audit;
pub mod cli;
pub mod config;
pub mod dns;
pub mod list;
pub mod metrics;
pub mod policy;
pub mod reload;
pub mod server;
pub mod text;
pub mod upstream;
