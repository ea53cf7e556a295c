//! redis-plugin: the seed's Redis example, written with async/await.
//!
//! Config:
//!
//! ```json
//! {
//!   "redis": {"service_name": "redis.static", "service_port": 6379,
//!             "username": "", "password": "secret", "timeout": 500},
//!   "key": "greeting",
//!   "key_param": "user",
//!   "header": "x-redis-value"
//! }
//! ```
//!
//! `redis` is the SDK's [`RedisService`] (the Go plugins' field names and
//! defaults). On each request it runs `GET <key>` — or `GET <key>:<value>`
//! when `key_param` is set and the request's query string has that
//! parameter (`/?user=alice` reads `greeting:alice`) — logs the value and
//! puts it in the request header. While Redis answers, the request is
//! paused; the SDK resumes it when the reply (or an error) arrives. An error
//! is logged and the request continues (fail open).
//!
//! Runs on Higress only: stock Envoy has no Redis host calls and refuses
//! to load the module.
use higress_wrapper::prelude::*;
use higress_wrapper::redis::{RedisClient, RedisService};
use serde::Deserialize;

fn default_header() -> String {
    "x-redis-value".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    redis: RedisService,
    key: String,
    #[serde(default)]
    key_param: Option<String>,
    #[serde(default = "default_header")]
    header: String,
}

/// The parsed config: a ready Redis client and what to read.
#[derive(Debug)]
pub struct Config {
    redis: RedisClient,
    key: String,
    key_param: Option<String>,
    header: String,
}

fn parse_config(json: &JsonValue) -> Result<Config, ConfigError> {
    let raw: RawConfig = higress_wrapper::config::from_json(json)?;
    Ok(Config {
        redis: raw.redis.client()?,
        key: raw.key,
        key_param: raw.key_param,
        header: raw.header,
    })
}

fn on_request_headers(ctx: &mut HttpContext, config: &Config) -> HeaderAction {
    let key = match config.key_param.as_deref().and_then(|p| ctx.query_param(p)) {
        Some(suffix) => format!("{}:{suffix}", config.key),
        None => config.key.clone(),
    };
    ctx.wait(config, |ctx, config| async move {
        match config.redis.get(&*key).await? {
            Some(value) => {
                log::info!("redis {key} = {}", String::from_utf8_lossy(&value));
                ctx.set_request_header(&config.header, &value);
            }
            None => log::info!("redis {key} is not set"),
        }
        Ok(HeaderAction::Continue)
    })
}

higress_wrapper::set_ctx! {
    name: "redis-plugin",
    plugin: pub Plugin,
    config: Config,
    parse_config: parse_config,
    on_request_headers: on_request_headers,
}
