//! my-plugin under `cargo test`, every test in both modes
//! (`higress_test_host::both_modes!`): natively in the SDK's in-process
//! test host (`native::`) and as the compiled `wasm32-wasip1` module in the
//! wasm-mode host (`wasm::`).
//!
//! Contract: config `{"some_field": "<string>"}`; on request headers the
//! plugin logs `request received` and the `x-user-id` value and sets request
//! header `x-custom-header` to `some_field`, with the config chosen per
//! request by `_rules_` (first matching rule, else the global config). A bad
//! config fails plugin start with a log line that says what is wrong.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

higress_test_host::both_modes! {
plugin: my_plugin::Plugin,
package: "my-plugin",

/// Sends a GET for `path` to `authority` on `route` / `cluster` and returns
/// the `x-custom-header` the upstream received.
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
    let host = start(include_str!("../config.json")).unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), ("x-custom-header", "client value")], true)
        .unwrap();
    // Replaced, not added.
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
fn a_huge_user_id_is_logged_truncated_with_its_length() {
    let host = start(r#"{"some_field": "v"}"#).unwrap();
    let user = "u".repeat(60_000);
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), ("x-user-id", user.as_str())], true)
        .unwrap();
    let lines = host.logs_containing("x-user-id: ");
    assert_eq!(lines.len(), 1);
    let line = &lines[0].message;
    assert!(
        line.ends_with(&format!("x-user-id: {}... (60000 bytes)", &user[..64])),
        "{line}"
    );
    assert!(line.len() < 200, "{} bytes logged", line.len());
    // The header itself goes upstream whole.
    assert_eq!(
        s.upstream_request_header("x-user-id").unwrap(),
        user.as_str()
    );
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
        // The first matching rule wins, also across kinds.
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
    let host = start_with(RULES, |b| b.stock_envoy()).unwrap();
    assert_eq!(
        custom_header(&host, "other.org", Some("default/route-a"), None).as_deref(),
        Some("route")
    );
}

#[test]
fn without_a_global_config_unmatched_requests_are_untouched() {
    let host = start(
        r#"{"_rules_": [{"_match_domain_": ["a.com"], "some_field": "a"}]}"#,
    )
    .unwrap();
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
    let failure = start(
        r#"{"some_field": "g", "_rules_": [{"_match_route_": ["r"], "some_field": 1}]}"#,
    )
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
    let failure =
        start(r#"{"some_field": "g", "_rules_": [{"some_field": "r"}]}"#)
            .unwrap_err();
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
    assert!(!failure.logs_at_error().is_empty(), "{failure}");
}

#[test]
fn unknown_fields_and_an_empty_config_fail_start() {
    let failure = start(r#"{"some_field": "v", "typo": 1}"#).unwrap_err();
    assert!(!failure.logs_containing("typo").is_empty(), "{failure}");
    // `some_field` is required: `{}` is parsed, and refused.
    let failure = start("{}").unwrap_err();
    assert!(
        !failure.logs_containing("some_field").is_empty(),
        "{failure}"
    );
}

trait ErrorLines {
    fn logs_at_error(&self) -> Vec<&LogRecord>;
}

impl ErrorLines for StartFailure {
    fn logs_at_error(&self) -> Vec<&LogRecord> {
        self.logs
            .iter()
            .filter(|l| l.level == LogLevel::Error)
            .collect()
    }
}
}
