//! The guest plugin and the one copy of the code that crosses its boundary.
//!
//! [`Plugin`] is sandpipe's pre-initialised Javy plugin (embedded in the host;
//! users never build it), compiled once per process and pre-linked against the
//! host functions. [`Guest`] is one instance that exports the guest ABI in its
//! own store: the plugin (a script bundle is then linked into it), or a
//! standalone bundle, which exports the same ABI itself. Every read and write
//! of guest memory the host makes happens here, for both: arming fuel and
//! deadline, reserving and writing the input, calling an export (metered
//! calls on wasmtime's async path, driven here, [`finish`]), and reading the
//! packed result it returns. This is the file to audit for guest pointers.
//!
//! Invariant: nothing the guest returns is trusted. A packed result's pointer
//! and length are bounds-checked ([`guest_bytes`]) and held to the output limit
//! *before* anything is copied; an input buffer the guest reserved is written
//! through wasmtime's checked [`Memory::write`].

use crate::bundle::Bundle;
use crate::engine::{DEADLINE_CHECK_FUEL, Engine};
use crate::error::{CallError, JsError, RuntimeError};
use crate::host::{
    self, ConsoleLine, DeadlineExceeded, GuestFault, MemoryLimitReached, StoreData, guest_bytes,
};
use crate::limits::Limits;
use crate::module_cache::ModuleCache;
use crate::services::ConnectorServices;
use sandpipe_abi::{BUNDLE_ENTRY, Call, Packed, export, pass};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;
use wasmtime::{
    CallHook, Extern, InstancePre, Linker, Memory, Store, Trap, TypedFunc, WasmParams, WasmResults,
};

/// The committed, pre-initialised plugin (`guest-sdk/build.sh` writes it).
pub const PLUGIN_WASM: &[u8] = include_bytes!("../../../guest-sdk/sandpipe_plugin.wasm");

/// sha256 (hex) of [`PLUGIN_WASM`].
pub fn sha256() -> String {
    hex::encode(Sha256::digest(PLUGIN_WASM))
}

/// The plugin, compiled and linked against the host functions: every
/// [`Guest`] of the process is instantiated from it.
pub struct Plugin {
    engine: Engine,
    pre: InstancePre<StoreData>,
    /// WASI and the host functions: what the plugin and standalone bundles link against.
    linker: Linker<StoreData>,
}

impl Plugin {
    /// Compiles (or loads from `cache`) the embedded plugin for `engine`.
    pub(crate) fn new(engine: Engine, cache: &ModuleCache) -> Result<Plugin, RuntimeError> {
        let module = cache
            .get_or_compile(engine.wasmtime(), PLUGIN_WASM)
            .map_err(RuntimeError::Plugin)?;
        let linker = host::linker(engine.wasmtime()).map_err(RuntimeError::Plugin)?;
        let pre = linker
            .instantiate_pre(&module)
            .map_err(RuntimeError::Plugin)?;
        Ok(Plugin {
            engine,
            pre,
            linker,
        })
    }

    /// A standalone bundle's module pre-linked against the same host
    /// functions and WASI context the plugin gets (fails on an import of
    /// another type).
    pub(crate) fn link_standalone(
        &self,
        module: &wasmtime::Module,
    ) -> wasmtime::Result<InstancePre<StoreData>> {
        self.linker.instantiate_pre(module)
    }

    /// The engine the plugin was compiled for.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A fresh instance in its own store, under `limits`, answering service
    /// requests from `services`.
    pub(crate) fn instantiate(
        &self,
        limits: &Limits,
        services: Arc<ConnectorServices>,
    ) -> Result<Guest, CallError> {
        Guest::instantiate_in(&self.engine, &self.pre, limits, services, 2, true)
    }

    /// [`Plugin::instantiate`] for the shared-instance level: a store that
    /// may hold `bundles` bundles linked into the plugin.
    pub(crate) fn instantiate_shared(
        &self,
        limits: &Limits,
        services: Arc<ConnectorServices>,
        bundles: usize,
    ) -> Result<Guest, CallError> {
        Guest::instantiate_in(&self.engine, &self.pre, limits, services, bundles + 1, true)
    }
}

/// One instance that exports the guest ABI (the plugin, or a standalone
/// bundle), in its own store.
pub(crate) struct Guest {
    store: Store<StoreData>,
    instance: wasmtime::Instance,
    memory: Memory,
    reserve: TypedFunc<u32, u32>,
    /// `sandpipe_call`: one connector function call.
    call: TypedFunc<(u32, u32), i64>,
    /// `sandpipe_pass` (the shared-instance level), once looked up.
    pass_export: Option<TypedFunc<(u32, u32, u32, u32), i64>>,
    /// The input buffer the plugin last reserved and its size, reused while
    /// an input fits: the plugin keeps it in place until its next `RESERVE`
    /// (forgotten when a bundle's entry runs, which may reserve it itself).
    /// Never set for a standalone bundle, whose own `RESERVE` is asked for
    /// every input: the ABI does not promise that it keeps its buffer.
    input: Option<(u32, u32)>,
    /// Whether `input` may be kept: only the plugin's `RESERVE` keeps its buffer.
    keeps_input: bool,
    /// Whether the engine meters fuel (and keeps the deadline by it).
    metered: bool,
}

impl Guest {
    /// A fresh instance of a standalone bundle's `pre` in its own store, under
    /// `limits`, answering service requests from `services` (the plugin's
    /// come from [`Plugin::instantiate`]). Instantiation runs under the call
    /// limits too (a standalone bundle's active segments are copied then).
    pub(crate) fn instantiate_standalone(
        engine: &Engine,
        pre: &InstancePre<StoreData>,
        limits: &Limits,
        services: Arc<ConnectorServices>,
    ) -> Result<Guest, CallError> {
        Guest::instantiate_in(engine, pre, limits, services, 2, false)
    }

    /// A fresh instance of `pre` (the plugin, or a standalone bundle) in a
    /// store that may hold `instances` instances; `keeps_input` when `pre` is
    /// the plugin, whose reserved buffer stays put.
    fn instantiate_in(
        engine: &Engine,
        pre: &InstancePre<StoreData>,
        limits: &Limits,
        services: Arc<ConnectorServices>,
        instances: usize,
        keeps_input: bool,
    ) -> Result<Guest, CallError> {
        let mut data = StoreData::new(limits, services);
        data.limits.instances = instances;
        let mut store = Store::new(engine.wasmtime(), data);
        store.limiter(|data| &mut data.limits);
        let metered = engine.options().fuel;
        if metered {
            store
                .fuel_async_yield_interval(Some(DEADLINE_CHECK_FUEL))
                .expect("fuel metering is enabled on the engine");
            // A guest that spends its time in host functions (WASI's among
            // them) burns little fuel, so fuel's yields alone would seldom
            // look at the clock: every entry into the host does.
            store.call_hook(|store, hook| match hook {
                CallHook::CallingHost if Instant::now() > store.data().deadline => {
                    Err(wasmtime::Error::new(DeadlineExceeded))
                }
                _ => Ok(()),
            });
        }
        arm(&mut store, limits, metered);
        let trapped = |e: wasmtime::Error| CallError::Trapped(trap_reason(&e, limits));
        let instance = match metered {
            true => {
                let deadline = store.data().deadline;
                finish(deadline, pre.instantiate_async(&mut store))
            }
            false => pre.instantiate(&mut store),
        }
        .map_err(trapped)?;
        let memory = instance
            .get_memory(&mut store, export::MEMORY)
            .ok_or_else(|| CallError::Trapped("guest exports no memory".into()))?;
        let reserve = instance
            .get_typed_func(&mut store, export::RESERVE)
            .map_err(trapped)?;
        let call = instance
            .get_typed_func(&mut store, export::CALL)
            .map_err(trapped)?;
        Ok(Guest {
            store,
            instance,
            memory,
            reserve,
            call,
            pass_export: None,
            input: None,
            keeps_input,
            metered,
        })
    }

    /// Links `bundle` against this instance (its imports are plugin exports,
    /// by name: admission allowed nothing else) and runs its entry, which
    /// loads the connector's bytecode and runs its top level. Returns the
    /// entry's result: the JSON list of special functions the connector defines.
    pub(crate) fn link(&mut self, bundle: &Bundle, limits: &Limits) -> Result<Vec<u8>, CallError> {
        let mut imports: Vec<Extern> = Vec::new();
        for import in bundle.module.imports() {
            let found = self
                .instance
                .get_export(&mut self.store, import.name())
                .ok_or_else(|| {
                    CallError::Trapped(format!(
                        "plugin has no export `{}` for the bundle",
                        import.name()
                    ))
                })?;
            imports.push(found);
        }
        let linked = match self.metered {
            true => {
                let deadline = self.store.data().deadline;
                let linking =
                    wasmtime::Instance::new_async(&mut self.store, &bundle.module, &imports);
                finish(deadline, linking)
            }
            false => wasmtime::Instance::new(&mut self.store, &bundle.module, &imports),
        }
        .map_err(|e| CallError::Trapped(format!("bundle does not link against the plugin: {e}")))?;
        self.start(linked, limits)
    }

    /// Runs a standalone bundle's own entry: it returns the JSON list of the
    /// special functions the connector defines, as a script bundle's does.
    pub(crate) fn start_standalone(&mut self, limits: &Limits) -> Result<Vec<u8>, CallError> {
        self.start(self.instance, limits)
    }

    /// Calls `instance`'s [`BUNDLE_ENTRY`] under the call limits; the packed result.
    fn start(
        &mut self,
        instance: wasmtime::Instance,
        limits: &Limits,
    ) -> Result<Vec<u8>, CallError> {
        let entry = instance
            .get_typed_func::<(), i64>(&mut self.store, BUNDLE_ENTRY)
            .map_err(|e| CallError::Trapped(format!("bundle entry `{BUNDLE_ENTRY}`: {e}")))?;
        arm(&mut self.store, limits, self.metered);
        self.input = None;
        let raw = invoke(&mut self.store, self.metered, &entry, ())
            .map_err(|e| CallError::Trapped(trap_reason(&e, limits)))?;
        self.read(raw, limits.max_output)?.map_err(CallError::Threw)
    }

    /// One call of a connector function: JSON in, JSON out (`null` for "nothing").
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
        let trapped = |e: wasmtime::Error| CallError::Trapped(trap_reason(&e, limits));
        arm(&mut self.store, limits, self.metered);
        let len = self.write_input(input, limits)?;
        let raw = invoke(
            &mut self.store,
            self.metered,
            &self.call,
            (call as u32, len),
        )
        .map_err(trapped)?;
        self.read(raw, limits.max_output)?.map_err(CallError::Threw)
    }

    /// Makes `world` the one later loads and calls run in (the
    /// shared-instance level; made when it is the next one).
    pub(crate) fn enter(&mut self, world: usize, limits: &Limits) -> Result<(), CallError> {
        let enter = self.export::<u32, i64>(export::WORLD, limits)?;
        arm(&mut self.store, limits, self.metered);
        let raw = invoke(&mut self.store, self.metered, &enter, world as u32)
            .map_err(|e| CallError::Trapped(trap_reason(&e, limits)))?;
        self.read(raw, limits.max_output)?
            .map(drop)
            .map_err(CallError::Threw)
    }

    /// One connector's `processEvent` in the current world at the
    /// shared-instance level: on `input`, or on the event held from the last
    /// pass (see `sandpipe_abi::export::PASS`); `next` is the world the result
    /// is copied into when it is plain data whose text would take at most
    /// `budget` bytes.
    pub(crate) fn pass(
        &mut self,
        input: PassInput<'_>,
        next: Option<usize>,
        budget: usize,
        limits: &Limits,
    ) -> Result<PassOutput, CallError> {
        let (text, accept) = match input {
            PassInput::Text(text) => (text, false),
            PassInput::Held { accept } => (&[][..], accept),
        };
        if text.len() > limits.max_input {
            return Err(CallError::InputTooLarge {
                size: text.len(),
                limit: limits.max_input,
            });
        }
        if self.pass_export.is_none() {
            self.pass_export = Some(self.export(export::PASS, limits)?);
        }
        let call = self.pass_export.clone().expect("looked up above");
        arm(&mut self.store, limits, self.metered);
        let len = self.write_input(text, limits)?;
        let next = next.map_or(pass::NO_WORLD, |world| world as u32);
        let budget = u32::try_from(budget).unwrap_or(u32::MAX);
        let raw = invoke(
            &mut self.store,
            self.metered,
            &call,
            (len, u32::from(accept), next, budget),
        )
        .map_err(|e| CallError::Trapped(trap_reason(&e, limits)))?;
        let mut output = self
            .read_tagged(raw, limits.max_output)?
            .map_err(CallError::Threw)?;
        match output.first() {
            Some(&pass::TEXT) => {
                output.remove(0);
                Ok(PassOutput::Text(output))
            }
            Some(&pass::HELD) => {
                output.remove(0);
                Ok(PassOutput::Held { team_id: output })
            }
            _ => Err(CallError::InvalidResult(
                "the plugin's pass returned no tag".into(),
            )),
        }
    }

    /// The event held at the shared-instance level, as JSON text.
    pub(crate) fn held(&mut self, accept: bool, limits: &Limits) -> Result<Vec<u8>, CallError> {
        let held = self.export::<u32, i64>(export::HELD, limits)?;
        arm(&mut self.store, limits, self.metered);
        let raw = invoke(&mut self.store, self.metered, &held, u32::from(accept))
            .map_err(|e| CallError::Trapped(trap_reason(&e, limits)))?;
        self.read(raw, limits.max_output)?.map_err(CallError::Threw)
    }

    /// Answers later host calls with `services`, under `limits`' log bounds
    /// (the shared-instance level switches connector between calls).
    pub(crate) fn serve(&mut self, services: &Arc<ConnectorServices>, limits: &Limits) {
        self.store.data_mut().serve(services, limits);
    }

    fn export<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
        &mut self,
        name: &str,
        limits: &Limits,
    ) -> Result<TypedFunc<P, R>, CallError> {
        self.instance
            .get_typed_func::<P, R>(&mut self.store, name)
            .map_err(|e| CallError::Trapped(trap_reason(&e, limits)))
    }

    /// Runs the plugin's compile export on `input` (`file\nsource`): script
    /// bytecode, or the error QuickJS's compiler threw.
    pub(crate) fn compile(
        &mut self,
        input: &[u8],
        limits: &Limits,
    ) -> Result<Result<Vec<u8>, JsError>, CallError> {
        let trapped = |e: wasmtime::Error| CallError::Trapped(trap_reason(&e, limits));
        let compile = self
            .instance
            .get_typed_func::<u32, i64>(&mut self.store, export::COMPILE)
            .map_err(trapped)?;
        arm(&mut self.store, limits, self.metered);
        let len = self.write_input(input, limits)?;
        let raw = invoke(&mut self.store, self.metered, &compile, len).map_err(trapped)?;
        self.read(raw, limits.max_output)
    }

    /// Writes `input` into a buffer the guest reserved for it (the last one
    /// while it fits, else a new one); its length. Where the buffer is, is
    /// the guest's word: the write is checked against its memory, and a guest
    /// that moved the buffer outside `RESERVE` reads what it left there.
    fn write_input(&mut self, input: &[u8], limits: &Limits) -> Result<u32, CallError> {
        let len = u32::try_from(input.len()).map_err(|_| CallError::InputTooLarge {
            size: input.len(),
            limit: u32::MAX as usize,
        })?;
        let ptr = match self.input {
            Some((ptr, size)) if len <= size => ptr,
            _ => {
                let ptr = invoke(&mut self.store, self.metered, &self.reserve, len)
                    .map_err(|e| CallError::Trapped(trap_reason(&e, limits)))?;
                self.input = self.keeps_input.then_some((ptr, len));
                ptr
            }
        };
        self.memory
            .write(&mut self.store, ptr as usize, input)
            .map_err(|_| {
                CallError::Trapped("plugin reserved an input buffer outside its memory".into())
            })?;
        Ok(len)
    }

    /// [`Guest::read`] of a result that starts with a tag byte, which does
    /// not count toward `max`.
    fn read_tagged(&self, raw: i64, max: usize) -> Result<Result<Vec<u8>, JsError>, CallError> {
        if Packed::decode(raw).is_error {
            return self.read(raw, max);
        }
        self.read(raw, max.saturating_add(1))
            .map_err(|error| match error {
                CallError::OutputTooLarge { size, .. } => CallError::OutputTooLarge {
                    size: size - 1,
                    limit: max,
                },
                error => error,
            })
    }

    /// The bytes the packed result `raw` points at (see [`read_result`]).
    fn read(&self, raw: i64, max: usize) -> Result<Result<Vec<u8>, JsError>, CallError> {
        read_result(self.memory.data(&self.store), raw, max)
    }

    /// Fuel used since the last call was armed (0 when the engine meters none).
    pub(crate) fn fuel_used(&self, limits: &Limits) -> u64 {
        match self.metered {
            true => limits
                .fuel
                .saturating_sub(self.store.get_fuel().unwrap_or(0)),
            false => 0,
        }
    }

    /// Takes the console lines of the last call (and a count of lines dropped over the limit).
    pub(crate) fn take_console(&mut self) -> (Vec<ConsoleLine>, usize) {
        let data = self.store.data_mut();
        data.collect_stdio();
        data.line_bytes = 0;
        (
            std::mem::take(&mut data.lines),
            std::mem::take(&mut data.dropped_lines),
        )
    }
}

/// What a shared-instance pass runs `processEvent` on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PassInput<'a> {
    /// The event as JSON text.
    Text(&'a [u8]),
    /// The event held from the last pass: its result when `accept`, else the
    /// event before it.
    Held { accept: bool },
}

/// What a shared-instance pass gave.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PassOutput {
    /// The result as JSON text (`null` when the event was dropped).
    Text(Vec<u8>),
    /// The result is held, copied into the next world; its `team_id` as JSON
    /// text (empty when it has none).
    Held { team_id: Vec<u8> },
}

/// Resets the deadline, and fuel (when `metered`) or the epoch deadline
/// (when not), before a call.
fn arm(store: &mut Store<StoreData>, limits: &Limits, metered: bool) {
    match metered {
        true => store
            .set_fuel(limits.fuel)
            .expect("fuel metering is enabled on the engine"),
        false => {
            store.set_epoch_deadline(Engine::ticks(limits.deadline));
            store.epoch_deadline_trap();
        }
    }
    store.data_mut().deadline = Instant::now() + limits.deadline;
}

/// Calls `func` in `store`: metered, on wasmtime's async path, so that the
/// deadline is checked each time fuel makes the guest yield ([`finish`]);
/// otherwise directly, the epoch deadline trapping it.
fn invoke<P, R>(
    store: &mut Store<StoreData>,
    metered: bool,
    func: &TypedFunc<P, R>,
    params: P,
) -> wasmtime::Result<R>
where
    P: WasmParams + Sync,
    R: WasmResults + Sync,
{
    match metered {
        true => {
            let deadline = store.data().deadline;
            finish(deadline, func.call_async(store, params))
        }
        false => func.call(store, params),
    }
}

/// Drives a metered guest call (or instantiation) to its end on this thread.
/// The guest yields every [`DEADLINE_CHECK_FUEL`] units of fuel, and nothing
/// else makes it wait (every host function is synchronous), so each yield is
/// a look at the clock: a call past `deadline` is dropped, which unwinds the
/// guest as a trap does, and is reported as the interrupt an epoch deadline
/// raises (the instance is discarded, as after any trap). A call that waits
/// for anything else ([`Woken`]) is dropped at once, as [`WaitedOnHost`],
/// rather than polled in a spin until its deadline.
fn finish<T>(
    deadline: Instant,
    call: impl Future<Output = wasmtime::Result<T>>,
) -> wasmtime::Result<T> {
    let mut call = pin!(call);
    let woken = Arc::new(Woken::default());
    let waker = Waker::from(woken.clone());
    let mut context = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(result) = call.as_mut().poll(&mut context) {
            return result;
        }
        if !woken.0.swap(false, Ordering::Relaxed) {
            return Err(wasmtime::Error::new(WaitedOnHost));
        }
        if Instant::now() > deadline {
            return Err(Trap::Interrupt.into());
        }
    }
}

/// Whether a guest call's task was woken: a fuel yield wakes it before it
/// answers `Pending`, ready to go on at once, so a `Pending` with no wake is
/// the call waiting for something.
#[derive(Default)]
struct Woken(AtomicBool);

impl Wake for Woken {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A metered guest call waited for something other than a fuel yield, which
/// no host function makes it do (each is synchronous): it is stopped.
#[derive(Debug, thiserror::Error)]
#[error("the call waited on the host, which no host function does")]
struct WaitedOnHost;

/// Describes a wasmtime error from a guest call in one line, by its kind.
fn trap_reason(error: &wasmtime::Error, limits: &Limits) -> String {
    let deadline = || format!("exceeded its {} ms deadline", limits.deadline.as_millis());
    if let Some(trap) = error.downcast_ref::<Trap>() {
        return match trap {
            Trap::OutOfFuel => format!("ran out of fuel ({} units per call)", limits.fuel),
            Trap::Interrupt => deadline(),
            Trap::StackOverflow => "overflowed the wasm stack".into(),
            other => format!("trapped: {other}"),
        };
    }
    if error.downcast_ref::<MemoryLimitReached>().is_some() {
        return format!("reached its memory limit of {} MiB", limits.memory >> 20);
    }
    if error.downcast_ref::<DeadlineExceeded>().is_some() {
        return deadline();
    }
    if let Some(fault) = error.downcast_ref::<GuestFault>() {
        return format!("trapped: {fault}");
    }
    let text = format!("{error:#}");
    format!("trapped: {}", text.lines().next().unwrap_or("unknown trap"))
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
        retry: None,
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
#[cfg(test)]
mod tests {
    use super::*;

    /// A future that answers `Pending` `times` times, waking its task first
    /// when `wakes`, then `Ready(7)`.
    struct Yields {
        times: usize,
        wakes: bool,
    }

    impl Future for Yields {
        type Output = wasmtime::Result<u8>;

        fn poll(
            mut self: std::pin::Pin<&mut Self>,
            context: &mut Context<'_>,
        ) -> Poll<Self::Output> {
            if self.times == 0 {
                return Poll::Ready(Ok(7));
            }
            self.times -= 1;
            if self.wakes {
                context.waker().wake_by_ref();
            }
            Poll::Pending
        }
    }

    #[test]
    fn a_call_that_yields_for_fuel_is_driven_to_its_end_and_one_that_waits_is_stopped() {
        let later = Instant::now() + std::time::Duration::from_secs(60);
        let yields = Yields {
            times: 3,
            wakes: true,
        };
        assert_eq!(finish(later, yields).unwrap(), 7);
        let waits = Yields {
            times: 1,
            wakes: false,
        };
        let error = finish(later, waits).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the call waited on the host, which no host function does"
        );
        assert!(error.downcast_ref::<WaitedOnHost>().is_some());
        // Past its deadline a yielding call is stopped as an epoch deadline stops it.
        let yields = Yields {
            times: 1,
            wakes: true,
        };
        let error = finish(Instant::now(), yields).unwrap_err();
        assert_eq!(error.downcast_ref::<Trap>(), Some(&Trap::Interrupt));
    }

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
                stack: "at f".into(),
                retry: None,
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
