//! The future of `ctx.wait` outputs a `Result` with its own error type
//! instead of `higress_wrapper::Error`: the message names the fix.
extern crate higress_test_host;

use higress_wrapper::prelude::*;
use higress_wrapper::redis::{RedisClient, RedisError};

struct Config {
    redis: RedisClient,
}

fn parse_config(_: &JsonValue) -> Result<Config, ConfigError> {
    Err(ConfigError::new("not used"))
}

fn on_request_headers(ctx: &mut HttpContext, config: &Config) -> HeaderAction {
    ctx.wait(config, |_ctx, config| async move {
        config.redis.get("k").await?;
        Ok::<_, RedisError>(HeaderAction::Continue)
    })
}

higress_wrapper::set_ctx! {
    name: "wait-output-wrong-error",
    config: Config,
    parse_config: parse_config,
    on_request_headers: on_request_headers,
}

fn main() {}
