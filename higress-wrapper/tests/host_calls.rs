//! The typed host calls through the test host: metrics (defined once,
//! labels in the name), shared data (typed, CAS, the retry helper, distinct
//! errors), shared queues (register, resolve, enqueue from a request,
//! dequeue in `on_queue_ready`), stream reset, the matched config, and
//! Higress's upstream host selection and injected data.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use higress_test_host::{Action, CalloutKind, LogLevel, MetricValue, TestHost};
use higress_wrapper::foreign;
use higress_wrapper::grpc::{GrpcCall, GrpcError};
use higress_wrapper::metrics::{self, Counter, Gauge, Histogram};
use higress_wrapper::prelude::*;
use higress_wrapper::shared_data::{self, SharedDataError, Versioned};
use higress_wrapper::shared_queue::SharedQueue;
use higress_wrapper::upstream::{self, HostHealth, UpstreamHost};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

#[derive(Debug, serde::Deserialize)]
struct Config {
    tag: String,
}

/// One plugin for every case, chosen by request header `x-op`.
struct Calls;

fn header(ctx: &HttpContext, name: &str) -> Option<String> {
    ctx.request_header(name)
        .map(|v| v.to_str_lossy().into_owned())
}

impl Calls {
    fn request_headers(ctx: &mut HttpContext, config: &Config) -> HeaderAction {
        match header(ctx, "x-op").as_deref() {
            Some("metrics") => {
                let model = header(ctx, "x-model").unwrap_or_default();
                let route = ctx.route_name().unwrap_or_default();
                let name =
                    metrics::metric_name(&[("route", &route), ("model", &model)], "input_token");
                metrics::increment_counter(&name, 10).unwrap();
                metrics::add_gauge("inflight", 1).unwrap();
                metrics::record_histogram("latency", 7).unwrap();
                HeaderAction::Continue
            }
            Some("count") => {
                #[derive(serde::Serialize, serde::Deserialize)]
                struct Seen {
                    n: u64,
                }
                let seen = shared_data::update("seen", 4, |s: Option<Seen>| Seen {
                    n: s.map_or(0, |s| s.n) + 1,
                })
                .unwrap();
                ctx.set_request_header("x-seen", seen.n.to_string());
                HeaderAction::Continue
            }
            Some("enqueue") => {
                let queue = SharedQueue::resolve("", "events").unwrap();
                ctx.enqueue(queue, ctx.path().as_bytes()).unwrap();
                HeaderAction::Continue
            }
            Some("reset") => {
                ctx.reset_stream();
                // Whatever the hook answers, the SDK resumes nothing.
                HeaderAction::Continue
            }
            Some("match") => {
                let tag = ctx.match_config::<Config>().map(|c| c.tag.clone());
                let wrong_type = ctx.match_config::<String>().is_some();
                assert_eq!(tag.as_deref(), Some(config.tag.as_str()));
                ctx.set_request_header("x-matched", tag.unwrap_or_default());
                ctx.set_request_header("x-wrong-type", wrong_type.to_string());
                HeaderAction::Continue
            }
            Some("grpc") => {
                let call = GrpcCall::new(
                    "authz",
                    "authz.v1.Authz",
                    "Check",
                    b"\x0a\x05alice".to_vec(),
                )
                .metadata("x-tenant", "t1")
                .timeout(Duration::from_millis(300))
                .send();
                ctx.then(call, |ctx, reply: Result<Vec<u8>, GrpcError>| {
                    match reply {
                        Ok(response) => ctx.set_request_header("x-authz", response),
                        Err(e) => ctx.send_local_response(503, &[], e.to_string()),
                    }
                    HeaderAction::Continue
                })
            }
            // Hold the headers; pick the host once the body is there (Go's
            // ai-load-balancer).
            Some("pick") => HeaderAction::StopIteration,
            Some("hosts") => {
                let hosts: Vec<serde_json::Value> = upstream::upstream_hosts()
                    .unwrap()
                    .into_iter()
                    .map(|h| {
                        serde_json::json!({
                            "address": h.address,
                            "health": format!("{:?}", h.health()),
                            "metrics": h.metrics,
                        })
                    })
                    .collect();
                ctx.set_request_header("x-hosts", serde_json::Value::from(hosts).to_string());
                HeaderAction::Continue
            }
            _ => HeaderAction::Continue,
        }
    }

    fn request_body(ctx: &mut HttpContext, _: &Config, _body: &[u8]) -> DataAction {
        let hosts = upstream::upstream_hosts().unwrap();
        let healthy: Vec<&UpstreamHost> = hosts.iter().filter(|h| h.is_healthy()).collect();
        // A healthy host whose health check reports metrics, else the
        // first healthy one.
        let chosen = healthy
            .iter()
            .find(|h| h.metrics.is_some())
            .or(healthy.first())
            .map(|h| h.address.clone());
        if let Some(address) = chosen {
            upstream::set_upstream_override_host(&address).unwrap();
            ctx.set_request_header("x-picked", address);
        }
        DataAction::Continue
    }

    fn response_headers(_: &mut HttpContext, _: &Config) -> HeaderAction {
        HeaderAction::Continue
    }

    fn response_body(_: &mut HttpContext, _: &Config, body: &[u8]) -> DataAction {
        if body == b"inject" {
            upstream::inject_encoded_data(b"data: injected\n\n", true).unwrap();
        }
        DataAction::Continue
    }
}

thread_local! {
    static QUEUE_MESSAGES: Cell<u32> = const { Cell::new(0) };
}

impl HttpPlugin for Calls {
    const NAME: &'static str = "calls";
    type Config = Config;
    type State = ();
    const HOOKS: Hooks<Self> = Hooks {
        on_request_headers: Some(Self::request_headers),
        on_request_body: Some(Self::request_body),
        on_response_headers: Some(Self::response_headers),
        on_response_body: Some(Self::response_body),
        ..Hooks::NONE
    };

    fn parse_config(json: &serde_json::Value) -> Result<Config, ConfigError> {
        higress_wrapper::config::from_json(json)
    }

    fn on_plugin_start(ctx: &mut PluginContext<'_, Config>) -> Result<(), StartError> {
        let queue = ctx.register_queue("events")?;
        // Registering again finds the same queue.
        assert_eq!(ctx.register_queue("events")?, queue);
        assert_eq!(ctx.resolve_queue("", "events")?, queue);
        metrics::increment_counter("starts", 1)?;
        Ok(())
    }

    fn on_queue_ready(ctx: &mut PluginContext<'_, Config>, queue_id: u32) {
        while let Some(message) = ctx.dequeue(queue_id).unwrap() {
            QUEUE_MESSAGES.with(|c| c.set(c.get() + 1));
            log::info!("queued {}", String::from_utf8_lossy(&message));
        }
    }
}

const CONFIG: &str =
    r#"{"tag": "global", "_rules_": [{"_match_route_": ["r1"], "tag": "rule-r1"}]}"#;

fn start() -> TestHost {
    TestHost::start::<Calls>(CONFIG).unwrap()
}

// ----- metrics ----------------------------------------------------------------------

#[test]
fn counters_gauges_histograms_with_labels_in_the_name() {
    let host = start();
    assert_eq!(host.metric("starts"), Some(MetricValue::Counter(1)));
    for (route, model) in [("r1", "qwen"), ("r1", "qwen"), ("r2", "gpt")] {
        let mut s = host.http_stream();
        s.set_route_name(route);
        s.send_request_headers(
            &[(":path", "/"), ("x-op", "metrics"), ("x-model", model)],
            true,
        )
        .unwrap();
        s.done().unwrap();
    }
    assert_eq!(
        host.metric("route.r1.model.qwen.input_token"),
        Some(MetricValue::Counter(20))
    );
    assert_eq!(
        host.metric("route.r2.model.gpt.input_token"),
        Some(MetricValue::Counter(10))
    );
    assert_eq!(host.metric("inflight"), Some(MetricValue::Gauge(3)));
    assert_eq!(
        host.metric("latency"),
        Some(MetricValue::Histogram(vec![7, 7, 7]))
    );
    host.assert_idle();
}

#[test]
fn metric_handles_read_back_one_id_per_name() {
    let host = start();
    host.block_on(async {
        let a = Counter::define("c").unwrap();
        let b = Counter::define("c").unwrap();
        assert_eq!(a, b, "one id per name");
        a.increment(2).unwrap();
        b.increment(3).unwrap();
        assert_eq!(a.value().unwrap(), 5);

        let g = Gauge::define("g").unwrap();
        g.set(10).unwrap();
        g.add(-4).unwrap();
        assert_eq!(g.value().unwrap(), 6);
        // A gauge and a counter may share a name: they are different metrics.
        let g_as_counter = Counter::define("g").unwrap();
        assert_eq!(g_as_counter.value().unwrap(), 0);

        let h = Histogram::define("h").unwrap();
        h.record(1).unwrap();
        h.record(2).unwrap();
    });
    assert_eq!(host.metric("c"), Some(MetricValue::Counter(5)));
    assert_eq!(host.metric("h"), Some(MetricValue::Histogram(vec![1, 2])));
}

// ----- shared data -------------------------------------------------------------------

#[test]
fn shared_data_counts_across_requests() {
    let host = start();
    for expected in ["1", "2", "3"] {
        let mut s = host.http_stream();
        s.send_request_headers(&[(":path", "/"), ("x-op", "count")], true)
            .unwrap();
        assert_eq!(s.upstream_request_header("x-seen").unwrap(), expected);
        s.done().unwrap();
    }
    assert_eq!(host.shared_data("seen").unwrap(), br#"{"n":3}"#);
    // Another worker writes; the next request reads its value.
    host.set_shared_data("seen", r#"{"n":41}"#);
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), ("x-op", "count")], true)
        .unwrap();
    assert_eq!(s.upstream_request_header("x-seen").unwrap(), "42");
    s.done().unwrap();
    host.assert_idle();
}

#[test]
fn not_found_cas_mismatch_and_bad_values_are_distinct_errors() {
    let host = start();
    host.block_on(async {
        assert_eq!(
            shared_data::get_bytes("absent"),
            Err(SharedDataError::NotFound)
        );
        shared_data::set("k", &vec![1u32, 2], None).unwrap();
        let Versioned { value, cas } = shared_data::get::<Vec<u32>>("k").unwrap();
        assert_eq!(value, vec![1, 2]);
        // A write with the CAS just read succeeds and changes the CAS.
        shared_data::set("k", &vec![3u32], Some(cas)).unwrap();
        // The old CAS is stale now.
        assert_eq!(
            shared_data::set("k", &vec![4u32], Some(cas)),
            Err(SharedDataError::CasMismatch)
        );
        assert_eq!(shared_data::get::<Vec<u32>>("k").unwrap().value, vec![3]);
        // Not the requested type.
        assert!(matches!(
            shared_data::get::<String>("k"),
            Err(SharedDataError::Value(_))
        ));
    });
}

#[test]
fn update_retries_when_another_worker_wins_the_race() {
    let host = Rc::new(start());
    host.set_shared_data("n", "10");
    let attempts = Rc::new(Cell::new(0));
    let (h, a) = (Rc::clone(&host), Rc::clone(&attempts));
    let result = host.block_on(async move {
        shared_data::update("n", 3, |n: Option<u64>| {
            a.set(a.get() + 1);
            if a.get() == 1 {
                // Between this read and the write, another worker writes.
                h.set_shared_data("n", "20");
            }
            n.unwrap_or(0) + 1
        })
    });
    assert_eq!(result, Ok(21), "the retry read the other worker's value");
    assert_eq!(attempts.get(), 2);
    assert_eq!(host.shared_data("n").unwrap(), b"21");

    // Every attempt loses: CasMismatch after exactly `attempts` tries.
    let tries = Rc::new(Cell::new(0));
    let (h, t) = (Rc::clone(&host), Rc::clone(&tries));
    let result = host.block_on(async move {
        shared_data::update_bytes("n", 2, |_| {
            t.set(t.get() + 1);
            h.set_shared_data("n", format!("{}", 100 + t.get()));
            b"mine".to_vec()
        })
    });
    assert_eq!(result, Err(SharedDataError::CasMismatch));
    assert_eq!(tries.get(), 2);
    assert_eq!(host.shared_data("n").unwrap(), b"102");
}

// ----- shared queues ------------------------------------------------------------------

#[test]
fn a_request_enqueues_and_the_plugin_dequeues_in_on_queue_ready() {
    QUEUE_MESSAGES.with(|c| c.set(0));
    let host = start();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/first"), ("x-op", "enqueue")], true)
        .unwrap();
    s.done().unwrap();
    assert_eq!(host.logs_containing("queued /first").len(), 1);
    // From outside (another VM), too.
    assert!(host.enqueue_shared_queue("events", "external"));
    assert_eq!(host.logs_containing("queued external").len(), 1);
    assert_eq!(QUEUE_MESSAGES.with(Cell::get), 2);
    host.block_on(async {
        let queue = SharedQueue::resolve("", "events").unwrap();
        assert_eq!(queue.dequeue(), Ok(None), "empty after on_queue_ready");
        assert_eq!(
            SharedQueue::resolve("", "nope"),
            Err(HostError::NotFound),
            "unknown queue"
        );
    });
    host.assert_idle();
}

// ----- stream control, matched config ---------------------------------------------------

#[test]
fn reset_stream_ends_the_request_without_resuming_it() {
    let host = start();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), ("x-op", "reset")], false)
        .unwrap();
    assert!(s.is_reset());
    assert!(
        s.upstream_request_headers().is_none(),
        "nothing went upstream"
    );
    assert_eq!(s.request_resume_count(), 0);
    s.done().unwrap();
    host.assert_idle();
}

#[test]
fn match_config_is_the_config_the_hooks_get() {
    let host = start();
    for (route, tag) in [("r1", "rule-r1"), ("other", "global")] {
        let mut s = host.http_stream();
        s.set_route_name(route);
        s.send_request_headers(&[(":path", "/"), ("x-op", "match")], true)
            .unwrap();
        assert_eq!(s.upstream_request_header("x-matched").unwrap(), tag);
        assert_eq!(s.upstream_request_header("x-wrong-type").unwrap(), "false");
        s.done().unwrap();
    }
}

// ----- Higress: upstream hosts, override, injection ----------------------------------------

/// What Higress's Envoy answers for one host whose health check stored
/// vLLM metrics, byte for byte (`Context::getUpstreamHosts`: a map printed
/// by nlohmann's `dump(0)`).
const HIGRESS_HOST_INFO: &str = "{\n\"health_status\": \"Healthy\",\n\"metrics\": \"# TYPE vllm:num_requests_waiting gauge\\nvllm:num_requests_waiting{model_name=\\\"qwen\\\"} 2\\n\"\n}";
const VLLM_METRICS: &str =
    "# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{model_name=\"qwen\"} 2\n";

fn higress_host() -> TestHost {
    TestHost::builder()
        .higress()
        .upstream_host("10.0.0.1:80", "Degraded", None)
        .upstream_host("10.0.0.2:80", "Unhealthy", None)
        .upstream_host("10.0.0.3:80", "Healthy", Some(VLLM_METRICS))
        .upstream_host("10.0.0.4:80", "Healthy", None)
        .start::<Calls>(CONFIG)
        .unwrap()
}

#[test]
fn the_body_hook_picks_a_healthy_upstream_host() {
    let host = higress_host();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), ("x-op", "pick")], false)
        .unwrap();
    assert!(s.upstream_request_headers().is_none(), "headers held");
    s.send_request_body(b"{}", true).unwrap();
    // The healthy host with metrics; 10.0.0.1 is degraded, 10.0.0.2 unhealthy.
    assert_eq!(s.upstream_override_host().as_deref(), Some("10.0.0.3:80"));
    assert_eq!(
        s.upstream_request_header("x-picked").unwrap(),
        "10.0.0.3:80"
    );
    s.done().unwrap();
    host.assert_idle();
}

#[test]
fn upstream_hosts_parse_higress_metadata_verbatim() {
    let parsed = UpstreamHost::from_pair("10.0.0.3:80", HIGRESS_HOST_INFO.as_bytes());
    assert_eq!(parsed.health(), HostHealth::Healthy);
    assert!(parsed.is_healthy());
    assert_eq!(parsed.metrics.as_deref(), Some(VLLM_METRICS));
    assert_eq!(parsed.error, None);
    let bare = UpstreamHost::from_pair("[::1]:8080", b"{\n\"health_status\": \"Degraded\"\n}");
    assert_eq!(bare.health(), HostHealth::Degraded);
    assert!(!bare.is_healthy());
    assert_eq!(bare.metrics, None);
    assert_eq!(bare.address, "[::1]:8080");
    // Higress's answer when it cannot print the host's information.
    let failed = UpstreamHost::from_pair("a:1", br#"{"error": "Failed to get host info"}"#);
    assert_eq!(failed.health(), HostHealth::Unknown);
    assert_eq!(failed.error.as_deref(), Some("Failed to get host info"));
    let junk = UpstreamHost::from_pair("a:1", b"not json");
    assert!(!junk.is_healthy());
    assert_eq!(junk.metadata, serde_json::Value::Null);
}

#[test]
fn upstream_hosts_come_in_order_with_their_health_and_metrics() {
    let host = higress_host();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), ("x-op", "hosts")], true)
        .unwrap();
    let seen: serde_json::Value =
        serde_json::from_slice(s.upstream_request_header("x-hosts").unwrap().as_bytes()).unwrap();
    // Every host, in order, parsed from the metadata Higress sends.
    assert_eq!(seen.as_array().unwrap().len(), 4);
    assert_eq!(seen[0]["address"], "10.0.0.1:80");
    assert_eq!(seen[0]["health"], "Degraded");
    assert_eq!(seen[0]["metrics"], serde_json::Value::Null);
    assert_eq!(seen[1]["health"], "Unhealthy");
    assert_eq!(seen[2]["health"], "Healthy");
    assert_eq!(seen[2]["metrics"], VLLM_METRICS);
    s.done().unwrap();
    // Outside a request (the root context) Higress answers an empty list.
    let hosts = host.block_on(async { upstream::upstream_hosts() });
    assert_eq!(hosts.unwrap(), vec![]);
}

#[test]
fn response_data_is_injected_into_the_filter_chain() {
    let host = higress_host();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/")], true).unwrap();
    s.send_response_headers(&[(":status", "200")], false)
        .unwrap();
    s.send_response_body(b"inject", true).unwrap();
    assert_eq!(
        s.injected_encoded_data(),
        vec![(b"data: injected\n\n".to_vec(), true)]
    );
    s.done().unwrap();
}

#[test]
fn higress_only_calls_fail_on_the_stock_envoy_model() {
    let host = TestHost::builder()
        .stock_envoy()
        .upstream_hosts([("10.0.0.1:80", "{}")])
        .start::<Calls>(CONFIG)
        .unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/")], true).unwrap();
    s.done().unwrap();
    let result = host.block_on(async { upstream::set_upstream_override_host("10.0.0.1:80") });
    assert!(result.is_err());
}

// ----- foreign functions ------------------------------------------------------------------

#[test]
fn known_foreign_functions_are_typed() {
    let host = TestHost::builder()
        .higress()
        .log_level(LogLevel::Warn)
        .foreign_function("inject_encoded_data_to_filter_chain_on_header", |_| None)
        .start::<Calls>(CONFIG)
        .unwrap();
    host.block_on(async {
        assert_eq!(foreign::host_log_level(), Ok(3));
        foreign::clear_route_cache().unwrap();
        foreign::inject_encoded_data_on_header(b"{}", true).unwrap();
    });
    let calls = host.foreign_function_calls();
    let names: Vec<&str> = calls.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "get_log_level",
            "clear_route_cache",
            "inject_encoded_data_to_filter_chain_on_header"
        ]
    );
    // The protobuf arguments: body = "{}", endstream = true.
    assert_eq!(calls[2].1, b"\x0a\x02{}\x10\x01");

    // A host without `get_log_level` (stock Envoy): NotFound, not a panic.
    let envoy = TestHost::builder()
        .stock_envoy()
        .start::<Calls>(CONFIG)
        .unwrap();
    envoy.block_on(async {
        assert_eq!(foreign::host_log_level(), Err(HostError::NotFound));
    });
}

// ----- gRPC callouts --------------------------------------------------------------------

fn grpc_request(host: &TestHost) -> (higress_test_host::HttpStream<'_>, u32) {
    let mut s = host.http_stream();
    let action = s
        .send_request_headers(&[(":path", "/"), ("x-op", "grpc")], true)
        .unwrap();
    assert_eq!(action, Action::Pause, "paused while the call is out");
    let callouts = s.callouts();
    assert_eq!(callouts.len(), 1);
    let token = callouts[0].token;
    (s, token)
}

#[test]
fn a_grpc_reply_resumes_the_request_once() {
    let host = start();
    let (mut s, token) = grpc_request(&host);
    match &s.callouts()[0].kind {
        CalloutKind::Grpc {
            upstream,
            service,
            method,
            initial_metadata,
            message,
            timeout,
        } => {
            assert_eq!(upstream, "authz");
            assert_eq!(service, "authz.v1.Authz");
            assert_eq!(method, "Check");
            assert_eq!(initial_metadata.len(), 1);
            assert_eq!(initial_metadata[0].0, "x-tenant");
            assert_eq!(message, b"\x0a\x05alice");
            assert_eq!(*timeout, Duration::from_millis(300));
        }
        other => panic!("not a gRPC call: {other:?}"),
    }
    assert_eq!(token & 3, 1, "gRPC call tokens are 1 mod 4");
    host.respond_grpc(token, b"allow").unwrap();
    assert!(!s.is_request_paused());
    assert_eq!(s.request_resume_count(), 1);
    assert_eq!(s.upstream_request_header("x-authz").unwrap(), "allow");
    s.done().unwrap();
    host.assert_idle();
}

#[test]
fn a_grpc_failure_carries_the_status_and_message() {
    let host = start();
    let (mut s, token) = grpc_request(&host);
    host.fail_grpc(token, 14, "no healthy upstream").unwrap();
    let reply = s.local_response().unwrap();
    assert_eq!(reply.status, 503);
    assert_eq!(reply.body, b"grpc status 14: no healthy upstream");
    assert!(s.upstream_request_headers().is_none());
    s.done().unwrap();
    host.assert_idle();
}

#[test]
fn a_grpc_reply_after_the_request_ended_is_dropped() {
    let host = start();
    let (mut s, token) = grpc_request(&host);
    s.done().unwrap();
    assert_eq!(
        host.pending_calls(),
        0,
        "the ended request dropped its call"
    );
    // The host still answers; nothing waits, nothing is touched.
    host.respond_grpc(token, b"late").unwrap();
    assert_eq!(host.pending_tasks(), 0);
    host.assert_idle();
}

#[test]
fn a_grpc_call_to_an_unknown_cluster_fails_at_once() {
    let host = TestHost::builder()
        .clusters(["other"])
        .start::<Calls>(CONFIG)
        .unwrap();
    let mut s = host.http_stream();
    s.send_request_headers(&[(":path", "/"), ("x-op", "grpc")], true)
        .unwrap();
    let reply = s.local_response().unwrap();
    assert_eq!(reply.status, 503);
    assert_eq!(reply.body, b"dispatch failed: bad argument");
    assert!(s.callouts().is_empty());
    s.done().unwrap();
    host.assert_idle();
}

// ----- set_ctx! with on_queue_ready ------------------------------------------------------------

mod with_set_ctx {
    use higress_test_host::TestHost;
    use higress_wrapper::prelude::*;

    fn start(ctx: &mut PluginContext<'_, ()>) -> Result<(), StartError> {
        ctx.register_queue("jobs")?;
        Ok(())
    }

    fn queue_ready(ctx: &mut PluginContext<'_, ()>, queue_id: u32) {
        while let Ok(Some(job)) = ctx.dequeue(queue_id) {
            log::info!("job {}", String::from_utf8_lossy(&job));
        }
    }

    fn no_config(_: &JsonValue) -> Result<(), ConfigError> {
        Ok(())
    }

    higress_wrapper::set_ctx! {
        name: "queued",
        config: (),
        parse_config: no_config,
        plugin: Queued,
        on_plugin_start: start,
        on_queue_ready: queue_ready,
    }

    #[test]
    fn set_ctx_wires_on_queue_ready() {
        let host = TestHost::start::<Queued>("{}").unwrap();
        assert!(host.enqueue_shared_queue("jobs", "build"));
        assert_eq!(host.logs_containing("job build").len(), 1);
    }
}
