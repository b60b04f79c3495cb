//! DNS protocol numbers that both sides of the resolver use: the side that
//! answers clients ([`crate::dns`]) and the side that asks upstream
//! ([`crate::upstream`]). A leaf: it imports nothing of the crate.

use std::sync::Arc;

/// RFC 8914 section 2: the EDNS option code of an Extended DNS Error.
pub const EDE_OPTION_CODE: u16 = 15;
/// RFC 8914 section 4.23: "No Reachable Authority" (no upstream answered
/// in time).
pub const EDE_NO_REACHABLE_AUTHORITY: u16 = 22;
/// RFC 8914 section 4.24: "Network Error" (the transport to the upstream
/// failed).
pub const EDE_NETWORK_ERROR: u16 = 23;
/// The UDP payload size we advertise (the DNS flag day 2020 value).
pub const EDNS_PAYLOAD: u16 = 1232;

/// An Extended DNS Error: INFO-CODE and EXTRA-TEXT.
pub type Ede = (u16, Arc<str>);

/// How a query reached us: the `transport` of the audit records and of
/// `rempart_queries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Plain DNS over UDP.
    Udp,
    /// Plain DNS over TCP (RFC 7766).
    Tcp,
    /// DNS over TLS (RFC 7858).
    Dot,
    /// DNS over HTTPS (RFC 8484).
    Doh,
}

impl Transport {
    /// Every transport, in the order of their index.
    pub const ALL: [Transport; 4] = [
        Transport::Udp,
        Transport::Tcp,
        Transport::Dot,
        Transport::Doh,
    ];

    /// The name written in audit records and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Dot => "dot",
            Transport::Doh => "doh",
        }
    }

    /// Whether the answer may be as long as a DNS message can be (every
    /// transport but UDP carries the length in its framing).
    pub fn is_stream(self) -> bool {
        self != Transport::Udp
    }
}
