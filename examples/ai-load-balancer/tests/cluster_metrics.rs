//! `lb_type: cluster`, `lb_policy: cluster_metrics` in both test hosts
//! (native and the compiled module, `both_modes!`):
//! the pick of each mode from statistics the plugin gathered from earlier
//! requests (latencies on the host clock, moved by the test), Go's
//! rate-limit rule, ties, the penalty for failures, the routing header,
//! per-VM and shared statistics, and the config. (The full plugin: not
//! with the `cluster-only` feature, whose module the Envoy test runs.)
#![cfg(not(feature = "cluster-only"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use ai_load_balancer::cluster_metrics::{
    parse_cluster_metrics, Mode, Stats, DEFAULT_CLUSTER_HEADER, README_CLUSTER_HEADER,
};
use ai_load_balancer::{parse_config, LoadBalancer};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const A: &str = "outbound|80||test-1.dns";
const B: &str = "outbound|80||test-2.static";
const C: &str = "outbound|80||test-3.static";

fn config(lb_config: Value) -> Value {
    json!({"lb_type": "cluster", "lb_policy": "cluster_metrics", "lb_config": lb_config})
}

fn other(service: &str) -> &'static str {
    if service == A {
        B
    } else {
        A
    }
}

higress_test_host::both_modes! {
plugin: ai_load_balancer::Plugin,
package: "ai-load-balancer",

fn started(lb_config: Value) -> TestHost {
    start(config(lb_config).to_string()).unwrap()
}

/// A request through the plugin: its headers continue at once, naming the
/// service in the routing header. Returns the stream and the service.
fn send_with<'h>(host: &'h TestHost, header: &str) -> (HttpStream<'h>, String) {
    let mut s = host.http_stream();
    let action = s
        .send_request_headers(
            &[
                (":path", "/v1/chat/completions"),
                (":method", "POST"),
                (":authority", "llm.example.com"),
            ],
            false,
        )
        .unwrap();
    assert_eq!(action, Action::Continue);
    assert_eq!(
        s.send_request_body(r#"{"messages":[]}"#, true).unwrap(),
        Action::Continue
    );
    let service = s
        .upstream_request_header(header)
        .unwrap_or_else(|| panic!("no {header} on the upstream request"))
        .to_str()
        .unwrap()
        .to_owned();
    (s, service)
}

fn send(host: &TestHost) -> (HttpStream<'_>, String) {
    send_with(host, DEFAULT_CLUSTER_HEADER)
}

/// The upstream answers `status` after `ttft`, then ends the body after
/// `rest` more; the stream ends.
fn answer(host: &TestHost, mut s: HttpStream<'_>, status: u32, ttft: u64, rest: u64) {
    host.advance_time(Duration::from_millis(ttft));
    s.send_response_headers(&[(":status", status.to_string().as_str())], false)
        .unwrap();
    s.send_response_body("data: {\"choices\":[]}\n\n", false)
        .unwrap();
    host.advance_time(Duration::from_millis(rest));
    s.send_response_body("data: [DONE]\n\n", true).unwrap();
    s.done().unwrap();
}

// ----- config ----------------------------------------------------------------

#[test]
fn go_readme_config_keys_and_defaults() {
    // Go README's example, unchanged.
    let readme = config(
        json!({"mode": "LeastTotalLatency", "queue_size": 100, "rate_limit": 0.6,
                               "service_list": [A, B]}),
    );
    let LoadBalancer::ClusterMetrics(lb) = parse_config(&readme).unwrap().lb else {
        panic!("not cluster_metrics")
    };
    assert_eq!(lb.mode, Mode::LeastTotalLatency);
    assert_eq!(lb.service_list, [A, B]);
    assert_eq!(lb.rate_limit, 0.6);
    assert_eq!(lb.queue_size, 100);
    // Go's code, not its README (x-envoy-target-cluster).
    assert_eq!(lb.cluster_header, "x-higress-target-cluster");
    assert!(!lb.shared_stats);
    start(readme.to_string()).unwrap();

    // Defaults: rate_limit 1, queue_size 100 (also for 0).
    let lb = parse_cluster_metrics(&json!({"mode": "LeastBusy", "service_list": [A],
                                             "queue_size": 0}))
    .unwrap();
    assert_eq!((lb.rate_limit, lb.queue_size), (1.0, 100));
    // rate_limit as text (Go's README types it string), the other modes.
    let lb = parse_cluster_metrics(
        &json!({"mode": "LeastFirstTokenLatency", "service_list": [A, B], "rate_limit": "0.5",
                "queue_size": 7, "cluster_header": "X-Route-To"}),
    )
    .unwrap();
    assert_eq!(lb.mode, Mode::LeastFirstTokenLatency);
    assert_eq!((lb.rate_limit, lb.queue_size), (0.5, 7));
    assert_eq!(lb.cluster_header, "x-route-to");
    // The README's default, behind the port's option; a given header wins.
    let readme_header = json!({"mode": "LeastBusy", "service_list": [A],
                               "use_readme_cluster_header": true});
    assert_eq!(
        parse_cluster_metrics(&readme_header)
            .unwrap()
            .cluster_header,
        README_CLUSTER_HEADER
    );
    let mut given = readme_header.clone();
    given["cluster_header"] = json!("x-mine");
    assert_eq!(
        parse_cluster_metrics(&given).unwrap().cluster_header,
        "x-mine"
    );
}

#[test]
fn a_bad_config_names_the_field() {
    let cases = [
        (
            json!({"service_list": [A]}),
            "lb_config.mode",
            "is not supported",
        ),
        (
            json!({"mode": "Fastest", "service_list": [A]}),
            "lb_config.mode",
            "\"Fastest\" is not supported",
        ),
        (
            json!({"mode": 3, "service_list": [A]}),
            "lb_config.mode",
            "must be a string",
        ),
        (
            json!({"mode": "LeastBusy"}),
            "lb_config.service_list",
            "is required",
        ),
        (
            json!({"mode": "LeastBusy", "service_list": []}),
            "lb_config.service_list",
            "must not be empty",
        ),
        (
            json!({"mode": "LeastBusy", "service_list": "a,b"}),
            "lb_config.service_list",
            "must be a list",
        ),
        (
            json!({"mode": "LeastBusy", "service_list": [A, 7]}),
            "lb_config.service_list[1]",
            "must be a cluster name",
        ),
        (
            json!({"mode": "LeastBusy", "service_list": [A, ""]}),
            "lb_config.service_list[1]",
            "must be a cluster name",
        ),
        (
            json!({"mode": "LeastBusy", "service_list": [A], "rate_limit": 1.5}),
            "lb_config.rate_limit",
            "not between 0 and 1",
        ),
        (
            json!({"mode": "LeastBusy", "service_list": [A], "rate_limit": "lots"}),
            "lb_config.rate_limit",
            "is not a number",
        ),
        (
            json!({"mode": "LeastBusy", "service_list": [A], "queue_size": -1}),
            "lb_config.queue_size",
            "not a count",
        ),
        (
            json!({"mode": "LeastBusy", "service_list": [A], "queue_size": 2.5}),
            "lb_config.queue_size",
            "not a count",
        ),
        (
            json!({"mode": "LeastBusy", "service_list": [A], "cluster_header": true}),
            "lb_config.cluster_header",
            "must be a string",
        ),
        (
            json!({"mode": "LeastBusy", "service_list": [A], "shared_stats": "yes"}),
            "lb_config.shared_stats",
            "must be true or false",
        ),
    ];
    for (lb_config, path, message) in cases {
        let e = parse_config(&config(lb_config.clone())).unwrap_err();
        assert_eq!(e.path(), Some(path), "{lb_config}: {e}");
        assert!(e.to_string().contains(message), "{lb_config}: {e}");
        let failure = start(config(lb_config.clone()).to_string()).unwrap_err();
        assert!(!failure.logs_containing(path).is_empty(), "{failure}");
    }
    let e = parse_config(&json!({"lb_type": "cluster", "lb_policy": "cluster_metrics"}))
        .unwrap_err();
    assert_eq!(e.path(), Some("lb_config"), "{e}");
}

// ----- selection --------------------------------------------------------------

/// Go's rule with the default `rate_limit` 1: a service that took every
/// request so far is at the limit, so the second request always goes
/// elsewhere; then the fewest in flight wins.
#[test]
fn least_busy_sends_each_request_where_fewest_are_in_flight() {
    let host = started(json!({"mode": "LeastBusy", "service_list": [A, B, C]}));
    let (s1, first) = send(&host);
    let (s2, second) = send(&host);
    let (_s3, third) = send(&host);
    let picked: BTreeSet<_> = [&first, &second, &third].into_iter().collect();
    assert_eq!(picked.len(), 3, "{first} {second} {third}");
    // The second one ends: its service is the only one with none in flight.
    answer(&host, s2, 200, 5, 5);
    for _ in 0..3 {
        let (s, service) = send(&host);
        assert_eq!(service, second);
        answer(&host, s, 200, 5, 5);
    }
    // The first ends without a response (the client went away): it is no
    // longer in flight either, and ties with the second's service.
    let mut s1 = s1;
    s1.done().unwrap();
    let mut seen = BTreeSet::new();
    for _ in 0..40 {
        let (s, service) = send(&host);
        seen.insert(service);
        answer(&host, s, 200, 5, 5);
    }
    assert_eq!(
        seen,
        [first, second].into_iter().collect::<BTreeSet<_>>(),
        "the third service still has a request in flight"
    );
}

#[test]
fn ties_are_broken_at_random() {
    let host = started(json!({"mode": "LeastBusy", "service_list": [A, B]}));
    let mut picks: BTreeMap<String, u32> = BTreeMap::new();
    for _ in 0..200 {
        let (s, service) = send(&host);
        *picks.entry(service).or_default() += 1;
        answer(&host, s, 200, 1, 1);
    }
    // Nothing is ever in flight at a pick: every pick is a tie.
    let a = picks.get(A).copied().unwrap_or(0);
    let b = picks.get(B).copied().unwrap_or(0);
    assert!(a > 40 && b > 40, "{picks:?}");
    // Two VMs (two hosts) draw differently.
    let other = started(json!({"mode": "LeastBusy", "service_list": [A, B]}));
    let mine: Vec<String> = (0..30)
        .map(|_| {
            let (s, service) = send(&host);
            answer(&host, s, 200, 1, 1);
            service
        })
        .collect();
    let theirs: Vec<String> = (0..30)
        .map(|_| {
            let (s, service) = send(&other);
            answer(&other, s, 200, 1, 1);
            service
        })
        .collect();
    assert_ne!(mine, theirs);
}

#[test]
fn least_total_latency_follows_the_mean_time_of_each_service() {
    let host = started(json!({"mode": "LeastTotalLatency", "service_list": [A, B]}));
    let (s, x) = send(&host);
    answer(&host, s, 200, 100, 400); // x: 500 ms
    let (s, y) = send(&host);
    assert_eq!(y, other(&x), "the rate limit sends the second elsewhere");
    answer(&host, s, 200, 50, 50); // y: 100 ms
    let (s, service) = send(&host);
    assert_eq!(service, y, "100 ms < 500 ms");
    answer(&host, s, 200, 500, 500); // y: mean of 100 and 1000 = 550 ms
    let (s, service) = send(&host);
    assert_eq!(service, x, "500 ms < 550 ms");
    answer(&host, s, 200, 1, 1);
}

#[test]
fn queue_size_bounds_the_window_of_the_means() {
    // With a window of one request, only the last time counts.
    let host = started(json!({"mode": "LeastTotalLatency", "service_list": [A, B],
                            "queue_size": 1}));
    let (s, x) = send(&host);
    answer(&host, s, 200, 300, 0); // x: 300
    let (s, y) = send(&host);
    answer(&host, s, 200, 100, 0); // y: 100
    let (s, service) = send(&host);
    assert_eq!(service, y);
    answer(&host, s, 200, 10, 0); // y: 10 (the 100 is gone)
    let (s, service) = send(&host);
    assert_eq!(service, y);
    answer(&host, s, 200, 400, 0); // y: 400, x still 300
    let (s, service) = send(&host);
    assert_eq!(service, x, "y's window holds only its last request");
    answer(&host, s, 200, 1, 0);
}

/// The first-token time is taken at the first response body chunk: a
/// service fast to start but slow to finish wins `LeastFirstTokenLatency`
/// and loses `LeastTotalLatency`.
#[test]
fn first_token_latency_is_measured_at_the_first_body_chunk() {
    for (mode, fast_start_wins) in [
        ("LeastFirstTokenLatency", true),
        ("LeastTotalLatency", false),
    ] {
        let host = started(json!({"mode": mode, "service_list": [A, B]}));
        let (s, quick_start) = send(&host);
        answer(&host, s, 200, 50, 5000); // first chunk at 50 ms, end at 5050 ms
        let (s, slow_start) = send(&host);
        answer(&host, s, 200, 300, 0); // first chunk and end at 300 ms
        let (s, service) = send(&host);
        let expected = if fast_start_wins {
            &quick_start
        } else {
            &slow_start
        };
        assert_eq!(&service, expected, "{mode}");
        // The first chunk after 1 ms, the end 30 s later.
        let mut s = s;
        host.advance_time(Duration::from_millis(1));
        s.send_response_headers(&[(":status", "200")], false)
            .unwrap();
        for _ in 0..3 {
            s.send_response_body("data: x\n\n", false).unwrap();
            host.advance_time(Duration::from_millis(10_000));
        }
        s.send_response_body("", true).unwrap();
        assert_eq!(s.client_response_body(), b"data: x\n\n".repeat(3), "{mode}");
        s.done().unwrap();
        // First tokens: quick_start (50 + 1) / 2 < 300 had the 30 s counted
        // it would lose. Totals: slow_start now (300 + 30001) / 2 > 5050.
        let (s, next) = send(&host);
        assert_eq!(next, quick_start, "{mode}");
        answer(&host, s, 200, 1, 1);
    }
}

/// A response other than 200 counts as twice the worst of its own time and
/// every service's mean.
#[test]
fn a_failed_response_is_penalised() {
    let host = started(json!({"mode": "LeastTotalLatency", "service_list": [A, B]}));
    let (s, x) = send(&host);
    answer(&host, s, 200, 5, 5); // x: 10
    let (s, y) = send(&host);
    answer(&host, s, 200, 50, 50); // y: 100
    let (s, service) = send(&host);
    assert_eq!(service, x);
    // 10 ms, but a 503: 2 * max(10, 10, 100) = 200; x's mean (10 + 200) / 2
    // = 105 > 100. Counted as a 10 ms success it would stay x.
    answer(&host, s, 503, 5, 5);
    let (s, service) = send(&host);
    assert_eq!(service, y);
    answer(&host, s, 200, 1, 1);
}

#[test]
fn rate_limit_caps_the_share_of_the_best_service() {
    let host = started(json!({"mode": "LeastTotalLatency", "service_list": [A, B],
                            "rate_limit": 0.6}));
    let (s, slow) = send(&host);
    answer(&host, s, 200, 1000, 1000);
    let mut picks = Vec::new();
    for _ in 0..20 {
        let (s, service) = send(&host);
        picks.push(service.clone());
        answer(&host, s, 200, 1, 0);
    }
    let to_slow = picks.iter().filter(|p| **p == slow).count();
    // Without the limit all 20 go to the fast one; with it the slow one
    // takes what keeps the fast one's share under 0.6.
    assert!(to_slow >= 6, "{picks:?}");
    let fast_share = (picks.len() - to_slow) as f64 / (picks.len() + 1) as f64;
    assert!(fast_share <= 0.6 + 1.0 / 21.0, "{picks:?}");
}

// ----- the header --------------------------------------------------------------

#[test]
fn the_header_names_the_service_and_replaces_the_clients() {
    for (lb_config, header) in [
        (
            json!({"mode": "LeastBusy", "service_list": [A]}),
            DEFAULT_CLUSTER_HEADER,
        ),
        (
            json!({"mode": "LeastBusy", "service_list": [A], "use_readme_cluster_header": true}),
            README_CLUSTER_HEADER,
        ),
        (
            json!({"mode": "LeastBusy", "service_list": [A], "cluster_header": "x-route-to"}),
            "x-route-to",
        ),
    ] {
        let host = started(lb_config);
        let mut s = host.http_stream();
        s.send_request_headers(
            &[
                (":path", "/"),
                (":method", "GET"),
                (header, "outbound|80||evil.dns"),
            ],
            true,
        )
        .unwrap();
        let values = s
            .upstream_request_headers()
            .unwrap()
            .into_iter()
            .filter(|(k, _)| k == header)
            .map(|(_, v)| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>();
        assert_eq!(values, [A], "{header}");
        s.done().unwrap();
    }
}

// ----- statistics: per VM or shared ----------------------------------------------

#[test]
fn statistics_are_per_vm_by_default() {
    let lb = json!({"mode": "LeastBusy", "service_list": [A, B]});
    let key = parse_cluster_metrics(&lb).unwrap().shared_key();
    let host = started(lb);
    let (_held, first) = send(&host);
    // Another worker's numbers in shared data do not matter.
    let mut theirs = Stats::default();
    theirs
        .services
        .entry(other(&first).to_owned())
        .or_default()
        .ongoing = 50;
    host.set_shared_data(&key, serde_json::to_vec(&theirs).unwrap());
    let (_held2, second) = send(&host);
    assert_eq!(second, other(&first));
    // Nothing is written there.
    assert_eq!(
        host.shared_data(&key).unwrap(),
        serde_json::to_vec(&theirs).unwrap()
    );
}

#[test]
fn shared_stats_are_kept_in_shared_data_for_every_worker() {
    let lb = json!({"mode": "LeastBusy", "service_list": [A, B], "shared_stats": true});
    let key = parse_cluster_metrics(&lb).unwrap().shared_key();
    let host = started(lb);
    let (held, first) = send(&host);
    let stats: Stats = serde_json::from_slice(&host.shared_data(&key).unwrap()).unwrap();
    assert_eq!(stats.services[&first].ongoing, 1);
    assert_eq!(stats.services[&first].count, 1);
    // Another worker has 5 in flight on the other service, 5 counted.
    let mut theirs = stats.clone();
    let o = theirs.services.entry(other(&first).to_owned()).or_default();
    o.ongoing = 5;
    o.count = 5;
    host.set_shared_data(&key, serde_json::to_vec(&theirs).unwrap());
    // So this worker's next picks stay on `first` (1 in flight < 5).
    let (s, second) = send(&host);
    assert_eq!(second, first);
    answer(&host, s, 200, 10, 10);
    answer(&host, held, 200, 10, 10);
    let stats: Stats = serde_json::from_slice(&host.shared_data(&key).unwrap()).unwrap();
    assert_eq!(stats.services[&first].ongoing, 0);
    assert_eq!(stats.services[&first].count, 2);
    assert_eq!(stats.services[&first].total_ms.len(), 2);
    assert_eq!(stats.services[&first].ttft_ms.len(), 2);
    assert_eq!(stats.services[other(&first)].ongoing, 5);
}

/// The endpoint modes pass the response on untouched by the response hooks
/// this mode adds.
#[test]
fn the_endpoint_modes_pass_the_response_on() {
    let config = json!({"lb_type": "endpoint", "lb_policy": "global_least_request",
        "lb_config": {"serviceFQDN": "redis.static", "servicePort": 6379}});
    let host = start(config.to_string()).unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), (":method", "GET")], true)
        .unwrap();
    s.send_response_headers(&[(":status", "200")], false)
        .unwrap();
    s.send_response_body("a", false).unwrap();
    s.send_response_body("b", true).unwrap();
    assert_eq!(s.client_response_status(), Some(200));
    assert_eq!(s.client_response_body(), b"ab");
    s.done().unwrap();
}

/// Go's `TestClusterMetricsStreamDoneTreatsMissingStatusAsFailure` (a later
/// upstream version; the version ported here panics instead): a stream
/// that ends without response headers is recorded as a failure, twice the
/// worst mean, and leaves the in-flight count. Read through `shared_stats`,
/// where the numbers are visible.
#[test]
fn a_stream_ended_without_response_counts_as_a_failure() {
    for mode in ["LeastBusy", "LeastTotalLatency", "LeastFirstTokenLatency"] {
        let lb = json!({"mode": mode, "service_list": [A, B], "shared_stats": true});
        let key = parse_cluster_metrics(&lb).unwrap().shared_key();
        let host = started(lb);
        let (mut s, picked) = send(&host);
        let mut stats: Stats = serde_json::from_slice(&host.shared_data(&key).unwrap()).unwrap();
        stats
            .services
            .entry(other(&picked).to_owned())
            .or_default()
            .total_ms
            .push_back(1_000_000.0);
        host.set_shared_data(&key, serde_json::to_vec(&stats).unwrap());
        host.advance_time(Duration::from_millis(10));
        s.done().unwrap();
        let stats: Stats = serde_json::from_slice(&host.shared_data(&key).unwrap()).unwrap();
        let mine = &stats.services[&picked];
        assert_eq!(mine.total_ms.back(), Some(&2_000_000.0), "{mode}");
        assert_eq!(mine.ongoing, 0, "{mode}");
        assert!(mine.ttft_ms.is_empty(), "{mode}");
    }
}

/// Go's rule, at the default `rate_limit` 1: a candidate whose share of the
/// requests so far is at the limit is replaced even when nothing is better.
/// After one finished request, nothing is in flight anywhere (a tie), yet
/// the second request always goes to the other service.
#[test]
fn a_service_that_took_every_request_so_far_is_at_the_limit() {
    for _ in 0..20 {
        let host = started(json!({"mode": "LeastBusy", "service_list": [A, B]}));
        let (s, first) = send(&host);
        answer(&host, s, 200, 1, 1);
        let (s, second) = send(&host);
        assert_eq!(second, other(&first));
        answer(&host, s, 200, 1, 1);
    }
}
}
