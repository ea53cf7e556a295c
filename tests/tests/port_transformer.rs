//! `examples/transformer` (the port of Higress's Go plugin) in a real Envoy
//! 1.40: request headers, query and JSON body rewritten before the upstream
//! sees them, a header taken from the JSON body (`mapSource: body`, which
//! needs `allow_on_headers_stop_iteration`), and the upstream's JSON
//! response rewritten on its way to the client.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use higress_e2e::{wasm_module, ClusterSpec, EchoUpstream, Gateway, PluginSpec};
use serde_json::{json, Value};

const CONFIG: &str = r#"{
    "reqRules": [
        {"operate": "rename", "headers": [{"oldKey": "X-not-renamed", "newKey": "X-renamed"}]},
        {"operate": "add", "headers": [{"key": "X-host", "value": "host-$1", "host_pattern": "^(.*)\\.com$"}]},
        {"operate": "remove", "querys": [{"key": "k1"}]},
        {"operate": "rename", "querys": [{"oldKey": "k2", "newKey": "k2-new"}]},
        {"operate": "map", "mapSource": "body", "headers": [{"fromKey": "user.id", "toKey": "x-user-id"}]},
        {"operate": "remove", "body": [{"key": "secret"}]},
        {"operate": "add", "body": [{"key": "added", "value": "3", "value_type": "number"}]}
    ],
    "respRules": [
        {"operate": "remove", "body": [{"key": "body_length"}]},
        {"operate": "add", "body": [{"key": "via", "value": "transformer"}]},
        {"operate": "add", "headers": [{"key": "X-Transformed", "value": "yes"}]}
    ]
}"#;

#[test]
fn rewrites_request_and_response() {
    let upstream = EchoUpstream::start().unwrap();
    let wasm = wasm_module("transformer").unwrap_or_else(|e| panic!("{e}"));
    let gw = Gateway::builder()
        .name("port-transformer")
        .plugin(PluginSpec {
            allow_on_headers_stop_iteration: true,
            ..PluginSpec::new("transformer", wasm, CONFIG)
        })
        .cluster(ClusterSpec::new("echo", upstream.port()))
        .start()
        .unwrap_or_else(|e| panic!("{e}"));

    // Headers and query, no body.
    let r = gw
        .get(
            "/get?k1=v1&k2=v2",
            &[("host", b"foo.bar.com"), ("x-not-renamed", b"test")],
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}\n{}", r.text(), gw.logs());
    let seen = upstream.last_request().unwrap();
    assert_eq!(seen.path, "/get?k2-new=v2");
    assert_eq!(seen.header_str("x-renamed").as_deref(), Some("test"));
    assert_eq!(seen.header("x-not-renamed"), None);
    assert_eq!(seen.header_str("x-host").as_deref(), Some("host-foo.bar"));
    // The response: echo JSON rewritten, a header added.
    assert_eq!(r.header_str("x-transformed").as_deref(), Some("yes"));
    let echo = r.json().unwrap();
    assert_eq!(echo["via"], json!("transformer"));
    assert_eq!(echo.get("body_length"), None);
    assert_eq!(echo["path"], json!("/get?k2-new=v2"));

    // A JSON body: a header from it, a field removed, one added.
    let body = br#"{"user": {"id": 42}, "secret": "s", "keep": true}"#;
    let r = gw
        .request(
            "POST",
            "/post",
            &[
                ("host", b"example.org"),
                ("content-type", b"application/json"),
            ],
            body,
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}\n{}", r.text(), gw.logs());
    let seen = upstream.last_request().unwrap();
    assert_eq!(seen.header_str("x-user-id").as_deref(), Some("42"));
    let sent: Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(sent, json!({"user": {"id": 42}, "keep": true, "added": 3}));
    // Envoy framed the new body itself: the old content-length is gone.
    assert_ne!(
        seen.header_str("content-length").as_deref(),
        Some(body.len().to_string().as_str())
    );
}
