//! The list parser and the signature check.
//!
//! The input is a list file, then optionally a 0xFF octet (never in UTF-8
//! text) and its `.minisig` file; without one, the demo signature is used.
//! What must hold:
//!
//! - neither the parser nor the signature check panics;
//! - a signature verifies with the demo key only over the demo list (the
//!   one thing that key ever signed): no changed byte gets through;
//! - an accepted list reads back from its canonical text as itself
//!   (line numbers aside), and that text is its own canonical form;
//! - the policy compiled from it redirects every entry's name by that
//!   entry.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use rempart::list::List;
use rempart::list::signature::TrustedKeys;
use rempart::policy::Policy;

const DEMO_LIST: &[u8] = include_bytes!("../../../config/demo/list.txt");
const DEMO_SIGNATURE: &[u8] = include_bytes!("../../../config/demo/list.txt.minisig");

/// The demo key, loaded as the resolver loads `list.trusted_keys`.
static KEYS: LazyLock<TrustedKeys> = LazyLock::new(|| {
    let key = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/demo/demo.pub"
    ));
    TrustedKeys::load(&[key]).expect("the demo key loads")
});

fuzz_target!(|data: &[u8]| {
    let (text, signature) = match data.iter().position(|&b| b == 0xFF) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, DEMO_SIGNATURE),
    };
    if KEYS.verify(text, signature).is_ok() {
        assert_eq!(text, DEMO_LIST, "a signature verified over another text");
    }

    let file = Path::new("list.txt");
    let Ok(list) = List::parse(text, file) else {
        return;
    };
    let canonical = list.serialise();
    let again = List::parse(canonical.as_bytes(), file).unwrap_or_else(|e| {
        panic!("the canonical text of an accepted list is refused: {e}\n{canonical}")
    });
    let without_lines = |l: &List| {
        let mut l = l.clone();
        l.entries.iter_mut().for_each(|e| e.line = 0);
        l
    };
    assert_eq!(
        without_lines(&list),
        without_lines(&again),
        "parse(serialise(x)) != x"
    );
    assert_eq!(
        again.serialise(),
        canonical,
        "the canonical text is not canonical"
    );

    let policy = Policy::compile(&list, [0; 32]);
    for entry in &list.entries {
        let name = hickory_proto::rr::Name::from_ascii(&entry.name)
            .unwrap_or_else(|e| panic!("entry {} is not a DNS name: {e}", entry.name));
        let rule = policy
            .verdict(&name)
            .unwrap_or_else(|| panic!("entry {} does not redirect its own name", entry.name));
        assert_eq!(
            rule.name, entry.name,
            "{} redirected by another entry",
            entry.name
        );
    }
});
