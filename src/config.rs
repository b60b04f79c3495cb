//! Strict TOML -> validated [`Config`].
//!
//! Two steps, as habit 1 of STYLE.md says: [`RawConfig`] is deserialised with
//! `deny_unknown_fields` (a typo is an error naming the key and its line),
//! then [`Config::validate`] turns it into typed values, collecting every
//! error with the key it belongs to, so that `rempart config check` reports
//! them all at once. Every default is a `DEFAULT_*` constant here and is
//! written, commented, in `config/rempart.example.toml`; a test keeps the two
//! in agreement.
//!
//! Relative paths in the file are relative to the working directory of the
//! process (systemd: `WorkingDirectory=`, or use absolute paths).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use hickory_proto::rr::Name;
use ipnet::IpNet;
use serde::Deserialize;

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
/// `log.level` default.
pub const DEFAULT_LOG_LEVEL: &str = "info";

/// The file as written: strict, every key optional where a default exists.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    server: RawServer,
    upstream: Option<RawUpstream>,
    list: Option<RawList>,
    #[serde(default)]
    redirect: RawRedirect,
    #[serde(default)]
    audit: RawAudit,
    #[serde(default)]
    admin: RawAdmin,
    #[serde(default)]
    log: RawLog,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Vec<String>>,
    allow: Option<Vec<String>>,
    udp_sockets: Option<usize>,
    tcp_idle_timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    servers: Option<Vec<String>>,
    timeout_ms: Option<u64>,
    cache_size: Option<usize>,
    cache_max_ttl: Option<u32>,
    cache_negative_max_ttl: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawList {
    path: Option<PathBuf>,
    trusted_keys: Option<Vec<PathBuf>>,
    state_dir: Option<PathBuf>,
    protected: Option<Vec<String>>,
    on_missing: Option<String>,
    watch: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedirect {
    ipv4: Option<Vec<String>>,
    ipv6: Option<Vec<String>>,
    ttl: Option<u32>,
    cname: Option<String>,
    ede_text: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    enabled: Option<bool>,
    dir: Option<PathBuf>,
    client_ip: Option<String>,
    queue: Option<usize>,
    max_file_mb: Option<u64>,
    retention_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    listen: Option<String>,
    token_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: Option<String>,
    format: Option<String>,
}

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    /// Dotted key, e.g. `server.listen[1]`.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
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

/// Collects errors while values are validated.
#[derive(Default)]
struct Errors(Vec<KeyError>);

impl Errors {
    fn push(&mut self, key: impl Into<String>, reason: impl Into<String>) {
        self.0.push(KeyError {
            key: key.into(),
            reason: reason.into(),
        });
    }

    /// Parse each string of a list with `FromStr`, naming `key[i]` on error.
    fn parse_each<T: FromStr>(&mut self, key: &str, values: &[String], what: &str) -> Vec<T>
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

/// The canonical form of a configured domain name: lowercase, no trailing
/// dot, each label 1-63 octets of letters, digits, `-` or `_`.
pub fn canonical_name(text: &str) -> Result<String, String> {
    let t = text.strip_suffix('.').unwrap_or(text).to_ascii_lowercase();
    if t.is_empty() {
        return Err("empty name".into());
    }
    if t.len() > 253 {
        return Err("longer than 253 characters".into());
    }
    for label in t.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("label {label:?} must have 1 to 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "label {label:?} has a character other than a letter, a digit, '-' or '_' (write IDN names in punycode)"
            ));
        }
    }
    Ok(t)
}

impl RawConfig {
    fn validate(self) -> Result<Config, Vec<KeyError>> {
        let mut e = Errors::default();

        // [server]
        let listen_raw = self
            .server
            .listen
            .unwrap_or_else(|| strings(DEFAULT_LISTEN));
        let listen: Vec<SocketAddr> = e.parse_each("server.listen", &listen_raw, "an address:port");
        if listen_raw.is_empty() {
            e.push("server.listen", "at least one address is needed");
        }
        let allow_raw = self.server.allow.unwrap_or_else(|| strings(DEFAULT_ALLOW));
        let allow: Vec<IpNet> = e.parse_each("server.allow", &allow_raw, "a network (a.b.c.d/len)");
        let tcp_idle = self
            .server
            .tcp_idle_timeout_ms
            .unwrap_or(DEFAULT_TCP_IDLE_TIMEOUT_MS);
        if tcp_idle == 0 {
            e.push("server.tcp_idle_timeout_ms", "must be at least 1");
        }
        let udp_sockets = self.server.udp_sockets.unwrap_or(DEFAULT_UDP_SOCKETS);
        if udp_sockets > 1024 {
            e.push("server.udp_sockets", "must be at most 1024");
        }

        // [upstream]
        let up = match self.upstream {
            Some(u) => u,
            None => {
                e.push(
                    "upstream",
                    "section missing: the resolver needs upstream.servers",
                );
                RawUpstream::default()
            }
        };
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
        let cache_size = up.cache_size.unwrap_or(DEFAULT_CACHE_SIZE);
        let cache_max_ttl = up.cache_max_ttl.unwrap_or(DEFAULT_CACHE_MAX_TTL);
        let cache_negative_max_ttl = up
            .cache_negative_max_ttl
            .unwrap_or(DEFAULT_CACHE_NEGATIVE_MAX_TTL);

        // [list]
        let list = match self.list {
            Some(l) => l,
            None => {
                e.push(
                    "list",
                    "section missing: list.path and list.trusted_keys are required",
                );
                RawList::default()
            }
        };
        let path = list.path.unwrap_or_else(|| {
            e.push("list.path", "required: the signed list file");
            PathBuf::new()
        });
        let trusted_keys = list.trusted_keys.unwrap_or_default();
        if trusted_keys.is_empty() {
            e.push(
                "list.trusted_keys",
                "at least one minisign public key is required: an unsigned list is never applied",
            );
        }
        let state_dir = list
            .state_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
        let protected_raw = list.protected.unwrap_or_else(|| strings(DEFAULT_PROTECTED));
        let mut protected = Vec::with_capacity(protected_raw.len());
        for (i, p) in protected_raw.iter().enumerate() {
            match canonical_name(p) {
                Ok(n) => protected.push(n),
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

        // [redirect]
        let r = self.redirect;
        let ipv4: Vec<Ipv4Addr> = e.parse_each(
            "redirect.ipv4",
            &r.ipv4.unwrap_or_default(),
            "an IPv4 address",
        );
        let ipv6: Vec<Ipv6Addr> = e.parse_each(
            "redirect.ipv6",
            &r.ipv6.unwrap_or_default(),
            "an IPv6 address",
        );
        let ttl = r.ttl.unwrap_or(DEFAULT_REDIRECT_TTL);
        if ttl == 0 || ttl > MAX_REDIRECT_TTL {
            e.push(
                "redirect.ttl",
                format!("{ttl}: must be between 1 and {MAX_REDIRECT_TTL} seconds"),
            );
        }
        let cname = match r.cname.as_deref() {
            None => None,
            Some(c) => match canonical_name(c)
                .and_then(|n| Name::from_ascii(format!("{n}.")).map_err(|err| err.to_string()))
            {
                Ok(name) => Some(name),
                Err(reason) => {
                    e.push("redirect.cname", format!("{c:?}: {reason}"));
                    None
                }
            },
        };
        if ipv4.is_empty() && ipv6.is_empty() && cname.is_none() {
            e.push(
                "redirect",
                "one of redirect.ipv4, redirect.ipv6 or redirect.cname is needed to send users to the information page",
            );
        }
        let ede_text = r
            .ede_text
            .unwrap_or_else(|| default_ede_text(cname.as_ref(), &ipv4, &ipv6));
        if ede_text.len() > 1_000 {
            e.push("redirect.ede_text", "must be at most 1000 bytes");
        }
        // The information host must never be redirected itself.
        if let Some(c) = &cname {
            let c = c.to_ascii();
            protected.push(c.trim_end_matches('.').to_ascii_lowercase());
        }

        // [audit]
        let audit_dir = self
            .audit
            .dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_AUDIT_DIR));
        let client_ip = match self.audit.client_ip.as_deref().unwrap_or("none") {
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

        let audit_queue = self.audit.queue.unwrap_or(DEFAULT_AUDIT_QUEUE);
        if !(16..=16_777_216).contains(&audit_queue) {
            e.push(
                "audit.queue",
                format!("{audit_queue}: must be between 16 and 16777216"),
            );
        }
        let max_file_mb = self.audit.max_file_mb.unwrap_or(DEFAULT_AUDIT_MAX_FILE_MB);
        if !(1..=1_048_576).contains(&max_file_mb) {
            e.push(
                "audit.max_file_mb",
                format!("{max_file_mb}: must be between 1 and 1048576"),
            );
        }

        // [admin]
        let admin_raw = self
            .admin
            .listen
            .unwrap_or_else(|| DEFAULT_ADMIN_LISTEN.to_owned());
        let admin_listen = match admin_raw.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(err) => {
                e.push(
                    "admin.listen",
                    format!("{admin_raw:?} is not an address:port: {err}"),
                );
                SocketAddr::from(([127, 0, 0, 1], 9153))
            }
        };

        // [log]
        let level = self
            .log
            .level
            .unwrap_or_else(|| DEFAULT_LOG_LEVEL.to_owned());
        if let Err(err) = tracing_subscriber::EnvFilter::builder().parse(&level) {
            e.push("log.level", format!("{level:?}: {err}"));
        }
        let format = match self.log.format.as_deref().unwrap_or("text") {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                e.push("log.format", format!("{other:?}: expected text or json"));
                LogFormat::Text
            }
        };

        if !e.0.is_empty() {
            return Err(e.0);
        }
        Ok(Config {
            server: ServerConfig {
                listen,
                allow,
                udp_sockets,
                tcp_idle_timeout: Duration::from_millis(tcp_idle),
            },
            upstream: UpstreamConfig {
                servers,
                timeout: Duration::from_millis(timeout_ms),
                cache_size,
                cache_max_ttl,
                cache_negative_max_ttl,
            },
            list: ListConfig {
                path,
                trusted_keys,
                state_dir,
                protected,
                on_missing,
                watch: list.watch.unwrap_or(true),
            },
            redirect: RedirectConfig {
                ipv4,
                ipv6,
                ttl,
                cname,
                ede_text,
            },
            audit: AuditConfig {
                enabled: self.audit.enabled.unwrap_or(true),
                dir: audit_dir,
                client_ip,
                queue: audit_queue,
                max_file_bytes: max_file_mb * 1024 * 1024,
                retention_days: self
                    .audit
                    .retention_days
                    .unwrap_or(DEFAULT_AUDIT_RETENTION_DAYS),
            },
            admin: AdminConfig {
                listen: admin_listen,
                token_file: self.admin.token_file,
            },
            log: LogConfig { level, format },
        })
    }
}

/// `ip:port`, or a bare IP meaning port 53.
fn parse_upstream(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    s.parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("{s:?} is not an IP address or address:port"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[upstream]
servers = ["127.0.0.1:5300"]
[list]
path = "l.txt"
trusted_keys = ["k.pub"]
[redirect]
ipv4 = ["192.0.2.80"]
"#;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("test.toml"))
    }

    #[test]
    fn minimal_config_gets_documented_defaults() {
        let c = load(MINIMAL).unwrap();
        assert_eq!(c.server.listen, vec!["127.0.0.1:1053".parse().unwrap()]);
        assert_eq!(c.redirect.ttl, DEFAULT_REDIRECT_TTL);
        assert_eq!(c.upstream.cache_size, DEFAULT_CACHE_SIZE);
        assert_eq!(c.list.on_missing, OnMissing::Refuse);
        assert!(c.list.protected.iter().any(|p| p == "google.fr"));
        assert_eq!(
            c.redirect.ede_text,
            format!("{DEFAULT_EDE_TEXT}; information page: http://192.0.2.80/")
        );
    }

    #[test]
    fn default_ede_text_names_the_information_page() {
        let with_redirect = |redirect: &str| {
            load(&MINIMAL.replace(
                "[redirect]\nipv4 = [\"192.0.2.80\"]\n",
                &format!("[redirect]\n{redirect}"),
            ))
        };
        let c = with_redirect("cname = \"Info.Block.Test\"\nipv4 = [\"192.0.2.80\"]\n").unwrap();
        assert!(
            c.redirect
                .ede_text
                .ends_with("; information page: http://info.block.test/")
        );
        let c = with_redirect("ipv6 = [\"2001:db8::80\"]\n").unwrap();
        assert!(
            c.redirect
                .ede_text
                .ends_with("; information page: http://[2001:db8::80]/")
        );
        let c = with_redirect("ipv4 = [\"192.0.2.80\"]\nede_text = \"see the page\"\n").unwrap();
        assert_eq!(c.redirect.ede_text, "see the page");
    }

    #[test]
    fn unknown_key_is_named() {
        let err = load(&format!("{MINIMAL}\n[server]\nlisten_on = [\"x\"]\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen_on"), "{err}");
    }

    #[test]
    fn every_invalid_value_is_named_by_key() {
        let text = r#"
[server]
listen = ["127.0.0.1:53", "nonsense"]
allow = ["10.0.0.0/33"]
[upstream]
servers = ["not-an-ip"]
timeout_ms = 0
[list]
path = "l.txt"
trusted_keys = []
protected = ["bad..name"]
on_missing = "maybe"
[redirect]
ipv4 = ["192.0.2.300"]
ttl = 7200
[audit]
client_ip = "everything"
[log]
format = "xml"
"#;
        let err = load(text).unwrap_err();
        let ConfigError::Invalid { errors, .. } = &err else {
            panic!("{err}")
        };
        let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
        for key in [
            "server.listen[1]",
            "server.allow[0]",
            "upstream.servers[0]",
            "upstream.timeout_ms",
            "list.trusted_keys",
            "list.protected[0]",
            "list.on_missing",
            "redirect.ipv4[0]",
            "redirect.ttl",
            "audit.client_ip",
            "log.format",
        ] {
            assert!(keys.contains(&key), "{key} not named in {err}");
        }
    }

    #[test]
    fn redirect_needs_a_target() {
        let text = MINIMAL.replace("ipv4 = [\"192.0.2.80\"]", "ttl = 60");
        let err = load(&text).unwrap_err().to_string();
        assert!(err.contains("redirect:"), "{err}");
    }

    #[test]
    fn cname_target_is_protected() {
        let text = MINIMAL.replace("ipv4 = [\"192.0.2.80\"]", "cname = \"Info.Block.Test.\"");
        let c = load(&text).unwrap();
        assert!(c.list.protected.iter().any(|p| p == "info.block.test"));
    }

    #[test]
    fn bare_upstream_ip_means_port_53() {
        assert_eq!(
            parse_upstream("192.0.2.1").unwrap(),
            "192.0.2.1:53".parse().unwrap()
        );
        assert_eq!(
            parse_upstream("[::1]:5300").unwrap(),
            "[::1]:5300".parse().unwrap()
        );
    }
}
