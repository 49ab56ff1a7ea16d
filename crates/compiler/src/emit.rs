//! Writes a bundle module with wasm-encoder.
//!
//! ```text
//! (module
//!   (import "sandpipe_plugin_v1" "memory" (memory 0))
//!   (import "sandpipe_plugin_v1" "sandpipe_reserve" (func $reserve (param i32) (result i32)))
//!   (import "sandpipe_plugin_v1" "sandpipe_load" (func $load (param i32) (result i64)))
//!   (func (export "sandpipe_start") (result i64) (local $ptr i32)
//!     (local.set $ptr (call $reserve (i32.const LEN)))
//!     (memory.init $bytecode (local.get $ptr) (i32.const 0) (i32.const LEN))
//!     (data.drop $bytecode)
//!     (call $load (i32.const LEN)))
//!   (data $bytecode "…QuickJS bytecode…")
//!   (@custom "sandpipe.manifest" "{…}"))
//! ```

use sandpipe_abi::{BUNDLE_ENTRY, MANIFEST_SECTION, PLUGIN_MODULE, export};
use sandpipe_runtime::BundleManifest;
use std::borrow::Cow;
use wasm_encoder::{
    CodeSection, CustomSection, DataCountSection, DataSection, EntityType, ExportKind,
    ExportSection, Function, FunctionSection, ImportSection, Instruction, MemoryType, Module,
    TypeSection, ValType,
};

/// The bundle module for `bytecode`, with `manifest` as its custom section.
pub fn bundle(bytecode: &[u8], manifest: &BundleManifest) -> Vec<u8> {
    let len = bytecode.len() as i32;
    let mut module = Module::new();

    let mut types = TypeSection::new();
    types.ty().function([], [ValType::I64]); // 0: entry
    types.ty().function([ValType::I32], [ValType::I32]); // 1: reserve
    types.ty().function([ValType::I32], [ValType::I64]); // 2: load
    module.section(&types);

    let mut imports = ImportSection::new();
    imports.import(
        PLUGIN_MODULE,
        export::MEMORY,
        EntityType::Memory(MemoryType {
            minimum: 0,
            maximum: None,
            memory64: false,
            shared: false,
            page_size_log2: None,
        }),
    );
    imports.import(PLUGIN_MODULE, export::RESERVE, EntityType::Function(1));
    imports.import(PLUGIN_MODULE, export::LOAD, EntityType::Function(2));
    module.section(&imports);
    const RESERVE: u32 = 0;
    const LOAD: u32 = 1;
    const ENTRY: u32 = 2;

    let mut functions = FunctionSection::new();
    functions.function(0);
    module.section(&functions);

    let mut exports = ExportSection::new();
    exports.export(BUNDLE_ENTRY, ExportKind::Func, ENTRY);
    module.section(&exports);

    module.section(&DataCountSection { count: 1 });

    let mut entry = Function::new([(1, ValType::I32)]);
    for instruction in [
        Instruction::I32Const(len),
        Instruction::Call(RESERVE),
        Instruction::LocalSet(0),
        Instruction::LocalGet(0),
        Instruction::I32Const(0),
        Instruction::I32Const(len),
        Instruction::MemoryInit {
            mem: 0,
            data_index: 0,
        },
        Instruction::DataDrop(0),
        Instruction::I32Const(len),
        Instruction::Call(LOAD),
        Instruction::End,
    ] {
        entry.instruction(&instruction);
    }
    let mut code = CodeSection::new();
    code.function(&entry);
    module.section(&code);

    let mut data = DataSection::new();
    data.passive(bytecode.iter().copied());
    module.section(&data);

    module.section(&CustomSection {
        name: Cow::Borrowed(MANIFEST_SECTION),
        data: Cow::Owned(manifest.encode()),
    });
    module.finish()
}
