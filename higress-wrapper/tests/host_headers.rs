//! Header access through the test host: the request line, get / set / add /
//! remove / replace-all on both maps, non-UTF-8 values, and when Envoy lets
//! a plugin reach each map.
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

fn on_request_headers(ctx: &mut HttpContext, _: &()) -> HeaderAction {
    let line = [
        ("x-scheme", ctx.scheme().to_owned()),
        ("x-host", ctx.host().to_owned()),
        ("x-path", ctx.path().to_owned()),
        ("x-path-no-query", ctx.path_without_query().to_owned()),
        ("x-method", ctx.method().to_owned()),
    ];
    for (name, value) in line {
        ctx.set_request_header(name, value);
    }
    if let Some(bin) = ctx.request_header("x-bin") {
        log::info!(
            "x-bin is {bin} ({} bytes, utf8: {})",
            bin.as_bytes().len(),
            bin.to_str().is_some()
        );
        ctx.set_request_header("x-bin-copy", bin.as_bytes());
    }
    ctx.add_request_header("x-multi", "added");
    ctx.remove_request_header("x-remove-me");
    let count = ctx.request_headers().len();
    ctx.set_request_header("x-count", count.to_string());
    if ctx.request_header("x-replace-all").is_some() {
        ctx.set_request_headers(&[(":path", b"/replaced"), ("x-only", b"\xff\x80")]);
    }
    HeaderAction::Continue
}

fn on_response_headers(ctx: &mut HttpContext, _: &()) -> HeaderAction {
    // The request headers left with the request: Envoy no longer lends them.
    let seen = ctx
        .request_header("x-user")
        .map_or_else(|| "absent".to_owned(), |v| v.to_string());
    ctx.set_response_header("x-request-header-now", seen);
    // The request line was read at request headers and is still known.
    let line = format!("{} {} {}", ctx.method(), ctx.host(), ctx.path());
    ctx.set_response_header("x-request-line", line);
    let status = ctx
        .response_header(":status")
        .map(|v| v.to_string())
        .unwrap_or_default();
    ctx.set_response_header("x-status-seen", status);
    ctx.set_response_header("x-resp-set", "v");
    ctx.add_response_header("x-resp-multi", "b");
    ctx.remove_response_header("server");
    let count = ctx.response_headers().len();
    ctx.set_response_header("x-resp-count", count.to_string());
    if ctx.response_header("x-replace-all").is_some() {
        ctx.set_response_headers(&[(":status", b"201"), ("x-only", b"r")]);
    }
    HeaderAction::Continue
}

higress_wrapper::set_ctx! {
    name: "headers",
    config: (),
    parse_config: no_config,
    on_request_headers: on_request_headers,
    on_response_headers: on_response_headers,
}

fn host() -> TestHost {
    TestHost::start::<Plugin>("{}").unwrap()
}

#[test]
fn request_line_getters() {
    let host = host();
    let mut s = host.http_stream();
    s.set_authority("example.com:8080");
    let action = s
        .send_request_headers(
            &[
                (":method", "POST"),
                (":scheme", "https"),
                (":path", "/a/b?x=1&y=2"),
                (":authority", "ignored"),
            ],
            true,
        )
        .unwrap();
    assert_eq!(action, Action::Continue);
    assert_eq!(s.upstream_request_header("x-scheme").unwrap(), "https");
    assert_eq!(
        s.upstream_request_header("x-host").unwrap(),
        "example.com:8080"
    );
    assert_eq!(s.upstream_request_header("x-path").unwrap(), "/a/b?x=1&y=2");
    assert_eq!(
        s.upstream_request_header("x-path-no-query").unwrap(),
        "/a/b"
    );
    assert_eq!(s.upstream_request_header("x-method").unwrap(), "POST");
}

#[test]
fn missing_pseudo_headers_read_as_empty() {
    let host = host();
    let mut s = host.http_stream();
    s.send_request_headers::<&str, &str>(&[], true).unwrap();
    assert_eq!(s.upstream_request_header("x-path").unwrap(), "");
    assert_eq!(s.upstream_request_header("x-path-no-query").unwrap(), "");
    assert_eq!(s.upstream_request_header("x-method").unwrap(), "");
}

#[test]
fn request_header_set_add_remove() {
    let host = host();
    let mut s = host.http_stream();
    s.send_request_headers(
        &[
            (":path", "/"),
            ("X-Multi", "one"),
            ("x-remove-me", "1"),
            ("x-remove-me", "2"),
        ],
        true,
    )
    .unwrap();
    // Names are lowercased, the added value is kept next to the first.
    let multi: Vec<String> = s
        .request_header_values("x-multi")
        .iter()
        .map(|v| v.to_string())
        .collect();
    assert_eq!(multi, ["one", "added"]);
    assert!(s.upstream_request_header("x-remove-me").is_none());
    // 2 headers left of the 4 + 5 request-line headers set before counting,
    // + 1 added.
    assert_eq!(s.upstream_request_header("x-count").unwrap(), "8");
    let upstream = s.upstream_request_headers().unwrap();
    assert_eq!(
        upstream[0].0, ":path",
        "pseudo-headers stay first: {upstream:?}"
    );
}

#[test]
fn set_request_headers_replaces_the_whole_map() {
    let host = host();
    let mut s = host.http_stream();
    s.send_request_headers(
        &[(":path", "/orig"), ("x-replace-all", "1"), ("x-other", "o")],
        true,
    )
    .unwrap();
    let upstream = s.upstream_request_headers().unwrap();
    let names: Vec<&str> = upstream.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, [":path", "x-only"]);
    assert_eq!(upstream[0].1, "/replaced");
    assert_eq!(upstream[1].1.as_bytes(), b"\xff\x80");
}

#[test]
fn header_values_with_high_bytes_never_panic() {
    let host = host();
    let all_high: Vec<u8> = (0x80..=0xff).collect();
    let mut s = host.http_stream();
    s.send_request_headers(
        &[
            (":path", &b"/\xc3\x28"[..]),
            ("x-bin", &all_high[..]),
            ("x-user", b"\xfe"),
        ],
        true,
    )
    .unwrap();
    assert_eq!(
        s.upstream_request_header("x-bin-copy").unwrap().as_bytes(),
        &all_high[..]
    );
    let line = &host.logs_containing("x-bin is")[0].message;
    assert!(line.ends_with("(128 bytes, utf8: false)"), "{line}");
    // Lossy everywhere text is needed.
    assert_eq!(s.upstream_request_header("x-path").unwrap(), "/\u{fffd}(");
    let mut s2 = host.http_stream();
    s2.send_request_headers(&[(":path", "/"), ("x-user", "u")], true)
        .unwrap();
    s2.send_response_headers(&[(":status", &b"200"[..]), ("x-bin", &all_high[..])], true)
        .unwrap();
    assert_eq!(
        s2.client_response_header("x-bin").unwrap().as_bytes(),
        &all_high[..]
    );
    assert!(host.abi_errors().is_empty());
}

#[test]
fn response_header_set_add_remove() {
    let host = host();
    let mut s = host.http_stream();
    s.send_request_headers(
        &[
            (":method", "GET"),
            (":authority", "h.com"),
            (":path", "/p"),
            ("x-user", "u1"),
        ],
        true,
    )
    .unwrap();
    let action = s
        .send_response_headers(
            &[
                (":status", "200"),
                ("server", "upstream"),
                ("x-resp-multi", "a"),
            ],
            false,
        )
        .unwrap();
    assert_eq!(action, Action::Continue);
    assert_eq!(s.client_response_status(), Some(200));
    assert_eq!(s.client_response_header("x-status-seen").unwrap(), "200");
    assert_eq!(s.client_response_header("x-resp-set").unwrap(), "v");
    assert!(s.client_response_header("server").is_none());
    let sent = s.client_response_headers().unwrap();
    let multi: Vec<&HeaderValue> = sent
        .iter()
        .filter(|(n, _)| n == "x-resp-multi")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        multi,
        [
            &HeaderValue::from(b"a".to_vec()),
            &HeaderValue::from(b"b".to_vec())
        ]
    );
    // :status, x-resp-multi x2, x-request-header-now, x-request-line,
    // x-status-seen, x-resp-set.
    assert_eq!(s.client_response_header("x-resp-count").unwrap(), "7");
}

#[test]
fn request_headers_are_gone_in_the_response_phase_but_the_request_line_is_cached() {
    let host = host();
    let mut s = host.http_stream();
    s.send_request_headers(
        &[
            (":method", "GET"),
            (":authority", "h.com"),
            (":path", "/p?q"),
            ("x-user", "u1"),
        ],
        true,
    )
    .unwrap();
    s.send_response_headers(&[(":status", "204")], true)
        .unwrap();
    // As in Envoy: after the request headers continued, the plugin cannot
    // read them any more...
    assert_eq!(
        s.client_response_header("x-request-header-now").unwrap(),
        "absent"
    );
    // ...but the SDK read the request line while it could.
    assert_eq!(
        s.client_response_header("x-request-line").unwrap(),
        "GET h.com /p?q"
    );
}

#[test]
fn set_response_headers_replaces_the_whole_map() {
    let host = host();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/")], true).unwrap();
    s.send_response_headers(&[(":status", "200"), ("x-replace-all", "1")], true)
        .unwrap();
    assert_eq!(s.client_response_status(), Some(201));
    let names: Vec<String> = s
        .client_response_headers()
        .unwrap()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, [":status", "x-only"]);
}

#[test]
fn header_maps_keep_the_last_state_at_the_filter() {
    let host = host();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/x")], true).unwrap();
    // The map at the filter and what left are the same here.
    assert_eq!(s.request_header("x-path").unwrap(), "/x");
    assert_eq!(
        s.request_headers().len(),
        s.upstream_request_headers().unwrap().len()
    );
    assert!(s.upstream_request_complete());
}
