//! Rempart: a DNS resolver that enforces administrative blocklists.
//!
//! The data's way through the crate, input to output; each module uses only
//! those named after it in this map, never one before it.
//!
//! **Running it.** The `rempart` binary hands its command line to [`cli`]
//! (one file per subcommand group). `rempart serve` builds a [`service`]:
//! the assembly of everything below from the [`config`], then [`server`]
//! binds the sockets and runs them until a shutdown signal. [`admin`]
//! serves `/healthz`, `/readyz`, `/metrics` and the list endpoints.
//!
//! **Change.** [`admission`] is the one path by which a list takes effect
//! (one per list: each authority's list is admitted on its own),
//! whatever its source (`sources`: the file watcher and the web origin's
//! poller; SIGHUP; the [`admin`] endpoints; the file at start): read,
//! verify, parse, gates, compile off
//! the query path, persist, swap, record.
//!
//! **Output.** [`dns`] speaks DNS: the UDP receive loop, the TCP and DoT
//! accept loop and the DoH server (behind a proxy, with the client address
//! its PROXY v2 header carries) all reach one engine, which refuses clients
//! outside the allowed networks, asks the policy for a verdict, and either writes the
//! redirect (A/AAAA to the information page, NODATA otherwise, EDE 16) or
//! forwards the query through [`upstream`] (its own UDP/TCP exchange and a
//! DNSSEC-transparent answer cache bounded in bytes)
//! and applies the policy to every name of the answer's CNAME chain.
//! [`rpz`] serves each list in force as a Response Policy Zone to the
//! other resolvers of a fleet (AXFR, IXFR, NOTIFY), fed by the admission
//! path once a list is in force.
//! [`audit`] proves what was decided: a bounded queue, a hash-chained and
//! sealed trail, its verification and the auditor's report.
//!
//! **Decision.** [`policy`] is the compiled, immutable snapshot of every
//! list, in precedence order, whose `verdict(name)` answers without
//! allocation whether a name is listed, by which list and entry; it lives
//! in an `ArcSwap`, so the query path loads it without a lock, and a new
//! list replaces its own part of it (the other lists' compiled tables are
//! shared).
//!
//! **Input.** [`list`] is the authority's signed list as a document: the
//! format (v1), the list and signature pair, minisign keys, the gates, and
//! the state directory. [`config`] turns a strict TOML file into a
//! validated [`config::Config`].
//!
//! **Shared.** [`alloc`] is the process's allocator (big blocks mapped
//! on their own, so that a list's memory goes back when it is freed);
//! [`metrics`] declares every metric name once; [`text`] prints
//! hex and RFC 3339 the one way; [`tls`] reads certificate and key files
//! (and re-reads them for the DNS listeners); [`proto`] holds the DNS numbers the
//! answering and the forwarding sides share.

pub mod admin;
pub mod admission;
pub mod alloc;
pub mod audit;
pub mod cli;
pub mod config;
pub mod dns;
pub mod list;
pub mod metrics;
pub mod policy;
pub mod proto;
pub mod rpz;
pub mod server;
pub mod service;
pub(crate) mod sources;
pub mod text;
pub mod tls;
pub mod upstream;
