//! The host functions a connector calls: the same three the JavaScript
//! plugin imports, through their one declaration in `sandpipe_abi::guest`
//! (outside wasm, for the SDK's own unit tests, services answer with an error).

#[cfg(target_family = "wasm")]
use sandpipe_abi::guest;
use sandpipe_abi::{LogLevel, Service};

/// Sends a JSON request to a host service; its JSON answer (`{"ok": …}` or `{"error": "…"}`).
pub fn request(service: Service, payload: &[u8]) -> Vec<u8> {
    #[cfg(target_family = "wasm")]
    {
        let mut answer = vec![0u8; guest::request(service as u32, payload)];
        guest::response(&mut answer);
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
    guest::log(level, line);
    #[cfg(not(target_family = "wasm"))]
    let _ = (level, line);
}
