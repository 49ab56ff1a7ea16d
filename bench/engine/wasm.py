# Runs the harness built for WASI under wasmtime (its Python embedding, from
# PyPI) with fuel and epoch interruption each on or off. sandpipe's engine
# (crates/runtime/src/engine.rs) has fuel (the deadline kept by its yields) unless
# the operator turns it off (`--no-fuel`: epochs alone); the other two
# settings show each one's cost. The script and the events must be in one directory (the one
# the guest is given).
#
#   python wasm.py HARNESS.wasm FUEL(0|1) EPOCHS(0|1) SCRIPT EVENTS FUNCTION ROUNDS
import os
import sys

import wasmtime

harness, fuel, epochs = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1"
script, events, function, rounds = sys.argv[4:8]
config = wasmtime.Config()
config.cranelift_opt_level = "speed"
config.consume_fuel = fuel
config.epoch_interruption = epochs
engine = wasmtime.Engine(config)
store = wasmtime.Store(engine)
if fuel:
    store.set_fuel(2**62)
if epochs:
    store.set_epoch_deadline(2**40)
wasi = wasmtime.WasiConfig()
# The files are read through one preopened directory: their own.
directory = os.path.dirname(os.path.abspath(events))
if os.path.dirname(os.path.abspath(script)) != directory:
    sys.exit("wasm.py: the script and the events must be in one directory")
wasi.argv = ["harness", os.path.relpath(script, directory), os.path.basename(events), function, rounds]
wasi.preopen_dir(directory, ".")
wasi.inherit_stdout()
wasi.inherit_stderr()
store.set_wasi(wasi)
linker = wasmtime.Linker(engine)
linker.define_wasi()
instance = linker.instantiate(store, wasmtime.Module.from_file(engine, harness))
try:
    instance.exports(store)["_start"](store)
except wasmtime.ExitTrap as exit:
    sys.exit(exit.code)
