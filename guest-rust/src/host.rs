//! The host functions a connector calls: the same three the JavaScript
//! plugin imports, through their one declaration in `sandpipe_abi::guest`
//! (outside wasm, for the SDK's own unit tests, services answer with an error).

#[cfg(target_family = "wasm")]
use sandpipe_abi::guest;
use sandpipe_abi::{LogLevel, Service};

/// Sends a JSON request to a host service; its JSON answer (`{"ok": …}` or `{"error": "…"}`).
pub fn request(service: Service, payload: &[u8]) -> Vec<u8> {
    let mut exchange = payload.to_vec();
    request_in(service, &mut exchange);
    exchange
}

/// [`request`] in one buffer: sends `exchange` as the request and puts the
/// answer in its place (in the capacity it has, when that is enough).
pub fn request_in(service: Service, exchange: &mut Vec<u8>) {
    #[cfg(target_family = "wasm")]
    {
        let len = guest::request(service as u32, exchange);
        exchange.clear();
        exchange.resize(len, 0);
        guest::response(exchange);
    }
    #[cfg(not(target_family = "wasm"))]
    {
        let _ = service;
        exchange.clear();
        exchange.extend_from_slice(br#"{"error":"host services exist only inside sandpipe"}"#);
    }
}

/// Sends one console line to the host.
pub fn log(level: LogLevel, line: &str) {
    #[cfg(target_family = "wasm")]
    guest::log(level, line);
    #[cfg(not(target_family = "wasm"))]
    let _ = (level, line);
}
