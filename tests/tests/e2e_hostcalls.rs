//! Metrics, shared data and shared queues in a real Envoy with two worker
//! threads (`--concurrency 2`, one VM each), through the
//! `tests/plugins/hostcalls` plugin (see its crate docs for `x-hc-op`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod e2e_common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use e2e_common::start;
use higress_e2e::{wasm_module, ClusterSpec, EchoUpstream, Gateway, PluginSpec};

fn gateway(name: &str) -> (Gateway, EchoUpstream) {
    let upstream = EchoUpstream::start().unwrap();
    let wasm = wasm_module("e2e-hostcalls").unwrap_or_else(|e| panic!("building: {e}"));
    let gateway = start(
        Gateway::builder()
            .name(name)
            .concurrency(2)
            .log_level("wasm:info")
            .plugin(PluginSpec::new("hostcalls", wasm, "{}"))
            .cluster(ClusterSpec::new("echo", upstream.port())),
    );
    (gateway, upstream)
}

fn call(gateway: &Gateway, headers: &[(&str, &[u8])]) -> serde_json::Value {
    let response = gateway.get("/hc", headers).unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    serde_json::from_str(&response.text()).unwrap()
}

#[test]
fn metrics_with_labels_in_the_name_show_on_envoy_stats() {
    let (gateway, _upstream) = gateway("hostcalls-metrics");
    for (model, tokens) in [("qwen", "10"), ("qwen", "20"), ("gpt", "5")] {
        let body = call(
            &gateway,
            &[
                ("x-hc-op", b"metrics"),
                ("x-hc-model", model.as_bytes()),
                ("x-hc-tokens", tokens.as_bytes()),
            ],
        );
        assert_eq!(
            body["counter"],
            format!("route.default.model.{model}.input_token")
        );
    }
    // Whichever worker served each request, Envoy adds them up.
    assert_eq!(
        gateway
            .stat("wasmcustom.route.default.model.qwen.input_token")
            .unwrap(),
        Some(30)
    );
    assert_eq!(
        gateway
            .stat("wasmcustom.route.default.model.gpt.input_token")
            .unwrap(),
        Some(5)
    );
    assert_eq!(gateway.stat("wasmcustom.hc_last_tokens").unwrap(), Some(5));
    let stats = gateway.admin_get("/stats?filter=hc_tokens").unwrap().text();
    assert!(
        stats.contains("wasmcustom.hc_tokens"),
        "histogram missing from /stats:\n{stats}"
    );
}

#[test]
fn shared_data_is_one_store_for_both_workers() {
    let (gateway, _upstream) = gateway("hostcalls-shared");
    // Per VM: the highest local count it reported.
    let mut local_by_vm: BTreeMap<String, u64> = BTreeMap::new();
    let mut sent = 0u64;
    // Connections are spread over the workers by the kernel: go on until
    // both VMs answered (and a few more), at most 200 requests.
    while sent < 200 && (local_by_vm.len() < 2 || sent < 20) {
        let body = call(&gateway, &[("x-hc-op", b"count")]);
        sent += 1;
        // Every request sees every earlier one, whichever worker served it.
        assert_eq!(body["shared"], sent, "{body}");
        let vm = body["vm"].as_str().unwrap().to_owned();
        let local = body["local"].as_u64().unwrap();
        let previous = local_by_vm.insert(vm, local).unwrap_or(0);
        assert_eq!(local, previous + 1, "a VM's own count goes up by one");
    }
    assert_eq!(
        local_by_vm.len(),
        2,
        "all {sent} requests were served by one worker: {local_by_vm:?}"
    );
    // Neither VM alone saw every request; the shared count did.
    assert_eq!(local_by_vm.values().sum::<u64>(), sent);
    assert!(local_by_vm.values().all(|&n| n < sent));
}

#[test]
fn a_request_enqueues_and_the_registered_worker_dequeues() {
    let (gateway, _upstream) = gateway("hostcalls-queue");
    for message in ["m1", "m2", "m3"] {
        let body = call(
            &gateway,
            &[
                ("x-hc-op", b"enqueue"),
                ("x-hc-message", message.as_bytes()),
            ],
        );
        assert_eq!(body["enqueued"], true);
    }
    // `on_queue_ready` runs on the reader's worker thread, after the
    // requests returned: wait for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while gateway.stat("wasmcustom.hc_dequeued").unwrap() != Some(3) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(
        gateway.stat("wasmcustom.hc_dequeued").unwrap(),
        Some(3),
        "{}",
        gateway.logs()
    );
    for message in ["m1", "m2", "m3"] {
        assert_eq!(
            gateway
                .log_lines_containing(&format!("hc dequeued {message}"))
                .len(),
            1,
            "{message}"
        );
    }
}

#[test]
fn reset_stream_resets_the_downstream_request() {
    let (gateway, upstream) = gateway("hostcalls-reset");
    let before = upstream.requests().len();
    let result = gateway.get("/hc", &[("x-hc-op", b"reset")]);
    assert!(result.is_err(), "the client got a response: {result:?}");
    // Envoy counts a reset it sent downstream; nothing went upstream.
    let deadline = Instant::now() + Duration::from_secs(10);
    let stat = "http.ingress_http.downstream_rq_tx_reset";
    while gateway.stat(stat).unwrap() != Some(1) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(gateway.stat(stat).unwrap(), Some(1), "{}", gateway.logs());
    assert_eq!(upstream.requests().len(), before);
    // The next request is served as usual.
    let body = call(&gateway, &[("x-hc-op", b"count")]);
    assert_eq!(body["shared"], 1);
}

#[test]
fn paused_streaming_response_chunks_are_kept_and_sent_at_the_end() {
    let (gateway, _upstream) = gateway("hostcalls-hold");
    // 64 KiB in four 16 KiB chunks, written 100 ms apart, so Envoy hands
    // the plugin several data callbacks.
    let mode = b"body-size:65536,chunked,pace:100,type:text/plain";
    let response = gateway
        .get("/hc", &[("x-hc-op", b"hold"), ("x-echo-mode", mode)])
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    // Every byte arrived once, in order: the stopped chunks (Envoy kept no
    // copy) went out only as the plugin's replacement of the last one.
    assert_eq!(response.body.len(), 65536);
    assert!(response.body.iter().all(|b| *b == b'x'));
    let held = gateway.stat("wasmcustom.hc_held_chunks").unwrap();
    assert!(
        held.is_some_and(|n| n >= 1),
        "held {held:?}\n{}",
        gateway.logs()
    );
    assert!(gateway.logs().contains("hc sending"), "{}", gateway.logs());
    // Without the pause the same body flows through untouched.
    let response = gateway.get("/hc", &[("x-echo-mode", mode)]).unwrap();
    assert_eq!(response.body.len(), 65536);
    assert_eq!(gateway.stat("wasmcustom.hc_held_chunks").unwrap(), held);
}

#[test]
fn route_call_retargets_the_request_and_rewrites_the_answer() {
    let upstream = EchoUpstream::start().unwrap();
    let wasm = wasm_module("e2e-hostcalls").unwrap_or_else(|e| panic!("building: {e}"));
    let gateway = start(
        Gateway::builder()
            .name("hostcalls-route")
            .log_level("wasm:info")
            .plugin(PluginSpec {
                // Headers held while the body hooks run (Higress: ABI 0.2.100).
                allow_on_headers_stop_iteration: true,
                ..PluginSpec::new("hostcalls", wasm, "{}")
            })
            .cluster(ClusterSpec::new("echo", upstream.port())),
    );
    let response = gateway
        .request(
            "PUT",
            "/original",
            &[("x-hc-op", b"route"), ("accept-encoding", b"gzip")],
            b"client body",
        )
        .unwrap();
    assert_eq!(
        response.status,
        200,
        "{}\n{}",
        response.text(),
        gateway.logs()
    );
    assert_eq!(
        response.header_str("x-route-status").as_deref(),
        Some("200")
    );
    let text = response.text();
    let echo = text
        .strip_prefix("routed:200:")
        .unwrap_or_else(|| panic!("{text}\n{}", gateway.logs()));
    // The callback saw the upstream's whole answer to the re-targeted request.
    let echo: serde_json::Value = serde_json::from_str(echo).unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/routed?x=1");
    assert_eq!(echo["headers"]["x-routed"], "yes");
    assert_eq!(echo["headers"]["x-envoy-original-method"], "PUT");
    assert_eq!(echo["headers"]["x-envoy-original-path"], "/original");
    assert!(echo["headers"].get("accept-encoding").is_none(), "{echo}");
    assert_eq!(echo["body_length"], 8);
    let seen = upstream.last_request().unwrap();
    assert_eq!(seen.body, b"new-body");
}

// ----- gRPC callouts against a real grpcio server ------------------------------------------

/// A Python with `grpcio`: `HIGRESS_E2E_PYTHON`, else the workspace's
/// `target/grpc-venv`, created on first use (`python3 -m venv`, then
/// `pip install grpcio`), as the harness installs Envoy. Once per test
/// binary: the gRPC tests run in parallel, and a second test must wait for
/// the first one's install instead of finding a half-made venv.
fn grpc_python() -> std::path::PathBuf {
    static PYTHON: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    PYTHON.get_or_init(install_grpc_python).clone()
}

fn install_grpc_python() -> std::path::PathBuf {
    if let Some(python) = std::env::var_os("HIGRESS_E2E_PYTHON") {
        return python.into();
    }
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/grpc-venv");
    let python = venv.join("bin/python");
    let has_grpc = |python: &std::path::Path| {
        std::process::Command::new(python)
            .args(["-c", "import grpc"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !has_grpc(&python) {
        let created = std::process::Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success());
        let installed = created
            && std::process::Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "grpcio"])
                .status()
                .is_ok_and(|s| s.success());
        assert!(
            installed && has_grpc(&python),
            "could not install grpcio into {}; set HIGRESS_E2E_PYTHON to a Python with grpcio",
            venv.display()
        );
    }
    python
}

/// A gRPC service `hc.Echo` on raw bytes: `Say` answers
/// `echo:<message>:<x-tenant metadata>`, `Deny` fails with
/// PERMISSION_DENIED (7) and the message `denied <message>`. Streams:
/// `Split` (server streaming) answers each space-separated word of its one
/// request; `Chat` (bidirectional) answers `re:<m>` to each message; both
/// send initial metadata `x-srv: 1` and trailing `x-count: <replies>`;
/// `Flaky` (bidirectional) answers the first message, then fails with
/// UNAVAILABLE (14) `gone`.
const GRPC_SERVER: &str = r#"
import sys
from concurrent import futures
import grpc

def say(request, context):
    tenant = dict(context.invocation_metadata()).get("x-tenant", "")
    return b"echo:" + request + b":" + tenant.encode()

def deny(request, context):
    context.abort(grpc.StatusCode.PERMISSION_DENIED, "denied " + request.decode())

def split(request, context):
    context.send_initial_metadata((("x-srv", "1"),))
    words = request.split()
    for word in words:
        yield word
    context.set_trailing_metadata((("x-count", str(len(words))),))

def chat(requests, context):
    context.send_initial_metadata((("x-srv", "1"),))
    n = 0
    for message in requests:
        n += 1
        yield b"re:" + message
    context.set_trailing_metadata((("x-count", str(n)),))

def flaky(requests, context):
    for message in requests:
        yield b"re:" + message
        context.abort(grpc.StatusCode.UNAVAILABLE, "gone")

handler = grpc.method_handlers_generic_handler("hc.Echo", {
    "Say": grpc.unary_unary_rpc_method_handler(say),
    "Deny": grpc.unary_unary_rpc_method_handler(deny),
    "Split": grpc.unary_stream_rpc_method_handler(split),
    "Chat": grpc.stream_stream_rpc_method_handler(chat),
    "Flaky": grpc.stream_stream_rpc_method_handler(flaky),
})
server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
server.add_generic_rpc_handlers((handler,))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
sys.stdin.read()
server.stop(0)
"#;

/// The gRPC server process; killed on drop.
struct GrpcServer {
    child: std::process::Child,
    port: u16,
}

impl GrpcServer {
    fn start() -> GrpcServer {
        use std::io::BufRead;
        let mut child = std::process::Command::new(grpc_python())
            .args(["-c", GRPC_SERVER])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("grpc server said {line:?}"));
        GrpcServer { child, port }
    }
}

impl Drop for GrpcServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A gateway whose cluster `grpc` is the real gRPC server (HTTP/2).
fn grpc_gateway(name: &str, server: &GrpcServer, upstream: &EchoUpstream) -> Gateway {
    let wasm = wasm_module("e2e-hostcalls").unwrap_or_else(|e| panic!("building: {e}"));
    start(
        Gateway::builder()
            .name(name)
            .log_level("wasm:info")
            .plugin(PluginSpec::new("hostcalls", wasm, "{}"))
            .cluster(ClusterSpec::new("echo", upstream.port()))
            .cluster(ClusterSpec::new("grpc", server.port))
            .patch_bootstrap(|bootstrap| {
                // gRPC needs HTTP/2 to the cluster.
                let clusters = bootstrap["static_resources"]["clusters"]
                    .as_array_mut()
                    .unwrap();
                let grpc = clusters.iter_mut().find(|c| c["name"] == "grpc").unwrap();
                grpc["typed_extension_protocol_options"] = serde_json::json!({
                    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                        "explicit_http_config": { "http2_protocol_options": {} },
                    }
                });
            }),
    )
}

#[test]
fn a_grpc_callout_reaches_a_real_grpc_server() {
    let server = GrpcServer::start();
    let upstream = EchoUpstream::start().unwrap();
    let gateway = grpc_gateway("hostcalls-grpc", &server, &upstream);
    let ok = gateway
        .get(
            "/hc",
            &[
                ("x-hc-op", b"grpc"),
                ("x-hc-method", b"Say"),
                ("x-hc-message", b"hi"),
            ],
        )
        .unwrap();
    assert_eq!(ok.status, 200, "{}\n{}", ok.text(), gateway.logs());
    let body: serde_json::Value = serde_json::from_str(&ok.text()).unwrap();
    assert_eq!(body["grpc"], "echo:hi:t1");

    let denied = gateway
        .get(
            "/hc",
            &[
                ("x-hc-op", b"grpc"),
                ("x-hc-method", b"Deny"),
                ("x-hc-message", b"bob"),
            ],
        )
        .unwrap();
    assert_eq!(denied.status, 503, "{}", denied.text());
    let body: serde_json::Value = serde_json::from_str(&denied.text()).unwrap();
    // Envoy appends where the status came from: `denied bob{via_upstream}`.
    let error = body["error"].as_str().unwrap();
    assert!(error.starts_with("grpc status 7: denied bob"), "{error}");
}

fn grpc_stream(gateway: &Gateway, method: &str, message: &str) -> (u16, serde_json::Value) {
    let response = gateway
        .get(
            "/hc",
            &[
                ("x-hc-op", b"grpc-stream"),
                ("x-hc-method", method.as_bytes()),
                ("x-hc-message", message.as_bytes()),
            ],
        )
        .unwrap();
    let body = serde_json::from_str(&response.text())
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", response.text(), gateway.logs()));
    (response.status, body)
}

#[test]
fn grpc_streams_reach_a_real_grpc_server() {
    let server = GrpcServer::start();
    let upstream = EchoUpstream::start().unwrap();
    let gateway = grpc_gateway("hostcalls-grpc-stream", &server, &upstream);

    // Server streaming: one request, three replies, then OK with metadata.
    let (status, body) = grpc_stream(&gateway, "Split", "alpha beta gamma");
    assert_eq!(status, 200, "{body}\n{}", gateway.logs());
    assert_eq!(
        body["replies"],
        serde_json::json!(["alpha", "beta", "gamma"]),
        "{body}\n{}",
        gateway.logs()
    );
    assert_eq!(body["initial"], "1");
    assert_eq!(body["trailing"], "3");

    // Bidirectional: every message sent is answered, in order.
    let (status, body) = grpc_stream(&gateway, "Chat", "a,b,c,d");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["replies"],
        serde_json::json!(["re:a", "re:b", "re:c", "re:d"])
    );
    assert_eq!(body["trailing"], "4");

    // A stream the server fails: the replies so far, then its status.
    let (status, body) = grpc_stream(&gateway, "Flaky", "x,y");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["replies"], serde_json::json!(["re:x"]));
    // Envoy appends where the status came from (`{via_upstream}`).
    let error = body["error"].as_str().unwrap();
    assert!(error.starts_with("grpc status 14: gone"), "{error}");

    // An unknown method ends with UNIMPLEMENTED (12) and no reply.
    let (status, body) = grpc_stream(&gateway, "Nope", "z");
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("grpc status 12"),
        "{body}"
    );
}
