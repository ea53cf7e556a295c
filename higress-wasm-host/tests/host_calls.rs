//! Higress host calls, shared state across two VMs, and the load check, on
//! small modules written in the text format; plus work counting on
//! my-plugin's compiled module.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use higress_wasm_host::{MetricValue, PluginModule, StartStage, TestHost};

const HIGRESS_CALLS: &str = r#"(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_upstream_hosts" (func $hosts (param i32 i32) (result i32)))
  (import "env" "proxy_set_upstream_override_host" (func $override (param i32 i32) (result i32)))
  (import "env" "proxy_inject_encoded_data_to_filter_chain" (func $inject (param i32 i32 i32) (result i32)))
  (import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $incr (param i32 i64) (result i32)))
  (import "env" "proxy_register_shared_queue" (func $register (param i32 i32 i32) (result i32)))
  (import "env" "proxy_resolve_shared_queue" (func $resolve (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_enqueue_shared_queue" (func $enqueue (param i32 i32 i32) (result i32)))
  (import "env" "proxy_dequeue_shared_queue" (func $dequeue (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 16) "10.0.0.2:8080")
  (data (i32.const 32) "injected")
  (data (i32.const 48) "wasm_requests")
  (data (i32.const 64) "q")
  (data (i32.const 72) "v")
  (data (i32.const 80) "hello")
  (func (export "proxy_abi_version_0_2_100"))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (local.get $p))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $define (i32.const 0) (i32.const 48) (i32.const 13) (i32.const 200)))
    (drop (call $register (i32.const 64) (i32.const 1) (i32.const 204)))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $incr (i32.load (i32.const 200)) (i64.const 1)))
    (drop (call $hosts (i32.const 256) (i32.const 260)))
    (drop (call $log (i32.const 2) (i32.load (i32.const 256)) (i32.load (i32.const 260))))
    (drop (call $override (i32.const 16) (i32.const 13)))
    (drop (call $resolve (i32.const 72) (i32.const 1) (i32.const 64) (i32.const 1) (i32.const 208)))
    (drop (call $enqueue (i32.load (i32.const 208)) (i32.const 80) (i32.const 5)))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (drop (call $inject (i32.const 32) (i32.const 8) (i32.const 1)))
    (i32.const 0))
  (func (export "proxy_on_queue_ready") (param i32 i32)
    (if (i32.eqz (call $dequeue (local.get 1) (i32.const 264) (i32.const 268)))
      (then (drop (call $log (i32.const 2) (i32.load (i32.const 264)) (i32.load (i32.const 268)))))))
)"#;

fn higress_module() -> PluginModule {
    PluginModule::from_bytes(wat::parse_str(HIGRESS_CALLS).unwrap(), "calls").unwrap()
}

#[test]
fn upstream_hosts_override_injection_metrics_and_queues_across_two_vms() {
    let module = higress_module();
    let a = TestHost::builder()
        .vm_id("v")
        .upstream_host("10.0.0.1:80", "Healthy", Some("gpu_util 0.5\n"))
        .upstream_host("10.0.0.2:8080", "Degraded", None)
        .start(&module, "")
        .unwrap();
    // The second worker registers the queue last: it owns it.
    let b = TestHost::builder()
        .vm_id("v")
        .shared_state(a.shared_state())
        .start(&module, "")
        .unwrap();

    let mut s = a.http_stream();
    s.send_request_headers(&[(":path", "/")], true).unwrap();
    assert_eq!(s.upstream_override_host().as_deref(), Some("10.0.0.2:8080"));
    // The hosts came back serialized as proxy-wasm pairs, each with the
    // metadata JSON Higress's Envoy prints (nlohmann `dump(0)`), verbatim.
    let line = &a.logs()[0].message;
    assert!(
        line.contains(
            "10.0.0.1:80\0{\n\"health_status\": \"Healthy\",\n\"metrics\": \"gpu_util 0.5\\n\"\n}\0"
        ),
        "{line:?}"
    );
    assert!(
        line.contains("10.0.0.2:8080\0{\n\"health_status\": \"Degraded\"\n}\0"),
        "{line:?}"
    );
    s.send_response_headers(&[(":status", "200")], false)
        .unwrap();
    assert_eq!(
        s.injected_encoded_data(),
        vec![(b"injected".to_vec(), true)]
    );
    assert_eq!(s.client_response_body(), b"injected");
    assert!(s.client_response_complete());
    drop(s);

    // The item A enqueued is delivered to B, the queue's owner.
    assert!(b.logs_containing("hello").is_empty());
    assert_eq!(b.run_until_idle(), 1);
    assert_eq!(b.logs_containing("hello").len(), 1);
    assert!(a.logs_containing("hello").is_empty());

    // A request on B counts in the same (process-wide) metric.
    let mut s = b.http_stream();
    s.send_request_headers(&[(":path", "/")], true).unwrap();
    drop(s);
    assert_eq!(a.metric("wasm_requests"), Some(MetricValue::Counter(2)));
    // B's own item reached it once its callback returned.
    assert_eq!(b.logs_containing("hello").len(), 2);
    assert_eq!(b.run_until_idle(), 0);
}

#[test]
fn an_import_the_host_lacks_fails_the_load_with_envoys_message() {
    let wat = r#"(module
      (import "env" "proxy_no_such_call" (func (param i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "proxy_abi_version_0_2_1"))
      (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 0)))"#;
    let module = PluginModule::from_bytes(wat::parse_str(wat).unwrap(), "m").unwrap();
    let failure = TestHost::start(&module, "").unwrap_err();
    assert_eq!(failure.stage, StartStage::Load);
    assert_eq!(
        failure.logs[0].message,
        "Failed to load Wasm module due to a missing import: env.proxy_no_such_call"
    );
}

#[test]
fn host_calls_during_initialize_are_restricted() {
    let wat = r#"(module
      (import "env" "proxy_set_tick_period_milliseconds" (func $tick (param i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "proxy_abi_version_0_2_1"))
      (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 0))
      (func (export "_initialize") (drop (call $tick (i32.const 1000)))))"#;
    let module = PluginModule::from_bytes(wat::parse_str(wat).unwrap(), "m").unwrap();
    let failure = TestHost::start(&module, "").unwrap_err();
    assert_eq!(failure.stage, StartStage::Initialize);
    assert!(
        !failure.logs_containing("restricted_callback").is_empty(),
        "{failure}"
    );
}

fn one_request_work() -> Vec<higress_wasm_host::fuel::CallbackWork> {
    let host = TestHost::start(&common::module("my-plugin"), r#"{"some_field": "v"}"#).unwrap();
    host.clear_work();
    let mut s = host.http_stream();
    s.set_request_id("r-1");
    s.send_request_headers(&[(":path", "/"), ("x-user-id", "u")], true)
        .unwrap();
    s.send_response_headers(&[(":status", "200")], true)
        .unwrap();
    let id = s.context_id();
    s.done().unwrap();
    let work = host.work();
    let total: u64 = work.iter().map(|w| w.fuel).sum();
    assert_eq!(host.fuel_of_stream(id), total);
    work
}

#[test]
fn fuel_per_callback_is_the_same_from_run_to_run() {
    let first = one_request_work();
    let second = one_request_work();
    assert_eq!(first, second);
    let names: Vec<&str> = first.iter().map(|w| w.callback).collect();
    assert_eq!(
        names,
        [
            "proxy_on_context_create",
            "proxy_on_request_headers",
            "proxy_on_response_headers",
            "proxy_on_log",
            "proxy_on_done",
            "proxy_on_delete"
        ]
    );
    let headers = &first[1];
    assert!(headers.fuel > 0);
    assert_eq!(
        headers
            .hostcalls
            .iter()
            .filter(|c| **c == "proxy_log")
            .count(),
        2,
        "{:?}",
        headers.hostcalls
    );
    assert!(headers
        .hostcalls
        .contains(&"proxy_replace_header_map_value"));
    let table = higress_wasm_host::fuel::format_table(&first);
    assert!(table.contains("proxy_on_request_headers"), "{table}");
}

/// `proxy_get_status` in an HTTP callout's callback: `BrokenConnection` /
/// `reset` after a failure (Envoy's `onHttpCallFailure`), `Ok` and no text
/// after a response, as the native test host answers.
#[test]
fn a_failed_http_callout_reads_as_reset_in_get_status() {
    let wat = r#"(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_http_call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_status" (func $status (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (data (i32.const 16) "auth")
  (data (i32.const 64) "\03\00\00\00\05\00\00\00\01\00\00\00\07\00\00\00\03\00\00\00\0a\00\00\00\01\00\00\00:path\00/\00:method\00GET\00:authority\00a\00")
  (data (i32.const 200) "status ")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $n)))
    (local.get $p))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $call (i32.const 16) (i32.const 4) (i32.const 64) (i32.const 61)
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1000) (i32.const 300)))
    (i32.const 1))
  (func (export "proxy_on_http_call_response") (param i32 i32 i32 i32 i32)
    (drop (call $status (i32.const 304) (i32.const 308) (i32.const 312)))
    ;; "status <code digit>" then the message, as two lines.
    (i32.store8 (i32.const 207) (i32.add (i32.const 48) (i32.rem_u (i32.load (i32.const 304)) (i32.const 10))))
    (i32.store8 (i32.const 206) (i32.add (i32.const 48) (i32.div_u (i32.load (i32.const 304)) (i32.const 10))))
    (drop (call $log (i32.const 2) (i32.const 200) (i32.const 8)))
    (drop (call $log (i32.const 2) (i32.load (i32.const 308)) (i32.load (i32.const 312)))))
)"#;
    let module = PluginModule::from_bytes(wat::parse_str(wat).unwrap(), "status").unwrap();
    let host = TestHost::builder()
        .clusters(["auth"])
        .start(&module, "")
        .unwrap();

    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/")], true).unwrap();
    let token = host.callouts()[0].token;
    host.fail_http(token).unwrap();
    let lines: Vec<String> = host.logs().into_iter().map(|l| l.message).collect();
    assert_eq!(lines, ["status11", "reset"], "{lines:?}");
    drop(s);

    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/")], true).unwrap();
    let token = host.callouts()[1].token;
    host.respond_http(token, 200, &[], "ok").unwrap();
    let lines: Vec<String> = host.logs().into_iter().map(|l| l.message).collect();
    assert_eq!(lines[2..], ["status00", ""], "{lines:?}");
}
