//! Go's streaming-response controls through the test host:
//! `need_pause_streaming_response` (chunks stop with `StopIterationNoBuffer`
//! and are gone from the host), the `push_buffer` / `pop_buffer` queue, and
//! the two ways to send the kept chunks: Higress's injection, or resuming
//! and replacing a later chunk (any host).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use higress_test_host::{Action, TestHost};
use higress_wrapper::prelude::*;
use higress_wrapper::upstream;

/// The case, read from request header `x-op` (kept for the response phase).
fn op(ctx: &HttpContext) -> String {
    match ctx.get_context("op") {
        Some(ContextValue::String(op)) => op.clone(),
        _ => String::new(),
    }
}

fn on_request_headers(ctx: &mut HttpContext, _: &Config) -> HeaderAction {
    let op = ctx
        .request_header("x-op")
        .map(|v| v.to_str_lossy().into_owned())
        .unwrap_or_default();
    ctx.set_context("op", ContextValue::String(op));
    HeaderAction::Continue
}

fn on_response_headers(ctx: &mut HttpContext, _: &Config) -> HeaderAction {
    if op(ctx) != "pass" {
        ctx.need_pause_streaming_response();
    }
    HeaderAction::Continue
}

fn on_streaming_response_body(
    ctx: &mut HttpContext,
    _: &Config,
    chunk: &[u8],
    end_of_stream: bool,
) -> Option<Vec<u8>> {
    if !ctx.is_streaming_response_paused() {
        return Some(chunk.to_ascii_uppercase());
    }
    ctx.push_buffer(chunk.to_vec());
    if !end_of_stream {
        return None;
    }
    let mut all = Vec::new();
    while let Some(part) = ctx.pop_buffer() {
        all.extend(part);
    }
    match op(ctx).as_str() {
        // Higress: push the kept text down the chain, ending the response.
        "inject" => {
            upstream::inject_encoded_data(&all, true).unwrap();
            Some(Vec::new())
        }
        // Any host: stop pausing and send everything as this last chunk.
        _ => {
            ctx.resume_streaming_response();
            Some(all)
        }
    }
}

#[derive(Debug, Default, serde::Deserialize)]
struct Config {}

higress_wrapper::set_ctx! {
    name: "streaming-pause",
    plugin: Plugin,
    config: Config,
    on_request_headers: on_request_headers,
    on_response_headers: on_response_headers,
    on_streaming_response_body: on_streaming_response_body,
}

fn request<'h>(host: &'h TestHost, op: &str) -> higress_test_host::HttpStream<'h> {
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), ("x-op", op)], true)
        .unwrap();
    s.send_response_headers(&[(":status", "200")], false)
        .unwrap();
    s
}

#[test]
fn paused_chunks_are_kept_by_the_plugin_and_sent_as_the_last_one() {
    let host = TestHost::builder()
        .stock_envoy()
        .start::<Plugin>("{}")
        .unwrap();
    let mut s = request(&host, "hold");
    assert_eq!(
        s.send_response_body(b"data: a\n\n", false).unwrap(),
        Action::Pause
    );
    assert_eq!(
        s.send_response_body(b"data: b\n\n", false).unwrap(),
        Action::Pause
    );
    // Stopped without a copy: the client has nothing, the host kept nothing.
    assert!(s.client_response_body().is_empty());
    assert_eq!(s.dropped_response_body(), b"data: a\n\ndata: b\n\n");
    assert_eq!(
        s.send_response_body(b"data: [DONE]\n\n", true).unwrap(),
        Action::Continue
    );
    assert_eq!(
        s.client_response_body(),
        b"data: a\n\ndata: b\n\ndata: [DONE]\n\n"
    );
    assert!(s.client_response_complete());
    s.done().unwrap();
    host.assert_idle();
}

#[test]
fn on_higress_the_kept_chunks_are_injected() {
    let host = TestHost::builder().higress().start::<Plugin>("{}").unwrap();
    let mut s = request(&host, "inject");
    s.send_response_body(b"one ", false).unwrap();
    s.send_response_body(b"two ", false).unwrap();
    assert_eq!(s.send_response_body(b"three", true).unwrap(), Action::Pause);
    // Every chunk stopped (the last one emptied first), the text injected.
    assert_eq!(s.dropped_response_body(), b"one two ");
    assert!(s.client_response_body().is_empty());
    assert_eq!(
        s.injected_encoded_data(),
        vec![(b"one two three".to_vec(), true)]
    );
    s.done().unwrap();
}

#[test]
fn without_the_pause_chunks_flow_and_may_be_replaced() {
    let host = TestHost::builder()
        .stock_envoy()
        .start::<Plugin>("{}")
        .unwrap();
    let mut s = request(&host, "pass");
    assert_eq!(
        s.send_response_body(b"abc", false).unwrap(),
        Action::Continue
    );
    assert_eq!(s.client_response_body(), b"ABC");
    s.send_response_body(b"d", true).unwrap();
    assert_eq!(s.client_response_body(), b"ABCD");
    assert!(s.dropped_response_body().is_empty());
    s.done().unwrap();
}
