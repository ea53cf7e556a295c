//! redis-plugin in the native test host, against a real `redis-server`
//! (started by the test on a free loopback port): the value is put in the
//! request header and logged, a missing key leaves the request as it was,
//! and with Redis down the request continues (fail open) with an error log.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../../higress-wrapper/tests/common/redis_server.rs"]
#[allow(dead_code)]
mod redis_server;

use redis_server::RedisServer;
use std::net::{SocketAddr, TcpListener};

higress_test_host::both_modes! {
plugin: redis_plugin::Plugin,
package: "redis-plugin",

const CLUSTER: &str = "outbound|6379||redis.static";
const CONFIG: &str = r#"{
    "redis": {"service_name": "redis.static", "service_port": 6379, "password": "", "timeout": 500},
    "key": "greeting",
    "key_param": "user"
}"#;

fn host(redis: SocketAddr) -> TestHost {
    start_with(CONFIG, |b| b.redis_server(CLUSTER, redis))
        .unwrap()
}

fn request(host: &TestHost) -> HttpStream<'_> {
    request_to(host, "/")
}

fn request_to<'h>(host: &'h TestHost, path: &str) -> HttpStream<'h> {
    let mut s = host.http_stream();
    let action = s
        .send_request_headers(
            &[(":path", path), (":method", "GET"), (":authority", "gw")],
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
    let server = RedisServer::start();
    redis_cmd!(server.client(), "SET", "greeting", "hello world");
    let host = host(server.addr());
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
    host.assert_idle();
}

#[test]
fn the_query_parameter_picks_the_key() {
    let server = RedisServer::start();
    redis_cmd!(server.client(), "SET", "greeting:alice b", "hi alice");
    let host = host(server.addr());
    let s = request_to(&host, "/?user=alice+b&x=1");
    assert_eq!(
        s.upstream_request_header("x-redis-value").unwrap(),
        "hi alice"
    );
    assert_eq!(
        host.logs_containing("redis greeting:alice b = hi alice")
            .len(),
        1
    );
    host.assert_idle();
}

#[test]
fn a_missing_key_leaves_the_request_unchanged() {
    let server = RedisServer::start();
    let host = host(server.addr());
    let s = request(&host);
    assert!(s.upstream_request_header("x-redis-value").is_none());
    assert_eq!(host.logs_containing("redis greeting is not set").len(), 1);
    assert!(host.logs_at(LogLevel::Error).is_empty());
    host.assert_idle();
}

#[test]
fn redis_down_fails_open_with_an_error_log() {
    // An address nothing listens on.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let host = host(addr);
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
fn a_20_mb_value_is_logged_and_copied_capped() {
    let server = RedisServer::start();
    let value = vec![b'v'; 20 * 1024 * 1024];
    redis_cmd!(server.client(), "SET", "greeting", value);
    let host = start_with(r#"{"redis": {"service_name": "redis.static", "service_port": 6379, "timeout": 5000},
                "key": "greeting", "max_header_bytes": 100}"#, |b| b.redis_server(CLUSTER, server.addr()))
        .unwrap();
    let s = request(&host);
    // The header carries the first 100 bytes only.
    assert_eq!(
        s.upstream_request_header("x-redis-value").unwrap(),
        "v".repeat(100).as_str()
    );
    // One line, its length shown, a few hundred bytes instead of 20 MB.
    let lines = host.logs_containing("redis greeting = ");
    assert_eq!(lines.len(), 1);
    let line = &lines[0].message;
    assert!(
        line.ends_with(&format!(
            "{}... (20971520 bytes); cut to 100 bytes in x-redis-value",
            "v".repeat(64)
        )),
        "{line}"
    );
    let logged: usize = host.logs().iter().map(|l| l.message.len()).sum();
    assert!(logged < 1024, "{logged} bytes of log");
    host.assert_idle();
}

#[test]
fn a_zero_timeout_is_refused_naming_the_field() {
    let failure = start(
        r#"{"redis": {"service_name": "redis.static", "service_port": 6379, "timeout": 0}, "key": "k"}"#,
    )
    .unwrap_err();
    assert!(
        !failure
            .logs_containing("redis.timeout: a timeout of 0 ms would mean no timeout at all")
            .is_empty(),
        "{failure:?}"
    );
}

#[test]
fn redis_down_under_load_logs_a_few_lines_not_one_per_request() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let host = host(addr);
    for _ in 0..200 {
        let s = request(&host);
        assert!(s.upstream_request_header("x-redis-value").is_none());
    }
    let errors = host.logs_at(LogLevel::Error);
    assert!(
        (1..=higress_wrapper::logging::LINES_PER_SECOND as usize).contains(&errors.len()),
        "{} error lines for 200 failed requests: {errors:#?}",
        errors.len()
    );
    host.assert_idle();
}

#[test]
fn auth_goes_first_on_a_password_protected_server() {
    let server = RedisServer::start_with_password("s3cret");
    let mut client = server.client();
    redis_cmd!(client, "AUTH", "s3cret");
    redis_cmd!(client, "SET", "greeting", "behind auth");
    let config = CONFIG.replace(r#""password": """#, r#""password": "s3cret""#);
    let host = start_with(config, |b| b.redis_server(CLUSTER, server.addr())).unwrap();
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
fn a_reply_answered_by_the_test_reaches_the_plugin() {
    // No server: the test plays Redis.
    let host = start(CONFIG).unwrap();
    let mut s = host.http_stream();
    assert_eq!(
        s.send_request_headers(&[(":path", "/"), (":method", "GET"), (":authority", "gw")], true)
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
    let host = start(CONFIG).unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), (":method", "GET"), (":authority", "gw")], true)
        .unwrap();
    let token = s.callouts()[0].token;
    // The client goes away before Redis answers.
    s.done().unwrap();
    drop(s);
    host.respond_redis(token, "$2\r\nhi\r\n").unwrap();
    // The reply reached the root; the SDK could not make the gone stream
    // effective again, and the VM is still healthy.
    assert!(!host.vm_failed());
    wasm_only! {
        let reply = host
            .work()
            .into_iter()
            .find(|w| w.callback == "proxy_on_redis_call_response")
            .unwrap();
        assert_eq!(reply.context_id, host.root_context_id());
        assert!(!reply.hostcalls.contains(&"proxy_continue_stream"), "{:?}", reply.hostcalls);
    }
    assert!(
        host.logs_containing("redis greeting = hi").is_empty(),
        "{:?}",
        host.logs()
    );
    // And the next request is served.
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), (":method", "GET"), (":authority", "gw")], true)
        .unwrap();
    let token = s.callouts()[0].token;
    host.respond_redis(token, "$2\r\nok\r\n").unwrap();
    assert_eq!(s.upstream_request_header("x-redis-value").unwrap(), "ok");
}

#[test]
fn an_unanswered_redis_call_times_out_after_the_client_timeout() {
    let host = start(CONFIG).unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), (":method", "GET"), (":authority", "gw")], true)
        .unwrap();
    host.advance_time(std::time::Duration::from_millis(499));
    assert!(s.is_request_paused());
    host.advance_time(std::time::Duration::from_millis(1));
    assert!(!s.is_request_paused(), "failed open after 500 ms");
    assert!(!host.logs_containing("network error or timeout").is_empty());
    host.assert_idle();
}
}
