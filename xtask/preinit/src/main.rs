//! `xtask-preinit OPTIMISED.wasm OUTPUT.wasm`: runs the guest plugin's
//! `initialize-runtime` under Wizer and writes the snapshot.
//!
//! The one part of the plugin build that needs wasmtime, in its own binary so
//! that `cargo xtask` (and with it `cargo xtask geoip`, the README's first
//! command) compiles no wasmtime. `cargo xtask plugin` builds it with
//! `--workspace`, so it shares the workspace's wasmtime build.

use anyhow::{Context, bail};
use std::path::PathBuf;
use wasmtime::{Config, Engine, Linker, Store};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wizer::Wizer;

fn main() -> anyhow::Result<()> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [input, output] = args.as_slice() else {
        bail!("usage: xtask-preinit OPTIMISED.wasm OUTPUT.wasm");
    };
    let wasm = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let snapshot = preinitialise(&wasm)?;
    std::fs::write(output, snapshot).with_context(|| format!("writing {}", output.display()))
}

/// Runs `initialize-runtime` under Wizer (deterministic WASI, no host
/// functions: any call to one traps) and returns the snapshot.
fn preinitialise(wasm: &[u8]) -> anyhow::Result<Vec<u8>> {
    let engine = Engine::new(&Config::new())?;
    let mut builder = WasiCtxBuilder::new();
    deterministic_wasi_ctx::add_determinism_to_wasi_ctx_builder(&mut builder);
    let mut store: Store<WasiP1Ctx> = Store::new(&engine, builder.build_p1());
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let snapshot = runtime.block_on(async {
        Wizer::new()
            .init_func("initialize-runtime")
            .keep_init_func(true)
            .run(&mut store, wasm, async |store, module| {
                let mut linker: Linker<WasiP1Ctx> = Linker::new(store.engine());
                wasmtime_wasi::p1::add_to_linker_async(&mut linker, |ctx| ctx)?;
                linker.define_unknown_imports_as_traps(module)?;
                linker.instantiate_async(store, module).await
            })
            .await
    });
    snapshot.map_err(|e| anyhow::anyhow!("pre-initialising the plugin: {e:#}"))
}
