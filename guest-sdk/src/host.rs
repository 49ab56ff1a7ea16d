//! The functions the plugin imports from the host (`sandpipe-abi::HOST_MODULE`).
//! The host validates every pointer and length it receives.

use sandpipe_abi::{HOST_MODULE, LogLevel, import, same};

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

/// Sends a JSON request to a host service and returns its JSON response.
pub fn request(service: u32, payload: &[u8]) -> Vec<u8> {
    let len = unsafe { host_request(service, payload.as_ptr(), payload.len()) } as usize;
    let mut response = vec![0u8; len];
    unsafe { host_response(response.as_mut_ptr(), len) };
    response
}

/// Sends one console line to the host.
pub fn log(level: LogLevel, line: &str) {
    unsafe { host_log(level as u32, line.as_ptr(), line.len()) }
}
