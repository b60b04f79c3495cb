//! Strict TOML -> validated [`Config`].
//!
//! Two steps, as habit 1 of STYLE.md says: [`RawConfig`] (module `raw`) is
//! deserialised with `deny_unknown_fields` (a typo is an error naming the
//! key and its line), then module `validate` turns it into typed values, one
//! function per section, collecting every error with the key it belongs to,
//! so that `rempart config check` reports them all at once. Every default
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
/// `upstream.timeout_ms` default.
pub const DEFAULT_UPSTREAM_TIMEOUT_MS: u64 = 2_000;
/// `upstream.cache_size` default: answers kept.
pub const DEFAULT_CACHE_SIZE: usize = 100_000;
/// `upstream.cache_max_ttl` default, seconds.
pub const DEFAULT_CACHE_MAX_TTL: u32 = 86_400;
/// `upstream.cache_negative_max_ttl` default, seconds (RFC 2308 section 5:
/// one to three hours is sensible).
pub const DEFAULT_CACHE_NEGATIVE_MAX_TTL: u32 = 3_600;
/// `list.state_dir` default.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/rempart";
/// `list.protected` default: names whose blocking would be the 2016 incident
/// again. An operator may replace the set; `protected = []` removes it.
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
/// `audit.dir` default.
pub const DEFAULT_AUDIT_DIR: &str = "/var/log/rempart/audit";
/// `audit.queue` default: records waiting for the writer.
pub const DEFAULT_AUDIT_QUEUE: usize = 65_536;
/// `audit.max_file_mb` default.
pub const DEFAULT_AUDIT_MAX_FILE_MB: u64 = 100;
/// `audit.retention_days` default: a little over a year, so that a yearly
/// control finds the whole year.
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 400;
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
    /// `[list]`
    pub list: ListConfig,
    /// `[redirect]`
    pub redirect: RedirectConfig,
    /// `[audit]`
    pub audit: AuditConfig,
    /// `[admin]`
    pub admin: AdminConfig,
    /// `[log]`
    pub log: LogConfig,
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
}

/// `[upstream]`: forwarders and the answer cache.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Forwarders, tried in order of measured speed.
    pub servers: Vec<SocketAddr>,
    /// A query not answered within this gets SERVFAIL.
    pub timeout: Duration,
    /// Answers kept in the cache.
    pub cache_size: usize,
    /// Upper bound on a cached answer's life, seconds.
    pub cache_max_ttl: u32,
    /// Upper bound on a cached NXDOMAIN/NODATA's life, seconds.
    pub cache_negative_max_ttl: u32,
}

/// What to do when there is no valid list at all at first start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnMissing {
    /// Refuse to start (exit code 3).
    Refuse,
    /// Serve without filtering; `/readyz` says not ready.
    ServeUnfiltered,
}

/// `[list]`: the signed list and its gates.
#[derive(Debug, Clone)]
pub struct ListConfig {
    /// The list file; its signature is `path` + `.minisig`.
    pub path: PathBuf,
    /// minisign public keys whose signatures are accepted.
    pub trusted_keys: Vec<PathBuf>,
    /// Where the list in force is kept.
    pub state_dir: PathBuf,
    /// Names no list may redirect (canonical form).
    pub protected: Vec<String>,
    /// Behaviour with no valid list at first start.
    pub on_missing: OnMissing,
    /// Reload when the list file or its signature changes.
    pub watch: bool,
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
    /// EXTRA-TEXT of the Extended DNS Error 16 (RFC 8914).
    pub ede_text: String,
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
    pub limits: crate::admin::Limits,
    /// Serve HTTPS with this certificate and key; `None`: plain HTTP.
    pub tls: Option<AdminTls>,
}

/// `admin.tls_certificate` and `admin.tls_key`, set together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminTls {
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

/// One invalid value, with the key it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct KeyError {
    /// Dotted key, e.g. `server.listen[1]`.
    pub key: String,
    /// What is wrong.
    pub reason: String,
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
    /// Not TOML, a wrong type, or an unknown key (the message names it).
    #[error("{}: {message}", file.display())]
    Syntax {
        /// The file.
        file: PathBuf,
        /// toml's message, with line, column and key.
        message: String,
    },
    /// Values that parse but are not valid; every one is listed.
    #[error("{}: {} invalid value(s):\n  {}", file.display(), errors.len(), errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
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
    pub fn from_toml(text: &str, file: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            file: file.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        raw.validate().map_err(|errors| ConfigError::Invalid {
            file: file.to_owned(),
            errors,
        })
    }
}
