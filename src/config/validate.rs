//! Validation: [`RawConfig`] -> [`Config`], one function per section, every
//! error collected (with the key it belongs to) in one pass, so that
//! `rempart config check` reports them all at once.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use hickory_proto::rr::Name;
use ipnet::IpNet;

use super::raw::{
    RawAdmin, RawAudit, RawConfig, RawEdeJson, RawList, RawListEntry, RawLog, RawRedirect, RawRpz,
    RawServer, RawUpstream,
};
use super::{
    ADMIN_MAX_CONNECTIONS_RANGE, ADMIN_TIMEOUT_MS_RANGE, AdminConfig, AdminTls, AuditConfig,
    ClientIpMode, Config, DEFAULT_ADMIN_BODY_TIMEOUT_MS, DEFAULT_ADMIN_HEADER_TIMEOUT_MS,
    DEFAULT_ADMIN_LISTEN, DEFAULT_ADMIN_MAX_CONNECTIONS, DEFAULT_ADMIN_REQUEST_TIMEOUT_MS,
    DEFAULT_ALLOW, DEFAULT_AUDIT_DIR, DEFAULT_AUDIT_MAX_FILE_MB, DEFAULT_AUDIT_QUEUE,
    DEFAULT_AUDIT_RETENTION_DAYS, DEFAULT_AUDIT_SEAL_INTERVAL_S, DEFAULT_AUDIT_SEAL_KEY,
    DEFAULT_CACHE_BYTES, DEFAULT_CACHE_MAX_TTL, DEFAULT_CACHE_NEGATIVE_MAX_TTL,
    DEFAULT_LIST_MAX_BYTES, DEFAULT_LISTEN, DEFAULT_LOG_LEVEL, DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_PROTECTED, DEFAULT_REDIRECT_TTL, DEFAULT_SERVE_STALE_MAX_AGE, DEFAULT_STATE_DIR,
    DEFAULT_TCP_IDLE_TIMEOUT_MS, DEFAULT_UDP_SOCKETS, DEFAULT_UPSTREAM_TIMEOUT_MS, KeyError,
    ListConfig, LogConfig, LogFormat, MAX_REDIRECT_TTL, MIN_LIST_MAX_BYTES, OnMissing,
    RedirectConfig, SealMode, ServerConfig, UpstreamConfig, default_ede_text,
    default_list_ede_text,
};
use super::{Action, DEFAULT_DEADLINE_HOURS, ListSpec, MAIN_LIST, MAX_DEADLINE_HOURS, MAX_LIST_ID};
use super::{
    DEFAULT_POLL_INTERVAL_S, ListOrigin, MAX_POLL_INTERVAL_S, MIN_POLL_INTERVAL_S, WebOrigin,
};
use super::{
    DEFAULT_PROXY_REQUIRED, DEFAULT_TCP_MAX_CONNECTIONS, DEFAULT_TCP_MAX_PER_CLIENT,
    MAX_TCP_CONNECTIONS,
};
use super::{DEFAULT_RPZ_ALLOW_TRANSFER, DEFAULT_RPZ_LISTEN, DEFAULT_RPZ_ZONE_SUFFIX, RpzConfig};

/// Collects errors while values are validated.
#[derive(Default)]
struct Errors(Vec<KeyError>);

impl Errors {
    fn push(&mut self, key: impl Into<String>, reason: impl fmt::Display) {
        self.0.push(KeyError {
            key: key.into(),
            reason: reason.to_string(),
            line: None,
        });
    }

    /// Parse each string of a list with `FromStr`, naming `key[i]` on error.
    fn parse_items<T: FromStr>(&mut self, key: &str, values: &[String], what: &str) -> Vec<T>
    where
        T::Err: fmt::Display,
    {
        let mut out = Vec::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            match v.parse::<T>() {
                Ok(t) => out.push(t),
                Err(e) => self.push(format!("{key}[{i}]"), format!("{v:?} is not {what}: {e}")),
            }
        }
        out
    }
}

fn strings(defaults: &[&str]) -> Vec<String> {
    defaults.iter().map(|s| (*s).to_owned()).collect()
}

/// Push `name` unless `names` has it.
fn add_once(names: &mut Vec<String>, name: &str) {
    if !names.iter().any(|n| n == name) {
        names.push(name.to_owned());
    }
}

/// A configured domain name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum NameError {
    /// Nothing but perhaps a dot.
    #[error("empty name")]
    Empty,
    /// More than 253 characters.
    #[error("longer than 253 characters")]
    TooLong,
    /// A label empty or longer than 63 characters.
    #[error("label {0:?} must have 1 to 63 characters")]
    LabelLength(String),
    /// A label with a character other than a letter, a digit, `-`, `_`.
    #[error(
        "label {0:?} has a character other than a letter, a digit, '-' or '_' (write IDN names in punycode)"
    )]
    LabelCharacter(String),
    /// Refused by the DNS name parser.
    #[error("{0}")]
    Dns(String),
}

/// The canonical form of a configured domain name: lowercase, no trailing
/// dot, each label 1-63 octets of letters, digits, `-` or `_`.
pub(super) fn canonical_name(text: &str) -> Result<String, NameError> {
    let t = text.strip_suffix('.').unwrap_or(text).to_ascii_lowercase();
    if t.is_empty() {
        return Err(NameError::Empty);
    }
    if t.len() > 253 {
        return Err(NameError::TooLong);
    }
    for label in t.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(NameError::LabelLength(label.to_owned()));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(NameError::LabelCharacter(label.to_owned()));
        }
    }
    Ok(t)
}

/// An `upstream.servers` entry that is neither an IP address nor
/// `address:port`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IP address or address:port")]
pub(super) struct UpstreamAddrError(String);

/// `ip:port`, or a bare IP meaning port 53.
pub(super) fn parse_upstream(s: &str) -> Result<SocketAddr, UpstreamAddrError> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    s.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| UpstreamAddrError(s.to_owned()))
}

impl RawConfig {
    /// Every section in turn, every error collected.
    pub(super) fn validate(self) -> Result<Config, Vec<KeyError>> {
        let mut e = Errors::default();
        let server = self.server.validate(&mut e);
        let upstream = RawUpstream::validate(self.upstream, &mut e);
        let (mut list, lists_raw) = RawList::validate(self.list, self.lists, &mut e);
        let redirect = self.redirect.validate("redirect", None, &mut e);
        let lists = match lists_raw {
            Lists::Single {
                origin,
                trusted_keys,
            } => {
                vec![ListSpec {
                    key: "list".to_owned(),
                    id: MAIN_LIST.to_owned(),
                    origin,
                    trusted_keys,
                    state_dir: list.state_dir.clone(),
                    deadline_hours: DEFAULT_DEADLINE_HOURS,
                    action: Action::Redirect,
                    redirect: redirect.clone(),
                }]
            }
            Lists::Several(entries) => validate_lists(entries, &list, &redirect, &mut e),
            Lists::None => Vec::new(),
        };
        // The [redirect] section must send somewhere when a list uses it.
        if lists
            .iter()
            .any(|l| l.action == Action::Redirect && l.redirect.uses_section)
            && redirect.has_no_target()
        {
            e.push(
                "redirect",
                "one of redirect.ipv4, redirect.ipv6 or redirect.cname is needed to send users to the information page",
            );
        }
        // The information hosts must never be redirected themselves.
        for l in &lists {
            if let Some(c) = &l.redirect.cname {
                let c = c.to_ascii();
                add_once(
                    &mut list.protected,
                    &c.trim_end_matches('.').to_ascii_lowercase(),
                );
            }
        }
        let audit = self.audit.validate(&mut e);
        let admin = self.admin.validate(&mut e);
        let log = self.log.validate(&mut e);
        let rpz = self.rpz.map(|r| r.validate(&mut e));
        if !e.0.is_empty() {
            return Err(e.0);
        }
        Ok(Config {
            server,
            upstream,
            list,
            lists,
            redirect,
            audit,
            admin,
            log,
            rpz,
        })
    }
}

/// Where the lists are written: a lone `[list]` with `path`, or
/// `[[lists]]`.
enum Lists {
    /// `[list]` with `path` (or `url`) and `trusted_keys`: the list `main`.
    Single {
        origin: ListOrigin,
        trusted_keys: Vec<PathBuf>,
    },
    /// `[[lists]]`, still to validate.
    Several(Vec<RawListEntry>),
    /// Neither (an error is pushed already).
    None,
}

/// Where one list comes from, as written (in `[list]` or a `[[lists]]`
/// entry).
struct Written {
    path: Option<PathBuf>,
    url: Option<String>,
    poll_interval_s: Option<u64>,
    ca_file: Option<PathBuf>,
}

impl Written {
    /// `path`, or `url` with its `poll_interval_s` and `ca_file`, of the
    /// list written at `prefix` (`list` or `lists[i]`); `None` when neither
    /// is set (the caller says it is required).
    fn validate(self, prefix: &str, e: &mut Errors) -> Option<ListOrigin> {
        let key = |k: &str| format!("{prefix}.{k}");
        let Some(url) = self.url else {
            for (k, set) in [
                ("poll_interval_s", self.poll_interval_s.is_some()),
                ("ca_file", self.ca_file.is_some()),
            ] {
                if set {
                    e.push(key(k), format!("only for a list fetched from {prefix}.url"));
                }
            }
            return self.path.map(ListOrigin::File);
        };
        if self.path.is_some() {
            e.push(
                key("url"),
                format!(
                    "{prefix}.path and {prefix}.url are both set: a list is read from a file or fetched from a web origin, not both"
                ),
            );
        }
        let https = match check_origin_url(&url) {
            Ok(https) => https,
            Err(reason) => {
                e.push(key("url"), format!("{url:?}: {reason}"));
                true
            }
        };
        let poll = self.poll_interval_s.unwrap_or(DEFAULT_POLL_INTERVAL_S);
        if !(MIN_POLL_INTERVAL_S..=MAX_POLL_INTERVAL_S).contains(&poll) {
            e.push(
                key("poll_interval_s"),
                format!(
                    "{poll}: must be between {MIN_POLL_INTERVAL_S} and {MAX_POLL_INTERVAL_S} seconds"
                ),
            );
        }
        if self.ca_file.is_some() && !https {
            e.push(
                key("ca_file"),
                format!("only for an https:// {prefix}.url (this one is plain http)"),
            );
        }
        Some(ListOrigin::Web(WebOrigin {
            url,
            poll_interval: Duration::from_secs(poll),
            ca_file: self.ca_file,
        }))
    }
}

/// An origin URL: `http://` or `https://`, a host, no query or fragment
/// (the signature's URL is the list's with `.minisig` appended). `true`
/// for https.
fn check_origin_url(url: &str) -> Result<bool, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("not a URL: expected http://HOST/PATH or https://HOST/PATH")?;
    let https = match scheme.to_ascii_lowercase().as_str() {
        "https" => true,
        "http" => false,
        other => {
            return Err(format!(
                "scheme {other:?}: only http:// and https:// are fetched"
            ));
        }
    };
    if url.contains(['?', '#']) {
        return Err(
            "a query or fragment cannot be fetched: the signature is the URL with \".minisig\" appended"
                .to_owned(),
        );
    }
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() || host.contains('@') {
        return Err("expected a host (and no user name or password)".to_owned());
    }
    if rest.ends_with('/') || !rest.contains('/') {
        return Err("expected the path of the list file after the host".to_owned());
    }
    url.parse::<ureq::http::Uri>()
        .map_err(|e| format!("not a URL: {e}"))?;
    Ok(https)
}

/// Whether `id` is a list id: `[a-z0-9-]`, 1 to 32 characters.
pub(super) fn valid_list_id(id: &str) -> bool {
    (1..=MAX_LIST_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The `[[lists]]` entries, in order: ids unique and well formed, paths
/// unique, keys present, each answer complete.
fn validate_lists(
    entries: Vec<RawListEntry>,
    shared: &ListConfig,
    section: &RedirectConfig,
    e: &mut Errors,
) -> Vec<ListSpec> {
    if entries.is_empty() {
        e.push("lists", "at least one list is needed");
    }
    let mut out: Vec<ListSpec> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        let key = |k: &str| format!("lists[{i}].{k}");
        let id = match entry.id {
            None => {
                e.push(
                    key("id"),
                    "required: the list's name, [a-z0-9-], at most 32 characters",
                );
                format!("#{i}")
            }
            Some(id) => {
                if !valid_list_id(&id) {
                    e.push(
                        key("id"),
                        format!(
                            "{id:?}: must be 1 to {MAX_LIST_ID} characters of a-z, 0-9 and '-'"
                        ),
                    );
                } else if let Some(j) = out.iter().position(|l| l.id == id) {
                    e.push(key("id"), format!("{id:?}: already the id of lists[{j}]"));
                }
                id
            }
        };
        let written = Written {
            path: entry.path,
            url: entry.url,
            poll_interval_s: entry.poll_interval_s,
            ca_file: entry.ca_file,
        };
        let origin = written
            .validate(&format!("lists[{i}]"), e)
            .unwrap_or_else(|| {
                e.push(
                    key("path"),
                    "required: the signed list file (or `url`, a web origin)",
                );
                ListOrigin::File(PathBuf::new())
            });
        let empty = ListOrigin::File(PathBuf::new());
        if origin != empty
            && let Some(j) = out.iter().position(|l| l.origin == origin)
        {
            let (k, what) = match &origin {
                ListOrigin::File(p) => ("path", p.display().to_string()),
                ListOrigin::Web(w) => ("url", w.url.clone()),
            };
            e.push(key(k), format!("{what}: already the {k} of lists[{j}]"));
        }
        let trusted_keys = entry.trusted_keys.unwrap_or_default();
        if trusted_keys.is_empty() {
            e.push(
                key("trusted_keys"),
                "at least one minisign public key is required: an unsigned list is never applied",
            );
        }
        let deadline_hours = entry.deadline_hours.unwrap_or(DEFAULT_DEADLINE_HOURS);
        if !(1..=MAX_DEADLINE_HOURS).contains(&deadline_hours) {
            e.push(
                key("deadline_hours"),
                format!("{deadline_hours}: must be between 1 and {MAX_DEADLINE_HOURS}"),
            );
        }
        let action = match entry.action.as_deref().unwrap_or("redirect") {
            "redirect" => Action::Redirect,
            "nxdomain" => Action::Nxdomain,
            other => {
                e.push(
                    key("action"),
                    format!("{other:?}: expected \"redirect\" or \"nxdomain\""),
                );
                Action::Redirect
            }
        };
        let redirect = match entry.redirect {
            None => section.clone(),
            Some(own) => {
                let prefix = key("redirect");
                let r = own.validate(&prefix, Some(&id), e);
                match action {
                    Action::Redirect if r.has_no_target() => e.push(
                        prefix,
                        "one of ipv4, ipv6 or cname is needed to send users to the list's information page (or leave out the table to use [redirect])",
                    ),
                    Action::Nxdomain if !r.has_no_target() => e.push(
                        prefix,
                        "ipv4, ipv6 and cname mean nothing with action = \"nxdomain\": remove them",
                    ),
                    _ => {}
                }
                r
            }
        };
        let state_dir = if id == MAIN_LIST {
            shared.state_dir.clone()
        } else {
            shared.state_dir.join(&id)
        };
        out.push(ListSpec {
            key: format!("lists[{i}]"),
            id,
            origin,
            trusted_keys,
            state_dir,
            deadline_hours,
            action,
            redirect,
        });
    }
    out
}

impl RawRpz {
    /// `[rpz]`, when present.
    fn validate(self, e: &mut Errors) -> RpzConfig {
        let listen_raw = self.listen.unwrap_or_else(|| strings(DEFAULT_RPZ_LISTEN));
        let listen: Vec<SocketAddr> = e.parse_items("rpz.listen", &listen_raw, "an address:port");
        if listen_raw.is_empty() {
            e.push("rpz.listen", "at least one address is needed");
        }
        let allow_raw = self
            .allow_transfer
            .unwrap_or_else(|| strings(DEFAULT_RPZ_ALLOW_TRANSFER));
        let allow_transfer: Vec<IpNet> =
            e.parse_items("rpz.allow_transfer", &allow_raw, "a network (a.b.c.d/len)");
        let mut notify = Vec::new();
        for (i, n) in self.notify.unwrap_or_default().iter().enumerate() {
            match parse_upstream(n) {
                Ok(a) => notify.push(a),
                Err(err) => e.push(format!("rpz.notify[{i}]"), err),
            }
        }
        let suffix_raw = self
            .zone_suffix
            .unwrap_or_else(|| DEFAULT_RPZ_ZONE_SUFFIX.to_owned());
        let zone_suffix = match canonical_name(&suffix_raw)
            .map_err(|err| err.to_string())
            .and_then(|c| Name::from_ascii(format!("{c}.")).map_err(|err| err.to_string()))
        {
            Ok(n) => n,
            Err(reason) => {
                e.push("rpz.zone_suffix", format!("{suffix_raw:?}: {reason}"));
                Name::root()
            }
        };
        RpzConfig {
            listen,
            allow_transfer,
            notify,
            zone_suffix,
            tsig_key: self.tsig_key,
        }
    }
}

impl RawServer {
    fn validate(self, e: &mut Errors) -> ServerConfig {
        let listen_raw = self.listen.unwrap_or_else(|| strings(DEFAULT_LISTEN));
        let listen: Vec<SocketAddr> =
            e.parse_items("server.listen", &listen_raw, "an address:port");
        if listen_raw.is_empty() {
            e.push("server.listen", "at least one address is needed");
        }
        let allow_raw = self.allow.unwrap_or_else(|| strings(DEFAULT_ALLOW));
        let allow: Vec<IpNet> =
            e.parse_items("server.allow", &allow_raw, "a network (a.b.c.d/len)");
        let tcp_idle = self
            .tcp_idle_timeout_ms
            .unwrap_or(DEFAULT_TCP_IDLE_TIMEOUT_MS);
        if tcp_idle == 0 {
            e.push("server.tcp_idle_timeout_ms", "must be at least 1");
        }
        let tcp_max_connections = self
            .tcp_max_connections
            .unwrap_or(DEFAULT_TCP_MAX_CONNECTIONS);
        if !(1..=MAX_TCP_CONNECTIONS).contains(&tcp_max_connections) {
            e.push(
                "server.tcp_max_connections",
                format!("must be 1 to {MAX_TCP_CONNECTIONS}"),
            );
        }
        let tcp_max_per_client = self
            .tcp_max_per_client
            .unwrap_or(DEFAULT_TCP_MAX_PER_CLIENT);
        if tcp_max_per_client == 0 || tcp_max_per_client > tcp_max_connections {
            e.push(
                "server.tcp_max_per_client",
                "must be 1 to server.tcp_max_connections",
            );
        }
        let proxy_from: Vec<IpNet> = e.parse_items(
            "server.proxy_from",
            &self.proxy_from.unwrap_or_default(),
            "a network (a.b.c.d/len)",
        );
        let tls_listen: Vec<SocketAddr> = e.parse_items(
            "server.tls_listen",
            &self.tls_listen.unwrap_or_default(),
            "an address:port",
        );
        let https_listen: Vec<SocketAddr> = e.parse_items(
            "server.https_listen",
            &self.https_listen.unwrap_or_default(),
            "an address:port",
        );
        let tls = match (self.tls_certificate, self.tls_key) {
            (Some(certificate), Some(key)) => Some(AdminTls { certificate, key }),
            (None, None) => {
                for (key, addrs) in [
                    ("server.tls_listen", &tls_listen),
                    ("server.https_listen", &https_listen),
                ] {
                    if !addrs.is_empty() {
                        e.push(
                            "server.tls_certificate",
                            format!("missing: {key} needs it and server.tls_key"),
                        );
                    }
                }
                None
            }
            (Some(_), None) => {
                e.push("server.tls_key", "missing: server.tls_certificate needs it");
                None
            }
            (None, Some(_)) => {
                e.push("server.tls_certificate", "missing: server.tls_key needs it");
                None
            }
        };
        let udp_sockets = self.udp_sockets.unwrap_or(DEFAULT_UDP_SOCKETS);
        if udp_sockets > 1024 {
            e.push("server.udp_sockets", "must be at most 1024");
        }
        ServerConfig {
            listen,
            allow,
            udp_sockets,
            tcp_idle_timeout: Duration::from_millis(tcp_idle),
            tcp_max_connections,
            tcp_max_per_client,
            proxy_from,
            proxy_required: self.proxy_required.unwrap_or(DEFAULT_PROXY_REQUIRED),
            tls_listen,
            https_listen,
            tls,
        }
    }
}

impl RawUpstream {
    /// `[upstream]`, which must be there.
    fn validate(section: Option<RawUpstream>, e: &mut Errors) -> UpstreamConfig {
        let up = section.unwrap_or_else(|| {
            e.push(
                "upstream",
                "section missing: the resolver needs upstream.servers",
            );
            RawUpstream::default()
        });
        let servers_raw = up.servers.unwrap_or_default();
        let servers: Vec<SocketAddr> = servers_raw
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match parse_upstream(s) {
                Ok(a) => Some(a),
                Err(reason) => {
                    e.push(format!("upstream.servers[{i}]"), reason);
                    None
                }
            })
            .collect();
        if servers_raw.is_empty() {
            e.push(
                "upstream.servers",
                "at least one upstream resolver is needed",
            );
        }
        let timeout_ms = up.timeout_ms.unwrap_or(DEFAULT_UPSTREAM_TIMEOUT_MS);
        if !(10..=60_000).contains(&timeout_ms) {
            e.push("upstream.timeout_ms", "must be between 10 and 60000");
        }
        let cache_bytes = up.cache_bytes.unwrap_or(DEFAULT_CACHE_BYTES);
        if !(1 << 20..=1 << 40).contains(&cache_bytes) {
            e.push("upstream.cache_bytes", "must be between 1 MiB and 1 TiB");
        }
        let max_in_flight = up.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT);
        if !(1..=65_536).contains(&max_in_flight) {
            e.push("upstream.max_in_flight", "must be between 1 and 65536");
        }
        let serve_stale_max_age = up
            .serve_stale_max_age
            .unwrap_or(DEFAULT_SERVE_STALE_MAX_AGE);
        if serve_stale_max_age > 7 * 86_400 {
            e.push(
                "upstream.serve_stale_max_age",
                "must be at most 604800 (7 days, RFC 8767 section 5)",
            );
        }
        let mut obsolete = Vec::new();
        if up.cache_size.is_some() {
            obsolete.push(
                "upstream.cache_size is obsolete and ignored: the cache is bounded by memory, \
                 upstream.cache_bytes (default 32 MiB)"
                    .to_owned(),
            );
        }
        UpstreamConfig {
            obsolete,
            servers,
            timeout: Duration::from_millis(timeout_ms),
            cache_bytes,
            max_in_flight,
            trust_ad: up.trust_ad.unwrap_or(false),
            serve_stale: up.serve_stale.unwrap_or(false),
            serve_stale_max_age,
            cache_max_ttl: up.cache_max_ttl.unwrap_or(DEFAULT_CACHE_MAX_TTL),
            cache_negative_max_ttl: up
                .cache_negative_max_ttl
                .unwrap_or(DEFAULT_CACHE_NEGATIVE_MAX_TTL),
        }
    }
}

impl RawList {
    /// `[list]` and `[[lists]]`: the shared settings, and where the lists
    /// are. A lone `[list]` with `path` is the list `main`; with
    /// `[[lists]]`, `[list]` holds only the shared settings.
    fn validate(
        section: Option<RawList>,
        entries: Option<Vec<RawListEntry>>,
        e: &mut Errors,
    ) -> (ListConfig, Lists) {
        let several = entries.is_some();
        let list = section.unwrap_or_else(|| {
            if !several {
                e.push(
                    "list",
                    "section missing: list.path and list.trusted_keys (or [[lists]]) are required",
                );
            }
            RawList::default()
        });
        let lists = match entries {
            Some(entries) => {
                for (k, set) in [
                    ("list.path", list.path.is_some()),
                    ("list.url", list.url.is_some()),
                    ("list.poll_interval_s", list.poll_interval_s.is_some()),
                    ("list.ca_file", list.ca_file.is_some()),
                    ("list.trusted_keys", list.trusted_keys.is_some()),
                ] {
                    if set {
                        e.push(
                            k,
                            "cannot be set with [[lists]]: write this list as a [[lists]] entry (id = \"main\" keeps its state and audit trail); [list] then holds only the shared settings",
                        );
                    }
                }
                Lists::Several(entries)
            }
            None => {
                let written = Written {
                    path: list.path.clone(),
                    url: list.url.clone(),
                    poll_interval_s: list.poll_interval_s,
                    ca_file: list.ca_file.clone(),
                };
                let origin = written.validate("list", e);
                if origin.is_none() {
                    e.push(
                        "list.path",
                        "required: the signed list file (or `url`, a web origin; or [[lists]])",
                    );
                }
                let trusted_keys = list.trusted_keys.unwrap_or_default();
                if trusted_keys.is_empty() {
                    e.push(
                        "list.trusted_keys",
                        "at least one minisign public key is required: an unsigned list is never applied",
                    );
                }
                match origin {
                    Some(ListOrigin::File(p)) if p.as_os_str().is_empty() => Lists::None,
                    None => Lists::None,
                    Some(origin) => Lists::Single {
                        origin,
                        trusted_keys,
                    },
                }
            }
        };
        // `protected` adds to the defaults (what an operator who wrote
        // `protected = ["google.fr"]` meant); only `protected_defaults =
        // false` removes them.
        let protected_defaults = list.protected_defaults.unwrap_or(true);
        let mut protected = if protected_defaults {
            strings(DEFAULT_PROTECTED)
        } else {
            Vec::new()
        };
        let mut protected_added = Vec::new();
        for (i, p) in list.protected.unwrap_or_default().iter().enumerate() {
            match canonical_name(p) {
                Ok(n) => {
                    add_once(&mut protected, &n);
                    protected_added.push(n);
                }
                Err(reason) => e.push(format!("list.protected[{i}]"), format!("{p:?}: {reason}")),
            }
        }
        let on_missing = match list.on_missing.as_deref().unwrap_or("refuse") {
            "refuse" => OnMissing::Refuse,
            "serve-unfiltered" => OnMissing::ServeUnfiltered,
            other => {
                e.push(
                    "list.on_missing",
                    format!("{other:?}: expected \"refuse\" or \"serve-unfiltered\""),
                );
                OnMissing::Refuse
            }
        };
        let max_bytes = list.max_bytes.unwrap_or(DEFAULT_LIST_MAX_BYTES);
        if max_bytes < MIN_LIST_MAX_BYTES {
            e.push(
                "list.max_bytes",
                format!("{max_bytes}: must be at least {MIN_LIST_MAX_BYTES}"),
            );
        }
        let shared = ListConfig {
            max_bytes,
            state_dir: list
                .state_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
            protected,
            protected_defaults,
            protected_added,
            on_missing,
            watch: list.watch.unwrap_or(true),
        };
        (shared, lists)
    }
}

impl RawRedirect {
    /// `[redirect]` (`list` = `None`) or list `list`'s own `redirect` table,
    /// its keys named under `prefix`. Whether it needs a target is the
    /// caller's to say (it depends on the lists that use it).
    fn validate(self, prefix: &str, list: Option<&str>, e: &mut Errors) -> RedirectConfig {
        let key = |k: &str| format!("{prefix}.{k}");
        let ipv4: Vec<Ipv4Addr> = e.parse_items(
            &key("ipv4"),
            &self.ipv4.unwrap_or_default(),
            "an IPv4 address",
        );
        let ipv6: Vec<Ipv6Addr> = e.parse_items(
            &key("ipv6"),
            &self.ipv6.unwrap_or_default(),
            "an IPv6 address",
        );
        let ttl = self.ttl.unwrap_or(DEFAULT_REDIRECT_TTL);
        if ttl == 0 || ttl > MAX_REDIRECT_TTL {
            e.push(
                key("ttl"),
                format!("{ttl}: must be between 1 and {MAX_REDIRECT_TTL} seconds"),
            );
        }
        let cname = match self.cname.as_deref() {
            None => None,
            Some(c) => match canonical_name(c).and_then(|n| {
                Name::from_ascii(format!("{n}.")).map_err(|err| NameError::Dns(err.to_string()))
            }) {
                Ok(name) => Some(name),
                Err(reason) => {
                    e.push(key("cname"), format!("{c:?}: {reason}"));
                    None
                }
            },
        };
        let ede_text = match (self.ede_text, self.ede_json) {
            (Some(_), Some(_)) => {
                e.push(
                    key("ede_json"),
                    format!(
                        "cannot be set with {prefix}.ede_text: the EXTRA-TEXT is one or the other"
                    ),
                );
                String::new()
            }
            (Some(text), None) => text,
            (None, Some(json)) => json.into_text(&key("ede_json"), e),
            (None, None) => match list {
                None => default_ede_text(cname.as_ref(), &ipv4, &ipv6),
                Some(id) => default_list_ede_text(id, cname.as_ref(), &ipv4, &ipv6),
            },
        };
        if ede_text.len() > 1_000 {
            e.push(key("ede_text"), "must be at most 1000 bytes");
        }
        RedirectConfig {
            ipv4,
            ipv6,
            ttl,
            cname,
            ede_text,
            uses_section: list.is_none(),
        }
    }
}

impl RawEdeJson {
    /// The EXTRA-TEXT of draft-ietf-dnsop-structured-dns-error: a JSON
    /// object with `c` (contact URIs), `j` (justification), `o`
    /// (organisation), `l` (language), in that order, those given only.
    fn into_text(self, key: &str, e: &mut Errors) -> String {
        if self.c.is_none() && self.j.is_none() && self.o.is_none() {
            e.push(
                key,
                "needs at least one of c (contact), j (justification), o (organisation)",
            );
        }
        for (i, c) in self.c.iter().flatten().enumerate() {
            // Section 5.1: each a URI (mailto:, tel:, https:, sips:).
            let scheme = c.split_once(':').map(|(s, _)| s);
            if !scheme.is_some_and(|s| {
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
            }) {
                e.push(
                    format!("{key}.c[{i}]"),
                    format!("{c:?} is not a URI (mailto:..., tel:..., https://...)"),
                );
            }
        }
        let mut object = serde_json::Map::new();
        if let Some(c) = self.c {
            object.insert("c".into(), c.into());
        }
        if let Some(j) = self.j {
            object.insert("j".into(), j.into());
        }
        if let Some(o) = self.o {
            object.insert("o".into(), o.into());
        }
        if let Some(l) = self.l {
            object.insert("l".into(), l.into());
        }
        serde_json::Value::Object(object).to_string()
    }
}

impl RawAudit {
    fn validate(self, e: &mut Errors) -> AuditConfig {
        let client_ip = match self.client_ip.as_deref().unwrap_or("none") {
            "none" => ClientIpMode::None,
            "truncate" => ClientIpMode::Truncate,
            "hmac" => ClientIpMode::Hmac,
            "full" => ClientIpMode::Full,
            other => {
                e.push(
                    "audit.client_ip",
                    format!("{other:?}: expected none, truncate, hmac or full"),
                );
                ClientIpMode::None
            }
        };
        let queue = self.queue.unwrap_or(DEFAULT_AUDIT_QUEUE);
        if !(16..=16_777_216).contains(&queue) {
            e.push(
                "audit.queue",
                format!("{queue}: must be between 16 and 16777216"),
            );
        }
        let max_file_mb = self.max_file_mb.unwrap_or(DEFAULT_AUDIT_MAX_FILE_MB);
        if !(1..=1_048_576).contains(&max_file_mb) {
            e.push(
                "audit.max_file_mb",
                format!("{max_file_mb}: must be between 1 and 1048576"),
            );
        }
        let dir = self.dir.unwrap_or_else(|| PathBuf::from(DEFAULT_AUDIT_DIR));
        let seal_key = self
            .seal_key
            .unwrap_or_else(|| PathBuf::from(DEFAULT_AUDIT_SEAL_KEY));
        if seal_key.starts_with(&dir) {
            e.push(
                "audit.seal_key",
                format!(
                    "{}: must be outside audit.dir (a copy of the trail must not carry the key that seals its future)",
                    seal_key.display()
                ),
            );
        }
        let seal_interval_s = self
            .seal_interval_s
            .unwrap_or(DEFAULT_AUDIT_SEAL_INTERVAL_S);
        if !(1..=86_400).contains(&seal_interval_s) {
            e.push(
                "audit.seal_interval_s",
                format!("{seal_interval_s}: must be between 1 and 86400"),
            );
        }
        AuditConfig {
            enabled: self.enabled.unwrap_or(true),
            dir,
            client_ip,
            queue,
            max_file_bytes: max_file_mb * 1024 * 1024,
            retention_days: self.retention_days.unwrap_or(DEFAULT_AUDIT_RETENTION_DAYS),
            seal: match self.seal {
                None => SealMode::IfKey,
                Some(true) => SealMode::Required,
                Some(false) => SealMode::Off,
            },
            seal_key,
            seal_interval: std::time::Duration::from_secs(seal_interval_s),
        }
    }
}

impl RawAdmin {
    fn validate(self, e: &mut Errors) -> AdminConfig {
        let listen_raw = self
            .listen
            .unwrap_or_else(|| DEFAULT_ADMIN_LISTEN.to_owned());
        let listen = match listen_raw.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(err) => {
                e.push(
                    "admin.listen",
                    format!("{listen_raw:?} is not an address:port: {err}"),
                );
                SocketAddr::from(([127, 0, 0, 1], 9153))
            }
        };
        let max_connections = self
            .max_connections
            .unwrap_or(DEFAULT_ADMIN_MAX_CONNECTIONS);
        if !ADMIN_MAX_CONNECTIONS_RANGE.contains(&max_connections) {
            e.push(
                "admin.max_connections",
                format!(
                    "{max_connections}: must be between {} and {}",
                    ADMIN_MAX_CONNECTIONS_RANGE.start(),
                    ADMIN_MAX_CONNECTIONS_RANGE.end()
                ),
            );
        }
        let mut timeout = |key: &str, value: Option<u64>, default: u64| {
            let ms = value.unwrap_or(default);
            if !ADMIN_TIMEOUT_MS_RANGE.contains(&ms) {
                e.push(
                    format!("admin.{key}"),
                    format!(
                        "{ms}: must be between {} and {} (milliseconds)",
                        ADMIN_TIMEOUT_MS_RANGE.start(),
                        ADMIN_TIMEOUT_MS_RANGE.end()
                    ),
                );
            }
            Duration::from_millis(ms)
        };
        let limits = super::AdminLimits {
            max_connections,
            header_timeout: timeout(
                "header_timeout_ms",
                self.header_timeout_ms,
                DEFAULT_ADMIN_HEADER_TIMEOUT_MS,
            ),
            body_timeout: timeout(
                "body_timeout_ms",
                self.body_timeout_ms,
                DEFAULT_ADMIN_BODY_TIMEOUT_MS,
            ),
            request_timeout: timeout(
                "request_timeout_ms",
                self.request_timeout_ms,
                DEFAULT_ADMIN_REQUEST_TIMEOUT_MS,
            ),
        };
        let tls = match (self.tls_certificate, self.tls_key) {
            (Some(certificate), Some(key)) => Some(AdminTls { certificate, key }),
            (None, None) => None,
            (Some(_), None) => {
                e.push("admin.tls_key", "missing: admin.tls_certificate needs it");
                None
            }
            (None, Some(_)) => {
                e.push("admin.tls_certificate", "missing: admin.tls_key needs it");
                None
            }
        };
        AdminConfig {
            listen,
            token_file: self.token_file,
            limits,
            tls,
        }
    }
}

impl RawLog {
    fn validate(self, e: &mut Errors) -> LogConfig {
        let level = self.level.unwrap_or_else(|| DEFAULT_LOG_LEVEL.to_owned());
        if let Err(err) = tracing_subscriber::EnvFilter::builder().parse(&level) {
            e.push("log.level", format!("{level:?}: {err}"));
        }
        let format = match self.format.as_deref().unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                e.push("log.format", format!("{other:?}: expected text or json"));
                LogFormat::Text
            }
        };
        LogConfig { level, format }
    }
}
