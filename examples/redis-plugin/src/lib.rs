//! redis-plugin: the seed's Redis example, written with async/await.
//!
//! Config:
//!
//! ```json
//! {
//!   "redis": {"service_name": "redis.static", "service_port": 6379,
//!             "username": "", "password": "secret", "timeout": 500},
//!   "key": "greeting",
//!   "header": "x-redis-value"
//! }
//! ```
//!
//! On each request it runs `GET <key>`, logs the value and puts it in the
//! request header. While Redis answers, the request is paused; the SDK
//! resumes it when the reply (or an error) arrives. An error is logged and
//! the request continues (fail open).
//!
//! Runs on Higress only: stock Envoy has no Redis host calls and refuses
//! to load the module.
use higress_wrapper::cluster::FqdnCluster;
use higress_wrapper::prelude::*;
use higress_wrapper::redis::{RedisClient, RedisError};
use serde::Deserialize;
use std::rc::Rc;
use std::time::Duration;

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
    /// Milliseconds.
    #[serde(default = "default_timeout")]
    timeout: u64,
}

fn default_timeout() -> u64 {
    1000
}

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
}

/// The parsed config: a ready Redis client and what to read.
#[derive(Debug)]
pub struct Config {
    redis: RedisClient,
    key: Rc<str>,
    header: Rc<str>,
}

fn parse_config(json: &JsonValue) -> Result<Config, ConfigError> {
    let raw: RawConfig = higress_wrapper::config::from_json(json)?;
    let cluster = FqdnCluster::new(raw.redis.service_name, raw.redis.service_port);
    let redis = RedisClient::builder(&cluster)
        .username(raw.redis.username)
        .password(raw.redis.password)
        .timeout(Duration::from_millis(raw.redis.timeout))
        .build()?;
    Ok(Config {
        redis,
        key: raw.key.into(),
        header: raw.header.into(),
    })
}

fn on_request_headers(ctx: &mut HttpContext, config: &Config) -> HeaderAction {
    let get = config.redis.get(&*config.key);
    let (key, header) = (Rc::clone(&config.key), Rc::clone(&config.header));
    let request = ctx.handle();
    HeaderAction::wait(async move {
        match get.await? {
            Some(value) => {
                log::info!("redis {key} = {}", String::from_utf8_lossy(&value));
                request.with(|ctx| ctx.set_request_header(&header, &value));
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
