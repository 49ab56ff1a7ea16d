//! The functions the plugin imports from the host (`sandpipe-abi::HOST_MODULE`).
//! The host validates every pointer and length it receives.

use sandpipe_abi::{HOST_MODULE, LogLevel, import, same};

const _: () = assert!(same(HOST_MODULE, "sandpipe_host_v1"));
const _: () = assert!(same(import::LOG, "log"));

#[link(wasm_import_module = "sandpipe_host_v1")]
unsafe extern "C" {
    #[link_name = "log"]
    fn host_log(level: u32, ptr: *const u8, len: usize);
}

/// Sends one console line to the host.
pub fn log(level: LogLevel, line: &str) {
    unsafe { host_log(level as u32, line.as_ptr(), line.len()) }
}
