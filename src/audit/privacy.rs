//! How a client address appears in the trail (`audit.client_ip`).
//!
//! - `none`: no `client` field;
//! - `truncate`: the /24 of an IPv4 address, the /56 of an IPv6 address;
//! - `hmac`: HMAC-SHA-256 of the address (its 4 or 16 octets) under a random
//!   key drawn in memory for each UTC day and never written anywhere, cut to
//!   128 bits in hex: one day's records link a client, two days' do not, and
//!   a restart starts a new key;
//! - `full`: the address.
//!
//! Applied by the writer thread, so that the query path never touches the
//! key (see [`super::writer`]).

use std::net::{IpAddr, Ipv6Addr};

use hmac::{Hmac, Mac};
use time::Date;

use crate::config::ClientIpMode;

/// The privacy mode and, for `hmac`, the key of the day.
pub(super) struct ClientPrivacy {
    mode: ClientIpMode,
    /// The key and the UTC day it serves; a new day draws a new one and
    /// the old one is gone.
    hmac_key: Option<(Date, [u8; 32])>,
}

impl ClientPrivacy {
    pub(super) fn new(mode: ClientIpMode) -> ClientPrivacy {
        ClientPrivacy {
            mode,
            hmac_key: None,
        }
    }

    /// The `client` field for `ip` on the UTC day `day`; `None` when the
    /// mode records no client.
    pub(super) fn client(&mut self, ip: IpAddr, day: Date) -> Option<String> {
        match self.mode {
            ClientIpMode::None => None,
            ClientIpMode::Full => Some(ip.to_string()),
            ClientIpMode::Truncate => Some(match ip {
                IpAddr::V4(v4) => {
                    let o = v4.octets();
                    format!("{}.{}.{}.0/24", o[0], o[1], o[2])
                }
                IpAddr::V6(v6) => {
                    let mut o = v6.octets();
                    o[7] = 0;
                    o[8..].fill(0);
                    format!("{}/56", Ipv6Addr::from(o))
                }
            }),
            ClientIpMode::Hmac => {
                let Some(key) = self.key_of(day) else {
                    return Some("hmac-unavailable".into());
                };
                let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).ok()?;
                match ip {
                    IpAddr::V4(v4) => mac.update(&v4.octets()),
                    IpAddr::V6(v6) => mac.update(&v6.octets()),
                }
                let out = mac.finalize().into_bytes();
                Some(crate::text::hex(&out[..16]))
            }
        }
    }

    /// The HMAC key of `day`, drawn on the day's first use; `None` if the
    /// system cannot give random bytes.
    fn key_of(&mut self, day: Date) -> Option<[u8; 32]> {
        match self.hmac_key {
            Some((d, k)) if d == day => Some(k),
            _ => {
                let mut k = [0u8; 32];
                getrandom::fill(&mut k).ok()?;
                self.hmac_key = Some((day, k));
                Some(k)
            }
        }
    }

    /// The key in use and its day (tests check it never reaches the disk).
    #[cfg(test)]
    pub(super) fn key(&self) -> Option<(Date, [u8; 32])> {
        self.hmac_key
    }
}
