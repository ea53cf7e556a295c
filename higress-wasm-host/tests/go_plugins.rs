//! Real Go Higress plugins (Go 1.24 wasip1, ABI 0.2.100) from the PyPI
//! package `gpustack-higress-plugins`, installed by this test into
//! `target/gpustack-higress-plugins` with pip (never committed). If pip
//! cannot install it, each test says so and returns.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use higress_wasm_host::{AbiVersion, Action, MetricValue, PluginModule, TestHost};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

fn plugin(name: &str) -> Option<PluginModule> {
    static INSTALL: Mutex<Option<bool>> = Mutex::new(None);
    let dir = common::workspace()
        .join("target")
        .join("gpustack-higress-plugins");
    let mut installed = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if installed.is_none() {
        let ok = dir.join("gpustack_higress_plugins").is_dir()
            || Command::new("python3")
                .args(["-m", "pip", "install", "--quiet", "--no-deps", "--target"])
                .arg(&dir)
                .arg("gpustack-higress-plugins")
                .status()
                .is_ok_and(|s| s.success());
        *installed = Some(ok);
    }
    if *installed != Some(true) {
        eprintln!(
            "SKIPPED: pip could not install gpustack-higress-plugins into {}",
            dir.display()
        );
        return None;
    }
    let base: PathBuf = dir
        .join("gpustack_higress_plugins")
        .join("plugins")
        .join(name);
    let version = std::fs::read_dir(&base)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    Some(PluginModule::load(version.join("plugin.wasm")).unwrap())
}

#[test]
fn ip_acl_loads_with_abi_0_2_100_and_serves() {
    let Some(module) = plugin("gpustack-ip-acl") else {
        return;
    };
    let host = TestHost::builder()
        .plugin_name("gpustack-ip-acl")
        .start(&module, "{}")
        .unwrap();
    assert_eq!(host.abi(), AbiVersion::V0_2_100);
    assert_eq!(
        host.logs_containing("plugin start successfully").len(),
        1,
        "{:?}",
        host.logs()
    );
    let mut s = host.http_stream();
    assert_eq!(
        s.send_request_headers(
            &[(":method", "GET"), (":path", "/"), (":authority", "a")],
            true
        )
        .unwrap(),
        Action::Continue
    );
    assert!(s.upstream_request_headers().is_some());
    s.send_response_headers(&[(":status", "200")], true)
        .unwrap();
    assert_eq!(s.client_response_status(), Some(200));
    drop(s);
    host.assert_idle();
}

const RATE: &str = r#"{"rule_name": "r1",
    "limit_combinations": [{"name": "all", "is_fallback": true, "query_limits": {"per_minute": 1}}]}"#;

fn limited(host: &TestHost) -> Option<u32> {
    let mut s = host.http_stream();
    s.send_request_headers(
        &[
            (":method", "GET"),
            (":path", "/v1/chat/completions"),
            (":authority", "a"),
        ],
        true,
    )
    .unwrap();
    host.run_until_idle();
    if s.upstream_request_headers().is_some() {
        None
    } else {
        Some(s.client_response_status().unwrap_or(0))
    }
}

#[test]
fn rate_limit_shares_its_count_across_two_workers_through_shared_data() {
    let Some(module) = plugin("gpustack-rate-limit") else {
        return;
    };
    let a = TestHost::builder().vm_id("v").start(&module, RATE).unwrap();
    let b = TestHost::builder()
        .vm_id("v")
        .shared_state(a.shared_state())
        .start(&module, RATE)
        .unwrap();
    assert_eq!(limited(&a), None, "the first request is within the quota");
    let status = limited(&b);
    assert!(
        status.is_some_and(|s| s >= 400),
        "the second, on the other worker, is over: {status:?}"
    );
    let work = a.work();
    assert!(work
        .iter()
        .any(|w| w.hostcalls.contains(&"proxy_set_shared_data")));
}

#[test]
fn rate_limit_with_redis_runs_its_script_on_a_real_server() {
    let Some(module) = plugin("gpustack-rate-limit") else {
        return;
    };
    let redis = common::Redis::start(None);
    let config = r#"{"rule_name": "r1",
        "redis": {"service_name": "redis.static", "service_port": 6379, "timeout": 1000},
        "limit_combinations": [{"name": "all", "is_fallback": true, "query_limits": {"per_minute": 1}}]}"#;
    let host = TestHost::builder()
        .redis_server("outbound|6379||redis.static", redis.addr)
        .start(&module, config)
        .unwrap();
    assert!(!host.redis_inits().is_empty(), "{:?}", host.logs());
    assert_eq!(limited(&host), None, "{:?}", host.logs());
    let status = limited(&host);
    assert!(
        status.is_some_and(|s| s >= 400),
        "over the quota: {status:?} {:?}",
        host.logs()
    );
    let redis_calls = host
        .work()
        .iter()
        .filter(|w| w.callback == "proxy_on_redis_call_response")
        .count();
    assert!(redis_calls >= 2, "{redis_calls}");
    // The count lives in the real server.
    let keys = redis.command(None, &["KEYS", "*"]);
    assert!(
        !keys.starts_with(b"*0"),
        "{}",
        String::from_utf8_lossy(&keys)
    );
    host.assert_idle();
}

#[test]
fn ai_statistics_defines_and_counts_token_metrics() {
    let Some(module) = plugin("ai-statistics") else {
        return;
    };
    let host = TestHost::start(&module, "{}").unwrap();
    let mut s = host.http_stream();
    s.set_route_name("r1")
        .set_cluster_name("outbound|80||llm.static");
    s.send_request_headers(
        &[
            (":method", "POST"),
            (":path", "/v1/chat/completions"),
            (":authority", "a"),
            ("content-type", "application/json"),
        ],
        false,
    )
    .unwrap();
    s.send_request_body(
        r#"{"model":"m1","messages":[{"role":"user","content":"hi"}]}"#,
        true,
    )
    .unwrap();
    s.send_response_headers(
        &[(":status", "200"), ("content-type", "application/json")],
        false,
    )
    .unwrap();
    s.send_response_body(
        r#"{"id":"x","model":"m1","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":5,"total_tokens":12}}"#,
        true,
    )
    .unwrap();
    s.done().unwrap();
    let metrics = host.metrics();
    let input: Vec<_> = metrics
        .iter()
        .filter(|(name, _)| name.ends_with("input_token"))
        .collect();
    assert_eq!(input.len(), 1, "{metrics:?} {:?}", host.logs());
    assert_eq!(input[0].1, &MetricValue::Counter(7));
}
