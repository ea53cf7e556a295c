#!/usr/bin/env bash
# What a large `_rules_` config costs at start in a real Envoy: starts Envoy
# 1.40 (V8) with examples/my-plugin configured with N rules of the shape
#   {"_match_route_":["default/route-000042"],"some_field":"value-000042"}
# (about 71 bytes each; 150,000 rules are a 10.6 MB config), waits until
# admin /ready answers, and prints the time to ready and Envoy's RSS
# (VmRSS and its peak VmHWM, from /proc), then stops Envoy.
#
#   ./scripts/config-memory.sh                 # 150000 rules, --concurrency 1
#   ./scripts/config-memory.sh 50000 2         # 50000 rules, 2 workers
#   WASM=path/to/my_plugin.wasm ./scripts/config-memory.sh
#   FLAT=1 ./scripts/config-memory.sh          # same size, one string, no rules
#
# FLAT=1 gives the floor: a config of the same size that is one string, so
# what Envoy and the plugin spend on the text alone. Results and history:
# docs/benchmark.md ("Config memory"). Loopback only.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RULES="${1:-150000}"
CONCURRENCY="${2:-1}"
if [ -z "${WASM:-}" ]; then
    cargo build --release --quiet --target wasm32-wasip1 -p my-plugin
    WASM=target/wasm32-wasip1/release/my_plugin.wasm
fi
ENVOY_BIN="${ENVOY_BIN:-$(./scripts/install-envoy.sh)}"
export ENVOY_BIN WASM RULES CONCURRENCY

exec python3 - <<'PY'
import json, os, socket, subprocess, tempfile, time, urllib.request

rules = int(os.environ["RULES"])
concurrency = os.environ["CONCURRENCY"]
wasm = os.path.abspath(os.environ["WASM"])

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port

rule = '{"_match_route_":["default/route-%06d"],"some_field":"value-%06d"}'
config = '{"some_field":"global","_rules_":[' + ",".join(rule % (i, i) for i in range(rules)) + "]}"
if os.environ.get("FLAT"):
    config = '{"some_field":"' + "x" * (len(config) - 17) + '"}'

admin, listener = free_port(), free_port()
hcm = {
    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
    "stat_prefix": "ingress_http",
    "route_config": {"name": "local", "virtual_hosts": [{"name": "any", "domains": ["*"], "routes": [
        {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}]}]},
    "http_filters": [
        {"name": "envoy.filters.http.wasm", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "my_plugin", "root_id": "my_root",
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": config},
                "vm_config": {"vm_id": "my_vm", "runtime": "envoy.wasm.runtime.v8",
                              "code": {"local": {"filename": wasm}}}}}},
        {"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}
bootstrap = {
    "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
    "static_resources": {"listeners": [{
        "name": "main",
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": listener}},
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                        "typed_config": hcm}]}]}]}}

with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "envoy.json")
    with open(path, "w") as f:
        json.dump(bootstrap, f)
    start = time.monotonic()
    envoy = subprocess.Popen(
        [os.environ["ENVOY_BIN"], "-c", path, "--concurrency", concurrency,
         "--disable-hot-restart", "--log-level", "warn"],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "envoy.log"), "w"))
    ready = None
    try:
        while time.monotonic() - start < 600 and envoy.poll() is None:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/ready" % admin, timeout=1) as r:
                    if r.status == 200:
                        ready = time.monotonic() - start
                        break
            except OSError:
                pass
            time.sleep(0.05)
        time.sleep(1)
        rss = {}
        with open("/proc/%d/status" % envoy.pid) as f:
            for line in f:
                if line.startswith(("VmRSS", "VmHWM")):
                    key, value = line.split(":", 1)
                    rss[key] = int(value.split()[0]) // 1024
        print("rules=%d config=%.1f MB concurrency=%s ready=%s VmRSS=%d MB VmHWM=%d MB" % (
            0 if os.environ.get("FLAT") else rules, len(config) / 1e6, concurrency,
            "%.1f s" % ready if ready else "never", rss.get("VmRSS", -1), rss.get("VmHWM", -1)))
    finally:
        envoy.terminate()
        envoy.wait()
PY
