//! Request and response bodies, buffered and streaming, small and larger
//! than Envoy's buffer limit, with the probe plugin in Envoy 1.40.
//!
//! Facts these tests pin down (stock Envoy 1.40, default listener limit
//! `per_connection_buffer_limit_bytes` = 1 MiB):
//!
//! * A buffered request body hook over a body larger than the limit: Envoy
//!   answers **413** itself; the hook never runs and nothing reaches the
//!   upstream. A raised listener limit lets it through.
//! * `set_request_body_buffer_limit` (Higress's `set_decoder_buffer_limit`
//!   property) is accepted by stock Envoy without error but has **no
//!   effect**: still 413.
//! * A buffered response body hook over a response larger than the limit:
//!   the response headers have already left, so Envoy can only reset the
//!   stream; the client sees a truncated response and Envoy counts
//!   `rs_too_large`.
//! * Streaming hooks handle any size, chunk by chunk.
//! * Changing a body's length: the headers usually leave before the body
//!   hook runs, so a stale `content-length` must be dropped in the headers
//!   hook (Envoy then sends the body chunked). If it is kept, the upstream
//!   reads only the old length and the rest is read as the start of the
//!   **next request on that connection**.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod e2e_common;

use std::time::Duration;

use e2e_common::{
    exchange, lower_text, plugin_lines, probe, start, try_exchange, wait_plugin_line, TextUpstream,
};
use higress_e2e::{ClusterSpec, EchoUpstream, Gateway, GatewayBuilder, RouteSpec};

const MB: usize = 1_000_000;

/// The probe in front of the echo upstream, plus `/text` routed to a
/// text/plain upstream for response bodies.
fn gateway(name: &str, upstream: &EchoUpstream, text: &TextUpstream) -> GatewayBuilder {
    Gateway::builder()
        .name(name)
        .plugin(probe(r#"{"tag": "bodies"}"#))
        .cluster(ClusterSpec::new("echo", upstream.port()))
        .cluster(ClusterSpec::new("text", text.port()))
        .route(RouteSpec::new("text", "/text", "text"))
        .route(RouteSpec::new("echo", "/", "echo"))
}

#[test]
fn buffered_request_body_is_replaced_whole() {
    let upstream = EchoUpstream::start().unwrap();
    let text = TextUpstream::start();
    let gateway = start(gateway("req-buffered", &upstream, &text));

    // content-length framing.
    let x = exchange(
        &gateway,
        &upstream,
        "POST",
        "/upper",
        &[("x-probe-req-body", b"upper")],
        b"hello buffered world",
    );
    assert_eq!(x.response.status, 200, "{}", x.response.text());
    assert_eq!(x.upstream.unwrap().body, b"HELLO BUFFERED WORLD");

    // chunked framing: the hook still sees the whole body once.
    let x = exchange(
        &gateway,
        &upstream,
        "POST",
        "/upper-chunked",
        &[
            ("x-probe-req-body", b"upper"),
            ("transfer-encoding", b"chunked"),
        ],
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    );
    assert_eq!(x.response.status, 200, "{}", x.response.text());
    assert_eq!(x.upstream.unwrap().body, b"HELLO WORLD");

    // A longer body: the probe dropped content-length in the headers hook,
    // so Envoy sends the new body chunked and the upstream gets all of it.
    let x = exchange(
        &gateway,
        &upstream,
        "POST",
        "/append",
        &[("x-probe-req-body", b"append:+tail")],
        b"hello",
    );
    assert_eq!(x.response.status, 200, "{}", x.response.text());
    let seen = x.upstream.unwrap();
    assert_eq!(seen.body, b"hello+tail");
    assert_eq!(seen.header("content-length"), None);
    assert_eq!(
        seen.header_str("transfer-encoding").as_deref(),
        Some("chunked")
    );

    let log = gateway.logs();
    assert_eq!(
        plugin_lines(&log, "probe request body: 20 bytes").len(),
        1,
        "{log}"
    );
    assert_eq!(
        plugin_lines(&log, "probe request body: 11 bytes").len(),
        1,
        "{log}"
    );
    assert_eq!(
        plugin_lines(&log, "probe request body: 5 bytes").len(),
        1,
        "{log}"
    );
    // The buffered hook was preferred: the streaming one never ran.
    assert!(
        plugin_lines(&log, "probe request chunk").is_empty(),
        "{log}"
    );
}

#[test]
fn a_longer_body_with_a_stale_content_length_leaks_into_the_next_request() {
    let upstream = EchoUpstream::start().unwrap();
    let text = TextUpstream::start();
    let gateway = start(gateway("stale-length", &upstream, &text));
    let x = exchange(
        &gateway,
        &upstream,
        "POST",
        "/stale",
        &[
            ("x-probe-req-body", b"append:XYZ"),
            ("x-probe-keep-length", b"1"),
        ],
        b"hello",
    );
    assert_eq!(x.response.status, 200, "{}", x.response.text());
    let seen = x.upstream.unwrap();
    assert_eq!(seen.header_str("content-length").as_deref(), Some("5"));
    assert_eq!(seen.body, b"hello", "the upstream read past content-length");
    // The three extra bytes stayed on the upstream connection, which Envoy
    // reuses: they prefix the next request line.
    let x = exchange(&gateway, &upstream, "POST", "/next", &[], b"ok");
    assert_eq!(x.response.status, 200);
    assert_eq!(x.upstream.unwrap().method, "XYZPOST");
}

#[test]
fn streaming_request_body_handles_any_size() {
    let upstream = EchoUpstream::start().unwrap();
    let text = TextUpstream::start();
    let gateway = start(gateway("req-stream", &upstream, &text));
    let body = lower_text(5 * MB);
    let x = exchange(
        &gateway,
        &upstream,
        "POST",
        "/stream",
        &[("x-probe-stream-req", b"upper")],
        &body,
    );
    assert_eq!(x.response.status, 200, "{}", x.response.text());
    let seen = x.upstream.unwrap();
    assert_eq!(seen.body.len(), 5 * MB);
    assert!(
        seen.body == body.to_ascii_uppercase(),
        "the upstream body is not the upper-cased original"
    );
    let lines = wait_plugin_line(
        &gateway,
        "probe request body streamed: 5000000 bytes in ",
        Duration::from_secs(5),
    );
    let chunks: usize = lines[0]
        .rsplit("bytes in ")
        .next()
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(chunks > 2, "5 MB in {chunks} chunk(s)?\n{}", lines[0]);
    // Every chunk went through the hook; together they are the whole body.
    let log = gateway.logs();
    let chunk_lines = plugin_lines(&log, "probe request chunk ");
    assert_eq!(chunk_lines.len(), chunks);
    let total: usize = chunk_lines
        .iter()
        .map(|line| {
            line.rsplit(": ")
                .next()
                .and_then(|t| t.split_whitespace().next())
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap()
        })
        .sum();
    assert_eq!(total, 5 * MB);
    assert!(plugin_lines(&log, "probe request body:").is_empty());
}

#[test]
fn buffered_request_body_over_the_limit_gets_413_from_envoy() {
    let upstream = EchoUpstream::start().unwrap();
    let text = TextUpstream::start();
    let gateway = start(gateway("req-too-large", &upstream, &text));
    let body = lower_text(2 * MB);
    let x = exchange(
        &gateway,
        &upstream,
        "POST",
        "/too-large",
        &[("x-probe-req-body", b"upper")],
        &body,
    );
    assert_eq!(x.response.status, 413, "{}", x.response.text());
    assert_eq!(x.response.text(), "Payload Too Large");
    assert!(x.upstream.is_none(), "the upstream got the request");
    // The per-request limit is Higress-only: stock Envoy accepts the
    // property write without complaint and ignores it.
    let x = exchange(
        &gateway,
        &upstream,
        "POST",
        "/too-large-with-limit",
        &[
            ("x-probe-req-body", b"upper"),
            ("x-probe-limit", b"8000000"),
        ],
        &body,
    );
    assert_eq!(x.response.status, 413, "{}", x.response.text());
    assert!(x.upstream.is_none());

    let log = gateway.logs();
    assert_eq!(
        plugin_lines(
            &log,
            "probe asks for a request body buffer limit of 8000000 bytes"
        )
        .len(),
        1,
        "{log}"
    );
    assert!(
        plugin_lines(&log, "request body buffer limit failed").is_empty(),
        "stock Envoy refused the property write:\n{log}"
    );
    // Envoy answered before the body was complete: the hook never ran.
    assert!(
        plugin_lines(&log, "probe request body:").is_empty(),
        "{log}"
    );
    // The local 413 still went through the plugin's response hook.
    assert_eq!(
        plugin_lines(&log, "probe response headers: status 413").len(),
        2
    );
}

#[test]
fn a_raised_listener_buffer_limit_lets_a_large_buffered_body_through() {
    let upstream = EchoUpstream::start().unwrap();
    let text = TextUpstream::start();
    let gateway = start(
        gateway("req-raised-limit", &upstream, &text).patch_bootstrap(|bootstrap| {
            bootstrap["static_resources"]["listeners"][0]["per_connection_buffer_limit_bytes"] =
                serde_json::json!(8 * MB);
        }),
    );
    let body = lower_text(2 * MB);
    let x = exchange(
        &gateway,
        &upstream,
        "POST",
        "/large",
        &[("x-probe-req-body", b"upper")],
        &body,
    );
    assert_eq!(x.response.status, 200, "{}", x.response.text());
    let seen = x.upstream.unwrap();
    assert!(seen.body == body.to_ascii_uppercase());
    wait_plugin_line(
        &gateway,
        "probe request body: 2000000 bytes",
        Duration::from_secs(5),
    );
}

#[test]
fn buffered_response_body_is_replaced_whole() {
    let upstream = EchoUpstream::start().unwrap();
    let text = TextUpstream::start();
    let gateway = start(gateway("resp-buffered", &upstream, &text));
    let x = exchange(
        &gateway,
        &upstream,
        "GET",
        "/text/upper",
        &[("x-probe-resp-body", b"upper"), ("x-text-size", b"300000")],
        b"",
    );
    assert_eq!(x.response.status, 200);
    assert!(x.response.body == lower_text(300_000).to_ascii_uppercase());

    let x = exchange(
        &gateway,
        &upstream,
        "GET",
        "/text/append",
        &[("x-probe-resp-body", b"append:<END>")],
        b"",
    );
    assert_eq!(x.response.status, 200);
    let mut expected = lower_text(100);
    expected.extend_from_slice(b"<END>");
    assert_eq!(x.response.text(), String::from_utf8(expected).unwrap());
    assert_eq!(x.response.header("content-length"), None);

    let log = gateway.logs();
    assert_eq!(
        plugin_lines(&log, "probe response body: 300000 bytes").len(),
        1,
        "{log}"
    );
    assert_eq!(
        plugin_lines(&log, "probe response body: 100 bytes").len(),
        1,
        "{log}"
    );
}

#[test]
fn binary_response_bodies_skip_the_body_hooks() {
    let upstream = EchoUpstream::start().unwrap();
    let text = TextUpstream::start();
    let gateway = start(gateway("resp-binary", &upstream, &text));
    // The echo upstream's sized bodies are application/octet-stream.
    let x = exchange(
        &gateway,
        &upstream,
        "GET",
        "/binary",
        &[
            ("x-probe-resp-body", b"upper"),
            ("x-echo-mode", b"body-size:1000"),
        ],
        b"",
    );
    assert_eq!(x.response.status, 200);
    assert_eq!(
        x.response.body,
        vec![b'x'; 1000],
        "a binary body was changed"
    );
    let log = gateway.logs();
    assert!(
        !plugin_lines(&log, "response body is binary or encoded").is_empty(),
        "{log}"
    );
    assert!(
        plugin_lines(&log, "probe response body").is_empty(),
        "{log}"
    );
}

#[test]
fn streaming_response_body_handles_any_size() {
    let upstream = EchoUpstream::start().unwrap();
    let text = TextUpstream::start();
    let gateway = start(gateway("resp-stream", &upstream, &text));
    let x = exchange(
        &gateway,
        &upstream,
        "GET",
        "/text/stream",
        &[
            ("x-probe-stream-resp", b"upper"),
            ("x-text-size", b"5000000"),
        ],
        b"",
    );
    assert_eq!(x.response.status, 200);
    assert_eq!(x.response.body.len(), 5 * MB);
    assert!(x.response.body == lower_text(5 * MB).to_ascii_uppercase());
    let lines = wait_plugin_line(
        &gateway,
        "probe response body streamed: 5000000 bytes in ",
        Duration::from_secs(5),
    );
    assert!(!lines[0].contains(" in 1 chunks"), "{}", lines[0]);
}

#[test]
fn buffered_response_body_over_the_limit_resets_the_stream() {
    let upstream = EchoUpstream::start().unwrap();
    let text = TextUpstream::start();
    let gateway = start(gateway("resp-too-large", &upstream, &text));
    let result = try_exchange(
        &gateway,
        &upstream,
        "GET",
        "/text/too-large",
        &[("x-probe-resp-body", b"upper"), ("x-text-size", b"2000000")],
        b"",
        Duration::from_secs(10),
    );
    // The headers (with content-length 2000000) left before the body was
    // buffered; Envoy can only cut the stream, so the client's read fails.
    match result {
        Err(e) => assert!(e.to_string().contains("2000000-byte body"), "{e}"),
        Ok(x) => panic!(
            "got a whole response: {} ({} bytes)",
            x.response.status,
            x.response.body.len()
        ),
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while gateway.stat("http.ingress_http.rs_too_large").unwrap() != Some(1) {
        assert!(
            std::time::Instant::now() < deadline,
            "rs_too_large never counted"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(plugin_lines(&gateway.logs(), "probe response body:").is_empty());
    // The gateway is fine afterwards.
    let x = exchange(&gateway, &upstream, "GET", "/after", &[], b"");
    assert_eq!(x.response.status, 200);
}
