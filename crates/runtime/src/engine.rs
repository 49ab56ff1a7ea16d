//! The one wasmtime `Engine` of a process: Cranelift, fuel metering (the
//! operator may turn it off), the deadline kept by fuel when it is on (a call
//! yields every [`DEADLINE_CHECK_FUEL`] units and the host reads the clock)
//! and by epoch interruption, driven by a ticker thread, when it is off, a
//! pooling instance allocator with copy-on-write memory images whose slots
//! keep a dropped instance's written pages resident, a bounded wasm stack, and only the wasm
//! proposals the plugin uses (a bundle that needs another is refused when it
//! is compiled at admission).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use wasmtime::{
    Config, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig, ProfilingStrategy,
    Strategy,
};

/// How often the epoch advances when calls are not metered; their deadlines
/// are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// Fuel a metered call burns between two looks at the clock: about 0.15 ms
/// of QuickJS work (11–15 M fuel a millisecond). While fuel is on, every
/// instruction is already counted, so the deadline is kept by fuel rather
/// than by epoch checks compiled into the code as well (those cost 8–15 %
/// of guest speed, BENCHMARKS.md): the call runs on wasmtime's async path,
/// yields each time it has burnt this much, and the host checks the clock
/// there (`plugin::finish`). A call past its deadline is stopped within this
/// much work of it, or at its next entry into the host (a store call hook).
pub const DEADLINE_CHECK_FUEL: u64 = 2_000_000;

/// How much of a dropped instance's linear memory its pool slot keeps
/// resident. The pages the instance wrote, up to this much (found with
/// Linux's `PAGEMAP_SCAN` where the kernel has it, 6.7 and later), are copied
/// back from the plugin's image instead of being unmapped, so the next
/// instance in that slot does not fault them in again (each fault is about
/// 1.4 µs on a virtual machine, and a connector's readying writes well over
/// a hundred pages). A connector ready to call went from 229 to 48 µs, and
/// made, readied and dropped from 261 to 71 µs (`sandpipe-bench ready`). The
/// price: an unused slot holds up to this much resident, for at most the
/// pool's 100 warm unused slots.
pub const KEEP_RESIDENT: usize = 1 << 20;

/// How much of a dropped instance's tables its pool slot keeps resident,
/// cleared in place rather than unmapped. The plugin's one table (746
/// function references, about 6 KiB) is written at every instantiation, and
/// faulting its pages in again was a fifth of readying a connector: ready
/// 48 → 40 µs (`sandpipe-bench ready`).
pub const TABLE_KEEP_RESIDENT: usize = 16 << 10;

/// Wasm stack per call (design.md: 512 KiB).
pub const MAX_WASM_STACK: usize = 512 * 1024;

/// The stack a metered call runs on (wasmtime's async path runs it on a
/// stack of its own): the guest's [`MAX_WASM_STACK`] plus room for the host
/// functions it calls, which run there too. Address space, reserved once per
/// pool slot; only the pages a call touches become resident.
const ASYNC_STACK: usize = MAX_WASM_STACK + 4 * 1024 * 1024;

/// Engine-wide settings: the ceilings every per-connector limit must fit under.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Connector instances that can be alive at once (each is a plugin and a bundle instance).
    pub max_instances: u32,
    /// Largest linear memory any connector may be given.
    pub max_memory: usize,
    /// Whether calls are metered with fuel as well as bounded by the deadline.
    /// Fuel counts a call's work deterministically (the same event costs the
    /// same fuel on any machine, under any load) and costs 10–15 % of the
    /// speed of guest code; without it, a call is bounded by its wall-clock
    /// deadline (kept by epochs), its memory cap and its stack, and
    /// `Limits::fuel` is not used.
    pub fuel: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            max_instances: 1_000,
            max_memory: 256 << 20,
            fuel: true,
        }
    }
}

/// A wasmtime engine plus, when calls are not metered, the thread that
/// advances its epoch.
pub struct Engine {
    engine: wasmtime::Engine,
    options: EngineOptions,
    stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

impl Engine {
    /// Builds the engine, and starts its epoch ticker when calls are not metered.
    pub fn new(options: EngineOptions) -> wasmtime::Result<Engine> {
        let mut config = Config::new();
        config
            .strategy(Strategy::Cranelift)
            .cranelift_opt_level(OptLevel::Speed)
            .consume_fuel(options.fuel)
            .epoch_interruption(!options.fuel)
            .max_wasm_stack(MAX_WASM_STACK)
            .async_stack_size(ASYNC_STACK)
            // A trap's message is its cause, not the plugin's wasm frames
            // (QuickJS internals, of no use to a connector's author).
            .wasm_backtrace_max_frames(None)
            .memory_init_cow(true)
            // Proposals wasmtime 48 enables by default that neither the plugin
            // nor `sandpipe build` uses: each is compiler and runtime surface a
            // hostile bundle could reach (GC heaps, typed function references,
            // exception handling, shared memories, 64-bit memories and tables).
            .wasm_gc(false)
            .wasm_function_references(false)
            .wasm_exceptions(false)
            .wasm_threads(false)
            .shared_memory(false)
            .wasm_memory64(false)
            .wasm_stack_switching(false)
            .wasm_component_model(false);
        // Left on: the plugin scans JSON text with wasm SIMD (`guest-sdk/src/json.rs`).
        // For profiling only: `SANDPIPE_PERF_MAP=1` names compiled wasm functions
        // for `perf` (/tmp/perf-PID.map); see BENCHMARKS.md.
        if std::env::var_os("SANDPIPE_PERF_MAP").is_some_and(|v| v == "1") {
            config.profiler(ProfilingStrategy::PerfMap);
        }
        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(options.max_instances * 2)
            .total_memories(options.max_instances)
            .total_tables(options.max_instances * 2)
            .max_memory_size(options.max_memory)
            // A metered store keeps the stack of its last call (wasmtime's async path).
            .total_stacks(options.max_instances)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(TABLE_KEEP_RESIDENT)
            .pagemap_scan(wasmtime::Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = wasmtime::Engine::new(&config)?;

        let stop = Arc::new(AtomicBool::new(false));
        let ticker = match options.fuel {
            true => None,
            false => {
                let (engine, stop) = (engine.clone(), stop.clone());
                let ticker = std::thread::Builder::new()
                    .name("sandpipe-epoch".into())
                    .spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            std::thread::sleep(EPOCH_TICK);
                            engine.increment_epoch();
                        }
                    })?;
                Some(ticker)
            }
        };
        Ok(Engine {
            engine,
            options,
            stop,
            ticker,
        })
    }

    /// The wasmtime engine.
    pub fn wasmtime(&self) -> &wasmtime::Engine {
        &self.engine
    }

    /// The settings it was built with.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Epoch ticks that cover `deadline` (at least one).
    pub fn ticks(deadline: Duration) -> u64 {
        (deadline.as_micros() / EPOCH_TICK.as_micros()).max(1) as u64
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An engine with one instance slot, so every instance takes the same one.
    fn one_slot() -> Engine {
        Engine::new(EngineOptions {
            max_instances: 1,
            ..Default::default()
        })
        .unwrap()
    }

    /// A slot keeps what a dropped instance wrote resident ([`KEEP_RESIDENT`]),
    /// and the next instance in it must still start from the module's image:
    /// never a byte the last one wrote, in its image's pages, in pages the
    /// image leaves zero, or past what the slot keeps resident.
    #[test]
    fn an_instance_in_a_reused_slot_sees_the_image_not_the_last_instance() {
        let engine = one_slot();
        let pages = KEEP_RESIDENT / 65536 + 2;
        let module = wasmtime::Module::new(
            engine.wasmtime(),
            format!(
                r#"(module (memory (export "memory") {pages}) (data (i32.const 4096) "image"))"#
            ),
        )
        .unwrap();
        let written = [4096, 4100, 100_000, KEEP_RESIDENT - 1, KEEP_RESIDENT + 4096];
        for round in 0..3 {
            let mut store = wasmtime::Store::new(engine.wasmtime(), ());
            let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
            let memory = instance.get_memory(&mut store, "memory").unwrap();
            let data = memory.data_mut(&mut store);
            assert_eq!(&data[4096..4101], b"image", "round {round}");
            for &at in &written[2..] {
                assert_eq!(data[at], 0, "round {round}, byte {at}");
            }
            for &at in &written {
                data[at] = 0xA5;
            }
        }
    }

    /// The same for tables ([`TABLE_KEEP_RESIDENT`]): an element the last
    /// instance set, in the pages the slot keeps or past them, is null again
    /// for the next one, and what the module's segment put there is back.
    #[test]
    fn an_instance_in_a_reused_slot_sees_its_own_table_not_the_last_instance() {
        let engine = one_slot();
        let elements = TABLE_KEEP_RESIDENT / 8 + 1024;
        let module = wasmtime::Module::new(
            engine.wasmtime(),
            format!(
                r#"(module (table (export "table") {elements} funcref) (func $f (export "f")) (elem (i32.const 0) $f))"#
            ),
        )
        .unwrap();
        let set = [1, 100, TABLE_KEEP_RESIDENT / 8 - 1, elements - 1];
        for round in 0..3 {
            let mut store = wasmtime::Store::new(engine.wasmtime(), ());
            let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
            let table = instance.get_table(&mut store, "table").unwrap();
            let f = instance.get_func(&mut store, "f").unwrap();
            let at = |store: &mut wasmtime::Store<()>, i: usize| {
                table
                    .get(&mut *store, i as u64)
                    .unwrap()
                    .unwrap_func()
                    .copied()
            };
            assert!(
                at(&mut store, 0).is_some(),
                "round {round}: the segment's element"
            );
            for &i in &set {
                assert!(at(&mut store, i).is_none(), "round {round}, element {i}");
                table
                    .set(&mut store, i as u64, wasmtime::Ref::Func(Some(f)))
                    .unwrap();
            }
        }
    }
}
