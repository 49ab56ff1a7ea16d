//! `plugin.json` parsing and config resolution on arbitrary text.
//!
//! Input: manifest text, a NUL byte, then the user's config values (JSON).
//! Properties: neither step panics; a resolved config holds only declared keys,
//! and its redacted form never shows a secret's value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sandpipe_manifest::{Manifest, REDACTED};
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let (manifest, config) = match data.iter().position(|&b| b == 0) {
        Some(split) => (&data[..split], &data[split + 1..]),
        None => (data, &b"{}"[..]),
    };
    let Ok(text) = std::str::from_utf8(manifest) else {
        return;
    };
    let Ok(manifest) = Manifest::parse(text) else {
        return;
    };
    let Ok(user) = serde_json::from_slice::<Map<String, Value>>(config) else {
        return;
    };
    let Ok(resolved) = manifest.resolve_config(&user) else {
        return;
    };
    for key in resolved.config.keys().chain(resolved.attachments.keys()) {
        assert!(
            manifest.field(key).is_some(),
            "undeclared key {key:?} resolved"
        );
    }
    let redacted = resolved.redacted();
    for key in &resolved.secrets {
        if let Some(value) = redacted.get(key) {
            assert_eq!(
                value,
                &Value::String(REDACTED.into()),
                "secret {key:?} shown"
            );
        }
    }
});
