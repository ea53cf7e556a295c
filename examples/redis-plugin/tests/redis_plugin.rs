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

use higress_test_host::{Action, HttpStream, LogLevel, TestHost};
use redis_plugin::Plugin;
use redis_server::RedisServer;
use std::net::{SocketAddr, TcpListener};

const CLUSTER: &str = "outbound|6379||redis.static";
const CONFIG: &str = r#"{
    "redis": {"service_name": "redis.static", "service_port": 6379, "password": "", "timeout": 500},
    "key": "greeting"
}"#;

fn host(redis: SocketAddr) -> TestHost {
    TestHost::builder()
        .redis_server(CLUSTER, redis)
        .start::<Plugin>(CONFIG)
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
