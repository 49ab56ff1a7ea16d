//! The host side of the guest boundary: the state each store carries, the
//! functions the plugin imports (`sandpipe-abi::HOST_MODULE`), and bounded
//! access to guest memory.
//!
//! Invariant: no pointer or length from the guest is trusted. Every read goes
//! through [`guest_bytes`], which returns a trap error when out of range; no
//! host function can panic on guest input.

use crate::limits::Limits;
use crate::services::{ConnectorServices, MAX_REQUEST, encode_answer};
use rand::SeedableRng as _;
use sandpipe_abi::{HOST_MODULE, LogLevel, import};
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use wasmtime::{Caller, Engine, Extern, Linker, Memory, ResourceLimiter};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// Bytes of guest stdout/stderr kept per instance (the plugin writes there only when it aborts).
const STDIO_CAPACITY: usize = 64 * 1024;

/// The generator behind WASI `random_get`, where the guest's `crypto.randomUUID`
/// and `crypto.getRandomValues` draw their bytes: ChaCha12 (`StdRng`), seeded for
/// each store from rand's thread generator, which the OS (`getrandom`) seeds and
/// reseeds. Set explicitly rather than left to wasmtime-wasi's default, and
/// required to be a `CryptoRng` by type.
fn secure_random() -> impl rand::CryptoRng + Send + 'static {
    rand::rngs::StdRng::from_rng(&mut rand::rng())
}

/// Most bytes one WASI `random_get` may ask for: Web Crypto's quota, the most
/// `crypto.getRandomValues` fills at once (wasmtime-wasi's default is 64 MiB,
/// which a guest could ask the host to generate again and again for a few
/// units of fuel each). A larger request traps.
const MAX_RANDOM_BYTES: u64 = 64 * 1024;

/// A console line as the guest produced it, before it is attributed to a connector.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleLine {
    pub level: LogLevel,
    pub message: String,
    pub time: SystemTime,
}

/// Everything one store owns: WASI state without any capability, memory
/// limits, the current call's deadline and the console lines it produced.
pub struct StoreData {
    wasi: WasiP1Ctx,
    pub(crate) limits: StoreCap,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    stdio_seen: usize,
    pub(crate) deadline: Instant,
    max_lines: usize,
    max_line: usize,
    pub(crate) lines: Vec<ConsoleLine>,
    pub(crate) dropped_lines: usize,
    /// Bytes of `lines`' messages (bounded by [`crate::limits::LOG_BYTES_PER_CALL`]).
    pub(crate) line_bytes: usize,
    services: Arc<ConnectorServices>,
    /// The answer to the last `request`, until `response` fetches it.
    response: Vec<u8>,
}

impl StoreData {
    /// Fresh state: no files, no environment, no arguments, no network, no
    /// inherited stdio; stdout and stderr captured in bounded buffers.
    pub fn new(limits: &Limits, services: Arc<ConnectorServices>) -> StoreData {
        let stdout = MemoryOutputPipe::new(STDIO_CAPACITY);
        let stderr = MemoryOutputPipe::new(STDIO_CAPACITY);
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .secure_random(secure_random())
            .max_random_size(MAX_RANDOM_BYTES)
            .allow_blocking_current_thread(true)
            .build_p1();
        StoreData {
            wasi,
            limits: StoreCap {
                memory: limits.memory,
                instances: 2,
            },
            stdout,
            stderr,
            stdio_seen: 0,
            deadline: Instant::now() + limits.deadline,
            max_lines: limits.max_log_lines,
            max_line: limits.max_log_line,
            lines: Vec::new(),
            line_bytes: 0,
            dropped_lines: 0,
            services,
            response: Vec::new(),
        }
    }

    /// Answers host calls from now on with `services`, with `limits`' log
    /// bounds (the memory cap stays the store's).
    pub(crate) fn serve(&mut self, services: &Arc<ConnectorServices>, limits: &Limits) {
        if !Arc::ptr_eq(&self.services, services) {
            self.services = services.clone();
        }
        self.max_lines = limits.max_log_lines;
        self.max_line = limits.max_log_line;
    }

    fn push_line(&mut self, level: LogLevel, message: &[u8]) {
        let kept = message.len().min(self.max_line);
        if self.lines.len() >= self.max_lines
            || self.line_bytes + kept > crate::limits::LOG_BYTES_PER_CALL
        {
            self.dropped_lines += 1;
            return;
        }
        self.line_bytes += kept;
        let mut text = String::from_utf8_lossy(&message[..kept]).into_owned();
        if kept < message.len() {
            text.push_str(" …[truncated]");
        }
        self.lines.push(ConsoleLine {
            level,
            message: text,
            time: SystemTime::now(),
        });
    }

    /// Moves anything new on the guest's stdout/stderr into console lines.
    pub(crate) fn collect_stdio(&mut self) {
        let out = self.stdout.contents();
        let err = self.stderr.contents();
        let total = out.len() + err.len();
        if total <= self.stdio_seen {
            return;
        }
        let mut all = out.to_vec();
        all.extend_from_slice(&err);
        let fresh = all[self.stdio_seen.min(all.len())..].to_vec();
        self.stdio_seen = total;
        for line in fresh.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            self.push_line(LogLevel::Error, line);
        }
    }
}

/// A host call found the call's deadline passed (the interrupt a fuel yield
/// or the epoch ticker would raise, raised at the host boundary instead).
#[derive(Debug, thiserror::Error)]
#[error("deadline exceeded during a host call")]
pub struct DeadlineExceeded;

/// A host function was called with arguments it refuses (a range outside the
/// guest's memory, a length over a bound, a response of the wrong size): the
/// call traps with this reason.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GuestFault(pub String);

fn fault(reason: String) -> wasmtime::Error {
    wasmtime::Error::new(GuestFault(reason))
}

/// The guest tried to grow its memory past the connector's limit.
#[derive(Debug, thiserror::Error)]
#[error("memory growth to {desired} bytes is over the {limit}-byte limit")]
pub struct MemoryLimitReached {
    pub desired: usize,
    pub limit: usize,
}

/// What a store may hold: the plugin's one memory (up to the connector's
/// limit) and the bundle instance linked against it. Growing past the limit
/// traps with [`MemoryLimitReached`] rather than failing softly, so a
/// connector that runs out of memory ends the call instead of limping on.
pub(crate) struct StoreCap {
    memory: usize,
    /// Instances the store may hold: the plugin and one bundle, or at the
    /// shared-instance level the plugin and a bundle per world.
    pub(crate) instances: usize,
}

impl ResourceLimiter for StoreCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let limit = maximum.map_or(self.memory, |max| max.min(self.memory));
        if desired > limit {
            return Err(wasmtime::Error::new(MemoryLimitReached { desired, limit }));
        }
        Ok(true)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        Err(error.context("the host could not grow the guest's memory"))
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        match maximum {
            Some(max) if desired > max => {
                wasmtime::bail!("table growth to {desired} elements is over its maximum of {max}")
            }
            _ => Ok(true),
        }
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        Err(error.context("the host could not grow a guest table"))
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        2
    }

    fn memories(&self) -> usize {
        1
    }
}

/// The bytes `[ptr, ptr + len)` of `memory`, or a trap error naming `what`.
pub fn guest_bytes<'a>(
    memory: &'a [u8],
    ptr: u32,
    len: u32,
    what: &str,
) -> wasmtime::Result<&'a [u8]> {
    let start = ptr as usize;
    start
        .checked_add(len as usize)
        .and_then(|end| memory.get(start..end))
        .ok_or_else(|| {
            fault(format!(
                "{what}: guest range {ptr}+{len} is outside its {}-byte memory",
                memory.len()
            ))
        })
}

fn caller_memory(caller: &mut Caller<'_, StoreData>) -> wasmtime::Result<Memory> {
    match caller.get_export(sandpipe_abi::export::MEMORY) {
        Some(Extern::Memory(memory)) => Ok(memory),
        _ => wasmtime::bail!("host call from an instance without an exported memory"),
    }
}

fn check_deadline(caller: &Caller<'_, StoreData>) -> wasmtime::Result<()> {
    if Instant::now() > caller.data().deadline {
        return Err(wasmtime::Error::new(DeadlineExceeded));
    }
    Ok(())
}

/// `log(level, ptr, len)`: one console line.
fn log(mut caller: Caller<'_, StoreData>, level: u32, ptr: u32, len: u32) -> wasmtime::Result<()> {
    check_deadline(&caller)?;
    let memory = caller_memory(&mut caller)?;
    let (data, store) = memory.data_and_store_mut(&mut caller);
    let bytes = guest_bytes(data, ptr, len, "console")?;
    store.push_line(LogLevel::from_u32(level), bytes);
    Ok(())
}

/// `request(service, ptr, len) -> len`: one JSON request to a host service.
fn request(
    mut caller: Caller<'_, StoreData>,
    service: u32,
    ptr: u32,
    len: u32,
) -> wasmtime::Result<u32> {
    check_deadline(&caller)?;
    if len as usize > MAX_REQUEST {
        return Err(fault(format!(
            "request: {len} bytes is over the {MAX_REQUEST}-byte limit"
        )));
    }
    let memory = caller_memory(&mut caller)?;
    let (data, store) = memory.data_and_store_mut(&mut caller);
    let bytes = guest_bytes(data, ptr, len, "request")?;
    let answer = store.services.answer(service, bytes, store.deadline);
    if let Some(reason) = answer.as_ref().err().filter(|e| e.is_refusal()) {
        // A refusal (policy, bound, malformed request) is logged for the
        // connector even when its code catches the error; a failed request
        // (the network) or an error about the value is the code's to report.
        store.push_line(LogLevel::Warn, format!("host refused: {reason}").as_bytes());
    }
    store.response = encode_answer(&answer);
    check_deadline(&caller)?;
    Ok(caller.data().response.len() as u32)
}

/// `response(ptr, len)`: copies the pending answer into guest memory.
fn response(mut caller: Caller<'_, StoreData>, ptr: u32, len: u32) -> wasmtime::Result<()> {
    check_deadline(&caller)?;
    let pending = std::mem::take(&mut caller.data_mut().response);
    if pending.len() != len as usize {
        return Err(fault(format!(
            "response: asked for {len} bytes, {} are pending",
            pending.len()
        )));
    }
    let memory = caller_memory(&mut caller)?;
    memory
        .write(&mut caller, ptr as usize, &pending)
        .map_err(|_| {
            fault(format!(
                "response: guest range {ptr}+{len} is outside its memory"
            ))
        })
}

/// The linker every plugin instance is made from: WASI preview 1 (without
/// any capability) and the host functions.
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<StoreData>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |data: &mut StoreData| &mut data.wasi)?;
    linker.func_wrap(HOST_MODULE, import::LOG, log)?;
    linker.func_wrap(HOST_MODULE, import::REQUEST, request)?;
    linker.func_wrap(HOST_MODULE, import::RESPONSE, response)?;
    Ok(linker)
}

#[cfg(test)]
mod tests {
    use super::guest_bytes;

    #[test]
    fn guest_ranges_are_bounds_checked() {
        let memory = [1u8, 2, 3, 4];
        assert_eq!(guest_bytes(&memory, 1, 2, "t").unwrap(), &[2, 3]);
        assert_eq!(guest_bytes(&memory, 4, 0, "t").unwrap(), &[] as &[u8]);
        for (ptr, len) in [(3, 2), (5, 0), (u32::MAX, 1), (1, u32::MAX)] {
            let err = guest_bytes(&memory, ptr, len, "t").unwrap_err().to_string();
            assert_eq!(
                err,
                format!("t: guest range {ptr}+{len} is outside its 4-byte memory")
            );
        }
    }
}
