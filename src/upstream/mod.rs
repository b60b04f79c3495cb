//! Asking someone else: forwarding to the upstream resolvers, with a cache.
//!
//! [`Upstream`] answers a question from its cache or from upstream
//! (`transport`: UDP with TCP on truncation, a random port and ID per
//! question), DNSSEC-transparent the way Unbound forwards:
//!
//! - upstream is always asked with DO=1, and the answer is cached as it
//!   came, its RRSIG, NSEC and NSEC3 records included; each client gets
//!   them in every section relayed if it set DO, and not otherwise
//!   (`dnssec`; RFC 4035 section 3.2.1), so the cache never serves an
//!   answer lacking what the client asked for;
//! - the client's CD goes upstream, and the cache key carries it: an
//!   answer given with checking disabled never reaches a client that did
//!   not disable checking (RFC 4035 section 3.2.2, RFC 6840 section 5.9);
//! - AD is relayed only when the operator trusts the upstream and the
//!   path to it (`upstream.trust_ad`, RFC 6840 section 5.7), and then only
//!   to clients that set AD or DO (RFC 6840 section 5.8); otherwise it is
//!   cleared;
//! - the upstream's Extended DNS Error is relayed, on SERVFAIL too (RFC
//!   8914 section 3).
//!
//! The cache holds upstream answers whatever the list says: the policy is
//! applied to every answer on its way out (fresh or cached), so a list
//! change takes effect on the next query without flushing anything. A
//! cached answer's TTLs count down (RFC 1035 section 3.2.1: the TTL is the
//! time the record may be cached *from now*).
//!
//! Bounded by design (each bound in the configuration, its effect counted
//! in a metric):
//!
//! - the cache by bytes (`upstream.cache_bytes`; an answer weighing more
//!   than [`MAX_CACHED_ANSWER`] is relayed but not kept);
//! - the queries waiting on upstream (`upstream.max_in_flight`, counting
//!   each waiting client query, coalesced ones included): beyond it a query
//!   gets SERVFAIL with an Extended DNS Error at once (or a stale answer,
//!   see below), never a task or a socket more. Identical questions in
//!   flight share one exchange, so the sockets open towards upstream (one
//!   per exchange) are bounded by the same number.
//!
//! Serve-stale (RFC 8767), off by default (`upstream.serve_stale`): an
//! expired answer is kept up to `upstream.serve_stale_max_age` past its
//! TTL, and given with TTL 30 (RFC 8767 section 4) and EDE 3 "Stale
//! Answer" (RFC 8914 section 4.4) when upstream cannot be asked or does not
//! answer in time. An upstream that answers, even SERVFAIL, is believed: a
//! SERVFAIL may be a validating upstream's verdict that the data is bogus.

pub(crate) mod dnssec;
pub(crate) mod transport;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

use crate::config::UpstreamConfig;
use crate::metrics::Metrics;
use crate::proto::{EDE_NETWORK_ERROR, EDE_NO_REACHABLE_AUTHORITY, Ede};
use transport::{Fetched, Question, Transport};

/// The largest answer kept in the cache, in the bytes it weighs there.
pub const MAX_CACHED_ANSWER: u32 = 16 * 1024;
/// RFC 8767 section 4: "a TTL of 30 seconds" on a stale answer.
pub const STALE_TTL: u32 = 30;
/// RFC 8914 section 4.4: "Stale Answer".
pub const EDE_STALE_ANSWER: u16 = 3;
/// RFC 8914 section 4.1: "Other Error", with the reason as EXTRA-TEXT:
/// what a query gets when `upstream.max_in_flight` queries already wait.
pub const EDE_OTHER: u16 = 0;

/// What the client's header and OPT record say about DNSSEC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flags {
    /// DO (RFC 3225).
    pub dnssec_ok: bool,
    /// CD (RFC 4035 section 3.2.2).
    pub checking_disabled: bool,
    /// AD in the query (RFC 6840 section 5.7).
    pub authentic_data: bool,
}

/// An answer to relay: the upstream's response code and records, with TTLs
/// as they stand now, as this client is to get them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// NOERROR or NXDOMAIN.
    pub rcode: ResponseCode,
    /// The answer section.
    pub answers: Vec<Record>,
    /// The authority section: the SOA of negative answers (RFC 2308) and
    /// the NSEC/NSEC3 proofs with their signatures.
    pub authorities: Vec<Record>,
    /// AD to send this client.
    pub authentic: bool,
    /// The upstream's Extended DNS Error, or "Stale Answer".
    pub ede: Option<Ede>,
    /// True when served from the cache.
    pub cached: bool,
    /// The cache entry behind this answer, if it was stored (never for a
    /// stale answer).
    pub stored: Option<Stored>,
}

/// When an answer was stored in the cache and for how long it may be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// When it was stored.
    pub at: Instant,
    /// Seconds it may be served from then.
    pub ttl: u32,
    /// Its age in seconds when the TTLs of this answer were computed.
    pub age: u32,
    /// Whether its AD may be relayed (a trusted upstream set it); a client
    /// gets AD only if it set AD or DO.
    pub authentic: bool,
}

/// Why no answer can be relayed: the client gets SERVFAIL.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// No upstream answered within the time given.
    #[error("no upstream answered within {0:?}")]
    Timeout(Duration),
    /// The upstream answered with an error code (SERVFAIL, REFUSED...).
    #[error("upstream answered {0}")]
    Rcode(ResponseCode, Option<Ede>),
    /// A socket towards upstream failed.
    #[error("upstream socket: {0}")]
    Io(Arc<std::io::Error>),
    /// The question could not be encoded.
    #[error("cannot encode the question: {0}")]
    Encode(Arc<str>),
    /// A TCP answer did not match the question.
    #[error("answer from {0} does not match the question")]
    Mismatch(std::net::SocketAddr),
    /// `upstream.max_in_flight` queries were already waiting.
    #[error("{0} queries already waiting on upstream")]
    Busy(usize),
}

impl UpstreamError {
    fn io(error: std::io::Error) -> UpstreamError {
        UpstreamError::Io(Arc::new(error))
    }

    /// The Extended DNS Error to send with the SERVFAIL (RFC 8914): the
    /// upstream's own when it answered with an error; 22 "No Reachable
    /// Authority" when no upstream answered in time; 23 "Network Error"
    /// when the exchange itself failed; 0 "Other" when the bound on
    /// waiting queries was reached.
    pub fn ede(&self) -> Option<Ede> {
        let ours = |code, this: &UpstreamError| Some((code, Arc::from(this.to_string())));
        match self {
            UpstreamError::Rcode(_, ede) => ede.clone(),
            UpstreamError::Busy(_) => {
                Some((EDE_OTHER, Arc::from("too many queries waiting on upstream")))
            }
            UpstreamError::Timeout(_) => ours(EDE_NO_REACHABLE_AUTHORITY, self),
            UpstreamError::Io(_) | UpstreamError::Mismatch(_) | UpstreamError::Encode(_) => {
                ours(EDE_NETWORK_ERROR, self)
            }
        }
    }

    /// Whether a stale answer may stand in (RFC 8767 section 4: the
    /// upstream could not be asked or did not answer).
    fn allows_stale(&self) -> bool {
        !matches!(self, UpstreamError::Rcode(..))
    }
}

/// What is known of an upstream answer besides its records.
#[derive(Debug)]
struct Meta {
    rcode: ResponseCode,
    /// AD as relayed (set by a trusted upstream).
    authentic: bool,
    ede: Option<Ede>,
    stored: Instant,
    /// Seconds this answer may be served.
    ttl: u32,
    /// Bytes it costs in the cache (see [`weigh`]).
    weight: u32,
}

/// An upstream answer as cached, DNSSEC records included.
///
/// The records are kept as a DNS message holding only the answer and
/// authority sections, in wire form with name compression: a record
/// decoded into hickory's types takes 272 bytes before its names and
/// RDATA, about five times what it takes on the wire. Decoding them again
/// for a query costs what cloning the decoded records did, and only the
/// first query of a kind takes this way: the next ones are answered from
/// the ready-to-send copy.
#[derive(Debug)]
struct Entry {
    meta: Meta,
    records: Box<[u8]>,
}

/// An answer as it came from upstream, decoded, before it is cached.
#[derive(Debug)]
struct Fresh {
    meta: Meta,
    answers: Vec<Record>,
    authorities: Vec<Record>,
}

type CacheKey = (LowerName, RecordType, DNSClass, bool);

/// Weighs cache entries by their bytes.
#[derive(Debug, Clone, Copy)]
struct Bytes;

impl quick_cache::Weighter<CacheKey, Arc<Entry>> for Bytes {
    fn weight(&self, _key: &CacheKey, entry: &Arc<Entry>) -> u64 {
        u64::from(entry.meta.weight)
    }
}

/// The weight of a typical entry in either cache (a small answer, its key
/// and what holding it costs): sizes the cache's count of remembered
/// evicted keys.
const TYPICAL_ENTRY: u64 = 320;

/// A cache that keeps within a budget of bytes, everything it holds
/// counted.
///
/// quick_cache remembers the hashes of keys it evicted ("ghosts", half as
/// many as the entries it expects), so that a name asked again soon after
/// comes back straight to the frequently used ones and a scan of names asked
/// once does not push those out. Each ghost takes a slot as large as an
/// entry's key and value: that room is set aside from the budget and
/// counted from the start.
pub(crate) struct Bounded<K, V, W> {
    cache: quick_cache::sync::Cache<K, V, W>,
    /// Bytes kept for the ghosts.
    ghosts: u64,
}

impl<K, V, W> Bounded<K, V, W>
where
    K: Eq + std::hash::Hash,
    V: Clone,
    W: quick_cache::Weighter<K, V> + Clone,
{
    /// A cache of at most `budget` bytes whose slots (a key and a value
    /// side by side) take `slot` bytes.
    pub(crate) fn new(budget: u64, slot: usize, weighter: W) -> Bounded<K, V, W> {
        let budget = budget.max(1);
        let expected = (budget / TYPICAL_ENTRY).max(16);
        // A ghost: its slot, the links and state around it, its place in
        // the hash table.
        let ghost = slot as u64 + 24;
        let ghosts = (expected / 2 * ghost).min(budget / 4);
        let cache = quick_cache::sync::Cache::with(
            usize::try_from(expected).unwrap_or(usize::MAX),
            (budget - ghosts).max(1),
            weighter,
            Default::default(),
            Default::default(),
        );
        Bounded { cache, ghosts }
    }

    /// Bytes held, as weighed, and the room kept for the ghosts.
    pub(crate) fn bytes(&self) -> u64 {
        self.cache.weight() + self.ghosts
    }
}

impl<K, V, W> std::ops::Deref for Bounded<K, V, W> {
    type Target = quick_cache::sync::Cache<K, V, W>;

    fn deref(&self) -> &Self::Target {
        &self.cache
    }
}

/// One exchange with upstream, shared by the identical questions waiting.
type Pending = Shared<BoxFuture<'static, Result<Arc<Fetched>, UpstreamError>>>;

/// The forwarder: transport, answer cache, exchanges in flight.
pub struct Upstream {
    transport: Arc<Transport>,
    cache: Bounded<CacheKey, Arc<Entry>, Bytes>,
    pending: Mutex<HashMap<CacheKey, Pending>>,
    /// Client queries waiting on upstream now.
    waiting: AtomicUsize,
    max_in_flight: usize,
    wire_budget: u64,
    timeout: Duration,
    max_ttl: u32,
    negative_max_ttl: u32,
    trust_ad: bool,
    /// How long past its TTL an answer may be served stale, if at all.
    serve_stale: Option<u32>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("timeout", &self.timeout)
            .field("cached", &self.cache.len())
            .field("waiting", &self.waiting())
            .finish()
    }
}

/// Takes a waiting query off the count however its wait ends.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Removes a finished exchange from the table, however it ends (the
/// future of the query that started it may be dropped).
struct PendingGuard<'a> {
    pending: &'a Mutex<HashMap<CacheKey, Pending>>,
    key: CacheKey,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.remove(&self.key);
        }
    }
}

impl Upstream {
    /// The forwarder for `config`. Must run inside a tokio runtime.
    pub fn new(config: &UpstreamConfig, metrics: Arc<Metrics>) -> Result<Upstream, UpstreamError> {
        // Half the budget; the other half is the ready-to-send copies'.
        let slot = std::mem::size_of::<(CacheKey, Arc<Entry>)>();
        let cache = Bounded::new(config.cache_bytes / 2, slot, Bytes);
        Ok(Upstream {
            transport: Arc::new(Transport::new(&config.servers, config.timeout)),
            cache,
            wire_budget: config.cache_bytes / 2,
            pending: Mutex::new(HashMap::new()),
            waiting: AtomicUsize::new(0),
            max_in_flight: config.max_in_flight.max(1),
            timeout: config.timeout,
            max_ttl: config.cache_max_ttl,
            negative_max_ttl: config.cache_negative_max_ttl,
            trust_ad: config.trust_ad,
            serve_stale: config.serve_stale.then_some(config.serve_stale_max_age),
            metrics,
        })
    }

    /// Answers in the cache (expired ones included until evicted).
    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }

    /// The bytes left for the ready-to-send copies of answers.
    pub fn wire_budget(&self) -> u64 {
        self.wire_budget
    }

    /// Bytes the cache holds, as weighed, with the room it keeps for the
    /// keys it evicted.
    pub fn cache_bytes(&self) -> u64 {
        self.cache.bytes()
    }

    /// Client queries waiting on upstream now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// The answer for `name`/`qtype`/`qclass`, from the cache or upstream,
    /// as a client with `flags` is to get it.
    pub async fn resolve(
        &self,
        name: &Name,
        qtype: RecordType,
        qclass: DNSClass,
        flags: Flags,
    ) -> Result<Answer, UpstreamError> {
        let key: CacheKey = (LowerName::new(name), qtype, qclass, flags.checking_disabled);
        let mut stale = None;
        if let Some((found, hit)) = self.lookup(&key) {
            let age = hit.meta.age();
            let fresh = age < hit.meta.ttl;
            let stale_ok = self
                .serve_stale
                .is_some_and(|max| age.saturating_sub(hit.meta.ttl) <= max);
            // Decoded only if it may be served, fresh or stale.
            match (fresh || stale_ok).then(|| hit.decode()).flatten() {
                // Expired past use, or bytes this cache wrote and cannot
                // read back: dropped, and the question asked again.
                None => {
                    self.cache.remove(&found);
                }
                Some((answers, authorities)) if fresh => {
                    self.metrics.cache_lookup(true);
                    return Ok(view(
                        &hit.meta,
                        answers,
                        authorities,
                        age,
                        qtype,
                        flags,
                        true,
                    ));
                }
                Some(records) => stale = Some((hit, records)),
            }
        }
        self.metrics.cache_lookup(false);
        let question = Question {
            name,
            qtype,
            qclass,
            checking_disabled: flags.checking_disabled,
        };
        match self.fetch(key, question).await {
            Ok(fresh) => Ok(view(
                &fresh.meta,
                fresh.answers,
                fresh.authorities,
                0,
                qtype,
                flags,
                false,
            )),
            Err(error) => match stale {
                Some((entry, (answers, authorities))) if error.allows_stale() => {
                    self.metrics.stale_answer();
                    Ok(stale_view(&entry.meta, answers, authorities, qtype, flags))
                }
                _ => Err(error),
            },
        }
    }

    /// The cache entry for `key`, and the key it was found under: for a
    /// query with CD=1, the answer to the same query with CD=0 will do
    /// (RFC 4035 section 3.2.2: the client checks for itself), never the
    /// reverse.
    fn lookup(&self, key: &CacheKey) -> Option<(CacheKey, Arc<Entry>)> {
        if let Some(hit) = self.cache.get(key) {
            return Some((key.clone(), hit));
        }
        if !key.3 {
            return None;
        }
        let checked = (key.0.clone(), key.1, key.2, false);
        let hit = self.cache.get(&checked)?;
        Some((checked, hit))
    }

    /// Ask upstream, sharing the exchange with identical questions in
    /// flight, within `upstream.max_in_flight`; cache what comes.
    async fn fetch(&self, key: CacheKey, q: Question<'_>) -> Result<Fresh, UpstreamError> {
        let waiting = self.waiting.fetch_add(1, Ordering::AcqRel);
        let _waiting = Waiting(&self.waiting);
        if waiting >= self.max_in_flight {
            self.metrics.upstream_busy();
            return Err(UpstreamError::Busy(waiting));
        }
        let (exchange, started_here) = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            match pending.get(&key) {
                Some(shared) => (shared.clone(), None),
                None => {
                    let transport = Arc::clone(&self.transport);
                    let name = q.name.clone();
                    let (qtype, qclass, cd) = (q.qtype, q.qclass, q.checking_disabled);
                    let exchange = async move {
                        let q = Question {
                            name: &name,
                            qtype,
                            qclass,
                            checking_disabled: cd,
                        };
                        transport.exchange(q).await.map(Arc::new)
                    }
                    .boxed()
                    .shared();
                    pending.insert(key.clone(), exchange.clone());
                    let guard = PendingGuard {
                        pending: &self.pending,
                        key: key.clone(),
                    };
                    (exchange, Some(guard))
                }
            }
        };
        let started = Instant::now();
        let fetched = exchange.await;
        self.metrics.upstream(started.elapsed());
        let fetched = fetched?;
        let mut fresh = self.fresh(&fetched)?;
        // The query that started the exchange caches its answer; those
        // that joined it only read it.
        if started_here.is_some() && fresh.meta.cacheable() {
            match Entry::encode(&fresh) {
                Some(entry) => {
                    self.cache.insert(key, Arc::new(entry));
                }
                // Records hickory reads but cannot write back: relayed,
                // not kept (and so not kept ready to send either).
                None => fresh.meta.ttl = 0,
            }
        }
        Ok(fresh)
    }

    /// What to relay and cache of an upstream answer; SERVFAIL and other
    /// error codes become an error carrying the upstream's EDE.
    fn fresh(&self, fetched: &Fetched) -> Result<Fresh, UpstreamError> {
        let message = &fetched.message;
        let rcode = message.metadata.response_code;
        let ede = dnssec::ede(message);
        if rcode != ResponseCode::NoError && rcode != ResponseCode::NXDomain {
            return Err(UpstreamError::Rcode(rcode, ede));
        }
        let negative = rcode == ResponseCode::NXDomain || message.answers.is_empty();
        let answers = message.answers.clone();
        let authorities = dnssec::authority(message.authorities.clone(), negative);
        let ttl = self.cache_ttl(&answers, &authorities);
        Ok(Fresh {
            meta: Meta {
                rcode,
                authentic: self.trust_ad && message.metadata.authentic_data,
                ede,
                stored: Instant::now(),
                ttl,
                weight: weigh(fetched.len),
            },
            answers,
            authorities,
        })
    }

    /// How long an answer may be cached: the smallest record TTL for a
    /// positive answer; for a negative one, the SOA's TTL bounded by its
    /// MINIMUM (RFC 2308 section 5), and not cached without a SOA.
    fn cache_ttl(&self, answers: &[Record], authorities: &[Record]) -> u32 {
        if !answers.is_empty() {
            let min = answers.iter().map(|r| r.ttl).min().unwrap_or(0);
            return min.min(self.max_ttl);
        }
        authorities
            .iter()
            .find_map(|r| match &r.data {
                RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
                _ => None,
            })
            .map_or(0, |t| t.min(self.negative_max_ttl))
    }
}

/// An answer of `meta` with its records, `age` seconds after it was
/// stored, as a client with `flags` asking for `qtype` gets it; `cached`
/// if it comes from the cache.
fn view(
    meta: &Meta,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    age: u32,
    qtype: RecordType,
    flags: Flags,
    cached: bool,
) -> Answer {
    let left = meta.ttl.saturating_sub(age);
    let ttl = |r: &Record| r.ttl.saturating_sub(age).min(left);
    Answer {
        rcode: meta.rcode,
        answers: for_client(answers, qtype, flags, ttl),
        authorities: for_client(authorities, qtype, flags, ttl),
        authentic: meta.authentic && (flags.authentic_data || flags.dnssec_ok),
        ede: meta.ede.clone(),
        cached,
        stored: meta.cacheable().then_some(Stored {
            at: meta.stored,
            ttl: meta.ttl,
            age,
            authentic: meta.authentic,
        }),
    }
}

/// An expired entry served stale (RFC 8767 section 4): every TTL 30, EDE
/// 3, no AD (the upstream's verdict is as old as the data), never kept
/// ready to send.
fn stale_view(
    meta: &Meta,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    qtype: RecordType,
    flags: Flags,
) -> Answer {
    let ttl = |_: &Record| STALE_TTL;
    Answer {
        rcode: meta.rcode,
        answers: for_client(answers, qtype, flags, ttl),
        authorities: for_client(authorities, qtype, flags, ttl),
        authentic: false,
        ede: Some((EDE_STALE_ANSWER, Arc::from(""))),
        cached: true,
        stored: None,
    }
}

/// The records a client with `flags` gets, with TTLs from `ttl`.
fn for_client(
    mut records: Vec<Record>,
    qtype: RecordType,
    flags: Flags,
    ttl: impl Fn(&Record) -> u32,
) -> Vec<Record> {
    records.retain(|r| dnssec::for_client(r, flags.dnssec_ok, qtype));
    for r in &mut records {
        r.ttl = ttl(r);
    }
    records
}

impl Meta {
    /// Seconds since it was stored.
    fn age(&self) -> u32 {
        u32::try_from(self.stored.elapsed().as_secs()).unwrap_or(u32::MAX)
    }

    /// Whether the answer may be kept: a TTL, and not too large.
    fn cacheable(&self) -> bool {
        self.ttl > 0 && self.weight <= MAX_CACHED_ANSWER
    }
}

impl Entry {
    /// The entry for a fresh answer: its records written as a message, or
    /// `None` if hickory cannot write them back.
    fn encode(fresh: &Fresh) -> Option<Entry> {
        let mut message = Message::new(0, MessageType::Response, OpCode::Query);
        message.answers = fresh.answers.clone();
        message.authorities = fresh.authorities.clone();
        let records = message.to_vec().ok()?.into_boxed_slice();
        Some(Entry {
            meta: Meta {
                weight: weigh(records.len()),
                ede: fresh.meta.ede.clone(),
                ..fresh.meta
            },
            records,
        })
    }

    /// The answer and authority records, as stored.
    fn decode(&self) -> Option<(Vec<Record>, Vec<Record>)> {
        let message = Message::from_vec(&self.records).ok()?;
        Some((message.answers, message.authorities))
    }
}

/// What an entry costs in memory: its records' bytes, the entry and its
/// key, and what holding them costs besides (see [`ENTRY_OVERHEAD`]).
fn weigh(records: usize) -> u32 {
    let total =
        std::mem::size_of::<Entry>() + std::mem::size_of::<CacheKey>() + records + ENTRY_OVERHEAD;
    u32::try_from(total).unwrap_or(u32::MAX)
}

/// Bytes an entry of either cache (a record entry, a ready-to-send copy)
/// costs beyond its size and its bytes: the counts of its `Arc`, the
/// cache's own bookkeeping (its slot's links, state and pointer, its hash
/// table) and the allocator's rounding of its blocks. Measured: with it,
/// `rempart_cache_bytes` follows the process's resident memory as the
/// caches fill (the benchmark's row "RSS growth over the query runs /
/// growth of rempart_cache_bytes" shows the ratio).
pub(crate) const ENTRY_OVERHEAD: usize = 96;

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::{A, CNAME, NULL, SOA, TXT};

    fn record(name: &str, ttl: u32, data: RData) -> Record {
        Record::from_rdata(Name::from_ascii(name).unwrap(), ttl, data)
    }

    #[test]
    fn a_cached_answer_reads_back_as_it_came() {
        let name = |s: &str| Name::from_ascii(s).unwrap();
        let answers = vec![
            record(
                "WWW.Example.test.",
                300,
                RData::CNAME(CNAME(name("Host.example.test."))),
            ),
            record("Host.example.test.", 60, RData::A(A::new(192, 0, 2, 1))),
            record(
                "host.example.test.",
                60,
                RData::TXT(TXT::new(vec!["v=x".into(), String::new()])),
            ),
            // RRSIG, read as hickory reads it without its DNSSEC feature.
            record(
                "host.example.test.",
                60,
                RData::Unknown {
                    code: RecordType::RRSIG,
                    rdata: NULL::with(vec![0, 1, 13, 3, 0, 0, 0, 60, 1, 2, 3, 4, 5]),
                },
            ),
        ];
        let soa = SOA::new(
            name("ns.example.test."),
            name("h.example.test."),
            7,
            1,
            2,
            3,
            30,
        );
        let authorities = vec![record("example.test.", 3600, RData::SOA(soa))];
        let fresh = Fresh {
            meta: Meta {
                rcode: ResponseCode::NoError,
                authentic: true,
                ede: Some((3, Arc::from("stale"))),
                stored: Instant::now(),
                ttl: 60,
                weight: 0,
            },
            answers: answers.clone(),
            authorities: authorities.clone(),
        };
        let entry = Entry::encode(&fresh).unwrap();
        let (a, b) = entry.decode().unwrap();
        assert_eq!((&a, &b), (&answers, &authorities));
        // Names keep the letter case they came with (hickory compares
        // names without it).
        let names = |r: &[Record]| r.iter().map(|r| r.name.to_string()).collect::<Vec<_>>();
        assert_eq!(names(&a), names(&answers));
        assert_eq!(a[0].data, answers[0].data);
        assert_eq!(a[0].data.to_string(), "Host.example.test.");
        // Smaller than one of the five decoded records it stands for.
        assert!(
            entry.records.len() < std::mem::size_of::<Record>(),
            "{} bytes",
            entry.records.len()
        );
        assert_eq!(entry.meta.weight, weigh(entry.records.len()));
        assert_eq!(entry.meta.ede, fresh.meta.ede);
        assert!(entry.meta.authentic && entry.meta.ttl == 60);
    }
}
