//! `rempart list push --url URL --token-file F [--ca-file CA] LIST`: the
//! list administrator's side of `PUT /v1/list`.
//!
//! The bearer token lets whoever holds it replace the list in force, so it
//! never travels in clear: `https://` URLs (rustls; the Mozilla roots, or
//! the private CA of `--ca-file`), or `http://` to a loopback address only,
//! where it does not leave the machine.

use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use ureq::http::Uri;
use ureq::tls::{RootCerts, TlsConfig};

use super::{EXIT_FAILURE, EXIT_OK, EXIT_REFUSED, EXIT_USAGE};
use crate::list::signature_path;

/// Why `list push` will not send the token to a URL.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not a URL.
    #[error("--url {url:?} is not a URL: {reason}")]
    Invalid {
        /// The URL given.
        url: String,
        /// The parser's reason.
        reason: String,
    },
    /// Neither `http` nor `https`.
    #[error("--url {url:?}: expected https://HOST:PORT (or http:// to a loopback address)")]
    Scheme {
        /// The URL given.
        url: String,
    },
    /// Plain HTTP to a host that is not a loopback address.
    #[error(
        "--url {url:?}: refusing to send the admin token in clear over http to {host}, which is not a loopback address; serve the admin listener over TLS (admin.tls_certificate, admin.tls_key) and use https:// (with --ca-file for a private CA)"
    )]
    Cleartext {
        /// The URL given.
        url: String,
        /// Its host.
        host: String,
    },
}

/// Check that `url` keeps the token from travelling in clear: `https`, or
/// `http` to `localhost`, 127.0.0.0/8 or `::1`.
pub fn check_url(url: &str) -> Result<(), UrlError> {
    let uri: Uri = url
        .parse()
        .map_err(|e: ureq::http::uri::InvalidUri| UrlError::Invalid {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
    match uri.scheme_str() {
        Some("https") => Ok(()),
        Some("http") => {
            let host = uri.host().unwrap_or("");
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = bare.eq_ignore_ascii_case("localhost")
                || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if loopback {
                Ok(())
            } else {
                Err(UrlError::Cleartext {
                    url: url.to_owned(),
                    host: host.to_owned(),
                })
            }
        }
        _ => Err(UrlError::Scheme {
            url: url.to_owned(),
        }),
    }
}

/// Why `--ca-file` cannot be used: the file, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("--ca-file {0}")]
pub struct CaError(crate::sources::pull::CaError);

/// The TLS settings: rustls, with the certificates of `ca_file` as the
/// only roots, or the Mozilla roots without it.
fn tls_config(ca_file: Option<&Path>) -> Result<TlsConfig, CaError> {
    let Some(file) = ca_file else {
        return Ok(TlsConfig::default());
    };
    let roots = crate::sources::pull::certificates(file).map_err(CaError)?;
    Ok(TlsConfig::builder()
        .root_certs(RootCerts::new_with_certs(&roots))
        .build())
}

/// Upload `list` and `list.minisig` to the resolver at `url` (its admin
/// listener, e.g. `https://resolver-1.example:9153`, or
/// `http://127.0.0.1:9153` on the resolver itself), authenticated by the
/// bearer token in `token_file`; `ca_file` is the private CA of the
/// listener's certificate. Prints `applied serial N`, `unchanged serial N`
/// or `refused: REASON`; exit 0, 0 or 1; 2 for a URL that would send the
/// token in clear (see [`check_url`]) or an unusable `--ca-file`; 3 when
/// the resolver cannot be reached. With `list_id`, the list of that id
/// (`PUT /v1/lists/ID`), else `main` or the resolver's only list.
pub fn push(
    url: &str,
    token_file: &Path,
    ca_file: Option<&Path>,
    list_id: Option<&str>,
    list: &Path,
) -> ExitCode {
    let fail = |msg: String| {
        eprintln!("rempart list push: {msg}");
        ExitCode::from(EXIT_FAILURE)
    };
    let usage = |msg: String| {
        eprintln!("rempart list push: {msg}");
        ExitCode::from(EXIT_USAGE)
    };
    if let Err(e) = check_url(url) {
        return usage(e.to_string());
    }
    if let Some(id) = list_id
        && !crate::config::is_list_id(id)
    {
        return usage(format!(
            "--list {id:?}: a list id is 1 to {} characters of a-z, 0-9 and '-'",
            crate::config::MAX_LIST_ID
        ));
    }
    let tls = match tls_config(ca_file) {
        Ok(t) => t,
        Err(e) => return usage(e.to_string()),
    };
    let token = match std::fs::read_to_string(token_file) {
        Ok(t) => t.trim().to_owned(),
        Err(e) => return fail(format!("{}: {e}", token_file.display())),
    };
    let text = match std::fs::read(list) {
        Ok(b) => b,
        Err(e) => return fail(format!("{}: {e}", list.display())),
    };
    let text = match String::from_utf8(text) {
        Ok(t) => t,
        Err(_) => {
            eprintln!("refused: {}: not UTF-8", list.display());
            return ExitCode::from(EXIT_REFUSED);
        }
    };
    let sig_path = signature_path(list);
    let signature = match std::fs::read_to_string(&sig_path) {
        Ok(s) => s,
        Err(e) => return fail(format!("{}: {e}", sig_path.display())),
    };
    let body = serde_json::json!({ "list": text, "signature": signature }).to_string();
    let endpoint = match list_id {
        Some(id) => format!("{}/v1/lists/{id}", url.trim_end_matches('/')),
        None => format!("{}/v1/list", url.trim_end_matches('/')),
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(300)))
        .tls_config(tls)
        // A redirect could lead the token elsewhere, even to plain http.
        .max_redirects(0)
        .build()
        .into();
    let response = agent
        .put(&endpoint)
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .send(body.as_bytes());
    let mut response = match response {
        Ok(r) => r,
        Err(e) => return fail(format!("{endpoint}: {e}")),
    };
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    let json: Option<serde_json::Value> = serde_json::from_str(&text).ok();
    match (status, json) {
        (200, Some(v)) => {
            let outcome = v["outcome"].as_str().unwrap_or("?");
            println!("{outcome} serial {}", v["serial"]);
            ExitCode::from(EXIT_OK)
        }
        (422, Some(v)) => {
            println!("refused: {}", v["reason"].as_str().unwrap_or("?"));
            ExitCode::from(EXIT_REFUSED)
        }
        (code, _) => fail(format!("{endpoint}: HTTP {code}: {}", text.trim())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_goes_in_clear_to_loopback_only() {
        for ok in [
            "https://resolver.example:9153",
            "https://192.0.2.1:9153/",
            "http://127.0.0.1:9153",
            "http://127.1.2.3:9153/",
            "http://[::1]:9153",
            "http://localhost:9153",
        ] {
            assert_eq!(check_url(ok), Ok(()), "{ok}");
        }
        for clear in [
            "http://192.0.2.1:9153",
            "http://[2001:db8::1]:9153",
            "http://resolver.example:9153",
            "http://localhost.example:9153",
        ] {
            let err = check_url(clear).unwrap_err();
            assert!(matches!(err, UrlError::Cleartext { .. }), "{clear}: {err}");
            assert!(err.to_string().contains("in clear"), "{err}");
        }
        assert!(matches!(
            check_url("ftp://127.0.0.1/"),
            Err(UrlError::Scheme { .. })
        ));
        assert!(matches!(
            check_url("127.0.0.1:9153"),
            Err(UrlError::Scheme { .. } | UrlError::Invalid { .. })
        ));
    }
}
