//! `rempart list push --url URL --token-file F LIST`: the list
//! administrator's side of `PUT /v1/list`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use super::{EXIT_FAILURE, EXIT_OK, EXIT_REFUSED};
use crate::list::signature_path;

/// Upload `list` and `list.minisig` to the resolver at `url` (its admin
/// listener, e.g. `http://127.0.0.1:9153`), authenticated by the bearer
/// token in `token_file`. Prints `applied serial N`, `unchanged serial N` or
/// `refused: REASON`; exit 0, 0 or 1; 3 when the resolver cannot be reached.
pub fn push(url: &str, token_file: &Path, list: &Path) -> ExitCode {
    let fail = |msg: String| {
        eprintln!("rempart list push: {msg}");
        ExitCode::from(EXIT_FAILURE)
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
    let endpoint = format!("{}/v1/list", url.trim_end_matches('/'));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
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
