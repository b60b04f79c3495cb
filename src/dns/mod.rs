//! Speaking DNS: deciding each answer and writing it.
//!
//! A query reaches the [`Engine`] by one of two doors, both our own: the
//! TCP accept loop (`tcp`), which bounds connections before reading them,
//! and the UDP receive loop (`udp`), which reads datagrams itself. The engine refuses clients outside
//! `server.allow`, loads the policy snapshot once, and either builds the
//! redirect or forwards the query upstream and applies the same snapshot to
//! the answer's CNAME chain. [`response`] turns the decision into a message
//! for both doors. Plain UDP queries that need neither upstream nor hickory
//! (a listed name, or an answer kept ready to send) are answered inside the
//! receive loop, from bytes.
//!
//! The modules, each using only those listed before it:
//!
//! - [`header`]: the 12-octet header, its bits by name;
//! - [`edns`]: the OPT record and Extended DNS Errors of answers;
//! - [`query`]: reading a plain query straight from the datagram;
//! - [`wire`]: answers kept ready to send, valid under one policy snapshot;
//! - [`redirect`]: the redirect, prepared once, as hickory records or bytes;
//! - `mandatory`: the RFCs' rules for requests (opcode, counts, EDNS
//!   version, class), checked before any decision;
//! - [`response`]: the reply and the one builder of the response message,
//!   which truncates to the client's size;
//! - [`engine`]: the request handling, shared by both doors, and
//!   [`Handler`], the service's handle on it;
//! - [`proxy`]: the PROXY protocol v2 header a load balancer puts before
//!   a query, and who may send one (`server.proxy_from`);
//! - `tcp`: the bounded accept loop and the connections (TCP and DoT);
//! - `https`: DNS over HTTPS, its HTTP side (hyper) and its bounds;
//! - `udp`: the receive loop (its system calls in a private module, the
//!   crate's only `unsafe`).

pub mod edns;
pub mod engine;
pub mod header;
pub(crate) mod https;
pub(crate) mod mandatory;
pub mod proxy;
pub mod query;
pub mod redirect;
pub mod response;
pub(crate) mod tcp;
pub(crate) mod udp;
pub mod wire;

pub use engine::{Engine, Handler};
pub use redirect::{AnswerKind, RedirectTemplate};
pub use response::{Reply, Response};
