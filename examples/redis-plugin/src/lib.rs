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
//!   "header": "x-redis-value",
//!   "max_header_bytes": 4096
//! }
//! ```
//!
//! `redis` is the SDK's [`RedisService`] (the Go plugins' field names and
//! defaults). On each request it runs `GET <key>` — or `GET <key>:<value>`
//! when `key_param` is set and the request's query string has that
//! parameter (`/?user=alice` reads `greeting:alice`) — logs the value (at
//! most its first 64 bytes, with its length) and puts it in the request
//! header. A value longer than `max_header_bytes` (default 4096) is cut to
//! that many bytes in the header, and the log line says so: a Redis value is
//! data the gateway does not control, and a 20 MB value must not become a
//! 20 MB header or log line. While Redis answers, the request is paused; the
//! SDK resumes it when the reply (or an error) arrives. An error is logged
//! (a few times per second at most while it repeats) and the request
//! continues (fail open). `redis.timeout` is in milliseconds, at least 1 (0
//! is refused: the host would read it as no timeout at all).
//!
//! Runs on Higress only: stock Envoy has no Redis host calls and refuses
//! to load the module.
use higress_wrapper::logging::Truncated;
use higress_wrapper::prelude::*;
use higress_wrapper::redis::{RedisClient, RedisService};
use serde::Deserialize;

fn default_max_header_bytes() -> usize {
    4096
}

/// How much of a value a log line shows.
const MAX_LOGGED: usize = 64;

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
    #[serde(default = "default_max_header_bytes")]
    max_header_bytes: usize,
}

/// The parsed config: a ready Redis client and what to read.
#[derive(Debug)]
pub struct Config {
    redis: RedisClient,
    key: String,
    key_param: Option<String>,
    header: String,
    max_header_bytes: usize,
}

fn parse_config(json: &JsonValue) -> Result<Config, ConfigError> {
    let raw: RawConfig = higress_wrapper::config::from_json(json)?;
    Ok(Config {
        redis: raw.redis.client()?,
        key: raw.key,
        key_param: raw.key_param,
        header: raw.header,
        max_header_bytes: raw.max_header_bytes,
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
                let max = config.max_header_bytes;
                let copied = value.get(..max).unwrap_or(&value);
                let shown = Truncated::new(&value, MAX_LOGGED);
                if copied.len() < value.len() {
                    log::info!(
                        "redis {key} = {shown}; cut to {max} bytes in {}",
                        config.header
                    );
                } else {
                    log::info!("redis {key} = {shown}");
                }
                ctx.set_request_header(&config.header, copied);
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
