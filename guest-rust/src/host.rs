//! The functions a connector imports from the host (`sandpipe_abi::HOST_MODULE`),
//! the same three the JavaScript plugin imports. The host checks every
//! pointer and length it is given.

use sandpipe_abi::{HOST_MODULE, LogLevel, Service, import, same};

const _: () = assert!(same(HOST_MODULE, "sandpipe_host_v1"));
const _: () = assert!(same(import::LOG, "log"));
const _: () = assert!(same(import::REQUEST, "request"));
const _: () = assert!(same(import::RESPONSE, "response"));

#[cfg(target_family = "wasm")]
#[link(wasm_import_module = "sandpipe_host_v1")]
unsafe extern "C" {
    #[link_name = "log"]
    fn host_log(level: u32, ptr: *const u8, len: usize);
    #[link_name = "request"]
    fn host_request(service: u32, ptr: *const u8, len: usize) -> u32;
    #[link_name = "response"]
    fn host_response(ptr: *mut u8, len: usize);
}

/// Sends a JSON request to a host service; its JSON answer (`{"ok": …}` or `{"error": "…"}`).
pub fn request(service: Service, payload: &[u8]) -> Vec<u8> {
    #[cfg(target_family = "wasm")]
    {
        let len =
            unsafe { host_request(service as u32, payload.as_ptr(), payload.len()) } as usize;
        let mut answer = vec![0u8; len];
        unsafe { host_response(answer.as_mut_ptr(), len) };
        answer
    }
    #[cfg(not(target_family = "wasm"))]
    {
        let _ = (service, payload);
        br#"{"error":"host services exist only inside sandpipe"}"#.to_vec()
    }
}

/// Sends one console line to the host.
pub fn log(level: LogLevel, line: &str) {
    #[cfg(target_family = "wasm")]
    unsafe {
        host_log(level as u32, line.as_ptr(), line.len())
    }
    #[cfg(not(target_family = "wasm"))]
    let _ = (level, line);
}
