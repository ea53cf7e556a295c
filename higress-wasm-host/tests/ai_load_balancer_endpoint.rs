//! examples/ai-load-balancer's compiled module, modes `prefix_cache` and
//! `endpoint_metrics`, in the wasm-mode host under ABI 0.2.100: a real
//! `redis-server` behind `proxy_redis_call`, upstream hosts carrying
//! `health_status` and their Prometheus text in `metrics`, and two VMs
//! (Envoy workers) sharing one process's shared data.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use higress_wasm_host::{AbiVersion, Action, HttpStream, TestHost};
use serde_json::json;
use std::collections::BTreeSet;

const REDIS: &str = "outbound|6379||redis.static";
const ROUTE: &str = "llm-route";
const UPSTREAM: &str = "outbound|8000||vllm.static";
const TABLE: &str = "higress:global_least_request_table:llm-route:outbound|8000||vllm.static";

fn module() -> higress_wasm_host::PluginModule {
    common::module("ai-load-balancer")
}

fn healthy(address: &str, metrics: &str) -> (String, String) {
    (
        address.to_owned(),
        json!({"health_status": "Healthy", "metrics": metrics}).to_string(),
    )
}

fn chat(turns: &[(&str, &str)]) -> String {
    let messages: Vec<_> = turns
        .iter()
        .map(|(r, c)| json!({"role": r, "content": c}))
        .collect();
    json!({"model": "qwen-turbo", "messages": messages}).to_string()
}

/// Headers held, then the body; returns the stream.
fn send<'h>(host: &'h TestHost, body: &str, body_action: Action) -> HttpStream<'h> {
    let mut s = host.http_stream();
    s.set_route_name(ROUTE).set_cluster_name(UPSTREAM);
    let headers = [
        (":path", "/v1/chat/completions"),
        (":method", "POST"),
        (":authority", "llm.example.com"),
        ("content-type", "application/json"),
    ];
    assert_eq!(
        s.send_request_headers(&headers, false).unwrap(),
        Action::Pause,
        "headers held (ABI 0.2.100 StopIteration)"
    );
    assert!(s.is_request_paused());
    assert_eq!(s.send_request_body(body, true).unwrap(), body_action);
    s
}

fn finish(host: &TestHost, mut s: HttpStream<'_>) {
    s.send_response_headers(&[(":status", "200")], false)
        .unwrap();
    s.send_response_body("{}", true).unwrap();
    s.done().unwrap();
    host.run_until_idle();
}

/// The text of a bulk-string reply (`None` for a nil one).
fn bulk(reply: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(reply).into_owned();
    if text.starts_with("$-1") {
        return None;
    }
    let (_, rest) = text.split_once("\r\n").expect("a bulk reply");
    Some(rest.trim_end_matches("\r\n").to_owned())
}

fn int(reply: &[u8]) -> i64 {
    let text = String::from_utf8_lossy(reply);
    text.trim_start_matches(':').trim().parse().unwrap()
}

fn count(redis: &common::Redis, endpoint: &str) -> i64 {
    bulk(&redis.command(None, &["HGET", TABLE, endpoint])).map_or(0, |c| c.parse().unwrap())
}

fn sha1(redis: &common::Redis, text: &str) -> String {
    bulk(&redis.command(None, &["EVAL", "return redis.sha1hex(ARGV[1])", "0", text]))
        .unwrap()
        .to_uppercase()
}

fn xor(a: &str, b: &str) -> String {
    let byte = |s: &str, i: usize| u8::from_str_radix(&s[i..i + 2], 16).unwrap();
    (0..a.len())
        .step_by(2)
        .map(|i| format!("{:02X}", byte(a, i) ^ byte(b, i)))
        .collect()
}

// ----- prefix_cache ------------------------------------------------------------------------------

fn prefix_config(ttl: u32) -> String {
    json!({"lb_type": "endpoint", "lb_policy": "prefix_cache",
           "lb_config": {"serviceFQDN": "redis.static", "servicePort": 6379, "redisKeyTTL": ttl}})
    .to_string()
}

#[test]
fn prefix_cache_misses_go_least_loaded_and_hits_stick() {
    let redis = common::Redis::start(None);
    for (endpoint, n) in [
        ("10.0.0.1:80", "4"),
        ("10.0.0.2:80", "0"),
        ("10.0.0.3:80", "2"),
    ] {
        redis.command(None, &["HSET", TABLE, endpoint, n]);
    }
    let hosts = [
        healthy("10.0.0.1:80", ""),
        healthy("10.0.0.2:80", ""),
        healthy("10.0.0.3:80", ""),
        (
            "10.0.0.9:80".to_owned(),
            r#"{"health_status":"Unhealthy"}"#.to_owned(),
        ),
    ];
    let host = TestHost::builder()
        .redis_server(REDIS, redis.addr)
        .upstream_hosts(hosts)
        .start(&module(), prefix_config(600))
        .unwrap();
    assert_eq!(host.abi(), AbiVersion::V0_2_100);

    // A new conversation: the least loaded endpoint, counted, remembered.
    let first = send(&host, &chat(&[("user", "hi")]), Action::Pause);
    assert_eq!(host.run_until_idle(), 1, "one EVAL");
    assert!(!first.is_request_paused());
    assert_eq!(
        first.upstream_override_host().as_deref(),
        Some("10.0.0.2:80")
    );
    assert!(first.upstream_request_complete());
    assert_eq!(count(&redis, "10.0.0.2:80"), 1);
    let k1 = sha1(&redis, "user:hi");
    assert_eq!(
        bulk(&redis.command(None, &["GET", &k1])).as_deref(),
        Some("10.0.0.2:80")
    );
    finish(&host, first);
    assert_eq!(count(&redis, "10.0.0.2:80"), 0, "released at stream done");

    // The follow-up goes to the same endpoint though it is now the busiest,
    // and refreshes the TTL of the prefix it matched.
    redis.command(None, &["HSET", TABLE, "10.0.0.2:80", "9"]);
    redis.command(None, &["EXPIRE", &k1, "5"]);
    let turns = [
        ("user", "hi"),
        ("assistant", "Hi! How can I assist you today?"),
        ("user", "write a short story"),
    ];
    let second = send(&host, &chat(&turns), Action::Pause);
    host.run_until_idle();
    assert_eq!(
        second.upstream_override_host().as_deref(),
        Some("10.0.0.2:80")
    );
    assert!(
        int(&redis.command(None, &["TTL", &k1])) > 500,
        "TTL refreshed"
    );
    let k2 = xor(
        &k1,
        &sha1(
            &redis,
            "assistant:Hi! How can I assist you today?user:write a short story",
        ),
    );
    assert_eq!(
        bulk(&redis.command(None, &["GET", &k2])).as_deref(),
        Some("10.0.0.2:80")
    );
    assert_eq!(count(&redis, "10.0.0.2:80"), 10);
    finish(&host, second);
    assert_eq!(count(&redis, "10.0.0.2:80"), 9);
    assert!(!host.vm_failed(), "{:?}", host.traps());
    host.assert_idle();
}

#[test]
fn prefix_cache_with_redis_down_continues_without_override() {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let host = TestHost::builder()
        .redis_server(REDIS, addr)
        .upstream_hosts([healthy("10.0.0.1:80", "")])
        .start(&module(), prefix_config(600))
        .unwrap();
    let s = send(&host, &chat(&[("user", "hi")]), Action::Pause);
    host.run_until_idle();
    assert!(!s.is_request_paused());
    assert!(s.upstream_request_complete());
    assert_eq!(s.upstream_override_host(), None);
    assert!(!host.logs_containing("Redis eval failed").is_empty());
    finish(&host, s);
    host.assert_idle();
}

// ----- endpoint_metrics --------------------------------------------------------------------------

fn gauge(name: &str, value: f64) -> String {
    format!("# HELP {name} x\n# TYPE {name} gauge\n{name}{{model_name=\"m\"}} {value}\n")
}

fn metrics_config(lb_config: serde_json::Value) -> String {
    json!({"lb_type": "endpoint", "lb_policy": "metrics_based", "lb_config": lb_config}).to_string()
}

/// The endpoint picked for one request (synchronously in the body hook).
fn metrics_pick(host: &TestHost) -> Option<String> {
    let s = send(
        host,
        r#"{"model":"adapter-a","messages":[{"role":"user","content":"hi"}]}"#,
        Action::Continue,
    );
    assert!(!s.is_request_paused());
    assert!(s.upstream_request_complete());
    let pick = s.upstream_override_host();
    finish(host, s);
    pick
}

#[test]
fn endpoint_metrics_least_and_default_pick_from_the_hosts_metrics() {
    let waiting = "vllm:num_requests_waiting";
    let hosts = [
        // Range 1..30 over 3: only [1, 10.67] is kept.
        healthy("10.0.0.1:80", &gauge(waiting, 20.0)),
        healthy("10.0.0.2:80", &gauge(waiting, 1.0)),
        healthy("10.0.0.3:80", &gauge(waiting, 30.0)),
    ];
    let host = TestHost::builder()
        .upstream_hosts(hosts)
        .start(
            &module(),
            metrics_config(json!({"metric_policy": "least", "target_metric": waiting})),
        )
        .unwrap();
    assert_eq!(host.abi(), AbiVersion::V0_2_100);
    for _ in 0..5 {
        assert_eq!(metrics_pick(&host).as_deref(), Some("10.0.0.2:80"));
    }
    assert!(host.callouts().is_empty(), "no Redis");

    // default: the endpoint with the LoRA adapter loaded.
    let vllm = |waiting: f64, kv: f64, adapters: &str| {
        format!(
            "{}{}{}# TYPE vllm:lora_requests_info gauge\nvllm:lora_requests_info{{max_lora=\"4\",running_lora_adapters=\"{adapters}\"}} 1.7e9\n",
            gauge("vllm:num_requests_running", 1.0),
            gauge("vllm:num_requests_waiting", waiting),
            gauge("vllm:gpu_cache_usage_perc", kv)
        )
    };
    let hosts = [
        healthy("10.0.0.1:80", &vllm(0.0, 0.1, "")),
        healthy("10.0.0.2:80", &vllm(1.0, 0.6, "adapter-a")),
    ];
    let host = TestHost::builder()
        .upstream_hosts(hosts)
        .start(&module(), metrics_config(json!({"rate_limit": 0.6})))
        .unwrap();
    assert_eq!(metrics_pick(&host).as_deref(), Some("10.0.0.2:80"));
    assert!(!host.vm_failed(), "{:?}", host.traps());
}

/// Two workers of one gateway: with Go's per-VM window each lets the
/// favourite take its own share; with `rate_limit_scope: gateway` the
/// share is counted over both.
#[test]
fn endpoint_metrics_rate_limit_per_vm_or_per_gateway() {
    let waiting = "vllm:num_requests_waiting";
    let hosts = [
        healthy("10.0.0.1:80", &gauge(waiting, 0.0)),
        healthy("10.0.0.2:80", &gauge(waiting, 9.0)),
    ];
    for (scope, expected) in [
        // Each VM alternates on its own: both start with the favourite.
        (
            "vm",
            ["10.0.0.1:80", "10.0.0.1:80", "10.0.0.2:80", "10.0.0.2:80"],
        ),
        // One window: the second worker sees the first one's pick.
        (
            "gateway",
            ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.1:80", "10.0.0.2:80"],
        ),
    ] {
        let config = metrics_config(json!({"metric_policy": "least", "target_metric": waiting,
            "rate_limit": 0.5, "rate_limit_scope": scope}));
        let a = TestHost::builder()
            .vm_id("llm")
            .upstream_hosts(hosts.clone())
            .start(&module(), config.clone())
            .unwrap();
        let b = TestHost::builder()
            .vm_id("llm")
            .upstream_hosts(hosts.clone())
            .shared_state(a.shared_state())
            .start(&module(), config)
            .unwrap();
        let picks = [
            metrics_pick(&a).unwrap(),
            metrics_pick(&b).unwrap(),
            metrics_pick(&a).unwrap(),
            metrics_pick(&b).unwrap(),
        ];
        assert_eq!(picks, expected, "{scope}");
        let seen: BTreeSet<_> = picks.iter().collect();
        assert_eq!(seen.len(), 2);
    }
}
