//! Rempart as the RPZ primary of a fleet: each list in force, after its
//! signature and every gate, served as a Response Policy Zone
//! (draft-vixie-dnsop-dns-rpz) to the resolvers a provider already runs.
//!
//! - [`zone`]: the records of a list version, the SOA serial, the IXFR
//!   history (pure, no I/O);
//! - [`serve`]: the listener (`rpz.listen`, UDP and TCP): SOA, AXFR (RFC
//!   5936), IXFR (RFC 1995), REFUSED outside `rpz.allow_transfer`;
//! - [`notify`]: NOTIFY (RFC 1996) to `rpz.notify` on every version
//!   published, retried a bounded number of times;
//! - [`tsig`]: `rpz.tsig_key` (BIND key file, HMAC-SHA256): transfers
//!   must be signed with it (RFC 8945), and their answers are.
//!
//! The API is keyed by list id ([`Rpz::publish`]): list `id` is zone
//! `<id>.<rpz.zone_suffix>`. Only the admission path publishes, once a
//! list passed every check and is in force, so a refused list never
//! reaches a secondary.

pub mod notify;
pub mod serve;
pub mod tsig;
pub mod zone;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hickory_proto::rr::Name;
use tracing::{info, warn};

pub use crate::config::RpzConfig;
pub use crate::metrics::RpzEvent as Event;
pub use zone::{Action, Diff, History, Redirect, RpzVersion, Zone, ZoneNameError};

/// A zone as served: its newest version and the differences that led to
/// it.
#[derive(Debug, Clone)]
pub struct Published {
    /// The newest version.
    pub zone: Arc<Zone>,
    /// The differences of the versions before it, for IXFR.
    pub history: History,
}

/// The counts behind [`Stats`].
#[derive(Debug, Default)]
struct Counters {
    axfr: AtomicU64,
    ixfr: AtomicU64,
    ixfr_full: AtomicU64,
    ixfr_current: AtomicU64,
    refused: AtomicU64,
    notify_answered: AtomicU64,
    notify_failed: AtomicU64,
}

/// What the listener and the notifier did, since start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// AXFR answered.
    pub axfr: u64,
    /// IXFR answered with differences.
    pub ixfr: u64,
    /// IXFR answered with the whole zone.
    pub ixfr_full: u64,
    /// IXFR of a secondary already up to date.
    pub ixfr_current: u64,
    /// Queries refused (not allowed, unsigned) or NOTAUTH (bad TSIG).
    pub refused: u64,
    /// NOTIFY answered.
    pub notify_answered: u64,
    /// NOTIFY given up.
    pub notify_failed: u64,
}

/// The RPZ primary: the zones published, by list id.
///
/// The zones sit behind a std mutex, held only to clone an `Arc` or
/// replace an entry: transfers are rare (a few per list version and
/// secondary), and a transfer works on the version it cloned, so a new
/// version never waits for a slow secondary nor changes a transfer under
/// way.
#[derive(Debug)]
pub struct Rpz {
    config: RpzConfig,
    /// `rpz.tsig_key`, read: transfers must be signed with it.
    tsig: Option<tsig::TsigKey>,
    zones: Mutex<HashMap<String, Published>>,
    /// Zones (by apex) whose secondaries are still to be told: at most one
    /// entry per zone, however fast versions come.
    to_notify: Mutex<BTreeSet<Name>>,
    wake_notifier: tokio::sync::Notify,
    counters: Counters,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Rpz {
    /// An RPZ primary with no zone yet; `rpz.tsig_key`, if set, read.
    pub fn new(
        config: RpzConfig,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Result<Arc<Rpz>, tsig::KeyFileError> {
        let tsig = config
            .tsig_key
            .as_deref()
            .map(tsig::TsigKey::load)
            .transpose()?;
        Ok(Arc::new(Rpz {
            config,
            tsig,
            zones: Mutex::new(HashMap::new()),
            to_notify: Mutex::new(BTreeSet::new()),
            wake_notifier: tokio::sync::Notify::new(),
            counters: Counters::default(),
            metrics,
        }))
    }

    /// The TSIG key transfers must be signed with, if set.
    pub fn tsig_key(&self) -> Option<&tsig::TsigKey> {
        self.tsig.as_ref()
    }

    /// Its configuration.
    pub fn config(&self) -> &RpzConfig {
        &self.config
    }

    /// Serve `version` of list `id` as zone `<id>.<zone_suffix>`, and have
    /// the secondaries notified. The same list again (same serial and
    /// digest, same redirect) changes nothing. Returns the zone's SOA
    /// serial.
    ///
    /// Blocking (it compares the new list with the one served, name by
    /// name): call it off the async workers. Callers publish one version
    /// of a list at a time (the admission path holds its lock).
    pub fn publish(&self, id: &str, version: RpzVersion) -> Result<u32, ZoneNameError> {
        let apex = zone::zone_name(id, &self.config.zone_suffix)?;
        let previous = self.zones().get(id).cloned();
        if let Some(p) = &previous
            && p.zone.version.serial == version.serial
            && p.zone.version.digest == version.digest
            && p.zone.version.redirect == version.redirect
        {
            return Ok(p.zone.serial);
        }
        let serial = zone::zone_serial(version.serial, previous.as_ref().map(|p| p.zone.serial));
        let mut history = previous
            .as_ref()
            .map(|p| p.history.clone())
            .unwrap_or_default();
        match &previous {
            Some(p) if p.zone.version.redirect == version.redirect => history.push(Diff::between(
                &p.zone.version.policy,
                &version.policy,
                p.zone.serial,
                serial,
            )),
            // Every record changes with the redirect: a full transfer.
            Some(_) => history.clear(),
            None => {}
        }
        let list_serial = version.serial;
        let zone = Arc::new(Zone::new(apex.clone(), serial, version));
        let left_out = left_out(&zone);
        if let Some(first) = left_out.first() {
            warn!(zone = %apex, serial, count = left_out.len(), first = %first.0, "listed names too long to be written under the zone's apex (255 octets) are left out of the RPZ zone; Rempart itself still redirects them");
        }
        info!(zone = %apex, serial, list_serial, entries = zone.entries(), ixfr_versions = history.len(), "RPZ zone published");
        self.zones()
            .insert(id.to_owned(), Published { zone, history });
        self.to_notify
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(apex);
        self.wake_notifier.notify_one();
        Ok(serial)
    }

    /// The zone whose apex is `apex`, if published.
    pub fn zone(&self, apex: &Name) -> Option<Published> {
        self.zones()
            .values()
            .find(|p| &p.zone.apex == apex)
            .cloned()
    }

    /// The zone of list `id`, if published.
    pub fn zone_of(&self, id: &str) -> Option<Published> {
        self.zones().get(id).cloned()
    }

    /// True if `name` is at or below the apex of a zone published.
    pub fn is_below_a_zone(&self, name: &Name) -> bool {
        self.zones().values().any(|p| p.zone.apex.zone_of(name))
    }

    /// What the listener and notifier did.
    pub fn stats(&self) -> Stats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            axfr: get(&c.axfr),
            ixfr: get(&c.ixfr),
            ixfr_full: get(&c.ixfr_full),
            ixfr_current: get(&c.ixfr_current),
            refused: get(&c.refused),
            notify_answered: get(&c.notify_answered),
            notify_failed: get(&c.notify_failed),
        }
    }

    /// Count `event`, in [`Stats`] and in the metrics.
    pub(crate) fn count(&self, event: Event) {
        let c = &self.counters;
        let counter = match event {
            Event::Axfr => Some(&c.axfr),
            Event::Ixfr => Some(&c.ixfr),
            Event::IxfrFull => Some(&c.ixfr_full),
            Event::IxfrCurrent => Some(&c.ixfr_current),
            Event::NotAllowed | Event::Unsigned | Event::BadTsig => Some(&c.refused),
            Event::NotifyAnswered => Some(&c.notify_answered),
            Event::NotifyFailed => Some(&c.notify_failed),
            Event::TcpFull => None,
        };
        if let Some(counter) = counter {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        self.metrics.rpz(event);
    }

    fn zones(&self) -> std::sync::MutexGuard<'_, HashMap<String, Published>> {
        // Entries are replaced whole: a panic cannot leave one half written.
        self.zones.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The zones to notify, emptied.
    fn take_to_notify(&self) -> Vec<Name> {
        std::mem::take(&mut *self.to_notify.lock().unwrap_or_else(|e| e.into_inner()))
            .into_iter()
            .collect()
    }
}

/// The entries of `zone` too long to be written under its apex (checked on
/// the few whose length comes close).
fn left_out(zone: &Zone) -> Vec<zone::Unrepresentable> {
    // Text length + 2 bounds the wire length of a name without its root
    // label; the wildcard adds 2; the apex's wire length includes the root.
    let room = 255usize.saturating_sub(zone.apex.to_ascii().len() + 1 + 4);
    zone.version
        .policy
        .rules()
        .filter(|r| r.name.len() > room)
        .filter_map(|r| zone.records_of(r.name, r.kind).err())
        .collect()
}
