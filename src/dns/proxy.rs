//! The PROXY protocol, version 2 (HAProxy's specification, "The PROXY
//! protocol, Versions 1 & 2", section 2.2), as dnsdist sends it with
//! `useProxyProtocol=true`: a binary header before the DNS message of each
//! UDP datagram, or at the start of a TCP connection, carrying the address
//! of the client the proxy is speaking for.
//!
//! Who may send one is the operator's choice (`server.proxy_from`): a
//! header carries an address the ACL, the audit trail and the metrics then
//! believe, so one from anywhere else is dropped unread ([`Proxies`]). A
//! plain query from a proxy (a proxy not configured to send the header) is
//! refused unless `server.proxy_required = false`: served as it is, it
//! would be answered as if the proxy were the subscriber.
//!
//! The parser is total: any input gives a header, "no header here" or an
//! error, never a panic, and reads at most the length the header declares
//! (at most 16 + 65535 octets, bounded by the datagram or by
//! [`MAX_TCP_HEADER`] on TCP).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

use crate::metrics::ProxyRejection;

/// Section 2.2: the twelve octets that open every version 2 header.
pub const SIGNATURE: [u8; 12] = [
    0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
];

/// The fixed part: signature, version and command, family and transport,
/// length.
pub const FIXED_LEN: usize = 16;

/// Longest header accepted at the start of a TCP connection: the
/// addresses and room for the TLVs a proxy adds (dnsdist adds none unless
/// told to). A longer one closes the connection, unread.
pub const MAX_TCP_HEADER: usize = FIXED_LEN + 512;

/// A version 2 header, read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Octets the header takes, TLVs included: the DNS message follows.
    pub len: usize,
    /// The client's address and port (command PROXY over IPv4 or IPv6);
    /// `None` for command LOCAL (the proxy speaking for itself, e.g. a
    /// health check) or an address family other than IP: the connection's
    /// own address stands (section 2.2).
    pub source: Option<SocketAddr>,
}

/// Why a header was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// Fewer octets than the header declares.
    #[error("PROXY v2 header truncated")]
    Truncated,
    /// A version other than 2 after the signature.
    #[error("PROXY header of version {0}, only 2 is accepted")]
    Version(u8),
    /// A command other than LOCAL (0) and PROXY (1).
    #[error("PROXY v2 header with unknown command {0}")]
    Command(u8),
    /// A declared length too short for the declared address family.
    #[error("PROXY v2 address block of {0} octets, too short for its family")]
    AddressBlock(usize),
}

/// Whether `bytes` start with the version 2 signature.
pub fn has_signature(bytes: &[u8]) -> bool {
    bytes.len() >= SIGNATURE.len() && bytes[..SIGNATURE.len()] == SIGNATURE
}

/// The declared length of the whole header, from its fixed part (which
/// must be [`FIXED_LEN`] octets with the signature).
pub fn declared_len(fixed: &[u8; FIXED_LEN]) -> usize {
    FIXED_LEN + usize::from(u16::from_be_bytes([fixed[14], fixed[15]]))
}

/// Read the header at the start of `bytes`: `Ok(None)` if they do not
/// start with the signature (a plain DNS message).
pub fn parse(bytes: &[u8]) -> Result<Option<Header>, ProxyError> {
    if !has_signature(bytes) {
        return Ok(None);
    }
    let Some(fixed) = bytes.get(..FIXED_LEN) else {
        return Err(ProxyError::Truncated);
    };
    let version = fixed[12] >> 4;
    let command = fixed[12] & 0x0F;
    if version != 2 {
        return Err(ProxyError::Version(version));
    }
    let family = fixed[13] >> 4;
    let declared = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    let len = FIXED_LEN + declared;
    let Some(block) = bytes.get(FIXED_LEN..len) else {
        return Err(ProxyError::Truncated);
    };
    let source = match command {
        // LOCAL: "the receiver must use the real connection endpoints";
        // the rest of the header is skipped.
        0x0 => None,
        0x1 => match family {
            // AF_INET: source, destination (4 octets each), then ports.
            0x1 => {
                let a = block.get(..12).ok_or(ProxyError::AddressBlock(declared))?;
                let ip = Ipv4Addr::new(a[0], a[1], a[2], a[3]);
                let port = u16::from_be_bytes([a[8], a[9]]);
                Some(SocketAddr::new(IpAddr::V4(ip), port))
            }
            // AF_INET6: 16 octets each, then ports.
            0x2 => {
                let a = block.get(..36).ok_or(ProxyError::AddressBlock(declared))?;
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&a[..16]);
                let port = u16::from_be_bytes([a[32], a[33]]);
                Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port))
            }
            // AF_UNSPEC, AF_UNIX: no IP address to believe; the
            // connection's own stands.
            _ => None,
        },
        other => return Err(ProxyError::Command(other)),
    };
    Ok(Some(Header { len, source }))
}

/// Who may speak for others (`server.proxy_from`), and whether they must.
#[derive(Debug, Clone, Default)]
pub struct Proxies {
    from: Vec<IpNet>,
    required: bool,
}

/// What to do with a message (a datagram, or the start of a connection),
/// given who sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Serve the DNS message at this offset for this client.
    Serve {
        /// The client the ACL, audit and metrics see.
        client: SocketAddr,
        /// Where the DNS message starts.
        offset: usize,
    },
    /// A plain query from a proxy that must send a header: REFUSED.
    Refuse,
    /// A header from outside `server.proxy_from` (`Untrusted`), or a
    /// damaged one (`Malformed`): dropped, no answer.
    Drop(ProxyRejection),
}

impl Proxies {
    /// Headers accepted from `from`; a plain query from them refused when
    /// `required`.
    pub fn new(from: Vec<IpNet>, required: bool) -> Proxies {
        Proxies { from, required }
    }

    /// Whether `ip` is a configured proxy.
    pub fn is_proxy(&self, ip: IpAddr) -> bool {
        if self.from.is_empty() {
            return false;
        }
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.from.iter().any(|net| net.contains(&ip))
    }

    /// What to do with `bytes` received from `peer`.
    pub fn admit(&self, peer: SocketAddr, bytes: &[u8]) -> Admission {
        if !self.is_proxy(peer.ip()) {
            return if has_signature(bytes) {
                Admission::Drop(ProxyRejection::Untrusted)
            } else {
                Admission::Serve {
                    client: peer,
                    offset: 0,
                }
            };
        }
        match parse(bytes) {
            Ok(Some(header)) => Admission::Serve {
                client: header.source.unwrap_or(peer),
                offset: header.len,
            },
            Ok(None) if self.required => Admission::Refuse,
            Ok(None) => Admission::Serve {
                client: peer,
                offset: 0,
            },
            Err(_) => Admission::Drop(ProxyRejection::Malformed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4_header(command: u8, src: [u8; 4], port: u16, tlvs: &[u8]) -> Vec<u8> {
        let mut h = SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(0x12); // AF_INET, DGRAM
        h.extend_from_slice(&((12 + tlvs.len()) as u16).to_be_bytes());
        h.extend_from_slice(&src);
        h.extend_from_slice(&[127, 0, 0, 1]);
        h.extend_from_slice(&port.to_be_bytes());
        h.extend_from_slice(&53u16.to_be_bytes());
        h.extend_from_slice(tlvs);
        h
    }

    #[test]
    fn reads_an_ipv4_proxy_header_and_finds_the_message_after_it() {
        let mut bytes = v4_header(1, [192, 0, 2, 7], 4242, &[0x04, 0x00, 0x01, 0xAA]);
        let header_len = bytes.len();
        bytes.extend_from_slice(b"dns message");
        let h = parse(&bytes).unwrap().unwrap();
        assert_eq!(h.len, header_len);
        assert_eq!(h.source, Some("192.0.2.7:4242".parse().unwrap()));
        assert_eq!(&bytes[h.len..], b"dns message");
    }

    #[test]
    fn reads_an_ipv6_proxy_header() {
        let mut bytes = SIGNATURE.to_vec();
        bytes.extend_from_slice(&[0x21, 0x21, 0, 36]);
        let src: Ipv6Addr = "2001:db8::9".parse().unwrap();
        bytes.extend_from_slice(&src.octets());
        bytes.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        bytes.extend_from_slice(&[0x10, 0x00, 0, 53]);
        let h = parse(&bytes).unwrap().unwrap();
        assert_eq!(h.source, Some("[2001:db8::9]:4096".parse().unwrap()));
        assert_eq!(h.len, bytes.len());
    }

    #[test]
    fn local_command_keeps_the_connection_address() {
        let bytes = v4_header(0, [192, 0, 2, 7], 1, &[]);
        let h = parse(&bytes).unwrap().unwrap();
        assert_eq!(h.source, None);
        let proxies = Proxies::new(vec!["127.0.0.1/32".parse().unwrap()], true);
        let peer: SocketAddr = "127.0.0.1:5300".parse().unwrap();
        assert_eq!(
            proxies.admit(peer, &bytes),
            Admission::Serve {
                client: peer,
                offset: bytes.len()
            }
        );
    }

    #[test]
    fn damaged_headers_are_errors() {
        let good = v4_header(1, [192, 0, 2, 7], 1, &[]);
        assert_eq!(parse(&good[..20]), Err(ProxyError::Truncated));
        assert_eq!(parse(&good[..14]), Err(ProxyError::Truncated));
        let mut v1 = good.clone();
        v1[12] = 0x11;
        assert_eq!(parse(&v1), Err(ProxyError::Version(1)));
        let mut cmd = good.clone();
        cmd[12] = 0x2F;
        assert_eq!(parse(&cmd), Err(ProxyError::Command(15)));
        let mut short = good.clone();
        short[15] = 4;
        assert_eq!(parse(&short), Err(ProxyError::AddressBlock(4)));
        assert_eq!(parse(b"\x12\x34plain dns"), Ok(None));
    }

    #[test]
    fn only_configured_proxies_may_send_a_header() {
        let proxies = Proxies::new(vec!["127.0.0.1/32".parse().unwrap()], true);
        let header = v4_header(1, [192, 0, 2, 7], 1, &[]);
        let proxy: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let other: SocketAddr = "127.0.0.2:1".parse().unwrap();
        assert_eq!(
            proxies.admit(other, &header),
            Admission::Drop(ProxyRejection::Untrusted)
        );
        assert_eq!(
            proxies.admit(proxy, &header[..20]),
            Admission::Drop(ProxyRejection::Malformed)
        );
        assert_eq!(
            proxies.admit(other, b"plain query"),
            Admission::Serve {
                client: other,
                offset: 0
            }
        );
        assert_eq!(proxies.admit(proxy, b"plain query"), Admission::Refuse);
        let lenient = Proxies::new(vec!["127.0.0.1/32".parse().unwrap()], false);
        assert_eq!(
            lenient.admit(proxy, b"plain query"),
            Admission::Serve {
                client: proxy,
                offset: 0
            }
        );
        // No proxy configured: a header is still never believed.
        assert_eq!(
            Proxies::default().admit(proxy, &header),
            Admission::Drop(ProxyRejection::Untrusted)
        );
    }

    proptest::proptest! {
        /// Total: any bytes after the signature give an answer, never a
        /// panic, and a header never claims more octets than were given.
        #[test]
        fn any_input_is_answered_without_panic(tail in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let mut bytes = SIGNATURE.to_vec();
            bytes.extend_from_slice(&tail);
            if let Ok(Some(h)) = parse(&bytes) {
                proptest::prop_assert!(h.len <= bytes.len());
            }
            let _ = parse(&tail);
        }
    }
}
