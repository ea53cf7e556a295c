//! `_rules_` against what a real Envoy reports: route names, virtual-host
//! domains (the `Host` header, with and without port) and cluster names in
//! Higress's `outbound|<port>|<subset>|<fqdn>` form. The probe writes the
//! matched config's `tag` to the request (upstream) and to the response
//! (client), and with `x-probe-props` the route and cluster names it saw.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod e2e_common;

use e2e_common::{exchange, plugin_lines, probe, start};
use higress_e2e::{ClusterSpec, EchoUpstream, Gateway, RouteSpec};

/// Sends `GET path` with `Host: host`; returns (tag at the upstream, tag at
/// the client, route name seen, cluster name seen).
fn tags(
    gateway: &Gateway,
    upstream: &EchoUpstream,
    host: &str,
    path: &str,
) -> (Option<String>, Option<String>, String, String) {
    let x = exchange(
        gateway,
        upstream,
        "GET",
        path,
        &[("host", host.as_bytes()), ("x-probe-props", b"1")],
        b"",
    );
    assert_eq!(
        x.response.status,
        200,
        "{host}{path}: {}",
        x.response.text()
    );
    let seen = x.upstream.unwrap();
    (
        seen.header_str("x-probe-tag"),
        x.response.header_str("x-probe-tag"),
        seen.header_str("x-probe-route").unwrap_or_default(),
        seen.header_str("x-probe-cluster").unwrap_or_default(),
    )
}

#[test]
fn rules_match_real_route_names_domains_and_services() {
    let upstream = EchoUpstream::start().unwrap();
    let port = upstream.port();
    let config = r#"{
        "tag": "global",
        "_rules_": [
            {"_match_route_": ["route-orders"], "tag": "by-route"},
            {"_match_domain_": ["shop.example.com"], "tag": "by-domain"},
            {"_match_domain_": ["*.wild.example.com"], "tag": "by-wildcard"},
            {"_match_service_": ["users.default.svc.cluster.local:8080"], "tag": "by-service-port"},
            {"_match_service_": ["payments.static"], "tag": "by-service"},
            {"_match_route_prefix_": ["api-v2-"], "tag": "by-route-prefix"}
        ]
    }"#;
    let gateway = start(
        Gateway::builder()
            .name("rules")
            .plugin(probe(config))
            .cluster(ClusterSpec::new(
                "outbound|8080||users.default.svc.cluster.local",
                port,
            ))
            .cluster(ClusterSpec::new(
                "outbound|80||users.default.svc.cluster.local",
                port,
            ))
            .cluster(ClusterSpec::new("outbound|80||payments.static", port))
            .cluster(ClusterSpec::new("outbound|80|v1|payments.static", port))
            .cluster(ClusterSpec::new("echo", port))
            .route(RouteSpec::new("route-orders", "/orders", "echo"))
            .route(RouteSpec::new(
                "route-users",
                "/users",
                "outbound|8080||users.default.svc.cluster.local",
            ))
            .route(RouteSpec::new(
                "route-users-80",
                "/port80-users",
                "outbound|80||users.default.svc.cluster.local",
            ))
            .route(RouteSpec::new(
                "route-pay",
                "/pay",
                "outbound|80||payments.static",
            ))
            .route(RouteSpec::new(
                "route-pay-v1",
                "/v1pay",
                "outbound|80|v1|payments.static",
            ))
            .route(RouteSpec::new("api-v2-items", "/v2/items", "echo"))
            .route(RouteSpec::new("api-v3-items", "/v3/items", "echo"))
            .route(RouteSpec::new("default", "/", "echo")),
    );
    let cases = [
        // (host, path, expected tag, route seen, cluster seen)
        (
            "x.example.com",
            "/orders/7",
            "by-route",
            "route-orders",
            "echo",
        ),
        // A domain rule comes after the route rule: the route rule wins.
        (
            "shop.example.com",
            "/orders",
            "by-route",
            "route-orders",
            "echo",
        ),
        ("shop.example.com", "/", "by-domain", "default", "echo"),
        ("shop.example.com:8443", "/", "by-domain", "default", "echo"),
        ("a.wild.example.com", "/", "by-wildcard", "default", "echo"),
        ("wild.example.com", "/", "global", "default", "echo"),
        (
            "x.example.com",
            "/users/1",
            "by-service-port",
            "route-users",
            "outbound|8080||users.default.svc.cluster.local",
        ),
        // Same service, another port: the fqdn:port rule does not match.
        (
            "x.example.com",
            "/port80-users",
            "global",
            "route-users-80",
            "outbound|80||users.default.svc.cluster.local",
        ),
        (
            "x.example.com",
            "/pay",
            "by-service",
            "route-pay",
            "outbound|80||payments.static",
        ),
        // A subset in the cluster name does not hide the fqdn.
        (
            "x.example.com",
            "/v1pay",
            "by-service",
            "route-pay-v1",
            "outbound|80|v1|payments.static",
        ),
        (
            "x.example.com",
            "/v2/items",
            "by-route-prefix",
            "api-v2-items",
            "echo",
        ),
        (
            "x.example.com",
            "/v3/items",
            "global",
            "api-v3-items",
            "echo",
        ),
        ("x.example.com", "/", "global", "default", "echo"),
    ];
    for (host, path, tag, route, cluster) in cases {
        let (at_upstream, at_client, route_seen, cluster_seen) =
            tags(&gateway, &upstream, host, path);
        assert_eq!(
            at_upstream.as_deref(),
            Some(tag),
            "{host}{path} at the upstream"
        );
        assert_eq!(
            at_client.as_deref(),
            Some(tag),
            "{host}{path} at the client"
        );
        assert_eq!(route_seen, route, "{host}{path}: route name");
        assert_eq!(cluster_seen, cluster, "{host}{path}: cluster name");
    }
    // The SDK says at debug which rule matched.
    let log = gateway.logs();
    assert!(!plugin_lines(&log, "config matched").is_empty(), "{log}");
}

#[test]
fn without_a_global_config_unmatched_requests_skip_the_plugin() {
    let upstream = EchoUpstream::start().unwrap();
    let config = r#"{"_rules_": [{"_match_route_": ["only-this"], "tag": "matched"}]}"#;
    let gateway = start(
        Gateway::builder()
            .name("rules-only")
            .plugin(probe(config))
            .cluster(ClusterSpec::new("echo", upstream.port()))
            .route(RouteSpec::new("only-this", "/this", "echo"))
            .route(RouteSpec::new("other", "/", "echo")),
    );
    let (at_upstream, at_client, route, _) = tags(&gateway, &upstream, "a.example.com", "/this");
    assert_eq!(at_upstream.as_deref(), Some("matched"));
    assert_eq!(at_client.as_deref(), Some("matched"));
    assert_eq!(route, "only-this");

    let x = exchange(
        &gateway,
        &upstream,
        "GET",
        "/that",
        &[("x-probe-props", b"1"), ("x-probe-set-req", b"x-set=1")],
        b"",
    );
    assert_eq!(x.response.status, 200);
    let seen = x.upstream.unwrap();
    // No hook ran: no tag, no props, no set header, on either side.
    assert_eq!(seen.header("x-probe-tag"), None);
    assert_eq!(seen.header("x-probe-route"), None);
    assert_eq!(seen.header("x-set"), None);
    assert_eq!(x.response.header("x-probe-tag"), None);
    let log = gateway.logs();
    assert!(
        plugin_lines(&log, "probe request headers: GET /that").is_empty(),
        "{log}"
    );
    assert_eq!(
        plugin_lines(&log, "no rule matched and there is no global config").len(),
        1,
        "{log}"
    );
}
