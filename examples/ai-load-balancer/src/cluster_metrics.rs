//! `lb_type: cluster`, `lb_policy: cluster_metrics`: picks one of several
//! upstream **clusters** (services) per request from statistics the gateway
//! keeps itself, and names it in a request header that the route uses as
//! Envoy's `cluster_header` (so the route, not the plugin, sends the
//! request there).
//!
//! Go's algorithm (`cluster_metrics/lb_policy.go`), step for step:
//!
//! 1. A random service of `service_list` is the candidate.
//! 2. Each other service replaces it when the candidate's share of all
//!    requests so far is at or over `rate_limit`, or when it is better and
//!    its own share is under `rate_limit`. Better: fewer requests in flight
//!    (`LeastBusy`), a lower mean total latency (`LeastTotalLatency`) or a
//!    lower mean time to the first response byte (`LeastFirstTokenLatency`),
//!    over the last `queue_size` requests. Equal is not better, so ties keep
//!    the random candidate.
//! 3. The header `cluster_header` is set to the service; its in-flight and
//!    total counts go up.
//! 4. The first response body chunk records the time to it; the end of the
//!    stream the total time and one request fewer in flight. A response
//!    other than 200 is recorded as twice the worst of (its own time, every
//!    service's mean), so failing services are avoided.
//!
//! Statistics live **per VM** (per Envoy worker) by default, as in Go.
//! `shared_stats: true` (a port-only option) keeps them in shared data
//! instead, so every worker of the gateway decides from the same numbers.
//!
//! This mode needs no Higress-only host call: built with the crate's
//! `cluster-only` feature the module runs on stock Envoy (the feature's
//! module refuses every other `lb_type` / `lb_policy`).
use higress_wrapper::prelude::*;
use higress_wrapper::shared_data::{self, SharedDataError};
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::time::UNIX_EPOCH;

/// `cluster_header` when none is given: what Go's code uses.
pub const DEFAULT_CLUSTER_HEADER: &str = "x-higress-target-cluster";
/// `cluster_header` Go's README documents as the default (its code uses
/// [`DEFAULT_CLUSTER_HEADER`]); the default with `use_readme_cluster_header`.
pub const README_CLUSTER_HEADER: &str = "x-envoy-target-cluster";
/// `queue_size` when none (or 0) is given.
pub const DEFAULT_QUEUE_SIZE: usize = 100;
/// Tries of a shared-data read-modify-write before it gives up.
const SHARED_ATTEMPTS: u32 = 16;

/// `lb_config.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `LeastBusy`: fewest requests in flight.
    LeastBusy,
    /// `LeastTotalLatency`: lowest mean time to the end of the stream.
    LeastTotalLatency,
    /// `LeastFirstTokenLatency`: lowest mean time to the first body chunk.
    LeastFirstTokenLatency,
}

impl Mode {
    fn parse(name: &str) -> Option<Mode> {
        match name {
            "LeastBusy" => Some(Mode::LeastBusy),
            "LeastTotalLatency" => Some(Mode::LeastTotalLatency),
            "LeastFirstTokenLatency" => Some(Mode::LeastFirstTokenLatency),
            _ => None,
        }
    }
}

/// One service's numbers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceStats {
    /// Requests sent there and not ended yet.
    pub ongoing: i64,
    /// Requests sent there since the statistics began.
    pub count: i64,
    /// The last `queue_size` times to the first body chunk, ms.
    pub ttft_ms: VecDeque<f64>,
    /// The last `queue_size` total times, ms.
    pub total_ms: VecDeque<f64>,
}

/// Every service's numbers, by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// By service name.
    pub services: BTreeMap<String, ServiceStats>,
}

fn mean(window: &VecDeque<f64>) -> f64 {
    if window.is_empty() {
        0.0
    } else {
        window.iter().sum::<f64>() / window.len() as f64
    }
}

impl Stats {
    fn service(&self, name: &str) -> Option<&ServiceStats> {
        self.services.get(name)
    }

    /// A service's share of every request counted so far (0 before any).
    pub fn request_rate(&self, name: &str) -> f64 {
        let total: i64 = self.services.values().map(|s| s.count).sum();
        if total == 0 {
            return 0.0;
        }
        self.service(name).map_or(0, |s| s.count) as f64 / total as f64
    }

    /// Mean time to the first body chunk, ms (0 without samples).
    pub fn mean_ttft(&self, name: &str) -> f64 {
        self.service(name).map_or(0.0, |s| mean(&s.ttft_ms))
    }

    /// Mean total time, ms (0 without samples).
    pub fn mean_total(&self, name: &str) -> f64 {
        self.service(name).map_or(0.0, |s| mean(&s.total_ms))
    }

    /// Requests in flight.
    pub fn ongoing(&self, name: &str) -> i64 {
        self.service(name).map_or(0, |s| s.ongoing)
    }
}

/// The parsed `lb_config`, and the statistics of this VM.
#[derive(Debug)]
pub struct ClusterMetrics {
    /// `mode` (required).
    pub mode: Mode,
    /// `service_list` (required, not empty): cluster names such as
    /// `outbound|80||test-1.dns`, in the given order.
    pub service_list: Vec<String>,
    /// `rate_limit` (default 1): the largest share of requests one service
    /// takes before others are preferred.
    pub rate_limit: f64,
    /// `cluster_header` (default [`DEFAULT_CLUSTER_HEADER`]).
    pub cluster_header: String,
    /// `queue_size` (default 100): how many recent requests the means use.
    pub queue_size: usize,
    /// `shared_stats` (port only, default false): statistics in shared data.
    pub shared_stats: bool,
    stats: RefCell<Stats>,
    rng: Cell<u64>,
}

fn refuse(path: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::new(message).with_path(format!("lb_config.{path}"))
}

fn optional_string(json: &JsonValue, key: &str) -> Result<Option<String>, ConfigError> {
    match json.get(key) {
        None | Some(JsonValue::Null) => Ok(None),
        Some(JsonValue::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(refuse(key, format!("must be a string, not {other}"))),
    }
}

fn optional_bool(json: &JsonValue, key: &str) -> Result<bool, ConfigError> {
    match json.get(key) {
        None | Some(JsonValue::Null) => Ok(false),
        Some(JsonValue::Bool(b)) => Ok(*b),
        Some(other) => Err(refuse(key, format!("must be true or false, not {other}"))),
    }
}

/// A number, or a string holding one (Go's README types `rate_limit` as a
/// string, and gjson reads either).
fn number(json: &JsonValue, key: &str) -> Result<Option<f64>, ConfigError> {
    match json.get(key) {
        None | Some(JsonValue::Null) => Ok(None),
        Some(JsonValue::Number(n)) => Ok(n.as_f64()),
        Some(JsonValue::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| refuse(key, format!("{s:?} is not a number"))),
        Some(other) => Err(refuse(key, format!("must be a number, not {other}"))),
    }
}

/// Parses `lb_config` of `cluster_metrics`, with Go's keys and defaults.
/// Errors name the field (`lb_config.mode`, `lb_config.service_list[1]`).
pub fn parse_cluster_metrics(json: &JsonValue) -> Result<ClusterMetrics, ConfigError> {
    if !json.is_object() {
        return Err(ConfigError::new("lb_config must be an object").with_path("lb_config"));
    }
    let mode_name = optional_string(json, "mode")?.unwrap_or_default();
    let mode = Mode::parse(&mode_name).ok_or_else(|| {
        refuse(
            "mode",
            format!(
                "mode {mode_name:?} is not supported (LeastBusy, LeastTotalLatency or LeastFirstTokenLatency)"
            ),
        )
    })?;
    let list = match json.get("service_list") {
        Some(JsonValue::Array(items)) => items,
        None | Some(JsonValue::Null) => {
            return Err(refuse("service_list", "service_list is required"))
        }
        Some(other) => {
            return Err(refuse(
                "service_list",
                format!("must be a list of cluster names, not {other}"),
            ))
        }
    };
    let mut service_list = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        match item {
            JsonValue::String(s) if !s.is_empty() => service_list.push(s.clone()),
            other => {
                return Err(refuse(
                    &format!("service_list[{i}]"),
                    format!("must be a cluster name, not {other}"),
                ))
            }
        }
    }
    if service_list.is_empty() {
        return Err(refuse("service_list", "service_list must not be empty"));
    }
    let rate_limit = number(json, "rate_limit")?.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&rate_limit) {
        return Err(refuse(
            "rate_limit",
            format!("{rate_limit} is not between 0 and 1"),
        ));
    }
    let queue_size = match number(json, "queue_size")? {
        None => DEFAULT_QUEUE_SIZE,
        Some(n) if n.fract() != 0.0 || !(0.0..=1_000_000.0).contains(&n) => {
            return Err(refuse(
                "queue_size",
                format!("{n} is not a count of requests"),
            ))
        }
        Some(0.0) => DEFAULT_QUEUE_SIZE,
        Some(n) => n as usize,
    };
    let readme_default = optional_bool(json, "use_readme_cluster_header")?;
    let cluster_header = match optional_string(json, "cluster_header")? {
        Some(h) if !h.is_empty() => h.to_ascii_lowercase(),
        _ if readme_default => README_CLUSTER_HEADER.to_owned(),
        _ => DEFAULT_CLUSTER_HEADER.to_owned(),
    };
    let shared_stats = optional_bool(json, "shared_stats")?;
    let lb = ClusterMetrics {
        mode,
        rate_limit,
        cluster_header,
        queue_size,
        shared_stats,
        stats: RefCell::new(Stats::default()),
        rng: Cell::new(seed()),
        service_list,
    };
    *lb.stats.borrow_mut() = lb.fresh_stats();
    log::info!(
        "cluster_metrics: mode {mode_name}, services {:?}, rate_limit {}, cluster_header {}, queue_size {}, stats {}",
        lb.service_list,
        lb.rate_limit,
        lb.cluster_header,
        lb.queue_size,
        if lb.shared_stats { "shared" } else { "per VM" }
    );
    Ok(lb)
}

fn seed() -> u64 {
    static INSTANCES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = higress_wrapper::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // Never 0 (xorshift would stay there).
    (nanos ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1
}

fn now_ms() -> u64 {
    higress_wrapper::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What one request picked; the per-request state of this mode.
#[derive(Debug, Default, Clone)]
pub struct Pick {
    /// The service named in the header.
    pub service: Option<String>,
    start_ms: u64,
    status: Option<String>,
    ttft_recorded: bool,
}

impl AsMut<Pick> for Pick {
    fn as_mut(&mut self) -> &mut Pick {
        self
    }
}

impl ClusterMetrics {
    fn fresh_stats(&self) -> Stats {
        let services = self
            .service_list
            .iter()
            .map(|s| (s.clone(), ServiceStats::default()))
            .collect();
        Stats { services }
    }

    /// The shared-data key of `shared_stats`: one per service list.
    pub fn shared_key(&self) -> String {
        format!(
            "ai-load-balancer:cluster_metrics:{}",
            self.service_list.join(",")
        )
    }

    /// A copy of the statistics the next pick uses.
    pub fn stats(&self) -> Stats {
        if self.shared_stats {
            match shared_data::get::<Stats>(&self.shared_key()) {
                Ok(v) => return v.value,
                Err(SharedDataError::NotFound) => return self.fresh_stats(),
                Err(e) => {
                    log::warn!("cluster_metrics: shared stats unreadable, using this VM's: {e}")
                }
            }
        }
        self.stats.borrow().clone()
    }

    /// Runs `f` on the statistics: this VM's, or with `shared_stats` a
    /// compare-and-swap update of the shared copy (this VM's copy if shared
    /// data fails).
    fn with_stats<R>(&self, mut f: impl FnMut(&mut Stats) -> R) -> R {
        if self.shared_stats {
            let mut out = None;
            let result = shared_data::update(&self.shared_key(), SHARED_ATTEMPTS, |current| {
                let mut stats = current.unwrap_or_else(|| self.fresh_stats());
                out = Some(f(&mut stats));
                stats
            });
            match (result, out) {
                (Ok(_), Some(out)) => return out,
                (Err(e), _) => {
                    log::warn!("cluster_metrics: shared stats not updated, using this VM's: {e}")
                }
                (Ok(_), None) => {}
            }
        }
        f(&mut self.stats.borrow_mut())
    }

    fn random_index(&self) -> usize {
        // xorshift64*
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (r % self.service_list.len().max(1) as u64) as usize
    }

    /// Go's choice from `stats`, starting from the candidate at
    /// `service_list[initial]`.
    pub fn choose(&self, stats: &Stats, initial: usize) -> String {
        let Some(first) = self
            .service_list
            .get(initial)
            .or_else(|| self.service_list.first())
        else {
            return String::new();
        };
        let mut candidate = first.as_str();
        let limit = self.rate_limit;
        let score = |svc: &str| match self.mode {
            Mode::LeastBusy => stats.ongoing(svc) as f64,
            Mode::LeastTotalLatency => stats.mean_total(svc),
            Mode::LeastFirstTokenLatency => stats.mean_ttft(svc),
        };
        let mut best = score(candidate);
        // Go walks the map of services for LeastBusy (random order) and the
        // list (duplicates included) for the others; the port walks the
        // list's distinct names in order for all three.
        let mut seen = std::collections::BTreeSet::new();
        for svc in &self.service_list {
            if !seen.insert(svc.as_str()) || svc == candidate {
                continue;
            }
            if stats.request_rate(candidate) >= limit
                || (score(svc) < best && stats.request_rate(svc) < limit)
            {
                candidate = svc;
                best = score(svc);
            }
        }
        if log::log_enabled!(log::Level::Debug) {
            let mut info = String::new();
            for svc in &self.service_list {
                info.push_str(&format!(
                    "[service: {svc}] {{ongoing request: {}, total request: {}, request rate: {:.2}, average ttft: {:.2}, average latency: {:.2}}}, ",
                    stats.ongoing(svc),
                    stats.service(svc).map_or(0, |s| s.count),
                    stats.request_rate(svc),
                    stats.mean_ttft(svc),
                    stats.mean_total(svc),
                ));
            }
            log::debug!("{info}final service: {candidate}");
        }
        candidate.to_owned()
    }

    /// Picks the service, counts the request and writes the header.
    pub fn select(&self) -> String {
        let initial = self.random_index();
        self.with_stats(|stats| {
            let service = self.choose(stats, initial);
            let entry = stats.services.entry(service.clone()).or_default();
            entry.ongoing += 1;
            entry.count += 1;
            service
        })
    }

    /// A time to record for `service`: `elapsed`, or for a response other
    /// than 200 twice the worst of it and every service's mean (Go's
    /// penalty for failures).
    fn penalised(
        &self,
        stats: &Stats,
        elapsed: f64,
        ok: bool,
        mean: fn(&Stats, &str) -> f64,
    ) -> f64 {
        if ok {
            return elapsed;
        }
        let worst = self
            .service_list
            .iter()
            .map(|s| mean(stats, s))
            .fold(elapsed, f64::max);
        worst * 2.0
    }

    fn push(&self, window: &mut VecDeque<f64>, value: f64) {
        while window.len() >= self.queue_size.max(1) {
            window.pop_front();
        }
        window.push_back(value);
    }

    /// The first response body chunk of `pick` arrived now.
    pub fn record_first_token(&self, pick: &mut Pick) {
        let Some(service) = pick.service.clone() else {
            return;
        };
        if pick.ttft_recorded {
            return;
        }
        pick.ttft_recorded = true;
        let elapsed = now_ms().saturating_sub(pick.start_ms) as f64;
        let ok = pick.status.as_deref() == Some("200");
        self.with_stats(|stats| {
            let value = self.penalised(stats, elapsed, ok, Stats::mean_ttft);
            let entry = stats.services.entry(service.clone()).or_default();
            self.push(&mut entry.ttft_ms, value);
        });
    }

    /// The stream of `pick` ended now.
    pub fn record_done(&self, pick: &mut Pick) {
        let Some(service) = pick.service.take() else {
            return;
        };
        let elapsed = now_ms().saturating_sub(pick.start_ms) as f64;
        let ok = pick.status.as_deref() == Some("200");
        self.with_stats(|stats| {
            let value = self.penalised(stats, elapsed, ok, Stats::mean_total);
            let entry = stats.services.entry(service.clone()).or_default();
            entry.ongoing -= 1;
            self.push(&mut entry.total_ms, value);
        });
    }
}

// ----- hooks: generic over the plugin's state, so the full plugin (lib.rs)
// and the `cluster-only` module share them -----------------------------------

/// Request headers: pick, set the header, continue (the route reads it).
pub fn on_request_headers<S: AsMut<Pick>>(
    ctx: &mut HttpContext<S>,
    lb: &ClusterMetrics,
) -> HeaderAction {
    // This mode never reads the request body.
    ctx.dont_read_request_body();
    let start_ms = now_ms();
    let service = lb.select();
    ctx.set_request_header(&lb.cluster_header, &service);
    *ctx.state_mut().as_mut() = Pick {
        service: Some(service),
        start_ms,
        status: None,
        ttft_recorded: false,
    };
    HeaderAction::Continue
}

/// Response headers: keep the status for the penalty.
pub fn on_response_headers<S: AsMut<Pick>>(
    ctx: &mut HttpContext<S>,
    _lb: &ClusterMetrics,
) -> HeaderAction {
    let status = ctx
        .response_header(":status")
        .map(|v| v.to_str_lossy().into_owned());
    ctx.state_mut().as_mut().status = status;
    HeaderAction::Continue
}

/// A response body chunk: the first one is the first token.
pub fn on_streaming_response_body<S: AsMut<Pick>>(
    ctx: &mut HttpContext<S>,
    lb: &ClusterMetrics,
    _chunk: &[u8],
    _end_of_stream: bool,
) -> Option<Vec<u8>> {
    lb.record_first_token(ctx.state_mut().as_mut());
    // The later chunks are not needed: let them pass without a copy.
    ctx.dont_read_response_body();
    None
}

/// Stream done: one fewer in flight, the total time recorded.
pub fn on_stream_done<S: AsMut<Pick>>(ctx: &mut HttpContext<S>, lb: &ClusterMetrics) {
    lb.record_done(ctx.state_mut().as_mut());
}

/// The whole plugin config of the `cluster-only` module: `lb_type` must be
/// `cluster` and `lb_policy` `cluster_metrics`.
pub fn parse_cluster_only_config(json: &JsonValue) -> Result<ClusterMetrics, ConfigError> {
    let field = |key: &str| json.get(key).and_then(JsonValue::as_str).unwrap_or("");
    let (lb_type, lb_policy) = (field("lb_type"), field("lb_policy"));
    if lb_type != "cluster" {
        return Err(ConfigError::new(format!(
            "lb_type {lb_type:?}: this module is built with the cluster-only feature and runs only lb_type cluster"
        ))
        .with_path("lb_type"));
    }
    if lb_policy != "cluster_metrics" {
        return Err(ConfigError::new(format!(
            "lb_policy {lb_policy:?}: this module is built with the cluster-only feature and runs only lb_policy cluster_metrics"
        ))
        .with_path("lb_policy"));
    }
    parse_cluster_metrics(json.get("lb_config").unwrap_or(&JsonValue::Null))
}

#[cfg(feature = "cluster-only")]
higress_wrapper::set_ctx! {
    name: "ai-load-balancer",
    plugin: pub Plugin,
    config: ClusterMetrics,
    state: Pick,
    parse_config: parse_cluster_only_config,
    on_request_headers: on_request_headers,
    on_response_headers: on_response_headers,
    on_streaming_response_body: on_streaming_response_body,
    on_stream_done: on_stream_done,
}
