//! redis-plugin: the seed's Redis example, written with async/await.
//!
//! Config:
//!
//! ```json
//! {
//!   "redis": {"service_name": "redis.static", "service_port": 6379,
//!             "username": "", "password": "secret", "timeout": 500},
//!   "key": "greeting",
//!   "header": "x-redis-value",
//!   "max_header_bytes": 4096
//! }
//! ```
//!
//! On each request it runs `GET <key>`, logs the value (at most its first
//! 64 bytes, with its length) and puts it in the request header. A value
//! longer than `max_header_bytes` (default 4096) is cut to that many bytes
//! in the header, and the log line says so: a Redis value is data the gateway
//! does not control, and a 20 MB value must not become a 20 MB header or
//! log line. While Redis answers, the request is paused; the SDK resumes it
//! when the reply (or an error) arrives. An error is logged (a few times per
//! second at most while it repeats) and the request continues (fail open).
//! `redis.timeout` is in milliseconds, at least 1 (0 is refused: the host
//! would read it as no timeout at all).
//!
//! Runs on Higress only: stock Envoy has no Redis host calls and refuses
//! to load the module.
use higress_wrapper::cluster::FqdnCluster;
use higress_wrapper::logging::Truncated;
use higress_wrapper::prelude::*;
use higress_wrapper::redis::{RedisClient, RedisError, TimeoutMs};
use serde::Deserialize;
use std::rc::Rc;

/// `redis` section of the config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedisSection {
    service_name: String,
    service_port: u16,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    /// Milliseconds, at least 1.
    #[serde(default = "default_timeout")]
    timeout: TimeoutMs,
}

fn default_timeout() -> TimeoutMs {
    TimeoutMs::from_millis(1000)
}

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
    redis: RedisSection,
    key: String,
    #[serde(default = "default_header")]
    header: String,
    #[serde(default = "default_max_header_bytes")]
    max_header_bytes: usize,
}

/// The parsed config: a ready Redis client and what to read.
#[derive(Debug)]
pub struct Config {
    redis: RedisClient,
    key: Rc<str>,
    header: Rc<str>,
    max_header_bytes: usize,
}

fn parse_config(json: &JsonValue) -> Result<Config, ConfigError> {
    let raw: RawConfig = higress_wrapper::config::from_json(json)?;
    let cluster = FqdnCluster::new(raw.redis.service_name, raw.redis.service_port);
    let redis = RedisClient::builder(&cluster)
        .username(raw.redis.username)
        .password(raw.redis.password)
        .timeout(raw.redis.timeout.into())
        .build()?;
    Ok(Config {
        redis,
        key: raw.key.into(),
        header: raw.header.into(),
        max_header_bytes: raw.max_header_bytes,
    })
}

fn on_request_headers(ctx: &mut HttpContext, config: &Config) -> HeaderAction {
    let get = config.redis.get(&*config.key);
    let (key, header) = (Rc::clone(&config.key), Rc::clone(&config.header));
    let max = config.max_header_bytes;
    let request = ctx.handle();
    HeaderAction::wait(async move {
        match get.await? {
            Some(value) => {
                let copied = value.get(..max).unwrap_or(&value);
                let shown = Truncated::new(&value, MAX_LOGGED);
                if copied.len() < value.len() {
                    log::info!("redis {key} = {shown}; cut to {max} bytes in {header}");
                } else {
                    log::info!("redis {key} = {shown}");
                }
                request.with(|ctx| ctx.set_request_header(&header, copied));
            }
            None => log::info!("redis {key} is not set"),
        }
        Ok::<_, RedisError>(HeaderAction::Continue)
    })
}

higress_wrapper::set_ctx! {
    name: "redis-plugin",
    plugin: pub Plugin,
    config: Config,
    parse_config: parse_config,
    on_request_headers: on_request_headers,
}
