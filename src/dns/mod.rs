//! Speaking DNS: the request handler.
//!
//! For each request, [`Handler`]:
//! 1. refuses clients outside `server.allow` (REFUSED, EDE 18 for EDNS
//!    clients: an open resolver is an amplification weapon);
//! 2. loads the current policy snapshot once (an `ArcSwap` load: no lock, so
//!    a reload never stalls a query) and asks for a verdict on the name;
//! 3. answers a listed name with the redirect (never asking upstream), or
//!    forwards the query and applies the same snapshot to every name of the
//!    answer's CNAME chain, fresh or cached (BEHAVIOUR section 2).

pub mod answer;
pub mod udp;
pub mod wire;

use std::iter;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

use arc_swap::ArcSwap;
use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use ipnet::IpNet;
use tracing::{debug, warn};

use crate::audit::{Auditor, RedirectRef};
use crate::metrics::{Metrics, Outcome};
use crate::policy::{Policy, Rule};
use crate::upstream::{Answer, Upstream};
pub use answer::{Redirect, Reply};

/// Longest CNAME chain followed in an upstream answer.
const MAX_CHAIN: usize = 16;

/// The shared, read-mostly state of the query path.
#[derive(Debug)]
pub struct Engine {
    policy: Arc<ArcSwap<Policy>>,
    redirect: Redirect,
    allow: Vec<IpNet>,
    upstream: Upstream,
    refused_text: Arc<str>,
    metrics: Arc<Metrics>,
    audit: Option<Arc<Auditor>>,
    /// Ready-to-send answers for the UDP fast path.
    wire: wire::WireCache,
    /// Requests being answered, so that a stop can let them finish.
    in_flight: AtomicUsize,
    /// Notified when `in_flight` falls to zero (a stop waits on it).
    idle: tokio::sync::Notify,
}

/// Decrements the in-flight count when a request is done, however it ends,
/// and notifies `idle` when it was the last one.
struct InFlight<'a>(&'a AtomicUsize, &'a tokio::sync::Notify);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.0.fetch_sub(1, AtomicOrdering::Release) == 1 {
            self.1.notify_one();
        }
    }
}

/// The hickory-server request handler; cheap to clone.
#[derive(Debug, Clone)]
pub struct Handler {
    engine: Arc<Engine>,
}

impl Handler {
    /// A handler answering from `policy` (swapped by the reload path),
    /// redirecting per `redirect`, serving clients in `allow`, forwarding
    /// through `upstream`.
    pub fn new(
        policy: Arc<ArcSwap<Policy>>,
        redirect: Redirect,
        allow: Vec<IpNet>,
        upstream: Upstream,
        metrics: Arc<Metrics>,
        audit: Option<Arc<Auditor>>,
    ) -> Handler {
        // As many ready-to-send answers as upstream answers kept.
        let wire = wire::WireCache::new(upstream.capacity());
        Handler {
            engine: Arc::new(Engine {
                wire,
                policy,
                redirect,
                allow,
                upstream,
                refused_text: Arc::from("this resolver serves its own subscribers only"),
                metrics,
                audit,
                in_flight: AtomicUsize::new(0),
                idle: tokio::sync::Notify::new(),
            }),
        }
    }

    /// The policy cell this handler reads.
    pub fn policy(&self) -> &Arc<ArcSwap<Policy>> {
        &self.engine.policy
    }

    /// Requests being answered now.
    pub fn in_flight(&self) -> usize {
        self.engine.in_flight.load(AtomicOrdering::Acquire)
    }

    /// Notified each time the last request in flight ends.
    pub fn idle(&self) -> &tokio::sync::Notify {
        &self.engine.idle
    }

    /// The forwarder.
    pub fn upstream(&self) -> &Upstream {
        &self.engine.upstream
    }
}

/// Who asked, and how.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    /// The client's address.
    pub ip: IpAddr,
    /// True over TCP.
    pub tcp: bool,
}

/// The question of a request, with the name in the client's letter case.
#[derive(Debug, Clone)]
pub struct Question {
    /// The name as sent.
    pub name: Name,
    /// QTYPE.
    pub qtype: RecordType,
    /// QCLASS.
    pub qclass: DNSClass,
}

impl Engine {
    fn allowed(&self, ip: IpAddr) -> bool {
        // An IPv4 client on a dual-stack socket appears as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.allow.iter().any(|net| net.contains(&ip))
    }

    /// Decide the reply to a question from an allowed client.
    pub async fn answer(&self, q: &Question, client: Client) -> (Reply, Outcome) {
        let policy = self.policy.load();
        if let Some(rule) = policy.verdict(&q.name) {
            debug!(qname = %q.name, qtype = %q.qtype, rule = rule.name, "redirect");
            let reply = self
                .redirect_reply(q, client, Vec::new(), &q.name, &rule, &policy)
                .await;
            return (reply, Outcome::Redirected);
        }
        match self.upstream.resolve(&q.name, q.qtype, q.qclass).await {
            Ok(answer) => {
                let cached = answer.cached;
                let reply = self.apply_chain(q, client, answer, &policy).await;
                let outcome = if reply.ede.is_some() {
                    Outcome::Redirected
                } else if cached {
                    Outcome::Cached
                } else {
                    Outcome::Forwarded
                };
                (reply, outcome)
            }
            Err(error) => {
                debug!(qname = %q.name, qtype = %q.qtype, %error, "upstream failed");
                (Reply::rcode(ResponseCode::ServFail), Outcome::Servfail)
            }
        }
    }

    /// The redirect for `owner`, listed by `rule`, after the CNAME records
    /// `chain` that led to it.
    async fn redirect_reply(
        &self,
        q: &Question,
        client: Client,
        mut chain: Vec<Record>,
        owner: &Name,
        rule: &Rule<'_>,
        policy: &Arc<Policy>,
    ) -> Reply {
        let qtype = q.qtype;
        let serial = policy.info().map_or(0, |i| i.serial);
        let mut authorities = Vec::new();
        let mut rcode = ResponseCode::NoError;
        let answer_kind = match self.redirect.records(owner, qtype) {
            Some(records) => {
                chain.extend(records);
                if self.redirect.cname().is_some() {
                    "cname"
                } else {
                    "redirect"
                }
            }
            None => {
                authorities.push(self.redirect.soa(rule, serial));
                "nodata"
            }
        };
        self.metrics.redirect(rule.category);
        if let Some(audit) = &self.audit {
            audit.record_redirect(
                RedirectRef {
                    qname: q.name.clone(),
                    qtype,
                    policy: Arc::clone(policy),
                    index: rule.index,
                    answer: answer_kind,
                    tcp: client.tcp,
                },
                client.ip,
            );
        }
        // CNAME mode: the information host is resolved normally (it is a
        // protected name, so no list can redirect it in turn).
        if let Some(target) = self.redirect.cname()
            && qtype != RecordType::CNAME
        {
            {
                match self.upstream.resolve(target, qtype, DNSClass::IN).await {
                    Ok(a) => {
                        rcode = a.rcode;
                        chain.extend(a.answers);
                        authorities = a.authorities;
                    }
                    Err(error) => {
                        warn!(target = %target, %error, "cannot resolve the redirect.cname target");
                    }
                }
            }
        }
        Reply {
            rcode,
            answers: chain,
            authorities,
            ede: Some(self.redirect.ede()),
            stamp: None,
        }
    }

    /// BEHAVIOUR section 2, CNAME chains: follow the chain from the question
    /// name; at the first listed name, keep the chain up to it and end with
    /// the redirect. Records about listed names off the chain are dropped.
    async fn apply_chain(
        &self,
        q: &Question,
        client: Client,
        answer: Answer,
        policy: &Arc<Policy>,
    ) -> Reply {
        let stamp = answer.stored.map(|s| wire::Stamp {
            stored: s.at,
            ttl: s.ttl,
            age: s.age,
            generation: policy.generation(),
        });
        let mut current = q.name.clone();
        let mut chain: Vec<Record> = Vec::new();
        for _ in 0..MAX_CHAIN {
            // Name equality is ASCII case-insensitive (RFC 4343).
            let Some(link) = answer
                .answers
                .iter()
                .find(|r| r.record_type() == RecordType::CNAME && r.name == current)
            else {
                break;
            };
            let RData::CNAME(target) = &link.data else {
                break;
            };
            chain.push(link.clone());
            let target = target.0.clone();
            if let Some(rule) = policy.verdict(&target) {
                debug!(qname = %q.name, target = %target, rule = rule.name, "redirect via CNAME chain");
                return self
                    .redirect_reply(q, client, chain, &target, &rule, policy)
                    .await;
            }
            current = target;
        }
        let answers = answer
            .answers
            .into_iter()
            .filter(|r| policy.verdict(&r.name).is_none())
            .collect();
        Reply {
            rcode: answer.rcode,
            answers,
            authorities: answer.authorities,
            ede: None,
            stamp,
        }
    }
}

/// The question of a request with the name in its original case (the
/// parsed query holds it lowercased).
fn question(request: &Request) -> Option<Question> {
    let info = request.request_info().ok()?;
    let query = info.query;
    let mut decoder = BinDecoder::new(request.queries.as_bytes());
    let name = Name::read(&mut decoder).unwrap_or_else(|_| query.name().into());
    Some(Question {
        name,
        qtype: query.query_type(),
        qclass: query.query_class(),
    })
}

impl Engine {
    /// The reply to a parsed request, counted in the metrics.
    pub async fn handle(&self, request: &Request) -> (Reply, Outcome) {
        self.in_flight.fetch_add(1, AtomicOrdering::AcqRel);
        let _in_flight = InFlight(&self.in_flight, &self.idle);
        let tcp = request.protocol() != hickory_server::net::xfer::Protocol::Udp;
        let (reply, outcome) = if !self.allowed(request.src().ip()) {
            debug!(client = %request.src().ip(), "refused: not in server.allow");
            let reply = Reply {
                ede: Some((answer::EDE_PROHIBITED, self.refused_text.clone())),
                ..Reply::rcode(ResponseCode::Refused)
            };
            (reply, Outcome::Refused)
        } else if request.metadata.op_code != OpCode::Query {
            (Reply::rcode(ResponseCode::NotImp), Outcome::Error)
        } else {
            match question(request) {
                None => (Reply::rcode(ResponseCode::FormErr), Outcome::Error),
                Some(q) => {
                    let client = Client {
                        ip: request.src().ip(),
                        tcp,
                    };
                    self.answer(&q, client).await
                }
            }
        };
        self.metrics.query(tcp, outcome);
        (reply, outcome)
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        let (reply, _) = self.engine.handle(request).await;
        send(request, response_handle, &reply).await
    }
}

/// The response metadata for `reply` to `request`: RA=1, AD=0.
fn response_metadata(request: &Request, reply: &Reply) -> Metadata {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.recursion_available = true;
    metadata.authentic_data = false;
    metadata.response_code = reply.rcode;
    metadata
}

/// `reply` to `request` on the wire, at most `max_size` octets (the rest
/// dropped and TC set, RFC 2181 section 9); SERVFAIL if it cannot be
/// encoded.
pub fn encode(request: &Request, reply: &Reply, max_size: u16) -> Vec<u8> {
    let metadata = response_metadata(request, reply);
    let edns: Option<Edns> = request
        .edns
        .as_ref()
        .map(|e| answer::response_edns(e, reply.ede.as_ref()));
    let response = MessageResponseBuilder::new(&request.queries, edns.as_ref()).build(
        metadata,
        reply.answers.iter(),
        reply.authorities.iter(),
        iter::empty(),
        iter::empty(),
    );
    let mut bytes = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_max_size(max_size);
    if let Err(error) = response.destructive_emit(&mut encoder) {
        warn!(%error, "cannot encode an answer; SERVFAIL instead");
        let mut metadata = metadata;
        metadata.response_code = ResponseCode::ServFail;
        bytes.clear();
        let mut encoder = BinEncoder::new(&mut bytes);
        let header = Header {
            metadata,
            counts: HeaderCounts::default(),
        };
        let _ = header.emit(&mut encoder);
    }
    bytes
}

/// Encode and send `reply` (RA=1, AD=0, OPT only for EDNS queries).
async fn send<R: ResponseHandler>(request: &Request, mut handle: R, reply: &Reply) -> ResponseInfo {
    let mut metadata = response_metadata(request, reply);
    let edns: Option<Edns> = request
        .edns
        .as_ref()
        .map(|e| answer::response_edns(e, reply.ede.as_ref()));
    let response = MessageResponseBuilder::new(&request.queries, edns.as_ref()).build(
        metadata,
        reply.answers.iter(),
        reply.authorities.iter(),
        iter::empty(),
        iter::empty(),
    );
    match handle.send_response(response).await {
        Ok(info) => info,
        Err(error) => {
            debug!(client = %request.src(), %error, "cannot send the answer");
            metadata.response_code = ResponseCode::ServFail;
            ResponseInfo::from(Header {
                metadata,
                counts: HeaderCounts::default(),
            })
        }
    }
}
