//! The rest of `HttpContext` through the test host: identity, phase, typed
//! state, Go's context map, user attributes (access log and trace),
//! properties under both hosts, route / cluster names, request id,
//! `disable_reroute`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use higress_test_host::{Properties, TestHost};
use higress_wrapper::prelude::*;
use serde_json::json;

#[derive(Debug, Default)]
struct Counter {
    hooks: u32,
}

fn no_config(_: &serde_json::Value) -> Result<(), ConfigError> {
    Ok(())
}

fn on_request_headers(ctx: &mut HttpContext<Counter>, _: &()) -> HeaderAction {
    ctx.state_mut().hooks += 1;
    log::info!(
        "identity {} {} {:?}",
        ctx.plugin_name(),
        ctx.context_id(),
        ctx.execution_phase()
    );
    // Go's context map, with typed getters and defaults.
    ctx.set_context("b", true);
    ctx.set_context("i", 42i64);
    ctx.set_context("s", "text");
    ctx.set_context("bytes", &b"\x00\xff"[..]);
    ctx.set_context("j", json!({"k": [1, 2]}));
    let removed = ctx.remove_context("s").is_some();
    log::info!(
        "context b={} missing={} wrong-type={} i={} i-default={} s={} bytes={:?} bytes-default={:?} j={} removed={removed} none={}",
        ctx.get_bool_context("b", false),
        ctx.get_bool_context("missing", true),
        ctx.get_bool_context("i", false),
        ctx.get_int_context("i", 0),
        ctx.get_int_context("b", 7),
        ctx.get_string_context("s", "gone"),
        ctx.get_bytes_context("bytes", b""),
        ctx.get_bytes_context("i", b"d"),
        ctx.get_context("j").map(|v| format!("{v:?}")).unwrap_or_default(),
        ctx.get_context("nothing").is_none(),
    );
    log::info!(
        "names route={:?} cluster={:?} request_id={:?}",
        ctx.route_name(),
        ctx.cluster_name(),
        ctx.request_id()
    );
    if ctx.request_header("x-reroute-off").is_some() {
        ctx.disable_reroute();
        ctx.set_request_header("x-changed", "1");
    }
    if ctx.request_header("x-attributes").is_some() {
        ctx.set_user_attribute("k1", "v1");
        ctx.set_user_attribute("n", 5);
        log::info!(
            "attributes k1={:?} count={}",
            ctx.get_user_attribute("k1"),
            ctx.user_attributes().len()
        );
        ctx.write_user_attribute_to_log().unwrap();
        ctx.write_user_attribute_to_log_with_key(higress_wrapper::AI_LOG_KEY)
            .unwrap();
        let mut map = serde_json::Map::new();
        map.insert("t1".into(), json!("x"));
        map.insert("t2".into(), json!(3));
        map.insert("empty".into(), json!(""));
        ctx.set_user_attribute_map(map);
        ctx.write_user_attribute_to_trace().unwrap();
    }
    let set = ctx.set_property(&["my", "prop"], "mine");
    log::info!(
        "property set={set:?} read={:?} plugin_name={:?}",
        ctx.property(&["my", "prop"])
            .map(|v| String::from_utf8(v).unwrap()),
        ctx.property(&["plugin_name"])
            .map(|v| String::from_utf8(v).unwrap()),
    );
    HeaderAction::Continue
}

fn on_response_headers(ctx: &mut HttpContext<Counter>, _: &()) -> HeaderAction {
    ctx.state_mut().hooks += 1;
    log::info!(
        "response {:?} after {} hook(s)",
        ctx.execution_phase(),
        ctx.state().hooks
    );
    HeaderAction::Continue
}

fn on_stream_done(ctx: &mut HttpContext<Counter>, _: &()) {
    log::info!(
        "done {:?} after {} hook(s), request id {:?}, route {:?}",
        ctx.execution_phase(),
        ctx.state().hooks + 1,
        ctx.request_id(),
        ctx.route_name()
    );
}

higress_wrapper::set_ctx! {
    name: "ctx-plugin",
    config: (),
    state: Counter,
    parse_config: no_config,
    on_request_headers: on_request_headers,
    on_response_headers: on_response_headers,
    on_stream_done: on_stream_done,
}

fn line(host: &TestHost, needle: &str) -> String {
    let lines = host.logs_containing(needle);
    assert_eq!(lines.len(), 1, "{needle}: {:?}", host.logs());
    lines[0].message.clone()
}

/// Go's `UnmarshalStr`: the property holds JSON in escaped-string form.
fn unescape(raw: &[u8]) -> serde_json::Value {
    let text: String =
        serde_json::from_str(&format!("\"{}\"", String::from_utf8_lossy(raw))).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn identity_phase_and_state_across_hooks() {
    let host = TestHost::start::<Plugin>("{}").unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/")], true).unwrap();
    s.send_response_headers(&[(":status", "200")], true)
        .unwrap();
    s.done().unwrap();
    assert_eq!(
        line(&host, "identity"),
        format!(
            "[ctx-plugin] [nil] [nil] identity ctx-plugin {} DecodeHeader",
            s.context_id()
        )
    );
    assert!(line(&host, "response ").ends_with("response EncodeHeader after 2 hook(s)"));
    assert!(line(&host, "done ").contains("done Done after 3 hook(s)"));
}

#[test]
fn the_context_map_and_its_defaults() {
    let host = TestHost::start::<Plugin>("{}").unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/")], true).unwrap();
    let context = line(&host, "context b=");
    assert!(
        context.ends_with(
            r#"context b=true missing=true wrong-type=false i=42 i-default=7 s=gone bytes=[0, 255] bytes-default=[100] j=Json(Object {"k": Array [Number(1), Number(2)]}) removed=true none=true"#
        ),
        "{context}"
    );
}

#[test]
fn user_attributes_merge_into_the_access_log_and_go_to_the_trace() {
    let host = TestHost::start::<Plugin>("{}").unwrap();
    let mut s = host.http_stream();
    // An earlier plugin wrote custom_log already (escaped JSON, as Go).
    s.set_property(&["custom_log"], r#"{\"a\":\"old\",\"k1\":\"old\"}"#);
    s.send_request_headers(&[(":path", "/"), ("x-attributes", "1")], true)
        .unwrap();
    assert!(line(&host, "attributes").ends_with(r#"attributes k1=Some(String("v1")) count=2"#));
    assert_eq!(
        unescape(&s.property(&["custom_log"]).unwrap()),
        json!({"a": "old", "k1": "v1", "n": 5})
    );
    assert_eq!(
        unescape(&s.property(&["ai_log"]).unwrap()),
        json!({"k1": "v1", "n": 5})
    );
    assert_eq!(s.property(&["trace_span_tag.t1"]).unwrap(), b"x");
    assert_eq!(s.property(&["trace_span_tag.t2"]).unwrap(), b"3");
    // Empty values are skipped, with an error line.
    assert!(s.property(&["trace_span_tag.empty"]).is_none());
    assert_eq!(
        host.logs_containing("trace span tag empty has an empty value")
            .len(),
        1
    );
}

#[test]
fn properties_set_by_the_plugin_read_back() {
    let host = TestHost::start::<Plugin>("{}").unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/")], true).unwrap();
    assert!(line(&host, "property set=")
        .ends_with(r#"property set=Ok(()) read=Some("mine") plugin_name=Some("ctx-plugin")"#));
    assert_eq!(s.property(&["my", "prop"]).unwrap(), b"mine");
    let host = TestHost::builder()
        .plugin_name("higress-system.ctx")
        .start::<Plugin>("{}")
        .unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/")], true).unwrap();
    assert!(line(&host, "property set=").ends_with(r#"plugin_name=Some("higress-system.ctx")"#));
}

#[test]
fn disable_reroute_sets_clear_route_cache_off() {
    let host = TestHost::start::<Plugin>("{}").unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), ("x-reroute-off", "1")], true)
        .unwrap();
    assert_eq!(s.property(&["clear_route_cache"]).unwrap(), b"off");
    assert_eq!(s.upstream_request_header("x-changed").unwrap(), "1");
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/")], true).unwrap();
    assert!(s.property(&["clear_route_cache"]).is_none());
}

#[test]
fn route_cluster_and_request_id_on_higress() {
    let host = TestHost::start::<Plugin>("{}").unwrap();
    let mut s = host.http_stream();
    s.set_route_name("default/foo")
        .set_cluster_name("outbound|80||foo.default.svc.cluster.local")
        .set_request_id("rid-1");
    s.send_request_headers(&[(":path", "/")], true).unwrap();
    assert!(line(&host, "names").ends_with(
        r#"names route=Some("default/foo") cluster=Some("outbound|80||foo.default.svc.cluster.local") request_id=Some("rid-1")"#
    ));
    assert_eq!(s.property(&["route_name"]).unwrap(), b"default/foo");
    assert_eq!(s.property(&["xds", "route_name"]).unwrap(), b"default/foo");
    assert_eq!(
        s.property(&["cluster_name"]).unwrap(),
        b"outbound|80||foo.default.svc.cluster.local"
    );
    // Envoy 1.40 answers `request.*` from the request headers, which are
    // gone once they continued (measured in a real Envoy, see
    // tests/tests/e2e_headers.rs): the SDK captured what it needs in time.
    assert!(s.property(&["request", "id"]).is_none());
    // The log prefix carries the request id.
    assert!(line(&host, "names").starts_with("[ctx-plugin] [nil] [rid-1] "));
    // Properties stay reachable after the request headers left; the
    // request headers themselves do again in the access-log phase.
    s.done().unwrap();
    assert!(
        line(&host, "done ").ends_with(r#"request id Some("rid-1"), route Some("default/foo")"#)
    );
}

#[test]
fn route_and_cluster_on_stock_envoy() {
    let host = TestHost::builder()
        .properties(Properties::Envoy)
        .start::<Plugin>("{}")
        .unwrap();
    let mut s = host.http_stream();
    s.set_route_name("r1").set_cluster_name("c1");
    s.set_authority("h.example");
    s.send_request_headers(&[(":path", "/a?b")], true).unwrap();
    // The un-prefixed names do not exist there; the SDK falls back to xds.*.
    assert!(s.property(&["route_name"]).is_none());
    assert!(s.property(&["cluster_name"]).is_none());
    assert_eq!(s.property(&["xds", "cluster_name"]).unwrap(), b"c1");
    assert!(line(&host, "names")
        .ends_with(r#"names route=Some("r1") cluster=Some("c1") request_id=None"#));
    // The request headers continued: `request.*` no longer answers.
    assert!(s.property(&["request", "host"]).is_none());
    assert!(s.property(&["request", "url_path"]).is_none());
    assert!(s.property(&["request", "id"]).is_none());
}

#[test]
fn unknown_names_are_none() {
    let host = TestHost::start::<Plugin>("{}").unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/")], true).unwrap();
    assert!(line(&host, "names").ends_with("names route=None cluster=None request_id=None"));
    // Host-wide properties the test provides.
    host.set_property(&["node", "id"], "n1");
    assert_eq!(s.property(&["node", "id"]).unwrap(), b"n1");
}
