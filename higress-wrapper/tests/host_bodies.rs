//! Bodies through the test host: buffered and streaming hooks in both
//! directions, chunk replacement, `buffer_*_body` priority, `dont_read_*`,
//! replace / append, binary and websocket skipping, buffer limits.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
// set_ctx!'s expansion for streaming hooks trips this lint at the call site
// (a macro issue, reported).
#![allow(clippy::type_complexity)]

use higress_test_host::{Action, Properties, TestHost};
use higress_wrapper::prelude::*;

fn no_config(_: &serde_json::Value) -> Result<(), ConfigError> {
    Ok(())
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ----- buffered ------------------------------------------------------------------------

/// What the headers hooks decided, for the body hooks (the request headers
/// are no longer reachable once they continued).
#[derive(Debug, Default)]
struct Ops {
    replace: bool,
    append: bool,
    hold_response: bool,
}

fn buffered_request_headers(ctx: &mut HttpContext<Ops>, _: &()) -> HeaderAction {
    let facts = [
        ("x-has-body", ctx.has_request_body()),
        ("x-is-binary", ctx.is_binary_request_body()),
        ("x-is-websocket", ctx.is_websocket()),
    ];
    for (name, value) in facts {
        ctx.set_request_header(name, value.to_string());
    }
    let flag = |ctx: &HttpContext<Ops>, name: &str| ctx.request_header(name).is_some();
    let ops = Ops {
        replace: flag(ctx, "x-replace"),
        append: flag(ctx, "x-append"),
        hold_response: flag(ctx, "x-hold-response"),
    };
    *ctx.state_mut() = ops;
    if flag(ctx, "x-dont-read") {
        ctx.dont_read_request_body();
        ctx.dont_read_response_body();
    }
    if let Some(limit) = ctx.request_header("x-limit") {
        let limit: u32 = limit.to_str().unwrap().parse().unwrap();
        ctx.set_request_body_buffer_limit(limit);
        ctx.set_response_body_buffer_limit(limit);
    }
    HeaderAction::Continue
}

fn buffered_request_body(ctx: &mut HttpContext<Ops>, _: &(), body: &[u8]) -> DataAction {
    let held = ctx.request_body().unwrap_or_default();
    log::info!("request body {:?}, held {:?}", lossy(body), lossy(&held));
    if ctx.state().replace {
        ctx.replace_request_body("REPLACED");
    }
    if ctx.state().append {
        ctx.append_request_body("+tail");
    }
    DataAction::Continue
}

fn buffered_response_headers(ctx: &mut HttpContext<Ops>, _: &()) -> HeaderAction {
    let facts = [
        ("x-has-body", ctx.has_response_body()),
        ("x-is-binary", ctx.is_binary_response_body()),
    ];
    for (name, value) in facts {
        ctx.set_response_header(name, value.to_string());
    }
    HeaderAction::Continue
}

fn buffered_response_body(ctx: &mut HttpContext<Ops>, _: &(), body: &[u8]) -> DataAction {
    let held = ctx.response_body().unwrap_or_default();
    log::info!("response body {:?}, held {:?}", lossy(body), lossy(&held));
    if ctx.state().replace {
        ctx.replace_response_body("RESP");
    }
    if ctx.state().append {
        ctx.append_response_body("+t");
    }
    if ctx.state().hold_response {
        return DataAction::StopIterationAndBuffer;
    }
    DataAction::Continue
}

higress_wrapper::set_ctx! {
    name: "buffered",
    plugin: Buffered,
    config: (),
    state: Ops,
    parse_config: no_config,
    on_request_headers: buffered_request_headers,
    on_request_body: buffered_request_body,
    on_response_headers: buffered_response_headers,
    on_response_body: buffered_response_body,
}

#[test]
fn a_buffered_request_body_is_delivered_whole_at_end_of_stream() {
    let host = TestHost::start::<Buffered>("{}").unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/")], false).unwrap();
    assert_eq!(s.upstream_request_header("x-has-body").unwrap(), "true");
    // Every chunk before the last is held at the filter, cumulatively.
    assert_eq!(s.send_request_body("ab", false).unwrap(), Action::Pause);
    assert_eq!(s.send_request_body("cd", false).unwrap(), Action::Pause);
    assert_eq!(s.buffered_request_body(), b"abcd");
    assert!(s.upstream_request_body().is_empty());
    assert!(s.is_request_paused());
    assert_eq!(s.send_request_body("ef", true).unwrap(), Action::Continue);
    let line = &host.logs_containing("request body")[0].message;
    assert!(
        line.ends_with(r#"request body "abcdef", held "abcdef""#),
        "{line}"
    );
    assert_eq!(s.upstream_request_body(), b"abcdef");
    assert!(s.upstream_request_complete());
    assert!(!s.is_request_paused());
    // The SDK never resumes a buffered body by hand: Continue released it.
    assert_eq!(s.request_resume_count(), 0);
    assert_eq!(s.request_body_callbacks(), 3);
}

#[test]
fn a_request_without_body_never_calls_the_body_hook() {
    let host = TestHost::start::<Buffered>("{}").unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/")], true).unwrap();
    assert_eq!(s.upstream_request_header("x-has-body").unwrap(), "false");
    assert!(host.logs_containing("request body").is_empty());
    assert_eq!(
        s.send_request_body("late", true),
        Err(higress_test_host::StreamError::OutOfOrder("request body"))
    );
}

#[test]
fn replace_and_append_request_body() {
    let host = TestHost::start::<Buffered>("{}").unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(
        &[(":path", "/"), ("x-replace", "1"), ("x-append", "1")],
        false,
    )
    .unwrap();
    s.send_request_body("original", true).unwrap();
    assert_eq!(s.upstream_request_body(), b"REPLACED+tail");
}

#[test]
fn a_buffered_response_body_and_its_replacement() {
    let host = TestHost::start::<Buffered>("{}").unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(
        &[(":path", "/"), ("x-replace", "1"), ("x-append", "1")],
        true,
    )
    .unwrap();
    s.send_response_headers(&[(":status", "200")], false)
        .unwrap();
    assert_eq!(s.client_response_header("x-has-body").unwrap(), "true");
    assert_eq!(s.send_response_body("one,", false).unwrap(), Action::Pause);
    assert!(s.client_response_body().is_empty());
    assert_eq!(s.send_response_body("two", true).unwrap(), Action::Continue);
    assert_eq!(
        host.logs_containing("response body")[0].message,
        r#"[buffered] [nil] [nil] response body "one,two", held "one,two""#
    );
    assert_eq!(s.client_response_body(), b"RESP+t");
    assert!(s.client_response_complete());
}

#[test]
fn a_response_without_body_has_no_body() {
    let host = TestHost::start::<Buffered>("{}").unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/")], true).unwrap();
    s.send_response_headers(&[(":status", "204")], true)
        .unwrap();
    assert_eq!(s.client_response_header("x-has-body").unwrap(), "false");
    assert!(s.client_response_complete());
}

#[test]
fn a_body_hook_may_hold_the_response() {
    let host = TestHost::start::<Buffered>("{}").unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), ("x-hold-response", "1")], true)
        .unwrap();
    s.send_response_headers(&[(":status", "200")], false)
        .unwrap();
    assert_eq!(s.send_response_body("data", true).unwrap(), Action::Pause);
    assert!(s.is_response_paused());
    assert!(s.client_response_body().is_empty());
    assert_eq!(s.buffered_response_body(), b"data");
}

#[test]
fn dont_read_body_skips_the_body_hooks() {
    let host = TestHost::start::<Buffered>("{}").unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), ("x-dont-read", "1")], false)
        .unwrap();
    // Each chunk passes at once.
    assert_eq!(s.send_request_body("a", false).unwrap(), Action::Continue);
    assert_eq!(s.upstream_request_body(), b"a");
    assert_eq!(s.send_request_body("b", true).unwrap(), Action::Continue);
    s.send_response_headers(&[(":status", "200")], false)
        .unwrap();
    assert_eq!(s.send_response_body("r", true).unwrap(), Action::Continue);
    assert!(host.logs_containing("request body").is_empty());
    assert!(host.logs_containing("response body").is_empty());
    assert_eq!(s.upstream_request_body(), b"ab");
    assert_eq!(s.client_response_body(), b"r");
}

#[test]
fn binary_and_encoded_bodies_skip_the_body_hooks() {
    let host = TestHost::start::<Buffered>("{}").unwrap();
    for (name, value) in [
        ("content-type", "application/octet-stream"),
        ("content-type", "application/grpc"),
        ("content-encoding", "gzip"),
    ] {
        let mut s = host.http_stream();
        s.send_request_headers(&[(":path", "/"), (name, value)], false)
            .unwrap();
        assert_eq!(s.upstream_request_header("x-is-binary").unwrap(), "true");
        assert_eq!(
            s.send_request_body("\u{0}\u{1}", true).unwrap(),
            Action::Continue
        );
        s.send_response_headers(&[(":status", "200"), (name, value)], false)
            .unwrap();
        assert_eq!(s.client_response_header("x-is-binary").unwrap(), "true");
        assert_eq!(
            s.send_response_body("\u{2}", true).unwrap(),
            Action::Continue
        );
    }
    assert!(
        host.logs_containing("body \"").is_empty(),
        "{:?}",
        host.logs()
    );
    let mut s = host.http_stream();
    s.send_request_headers(
        &[(":path", "/"), ("content-type", "application/json")],
        false,
    )
    .unwrap();
    assert_eq!(s.upstream_request_header("x-is-binary").unwrap(), "false");
}

#[test]
fn websocket_upgrades_skip_the_body_hooks() {
    let host = TestHost::start::<Buffered>("{}").unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(
        &[
            (":path", "/ws"),
            ("connection", "Upgrade"),
            ("upgrade", "WebSocket"),
        ],
        false,
    )
    .unwrap();
    assert_eq!(s.upstream_request_header("x-is-websocket").unwrap(), "true");
    assert_eq!(
        s.send_request_body("frame", false).unwrap(),
        Action::Continue
    );
    s.send_response_headers(&[(":status", "101")], false)
        .unwrap();
    assert_eq!(
        s.send_response_body("frame", false).unwrap(),
        Action::Continue
    );
    assert!(host.logs_containing("body \"").is_empty());
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), ("connection", "keep-alive")], true)
        .unwrap();
    assert_eq!(
        s.upstream_request_header("x-is-websocket").unwrap(),
        "false"
    );
}

#[test]
fn buffering_past_the_limit_answers_413() {
    let host = TestHost::builder()
        .buffer_limit(4)
        .start::<Buffered>("{}")
        .unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/")], false).unwrap();
    assert_eq!(s.send_request_body("abc", false).unwrap(), Action::Pause);
    assert_eq!(s.send_request_body("def", false).unwrap(), Action::Ended);
    assert_eq!(s.client_response_status(), Some(413));
    assert_eq!(s.client_response_body(), b"Payload Too Large");
    assert_eq!(
        s.property(&["response", "code_details"]).unwrap(),
        b"request_payload_too_large"
    );
    assert!(s.upstream_request_body().is_empty());
    // Not a local response of the plugin.
    assert!(s.local_response().is_none());
}

#[test]
fn higress_lets_a_plugin_raise_its_buffer_limits() {
    let host = TestHost::builder()
        .buffer_limit(4)
        .start::<Buffered>("{}")
        .unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), ("x-limit", "100")], false)
        .unwrap();
    assert_eq!(s.property(&["set_decoder_buffer_limit"]).unwrap(), b"100");
    assert_eq!(s.property(&["set_encoder_buffer_limit"]).unwrap(), b"100");
    assert_eq!(s.send_request_body("abc", false).unwrap(), Action::Pause);
    assert_eq!(s.send_request_body("def", true).unwrap(), Action::Continue);
    assert_eq!(s.upstream_request_body(), b"abcdef");
    s.send_response_headers(&[(":status", "200")], false)
        .unwrap();
    assert_eq!(s.send_response_body("0123", false).unwrap(), Action::Pause);
    assert_eq!(
        s.send_response_body("4567", true).unwrap(),
        Action::Continue
    );
    assert_eq!(s.client_response_body(), b"01234567");

    // Stock Envoy ignores the property.
    let host = TestHost::builder()
        .properties(Properties::Envoy)
        .buffer_limit(4)
        .start::<Buffered>("{}")
        .unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), ("x-limit", "100")], false)
        .unwrap();
    s.send_request_body("abc", false).unwrap();
    assert_eq!(s.send_request_body("def", true).unwrap(), Action::Ended);
    assert_eq!(s.client_response_status(), Some(413));
}

#[test]
fn a_response_past_the_limit_answers_500() {
    let host = TestHost::builder()
        .buffer_limit(4)
        .start::<Buffered>("{}")
        .unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/")], true).unwrap();
    // The response headers already went to the client (Continue), so
    // Envoy can only reset the stream.
    s.send_response_headers(&[(":status", "200")], false)
        .unwrap();
    s.send_response_body("abc", false).unwrap();
    assert_eq!(s.send_response_body("def", true).unwrap(), Action::Ended);
    assert!(s.is_reset());
    assert_eq!(s.client_response_status(), Some(200));
}

// ----- streaming -----------------------------------------------------------------------

fn upper(ctx: &mut HttpContext, _: &(), chunk: &[u8], end_of_stream: bool) -> Option<Vec<u8>> {
    log::info!(
        "request chunk {:?} end={end_of_stream} phase={:?}",
        lossy(chunk),
        ctx.execution_phase()
    );
    Some(chunk.to_ascii_uppercase())
}

fn bracket(ctx: &mut HttpContext, _: &(), chunk: &[u8], end_of_stream: bool) -> Option<Vec<u8>> {
    log::info!(
        "response chunk {:?} end={end_of_stream} phase={:?}",
        lossy(chunk),
        ctx.execution_phase()
    );
    if chunk.starts_with(b"keep") {
        return None;
    }
    Some([b"[", chunk, b"]"].concat())
}

higress_wrapper::set_ctx! {
    name: "streaming",
    plugin: Streaming,
    config: (),
    parse_config: no_config,
    on_streaming_request_body: upper,
    on_streaming_response_body: bracket,
}

#[test]
fn streaming_request_chunks_are_replaced_one_by_one() {
    let host = TestHost::start::<Streaming>("{}").unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/")], false).unwrap();
    assert_eq!(s.send_request_body("ab", false).unwrap(), Action::Continue);
    assert_eq!(s.upstream_request_body(), b"AB");
    assert_eq!(s.send_request_body("cd", true).unwrap(), Action::Continue);
    assert_eq!(s.upstream_request_body(), b"ABCD");
    assert!(s.upstream_request_complete());
    let lines: Vec<String> = host
        .logs_containing("request chunk")
        .into_iter()
        .map(|l| l.message)
        .collect();
    assert_eq!(
        lines,
        [
            r#"[streaming] [nil] [nil] request chunk "ab" end=false phase=DecodeData"#,
            r#"[streaming] [nil] [nil] request chunk "cd" end=true phase=DecodeData"#,
        ]
    );
}

#[test]
fn streaming_response_chunks_replaced_or_passed_unchanged() {
    let host = TestHost::start::<Streaming>("{}").unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/")], true).unwrap();
    s.send_response_headers(&[(":status", "200")], false)
        .unwrap();
    assert_eq!(s.send_response_body("x", false).unwrap(), Action::Continue);
    assert_eq!(
        s.send_response_body("keep-me", false).unwrap(),
        Action::Continue
    );
    assert_eq!(s.send_response_body("y", true).unwrap(), Action::Continue);
    assert_eq!(s.client_response_body(), b"[x]keep-me[y]");
    let ends: Vec<bool> = host
        .logs_containing("response chunk")
        .iter()
        .map(|l| l.message.contains("end=true"))
        .collect();
    assert_eq!(ends, [false, false, true]);
}

// ----- both: buffer_*_body() chooses the buffered hook ---------------------------------

fn both_headers(ctx: &mut HttpContext, _: &()) -> HeaderAction {
    if ctx.request_header("x-buffer").is_some() {
        ctx.buffer_request_body();
        ctx.buffer_response_body();
    }
    HeaderAction::Continue
}

fn both_buffered(_: &mut HttpContext, _: &(), body: &[u8]) -> DataAction {
    log::info!("buffered {:?}", lossy(body));
    DataAction::Continue
}

fn both_streamed(_: &mut HttpContext, _: &(), chunk: &[u8], _: bool) -> Option<Vec<u8>> {
    log::info!("streamed {:?}", lossy(chunk));
    None
}

higress_wrapper::set_ctx! {
    name: "both",
    plugin: Both,
    config: (),
    parse_config: no_config,
    on_request_headers: both_headers,
    on_request_body: both_buffered,
    on_streaming_request_body: both_streamed,
    on_response_body: both_buffered,
    on_streaming_response_body: both_streamed,
}

fn run_both(host: &TestHost, buffer: bool) {
    let mut s = host.http_stream();
    let mut headers = vec![(":path", "/")];
    if buffer {
        headers.push(("x-buffer", "1"));
    }
    s.send_request_headers(&headers, false).unwrap();
    s.send_request_body("a", false).unwrap();
    s.send_request_body("b", true).unwrap();
    s.send_response_headers(&[(":status", "200")], false)
        .unwrap();
    s.send_response_body("c", false).unwrap();
    s.send_response_body("d", true).unwrap();
    assert_eq!(s.upstream_request_body(), b"ab");
    assert_eq!(s.client_response_body(), b"cd");
}

#[test]
fn streaming_hooks_take_priority_by_default() {
    let host = TestHost::start::<Both>("{}").unwrap();
    run_both(&host, false);
    assert_eq!(host.logs_containing("streamed").len(), 4);
    assert!(host.logs_containing("buffered").is_empty());
}

#[test]
fn buffer_body_selects_the_buffered_hooks() {
    let host = TestHost::start::<Both>("{}").unwrap();
    run_both(&host, true);
    let buffered: Vec<String> = host
        .logs_containing("buffered")
        .into_iter()
        .map(|l| l.message)
        .collect();
    assert_eq!(
        buffered,
        [
            r#"[both] [nil] [nil] buffered "ab""#,
            r#"[both] [nil] [nil] buffered "cd""#
        ]
    );
    assert!(host.logs_containing("streamed").is_empty());
}

// ----- without the request-line capture ---------------------------------------------

fn body_only(_: &mut HttpContext, _: &(), body: &[u8]) -> DataAction {
    log::info!("seen body {:?}", lossy(body));
    DataAction::Continue
}

higress_wrapper::set_ctx! {
    name: "body-only",
    plugin: BodyOnly,
    config: (),
    parse_config: no_config,
    capture_request_line: false,
    on_request_body: body_only,
}

#[test]
fn without_the_request_line_capture_binary_and_websocket_bodies_are_still_skipped() {
    let host = TestHost::start::<BodyOnly>("{}").unwrap();
    let skipped: [&[(&str, &str)]; 4] = [
        &[("content-type", "application/octet-stream")],
        &[("content-type", "application/grpc")],
        &[("content-encoding", "gzip")],
        &[("connection", "Upgrade"), ("upgrade", "websocket")],
    ];
    for extra in skipped {
        let mut headers = vec![(":path", "/")];
        headers.extend_from_slice(extra);
        let mut s = host.http_stream();
        s.send_request_headers(&headers, false).unwrap();
        assert_eq!(s.send_request_body("x", true).unwrap(), Action::Continue);
        assert!(
            host.logs_containing("seen body").is_empty(),
            "{extra:?}: {:?}",
            host.logs()
        );
    }
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), ("content-type", "text/plain")], false)
        .unwrap();
    assert_eq!(
        s.send_request_body("hello", true).unwrap(),
        Action::Continue
    );
    let seen = host.logs_containing("seen body");
    assert_eq!(seen.len(), 1, "{:?}", host.logs());
    assert!(
        seen[0].message.ends_with(r#"seen body "hello""#),
        "{seen:?}"
    );
}

// ----- without Go's binary/websocket rule -------------------------------------------

fn every_response_body(_: &mut HttpContext, _: &(), body: &[u8]) -> DataAction {
    log::info!("seen response {:?}", lossy(body));
    DataAction::Continue
}

higress_wrapper::set_ctx! {
    name: "every-body",
    plugin: EveryBody,
    config: (),
    parse_config: no_config,
    capture_request_line: false,
    skip_binary_bodies: false,
    on_request_body: body_only,
    on_response_body: every_response_body,
}

#[test]
fn skip_binary_bodies_false_runs_the_body_hooks_on_every_body() {
    let host = TestHost::start::<EveryBody>("{}").unwrap();
    let cases: [&[(&str, &str)]; 5] = [
        &[("content-type", "application/octet-stream")],
        &[("content-type", "application/grpc")],
        &[("content-encoding", "gzip")],
        &[("connection", "Upgrade"), ("upgrade", "websocket")],
        &[("content-type", "text/plain")],
    ];
    for (i, extra) in cases.into_iter().enumerate() {
        let mut headers = vec![(":path", "/")];
        headers.extend_from_slice(extra);
        let mut s = host.http_stream();
        s.send_request_headers(&headers, false).unwrap();
        assert_eq!(s.send_request_body("x", true).unwrap(), Action::Continue);
        let mut response = vec![(":status", "200")];
        response.extend_from_slice(extra);
        s.send_response_headers(&response, false).unwrap();
        assert_eq!(s.send_response_body("y", true).unwrap(), Action::Continue);
        assert_eq!(
            host.logs_containing("seen body \"x\"").len(),
            i + 1,
            "{extra:?}: {:?}",
            host.logs()
        );
        assert_eq!(
            host.logs_containing("seen response \"y\"").len(),
            i + 1,
            "{extra:?}: {:?}",
            host.logs()
        );
    }
}
