//! examples/my-plugin's compiled module in the wasm-mode host, with the
//! assertions of examples/my-plugin/tests/native.rs (same method names;
//! the host is started from the module instead of the plugin type).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use higress_wasm_host::{Action, LogLevel, LogRecord, StartFailure, StartStage, TestHost};

fn start(config: &str) -> Result<TestHost, StartFailure> {
    TestHost::start(&common::module("my-plugin"), config)
}

fn custom_header(
    host: &TestHost,
    authority: &str,
    route: Option<&str>,
    cluster: Option<&str>,
) -> Option<String> {
    let mut s = host.http_stream();
    s.set_authority(authority);
    if let Some(route) = route {
        s.set_route_name(route);
    }
    if let Some(cluster) = cluster {
        s.set_cluster_name(cluster);
    }
    let action = s
        .send_request_headers(&[(":method", "GET"), (":path", "/")], true)
        .unwrap();
    assert_eq!(action, Action::Continue);
    s.upstream_request_header("x-custom-header")
        .map(|v| v.to_string())
}

#[test]
fn sets_the_header_from_config() {
    let host = start(include_str!("../../examples/my-plugin/config.json")).unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), ("x-custom-header", "client value")], true)
        .unwrap();
    let values = s.request_header_values("x-custom-header");
    assert_eq!(values.len(), 1);
    assert_eq!(values[0], "hello from my-plugin");
    assert_eq!(
        s.upstream_request_header("x-custom-header").unwrap(),
        "hello from my-plugin"
    );
    assert!(s.upstream_request_complete());
}

#[test]
fn logs_the_request_and_the_user() {
    let host = start(r#"{"some_field": "v"}"#).unwrap();
    let mut s = host.http_stream();
    s.set_request_id("req-42");
    s.send_request_headers(&[(":path", "/"), ("x-user-id", "u1")], true)
        .unwrap();
    let received = host.logs_containing("request received");
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].level, LogLevel::Info);
    assert_eq!(
        received[0].message,
        "[my-plugin] [nil] [req-42] request received"
    );
    assert_eq!(host.logs_containing("x-user-id: u1").len(), 1);

    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/")], true).unwrap();
    assert_eq!(host.logs_containing("x-user-id: (none)").len(), 1);
}

#[test]
fn the_plugin_id_tags_every_line() {
    let host = start(r#"{"some_field": "v", "_plugin_id_": "p-7"}"#).unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/")], true).unwrap();
    assert_eq!(
        host.logs_containing("request received")[0].message,
        "[my-plugin] [p-7] [nil] request received"
    );
}

const RULES: &str = r#"{
    "some_field": "global",
    "_rules_": [
        {"_match_domain_": ["*.example.com"], "some_field": "domain"},
        {"_match_route_": ["default/route-a"], "some_field": "route"},
        {"_match_service_": ["svc.default.svc.cluster.local:8080"], "some_field": "service"},
        {"_match_route_prefix_": ["api-"], "some_field": "prefix"},
        {"_match_domain_": ["first.example.org"], "some_field": "first"},
        {"_match_domain_": ["first.example.org"], "some_field": "second"}
    ]
}"#;

#[test]
fn rules_choose_the_config_per_request() {
    let host = start(RULES).unwrap();
    let cases = [
        ("a.example.com", None, None, "domain"),
        ("a.example.com:8080", None, None, "domain"),
        ("other.org", Some("default/route-a"), None, "route"),
        (
            "other.org",
            None,
            Some("outbound|8080||svc.default.svc.cluster.local"),
            "service",
        ),
        (
            "other.org",
            None,
            Some("outbound|9090||svc.default.svc.cluster.local"),
            "global",
        ),
        ("other.org", Some("api-v1"), None, "prefix"),
        ("other.org", Some("default/route-b"), None, "global"),
        ("example.com", None, None, "global"),
        ("first.example.org", None, None, "first"),
        ("b.example.com", Some("default/route-a"), None, "domain"),
    ];
    for (authority, route, cluster, want) in cases {
        assert_eq!(
            custom_header(&host, authority, route, cluster).as_deref(),
            Some(want),
            "{authority} {route:?} {cluster:?}"
        );
    }
}

#[test]
fn rules_also_match_on_stock_envoy_properties() {
    // Stock Envoy has no `route_name`: the SDK falls back to `xds.route_name`.
    let module = common::module("my-plugin");
    let host = TestHost::builder()
        .properties(higress_wasm_host::Properties::Envoy)
        .start(&module, RULES)
        .unwrap();
    assert_eq!(
        custom_header(&host, "other.org", Some("default/route-a"), None).as_deref(),
        Some("route")
    );
}

#[test]
fn without_a_global_config_unmatched_requests_are_untouched() {
    let host = start(r#"{"_rules_": [{"_match_domain_": ["a.com"], "some_field": "a"}]}"#).unwrap();
    assert_eq!(
        custom_header(&host, "a.com", None, None).as_deref(),
        Some("a")
    );
    assert_eq!(custom_header(&host, "b.com", None, None), None);
    assert_eq!(host.logs_containing("request received").len(), 1);
}

#[test]
fn a_wrongly_typed_field_fails_start_naming_it() {
    let failure = start(r#"{"some_field": 123}"#).unwrap_err();
    assert_eq!(failure.stage, StartStage::Configure);
    let lines = failure.logs_containing("some_field");
    assert!(!lines.is_empty(), "{failure}");
    assert!(
        lines.iter().all(|l| l.level == LogLevel::Error),
        "{failure}"
    );
}

#[test]
fn a_bad_rule_config_fails_start_naming_the_rule() {
    let failure =
        start(r#"{"some_field": "g", "_rules_": [{"_match_route_": ["r"], "some_field": 1}]}"#)
            .unwrap_err();
    assert!(
        !failure.logs_containing("_rules_[0]").is_empty(),
        "{failure}"
    );
    assert!(
        !failure.logs_containing("some_field").is_empty(),
        "{failure}"
    );
}

#[test]
fn a_rule_without_match_keys_fails_start_naming_them() {
    let failure = start(r#"{"some_field": "g", "_rules_": [{"some_field": "r"}]}"#).unwrap_err();
    for key in [
        "_match_route_",
        "_match_domain_",
        "_match_service_",
        "_match_route_prefix_",
    ] {
        assert!(
            !failure.logs_containing(key).is_empty(),
            "{key} not named: {failure}"
        );
    }
}

#[test]
fn invalid_json_fails_start() {
    let failure = start(r#"{"some_field": "#).unwrap_err();
    assert_eq!(failure.stage, StartStage::Configure);
    let errors: Vec<&LogRecord> = failure
        .logs
        .iter()
        .filter(|l| l.level == LogLevel::Error)
        .collect();
    assert!(!errors.is_empty(), "{failure}");
}

#[test]
fn unknown_fields_and_an_empty_config_fail_start() {
    let failure = start(r#"{"some_field": "v", "typo": 1}"#).unwrap_err();
    assert!(!failure.logs_containing("typo").is_empty(), "{failure}");
    let failure = start("{}").unwrap_err();
    assert!(
        !failure.logs_containing("some_field").is_empty(),
        "{failure}"
    );
}
