//! Write [sandpipe](https://github.com/) connectors in Rust.
//!
//! A Rust connector is a `cdylib` for `wasm32-wasip1` that declares its hooks
//! with [`connector!`]; `sandpipe build` compiles it and embeds its
//! `plugin.json`, and the host runs it in the same chains, under the same
//! limits and with the same `meta` services as a JavaScript connector:
//!
//! ```ignore
//! use sandpipe_connector::{Error, Event, Meta};
//!
//! fn process_event(mut event: Event, meta: &Meta) -> Result<Option<Event>, Error> {
//!     event.properties_mut().insert("greeting".into(), "hello".into());
//!     Ok(Some(event))
//! }
//!
//! sandpipe_connector::connector! {
//!     process_event: process_event,
//! }
//! ```
//!
//! Map of the crate: [`event`] (the event a hook gets, its keys in order),
//! [`meta`] (config, `cache`, `storage`, `geoip`, `console`), [`host`] (the
//! host functions, the only `unsafe` besides the exports), and `__private`,
//! what [`connector!`]'s exports call: the guest side of the ABI in
//! `sandpipe-abi` (reserve, start, call, packed results).

pub mod event;
mod exports;
pub mod host;
pub mod meta;

pub use event::{Event, Webhook};
pub use meta::{Cache, Console, GeoIp, Meta, Storage};
pub use serde_json::{self, Map, Value, json};

/// What a hook returns to fail: the host logs `Error: <message>` for the
/// connector and records the event as failed by it, as for a JavaScript throw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub message: String,
}

impl Error {
    pub fn new(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
        }
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
/// `compose_webhook(event, meta)`: the request to send for the event, or `None`.
pub type ComposeWebhook = fn(Event, &Meta) -> Result<Option<Webhook>, Error>;

#[doc(hidden)]
pub mod __private {
    pub use crate::exports::{Hooks, call, reserve, start};
}

/// Declares the connector's hooks and exports the guest ABI for them. Each
/// hook is optional; name the functions that implement the ones you have:
///
/// ```ignore
/// sandpipe_connector::connector! {
///     setup: setup,                     // fn(&Meta) -> Result<(), Error>
///     process_event: process_event,     // fn(Event, &Meta) -> Result<Option<Event>, Error>
///     compose_webhook: compose_webhook, // fn(Event, &Meta) -> Result<Option<Webhook>, Error>
/// }
/// ```
#[macro_export]
macro_rules! connector {
    ($($hook:ident : $function:path),* $(,)?) => {
        static __SANDPIPE_HOOKS: $crate::__private::Hooks = $crate::__private::Hooks {
            $($hook: ::core::option::Option::Some($function),)*
            ..$crate::__private::Hooks::NONE
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
