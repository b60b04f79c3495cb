//! Asking someone else: forwarding to the upstream resolvers, with a cache.
//!
//! The transport is hickory-resolver's [`NameServerPool`]: it picks the
//! fastest upstream (smoothed RTT), sends over UDP and retries over TCP when
//! the answer is truncated (RFC 7766 section 5), and coalesces identical
//! queries in flight. It turns NXDOMAIN and NODATA into an error value that
//! still carries the response code and the authority section; [`Upstream`]
//! turns both back into an [`Answer`] to relay.
//!
//! The cache holds upstream answers as they came, whatever the list says:
//! the policy is applied to every answer on its way out (fresh or cached), so
//! a list change takes effect on the next query without flushing anything.
//! A cached answer's TTLs count down (RFC 1035 section 3.2.1: the TTL is the
//! time the record may be cached *from now*).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::xfer::FirstAnswer;
use hickory_net::{DnsError, DnsHandle, NetError, NoRecords};
use hickory_proto::op::{DnsRequestOptions, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};
use hickory_resolver::config::{NameServerConfig, ResolverOpts};
use hickory_resolver::{NameServerPool, PoolContext, TlsConfig};

use crate::config::UpstreamConfig;
use crate::metrics::Metrics;

/// An answer to relay: the upstream's response code and records, with TTLs
/// as they stand now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// NOERROR or NXDOMAIN.
    pub rcode: ResponseCode,
    /// The answer section.
    pub answers: Vec<Record>,
    /// The authority section of negative answers (the SOA, RFC 2308).
    pub authorities: Vec<Record>,
    /// True when served from the cache.
    pub cached: bool,
    /// The cache entry behind this answer, if it was stored.
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
}

/// Why no answer can be relayed: the client gets SERVFAIL.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No upstream answered within `upstream.timeout_ms`.
    #[error("no upstream answered within {0:?}")]
    Timeout(Duration),
    /// The upstream answered with an error code (SERVFAIL, REFUSED...).
    #[error("upstream answered {0}")]
    Rcode(ResponseCode),
    /// Transport or protocol failure.
    #[error("upstream failure: {0}")]
    Transport(String),
}

#[derive(Debug)]
struct Cached {
    rcode: ResponseCode,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    stored: Instant,
    /// Seconds this entry may be served.
    ttl: u32,
}

type CacheKey = (LowerName, RecordType, DNSClass);

/// The forwarder: upstream pool plus answer cache.
pub struct Upstream {
    pool: NameServerPool<TokioRuntimeProvider>,
    cache: quick_cache::sync::Cache<CacheKey, Arc<Cached>>,
    timeout: Duration,
    max_ttl: u32,
    negative_max_ttl: u32,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("timeout", &self.timeout)
            .field("cached", &self.cache.len())
            .finish()
    }
}

impl Upstream {
    /// Build the pool for `config.servers`. Must run inside a tokio runtime.
    pub fn new(config: &UpstreamConfig, metrics: Arc<Metrics>) -> Result<Upstream, UpstreamError> {
        let mut opts = ResolverOpts::default();
        opts.timeout = config.timeout;
        // One attempt per server: the pool's own deadline is `timeout` for
        // the whole exchange, so a dead upstream costs at most that.
        opts.attempts = 1;
        opts.edns0 = true;
        opts.num_concurrent_reqs = 1;
        let servers = config.servers.iter().map(|addr| {
            let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
            for c in &mut ns.connections {
                c.port = addr.port();
            }
            ns.trust_negative_responses = true;
            ns
        });
        let tls = TlsConfig::new().map_err(|e| UpstreamError::Transport(e.to_string()))?;
        let cx = Arc::new(PoolContext::new(opts, tls));
        let pool = NameServerPool::from_config(servers, cx, TokioRuntimeProvider::default());
        Ok(Upstream {
            pool,
            cache: quick_cache::sync::Cache::new(config.cache_size.max(1)),
            timeout: config.timeout,
            max_ttl: config.cache_max_ttl,
            negative_max_ttl: config.cache_negative_max_ttl,
            metrics,
        })
    }

    /// How many answers the cache holds at most.
    pub fn capacity(&self) -> usize {
        usize::try_from(self.cache.capacity()).unwrap_or(usize::MAX)
    }

    /// Answers in the cache (expired ones included until evicted).
    pub fn cache_len(&self) -> usize {
        self.cache.len()
    }

    /// The answer for `name`/`qtype`/`qclass`, from the cache or upstream.
    pub async fn resolve(
        &self,
        name: &Name,
        qtype: RecordType,
        qclass: DNSClass,
    ) -> Result<Answer, UpstreamError> {
        let key: CacheKey = (LowerName::new(name), qtype, qclass);
        if let Some(hit) = self.cache.get(&key) {
            if let Some(answer) = hit.current() {
                self.metrics.cache_lookup(true);
                return Ok(answer);
            }
            self.cache.remove(&key);
        }
        self.metrics.cache_lookup(false);
        let started = Instant::now();
        let fresh = self.ask(name, qtype, qclass).await;
        self.metrics.upstream(started.elapsed());
        let mut fresh = fresh?;
        let ttl = self.cache_ttl(&fresh);
        if ttl > 0 {
            let stored = Instant::now();
            self.cache.insert(
                key,
                Arc::new(Cached {
                    rcode: fresh.rcode,
                    answers: fresh.answers.clone(),
                    authorities: fresh.authorities.clone(),
                    stored,
                    ttl,
                }),
            );
            fresh.stored = Some(Stored {
                at: stored,
                ttl,
                age: 0,
            });
        }
        Ok(fresh)
    }

    async fn ask(
        &self,
        name: &Name,
        qtype: RecordType,
        qclass: DNSClass,
    ) -> Result<Answer, UpstreamError> {
        let mut query = Query::query(name.clone(), qtype);
        query.set_query_class(qclass);
        let mut options = DnsRequestOptions::default();
        options.recursion_desired = true;
        options.use_edns = true;
        let exchange = self.pool.lookup(query, options).first_answer();
        let result = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(r) => r,
            Err(_) => return Err(UpstreamError::Timeout(self.timeout)),
        };
        match result {
            Ok(response) => {
                let rcode = response.response_code;
                if rcode != ResponseCode::NoError && rcode != ResponseCode::NXDomain {
                    return Err(UpstreamError::Rcode(rcode));
                }
                let message = response.into_message();
                let negative = message.answers.is_empty() || rcode == ResponseCode::NXDomain;
                Ok(Answer {
                    rcode,
                    answers: message.answers,
                    authorities: if negative {
                        only_soa(message.authorities)
                    } else {
                        Vec::new()
                    },
                    cached: false,
                    stored: None,
                })
            }
            Err(NetError::Dns(DnsError::NoRecordsFound(NoRecords {
                response_code,
                authorities,
                soa,
                ..
            }))) if response_code == ResponseCode::NoError
                || response_code == ResponseCode::NXDomain =>
            {
                let mut auth = authorities
                    .map(|a| only_soa(a.to_vec()))
                    .unwrap_or_default();
                if auth.is_empty()
                    && let Some(soa) = soa
                {
                    auth.push(soa.into_record_of_rdata());
                }
                Ok(Answer {
                    rcode: response_code,
                    answers: Vec::new(),
                    authorities: auth,
                    cached: false,
                    stored: None,
                })
            }
            Err(NetError::Dns(DnsError::NoRecordsFound(NoRecords { response_code, .. })))
            | Err(NetError::Dns(DnsError::ResponseCode(response_code))) => {
                Err(UpstreamError::Rcode(response_code))
            }
            Err(NetError::Timeout) => Err(UpstreamError::Timeout(self.timeout)),
            Err(e) => Err(UpstreamError::Transport(e.to_string())),
        }
    }

    /// How long an answer may be cached: the smallest record TTL for a
    /// positive answer; for a negative one, the SOA's TTL bounded by its
    /// MINIMUM (RFC 2308 section 5), and not cached without a SOA.
    fn cache_ttl(&self, a: &Answer) -> u32 {
        if !a.answers.is_empty() {
            let min = a.answers.iter().map(|r| r.ttl).min().unwrap_or(0);
            return min.min(self.max_ttl);
        }
        a.authorities
            .iter()
            .find_map(|r| match &r.data {
                RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
                _ => None,
            })
            .map_or(0, |t| t.min(self.negative_max_ttl))
    }
}

impl Cached {
    /// The answer with TTLs counted down, or `None` once expired.
    fn current(&self) -> Option<Answer> {
        let age = u32::try_from(self.stored.elapsed().as_secs()).unwrap_or(u32::MAX);
        if age >= self.ttl {
            return None;
        }
        let age_records = |records: &[Record]| {
            records
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    r.ttl = r.ttl.saturating_sub(age).min(self.ttl - age);
                    r
                })
                .collect()
        };
        Some(Answer {
            rcode: self.rcode,
            answers: age_records(&self.answers),
            authorities: age_records(&self.authorities),
            cached: true,
            stored: Some(Stored {
                at: self.stored,
                ttl: self.ttl,
                age,
            }),
        })
    }
}

fn only_soa(records: Vec<Record>) -> Vec<Record> {
    records
        .into_iter()
        .filter(|r| r.record_type() == RecordType::SOA)
        .collect()
}
