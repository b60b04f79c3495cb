//! Pulling a list from a web origin (BEHAVIOUR section 10): a poller per
//! list with `url`.
//!
//! Each poll GETs the list and `url + ".minisig"` with conditional requests
//! (RFC 9110 section 13.1: `If-None-Match` with the last ETag,
//! `If-Modified-Since` with the last `Last-Modified`), so that an unchanged
//! origin costs two 304 answers. When either file changed, both are
//! fetched (the other one again, unconditionally) and the pair goes
//! through [`Admission::admit`] as [`Source::Fetch`]: the same gates,
//! refusals and audit records as a file, naming the URL. A pair identical
//! to the last one tried (an origin without validators, or one that
//! touched the files) is not admitted again.
//!
//! The channel is untrusted: the signature and the gates decide. TLS
//! (rustls, through `ureq`, on a blocking thread: never on the query
//! path's workers) keeps the list confidential in transit.
//!
//! Bounds: the list body is cut at `list.max_bytes`, the signature's at
//! [`MAX_SIGNATURE_BYTES`], counted as they arrive; [`CONNECT_TIMEOUT`],
//! [`RESPONSE_TIMEOUT`] and [`BODY_TIMEOUT`]; at most [`MAX_REDIRECTS`]
//! redirects, never from https to http. A failed poll keeps the list in
//! force, is logged once per change of state (ok to failing with the
//! reason, failing to ok), counted, and retried with an exponential
//! backoff ([`backoff`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc, oneshot};
use tracing::{info, warn};
use ureq::tls::{PemItem, RootCerts, TlsConfig};

use crate::admission::{Admission, FetchNow, Verdict};
use crate::config::WebOrigin;
use crate::list::pair::MAX_SIGNATURE_BYTES;
use crate::metrics::{FetchMetrics, FetchResult};

/// Time to open the connection (TCP and TLS).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time from the request sent to the response's headers.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// Time to receive a whole body (a 512 MiB list at 15 Mbit/s).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(300);
/// Redirects followed per request (an object store or a CDN may send one);
/// more is a failure.
pub const MAX_REDIRECTS: u32 = 3;
/// The longest wait after failures, whatever the interval (see
/// [`backoff`]).
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// After a pair is refused, it is fetched once more this much later before
/// the refusal counts: the origin may be between writing the list and
/// writing its signature.
pub const REFUSED_RETRY: Duration = Duration::from_secs(1);
/// The system's CA bundle (Debian's `ca-certificates`), the roots of an
/// https origin when present.
pub const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Why the origin could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{url}: {reason}")]
pub struct FetchError {
    /// The URL at fault (the list's or the signature's).
    pub url: String,
    /// What went wrong: connection, TLS, HTTP status, timeout, size.
    pub reason: String,
}

/// Why the roots of an https origin cannot be set up (`ca_file`).
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The file cannot be read.
    #[error("{}: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not PEM.
    #[error("{}: not PEM: {source}", file.display())]
    Pem {
        /// The file.
        file: PathBuf,
        /// The parser's error.
        source: ureq::Error,
    },
    /// No certificate in the file.
    #[error("{}: no CERTIFICATE in the file", file.display())]
    Empty {
        /// The file.
        file: PathBuf,
    },
}

/// The certificates of a PEM file (at least one): the roots an https
/// origin, or the admin listener `rempart list push` talks to, is checked
/// against.
pub fn certificates(file: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, CaError> {
    let pem = std::fs::read(file).map_err(|source| CaError::Read {
        file: file.to_owned(),
        source,
    })?;
    let mut out = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => out.push(c),
            Ok(_) => {}
            Err(source) => {
                return Err(CaError::Pem {
                    file: file.to_owned(),
                    source,
                });
            }
        }
    }
    if out.is_empty() {
        return Err(CaError::Empty {
            file: file.to_owned(),
        });
    }
    Ok(out)
}

/// The roots an https origin's certificate is checked against: the
/// system's CA bundle ([`SYSTEM_ROOTS`]) if present, else the Mozilla
/// roots built in (webpki-roots); `ca_file`'s certificates are added to
/// them. (The built-in roots cannot be extended: with `ca_file` and no
/// system bundle, `ca_file`'s CAs alone are trusted.)
pub fn roots(ca_file: Option<&Path>) -> Result<RootCerts, CaError> {
    let system = certificates(Path::new(SYSTEM_ROOTS)).ok();
    let own = ca_file.map(certificates).transpose()?;
    Ok(match (system, own) {
        (None, None) => RootCerts::WebPki,
        (Some(mut system), own) => {
            system.extend(own.unwrap_or_default());
            RootCerts::new_with_certs(&system)
        }
        (None, Some(own)) => RootCerts::new_with_certs(&own),
    })
}

/// The HTTP client of one origin: the bounds of the module's header.
fn agent(origin: &WebOrigin, roots: RootCerts) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .https_only(origin.url.to_ascii_lowercase().starts_with("https://"))
        .max_redirects(MAX_REDIRECTS)
        .max_redirects_will_error(true)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_recv_response(Some(RESPONSE_TIMEOUT))
        .timeout_recv_body(Some(BODY_TIMEOUT))
        .user_agent(concat!("rempart/", env!("CARGO_PKG_VERSION")))
        .tls_config(TlsConfig::builder().root_certs(roots).build())
        .build()
        .into()
}

/// What identifies the version of a file the origin last sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Validators {
    etag: Option<String>,
    last_modified: Option<String>,
}

/// One GET's outcome.
enum Got<T> {
    /// 304: the version we have.
    NotModified,
    /// 200: what became of the body, and its validators.
    Body(T, Validators),
}

/// GET `url`, conditional on `have` when given; the body, cut at `limit`,
/// handed to `take`.
fn get<T>(
    agent: &ureq::Agent,
    url: &str,
    have: Option<&Validators>,
    limit: u64,
    take: impl FnOnce(ureq::BodyReader<'_>) -> Result<T, FetchError>,
) -> Result<Got<T>, FetchError> {
    let fail = |reason: String| FetchError {
        url: url.to_owned(),
        reason,
    };
    let mut request = agent.get(url);
    if let Some(v) = have {
        if let Some(etag) = &v.etag {
            request = request.header("If-None-Match", etag);
        }
        if let Some(lm) = &v.last_modified {
            request = request.header("If-Modified-Since", lm);
        }
    }
    let mut response = request.call().map_err(|e| fail(describe(&e, limit)))?;
    match response.status().as_u16() {
        304 if have.is_some() => return Ok(Got::NotModified),
        200 => {}
        code => return Err(fail(format!("HTTP status {code}"))),
    }
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let last_modified = header("last-modified");
    // RFC 9110 section 8.8.2.2: a Last-Modified less than a second before
    // the response's Date is weak: the file may change again within that
    // second and keep the same time (and the ETag of a static file server,
    // nginx's included, is made of that time and the size). Such a version
    // is fetched again whole at the next poll (and, if the same, not
    // admitted again).
    let validators = if within_a_second(last_modified.as_deref(), header("date").as_deref()) {
        Validators::default()
    } else {
        Validators {
            etag: header("etag"),
            last_modified,
        }
    };
    let body = take(response.body_mut().with_config().limit(limit).reader())?;
    Ok(Got::Body(body, validators))
}

/// A body read whole (the signature: a few hundred bytes).
fn to_vec(
    url: &str,
    limit: u64,
) -> impl FnOnce(ureq::BodyReader<'_>) -> Result<Vec<u8>, FetchError> {
    move |mut reader| {
        use std::io::Read;
        let mut out = Vec::new();
        reader.read_to_end(&mut out).map_err(|e| FetchError {
            url: url.to_owned(),
            reason: describe(&ureq::Error::from(e), limit),
        })?;
        Ok(out)
    }
}

/// A body written to `file` as it arrives (the list: up to
/// `list.max_bytes`, never held whole), its SHA-256 returned.
fn to_file<'a>(
    url: &'a str,
    limit: u64,
    file: &'a Path,
) -> impl FnOnce(ureq::BodyReader<'_>) -> Result<[u8; 32], FetchError> + 'a {
    move |mut reader| {
        use sha2::{Digest, Sha256};
        use std::io::{Read, Write};
        let local = |e: std::io::Error| FetchError {
            url: url.to_owned(),
            reason: format!("cannot write {}: {e}", file.display()),
        };
        let mut out = std::io::BufWriter::new(std::fs::File::create(file).map_err(local)?);
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(FetchError {
                        url: url.to_owned(),
                        reason: describe(&ureq::Error::from(e), limit),
                    });
                }
            };
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(local)?;
        }
        out.flush().map_err(local)?;
        Ok(hasher.finalize().into())
    }
}

/// Whether `last_modified` is less than a second before `date` (both HTTP
/// dates, RFC 9110 section 5.6.7); `false` when either is missing or
/// unreadable.
fn within_a_second(last_modified: Option<&str>, date: Option<&str>) -> bool {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let parse = |s: Option<&str>| s.and_then(|s| time::PrimitiveDateTime::parse(s, &format).ok());
    match (parse(last_modified), parse(date)) {
        (Some(lm), Some(date)) => date - lm < time::Duration::seconds(1),
        _ => false,
    }
}

/// A client error in words an operator acts on.
fn describe(e: &ureq::Error, limit: u64) -> String {
    match e {
        ureq::Error::BodyExceedsLimit(_) => format!("larger than {limit} bytes"),
        ureq::Error::TooManyRedirects => format!("more than {MAX_REDIRECTS} redirects"),
        other => other.to_string(),
    }
}

/// What a fetch of the pair found.
enum Fetched {
    /// Both files answered 304.
    NotModified,
    /// The pair, written to the poller's file and its `.minisig`: the
    /// digest of the pair (see [`pair_digest`]), and the validators of each
    /// file.
    Pair([u8; 32], Validators, Validators),
}

/// GET the list and its signature, conditional on `have` when given; if
/// either changed, the other is fetched again unconditionally, so that
/// the pair is whole. The list is written to `file` as it arrives, the
/// signature to `file.minisig`.
fn fetch_pair(
    agent: &ureq::Agent,
    url: &str,
    limit: u64,
    have: Option<(&Validators, &Validators)>,
    file: &Path,
) -> Result<Fetched, FetchError> {
    let sig_url = format!("{url}.minisig");
    let list = |have| get(agent, url, have, limit, to_file(url, limit, file));
    let sig = |have| {
        get(
            agent,
            &sig_url,
            have,
            MAX_SIGNATURE_BYTES,
            to_vec(&sig_url, MAX_SIGNATURE_BYTES),
        )
    };
    let (l, s) = (list(have.map(|h| h.0))?, sig(have.map(|h| h.1))?);
    let (l, s) = match (l, s) {
        (Got::NotModified, Got::NotModified) => return Ok(Fetched::NotModified),
        (Got::NotModified, s) => (list(None)?, s),
        (l, Got::NotModified) => (l, sig(None)?),
        both => both,
    };
    match (l, s) {
        (Got::Body(list_digest, lv), Got::Body(signature, sv)) => {
            let sig_file = crate::list::signature_path(file);
            std::fs::write(&sig_file, &signature).map_err(|e| FetchError {
                url: sig_url.clone(),
                reason: format!("cannot write {}: {e}", sig_file.display()),
            })?;
            Ok(Fetched::Pair(pair_digest(list_digest, &signature), lv, sv))
        }
        // An unconditional GET never answers 304 (see `get`).
        _ => Err(FetchError {
            url: url.to_owned(),
            reason: "304 to an unconditional request".to_owned(),
        }),
    }
}

/// The wait before the next poll: the interval, or after `failures`
/// failures in a row, the interval times 2^failures, capped at 8 times the
/// interval and at [`MAX_BACKOFF`] (never below the interval); then a
/// jitter of +-10%, so that a fleet started together does not poll the
/// origin together.
pub fn backoff(interval: Duration, failures: u32) -> Duration {
    let cap = (interval * 8).min(MAX_BACKOFF).max(interval);
    let wait = interval
        .checked_mul(1u32 << failures.min(16))
        .unwrap_or(cap)
        .min(cap);
    let r = getrandom::u32().unwrap_or(u32::MAX / 2);
    // r / u32::MAX in [0, 1] -> a factor in [0.9, 1.1].
    wait.mul_f64(0.9 + 0.2 * (f64::from(r) / f64::from(u32::MAX)))
}

/// What the poller remembers between polls.
#[derive(Default)]
struct State {
    /// The validators of the list and of its signature last fetched.
    have: Option<(Validators, Validators)>,
    /// The SHA-256 of the pair last tried, and its verdict.
    last: Option<([u8; 32], Verdict)>,
    /// Polls failed in a row; > 0 while failing.
    failures: u32,
}

/// The poller of one list fetched from a web origin.
pub struct Poller {
    admission: Arc<Admission>,
    url: String,
    interval: Duration,
    max_bytes: u64,
    agent: ureq::Agent,
    metrics: Arc<FetchMetrics>,
    /// Where a fetched list is written as it arrives (its signature
    /// beside it, `.minisig`), in the list's state directory, until it is
    /// judged: a large list is never held whole in memory.
    file: PathBuf,
    /// Held for a whole poll: the timer's and a reload's polls take turns.
    state: Mutex<State>,
}

/// The name of [`Poller`]'s file in the list's state directory (a
/// temporary name: removed at start if a stop left it).
pub const FETCHED: &str = ".fetched-list.tmp";

impl std::fmt::Debug for Poller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller").field("url", &self.url).finish()
    }
}

impl Poller {
    /// The poller of `admission`'s list at `origin`; its roots read now
    /// (`ca_file` must be readable PEM).
    pub fn new(
        admission: Arc<Admission>,
        origin: &WebOrigin,
        max_bytes: u64,
        metrics: Arc<FetchMetrics>,
    ) -> Result<Arc<Poller>, CaError> {
        let roots = roots(origin.ca_file.as_deref())?;
        let file = admission.state_dir().join(FETCHED);
        Ok(Arc::new(Poller {
            admission,
            url: origin.url.clone(),
            interval: origin.poll_interval,
            max_bytes,
            agent: agent(origin, roots),
            metrics,
            file,
            state: Mutex::new(State::default()),
        }))
    }

    /// Poll on the interval (with jitter and backoff), and whenever
    /// [`Admission::reread`] asks (SIGHUP, the admin reload endpoint; the
    /// wait starts again after it). The task runs until aborted (the
    /// service's stop): the admission path it feeds holds its request
    /// channel.
    pub fn spawn(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let (tx, mut requests): (FetchNow, _) = mpsc::channel(4);
        self.admission.fetched_by(tx);
        let me = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let failures = me.state.lock().await.failures;
                let wait = backoff(me.interval, failures);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {
                        me.poll().await;
                    }
                    asked = requests.recv() => {
                        let Some(reply): Option<oneshot::Sender<Verdict>> = asked else {
                            return;
                        };
                        let verdict = me.poll().await;
                        let _ = reply.send(verdict);
                    }
                }
            }
        })
    }

    /// One poll: fetch (conditionally), admit the pair if it changed,
    /// count, and log a change of state. The verdict is what a reload
    /// answers.
    pub async fn poll(&self) -> Verdict {
        let mut state = self.state.lock().await;
        let verdict = self.poll_locked(&mut state).await;
        // What was fetched is read (and kept, if applied) by now.
        let _ = std::fs::remove_file(&self.file);
        let _ = std::fs::remove_file(crate::list::signature_path(&self.file));
        verdict
    }

    /// [`Self::poll`], its state held.
    async fn poll_locked(&self, state: &mut State) -> Verdict {
        let fetched = self.fetch(state.have.clone()).await;
        let (digest, lv, sv) = match fetched {
            Err(e) => return self.failed(state, e),
            Ok(Fetched::NotModified) => {
                self.recovered(state);
                self.metrics.poll(FetchResult::Unchanged);
                return self.unchanged(state).await;
            }
            Ok(Fetched::Pair(digest, lv, sv)) => (digest, lv, sv),
        };
        self.recovered(state);
        state.have = Some((lv, sv));
        if state.last.as_ref().is_some_and(|(d, _)| *d == digest) {
            self.metrics.poll(FetchResult::Unchanged);
            return self.unchanged(state).await;
        }
        let source = || crate::admission::Source::Fetch {
            url: self.url.clone(),
            path: self.file.clone(),
        };
        let mut tried = digest;
        let mut verdict = self.admission.try_admit(source()).await;
        if matches!(verdict, Verdict::Refused { .. }) {
            // Maybe half published: once more, and this time the refusal
            // is recorded.
            tokio::time::sleep(REFUSED_RETRY).await;
            match self.fetch(None).await {
                Ok(Fetched::Pair(digest, lv, sv)) => {
                    tried = digest;
                    state.have = Some((lv, sv));
                    verdict = self.admission.admit(source()).await;
                }
                Ok(Fetched::NotModified) => {}
                Err(e) => return self.failed(state, e),
            }
        }
        self.metrics.poll(match verdict {
            Verdict::Applied { .. } => FetchResult::Applied,
            Verdict::Refused { .. } => FetchResult::Refused,
            Verdict::Failed { .. } => FetchResult::Failed,
            Verdict::Unchanged { .. } | Verdict::Stale { .. } => FetchResult::Unchanged,
        });
        state.last = Some((tried, verdict.clone()));
        verdict
    }

    /// Fetch the pair on a blocking thread.
    async fn fetch(&self, have: Option<(Validators, Validators)>) -> Result<Fetched, FetchError> {
        let agent = self.agent.clone();
        let url = self.url.clone();
        let limit = self.max_bytes;
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || {
            if let Some(dir) = file.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            fetch_pair(
                &agent,
                &url,
                limit,
                have.as_ref().map(|(l, s)| (l, s)),
                &file,
            )
        })
        .await
        .unwrap_or_else(|e| {
            Err(FetchError {
                url: self.url.clone(),
                reason: format!("fetch worker failed: {e}"),
            })
        })
    }

    /// The verdict of a poll that found nothing new: the refusal of the
    /// pair last tried again (not recorded again), or the list in force.
    async fn unchanged(&self, state: &State) -> Verdict {
        if let Some((_, v @ Verdict::Refused { .. })) = &state.last {
            return v.clone();
        }
        let serial = self.admission.serial().await.unwrap_or(0);
        Verdict::Unchanged { serial }
    }

    /// A failed poll: counted; logged if it was not failing already.
    fn failed(&self, state: &mut State, e: FetchError) -> Verdict {
        self.metrics.poll(FetchResult::Failed);
        if state.failures == 0 {
            warn!(list = %self.admission.id(), url = %e.url, reason = %e.reason, "cannot fetch the list; the list in force keeps serving (said once, until the origin answers again)");
        }
        state.failures = state.failures.saturating_add(1);
        Verdict::Failed {
            reason: e.to_string(),
        }
    }

    /// The origin answered: if it was failing, that ends and is said.
    fn recovered(&self, state: &mut State) {
        if state.failures > 0 {
            info!(list = %self.admission.id(), url = %self.url, failed_polls = state.failures, "the list's origin answers again");
            state.failures = 0;
        }
    }
}

/// SHA-256 over the list's digest and the signature's: the pair last tried.
fn pair_digest(list_digest: [u8; 32], signature: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(list_digest);
    h.update(crate::list::digest(signature));
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_last_modified_within_a_second_of_the_date_is_weak() {
        let lm = Some("Thu, 03 Dec 2026 09:30:00 GMT");
        assert!(within_a_second(lm, lm));
        assert!(within_a_second(lm, Some("Thu, 03 Dec 2026 09:29:59 GMT")));
        assert!(!within_a_second(lm, Some("Thu, 03 Dec 2026 09:30:01 GMT")));
        assert!(!within_a_second(lm, None));
        assert!(!within_a_second(Some("yesterday"), lm));
    }

    #[test]
    fn backoff_doubles_then_stops_at_eight_intervals_or_fifteen_minutes() {
        let within = |d: Duration, base: u64| {
            let s = d.as_secs_f64();
            s >= base as f64 * 0.9 && s <= base as f64 * 1.1
        };
        let minute = Duration::from_secs(60);
        for (failures, base) in [(0, 60), (1, 120), (2, 240), (3, 480), (4, 480), (40, 480)] {
            assert!(within(backoff(minute, failures), base), "{failures}");
        }
        let five = Duration::from_secs(300);
        assert!(within(backoff(five, 3), 900));
        let day = Duration::from_secs(86_400);
        assert!(within(backoff(day, 5), 86_400));
    }
}
