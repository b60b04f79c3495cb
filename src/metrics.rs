//! Metric names, declared once, and the handles the code updates.
//!
//! Every name here is documented in the README ("Metrics"); a test scrapes
//! `/metrics` and finds each of them. Handles are registered once, at start,
//! against this instance's own Prometheus recorder (no global state: two
//! resolvers in one process, as in the tests, keep separate figures), so the
//! query path only does atomic increments.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::proto::Transport;

/// Queries answered, by `transport` (udp, tcp, dot, doh) and `outcome` (redirected,
/// forwarded, cached, refused, servfail, error).
pub const QUERIES_TOTAL: &str = "rempart_queries_total";
/// Redirects, by `list` (id) and entry `category`.
pub const REDIRECTS_TOTAL: &str = "rempart_redirects_total";
/// Time upstream took to answer a forwarded query (cache misses), seconds.
pub const UPSTREAM_SECONDS: &str = "rempart_upstream_duration_seconds";
/// Answers in the cache.
pub const CACHE_ENTRIES: &str = "rempart_cache_entries";
/// Bytes the answer cache and its ready-to-send copies hold, as weighed
/// against `upstream.cache_bytes`.
pub const CACHE_BYTES: &str = "rempart_cache_bytes";
/// Client queries waiting on upstream now (bounded by
/// `upstream.max_in_flight`).
pub const UPSTREAM_WAITING: &str = "rempart_upstream_waiting";
/// Queries answered SERVFAIL (or stale) at once because
/// `upstream.max_in_flight` queries were already waiting on upstream.
pub const UPSTREAM_BUSY_TOTAL: &str = "rempart_upstream_busy_total";
/// Expired answers served while upstream did not answer (RFC 8767,
/// `upstream.serve_stale`).
pub const STALE_ANSWERS_TOTAL: &str = "rempart_stale_answers_total";
/// Forwarded queries answered from the cache (`result` = hit) or upstream
/// (`result` = miss): the hit ratio is hit / (hit + miss).
pub const CACHE_LOOKUPS_TOTAL: &str = "rempart_cache_lookups_total";
/// UDP answers sent ready-made: the bytes of an earlier answer for the same
/// question, with the ID, case and TTLs rewritten (also counted as cache
/// hits).
pub const READY_ANSWERS_TOTAL: &str = "rempart_ready_answers_total";
/// Serial of the list in force (0: none).
pub const LIST_SERIAL: &str = "rempart_list_serial";
/// Entries of the list in force.
pub const LIST_ENTRIES: &str = "rempart_list_entries";
/// `issued` time of the list in force, Unix seconds.
pub const LIST_ISSUED: &str = "rempart_list_issued_timestamp_seconds";
/// When the list in force was applied by this process, Unix seconds.
pub const LIST_APPLIED: &str = "rempart_list_applied_timestamp_seconds";
/// `expires` time of the list in force, Unix seconds.
pub const LIST_EXPIRES: &str = "rempart_list_expires_timestamp_seconds";
/// Seconds since the list in force was issued (updated at each scrape).
pub const LIST_ISSUED_AGE: &str = "rempart_list_issued_age_seconds";
/// Seconds since the list in force was applied (updated at each scrape).
pub const LIST_APPLIED_AGE: &str = "rempart_list_applied_age_seconds";
/// List reloads, by `outcome` (applied, unchanged, refused).
pub const RELOADS_TOTAL: &str = "rempart_reloads_total";
/// Polls of a list fetched from a web origin, by `list` and `result`:
/// applied (a new list in force), unchanged (304, or the same pair as the
/// last one tried), refused (a gate refused the pair), failed (connection,
/// TLS, HTTP status, timeout, body too large). Only lists with `url`.
pub const LIST_FETCHES_TOTAL: &str = "rempart_list_fetches_total";
/// 1 while the last poll of a fetched list failed, by `list`.
pub const LIST_FETCH_FAILING: &str = "rempart_list_fetch_failing";
/// When the origin of a fetched list last answered a poll (200 or 304),
/// Unix seconds, by `list`.
pub const LIST_FETCH_LAST_SUCCESS: &str = "rempart_list_fetch_last_success_timestamp_seconds";
/// The metrics only a list with `url` has (tests/pull.rs finds them on
/// such a resolver's /metrics; [`ALL`] are on every resolver's).
pub const FETCH_ALL: &[&str] = &[
    LIST_FETCHES_TOTAL,
    LIST_FETCH_FAILING,
    LIST_FETCH_LAST_SUCCESS,
];
/// TCP connections open now, DoT and DoH included.
pub const TCP_CONNECTIONS: &str = "rempart_tcp_connections";
/// TCP connections closed at accept, never read, by `reason`
/// (not_allowed, total, per_client): see [`TcpRefusal`].
pub const TCP_REFUSED_TOTAL: &str = "rempart_tcp_refused_total";
/// UDP datagrams dropped without an answer, by `reason` (not_allowed: too
/// damaged to parse and from outside `server.allow`).
pub const UDP_DROPPED_TOTAL: &str = "rempart_udp_dropped_total";
/// Messages that came with a PROXY v2 header from outside
/// `server.proxy_from` (`untrusted`) or a damaged one (`malformed`),
/// dropped unanswered, or without a header from a proxy that must send one
/// (`missing`, answered REFUSED): see [`ProxyRejection`]. On TCP, each
/// counts a connection.
pub const PROXY_REJECTED_TOTAL: &str = "rempart_proxy_rejected_total";

/// RPZ transfers answered, by `kind`: axfr, ixfr (differences), ixfr_full
/// (the history did not reach back: the whole zone), ixfr_current (the
/// secondary was up to date).
pub const RPZ_TRANSFERS_TOTAL: &str = "rempart_rpz_transfers_total";
/// RPZ listener requests refused, by `reason`: not_allowed (outside
/// `rpz.allow_transfer`), unsigned (a transfer without TSIG while
/// `rpz.tsig_key` is set), bad_tsig (NOTAUTH), tcp_full (a connection
/// closed at accept, the bound reached).
pub const RPZ_REFUSED_TOTAL: &str = "rempart_rpz_refused_total";
/// NOTIFYs to `rpz.notify`, by `outcome`: answered, failed (no answer
/// after every try).
pub const RPZ_NOTIFY_TOTAL: &str = "rempart_rpz_notify_total";

/// Audit records written to disk.
pub const AUDIT_RECORDS_TOTAL: &str = "rempart_audit_records_total";
/// Audit records lost (queue full, disk failure); each loss is also
/// recorded in the trail.
pub const AUDIT_LOST_TOTAL: &str = "rempart_audit_lost_total";

/// Every metric name, for documentation tests.
pub const ALL: &[&str] = &[
    QUERIES_TOTAL,
    REDIRECTS_TOTAL,
    UPSTREAM_SECONDS,
    CACHE_ENTRIES,
    CACHE_BYTES,
    UPSTREAM_WAITING,
    UPSTREAM_BUSY_TOTAL,
    STALE_ANSWERS_TOTAL,
    CACHE_LOOKUPS_TOTAL,
    READY_ANSWERS_TOTAL,
    LIST_SERIAL,
    LIST_ENTRIES,
    LIST_ISSUED,
    LIST_APPLIED,
    LIST_EXPIRES,
    LIST_ISSUED_AGE,
    LIST_APPLIED_AGE,
    RELOADS_TOTAL,
    TCP_CONNECTIONS,
    TCP_REFUSED_TOTAL,
    UDP_DROPPED_TOTAL,
    PROXY_REJECTED_TOTAL,
    AUDIT_RECORDS_TOTAL,
    AUDIT_LOST_TOTAL,
    RPZ_TRANSFERS_TOTAL,
    RPZ_REFUSED_TOTAL,
    RPZ_NOTIFY_TOTAL,
];

/// How a query ended, for [`QUERIES_TOTAL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryOutcome {
    /// Answered with the redirect.
    Redirected,
    /// Forwarded upstream (cache miss).
    Forwarded,
    /// Answered from the cache.
    Cached,
    /// Client outside `server.allow`.
    Refused,
    /// Upstream failure or timeout.
    Servfail,
    /// Malformed or unsupported request (FORMERR, NOTIMP).
    Error,
}

const OUTCOMES: [(QueryOutcome, &str); 6] = [
    (QueryOutcome::Redirected, "redirected"),
    (QueryOutcome::Forwarded, "forwarded"),
    (QueryOutcome::Cached, "cached"),
    (QueryOutcome::Refused, "refused"),
    (QueryOutcome::Servfail, "servfail"),
    (QueryOutcome::Error, "error"),
];

/// Outcome of a list reload, for [`RELOADS_TOTAL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// A newer list was applied.
    Applied,
    /// The same list as in force.
    Unchanged,
    /// The candidate was refused.
    Refused,
}

/// What a poll of a web origin gave, for [`LIST_FETCHES_TOTAL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchResult {
    /// A new list was applied.
    Applied,
    /// 304 Not Modified for both files, or the pair last tried.
    Unchanged,
    /// The pair was refused by the admission path.
    Refused,
    /// The origin could not be read.
    Failed,
}

/// The fetch metrics of one list with `url`, labelled `list="<id>"`.
pub struct FetchMetrics {
    results: [Counter; 4],
    failing: Gauge,
    last_success: Gauge,
}

impl std::fmt::Debug for FetchMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FetchMetrics")
    }
}

impl FetchMetrics {
    /// Count a poll; a failed one sets the failing gauge, any other clears
    /// it and marks the origin's last answer now.
    pub fn poll(&self, result: FetchResult) {
        self.results[result as usize].increment(1);
        if result == FetchResult::Failed {
            self.failing.set(1.0);
        } else {
            self.failing.set(0.0);
            self.last_success
                .set(time::OffsetDateTime::now_utc().unix_timestamp() as f64);
        }
    }
}

/// Why a TCP connection was closed at accept, for [`TCP_REFUSED_TOTAL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpRefusal {
    /// The client is outside `server.allow`.
    NotAllowed,
    /// `server.tcp_max_connections` are open.
    Total,
    /// The client has `server.tcp_max_per_client` open.
    PerClient,
}

/// Why a message was not taken as a proxy's, for [`PROXY_REJECTED_TOTAL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyRejection {
    /// A PROXY header from outside `server.proxy_from`: dropped.
    Untrusted,
    /// A damaged PROXY header from a proxy: dropped.
    Malformed,
    /// No PROXY header from a proxy, `server.proxy_required`: REFUSED.
    Missing,
}

/// What the RPZ listener and notifier do ([`crate::rpz`]), for
/// [`RPZ_TRANSFERS_TOTAL`], [`RPZ_REFUSED_TOTAL`] and [`RPZ_NOTIFY_TOTAL`]
/// (the order of the counters in [`Metrics`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RpzEvent {
    /// AXFR answered.
    Axfr,
    /// IXFR answered with differences (RFC 1995 section 4, incremental).
    Ixfr,
    /// IXFR answered with the whole zone (the history did not reach back).
    IxfrFull,
    /// IXFR of a secondary already up to date (the SOA alone).
    IxfrCurrent,
    /// REFUSED: the client outside `rpz.allow_transfer`.
    NotAllowed,
    /// REFUSED: a transfer without TSIG while `rpz.tsig_key` is set.
    Unsigned,
    /// NOTAUTH: a TSIG that does not verify.
    BadTsig,
    /// A TCP connection closed at accept: the connection bound reached.
    TcpFull,
    /// NOTIFY answered by a secondary.
    NotifyAnswered,
    /// NOTIFY given up after every try.
    NotifyFailed,
}

/// The handles, registered once.
pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    queries: [[Counter; 6]; 4],
    /// Per-list, per-category counters; an `ArcSwap` so that a redirect
    /// only loads a pointer (a new pair, rare, copies the small map).
    redirects: arc_swap::ArcSwap<HashMap<String, HashMap<String, Counter>>>,
    /// The gauges and counters of each list, by id, made on first use.
    lists: Mutex<HashMap<String, Arc<ListMetrics>>>,
    upstream: Histogram,
    cache_entries: Gauge,
    cache_bytes: Gauge,
    upstream_waiting: Gauge,
    upstream_busy: Counter,
    stale: Counter,
    cache_hit: Counter,
    cache_miss: Counter,
    ready: Counter,
    tcp_connections: Gauge,
    tcp_refused: [Counter; 3],
    udp_dropped: Counter,
    proxy_rejected: [Counter; 3],
    audit_written: Counter,
    audit_lost: Counter,
    /// By [`RpzEvent`], in its order.
    rpz: [Counter; 10],
}

/// The metrics of one list, labelled `list="<id>"`: its reloads and the
/// list in force.
pub struct ListMetrics {
    serial: Gauge,
    entries: Gauge,
    issued: Gauge,
    applied: Gauge,
    expires: Gauge,
    issued_age: Gauge,
    applied_age: Gauge,
    reloads: [Counter; 3],
    /// `issued` and `applied` of the list in force, for the age gauges.
    times: Mutex<(f64, f64)>,
}

impl std::fmt::Debug for ListMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ListMetrics")
    }
}

impl ListMetrics {
    /// Count a reload of this list.
    pub fn reload(&self, outcome: ReloadOutcome) {
        self.reloads[outcome as usize].increment(1);
    }

    /// Describe this list in force.
    pub fn in_force(&self, serial: u64, entries: usize, issued: f64, expires: f64, applied: f64) {
        self.serial.set(serial as f64);
        self.entries.set(entries as f64);
        self.issued.set(issued);
        self.expires.set(expires);
        self.applied.set(applied);
        *self.times.lock().unwrap_or_else(|e| e.into_inner()) = (issued, applied);
    }

    /// The age gauges, at `now`.
    fn ages(&self, now: f64) {
        let (issued, applied) = *self.times.lock().unwrap_or_else(|e| e.into_inner());
        if applied > 0.0 {
            self.issued_age.set(now - issued);
            self.applied_age.set(now - applied);
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

static META: Metadata<'static> =
    Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));

impl Metrics {
    /// Register every metric against a new recorder.
    pub fn new() -> Arc<Metrics> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full(UPSTREAM_SECONDS.to_owned()),
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            )
            .expect("non-empty buckets")
            .build_recorder();
        let handle = recorder.handle();
        let key = |name: &'static str, labels: &[(&'static str, &'static str)]| {
            Key::from_parts(
                name,
                labels
                    .iter()
                    .map(|(k, v)| Label::new(*k, *v))
                    .collect::<Vec<_>>(),
            )
        };
        let counter = |name, labels: &[(&'static str, &'static str)]| {
            recorder.register_counter(&key(name, labels), &META)
        };
        let gauge = |name| recorder.register_gauge(&key(name, &[]), &META);
        let queries = Transport::ALL.map(|transport| {
            let transport = transport.as_str();
            OUTCOMES.map(|(_, outcome)| {
                counter(
                    QUERIES_TOTAL,
                    &[("transport", transport), ("outcome", outcome)],
                )
            })
        });
        let m = Metrics {
            upstream: recorder.register_histogram(&key(UPSTREAM_SECONDS, &[]), &META),
            cache_entries: gauge(CACHE_ENTRIES),
            cache_bytes: gauge(CACHE_BYTES),
            upstream_waiting: gauge(UPSTREAM_WAITING),
            upstream_busy: counter(UPSTREAM_BUSY_TOTAL, &[]),
            stale: counter(STALE_ANSWERS_TOTAL, &[]),
            cache_hit: counter(CACHE_LOOKUPS_TOTAL, &[("result", "hit")]),
            cache_miss: counter(CACHE_LOOKUPS_TOTAL, &[("result", "miss")]),
            ready: counter(READY_ANSWERS_TOTAL, &[]),
            queries,
            tcp_connections: gauge(TCP_CONNECTIONS),
            tcp_refused: ["not_allowed", "total", "per_client"]
                .map(|reason| counter(TCP_REFUSED_TOTAL, &[("reason", reason)])),
            udp_dropped: counter(UDP_DROPPED_TOTAL, &[("reason", "not_allowed")]),
            proxy_rejected: ["untrusted", "malformed", "missing"]
                .map(|reason| counter(PROXY_REJECTED_TOTAL, &[("reason", reason)])),
            audit_written: counter(AUDIT_RECORDS_TOTAL, &[]),
            audit_lost: counter(AUDIT_LOST_TOTAL, &[]),
            rpz: [
                (RPZ_TRANSFERS_TOTAL, ("kind", "axfr")),
                (RPZ_TRANSFERS_TOTAL, ("kind", "ixfr")),
                (RPZ_TRANSFERS_TOTAL, ("kind", "ixfr_full")),
                (RPZ_TRANSFERS_TOTAL, ("kind", "ixfr_current")),
                (RPZ_REFUSED_TOTAL, ("reason", "not_allowed")),
                (RPZ_REFUSED_TOTAL, ("reason", "unsigned")),
                (RPZ_REFUSED_TOTAL, ("reason", "bad_tsig")),
                (RPZ_REFUSED_TOTAL, ("reason", "tcp_full")),
                (RPZ_NOTIFY_TOTAL, ("outcome", "answered")),
                (RPZ_NOTIFY_TOTAL, ("outcome", "failed")),
            ]
            .map(|(name, label)| counter(name, &[label])),
            redirects: arc_swap::ArcSwap::from_pointee(HashMap::new()),
            lists: Mutex::new(HashMap::new()),
            handle,
            recorder,
        };
        Arc::new(m)
    }

    /// Count a query.
    pub fn query(&self, transport: Transport, outcome: QueryOutcome) {
        let i = OUTCOMES
            .iter()
            .position(|(o, _)| *o == outcome)
            .unwrap_or(0);
        self.queries[transport as usize][i].increment(1);
    }

    /// Count a redirect by list `list` of an entry of `category`.
    pub fn redirect(&self, list: &str, category: &str) {
        if let Some(c) = self
            .redirects
            .load()
            .get(list)
            .and_then(|m| m.get(category))
        {
            c.increment(1);
            return;
        }
        let key = Key::from_parts(
            REDIRECTS_TOTAL,
            vec![
                Label::new("list", list.to_owned()),
                Label::new("category", category.to_owned()),
            ],
        );
        let c = self.recorder.register_counter(&key, &META);
        c.increment(1);
        self.redirects.rcu(|map| {
            let mut map = HashMap::clone(map);
            map.entry(list.to_owned())
                .or_default()
                .insert(category.to_owned(), c.clone());
            map
        });
    }

    /// The metrics of list `id` (registered on first use: its gauges read
    /// 0 until a list is in force).
    pub fn list(&self, id: &str) -> Arc<ListMetrics> {
        let mut lists = self.lists.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(m) = lists.get(id) {
            return Arc::clone(m);
        }
        let label = || vec![Label::new("list", id.to_owned())];
        let gauge = |name: &'static str| {
            self.recorder
                .register_gauge(&Key::from_parts(name, label()), &META)
        };
        let m = Arc::new(ListMetrics {
            serial: gauge(LIST_SERIAL),
            entries: gauge(LIST_ENTRIES),
            issued: gauge(LIST_ISSUED),
            applied: gauge(LIST_APPLIED),
            expires: gauge(LIST_EXPIRES),
            issued_age: gauge(LIST_ISSUED_AGE),
            applied_age: gauge(LIST_APPLIED_AGE),
            reloads: ["applied", "unchanged", "refused"].map(|outcome| {
                let mut labels = label();
                labels.push(Label::new("outcome", outcome));
                self.recorder
                    .register_counter(&Key::from_parts(RELOADS_TOTAL, labels), &META)
            }),
            times: Mutex::new((0.0, 0.0)),
        });
        lists.insert(id.to_owned(), Arc::clone(&m));
        m
    }

    /// The fetch metrics of list `id`, fetched from a web origin
    /// (registered on first use: the counters at 0, not failing).
    pub fn fetch(&self, id: &str) -> Arc<FetchMetrics> {
        let label = || vec![Label::new("list", id.to_owned())];
        let m = FetchMetrics {
            results: ["applied", "unchanged", "refused", "failed"].map(|result| {
                let mut labels = label();
                labels.push(Label::new("result", result));
                self.recorder
                    .register_counter(&Key::from_parts(LIST_FETCHES_TOTAL, labels), &META)
            }),
            failing: self
                .recorder
                .register_gauge(&Key::from_parts(LIST_FETCH_FAILING, label()), &META),
            last_success: self
                .recorder
                .register_gauge(&Key::from_parts(LIST_FETCH_LAST_SUCCESS, label()), &META),
        };
        // Registered gauges read nothing until set: the gauge says "not
        // failing" from the start.
        m.failing.set(0.0);
        Arc::new(m)
    }

    /// Record an upstream exchange.
    pub fn upstream(&self, took: Duration) {
        self.upstream.record(took.as_secs_f64());
    }

    /// Count a query turned away because `upstream.max_in_flight` queries
    /// were waiting.
    pub fn upstream_busy(&self) {
        self.upstream_busy.increment(1);
    }

    /// Count a stale answer.
    pub fn stale_answer(&self) {
        self.stale.increment(1);
    }

    /// The state of the forwarder at a scrape: bytes cached, queries
    /// waiting on upstream.
    pub fn upstream_state(&self, cache_bytes: u64, waiting: usize) {
        self.cache_bytes.set(cache_bytes as f64);
        self.upstream_waiting.set(waiting as f64);
    }

    /// Count a cache lookup.
    pub fn cache_lookup(&self, hit: bool) {
        if hit {
            self.cache_hit.increment(1);
        } else {
            self.cache_miss.increment(1);
        }
    }

    /// Count a UDP answer sent ready-made (a cache hit, a cached outcome).
    pub fn ready_answer(&self) {
        debug_assert_eq!(OUTCOMES[2].0, QueryOutcome::Cached);
        self.ready.increment(1);
        self.cache_hit.increment(1);
        self.queries[0][2].increment(1);
    }

    /// A TCP connection was opened (`true`) or closed.
    pub fn tcp_connection(&self, opened: bool) {
        if opened {
            self.tcp_connections.increment(1.0);
        } else {
            self.tcp_connections.decrement(1.0);
        }
    }

    /// Count a TCP connection closed at accept.
    pub fn tcp_refused(&self, why: TcpRefusal) {
        self.tcp_refused[why as usize].increment(1);
    }

    /// Count a damaged datagram from outside `server.allow`, dropped.
    pub fn udp_dropped(&self) {
        self.udp_dropped.increment(1);
    }

    /// Count a message not taken as a proxy's.
    pub fn proxy_rejected(&self, why: ProxyRejection) {
        self.proxy_rejected[why as usize].increment(1);
    }

    /// Count audit records written.
    pub fn audit_written(&self, n: u64) {
        self.audit_written.increment(n);
    }

    /// Count audit records lost.
    pub fn audit_lost(&self, n: u64) {
        self.audit_lost.increment(n);
    }

    /// Count an event of the RPZ listener or notifier.
    pub fn rpz(&self, event: RpzEvent) {
        self.rpz[event as usize].increment(1);
    }

    /// The Prometheus text, with the gauges that depend on "now" updated.
    pub fn render(&self, cache_entries: usize) -> String {
        self.cache_entries.set(cache_entries as f64);
        let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
        for list in self
            .lists
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
        {
            list.ages(now);
        }
        self.handle.render()
    }
}
