//! The async style without ceremony: `ctx.wait` hands the future an owned
//! `ctx` (shadowing the hook's borrowed one) and an `Rc` of the config;
//! `?` converts SDK errors and `Ok(..)` needs no type annotation.
extern crate higress_test_host;

use higress_wrapper::http_client::HttpClient;
use higress_wrapper::prelude::*;
use higress_wrapper::redis::RedisClient;

struct Config {
    redis: RedisClient,
    auth: HttpClient,
    header: String,
}

fn parse_config(_: &JsonValue) -> Result<Config, ConfigError> {
    Err(ConfigError::new("not used"))
}

fn on_request_headers(ctx: &mut HttpContext, config: &Config) -> HeaderAction {
    ctx.wait(config, |ctx, config| async move {
        let count: i64 = config.redis.incr("hits").await?;
        let answer = config.auth.get("/check").send().await?;
        if answer.status != 200 {
            ctx.send_local_response(403, &[], "denied");
            return Ok(HeaderAction::Continue);
        }
        ctx.set_request_header(&config.header, count.to_string());
        Ok(HeaderAction::Continue)
    })
}

fn on_request_body(ctx: &mut HttpContext, config: &Config, _body: &[u8]) -> DataAction {
    ctx.wait(config, |ctx, config| async move {
        config.redis.set("last", "body").await?;
        ctx.with(|ctx| ctx.set_context("stored", true));
        Ok(DataAction::Continue)
    })
}

higress_wrapper::set_ctx! {
    name: "wait-no-annotations",
    config: Config,
    parse_config: parse_config,
    on_request_headers: on_request_headers,
    on_request_body: on_request_body,
}

fn main() {}
