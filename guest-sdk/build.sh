#!/usr/bin/env bash
# Builds the sandpipe guest plugin with Debian's toolchain, pre-initialises it
# (wasm-opt + Wizer) and writes guest-sdk/sandpipe_plugin.wasm.
#
#   guest-sdk/build.sh           rebuild and overwrite the committed plugin
#   guest-sdk/build.sh --check   rebuild and fail if the bytes differ from it
#
# Installs the Debian packages it needs (rustc-web with std sources, clang/lld 22,
# wasi-libc, binaryen) when they are missing. Users of sandpipe never run this:
# the host embeds the committed plugin.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22 clang-22 llvm-22 libclang1-22 wasi-libc binaryen)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "guest-sdk/build.sh: installing ${missing[*]}" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

exec cargo xtask plugin "$@"
