//! What the fuzz targets share: the one `Runtime` a target admits bundles
//! with, and the fuzzed host calls a generated guest module makes
//! ([`HostCall`]), declared and emitted the same way for every target.

use arbitrary::Arbitrary;
use sandpipe_abi::{HOST_MODULE, import};
use sandpipe_runtime::{Runtime, RuntimeOptions};
use std::sync::OnceLock;
use wasm_encoder::{EntityType, Function, ImportSection, Instruction, TypeSection, ValType};

/// The runtime every admission in a fuzz process goes through (no disk cache).
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::new(RuntimeOptions {
            cache_dir: None,
            ..RuntimeOptions::default()
        })
        .expect("the runtime starts")
    })
}

/// One call of a host function, with arbitrary arguments.
#[derive(Arbitrary, Debug)]
pub enum HostCall {
    Log {
        level: u32,
        ptr: u32,
        len: u32,
    },
    Request {
        service: u32,
        ptr: u32,
        len: u32,
    },
    Response {
        ptr: u32,
        len: u32,
    },
    /// `response` with the length `request` just returned, at `ptr`.
    ResponseExact {
        ptr: u32,
    },
}

/// Type and function indices 0, 1 and 2: `log`, `request` and `response`,
/// imported from the host module. A module adds its own types after these.
pub fn import_host_functions(types: &mut TypeSection, imports: &mut ImportSection) {
    types.ty().function([ValType::I32; 3], []); // 0: log
    types.ty().function([ValType::I32; 3], [ValType::I32]); // 1: request
    types.ty().function([ValType::I32; 2], []); // 2: response
    imports.import(HOST_MODULE, import::LOG, EntityType::Function(0));
    imports.import(HOST_MODULE, import::REQUEST, EntityType::Function(1));
    imports.import(HOST_MODULE, import::RESPONSE, EntityType::Function(2));
}

/// Appends `calls` to `body`: the host functions imported by
/// [`import_host_functions`], `request`'s answer length kept in the i32
/// local `answer` for [`HostCall::ResponseExact`].
pub fn emit_host_calls(body: &mut Function, calls: &[HostCall], answer: u32) {
    let i32c = |n: u32| Instruction::I32Const(n as i32);
    for call in calls {
        match *call {
            HostCall::Log { level, ptr, len } => {
                body.instruction(&i32c(level))
                    .instruction(&i32c(ptr))
                    .instruction(&i32c(len))
                    .instruction(&Instruction::Call(0));
            }
            HostCall::Request { service, ptr, len } => {
                body.instruction(&i32c(service))
                    .instruction(&i32c(ptr))
                    .instruction(&i32c(len))
                    .instruction(&Instruction::Call(1))
                    .instruction(&Instruction::LocalSet(answer));
            }
            HostCall::Response { ptr, len } => {
                body.instruction(&i32c(ptr))
                    .instruction(&i32c(len))
                    .instruction(&Instruction::Call(2));
            }
            HostCall::ResponseExact { ptr } => {
                body.instruction(&i32c(ptr))
                    .instruction(&Instruction::LocalGet(answer))
                    .instruction(&Instruction::Call(2));
            }
        }
    }
}
