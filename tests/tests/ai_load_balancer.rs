//! `examples/ai-load-balancer`, `lb_type: cluster` / `cluster_metrics`, in a
//! real Envoy 1.40 with two upstream clusters. The plugin names a cluster in
//! `x-higress-target-cluster`; the route has Envoy's `cluster_header` on
//! that header, so Envoy sends each request to the cluster the plugin named
//! (the module runs as ABI 0.2.1 on stock Envoy, and Envoy clears the route
//! cache when such a module changes a request header, so the route is
//! resolved with the plugin's value).
//!
//! The module is the crate built with its `cluster-only` feature: the full
//! module imports Higress-only host calls (Redis, upstream hosts) that stock
//! Envoy refuses. The selection code is the same.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use higress_e2e::{
    http_request_timeout, wasm_module_with_features, ClusterSpec, EchoUpstream, Gateway,
    PluginSpec, RecordedRequest, RouteSpec,
};
use std::time::{Duration, Instant};

const A: &str = "outbound|80||test-1.dns";
const B: &str = "outbound|80||test-2.static";
const HEADER: &str = "x-higress-target-cluster";

struct Setup {
    gateway: Gateway,
    upstreams: [(String, EchoUpstream); 2],
}

impl Setup {
    fn start(config: &str) -> Setup {
        let wasm = wasm_module_with_features("ai-load-balancer", &["cluster-only"])
            .unwrap_or_else(|e| panic!("{e}"));
        let a = EchoUpstream::start().unwrap();
        let b = EchoUpstream::start().unwrap();
        let gateway = Gateway::builder()
            .name("ai-load-balancer-cluster")
            .plugin(PluginSpec::new("ai-load-balancer", wasm, config))
            .cluster(ClusterSpec::new(A, a.port()))
            .cluster(ClusterSpec::new(B, b.port()))
            // `cluster` is unused with a cluster_header.
            .route(RouteSpec::new("llm-route", "/", A).cluster_header(HEADER))
            .start()
            .unwrap_or_else(|e| panic!("{e}"));
        Setup {
            gateway,
            upstreams: [(A.to_owned(), a), (B.to_owned(), b)],
        }
    }

    fn requests(&self, cluster: &str) -> Vec<RecordedRequest> {
        self.upstreams
            .iter()
            .find(|(name, _)| name == cluster)
            .map(|(_, u)| u.requests())
            .unwrap()
    }

    /// Which cluster's upstream got a request carrying `x-seq: seq`; also
    /// checks that the routing header it carried names that cluster.
    fn receiver(&self, seq: &str) -> Option<String> {
        let mut found = None;
        for (name, upstream) in &self.upstreams {
            for request in upstream.requests() {
                if request.header_str("x-seq").as_deref() == Some(seq) {
                    assert_eq!(
                        request.header_str(HEADER).as_deref(),
                        Some(name.as_str()),
                        "request {seq} reached {name} with another {HEADER}"
                    );
                    assert!(found.is_none(), "request {seq} reached both clusters");
                    found = Some(name.clone());
                }
            }
        }
        found
    }

    /// Sends a request and returns the cluster that received it.
    fn send(&self, seq: &str, echo_mode: Option<&str>) -> String {
        let mut headers: Vec<(&str, &[u8])> = vec![("x-seq", seq.as_bytes())];
        if let Some(mode) = echo_mode {
            headers.push(("x-echo-mode", mode.as_bytes()));
        }
        let response = http_request_timeout(
            self.gateway.listener_addr(),
            "POST",
            "/v1/chat/completions",
            &headers,
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#,
            Duration::from_secs(20),
        )
        .unwrap();
        assert_eq!(response.status, 200, "{}", response.text());
        self.receiver(seq)
            .unwrap_or_else(|| panic!("request {seq} reached no upstream"))
    }
}

fn other(cluster: &str) -> &'static str {
    if cluster == A {
        B
    } else {
        A
    }
}

/// LeastBusy: while one request is held by a slow upstream, every other
/// request goes to the other cluster, which has none in flight.
#[test]
fn least_busy_sends_requests_to_the_cluster_with_fewest_in_flight() {
    let setup = Setup::start(&format!(
        r#"{{"lb_type": "cluster", "lb_policy": "cluster_metrics",
            "lb_config": {{"mode": "LeastBusy", "service_list": ["{A}", "{B}"]}}}}"#
    ));
    let addr = setup.gateway.listener_addr();
    let slow = std::thread::spawn(move || {
        http_request_timeout(
            addr,
            "GET",
            "/held",
            &[("x-seq", b"held"), ("x-echo-mode", b"slow:4000")],
            b"",
            Duration::from_secs(20),
        )
    });
    // Wait until the held request reached its upstream.
    let deadline = Instant::now() + Duration::from_secs(10);
    let busy = loop {
        if let Some(cluster) = setup.receiver("held") {
            break cluster;
        }
        assert!(
            Instant::now() < deadline,
            "the held request reached no upstream"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let idle = other(&busy);
    for i in 0..5 {
        let seq = format!("fast-{i}");
        assert_eq!(setup.send(&seq, None), idle, "{seq}");
    }
    assert_eq!(setup.requests(&busy).len(), 1);
    assert_eq!(setup.requests(idle).len(), 5);
    let held = slow.join().unwrap().unwrap();
    assert_eq!(held.status, 200);
    // Each pick is logged at debug level, as Go does.
    assert!(!setup
        .gateway
        .log_lines_containing(&format!("final service: {idle}"))
        .is_empty());
}

/// Go README's example config, unchanged: LeastTotalLatency with
/// `rate_limit: 0.6`. The first request is slow (1.5 s); from then on the
/// fast cluster is taken whenever its share of the requests so far is
/// under 0.6, and the slow one otherwise.
#[test]
fn go_readme_config_prefers_the_faster_cluster_up_to_the_rate_limit() {
    let setup = Setup::start(&format!(
        r#"{{"lb_type": "cluster", "lb_policy": "cluster_metrics",
            "lb_config": {{"mode": "LeastTotalLatency", "queue_size": 100, "rate_limit": 0.6,
                          "service_list": ["{A}", "{B}"]}}}}"#
    ));
    let slow = setup.send("slow", Some("slow:1500"));
    let fast = other(&slow);
    let (mut to_fast, mut to_slow) = (0u32, 1u32);
    for i in 0..8 {
        let share = f64::from(to_fast) / f64::from(to_fast + to_slow);
        let expected = if share < 0.6 { fast } else { slow.as_str() };
        let seq = format!("r{i}");
        let got = setup.send(&seq, None);
        assert_eq!(got, expected, "{seq}: fast share so far {share:.2}");
        if got == fast {
            to_fast += 1;
        } else {
            to_slow += 1;
        }
    }
    assert_eq!((to_fast, to_slow), (5, 4));
}

/// A `service_list` entry Envoy has no cluster for: the requests the plugin
/// sends there get Envoy's `cluster_not_found_response_code` (503 by
/// default, response flag NC), the others go through.
#[test]
fn a_service_envoy_has_no_cluster_for_gets_envoys_503() {
    const MISSING: &str = "outbound|80||missing.dns";
    let setup = Setup::start(&format!(
        r#"{{"lb_type": "cluster", "lb_policy": "cluster_metrics",
            "lb_config": {{"mode": "LeastBusy", "service_list": ["{A}", "{MISSING}"]}}}}"#
    ));
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..10 {
        let seq = format!("r{i}");
        let response = http_request_timeout(
            setup.gateway.listener_addr(),
            "GET",
            "/",
            &[("x-seq", seq.as_bytes())],
            b"",
            Duration::from_secs(20),
        )
        .unwrap();
        let reached = setup.receiver(&seq);
        match response.status {
            200 => assert_eq!(reached.as_deref(), Some(A), "{seq}"),
            other => assert_eq!(reached, None, "{seq} got {other} but reached {reached:?}"),
        }
        *statuses.entry(response.status).or_insert(0u32) += 1;
    }
    // With rate_limit 1 the two alternate at first, so both were picked.
    assert_eq!(
        statuses.keys().copied().collect::<Vec<_>>(),
        [200, 503],
        "{statuses:?}"
    );
}
