// Every key of set_ctx! at once, in an unusual order, with a trailing comma.
// Natively the SDK's host imports come from the test host.
extern crate higress_test_host;

use higress_wrapper::prelude::*;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
struct MyConfig {
    limit: u64,
}

#[derive(Default)]
struct MyState {
    bytes: usize,
}

mod parse {
    use higress_wrapper::prelude::*;

    pub fn config(json: &serde_json::Value) -> Result<super::MyConfig, ConfigError> {
        let limit = json
            .get("limit")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(10);
        Ok(super::MyConfig { limit })
    }

    pub fn rule(
        json: &serde_json::Value,
        global: Option<&super::MyConfig>,
    ) -> Result<super::MyConfig, ConfigError> {
        let mut config = global.cloned().unwrap_or(super::MyConfig { limit: 10 });
        if let Some(limit) = json.get("limit").and_then(serde_json::Value::as_u64) {
            config.limit = limit;
        }
        Ok(config)
    }
}

fn start(ctx: &mut PluginContext<'_, MyConfig>) -> Result<(), StartError> {
    if ctx.global_config().is_some_and(|c| c.limit == 0) {
        return Err(StartError::new("limit must not be 0"));
    }
    Ok(())
}

fn every_second(_ctx: &mut PluginContext<'_, MyConfig>) {}
fn every_minute(_ctx: &mut PluginContext<'_, MyConfig>) {}
fn queue_ready(_ctx: &mut PluginContext<'_, MyConfig>, _queue_id: u32) {}

type Ctx = HttpContext<MyState>;

fn request_headers(_ctx: &mut Ctx, _config: &MyConfig) -> HeaderAction {
    HeaderAction::StopIteration
}
fn request_body(ctx: &mut Ctx, _config: &MyConfig, body: &[u8]) -> DataAction {
    ctx.state_mut().bytes += body.len();
    DataAction::Continue
}
fn streaming_request_body(_: &mut Ctx, _: &MyConfig, _chunk: &[u8], _end: bool) -> Option<Vec<u8>> {
    None
}
fn response_headers(_ctx: &mut Ctx, _config: &MyConfig) -> HeaderAction {
    HeaderAction::Continue
}
fn response_body(_ctx: &mut Ctx, _config: &MyConfig, _body: &[u8]) -> DataAction {
    DataAction::StopIterationAndBuffer
}
fn streaming_response_body(_: &mut Ctx, _: &MyConfig, chunk: &[u8], _end: bool) -> Option<Vec<u8>> {
    Some(chunk.to_ascii_uppercase())
}
fn stream_done(ctx: &mut Ctx, config: &MyConfig) {
    let _ = (ctx.state().bytes, config.limit);
}

higress_wrapper::set_ctx! {
    on_stream_done: stream_done,
    name: "everything",
    state: MyState,
    config: MyConfig,
    plugin: Everything,
    parse_config: parse::config,
    parse_rule_config: parse::rule,
    on_plugin_start: start,
    on_tick: [
        (Duration::from_secs(1), every_second),
        (Duration::from_secs(60), every_minute),
    ],
    on_queue_ready: queue_ready,
    on_request_headers: request_headers,
    on_request_body: request_body,
    on_streaming_request_body: streaming_request_body,
    on_response_headers: response_headers,
    on_response_body: response_body,
    on_streaming_response_body: streaming_response_body,
}

fn main() {
    assert_eq!(<Everything as HttpPlugin>::NAME, "everything");
    let hooks = <Everything as HttpPlugin>::HOOKS;
    assert!(hooks.on_request_body.is_some() && hooks.on_streaming_request_body.is_some());
    assert!(hooks.on_response_body.is_some() && hooks.on_streaming_response_body.is_some());
    assert!(!hooks.request_headers_only());
    let config =
        <Everything as HttpPlugin>::parse_config(&serde_json::json!({ "limit": 5 })).unwrap();
    assert_eq!(config, MyConfig { limit: 5 });
}
