//! Using the hook's borrowed `ctx` inside the future (here the handle was
//! named `_req`, so `ctx` is still the hook's `&mut HttpContext`).
extern crate higress_test_host;

use higress_wrapper::prelude::*;
use higress_wrapper::redis::RedisClient;

struct Config {
    redis: RedisClient,
}

fn parse_config(_: &JsonValue) -> Result<Config, ConfigError> {
    Err(ConfigError::new("not used"))
}

fn on_request_headers(ctx: &mut HttpContext, config: &Config) -> HeaderAction {
    ctx.wait(config, |_req, config| async move {
        if let Some(value) = config.redis.get("k").await? {
            ctx.set_request_header("x-k", value);
        }
        Ok(HeaderAction::Continue)
    })
}

higress_wrapper::set_ctx! {
    name: "wait-uses-hook-ctx",
    config: Config,
    parse_config: parse_config,
    on_request_headers: on_request_headers,
}

fn main() {}
