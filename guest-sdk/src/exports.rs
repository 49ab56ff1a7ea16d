//! The plugin's own exports (names in `sandpipe-abi::export`): a reusable input
//! buffer the host writes into, and a reusable output buffer it reads from.
//!
//! Nothing here trusts its caller: lengths beyond the reserved buffer and
//! unknown call numbers come back as errors, not as reads out of bounds.

use crate::{shared, world};
use sandpipe_abi::{Call, MAX_PACKED_LEN, Packed, export, pass, same};
use std::cell::RefCell;

const _: () = assert!(same(export::RESERVE, "sandpipe_reserve"));
const _: () = assert!(same(export::COMPILE, "sandpipe_compile"));
const _: () = assert!(same(export::LOAD, "sandpipe_load"));
const _: () = assert!(same(export::CALL, "sandpipe_call"));
const _: () = assert!(same(export::WORLD, "sandpipe_world"));
const _: () = assert!(same(export::PASS, "sandpipe_pass"));
const _: () = assert!(same(export::HELD, "sandpipe_held"));

thread_local! {
    static INPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static OUTPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Makes the input buffer at least `len + 1` bytes and returns its address.
#[unsafe(export_name = "sandpipe_reserve")]
pub extern "C" fn reserve(len: u32) -> *mut u8 {
    INPUT.with_borrow_mut(|input| {
        let wanted = len as usize + 1;
        if input.len() < wanted {
            input.resize(wanted, 0);
        }
        input.as_mut_ptr()
    })
}

/// Runs `f` on the first `len` bytes of the input buffer and packs its result.
fn with_input(len: u32, f: impl FnOnce(&[u8]) -> Result<Vec<u8>, String>) -> i64 {
    let result = INPUT.with_borrow(|input| match input.get(..len as usize) {
        Some(bytes) => f(bytes),
        None => Err(
            r#"{"name":"Error","message":"input length exceeds the reserved buffer","stack":""}"#
                .into(),
        ),
    });
    let (bytes, is_error) = match result {
        Ok(bytes) => (bytes, false),
        Err(error) => (error.into_bytes(), true),
    };
    OUTPUT.with_borrow_mut(|output| {
        *output = bytes;
        if output.len() > MAX_PACKED_LEN as usize {
            *output = br#"{"name":"Error","message":"output exceeds 2 GiB","stack":""}"#.to_vec();
        }
        Packed {
            ptr: output.as_ptr() as u32,
            len: output.len() as u32,
            is_error,
        }
        .encode()
    })
}

/// Input `FILE \n SOURCE`; output the bytecode of SOURCE compiled as a sloppy script.
#[unsafe(export_name = "sandpipe_compile")]
pub extern "C" fn compile(len: u32) -> i64 {
    with_input(len, |input| {
        let text = std::str::from_utf8(input).map_err(|e| {
            format!(r#"{{"name":"Error","message":"source is not UTF-8: {e}","stack":""}}"#)
        })?;
        let (file, source) = text.split_once('\n').unwrap_or(("connector.js", text));
        world::compile(file, source)
    })
}

/// Input bytecode; runs the connector's top level once.
#[unsafe(export_name = "sandpipe_load")]
pub extern "C" fn load(len: u32) -> i64 {
    with_input(len, |bytecode| {
        world::load(bytecode).map(String::into_bytes)
    })
}

/// Input JSON; runs one call (`sandpipe_abi::Call`) and returns its JSON.
#[unsafe(export_name = "sandpipe_call")]
pub extern "C" fn call(call: u32, len: u32) -> i64 {
    with_input(len, |input| match Call::from_u32(call) {
        Some(call) => world::call(call, input),
        None => Err(format!(
            r#"{{"name":"Error","message":"unknown call {call}","stack":""}}"#
        )),
    })
}

/// Selects world `index` (made when it is the next one); output `null`.
#[unsafe(export_name = "sandpipe_world")]
pub extern "C" fn enter(index: u32) -> i64 {
    with_input(0, |_| {
        world::enter(index as usize).map(|()| b"null".to_vec())
    })
}

/// One connector's `processEvent` at the shared-instance level ([`shared::pass`]).
#[unsafe(export_name = "sandpipe_pass")]
pub extern "C" fn pass_event(len: u32, accept: u32, next: u32, budget: u32) -> i64 {
    let next = (next != pass::NO_WORLD).then_some(next as usize);
    with_input(len, |input| {
        shared::pass(input, accept == 1, next, budget as usize)
    })
}

/// The held event as JSON text ([`shared::held`]).
#[unsafe(export_name = "sandpipe_held")]
pub extern "C" fn held(accept: u32) -> i64 {
    with_input(0, |_| shared::held(accept == 1))
}
