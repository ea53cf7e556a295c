//! ai-load-balancer: a port of Higress's `ai-load-balancer` Go plugin,
//! `lb_type: endpoint` with `lb_policy` `global_least_request` (here),
//! [`prefix_cache`] and [`endpoint_metrics`] (old name `metrics_based`);
//! [`parse_config`] dispatches to one [`LoadBalancer`] variant.
//!
//! `global_least_request`: every gateway shares one table in Redis of the
//! requests in flight per upstream endpoint
//! (`higress:global_least_request_table:<route>:<cluster>`).
//! For each request the plugin runs one `EVAL` of the selection script over
//! the route's healthy endpoints ([`upstream::upstream_hosts`]): it picks
//! the endpoint with the fewest requests in flight (ties broken at random),
//! counts the request (`HINCRBY +1`), and every `cleanInterval` drops
//! endpoints that are gone. The request is then sent to that endpoint
//! ([`upstream::set_upstream_override_host`]); when the stream ends the
//! count is released (`HINCRBY -1`) by work the plugin root owns, so it
//! runs even though the request context is gone. Over `maxRequestCount`
//! the request is answered 429. Without Redis, the cluster's own load
//! balancer picks (fail open), as in Go.
//!
//! Needs Higress (Redis and upstream-host host calls); stock Envoy refuses
//! the module.
//!
//! `lb_type: cluster`, `lb_policy: cluster_metrics` lives in
//! [`cluster_metrics`]; built with the `cluster-only` feature, the module
//! holds only that mode and runs on stock Envoy too.
// With `cluster-only`, the endpoint modes are compiled but not registered.
#![cfg_attr(feature = "cluster-only", allow(dead_code))]
use higress_wrapper::prelude::*;
use higress_wrapper::redis::{RedisClient, Value};
use higress_wrapper::upstream;
use std::time::{SystemTime, UNIX_EPOCH};

pub mod cluster_metrics;
pub mod endpoint_metrics;
mod json_text;
pub mod prefix_cache;
pub mod prometheus;
mod random;
mod redis_config;
mod signal;

/// The in-flight table, per route and cluster (Go's `RedisKeyFormat`).
pub fn table_key(route: &str, cluster: &str) -> String {
    format!("higress:global_least_request_table:{route}:{cluster}")
}

/// When the table was last cleaned (Go's `RedisLastCleanKeyFormat`).
pub fn last_clean_key(route: &str, cluster: &str) -> String {
    format!("higress:global_least_request_table:last_clean_time:{route}:{cluster}")
}

/// The body of the 429 over `maxRequestCount` (Go's, verbatim).
pub const OVER_LIMIT_BODY: &str = "Exceeded maximum request limit from ai-load-balancer.";

/// The selection script. Same `KEYS` layout and behaviour as Go's:
///
/// | KEYS | |
/// |---|---|
/// | 1 | seed: the time in microseconds |
/// | 2 | the in-flight table |
/// | 3 | the last-clean key |
/// | 4 | the clean interval, seconds |
/// | 5 | a random healthy endpoint |
/// | 6 | how many healthy endpoints follow |
/// | 7 | `1` to return every endpoint's count (detail log), else `0` |
/// | 8.. | the healthy endpoints, then the others |
///
/// Returns `{endpoint, its count after +1, {endpoint, count, ...}}`. It
/// reads and writes keys it does not declare, as Go's does: not for Redis
/// Cluster.
pub const SELECT_SCRIPT: &str = r#"
local seed = tonumber(KEYS[1])
local table_key = KEYS[2]
local clean_key = KEYS[3]
local interval = tonumber(KEYS[4])
local chosen = KEYS[5]
local healthy = tonumber(KEYS[6])
local detail = KEYS[7] == "1"
math.randomseed(seed)

-- the fewest in flight; among equals each is kept with equal chance
local least, ties = 0, 0
for i = 8, 7 + healthy do
    local host = KEYS[i]
    local n = tonumber(redis.call('HGET', table_key, host) or 0) or 0
    if ties == 0 or n < least then
        chosen, least, ties = host, n, 1
    elseif n == least then
        ties = ties + 1
        if math.random(ties) == 1 then
            chosen = host
        end
    end
end
redis.call('HINCRBY', table_key, chosen, 1)
local count = redis.call('HGET', table_key, chosen)

local details = {}
if detail and #KEYS >= 8 then
    local hosts = {}
    for i = 8, #KEYS do
        hosts[#hosts + 1] = KEYS[i]
    end
    local counts = redis.call('HMGET', table_key, (table.unpack or unpack)(hosts))
    for i, host in ipairs(hosts) do
        details[#details + 1] = host
        details[#details + 1] = tostring(counts[i] or 0)
    end
end

-- every `interval` seconds, forget endpoints the cluster no longer has
local now = math.floor(seed / 1000000)
local last = tonumber(redis.call('GET', clean_key) or 0)
if now - last >= interval then
    local present = {}
    for i = 8, #KEYS do
        present[KEYS[i]] = true
    end
    for _, host in ipairs(redis.call('HKEYS', table_key)) do
        if not present[host] then
            redis.call('HDEL', table_key, host)
        end
    end
    redis.call('SET', clean_key, now)
end

return {chosen, count, details}
"#;

// ----- config ---------------------------------------------------------------------------

/// `lb_type: endpoint`, `lb_policy: global_least_request`: the `lb_config`.
#[derive(Debug)]
pub struct GlobalLeastRequest {
    /// `serviceFQDN` (required): the Redis service, e.g. `redis.static`.
    pub service_fqdn: String,
    /// `servicePort` (required).
    pub service_port: u16,
    /// `timeout` in ms (default 3000).
    pub timeout_ms: u64,
    /// `database` (default 0).
    pub database: u32,
    /// `maxRequestCount`: requests in flight per endpoint; 0 or less is
    /// unlimited (the default).
    pub max_request_count: i64,
    /// `cleanInterval`, given in minutes (default 60), kept in seconds.
    pub clean_interval_secs: i64,
    /// `enableDetailLog` (default true): log every endpoint's count at
    /// debug level with each pick.
    pub enable_detail_log: bool,
    redis: RedisClient,
}

/// The parsed config.
#[derive(Debug)]
pub struct AiLoadBalancerConfig {
    /// `lb_type` (default `endpoint`).
    pub lb_type: String,
    /// `lb_policy`.
    pub lb_policy: String,
    /// The policy `lb_type` / `lb_policy` select, with its `lb_config`.
    pub lb: LoadBalancer,
}

/// One variant per supported `lb_type` / `lb_policy` (Go's `LoadBalancer`
/// implementations), each with its parsed `lb_config`.
#[derive(Debug)]
pub enum LoadBalancer {
    /// `endpoint` / `global_least_request`.
    GlobalLeastRequest(GlobalLeastRequest),
    /// `endpoint` / `prefix_cache`.
    PrefixCache(prefix_cache::PrefixCache),
    /// `endpoint` / `endpoint_metrics` (or its old name `metrics_based`).
    EndpointMetrics(endpoint_metrics::EndpointMetrics),
    /// `cluster` / `cluster_metrics` (errors name `lb_config.<key>`).
    ClusterMetrics(cluster_metrics::ClusterMetrics),
}

/// gjson's `.String()`.
fn text(value: Option<&JsonValue>) -> String {
    match value {
        Some(JsonValue::String(s)) => s.clone(),
        None | Some(JsonValue::Null) => String::new(),
        Some(other) => other.to_string(),
    }
}

/// gjson's `.Int()` (numbers, numeric text, booleans; else 0).
fn int(value: Option<&JsonValue>) -> i64 {
    match value {
        Some(JsonValue::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .unwrap_or(0),
        Some(JsonValue::String(s)) => s.trim().parse().unwrap_or(0),
        Some(JsonValue::Bool(b)) => i64::from(*b),
        _ => 0,
    }
}

/// gjson's `.Bool()`.
fn boolean(value: &JsonValue) -> bool {
    match value {
        JsonValue::Bool(b) => *b,
        JsonValue::String(s) => matches!(s.as_str(), "1" | "t" | "T" | "TRUE" | "true" | "True"),
        JsonValue::Number(_) => int(Some(value)) != 0,
        _ => false,
    }
}

fn refuse(path: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::new(message).with_path(path)
}

/// Parses `lb_config` for `global_least_request`, with Go's keys and
/// defaults. Errors name the field (`lb_config.servicePort`).
pub fn parse_global_least_request(json: &JsonValue) -> Result<GlobalLeastRequest, ConfigError> {
    let field = |key: &str| json.get(key).filter(|v| !v.is_null());
    let redis_config::RedisService {
        service_fqdn,
        service_port,
        timeout_ms,
        database,
        client: redis,
    } = redis_config::parse(json)?;
    let clean_interval_secs = match int(field("cleanInterval")) {
        0 => 60 * 60,
        minutes => minutes.saturating_mul(60),
    };
    let config = GlobalLeastRequest {
        max_request_count: int(field("maxRequestCount")),
        clean_interval_secs,
        enable_detail_log: field("enableDetailLog").is_none_or(boolean),
        service_fqdn,
        service_port,
        timeout_ms,
        database,
        redis,
    };
    log::info!(
        "redis client init, serviceFQDN: {}, servicePort: {}, timeout: {}, database: {}, maxRequestCount: {}, cleanInterval: {} minutes, enableDetailLog: {}",
        config.service_fqdn,
        config.service_port,
        config.timeout_ms,
        config.database,
        config.max_request_count,
        config.clean_interval_secs / 60,
        config.enable_detail_log
    );
    Ok(config)
}

/// Parses the plugin config: `lb_type` (default `endpoint`), `lb_policy`,
/// `lb_config`. The other policies Go has are refused for now.
pub fn parse_config(json: &JsonValue) -> Result<AiLoadBalancerConfig, ConfigError> {
    let field = |key: &str| json.get(key).filter(|v| !v.is_null());
    let mut lb_type = text(field("lb_type"));
    if lb_type.is_empty() {
        lb_type = "endpoint".to_owned();
    }
    let lb_policy = text(field("lb_policy"));
    let not_yet = || {
        refuse(
            "lb_policy",
            format!("lb_policy {lb_policy} is not supported yet by the Rust port"),
        )
    };
    let lb_config = field("lb_config").cloned().unwrap_or(JsonValue::Null);
    let lb = match (lb_type.as_str(), lb_policy.as_str()) {
        ("endpoint", "global_least_request") => {
            LoadBalancer::GlobalLeastRequest(parse_global_least_request(&lb_config)?)
        }
        ("endpoint", "prefix_cache") => LoadBalancer::PrefixCache(prefix_cache::parse(&lb_config)?),
        ("endpoint", "endpoint_metrics" | "metrics_based") => {
            LoadBalancer::EndpointMetrics(endpoint_metrics::parse(&lb_config)?)
        }
        ("cluster", "cluster_metrics") => {
            LoadBalancer::ClusterMetrics(cluster_metrics::parse_cluster_metrics(&lb_config)?)
        }
        ("endpoint", "endpoint_hash") | ("cluster", "cluster_hash") => return Err(not_yet()),
        ("endpoint" | "cluster", _) => {
            return Err(refuse(
                "lb_policy",
                format!("lb_policy {lb_policy} is not supported"),
            ))
        }
        _ => {
            return Err(refuse(
                "lb_type",
                format!("lb_type {lb_type} is not supported"),
            ))
        }
    };
    Ok(AiLoadBalancerConfig {
        lb_type,
        lb_policy,
        lb,
    })
}

// ----- the request ------------------------------------------------------------------------

/// The endpoint this request counts against, once it was sent there (Go's
/// ctx `host_selected`, with `routeName` / `clusterName` in the key).
#[derive(Debug, Default)]
pub struct State {
    picked: Option<Picked>,
    /// `lb_type: cluster`: what this request picked.
    cluster: cluster_metrics::Pick,
}

impl AsMut<cluster_metrics::Pick> for State {
    fn as_mut(&mut self) -> &mut cluster_metrics::Pick {
        &mut self.cluster
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Picked {
    pub(crate) table: String,
    pub(crate) host: String,
}

// ----- dispatch: one arm per policy -------------------------------------------------------

fn on_request_headers(ctx: &mut HttpContext<State>, config: &AiLoadBalancerConfig) -> HeaderAction {
    match &config.lb {
        LoadBalancer::GlobalLeastRequest(lb) => least_request_headers(ctx, lb),
        LoadBalancer::PrefixCache(lb) => prefix_cache::on_request_headers(ctx, lb),
        LoadBalancer::EndpointMetrics(lb) => endpoint_metrics::on_request_headers(ctx, lb),
        LoadBalancer::ClusterMetrics(lb) => cluster_metrics::on_request_headers(ctx, lb),
    }
}

fn on_request_body(
    ctx: &mut HttpContext<State>,
    config: &AiLoadBalancerConfig,
    body: &[u8],
) -> DataAction {
    match &config.lb {
        LoadBalancer::GlobalLeastRequest(lb) => least_request_body(ctx, lb),
        LoadBalancer::PrefixCache(lb) => prefix_cache::on_request_body(ctx, lb, body),
        LoadBalancer::EndpointMetrics(lb) => endpoint_metrics::on_request_body(ctx, lb, body),
        LoadBalancer::ClusterMetrics(_) => DataAction::Continue,
    }
}

fn on_stream_done(ctx: &mut HttpContext<State>, config: &AiLoadBalancerConfig) {
    let redis = match &config.lb {
        LoadBalancer::GlobalLeastRequest(lb) => &lb.redis,
        LoadBalancer::PrefixCache(lb) => lb.redis(),
        LoadBalancer::EndpointMetrics(_) => return,
        LoadBalancer::ClusterMetrics(lb) => return cluster_metrics::on_stream_done(ctx, lb),
    };
    let Some(picked) = ctx.state_mut().picked.take() else {
        return;
    };
    // The request context is gone after this hook: the root owns the call.
    let redis = redis.clone();
    ctx.spawn_detached(async move { release(&redis, &picked).await });
}

// ----- global_least_request -----------------------------------------------------------------

fn least_request_headers(ctx: &mut HttpContext<State>, lb: &GlobalLeastRequest) -> HeaderAction {
    if ctx.has_request_body() {
        // Hold the headers: the override takes effect only while they are
        // held (Go: "If return types.ActionContinue, SetUpstreamOverrideHost
        // will not take effect"). The body hook picks.
        return HeaderAction::StopIteration;
    }
    // No body will come: pick now (Go would leave the request held).
    match select(ctx, lb) {
        Some(done) => HeaderAction::wait(async move {
            done.await;
            HeaderAction::Continue
        }),
        None => HeaderAction::Continue,
    }
}

fn least_request_body(ctx: &mut HttpContext<State>, lb: &GlobalLeastRequest) -> DataAction {
    match select(ctx, lb) {
        Some(done) => DataAction::wait(async move {
            done.await;
            DataAction::Continue
        }),
        None => DataAction::Continue,
    }
}

fn micros_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Starts the pick. `None`: nothing to wait for, the cluster's balancer
/// picks (Go's `ctx.SetContext("error", true)` then continue).
fn select(ctx: &mut HttpContext<State>, lb: &GlobalLeastRequest) -> Option<signal::Receiver> {
    let route = ctx.route_name().filter(|r| !r.is_empty())?;
    let cluster = ctx.cluster_name().filter(|c| !c.is_empty())?;
    let hosts = match upstream::upstream_hosts() {
        Ok(hosts) => hosts,
        Err(e) => {
            log::warn!("get upstream hosts failed, fallback to default lb policy: {e}");
            return None;
        }
    };
    let (healthy, others): (Vec<_>, Vec<_>) = hosts.into_iter().partition(|h| h.is_healthy());
    if healthy.is_empty() {
        return None;
    }
    let seed = micros_now();
    let random = usize::try_from(seed.unsigned_abs() % healthy.len() as u64).unwrap_or(0);
    let fallback = healthy.get(random).map(|h| h.address.clone())?;
    let table = table_key(&route, &cluster);
    let mut keys = vec![
        seed.to_string(),
        table.clone(),
        last_clean_key(&route, &cluster),
        lb.clean_interval_secs.to_string(),
        fallback,
        healthy.len().to_string(),
        if lb.enable_detail_log { "1" } else { "0" }.to_owned(),
    ];
    let mut seen: std::collections::BTreeSet<String> =
        healthy.iter().map(|h| h.address.clone()).collect();
    keys.extend(healthy.into_iter().map(|h| h.address));
    // Then every other endpoint once (Go: those not among the healthy).
    keys.extend(
        others
            .into_iter()
            .map(|h| h.address)
            .filter(|a| seen.insert(a.clone())),
    );

    let eval = lb.redis.eval(SELECT_SCRIPT, &keys, &[] as &[&str]);
    let (redis, max, detail) = (lb.redis.clone(), lb.max_request_count, lb.enable_detail_log);
    let request = ctx.handle();
    let (done, wait) = signal::channel();
    // Owned by the plugin root, not the request: when the client goes away
    // while Redis answers, the count the script took is still released.
    ctx.spawn_detached(async move {
        // Dropping `done` lets the request continue (on every path).
        let reply = match eval.await {
            Ok(reply) => reply,
            Err(e) => {
                log::error!("redis eval failed, fallback to default lb policy: {e}");
                return;
            }
        };
        let Some(Reply {
            host,
            count,
            details,
        }) = parse_reply(reply)
        else {
            log::error!("redis eval lua result format error, expect at least [host, count]");
            return;
        };
        if detail {
            let counts: String = details
                .iter()
                .map(|(h, c)| format!("{{{h}: {c}}}, "))
                .collect();
            log::debug!("host_selected: {host} + 1, host and count: {counts}");
        }
        let picked = Picked { table, host };
        let outcome = request.with(|ctx| {
            if max > 0 && count > max {
                log::warn!(
                    "host_selected: {}, current_count: {count}, exceed max request limit {max}",
                    picked.host
                );
                ctx.send_local_response(429, &[], OVER_LIMIT_BODY);
                ctx.dont_read_response_body();
                return false;
            }
            if let Err(e) = upstream::set_upstream_override_host(&picked.host) {
                log::error!("override upstream host failed, fallback to default lb policy: {e}");
                return false;
            }
            log::debug!("host_selected: {}", picked.host);
            ctx.state_mut().picked = Some(picked.clone());
            true
        });
        drop(done);
        if outcome != Some(true) {
            // Not sent there (over the limit, no override, or the request
            // is gone): give the count back.
            release(&redis, &picked).await;
        }
    });
    Some(wait)
}

/// The script's `{host, count, {host, count, ...}}`.
struct Reply {
    host: String,
    count: i64,
    details: Vec<(String, String)>,
}

fn parse_reply(reply: Value) -> Option<Reply> {
    let Value::Array(items) = reply else {
        return None;
    };
    let mut items = items.into_iter();
    let host = bulk_text(items.next()?)?;
    let count = match items.next()? {
        Value::Int(n) => n,
        other => bulk_text(other)?.parse().ok()?,
    };
    let mut details = Vec::new();
    if let Some(Value::Array(pairs)) = items.next() {
        let mut pairs = pairs.into_iter();
        while let (Some(h), Some(c)) = (pairs.next(), pairs.next()) {
            details.push((
                bulk_text(h).unwrap_or_default(),
                bulk_text(c).unwrap_or_default(),
            ));
        }
    }
    Some(Reply {
        host,
        count,
        details,
    })
}

pub(crate) fn bulk_text(value: Value) -> Option<String> {
    match value {
        Value::Bulk(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        Value::Status(s) => Some(s),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) async fn release(redis: &RedisClient, picked: &Picked) {
    if let Err(e) = redis.hincr_by(&*picked.table, &*picked.host, -1).await {
        log::error!(
            "host_selected: {} - 1, failed to update count from redis: {e}",
            picked.host
        );
    }
}

// ----- lb_type cluster (cluster_metrics.rs) ----------------------------------------------

fn on_response_headers(
    ctx: &mut HttpContext<State>,
    config: &AiLoadBalancerConfig,
) -> HeaderAction {
    match &config.lb {
        LoadBalancer::ClusterMetrics(lb) => cluster_metrics::on_response_headers(ctx, lb),
        _ => {
            // The endpoint modes do not read the response.
            ctx.dont_read_response_body();
            HeaderAction::Continue
        }
    }
}

fn on_streaming_response_body(
    ctx: &mut HttpContext<State>,
    config: &AiLoadBalancerConfig,
    chunk: &[u8],
    end_of_stream: bool,
) -> Option<Vec<u8>> {
    match &config.lb {
        LoadBalancer::ClusterMetrics(lb) => {
            cluster_metrics::on_streaming_response_body(ctx, lb, chunk, end_of_stream)
        }
        _ => None,
    }
}

#[cfg(not(feature = "cluster-only"))]
higress_wrapper::set_ctx! {
    name: "ai-load-balancer",
    plugin: pub Plugin,
    config: AiLoadBalancerConfig,
    state: State,
    parse_config: parse_config,
    on_request_headers: on_request_headers,
    on_request_body: on_request_body,
    on_response_headers: on_response_headers,
    on_streaming_response_body: on_streaming_response_body,
    on_stream_done: on_stream_done,
}
