//! The host functions' pointer and length handling, driven by a fuzzed call
//! sequence: a generated guest module calls `log`, `request` and `response`
//! with arbitrary arguments over a memory seeded with arbitrary bytes.
//! Property: every call returns or traps; the host never panics, and an
//! out-of-range pointer is a trap, not a read of anything outside guest memory.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sandpipe_abi::export;
use sandpipe_fuzz::{HostCall, emit_host_calls, import_host_functions};
use sandpipe_runtime::Limits;
use sandpipe_runtime::host::{StoreData, linker};
use sandpipe_runtime::services::{ConnectorServices, ServiceConfig};
use std::sync::{Arc, OnceLock};
use wasm_encoder::{
    CodeSection, ConstExpr, DataSection, ExportKind, ExportSection, Function, FunctionSection,
    ImportSection, Instruction, MemorySection, MemoryType, Module, TypeSection, ValType,
};
use wasmtime::{Config, Engine, Linker, Store};

#[derive(Arbitrary, Debug)]
struct Program {
    pages: u8,
    /// Written at address 0: request bodies (JSON or not) and log text.
    data: Vec<u8>,
    calls: Vec<HostCall>,
}

fn engine() -> &'static (Engine, Linker<StoreData>) {
    static ENGINE: OnceLock<(Engine, Linker<StoreData>)> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config.consume_fuel(true);
        let engine = Engine::new(&config).unwrap();
        let linker = linker(&engine).unwrap();
        (engine, linker)
    })
}

/// A module exporting `memory` and `run`, whose body is the call sequence.
fn module(program: &Program) -> Vec<u8> {
    let mut types = TypeSection::new();
    let mut imports = ImportSection::new();
    import_host_functions(&mut types, &mut imports);
    types.ty().function([], []); // 3: run
    let mut functions = FunctionSection::new();
    functions.function(3);
    let pages = u64::from(program.pages % 4) + 1;
    let mut memories = MemorySection::new();
    memories.memory(MemoryType {
        minimum: pages,
        maximum: Some(pages),
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    let mut exports = ExportSection::new();
    exports.export(export::MEMORY, ExportKind::Memory, 0);
    exports.export("run", ExportKind::Func, 3);
    let mut body = Function::new([(1, ValType::I32)]); // local 0: request's answer length
    let calls = &program.calls[..program.calls.len().min(64)];
    emit_host_calls(&mut body, calls, 0);
    body.instruction(&Instruction::End);
    let mut code = CodeSection::new();
    code.function(&body);
    let mut data = DataSection::new();
    let kept = program.data.len().min(pages as usize * 65536);
    data.active(
        0,
        &ConstExpr::i32_const(0),
        program.data[..kept].iter().copied(),
    );
    let mut module = Module::new();
    module
        .section(&types)
        .section(&imports)
        .section(&functions)
        .section(&memories)
        .section(&exports)
        .section(&code)
        .section(&data);
    module.finish()
}

fuzz_target!(|program: Program| {
    let (engine, linker) = engine();
    let wasm = module(&program);
    let module = wasmtime::Module::new(engine, &wasm).expect("the generated module is valid");
    let limits = Limits::default();
    let services = Arc::new(ConnectorServices::new(ServiceConfig::default()));
    let mut store = Store::new(engine, StoreData::new(&limits, services));
    store.set_fuel(10_000_000).unwrap();
    let instance = linker
        .instantiate(&mut store, &module)
        .expect("instantiates");
    let run = instance
        .get_typed_func::<(), ()>(&mut store, "run")
        .unwrap();
    // Ok or a trap: both are fine; a panic is the bug.
    let _ = run.call(&mut store, ());
});
