//! The file as written: every key optional where a default exists.
//! `super::keys` reads the text against these types' fields (naming every
//! unknown key, with its line) before serde sees it; `deny_unknown_fields`
//! stays as the last guard. `super::validate` turns the result into a
//! [`Config`](super::Config).

use std::path::PathBuf;

use serde::Deserialize;

/// The file as written: strict, every key optional where a default exists.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub(super) server: RawServer,
    pub(super) upstream: Option<RawUpstream>,
    pub(super) list: Option<RawList>,
    /// `[[lists]]`: several lists, in precedence order.
    pub(super) lists: Option<Vec<RawListEntry>>,
    #[serde(default)]
    pub(super) redirect: RawRedirect,
    #[serde(default)]
    pub(super) audit: RawAudit,
    #[serde(default)]
    pub(super) admin: RawAdmin,
    #[serde(default)]
    pub(super) log: RawLog,
    pub(super) rpz: Option<RawRpz>,
}

/// `[server]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub listen: Option<Vec<String>>,
    pub allow: Option<Vec<String>>,
    pub udp_sockets: Option<usize>,
    pub tcp_idle_timeout_ms: Option<u64>,
    pub tcp_max_connections: Option<usize>,
    pub tcp_max_per_client: Option<usize>,
    pub proxy_from: Option<Vec<String>>,
    pub proxy_required: Option<bool>,
    pub tls_listen: Option<Vec<String>>,
    pub https_listen: Option<Vec<String>>,
    pub tls_certificate: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

/// `[upstream]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpstream {
    pub servers: Option<Vec<String>>,
    pub timeout_ms: Option<u64>,
    pub cache_bytes: Option<u64>,
    /// Accepted for the configs written before `cache_bytes`; ignored.
    pub cache_size: Option<u64>,
    pub max_in_flight: Option<usize>,
    pub trust_ad: Option<bool>,
    pub serve_stale: Option<bool>,
    pub serve_stale_max_age: Option<u32>,
    pub cache_max_ttl: Option<u32>,
    pub cache_negative_max_ttl: Option<u32>,
}

/// `[list]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawList {
    pub path: Option<PathBuf>,
    pub url: Option<String>,
    pub poll_interval_s: Option<u64>,
    pub ca_file: Option<PathBuf>,
    pub trusted_keys: Option<Vec<PathBuf>>,
    pub state_dir: Option<PathBuf>,
    pub protected: Option<Vec<String>>,
    pub protected_defaults: Option<bool>,
    pub on_missing: Option<String>,
    pub watch: Option<bool>,
    pub max_bytes: Option<u64>,
}

/// One `[[lists]]` entry as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawListEntry {
    pub id: Option<String>,
    pub path: Option<PathBuf>,
    pub url: Option<String>,
    pub poll_interval_s: Option<u64>,
    pub ca_file: Option<PathBuf>,
    pub trusted_keys: Option<Vec<PathBuf>>,
    pub deadline_hours: Option<u32>,
    pub action: Option<String>,
    pub redirect: Option<RawRedirect>,
}

/// `[redirect]`, or a list's own `redirect` table, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRedirect {
    pub ipv4: Option<Vec<String>>,
    pub ipv6: Option<Vec<String>>,
    pub ttl: Option<u32>,
    pub cname: Option<String>,
    pub ede_text: Option<String>,
    pub ede_json: Option<RawEdeJson>,
}

/// `redirect.ede_json` as written: the fields of
/// draft-ietf-dnsop-structured-dns-error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEdeJson {
    pub c: Option<Vec<String>>,
    pub j: Option<String>,
    pub o: Option<String>,
    pub l: Option<String>,
}

/// `[audit]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudit {
    pub enabled: Option<bool>,
    pub dir: Option<PathBuf>,
    pub client_ip: Option<String>,
    pub queue: Option<usize>,
    pub max_file_mb: Option<u64>,
    pub retention_days: Option<u32>,
    pub seal: Option<bool>,
    pub seal_key: Option<PathBuf>,
    pub seal_interval_s: Option<u64>,
}

/// `[admin]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    pub listen: Option<String>,
    pub token_file: Option<PathBuf>,
    pub max_connections: Option<usize>,
    pub header_timeout_ms: Option<u64>,
    pub body_timeout_ms: Option<u64>,
    pub request_timeout_ms: Option<u64>,
    pub tls_certificate: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

/// `[log]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLog {
    pub level: Option<String>,
    pub format: Option<String>,
}

/// `[rpz]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRpz {
    pub listen: Option<Vec<String>>,
    pub allow_transfer: Option<Vec<String>>,
    pub notify: Option<Vec<String>>,
    pub tsig_key: Option<PathBuf>,
    pub zone_suffix: Option<String>,
}
