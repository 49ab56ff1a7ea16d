//! The host functions the plugin calls, through their one declaration in
//! `sandpipe_abi::guest`.

use sandpipe_abi::{LogLevel, guest};

/// Sends a JSON request to a host service and returns its JSON response.
pub fn request(service: u32, payload: &[u8]) -> Vec<u8> {
    let mut response = vec![0u8; guest::request(service, payload)];
    guest::response(&mut response);
    response
}

/// Sends one console line to the host.
pub fn log(level: LogLevel, line: &str) {
    guest::log(level, line)
}
