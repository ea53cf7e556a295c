//! Using the hook's borrowed `ctx` inside the future (here the handle was
//! named `_req`, so `ctx` is still the hook's `&mut HttpContext`).
//!
//! This is a borrow-check error, which no attribute can reword: rustc points
//! at the use of `ctx` inside the future (the user's span) and at the hook's
//! `&mut HttpContext` parameter. The API avoids the trap by shape: the
//! closure receives an owned handle, and the documented form names it `ctx`,
//! which shadows the borrowed one (see `ui/pass/wait_no_annotations.rs`).
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
