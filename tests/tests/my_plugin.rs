//! End-to-end tests of `examples/my-plugin` in a real Envoy.
//!
//! Contract under test: config `{"some_field": "<string>"}`; on request
//! headers the plugin logs `request received` and the `x-user-id` value, and
//! sets request header `x-custom-header` to `some_field`, where the config is
//! chosen per request by the SDK's `_rules_` matcher (first matching rule,
//! else the global config). A bad config must stop Envoy from loading it.
//!
//! Every assertion is on what the upstream received, not only on the status.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use higress_e2e::{
    wasm_module, ClusterSpec, EchoUpstream, FailurePolicy, Gateway, GatewayBuilder, PluginSpec,
    RouteSpec,
};

const PLUGIN: &str = "my_plugin";
const SEQ_HEADER: &str = "x-e2e-seq";

fn plugin(configuration: &str) -> PluginSpec {
    let wasm = wasm_module("my-plugin").unwrap_or_else(|e| panic!("building my-plugin: {e}"));
    PluginSpec::new(PLUGIN, wasm, configuration)
}

fn start(builder: GatewayBuilder) -> Gateway {
    builder.start().unwrap_or_else(|e| panic!("{e}"))
}

/// Sends `GET path` with `Host: host` (plus `extra` headers) and returns the
/// `x-custom-header` the upstream received (`None` if it got none).
fn custom_header_seen(
    gateway: &Gateway,
    upstream: &EchoUpstream,
    host: &str,
    path: &str,
    extra: &[(&str, &[u8])],
) -> Option<String> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::SeqCst).to_string();
    let mut headers: Vec<(&str, &[u8])> =
        vec![("host", host.as_bytes()), (SEQ_HEADER, seq.as_bytes())];
    headers.extend_from_slice(extra);
    let response = gateway
        .get(path, &headers)
        .unwrap_or_else(|e| panic!("GET {path} (host {host}): {e}\n{}", gateway.logs()));
    assert_eq!(
        response.status,
        200,
        "GET {path} (host {host}) -> {} {}\n{}",
        response.status,
        response.text(),
        gateway.logs()
    );
    let request = upstream
        .requests()
        .into_iter()
        .find(|r| r.header(SEQ_HEADER) == Some(seq.as_bytes()))
        .unwrap_or_else(|| panic!("upstream never saw GET {path} (host {host})"));
    request.header_str("x-custom-header")
}

/// Starts a gateway whose plugin has `configuration`, expecting Envoy to
/// refuse it; returns Envoy's log.
fn rejected_config_log(name: &str, configuration: &str) -> String {
    let upstream = EchoUpstream::start().unwrap();
    let result = Gateway::builder()
        .name(name)
        .plugin(plugin(configuration))
        .cluster(ClusterSpec::new("echo", upstream.port()))
        .ready_timeout(Duration::from_secs(15))
        .start();
    match result {
        Ok(gateway) => panic!(
            "Envoy accepted configuration {configuration}; log:\n{}",
            gateway.logs()
        ),
        Err(error) => error
            .envoy_log()
            .unwrap_or_else(|| panic!("expected an Envoy start failure, got: {error}"))
            .to_owned(),
    }
}

/// Lines the plugin logged through `proxy_log` that contain `needle`. Envoy
/// prints them as `wasm log <plugin> <root_id> <vm_id>: <msg>`, or as
/// `wasm log: <msg>` while the base VM is being configured.
fn plugin_log_lines<'a>(log: &'a str, needle: &str) -> Vec<&'a str> {
    log.lines()
        .filter(|l| l.contains("wasm log") && l.contains(needle))
        .collect()
}

/// Plugin log lines at error (or critical) level that contain `needle`.
fn plugin_error_lines<'a>(log: &'a str, needle: &str) -> Vec<&'a str> {
    plugin_log_lines(log, needle)
        .into_iter()
        .filter(|l| l.contains("[error]") || l.contains("[critical]"))
        .collect()
}

#[test]
fn global_config_sets_header_and_logs_request() {
    let upstream = EchoUpstream::start().unwrap();
    let gateway = start(
        Gateway::builder()
            .name("global")
            .plugin(plugin(r#"{"some_field": "hello-e2e"}"#))
            .cluster(ClusterSpec::new("echo", upstream.port())),
    );

    let seen = custom_header_seen(
        &gateway,
        &upstream,
        "example.com",
        "/",
        &[("x-user-id", b"alice-4242")],
    );
    assert_eq!(seen.as_deref(), Some("hello-e2e"));

    // The plugin's log lines reach Envoy's log through proxy_log.
    assert!(
        gateway.wait_for_log("request received", Duration::from_secs(5)),
        "no `request received` in the log:\n{}",
        gateway.logs()
    );
    let logs = gateway.logs();
    assert!(
        !plugin_log_lines(&logs, "request received").is_empty(),
        "`request received` is not a plugin log line:\n{logs}"
    );
    assert!(
        !plugin_log_lines(&logs, "alice-4242").is_empty(),
        "the x-user-id value was not logged:\n{logs}"
    );
}

#[test]
fn non_utf8_user_id_reaches_upstream_unchanged() {
    let upstream = EchoUpstream::start().unwrap();
    let gateway = start(
        Gateway::builder()
            .name("non-utf8")
            // Fail closed (the default, made explicit): a failed VM would
            // answer 503 to every later request instead of hiding it.
            .plugin(PluginSpec {
                failure_policy: FailurePolicy::FailClosed,
                ..plugin(r#"{"some_field": "still-alive"}"#)
            })
            .cluster(ClusterSpec::new("echo", upstream.port())),
    );
    let raw: Vec<u8> = (0x80..=0xFFu8).collect();

    let response = gateway
        .get("/binary", &[("x-user-id", &raw), (SEQ_HEADER, b"binary")])
        .unwrap();
    assert_eq!(
        response.status,
        200,
        "{}\n{}",
        response.text(),
        gateway.logs()
    );
    let request = upstream
        .requests()
        .into_iter()
        .find(|r| r.header(SEQ_HEADER) == Some(b"binary".as_slice()))
        .expect("upstream never saw the request");
    assert_eq!(
        request.header("x-user-id"),
        Some(raw.as_slice()),
        "x-user-id bytes changed"
    );
    assert_eq!(
        request.header_str("x-custom-header").as_deref(),
        Some("still-alive")
    );

    // The VM must not have failed: the next request on the same (only)
    // worker is still served and still gets the header.
    let seen = custom_header_seen(
        &gateway,
        &upstream,
        "example.com",
        "/after",
        &[("x-user-id", b"bob")],
    );
    assert_eq!(seen.as_deref(), Some("still-alive"));
    let logs = gateway.logs();
    assert!(!logs.contains("panicked"), "plugin panicked:\n{logs}");
    assert!(!logs.contains("Uncaught"), "plugin trapped:\n{logs}");
}

#[test]
fn rules_match_by_domain_with_and_without_port() {
    let upstream = EchoUpstream::start().unwrap();
    let config = r#"{
        "some_field": "global",
        "_rules_": [
            {"_match_domain_": ["a.example.com"], "some_field": "domain-a"},
            {"_match_domain_": ["*.wild.example.com"], "some_field": "domain-wild"}
        ]
    }"#;
    let gateway = start(
        Gateway::builder()
            .name("rules-domain")
            .plugin(PluginSpec {
                failure_policy: FailurePolicy::FailReload,
                ..plugin(config)
            })
            .cluster(ClusterSpec::new("echo", upstream.port())),
    );
    let cases = [
        ("a.example.com", Some("domain-a")),
        ("a.example.com:8080", Some("domain-a")),
        ("x.wild.example.com", Some("domain-wild")),
        ("x.wild.example.com:443", Some("domain-wild")),
        ("wild.example.com", Some("global")),
        ("b.example.com", Some("global")),
        ("a.example.com.evil", Some("global")),
    ];
    for (host, expected) in cases {
        let seen = custom_header_seen(&gateway, &upstream, host, "/", &[]);
        assert_eq!(seen.as_deref(), expected, "Host: {host}");
    }
}

#[test]
fn rules_match_by_route_name() {
    let upstream = EchoUpstream::start().unwrap();
    let config = r#"{
        "some_field": "global",
        "_rules_": [
            {"_match_route_": ["route-a"], "some_field": "by-route-a"},
            {"_match_route_": ["route-x", "route-c"], "some_field": "by-route-c"}
        ]
    }"#;
    let gateway = start(
        Gateway::builder()
            .name("rules-route")
            // Also exercises the other PluginSpec fields end to end.
            .plugin(PluginSpec {
                failure_policy: FailurePolicy::FailOpen,
                allow_on_headers_stop_iteration: true,
                root_id: "my_root".to_owned(),
                vm_id: "my_vm".to_owned(),
                ..plugin(config)
            })
            .cluster(ClusterSpec::new("echo", upstream.port()))
            .route(RouteSpec::new("route-a", "/a", "echo"))
            .route(RouteSpec::new("route-b", "/b", "echo"))
            .route(RouteSpec::new("route-c", "/c", "echo"))
            .route(RouteSpec::new("default", "/", "echo")),
    );
    let cases = [
        ("/a/x", "by-route-a"),
        ("/b", "global"),
        ("/c", "by-route-c"),
        ("/", "global"),
    ];
    for (path, expected) in cases {
        let seen = custom_header_seen(&gateway, &upstream, "example.com", path, &[]);
        assert_eq!(seen.as_deref(), Some(expected), "path {path}");
    }
}

#[test]
fn rules_match_by_service_fqdn_and_port() {
    let upstream = EchoUpstream::start().unwrap();
    let port = upstream.port();
    let config = r#"{
        "some_field": "global",
        "_rules_": [
            {"_match_service_": ["echo2.static:80"], "some_field": "echo2-port-80"},
            {"_match_service_": ["echo2.static"], "some_field": "echo2-any-port"},
            {"_match_service_": ["echo3.static:9090"], "some_field": "echo3-port-9090"}
        ]
    }"#;
    let gateway = start(
        Gateway::builder()
            .name("rules-service")
            .plugin(plugin(config))
            .cluster(ClusterSpec::new("outbound|80||echo2.static", port))
            .cluster(ClusterSpec::new("outbound|8080||echo2.static", port))
            .cluster(ClusterSpec::new("outbound|80||echo3.static", port))
            .cluster(ClusterSpec::new("echo2.static", port))
            .route(RouteSpec::new(
                "svc2-http",
                "/svc2-http",
                "outbound|80||echo2.static",
            ))
            .route(RouteSpec::new(
                "svc2-alt",
                "/svc2-alt",
                "outbound|8080||echo2.static",
            ))
            .route(RouteSpec::new(
                "svc3-http",
                "/svc3-http",
                "outbound|80||echo3.static",
            ))
            .route(RouteSpec::new("plain", "/", "echo2.static")),
    );
    let cases = [
        // fqdn:port and fqdn both match; the fqdn:port rule comes first.
        ("/svc2-http", "echo2-port-80"),
        // Only the bare fqdn matches another port.
        ("/svc2-alt", "echo2-any-port"),
        // Right fqdn, wrong port.
        ("/svc3-http", "global"),
        // Not an `outbound|port|subset|fqdn` name: never a service match.
        ("/", "global"),
    ];
    for (path, expected) in cases {
        let seen = custom_header_seen(&gateway, &upstream, "example.com", path, &[]);
        assert_eq!(seen.as_deref(), Some(expected), "path {path}");
    }
}

#[test]
fn rules_match_by_route_prefix() {
    let upstream = EchoUpstream::start().unwrap();
    let config = r#"{
        "some_field": "global",
        "_rules_": [
            {"_match_route_prefix_": ["api-v1"], "some_field": "api-v1-prefix"}
        ]
    }"#;
    let gateway = start(
        Gateway::builder()
            .name("rules-prefix")
            .plugin(plugin(config))
            .cluster(ClusterSpec::new("echo", upstream.port()))
            .route(RouteSpec::new("api-v1-users", "/v1/users", "echo"))
            .route(RouteSpec::new("api-v1-orders", "/v1/orders", "echo"))
            .route(RouteSpec::new("api-v2", "/v2", "echo"))
            .route(RouteSpec::new("web-api-v1", "/web", "echo"))
            .route(RouteSpec::new("default", "/", "echo")),
    );
    let cases = [
        ("/v1/users/7", "api-v1-prefix"),
        ("/v1/orders", "api-v1-prefix"),
        ("/v2/users", "global"),
        // The prefix applies to the route name, not the path, and anchors at its start.
        ("/web", "global"),
        ("/api-v1", "global"),
    ];
    for (path, expected) in cases {
        let seen = custom_header_seen(&gateway, &upstream, "example.com", path, &[]);
        assert_eq!(seen.as_deref(), Some(expected), "path {path}");
    }
}

#[test]
fn rules_first_match_wins_and_global_is_fallback() {
    let upstream = EchoUpstream::start().unwrap();
    let config = r#"{
        "some_field": "global",
        "_rules_": [
            {"_match_domain_": ["both.example.com"], "some_field": "domain-before-route"},
            {"_match_route_": ["r-first", "r-both"], "some_field": "route-rule"},
            {"_match_domain_": ["first.example.com", "other.example.com"], "some_field": "domain-after-route"},
            {"_match_domain_": ["inherit.example.com"]}
        ]
    }"#;
    let gateway = start(
        Gateway::builder()
            .name("rules-order")
            .plugin(plugin(config))
            .cluster(ClusterSpec::new("echo", upstream.port()))
            .route(RouteSpec::new("r-first", "/", "echo").domains(["first.example.com"]))
            .route(RouteSpec::new("r-both", "/", "echo").domains(["both.example.com"]))
            .route(RouteSpec::new("r-any", "/", "echo")),
    );
    let cases = [
        // Domain rule (1st) and route rule (2nd) both match: the first wins.
        ("both.example.com", "domain-before-route"),
        // Route rule (2nd) and domain rule (3rd) both match: the first wins.
        ("first.example.com", "route-rule"),
        ("other.example.com", "domain-after-route"),
        // A rule without `some_field` takes it from the global config.
        ("inherit.example.com", "global"),
        // Nothing matches: the global config applies.
        ("nomatch.example.com", "global"),
    ];
    for (host, expected) in cases {
        let seen = custom_header_seen(&gateway, &upstream, host, "/", &[]);
        assert_eq!(seen.as_deref(), Some(expected), "Host: {host}");
    }
}

#[test]
fn rules_without_global_config_leave_unmatched_requests_alone() {
    let upstream = EchoUpstream::start().unwrap();
    let config = r#"{"_rules_": [{"_match_domain_": ["a.example.com"], "some_field": "only-a"}]}"#;
    let gateway = start(
        Gateway::builder()
            .name("rules-only")
            .plugin(plugin(config))
            .cluster(ClusterSpec::new("echo", upstream.port())),
    );
    let seen = custom_header_seen(&gateway, &upstream, "a.example.com", "/", &[]);
    assert_eq!(seen.as_deref(), Some("only-a"));
    let seen = custom_header_seen(&gateway, &upstream, "b.example.com", "/", &[]);
    assert_eq!(
        seen, None,
        "no rule and no global config: the plugin must not act"
    );
}

#[test]
fn rejects_some_field_that_is_not_a_string() {
    let log = rejected_config_log("bad-type", r#"{"some_field": 123}"#);
    assert!(
        !plugin_error_lines(&log, "some_field").is_empty(),
        "no plugin log line names `some_field`:\n{log}"
    );
}

#[test]
fn rejects_rule_without_match_keys() {
    let config = r#"{"some_field": "global", "_rules_": [{"some_field": "orphan"}]}"#;
    let log = rejected_config_log("bad-rule", config);
    assert!(
        !plugin_error_lines(&log, "_match_").is_empty(),
        "no plugin log line names the `_match_*` keys:\n{log}"
    );
}

#[test]
fn rejects_invalid_json() {
    let log = rejected_config_log("bad-json", r#"{"some_field": "x""#);
    assert!(
        !plugin_error_lines(&log, "").is_empty(),
        "the plugin logged no error for invalid JSON:\n{log}"
    );
}
