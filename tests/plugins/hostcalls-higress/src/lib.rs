//! `e2e-hostcalls-higress`: the SDK's Higress-only host calls in one
//! module, for the wasm-mode host (`higress-wasm-host/tests/sdk_higress.rs`).
//! Stock Envoy refuses this module (it imports `proxy_get_upstream_hosts`,
//! `proxy_redis_*` and friends); that is why it is not part of
//! `e2e-hostcalls`, which the stock-Envoy suite loads.
//!
//! Config: `{"redis": <RedisService>}`. Request header `x-hc-op` picks the
//! case:
//!
//! | `x-hc-op` | request headers | later |
//! |---|---|---|
//! | `pick` | held (`StopIteration`) | request body: `upstream_hosts()`, override to the healthy host with the fewest `vllm:num_requests_waiting` (from its `metrics`), header `x-picked`; counter `host.<address>.hc_picks` +1 |
//! | `redis` | `INCR hc:<x-hc-key>` awaited, header `x-redis-count`; gauge `hc_redis_last` set to the count, histogram `hc_redis_count` records it | |
//! | `shared` | shared-data `hc_seen` +1 (CAS helper), header `x-shared` | |
//! | `foreign` | `call_foreign_function("hc_echo", x-hc-arg)` → header `x-foreign`; `foreign::host_log_level()` → header `x-log-level` | |
//! | `route` | held (`StopIteration`) | request body: `route_call("POST", "/routed", [x-routed: yes], "new-body")`; the callback answers `routed:<status>:<body>` |
//! | `inject` | | response body `inject`: `inject_encoded_data(b"data: injected\n\n", true)` |
use higress_wrapper::foreign;
use higress_wrapper::metrics;
use higress_wrapper::prelude::*;
use higress_wrapper::redis::{RedisClient, RedisService};
use higress_wrapper::shared_data;
use higress_wrapper::upstream::{self, UpstreamHost};
use serde::Deserialize;

/// The plugin's configuration.
#[derive(Debug)]
pub struct Config {
    redis: RedisClient,
}

#[derive(Debug, Deserialize)]
struct RawConfig {
    redis: RedisService,
}

fn parse_config(json: &JsonValue) -> Result<Config, ConfigError> {
    let raw: RawConfig = higress_wrapper::config::from_json(json)?;
    Ok(Config {
        redis: raw.redis.client()?,
    })
}

fn header(ctx: &HttpContext, name: &str) -> String {
    ctx.request_header(name)
        .map(|v| v.to_str_lossy().into_owned())
        .unwrap_or_default()
}

/// `vllm:num_requests_waiting` from a host's Prometheus text, if present.
fn waiting(host: &UpstreamHost) -> Option<f64> {
    host.metrics.as_deref()?.lines().find_map(|line| {
        let rest = line.strip_prefix("vllm:num_requests_waiting")?;
        rest.rsplit(' ').next()?.trim().parse().ok()
    })
}

fn on_request_headers(ctx: &mut HttpContext, config: &Config) -> HeaderAction {
    match header(ctx, "x-hc-op").as_str() {
        "pick" | "route" => HeaderAction::StopIteration,
        "redis" => {
            let key = format!("hc:{}", header(ctx, "x-hc-key"));
            ctx.wait(config, |ctx, config| async move {
                let count = config.redis.incr(&*key).await?;
                let value = u64::try_from(count).unwrap_or(0);
                metrics::set_gauge("hc_redis_last", value)?;
                metrics::record_histogram("hc_redis_count", value)?;
                ctx.set_request_header("x-redis-count", count.to_string());
                Ok(HeaderAction::Continue)
            })
        }
        "shared" => {
            match shared_data::update("hc_seen", 8, |n: Option<u64>| n.unwrap_or(0) + 1) {
                Ok(n) => ctx.set_request_header("x-shared", n.to_string()),
                Err(e) => log::warn!("shared data: {e}"),
            }
            HeaderAction::Continue
        }
        "foreign" => {
            let arg = header(ctx, "x-hc-arg");
            match ctx.call_foreign_function("hc_echo", arg.as_bytes()) {
                Ok(Some(out)) => ctx.set_request_header("x-foreign", out),
                Ok(None) => ctx.set_request_header("x-foreign", ""),
                Err(e) => log::warn!("hc_echo: {e}"),
            }
            match foreign::host_log_level() {
                Ok(level) => ctx.set_request_header("x-log-level", level.to_string()),
                Err(e) => log::warn!("get_log_level: {e}"),
            }
            HeaderAction::Continue
        }
        _ => HeaderAction::Continue,
    }
}

fn on_request_body(ctx: &mut HttpContext, _: &Config, _body: &[u8]) -> DataAction {
    let op = header(ctx, "x-hc-op");
    if op == "route" {
        let sent = ctx.route_call(
            "POST",
            "/routed",
            &[("x-routed", b"yes")],
            b"new-body",
            |ctx, answer| {
                let text = format!(
                    "routed:{}:{}",
                    answer.status,
                    String::from_utf8_lossy(&answer.body)
                );
                ctx.replace_response_body(text);
            },
        );
        if let Err(e) = sent {
            log::warn!("route call: {e}");
        }
        return DataAction::Continue;
    }
    if op != "pick" {
        return DataAction::Continue;
    }
    let hosts = match upstream::upstream_hosts() {
        Ok(hosts) => hosts,
        Err(e) => {
            log::warn!("upstream hosts: {e}");
            return DataAction::Continue;
        }
    };
    let chosen = hosts
        .iter()
        .filter(|h| h.is_healthy())
        .min_by(|a, b| {
            let (a, b) = (
                waiting(a).unwrap_or(f64::MAX),
                waiting(b).unwrap_or(f64::MAX),
            );
            a.total_cmp(&b)
        })
        .map(|h| h.address.clone());
    if let Some(address) = chosen {
        if let Err(e) = upstream::set_upstream_override_host(&address) {
            log::warn!("override {address}: {e}");
        }
        let name = metrics::metric_name(&[("host", &address)], "hc_picks");
        if let Err(e) = metrics::increment_counter(&name, 1) {
            log::warn!("{name}: {e}");
        }
        ctx.set_request_header("x-picked", address);
    }
    ctx.set_request_header("x-hosts", hosts.len().to_string());
    DataAction::Continue
}

fn on_response_body(ctx: &mut HttpContext, _: &Config, body: &[u8]) -> DataAction {
    if header(ctx, "x-hc-op") == "inject" && body == b"inject" {
        if let Err(e) = upstream::inject_encoded_data(b"data: injected\n\n", true) {
            log::warn!("inject: {e}");
        }
    }
    DataAction::Continue
}

higress_wrapper::set_ctx! {
    name: "e2e-hostcalls-higress",
    plugin: pub Plugin,
    config: Config,
    parse_config: parse_config,
    on_request_headers: on_request_headers,
    on_request_body: on_request_body,
    on_response_body: on_response_body,
}
