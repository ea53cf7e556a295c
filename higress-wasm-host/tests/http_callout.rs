//! examples/http-callout's compiled module with its `proxy_http_call` sent
//! to a real HTTP/1.1 server on a loopback port (a wasm-host feature; the
//! calls the test answers run in both modes in
//! examples/http-callout/tests/native.rs).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use higress_wasm_host::{Action, TestHost};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

const CONFIG: &str = r#"{"cluster": "outbound|8080||auth.static", "authority": "auth.local", "path": "/check", "timeout_ms": 300}"#;

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
