//! The config parser: TOML text to a validated `Config`.
//!
//! The input is a config file's bytes. What must hold: no panic; text that
//! is not UTF-8 is not the parser's business (`Config::load` reads a
//! string); every refusal names the file, and an invalid config names at
//! least one error, each with its key and, when the key is in the file,
//! a line of the file.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use rempart::config::{Config, ConfigError};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("fuzz.toml");
    let Err(error) = Config::from_toml(text, file) else {
        return;
    };
    let message = error.to_string();
    assert!(message.starts_with("fuzz.toml: "), "{message}");
    if let ConfigError::Invalid { errors, .. } = &error {
        assert!(!errors.is_empty(), "invalid with no error named");
        let lines = text.lines().count().max(1);
        for e in errors {
            assert!(!e.key.is_empty(), "an error without its key: {e}");
            if let Some(n) = e.line {
                assert!(
                    (1..=lines).contains(&n),
                    "{e}: line {n} of a file of {lines} line(s)"
                );
            }
        }
    }
});
