#!/usr/bin/env bash
# What running the connectors' JavaScript in wasm costs, part by part: the
# boundary-bound chain's three connectors (bench/connectors/, driven by
# boundary.js) in the plugin's own QuickJS, built natively (with and without
# the interpreter's computed-goto dispatch, which wasm cannot have) and for
# WASI, then run under wasmtime without fuel or epochs, with fuel, and with
# both (sandpipe's default); and the same script in Node's vm for reference.
# Each the median of 5 rounds over the same 5,000 benchmark events.
# BENCHMARKS.md has the figures.
#
#   bench/engine/run.sh    (after `cargo build --release -p sandpipe-bench`)
#
# Needs clang-22, lld-22 and wasi-libc (guest-sdk/build.sh installs them),
# python3 with venv (wasmtime from PyPI goes into a venv under the work
# directory) and node.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
quickjs="$root/guest-sdk/vendor/rquickjs-sys/quickjs"
work="${TMPDIR:-/tmp}/sandpipe-engine"
mkdir -p "$work"
# The connectors' own sources, each made a function returning its exports.
for connector in tagger counter filter; do
    echo "function connector_$connector() {"
    sed 's/^export //' "$root/bench/connectors/$connector/index.js"
    echo "return { processEvent, setupPlugin: typeof setupPlugin === 'function' ? setupPlugin : undefined } }"
done > "$work/boundary.js"
cat "$here/boundary.js" >> "$work/boundary.js"
"$root/target/release/sandpipe-bench" events 5000 > "$work/events.ndjson"

sources=("$here/harness.c" "$quickjs/quickjs.c" "$quickjs/libregexp.c" "$quickjs/libunicode.c" "$quickjs/dtoa.c")
# As the plugin compiles QuickJS (guest-sdk/vendor/rquickjs-sys/build.rs, opt-level 3, assertions off).
flags=(-O3 -DNDEBUG -D_GNU_SOURCE -w -I"$quickjs")
clang-22 "${flags[@]}" -o "$work/native" "${sources[@]}" -lm
# Without direct dispatch: the interpreter's `switch`, as in wasm.
sed 's/^#define DIRECT_DISPATCH  1$/#define DIRECT_DISPATCH  0/' "$quickjs/quickjs.c" > "$work/quickjs-switch.c"
clang-22 "${flags[@]}" -o "$work/native-switch" "$here/harness.c" "$work/quickjs-switch.c" \
    "$quickjs/libregexp.c" "$quickjs/libunicode.c" "$quickjs/dtoa.c" -lm
# For WASI with Debian's wasi-libc, with the defines build.rs adds for wasi.
objects=()
for source in "${sources[@]}"; do
    object="$work/$(basename "$source" .c).wasm.o"
    clang-22 --target=wasm32-wasip1 "${flags[@]}" -DEMSCRIPTEN=1 -DFE_DOWNWARD=0 -DFE_UPWARD=0 \
        -nostdlibinc -isystem /usr/include/wasm32-wasi -c "$source" -o "$object"
    objects+=("$object")
done
wasm-ld-22 -o "$work/harness.wasm" /usr/lib/wasm32-wasi/crt1-command.o "${objects[@]}" \
    -L/usr/lib/wasm32-wasi -lc -lm -z stack-size=1048576
[ -x "$work/venv/bin/python" ] || { python3 -m venv "$work/venv" && "$work/venv/bin/pip" install -q wasmtime; }

events="$work/events.ndjson"
for function in passThrough hops once; do
    echo "== $function"
    echo "native:                  $("$work/native" "$work/boundary.js" "$events" "$function" 5)"
    echo "native, switch dispatch: $("$work/native-switch" "$work/boundary.js" "$events" "$function" 5)"
    for setting in "0 0" "1 0" "1 1"; do
        read -r fuel epochs <<< "$setting"
        echo "wasm, fuel $fuel epochs $epochs:    $("$work/venv/bin/python" "$here/wasm.py" "$work/harness.wasm" "$fuel" "$epochs" "$work/boundary.js" "$events" "$function" 5)"
    done
    echo "Node vm:                 $(node "$here/node.js" "$work/boundary.js" "$events" "$function" 5)"
done
