//! Self-tests of the harness: the echo upstream, the raw client, and a
//! plugin-less Envoy built by the gateway builder. They need no plugin, so a
//! failure here points at the harness (or Envoy), not at the SDK.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use higress_e2e::{
    http_request, ClusterSpec, EchoUpstream, Error, Gateway, RouteSpec, ECHO_MODE_HEADER,
};

#[test]
fn echo_records_raw_headers_and_bodies() {
    let upstream = EchoUpstream::start().unwrap();
    let raw: Vec<u8> = (0x80..=0xFFu8).collect();

    let response = http_request(
        upstream.addr(),
        "POST",
        "/cl?q=1",
        &[("x-raw", &raw)],
        b"hello",
    )
    .unwrap();
    assert_eq!(response.status, 200);
    let echo = response.json().unwrap();
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["path"], "/cl?q=1");
    assert_eq!(echo["body_length"], 5);

    let chunked = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-trailer: t\r\n\r\n";
    let response = http_request(
        upstream.addr(),
        "PUT",
        "/chunked",
        &[("transfer-encoding", b"chunked")],
        chunked,
    )
    .unwrap();
    assert_eq!(response.json().unwrap()["body_length"], 11);

    let requests = upstream.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].header("x-raw"), Some(raw.as_slice()));
    assert_eq!(requests[0].header("X-RAW"), Some(raw.as_slice()));
    assert_eq!(requests[0].body, b"hello");
    assert_eq!(requests[1].method, "PUT");
    assert_eq!(requests[1].body, b"hello world");
    upstream.clear();
    assert!(upstream.requests().is_empty());
}

#[test]
fn echo_keeps_connections_alive() {
    let upstream = EchoUpstream::start().unwrap();
    let mut stream = TcpStream::connect(upstream.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    for i in 0..3 {
        write!(
            stream,
            "GET /ka/{i} HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nhi"
        )
        .unwrap();
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
    }
    let paths: Vec<String> = upstream.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/ka/0", "/ka/1", "/ka/2"]);
}

#[test]
fn echo_modes() {
    let upstream = EchoUpstream::start().unwrap();
    let addr = upstream.addr();
    let mode = |value: &str| {
        http_request(
            addr,
            "GET",
            "/",
            &[(ECHO_MODE_HEADER, value.as_bytes())],
            b"",
        )
        .unwrap()
    };

    assert_eq!(mode("status:418").status, 418);
    let big = mode("body-size:300000");
    assert_eq!(big.body.len(), 300_000);
    assert!(big.body.iter().all(|&b| b == b'x'));
    let chunked = mode("body-size:70000, chunked");
    assert_eq!(
        chunked.header_str("transfer-encoding").as_deref(),
        Some("chunked")
    );
    assert_eq!(chunked.body.len(), 70_000);
    assert_eq!(
        mode("header:x-extra=yes").header_str("x-extra").as_deref(),
        Some("yes")
    );
    let started = Instant::now();
    assert_eq!(mode("slow:300,status:201").status, 201);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let bad = mode("bogus:1");
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("bogus"), "{}", bad.text());
}

#[test]
fn gateway_proxies_to_echo_without_plugins() {
    let first = EchoUpstream::start().unwrap();
    let second = EchoUpstream::start().unwrap();
    let gateway = Gateway::builder()
        .name("harness-plain")
        .concurrency(2)
        .cluster(ClusterSpec::new("outbound|80||first.static", first.port()))
        .cluster(ClusterSpec::new("second", second.port()))
        .route(
            RouteSpec::new("to-second", "/", "second")
                .domains(["second.example.com", "second.example.com:*"]),
        )
        .route(RouteSpec::new("to-first", "/", "outbound|80||first.static"))
        .start()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(gateway.listener_addr().port(), 0);
    assert_ne!(gateway.admin_addr().port(), 0);

    let raw: Vec<u8> = (0x80..=0xFFu8).collect();
    let response = gateway
        .request(
            "POST",
            "/x",
            &[("host", b"first.example.com"), ("x-raw", &raw)],
            &[7u8; 100_000],
        )
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    let seen = first.last_request().unwrap();
    assert_eq!(
        seen.header("x-raw"),
        Some(raw.as_slice()),
        "Envoy changed header bytes"
    );
    assert_eq!(seen.body.len(), 100_000);

    for host in ["second.example.com", "second.example.com:8080"] {
        let response = gateway.get("/y", &[("host", host.as_bytes())]).unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(
            second.last_request().unwrap().header_str("host").as_deref(),
            Some(host)
        );
    }
    assert_eq!(second.requests().len(), 2);

    // Echo modes pass through Envoy too.
    let response = gateway
        .get(
            "/z",
            &[
                ("host", b"first.example.com"),
                (ECHO_MODE_HEADER, b"status:503"),
            ],
        )
        .unwrap();
    assert_eq!(response.status, 503);

    let completed = gateway
        .stat("cluster.second.upstream_rq_completed")
        .unwrap();
    assert_eq!(completed, Some(2));
    assert!(
        gateway.logs().contains("starting main dispatch loop"),
        "{}",
        gateway.logs()
    );
}

#[test]
fn gateway_start_failure_returns_envoy_log() {
    let upstream = EchoUpstream::start().unwrap();
    let result = Gateway::builder()
        .name("harness-bad")
        .cluster(ClusterSpec::new("echo", upstream.port()))
        .patch_bootstrap(|bootstrap| {
            bootstrap["static_resources"]["clusters"][0]["type"] = "NOT_A_TYPE".into();
        })
        .start();
    let error = result
        .map(|_| ())
        .expect_err("Envoy accepted a bad cluster type");
    assert!(matches!(error, Error::EnvoyStart { .. }), "{error}");
    let log = error.envoy_log().unwrap();
    assert!(log.contains("NOT_A_TYPE"), "{log}");
    assert!(error.to_string().contains("envoy did not start"), "{error}");
}

#[test]
fn gateway_builder_validates_routes() {
    let error = Gateway::builder()
        .route(RouteSpec::new("r", "/", "missing"))
        .start()
        .map(|_| ())
        .expect_err("route to an unknown cluster accepted");
    assert!(matches!(error, Error::Config(_)), "{error}");
}
