//! The host functions every guest imports from [`HOST_MODULE`] — the
//! JavaScript plugin and Rust connectors alike — declared once, behind safe
//! wrappers over slices. Only built for wasm. The host checks every pointer and
//! length it is given.

use crate::{HOST_MODULE, LogLevel, import, same};

const _: () = assert!(same(HOST_MODULE, "sandpipe_host_v1"));
const _: () = assert!(same(import::LOG, "log"));
const _: () = assert!(same(import::REQUEST, "request"));
const _: () = assert!(same(import::RESPONSE, "response"));

#[link(wasm_import_module = "sandpipe_host_v1")]
unsafe extern "C" {
    #[link_name = "log"]
    fn host_log(level: u32, ptr: *const u8, len: usize);
    #[link_name = "request"]
    fn host_request(service: u32, ptr: *const u8, len: usize) -> u32;
    #[link_name = "response"]
    fn host_response(ptr: *mut u8, len: usize);
}

/// Sends one console line to the host.
pub fn log(level: LogLevel, line: &str) {
    // SAFETY: the pointer and length describe `line`, which outlives the call.
    unsafe { host_log(level as u32, line.as_ptr(), line.len()) }
}

/// Sends JSON `payload` to host service number `service`; the length of its
/// JSON answer, which [`response`] then copies out.
pub fn request(service: u32, payload: &[u8]) -> usize {
    // SAFETY: the pointer and length describe `payload`, which outlives the call.
    unsafe { host_request(service, payload.as_ptr(), payload.len()) as usize }
}

/// Copies the answer to the last [`request`] into `answer`, whose length is
/// the one [`request`] returned.
pub fn response(answer: &mut [u8]) {
    // SAFETY: the pointer and length describe `answer`, writable for the call.
    unsafe { host_response(answer.as_mut_ptr(), answer.len()) }
}
