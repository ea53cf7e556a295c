//! One module, two hosts: a request-headers hook that holds the headers to
//! read the body first, then sets a header from it. Higress runs this SDK's
//! modules as ABI 0.2.100 (their first ABI export), so the body hook runs
//! and the header reaches the upstream; stock Envoy runs them as 0.2.1,
//! where the same pause is *stop all* and the body is held until resumed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use higress_test_host::{Action, TestHost};
use higress_wrapper::prelude::*;

fn no_config(_: &serde_json::Value) -> Result<(), ConfigError> {
    Ok(())
}

fn request_headers(ctx: &mut HttpContext, _: &()) -> HeaderAction {
    ctx.remove_request_header("content-length");
    HeaderAction::StopIteration
}

fn request_body(ctx: &mut HttpContext, _: &(), body: &[u8]) -> DataAction {
    ctx.set_request_header("x-body-len", body.len().to_string());
    DataAction::Continue
}

higress_wrapper::set_ctx! {
    name: "body-first",
    config: (),
    parse_config: no_config,
    on_request_headers: request_headers,
    on_request_body: request_body,
}

const HEADERS: &[(&str, &str)] = &[
    (":path", "/p"),
    (":method", "POST"),
    (":authority", "a.example"),
    ("content-type", "text/plain"),
];

#[test]
fn higress_0_2_100_reads_the_body_before_the_headers_leave() {
    let host = TestHost::builder().higress().start::<Plugin>("{}").unwrap();
    let mut s = host.http_stream();
    assert_eq!(
        s.send_request_headers(HEADERS, false).unwrap(),
        Action::Pause
    );
    // The body callbacks run while the headers are held.
    assert_eq!(s.send_request_body("12345", false).unwrap(), Action::Pause);
    assert_eq!(s.send_request_body("678", true).unwrap(), Action::Continue);
    assert_eq!(s.upstream_request_header("x-body-len").unwrap(), "8");
    assert_eq!(s.upstream_request_body(), b"12345678");
    host.assert_idle();
}

#[test]
fn stock_envoy_0_2_1_holds_the_body_until_resumed() {
    let host = TestHost::builder()
        .stock_envoy()
        .start::<Plugin>("{}")
        .unwrap();
    let mut s = host.http_stream();
    assert_eq!(
        s.send_request_headers(HEADERS, false).unwrap(),
        Action::Pause
    );
    // Stop all: the plugin never sees the body, so nothing sets the header.
    assert_eq!(s.send_request_body("12345678", true).unwrap(), Action::Held);
    assert!(s.upstream_request_header("x-body-len").is_none());
}
