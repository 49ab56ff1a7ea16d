//! A Rust connector's side of the boundary, fuzzed end to end: a generated
//! standalone module (what a `guest-rust` connector compiles to) is wrapped
//! with its manifest, admitted, made a connector and called through the typed
//! calls (`processEvent`, `composeWebhook`, `onEvent`) as a chain calls it.
//! Every call runs a fuzzed sequence of host calls (`log`, `request`,
//! `response` with arbitrary services, pointers and lengths) and returns a
//! fuzzed packed result; `sandpipe_reserve` and `sandpipe_start` answer fuzzed
//! pointers too (or, when asked, a valid hook list, so the calls are reached).
//!
//! Properties: admission admits it (it has the ABI and only allowed imports);
//! no call panics; every error is one line; after a trap the connector makes
//! a fresh instance for the next call.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use sandpipe_abi::{BUNDLE_ENTRY, Packed, export};
use sandpipe_fuzz::{HostCall, emit_host_calls, import_host_functions, runtime};
use sandpipe_runtime::{ConnectorOptions, MemoryLogs};
use std::sync::Arc;
use wasm_encoder::{
    CodeSection, ConstExpr, DataSection, ExportKind, ExportSection, Function, FunctionSection,
    ImportSection, Instruction, MemorySection, MemoryType, Module, TypeSection, ValType,
};

#[derive(Arbitrary, Debug)]
struct Answer {
    ptr: u32,
    len: u32,
    is_error: bool,
}

impl Answer {
    fn packed(&self) -> i64 {
        Packed {
            ptr: self.ptr,
            len: self.len,
            is_error: self.is_error,
        }
        .encode()
    }
}

#[derive(Arbitrary, Debug)]
struct Program {
    pages: u8,
    /// Written at address 0: request bodies (JSON or not), log text, results.
    data: Vec<u8>,
    /// What `sandpipe_reserve` answers (the host checks the buffer is in memory).
    reserve: u32,
    /// `sandpipe_start`'s answer; `None`: the valid list of every hook.
    start: Option<Answer>,
    /// Made by every `sandpipe_call`, before it answers.
    calls: Vec<HostCall>,
    /// `sandpipe_call`'s answer; `None`: echo the input (as `null` for a
    /// length of 0), so the chain's own checks of results are reached.
    result: Option<Answer>,
    /// Typed calls to make, in order: 0 processEvent, 1 composeWebhook, 2 onEvent.
    hooks: Vec<u8>,
    /// A string property of the event each call is given.
    property: String,
}

/// The hook list `sandpipe_start` answers when the program asks for a valid one.
const HOOKS: &[u8] = br#"["setupPlugin","processEvent","composeWebhook","onEvent"]"#;

/// The standalone module: host imports, one memory, the guest ABI's exports.
fn module(program: &Program) -> Vec<u8> {
    let mut types = TypeSection::new();
    let mut imports = ImportSection::new();
    import_host_functions(&mut types, &mut imports);
    types.ty().function([ValType::I32], [ValType::I32]); // 3: reserve
    types.ty().function([], [ValType::I64]); // 4: start
    types.ty().function([ValType::I32; 2], [ValType::I64]); // 5: call
    let mut functions = FunctionSection::new();
    functions.function(3).function(4).function(5);
    let pages = u64::from(program.pages % 4) + 1;
    let size = pages as u32 * 65536;
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
    exports.export(export::RESERVE, ExportKind::Func, 3);
    exports.export(BUNDLE_ENTRY, ExportKind::Func, 4);
    exports.export(export::CALL, ExportKind::Func, 5);

    // The hook list sits in the last bytes of memory; the input buffer is
    // `reserve`'s answer, which an echoed result points at.
    let hooks_at = size - HOOKS.len() as u32;
    let mut reserve = Function::new([]);
    reserve
        .instruction(&Instruction::I32Const(program.reserve as i32))
        .instruction(&Instruction::End);
    let start_result = match &program.start {
        Some(answer) => answer.packed(),
        None => Packed {
            ptr: hooks_at,
            len: HOOKS.len() as u32,
            is_error: false,
        }
        .encode(),
    };
    let mut start = Function::new([]);
    start
        .instruction(&Instruction::I64Const(start_result))
        .instruction(&Instruction::End);

    let mut call = Function::new([(1, ValType::I32)]); // local 2: request's answer length
    let calls = &program.calls[..program.calls.len().min(32)];
    emit_host_calls(&mut call, calls, 2);
    match &program.result {
        Some(answer) => {
            call.instruction(&Instruction::I64Const(answer.packed()));
        }
        None => {
            // (reserve << 32) | len: the input, as written.
            call.instruction(&Instruction::I64Const(i64::from(program.reserve) << 32))
                .instruction(&Instruction::LocalGet(1))
                .instruction(&Instruction::I64ExtendI32U)
                .instruction(&Instruction::I64Or);
        }
    }
    call.instruction(&Instruction::End);
    let mut code = CodeSection::new();
    code.function(&reserve).function(&start).function(&call);

    let mut data = DataSection::new();
    let kept = program.data.len().min(hooks_at as usize);
    data.active(
        0,
        &ConstExpr::i32_const(0),
        program.data[..kept].iter().copied(),
    );
    data.active(
        0,
        &ConstExpr::i32_const(hooks_at as i32),
        HOOKS.iter().copied(),
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

fn one_line(error: impl std::fmt::Display) {
    let text = error.to_string();
    assert!(!text.contains('\n'), "a multi-line error: {text:?}");
}

fuzz_target!(|program: Program| {
    let runtime = runtime();
    let (bytes, _) =
        sandpipe_compiler::rust::wrap(&module(&program), r#"{"name": "Fuzzed", "config": []}"#)
            .expect("a generated module wraps");
    let bundle = runtime
        .admit(bytes)
        .expect("a module with the ABI and only host imports is admitted");
    let options = ConnectorOptions {
        logs: Arc::new(MemoryLogs::default()),
        ..ConnectorOptions::default()
    };
    let mut connector = runtime
        .connector(bundle, 0, Default::default(), options)
        .expect("default limits are within the engine's");
    let event = serde_json::json!({
        "event": "fuzz", "distinct_id": "d", "team_id": 1,
        "properties": {"p": program.property},
    });
    let event = serde_json::to_vec(&event).unwrap();
    for hook in program.hooks.iter().take(4) {
        match hook % 3 {
            0 => connector
                .process_event(&event)
                .map(drop)
                .err()
                .map(one_line),
            1 => connector
                .compose_webhook(&event)
                .map(drop)
                .err()
                .map(one_line),
            _ => connector.on_event(&event).err().map(one_line),
        };
    }
});
