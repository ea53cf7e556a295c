//! The fault run of issue 13, kept in the project: requests waiting on a real
//! `redis-server` (through the native test host) while Redis is stopped,
//! restarted under load, answers huge or malformed replies, refuses the
//! credentials, or while clients go away with calls pending. Each case checks
//! what every request got (the upstream, or a local response) and that no
//! request stayed paused (`assert_idle`); the outage case counts log lines.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::redis_server::{RedisServer, Resp};
use higress_test_host::{Action, HttpStream, LogLevel, TestHost};
use higress_wrapper::cluster::FqdnCluster;
use higress_wrapper::http_client::TimeoutMs;
use higress_wrapper::logging::LINES_PER_SECOND;
use higress_wrapper::prelude::*;
use higress_wrapper::redis::{RedisClient, RedisError};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

const CLUSTER: &str = "outbound|6379||redis.static";

#[derive(serde::Deserialize)]
struct Raw {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default = "default_timeout")]
    timeout_ms: TimeoutMs,
}

fn default_timeout() -> TimeoutMs {
    TimeoutMs::from_millis(1000)
}

struct Config {
    redis: RedisClient,
}

fn parse(json: &JsonValue) -> Result<Config, ConfigError> {
    let raw: Raw = higress_wrapper::config::from_json(json)?;
    let redis = RedisClient::builder(&FqdnCluster::new("redis.static", 6379))
        .username(raw.username)
        .password(raw.password)
        .timeout(raw.timeout_ms.into())
        .build()?;
    Ok(Config { redis })
}

/// `x-key`: GET it into `x-value-len` (the value's length, `nil` if
/// missing); `x-write`: SET it first; `x-fail-closed`: answer 503 on error.
fn on_request_headers(ctx: &mut HttpContext, config: &Config) -> HeaderAction {
    let Some(key) = ctx.request_header("x-key").map(|v| v.into_bytes()) else {
        return HeaderAction::Continue;
    };
    if ctx.request_header("x-fail-closed").is_some() {
        ctx.set_error_response(503, "redis unavailable");
    }
    let write = ctx.request_header("x-write").map(|v| v.into_bytes());
    let redis = config.redis.clone();
    let handle = ctx.handle();
    HeaderAction::wait(async move {
        if let Some(value) = write {
            redis.set(key.clone(), value).await?;
        }
        let value = redis.get(key).await?;
        let shown = value.map_or_else(|| "nil".to_owned(), |v| v.len().to_string());
        handle.with(|ctx| ctx.set_request_header("x-value-len", shown));
        Ok::<_, RedisError>(HeaderAction::Continue)
    })
}

higress_wrapper::set_ctx! {
    name: "faults",
    config: Config,
    parse_config: parse,
    on_request_headers: on_request_headers,
}

fn start_host(addr: SocketAddr, config: &str) -> TestHost {
    TestHost::builder()
        .redis_server(CLUSTER, addr)
        .start::<Plugin>(config)
        .unwrap()
}

fn request<'h>(host: &'h TestHost, headers: &[(&str, &str)]) -> HttpStream<'h> {
    let mut s = host.http_stream();
    let mut all = vec![(":path", "/"), (":method", "GET"), (":authority", "gw")];
    all.extend_from_slice(headers);
    assert_eq!(s.send_request_headers(&all, true).unwrap(), Action::Pause);
    s
}

/// What a request got in the end.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// It reached the upstream, resumed exactly once, with `x-value-len`.
    Upstream(Option<String>),
    /// The plugin answered it locally with this status.
    Local(u32),
}

fn outcome(s: &HttpStream<'_>) -> Outcome {
    assert!(!s.is_request_paused(), "a request stayed paused");
    if let Some(local) = s.local_response() {
        assert!(s.upstream_request_headers().is_none());
        return Outcome::Local(local.status);
    }
    assert_eq!(s.request_resume_count(), 1);
    assert!(s.upstream_request_headers().is_some());
    Outcome::Upstream(
        s.upstream_request_header("x-value-len")
            .map(|v| v.to_string()),
    )
}

fn lines(host: &TestHost, needle: &str) -> Vec<String> {
    host.logs()
        .into_iter()
        .map(|l| l.message)
        .filter(|m| m.contains(needle))
        .collect()
}

/// The failure lines themselves, not the `suppressed` summaries.
fn failure_lines(host: &TestHost) -> Vec<String> {
    let mut failed = lines(host, "request hook failed");
    failed.retain(|l| !l.contains("suppressed"));
    failed
}

#[test]
fn an_outage_logs_a_few_lines_per_second_then_the_recovery() {
    let mut server = RedisServer::start();
    let host = start_host(server.addr(), r#"{"timeout_ms": 500}"#);
    let first = request(&host, &[("x-key", "k"), ("x-write", "v")]);
    host.run_until_idle();
    assert_eq!(outcome(&first), Outcome::Upstream(Some("1".into())));
    server.kill();

    // 1,000 requests within one second of the host clock, Redis stopped.
    let streams: Vec<_> = (0..1000)
        .map(|_| request(&host, &[("x-key", "k")]))
        .collect();
    assert_eq!(host.run_until_idle(), 1000);
    for s in &streams {
        assert_eq!(outcome(s), Outcome::Upstream(None), "fail open");
    }
    let failed = failure_lines(&host);
    assert_eq!(failed.len(), LINES_PER_SECOND as usize, "{failed:#?}");
    assert!(failed[0].contains("network error or timeout") && failed[0].contains(CLUSTER));
    assert!(lines(&host, "suppressed").is_empty());
    drop(streams);

    // The next second: a "suppressed" line counts the rest, then a few more.
    host.advance_time(Duration::from_millis(1000));
    let streams: Vec<_> = (0..200)
        .map(|_| request(&host, &[("x-key", "k")]))
        .collect();
    host.run_until_idle();
    for s in &streams {
        assert_eq!(outcome(s), Outcome::Upstream(None));
    }
    drop(streams);
    let suppressed = lines(&host, "suppressed");
    assert_eq!(suppressed.len(), 1, "{suppressed:#?}");
    assert!(
        suppressed[0].contains(&format!("suppressed {} similar", 1000 - LINES_PER_SECOND)),
        "{}",
        suppressed[0]
    );
    assert_eq!(failure_lines(&host).len(), 2 * LINES_PER_SECOND as usize);
    assert!(lines(&host, "recovered").is_empty());

    // Redis is back: the first success after a quiet second logs the
    // recovery, once, with the count.
    server.restart(None);
    host.advance_time(Duration::from_millis(1500));
    let back = request(&host, &[("x-key", "k"), ("x-write", "again")]);
    host.run_until_idle();
    assert_eq!(outcome(&back), Outcome::Upstream(Some("5".into())));
    let recovered = lines(&host, "recovered");
    assert_eq!(recovered.len(), 1, "{recovered:#?}");
    assert!(
        recovered[0].contains("request hook recovered after 1200 failures"),
        "{}",
        recovered[0]
    );
    let again = request(&host, &[("x-key", "k")]);
    host.run_until_idle();
    assert_eq!(outcome(&again), Outcome::Upstream(Some("5".into())));
    assert_eq!(lines(&host, "recovered").len(), 1);
    // In all: 1,202 requests, 8 lines at error level.
    assert!(
        host.logs_at(LogLevel::Error).len() <= 8,
        "{:#?}",
        host.logs()
    );
    host.assert_idle();
}

#[test]
fn a_new_outage_after_a_recovery_is_logged_again() {
    let mut server = RedisServer::start();
    let host = start_host(server.addr(), r#"{"timeout_ms": 500}"#);
    server.kill();
    let s = request(&host, &[("x-key", "k")]);
    host.run_until_idle();
    assert_eq!(outcome(&s), Outcome::Upstream(None));
    server.restart(None);
    host.advance_time(Duration::from_secs(2));
    let s = request(&host, &[("x-key", "k")]);
    host.run_until_idle();
    assert_eq!(outcome(&s), Outcome::Upstream(Some("nil".into())));
    assert_eq!(lines(&host, "recovered after 1 failures").len(), 1);
    server.kill();
    let s = request(&host, &[("x-key", "k")]);
    host.run_until_idle();
    assert_eq!(outcome(&s), Outcome::Upstream(None));
    assert_eq!(failure_lines(&host).len(), 2);
    host.assert_idle();
}

#[test]
fn restart_under_load() {
    let mut server = RedisServer::start();
    let host = start_host(server.addr(), r#"{"timeout_ms": 2000}"#);
    let key = |i: usize| format!("k{i}");
    // 300 requests sent, unanswered, when the server restarts (its data
    // gone): each is answered by the new server over a new connection.
    let keys: Vec<String> = (0..300).map(key).collect();
    let warm = request(&host, &[("x-key", "warm")]);
    host.run_until_idle();
    assert_eq!(outcome(&warm), Outcome::Upstream(Some("nil".into())));
    let streams: Vec<_> = keys
        .iter()
        .map(|k| request(&host, &[("x-key", k), ("x-write", k)]))
        .collect();
    server.restart(None);
    host.run_until_idle();
    for (s, k) in streams.iter().zip(&keys) {
        assert_eq!(outcome(s), Outcome::Upstream(Some(k.len().to_string())));
    }
    // Killed with 300 more waiting: all fail open, or closed where asked.
    server.kill();
    let streams: Vec<_> = (0..300)
        .map(|i| {
            if i % 2 == 0 {
                request(&host, &[("x-key", "k"), ("x-fail-closed", "1")])
            } else {
                request(&host, &[("x-key", "k")])
            }
        })
        .collect();
    host.run_until_idle();
    for (i, s) in streams.iter().enumerate() {
        let expected = if i % 2 == 0 {
            Outcome::Local(503)
        } else {
            Outcome::Upstream(None)
        };
        assert_eq!(outcome(s), expected, "request {i}");
    }
    // And back: the first request after the restart works.
    server.restart(None);
    let s = request(&host, &[("x-key", "k"), ("x-write", "back")]);
    host.run_until_idle();
    assert_eq!(outcome(&s), Outcome::Upstream(Some("4".into())));
    assert!(!host.vm_failed());
    host.assert_idle();
}

#[test]
fn a_huge_value_arrives_whole_and_is_not_logged() {
    let server = RedisServer::start();
    let value = vec![b'v'; 20 * 1024 * 1024];
    let mut raw = server.client();
    assert_eq!(
        redis_cmd!(raw, "SET", "big", value),
        Resp::Simple("OK".into())
    );
    let host = start_host(server.addr(), r#"{"timeout_ms": 5000}"#);
    let s = request(&host, &[("x-key", "big")]);
    host.run_until_idle();
    assert_eq!(
        outcome(&s),
        Outcome::Upstream(Some((20 * 1024 * 1024).to_string()))
    );
    let logged: usize = host.logs().iter().map(|l| l.message.len()).sum();
    assert!(logged < 4096, "{logged} bytes of log");
    host.assert_idle();
}

/// A server speaking RESP badly: `+OK` to the host's `AUTH`/`SELECT`, then
/// `reply` to every other command, closing the connection after it if
/// `close`.
fn bad_server(reply: &'static [u8], close: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve_badly(stream, reply, close));
        }
    });
    addr
}

fn serve_badly(stream: TcpStream, reply: &[u8], close: bool) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        // One command: `*N` then N bulk strings.
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let n: usize = line.trim_start_matches('*').trim().parse().unwrap_or(0);
        let mut args = Vec::new();
        for _ in 0..n {
            let mut len = String::new();
            if reader.read_line(&mut len).unwrap_or(0) == 0 {
                return;
            }
            let len: usize = len.trim_start_matches('$').trim().parse().unwrap_or(0);
            let mut arg = vec![0; len + 2];
            if reader.read_exact(&mut arg).is_err() {
                return;
            }
            arg.truncate(len);
            args.push(arg);
        }
        let first = args.first().map(|a| a.to_ascii_uppercase());
        if matches!(first.as_deref(), Some(b"AUTH" | b"SELECT")) {
            let _ = writer.write_all(b"+OK\r\n");
            continue;
        }
        let _ = writer.write_all(reply);
        if close {
            let _ = writer.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

#[test]
fn malformed_replies_from_the_network_fail_the_call_only() {
    // Garbage, a truncated bulk then a close, an array that never ends.
    let cases: [(&[u8], bool, &str); 3] = [
        (b"hello world\r\n", false, "malformed"),
        (b"$10\r\nabc", true, "closed"),
        (b"*999999999\r\n", false, "timed out"),
    ];
    for (reply, close, failure) in cases {
        let host = start_host(bad_server(reply, close), r#"{"timeout_ms": 300}"#);
        let open = request(&host, &[("x-key", "k")]);
        let closed = request(&host, &[("x-key", "k"), ("x-fail-closed", "1")]);
        host.run_until_idle();
        assert_eq!(outcome(&open), Outcome::Upstream(None));
        assert_eq!(outcome(&closed), Outcome::Local(503));
        let failures = host.redis_failures();
        assert!(failures[0].contains(failure), "{failures:?}");
        assert!(!host.vm_failed());
        host.assert_idle();
    }
}

#[test]
fn malformed_replies_given_to_the_plugin_are_decode_errors() {
    // As if the host passed the bytes through: the SDK's decoder, not a trap.
    let mut deep = b"*1\r\n".repeat(100_000);
    deep.extend_from_slice(b":1\r\n");
    let cases: [(Vec<u8>, &str); 4] = [
        (b"hello world\r\n".to_vec(), "cannot decode"),
        (b"$10\r\nabc".to_vec(), "truncated"),
        (b"*999999999\r\n".to_vec(), "cannot decode"),
        (deep, "nested deeper"),
    ];
    let host = TestHost::start::<Plugin>("{}").unwrap();
    for (reply, expected) in cases {
        host.clear_logs();
        let s = request(&host, &[("x-key", "k")]);
        host.respond_redis(s.callouts()[0].token, &reply).unwrap();
        assert_eq!(outcome(&s), Outcome::Upstream(None));
        let failed = lines(&host, "request hook failed");
        assert!(
            failed.iter().any(|l| l.contains(expected)),
            "{expected}: {failed:#?}"
        );
        // The advance keeps each case a new first occurrence.
        host.advance_time(Duration::from_secs(2));
    }
    assert!(!host.vm_failed());
    host.assert_idle();
}

fn auth_error(host: &TestHost, client: &RedisClient) -> String {
    match host.block_on(client.get("k")) {
        Err(e @ RedisError::Auth { .. }) => e.to_string(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn auth_failures_say_whether_credentials_are_configured() {
    let server = RedisServer::start_with_password("s3cret");
    let cluster = FqdnCluster::new("redis.static", 6379);

    // No password configured.
    {
        let host = start_host(server.addr(), "{}");
        let client = RedisClient::builder(&cluster).build().unwrap();
        let missing = auth_error(&host, &client);
        assert!(
            missing.contains("no password is configured") && missing.contains(CLUSTER),
            "{missing}"
        );
        assert!(missing.contains("NOAUTH"), "{missing}");
        let s = request(&host, &[("x-key", "k"), ("x-fail-closed", "1")]);
        host.run_until_idle();
        assert_eq!(outcome(&s), Outcome::Local(503));
        assert!(!lines(&host, "no password is configured").is_empty());
        host.assert_idle();
    }

    // A wrong password.
    let host = start_host(server.addr(), r#"{"password": "hunter2"}"#);
    let client = RedisClient::builder(&cluster)
        .password("hunter2")
        .build()
        .unwrap();
    let wrong = auth_error(&host, &client);
    assert!(
        wrong.contains("refused the configured credentials")
            && wrong.contains("the default user")
            && !wrong.contains("hunter2"),
        "{wrong}"
    );
    host.assert_idle();
    drop(host);

    // An unknown user (the password is right for the default user).
    let host = start_host(
        server.addr(),
        r#"{"username": "nobody", "password": "s3cret"}"#,
    );
    let client = RedisClient::builder(&cluster)
        .username("nobody")
        .password("s3cret")
        .build()
        .unwrap();
    let unknown = auth_error(&host, &client);
    assert!(
        unknown.contains("refused the configured credentials")
            && unknown.contains("user `nobody`")
            && !unknown.contains("s3cret"),
        "{unknown}"
    );
    let s = request(&host, &[("x-key", "k")]);
    host.run_until_idle();
    assert_eq!(outcome(&s), Outcome::Upstream(None));
    host.assert_idle();
}

#[test]
fn clients_that_leave_with_calls_pending() {
    let server = RedisServer::start();
    redis_cmd!(server.client(), "SET", "k", "late");
    let host = start_host(server.addr(), r#"{"timeout_ms": 5000}"#);
    // 500 requests wait on a frozen Redis; their clients all go away.
    server.pause();
    let mut streams: Vec<_> = (0..500)
        .map(|_| request(&host, &[("x-key", "k")]))
        .collect();
    assert_eq!(host.pending_calls(), 500);
    for s in &mut streams {
        s.done().unwrap();
    }
    assert_eq!(host.pending_tasks(), 0);
    assert_eq!(host.pending_calls(), 0);
    // Redis thaws: the 500 late replies arrive and are dropped.
    server.resume();
    assert_eq!(host.run_until_idle(), 500);
    assert!(!host.vm_failed());
    for s in &streams {
        assert!(s.upstream_request_headers().is_none());
    }
    host.assert_idle();
    // The gateway keeps serving.
    let s = request(&host, &[("x-key", "k")]);
    host.run_until_idle();
    assert_eq!(outcome(&s), Outcome::Upstream(Some("4".into())));
    host.assert_idle();
}

#[test]
fn a_zero_timeout_is_refused_in_config_naming_the_field() {
    let failure = TestHost::start::<Plugin>(r#"{"timeout_ms": 0}"#).unwrap_err();
    assert!(
        !failure
            .logs_containing("timeout_ms: a timeout of 0 ms would mean no timeout")
            .is_empty(),
        "{failure:?}"
    );
    // From code, the builder refuses a sub-millisecond timeout.
    let err = RedisClient::builder(&FqdnCluster::new("redis.static", 6379))
        .timeout(Duration::from_micros(500))
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("at least 1 ms"), "{err}");
}
