//! sandpipe's Javy plugin: the JavaScript world a PostHog-style connector runs in.
//!
//! Built for `wasm32-wasip1` with Debian's toolchain (`guest-sdk/build.sh`) and
//! pre-initialised with Wizer, so every instance starts with a ready QuickJS
//! runtime and the connector world ([`world`]) already evaluated. The host
//! embeds the committed `.wasm`; users never build this crate.
//!
//! One instance serves one connector for its whole life:
//!
//! 1. the bundle's entry copies the connector's bytecode into the input buffer
//!    and calls `sandpipe_load`, which runs the top level once and finds the
//!    special functions (`processEvent`, `composeWebhook`, …);
//! 2. the host calls `sandpipe_call` with JSON in and JSON out, as many times
//!    as it likes; `meta.global` and top-level state persist between calls.
//!
//! The export names, call numbers and the result encoding are defined once in
//! `sandpipe-abi`; [`exports`] ties its attribute literals to those constants.
#![allow(clippy::missing_safety_doc)]

mod exports;
mod host;
mod json;
mod natives;
mod script;
mod shared;
mod text;
mod world;

use javy_plugin_api::Config;
use sandpipe_abi::PLUGIN_MODULE;

/// QuickJS's cycle collector runs after this many bytes are allocated
/// (Javy's default never runs it, and a connector that makes cycles grows without bound).
const GC_THRESHOLD: usize = 1 << 20;

/// The `import_namespace` section a Javy plugin carries: the module name bundles import from.
#[unsafe(link_section = "import_namespace")]
pub static IMPORT_NAMESPACE: [u8; PLUGIN_MODULE.len()] = ascii_array(PLUGIN_MODULE);

const fn ascii_array<const N: usize>(s: &str) -> [u8; N] {
    let bytes = s.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

fn config() -> Config {
    let mut config = Config::default();
    config.text_encoding(true).gc_threshold(GC_THRESHOLD);
    config
}

/// Called once by Wizer when the plugin is pre-initialised.
#[unsafe(export_name = "initialize-runtime")]
pub extern "C" fn initialize_runtime() {
    javy_plugin_api::initialize_runtime(config, world::install)
        .expect("the connector world initialises");
}
