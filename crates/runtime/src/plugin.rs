//! The guest plugin: sandpipe's pre-initialised Javy plugin, embedded in the
//! host (users never build it), compiled once per process.

use sha2::{Digest, Sha256};

/// The committed, pre-initialised plugin (`guest-sdk/build.sh` writes it).
pub const PLUGIN_WASM: &[u8] = include_bytes!("../../../guest-sdk/sandpipe_plugin.wasm");

/// sha256 (hex) of [`PLUGIN_WASM`].
pub fn sha256() -> String {
    hex::encode(Sha256::digest(PLUGIN_WASM))
}
