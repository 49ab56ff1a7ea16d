//! Write [sandpipe](https://github.com/) connectors in Rust.
//!
//! A Rust connector is a `cdylib` for `wasm32-wasip1` whose hooks are
//! functions marked with this crate's attributes, exported once with
//! [`export!`]; `sandpipe build` compiles it and embeds its `plugin.json`, and
//! the host runs it in the same chains, under the same limits and with the
//! same `meta` services as a JavaScript connector:
//!
//! ```ignore
//! use sandpipe_connector::{Error, Event, Meta};
//!
//! #[sandpipe_connector::process_event]
//! fn greet(mut event: Event, meta: &Meta) -> Result<Option<Event>, Error> {
//!     event.properties_mut().insert("greeting".into(), "hello".into());
//!     Ok(Some(event))
//! }
//!
//! sandpipe_connector::export!();
//! ```
//!
//! The hooks: [`setup`](macro@setup) ([`Setup`]), [`process_event`](macro@process_event)
//! ([`ProcessEvent`]), [`compose_webhook`](macro@compose_webhook)
//! ([`ComposeWebhook`]) and [`on_event`](macro@on_event) ([`OnEvent`]); each is
//! optional, and each attribute refuses a function of the wrong shape at
//! compile time.
//!
//! # Features
//!
//! - `global-allocator` (on by default): sets [`allocator::Allocator`] as the
//!   connector's `#[global_allocator]`, which makes and frees the small blocks
//!   of a call's maps and strings in a fraction of the instructions wasi-libc's
//!   malloc takes (the geoip example's call: about 14 % less fuel). A connector
//!   that sets its own allocator, or wants the standard library's, turns it off:
//!
//!   ```toml
//!   sandpipe-connector = { path = "…", default-features = false }
//!   ```
//!
//! Map of the crate: [`event`] (the event a hook gets, its keys in order, and
//! the reduced copy `compose_webhook` and `on_event` get), [`meta`] (config,
//! `cache`, `storage`, `geoip`, `console`), [`host`] (the host functions, the
//! only `unsafe` besides the exports and [`allocator`]), the attributes (`sandpipe-connector-macros`),
//! and `__private`, what [`export!`]'s exports call: the guest side of the ABI
//! in `sandpipe-abi` (reserve, start, call, packed results).

pub mod allocator;
pub mod event;
mod exports;
pub mod host;
pub mod meta;

pub use event::{Event, Webhook};
pub use meta::{Cache, Console, GeoIp, Meta, Storage};
pub use sandpipe_connector_macros::{compose_webhook, on_event, process_event, setup};
pub use serde_json::{self, Map, Value, json};

/// What a hook returns to fail: the host logs `Error: <message>` for the
/// connector and records the event as failed by it, as for a JavaScript throw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub message: String,
    /// The name the host logs before the message (`Error`, `RetryError`).
    name: &'static str,
}

impl Error {
    pub fn new(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            name: "Error",
        }
    }

    /// A `RetryError`, as PostHog's `onEvent` throws to be called again
    /// (only this error from `on_event` has it called again; any other ends
    /// the call, as in PostHog).
    pub fn retry(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            name: "RetryError",
        }
    }

    /// `Error` or `RetryError`.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Error {
        Error::new(error.to_string())
    }
}

impl From<String> for Error {
    fn from(message: String) -> Error {
        Error::new(message)
    }
}

impl From<&str> for Error {
    fn from(message: &str) -> Error {
        Error::new(message)
    }
}

/// `setup(meta)`: runs once per instance, before any other hook (PostHog's `setupPlugin`).
pub type Setup = fn(&Meta) -> Result<(), Error>;
/// `process_event(event, meta)`: the event to pass on, or `None` to drop it.
pub type ProcessEvent = fn(Event, &Meta) -> Result<Option<Event>, Error>;
/// `compose_webhook(event, meta)`: the request to send for the event (the
/// reduced event, as JavaScript's `composeWebhook` gets), or `None`.
pub type ComposeWebhook = fn(Event, &Meta) -> Result<Option<Webhook>, Error>;
/// `on_event(event, meta)`: runs on the reduced copy of each event the chain
/// kept, after the chain; an [`Error::retry`] has the call made again (`run`
/// makes up to five, `serve` retries with backoff), any other error ends it,
/// as for JavaScript's `onEvent`.
pub type OnEvent = fn(Event, &Meta) -> Result<(), Error>;

/// The connector's allocator (feature `global-allocator`, on by default): see [`allocator`].
#[cfg(all(
    feature = "global-allocator",
    target_family = "wasm",
    not(target_feature = "atomics")
))]
#[global_allocator]
static ALLOCATOR: allocator::Allocator = allocator::Allocator::new();

#[doc(hidden)]
pub mod __private {
    pub use crate::exports::{Hooks, call, reserve, start};

    /// What `export!()` finds for a hook no attribute defined: a glob
    /// import of these, which the attribute's own constant shadows.
    pub mod absent {
        pub const __SANDPIPE_HOOK_SETUP: Option<crate::Setup> = None;
        pub const __SANDPIPE_HOOK_PROCESS_EVENT: Option<crate::ProcessEvent> = None;
        pub const __SANDPIPE_HOOK_COMPOSE_WEBHOOK: Option<crate::ComposeWebhook> = None;
        pub const __SANDPIPE_HOOK_ON_EVENT: Option<crate::OnEvent> = None;
    }
}

/// Exports the guest ABI (`sandpipe_reserve`, `sandpipe_start`,
/// `sandpipe_call`) for the hooks marked with this crate's attributes in the
/// same module; write it once, next to them (usually in `lib.rs`).
#[macro_export]
macro_rules! export {
    () => {
        #[allow(unused_imports)]
        use $crate::__private::absent::*;

        /// Tells the hook attributes that `export!()` is in this module.
        #[allow(non_upper_case_globals)]
        const ADD_sandpipe_connector_export_TO_THIS_MODULE: () = ();

        static __SANDPIPE_HOOKS: $crate::__private::Hooks = $crate::__private::Hooks {
            setup: __SANDPIPE_HOOK_SETUP,
            process_event: __SANDPIPE_HOOK_PROCESS_EVENT,
            compose_webhook: __SANDPIPE_HOOK_COMPOSE_WEBHOOK,
            on_event: __SANDPIPE_HOOK_ON_EVENT,
        };

        #[unsafe(export_name = "sandpipe_reserve")]
        pub extern "C" fn __sandpipe_reserve(len: u32) -> *mut u8 {
            $crate::__private::reserve(len)
        }

        #[unsafe(export_name = "sandpipe_start")]
        pub extern "C" fn __sandpipe_start() -> i64 {
            $crate::__private::start(&__SANDPIPE_HOOKS)
        }

        #[unsafe(export_name = "sandpipe_call")]
        pub extern "C" fn __sandpipe_call(call: u32, len: u32) -> i64 {
            $crate::__private::call(&__SANDPIPE_HOOKS, call, len)
        }
    };
}
