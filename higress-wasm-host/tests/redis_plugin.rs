//! examples/redis-plugin's compiled module against a real `redis-server`:
//! `proxy_redis_init` / `proxy_redis_call` relayed over TCP, the reply read
//! from buffer 9 in `proxy_on_redis_call_response` on the root context.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use higress_wasm_host::{Action, CalloutKind, HttpStream, LogLevel, TestHost};
use std::net::{SocketAddr, TcpListener};

const CLUSTER: &str = "outbound|6379||redis.static";

fn config(password: &str) -> String {
    format!(
        r#"{{"redis": {{"service_name": "redis.static", "service_port": 6379, "password": "{password}", "timeout": 500}}, "key": "greeting"}}"#
    )
}

fn host(redis: SocketAddr, password: &str) -> TestHost {
    TestHost::builder()
        .redis_server(CLUSTER, redis)
        .start(&common::module("redis-plugin"), config(password))
        .unwrap()
}

fn request(host: &TestHost) -> HttpStream<'_> {
    let mut s = host.http_stream();
    let action = s
        .send_request_headers(
            &[(":path", "/"), (":method", "GET"), (":authority", "gw")],
            true,
        )
        .unwrap();
    assert_eq!(action, Action::Pause, "waits for Redis");
    assert!(s.is_request_paused());
    assert_eq!(host.run_until_idle(), 1);
    assert!(!s.is_request_paused(), "resumed once Redis answered");
    assert_eq!(s.request_resume_count(), 1);
    assert!(s.upstream_request_headers().is_some());
    s
}

#[test]
fn a_present_value_is_set_and_logged() {
    let redis = common::Redis::start(None);
    redis.command(None, &["SET", "greeting", "hello world"]);
    let host = host(redis.addr, "");
    let s = request(&host);
    assert_eq!(
        s.upstream_request_header("x-redis-value").unwrap(),
        "hello world"
    );
    assert_eq!(
        host.logs_containing("redis greeting = hello world").len(),
        1
    );
    assert_eq!(host.redis_inits().len(), 1);
    let calls = host.callouts();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].token & 3, 3, "Redis tokens are 3 mod 4");
    match &calls[0].kind {
        CalloutKind::Redis { service, query } => {
            assert!(service.starts_with(CLUSTER), "{service}");
            assert_eq!(query, &common::encode(&["GET", "greeting"]));
        }
        other => panic!("{other:?}"),
    }
    // The reply came back on the root context, then the stream resumed.
    let root = host.root_context_id();
    let work = host.work();
    let reply = work
        .iter()
        .find(|w| w.callback == "proxy_on_redis_call_response")
        .unwrap();
    assert_eq!(reply.context_id, root);
    assert_eq!(reply.stream, Some(s.context_id()));
    assert!(
        reply.hostcalls.contains(&"proxy_get_buffer_bytes"),
        "{:?}",
        reply.hostcalls
    );
    assert!(reply.hostcalls.contains(&"proxy_set_effective_context"));
    assert!(reply.hostcalls.contains(&"proxy_continue_stream"));
    host.assert_idle();
}

#[test]
fn auth_goes_first_on_a_password_protected_server() {
    let redis = common::Redis::start(Some("s3cret"));
    redis.command(Some("s3cret"), &["SET", "greeting", "behind auth"]);
    let host = host(redis.addr, "s3cret");
    let s = request(&host);
    assert_eq!(
        s.upstream_request_header("x-redis-value").unwrap(),
        "behind auth"
    );
    // Two requests share the connection opened after the init.
    let s2 = request(&host);
    assert_eq!(
        s2.upstream_request_header("x-redis-value").unwrap(),
        "behind auth"
    );
    host.assert_idle();
}

#[test]
fn a_missing_key_leaves_the_request_unchanged() {
    let redis = common::Redis::start(None);
    let host = host(redis.addr, "");
    let s = request(&host);
    assert!(s.upstream_request_header("x-redis-value").is_none());
    assert_eq!(host.logs_containing("redis greeting is not set").len(), 1);
    assert!(host.logs_at(LogLevel::Error).is_empty());
    host.assert_idle();
}

#[test]
fn redis_down_fails_open_with_an_error_log() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let host = host(addr, "");
    let s = request(&host);
    assert!(s.upstream_request_header("x-redis-value").is_none());
    let errors = host.logs_at(LogLevel::Error);
    assert!(
        errors
            .iter()
            .any(|l| l.message.contains("network error or timeout")
                && l.message.contains("fail open")),
        "{errors:?}"
    );
    host.assert_idle();
}

#[test]
fn a_reply_answered_by_the_test_reaches_the_plugin() {
    // No server: the test plays Redis.
    let host = TestHost::start(&common::module("redis-plugin"), config("")).unwrap();
    let mut s = host.http_stream();
    assert_eq!(
        s.send_request_headers(
            &[(":path", "/"), (":method", "GET"), (":authority", "gw")],
            true
        )
        .unwrap(),
        Action::Pause
    );
    let token = s.callouts()[0].token;
    host.respond_redis(token, "$2\r\nhi\r\n").unwrap();
    assert_eq!(s.upstream_request_header("x-redis-value").unwrap(), "hi");
    host.assert_idle();
}

#[test]
fn a_reply_after_the_stream_ended_is_not_delivered_to_it() {
    let host = TestHost::start(&common::module("redis-plugin"), config("")).unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(
        &[(":path", "/"), (":method", "GET"), (":authority", "gw")],
        true,
    )
    .unwrap();
    let token = s.callouts()[0].token;
    // The client goes away before Redis answers.
    s.done().unwrap();
    drop(s);
    host.respond_redis(token, "$2\r\nhi\r\n").unwrap();
    // The reply reached the root; the SDK could not make the gone stream
    // effective again, and the VM is still healthy.
    let reply = host
        .work()
        .into_iter()
        .find(|w| w.callback == "proxy_on_redis_call_response")
        .unwrap();
    assert_eq!(reply.context_id, host.root_context_id());
    assert!(
        !reply.hostcalls.contains(&"proxy_continue_stream"),
        "{:?}",
        reply.hostcalls
    );
    assert!(!host.vm_failed(), "{:?}", host.traps());
    assert!(
        host.logs_containing("redis greeting = hi").is_empty(),
        "{:?}",
        host.logs()
    );
    // And the next request is served.
    let mut s = host.http_stream();
    s.send_request_headers(
        &[(":path", "/"), (":method", "GET"), (":authority", "gw")],
        true,
    )
    .unwrap();
    let token = s.callouts()[0].token;
    host.respond_redis(token, "$2\r\nok\r\n").unwrap();
    assert_eq!(s.upstream_request_header("x-redis-value").unwrap(), "ok");
}

#[test]
fn an_unanswered_redis_call_times_out_after_the_client_timeout() {
    let host = TestHost::start(&common::module("redis-plugin"), config("")).unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(
        &[(":path", "/"), (":method", "GET"), (":authority", "gw")],
        true,
    )
    .unwrap();
    host.advance_time(std::time::Duration::from_millis(499));
    assert!(s.is_request_paused());
    host.advance_time(std::time::Duration::from_millis(1));
    assert!(!s.is_request_paused(), "failed open after 500 ms");
    assert!(!host.logs_containing("network error or timeout").is_empty());
    host.assert_idle();
}
