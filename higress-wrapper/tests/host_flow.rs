//! Stream flow through the test host: header pauses under stock Envoy's
//! "stop all" rule and with `allow_on_headers_stop_iteration`, resuming
//! (`resume_request` / `resume_response`), local responses, trailers, and
//! driving mistakes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use higress_test_host::{Action, Properties, StreamError, TestHost};
use higress_wrapper::prelude::*;
use std::cell::RefCell;
use std::time::Duration;

#[derive(Debug, Default)]
struct State {
    pause_response: bool,
}

thread_local! {
    /// Streams a hook paused, resumed by the next tick (as a reply to a
    /// call would).
    static PARKED: RefCell<Vec<(HttpHandle<State>, bool)>> = const { RefCell::new(Vec::new()) };
}

fn no_config(_: &serde_json::Value) -> Result<(), ConfigError> {
    Ok(())
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn on_request_headers(ctx: &mut HttpContext<State>, _: &()) -> HeaderAction {
    if ctx.request_header("x-resume-noop").is_some() {
        // Nothing is paused: no-ops.
        ctx.resume_request();
        ctx.resume_response();
    }
    if ctx.request_header("x-deny").is_some() {
        ctx.send_local_response(
            403,
            &[("x-why", b"denied"), ("content-type", b"application/json")],
            "{}",
        );
        // The SDK holds the request whatever the hook says.
        return HeaderAction::Continue;
    }
    if let Some(details) = ctx.request_header("x-deny-details") {
        ctx.send_local_response_with_details(401, &details.to_string(), &[], "");
        return HeaderAction::Continue;
    }
    ctx.state_mut().pause_response = ctx.request_header("x-pause-response").is_some();
    if ctx.request_header("x-pause").is_some() {
        let handle = ctx.handle();
        PARKED.with(|p| p.borrow_mut().push((handle, true)));
        return HeaderAction::StopIteration;
    }
    HeaderAction::Continue
}

fn on_request_body(ctx: &mut HttpContext<State>, _: &(), body: &[u8]) -> DataAction {
    log::info!("request body {:?}", lossy(body));
    // Reaches the upstream only if the request headers are still held here.
    ctx.set_request_header("x-from-body", body.len().to_string());
    DataAction::Continue
}

fn on_response_headers(ctx: &mut HttpContext<State>, _: &()) -> HeaderAction {
    let sent = ctx.local_response_sent();
    ctx.set_response_header("x-local-sent", sent.to_string());
    if ctx.state().pause_response {
        let handle = ctx.handle();
        PARKED.with(|p| p.borrow_mut().push((handle, false)));
        return HeaderAction::StopIteration;
    }
    HeaderAction::Continue
}

fn on_response_body(_: &mut HttpContext<State>, _: &(), body: &[u8]) -> DataAction {
    log::info!("response body {:?}", lossy(body));
    DataAction::Continue
}

fn resume_parked(_: &mut PluginContext<'_, ()>) {
    for (handle, request) in PARKED.with(|p| p.take()) {
        handle.with(|ctx| {
            if request {
                ctx.resume_request();
            } else {
                ctx.resume_response();
            }
        });
    }
}

higress_wrapper::set_ctx! {
    name: "flow",
    config: (),
    state: State,
    parse_config: no_config,
    on_tick: [(Duration::from_secs(1), resume_parked)],
    on_request_headers: on_request_headers,
    on_request_body: on_request_body,
    on_response_headers: on_response_headers,
    on_response_body: on_response_body,
}

fn stock() -> TestHost {
    TestHost::start::<Plugin>("{}").unwrap()
}

fn allowing() -> TestHost {
    TestHost::builder()
        .allow_on_headers_stop_iteration(true)
        .start::<Plugin>("{}")
        .unwrap()
}

#[test]
fn stock_envoy_holds_the_body_after_a_header_pause_until_resumed() {
    let host = stock();
    let mut s = host.http_stream();
    assert_eq!(
        s.send_request_headers(&[(":path", "/"), ("x-pause", "1")], false)
            .unwrap(),
        Action::Pause
    );
    assert!(s.is_request_paused());
    assert!(s.upstream_request_headers().is_none());
    // "Stop all": the body hooks do not run.
    assert_eq!(s.send_request_body("ab", false).unwrap(), Action::Held);
    assert_eq!(s.send_request_body("cd", true).unwrap(), Action::Held);
    assert_eq!(s.request_body_callbacks(), 0);
    assert_eq!(s.buffered_request_body(), b"abcd");
    assert!(host.logs_containing("request body").is_empty());

    host.tick();
    assert_eq!(s.request_resume_count(), 1);
    assert!(!s.is_request_paused());
    assert!(s.upstream_request_headers().is_some());
    // What was held arrives in one callback once resumed.
    assert_eq!(s.request_body_callbacks(), 1);
    assert_eq!(
        host.logs_containing("request body")[0].message,
        r#"[flow] [nil] [nil] request body "abcd""#
    );
    assert_eq!(s.upstream_request_body(), b"abcd");
    assert!(s.upstream_request_complete());
    // The headers had already left: a header set in the body hook is lost
    // (Envoy refuses it, the SDK logs a warning).
    assert!(s.upstream_request_header("x-from-body").is_none());
    assert_eq!(
        host.logs_containing("setting request header x-from-body failed")
            .len(),
        1
    );
}

#[test]
fn with_allow_on_headers_stop_iteration_body_hooks_run_and_release_the_headers() {
    let host = allowing();
    let mut s = host.http_stream();
    assert_eq!(
        s.send_request_headers(&[(":path", "/"), ("x-pause", "1")], false)
            .unwrap(),
        Action::Pause
    );
    assert_eq!(s.send_request_body("ab", false).unwrap(), Action::Pause);
    assert!(s.upstream_request_headers().is_none());
    assert_eq!(s.send_request_body("cd", true).unwrap(), Action::Continue);
    // Headers and body left together, with the header the body hook set.
    assert_eq!(s.upstream_request_header("x-from-body").unwrap(), "4");
    assert_eq!(s.upstream_request_body(), b"abcd");
    assert_eq!(s.request_resume_count(), 0);
    assert!(!s.is_request_paused());
}

#[test]
fn a_paused_request_without_body_continues_on_resume() {
    let host = stock();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), ("x-pause", "1")], true)
        .unwrap();
    assert!(s.upstream_request_headers().is_none());
    host.advance_time(Duration::from_secs(1));
    assert!(s.upstream_request_complete());
    assert_eq!(s.request_resume_count(), 1);
}

#[test]
fn resume_is_a_no_op_when_nothing_is_paused() {
    let host = stock();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), ("x-resume-noop", "1")], true)
        .unwrap();
    assert_eq!(s.request_resume_count(), 0);
    assert_eq!(s.response_resume_count(), 0);
}

#[test]
fn a_paused_response_holds_its_body_until_resumed() {
    let host = stock();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), ("x-pause-response", "1")], true)
        .unwrap();
    assert_eq!(
        s.send_response_headers(&[(":status", "200")], false)
            .unwrap(),
        Action::Pause
    );
    assert_eq!(s.send_response_body("r1", false).unwrap(), Action::Held);
    assert_eq!(s.send_response_body("r2", true).unwrap(), Action::Held);
    assert!(s.is_response_paused());
    assert!(s.client_response_headers().is_none());
    host.tick();
    assert_eq!(s.response_resume_count(), 1);
    assert_eq!(s.resume_count(), 1);
    assert_eq!(s.client_response_status(), Some(200));
    assert_eq!(s.client_response_header("x-local-sent").unwrap(), "false");
    assert_eq!(
        host.logs_containing("response body")[0].message,
        r#"[flow] [nil] [nil] response body "r1r2""#
    );
    assert_eq!(s.client_response_body(), b"r1r2");
    assert!(s.client_response_complete());
}

#[test]
fn a_local_response_ends_the_request_and_goes_through_the_response_hooks() {
    let host = stock();
    let mut s = host.http_stream();
    // The hook returned Continue; the SDK pauses because it answered.
    assert_eq!(
        s.send_request_headers(&[(":path", "/"), ("x-deny", "1")], false)
            .unwrap(),
        Action::Pause
    );
    let reply = s.local_response().unwrap();
    assert_eq!(reply.status, 403);
    assert_eq!(reply.body, b"{}");
    assert_eq!(reply.details, "");
    assert_eq!(reply.grpc_status, None);
    assert_eq!(reply.header("x-why").unwrap(), "denied");
    // Never proxied.
    assert!(s.upstream_request_headers().is_none());
    assert_eq!(s.send_request_body("late", true).unwrap(), Action::Ended);
    assert!(s.upstream_request_body().is_empty());
    assert_eq!(
        s.send_response_headers(&[(":status", "200")], true)
            .unwrap(),
        Action::Ended
    );
    // The client got the reply, through this plugin's response hooks.
    assert_eq!(s.client_response_status(), Some(403));
    assert_eq!(s.client_response_header("x-why").unwrap(), "denied");
    assert_eq!(
        s.client_response_header("content-type").unwrap(),
        "application/json"
    );
    assert_eq!(s.client_response_header("content-length").unwrap(), "2");
    assert_eq!(s.client_response_header("x-local-sent").unwrap(), "true");
    assert_eq!(s.client_response_body(), b"{}");
    assert!(s.client_response_complete());
    assert_eq!(
        host.logs_containing("response body")[0].message,
        r#"[flow] [nil] [nil] response body "{}""#
    );
    assert_eq!(
        s.property(&["response", "code"]).unwrap(),
        403i64.to_le_bytes()
    );
    assert_eq!(
        s.property(&["response", "code_details"]).unwrap(),
        b"via_wasm::flow"
    );
}

#[test]
fn local_response_details_under_both_hosts() {
    let host = stock();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), ("x-deny-details", "auth failed")], true)
        .unwrap();
    assert_eq!(s.local_response().unwrap().details, "auth failed");
    assert_eq!(s.client_response_status(), Some(401));
    assert_eq!(
        s.property(&["response", "code_details"]).unwrap(),
        b"via_wasm::flow::auth_failed"
    );
    // A local reply without body has neither content-length nor type.
    assert!(s.client_response_header("content-type").is_none());

    let host = TestHost::builder()
        .properties(Properties::Envoy)
        .start::<Plugin>("{}")
        .unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), ("x-deny-details", "auth failed")], true)
        .unwrap();
    assert_eq!(
        s.property(&["response", "code_details"]).unwrap(),
        b"auth_failed"
    );
}

#[test]
fn a_response_from_upstream_is_via_upstream() {
    let host = stock();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/")], true).unwrap();
    s.send_response_headers(&[(":status", "502")], true)
        .unwrap();
    assert_eq!(
        s.property(&["response", "code_details"]).unwrap(),
        b"via_upstream"
    );
    assert_eq!(
        s.property(&["response", "code"]).unwrap(),
        502i64.to_le_bytes()
    );
    assert!(s.local_response().is_none());
}

#[test]
fn trailers_pass_through() {
    let host = stock();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/")], false).unwrap();
    assert_eq!(s.send_request_body("abc", false).unwrap(), Action::Pause);
    assert_eq!(
        s.send_request_trailers(&[("x-checksum", "1")]).unwrap(),
        Action::Continue
    );
    assert_eq!(s.upstream_request_body(), b"abc");
    assert_eq!(s.upstream_request_trailers().unwrap()[0].1, "1");
    assert!(s.upstream_request_complete());
    s.send_response_headers(&[(":status", "200")], false)
        .unwrap();
    s.send_response_trailers(&[("grpc-status", "0")]).unwrap();
    assert_eq!(s.client_response_trailers().unwrap()[0].0, "grpc-status");
    assert!(s.client_response_complete());
}

#[test]
fn trailers_are_held_with_the_body_after_a_header_pause() {
    let host = stock();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), ("x-pause", "1")], false)
        .unwrap();
    assert_eq!(s.send_request_body("abc", false).unwrap(), Action::Held);
    assert_eq!(
        s.send_request_trailers(&[("t", "1")]).unwrap(),
        Action::Held
    );
    assert!(s.upstream_request_trailers().is_none());
    host.tick();
    assert_eq!(s.upstream_request_body(), b"abc");
    assert!(s.upstream_request_trailers().is_some());
    assert!(s.upstream_request_complete());
}

#[test]
fn driving_mistakes_are_errors() {
    let host = stock();
    let mut s = host.http_stream();
    assert_eq!(
        s.send_request_body("x", true),
        Err(StreamError::OutOfOrder("request body"))
    );
    assert_eq!(
        s.send_response_headers(&[(":status", "200")], true),
        Err(StreamError::UpstreamNotReached)
    );
    s.send_request_headers(&[(":path", "/"), ("x-pause", "1")], true)
        .unwrap();
    // The upstream cannot answer a request it has not seen.
    assert_eq!(
        s.send_response_headers(&[(":status", "200")], true),
        Err(StreamError::UpstreamNotReached)
    );
    assert_eq!(
        s.send_request_headers(&[(":path", "/")], true),
        Err(StreamError::AlreadySent("request headers"))
    );
    host.tick();
    s.send_response_headers(&[(":status", "200")], true)
        .unwrap();
    assert_eq!(
        s.send_response_body("x", true),
        Err(StreamError::OutOfOrder("response body"))
    );
    s.done().unwrap();
    assert_eq!(s.send_request_body("x", true), Err(StreamError::Done));
}
