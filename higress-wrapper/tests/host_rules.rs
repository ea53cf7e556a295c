//! `_rules_` matching end to end through the test host: the config each
//! request gets, chosen from its authority, route and cluster as Higress
//! provides them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use higress_test_host::{HttpStream, Properties, TestHost};
use higress_wrapper::prelude::*;

#[derive(Debug, serde::Deserialize)]
struct Config {
    name: String,
    #[serde(default)]
    extra: String,
}

fn on_request_headers(ctx: &mut HttpContext, config: &Config) -> HeaderAction {
    log::info!("hook called with {}", config.name);
    ctx.set_request_header("x-rule", &config.name);
    ctx.set_request_header("x-extra", &config.extra);
    HeaderAction::Continue
}

higress_wrapper::set_ctx! {
    name: "rules",
    config: Config,
    on_request_headers: on_request_headers,
}

const CONFIG: &str = r#"{
    "name": "global",
    "extra": "from-global",
    "_rules_": [
        {"_match_domain_": ["*.example.com", "exact.com", "[::1]"], "name": "domain"},
        {"_match_route_": ["default/route-a"], "name": "route"},
        {"_match_service_": ["svc.ns.svc.cluster.local:8080"], "name": "service-port"},
        {"_match_service_": ["other.ns.svc.cluster.local"], "name": "service-any", "extra": "own"},
        {"_match_route_prefix_": ["api-"], "name": "prefix"}
    ]
}"#;

struct Request<'a> {
    authority: &'a str,
    route: Option<&'a str>,
    cluster: Option<&'a str>,
}

const fn at(authority: &str) -> Request<'_> {
    Request {
        authority,
        route: None,
        cluster: None,
    }
}

fn send<'h>(host: &'h TestHost, request: &Request<'_>) -> HttpStream<'h> {
    let mut s = host.http_stream();
    s.set_authority(request.authority);
    if let Some(route) = request.route {
        s.set_route_name(route);
    }
    if let Some(cluster) = request.cluster {
        s.set_cluster_name(cluster);
    }
    s.send_request_headers(&[(":path", "/"), (":method", "GET")], true)
        .unwrap();
    s
}

fn rule_of(host: &TestHost, request: &Request<'_>) -> Option<String> {
    send(host, request)
        .upstream_request_header("x-rule")
        .map(|v| v.to_string())
}

#[test]
fn domains_match_with_and_without_port() {
    let host = TestHost::start::<Plugin>(CONFIG).unwrap();
    for authority in [
        "a.example.com",
        "a.example.com:8443",
        "exact.com",
        "exact.com:80",
        "[::1]:8080",
        "[::1]",
    ] {
        assert_eq!(
            rule_of(&host, &at(authority)).as_deref(),
            Some("domain"),
            "{authority}"
        );
    }
    // `*.example.com` is a suffix match on `.example.com`; case matters.
    for authority in ["example.com", "EXACT.COM", "notexact.com", "exact.com.evil"] {
        assert_eq!(
            rule_of(&host, &at(authority)).as_deref(),
            Some("global"),
            "{authority}"
        );
    }
}

#[test]
fn routes_services_and_prefixes() {
    let host = TestHost::start::<Plugin>(CONFIG).unwrap();
    let cases = [
        (Some("default/route-a"), None, "route"),
        (Some("default/route-b"), None, "global"),
        (
            None,
            Some("outbound|8080||svc.ns.svc.cluster.local"),
            "service-port",
        ),
        (
            None,
            Some("outbound|9090||svc.ns.svc.cluster.local"),
            "global",
        ),
        (
            None,
            Some("outbound|1|v1|other.ns.svc.cluster.local"),
            "service-any",
        ),
        (None, Some("svc.ns.svc.cluster.local"), "global"),
        (Some("api-users"), None, "prefix"),
        (Some("web-api-users"), None, "global"),
    ];
    for (route, cluster, want) in cases {
        let request = Request {
            authority: "other.org",
            route,
            cluster,
        };
        assert_eq!(
            rule_of(&host, &request).as_deref(),
            Some(want),
            "{route:?} {cluster:?}"
        );
    }
}

#[test]
fn the_first_matching_rule_wins() {
    let host = TestHost::start::<Plugin>(CONFIG).unwrap();
    let request = Request {
        authority: "a.example.com",
        route: Some("default/route-a"),
        cluster: Some("outbound|8080||svc.ns.svc.cluster.local"),
    };
    assert_eq!(rule_of(&host, &request).as_deref(), Some("domain"));
    let request = Request {
        authority: "other.org",
        route: Some("api-x"),
        cluster: Some("outbound|8080||svc.ns.svc.cluster.local"),
    };
    assert_eq!(rule_of(&host, &request).as_deref(), Some("service-port"));
}

#[test]
fn a_rule_config_is_the_global_config_overlaid_with_its_keys() {
    let host = TestHost::start::<Plugin>(CONFIG).unwrap();
    let s = send(&host, &at("a.example.com"));
    assert_eq!(s.upstream_request_header("x-extra").unwrap(), "from-global");
    let request = Request {
        authority: "other.org",
        route: None,
        cluster: Some("outbound|1||other.ns.svc.cluster.local"),
    };
    let s = send(&host, &request);
    assert_eq!(s.upstream_request_header("x-extra").unwrap(), "own");
}

#[test]
fn without_a_match_or_global_config_the_plugin_stays_out() {
    let host =
        TestHost::start::<Plugin>(r#"{"_rules_": [{"_match_route_": ["r"], "name": "only"}]}"#)
            .unwrap();
    let s = send(
        &host,
        &Request {
            authority: "a.example.com",
            route: Some("other"),
            cluster: None,
        },
    );
    assert!(s.upstream_request_header("x-rule").is_none());
    assert!(host.logs_containing("hook called").is_empty());
    let s = send(
        &host,
        &Request {
            authority: "a.example.com",
            route: Some("r"),
            cluster: None,
        },
    );
    assert_eq!(s.upstream_request_header("x-rule").unwrap(), "only");
    assert_eq!(host.logs_containing("hook called").len(), 1);
}

#[test]
fn routes_and_services_match_on_stock_envoy_too() {
    let host = TestHost::builder()
        .properties(Properties::Envoy)
        .start::<Plugin>(CONFIG)
        .unwrap();
    let request = Request {
        authority: "other.org",
        route: Some("default/route-a"),
        cluster: None,
    };
    assert_eq!(rule_of(&host, &request).as_deref(), Some("route"));
    let request = Request {
        authority: "other.org",
        route: None,
        cluster: Some("outbound|8080||svc.ns.svc.cluster.local"),
    };
    assert_eq!(rule_of(&host, &request).as_deref(), Some("service-port"));
}

#[test]
fn a_rule_without_match_keys_fails_start() {
    let failure = TestHost::start::<Plugin>(r#"{"_rules_": [{"name": "x"}]}"#).unwrap_err();
    assert!(
        !failure.logs_containing("_match_route_").is_empty(),
        "{failure}"
    );
}
