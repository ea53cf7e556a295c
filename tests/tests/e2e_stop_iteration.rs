//! Holding the headers to read the body first (`HeaderAction::StopIteration`
//! from a headers hook, then a header set by the body hook), with and
//! without Envoy's `allow_on_headers_stop_iteration`.
//!
//! What stock Envoy 1.40 does, as these tests assert:
//!
//! * With `allow_on_headers_stop_iteration: true` the pause is a plain
//!   `StopIteration`: the body hooks run, and a header set after the whole
//!   body was read reaches the upstream (request) or the client (response).
//! * Without it, Envoy turns the pause into stop-all: the body callbacks
//!   never run, the request hangs until the client gives up, and the
//!   upstream sees nothing. The worker is not stuck: other requests pass.
//! * Without it, a buffered body hook still works as long as the headers
//!   hook does not pause: the SDK holds only the body (the headers leave
//!   first), so only header changes made after the body are lost.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod e2e_common;

use std::time::{Duration, Instant};

use e2e_common::{
    exchange, lower_text, plugin_lines, probe, start, try_exchange, wait_plugin_line, TextUpstream,
    SEQ_HEADER,
};
use higress_e2e::{ClusterSpec, EchoUpstream, Gateway, PluginSpec, RouteSpec};

fn gateway(name: &str, allow: bool, upstream: &EchoUpstream, text: &TextUpstream) -> Gateway {
    start(
        Gateway::builder()
            .name(name)
            .plugin(PluginSpec {
                allow_on_headers_stop_iteration: allow,
                ..probe(r#"{"tag": "stop"}"#)
            })
            .cluster(ClusterSpec::new("echo", upstream.port()))
            .cluster(ClusterSpec::new("text", text.port()))
            .route(RouteSpec::new("text", "/text", "text"))
            .route(RouteSpec::new("echo", "/", "echo")),
    )
}

#[test]
fn with_the_flag_a_header_set_after_the_body_reaches_the_upstream() {
    let upstream = EchoUpstream::start().unwrap();
    let text = TextUpstream::start();
    let gateway = gateway("stop-allowed", true, &upstream, &text);
    let body = lower_text(100_000);
    let x = exchange(
        &gateway,
        &upstream,
        "POST",
        "/echo-len",
        &[("x-probe-req-body", b"echo-len")],
        &body,
    );
    assert_eq!(x.response.status, 200, "{}", x.response.text());
    let seen = x.upstream.unwrap();
    assert_eq!(
        seen.header_str("x-probe-body-len").as_deref(),
        Some("100000")
    );
    assert!(seen.body == body, "the body changed on the way");
    let log = gateway.logs();
    // The buffered hook ran once, with the whole body.
    assert_eq!(plugin_lines(&log, "probe request body: ").len(), 1, "{log}");
    assert_eq!(
        plugin_lines(&log, "probe request body: 100000 bytes").len(),
        1
    );

    // The same on the response side: the client gets the header.
    let x = exchange(
        &gateway,
        &upstream,
        "GET",
        "/text/echo-len",
        &[
            ("x-probe-resp-body", b"echo-len"),
            ("x-text-size", b"200000"),
        ],
        b"",
    );
    assert_eq!(x.response.status, 200);
    assert_eq!(
        x.response.header_str("x-probe-body-len").as_deref(),
        Some("200000")
    );
    assert_eq!(x.response.body.len(), 200_000);
}

#[test]
fn without_the_flag_a_paused_request_hangs_and_the_body_hook_never_runs() {
    let upstream = EchoUpstream::start().unwrap();
    let text = TextUpstream::start();
    let gateway = gateway("stop-not-allowed", false, &upstream, &text);
    let started = Instant::now();
    let result = try_exchange(
        &gateway,
        &upstream,
        "POST",
        "/echo-len",
        &[("x-probe-req-body", b"echo-len")],
        &lower_text(100_000),
        Duration::from_secs(2),
    );
    match result {
        Err(e) => assert!(
            started.elapsed() >= Duration::from_secs(2),
            "failed early: {e}"
        ),
        Ok(x) => panic!(
            "expected a hang, got {} {}",
            x.response.status,
            x.response.text()
        ),
    }
    let log = gateway.logs();
    assert_eq!(
        plugin_lines(&log, "probe request headers: POST /echo-len").len(),
        1,
        "{log}"
    );
    assert!(plugin_lines(&log, "probe request body").is_empty(), "{log}");
    assert!(
        upstream.requests().iter().all(|r| r.path != "/echo-len"),
        "the upstream saw the paused request"
    );
    // The client gave up; the stream ends without the body hook.
    wait_plugin_line(
        &gateway,
        "probe stream done: POST /echo-len",
        Duration::from_secs(5),
    );
    assert!(plugin_lines(&gateway.logs(), "probe request body").is_empty());

    // The worker itself is fine.
    let x = exchange(&gateway, &upstream, "GET", "/next", &[], b"");
    assert_eq!(x.response.status, 200);
    assert!(x.upstream.is_some());
}

#[test]
fn without_the_flag_a_paused_response_hangs() {
    let upstream = EchoUpstream::start().unwrap();
    let text = TextUpstream::start();
    let gateway = gateway("stop-resp-not-allowed", false, &upstream, &text);
    let result = try_exchange(
        &gateway,
        &upstream,
        "GET",
        "/text/echo-len",
        &[("x-probe-resp-body", b"echo-len")],
        b"",
        Duration::from_secs(2),
    );
    assert!(
        result.is_err(),
        "expected a hang, got {:?}",
        result.map(|x| x.response.status)
    );
    let log = gateway.logs();
    assert_eq!(
        plugin_lines(&log, "probe response headers: status 200").len(),
        1,
        "{log}"
    );
    assert!(
        plugin_lines(&log, "probe response body").is_empty(),
        "{log}"
    );
}

#[test]
fn without_the_flag_buffered_bodies_work_when_the_headers_are_not_held() {
    let upstream = EchoUpstream::start().unwrap();
    let text = TextUpstream::start();
    let gateway = gateway("buffer-not-allowed", false, &upstream, &text);
    let body = lower_text(300_000);
    let x = exchange(
        &gateway,
        &upstream,
        "POST",
        "/upper",
        &[("x-probe-req-body", b"upper")],
        &body,
    );
    assert_eq!(x.response.status, 200, "{}", x.response.text());
    let seen = x.upstream.unwrap();
    assert!(seen.body == body.to_ascii_uppercase());
    // A header set in the same body hook would come too late: the probe's
    // `upper` case sets none, and the headers the upstream got are the
    // ones the headers hook left.
    assert_eq!(seen.header_str("x-probe-tag").as_deref(), Some("stop"));
    assert!(seen.header(SEQ_HEADER).is_some());
    assert_eq!(
        plugin_lines(&gateway.logs(), "probe request body: 300000 bytes").len(),
        1
    );
}
