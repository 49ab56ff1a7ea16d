//! The guest ABI: every name, number and encoding that both sides of the
//! wasm boundary must agree on, defined once.
//!
//! The host (`sandpipe-runtime`, `sandpipe-compiler`) and the guest plugin
//! (`guest-sdk/`, built for `wasm32-wasip1` with another toolchain) both depend
//! on this crate. It has no dependencies and is `no_std`, so the guest can use it.
//!
//! ```text
//! host                                   guest plugin (module PLUGIN_MODULE)
//! ───────────────────────────────────────────────────────────────────────────
//! p = RESERVE(len)                    →  a guest-owned input buffer of len+1 bytes
//! write JSON into memory[p..p+len]      (p is kept: RESERVE again only for a longer input)
//! r = CALL(call, len)                 →  runs the connector, returns a Packed result
//! read memory[r.ptr..r.ptr+r.len]        (output stays guest-owned until the next call)
//! ```
//!
//! A bundle is a small module that imports `memory`, `RESERVE` and `LOAD` from
//! [`PLUGIN_MODULE`], carries the connector's bytecode as a passive data segment
//! and exports [`BUNDLE_ENTRY`], which loads it and returns LOAD's packed result.
#![no_std]

/// Version of the call protocol and bundle format. A bundle records the version
/// it was built for; the host refuses any other. The bytecode a bundle carries
/// is QuickJS's own format, so this changes whenever the plugin's engine
/// changes it: 2 is quickjs-ng 0.16 (its bytecode version 28; 1 was 0.15.1's 26).
pub const ABI_VERSION: u32 = 2;

/// Import module name under which the plugin's exports are offered to bundles.
pub const PLUGIN_MODULE: &str = "sandpipe_plugin_v1";

/// Import module name of the host functions the plugin calls.
pub const HOST_MODULE: &str = "sandpipe_host_v1";

/// Name of the custom section that carries a bundle's manifest.
pub const MANIFEST_SECTION: &str = "sandpipe.manifest";

/// Export of a bundle that loads its bytecode into the plugin: `() -> i64` (a [`Packed`]).
pub const BUNDLE_ENTRY: &str = "sandpipe_start";

/// Exports of the plugin.
/// The host functions, as a guest imports them (wasm only).
#[cfg(target_family = "wasm")]
pub mod guest;

pub mod export {
    /// The plugin's linear memory, shared with the bundle.
    pub const MEMORY: &str = "memory";
    /// `(len: i32) -> i32`: pointer to a guest-owned input buffer of at least `len + 1` bytes.
    /// The plugin keeps the buffer where it is, at least that size, until the next call
    /// of this export, and the host writes a later input that fits into it without
    /// asking again; a standalone bundle's is asked for every input.
    pub const RESERVE: &str = "sandpipe_reserve";
    /// `(len: i32) -> i64`: input is `FILE_NAME \n SOURCE`; output is script bytecode.
    pub const COMPILE: &str = "sandpipe_compile";
    /// `(len: i32) -> i64`: input is bytecode; runs the connector's top level once.
    /// Output is a JSON array of the special functions it defines.
    pub const LOAD: &str = "sandpipe_load";
    /// `(call: i32, len: i32) -> i64`: input and output are JSON, see [`crate::Call`].
    pub const CALL: &str = "sandpipe_call";
    /// `(index: i32) -> i64`: the shared-instance level's worlds. Later loads
    /// and calls run in world `index`: an existing one, or a new one when
    /// `index` is the number of worlds. Output `null`.
    pub const WORLD: &str = "sandpipe_world";
    /// `(len: i32, accept: i32, next: i32, budget: i32) -> i64`:
    /// `processEvent` in the current world on the input (JSON) when
    /// `len > 0`, else on the event held from the last pass (its result when
    /// `accept` is 1, else the event before it); `next` is the next
    /// processing connector's world, or [`crate::pass::NO_WORLD`]; a result
    /// whose text might be longer than `budget` bytes goes as text. Output:
    /// see [`crate::pass`].
    pub const PASS: &str = "sandpipe_pass";
    /// `(accept: i32) -> i64`: the held event (as for `sandpipe_pass`'s
    /// `accept`) written as JSON text.
    pub const HELD: &str = "sandpipe_held";
}

/// What `sandpipe_pass` returns: a tag byte, then its body.
pub mod pass {
    /// `next` when no later connector processes events: the result is written as text.
    pub const NO_WORLD: u32 = u32::MAX;
    /// The result as JSON text (`null` when the event was dropped).
    pub const TEXT: u8 = b'T';
    /// The result is held in the plugin, copied into the next world; the body
    /// is the JSON text of its `team_id`, empty when it has none.
    pub const HELD: u8 = b'H';
}

/// Imports of the plugin from [`HOST_MODULE`].
pub mod import {
    /// `(level: i32, ptr: i32, len: i32)`: one console line, UTF-8, see [`crate::LogLevel`].
    pub const LOG: &str = "log";
    /// `(service: i32, ptr: i32, len: i32) -> i32`: a JSON request to a host
    /// [`crate::Service`]; returns the length of the JSON response, which the
    /// host keeps until [`RESPONSE`] fetches it.
    pub const REQUEST: &str = "request";
    /// `(ptr: i32, len: i32)`: copies the pending response (exactly `len` bytes) to `ptr`.
    pub const RESPONSE: &str = "response";
}

/// Host services a connector reaches through [`import::REQUEST`]. Requests
/// are JSON objects with an `"op"`; responses are `{"ok": value}` or
/// `{"error": "message"}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Service {
    /// `meta.cache`: a Redis-like store scoped to the connector.
    Cache = 1,
    /// `meta.storage`: a persistent key/value store scoped to the connector's config.
    Storage = 2,
    /// `posthog.capture(event, properties)`: an event emitted after the chain.
    Capture = 3,
    /// `meta.geoip.locate(ip)`: a MaxMind City lookup.
    GeoIp = 4,
    /// `fetch(url, init)`: HTTP, where the operator allows it.
    Fetch = 5,
    /// `Intl` and `toLocale*String`: dates and numbers formatted for a locale and zone.
    Intl = 6,
}

impl Service {
    /// The service with this number, if any.
    pub const fn from_u32(n: u32) -> Option<Service> {
        match n {
            1 => Some(Service::Cache),
            2 => Some(Service::Storage),
            3 => Some(Service::Capture),
            4 => Some(Service::GeoIp),
            5 => Some(Service::Fetch),
            6 => Some(Service::Intl),
            _ => None,
        }
    }
}

/// What [`export::CALL`] asks the connector to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Call {
    /// Input `{"config": {...}, "attachments": {...}, "deadline_ms": N}` (the
    /// call deadline bounds the timers' virtual clock; the plugin is not sent
    /// `attachments` when there are none, a standalone bundle always is);
    /// builds `meta`, runs `setupPlugin(meta)`.
    /// Output `null`.
    Setup = 1,
    /// Input an event; output the event `processEvent` returned, or `null` to drop it.
    ProcessEvent = 2,
    /// Input an event; output the request `composeWebhook` returned, or `null`.
    ComposeWebhook = 3,
    /// No input; runs `teardownPlugin(meta)`. Output `null`.
    Teardown = 4,
    /// Input an event; runs `onEvent` on PostHog's reduced copy of it. Output
    /// `null` (its return value is ignored); a throw is a failed delivery.
    OnEvent = 5,
    /// Input `{"deadline_ms": N}` (the task's deadline, which bounds its
    /// timers' virtual clock as setup's does a call's); runs
    /// `runEveryMinute(meta)`. Output `null` (its return value is ignored).
    RunEveryMinute = 6,
    /// As [`Call::RunEveryMinute`], for `runEveryHour(meta)`.
    RunEveryHour = 7,
    /// As [`Call::RunEveryMinute`], for `runEveryDay(meta)`.
    RunEveryDay = 8,
    /// Input a JSON array of events; runs `exportEvents` on PostHog's reduced
    /// copy of each, in one batch. Output `null` (its return value is
    /// ignored); a throw is a failed delivery of the whole batch.
    ExportEvents = 9,
}

impl Call {
    /// The call with this number, if any.
    pub const fn from_u32(n: u32) -> Option<Call> {
        match n {
            1 => Some(Call::Setup),
            2 => Some(Call::ProcessEvent),
            3 => Some(Call::ComposeWebhook),
            4 => Some(Call::Teardown),
            5 => Some(Call::OnEvent),
            6 => Some(Call::RunEveryMinute),
            7 => Some(Call::RunEveryHour),
            8 => Some(Call::RunEveryDay),
            9 => Some(Call::ExportEvents),
            _ => None,
        }
    }

    /// The connector function this call runs.
    pub const fn function(self) -> &'static str {
        match self {
            Call::Setup => "setupPlugin",
            Call::ProcessEvent => "processEvent",
            Call::ComposeWebhook => "composeWebhook",
            Call::Teardown => "teardownPlugin",
            Call::OnEvent => "onEvent",
            Call::RunEveryMinute => "runEveryMinute",
            Call::RunEveryHour => "runEveryHour",
            Call::RunEveryDay => "runEveryDay",
            Call::ExportEvents => "exportEvents",
        }
    }

    /// The scheduled tasks, shortest period first.
    pub const TASKS: [Call; 3] = [Call::RunEveryMinute, Call::RunEveryHour, Call::RunEveryDay];

    /// Whether this call is a scheduled task.
    pub const fn is_task(self) -> bool {
        matches!(
            self,
            Call::RunEveryMinute | Call::RunEveryHour | Call::RunEveryDay
        )
    }

    /// Another connector function that provides this call when the connector
    /// does not define [`Call::function`], as PostHog wrapped it:
    /// `processEventBatch` stands in for `processEvent` (called with a batch
    /// of one event).
    pub const fn stand_in(self) -> Option<&'static str> {
        match self {
            Call::ProcessEvent => Some("processEventBatch"),
            _ => None,
        }
    }
}

/// Severity of a console line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum LogLevel {
    Debug = 0,
    Info = 1,
    Log = 2,
    Warn = 3,
    Error = 4,
}

impl LogLevel {
    /// The level with this number; unknown numbers are `Log`.
    pub const fn from_u32(n: u32) -> LogLevel {
        match n {
            0 => LogLevel::Debug,
            1 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            _ => LogLevel::Log,
        }
    }

    /// Lower-case name, as `console` spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Log => "log",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// A result returned across the boundary in one `i64`: pointer in the high
/// 32 bits, length in the low 31, and bit 31 set when the bytes are an error
/// (JSON `{"name", "message", "stack"}`) instead of the output.
///
/// The host never trusts the pointer or length: it bounds-checks both against
/// the guest's memory before reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packed {
    pub ptr: u32,
    pub len: u32,
    pub is_error: bool,
}

const ERROR_BIT: u64 = 1 << 31;
const LEN_MASK: u64 = ERROR_BIT - 1;

/// Largest output a packed result can describe.
pub const MAX_PACKED_LEN: u32 = LEN_MASK as u32;

impl Packed {
    /// Packs a result; `len` must be at most [`MAX_PACKED_LEN`].
    pub const fn encode(self) -> i64 {
        let flag = if self.is_error { ERROR_BIT } else { 0 };
        (((self.ptr as u64) << 32) | (self.len as u64 & LEN_MASK) | flag) as i64
    }

    /// Unpacks a result produced by [`Packed::encode`] (or by a hostile guest).
    pub const fn decode(raw: i64) -> Packed {
        let raw = raw as u64;
        Packed {
            ptr: (raw >> 32) as u32,
            len: (raw & LEN_MASK) as u32,
            is_error: raw & ERROR_BIT != 0,
        }
    }
}

/// `a == b` in a `const` context; the guest uses it to tie the literal names
/// its attributes need to the constants above.
pub const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_round_trips() {
        for p in [
            Packed {
                ptr: 0,
                len: 0,
                is_error: false,
            },
            Packed {
                ptr: u32::MAX,
                len: MAX_PACKED_LEN,
                is_error: true,
            },
            Packed {
                ptr: 65_536,
                len: 1_265,
                is_error: false,
            },
        ] {
            assert_eq!(Packed::decode(p.encode()), p);
        }
    }

    #[test]
    fn calls_and_levels_round_trip() {
        for c in [
            Call::Setup,
            Call::ProcessEvent,
            Call::ComposeWebhook,
            Call::Teardown,
            Call::OnEvent,
            Call::RunEveryMinute,
            Call::RunEveryHour,
            Call::RunEveryDay,
            Call::ExportEvents,
        ] {
            assert_eq!(Call::from_u32(c as u32), Some(c));
        }
        assert_eq!(Call::from_u32(0), None);
        assert_eq!(Call::from_u32(10), None);
        assert_eq!(LogLevel::from_u32(LogLevel::Warn as u32), LogLevel::Warn);
        assert_eq!(LogLevel::from_u32(99), LogLevel::Log);
    }

    #[test]
    fn same_compares_bytes() {
        assert!(same("sandpipe_call", "sandpipe_call"));
        assert!(!same("sandpipe_call", "sandpipe_cal"));
        assert!(!same("a", "b"));
    }
}
