//! Deciding the answer to a request: the query path's shared state.
//!
//! For each request, [`Engine`]:
//! 1. refuses clients outside `server.allow` (REFUSED, EDE 18 for EDNS
//!    clients: an open resolver is an amplification weapon);
//! 2. loads the current policy snapshot once (an `ArcSwap` load: no lock, so
//!    a reload never stalls a query) and asks for a verdict on the name;
//! 3. answers a listed name with the redirect (never asking upstream), or
//!    forwards the query and applies the same snapshot to every name of the
//!    answer's CNAME chain, fresh or cached (BEHAVIOUR section 2).
//!
//! [`Engine::handle`] does it for a request parsed by hickory: for TCP
//! queries (`dns::tcp`), and for the UDP queries the receive loop
//! leaves to a task. `Engine::answer_in_loop`
//! does it for a plain UDP query inside the receive loop, when the answer
//! needs neither upstream nor hickory.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

use arc_swap::ArcSwap;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use hickory_server::net::xfer::Protocol;
use hickory_server::server::Request;
use ipnet::IpNet;
use tracing::{debug, warn};

use super::edns::{EDE_PROHIBITED, ede_rdata, write_opt};
use super::header::{Header, HeaderCounts, RCODE_REFUSED};
use super::mandatory;
use super::query::QueryView;
use super::redirect::{AnswerKind, RedirectTemplate};
use super::response::Reply;
use super::wire::{Stamp, WireCache};
use crate::audit::{Auditor, RedirectRef};
use crate::metrics::{Metrics, QueryOutcome};
use crate::policy::{Hit, Snapshot};
use crate::proto::Transport;
use crate::upstream::{Answer, Flags, Upstream};

/// Longest CNAME chain followed in an upstream answer.
const MAX_CHAIN: usize = 16;

/// The shared, read-mostly state of the query path.
#[derive(Debug)]
pub struct Engine {
    policy: Arc<ArcSwap<Snapshot>>,
    /// Each list's answer, prepared once, in the snapshot's list order.
    redirects: Vec<RedirectTemplate>,
    allow: Vec<IpNet>,
    upstream: Upstream,
    refused_text: Arc<str>,
    /// The OPT RDATA of a REFUSED answer to an EDNS client (EDE 18 and
    /// `refused_text`), for the receive loop.
    refused_opt: Box<[u8]>,
    pub(super) metrics: Arc<Metrics>,
    audit: Option<Arc<Auditor>>,
    /// Ready-to-send answers for the UDP fast path.
    pub(super) wire: WireCache,
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

/// Who asked, and how.
#[derive(Debug, Clone, Copy)]
pub struct Client {
    /// The client's address.
    pub ip: IpAddr,
    /// How the query came.
    pub transport: Transport,
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
    /// DO, CD and AD as the client set them.
    pub flags: Flags,
}

/// The handle on the engine that the service keeps (for the serving
/// loops, the admin listener and the stop); cheap to clone.
#[derive(Debug, Clone)]
pub struct Handler {
    engine: Arc<Engine>,
}

impl Handler {
    /// A handler answering from `policy` (swapped by the reload path),
    /// answering a name listed by list `i` of the snapshot per
    /// `redirects[i]`, serving clients in `allow`, forwarding through
    /// `upstream`.
    ///
    /// # Panics
    /// If `redirects` is empty: every list needs its answer.
    pub fn new(
        policy: Arc<ArcSwap<Snapshot>>,
        redirects: Vec<RedirectTemplate>,
        allow: Vec<IpNet>,
        upstream: Upstream,
        metrics: Arc<Metrics>,
        audit: Option<Arc<Auditor>>,
    ) -> Handler {
        // The ready-to-send copies take their half of upstream.cache_bytes.
        let wire = WireCache::new(upstream.wire_budget());
        let refused_text: Arc<str> = Arc::from("this resolver serves its own subscribers only");
        let refused_opt =
            ede_rdata(EDE_PROHIBITED, &refused_text).unwrap_or_else(|| Box::new([0, 0]));
        assert!(!redirects.is_empty(), "one redirect per list");
        let engine = Engine {
            wire,
            policy,
            redirects,
            allow,
            upstream,
            refused_text,
            refused_opt,
            metrics,
            audit,
            in_flight: AtomicUsize::new(0),
            idle: tokio::sync::Notify::new(),
        };
        Handler {
            engine: Arc::new(engine),
        }
    }

    /// The engine behind this handler (the UDP receive loop shares it).
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The policy cell this handler reads.
    pub fn policy(&self) -> &Arc<ArcSwap<Snapshot>> {
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

    /// Bytes held by the answer cache and its ready-to-send copies.
    pub fn cache_bytes(&self) -> u64 {
        self.engine.upstream.cache_bytes() + self.engine.wire.bytes()
    }
}

impl Engine {
    /// The answer of list `list` (the last one's, should the snapshot hold
    /// more lists than the handler was given answers: never in a service).
    #[inline]
    fn redirect(&self, list: usize) -> &RedirectTemplate {
        self.redirects
            .get(list)
            .unwrap_or_else(|| &self.redirects[self.redirects.len() - 1])
    }

    /// Whether `ip` may ask (`server.allow`).
    pub(super) fn allowed(&self, ip: IpAddr) -> bool {
        // An IPv4 client on a dual-stack socket appears as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.allow.iter().any(|net| net.contains(&ip))
    }

    /// The reply to a parsed request (UDP or TCP, as hickory says),
    /// counted in the metrics.
    pub async fn handle(&self, request: &Request) -> (Reply, QueryOutcome) {
        self.handle_as(request, transport_of(request)).await
    }

    /// The reply to a parsed request that came by `transport`, counted in
    /// the metrics.
    pub async fn handle_as(
        &self,
        request: &Request,
        transport: Transport,
    ) -> (Reply, QueryOutcome) {
        self.in_flight.fetch_add(1, AtomicOrdering::AcqRel);
        let _in_flight = InFlight(&self.in_flight, &self.idle);
        let (reply, outcome) = if !self.allowed(request.src().ip()) {
            debug!(client = %request.src().ip(), "refused: not in server.allow");
            (self.refused(), QueryOutcome::Refused)
        } else if let Some(rcode) = mandatory::check(request) {
            (Reply::rcode(rcode), QueryOutcome::Error)
        } else {
            match question(request) {
                None => (Reply::rcode(ResponseCode::FormErr), QueryOutcome::Error),
                Some(q) => {
                    let client = Client {
                        ip: request.src().ip(),
                        transport,
                    };
                    self.answer(&q, client).await
                }
            }
        };
        self.metrics.query(transport, outcome);
        (reply, outcome)
    }

    /// REFUSED with EDE 18: the answer to a client that may not ask.
    fn refused(&self) -> Reply {
        Reply {
            ede: Some((EDE_PROHIBITED, self.refused_text.clone())),
            ..Reply::rcode(ResponseCode::Refused)
        }
    }

    /// REFUSED to a request by `transport` whoever sent it (a proxy that
    /// sent no PROXY header), counted in the metrics.
    pub(super) fn refuse(&self, transport: Transport) -> Reply {
        self.metrics.query(transport, QueryOutcome::Refused);
        self.refused()
    }

    /// Decide the reply to a question from an allowed client.
    pub async fn answer(&self, q: &Question, client: Client) -> (Reply, QueryOutcome) {
        let policy = self.policy.load();
        if let Some(hit) = policy.verdict(&q.name) {
            debug!(qname = %q.name, qtype = %q.qtype, rule = hit.rule.name, list = policy.lists()[hit.list].list(), "redirect");
            let reply = self
                .redirect_reply(q, client, Vec::new(), &q.name, &hit, &policy)
                .await;
            return (reply, QueryOutcome::Redirected);
        }
        match self
            .upstream
            .resolve(&q.name, q.qtype, q.qclass, q.flags)
            .await
        {
            Ok(answer) => {
                let cached = answer.cached;
                let (reply, redirected) = self.apply_chain(q, client, answer, &policy).await;
                let outcome = if redirected {
                    QueryOutcome::Redirected
                } else if cached {
                    QueryOutcome::Cached
                } else {
                    QueryOutcome::Forwarded
                };
                (reply, outcome)
            }
            Err(error) => {
                debug!(qname = %q.name, qtype = %q.qtype, %error, "upstream failed");
                // RFC 8914: the upstream's own EDE (e.g. 6 "DNSSEC Bogus"),
                // or why no answer came (22, 23).
                let reply = Reply {
                    ede: error.ede(),
                    ..Reply::rcode(ResponseCode::ServFail)
                };
                (reply, QueryOutcome::Servfail)
            }
        }
    }

    /// Count a redirect by `hit` of `policy` and hand its audit record to
    /// the queue. `qname` makes the name asked, only when there is a trail.
    fn record_redirect(
        &self,
        qname: impl FnOnce() -> Name,
        qtype: RecordType,
        hit: &Hit<'_>,
        policy: &Snapshot,
        kind: AnswerKind,
        client: Client,
    ) {
        let list = &policy.lists()[hit.list];
        self.metrics.redirect(list.list(), hit.rule.category);
        if let Some(audit) = &self.audit {
            audit.record_redirect(
                RedirectRef {
                    qname: qname(),
                    qtype,
                    policy: Arc::clone(list),
                    index: hit.rule.index,
                    answer: kind.as_str(),
                    transport: client.transport,
                },
                client.ip,
            );
        }
    }

    /// The answer of the list of `hit` for `owner`, after the CNAME
    /// records `chain` that led to it.
    async fn redirect_reply(
        &self,
        q: &Question,
        client: Client,
        mut chain: Vec<Record>,
        owner: &Name,
        hit: &Hit<'_>,
        policy: &Snapshot,
    ) -> Reply {
        let qtype = q.qtype;
        let redirect = self.redirect(hit.list);
        let serial = policy.lists()[hit.list].info().map_or(0, |i| i.serial);
        let mut authorities = Vec::new();
        let mut rcode = ResponseCode::NoError;
        let kind = match redirect.records(owner, qtype) {
            Some(records) => {
                chain.extend(records);
                if redirect.cname().is_some() {
                    AnswerKind::Cname
                } else {
                    AnswerKind::Redirect
                }
            }
            // RFC 2308 section 3: NXDOMAIN carries the SOA as NODATA does.
            None if redirect.nxdomain() => {
                authorities.push(redirect.soa(&hit.rule, serial));
                rcode = ResponseCode::NXDomain;
                AnswerKind::Nxdomain
            }
            None => {
                authorities.push(redirect.soa(&hit.rule, serial));
                AnswerKind::Nodata
            }
        };
        self.record_redirect(|| q.name.clone(), qtype, hit, policy, kind, client);
        // CNAME mode: the information host is resolved normally (it is a
        // protected name, so no list can redirect it in turn).
        if let Some(target) = redirect.cname()
            && qtype != RecordType::CNAME
        {
            let flags = Flags::default();
            match self
                .upstream
                .resolve(target, qtype, DNSClass::IN, flags)
                .await
            {
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
        Reply {
            rcode,
            answers: chain,
            authorities,
            ede: Some(redirect.ede()),
            authentic: false,
            stamp: None,
        }
    }

    /// BEHAVIOUR section 2, CNAME chains: follow the chain from the question
    /// name; at the first listed name, keep the chain up to it and end with
    /// the redirect (true with the reply). Records about listed names off
    /// the chain are dropped, their signatures with them (same owner).
    ///
    /// A redirect keeps the contract of listed names: no RRSIG, NSEC or
    /// NSEC3, AD=0, whatever the client asked; the signatures of the CNAME
    /// records kept go as well, since the answer as a whole is ours.
    async fn apply_chain(
        &self,
        q: &Question,
        client: Client,
        answer: Answer,
        policy: &Snapshot,
    ) -> (Reply, bool) {
        let stamp = answer.stored.map(|stored| Stamp {
            stored,
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
            if let Some(hit) = policy.verdict(&target) {
                debug!(qname = %q.name, target = %target, rule = hit.rule.name, "redirect via CNAME chain");
                let reply = self
                    .redirect_reply(q, client, chain, &target, &hit, policy)
                    .await;
                return (reply, true);
            }
            current = target;
        }
        let answers = answer
            .answers
            .into_iter()
            .filter(|r| policy.verdict(&r.name).is_none())
            .collect();
        let reply = Reply {
            rcode: answer.rcode,
            answers,
            authorities: answer.authorities,
            ede: answer.ede,
            authentic: answer.authentic,
            stamp,
        };
        (reply, false)
    }

    /// Answer a plain query (`msg`, read as `view`) from an allowed client
    /// without leaving the receive loop, when that needs neither upstream
    /// nor hickory: a kept answer ([`super::wire`]), or the redirect for a
    /// listed name (outside CNAME mode, class IN). Writes the answer into
    /// `out` and returns true; false leaves the query to the full path.
    pub(super) fn answer_in_loop(
        &self,
        msg: &[u8],
        view: &QueryView,
        src: SocketAddr,
        out: &mut Vec<u8>,
    ) -> bool {
        let policy = self.policy.load();
        if self.wire.answer(msg, view, policy.generation(), out) {
            self.metrics.ready_answer();
            return true;
        }
        if view.qclass != u16::from(DNSClass::IN) {
            return false;
        }
        let name = view.name(msg);
        let Some(hit) = policy.verdict_wire(name) else {
            return false;
        };
        let serial = policy.lists()[hit.list].info().map_or(0, |i| i.serial);
        // None in CNAME mode: the full path resolves the target.
        let Some(kind) = self
            .redirect(hit.list)
            .write_wire(msg, view, &hit.rule, serial, out)
        else {
            return false;
        };
        self.metrics.query(Transport::Udp, QueryOutcome::Redirected);
        let qname = || Name::read(&mut BinDecoder::new(name)).unwrap_or_else(|_| Name::root());
        let client = Client {
            ip: src.ip(),
            transport: Transport::Udp,
        };
        self.record_redirect(
            qname,
            RecordType::from(view.qtype),
            &hit,
            &policy,
            kind,
            client,
        );
        true
    }

    /// REFUSED to a plain query (`msg`, read as `view`) from a client
    /// outside `server.allow`, written by the receive loop: the answer the
    /// full path gives (the question as sent, EDE 18 for EDNS clients),
    /// with no task, no copy and no parse.
    pub(super) fn refuse_in_loop(&self, msg: &[u8], view: &QueryView, out: &mut Vec<u8>) {
        out.clear();
        let mut header = Header::answer_to(Header::for_message(msg));
        header.set_rcode(RCODE_REFUSED);
        out.extend_from_slice(header.as_octets());
        let mut counts = HeaderCounts::new();
        counts.set_qdcount(1);
        counts.set_arcount(u16::from(view.edns.is_some()));
        out.extend_from_slice(counts.as_octets());
        out.extend_from_slice(view.question(msg));
        if let Some((payload, dnssec_ok)) = view.edns {
            write_opt(out, payload, dnssec_ok, &self.refused_opt);
        }
        self.metrics.query(Transport::Udp, QueryOutcome::Refused);
    }
}

/// How `request` came, of the two transports hickory names here.
fn transport_of(request: &Request) -> Transport {
    if request.protocol() == Protocol::Udp {
        Transport::Udp
    } else {
        Transport::Tcp
    }
}

/// The question of a request with the name in its original case (the
/// parsed query holds it lowercased).
fn question(request: &Request) -> Option<Question> {
    let info = request.request_info().ok()?;
    let query = info.query;
    let flags = Flags {
        dnssec_ok: request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok),
        checking_disabled: request.metadata.checking_disabled,
        authentic_data: request.metadata.authentic_data,
    };
    let mut decoder = BinDecoder::new(request.queries.as_bytes());
    let name = Name::read(&mut decoder).unwrap_or_else(|_| query.name().into());
    Some(Question {
        name,
        qtype: query.query_type(),
        qclass: query.query_class(),
        flags,
    })
}
