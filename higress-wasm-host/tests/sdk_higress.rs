//! The SDK's Higress-only host calls, compiled: `tests/plugins/hostcalls-higress`
//! (built with the SDK for wasm32-wasip1, ABI 0.2.100 first) in the
//! wasm-mode host's Higress mode. Each test checks what the host observed:
//! the override host, the injected data, Redis commands on a real
//! `redis-server`, metric values, shared data and foreign-function calls.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use higress_wasm_host::{
    AbiVersion, Action, CalloutKind, LogLevel, MetricValue, TestHost, TestHostBuilder,
};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

const PLUGIN: &str = "e2e-hostcalls-higress";
const CLUSTER: &str = "outbound|6379||redis.static";
const CONFIG: &str =
    r#"{"redis": {"service_name": "redis.static", "service_port": 6379, "timeout": 500}}"#;

fn builder(redis: Option<SocketAddr>) -> TestHostBuilder {
    let b = TestHost::builder()
        .upstream_host("10.0.0.1:80", "Healthy", Some("vllm:num_requests_waiting 7\n"))
        .upstream_host("10.0.0.2:80", "Unhealthy", Some("vllm:num_requests_waiting 0\n"))
        .upstream_host(
            "10.0.0.3:80",
            "Healthy",
            Some("# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model_name=\"qwen\"} 2\n"),
        )
        .upstream_host("10.0.0.4:80", "Degraded", None);
    match redis {
        Some(addr) => b.redis_server(CLUSTER, addr),
        None => b.clusters([CLUSTER]),
    }
}

fn start(b: TestHostBuilder) -> TestHost {
    let host = b.start(&common::module(PLUGIN), CONFIG).unwrap();
    assert_eq!(
        host.abi(),
        AbiVersion::V0_2_100,
        "an SDK module runs as 0.2.100 on Higress"
    );
    host
}

#[test]
fn the_body_hook_overrides_the_upstream_host_from_higress_metadata() {
    let host = start(builder(None));
    let mut s = host.http_stream();
    let action = s
        .send_request_headers(
            &[
                (":path", "/v1/chat"),
                (":method", "POST"),
                ("x-hc-op", "pick"),
            ],
            false,
        )
        .unwrap();
    // 0.2.100: StopIteration passes through, the headers are held and the
    // body hook runs.
    assert_eq!(action, Action::Pause);
    assert!(s.upstream_request_headers().is_none());
    s.send_request_body(br#"{"model":"qwen"}"#, true).unwrap();
    // Healthy hosts 10.0.0.1 (7 waiting) and 10.0.0.3 (2 waiting): the
    // plugin parsed the metrics out of Higress's JSON and took the lower.
    assert_eq!(s.upstream_override_host().as_deref(), Some("10.0.0.3:80"));
    assert_eq!(
        s.upstream_request_header("x-picked").unwrap(),
        "10.0.0.3:80"
    );
    assert_eq!(s.upstream_request_header("x-hosts").unwrap(), "4");
    assert_eq!(
        host.metric("host.10.0.0.3:80.hc_picks"),
        Some(MetricValue::Counter(1))
    );
    s.done().unwrap();
    host.assert_idle();
}

#[test]
fn response_data_is_injected_into_the_filter_chain() {
    let host = start(builder(None));
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), ("x-hc-op", "inject")], true)
        .unwrap();
    s.send_response_headers(&[(":status", "200")], false)
        .unwrap();
    s.send_response_body(b"inject", true).unwrap();
    assert_eq!(
        s.injected_encoded_data(),
        vec![(b"data: injected\n\n".to_vec(), true)]
    );
    // The injected data went down the chain at once, before the chunk the
    // hook let continue.
    assert_eq!(s.client_response_body(), b"data: injected\n\ninject");
    s.done().unwrap();
}

#[test]
fn redis_through_proxy_redis_call_with_metrics_from_the_reply() {
    let redis = common::Redis::start(None);
    redis.command(None, &["SET", "hc:k", "41"]);
    let host = start(builder(Some(redis.addr)));
    let mut s = host.http_stream();
    let action = s
        .send_request_headers(
            &[(":path", "/"), ("x-hc-op", "redis"), ("x-hc-key", "k")],
            true,
        )
        .unwrap();
    assert_eq!(action, Action::Pause, "waits for Redis");
    assert_eq!(host.run_until_idle(), 1);
    assert_eq!(s.request_resume_count(), 1);
    assert_eq!(s.upstream_request_header("x-redis-count").unwrap(), "42");
    assert_eq!(redis.command(None, &["GET", "hc:k"]), b"$2\r\n42\r\n");
    match &host.callouts()[0].kind {
        CalloutKind::Redis { service, query } => {
            assert!(service.starts_with(CLUSTER), "{service}");
            assert_eq!(query, &common::encode(&["INCR", "hc:k"]));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(host.redis_inits().len(), 1);
    assert_eq!(host.metric("hc_redis_last"), Some(MetricValue::Gauge(42)));
    assert_eq!(
        host.metric("hc_redis_count"),
        Some(MetricValue::Histogram(vec![42]))
    );
    s.done().unwrap();
    host.assert_idle();
}

#[test]
fn shared_data_is_shared_by_two_vms() {
    let a = start(builder(None).vm_id("hc"));
    let b = start(builder(None).vm_id("hc").shared_state(a.shared_state()));
    for (host, expected) in [(&a, "1"), (&b, "2"), (&a, "3")] {
        let mut s = host.http_stream();
        s.send_request_headers(&[(":path", "/"), ("x-hc-op", "shared")], true)
            .unwrap();
        assert_eq!(s.upstream_request_header("x-shared").unwrap(), expected);
        s.done().unwrap();
    }
    let stored = a.shared_data("hc_seen").unwrap();
    assert_eq!(serde_json::from_slice::<u64>(&stored).unwrap(), 3);
}

#[test]
fn foreign_functions_reach_the_host() {
    let seen: Rc<RefCell<Vec<Vec<u8>>>> = Rc::default();
    let record = seen.clone();
    let host = start(builder(None).log_level(LogLevel::Warn).foreign_function(
        "hc_echo",
        move |arg| {
            record.borrow_mut().push(arg.to_vec());
            Some([b"echo:".as_slice(), arg].concat())
        },
    ));
    let mut s = host.http_stream();
    s.send_request_headers(
        &[(":path", "/"), ("x-hc-op", "foreign"), ("x-hc-arg", "hi")],
        true,
    )
    .unwrap();
    assert_eq!(*seen.borrow(), vec![b"hi".to_vec()]);
    assert_eq!(s.upstream_request_header("x-foreign").unwrap(), "echo:hi");
    // Higress's `get_log_level` answers the host's level (warn = 3).
    assert_eq!(s.upstream_request_header("x-log-level").unwrap(), "3");
    s.done().unwrap();
}

#[test]
fn route_call_holds_the_response_until_the_callback_rewrote_it() {
    let host = start(builder(None));
    let mut s = host.http_stream();
    s.send_request_headers(
        &[(":path", "/mcp"), (":method", "GET"), ("x-hc-op", "route")],
        false,
    )
    .unwrap();
    s.send_request_body(b"q", true).unwrap();
    let up = |name: &str| s.upstream_request_header(name).map(|v| v.to_string());
    assert_eq!(up(":method").as_deref(), Some("POST"));
    assert_eq!(up(":path").as_deref(), Some("/routed"));
    assert_eq!(up("x-envoy-original-path").as_deref(), Some("/mcp"));
    assert_eq!(s.upstream_request_body(), b"new-body");
    // 0.2.100: the response headers' StopIteration passes through, so the
    // body callbacks run while the headers are held.
    let action = s
        .send_response_headers(&[(":status", "200"), ("content-length", "5")], false)
        .unwrap();
    assert_eq!(action, Action::Pause);
    assert!(s.client_response_headers().is_none());
    s.send_response_body(b"hello", true).unwrap();
    assert_eq!(s.client_response_body(), b"routed:200:hello");
    s.done().unwrap();
    host.assert_idle();
}
