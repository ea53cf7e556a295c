//! Requests waiting on Redis, through the native test host and a real
//! `redis-server`, when things go wrong: Redis down, killed mid-request,
//! slower than the timeout, AUTH (right, wrong, `NOAUTH` re-init), database
//! selection, a reply after the request ended, 200 concurrent requests
//! answered in random order, an unknown cluster, a panic in the reply path.
//! Every case ends with the request resumed or answered and nothing left
//! waiting (`assert_idle`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::redis_server::{RawClient, RedisServer, Resp};
use higress_test_host::{Action, CalloutKind, HttpStream, LogLevel, TestHost};
use higress_wrapper::cluster::FqdnCluster;
use higress_wrapper::prelude::*;
use higress_wrapper::redis::{RedisClient, RedisError};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

const CLUSTER: &str = "outbound|6379||redis.static";

#[derive(serde::Deserialize)]
struct Raw {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    database: u32,
    #[serde(default = "default_timeout")]
    timeout_ms: u64,
}

fn default_timeout() -> u64 {
    1000
}

struct Config {
    redis: RedisClient,
}

fn parse(json: &JsonValue) -> Result<Config, ConfigError> {
    let raw: Raw = higress_wrapper::config::from_json(json)?;
    let redis = RedisClient::builder(&FqdnCluster::new("redis.static", 6379))
        .username(raw.username)
        .password(raw.password)
        .database(raw.database)
        .timeout(Duration::from_millis(raw.timeout_ms))
        .build()?;
    Ok(Config { redis })
}

/// `x-key`: GET it and put the value in `x-value` (`<nil>` if missing);
/// `x-write`: SET it first; `x-panic`: panic once the reply is in.
fn on_request_headers(ctx: &mut HttpContext, config: &Config) -> HeaderAction {
    let Some(key) = ctx.request_header("x-key").map(|v| v.into_bytes()) else {
        return HeaderAction::Continue;
    };
    let write = ctx.request_header("x-write").map(|v| v.into_bytes());
    let panic = ctx.request_header("x-panic").is_some();
    let redis = config.redis.clone();
    let handle = ctx.handle();
    HeaderAction::wait(async move {
        if let Some(value) = write {
            redis.set(key.clone(), value).await?;
        }
        let value = redis.get(key).await?;
        assert!(!panic, "boom in the reply path");
        handle.with(|ctx| {
            ctx.set_request_header("x-value", value.unwrap_or_else(|| b"<nil>".to_vec()))
        });
        Ok::<_, RedisError>(HeaderAction::Continue)
    })
}

higress_wrapper::set_ctx! {
    name: "redis-failures",
    config: Config,
    parse_config: parse,
    on_request_headers: on_request_headers,
}

fn host(addr: SocketAddr, config: &str) -> TestHost {
    TestHost::builder()
        .redis_server(CLUSTER, addr)
        .start::<Plugin>(config)
        .unwrap()
}

/// Sends request headers asking for `key`; the hook must wait on Redis.
fn request<'h>(host: &'h TestHost, headers: &[(&str, &str)]) -> HttpStream<'h> {
    let mut s = host.http_stream();
    let mut all = vec![(":path", "/"), (":method", "GET"), (":authority", "gw")];
    all.extend_from_slice(headers);
    assert_eq!(s.send_request_headers(&all, true).unwrap(), Action::Pause);
    assert!(s.is_request_paused());
    s
}

/// The request reached the upstream, resumed exactly once.
fn assert_resumed(s: &HttpStream<'_>) {
    assert!(!s.is_request_paused());
    assert_eq!(s.request_resume_count(), 1);
    assert!(s.upstream_request_headers().is_some());
}

fn error_logs(host: &TestHost) -> Vec<String> {
    host.logs_at(LogLevel::Error)
        .into_iter()
        .map(|l| l.message)
        .collect()
}

/// An address nothing listens on.
fn dead_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

#[test]
fn a_value_reaches_the_upstream() {
    let server = RedisServer::start();
    redis_cmd!(server.client(), "SET", "greeting", "hello");
    let host = host(server.addr(), "{}");
    let s = request(&host, &[("x-key", "greeting")]);
    assert_eq!(host.run_until_idle(), 1);
    assert_resumed(&s);
    assert_eq!(s.upstream_request_header("x-value").unwrap(), "hello");
    // The init carried the database and buffering options; the call the
    // plain cluster name.
    let inits = host.redis_inits();
    assert_eq!(
        inits[0].service,
        format!("{CLUSTER}?db=0&buffer_flush_timeout=3&max_buffer_size_before_flush=1024")
    );
    match &host.callouts()[0].kind {
        CalloutKind::Redis { service, .. } => assert_eq!(service, CLUSTER),
        other => panic!("{other:?}"),
    }
    host.assert_idle();
}

#[test]
fn redis_down_fails_open() {
    let host = host(dead_address(), "{}");
    let s = request(&host, &[("x-key", "k")]);
    assert_eq!(host.run_until_idle(), 1);
    assert_resumed(&s);
    assert!(s.upstream_request_header("x-value").is_none());
    let errors = error_logs(&host);
    assert!(
        errors.iter().any(|l| l.contains("network error or timeout")
            && l.contains(CLUSTER)
            && l.contains("fail open")),
        "{errors:?}"
    );
    assert!(
        host.redis_failures()[0].contains("connect"),
        "{:?}",
        host.redis_failures()
    );
    host.assert_idle();
    // The next request tries again (and fails again), never hangs.
    let s2 = request(&host, &[("x-key", "k")]);
    host.run_until_idle();
    assert_resumed(&s2);
    host.assert_idle();
}

#[test]
fn redis_killed_mid_request() {
    let mut server = RedisServer::start();
    let host = host(server.addr(), r#"{"timeout_ms": 5000}"#);
    // A first request opens the connection.
    let s1 = request(&host, &[("x-key", "k")]);
    host.run_until_idle();
    assert_eq!(s1.upstream_request_header("x-value").unwrap(), "<nil>");
    // Freeze the server so the next command is in flight, unanswered, when
    // the process dies.
    server.pause();
    let s2 = request(&host, &[("x-key", "k")]);
    let pid = server.pid();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap();
    });
    let started = Instant::now();
    assert_eq!(host.run_until_idle(), 1);
    killer.join().unwrap();
    // The kill, not the 5 s timeout, ended the wait.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert_resumed(&s2);
    assert!(s2.upstream_request_header("x-value").is_none());
    assert!(error_logs(&host)
        .iter()
        .any(|l| l.contains("network error")));
    let failures = host.redis_failures();
    assert!(
        failures[0].contains("closed") || failures[0].contains("reset"),
        "{failures:?}"
    );
    server.kill();
    host.assert_idle();
}

#[test]
fn slow_redis_beyond_the_timeout() {
    let server = RedisServer::start();
    let host = host(server.addr(), r#"{"timeout_ms": 300}"#);
    server.pause();
    let s = request(&host, &[("x-key", "k")]);
    let started = Instant::now();
    assert_eq!(host.run_until_idle(), 1);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert_resumed(&s);
    assert!(s.upstream_request_header("x-value").is_none());
    assert!(
        host.redis_failures()[0].contains("timed out"),
        "{:?}",
        host.redis_failures()
    );
    assert!(error_logs(&host)
        .iter()
        .any(|l| l.contains("network error or timeout")));
    host.assert_idle();
    // Once the server thaws, requests work again (on a new connection).
    server.resume();
    let s2 = request(&host, &[("x-key", "k"), ("x-write", "back")]);
    host.run_until_idle();
    assert_eq!(s2.upstream_request_header("x-value").unwrap(), "back");
    host.assert_idle();
}

#[test]
fn a_call_answered_by_the_test_times_out_on_the_host_clock() {
    // No server: the test answers. The client's 200 ms op timeout runs on
    // the host clock, as Envoy's timer would.
    let host = TestHost::start::<Plugin>(r#"{"timeout_ms": 200}"#).unwrap();
    let s = request(&host, &[("x-key", "k")]);
    host.advance_time(Duration::from_millis(199));
    assert!(s.is_request_paused());
    host.advance_time(Duration::from_millis(1));
    assert_resumed(&s);
    assert!(error_logs(&host)
        .iter()
        .any(|l| l.contains("network error or timeout")));
    host.assert_idle();
}

#[test]
fn auth_with_the_right_password() {
    let server = RedisServer::start_with_password("s3cret");
    redis_cmd!(server.client(), "SET", "k", "secret-value");
    let host = host(server.addr(), r#"{"password": "s3cret"}"#);
    let s = request(&host, &[("x-key", "k")]);
    host.run_until_idle();
    assert_resumed(&s);
    assert_eq!(
        s.upstream_request_header("x-value").unwrap(),
        "secret-value"
    );
    assert_eq!(host.redis_inits()[0].password, "s3cret");
    host.assert_idle();
}

#[test]
fn auth_with_a_user_name() {
    let server = RedisServer::start();
    let mut admin = server.client();
    assert_eq!(
        redis_cmd!(admin, "ACL", "SETUSER", "app", "on", ">apppw", "~*", "+@all"),
        Resp::Simple("OK".into())
    );
    redis_cmd!(admin, "ACL", "SETUSER", "default", "off");
    let host = host(server.addr(), r#"{"username": "app", "password": "apppw"}"#);
    let s = request(&host, &[("x-key", "k"), ("x-write", "as-app")]);
    host.run_until_idle();
    assert_eq!(s.upstream_request_header("x-value").unwrap(), "as-app");
    host.assert_idle();
}

#[test]
fn auth_with_a_wrong_password_is_a_visible_error() {
    let server = RedisServer::start_with_password("s3cret");
    let host = host(server.addr(), r#"{"password": "wrong"}"#);
    let client = RedisClient::builder(&FqdnCluster::new("redis.static", 6379))
        .password("wrong")
        .build()
        .unwrap();
    match host.block_on(client.get("k")) {
        Err(RedisError::Auth {
            reply,
            password_configured,
            ..
        }) => {
            assert!(reply.starts_with("NOAUTH"), "{reply}");
            assert!(password_configured);
        }
        other => panic!("{other:?}"),
    }
    // One re-init and one retry, then the error.
    assert_eq!(host.logs_containing("redis client for").len(), 2);
    assert_eq!(host.callouts().len(), 2);
    assert!(host
        .logs()
        .iter()
        .any(|l| l.message.contains("NOAUTH, re-initializing once")));
    // Through a request: fail open, the NOAUTH in the error log.
    let s = request(&host, &[("x-key", "k")]);
    host.run_until_idle();
    assert_resumed(&s);
    assert!(
        error_logs(&host).iter().any(|l| l.contains("NOAUTH")),
        "{:?}",
        error_logs(&host)
    );
    host.assert_idle();
}

#[test]
fn noauth_after_a_restart_reinitializes_once_a_second() {
    let mut server = RedisServer::start();
    let host = host(server.addr(), "{}");
    let s1 = request(&host, &[("x-key", "k"), ("x-write", "1")]);
    host.run_until_idle();
    assert_eq!(s1.upstream_request_header("x-value").unwrap(), "1");
    // The server comes back requiring a password the client lacks.
    server.restart(Some("now-required"));
    let inits = |h: &TestHost| h.logs_containing("redis client for").len();
    let before = inits(&host);
    let calls = host.callouts().len();
    let s2 = request(&host, &[("x-key", "k")]);
    host.run_until_idle();
    assert_resumed(&s2);
    // NOAUTH -> one re-init -> one retry -> NOAUTH again: the error.
    assert_eq!(inits(&host), before + 1);
    assert_eq!(host.callouts().len(), calls + 2);
    assert!(error_logs(&host).iter().any(|l| l.contains("NOAUTH")));
    // Within the same second: no re-init, no retry.
    let s3 = request(&host, &[("x-key", "k")]);
    host.run_until_idle();
    assert_resumed(&s3);
    assert_eq!(inits(&host), before + 1);
    assert_eq!(host.callouts().len(), calls + 3);
    // A second later it may re-initialize again.
    host.advance_time(Duration::from_millis(1001));
    let s4 = request(&host, &[("x-key", "k")]);
    host.run_until_idle();
    assert_resumed(&s4);
    assert_eq!(inits(&host), before + 2);
    assert_eq!(host.callouts().len(), calls + 5);
    host.assert_idle();
}

#[test]
fn database_selection_writes_to_that_database() {
    let server = RedisServer::start();
    let host = host(server.addr(), r#"{"database": 2}"#);
    let s = request(&host, &[("x-key", "in-db2"), ("x-write", "two")]);
    host.run_until_idle();
    assert_eq!(s.upstream_request_header("x-value").unwrap(), "two");
    assert!(host.redis_inits()[0].service.contains("?db=2&"));
    // Checked over our own connection.
    let mut raw: RawClient = server.client();
    assert_eq!(redis_cmd!(raw, "GET", "in-db2"), Resp::Bulk(None));
    assert_eq!(redis_cmd!(raw, "SELECT", "2"), Resp::Simple("OK".into()));
    assert_eq!(
        redis_cmd!(raw, "GET", "in-db2"),
        Resp::Bulk(Some(b"two".to_vec()))
    );
    host.assert_idle();
}

#[test]
fn a_reply_after_the_request_ended_is_dropped() {
    let server = RedisServer::start();
    redis_cmd!(server.client(), "SET", "k", "late");
    let host = host(server.addr(), "{}");
    let mut s = request(&host, &[("x-key", "k")]);
    assert_eq!(host.pending_tasks(), 1);
    assert_eq!(host.pending_calls(), 1);
    // The client goes away while Redis has not answered yet.
    s.done().unwrap();
    assert_eq!(host.pending_tasks(), 0, "the stream's future was dropped");
    assert_eq!(host.pending_calls(), 0, "and its call forgotten");
    // The reply still arrives (on the root context) and is dropped.
    assert_eq!(host.run_until_idle(), 1);
    assert!(!host.vm_failed());
    assert!(s.upstream_request_headers().is_none());
    host.assert_idle();
    // The host keeps serving.
    let s2 = request(&host, &[("x-key", "k")]);
    host.run_until_idle();
    assert_eq!(s2.upstream_request_header("x-value").unwrap(), "late");
    host.assert_idle();
}

#[test]
fn two_hundred_concurrent_requests_answered_in_random_order() {
    let server = RedisServer::start();
    let mut raw = server.client();
    for i in 0..200 {
        redis_cmd!(raw, "SET", format!("key-{i}"), format!("value-{i}"));
    }
    let host = host(server.addr(), "{}");
    let keys: Vec<String> = (0..200).map(|i| format!("key-{i}")).collect();
    let streams: Vec<HttpStream<'_>> = keys
        .iter()
        .map(|k| request(&host, &[("x-key", k.as_str())]))
        .collect();
    assert_eq!(host.pending_tasks(), 200);
    let mut tokens = host.fetch_redis_replies();
    assert_eq!(tokens.len(), 200);
    // A fixed-seed shuffle (xorshift): a different order than sent.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..tokens.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokens.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    for (n, token) in tokens.iter().enumerate() {
        host.deliver_ready(*token).unwrap();
        // Exactly one more request resumed per reply.
        let resumed = streams.iter().filter(|s| !s.is_request_paused()).count();
        assert_eq!(resumed, n + 1);
    }
    for (i, s) in streams.iter().enumerate() {
        assert_resumed(s);
        assert_eq!(
            s.upstream_request_header("x-value").unwrap(),
            format!("value-{i}").as_str()
        );
    }
    host.assert_idle();
}

#[test]
fn an_unknown_cluster_is_a_clear_error() {
    // The gateway knows another cluster only.
    let host = TestHost::builder()
        .clusters(["outbound|80||other.static"])
        .start::<Plugin>("{}")
        .unwrap();
    let client = RedisClient::builder(&FqdnCluster::new("redis.static", 6379))
        .build()
        .unwrap();
    match host.block_on(client.get("k")) {
        Err(e @ RedisError::UnknownCluster { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains(CLUSTER) && text.contains("McpBridge"),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!client.ready());
    // In a request the init fails at once: no pause, fail open, logged.
    let mut s = host.http_stream();
    let action = s
        .send_request_headers(&[(":path", "/"), ("x-key", "k")], true)
        .unwrap();
    assert_eq!(action, Action::Continue);
    assert!(s.upstream_request_headers().is_some());
    let errors = error_logs(&host);
    assert!(
        errors.iter().any(|l| l.contains("failed to init redis")),
        "{errors:?}"
    );
    assert!(host.callouts().is_empty());
    host.assert_idle();
}

#[test]
fn a_panic_in_the_reply_path_fails_the_vm_not_the_test_binary() {
    let server = RedisServer::start();
    let host = host(server.addr(), "{}");
    let s = request(&host, &[("x-key", "k"), ("x-panic", "1")]);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| host.run_until_idle()));
    let payload = caught.expect_err("the plugin's panic reaches the test");
    let message = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default();
    assert!(message.contains("boom in the reply path"), "{message}");
    assert!(host.vm_failed());
    drop(s);
}

#[test]
fn callouts_answered_by_hand() {
    // Without a server the test plays Redis.
    let host = TestHost::start::<Plugin>("{}").unwrap();
    let s1 = request(&host, &[("x-key", "a")]);
    let s2 = request(&host, &[("x-key", "b")]);
    let t1 = s1.callouts()[0].token;
    let t2 = s2.callouts()[0].token;
    assert_eq!((t1 & 3, t2 & 3), (3, 3), "Redis tokens are 3 mod 4");
    assert_eq!(host.run_until_idle(), 0, "nothing is ready");
    host.respond_redis(t2, "$3\r\nbbb\r\n").unwrap();
    assert!(s1.is_request_paused());
    assert_eq!(s2.upstream_request_header("x-value").unwrap(), "bbb");
    host.fail_redis(t1).unwrap();
    assert_resumed(&s1);
    assert!(s1.upstream_request_header("x-value").is_none());
    assert!(
        host.respond_redis(t1, "+OK\r\n").is_err(),
        "answered once only"
    );
    // A malformed reply is a decode error, never a panic.
    let s3 = request(&host, &[("x-key", "c")]);
    host.respond_redis(s3.callouts()[0].token, "$5\r\nab")
        .unwrap();
    assert_resumed(&s3);
    assert!(error_logs(&host)
        .iter()
        .any(|l| l.contains("cannot decode")));
    host.assert_idle();
}
