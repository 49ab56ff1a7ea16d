#!/usr/bin/env bash
# What running the connectors' JavaScript in wasm costs, part by part: the
# boundary-bound chain's three connectors (bench/connectors/, driven by
# boundary.js) in the plugin's own QuickJS, built natively (with and without
# the interpreter's computed-goto dispatch, which wasm cannot have) and for
# WASI, then run under wasmtime with fuel and epochs each on or off (fuel alone
# is sandpipe's default, its deadline kept by fuel's yields; epochs alone its
# `--no-fuel`; both on was the default before 2026-12-01); and the same script
# in Node's vm for reference. Each the median of 9 rounds (after one untimed)
# over the same 5,000 benchmark events; every run's output hash must be the
# same. BENCHMARKS.md has the figures.
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
# The connectors' own sources, each made a strict-mode function returning its
# exports (they are ES modules: `export` is dropped; nothing else may remain).
for connector in tagger counter filter; do
    source="$root/bench/connectors/$connector/index.js"
    if sed -E 's/^export[[:space:]]+//' "$source" | grep -Eq '^[[:space:]]*(export|import)([[:space:]{*]|$)'; then
        echo "run.sh: $source has an export or import this script cannot unwrap" >&2
        exit 1
    fi
    echo "function connector_$connector() {"
    echo "'use strict';"
    sed -E 's/^export[[:space:]]+//' "$source"
    echo "return { processEvent, setupPlugin: typeof setupPlugin === 'function' ? setupPlugin : undefined } }"
done > "$work/boundary.js"
cat "$here/boundary.js" >> "$work/boundary.js"
"$root/target/release/sandpipe-bench" events 5000 > "$work/events.ndjson"

sources=("$here/harness.c" "$quickjs/quickjs.c" "$quickjs/libregexp.c" "$quickjs/libunicode.c" "$quickjs/dtoa.c")
# With the flags the plugin compiles QuickJS with (guest-sdk/vendor/rquickjs-sys/build.rs: opt-level 3,
# assertions off). Not the same build otherwise: natively glibc's malloc and string
# functions, in wasm wasi-libc's, and the WASI build is not put through wasm-opt as the plugin is.
flags=(-O3 -DNDEBUG -D_GNU_SOURCE -w -I"$quickjs")
clang-22 "${flags[@]}" -o "$work/native" "${sources[@]}" -lm
# Without direct dispatch: the interpreter's `switch`, as in wasm.
grep -q '^#define DIRECT_DISPATCH  1$' "$quickjs/quickjs.c" || { echo "run.sh: quickjs.c's DIRECT_DISPATCH line moved" >&2; exit 1; }
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
"$work/venv/bin/python" -c 'import wasmtime' 2>/dev/null || {
    python3 -m venv "$work/venv" && "$work/venv/bin/python" -m pip install -q 'wasmtime==50.0.1'
}

events="$work/events.ndjson"
rounds=9
# One line per run; a failed run stops the script (the output is taken first),
# and so does one whose output hash differs from the function's first run.
measure() {
    local label=$1 out hash
    shift
    out=$("$@")
    printf '%-26s %s\n' "$label:" "$out"
    hash=${out%% (*}
    if [ -z "$expected" ]; then
        expected=$hash
    elif [ "$hash" != "$expected" ]; then
        echo "run.sh: $label gave $hash where the first run gave $expected" >&2
        exit 1
    fi
}
for function in passThrough hops once; do
    echo "== $function"
    expected=""
    measure "native" "$work/native" "$work/boundary.js" "$events" "$function" "$rounds"
    measure "native, switch dispatch" "$work/native-switch" "$work/boundary.js" "$events" "$function" "$rounds"
    for setting in "0 0" "0 1" "1 0" "1 1"; do
        read -r fuel epochs <<< "$setting"
        measure "wasm, fuel $fuel, epochs $epochs" "$work/venv/bin/python" "$here/wasm.py" \
            "$work/harness.wasm" "$fuel" "$epochs" "$work/boundary.js" "$events" "$function" "$rounds"
    done
    measure "Node vm" node "$here/node.js" "$work/boundary.js" "$events" "$function" "$rounds"
done
