//! `lb_type: endpoint`, `lb_policy: endpoint_metrics` (old name
//! `metrics_based`): each request goes to a healthy endpoint chosen from
//! the Prometheus metrics Higress reports for it (the `metrics` text in the
//! endpoint's metadata, [`upstream::upstream_hosts`]). No Redis.
//!
//! - `metric_policy: least` / `most`: the endpoints whose `target_metric`
//!   lies in the lowest (highest) `1/n` of the range across the `n`
//!   endpoints; one of them at random.
//! - `metric_policy: default`: the scheduler of the
//!   gateway-api-inference-extension that Go ports (queue length, LoRA
//!   affinity, KV-cache use of vLLM), see [`schedule`].
//! - `rate_limit` (0..1, default 1): when the chosen endpoint has more than
//!   that share of the last 100 picks, another healthy endpoint is taken at
//!   random. Go keeps those picks per VM, that is per Envoy worker thread;
//!   `rate_limit_scope: gateway` shares them between the plugin's VMs of
//!   one gateway (proxy-wasm shared data).
use crate::prometheus::{self, Family};
use crate::{random, refuse, State};
use higress_wrapper::prelude::*;
use higress_wrapper::shared_data;
use higress_wrapper::upstream;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// How many picks `rate_limit` looks back on (Go's `FixedQueueSize`).
pub const WINDOW: usize = 100;

/// `metric_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricPolicy {
    /// `default`: the inference-extension scheduler.
    Default,
    /// `least`: the lowest `target_metric`.
    Least,
    /// `most`: the highest `target_metric`.
    Most,
}

/// `rate_limit_scope` (an addition of the port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitScope {
    /// `vm` (default, Go's behaviour): each VM (Envoy worker thread)
    /// counts its own last 100 picks.
    Vm,
    /// `gateway`: the last 100 picks of every VM of this plugin on the
    /// gateway, per upstream cluster, in shared data.
    Gateway,
}

/// The `lb_config` of `endpoint_metrics`.
#[derive(Debug)]
pub struct EndpointMetrics {
    /// `metric_policy` (default `default`).
    pub metric_policy: MetricPolicy,
    /// `target_metric`: the metric `least` / `most` compare.
    pub target_metric: String,
    /// `rate_limit` (default 1): the largest share of the last picks one
    /// endpoint may have.
    pub rate_limit: f64,
    /// `rate_limit_scope` (default `vm`).
    pub rate_limit_scope: RateLimitScope,
    window: RefCell<VecDeque<String>>,
}

/// Parses `lb_config` for `endpoint_metrics` (Go's keys and defaults);
/// errors name the field.
pub fn parse(json: &JsonValue) -> Result<EndpointMetrics, ConfigError> {
    let field = |key: &str| json.get(key).filter(|v| !v.is_null());
    let metric_policy = match field("metric_policy") {
        None => MetricPolicy::Default,
        Some(JsonValue::String(s)) if s == "default" => MetricPolicy::Default,
        Some(JsonValue::String(s)) if s == "least" => MetricPolicy::Least,
        Some(JsonValue::String(s)) if s == "most" => MetricPolicy::Most,
        Some(other) => {
            return Err(refuse(
                "lb_config.metric_policy",
                format!("metric_policy {other} is not supported (default, least or most)"),
            ))
        }
    };
    let target_metric = match field("target_metric") {
        None => String::new(),
        Some(JsonValue::String(s)) => s.clone(),
        Some(other) => {
            return Err(refuse(
                "lb_config.target_metric",
                format!("expected a metric name, got {other}"),
            ))
        }
    };
    if metric_policy != MetricPolicy::Default && target_metric.is_empty() {
        return Err(refuse(
            "lb_config.target_metric",
            "target_metric is required with metric_policy least or most",
        ));
    }
    if metric_policy == MetricPolicy::Default && !target_metric.is_empty() {
        log::warn!(
            "target_metric {target_metric} with metric_policy default: only that metric is read, the default scheduler sees zeros and picks at random (as Go)"
        );
    }
    let rate_limit = match field("rate_limit") {
        None => 1.0,
        Some(JsonValue::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(JsonValue::String(s)) => s.trim().parse().unwrap_or(f64::NAN),
        Some(_) => f64::NAN,
    };
    if !(0.0..=1.0).contains(&rate_limit) {
        return Err(refuse(
            "lb_config.rate_limit",
            format!(
                "rate_limit must be a number from 0 to 1, got {}",
                field("rate_limit")
                    .map(ToString::to_string)
                    .unwrap_or_default()
            ),
        ));
    }
    let rate_limit_scope = match field("rate_limit_scope") {
        None => RateLimitScope::Vm,
        Some(JsonValue::String(s)) if s == "vm" => RateLimitScope::Vm,
        Some(JsonValue::String(s)) if s == "gateway" => RateLimitScope::Gateway,
        Some(other) => {
            return Err(refuse(
                "lb_config.rate_limit_scope",
                format!("rate_limit_scope {other} is not supported (vm or gateway)"),
            ))
        }
    };
    Ok(EndpointMetrics {
        metric_policy,
        target_metric,
        rate_limit,
        rate_limit_scope,
        window: RefCell::new(VecDeque::with_capacity(WINDOW)),
    })
}

// ----- what one endpoint reports ------------------------------------------------------------

/// The vLLM metric names the default scheduler reads.
pub mod names {
    /// Requests running.
    pub const RUNNING: &str = "vllm:num_requests_running";
    /// Requests waiting.
    pub const WAITING: &str = "vllm:num_requests_waiting";
    /// KV-cache use, 0..1.
    pub const KV_CACHE: &str = "vllm:gpu_cache_usage_perc";
    /// LoRA adapters (labels `running_lora_adapters`, `max_lora`).
    pub const LORA: &str = "vllm:lora_requests_info";
}

/// One endpoint's metrics (Go's `PodMetrics`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pod {
    /// `ip:port`.
    pub address: String,
    /// `vllm:num_requests_running`.
    pub running: i64,
    /// `vllm:num_requests_waiting`.
    pub waiting: i64,
    /// `vllm:gpu_cache_usage_perc`.
    pub kv_cache: f64,
    /// LoRA adapters loaded (`running_lora_adapters`).
    pub active_models: BTreeSet<String>,
    /// How many adapters fit (`max_lora`).
    pub max_active_models: i64,
    /// The `target_metric`'s value.
    pub metric_value: f64,
}

/// The series of `name` with the latest timestamp (the last of equals),
/// as Go's `getLatestMetric`.
fn latest<'a>(
    families: &'a BTreeMap<String, Family>,
    name: &str,
) -> Result<(&'a Family, &'a prometheus::Sample), String> {
    let family = families
        .get(name)
        .ok_or_else(|| format!("metric family {name:?} not found"))?;
    let mut best: Option<&prometheus::Sample> = None;
    for s in &family.samples {
        if best.is_none_or(|b| s.timestamp_ms >= b.timestamp_ms) {
            best = Some(s);
        }
    }
    let best = best.ok_or_else(|| format!("no metrics available for {name:?}"))?;
    Ok((family, best))
}

/// Reads one endpoint's metrics text (Go's `PromToPodMetrics`): with a
/// `target_metric`, only that metric (its gauge value; 0 if it is not a
/// gauge); else the running and waiting queues, the KV-cache use and the
/// LoRA info, every one of them required.
pub fn pod_metrics(address: &str, text: &str, target_metric: &str) -> Result<Pod, String> {
    let families = prometheus::parse(text)?;
    let mut pod = Pod {
        address: address.to_owned(),
        ..Pod::default()
    };
    if !target_metric.is_empty() {
        let (family, sample) = latest(&families, target_metric)?;
        pod.metric_value = family.gauge_value(sample);
        return Ok(pod);
    }
    let mut errors = Vec::new();
    match latest(&families, names::RUNNING) {
        Ok((f, s)) => pod.running = f.gauge_value(s) as i64,
        Err(e) => errors.push(e),
    }
    match latest(&families, names::WAITING) {
        Ok((f, s)) => pod.waiting = f.gauge_value(s) as i64,
        Err(e) => errors.push(e),
    }
    match latest(&families, names::KV_CACHE) {
        Ok((f, s)) => pod.kv_cache = f.gauge_value(s),
        Err(e) => errors.push(e),
    }
    match families.get(names::LORA) {
        None => errors.push(format!("metric family {:?} not found", names::LORA)),
        Some(family) => {
            // The series with the largest value (its creation time) wins.
            let mut newest: Option<(f64, &prometheus::Sample)> = None;
            for s in &family.samples {
                let v = family.gauge_value(s);
                if v > newest.map_or(0.0, |(t, _)| t) {
                    newest = Some((v, s));
                }
            }
            for (label, value) in newest.map(|(_, s)| s.labels.as_slice()).unwrap_or(&[]) {
                if label == "running_lora_adapters" && !value.is_empty() {
                    pod.active_models
                        .extend(value.split(',').map(str::to_owned));
                }
                if label == "max_lora" && !value.is_empty() {
                    match value.parse() {
                        Ok(n) => pod.max_active_models = n,
                        Err(_) => errors.push(format!("max_lora {value:?} is not a number")),
                    }
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(pod)
    } else {
        Err(errors.join("; "))
    }
}

// ----- choosing ------------------------------------------------------------------------------

/// The request as the scheduler sees it (Go's `LLMRequest`; every request
/// is critical).
#[derive(Debug, Clone)]
pub struct LlmRequest {
    /// The body's `model` (a LoRA adapter name, for affinity).
    pub model: String,
    /// Always true in Go's plugin.
    pub critical: bool,
}

type Pods<'a> = Vec<&'a Pod>;
type FilterFn = for<'a> fn(&LlmRequest, &[&'a Pod]) -> Result<Pods<'a>, &'static str>;

/// One step of the scheduler's flowchart (Go's `filter`): on success the
/// survivors go to `on_success`, on failure (an error or none left) the
/// same input goes to `on_failure`; `next` is both.
#[derive(Debug)]
pub struct Filter {
    /// Its name, as Go logs it.
    pub name: &'static str,
    apply: FilterFn,
    on_success: Option<&'static Filter>,
    on_failure: Option<&'static Filter>,
    next: Option<&'static Filter>,
}

impl Filter {
    /// Runs this step and the ones after it.
    pub fn run<'a>(&self, req: &LlmRequest, pods: &[&'a Pod]) -> Result<Pods<'a>, &'static str> {
        log::debug!(
            "Running filter {:?} on request {req:?} with {} pods",
            self.name,
            pods.len()
        );
        let result = (self.apply)(req, pods);
        match result {
            Ok(kept) if !kept.is_empty() => match self.on_success.or(self.next) {
                Some(next) => next.run(req, &kept),
                None => Ok(kept),
            },
            failed => match self.on_failure.or(self.next) {
                Some(next) => next.run(req, pods),
                None => failed,
            },
        }
    }
}

/// A per-endpoint test turned into a filter (Go's `toFilterFunc`).
macro_rules! predicate {
    ($test:expr) => {{
        fn apply<'a>(req: &LlmRequest, pods: &[&'a Pod]) -> Result<Pods<'a>, &'static str> {
            let test: fn(&LlmRequest, &Pod) -> bool = $test;
            let kept: Pods<'a> = pods.iter().copied().filter(|p| test(req, p)).collect();
            if kept.is_empty() {
                Err("no pods left")
            } else {
                Ok(kept)
            }
        }
        apply
    }};
}

const KV_CACHE_THRESHOLD: f64 = 0.8;
const QUEUE_THRESHOLD_CRITICAL: i64 = 5;
const QUEUEING_THRESHOLD_LORA: i64 = 50;

/// Endpoints whose waiting queue is in the lowest `1/n` of the range.
pub fn least_queuing<'a>(_: &LlmRequest, pods: &[&'a Pod]) -> Result<Pods<'a>, &'static str> {
    let min = pods.iter().map(|p| p.waiting).min().unwrap_or(i64::MAX);
    let max = pods.iter().map(|p| p.waiting).max().unwrap_or(0).max(0);
    let n = i64::try_from(pods.len()).unwrap_or(i64::MAX).max(1);
    let top = min.saturating_add(max.saturating_sub(min) / n);
    Ok(pods
        .iter()
        .copied()
        .filter(|p| p.waiting >= min && p.waiting <= top)
        .collect())
}

/// Endpoints whose KV-cache use is in the lowest `1/n` of the range.
pub fn least_kv_cache<'a>(_: &LlmRequest, pods: &[&'a Pod]) -> Result<Pods<'a>, &'static str> {
    Ok(lowest_share(pods, |p| p.kv_cache))
}

/// Go's float "least" filter: `min` starts at the largest float, `max` at
/// 0, and the kept range is `[min, min + (max - min) / n]`.
fn lowest_share<'a>(pods: &[&'a Pod], value: fn(&Pod) -> f64) -> Pods<'a> {
    let (mut min, mut max) = (f64::MAX, 0.0_f64);
    for p in pods {
        let v = value(p);
        if v <= min {
            min = v;
        }
        if v >= max {
            max = v;
        }
    }
    let top = min + (max - min) / pods.len().max(1) as f64;
    pods.iter()
        .copied()
        .filter(|p| value(p) >= min && value(p) <= top)
        .collect()
}

/// Go's float "most" filter: the kept range is `[max - (max - min) / n, max]`.
fn highest_share<'a>(pods: &[&'a Pod], value: fn(&Pod) -> f64) -> Pods<'a> {
    let (mut min, mut max) = (f64::MAX, 0.0_f64);
    for p in pods {
        let v = value(p);
        if v <= min {
            min = v;
        }
        if v >= max {
            max = v;
        }
    }
    let bottom = max - (max - min) / pods.len().max(1) as f64;
    pods.iter()
        .copied()
        .filter(|p| value(p) <= max && value(p) >= bottom)
        .collect()
}

/// The adapter is loaded there, or there is room to load it.
pub fn low_lora_cost(req: &LlmRequest, pod: &Pod) -> bool {
    pod.active_models.contains(&req.model) || can_accept_new_lora(req, pod)
}

/// The adapter is loaded there.
pub fn lora_affinity(req: &LlmRequest, pod: &Pod) -> bool {
    pod.active_models.contains(&req.model)
}

/// There is room for another adapter.
pub fn can_accept_new_lora(_: &LlmRequest, pod: &Pod) -> bool {
    i64::try_from(pod.active_models.len()).unwrap_or(i64::MAX) < pod.max_active_models
}

/// Fewer than 50 waiting.
pub fn low_queueing(_: &LlmRequest, pod: &Pod) -> bool {
    pod.waiting < QUEUEING_THRESHOLD_LORA
}

/// At most `queue` waiting and at most `kv` KV-cache use.
pub fn no_queue_and_less_than_kv_cache(queue: i64, kv: f64, pod: &Pod) -> bool {
    pod.waiting <= queue && pod.kv_cache <= kv
}

static LEAST_KV_CACHE: Filter = Filter {
    name: "least KV cache percent",
    apply: least_kv_cache,
    on_success: None,
    on_failure: None,
    next: None,
};
static QUEUE_AND_KV_CACHE: Filter = Filter {
    name: "least queuing",
    apply: least_queuing,
    on_success: None,
    on_failure: None,
    next: Some(&LEAST_KV_CACHE),
};
static LOW_COST_LORA: Filter = Filter {
    name: "low cost LoRA",
    apply: predicate!(low_lora_cost),
    on_success: None,
    on_failure: None,
    next: Some(&LEAST_KV_CACHE),
};
static QUEUE_LORA_AND_KV_CACHE: Filter = Filter {
    name: "least queuing",
    apply: least_queuing,
    on_success: None,
    on_failure: None,
    next: Some(&LOW_COST_LORA),
};
static CAN_ACCEPT_LORA: Filter = Filter {
    name: "can accept LoRA Adapter",
    apply: predicate!(can_accept_new_lora),
    on_success: None,
    on_failure: None,
    next: Some(&QUEUE_AND_KV_CACHE),
};
static AFFINITY_LORA: Filter = Filter {
    name: "affinity LoRA",
    apply: predicate!(lora_affinity),
    on_success: Some(&QUEUE_AND_KV_CACHE),
    on_failure: Some(&CAN_ACCEPT_LORA),
    next: None,
};
static LOW_LATENCY: Filter = Filter {
    name: "low queueing filter",
    apply: predicate!(low_queueing),
    on_success: Some(&AFFINITY_LORA),
    on_failure: Some(&QUEUE_LORA_AND_KV_CACHE),
    next: None,
};
static DROP_REQUEST: Filter = Filter {
    name: "drop request",
    apply: |_, _| Err("dropping request due to limited backend resources"),
    on_success: None,
    on_failure: None,
    next: None,
};
static SHEDDABLE: Filter = Filter {
    name: "has capacity for sheddable requests",
    apply: predicate!(|_, p| no_queue_and_less_than_kv_cache(
        QUEUE_THRESHOLD_CRITICAL,
        KV_CACHE_THRESHOLD,
        p
    )),
    on_success: Some(&QUEUE_LORA_AND_KV_CACHE),
    on_failure: Some(&DROP_REQUEST),
    next: None,
};

/// The default flowchart (Go's `defaultFilter`): critical requests go
/// through low queueing → LoRA affinity (or room for the adapter) → least
/// queue → least KV cache; sheddable ones need an endpoint with capacity.
pub static DEFAULT_FILTER: Filter = Filter {
    name: "critical request",
    apply: predicate!(|req, _| req.critical),
    on_success: Some(&LOW_LATENCY),
    on_failure: Some(&SHEDDABLE),
    next: None,
};

static LEAST_METRIC: Filter = Filter {
    name: "least user selected metric",
    apply: |_, pods| Ok(lowest_share(pods, |p| p.metric_value)),
    on_success: None,
    on_failure: None,
    next: None,
};
static MOST_METRIC: Filter = Filter {
    name: "most user selected metric",
    apply: |_, pods| Ok(highest_share(pods, |p| p.metric_value)),
    on_success: None,
    on_failure: None,
    next: None,
};

/// The candidates for `req` under `policy` (Go's `Scheduler.Schedule`
/// before its random pick); an error when none is left.
pub fn schedule<'a>(
    policy: MetricPolicy,
    req: &LlmRequest,
    pods: &[&'a Pod],
) -> Result<Pods<'a>, String> {
    let filter = match policy {
        MetricPolicy::Least => &LEAST_METRIC,
        MetricPolicy::Most => &MOST_METRIC,
        MetricPolicy::Default => &DEFAULT_FILTER,
    };
    match filter.run(req, pods) {
        Ok(kept) if !kept.is_empty() => Ok(kept),
        Ok(_) => Err("failed to apply filter, resulted 0 pods".to_owned()),
        Err(e) => Err(format!("failed to apply filter, resulted 0 pods: {e}")),
    }
}

// ----- rate_limit ----------------------------------------------------------------------------

/// Applies `rate_limit` to `chosen` given the last picks, and returns the
/// endpoint to use: `chosen`, or a random other healthy one when `chosen`
/// has more than `rate_limit` of the window.
fn limit_rate(
    rate_limit: f64,
    window: &VecDeque<String>,
    chosen: &str,
    healthy: &[String],
) -> String {
    let rate = if window.is_empty() {
        0.0
    } else {
        window.iter().filter(|h| *h == chosen).count() as f64 / window.len() as f64
    };
    let others: Vec<&String> = healthy.iter().filter(|h| *h != chosen).collect();
    if rate > rate_limit && !others.is_empty() {
        if let Some(other) = others.get(random::below(others.len())) {
            return (*other).clone();
        }
    }
    chosen.to_owned()
}

fn push(window: &mut VecDeque<String>, pick: &str) {
    if window.len() >= WINDOW {
        window.pop_front();
    }
    window.push_back(pick.to_owned());
}

/// The shared-data key of the gateway-wide window of `cluster`.
pub fn window_key(cluster: &str) -> String {
    format!("ai-load-balancer:endpoint_metrics:picks:{cluster}")
}

impl EndpointMetrics {
    fn rate_limited(&self, cluster: &str, chosen: &str, healthy: &[String]) -> String {
        if self.rate_limit_scope == RateLimitScope::Vm {
            let mut window = self.window.borrow_mut();
            let pick = limit_rate(self.rate_limit, &window, chosen, healthy);
            push(&mut window, &pick);
            return pick;
        }
        let mut pick = chosen.to_owned();
        let written = shared_data::update_bytes(&window_key(cluster), 8, |stored| {
            let mut window: VecDeque<String> = stored
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect();
            pick = limit_rate(self.rate_limit, &window, chosen, healthy);
            push(&mut window, &pick);
            Vec::from(window).join("\n").into_bytes()
        });
        if let Err(e) = written {
            log::warn!("rate_limit window in shared data not updated: {e}");
        }
        pick
    }
}

// ----- the request ---------------------------------------------------------------------------

/// Holds the headers while the body is read (the override only takes
/// effect while they are held); a request without a body has no `model`
/// and goes on at once.
pub(crate) fn on_request_headers(
    ctx: &mut HttpContext<State>,
    _lb: &EndpointMetrics,
) -> HeaderAction {
    if ctx.has_request_body() {
        HeaderAction::StopIteration
    } else {
        HeaderAction::Continue
    }
}

pub(crate) fn on_request_body(
    ctx: &mut HttpContext<State>,
    lb: &EndpointMetrics,
    body: &[u8],
) -> DataAction {
    if let Some(host) = pick(ctx, lb, body) {
        log::debug!("pod {host} is selected");
        if let Err(e) = upstream::set_upstream_override_host(&host) {
            log::warn!("override upstream host {host} failed: {e}");
        }
    }
    DataAction::Continue
}

/// The endpoint for this request, `None` to leave it to the cluster's
/// balancer (no `model`, no healthy endpoint, a metrics text that does not
/// parse or lacks a metric, nothing left after the filters).
fn pick(ctx: &HttpContext<State>, lb: &EndpointMetrics, body: &[u8]) -> Option<String> {
    let model = crate::json_text::object_bytes(body)?
        .get("model")
        .map(|m| crate::json_text::text(m))?;
    let req = LlmRequest {
        model,
        critical: true,
    };
    let hosts = upstream::upstream_hosts().ok()?;
    // Go keys the healthy endpoints by address: one entry each.
    let mut healthy: BTreeMap<String, String> = BTreeMap::new();
    for h in hosts.into_iter().filter(|h| h.is_healthy()) {
        healthy.insert(h.address, h.metrics.unwrap_or_default());
    }
    if healthy.is_empty() {
        log::debug!("initial scheduler failed: backend is not support llm scheduling");
        return None;
    }
    let mut pods = Vec::with_capacity(healthy.len());
    for (address, text) in &healthy {
        match pod_metrics(address, text, &lb.target_metric) {
            Ok(pod) => pods.push(pod),
            Err(e) => {
                log::debug!("initial scheduler failed: {address}: {e}");
                return None;
            }
        }
    }
    let refs: Vec<&Pod> = pods.iter().collect();
    let chosen = match schedule(lb.metric_policy, &req, &refs) {
        Ok(kept) => kept.get(random::below(kept.len()))?.address.clone(),
        Err(e) => {
            log::debug!("pod select failed: {e}");
            return None;
        }
    };
    let addresses: Vec<String> = healthy.into_keys().collect();
    let cluster = ctx.cluster_name().unwrap_or_default();
    Some(lb.rate_limited(&cluster, &chosen, &addresses))
}
