//! examples/http-callout's compiled module: `proxy_http_call` answered by
//! the test, and sent to a real HTTP/1.1 server on a loopback port.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use higress_wasm_host::{Action, CalloutKind, TestHost};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

const CONFIG: &str = r#"{"cluster": "outbound|8080||auth.static", "authority": "auth.local", "path": "/check", "timeout_ms": 300}"#;

#[test]
fn a_reply_from_the_test_lets_the_request_through() {
    let host = TestHost::start(&common::module("http-callout"), CONFIG).unwrap();
    let mut s = host.http_stream();
    let action = s
        .send_request_headers(&[(":path", "/"), ("authorization", "Bearer t")], true)
        .unwrap();
    assert_eq!(action, Action::Pause);
    let calls = s.callouts();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].token & 3, 0, "HTTP tokens are 0 mod 4");
    match &calls[0].kind {
        CalloutKind::Http {
            upstream, headers, ..
        } => {
            assert_eq!(upstream, "outbound|8080||auth.static");
            let get = |n: &str| {
                headers
                    .iter()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| v.to_string())
            };
            assert_eq!(get(":path").as_deref(), Some("/check"));
            assert_eq!(get(":authority").as_deref(), Some("auth.local"));
            assert_eq!(get("authorization").as_deref(), Some("Bearer t"));
        }
        other => panic!("{other:?}"),
    }
    host.respond_http(calls[0].token, 200, &[("x-user", "alice")], "")
        .unwrap();
    assert!(!s.is_request_paused());
    assert_eq!(s.upstream_request_header("x-auth-user").unwrap(), "alice");
    host.assert_idle();
}

#[test]
fn a_real_auth_server_denies_with_403() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut request = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            request.push(line.trim_end().to_owned());
        }
        let mut conn = conn;
        conn.write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 2\r\n\r\nno")
            .unwrap();
        request
    });
    let host = TestHost::builder()
        .http_server("outbound|8080||auth.static", addr)
        .start(&common::module("http-callout"), CONFIG)
        .unwrap();
    let mut s = host.http_stream();
    assert_eq!(
        s.send_request_headers(&[(":path", "/")], true).unwrap(),
        Action::Pause
    );
    assert_eq!(host.run_until_idle(), 1);
    let request = server.join().unwrap();
    assert_eq!(request[0], "GET /check HTTP/1.1");
    assert!(
        request.iter().any(|l| l == "host: auth.local"),
        "{request:?}"
    );
    assert_eq!(s.local_response().unwrap().status, 403);
    assert_eq!(s.client_response_status(), Some(403));
    assert!(s.upstream_request_headers().is_none());
    assert_eq!(host.logs_containing("auth denied: status 401").len(), 1);
    host.assert_idle();
}

#[test]
fn an_unanswered_call_times_out_on_the_host_clock() {
    let host = TestHost::start(&common::module("http-callout"), CONFIG).unwrap();
    let mut s = host.http_stream();
    assert_eq!(
        s.send_request_headers(&[(":path", "/")], true).unwrap(),
        Action::Pause
    );
    host.advance_time(std::time::Duration::from_millis(299));
    assert!(s.is_request_paused(), "not yet: the timeout is 300 ms");
    host.advance_time(std::time::Duration::from_millis(1));
    // Envoy answers the call with its local 504, which the SDK reads as a
    // timeout; the plugin denies.
    assert_eq!(s.client_response_status(), Some(403));
    assert_eq!(
        host.logs_containing("timed out after 300 ms").len(),
        1,
        "{:?}",
        host.logs()
    );
    host.assert_idle();
}
