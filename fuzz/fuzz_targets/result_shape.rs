//! A connector's result read without building it (`EventText`), on arbitrary bytes.
//!
//! Property: `event_text::shape` accepts exactly the texts
//! `serde_json::from_slice::<Value>` accepts, with the same error message when
//! both refuse, and finds the same kind and `team_id`. The chain relies on it:
//! a result it accepted between connectors must parse as the final event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sandpipe_runtime::event_text::{Shape, shape};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    match (shape(data), serde_json::from_slice::<Value>(data)) {
        (Ok(shape), Ok(value)) => assert_eq!(shape, Shape::of(&value)),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        (shaped, valued) => panic!("shape {shaped:?} but Value {valued:?}"),
    }
});
