//! Go's `RouteCall` through the test host: the held request is re-targeted
//! (method, path, authority, headers, body; originals kept), the response
//! hooks are skipped, and the callback gets the upstream's whole answer and
//! rewrites it before the response headers leave.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use higress_test_host::{Action, TestHost};
use higress_wrapper::prelude::*;

#[derive(Debug, Default, serde::Deserialize)]
struct Config {}

fn on_request_headers(ctx: &mut HttpContext, _: &Config) -> HeaderAction {
    if ctx.request_header("x-route").is_some() {
        return HeaderAction::StopIteration;
    }
    // Too early: the request is not in its body phase.
    let early = ctx.route_call("GET", "/", &[], b"", |_, _| {});
    ctx.set_request_header(
        "x-early",
        early.err().map(|e| e.to_string()).unwrap_or_default(),
    );
    HeaderAction::Continue
}

fn on_request_body(ctx: &mut HttpContext, _: &Config, body: &[u8]) -> DataAction {
    let url = format!(
        "http://api.internal/v1/tools?q={}",
        String::from_utf8_lossy(body)
    );
    ctx.route_call(
        "POST",
        &url,
        &[("x-tool", b"weather")],
        b"{\"city\":\"hz\"}",
        |ctx, answer| {
            let text = format!(
                "status={} type={} body={}",
                answer.status,
                answer
                    .headers
                    .iter()
                    .find(|(k, _)| k == "content-type")
                    .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default(),
                String::from_utf8_lossy(&answer.body)
            );
            ctx.set_response_header("content-type", "text/plain");
            ctx.replace_response_body(text);
        },
    )
    .unwrap();
    DataAction::Continue
}

/// Never runs for a routed request.
fn on_response_headers(ctx: &mut HttpContext, _: &Config) -> HeaderAction {
    ctx.set_response_header("x-response-hook", "ran");
    HeaderAction::Continue
}

higress_wrapper::set_ctx! {
    name: "route-call",
    plugin: Plugin,
    config: Config,
    on_request_headers: on_request_headers,
    on_request_body: on_request_body,
    on_response_headers: on_response_headers,
}

#[test]
fn the_request_is_retargeted_and_the_callback_rewrites_the_answer() {
    let host = TestHost::builder().higress().start::<Plugin>("{}").unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(
        &[
            (":method", "GET"),
            (":path", "/mcp"),
            (":authority", "gw.example.com"),
            ("x-route", "1"),
            ("accept-encoding", "gzip"),
            ("content-length", "5"),
        ],
        false,
    )
    .unwrap();
    s.send_request_body(b"rainy", true).unwrap();
    let up = |name: &str| s.upstream_request_header(name).map(|v| v.to_string());
    assert_eq!(up(":method").as_deref(), Some("POST"));
    assert_eq!(up(":path").as_deref(), Some("/v1/tools?q=rainy"));
    assert_eq!(up(":authority").as_deref(), Some("api.internal"));
    assert_eq!(up("x-tool").as_deref(), Some("weather"));
    assert_eq!(up("x-envoy-original-method").as_deref(), Some("GET"));
    assert_eq!(up("x-envoy-original-path").as_deref(), Some("/mcp"));
    assert_eq!(
        up("x-envoy-original-host").as_deref(),
        Some("gw.example.com")
    );
    assert_eq!(up("accept-encoding"), None);
    assert_eq!(up("content-length"), None);
    assert_eq!(s.upstream_request_body(), b"{\"city\":\"hz\"}");

    // The response headers are held until the whole body is there.
    let action = s
        .send_response_headers(
            &[
                (":status", "201"),
                ("content-type", "application/json"),
                ("content-length", "9"),
            ],
            false,
        )
        .unwrap();
    assert_eq!(action, Action::Pause);
    assert!(s.client_response_headers().is_none());
    assert_eq!(
        s.send_response_body(b"{\"t\":", false).unwrap(),
        Action::Pause
    );
    assert_eq!(
        s.send_response_body(b"21}", true).unwrap(),
        Action::Continue
    );
    assert_eq!(
        s.client_response_body(),
        b"status=201 type=application/json body={\"t\":21}"
    );
    let client = |name: &str| s.response_header(name).map(|v| v.to_string());
    assert_eq!(client("content-type").as_deref(), Some("text/plain"));
    assert_eq!(client("content-length"), None);
    assert_eq!(client("x-response-hook"), None, "response hooks skipped");
    s.done().unwrap();
    host.assert_idle();
}

#[test]
fn route_call_outside_the_body_phase_is_refused() {
    let host = TestHost::builder().higress().start::<Plugin>("{}").unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/")], true).unwrap();
    let early = s.upstream_request_header("x-early").unwrap().to_string();
    assert!(early.contains("request-body hook"), "{early}");
    s.send_response_headers(&[(":status", "200")], true)
        .unwrap();
    assert_eq!(
        s.response_header("x-response-hook")
            .map(|v| v.to_string())
            .as_deref(),
        Some("ran")
    );
    s.done().unwrap();
}
