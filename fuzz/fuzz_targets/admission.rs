//! Bundle admission on arbitrary bytes: refused with a reason or admitted,
//! never a panic. An admitted bundle's manifest parsed and its imports are
//! only the plugin's.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sandpipe_fuzz::runtime;

fuzz_target!(|data: &[u8]| {
    match runtime().admit(data) {
        Ok(bundle) => {
            assert!(!bundle.manifest().name.trim().is_empty());
        }
        Err(error) => {
            let message = error.to_string();
            assert!(
                !message.is_empty() && !message.contains('\n'),
                "{message:?}"
            );
        }
    }
});
