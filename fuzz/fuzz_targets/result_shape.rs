//! A connector's result read without building it, on arbitrary bytes.
//!
//! Properties:
//! - `event_text::shape` accepts exactly the texts
//!   `serde_json::from_slice::<Value>` accepts, with the same error message
//!   when both refuse, and finds the same kind and `team_id`. The chain relies
//!   on it: a result it accepted between connectors must parse as the final
//!   event.
//! - `rewrite::event` writes, with and without the chain's bookkeeping, the
//!   bytes `rewrite::through_value` writes by building the `Value`, refuses
//!   what it refuses with the same message, or asks for the `Value` (an
//!   object repeats a key or starts with serde_json's raw-value token). The
//!   host writes its final events this way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sandpipe_runtime::event_text::{Shape, shape};
use sandpipe_runtime::rewrite::{self, Plugins, RewriteError};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    match (shape(data), serde_json::from_slice::<Value>(data)) {
        (Ok(shape), Ok(value)) => assert_eq!(shape, Shape::of(&value)),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        (shaped, valued) => panic!("shape {shaped:?} but Value {valued:?}"),
    }
    let names = ["a (0)".to_string(), "b \"1\" (1)".to_string()];
    for plugins in [
        None,
        Some(Plugins {
            succeeded: &names[..1],
            failed: &names[1..],
        }),
    ] {
        let mut out = Vec::new();
        match (rewrite::event(data, plugins, &mut out), rewrite::through_value(data, plugins)) {
            (Ok(_), Ok(expected)) => assert_eq!(out, expected),
            // The caller then builds the `Value` (`through_value`) itself.
            (Err(RewriteError::NeedsValue), _) => assert!(out.is_empty()),
            (Err(a), Err(b)) => {
                assert_eq!(a.to_string(), b.to_string());
                assert!(out.is_empty());
            }
            (rewritten, expected) => panic!("rewrite {rewritten:?} but Value {expected:?}"),
        }
    }
});
