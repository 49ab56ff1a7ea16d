//! One live connector instance: the plugin instantiated in its own store, the
//! bundle linked against it, and the calls across the boundary.
//!
//! Every call is armed first: fuel reset, epoch deadline set, console cleared.
//! Results are read through [`read_result`], which bounds-checks the packed
//! pointer and length the guest returned and holds results and errors alike
//! to the output limit before copying them.

use crate::bundle::Bundle;
use crate::engine::Engine;
use crate::error::{CallError, JsError};
use crate::host::{ConsoleLine, StoreData, guest_bytes};
use crate::limits::Limits;
use crate::services::ConnectorServices;
use sandpipe_abi::{BUNDLE_ENTRY, Call, Packed, export};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use wasmtime::{Extern, InstancePre, Memory, Store, Trap, TypedFunc};

/// A plugin instance with a connector loaded into it.
pub struct Instance {
    store: Store<StoreData>,
    memory: Memory,
    reserve: TypedFunc<u32, u32>,
    call: TypedFunc<(u32, u32), i64>,
    max_output: usize,
    /// The special functions the connector defines (`processEvent`, ...).
    functions: Vec<String>,
}

/// Connector instances alive in this process.
static LIVE_INSTANCES: AtomicUsize = AtomicUsize::new(0);

/// How many connector instances are alive in this process (for metrics).
pub fn live_instances() -> usize {
    LIVE_INSTANCES.load(Ordering::Relaxed)
}

impl Drop for Instance {
    fn drop(&mut self) {
        LIVE_INSTANCES.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Describes a wasmtime error from a guest call in one line.
pub(crate) fn trap_reason(error: &wasmtime::Error, limits: &Limits) -> String {
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => format!("ran out of fuel ({} units per call)", limits.fuel),
        Some(Trap::Interrupt) => {
            format!("exceeded its {} ms deadline", limits.deadline.as_millis())
        }
        Some(Trap::StackOverflow) => "overflowed the wasm stack".into(),
        _ => {
            let text = format!("{error:#}");
            if text.contains("forcing trap when growing memory") {
                format!("reached its memory limit of {} MiB", limits.memory >> 20)
            } else if text.contains("deadline exceeded") {
                format!("exceeded its {} ms deadline", limits.deadline.as_millis())
            } else {
                format!("trapped: {}", text.lines().next().unwrap_or("unknown trap"))
            }
        }
    }
}

/// Bytes of an error result shown when it cannot be read as error JSON.
const SHOWN_UNREADABLE_ERROR: usize = 4096;

/// Reads the bytes a packed result points at, within `max` bytes. An error
/// result over `max` (which the plugin never makes: it bounds what it
/// describes, but a bundle's entry returns what it likes) is not parsed: a
/// prefix of it becomes the message, with a marker.
fn read_result(memory: &[u8], raw: i64, max: usize) -> Result<Result<Vec<u8>, JsError>, CallError> {
    let packed = Packed::decode(raw);
    if packed.len as usize > max && !packed.is_error {
        return Err(CallError::OutputTooLarge {
            size: packed.len as usize,
            limit: max,
        });
    }
    // Bounds only: nothing is copied yet.
    let bytes = guest_bytes(memory, packed.ptr, packed.len, "result")
        .map_err(|e| CallError::Trapped(e.to_string()))?;
    if !packed.is_error {
        return Ok(Ok(bytes.to_vec()));
    }
    let parsed = match bytes.len() <= max {
        true => serde_json::from_slice::<JsError>(bytes).ok(),
        false => None,
    };
    Ok(Err(parsed.unwrap_or_else(|| unreadable_error(bytes))))
}

/// An error result that is not error JSON (or is over the limit): its first
/// bytes, cut at a character boundary, and how many more there were.
fn unreadable_error(bytes: &[u8]) -> JsError {
    let mut end = bytes.len().min(SHOWN_UNREADABLE_ERROR);
    // Back off a cut UTF-8 sequence (at most three continuation bytes).
    for _ in 0..3 {
        if end < bytes.len() && end > 0 && bytes[end] & 0xC0 == 0x80 {
            end -= 1;
        }
    }
    let mut message = String::from_utf8_lossy(&bytes[..end]).into_owned();
    if end < bytes.len() {
        message.push_str(&format!(
            "… [truncated {} bytes]",
            thousands(bytes.len() - end)
        ));
    }
    JsError {
        name: Some("Error".into()),
        message,
        stack: String::new(),
    }
}

/// 49995904 → "49,995,904".
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

impl Instance {
    /// Instantiates the plugin and `bundle` in a fresh store and runs the
    /// connector's top level (no `setupPlugin` yet).
    pub(crate) fn new(
        engine: &Engine,
        plugin: &InstancePre<StoreData>,
        bundle: &Bundle,
        limits: &Limits,
        services: Arc<ConnectorServices>,
    ) -> Result<Instance, CallError> {
        let mut store = Store::new(engine.wasmtime(), StoreData::new(limits, services));
        store.limiter(|data| &mut data.limits);
        arm(&mut store, limits);
        let trapped = |e: wasmtime::Error| CallError::Trapped(trap_reason(&e, limits));
        let plugin = plugin.instantiate(&mut store).map_err(trapped)?;
        let memory = plugin
            .get_memory(&mut store, export::MEMORY)
            .ok_or_else(|| CallError::Trapped("plugin exports no memory".into()))?;
        let reserve = plugin
            .get_typed_func(&mut store, export::RESERVE)
            .map_err(trapped)?;
        let call = plugin
            .get_typed_func(&mut store, export::CALL)
            .map_err(trapped)?;

        // Link the bundle's imports (admission allowed only plugin exports) by name.
        let mut imports: Vec<Extern> = Vec::new();
        for import in bundle.module.imports() {
            let found = plugin
                .get_export(&mut store, import.name())
                .ok_or_else(|| {
                    CallError::Trapped(format!(
                        "plugin has no export `{}` for the bundle",
                        import.name()
                    ))
                })?;
            imports.push(found);
        }
        let linked =
            wasmtime::Instance::new(&mut store, &bundle.module, &imports).map_err(|e| {
                CallError::Trapped(format!("bundle does not link against the plugin: {e}"))
            })?;
        let entry = linked
            .get_typed_func::<(), i64>(&mut store, BUNDLE_ENTRY)
            .map_err(|e| CallError::Trapped(format!("bundle entry `{BUNDLE_ENTRY}`: {e}")))?;
        let raw = entry.call(&mut store, ()).map_err(trapped)?;
        let names =
            read_result(memory.data(&store), raw, limits.max_output)?.map_err(CallError::Threw)?;
        let functions: Vec<String> = serde_json::from_slice(&names).map_err(|e| {
            CallError::InvalidResult(format!("plugin returned unreadable function names: {e}"))
        })?;
        LIVE_INSTANCES.fetch_add(1, Ordering::Relaxed);
        Ok(Instance {
            store,
            memory,
            reserve,
            call,
            max_output: limits.max_output,
            functions,
        })
    }

    /// The special functions the connector defines.
    pub fn functions(&self) -> &[String] {
        &self.functions
    }

    /// Whether the connector defines `name`.
    pub fn defines(&self, name: &str) -> bool {
        self.functions.iter().any(|f| f == name)
    }

    /// One call: JSON in, JSON out (`null` for "nothing").
    pub(crate) fn call(
        &mut self,
        call: Call,
        input: &[u8],
        limits: &Limits,
    ) -> Result<Vec<u8>, CallError> {
        if input.len() > limits.max_input {
            return Err(CallError::InputTooLarge {
                size: input.len(),
                limit: limits.max_input,
            });
        }
        arm(&mut self.store, limits);
        let trapped = |e: wasmtime::Error| CallError::Trapped(trap_reason(&e, limits));
        let len = input.len() as u32;
        let ptr = self.reserve.call(&mut self.store, len).map_err(trapped)?;
        self.memory
            .write(&mut self.store, ptr as usize, input)
            .map_err(|_| {
                CallError::Trapped("plugin reserved an input buffer outside its memory".into())
            })?;
        let raw = self
            .call
            .call(&mut self.store, (call as u32, len))
            .map_err(trapped)?;
        read_result(self.memory.data(&self.store), raw, self.max_output)?.map_err(CallError::Threw)
    }

    /// Fuel used since the last call was armed.
    pub fn fuel_used(&self, limits: &Limits) -> u64 {
        limits
            .fuel
            .saturating_sub(self.store.get_fuel().unwrap_or(0))
    }

    /// Takes the console lines of the last call (and a count of lines dropped over the limit).
    pub(crate) fn take_console(&mut self) -> (Vec<ConsoleLine>, usize) {
        take_console(&mut self.store)
    }
}

pub(crate) fn take_console(store: &mut Store<StoreData>) -> (Vec<ConsoleLine>, usize) {
    let data = store.data_mut();
    data.collect_stdio();
    (
        std::mem::take(&mut data.lines),
        std::mem::take(&mut data.dropped_lines),
    )
}

/// Resets fuel and deadline before a call.
pub(crate) fn arm(store: &mut Store<StoreData>, limits: &Limits) {
    store
        .set_fuel(limits.fuel)
        .expect("fuel metering is enabled on the engine");
    store.set_epoch_deadline(Engine::ticks(limits.deadline));
    store.epoch_deadline_trap();
    store.data_mut().deadline = Instant::now() + limits.deadline;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packed(ptr: u32, len: usize, is_error: bool) -> i64 {
        Packed {
            ptr,
            len: len as u32,
            is_error,
        }
        .encode()
    }

    #[test]
    fn an_error_result_is_parsed_within_the_limit() {
        let memory = br#"..{"name":"TypeError","message":"bad","stack":"at f"}"#;
        let error = read_result(memory, packed(2, memory.len() - 2, true), 100)
            .unwrap()
            .unwrap_err();
        assert_eq!(
            error,
            JsError {
                name: Some("TypeError".into()),
                message: "bad".into(),
                stack: "at f".into()
            }
        );
    }

    #[test]
    fn an_error_result_over_the_limit_is_cut_not_parsed() {
        // Valid error JSON, but over the limit: only its first bytes are shown.
        let mut memory = br#"{"name":"Error","message":""#.to_vec();
        memory.extend(std::iter::repeat_n(b'x', 10_000));
        memory.extend_from_slice(br#"","stack":""}"#);
        let error = read_result(&memory, packed(0, memory.len(), true), 9_000)
            .unwrap()
            .unwrap_err();
        let shown = format!(
            r#"{{"name":"Error","message":"{}"#,
            "x".repeat(SHOWN_UNREADABLE_ERROR - 27)
        );
        assert_eq!(error.name.as_deref(), Some("Error"));
        assert_eq!(error.message, format!("{shown}… [truncated 5,944 bytes]"));
        assert_eq!(error.stack, "");
        // An ordinary result over the limit is refused, as before.
        assert_eq!(
            read_result(&memory, packed(0, memory.len(), false), 9_000).unwrap_err(),
            CallError::OutputTooLarge {
                size: memory.len(),
                limit: 9_000
            }
        );
    }

    #[test]
    fn an_unreadable_error_is_cut_at_a_character_boundary() {
        // 4,095 ASCII bytes, then 'é' (two bytes) straddling the cut.
        let mut memory = vec![b'a'; SHOWN_UNREADABLE_ERROR - 1];
        memory.extend_from_slice("é!".as_bytes());
        let error = read_result(&memory, packed(0, memory.len(), true), 1 << 20)
            .unwrap()
            .unwrap_err();
        assert_eq!(
            error.message,
            format!(
                "{}… [truncated 3 bytes]",
                "a".repeat(SHOWN_UNREADABLE_ERROR - 1)
            )
        );
        // A short unreadable error is shown whole.
        let error = read_result(b"oops", packed(0, 4, true), 1 << 20)
            .unwrap()
            .unwrap_err();
        assert_eq!(error.message, "oops");
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(49_995_904), "49,995,904");
    }
}
