//! `endpoint_metrics` (`metrics_based`) in both test hosts (native and the
//! compiled module, `both_modes!`) in Higress mode: upstream hosts carry `health_status` and their Prometheus text in
//! `metrics`; `least` / `most` / `default` pick, ties go at random,
//! `rate_limit` over the last 100 picks (per VM as Go, or per gateway in
//! shared data), Go's fallbacks and the config. Go's unit tests of the
//! scheduler, the metrics reader and the window are translated; those that
//! never start a host run once, outside the macro.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use ai_load_balancer::endpoint_metrics::{
    can_accept_new_lora, least_kv_cache, least_queuing, lora_affinity, low_lora_cost, low_queueing,
    no_queue_and_less_than_kv_cache, pod_metrics, schedule, window_key, LlmRequest, MetricPolicy,
    Pod, RateLimitScope, DEFAULT_FILTER, WINDOW,
};
use ai_load_balancer::{parse_config, AiLoadBalancerConfig, LoadBalancer};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const UPSTREAM: &str = "outbound|8000||vllm.static";

fn config(lb_config: Value) -> Value {
    json!({"lb_type": "endpoint", "lb_policy": "metrics_based", "lb_config": lb_config})
}

/// `# TYPE name gauge` and one sample per (name, value).
fn gauges(values: &[(&str, f64)]) -> String {
    values
        .iter()
        .map(|(n, v)| format!("# TYPE {n} gauge\n{n}{{model_name=\"m\"}} {v}\n"))
        .collect()
}

/// vLLM's default metrics, with a LoRA info series.
fn vllm(waiting: f64, kv: f64, adapters: &str, max_lora: u32) -> String {
    let mut text = gauges(&[
        ("vllm:num_requests_running", 1.0),
        ("vllm:num_requests_waiting", waiting),
        ("vllm:gpu_cache_usage_perc", kv),
    ]);
    text.push_str(&format!(
        "# TYPE vllm:lora_requests_info gauge\nvllm:lora_requests_info{{max_lora=\"{max_lora}\",running_lora_adapters=\"{adapters}\",waiting_lora_adapters=\"\"}} 1.7e9\n"
    ));
    text
}

fn healthy(address: &str, metrics: &str) -> (String, String) {
    (
        address.to_owned(),
        json!({"health_status": "Healthy", "metrics": metrics}).to_string(),
    )
}

const BODY: &str = r#"{"model":"adapter-a","messages":[{"role":"user","content":"hi"}]}"#;

fn waiting_hosts(values: &[(&str, f64)]) -> Vec<(String, String)> {
    values
        .iter()
        .map(|(a, w)| healthy(a, &gauges(&[("vllm:num_requests_waiting", *w)])))
        .collect()
}

fn least_waiting(extra: Value) -> Value {
    let mut c = json!({"metric_policy": "least", "target_metric": "vllm:num_requests_waiting"});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        c[k] = v;
    }
    config(c)
}

// ----- config ---------------------------------------------------------------------------------------

fn metrics(c: &AiLoadBalancerConfig) -> &ai_load_balancer::endpoint_metrics::EndpointMetrics {
    match &c.lb {
        LoadBalancer::EndpointMetrics(lb) => lb,
        other => panic!("{other:?}"),
    }
}

#[test]
fn config_keys_and_defaults_as_go() {
    for policy in ["endpoint_metrics", "metrics_based"] {
        let c = parse_config(&json!({"lb_policy": policy, "lb_config": {}})).unwrap();
        let lb = metrics(&c);
        assert_eq!(lb.metric_policy, MetricPolicy::Default);
        assert_eq!(lb.target_metric, "");
        assert_eq!(lb.rate_limit, 1.0);
        assert_eq!(lb.rate_limit_scope, RateLimitScope::Vm);
    }
    let c = parse_config(&config(
        json!({"metric_policy": "most", "target_metric": "x",
        "rate_limit": "0.25", "rate_limit_scope": "gateway"}),
    ))
    .unwrap();
    let lb = metrics(&c);
    assert_eq!(lb.metric_policy, MetricPolicy::Most);
    assert_eq!((lb.target_metric.as_str(), lb.rate_limit), ("x", 0.25));
    assert_eq!(lb.rate_limit_scope, RateLimitScope::Gateway);
}

// ----- Go's unit tests, translated ------------------------------------------------------------------

fn pod(name: &str, queue: i64, kv: f64, active: &[&str], max_active: i64) -> Pod {
    Pod {
        address: format!("{name}.svc"),
        waiting: queue,
        kv_cache: kv,
        active_models: active.iter().map(|m| (*m).to_owned()).collect(),
        max_active_models: max_active,
        ..Pod::default()
    }
}

/// Go `scheduling/filter_test.go` `TestPredicatesAndMetricFilters`.
#[test]
fn predicates_and_metric_filters() {
    let req = LlmRequest {
        model: "adapter-a".to_owned(),
        critical: false,
    };
    let pods = [
        pod("pod-a", 1, 0.2, &["adapter-a"], 2),
        pod("pod-b", 4, 0.7, &[], 2),
        pod("pod-c", 9, 0.9, &["other", "x"], 2),
    ];
    assert!(low_lora_cost(&req, &pods[0]) && low_lora_cost(&req, &pods[1]));
    assert!(!low_lora_cost(&req, &pods[2]));
    assert!(can_accept_new_lora(&req, &pods[1]) && !can_accept_new_lora(&req, &pods[2]));
    assert!(low_queueing(&req, &pods[0]));
    assert!(no_queue_and_less_than_kv_cache(1, 0.3, &pods[0]));
    assert_eq!(DEFAULT_FILTER.name, "critical request");
    let refs: Vec<&Pod> = pods.iter().collect();
    let names =
        |kept: Vec<&Pod>| -> Vec<String> { kept.iter().map(|p| p.address.clone()).collect() };
    assert_eq!(names(least_queuing(&req, &refs).unwrap()), ["pod-a.svc"]);
    assert_eq!(names(least_kv_cache(&req, &refs).unwrap()), ["pod-a.svc"]);
    let affinity: Vec<&Pod> = refs
        .iter()
        .copied()
        .filter(|p| lora_affinity(&req, p))
        .collect();
    assert_eq!(names(affinity), ["pod-a.svc"]);
}

/// Go `scheduling/scheduler_test.go` `TestGetScheduler_RejectsEmptyMetrics`
/// (through `schedule`: nothing to schedule is an error).
#[test]
fn scheduling_nothing_is_an_error() {
    let req = LlmRequest {
        model: String::new(),
        critical: true,
    };
    for policy in [
        MetricPolicy::Default,
        MetricPolicy::Least,
        MetricPolicy::Most,
    ] {
        assert!(schedule(policy, &req, &[]).is_err(), "{policy:?}");
    }
}

/// Go `backend/vllm/metrics_test.go` `TestPromToPodMetrics_UserSelectedMetric`.
#[test]
fn the_user_selected_metric_is_read() {
    let text = "# TYPE custom_metric gauge\ncustom_metric 42 1\n";
    let p = pod_metrics("pod-a", text, "custom_metric").unwrap();
    assert_eq!(p.metric_value, 42.0);
    // Go reads it with GetGauge(): a metric of another type reads 0.
    let text = "# TYPE custom_metric counter\ncustom_metric 42\n";
    assert_eq!(
        pod_metrics("pod-a", text, "custom_metric")
            .unwrap()
            .metric_value,
        0.0
    );
}

/// Go `backend/vllm/metrics_test.go` `TestPromToPodMetrics_DefaultMetricsAndLora`.
#[test]
fn default_metrics_and_the_newest_lora_series_are_read() {
    let text = format!(
        "{}# TYPE vllm:lora_requests_info gauge\n\
         vllm:lora_requests_info{{running_lora_adapters=\"old\",max_lora=\"1\"}} 1\n\
         vllm:lora_requests_info{{running_lora_adapters=\"adapter-a,adapter-b\",max_lora=\"4\"}} 2\n",
        gauges(&[
            ("vllm:num_requests_running", 3.0),
            ("vllm:num_requests_waiting", 5.0),
            ("vllm:gpu_cache_usage_perc", 0.75),
        ])
    );
    let p = pod_metrics("pod-a", &text, "").unwrap();
    assert_eq!((p.running, p.waiting, p.kv_cache), (3, 5, 0.75));
    assert_eq!(p.max_active_models, 4);
    assert_eq!(
        p.active_models,
        BTreeSet::from(["adapter-a".to_owned(), "adapter-b".to_owned()])
    );
}

/// Go `backend/vllm/metrics_test.go` `TestGetLatestMetricErrors`.
#[test]
fn missing_metrics_are_errors() {
    assert!(pod_metrics("p", "", "missing").is_err());
    // A family with no sample (`# TYPE` only) is as missing.
    assert!(pod_metrics("p", "# TYPE empty gauge\n", "empty").is_err());
    let no_lora = gauges(&[
        ("vllm:num_requests_running", 0.0),
        ("vllm:num_requests_waiting", 0.0),
        ("vllm:gpu_cache_usage_perc", 0.0),
    ]);
    let e = pod_metrics("p", &no_lora, "").unwrap_err();
    assert!(e.contains("vllm:lora_requests_info"), "{e}");
    // Of several series, the one with the latest timestamp (the last of
    // equal ones) is read.
    let text = "# TYPE m gauge\nm{a=\"1\"} 1 20\nm{a=\"2\"} 2 10\nm{a=\"3\"} 3 20\n";
    assert_eq!(pod_metrics("p", text, "m").unwrap().metric_value, 3.0);
}

higress_test_host::both_modes! {
plugin: ai_load_balancer::Plugin,
package: "ai-load-balancer",

fn started(hosts: Vec<(String, String)>, config: &Value) -> TestHost {
    start_with(config.to_string(), |b| b.upstream_hosts(hosts)).unwrap()
}

/// One request through the plugin: headers held, the body picks at once.
fn pick(host: &TestHost, body: &str) -> Option<String> {
    let mut s = host.http_stream();
    s.set_cluster_name(UPSTREAM);
    let headers = [
        (":path", "/v1/chat/completions"),
        (":method", "POST"),
        ("content-type", "application/json"),
    ];
    assert_eq!(
        s.send_request_headers(&headers, false).unwrap(),
        Action::Pause,
        "headers held while the body is read"
    );
    assert_eq!(s.send_request_body(body, true).unwrap(), Action::Continue);
    assert!(s.upstream_request_complete());
    let chosen = s.upstream_override_host();
    s.send_response_headers(&[(":status", "200")], true)
        .unwrap();
    s.done().unwrap();
    chosen
}


// ----- least / most ------------------------------------------------------------------------------

#[test]
fn least_and_most_pick_by_the_target_metric() {
    let hosts = waiting_hosts(&[("a:80", 1.0), ("b:80", 5.0), ("c:80", 9.0)]);
    let host = started(hosts.clone(), &least_waiting(json!({})));
    for _ in 0..5 {
        assert_eq!(pick(&host, BODY).as_deref(), Some("a:80"));
    }
    let most =
        config(json!({"metric_policy": "most", "target_metric": "vllm:num_requests_waiting"}));
    let host = started(hosts, &most);
    for _ in 0..5 {
        assert_eq!(pick(&host, BODY).as_deref(), Some("c:80"));
    }
    host.assert_idle();
}

/// Go keeps every endpoint in the lowest `1/n` of the range, then picks
/// one of them at random.
#[test]
fn endpoints_close_to_the_least_tie_and_are_picked_at_random() {
    // Range 0..9 over 3 endpoints: [0, 3] is kept.
    let hosts = waiting_hosts(&[("a:80", 0.0), ("b:80", 3.0), ("c:80", 9.0)]);
    let host = started(hosts, &least_waiting(json!({})));
    let seen: BTreeSet<String> = (0..60).filter_map(|_| pick(&host, BODY)).collect();
    assert_eq!(seen, BTreeSet::from(["a:80".to_owned(), "b:80".to_owned()]));
}

#[test]
fn unhealthy_endpoints_are_never_picked() {
    let mut hosts = waiting_hosts(&[("a:80", 7.0), ("b:80", 8.0)]);
    hosts.push((
        "sick:80".to_owned(),
        json!({"health_status": "Unhealthy",
               "metrics": gauges(&[("vllm:num_requests_waiting", 0.0)])})
        .to_string(),
    ));
    let host = started(hosts, &least_waiting(json!({})));
    for _ in 0..10 {
        assert_eq!(pick(&host, BODY).as_deref(), Some("a:80"));
    }
}

// ----- default ------------------------------------------------------------------------------------

#[test]
fn default_prefers_the_endpoint_with_the_lora_adapter() {
    let hosts = vec![
        healthy("a:80", &vllm(0.0, 0.1, "", 4)),
        healthy("b:80", &vllm(0.0, 0.5, "adapter-a", 4)),
    ];
    let host = started(hosts, &config(json!({"metric_policy": "default"})));
    for _ in 0..5 {
        assert_eq!(pick(&host, BODY).as_deref(), Some("b:80"));
    }
    // Another model: no affinity, both can load it, least KV cache wins.
    let other = r#"{"model":"adapter-z"}"#;
    for _ in 0..5 {
        assert_eq!(pick(&host, other).as_deref(), Some("a:80"));
    }
}

#[test]
fn default_without_room_for_the_adapter_uses_least_queue_then_kv_cache() {
    let hosts = vec![
        healthy("a:80", &vllm(2.0, 0.9, "x,y", 2)),
        healthy("b:80", &vllm(2.0, 0.2, "x,y", 2)),
        healthy("c:80", &vllm(40.0, 0.0, "", 4)),
    ];
    // Nobody has adapter-a; only c has room, so c is the candidate.
    let host = started(hosts.clone(), &config(json!({})));
    assert_eq!(pick(&host, BODY).as_deref(), Some("c:80"));
    // Everyone queues 50 or more: least queue first, then room for the
    // adapter, then least KV cache.
    let hosts = vec![
        healthy("a:80", &vllm(60.0, 0.9, "", 4)),
        healthy("b:80", &vllm(61.0, 0.2, "", 4)),
        healthy("c:80", &vllm(200.0, 0.0, "", 4)),
    ];
    let host = started(hosts, &config(json!({})));
    for _ in 0..5 {
        assert_eq!(pick(&host, BODY).as_deref(), Some("b:80"));
    }
}

// ----- rate_limit ---------------------------------------------------------------------------------

#[test]
fn rate_limit_moves_picks_off_an_endpoint_over_its_share() {
    let hosts = waiting_hosts(&[("a:80", 0.0), ("b:80", 9.0)]);
    let host = started(hosts, &least_waiting(json!({"rate_limit": 0.5})));
    // a while its share of the last picks is at most a half, else b.
    let picks: Vec<String> = (0..6).map(|_| pick(&host, BODY).unwrap()).collect();
    assert_eq!(picks, ["a:80", "b:80", "a:80", "b:80", "a:80", "b:80"]);
}

#[test]
fn rate_limit_looks_at_the_last_100_picks_only() {
    let hosts = waiting_hosts(&[("a:80", 0.0), ("b:80", 9.0)]);
    let host = started(hosts, &least_waiting(json!({"rate_limit": 0.6})));
    let picks: Vec<String> = (0..400).map(|_| pick(&host, BODY).unwrap()).collect();
    // Every pick of a came with a's share of the window before it at most
    // 0.6, counted over at most the 100 picks before it.
    for (i, p) in picks.iter().enumerate() {
        let window = &picks[i.saturating_sub(WINDOW)..i];
        let share = if window.is_empty() {
            0.0
        } else {
            window.iter().filter(|h| *h == "a:80").count() as f64 / window.len() as f64
        };
        assert_eq!(p == "a:80", share <= 0.6, "pick {i}: {p} at share {share}");
    }
    let a = picks[300..].iter().filter(|h| *h == "a:80").count();
    assert!(
        (59..=61).contains(&a),
        "a holds 60% of the window in the steady state: {a}"
    );
}

#[test]
fn a_single_endpoint_takes_every_pick_whatever_the_rate_limit() {
    let host = started(
        waiting_hosts(&[("a:80", 0.0)]),
        &least_waiting(json!({"rate_limit": 0})),
    );
    for _ in 0..3 {
        assert_eq!(pick(&host, BODY).as_deref(), Some("a:80"));
    }
}

/// Go's window is per VM; `rate_limit_scope: gateway` keeps it in shared
/// data, per cluster, so picks other workers made count too.
#[test]
fn rate_limit_scope_gateway_shares_the_window() {
    let hosts = waiting_hosts(&[("a:80", 0.0), ("b:80", 9.0)]);
    let others = vec!["a:80"; 100].join("\n");
    // Default (vm): another worker's picks do not count.
    let host = started(hosts.clone(), &least_waiting(json!({"rate_limit": 0.5})));
    host.set_shared_data(&window_key(UPSTREAM), &others);
    assert_eq!(pick(&host, BODY).as_deref(), Some("a:80"));
    assert_eq!(
        host.shared_data(&window_key(UPSTREAM)).unwrap(),
        others.as_bytes(),
        "not touched"
    );
    // gateway: they do, and this pick joins them.
    let host = started(
        hosts,
        &least_waiting(json!({"rate_limit": 0.5, "rate_limit_scope": "gateway"})),
    );
    host.set_shared_data(&window_key(UPSTREAM), &others);
    assert_eq!(pick(&host, BODY).as_deref(), Some("b:80"));
    let window = String::from_utf8(host.shared_data(&window_key(UPSTREAM)).unwrap()).unwrap();
    let window: Vec<&str> = window.lines().collect();
    assert_eq!(window.len(), WINDOW, "still the last 100");
    assert_eq!(window.last(), Some(&"b:80"));
    assert_eq!(window.iter().filter(|h| **h == "a:80").count(), 99);
}

// ----- Go's fallbacks: the cluster's balancer picks -------------------------------------------------

#[test]
fn without_model_metrics_or_healthy_endpoints_the_cluster_balancer_picks() {
    let good = waiting_hosts(&[("a:80", 0.0)]);
    let host = started(good.clone(), &least_waiting(json!({})));
    assert_eq!(pick(&host, r#"{"messages":[]}"#), None, "no model");
    assert_eq!(pick(&host, "not json"), None);
    // No body: nothing held, nothing picked.
    let mut s = host.http_stream();
    assert_eq!(
        s.send_request_headers(&[(":path", "/v1/models"), (":method", "GET")], true)
            .unwrap(),
        Action::Continue
    );
    drop(s);
    // One healthy endpoint without the metric, or without metrics, or with
    // text that does not parse: Go gives up on the whole pick.
    let cases = [
        healthy("b:80", &gauges(&[("other", 1.0)])),
        (
            "b:80".to_owned(),
            r#"{"health_status":"Healthy"}"#.to_owned(),
        ),
        healthy("b:80", "vllm:num_requests_waiting{ 1"),
    ];
    for bad in cases {
        let mut hosts = good.clone();
        hosts.push(bad);
        let host = started(hosts, &least_waiting(json!({})));
        assert_eq!(pick(&host, BODY), None);
    }
    // No healthy endpoint.
    let host = started(
        vec![(
            "a:80".to_owned(),
            r#"{"health_status":"Unhealthy"}"#.to_owned(),
        )],
        &least_waiting(json!({})),
    );
    assert_eq!(pick(&host, BODY), None);
    // default needs all four vLLM metrics (here: no LoRA info).
    let host = started(
        vec![healthy(
            "a:80",
            &gauges(&[
                ("vllm:num_requests_running", 0.0),
                ("vllm:num_requests_waiting", 0.0),
                ("vllm:gpu_cache_usage_perc", 0.0),
            ]),
        )],
        &config(json!({})),
    );
    assert_eq!(pick(&host, BODY), None);
}

/// Go README's three `metrics_based` examples, unchanged (as JSON).
#[test]
fn the_go_readme_configs_start() {
    for lb_config in [
        json!({"metric_policy": "default", "rate_limit": 0.6}),
        json!({"metric_policy": "least", "target_metric": "vllm:num_requests_waiting", "rate_limit": 0.6}),
        json!({"metric_policy": "least", "target_metric": "vllm:num_requests_running", "rate_limit": 0.6}),
    ] {
        let host = start(config(lb_config).to_string()).unwrap();
        drop(host);
    }
}

#[test]
fn a_bad_config_names_the_field() {
    let refused = |lb_config: Value, path: &str, message: &str| {
        let c = config(lb_config);
        let e = parse_config(&c).unwrap_err();
        assert_eq!(e.path(), Some(path), "{e}");
        assert!(e.to_string().contains(message), "{e}");
        let failure = start(c.to_string()).unwrap_err();
        assert_eq!(failure.stage, StartStage::Configure);
        assert!(!failure.logs_containing(path).is_empty(), "{failure}");
    };
    refused(
        json!({"metric_policy": "lest"}),
        "lb_config.metric_policy",
        "lest",
    );
    refused(
        json!({"metric_policy": "least"}),
        "lb_config.target_metric",
        "required",
    );
    refused(
        json!({"metric_policy": "most", "target_metric": 3}),
        "lb_config.target_metric",
        "3",
    );
    refused(json!({"rate_limit": 1.5}), "lb_config.rate_limit", "0 to 1");
    refused(
        json!({"rate_limit": "lots"}),
        "lb_config.rate_limit",
        "lots",
    );
    refused(
        json!({"rate_limit_scope": "world"}),
        "lb_config.rate_limit_scope",
        "world",
    );
}

/// Go `utils/queue_test.go` `TestFixedQueue_OverwriteAndOrder`: the window
/// keeps the newest 100 picks in order (checked through shared data).
#[test]
fn the_window_keeps_the_newest_picks_in_order() {
    let hosts = waiting_hosts(&[("a:80", 0.0)]);
    let host = started(
        hosts,
        &least_waiting(json!({"rate_limit_scope": "gateway"})),
    );
    let old: Vec<String> = (0..WINDOW).map(|i| format!("old-{i}:80")).collect();
    host.set_shared_data(&window_key(UPSTREAM), old.join("\n"));
    assert_eq!(pick(&host, BODY).as_deref(), Some("a:80"));
    let window = String::from_utf8(host.shared_data(&window_key(UPSTREAM)).unwrap()).unwrap();
    let window: Vec<&str> = window.lines().collect();
    assert_eq!(window.len(), WINDOW);
    assert_eq!(window[0], "old-1:80", "the oldest was dropped");
    assert_eq!(window[WINDOW - 1], "a:80", "the newest is last");
    let counts: BTreeMap<&str, usize> = window.iter().fold(BTreeMap::new(), |mut m, h| {
        *m.entry(*h).or_default() += 1;
        m
    });
    assert!(counts.values().all(|&c| c == 1));
}
}
