//! Strict TOML -> validated [`Config`].
//!
//! Two steps, as habit 1 of STYLE.md says: [`RawConfig`] (module `raw`) is
//! the file as written, strict (module `keys` reads the text against its
//! keys: every unknown key is an error naming its dotted path, its line and
//! the closest known key, and every value of the wrong type its key), then
//! module `validate` turns it into typed values, one function per section.
//! Every error is collected with the key it belongs to and its line, so
//! that `rempart config check` reports them all at once. Every default
//! is a `DEFAULT_*` constant here and is written, commented, in
//! `config/rempart.example.toml`; a test (module `tests`) keeps the two in
//! agreement, parses every shipped config and refuses a typo in any table.
//!
//! Relative paths in the file are relative to the working directory of the
//! process (systemd: `WorkingDirectory=`, or use absolute paths).

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::rr::Name;
use ipnet::IpNet;

mod keys;
mod raw;
#[cfg(test)]
mod tests;
mod validate;

pub use raw::RawConfig;

/// `server.listen` default: loopback, unprivileged port (set `:53` in production).
pub const DEFAULT_LISTEN: &[&str] = &["127.0.0.1:1053"];
/// `server.allow` default: loopback only. A resolver open to the Internet is an
/// amplification weapon, so the default serves nobody else.
pub const DEFAULT_ALLOW: &[&str] = &["127.0.0.0/8", "::1/128"];
/// `server.udp_sockets` default: 0 = one SO_REUSEPORT socket per core.
pub const DEFAULT_UDP_SOCKETS: usize = 0;
/// `server.tcp_idle_timeout_ms` default (RFC 7766 section 6.2.3 recommends
/// timeouts of the order of seconds).
pub const DEFAULT_TCP_IDLE_TIMEOUT_MS: u64 = 10_000;
/// `server.tcp_max_connections` default: TCP connections open at once, all
/// clients together (each holds a file descriptor and a task).
pub const DEFAULT_TCP_MAX_CONNECTIONS: usize = 1000;
/// `server.tcp_max_per_client` default: TCP connections open at once from
/// one client address (RFC 7766 section 6.2.2: clients should not need
/// more than one or two).
pub const DEFAULT_TCP_MAX_PER_CLIENT: usize = 16;
/// `server.proxy_required` default: a proxy that forgets the PROXY header
/// would otherwise be taken for the subscriber.
pub const DEFAULT_PROXY_REQUIRED: bool = true;
/// Largest `server.tcp_max_connections` accepted.
pub const MAX_TCP_CONNECTIONS: usize = 65_536;
/// `upstream.timeout_ms` default.
pub const DEFAULT_UPSTREAM_TIMEOUT_MS: u64 = 2_000;
/// `upstream.cache_bytes` default: the memory budget of the answer cache
/// and of its ready-to-send copies together (half each), 32 MiB (about
/// 45,000 small answers). With it a resolver enforcing a million entries
/// stays under 200 MiB at every moment, a reload with a full cache
/// included (measured: 182-187 MiB); a front cache before the validating
/// resolvers gains little from more.
pub const DEFAULT_CACHE_BYTES: u64 = 32 * 1024 * 1024;
/// `upstream.max_in_flight` default: client queries waiting on upstream
/// at once (Unbound: 1024 per thread by default).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 2_048;
/// `upstream.serve_stale_max_age` default, seconds past the TTL (RFC 8767
/// section 5: "a default of 1 to 3 days").
pub const DEFAULT_SERVE_STALE_MAX_AGE: u32 = 86_400;
/// `upstream.cache_max_ttl` default, seconds.
pub const DEFAULT_CACHE_MAX_TTL: u32 = 86_400;
/// `upstream.cache_negative_max_ttl` default, seconds (RFC 2308 section 5:
/// one to three hours is sensible).
pub const DEFAULT_CACHE_NEGATIVE_MAX_TTL: u32 = 3_600;
/// `list.max_bytes` default: 512 MiB, eight times a million-entry list.
pub const DEFAULT_LIST_MAX_BYTES: u64 = 512 * 1024 * 1024;
/// `list.max_bytes` lower bound: a header and a few entries.
pub const MIN_LIST_MAX_BYTES: u64 = 1024;
/// `poll_interval_s` default, seconds: how often a list with `url` is
/// fetched (with conditional requests: an unchanged origin answers 304).
pub const DEFAULT_POLL_INTERVAL_S: u64 = 60;
/// Smallest `poll_interval_s`: one second (for tests and a local origin;
/// every poll is two requests to the origin).
pub const MIN_POLL_INTERVAL_S: u64 = 1;
/// Largest `poll_interval_s`: one day (a delisting must be applied within
/// 24 hours).
pub const MAX_POLL_INTERVAL_S: u64 = 86_400;
/// `list.state_dir` default.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/rempart";
/// The protected names every resolver has unless `list.protected_defaults
/// = false`: names whose blocking would be the 2016 incident again.
/// `list.protected` adds to them.
pub const DEFAULT_PROTECTED: &[&str] = &[
    "google.com",
    "google.fr",
    "youtube.com",
    "wikipedia.org",
    "facebook.com",
    "ovh.com",
    "ovh.net",
    "orange.fr",
    "free.fr",
    "sfr.fr",
    "bouyguestelecom.fr",
    "gouv.fr",
    "interieur.gouv.fr",
    "service-public.fr",
    "apple.com",
    "microsoft.com",
    "amazon.com",
    "cloudflare.com",
];
/// `redirect.ttl` default, seconds.
pub const DEFAULT_REDIRECT_TTL: u32 = 60;
/// Largest `redirect.ttl` accepted: a delisted name must be restored within
/// 24 hours, and downstream caches keep a redirect for up to this long.
pub const MAX_REDIRECT_TTL: u32 = 3_600;
/// `redirect.ede_text` default, before the information page URL: see
/// [`default_ede_text`].
pub const DEFAULT_EDE_TEXT: &str =
    "Blocked by order of the French administrative authority (LCEN art. 6-1)";

/// The default EDE text: the authority, then the URL of the information
/// page users are sent to, built from `redirect.cname` if set, else the
/// first IPv4 address, else the first IPv6 address.
pub fn default_ede_text(cname: Option<&Name>, ipv4: &[Ipv4Addr], ipv6: &[Ipv6Addr]) -> String {
    let host = match (cname, ipv4.first(), ipv6.first()) {
        (Some(name), _, _) => name.to_ascii().trim_end_matches('.').to_owned(),
        (None, Some(v4), _) => v4.to_string(),
        (None, None, Some(v6)) => format!("[{v6}]"),
        (None, None, None) => return DEFAULT_EDE_TEXT.to_owned(),
    };
    format!("{DEFAULT_EDE_TEXT}; information page: http://{host}/")
}

/// The default EDE text of a `[[lists]]` entry with its own `redirect`:
/// the list's id (not the LCEN wording, which names one authority), then
/// its information page as [`default_ede_text`] builds it, if any.
pub fn default_list_ede_text(
    id: &str,
    cname: Option<&Name>,
    ipv4: &[Ipv4Addr],
    ipv6: &[Ipv6Addr],
) -> String {
    let head = format!("Blocked by administrative order (list {id})");
    match default_ede_text(cname, ipv4, ipv6).strip_prefix(DEFAULT_EDE_TEXT) {
        Some(page) => format!("{head}{page}"),
        None => head,
    }
}
/// `audit.dir` default.
pub const DEFAULT_AUDIT_DIR: &str = "/var/log/rempart/audit";
/// `audit.queue` default: records waiting for the writer.
pub const DEFAULT_AUDIT_QUEUE: usize = 65_536;
/// `audit.max_file_mb` default.
pub const DEFAULT_AUDIT_MAX_FILE_MB: u64 = 100;
/// `audit.retention_days` default: a little over a year, so that a yearly
/// control finds the whole year.
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 400;
/// `audit.seal_key` default: the sealing key, outside `audit.dir` (a copy
/// of the trail handed to an auditor must not carry the key that seals its
/// future).
pub const DEFAULT_AUDIT_SEAL_KEY: &str = "/var/lib/rempart/audit-seal.key";
/// `audit.seal_interval_s` default: an epoch of 15 minutes, as
/// systemd-journald's Forward Secure Sealing. Records written since the
/// last seal are the ones an intruder taking the machine could still
/// rewrite.
pub const DEFAULT_AUDIT_SEAL_INTERVAL_S: u64 = 900;
/// `admin.listen` default: loopback only.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9153";
/// `admin.max_connections` default: connections served at once; more are
/// closed at accept. Scrapers and list pushes need a few.
pub const DEFAULT_ADMIN_MAX_CONNECTIONS: usize = 16;
/// `admin.header_timeout_ms` default: a request's headers must have come
/// in whole this long after the connection opened.
pub const DEFAULT_ADMIN_HEADER_TIMEOUT_MS: u64 = 10_000;
/// `admin.body_timeout_ms` default: an authorised upload's body must have
/// come in whole this long after its headers (60 MB at 5 Mbit/s).
pub const DEFAULT_ADMIN_BODY_TIMEOUT_MS: u64 = 120_000;
/// `admin.request_timeout_ms` default: a connection (its one request,
/// from accept to the last byte of the answer) is closed after this long.
pub const DEFAULT_ADMIN_REQUEST_TIMEOUT_MS: u64 = 300_000;
/// Range of `admin.max_connections`.
pub const ADMIN_MAX_CONNECTIONS_RANGE: std::ops::RangeInclusive<usize> = 1..=4096;
/// Range of the `admin.*_timeout_ms` keys: 100 ms to 1 hour.
pub const ADMIN_TIMEOUT_MS_RANGE: std::ops::RangeInclusive<u64> = 100..=3_600_000;
/// `log.level` default.
pub const DEFAULT_LOG_LEVEL: &str = "info";

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[server]`
    pub server: ServerConfig,
    /// `[upstream]`
    pub upstream: UpstreamConfig,
    /// `[list]`: the settings every list shares.
    pub list: ListConfig,
    /// The lists, in precedence order (the first whose entry matches a name
    /// decides it): the `[[lists]]` entries, or the one list `main` of a
    /// lone `[list]` section with `path`.
    pub lists: Vec<ListSpec>,
    /// `[redirect]`: the answer of every list without its own `redirect`.
    pub redirect: RedirectConfig,
    /// `[audit]`
    pub audit: AuditConfig,
    /// `[admin]`
    pub admin: AdminConfig,
    /// `[log]`
    pub log: LogConfig,
    /// `[rpz]`: serving the lists as RPZ zones; `None` when the section is
    /// absent (off).
    pub rpz: Option<RpzConfig>,
}

/// `rpz.listen` default.
pub const DEFAULT_RPZ_LISTEN: &[&str] = &["127.0.0.1:5353"];
/// `rpz.allow_transfer` default: this machine only.
pub const DEFAULT_RPZ_ALLOW_TRANSFER: &[&str] = &["127.0.0.0/8", "::1/128"];
/// `rpz.zone_suffix` default: list `id` is zone `<id>.rpz.rempart.`.
pub const DEFAULT_RPZ_ZONE_SUFFIX: &str = "rpz.rempart.";

/// `[rpz]`: the lists in force served as Response Policy Zones.
#[derive(Debug, Clone)]
pub struct RpzConfig {
    /// UDP and TCP on each address.
    pub listen: Vec<SocketAddr>,
    /// Networks allowed to ask (SOA queries and transfers); others get
    /// REFUSED.
    pub allow_transfer: Vec<IpNet>,
    /// Secondaries sent a NOTIFY on every version published.
    pub notify: Vec<SocketAddr>,
    /// List `id` is served as zone `<id>.<zone_suffix>` (absolute).
    pub zone_suffix: Name,
    /// BIND key file (hmac-sha256): transfers must be signed with it.
    pub tsig_key: Option<PathBuf>,
}

/// `[server]`: where and whom to serve.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// UDP and TCP on each address.
    pub listen: Vec<SocketAddr>,
    /// Client networks served; others get REFUSED.
    pub allow: Vec<IpNet>,
    /// UDP sockets per address (SO_REUSEPORT); 0 = one per core.
    pub udp_sockets: usize,
    /// Idle TCP connections are closed after this long.
    pub tcp_idle_timeout: Duration,
    /// TCP connections open at once, all clients together.
    pub tcp_max_connections: usize,
    /// TCP connections open at once from one client address.
    pub tcp_max_per_client: usize,
    /// Networks whose PROXY protocol v2 headers are believed (dnsdist).
    pub proxy_from: Vec<IpNet>,
    /// A plain query (no PROXY header) from `proxy_from` is refused.
    pub proxy_required: bool,
    /// DNS over TLS (RFC 7858) on each address.
    pub tls_listen: Vec<SocketAddr>,
    /// DNS over HTTPS (RFC 8484, path /dns-query) on each address.
    pub https_listen: Vec<SocketAddr>,
    /// The certificate and key of the DoT and DoH listeners; set when
    /// they are.
    pub tls: Option<TlsFiles>,
}

/// `[upstream]`: forwarders and the answer cache.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Forwarders, tried in turn, the last one that answered first.
    pub servers: Vec<SocketAddr>,
    /// A query not answered within this gets SERVFAIL.
    pub timeout: Duration,
    /// Memory budget of the cache, in bytes, its ready-to-send copies
    /// included.
    pub cache_bytes: u64,
    /// Client queries that may wait on upstream at once; beyond, SERVFAIL
    /// with an Extended DNS Error (or a stale answer).
    pub max_in_flight: usize,
    /// Relay the upstream's AD bit (the operator trusts the upstream and
    /// the path to it).
    pub trust_ad: bool,
    /// Serve expired answers while upstream does not answer (RFC 8767).
    pub serve_stale: bool,
    /// How long past its TTL an answer may be served stale, seconds.
    pub serve_stale_max_age: u32,
    /// Upper bound on a cached answer's life, seconds.
    pub cache_max_ttl: u32,
    /// Upper bound on a cached NXDOMAIN/NODATA's life, seconds.
    pub cache_negative_max_ttl: u32,
    /// Keys still accepted but no longer used, each with what replaced it
    /// (`config check` prints them, `serve` logs them).
    pub obsolete: Vec<String>,
}

/// `audit.seal`: as systemd-journald's `Seal=`, sealing is on by default
/// and acts once a key was set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealMode {
    /// Unset: seal when a key is at `audit.seal_key` (after `rempart audit
    /// setup-keys`); without one, run hash-chained only, with a warning.
    IfKey,
    /// `true`: seal; a missing key is a start-up error.
    Required,
    /// `false`: never seal (the operator's explicit choice).
    Off,
}

/// What to do when there is no valid list at all at first start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnMissing {
    /// Refuse to start (exit code 3).
    Refuse,
    /// Serve without filtering; `/readyz` says not ready.
    ServeUnfiltered,
}

/// `[list]`: what every list shares (the state directory, the gates).
#[derive(Debug, Clone)]
pub struct ListConfig {
    /// Where the lists in force are kept: list `main` in the directory
    /// itself (as a single-list resolver always kept it), every other list
    /// in the subdirectory named after its id.
    pub state_dir: PathBuf,
    /// Names no list may redirect (canonical form, each once): the
    /// defaults unless `protected_defaults` is false, then
    /// `protected_added`, then every list's `redirect.cname` target.
    pub protected: Vec<String>,
    /// `list.protected_defaults`: [`DEFAULT_PROTECTED`] is protected.
    pub protected_defaults: bool,
    /// `list.protected`: names added to the defaults (canonical form).
    pub protected_added: Vec<String>,
    /// Behaviour with no valid list at first start (for each list).
    pub on_missing: OnMissing,
    /// Reload a list when its file or signature changes.
    pub watch: bool,
    /// The largest list file read; a larger one is refused unread.
    pub max_bytes: u64,
}

/// The id of the list of a lone `[list]` section, and of the list the
/// single-list admin endpoints mean.
pub const MAIN_LIST: &str = "main";
/// Longest list id.
pub const MAX_LIST_ID: usize = 32;
/// `deadline_hours` default: the LCEN 6-1 delay.
pub const DEFAULT_DEADLINE_HOURS: u32 = 24;
/// Largest `deadline_hours` accepted: one year (ANSSI orders run for up to
/// two months, renewable).
pub const MAX_DEADLINE_HOURS: u32 = 8_784;

/// What a list does to the names it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The redirect: the information page (or sinkhole) addresses, NODATA
    /// for other types, EDE 16.
    Redirect,
    /// NXDOMAIN with a SOA in authority (RFC 2308) and EDE 16, for a regime
    /// that requires no page.
    Nxdomain,
}

impl Action {
    /// The name in the config and the logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Redirect => "redirect",
            Action::Nxdomain => "nxdomain",
        }
    }
}

/// One list: one authority's signed list, its keys and its answer.
#[derive(Debug, Clone)]
pub struct ListSpec {
    /// Where the config writes it, to name its keys in errors: `list` (a
    /// lone `[list]`) or `lists[i]`.
    pub key: String,
    /// `[a-z0-9-]{1,32}`: in audit records, metrics (label `list`) and the
    /// admin endpoints.
    pub id: String,
    /// Where the list comes from: a file (`path`) or a web origin (`url`).
    pub origin: ListOrigin,
    /// minisign public keys whose signatures are accepted for this list
    /// only.
    pub trusted_keys: Vec<PathBuf>,
    /// Where this list in force and its serial floor are kept:
    /// `list.state_dir` for `main`, `list.state_dir/<id>` for the others.
    pub state_dir: PathBuf,
    /// The legal delay to apply a change, hours (for the audit report).
    pub deadline_hours: u32,
    /// What a match does.
    pub action: Action,
    /// The answer: the list's own `redirect`, or the `[redirect]` section's.
    pub redirect: RedirectConfig,
}

/// Where a list comes from (`path` and `url` are exclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListOrigin {
    /// `path`: the list file; its signature is `path` + `.minisig`.
    File(PathBuf),
    /// `url`: fetched from a web origin on a poll interval.
    Web(WebOrigin),
}

impl ListOrigin {
    /// The list file, for a list read from a file.
    pub fn path(&self) -> Option<&Path> {
        match self {
            ListOrigin::File(p) => Some(p),
            ListOrigin::Web(_) => None,
        }
    }

    /// What logs and messages call it: the file, or the URL.
    pub fn label(&self) -> PathBuf {
        match self {
            ListOrigin::File(p) => p.clone(),
            ListOrigin::Web(w) => PathBuf::from(&w.url),
        }
    }
}

/// A list fetched from a web origin (BEHAVIOUR section 10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebOrigin {
    /// `url`: `http://` or `https://`; the signature is `url` + `.minisig`.
    pub url: String,
    /// `poll_interval_s`, with a jitter of +-10% at each poll.
    pub poll_interval: Duration,
    /// `ca_file`: PEM certificates added to the system's roots for an
    /// origin under a private PKI (checked readable at start and by
    /// `rempart config check`).
    pub ca_file: Option<PathBuf>,
}

/// Whether `id` is a list id: `[a-z0-9-]`, 1 to [`MAX_LIST_ID`]
/// characters.
pub fn is_list_id(id: &str) -> bool {
    validate::valid_list_id(id)
}

impl Config {
    /// The list with id `id`.
    pub fn list_by_id(&self, id: &str) -> Option<&ListSpec> {
        self.lists.iter().find(|l| l.id == id)
    }
}

/// `[redirect]`: the answer for listed names.
#[derive(Debug, Clone)]
pub struct RedirectConfig {
    /// Information page IPv4 addresses (A answers).
    pub ipv4: Vec<Ipv4Addr>,
    /// Information page IPv6 addresses (AAAA answers); NODATA if empty.
    pub ipv6: Vec<Ipv6Addr>,
    /// TTL of redirect records and of the NODATA SOA.
    pub ttl: u32,
    /// When set, answer `name CNAME <cname>` and resolve the target normally.
    pub cname: Option<Name>,
    /// EXTRA-TEXT of the Extended DNS Error 16 (RFC 8914): `ede_text`, or
    /// the JSON of `ede_json`.
    pub ede_text: String,
    /// True for the `[redirect]` section itself, false for a list's own
    /// `redirect` table.
    pub uses_section: bool,
}

impl RedirectConfig {
    /// Neither addresses nor a CNAME: it sends nowhere.
    pub fn has_no_target(&self) -> bool {
        self.ipv4.is_empty() && self.ipv6.is_empty() && self.cname.is_none()
    }
}

/// How client addresses appear in the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientIpMode {
    /// Not recorded.
    None,
    /// /24 for IPv4, /56 for IPv6.
    Truncate,
    /// Keyed hash, key rotated daily.
    Hmac,
    /// The full address.
    Full,
}

/// `[audit]`
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// Write the trail (a resolver that enforces the list should).
    pub enabled: bool,
    /// Directory of the audit trail.
    pub dir: PathBuf,
    /// Client address privacy mode.
    pub client_ip: ClientIpMode,
    /// Records queued before the query path starts losing them.
    pub queue: usize,
    /// Size past which a new file is started, bytes.
    pub max_file_bytes: u64,
    /// Files older than this many days are deleted (0: never).
    pub retention_days: u32,
    /// Whether to seal the trail (forward-secure), as systemd-journald's
    /// `Seal=`: on by default whenever the sealing key exists.
    pub seal: SealMode,
    /// The sealing key file (made by `rempart audit setup-keys`).
    pub seal_key: PathBuf,
    /// Time between seals.
    pub seal_interval: std::time::Duration,
}

/// `[admin]`
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Address of the admin HTTP listener.
    pub listen: SocketAddr,
    /// File holding the bearer token of the list endpoints; unset disables
    /// them.
    pub token_file: Option<PathBuf>,
    /// Concurrency and time bounds of the listener.
    pub limits: AdminLimits,
    /// Serve HTTPS with this certificate and key; `None`: plain HTTP.
    pub tls: Option<AdminTls>,
}

/// `admin.tls_certificate` and `admin.tls_key`, set together.
pub type AdminTls = TlsFiles;

/// A certificate and its key (`tls_certificate`, `tls_key`), set together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM file: the server certificate, then any intermediates.
    pub certificate: PathBuf,
    /// PEM file: its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// A `tracing` filter: `info`, `debug`, `rempart=debug,warn`...
    pub level: String,
    /// Output format.
    pub format: LogFormat,
}

/// One error in the file, with the key it belongs to and, when the file
/// has that key, its line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{key}: {reason}", line.map(|n| format!("line {n}: ")).unwrap_or_default())]
pub struct KeyError {
    /// Dotted key, e.g. `server.listen[1]`.
    pub key: String,
    /// What is wrong.
    pub reason: String,
    /// 1-based line of the key in the file (`None` for a key it lacks).
    pub line: Option<usize>,
}

/// A config that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not TOML at all.
    #[error("{}: {message}", file.display())]
    Syntax {
        /// The file.
        file: PathBuf,
        /// toml's message, with line and column.
        message: String,
    },
    /// Unknown keys, values of the wrong type, invalid values: every one
    /// is listed, in the order of the file.
    #[error("{}: {} error(s):\n  {}", file.display(), errors.len(), errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Every error, each naming its key.
        errors: Vec<KeyError>,
    },
}

impl Config {
    /// Read and validate a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_owned(),
            source,
        })?;
        Config::from_toml(&text, path)
    }

    /// Validate config text; `file` is only used in errors.
    ///
    /// Every error is collected before any is returned: the unknown keys
    /// and values of the wrong type (module `keys`), then the invalid
    /// values (module `validate`), sorted by line. A key already named for
    /// its type is not named again for the default that replaced it.
    pub fn from_toml(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let syntax = |e: toml::de::Error| ConfigError::Syntax {
            file: file.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        };
        let doc = keys::Document::parse(text).map_err(syntax)?;
        let (raw, mut errors) = doc.read().map_err(syntax)?;
        let invalid = match raw.validate() {
            Ok(config) if errors.is_empty() => return Ok(config),
            Ok(_) => Vec::new(),
            Err(invalid) => invalid,
        };
        for mut e in invalid {
            let named_before = errors.iter().any(|b| {
                e.key == b.key
                    || e.key
                        .strip_prefix(b.key.as_str())
                        .is_some_and(|rest| rest.starts_with(['.', '[']))
            });
            if !named_before {
                e.line = doc.line_of(&e.key);
                errors.push(e);
            }
        }
        // Lines in order, then the errors about keys the file lacks.
        errors.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
        Err(ConfigError::Invalid {
            file: file.to_owned(),
            errors,
        })
    }
}

/// What the admin listener lets one client spend: `admin.max_connections`
/// and the `admin.*_timeout_ms` keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminLimits {
    /// Connections served at once; one more is closed at accept (and
    /// logged). The slot is held until the connection closes.
    pub max_connections: usize,
    /// From accept to the end of the request's headers; past it the
    /// connection is closed without an answer.
    pub header_timeout: Duration,
    /// From the handler's start to the last byte of an authorised upload's
    /// body; past it, 408.
    pub body_timeout: Duration,
    /// From accept to the last byte of the answer: the connection is closed
    /// then, whatever it is doing. A list admission under way goes on to its
    /// end (it runs in its own task) and is logged as usual.
    pub request_timeout: Duration,
}
