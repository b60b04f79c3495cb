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
    /// Times the failure to draw a key was logged: once per failure
    /// episode (until a key is drawn again), not once per record.
    unavailable_logs: u32,
    /// The current failure episode was logged.
    unavailable_logged: bool,
}

impl ClientPrivacy {
    pub(super) fn new(mode: ClientIpMode) -> ClientPrivacy {
        ClientPrivacy {
            mode,
            hmac_key: None,
            unavailable_logs: 0,
            unavailable_logged: false,
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
                let Some(key) = self.key_of(day, getrandom::fill) else {
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

    /// The HMAC key of `day`, drawn with `random` on the day's first use;
    /// `None` if the system cannot give random bytes (the record then
    /// says `hmac-unavailable`, and the log says why, once).
    fn key_of(
        &mut self,
        day: Date,
        random: impl FnOnce(&mut [u8]) -> Result<(), getrandom::Error>,
    ) -> Option<[u8; 32]> {
        match self.hmac_key {
            Some((d, k)) if d == day => Some(k),
            _ => {
                let mut k = [0u8; 32];
                if let Err(e) = random(&mut k) {
                    // The past day's key must not serve today: gone.
                    self.hmac_key = None;
                    if !self.unavailable_logged {
                        self.unavailable_logged = true;
                        self.unavailable_logs += 1;
                        tracing::error!(error = %e, "audit: no randomness for the HMAC key of the day: client fields read \"hmac-unavailable\" until it comes back");
                    }
                    return None;
                }
                self.unavailable_logged = false;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A regression: when the random source failed, the records said
    /// `hmac-unavailable` and nothing said why. Now the log says it, once
    /// per failure episode.
    #[test]
    fn a_failing_random_source_is_logged_once() {
        let mut p = ClientPrivacy::new(ClientIpMode::Hmac);
        let day = time::macros::date!(2026 - 11 - 23);
        let fail = |_: &mut [u8]| Err(getrandom::Error::UNSUPPORTED);
        for _ in 0..3 {
            assert_eq!(p.key_of(day, fail), None);
        }
        assert_eq!(p.unavailable_logs, 1, "logged once, not per record");
        assert!(p.key_of(day, getrandom::fill).is_some());
        assert_eq!(p.key_of(day.next_day().unwrap(), fail), None);
        assert_eq!(p.unavailable_logs, 2, "a new episode is logged again");
        assert_eq!(p.key(), None, "the past day's key does not serve");
    }
}
